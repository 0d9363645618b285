Feature: Operations wait for synchronization
  The mobile SDKs document that an operation on the client is valid only once the client reports
  its synchronization complete, and an operation on a conversation only once that conversation
  has synchronized. The backend gates part of what synchronization needs, the app issues an
  operation anyway, and the journal shows whether the operation reached the backend early.

  Background:
    Given the backend has the "basic" fixture
    And alice is in 25 more conversations
    And the backend serves at most 10 conversations per page

  @SYNC-1
  Scenario: A client operation issued while the last list page is gated waits for sync
    Given the last page of alice's conversation list is gated
    When alice's client starts
    And alice updates her user attributes to {"status": "busy"} without waiting
    And the client settles
    Then no client operation has reached the backend before the client synchronized
    When the gate on the last page of alice's conversation list is opened
    And 3 seconds pass
    Then alice's client finished synchronizing
    And alice's user update completes or is refused as not synchronized
    And no client operation has reached the backend before the client synchronized

  @SYNC-1
  Scenario: A client operation waits for every conversation to synchronize, not only the list
    Given the participants of "support" are gated
    When alice's client starts
    And alice updates her user attributes to {"status": "away"} without waiting
    And the client settles
    Then no client operation has reached the backend before the client synchronized
    When the gate on the participants of "support" is opened
    And 3 seconds pass
    Then alice's client finished synchronizing
    And alice's user update completes or is refused as not synchronized
    And no client operation has reached the backend before the client synchronized

  @SYNC-2
  Scenario: An update of a conversation whose participants are gated waits for that conversation
    Given the participants of "support" are gated
    When alice's client starts
    And alice updates the attributes of "support" to {"priority": "high"} without waiting
    And the client settles
    Then no conversation operation has reached the backend before that conversation synchronized
    When the gate on the participants of "support" is opened
    And 3 seconds pass
    Then alice's update of "support" completes or is refused as not synchronized
    And no conversation operation has reached the backend before that conversation synchronized

  @SYNC-2
  Scenario: A message sent to a conversation that is still synchronizing waits
    Given the participants of "general" are gated
    When alice's client starts
    And alice sends "hello while syncing" to "general" without waiting
    And the client settles
    Then no conversation operation has reached the backend before that conversation synchronized
    When the gate on the participants of "general" is opened
    And 3 seconds pass
    Then alice's message to "general" completes or is refused as not synchronized
    And no conversation operation has reached the backend before that conversation synchronized

  @SYNC-3
  Scenario: Sync status only moves forward while other writers change synced conversations
    Given alice's client has started and synchronized
    When another writer sets the attributes of "general" to {"topic": "news"}
    And another writer sets the attributes of "support" to {"priority": "low"}
    And the client settles
    Then the sync status never moved backwards

  @SYNC-3
  Scenario: Sync status only moves forward through a gated conversation, its retries and concurrent changes
    Given the participants of "support" are gated
    When alice's client starts
    And 3 seconds pass
    And another writer sets the attributes of "general" to {"topic": "while syncing"}
    And the gate on the participants of "support" is opened
    And 3 seconds pass
    Then alice's client finished synchronizing
    And the sync status never moved backwards

  @SYNC-3
  Scenario: Sync status only moves forward when a conversation is added after sync completed
    Given alice's client has started and synchronized
    When "newcomer" is created for alice and bob and announced
    And the client settles
    Then the sync status never moved backwards
