//! The rule id is the thread through everything: these tests keep the catalog, the feature tags
//! and the faults consistent with each other.

use std::collections::BTreeSet;

use convo_tck::Fault;
use convo_tck::rules::{CATALOG, Level, RuleId};
use convo_tck::scenario::features;

#[test]
fn every_rule_tag_in_the_features_is_a_catalog_rule() {
    let unknown: Vec<_> = features::rule_tags()
        .into_iter()
        .filter(|(tag, _)| tag.parse::<RuleId>().is_err())
        .collect();
    assert!(
        unknown.is_empty(),
        "feature files tag unknown rule ids: {unknown:?}"
    );
}

#[test]
fn every_checked_must_and_should_rule_has_a_scenario_and_a_fault() {
    let tagged: BTreeSet<RuleId> = features::rule_tags()
        .into_iter()
        .filter_map(|(tag, _)| tag.parse().ok())
        .collect();
    for rule in CATALOG
        .iter()
        .filter(|r| r.is_implemented() && r.level != Level::Info)
    {
        assert!(
            tagged.contains(&rule.id),
            "{} has a check but no scenario is tagged @{}",
            rule.id,
            rule.id
        );
        assert!(
            Fault::targeting(rule.id).next().is_some(),
            "{} has a check but no fault proves it can fail",
            rule.id
        );
    }
}

#[test]
fn scenarios_only_tag_rules_that_have_a_check() {
    for (tag, place) in features::rule_tags() {
        let id: RuleId = tag.parse().expect("checked above");
        assert!(
            id.rule().is_implemented(),
            "{place} is tagged @{id}, but {id} has no check in the catalog"
        );
    }
}

#[test]
fn every_fault_targets_checked_rules() {
    for f in Fault::ALL {
        assert!(!f.targets().is_empty(), "{f} targets nothing");
        for r in f.targets() {
            assert!(
                r.rule().is_implemented(),
                "{f} targets {r}, which has no check"
            );
        }
    }
}

#[test]
fn every_scenario_is_tagged_with_a_rule() {
    for (path, text) in features::sources() {
        let mut last_tags = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('@') {
                last_tags = line.split_whitespace().any(|t| t.parse::<RuleId>().is_ok());
            } else if line.starts_with("Scenario") {
                assert!(last_tags, "{path}: `{line}` carries no rule id tag");
                last_tags = false;
            }
        }
    }
}
