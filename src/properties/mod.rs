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

use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, RngSeed, TestError,
};

use crate::harness::panics::PANIC_MARKER;
use crate::reference::Fault;
use crate::rules;

pub use lifecycle::{Campaign, Step, replay, run_campaign};

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
