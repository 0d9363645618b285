//! The compliance matrix and its writers.
//!
//! [`Report::build`] folds a [`SuiteRun`] into one row per catalog rule: the verdict, the
//! evidence from every scenario that judged it, and for a failure the minimal trace (the failing
//! scenario's journal up to the last entry the check pointed at, tokens redacted). Writers:
//! [`table`] for terminals, [`json`] for machines. [`Report::exit_code`] is the CI gate.

pub mod json;
pub mod table;

use crate::backend::journal::Entry;
use serde::Serialize;

use crate::adapter::Profile;
use crate::checks::Verdict;
use crate::rules::{CATALOG, Level, Rule, RuleId, RuleProfile};
use crate::scenario::{ScenarioRecord, SuiteRun};

/// Exit code: no MUST rule of the profile failed.
pub const EXIT_PASS: i32 = 0;
/// Exit code: a MUST rule of the profile failed.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: the harness or the adapter failed.
pub const EXIT_ERROR: i32 = 2;

/// The journal of a failing scenario, cut after the last entry that shows the failure.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// Journal sequence numbers the check pointed at.
    pub culprits: Vec<u64>,
    /// Journal entries, redacted.
    pub entries: Vec<Entry>,
}

/// One row of the matrix.
#[derive(Clone, Debug, Serialize)]
pub struct RuleRow {
    /// Rule id.
    pub id: RuleId,
    /// Level.
    pub level: Level,
    /// The profile the rule binds.
    pub profile: RuleProfile,
    /// Whether this run's profile must follow it (only required MUST failures gate).
    pub required: bool,
    /// Verdict.
    pub verdict: Verdict,
    /// What was seen, one line per check, prefixed with the scenario.
    pub evidence: Vec<String>,
    /// For a failure: the minimal trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// Rule text.
    pub summary: &'static str,
    /// Where to look when it fails.
    pub hint: &'static str,
}

/// A scenario the harness or adapter could not complete.
#[derive(Clone, Debug, Serialize)]
pub struct HarnessError {
    /// Scenario name.
    pub scenario: String,
    /// Rules it would have judged.
    pub rules: Vec<RuleId>,
    /// What went wrong.
    pub error: String,
}

/// Verdict counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Rules that passed.
    pub pass: usize,
    /// Rules that failed.
    pub fail: usize,
    /// Rules not applicable.
    pub not_applicable: usize,
    /// Rules not tested.
    pub untested: usize,
    /// Failed MUST rules the profile requires.
    pub required_must_failures: usize,
    /// Scenarios run.
    pub scenarios: usize,
    /// Scenarios that hit a harness or adapter error.
    pub harness_errors: usize,
    /// The process exit code this report gives.
    pub exit_code: i32,
}

/// The compliance matrix of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Adapter name.
    pub adapter: String,
    /// Profile judged.
    pub profile: Profile,
    /// Seed used.
    pub seed: u64,
    /// One row per rule, in catalog order.
    pub rules: Vec<RuleRow>,
    /// Harness/adapter errors.
    pub errors: Vec<HarnessError>,
    /// Counts and exit code.
    pub summary: Summary,
}

fn trace_of(record: &ScenarioRecord, culprits: &[u64]) -> Trace {
    let cut = culprits.iter().max().copied().unwrap_or(u64::MAX);
    let entries = record
        .journal
        .iter()
        .filter(|e| e.seq <= cut)
        .map(|e| record.secrets.redact_entry(e))
        .collect();
    Trace {
        feature: record.feature.clone(),
        scenario: record.scenario.clone(),
        culprits: culprits.to_vec(),
        entries,
    }
}

fn row(rule: &'static Rule, run: &SuiteRun, profile: Profile) -> RuleRow {
    let mut r = RuleRow {
        id: rule.id,
        level: rule.level,
        profile: rule.profile,
        required: rule.profile.requires(profile),
        verdict: Verdict::Untested,
        evidence: Vec::new(),
        trace: None,
        summary: rule.summary,
        hint: rule.hint,
    };
    if let Some(why) = rule.not_judged {
        r.verdict = Verdict::NotApplicable;
        r.evidence.push(format!("not judged: {why}"));
        return r;
    }
    if !rule.is_implemented() {
        r.evidence.push("no scenario checks this rule yet".into());
        return r;
    }
    let tagged: Vec<&ScenarioRecord> = run
        .scenarios
        .iter()
        .filter(|s| s.rules.contains(&rule.id))
        .collect();
    if tagged.is_empty() {
        r.evidence.push(if run.filtered {
            "no scenario of this rule was selected".into()
        } else {
            "no scenario is tagged with this rule".into()
        });
        return r;
    }
    let mut passed = false;
    let mut errored = false;
    let mut not_applicable = None;
    for s in &tagged {
        if let Some(why) = &s.not_applicable {
            not_applicable.get_or_insert_with(|| why.clone());
        }
        for o in s.outcomes.iter().filter(|o| o.rule == rule.id) {
            r.evidence
                .push(s.secrets.redact(&format!("{}: {}", s.scenario, o.evidence)));
            match o.verdict {
                Verdict::Fail if r.verdict != Verdict::Fail => {
                    r.verdict = Verdict::Fail;
                    r.trace = Some(trace_of(s, &o.culprits));
                }
                Verdict::Pass => passed = true,
                _ => {}
            }
        }
        if let Some(e) = &s.error {
            errored = true;
            r.evidence.push(
                s.secrets
                    .redact(&format!("{}: not judged, harness error: {e}", s.scenario)),
            );
        }
    }
    if r.verdict != Verdict::Fail {
        r.verdict = match (passed, not_applicable) {
            (_, Some(why)) if !passed => {
                r.evidence.push(format!("not applicable: {why}"));
                Verdict::NotApplicable
            }
            // A scenario of the rule could not finish: the rule was not fully judged.
            (true, _) if !errored => Verdict::Pass,
            _ => Verdict::Untested,
        };
    }
    r
}

impl Report {
    /// Folds a run into the matrix, judged by the profile the adapter declared.
    pub fn build(run: &SuiteRun) -> Self {
        let profile = run.profile;
        let rules: Vec<RuleRow> = CATALOG.iter().map(|r| row(r, run, profile)).collect();
        let mut errors: Vec<HarnessError> = run
            .scenarios
            .iter()
            .filter_map(|s| {
                s.error.as_ref().map(|e| HarnessError {
                    scenario: format!("{}: {}", s.feature, s.scenario),
                    rules: s.rules.clone(),
                    error: s.secrets.redact(e),
                })
            })
            .collect();
        if run.scenarios.is_empty() {
            errors.push(HarnessError {
                scenario: "(selection)".into(),
                rules: Vec::new(),
                error: "the selection ran no scenario: nothing was judged".into(),
            });
        }
        let count = |v: Verdict| rules.iter().filter(|r| r.verdict == v).count();
        let required_must_failures = rules
            .iter()
            .filter(|r| r.verdict == Verdict::Fail && r.required && r.level == Level::Must)
            .count();
        let harness_errors = errors.len() + run.parse_errors;
        let exit_code = if harness_errors > 0 {
            EXIT_ERROR
        } else if required_must_failures > 0 {
            EXIT_FAIL
        } else {
            EXIT_PASS
        };
        let summary = Summary {
            pass: count(Verdict::Pass),
            fail: count(Verdict::Fail),
            not_applicable: count(Verdict::NotApplicable),
            untested: count(Verdict::Untested),
            required_must_failures,
            scenarios: run.scenarios.len(),
            harness_errors,
            exit_code,
        };
        Self {
            adapter: run.adapter.clone(),
            profile,
            seed: run.seed,
            rules,
            errors,
            summary,
        }
    }

    /// The row of `id`.
    pub fn rule(&self, id: RuleId) -> &RuleRow {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .expect("every catalog rule has a row")
    }

    /// The exit code this report gives: 0 pass, 1 a required MUST failed, 2 harness error.
    pub fn exit_code(&self) -> i32 {
        self.summary.exit_code
    }
}
