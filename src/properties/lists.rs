//! The list property: random subscribed lists, page sizes, orders and schedules of list changes
//! between pages; the client's final list must equal the backend's, each conversation once.
//!
//! The harness walks the client through the list one page at a time (every later page is gated
//! until the client has settled on the previous one), so each scheduled change is seen by the
//! client before the next page is served, whatever the machine's timing: the same case always
//! plays out the same way, and a planted bug is found and shrunk deterministically.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestRunner};
use serde_json::json;

use super::CampaignResult;
use crate::Profile;
use crate::adapter::{Adapter, Command, Outcome};
use crate::backend::journal::{Endpoint, EntryKind, Journal, Secrets};
use crate::backend::state::{Gate, ListOrder};
use crate::backend::{At, Backend, ListAction};
use crate::checks::{CheckOutcome, lists};
use crate::clock::VirtualClock;
use crate::reference::{Config as ReferenceConfig, FaultSet, ReferenceAdapter};
use crate::scenario::Driver;
use crate::scenario::world::{PANIC_MARKER, quiet_marked_panics};

/// A change to the list, aimed at an existing conversation by position where it needs one.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug)]
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

fn harness_panic(e: impl std::fmt::Display) -> ! {
    panic!("{PANIC_MARKER} harness error: {e}")
}

fn violated(outcome: CheckOutcome) {
    if !outcome.passed() {
        panic!("{PANIC_MARKER} {} FAIL: {}", outcome.rule, outcome.evidence);
    }
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

/// Plays one case against the reference client with `faults`; panics on a violation.
pub fn play(case: &ListCase, faults: &FaultSet) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| harness_panic(e));
    runtime.block_on(async {
        let clock = VirtualClock::new();
        let journal = Journal::new(clock.clone(), Secrets::default());
        let backend = Backend::start(clock.clone(), journal.clone(), 11)
            .await
            .unwrap_or_else(|e| harness_panic(e));
        backend.seed_conversations(
            "c",
            case.conversations,
            &["alice".to_owned(), "bob".to_owned()],
        );
        backend.set_max_page_size(case.page_size);
        backend.set_list_order(if case.by_activity {
            ListOrder::Activity
        } else {
            ListOrder::Creation
        });
        for (k, (at, change)) in case.schedule.iter().enumerate() {
            for a in action(change, case.conversations, k) {
                backend.schedule(*at, a);
            }
        }
        backend.close_gate(Gate::ListPagesFrom(1));
        let adapter = ReferenceAdapter::new(ReferenceConfig {
            profile: Profile::Js,
            faults: faults.clone(),
            ..ReferenceConfig::default()
        });
        let session = adapter.open().await.unwrap_or_else(|e| harness_panic(e));
        let mut driver = Driver::new(session, journal.clone(), Duration::from_secs(10));
        let start = Command::Start {
            identity: "alice".into(),
            token_url: backend.token_url(),
            rest_url: backend.rest_url().to_owned(),
            events_url: backend.events_url().to_owned(),
            storage_dir: None,
            device_token: None,
        };
        // Creation must not wait for the list (LIST-1): pages after the first are gated now.
        let start_id = driver.submit(start).unwrap_or_else(|e| harness_panic(e));
        driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        let held_back = journal.snapshot().iter().any(|e| {
            matches!(
                &e.kind,
                EntryKind::Request {
                    endpoint: Endpoint::UserConversations { .. },
                    status: 503,
                    ..
                }
            )
        });
        if held_back {
            violated(lists::created_before_full_list(
                &journal.snapshot(),
                driver.instance().as_ref(),
                start_id,
            ));
        }
        // Walk the client through the list one page at a time.
        let served_last = |journal: &Journal| {
            journal.snapshot().iter().any(|e| {
                matches!(
                    &e.kind,
                    EntryKind::Request {
                        endpoint: Endpoint::UserConversations { last: true, .. },
                        status: 200,
                        ..
                    }
                )
            })
        };
        let mut page = 1;
        while !served_last(&journal) && page <= 400 {
            backend.open_gate(&Gate::ListPagesFrom(page));
            backend.close_gate(Gate::ListPagesFrom(page + 1));
            driver
                .advance(&clock, Duration::from_secs(1))
                .await
                .unwrap_or_else(|e| harness_panic(e));
            page += 1;
        }
        backend.open_gate(&Gate::ListPagesFrom(page));
        driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        // Changes after the final page (or after pages the list never had) happen now.
        if backend.fire_pending() > 0 {
            driver.settle().await.unwrap_or_else(|e| harness_panic(e));
        }
        let instance = driver
            .instance()
            .unwrap_or_else(|| harness_panic("no client instance"));
        let reply = driver
            .call(Command::ListConversations)
            .await
            .unwrap_or_else(|e| harness_panic(e));
        let Outcome::Ok(body) = reply else {
            harness_panic(format!("list_conversations failed: {reply:?}"))
        };
        let list = lists::listed(&body);
        let truth: BTreeSet<String> = backend.subscribed("alice");
        let entries = journal.snapshot();
        driver.close().await;
        violated(lists::each_conversation_once(&entries, &instance, &list));
        violated(lists::announced_during_fetch_are_listed(
            &entries, &instance, &list, &truth,
        ));
        violated(lists::list_equals_truth(&entries, &instance, &list, &truth));
    });
}

/// Runs `cases` random list cases (up to `max_conversations` each) with `faults`.
pub fn run_list_campaign(
    faults: FaultSet,
    cases_to_run: u32,
    max_conversations: usize,
    seed: u64,
    persistence: Option<&'static str>,
) -> CampaignResult<ListCase> {
    quiet_marked_panics();
    let config = Config {
        cases: cases_to_run,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: persistence.map(|p| {
            Box::new(FileFailurePersistence::Direct(p))
                as Box<dyn proptest::test_runner::FailurePersistence>
        }),
        max_shrink_iters: 1024,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&cases(max_conversations), |case| {
        play(&case, &faults);
        Ok(())
    });
    CampaignResult::from_run(cases_to_run, result)
}
