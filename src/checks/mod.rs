//! Checks: each one a pure judge of one property over a scenario's whole journal.
//!
//! A [`Check`] reads a [`History`] (the journal with the queries every check needs) and returns
//! a [`Finding`]: the property was violated (evidence quoting journal entries as `#seq`, and the
//! entries that show it), it held, or the journal never gave the client the chance to break it
//! (not provoked: never a PASS). Checks account for every report the client made that they
//! look at, not only the ones they expected. They do not know which rule they serve: the rule
//! catalog ([`crate::rules`]) owns them and runs every one on every scenario's journal, as a
//! Jepsen checker judges a whole history.
//!
//! Files by rule family: [`sync`], [`updates`], [`lists`], [`messages`], [`lifecycle`] (LIFE and
//! REL), [`tokens`], [`push`], [`counts`]; [`history`] holds the shared queries.
//!
//! Must not import: the rules, the harness, the scenario runner, the report, the reference
//! client, the backend's internals (only its facts, through the journal).

pub(crate) mod counts;
mod history;
pub(crate) mod lifecycle;
pub(crate) mod lists;
pub(crate) mod messages;
pub(crate) mod push;
pub(crate) mod sync;
pub(crate) mod tokens;
pub(crate) mod updates;

use std::fmt;

pub use history::{History, Settle};

/// One property a client must keep, and how to judge it.
pub struct Check {
    /// What it establishes, in a line (`explain` and the report name it).
    pub name: &'static str,
    /// What makes it fail, in a line.
    pub fails_when: &'static str,
    /// Judges a scenario's journal.
    pub judge: fn(&History<'_>) -> Finding,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

/// What a check found in one journal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a finding is the verdict of a check: record it"]
pub enum Finding {
    /// The property held, and the journal shows the client had the chance to break it.
    Held {
        /// What was seen, quoting entries as `#seq`.
        evidence: String,
    },
    /// The property was broken.
    Violated {
        /// What was seen, quoting entries as `#seq`.
        evidence: String,
        /// The entries that show it.
        culprits: Vec<u64>,
    },
    /// Nothing in the journal gave the client the chance to break the property.
    NotProvoked {
        /// What did not happen.
        why: String,
    },
}

impl Finding {
    /// A violation pointing at `culprits`.
    pub fn violated(evidence: impl Into<String>, culprits: Vec<u64>) -> Self {
        Self::Violated {
            evidence: evidence.into(),
            culprits,
        }
    }

    /// The property held.
    pub fn held(evidence: impl Into<String>) -> Self {
        Self::Held {
            evidence: evidence.into(),
        }
    }

    /// The journal never provoked the property.
    pub fn not_provoked(why: impl Into<String>) -> Self {
        Self::NotProvoked { why: why.into() }
    }

    /// Whether the property was broken.
    pub fn is_violated(&self) -> bool {
        matches!(self, Self::Violated { .. })
    }

    /// Whether the property was provoked and held.
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Held { .. })
    }

    /// The sentence of evidence (or why nothing was judged).
    pub fn evidence(&self) -> &str {
        match self {
            Self::Held { evidence } | Self::Violated { evidence, .. } => evidence,
            Self::NotProvoked { why } => why,
        }
    }
}

/// Folds the findings of the cases a check judged: the first violation wins; otherwise the
/// property held if any case was provoked (its evidence names up to three of them), and was not
/// provoked at all if none was.
pub(crate) fn fold(findings: impl IntoIterator<Item = Finding>, not_provoked: &str) -> Finding {
    let mut held = Vec::new();
    for f in findings {
        match f {
            Finding::Violated { .. } => return f,
            Finding::Held { evidence } => held.push(evidence),
            Finding::NotProvoked { .. } => {}
        }
    }
    match held.len() {
        0 => Finding::not_provoked(not_provoked),
        1..=3 => Finding::held(held.join("; ")),
        n => Finding::held(format!("{n} cases, among them: {}", held[..3].join("; "))),
    }
}
