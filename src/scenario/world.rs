//! The cucumber `World`: everything one scenario owns, created fresh for each scenario.
//!
//! The runner's `before` hook fills it with a [`ScenarioEnv`] (a virtual clock, a journal, a
//! backend on fresh loopback ports and an adapter session); steps act on it and record
//! [`CheckOutcome`]s; the `after` hook turns it into a [`ScenarioRecord`] and closes everything.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::adapter::{Adapter, AdapterError, Hello};
use crate::backend::journal::{Entry, InstanceId, Journal, Secrets};
use crate::backend::{Backend, BackendError};
use crate::checks::CheckOutcome;
use crate::clock::VirtualClock;
use crate::rules::RuleId;

use super::driver::Driver;

/// What every scenario of one run shares.
pub(crate) struct RunContext {
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) seed: u64,
    pub(crate) safety: Duration,
    pub(crate) records: Mutex<Vec<ScenarioRecord>>,
    pub(crate) hello: Mutex<Option<Hello>>,
}

/// What one scenario left behind, for the report.
#[derive(Clone, Debug)]
pub struct ScenarioRecord {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// Rule ids it is tagged with.
    pub rules: Vec<RuleId>,
    /// Tagged `@boundary`: an edge case a compliant client must survive, not a provocation that
    /// a planted bug must fail.
    pub boundary: bool,
    /// Check outcomes, in order.
    pub outcomes: Vec<CheckOutcome>,
    /// A failure of the harness or the adapter itself (not a rule violation).
    pub error: Option<String>,
    /// Why the scenario's rules did not apply, if they did not.
    pub not_applicable: Option<String>,
    /// The full journal.
    pub journal: Vec<Entry>,
    /// The run's tokens, for redaction when the journal is written out.
    pub secrets: Secrets,
}

/// The per-scenario resources.
pub(crate) struct ScenarioEnv {
    pub(crate) clock: VirtualClock,
    pub(crate) journal: Journal,
    pub(crate) backend: Backend,
    pub(crate) driver: Driver,
    /// Commands left in flight, by the name the steps gave them.
    pub(crate) pending: HashMap<String, u64>,
}

/// Why a step stopped.
#[derive(Debug)]
pub(crate) enum StepFail {
    /// A check failed (already recorded).
    Check(String),
    /// The harness or the adapter failed.
    Harness(String),
    /// The adapter lacks a capability the scenario needs: its rules are N/A here.
    NotApplicable(String),
}

impl From<AdapterError> for StepFail {
    fn from(e: AdapterError) -> Self {
        Self::Harness(e.to_string())
    }
}

impl From<BackendError> for StepFail {
    fn from(e: BackendError) -> Self {
        Self::Harness(e.to_string())
    }
}

pub(crate) type StepResult = Result<(), StepFail>;

/// The marker that starts every panic message a step raises (the runner silences these).
pub(crate) const PANIC_MARKER: &str = "[convo-tck]";

/// Silences the panics raised on purpose with [`PANIC_MARKER`] (cucumber and proptest report
/// them); others print as usual.
pub(crate) fn quiet_marked_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !msg.starts_with(PANIC_MARKER) {
                previous(info);
            }
        }));
    });
}

/// One scenario's world.
#[derive(Default)]
pub(crate) struct TckWorld {
    pub(crate) ctx: Option<Arc<RunContext>>,
    pub(crate) env: Option<ScenarioEnv>,
    pub(crate) rules: Vec<RuleId>,
    pub(crate) boundary: bool,
    pub(crate) outcomes: Vec<CheckOutcome>,
    pub(crate) error: Option<String>,
    pub(crate) not_applicable: Option<String>,
}

impl fmt::Debug for TckWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TckWorld")
            .field("rules", &self.rules)
            .field("outcomes", &self.outcomes.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl cucumber::World for TckWorld {
    type Error = Infallible;

    async fn new() -> Result<Self, Infallible> {
        Ok(Self::default())
    }
}

impl TckWorld {
    /// Builds the scenario's backend and adapter session.
    pub(crate) async fn set_up(&mut self, ctx: Arc<RunContext>, rules: Vec<RuleId>) {
        self.rules = rules;
        self.ctx = Some(ctx.clone());
        let clock = VirtualClock::new();
        let secrets = Secrets::default();
        let journal = Journal::new(clock.clone(), secrets);
        let backend = match Backend::start(clock.clone(), journal.clone(), ctx.seed).await {
            Ok(b) => b,
            Err(e) => {
                self.error = Some(format!("backend failed to start: {e}"));
                return;
            }
        };
        let session = match ctx.adapter.open().await {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let driver = Driver::new(session, journal.clone(), ctx.safety);
        let hello = driver.hello().clone();
        if hello.protocol != crate::adapter::PROTOCOL_VERSION {
            self.error = Some(format!(
                "adapter speaks protocol {} but the harness speaks {}",
                hello.protocol,
                crate::adapter::PROTOCOL_VERSION
            ));
        }
        *ctx.hello.lock().unwrap_or_else(|p| p.into_inner()) = Some(hello);
        self.env = Some(ScenarioEnv {
            clock,
            journal,
            backend,
            driver,
            pending: HashMap::new(),
        });
    }

    /// Closes the adapter and the backend; returns the record.
    pub(crate) async fn tear_down(
        &mut self,
        feature: &str,
        scenario: &str,
        step_error: Option<String>,
    ) -> ScenarioRecord {
        let (journal, secrets) = match self.env.take() {
            Some(env) => {
                let journal = env.journal.snapshot();
                let secrets = env.journal.secrets().clone();
                env.driver.close().await;
                drop(env.backend);
                (journal, secrets)
            }
            None => (Vec::new(), Secrets::default()),
        };
        let error = self.error.take().or_else(|| {
            // A step failure that recorded no failing check is the harness's (or adapter's) problem.
            let recorded = self.outcomes.iter().any(|o| !o.passed());
            step_error.filter(|_| !recorded)
        });
        ScenarioRecord {
            feature: feature.to_owned(),
            scenario: scenario.to_owned(),
            rules: self.rules.clone(),
            boundary: self.boundary,
            outcomes: std::mem::take(&mut self.outcomes),
            error,
            not_applicable: self.not_applicable.take(),
            journal,
            secrets,
        }
    }

    /// Whether the remaining steps should do nothing (set-up failed or the scenario is N/A).
    pub(crate) fn skipping(&self) -> bool {
        self.not_applicable.is_some()
    }

    /// The scenario's resources, or a harness failure if set-up failed.
    pub(crate) fn env(&mut self) -> Result<&mut ScenarioEnv, StepFail> {
        if let Some(e) = &self.error {
            return Err(StepFail::Harness(e.clone()));
        }
        self.env
            .as_mut()
            .ok_or_else(|| StepFail::Harness("the scenario has no backend or adapter".into()))
    }

    /// The current client instance, or a harness failure if none was reported.
    pub(crate) fn instance(&mut self) -> Result<InstanceId, StepFail> {
        self.env()?.driver.instance().ok_or_else(|| {
            StepFail::Harness("the adapter never reported a client_created observation".into())
        })
    }

    /// Of `candidates`, the rules this scenario is tagged with; a step judging none of them is a
    /// mistake in the feature file.
    pub(crate) fn scoped(&self, candidates: &[RuleId]) -> Result<Vec<RuleId>, StepFail> {
        let r: Vec<RuleId> = candidates
            .iter()
            .copied()
            .filter(|c| self.rules.contains(c))
            .collect();
        if r.is_empty() {
            return Err(StepFail::Harness(format!(
                "this step judges {} but the scenario is tagged with none of them",
                candidates
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        Ok(r)
    }

    /// Waits for the adapter to be quiet; N/A for adapters that cannot say so.
    pub(crate) async fn settle(&mut self) -> StepResult {
        let env = self.env()?;
        if !env.driver.hello().capabilities.settle {
            return Err(StepFail::NotApplicable(
                "the adapter cannot settle, so the kit cannot tell that something did not happen"
                    .into(),
            ));
        }
        env.driver.settle().await?;
        Ok(())
    }

    /// Lets `d` of virtual time pass for the backend and the adapter; N/A without virtual time.
    pub(crate) async fn advance(&mut self, d: Duration) -> StepResult {
        let env = self.env()?;
        if !env.driver.hello().capabilities.virtual_time {
            return Err(StepFail::NotApplicable(
                "the adapter's timers do not run on virtual time, so the scenario's time spans cannot pass".into(),
            ));
        }
        if !env.driver.hello().capabilities.settle {
            return Err(StepFail::NotApplicable("the adapter cannot settle".into()));
        }
        env.driver.advance(&env.clock, d).await?;
        Ok(())
    }

    /// Records a check outcome; a failure stops the scenario.
    pub(crate) fn check(&mut self, mut outcome: CheckOutcome) -> StepResult {
        if let Some(env) = &self.env {
            outcome.evidence = env.journal.secrets().redact(&outcome.evidence);
        }
        let failed = !outcome.passed();
        let msg = format!("{} {}: {}", outcome.rule, outcome.verdict, outcome.evidence);
        self.outcomes.push(outcome);
        if failed {
            Err(StepFail::Check(msg))
        } else {
            Ok(())
        }
    }

    /// Ends a step: a failure becomes the panic cucumber reports.
    pub(crate) fn finish_step(&mut self, result: StepResult) {
        match result {
            Ok(()) => {}
            Err(StepFail::NotApplicable(why)) => self.not_applicable = Some(why),
            Err(StepFail::Check(msg)) => panic!("{PANIC_MARKER} check failed: {msg}"),
            Err(StepFail::Harness(msg)) => {
                self.error.get_or_insert(msg.clone());
                panic!("{PANIC_MARKER} harness error: {msg}")
            }
        }
    }
}
