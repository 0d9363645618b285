//! Merging the partial JSON reports of a sharded run (`convo-tck run --partition K/N`) into the
//! matrix one unsharded run would have given.
//!
//! A rule's verdict is not the worst of the shards' verdicts taken as they are: a rule whose
//! scenarios all ran in shard 2 is UNTESTED in shard 1 ("no selected scenario provoked") and
//! PASS in shard 2, and a rule with two checks provoked in different shards is UNTESTED in both.
//! So the merge re-derives every row from the scenario outcomes every shard recorded (what each
//! check found in each scenario), with the same code a single run uses: a violation in any
//! shard fails the rule (the worst verdict wins), and a check counts as provoked if any shard
//! provoked it. The trace of a failure comes from the shard that ran its first failing scenario.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::json::FORMAT_VERSION;
use super::{Header, Report, ScenarioOutcome, Trace};
use crate::adapter::Profile;
use crate::rules::RuleId;
use crate::scenario::Partition;

/// Shard reports that cannot be merged into one matrix.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No report was given.
    #[error("nothing to merge: give the JSON report of every shard")]
    Empty,
    /// A report is not JSON, or not a convo-tck report.
    #[error("{source_name} is not a convo-tck JSON report: {reason}")]
    NotAReport {
        /// Which input.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// A report of another format version.
    #[error(
        "{source_name} has report format {found}; this convo-tck merges format {expected} (run every shard with the same convo-tck)"
    )]
    Version {
        /// Which input.
        source_name: String,
        /// Its format version.
        found: u64,
        /// Ours.
        expected: u32,
    },
    /// A report of a run that was not a shard.
    #[error("{source_name} is not a shard's report (it was run without --partition)")]
    NotAShard {
        /// Which input.
        source_name: String,
    },
    /// A partition that no run writes (`0/0`, `3/2`).
    #[error("{source_name} names shard {index}/{count}, which is not a valid shard")]
    BadShard {
        /// Which input.
        source_name: String,
        /// Its index.
        index: u32,
        /// Its count.
        count: u32,
    },
    /// Shards whose scenarios do not make up their selection.
    #[error(
        "the shards hold {held} scenario(s) between them, but their selection has {selected}: {detail}"
    )]
    Incomplete {
        /// Scenarios in all shards.
        held: usize,
        /// The selection's size.
        selected: usize,
        /// What is wrong.
        detail: String,
    },
    /// The reports are of different runs.
    #[error(
        "{source_name} is of another run than {first}: its {what} differs ({theirs} vs {ours})"
    )]
    Mismatch {
        /// Which input.
        source_name: String,
        /// The first input.
        first: String,
        /// What differs.
        what: &'static str,
        /// Its value.
        theirs: String,
        /// The first's value.
        ours: String,
    },
    /// The same shard twice.
    #[error("shard {shard} is given twice: {first} and {second}")]
    Duplicate {
        /// The shard.
        shard: Partition,
        /// The first input with it.
        first: String,
        /// The second.
        second: String,
    },
    /// A shard is missing: its rules would be judged on part of the suite.
    #[error(
        "shard(s) {missing} of {count} missing: a merge of some shards would judge rules on part of the suite"
    )]
    Missing {
        /// The missing shard indexes.
        missing: String,
        /// How many shards the run had.
        count: u32,
    },
}

/// The parts of a JSON report a merge reads.
#[derive(Deserialize)]
struct Shard {
    format_version: u64,
    adapter: String,
    profile: Profile,
    seed: u64,
    partition: Option<Partition>,
    filtered: bool,
    parse_errors: usize,
    selected: usize,
    scenarios: Vec<ScenarioOutcome>,
    rules: Vec<ShardRow>,
}

#[derive(Deserialize)]
struct ShardRow {
    id: RuleId,
    trace: Option<Trace>,
}

/// Merges shard reports given as `(name, JSON text)` (the name is how errors cite an input).
pub fn merge(inputs: &[(String, String)]) -> Result<Report, MergeError> {
    let mut shards: Vec<(String, Shard)> = Vec::new();
    for (name, text) in inputs {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| MergeError::NotAReport {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
        let found = value["format_version"].as_u64().unwrap_or(0);
        if found != u64::from(FORMAT_VERSION) {
            return Err(MergeError::Version {
                source_name: name.clone(),
                found,
                expected: FORMAT_VERSION,
            });
        }
        let shard: Shard = serde_json::from_value(value).map_err(|e| MergeError::NotAReport {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        debug_assert_eq!(shard.format_version, u64::from(FORMAT_VERSION));
        match shard.partition {
            None => {
                return Err(MergeError::NotAShard {
                    source_name: name.clone(),
                });
            }
            Some(p) if p.count == 0 || p.index == 0 || p.index > p.count => {
                return Err(MergeError::BadShard {
                    source_name: name.clone(),
                    index: p.index,
                    count: p.count,
                });
            }
            Some(_) => {}
        }
        shards.push((name.clone(), shard));
    }
    if shards.is_empty() {
        return Err(MergeError::Empty);
    }
    // The profile is the adapter's hello's; a shard that never heard one (no scenario, or an
    // adapter that never started) reports the fallback, so the profile is compared among the
    // shards with a scenario that ran.
    let ran = |s: &Shard| s.scenarios.iter().any(|o| o.error.is_none());
    let (first_name, first) = shards.iter().find(|(_, s)| ran(s)).unwrap_or(&shards[0]);
    let count = first.partition.map_or(1, |p| p.count);
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, s) in &shards {
        let mismatch = |what, theirs: String, ours: String| MergeError::Mismatch {
            source_name: name.clone(),
            first: first_name.clone(),
            what,
            theirs,
            ours,
        };
        if s.adapter != first.adapter {
            return Err(mismatch(
                "adapter",
                s.adapter.clone(),
                first.adapter.clone(),
            ));
        }
        if s.profile != first.profile && ran(s) {
            return Err(mismatch(
                "profile",
                s.profile.to_string(),
                first.profile.to_string(),
            ));
        }
        if s.seed != first.seed {
            return Err(mismatch("seed", s.seed.to_string(), first.seed.to_string()));
        }
        if s.filtered != first.filtered || s.selected != first.selected {
            return Err(mismatch(
                "selection",
                s.selected.to_string(),
                first.selected.to_string(),
            ));
        }
        let p = s.partition.expect("checked above");
        if p.count != count {
            return Err(mismatch(
                "shard count",
                p.count.to_string(),
                count.to_string(),
            ));
        }
        if let Some(other) = seen.insert(p.index, name) {
            return Err(MergeError::Duplicate {
                shard: p,
                first: other.to_owned(),
                second: name.clone(),
            });
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            count,
        });
    }
    let held: usize = shards.iter().map(|(_, s)| s.scenarios.len()).sum();
    let mut titles: Vec<String> = shards
        .iter()
        .flat_map(|(_, s)| s.scenarios.iter().map(ScenarioOutcome::title))
        .collect();
    titles.sort();
    if let Some(w) = titles.windows(2).find(|w| w[0] == w[1]) {
        return Err(MergeError::Incomplete {
            held,
            selected: first.selected,
            detail: format!("`{}` is in two shards", w[0]),
        });
    }
    if held != first.selected {
        return Err(MergeError::Incomplete {
            held,
            selected: first.selected,
            detail: "a shard is not the run's own".into(),
        });
    }
    let header = Header {
        adapter: first.adapter.clone(),
        profile: first.profile,
        seed: first.seed,
        partition: None,
        filtered: first.filtered,
        // Every shard parses every feature file: a file that does not parse is one error.
        parse_errors: shards
            .iter()
            .map(|(_, s)| s.parse_errors)
            .max()
            .unwrap_or(0),
        selected: first.selected,
    };
    let mut traces: BTreeMap<(RuleId, String, String), Trace> = BTreeMap::new();
    let mut scenarios = Vec::new();
    for (_, shard) in shards {
        for row in shard.rules {
            if let Some(t) = row.trace {
                traces.insert((row.id, t.feature.clone(), t.scenario.clone()), t);
            }
        }
        scenarios.extend(shard.scenarios);
    }
    scenarios.sort_by(|a, b| (&a.feature, &a.scenario).cmp(&(&b.feature, &b.scenario)));
    let trace = |rule: RuleId, i: usize, _: &[u64]| {
        let s: &ScenarioOutcome = scenarios.get(i)?;
        traces
            .get(&(rule, s.feature.clone(), s.scenario.clone()))
            .cloned()
    };
    let ordered = scenarios.clone();
    Ok(Report::assemble(header, ordered, &trace))
}
