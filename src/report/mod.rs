//! The compliance matrix and its writers.
//!
//! [`Report::build`] folds a [`SuiteRun`] into one row per catalog rule: the verdict, the
//! evidence from every scenario that judged it, and for a failure the minimal trace (the failing
//! scenario's journal up to the last entry the check pointed at, tokens redacted). Writers:
//! [`table`] for terminals, [`json`] for machines. [`Report::exit_code`] is the CI gate.
//!
//! Must not import: the harness, the properties, the reference client, the backend (a report is
//! built from a finished run's records and the catalog).

pub mod json;
pub mod table;

use serde::Serialize;

use crate::adapter::Profile;
use crate::checks::Finding;
use crate::journal::Entry;
use crate::rules::{CATALOG, Level, Rule, RuleId, RuleProfile, Verdict};
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
        .cloned()
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
        r.evidence.push("no check of this rule exists yet".into());
        return r;
    }
    // A violation anywhere fails the rule; the first one gives the trace.
    for s in &run.scenarios {
        for j in s.judgements.iter().filter(|j| j.rule == rule.id) {
            if let Finding::Violated { evidence, culprits } = &j.finding {
                r.evidence.push(format!("{}: {evidence}", s.scenario));
                if r.verdict != Verdict::Fail {
                    r.verdict = Verdict::Fail;
                    r.trace = Some(trace_of(s, culprits));
                }
            }
        }
    }
    if r.verdict == Verdict::Fail {
        return r;
    }
    let tagged = |s: &ScenarioRecord| s.rules.contains(&rule.id);
    let mut unprovoked = Vec::new();
    for check in rule.checks {
        // What held in a scenario that hit a harness or adapter error does not count: that
        // scenario's run cannot be vouched for (its violations still do).
        let held: Vec<(&ScenarioRecord, &str)> = run
            .scenarios
            .iter()
            .filter(|s| s.error.is_none())
            .flat_map(|s| {
                s.judgements
                    .iter()
                    .filter(|j| j.rule == rule.id && j.check == check.name && j.finding.is_held())
                    .map(move |j| (s, j.finding.evidence()))
            })
            .collect();
        // Evidence from the scenarios meant to provoke the rule, or the first that did.
        let shown: Vec<&(&ScenarioRecord, &str)> =
            match held.iter().filter(|(s, _)| tagged(s)).count() {
                0 => held.iter().take(1).collect(),
                _ => held.iter().filter(|(s, _)| tagged(s)).collect(),
            };
        for (s, evidence) in shown {
            r.evidence.push(format!("{}: {evidence}", s.scenario));
        }
        if held.is_empty() {
            unprovoked.push(check.name);
        }
    }
    let not_applicable = run
        .scenarios
        .iter()
        .filter(|s| tagged(s))
        .find_map(|s| s.not_applicable.clone());
    let errored: Vec<&ScenarioRecord> = run
        .scenarios
        .iter()
        .filter(|s| tagged(s) && s.error.is_some())
        .collect();
    for s in &errored {
        r.evidence.push(format!(
            "{}: not judged, harness error: {}",
            s.scenario,
            s.error.as_deref().unwrap_or_default()
        ));
    }
    r.verdict = match (unprovoked.is_empty(), not_applicable) {
        // A scenario built to provoke the rule could not go on: what other scenarios showed
        // does not stand in for it.
        (_, Some(why)) => {
            r.evidence.push(format!("not applicable: {why}"));
            Verdict::NotApplicable
        }
        // A scenario of the rule could not finish: the rule was not fully judged.
        (true, None) if errored.is_empty() => Verdict::Pass,
        (true, None) => Verdict::Untested,
        (false, None) => {
            r.evidence.push(if run.scenarios.iter().any(tagged) {
                format!("never provoked: {}", unprovoked.join("; "))
            } else if run.filtered {
                format!("no selected scenario provoked: {}", unprovoked.join("; "))
            } else {
                format!("no scenario provoked: {}", unprovoked.join("; "))
            });
            Verdict::Untested
        }
    };
    r
}

/// A scenario tagged with a rule that did not provoke it, or that asserted a check of that rule
/// its journal never provoked, although nothing else went wrong in it: the scenario failed to do
/// its job (a harness problem, never a PASS, whatever other scenarios showed).
fn unprovoked_tags(s: &ScenarioRecord) -> Vec<HarnessError> {
    let clean = !s.boundary
        && s.error.is_none()
        && s.not_applicable.is_none()
        && !s.judgements.iter().any(|j| j.finding.is_violated());
    if !clean {
        return Vec::new();
    }
    let error = |rule: RuleId, error: String| HarnessError {
        scenario: format!("{}: {}", s.feature, s.scenario),
        rules: vec![rule],
        error,
    };
    let mut errors = Vec::new();
    for rule in s.rules.iter().filter(|r| r.rule().is_implemented()) {
        let of_rule = || s.judgements.iter().filter(|j| j.rule == *rule);
        if !s.provoked(*rule) {
            errors.push(error(
                *rule,
                format!(
                    "the scenario is tagged @{rule} but never provoked it: {}",
                    of_rule()
                        .map(|j| j.finding.evidence())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
            continue;
        }
        for j in of_rule().filter(|j| {
            s.asserted.contains(&j.check) && matches!(j.finding, Finding::NotProvoked { .. })
        }) {
            errors.push(error(
                *rule,
                format!(
                    "the scenario is tagged @{rule} and asserts \"{}\", but never provoked it: {}",
                    j.check,
                    j.finding.evidence()
                ),
            ));
        }
    }
    errors
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
        errors.extend(run.scenarios.iter().flat_map(unprovoked_tags));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Judgement;
    use crate::secrets::Secrets;

    fn record(asserted: Vec<&'static str>, announced: Finding) -> ScenarioRecord {
        let rule: RuleId = "LIST-2".parse().expect("a catalog id");
        let mut judgements = vec![Judgement {
            rule,
            check: "the event channel is open before the list is requested",
            finding: Finding::held("open before the first page"),
        }];
        judgements.push(Judgement {
            rule,
            check: "conversations announced during the fetch are listed",
            finding: announced,
        });
        ScenarioRecord {
            feature: "lists".into(),
            scenario: "announced during the fetch".into(),
            rules: vec![rule],
            boundary: false,
            judgements,
            error: None,
            not_applicable: None,
            journal: Vec::new(),
            secrets: Secrets::default(),
            asserted,
        }
    }

    #[test]
    fn an_asserted_check_of_a_tagged_rule_that_was_never_provoked_is_a_harness_error() {
        let s = record(
            vec!["conversations announced during the fetch are listed"],
            Finding::not_provoked("no announcement was settled on before the last page"),
        );
        let errors = unprovoked_tags(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].error.contains("asserts \"conversations announced during the fetch are listed\", but never provoked it: no announcement"),
            "{}",
            errors[0].error
        );
        // Provoked and held: nothing to report.
        let s = record(
            vec!["conversations announced during the fetch are listed"],
            Finding::held("1 announced, listed"),
        );
        assert!(unprovoked_tags(&s).is_empty());
        // Not asserted: another check of the rule being provoked is enough for the scenario.
        let s = record(Vec::new(), Finding::not_provoked("nothing announced"));
        assert!(unprovoked_tags(&s).is_empty());
    }
}
