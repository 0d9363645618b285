Feature: One client instance lives through outages and background spells
  The SDK reconnects by itself after the network fails, and an app that goes to the background
  and comes back keeps the same client: shutting it down or creating another one for either is
  the mistake this feature catches. The backend fails the network for real on loopback: the
  ports refuse connections (and come back on the same numbers), or accept and drop them like a
  captive portal, or an open socket goes silent until the client's own liveness timer notices.
  Whatever was published meanwhile must reach the client exactly once after it is back, and its
  attempts must back off: at most 15 a minute, none closer than 500 ms, and back within 5
  minutes of the network.

  Background:
    Given the backend has the "basic" fixture

  @LIFE-1 @LIFE-3
  Scenario Outline: The same client comes back after the network refused it for <span>
    Given alice's client has started and synchronized
    When bob posts a message to "general"
    And the client settles
    And the network goes down
    And <span> pass
    And bob posts a message to "general"
    And 1 second passes
    And the network comes back
    And 5 minutes pass
    Then the same client reconnected and received what it missed
    And no client was shut down without a logout

    Examples:
      | span       |
      | 30 seconds |
      | 10 minutes |
      | 3 hours    |

  @LIFE-1 @LIFE-5
  Scenario: The same client comes back after a half-open outage, backing off
    Given alice's client has started and synchronized
    When the network goes half-open
    And bob posts a message to "general"
    And 2 minutes pass
    And the network comes back
    And 5 minutes pass
    Then the same client reconnected and received what it missed
    And the reconnect attempts stayed within the backoff bounds
    And the client kept one event socket

  @LIFE-1
  Scenario: A socket that goes silent is noticed and replaced by the same client
    Given alice's client has started and synchronized
    When alice's event socket goes silent
    And bob posts a message to "general"
    And 2 minutes pass
    And the network comes back
    And 5 minutes pass
    Then the same client reconnected and received what it missed

  @LIFE-1
  Scenario: An outage between two pages of the initial sync
    Given the backend serves at most 10 conversations per page
    And alice has 25 conversations with bob
    And the pages of alice's conversation list are gated from page 2
    When alice's client starts
    And the network goes down
    And bob posts a message to "general"
    And 30 seconds pass
    And the network comes back
    And the gate on alice's conversation list from page 2 is opened
    And 5 minutes pass
    Then the same client reconnected and received what it missed

  @LIFE-1 @UPD-1
  Scenario: An outage while an attribute update waits for its held Updated event
    Given alice's client has started and synchronized
    And the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "outage"} without waiting
    And the client settles
    And the network goes down
    And the backend releases the held events of "general"
    And 30 seconds pass
    And the network comes back
    And 5 minutes pass
    Then alice's update of "general" completed after its Updated event was delivered
    And the same client reconnected and received what it missed

  @LIFE-5 @LIFE-1
  Scenario: A flapping network: ten half-open outages in a row
    Given alice's client has started and synchronized
    When the network flaps 10 times, half-open for 10 seconds and up for 20 seconds each time
    And the network goes half-open
    And bob posts a message to "general"
    And 20 seconds pass
    And the network comes back
    And 5 minutes pass
    Then the reconnect attempts stayed within the backoff bounds
    And the client kept one event socket
    And the same client reconnected and received what it missed

  @LIFE-2 @LIFE-3
  Scenario: Ten minutes in the background, then back to the same client
    Given alice's client has started and synchronized
    When alice's app goes to the background
    And bob posts a message to "general"
    And 10 minutes pass
    And alice's app returns to the foreground
    Then the same client resumed and received what it missed
    And no client was shut down without a logout

  @LIFE-2 @LIFE-5
  Scenario: Twenty background and foreground cycles keep one client and one socket
    Given alice's client has started and synchronized
    When alice's app goes to the background and returns 20 times, 10 seconds each time, while bob posts a message to "general"
    Then the same client resumed and received what it missed
    And the client kept one event socket
