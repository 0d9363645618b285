//! The command line as a user meets it: exit codes, listings, and errors that name the valid values.

use std::process::Command;

fn tck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_against_the_reference_client_passes_from_any_directory() {
    let (code, out, _) = tck(&["run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("UPD-1    MUST     mobile  PASS"), "{out}");
    assert!(out.contains("LIFE-1   MUST     all     UNTESTED"), "{out}");
}

#[test]
fn a_fault_fails_its_rule_with_exit_1_and_a_trace() {
    let (code, out, _) = tck(&["run", "--fault", "update-completes-on-ack"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL UPD-1 (MUST)"), "{out}");
    assert!(
        out.contains(">> #"),
        "the trace marks the culprit entries: {out}"
    );
}

#[test]
fn unknown_names_are_errors_that_list_the_valid_ones() {
    let (code, _, err) = tck(&["run", "--fault", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("update-completes-on-ack"), "{err}");
    let (code, _, err) = tck(&["run", "--profile", "desktop"]);
    assert_eq!(code, 2);
    assert!(err.contains("js, mobile"), "{err}");
    let (code, _, err) = tck(&["run", "--rule", "UPD-9"]);
    assert_eq!(code, 2);
    assert!(err.contains("UPD-1"), "{err}");
    let (code, _, err) = tck(&["run", "--tags", "@UPD-9"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown rule `UPD-9`"), "{err}");
}

#[test]
fn json_report_has_the_documented_shape_and_no_tokens() {
    let path = std::env::temp_dir().join(format!("convo-tck-report-{}.json", std::process::id()));
    let (code, _, _) = tck(&[
        "run",
        "--fault",
        "local-write-wins",
        "--format",
        "json",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["profile"], "mobile");
    let upd2 = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "UPD-2")
        .unwrap();
    assert_eq!(upd2["verdict"], "fail");
    assert_eq!(upd2["level"], "MUST");
    assert!(upd2["evidence"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(
        upd2["trace"]["entries"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(report["summary"]["exit_code"], 1);
    // Tokens are JWTs: three base64url parts starting with the `{"` header.
    assert!(!text.contains("eyJ"), "a token leaked into the report");
    let _ = std::fs::remove_file(path);
}

#[test]
fn rules_lists_the_catalog_as_table_and_json() {
    let (code, out, _) = tck(&["rules"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("rules_table", out);
    let (_, json, _) = tck(&["rules", "--format", "json"]);
    let rules: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 32);
    let upd1 = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "UPD-1")
        .unwrap();
    assert_eq!(
        upd1["faults"],
        serde_json::json!(["update-completes-on-ack"])
    );
}

#[test]
fn a_selection_that_runs_nothing_is_an_error_and_rule_tags_match_in_any_case() {
    let (code, out, _) = tck(&["run", "--rule", "REL-1"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the selection ran no scenario"), "{out}");
    let (code, out, _) = tck(&["run", "--tags", "@upd-1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("UPD-1    MUST     mobile  PASS"), "{out}");
}

#[test]
fn explain_names_the_faults_that_prove_a_rule() {
    let (code, out, _) = tck(&["explain", "upd-1"]);
    assert_eq!(code, 0);
    assert!(out.contains("update-completes-on-ack"), "{out}");
}

#[test]
fn explain_is_pinned() {
    let (code, upd_1, _) = tck(&["explain", "UPD-1"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("explain_upd_1", upd_1);
    let (_, life_1, _) = tck(&["explain", "LIFE-1"]);
    insta::assert_snapshot!("explain_life_1", life_1);
}

#[test]
fn the_matrix_of_the_reference_client_is_pinned() {
    let (code, out, _) = tck(&["run", "--profile", "js"]);
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!("matrix_reference_js", out);
}

#[test]
fn scenarios_that_give_no_chance_to_break_a_rule_do_not_pass_it() {
    // Without the scenarios built for LIST-3, a client that does not de-duplicate is not
    // declared compliant with it by an update of a conversation it already listed.
    let (_, out, _) = tck(&[
        "run",
        "--profile",
        "js",
        "--fault",
        "no-dedupe",
        "--tags",
        "@LIST-4 and not @LIST-3",
    ]);
    assert!(!out.contains("LIST-3   MUST     js      PASS"), "{out}");
    // A conversation announced during the fetch that a later page lists anyway says nothing
    // about when the listener was attached.
    let (_, out, _) = tck(&[
        "run",
        "--profile",
        "js",
        "--fault",
        "listen-after-fetch",
        "--tags",
        "@LIST-3 and not @boundary",
    ]);
    assert!(!out.contains("LIST-2   MUST     js      PASS"), "{out}");
}
