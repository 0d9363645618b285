Feature: The subscribed list merges pages and live events
  The JavaScript SDK resolves client creation before the subscribed conversations are fetched,
  so an app must listen for added conversations before it asks for the paginated list, and must
  de-duplicate, since a conversation can arrive both from an event and from a page. The backend
  changes the list at exact points of the client's walk through the pages: between pages, before
  the first and after the last, in the stable order by creation and in the order by last activity
  where a bump moves a conversation to the front and shifts the pages behind it.

  Background:
    Given the backend serves at most 10 conversations per page

  @LIST-1 @LIST-4
  Scenario: Client creation completes while the last page of the list is still unavailable
    Given alice has 25 conversations with bob
    And the last page of alice's conversation list is gated
    When alice's client starts without waiting
    And the client settles
    Then the client was created before the list was fully fetched
    When the gate on the last page of alice's conversation list is opened
    And 3 seconds pass
    Then alice's list matches the backend

  @LIST-1 @LIST-4
  Scenario: Client creation completes while the first page of the list is still unavailable
    Given alice has 25 conversations with bob
    And the pages of alice's conversation list are gated from page 1
    When alice's client starts without waiting
    And the client settles
    Then the client was created before the list was fully fetched
    When the gate on alice's conversation list from page 1 is opened
    And 3 seconds pass
    Then alice's list matches the backend

  @LIST-4
  Scenario: A conversation removed and added again is listed again
    Given alice has 25 conversations with bob
    When alice's client starts
    And "c-5" is removed
    And the client settles
    And "c-5" is restored and announced
    And the client settles
    Then alice's list matches the backend

  @LIST-3 @LIST-4
  Scenario: A conversation inserted and announced between page 1 and page 2 is listed once
    Given alice has 25 conversations with bob
    And after page 1 is served, "newcomer" is created for alice and bob and announced
    When alice's client starts
    Then alice's list matches the backend

  @LIST-2 @LIST-4
  Scenario: In the by-activity order a conversation added during the fetch is only in the event
    Given the subscribed list is ordered by last activity
    And alice has 25 conversations with bob
    And the last page of alice's conversation list is gated
    And after page 1 is served, "newcomer" is created for alice and bob and announced
    When alice's client starts without waiting
    And the client settles
    And the gate on the last page of alice's conversation list is opened
    And 3 seconds pass
    Then alice's list matches the backend

  @LIST-3 @LIST-4
  Scenario: Added events before, between and after the pages do not duplicate a conversation
    Given alice has 25 conversations with bob
    And before page 1 is served, "c-3" is announced as added
    And after page 2 is served, "c-3" is announced as added
    When alice's client starts
    And "c-3" is announced as added
    And the client settles
    Then alice's list matches the backend

  @LIST-3 @LIST-4
  Scenario: An update that arrives before its conversation was added adds it, and the add does not again
    Given the subscribed list is ordered by last activity
    And alice has 25 conversations with bob
    And after page 1 is served, "stranger" is created for alice and bob without an announcement
    And after page 1 is served, "stranger" is updated by another writer
    And after page 2 is served, "stranger" is announced as added
    When alice's client starts
    Then alice's list matches the backend

  @LIST-4
  Scenario: A bump that shifts the pages in the by-activity order loses no conversation
    Given the subscribed list is ordered by last activity
    And alice has 25 conversations with bob
    And after page 1 is served, "c-2" is bumped to the front
    When alice's client starts
    Then alice's list matches the backend

  @LIST-3 @LIST-4
  Scenario: "Load more" after the last conversation of page 1 was bumped repeats no conversation
    Given the subscribed list is ordered by last activity
    And alice has 25 conversations with bob
    And after page 1 is served, "c-15" is bumped to the front
    When alice's client starts
    Then alice's list matches the backend

  @LIST-4
  Scenario: A conversation removed after its page was served is gone from the list
    Given alice has 25 conversations with bob
    And after page 1 is served, "c-5" is removed
    When alice's client starts
    Then alice's list matches the backend

  @LIST-4
  Scenario: A removed conversation that a later page still lists is not brought back
    Given alice has 25 conversations with bob
    And the last page of alice's conversation list is gated
    And after page 1 is served, "c-22" is removed while the list still shows it
    When alice's client starts
    And the gate on the last page of alice's conversation list is opened
    And 3 seconds pass
    Then alice's list matches the backend

  @LIST-4
  Scenario: Every page of a long list is fetched
    Given alice has 1000 conversations with bob
    When alice's client starts
    Then alice's list matches the backend

  # Boundaries: a compliant client must not trip over them; the checks themselves are proven
  # by the scenarios above, which planted bugs do fail.
  @LIST-3 @LIST-4 @boundary
  Scenario Outline: Lists of <n> conversations, around the page size of 10
    Given alice has <n> conversations with bob
    When alice's client starts
    Then alice's list matches the backend

    Examples:
      | n  |
      | 0  |
      | 1  |
      | 10 |
      | 11 |
