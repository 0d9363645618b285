Feature: Count reads are cached for a lifetime, converge after it, and say when they are unknown
  Participant, message and unread counts are semi-real-time: a read inside the cache lifetime
  (5 s, as documented) is served from the cache, so reading rapidly costs one request per
  lifetime; once the lifetime has passed since a count changed, a read shows the backend's value.
  Until the user has a read horizon in a conversation, its unread count is unknown: null, not 0.

  Background:
    Given the backend has the "basic" fixture
    And count reads are judged with a cache lifetime of 5 seconds

  @COUNT-1 @COUNT-2
  Scenario: Fifty reads inside one lifetime make one request, and a read after it sees the change
    Given alice's client has started and synchronized
    When alice reads the message count of "general" 50 times
    And alice reads the participant count of "general"
    And 2 seconds pass
    And bob posts a message to "general"
    And 7 seconds pass
    And alice reads the message count of "general"
    Then the count was requested once per cache lifetime
    And the count read after the lifetime matches the backend

  @COUNT-1
  Scenario: Reads spread over one lifetime make one request
    Given alice's client has started and synchronized
    When alice reads the message count of "general"
    And 2 seconds pass
    And alice reads the message count of "general"
    And 2 seconds pass
    And alice reads the message count of "general"
    Then the count was requested once per cache lifetime

  @COUNT-3
  Scenario: A participant without a read horizon has an unknown unread count
    Given alice's client has started and synchronized
    When alice reads the unread count of "general"
    And alice reads the unread count of "random"
    Then the unread count was null
