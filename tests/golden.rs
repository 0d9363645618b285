//! Golden outputs: what users read is pinned with insta snapshots, so a change to it is a
//! reviewed change. The failure trace, the table and the JSON report of a failing rule are
//! rendered from a recorded journal (`tests/fixtures/journals/`), judged afresh by the catalog:
//! the input is fixed, the checks and the writers are what is under test. Ports are normalised
//! in the fixture when it is recorded; virtual timestamps are deterministic.
//!
//! `cargo test --test golden -- --ignored record_the_golden_journal` records the fixture again
//! (after a change to the journal's format or to the scenario).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use convo_tck::journal::Entry;
use convo_tck::report::{json, junit, markdown, table};
use convo_tck::rules;
use convo_tck::scenario::{ScenarioRecord, SuiteOptions, SuiteRun, run_suite};
use convo_tck::{Fault, Profile, ReferenceAdapter, Report, Secrets};

const FEATURE: &str = "Updated values arrive through their Updated event";
const SCENARIO: &str =
    "A conversation attribute update completes only once its Updated event is delivered";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journals/update-completes-on-ack.json")
}

/// The recorded journal, re-judged, as the only scenario of a run.
fn golden_run() -> SuiteRun {
    let text = std::fs::read_to_string(fixture()).expect("the recorded journal");
    let journal: Vec<Entry> = serde_json::from_str(&text).expect("a journal the kit can read");
    let record = ScenarioRecord {
        feature: FEATURE.into(),
        scenario: SCENARIO.into(),
        rules: vec!["UPD-1".parse().unwrap()],
        boundary: false,
        judgements: rules::judge(&journal),
        error: None,
        not_applicable: None,
        journal,
        secrets: Secrets::default(),
        asserted: Vec::new(),
    };
    SuiteRun {
        profile: Profile::Mobile,
        adapter: "reference (faults: update-completes-on-ack)".into(),
        hello: None,
        scenarios: vec![record],
        parse_errors: 0,
        seed: 1,
        filtered: true,
        partition: None,
        selected: 1,
        client_args: vec![
            "--profile".into(),
            "mobile".into(),
            "--fault".into(),
            "update-completes-on-ack".into(),
        ],
    }
}

#[test]
fn a_failure_renders_its_evidence_and_minimal_trace_as_pinned() {
    let report = Report::build(&golden_run());
    // The recorded fault fails its rule and its declared collateral, nothing else: a change to
    // the journal's format that a check misreads shows here, not only in the snapshot.
    let failing: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.verdict == convo_tck::Verdict::Fail)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failing, ["UPD-1", "UPD-2"]);
    insta::assert_snapshot!("failure_table", table::render(&report));
}

#[test]
fn the_json_report_of_a_failure_is_pinned() {
    let report = Report::build(&golden_run());
    insta::assert_snapshot!("failure_json", json::to_string(&report));
}

#[test]
fn the_markdown_and_junit_reports_of_a_failure_are_pinned() {
    let report = Report::build(&golden_run());
    insta::assert_snapshot!("failure_markdown", markdown::render(&report));
    insta::assert_snapshot!("failure_junit", junit::render(&report));
}

/// Records the fixture: runs the UPD-1 scenario against the reference client with its planted
/// fault and keeps that scenario's journal, ports normalised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the golden journal; run on purpose"]
async fn record_the_golden_journal() {
    let adapter = Arc::new(ReferenceAdapter::with_faults(
        Profile::Mobile,
        Fault::UpdateCompletesOnAck.into(),
    ));
    let opts = SuiteOptions {
        tags: Some("@UPD-1".into()),
        ..SuiteOptions::default()
    };
    let run = run_suite(adapter, &opts).await.unwrap();
    let record = run
        .scenarios
        .iter()
        .find(|s| s.scenario == SCENARIO)
        .expect("the scenario ran");
    let text = serde_json::to_string_pretty(&record.journal).unwrap();
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = ports.replace_all(&text, "127.0.0.1:40000");
    std::fs::write(fixture(), text.as_ref()).unwrap();
}
