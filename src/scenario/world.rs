//! The cucumber `World`: everything one scenario owns, created fresh for each scenario.
//!
//! The runner's `before` hook sets a scene up ([`Harness`]: a backend on fresh loopback ports and
//! an adapter session); steps act on it; `Then` steps assert the checks they name on the journal
//! so far. The `after` hook judges the whole journal against every rule of the catalog and turns
//! the world into a [`ScenarioRecord`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::params::{Actor, BadParameter, Operation};
use crate::adapter::{Adapter, AdapterError, Hello};
use crate::backend::BackendError;
use crate::checks::{Check, Finding, History};
use crate::harness::panics::PANIC_MARKER;
use crate::harness::{Harness, RequestId};
use crate::journal::Entry;
use crate::rules::{self, Judgement, RuleId};
use crate::secrets::Secrets;
use crate::wire::InstanceId;

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
    /// Rule ids it is tagged with: the rules it is meant to provoke.
    pub rules: Vec<RuleId>,
    /// Tagged `@boundary`: an edge case a compliant client must survive, not a provocation that
    /// a planted bug must fail.
    pub boundary: bool,
    /// What every check of every rule found in the scenario's journal.
    pub judgements: Vec<Judgement>,
    /// A failure of the harness or the adapter itself (not a rule violation).
    pub error: Option<String>,
    /// Why the scenario could not go on, if the adapter lacks what it needs.
    pub not_applicable: Option<String>,
    /// The full journal.
    pub journal: Vec<Entry>,
    /// The run's tokens, for redaction when anything is written out.
    pub secrets: Secrets,
    /// The names of the checks its `Then` steps asserted: of the rules it is tagged with, these
    /// are the checks it promises to provoke.
    pub asserted: Vec<&'static str>,
}

impl ScenarioRecord {
    /// The record of a scenario that never got a world.
    pub(crate) fn lost(feature: String, scenario: String, error: String) -> Self {
        Self {
            feature,
            scenario,
            rules: Vec::new(),
            boundary: false,
            judgements: Vec::new(),
            error: Some(error),
            not_applicable: None,
            journal: Vec::new(),
            secrets: Secrets::default(),
            asserted: Vec::new(),
        }
    }

    /// Whether some check of `rule` was provoked in this scenario (held or violated).
    pub fn provoked(&self, rule: RuleId) -> bool {
        self.judgements
            .iter()
            .any(|j| j.rule == rule && !matches!(j.finding, Finding::NotProvoked { .. }))
    }
}

/// Why a step stopped.
#[derive(Debug)]
pub(crate) enum StepFail {
    /// A check failed (the final judging records it).
    Check(String),
    /// The harness or the adapter failed.
    Harness(String),
    /// The adapter lacks a capability the scenario needs: it cannot go on.
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

impl From<BadParameter> for StepFail {
    fn from(e: BadParameter) -> Self {
        Self::Harness(e.to_string())
    }
}

pub(crate) type StepResult = Result<(), StepFail>;

/// One scenario's world.
#[derive(Default)]
pub(crate) struct TckWorld {
    pub(crate) ctx: Option<Arc<RunContext>>,
    pub(crate) harness: Option<Harness>,
    /// Commands left in flight, by the operation step text named.
    pub(crate) pending: HashMap<Operation, RequestId>,
    /// A `start` left in flight.
    pub(crate) start: Option<RequestId>,
    /// Whose client the adapter is running.
    pub(crate) client: Option<Actor>,
    pub(crate) rules: Vec<RuleId>,
    pub(crate) boundary: bool,
    pub(crate) error: Option<String>,
    pub(crate) not_applicable: Option<String>,
    /// A step stopped the scenario on a violated check.
    check_failed: bool,
    /// The checks `Then` steps asserted so far.
    asserted: Vec<&'static str>,
}

impl fmt::Debug for TckWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TckWorld")
            .field("rules", &self.rules)
            .field("client", &self.client)
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
    /// Sets the scenario's scene up.
    pub(crate) async fn set_up(&mut self, ctx: Arc<RunContext>, rules: Vec<RuleId>) {
        self.rules = rules;
        self.ctx = Some(ctx.clone());
        let started = Harness::builder(ctx.adapter.clone())
            .seed(ctx.seed)
            .safety(ctx.safety)
            .start()
            .await;
        match started {
            Ok(h) => {
                *ctx.hello.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(h.driver.hello().clone());
                self.harness = Some(h);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Closes the scene, judges its journal against every rule; returns the record.
    pub(crate) async fn tear_down(
        &mut self,
        feature: &str,
        scenario: &str,
        step_error: Option<String>,
    ) -> ScenarioRecord {
        let (journal, secrets, closing) = match self.harness.take() {
            Some(h) => {
                let recorded = h.journal.clone();
                let mut journal = recorded.snapshot();
                let secrets = h.journal.secrets().clone();
                let closing = h.close().await;
                // What the adapter logged while it closed (its last stderr lines) is kept:
                // TOKEN-6 reads the log. Nothing else recorded after the scene ended is judged.
                let seen = journal.last().map_or(0, |e| e.seq + 1);
                journal.extend(recorded.snapshot().into_iter().filter(|e| {
                    e.seq >= seen
                        && matches!(
                            e.kind,
                            crate::journal::EntryKind::Harness(
                                crate::journal::HarnessEntry::Log { .. }
                            )
                        )
                }));
                (journal, secrets, closing)
            }
            None => (Vec::new(), Secrets::default(), None),
        };
        let mut judgements = rules::judge(&journal);
        for j in &mut judgements {
            redact(&mut j.finding, &secrets);
        }
        let unattributed = History::new(&journal).unattributed_requests();
        let anonymous = (!unattributed.is_empty()).then(|| {
            format!(
                "{} request(s) reached the backend without naming a client instance (X-Convo-Client) and with a token no client instance used, so no rule can judge them: {}",
                unattributed.len(),
                unattributed
                    .iter()
                    .take(3)
                    .map(|e| e.summary())
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        });
        // A protocol error the adapter made is the scenario's error, also one made at close.
        let error = self
            .error
            .take()
            .or_else(|| closing.map(|e| format!("{e}")));
        let error = error.or(anonymous).or_else(|| {
            // A step failure that was not a violated check is the harness's (or adapter's).
            step_error.filter(|_| !self.check_failed)
        });
        ScenarioRecord {
            feature: feature.to_owned(),
            scenario: scenario.to_owned(),
            rules: self.rules.clone(),
            boundary: self.boundary,
            judgements,
            error: error.map(|e| secrets.redact(&e)),
            not_applicable: self.not_applicable.take(),
            journal,
            secrets,
            asserted: std::mem::take(&mut self.asserted),
        }
    }

    /// Whether the remaining steps should do nothing (the scenario cannot go on).
    pub(crate) fn skipping(&self) -> bool {
        self.not_applicable.is_some()
    }

    /// The scene, or a harness failure if set-up failed.
    pub(crate) fn harness(&mut self) -> Result<&mut Harness, StepFail> {
        if let Some(e) = &self.error {
            return Err(StepFail::Harness(e.clone()));
        }
        self.harness
            .as_mut()
            .ok_or_else(|| StepFail::Harness("the scenario has no backend or adapter".into()))
    }

    /// The instance of `actor`'s client: a step that names an actor acts as that actor.
    pub(crate) fn client_of(&mut self, actor: &Actor) -> Result<InstanceId, StepFail> {
        match &self.client {
            Some(a) if a == actor => {}
            Some(a) => {
                return Err(StepFail::Harness(format!(
                    "the step acts as {actor}, but the adapter runs {a}'s client"
                )));
            }
            None => {
                return Err(StepFail::Harness(format!(
                    "the step acts as {actor}, but no client was started"
                )));
            }
        }
        self.harness()?.driver.instance().ok_or_else(|| {
            StepFail::Harness("the adapter never reported a client_created observation".into())
        })
    }

    /// The request id of the operation an earlier step issued.
    pub(crate) fn pending(&self, op: &Operation) -> Result<RequestId, StepFail> {
        self.pending
            .get(op)
            .copied()
            .ok_or_else(|| StepFail::Harness(format!("no earlier step issued the {op}")))
    }

    /// Whether an earlier step issued `op`.
    pub(crate) fn issued(&self, op: &Operation) -> StepResult {
        self.pending(op).map(|_| ())
    }

    /// Waits for the adapter to be quiet; the scenario cannot go on with an adapter that cannot
    /// say so.
    pub(crate) async fn settle(&mut self) -> StepResult {
        let h = self.harness()?;
        if !h.driver.hello().capabilities.settle {
            return Err(StepFail::NotApplicable(
                "the adapter cannot settle, so the kit cannot tell that something did not happen"
                    .into(),
            ));
        }
        h.driver.settle().await?;
        Ok(())
    }

    /// Lets `d` of virtual time pass for the backend and the adapter.
    pub(crate) async fn advance(&mut self, d: Duration) -> StepResult {
        let h = self.harness()?;
        let caps = &h.driver.hello().capabilities;
        if !caps.virtual_time {
            return Err(StepFail::NotApplicable(
                "the adapter's timers do not run on virtual time, so the scenario's time spans cannot pass".into(),
            ));
        }
        if !caps.settle {
            return Err(StepFail::NotApplicable("the adapter cannot settle".into()));
        }
        h.advance(d).await?;
        Ok(())
    }

    /// Asserts `checks` on the journal so far: a violated one stops the scenario here. (Whether
    /// the scenario provoked what it is tagged with is judged on the whole journal at the end:
    /// a misbehaving client can keep a provocation from happening, and then its violation, not
    /// the scenario, is what the report shows.) An asserted check of a rule the scenario is
    /// tagged with is a promise: if it is never provoked, the scenario failed to do its job.
    pub(crate) fn expect(&mut self, checks: &[&'static Check]) -> StepResult {
        for c in checks {
            if !self.asserted.contains(&c.name) {
                self.asserted.push(c.name);
            }
        }
        let h = self.harness()?;
        let entries = h.journal.snapshot();
        let secrets = h.journal.secrets().clone();
        let judgements = rules::judge_only(&entries, checks);
        match judgements.iter().find(|j| j.finding.is_violated()) {
            Some(j) => {
                self.check_failed = true;
                Err(StepFail::Check(secrets.redact(&format!(
                    "{} FAIL ({}): {}",
                    j.rule,
                    j.check,
                    j.finding.evidence()
                ))))
            }
            None => Ok(()),
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

fn redact(finding: &mut Finding, secrets: &Secrets) {
    match finding {
        Finding::Held { evidence } | Finding::Violated { evidence, .. } => {
            *evidence = secrets.redact(evidence);
        }
        Finding::NotProvoked { why } => *why = secrets.redact(why),
    }
}
