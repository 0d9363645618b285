//! Property campaigns: random lifecycles and random subscribed lists thrown at an adapter, with
//! every rule of the catalog as an invariant.
//!
//! [`lifecycle`] is a `proptest-state-machine` model of app and backend steps (starts, updates,
//! reads, gates, holds, other writers, stale replays, time); [`lists`] draws random lists, page
//! sizes, orders and changes between pages. Both drive any [`Adapter`](crate::Adapter) through
//! the harness, judge the journal after every step with [`rules::judge`], and shrink a violation
//! to a minimal case. [`CampaignResult`] says how a campaign ended.
//!
//! Must not import: the scenario runner, the report.

pub mod lifecycle;
pub mod lists;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, RngSeed, TestError,
};

use crate::adapter::Adapter;
use crate::harness::panics::{PANIC_MARKER, quiet_marked_panics, unmarked};
use crate::reference::Fault;
use crate::rules::{self, Judgement, RuleId};

pub use lifecycle::{Campaign, Step, replay, run_campaign};
pub use lists::{ListCampaign, ListCase};

/// Which rules a campaign holds the client to: every rule of the catalog when empty (the
/// reference client must hold them all), else these (a vendor's adapter: the rules its profile
/// requires).
fn assert_judged(judgements: &[Judgement], rules: &[RuleId]) {
    crate::harness::panics::assert_held(
        judgements
            .iter()
            .filter(|j| rules.is_empty() || rules.contains(&j.rule)),
    );
}

/// Plays a case: the violation (or harness error) it panicked with, if any.
fn outcome(play: impl FnOnce()) -> Result<(), String> {
    quiet_marked_panics();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(play)).map_err(|p| unmarked(p.as_ref()))
}

/// A feed of a campaign's progress: called with the number of cases played so far (shrinking
/// steps included), for a progress bar.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(u64) + Send + Sync>);

impl Progress {
    /// A feed calling `f`.
    pub fn new(f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn counter(progress: Option<&Progress>) -> impl Fn() + use<> {
        let played = AtomicU64::new(0);
        let progress = progress.cloned();
        move || {
            let n = played.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = &progress {
                (p.0)(n);
            }
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// A campaign's shrunk counterexample in replayable form: `{"lifecycle": [steps]}` or
/// `{"list": case}`, which `convo-tck properties --replay` plays again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counterexample {
    /// A lifecycle's steps.
    Lifecycle(Vec<Step>),
    /// A list case.
    List(ListCase),
}

impl Counterexample {
    /// Plays it again against `adapter`, judging `rules` (all when empty); the violation, if any.
    pub fn replay(&self, adapter: Arc<dyn Adapter>, rules: &[RuleId]) -> Result<(), String> {
        outcome(|| match self {
            Self::Lifecycle(steps) => lifecycle::play(&adapter, steps, rules),
            Self::List(case) => lists::play_judging(case, &adapter, rules),
        })
    }

    /// Its one-line JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How long it is: steps, or scheduled changes.
    pub fn len(&self) -> usize {
        match self {
            Self::Lifecycle(steps) => steps.len(),
            Self::List(case) => case.schedule.len(),
        }
    }

    /// Whether it has no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shard `index` (from 1) of `count` of a campaign of `cases` cases from `seed`: its share of
/// the cases (they differ by at most one) and its own seed (shard 1 of 1 is the campaign
/// itself), so shards on different machines draw different cases, the same ones every time.
pub fn shard(cases: u32, seed: u64, index: u32, count: u32) -> (u32, u64) {
    let count = count.max(1);
    let index = index.clamp(1, count);
    let share = cases / count + u32::from(index - 1 < cases % count);
    if count == 1 {
        return (share, seed);
    }
    // splitmix64 of (seed, index): well spread, and stable across versions.
    let mut z = seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (share, z ^ (z >> 31))
}

/// The outcome of a campaign whose counterexamples are `C` (a step sequence, a list case).
#[derive(Debug)]
#[must_use = "a campaign's result says whether it found a violation"]
pub enum CampaignResult<C> {
    /// Every case held every invariant.
    Held {
        /// Cases run.
        cases: u32,
    },
    /// The harness itself failed (not a rule violation).
    Error {
        /// What went wrong.
        message: String,
    },
    /// A case broke an invariant; this is the shrunk counterexample.
    Violated {
        /// The minimal failing case.
        counterexample: C,
        /// The violation (rule id first).
        message: String,
    },
}

impl<C: fmt::Debug> CampaignResult<C> {
    /// Panics unless every case held (for tests of the compliant reference client).
    pub fn expect_held(self) {
        match self {
            Self::Held { .. } => {}
            Self::Error { message } => panic!("the harness failed: {message}"),
            Self::Violated {
                counterexample,
                message,
            } => {
                panic!(
                    "the client broke an invariant: {message}\ncounterexample: {counterexample:#?}"
                )
            }
        }
    }

    /// The shrunk counterexample of a campaign that had to catch `fault` by one of the rules
    /// the catalog says it fails (or may fail); panics otherwise (for the self-check tests).
    pub fn expect_caught(self, fault: Fault) -> C {
        match self {
            Self::Held { cases } => panic!("{cases} random cases never caught fault `{fault}`"),
            Self::Error { message } => {
                panic!("the harness failed while hunting `{fault}`: {message}")
            }
            Self::Violated {
                counterexample,
                message,
            } => {
                let rules: Vec<_> = rules::targets_of(fault)
                    .into_iter()
                    .chain(rules::collateral_of(fault))
                    .collect();
                assert!(
                    rules.iter().any(|r| message.starts_with(r.as_str())),
                    "fault `{fault}` was caught by the wrong invariant: {message}\ncounterexample: {counterexample:?}"
                );
                eprintln!("{fault}: shrunk to {counterexample:?}\n  {message}");
                counterexample
            }
        }
    }
}

impl<C> CampaignResult<C> {
    /// The same result with its counterexample turned into another form.
    pub fn map<D>(self, f: impl FnOnce(C) -> D) -> CampaignResult<D> {
        match self {
            Self::Held { cases } => CampaignResult::Held { cases },
            Self::Error { message } => CampaignResult::Error { message },
            Self::Violated {
                counterexample,
                message,
            } => CampaignResult::Violated {
                counterexample: f(counterexample),
                message,
            },
        }
    }

    /// Sorts a proptest outcome into held, violated or harness error.
    fn from_run(cases: u32, result: Result<(), TestError<C>>) -> Self {
        match result {
            Ok(()) => Self::Held { cases },
            Err(TestError::Fail(reason, counterexample)) => {
                let message = reason
                    .to_string()
                    .trim_start_matches(PANIC_MARKER)
                    .trim()
                    .to_owned();
                if message.contains("harness error") {
                    Self::Error { message }
                } else {
                    Self::Violated {
                        counterexample,
                        message,
                    }
                }
            }
            Err(TestError::Abort(reason)) => Self::Error {
                message: format!("the campaign was aborted: {reason}"),
            },
        }
    }
}

/// The proptest configuration of a campaign: a fixed seed (same seed, same cases) and, when
/// given, a file where failing seeds are kept and replayed first.
fn config(cases: u32, seed: u64, persistence: Option<&'static str>, shrink_iters: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: persistence
            .map(|p| Box::new(FileFailurePersistence::Direct(p)) as Box<dyn FailurePersistence>),
        max_shrink_iters: shrink_iters,
        ..Config::default()
    }
}
