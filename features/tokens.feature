Feature: Access tokens last hours, are renewed in place, and stay secret
  A token authorizes the app's use of the service (and what it is billed for). The app asks its
  token generator for lifetimes of hours, at most a day; a token living under three minutes does
  not work at all, so the client must say so instead of fetching another in a loop. Three
  minutes before a token expires the event channel warns the client, which fetches a new one
  and hands it to the running client on the open channel; a token that expired while the app
  slept is renewed and the same client resumes. A valid token kept in the app's storage starts
  the client without waiting for the generator. Tokens never travel in a URL and never reach a
  log. Time is virtual: hours and days pass in milliseconds.

  Background:
    Given the backend has the "basic" fixture

  @TOKEN-1
  Scenario: A 2-minute token is reported as an error and not fetched again
    Given the token generator issues 2-minute tokens
    When alice's client starts without waiting
    And the client settles
    And 2 minutes pass
    Then the short token was reported and not fetched again

  @TOKEN-2 @TOKEN-6
  Scenario: The app asks for hours-long tokens and keeps them out of URLs and logs
    Given alice's client has started and synchronized
    When 5 hours pass
    And bob posts a message to "general"
    And the client settles
    Then every token request asked for a lifetime of hours, at most a day
    And no token travelled in a URL or appeared in a log

  @TOKEN-3 @UPD-1
  Scenario: A 1-hour token crosses its about-to-expire point while an update's event is held
    Given the token generator issues 1-hour tokens
    And alice's client has started and synchronized
    And the backend holds the Updated events of "general"
    When alice updates the attributes of "general" to {"topic": "renewal"} without waiting
    And the client settles
    And 58 minutes pass
    Then alice's update of "general" has not completed
    When the backend releases the held events of "general"
    And the client settles
    And 5 minutes pass
    Then alice's update of "general" completed after its Updated event was delivered
    When alice updates the attributes of "general" to {"topic": "after renewal"} without waiting
    And the client settles
    Then the client handed its channel a new token before the old one expired
    And no client was shut down without a logout

  @TOKEN-4 @LIFE-2
  Scenario: A device asleep for 2 days renews its token and resumes the same client
    Given alice's client has started and synchronized
    When alice's app goes to the background
    And 2 days pass
    And bob posts a message to "general"
    And alice's app returns to the foreground
    And 1 minute passes
    Then the same client came back with a fresh token
    And the same client resumed and received what it missed

  @TOKEN-5
  Scenario: A restart with a valid stored token does not wait for the token generator
    Given alice's client has started and synchronized
    When alice's app is killed
    And 10 minutes pass
    And alice's client starts
    Then the restart used the stored token only while it was valid

  @TOKEN-5
  Scenario: A restart after the stored token expired never presents the expired token
    Given alice's client has started and synchronized
    When alice's app is killed
    And 5 hours pass
    And alice's client starts
    Then the restart used the stored token only while it was valid
