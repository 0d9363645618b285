//! The rule catalog: every lifecycle rule the kit knows, what proves it, and the judging that
//! runs it on every scenario.
//!
//! The catalog ([`CATALOG`]) is the single source of truth that the Gherkin tags (`@SYNC-1`),
//! the checks, the reference client's [`Fault`]s and the report rows all refer to. An entry owns
//! its [`Check`]s and the faults that must make it fail, as values: a rule is implemented when it
//! has both ([`Rule::is_implemented`]). [`judge`] runs every check of every rule on a scenario's
//! journal, wherever the scenario provoked it; tags only say which scenarios are meant to.
//!
//! In code a rule id is written as in tags and reports, through `rule!`:
//! `rule!("UPD-1")` is checked at compile time. Checks, faults and self-check tests carry the
//! written id in their doc comment or name, so `grep -rn "UPD-1"` finds all of them.
//!
//! Must not import: the harness, the scenario runner, the report (they read the catalog).

mod catalog;

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Serialize, Serializer};

use crate::adapter::Profile;
use crate::checks::{Check, Finding, History};
use crate::journal::Entry;
use crate::reference::Fault;

pub use catalog::CATALOG;

/// Declares [`RuleId`] and the `rule!` macro from one list of ids.
macro_rules! rule_ids {
    ($($variant:ident = $id:tt,)*) => {
        /// A rule identifier such as `SYNC-1`; only ids of the catalog exist.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId {
            $(#[doc = concat!("`", $id, "`")] $variant,)*
        }

        impl RuleId {
            /// Every id, in catalog order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant,)*];

            /// The id as written in tags and reports (`UPD-1`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }
        }

        /// A [`RuleId`] written as in tags and reports, checked at compile time:
        /// `rule!("UPD-1")`.
        macro_rules! rule {
            $(($id) => { $crate::rules::RuleId::$variant };)*
        }
        pub(crate) use rule;
    };
}

rule_ids! {
    Life1 = "LIFE-1",
    Life2 = "LIFE-2",
    Life3 = "LIFE-3",
    Life4 = "LIFE-4",
    Life5 = "LIFE-5",
    Push1 = "PUSH-1",
    Push2 = "PUSH-2",
    Push3 = "PUSH-3",
    Push4 = "PUSH-4",
    Push5 = "PUSH-5",
    Token1 = "TOKEN-1",
    Token2 = "TOKEN-2",
    Token3 = "TOKEN-3",
    Token4 = "TOKEN-4",
    Token5 = "TOKEN-5",
    Token6 = "TOKEN-6",
    List1 = "LIST-1",
    List2 = "LIST-2",
    List3 = "LIST-3",
    List4 = "LIST-4",
    Msg1 = "MSG-1",
    Msg2 = "MSG-2",
    Count1 = "COUNT-1",
    Count2 = "COUNT-2",
    Count3 = "COUNT-3",
    Sync1 = "SYNC-1",
    Sync2 = "SYNC-2",
    Sync3 = "SYNC-3",
    Upd1 = "UPD-1",
    Upd2 = "UPD-2",
    Upd3 = "UPD-3",
    Rel1 = "REL-1",
}

impl RuleId {
    /// The catalog entry of this id.
    pub fn rule(self) -> &'static Rule {
        CATALOG
            .iter()
            .find(|r| r.id == self)
            .expect("the catalog has an entry for every id (tested)")
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Written as in tags and reports (`"UPD-1"`), like its [`Serialize`]: a string, one of the
/// catalog's ids.
impl JsonSchema for RuleId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleId".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::RuleId").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        schemars::json_schema!({
            "description": "A rule identifier of the catalog, as written in tags and reports.",
            "type": "string",
            "enum": ids,
        })
    }
}

/// A rule id that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{given}`; known rules: {}", RuleId::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownRule {
    /// What was asked for.
    pub given: String,
}

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().trim_start_matches('@');
        RuleId::ALL
            .iter()
            .copied()
            .find(|r| r.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownRule {
                given: s.to_owned(),
            })
    }
}

/// How strongly a rule binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A failure fails the run (exit code 1).
    Must,
    /// A failure is reported; it does not fail the run.
    Should,
    /// Listed for completeness, never judged (the rule says why).
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
            Self::Info => "INFO",
        })
    }
}

/// Which client profile a rule is required of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleProfile {
    /// Every client stack.
    All,
    /// The JavaScript SDK's behaviour (and stacks that claim it).
    Js,
    /// The Android/iOS SDKs' behaviour.
    Mobile,
}

impl RuleProfile {
    /// Whether an adapter of `profile` is required to follow a rule of this profile.
    pub fn requires(self, profile: Profile) -> bool {
        match self {
            Self::All => true,
            Self::Js => profile == Profile::Js,
            Self::Mobile => profile == Profile::Mobile,
        }
    }
}

impl fmt::Display for RuleProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::All => "all",
            Self::Js => "js",
            Self::Mobile => "mobile",
        })
    }
}

fn check_names<S: Serializer>(checks: &[&Check], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(checks.iter().map(|c| c.fails_when))
}

fn fault_names<S: Serializer>(faults: &[Fault], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(faults.iter().map(|f| f.name()))
}

/// One rule of the catalog.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Identifier, e.g. `UPD-1`.
    pub id: RuleId,
    /// MUST, SHOULD or INFO.
    pub level: Level,
    /// Which profile must follow it.
    pub profile: RuleProfile,
    /// One line, our own words.
    pub summary: &'static str,
    /// Section of the source document this rule paraphrases.
    pub source: &'static str,
    /// How the scenarios provoke it.
    pub provoke: &'static str,
    /// What to look at in the client stack when the rule fails.
    pub hint: &'static str,
    /// What the checks can and cannot see: what a PASS guarantees.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub sees: &'static str,
    /// The checks that judge it (none while it is UNTESTED); each fails when what it says.
    #[serde(rename = "fails_when", serialize_with = "check_names")]
    pub checks: &'static [&'static Check],
    /// Planted bugs of the reference client that must make it FAIL.
    #[serde(serialize_with = "fault_names")]
    pub faults: &'static [Fault],
    /// Planted bugs aimed at other rules that may fail this one too, because it observes the
    /// same behaviour.
    #[serde(skip)]
    pub collateral: &'static [Fault],
    /// For INFO rules: why the kit does not judge it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<&'static str>,
}

impl Rule {
    /// Whether the kit checks this rule: it has a check, and a fault that proves the check can
    /// fail.
    pub fn is_implemented(&self) -> bool {
        !self.checks.is_empty() && !self.faults.is_empty()
    }

    /// Whether the rule is judged at all (INFO rules are not).
    pub fn is_judged(&self) -> bool {
        self.level != Level::Info
    }
}

/// The rules `fault` must make FAIL.
pub fn targets_of(fault: Fault) -> Vec<RuleId> {
    CATALOG
        .iter()
        .filter(|r| r.faults.contains(&fault))
        .map(|r| r.id)
        .collect()
}

/// The rules `fault` may also fail besides its targets.
pub fn collateral_of(fault: Fault) -> Vec<RuleId> {
    CATALOG
        .iter()
        .filter(|r| r.collateral.contains(&fault))
        .map(|r| r.id)
        .collect()
}

/// The verdict on one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check of the rule was provoked and held.
    Pass,
    /// A check of the rule was violated.
    Fail,
    /// The rule does not apply (INFO level, or the adapter lacks a capability it needs).
    NotApplicable,
    /// Not every check of the rule ran and was provoked.
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

/// What one check of one rule found in one journal.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// The rule.
    pub rule: RuleId,
    /// The check (its `name`).
    pub check: &'static str,
    /// What it found.
    pub finding: Finding,
}

/// The rule that owns `check`.
pub fn rule_of(check: &Check) -> Option<RuleId> {
    CATALOG
        .iter()
        .find(|r| r.checks.iter().any(|c| std::ptr::eq(*c, check)))
        .map(|r| r.id)
}

/// Runs every check of every judged rule on a scenario's journal.
pub fn judge(entries: &[Entry]) -> Vec<Judgement> {
    let history = &History::new(entries);
    CATALOG
        .iter()
        .filter(|r| r.is_judged())
        .flat_map(|r| {
            r.checks.iter().map(move |c| Judgement {
                rule: r.id,
                check: c.name,
                finding: (c.judge)(history),
            })
        })
        .collect()
}

/// Runs only `checks` on a journal (a step asserting what the scenario just provoked).
pub fn judge_only(entries: &[Entry], checks: &[&'static Check]) -> Vec<Judgement> {
    let history = History::new(entries);
    checks
        .iter()
        .filter_map(|c| {
            Some(Judgement {
                rule: rule_of(c)?,
                check: c.name,
                finding: (c.judge)(&history),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_32_rules_of_the_design_once_each_in_id_order() {
        let ids: Vec<RuleId> = CATALOG.iter().map(|r| r.id).collect();
        assert_eq!(ids, RuleId::ALL);
    }

    #[test]
    fn ids_parse_case_insensitively_and_with_a_tag_sign() {
        assert_eq!("@upd-1".parse::<RuleId>(), Ok(rule!("UPD-1")));
        let err = "UPD-9".parse::<RuleId>().unwrap_err();
        assert!(err.to_string().contains("UPD-1, UPD-2, UPD-3"), "{err}");
    }

    #[test]
    fn only_info_rules_say_why_they_are_not_judged() {
        for r in CATALOG {
            assert_eq!(r.level == Level::Info, r.not_judged.is_some(), "{}", r.id);
        }
    }

    #[test]
    fn every_check_belongs_to_exactly_one_rule() {
        for r in CATALOG {
            for c in r.checks {
                let owners = CATALOG
                    .iter()
                    .filter(|o| o.checks.iter().any(|x| std::ptr::eq(*x, *c)))
                    .count();
                assert_eq!(owners, 1, "{} of {}", c.name, r.id);
            }
        }
    }
}
