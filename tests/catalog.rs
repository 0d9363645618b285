//! The rule id is the thread through everything: these tests keep the catalog, the feature
//! tags, the checks, the faults and the self-checks consistent with each other.

use std::collections::BTreeSet;
use std::path::Path;

use convo_tck::Fault;
use convo_tck::rules::{self, CATALOG, RuleId};
use convo_tck::scenario::features;

fn source(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn sources_under(dir: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut text = String::new();
    for entry in std::fs::read_dir(&full).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

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
fn a_judged_rule_has_checks_exactly_when_it_has_faults() {
    for rule in CATALOG.iter().filter(|r| r.is_judged()) {
        assert_eq!(
            rule.checks.is_empty(),
            rule.faults.is_empty(),
            "{}: a check needs a fault that proves it can fail, and a fault needs a check to catch it",
            rule.id
        );
    }
}

#[test]
fn every_checked_rule_is_provoked_by_a_tagged_scenario() {
    let tagged: BTreeSet<RuleId> = features::rule_tags()
        .into_iter()
        .filter_map(|(tag, _)| tag.parse().ok())
        .collect();
    for rule in CATALOG.iter().filter(|r| r.is_implemented()) {
        assert!(
            tagged.contains(&rule.id),
            "{} has checks but no scenario is tagged @{}",
            rule.id,
            rule.id
        );
    }
}

#[test]
fn scenarios_only_tag_rules_that_have_a_check() {
    for (tag, place) in features::rule_tags() {
        let id: RuleId = tag.parse().expect("checked above");
        // A rule that is not judged (INFO guidance) may tag the scenario that shows it.
        assert!(
            id.rule().is_implemented() || !id.rule().is_judged(),
            "{place} is tagged @{id}, but {id} has no check in the catalog"
        );
    }
}

#[test]
fn every_fault_is_listed_by_the_catalog() {
    for f in Fault::ALL {
        assert!(
            !rules::targets_of(*f).is_empty(),
            "{f} is not listed by any rule of the catalog"
        );
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

/// The convention of docs/architecture.md: a checked rule's written id appears in its catalog
/// entry, its checks' doc comments, its faults' doc comments, a feature tag and a self-check
/// test, so `grep -rn "UPD-1"` finds every one of them.
#[test]
fn the_written_id_of_every_checked_rule_threads_through_the_sources() {
    let places = [
        ("the catalog", source("src/rules/catalog.rs")),
        ("a check's doc comment", sources_under("src/checks")),
        ("a fault's doc comment", source("src/reference/fault.rs")),
        ("a self-check test", source("tests/self_check.rs")),
        ("a feature tag", {
            let tags: Vec<String> = features::rule_tags().into_iter().map(|(t, _)| t).collect();
            tags.join(" ")
        }),
    ];
    for rule in CATALOG.iter().filter(|r| r.is_implemented()) {
        for (place, text) in &places {
            assert!(
                text.contains(rule.id.as_str()),
                "{} is not written in {place}",
                rule.id
            );
        }
    }
}

#[test]
fn every_checked_rule_says_what_its_checks_can_see() {
    for rule in CATALOG.iter().filter(|r| r.is_implemented()) {
        assert!(
            !rule.sees.is_empty(),
            "{} does not say what a PASS guarantees",
            rule.id
        );
    }
}
