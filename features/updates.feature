Feature: Updated values arrive through their Updated event
  The mobile SDKs acknowledge a command as soon as it is sent; the new value is only real once
  the backend's Updated event for it arrives, and that event carries the backend's value, which
  may differ from what the app wrote. The backend holds the event to separate the two moments.

  Background:
    Given the backend has the "basic" fixture

  @UPD-1
  Scenario: A conversation attribute update completes only once its Updated event is delivered
    Given alice's client has started and synchronized
    And the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "release"} without waiting
    And the client settles
    Then alice's update of "general" has not completed
    When the backend releases the held events of "general"
    And the client settles
    Then alice's update of "general" completed after its Updated event was delivered

  @UPD-1
  Scenario: A user attribute update completes only once its Updated event is delivered
    Given alice's client has started and synchronized
    And the backend holds the Updated events of alice's user
    When alice updates her user attributes to {"status": "busy"} without waiting
    And the client settles
    Then alice's user update has not completed
    When the backend releases the held events of alice's user
    And the client settles
    Then alice's user update completed after its Updated event was delivered

  @UPD-2
  Scenario: Another writer's value announced in the Updated event wins over the local write
    Given alice's client has started and synchronized
    And the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "mine"} without waiting
    And the client settles
    And another writer sets the attributes of "general" to {"topic": "theirs"}
    And the backend releases the held events of "general"
    And the client settles
    Then alice's update of "general" reports the backend's value
    And alice reads the backend's value of "general"

  @UPD-3
  Scenario: A stale Updated event delivered late does not overwrite a newer value
    Given alice's client has started and synchronized
    When another writer sets the attributes of "general" to {"version": 1}
    And another writer sets the attributes of "general" to {"version": 2}
    And the client settles
    And the backend re-delivers a stale Updated event for "general"
    And the client settles
    Then alice reads the backend's value of "general"

  @UPD-1
  Scenario: An update whose Updated event is held does not complete as time passes
    Given alice's client has started and synchronized
    And the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "patience"} without waiting
    And the client settles
    And 30 seconds pass
    Then alice's update of "general" has not completed
    When the backend releases the held events of "general"
    And the client settles
    Then alice's update of "general" completed after its Updated event was delivered

  @UPD-1
  Scenario: An older Updated event arriving while an update is pending does not complete it
    Given alice's client has started and synchronized
    When another writer sets the attributes of "general" to {"topic": "before"}
    And the client settles
    Given the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "mine"} without waiting
    And the client settles
    And the backend delivers a stale Updated event for "general" past the hold
    And the client settles
    Then alice's update of "general" has not completed
    When the backend releases the held events of "general"
    And the client settles
    Then alice's update of "general" completed after its Updated event was delivered

  @UPD-2
  Scenario: Another writer's value announced for the user wins over the local write
    Given alice's client has started and synchronized
    And the backend holds the Updated events of alice's user
    When alice updates her user attributes to {"status": "mine"} without waiting
    And the client settles
    And another writer sets alice's user attributes to {"status": "theirs"}
    And the backend releases the held events of alice's user
    And the client settles
    Then alice's user update reports the backend's value
    And alice reads the backend's value of her user
