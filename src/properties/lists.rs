//! The list property: random subscribed lists, page sizes, orders and schedules of list changes
//! between pages; every rule holds, in particular the client's final list equals the backend's,
//! each conversation once.
//!
//! The harness walks the client through the list one page at a time (every later page is gated
//! until the client has settled on the previous one), so each scheduled change is seen by the
//! client before the next page is served, whatever the machine's timing: the same case always
//! plays out the same way, and a planted bug is found and shrunk deterministically.

use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::json;

use super::{CampaignResult, config};
use crate::adapter::{Adapter, Command, Outcome};
use crate::backend::{At, Gate, ListAction, ListOrder};
use crate::checks::History;
use crate::harness::Harness;
use crate::harness::panics::{harness_panic, quiet_marked_panics};
use crate::journal::{Checkpoint, HarnessEntry};
use crate::rules::{self, RuleId};

/// A change to the list, aimed at an existing conversation by position where it needs one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new conversation, announced.
    Insert,
    /// A new conversation, not announced, then updated by another writer (the update overtakes the add).
    InsertQuietlyThenTouch,
    /// `conversation_added` again for an existing one.
    Announce(usize),
    /// Move an existing one to the front of the by-activity order.
    Bump(usize),
    /// Delete one.
    Remove(usize),
    /// Delete one while the list index still shows it until the last page.
    RemoveLagging(usize),
}

/// One random case.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListCase {
    /// Conversations alice has at the start.
    pub conversations: usize,
    /// The most the backend serves per page.
    pub page_size: u32,
    /// Serve by last activity instead of by creation.
    pub by_activity: bool,
    /// Changes, each made at a point of the page walk.
    pub schedule: Vec<(At, Change)>,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Insert),
        Just(Change::InsertQuietlyThenTouch),
        (0usize..300).prop_map(Change::Announce),
        (0usize..300).prop_map(Change::Bump),
        (0usize..300).prop_map(Change::Remove),
        (0usize..300).prop_map(Change::RemoveLagging),
    ]
}

/// Cases with up to `max_conversations` conversations and up to 6 scheduled changes.
///
/// The list length is drawn as whole pages plus a remainder, after the page size, so that
/// shrinking the page size first and the page count next leads to the smallest list that still
/// fails (proptest shrinks a tuple's parts in order and never goes back).
pub fn cases(max_conversations: usize) -> impl Strategy<Value = ListCase> {
    (
        1u32..=50,
        0usize..=12,
        0usize..50,
        any::<bool>(),
        vec((0u32..6, any::<bool>(), change()), 0..6),
    )
        .prop_map(move |(page_size, pages, extra, by_activity, schedule)| {
            let schedule = schedule
                .into_iter()
                .map(|(page, before, change)| {
                    (
                        if before {
                            At::BeforePage(page)
                        } else {
                            At::AfterPage(page)
                        },
                        change,
                    )
                })
                .collect();
            let size = page_size as usize;
            let conversations = (pages * size + extra % size).min(max_conversations);
            ListCase {
                conversations,
                page_size,
                by_activity,
                schedule,
            }
        })
}

/// The backend action for a scheduled change; `k` numbers the new conversations.
fn action(change: &Change, n: usize, k: usize) -> Vec<ListAction> {
    let participants = vec!["alice".to_owned(), "bob".to_owned()];
    // An action on an existing conversation, picked by position; none when the list is empty.
    let on = |i: &usize, make: fn(String) -> ListAction| -> Vec<ListAction> {
        (n > 0)
            .then(|| make(format!("c-{}", i % n)))
            .into_iter()
            .collect()
    };
    match change {
        Change::Insert => vec![ListAction::Insert {
            name: format!("new-{k}"),
            participants,
        }],
        Change::InsertQuietlyThenTouch => vec![
            ListAction::InsertQuietly {
                name: format!("new-{k}"),
                participants,
            },
            ListAction::Touch {
                name: format!("new-{k}"),
                attributes: json!({ "touched": true }),
            },
        ],
        Change::Announce(i) => on(i, |name| ListAction::Announce { name }),
        Change::Bump(i) => on(i, |name| ListAction::Bump { name }),
        Change::Remove(i) => on(i, |name| ListAction::Remove { name }),
        Change::RemoveLagging(i) => on(i, |name| ListAction::RemoveLagging { name }),
    }
}

/// Plays one case against `adapter`; panics on a violation of any rule.
pub fn play(case: &ListCase, adapter: &Arc<dyn Adapter>) {
    play_judging(case, adapter, &[]);
}

/// Plays one case against `adapter`; panics on a violation of a `judged` rule (any when empty).
pub fn play_judging(case: &ListCase, adapter: &Arc<dyn Adapter>, judged: &[RuleId]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| harness_panic(e));
    runtime.block_on(async {
        let mut h = Harness::builder(adapter.clone())
            .seed(11)
            .start()
            .await
            .unwrap_or_else(|e| harness_panic(e));
        let alice = "alice".to_owned();
        h.backend
            .seed_conversations("c", case.conversations, &[alice.clone(), "bob".to_owned()]);
        h.backend.set_max_page_size(case.page_size);
        h.backend.set_list_order(if case.by_activity {
            ListOrder::Activity
        } else {
            ListOrder::Creation
        });
        for (k, (at, change)) in case.schedule.iter().enumerate() {
            for a in action(change, case.conversations, k) {
                h.backend.schedule(*at, a);
            }
        }
        let from = |page| Gate::ListPagesFrom {
            user: alice.clone(),
            page,
        };
        h.backend.close_gate(from(1));
        // Creation must not wait for the list (LIST-1 judges it while later pages are gated).
        let start = h.start_command(&alice);
        let _ = h.driver.submit(start).unwrap_or_else(|e| harness_panic(e));
        h.driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        // Walk the client through the list one page at a time.
        let walked = |h: &Harness| {
            History::new(&h.journal.snapshot())
                .final_page_of(&alice)
                .is_some()
        };
        let mut page = 1;
        while !walked(&h) && page <= 400 {
            h.backend.open_gate(&from(page));
            h.backend.close_gate(from(page + 1));
            h.advance(Duration::from_secs(1))
                .await
                .unwrap_or_else(|e| harness_panic(e));
            page += 1;
        }
        h.backend.open_gate(&from(page));
        h.driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        // Changes after the final page (or after pages the list never had) happen now.
        if h.backend.fire_pending() > 0 {
            h.driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        }
        h.journal.note(
            None,
            HarnessEntry::Checkpoint(Checkpoint::SubscribedList {
                user: alice.clone(),
                conversations: h.backend.subscribed(&alice).into_iter().collect(),
            }),
        );
        match h.driver.call(Command::ListConversations).await {
            Ok(Outcome::Ok(_)) => {}
            other => harness_panic(format!("list_conversations failed: {other:?}")),
        }
        let entries = h.journal.snapshot();
        h.close().await;
        super::assert_judged(&rules::judge(&entries), judged);
    });
}

/// Runs `cases` random list cases (up to `max_conversations` each) against `adapter`.
pub fn run_list_campaign(
    adapter: Arc<dyn Adapter>,
    cases_to_run: u32,
    max_conversations: usize,
    seed: u64,
    persistence: Option<&'static str>,
) -> CampaignResult<ListCase> {
    run_list_campaign_with(
        adapter,
        &ListCampaign {
            cases: cases_to_run,
            max_conversations,
            seed,
            persistence,
            ..ListCampaign::default()
        },
    )
}

/// How to run a list campaign.
#[derive(Clone, Debug)]
pub struct ListCampaign {
    /// Random lists to try.
    pub cases: u32,
    /// Most conversations in a list.
    pub max_conversations: usize,
    /// Seed of the case generator.
    pub seed: u64,
    /// Where failing seeds are persisted.
    pub persistence: Option<&'static str>,
    /// The rules held as invariants (all when empty).
    pub rules: Vec<RuleId>,
    /// Fed the number of cases played so far.
    pub progress: Option<super::Progress>,
}

impl Default for ListCampaign {
    fn default() -> Self {
        Self {
            cases: 32,
            max_conversations: 120,
            seed: 1,
            persistence: None,
            rules: Vec::new(),
            progress: None,
        }
    }
}

/// Runs a list campaign against `adapter`.
pub fn run_list_campaign_with(
    adapter: Arc<dyn Adapter>,
    campaign: &ListCampaign,
) -> CampaignResult<ListCase> {
    quiet_marked_panics();
    let mut runner = TestRunner::new(config(
        campaign.cases,
        campaign.seed,
        campaign.persistence,
        1024,
    ));
    let tick = super::Progress::counter(campaign.progress.as_ref());
    let result = runner.run(&cases(campaign.max_conversations), |case| {
        tick();
        play_judging(&case, &adapter, &campaign.rules);
        Ok(())
    });
    CampaignResult::from_run(campaign.cases, result)
}
