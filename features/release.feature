Feature: Shutdown only on logout, handles released first, and nothing of the old client reused
  A client is shut down only when the user logs out or another identity logs in; on the mobile
  SDKs every object handle (conversations, participants, messages) is released before the client
  is. After the shutdown a new client is created for the next login, and nothing of the old one
  (its instance, its handles) works any more: using them is a typed `client_shut_down` error.

  Background:
    Given the backend has the "basic" fixture

  @REL-1 @LIFE-3
  Scenario: Logging out releases every handle before the client shuts down
    Given alice's client has started and synchronized
    When alice opens "general"
    And alice opens "random"
    And alice logs out
    Then every handle was released before the client shut down
    And no client was shut down without a logout

  @REL-1 @LIFE-3 @LIFE-4
  Scenario: Another identity logging in shuts the first client down, handles first
    Given alice's client has started and synchronized
    When alice opens "general"
    And bob's client starts
    And 10 seconds pass
    Then every handle was released before the client shut down
    And no client was shut down without a logout
    And the closed client was never used again

  @LIFE-4
  Scenario: After logout and a login as another identity, nothing of the first client is reachable
    Given alice's client has started and synchronized
    When alice opens "general"
    And alice logs out
    And alice uses the closed client
    And bob's client starts
    And the app releases the handles it kept from the closed client
    And bob opens "general"
    And 10 minutes pass
    Then the closed client was never used again
    And nothing of the closed client was reachable
    And bob's list matches the backend

  @LIFE-4
  Scenario: A killed app starts a new client and the old one is gone
    Given alice's client has started and synchronized
    When alice's app is killed
    And alice's client starts
    And 10 seconds pass
    Then the closed client was never used again
