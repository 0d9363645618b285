//! The README and docs are part of the product: keep them in step with the code.

use std::process::Command;

#[test]
fn docs_rules_lists_the_catalog_as_the_cli_prints_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .arg("rules")
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).unwrap();
    assert!(
        doc.contains(&listing),
        "docs/rules.md is out of date: paste `convo-tck rules` into it"
    );
}

#[test]
fn the_readme_quick_start_is_what_ci_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    let quick: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Quick start"))
        .filter(|l| l.starts_with("cargo "))
        .take(2)
        .collect();
    assert!(
        quick[0].starts_with("cargo run --release -- run"),
        "{quick:?}"
    );
    assert!(quick[1].starts_with("cargo test"), "{quick:?}");
    assert!(
        ci.contains("cargo test"),
        ".ci/run must run the README's test command"
    );
}

#[test]
fn every_checked_rule_is_explained_in_docs_rules() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).unwrap();
    for rule in convo_tck::rules::CATALOG
        .iter()
        .filter(|r| r.is_implemented())
    {
        assert!(
            doc.contains(&format!("**{}**", rule.id)),
            "docs/rules.md does not explain {}",
            rule.id
        );
        for fault in rule.faults {
            assert!(
                doc.contains(fault.name()),
                "docs/rules.md does not name fault {fault}"
            );
        }
    }
}
