Feature: Messages are fetched only when asked, and only fetched ones report changes
  The JavaScript SDK does not fetch a conversation's messages when the conversation loads: new
  messages arrive as added events, and edits and removals are reported only for messages the app
  deliberately fetched.

  Background:
    Given the backend has the "basic" fixture

  @MSG-1
  Scenario: Loading and opening a conversation fetches none of its messages
    Given alice's client has started and synchronized
    When alice opens "general"
    And bob posts a message to "general"
    And the client settles
    Then no messages were fetched before the app asked for them
    And alice's client reported the new message in "general"

  @MSG-1
  Scenario: Each message of a burst is reported once
    Given alice's client has started and synchronized
    When alice opens "general"
    And bob posts 12 messages to "general"
    And the client settles
    Then alice's client reported each new message in "general" once

  @MSG-2
  Scenario: Edits and removals are reported for the fetched message and not for the other
    Given alice's client has started and synchronized
    When alice fetches the last 1 message of "general"
    And another participant edits message 1 of "general"
    And another participant edits message 0 of "general"
    And another participant removes message 1 of "general"
    And another participant removes message 0 of "general"
    And the client settles
    Then message changes were reported for fetched messages only

  @MSG-2
  Scenario: A message posted after the fetch is not a fetched message
    Given alice's client has started and synchronized
    When alice fetches the last 1 message of "general"
    And bob posts a message to "general"
    And the client settles
    And another participant edits message 2 of "general"
    And another participant edits message 1 of "general"
    And the client settles
    Then message changes were reported for fetched messages only
