//! Property campaigns: random lifecycles against a model, with the rule checks as invariants.
//!
//! [`Lifecycle`] is the pure model (a `proptest-state-machine` reference machine): it generates
//! sequences of app and backend steps (start, updates, reads, gates, holds, another writer's
//! changes, stale replays, time) and tracks just enough to keep them meaningful. [`LifecycleTest`]
//! drives the real system, a fresh backend and reference client per case, and after every step
//! checks the SYNC and UPD invariants against the journal and the backend's truth. With a fault
//! switched on, [`run_campaign`] must find a violation and shrink it to a short sequence.

pub mod lists;

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use serde_json::json;

use crate::Profile;
use crate::adapter::{Adapter, ClientSyncStatus, Command, Observation, Outcome, Target};
use crate::backend::Backend;
use crate::backend::fixture::Fixture;
use crate::backend::journal::{Entry, EntryKind, Journal, Secrets};
use crate::backend::state::{Gate, ObjectKey};
use crate::checks::{CheckOutcome, sync, updates};
use crate::clock::VirtualClock;
use crate::reference::{Config as ReferenceConfig, FaultSet, ReferenceAdapter};
use crate::rules::ids::{UPD_2, UPD_3};
use crate::scenario::Driver;
use crate::scenario::world::{PANIC_MARKER, quiet_marked_panics};

/// One step of a lifecycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start alice's client.
    Start,
    /// Alice writes `{"v": n}` to her user.
    UpdateUser(u8),
    /// Alice writes `{"v": n}` to the "general" conversation.
    UpdateConversation(u8),
    /// Alice reads "general" (checked against the backend when nothing is held).
    ReadConversation,
    /// Gate the last page of the subscribed list.
    GateLastPage,
    /// Open that gate.
    OpenLastPage,
    /// Gate the participants of "general" (it cannot finish synchronizing).
    GateParticipants,
    /// Open that gate.
    OpenParticipants,
    /// Hold Updated events of "general".
    Hold,
    /// Release them.
    Release,
    /// Another writer sets "general" to `{"other": n}`.
    OtherWriter(u8),
    /// Re-deliver the previous snapshot of "general".
    Stale,
    /// Let `n` seconds of virtual time pass.
    Advance(u8),
}

/// What the model knows.
#[derive(Clone, Debug, Default)]
pub struct Model {
    started: bool,
    held: bool,
    gated: bool,
    writes: u32,
}

/// The pure model of a lifecycle.
pub struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        if !state.started {
            return prop_oneof![
                4 => Just(Step::Start),
                1 => Just(Step::GateLastPage),
                1 => Just(Step::GateParticipants),
                1 => Just(Step::Hold),
                1 => (0u8..4).prop_map(Step::OtherWriter),
            ]
            .boxed();
        }
        prop_oneof![
            3 => (0u8..4).prop_map(Step::UpdateConversation),
            1 => (0u8..4).prop_map(Step::UpdateUser),
            3 => Just(Step::ReadConversation),
            1 => Just(Step::GateLastPage),
            2 => Just(Step::OpenLastPage),
            1 => Just(Step::GateParticipants),
            2 => Just(Step::OpenParticipants),
            2 => Just(Step::Hold),
            2 => Just(Step::Release),
            2 => (0u8..4).prop_map(Step::OtherWriter),
            1 => Just(Step::Stale),
            2 => (1u8..4).prop_map(Step::Advance),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        match step {
            Step::Start => !state.started,
            Step::UpdateUser(_)
            | Step::UpdateConversation(_)
            | Step::ReadConversation
            | Step::Advance(_) => state.started,
            Step::Stale => state.writes >= 1,
            _ => true,
        }
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match step {
            Step::Start => state.started = true,
            Step::Hold => state.held = true,
            Step::Release => state.held = false,
            Step::GateLastPage => state.gated = true,
            Step::OpenLastPage => state.gated = false,
            Step::UpdateConversation(_) | Step::OtherWriter(_) => state.writes += 1,
            _ => {}
        }
        state
    }
}

thread_local! {
    static FAULTS: RefCell<FaultSet> = RefCell::new(FaultSet::none());
}

/// The real system for one case: a backend, a reference client, a driver.
pub struct System {
    runtime: tokio::runtime::Runtime,
    clock: VirtualClock,
    journal: Journal,
    backend: Backend,
    driver: Option<Driver>,
    general: String,
    /// Updates issued while their object's events were held: the ones whose completion order
    /// is certain (without a hold, an early completion is a race the invariant could miss).
    held_updates: Vec<(u64, ObjectKey)>,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("System")
    }
}

fn harness_panic(e: impl fmt::Display) -> ! {
    panic!("{PANIC_MARKER} harness error: {e}")
}

fn violated(outcome: CheckOutcome) {
    if !outcome.passed() {
        panic!("{PANIC_MARKER} {} FAIL: {}", outcome.rule, outcome.evidence);
    }
}

impl System {
    fn new(faults: FaultSet) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| harness_panic(e));
        let clock = VirtualClock::new();
        let journal = Journal::new(clock.clone(), Secrets::default());
        let (backend, driver) = runtime.block_on(async {
            let backend = Backend::start(clock.clone(), journal.clone(), 7)
                .await
                .unwrap_or_else(|e| harness_panic(e));
            let fixture = Fixture::named("basic").unwrap_or_else(|e| harness_panic(e));
            backend.load_fixture("basic", &fixture);
            backend.seed_conversations("extra", 12, &["alice".to_owned()]);
            let adapter = ReferenceAdapter::new(ReferenceConfig {
                profile: Profile::Mobile,
                faults,
                ..ReferenceConfig::default()
            });
            let session = adapter.open().await.unwrap_or_else(|e| harness_panic(e));
            let driver = Driver::new(session, journal.clone(), Duration::from_secs(10));
            (backend, driver)
        });
        let general = backend
            .conversation_sid("general")
            .unwrap_or_else(|e| harness_panic(e));
        Self {
            runtime,
            clock,
            journal,
            backend,
            driver: Some(driver),
            general,
            held_updates: Vec::new(),
        }
    }

    fn driver(&mut self) -> &mut Driver {
        self.driver
            .as_mut()
            .unwrap_or_else(|| harness_panic("the driver is gone"))
    }

    fn settle(&mut self) {
        let driver = self
            .driver
            .as_mut()
            .unwrap_or_else(|| harness_panic("the driver is gone"));
        self.runtime
            .block_on(driver.settle())
            .unwrap_or_else(|e| harness_panic(e));
    }

    fn synced(&self, entries: &[Entry]) -> bool {
        entries.iter().any(|e| {
            matches!(
                &e.kind,
                EntryKind::Observation {
                    observation: Observation::ClientSync {
                        status: ClientSyncStatus::Completed
                    }
                }
            )
        })
    }

    fn submit_update(&mut self, target: Target, key: ObjectKey, n: u8, held: bool) {
        let id = self
            .driver()
            .submit(Command::UpdateAttributes {
                target,
                attributes: json!({ "v": n }),
            })
            .unwrap_or_else(|e| harness_panic(e));
        if held {
            self.held_updates.push((id, key));
        }
    }

    fn step(&mut self, step: Step, model: &Model) {
        let general = ObjectKey::Conversation(self.general.clone());
        match step {
            Step::Start => {
                let command = Command::Start {
                    identity: "alice".into(),
                    token_url: self.backend.token_url(),
                    rest_url: self.backend.rest_url().to_owned(),
                    events_url: self.backend.events_url().to_owned(),
                    storage_dir: None,
                    device_token: None,
                };
                let driver = self
                    .driver
                    .as_mut()
                    .unwrap_or_else(|| harness_panic("the driver is gone"));
                match self.runtime.block_on(driver.call(command)) {
                    Ok(Outcome::Ok(_)) => {}
                    other => harness_panic(format!("start failed: {other:?}")),
                }
            }
            Step::UpdateUser(n) => {
                self.submit_update(Target::User, ObjectKey::User("alice".into()), n, false)
            }
            Step::UpdateConversation(n) => self.submit_update(
                Target::Conversation {
                    sid: self.general.clone(),
                },
                general.clone(),
                n,
                model.held,
            ),
            Step::ReadConversation => {
                self.settle();
                let target = Target::Conversation {
                    sid: self.general.clone(),
                };
                let driver = self
                    .driver
                    .as_mut()
                    .unwrap_or_else(|| harness_panic("the driver is gone"));
                let read = self
                    .runtime
                    .block_on(driver.call(Command::ReadAttributes { target }))
                    .unwrap_or_else(|e| harness_panic(e));
                let entries = self.journal.snapshot();
                if !model.held && self.synced(&entries) {
                    let truth = self.backend.attributes(&general).unwrap_or_default();
                    let seq = self.journal.next_seq() - 1;
                    let rule = if entries.iter().any(|e| matches!(&e.kind, EntryKind::Control { action } if action.contains("stale"))) {
                        UPD_3
                    } else {
                        UPD_2
                    };
                    violated(updates::shows_backend_value(
                        rule,
                        "the read of \"general\"",
                        read.attributes(),
                        &truth,
                        seq,
                    ));
                }
            }
            Step::GateLastPage => self.backend.close_gate(Gate::LastListPage),
            Step::OpenLastPage => self.backend.open_gate(&Gate::LastListPage),
            Step::GateParticipants => self
                .backend
                .close_gate(Gate::Participants(self.general.clone())),
            Step::OpenParticipants => self
                .backend
                .open_gate(&Gate::Participants(self.general.clone())),
            Step::Hold => self.backend.hold(general),
            Step::Release => {
                self.backend.release(&general);
            }
            Step::OtherWriter(n) => {
                self.backend
                    .external_update(&general, json!({ "other": n }))
                    .unwrap_or_else(|e| harness_panic(e));
            }
            Step::Stale => {
                // Nothing to replay until the object has two snapshots; that is not an error.
                let _ = self.backend.deliver_stale(&general);
            }
            Step::Advance(s) => {
                let driver = self
                    .driver
                    .as_mut()
                    .unwrap_or_else(|| harness_panic("the driver is gone"));
                self.runtime
                    .block_on(driver.advance(&self.clock, Duration::from_secs(u64::from(s))))
                    .unwrap_or_else(|e| harness_panic(e));
            }
        }
        if model.started {
            self.settle();
        }
    }

    fn check(&self) {
        let entries = self.journal.snapshot();
        let Some(instance) = self.driver.as_ref().and_then(Driver::instance) else {
            return;
        };
        violated(sync::client_ops_wait_for_sync(&entries, &instance));
        violated(sync::conversation_ops_wait_for_sync(&entries, &instance));
        violated(sync::sync_status_only_moves_forward(&entries));
        for (id, key) in &self.held_updates {
            let replied = entries
                .iter()
                .any(|e| matches!(&e.kind, EntryKind::Reply { id: r, .. } if r == id));
            if replied {
                violated(updates::update_completed_after_event(
                    &entries,
                    &instance,
                    *id,
                    &key.to_string(),
                    "an update",
                ));
            }
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            self.runtime.block_on(driver.close());
        }
    }
}

/// Drives the real system through a model's steps.
pub struct LifecycleTest;

impl StateMachineTest for LifecycleTest {
    type SystemUnderTest = System;
    type Reference = Lifecycle;

    fn init_test(_: &Model) -> System {
        System::new(FAULTS.with(|f| f.borrow().clone()))
    }

    fn apply(mut system: System, model: &Model, step: Step) -> System {
        system.step(step, model);
        system
    }

    fn check_invariants(system: &System, _: &Model) {
        system.check();
    }
}

/// The outcome of a campaign whose counterexamples are `C` (a step sequence, a list case).
#[derive(Debug)]
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
                    "the reference client broke an invariant: {message}\ncounterexample: {counterexample:#?}"
                )
            }
        }
    }

    /// The shrunk counterexample of a campaign that had to catch `fault` by one of its rules
    /// (targets or declared collateral); panics otherwise (for the self-check tests).
    pub fn expect_caught(self, fault: crate::Fault) -> C {
        match self {
            Self::Held { cases } => panic!("{cases} random cases never caught fault `{fault}`"),
            Self::Error { message } => {
                panic!("the harness failed while hunting `{fault}`: {message}")
            }
            Self::Violated {
                counterexample,
                message,
            } => {
                let rules = fault.targets().iter().chain(fault.collateral());
                assert!(
                    rules.clone().any(|r| message.contains(r.as_str())),
                    "fault `{fault}` was caught by the wrong invariant: {message}"
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
                let message = reason.to_string();
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

/// How to run a campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// Planted bugs of the reference client.
    pub faults: FaultSet,
    /// Random lifecycles to try.
    pub cases: u32,
    /// Longest lifecycle, in steps.
    pub max_steps: usize,
    /// Seed of the case generator: same seed, same cases.
    pub seed: u64,
    /// Where failing seeds are persisted (and replayed first next time).
    pub persistence: Option<&'static str>,
}

impl Default for Campaign {
    fn default() -> Self {
        Self {
            faults: FaultSet::none(),
            cases: 64,
            max_steps: 30,
            seed: 1,
            persistence: None,
        }
    }
}

/// Runs a campaign of random lifecycles against the reference client.
pub fn run_campaign(campaign: &Campaign) -> CampaignResult<Vec<Step>> {
    let Campaign {
        faults,
        cases,
        max_steps,
        seed,
        persistence,
    } = campaign.clone();
    quiet_marked_panics();
    FAULTS.with(|f| *f.borrow_mut() = faults);
    let config = Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: persistence.map(|p| {
            Box::new(FileFailurePersistence::Direct(p))
                as Box<dyn proptest::test_runner::FailurePersistence>
        }),
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = Lifecycle::sequential_strategy(1..max_steps);
    let result = runner.run(&strategy, |(initial, steps, seen)| {
        LifecycleTest::test_sequential(config.clone(), initial, steps, seen);
        Ok(())
    });
    CampaignResult::from_run(
        cases,
        result.map_err(|e| match e {
            TestError::Fail(r, (_, steps, _)) => TestError::Fail(r, steps),
            TestError::Abort(r) => TestError::Abort(r),
        }),
    )
}

/// Replays one step sequence (e.g. a shrunk counterexample); returns the violation, if any.
pub fn replay(faults: FaultSet, steps: Vec<Step>) -> Result<(), String> {
    quiet_marked_panics();
    FAULTS.with(|f| *f.borrow_mut() = faults);
    std::panic::catch_unwind(|| {
        LifecycleTest::test_sequential(Config::default(), Model::default(), steps, None)
    })
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "a step panicked".into())
            .trim_start_matches(PANIC_MARKER)
            .trim()
            .to_owned()
    })
}
