//! Checks: turn the journal, the replies and the backend's truth into per-rule verdicts.
//!
//! Each check is a pure function over evidence the scenario driver collected, named for the rule
//! property it judges, returning a [`CheckOutcome`] that carries the rule id, the verdict and a
//! sentence of evidence quoting journal entries by their `#seq`. Step definitions call them;
//! the runner folds them into the compliance matrix. Grouped by rule family: [`sync`], [`updates`].

pub mod lists;
pub mod messages;
pub mod sync;
pub mod updates;

use std::fmt;

use serde::Serialize;

use crate::backend::journal::{Entry, InstanceId};
use crate::rules::RuleId;

/// The verdict on one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check of the rule held.
    Pass,
    /// A check of the rule was violated.
    Fail,
    /// The rule does not apply (INFO level, or the adapter lacks a capability it needs).
    NotApplicable,
    /// No check of the rule ran.
    Untested,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::NotApplicable => "N/A",
            Self::Untested => "UNTESTED",
        })
    }
}

/// The result of one check in one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct CheckOutcome {
    /// The rule judged.
    pub rule: RuleId,
    /// Pass or fail (checks never return N/A or UNTESTED).
    pub verdict: Verdict,
    /// What was seen, in a sentence quoting journal entries as `#seq`.
    pub evidence: String,
    /// Journal entries that show the violation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<u64>,
}

impl CheckOutcome {
    /// A passing outcome.
    pub fn pass(rule: RuleId, evidence: impl Into<String>) -> Self {
        Self {
            rule,
            verdict: Verdict::Pass,
            evidence: evidence.into(),
            culprits: Vec::new(),
        }
    }

    /// A failing outcome pointing at `culprits`.
    pub fn fail(rule: RuleId, evidence: impl Into<String>, culprits: Vec<u64>) -> Self {
        Self {
            rule,
            verdict: Verdict::Fail,
            evidence: evidence.into(),
            culprits,
        }
    }

    /// Whether the check held.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Entries attributed to `instance`.
pub(crate) fn of_instance<'a>(
    entries: &'a [Entry],
    instance: &'a InstanceId,
) -> impl Iterator<Item = &'a Entry> + 'a {
    entries
        .iter()
        .filter(move |e| e.instance.as_ref() == Some(instance))
}
