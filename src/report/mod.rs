//! The compliance matrix and its writers.
//!
//! [`Report::build`] folds a [`SuiteRun`] into one row per catalog rule: the verdict, the
//! evidence from every scenario that judged it, and for a failure the minimal trace (the failing
//! scenario's journal up to the last entry the check pointed at, tokens redacted) and the command
//! that replays each failing scenario. The report keeps every scenario's outcome (what each
//! check found, without the journal), so the partial reports of a sharded run can be merged
//! ([`merge`]) into exactly the matrix one run would have given. Writers: [`table`] for
//! terminals, [`json`] for machines, [`junit`] for CI dashboards, [`markdown`] for pull-request
//! comments and job summaries. [`Report::exit_code`] is the CI gate.
//!
//! Must not import: the harness, the properties, the reference client, the backend (a report is
//! built from a finished run's records and the catalog).

pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod table;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use merge::{MergeError, merge};

use crate::adapter::Profile;
use crate::checks::Finding;
use crate::journal::Entry;
use crate::rules::{CATALOG, Level, Rule, RuleId, RuleProfile, Verdict};
use crate::scenario::{Partition, ScenarioRecord, SuiteRun};

/// Exit code: no MUST rule of the profile failed.
pub const EXIT_PASS: i32 = 0;
/// Exit code: a MUST rule of the profile failed.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: the harness or the adapter failed.
pub const EXIT_ERROR: i32 = 2;

/// The journal of a failing scenario, cut after the last entry that shows the failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
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
    /// For a failure: the command that replays each scenario that failed it, first failure first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replay: Vec<String>,
    /// Rule text.
    pub summary: &'static str,
    /// Where to look when it fails.
    pub hint: &'static str,
}

impl RuleRow {
    /// The level as the matrix shows it: in parentheses when this run's profile does not
    /// require the rule.
    pub fn level_shown(&self) -> String {
        if self.required {
            self.level.to_string()
        } else {
            format!("({})", self.level)
        }
    }

    /// A failure's details as text lines, for the writers that show it as text: the evidence,
    /// where to look, the replay commands, and the trace with `>>` on the entries the check
    /// pointed at.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.evidence.iter().map(|e| format!("- {e}")).collect();
        lines.push(format!("if this fails, check: {}", self.hint));
        lines.extend(self.replay.iter().map(|c| format!("rerun: {c}")));
        if let Some(t) = &self.trace {
            lines.push(format!(
                "trace of \"{}\" ({}), >> marks what the check pointed at:",
                t.scenario, t.feature
            ));
            lines.extend(t.entries.iter().map(|e| t.marked(e)));
        }
        lines
    }
}

impl Trace {
    /// An entry's summary, marked `>>` when the check pointed at it.
    pub fn marked(&self, e: &Entry) -> String {
        let mark = if self.culprits.contains(&e.seq) {
            ">>"
        } else {
            "  "
        };
        format!("{mark} {}", e.summary())
    }
}

/// A scenario the harness or adapter could not complete.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct HarnessError {
    /// Scenario name.
    pub scenario: String,
    /// Rules it would have judged.
    pub rules: Vec<RuleId>,
    /// What went wrong.
    pub error: String,
    /// The command that replays the scenario, when the error belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
}

/// Verdict counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
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
    /// Scenarios that hit a harness or adapter error (and feature files that did not parse).
    pub harness_errors: usize,
    /// The process exit code this report gives.
    pub exit_code: i32,
}

/// What one check found in one scenario, as the report keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckOutcome {
    /// The rule.
    pub rule: RuleId,
    /// The check's name.
    pub check: String,
    /// `held`, `violated` or `not_provoked`.
    pub finding: FindingKind,
    /// What was seen (or, not provoked, what did not happen).
    pub evidence: String,
    /// For a violation: the journal entries that show it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<u64>,
}

/// How a check ended in one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Provoked, and it held.
    Held,
    /// Provoked, and broken.
    Violated,
    /// Nothing gave the client the chance to break it.
    NotProvoked,
}

/// What one scenario showed, without its journal: the matrix is a function of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioOutcome {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// The rules it is tagged with (meant to provoke).
    pub rules: Vec<RuleId>,
    /// Tagged `@boundary`.
    #[serde(default)]
    pub boundary: bool,
    /// A harness or adapter failure, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it could not go on, if the adapter lacks what it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
    /// The checks its `Then` steps asserted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asserted: Vec<String>,
    /// What every check found.
    pub checks: Vec<CheckOutcome>,
    /// The command that replays exactly this scenario.
    pub replay: String,
}

impl ScenarioOutcome {
    fn of(record: &ScenarioRecord, replay: String) -> Self {
        let checks = record
            .judgements
            .iter()
            .map(|j| {
                let (finding, culprits) = match &j.finding {
                    Finding::Held { .. } => (FindingKind::Held, Vec::new()),
                    Finding::Violated { culprits, .. } => (FindingKind::Violated, culprits.clone()),
                    Finding::NotProvoked { .. } => (FindingKind::NotProvoked, Vec::new()),
                };
                CheckOutcome {
                    rule: j.rule,
                    check: j.check.to_owned(),
                    finding,
                    evidence: j.finding.evidence().to_owned(),
                    culprits,
                }
            })
            .collect();
        Self {
            feature: record.feature.clone(),
            scenario: record.scenario.clone(),
            rules: record.rules.clone(),
            boundary: record.boundary,
            error: record.error.as_deref().map(|e| record.secrets.redact(e)),
            not_applicable: record.not_applicable.clone(),
            asserted: record.asserted.iter().map(|&a| a.to_owned()).collect(),
            checks,
            replay,
        }
    }

    /// Whether some check of `rule` was provoked here (held or violated).
    pub fn provoked(&self, rule: RuleId) -> bool {
        self.checks
            .iter()
            .any(|c| c.rule == rule && c.finding != FindingKind::NotProvoked)
    }

    fn tagged(&self, rule: RuleId) -> bool {
        self.rules.contains(&rule)
    }

    /// `feature: scenario`, as errors name a scenario.
    pub fn title(&self) -> String {
        format!("{}: {}", self.feature, self.scenario)
    }
}

/// The compliance matrix of one run.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Report {
    /// Adapter name.
    pub adapter: String,
    /// Profile judged.
    pub profile: Profile,
    /// Seed used.
    pub seed: u64,
    /// The shard this report covers, if the run was split (`--partition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// Whether scenarios were selected by tags, rules or name.
    pub filtered: bool,
    /// Feature files that failed to parse.
    pub parse_errors: usize,
    /// How many scenarios the selection holds in all shards (this report's share when it is a
    /// shard: `summary.scenarios`).
    pub selected: usize,
    /// One row per rule, in catalog order.
    pub rules: Vec<RuleRow>,
    /// Harness/adapter errors.
    pub errors: Vec<HarnessError>,
    /// Every scenario's outcome, sorted by feature and name.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Counts and exit code.
    pub summary: Summary,
}

/// The command that reruns exactly one scenario of a run: the client's arguments, the
/// scenario's name and the run's seed.
pub fn replay_command(client_args: &[String], scenario: &str, seed: u64) -> String {
    let mut words = vec!["convo-tck".to_owned(), "run".to_owned()];
    words.extend(client_args.iter().cloned());
    words.extend([
        "--scenario".to_owned(),
        scenario.to_owned(),
        "--seed".to_owned(),
        seed.to_string(),
    ]);
    shell_words(&words)
}

/// Words as one command line a POSIX shell reads back into the same words.
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            // `try_quote` refuses only a NUL, which no argument can carry anyway.
            shlex::try_quote(w).map_or_else(|_| w.replace('\0', ""), |q| q.into_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
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

/// What the rows are computed from besides the scenario outcomes.
pub(crate) struct Context {
    pub(crate) profile: Profile,
    /// Selected by tags, rules, name or shard: "no *selected* scenario provoked".
    pub(crate) selected: bool,
}

/// The trace of `rule`'s first violation, in `scenario` (an index into the outcomes), pointing
/// at `culprits`; `None` when it cannot be had (it is then omitted).
pub(crate) type TraceOf<'a> = dyn Fn(RuleId, usize, &[u64]) -> Option<Trace> + 'a;

fn row(
    rule: &'static Rule,
    scenarios: &[ScenarioOutcome],
    ctx: &Context,
    trace: &TraceOf<'_>,
) -> RuleRow {
    let mut r = RuleRow {
        id: rule.id,
        level: rule.level,
        profile: rule.profile,
        required: rule.profile.requires(ctx.profile),
        verdict: Verdict::Untested,
        evidence: Vec::new(),
        trace: None,
        replay: Vec::new(),
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
    for (i, s) in scenarios.iter().enumerate() {
        for c in s
            .checks
            .iter()
            .filter(|c| c.rule == rule.id && c.finding == FindingKind::Violated)
        {
            r.evidence.push(format!("{}: {}", s.scenario, c.evidence));
            if r.verdict != Verdict::Fail {
                r.verdict = Verdict::Fail;
                r.trace = trace(rule.id, i, &c.culprits);
            }
            if !r.replay.contains(&s.replay) {
                r.replay.push(s.replay.clone());
            }
        }
    }
    if r.verdict == Verdict::Fail {
        return r;
    }
    let mut unprovoked = Vec::new();
    for check in rule.checks {
        // What held in a scenario that hit a harness or adapter error does not count: that
        // scenario's run cannot be vouched for (its violations still do).
        let held: Vec<(&ScenarioOutcome, &str)> = scenarios
            .iter()
            .filter(|s| s.error.is_none())
            .flat_map(|s| {
                s.checks
                    .iter()
                    .filter(|c| {
                        c.rule == rule.id && c.check == check.name && c.finding == FindingKind::Held
                    })
                    .map(move |c| (s, c.evidence.as_str()))
            })
            .collect();
        // Evidence from the scenarios meant to provoke the rule, or the first that did.
        let shown: Vec<&(&ScenarioOutcome, &str)> =
            match held.iter().filter(|(s, _)| s.tagged(rule.id)).count() {
                0 => held.iter().take(1).collect(),
                _ => held.iter().filter(|(s, _)| s.tagged(rule.id)).collect(),
            };
        for (s, evidence) in shown {
            r.evidence.push(format!("{}: {evidence}", s.scenario));
        }
        if held.is_empty() {
            unprovoked.push(check.name);
        }
    }
    let not_applicable = scenarios
        .iter()
        .filter(|s| s.tagged(rule.id))
        .find_map(|s| s.not_applicable.clone());
    let errored: Vec<&ScenarioOutcome> = scenarios
        .iter()
        .filter(|s| s.tagged(rule.id) && s.error.is_some())
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
            r.evidence
                .push(if scenarios.iter().any(|s| s.tagged(rule.id)) {
                    format!("never provoked: {}", unprovoked.join("; "))
                } else if ctx.selected {
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
fn unprovoked_tags(s: &ScenarioOutcome) -> Vec<HarnessError> {
    let clean = !s.boundary
        && s.error.is_none()
        && s.not_applicable.is_none()
        && !s.checks.iter().any(|c| c.finding == FindingKind::Violated);
    if !clean {
        return Vec::new();
    }
    let error = |rule: RuleId, error: String| HarnessError {
        scenario: s.title(),
        rules: vec![rule],
        error,
        replay: Some(s.replay.clone()),
    };
    let mut errors = Vec::new();
    for rule in s.rules.iter().filter(|r| r.rule().is_implemented()) {
        let of_rule = || s.checks.iter().filter(|c| c.rule == *rule);
        if !s.provoked(*rule) {
            errors.push(error(
                *rule,
                format!(
                    "the scenario is tagged @{rule} but never provoked it: {}",
                    of_rule()
                        .map(|c| c.evidence.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
            continue;
        }
        for c in of_rule()
            .filter(|c| s.asserted.contains(&c.check) && c.finding == FindingKind::NotProvoked)
        {
            errors.push(error(
                *rule,
                format!(
                    "the scenario is tagged @{rule} and asserts \"{}\", but never provoked it: {}",
                    c.check, c.evidence
                ),
            ));
        }
    }
    errors
}

/// What a report says about its run besides the scenarios.
pub(crate) struct Header {
    pub(crate) adapter: String,
    pub(crate) profile: Profile,
    pub(crate) seed: u64,
    pub(crate) partition: Option<Partition>,
    pub(crate) filtered: bool,
    pub(crate) parse_errors: usize,
    pub(crate) selected: usize,
}

impl Report {
    /// Folds a run into the matrix, judged by the profile the adapter declared.
    pub fn build(run: &SuiteRun) -> Self {
        let scenarios: Vec<ScenarioOutcome> = run
            .scenarios
            .iter()
            .map(|s| {
                let replay = replay_command(&run.client_args, &s.scenario, run.seed);
                ScenarioOutcome::of(s, replay)
            })
            .collect();
        let trace = |_: RuleId, i: usize, culprits: &[u64]| {
            run.scenarios.get(i).map(|s| trace_of(s, culprits))
        };
        Self::assemble(
            Header {
                adapter: run.adapter.clone(),
                profile: run.profile,
                seed: run.seed,
                partition: run.partition,
                filtered: run.filtered,
                parse_errors: run.parse_errors,
                selected: run.selected,
            },
            scenarios,
            &trace,
        )
    }

    /// The matrix of `scenarios` (sorted by feature and name).
    pub(crate) fn assemble(
        header: Header,
        scenarios: Vec<ScenarioOutcome>,
        trace: &TraceOf<'_>,
    ) -> Self {
        let ctx = Context {
            profile: header.profile,
            selected: header.filtered || header.partition.is_some(),
        };
        let rules: Vec<RuleRow> = CATALOG
            .iter()
            .map(|r| row(r, &scenarios, &ctx, trace))
            .collect();
        let mut errors: Vec<HarnessError> = scenarios
            .iter()
            .filter_map(|s| {
                s.error.as_ref().map(|e| HarnessError {
                    scenario: s.title(),
                    rules: s.rules.clone(),
                    error: e.clone(),
                    replay: Some(s.replay.clone()),
                })
            })
            .collect();
        errors.extend(scenarios.iter().flat_map(unprovoked_tags));
        // A shard may hold no scenario (more shards than scenarios): the merge judges the whole.
        if scenarios.is_empty() && header.partition.is_none() {
            errors.push(HarnessError {
                scenario: "(selection)".into(),
                rules: Vec::new(),
                error: "the selection ran no scenario: nothing was judged".into(),
                replay: None,
            });
        }
        if header.parse_errors > 0 {
            errors.push(HarnessError {
                scenario: "(features)".into(),
                rules: Vec::new(),
                error: format!(
                    "{} feature file(s) failed to parse: their scenarios did not run",
                    header.parse_errors
                ),
                replay: None,
            });
        }
        let count = |v: Verdict| rules.iter().filter(|r| r.verdict == v).count();
        let required_must_failures = rules
            .iter()
            .filter(|r| r.verdict == Verdict::Fail && r.required && r.level == Level::Must)
            .count();
        // Every file that did not parse counts, though the errors list them as one entry.
        let harness_errors = errors.len() + header.parse_errors.saturating_sub(1);
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
            scenarios: scenarios.len(),
            harness_errors,
            exit_code,
        };
        Self {
            adapter: header.adapter,
            profile: header.profile,
            seed: header.seed,
            partition: header.partition,
            filtered: header.filtered,
            parse_errors: header.parse_errors,
            selected: header.selected,
            rules,
            errors,
            scenarios,
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

    fn record(asserted: Vec<&'static str>, announced: Finding) -> ScenarioOutcome {
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
        let record = ScenarioRecord {
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
        };
        ScenarioOutcome::of(&record, "convo-tck run".into())
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
