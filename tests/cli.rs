//! The command line as a user meets it: exit codes, listings, and errors that name the valid values.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    assert!(out.contains("LIFE-1   MUST     all     PASS"), "{out}");
    assert!(out.contains("PUSH-1   MUST     all     PASS"), "{out}");
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
    // Faults are too many to list in an error: it says where the list is, and the nearest name.
    let (code, _, err) = tck(&["run", "--fault", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("`convo-tck faults` lists the"), "{err}");
    let (code, _, err) = tck(&["run", "--fault", "update-completes"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean `update-completes-on-ack`?"),
        "{err}"
    );
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
        &format!("json={}", path.display()),
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
    // No scenario is tagged with both.
    let (code, out, _) = tck(&["run", "--tags", "@PUSH-1 and @COUNT-1"]);
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

/// Runs convo-tck with its stdout a pipe whose reader is closed before the binary starts (a
/// shell waits for a line on stdin, sent once the reader is gone, then becomes convo-tck), so
/// its first write meets a broken pipe every time.
#[cfg(unix)]
fn tck_into_a_closed_pipe(args: &[&str]) -> (i32, String) {
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"read go; exec "$@""#,
            "sh",
            env!("CARGO_BIN_EXE_convo-tck"),
        ])
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_listings_quietly_with_exit_0() {
    for args in [
        &["rules"][..],
        &["rules", "--format", "json"],
        &["explain", "UPD-1"],
        &["faults"],
        &["--help"],
    ] {
        let (code, err) = tck_into_a_closed_pipe(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_keeps_the_verdict_of_a_run() {
    let (code, err) = tck_into_a_closed_pipe(&["run", "--rule", "UPD-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (code, err) = tck_into_a_closed_pipe(&[
        "run",
        "--rule",
        "UPD-1",
        "--fault",
        "update-completes-on-ack",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn any_other_write_error_is_exit_2_with_one_line_naming_it() {
    for args in [&["rules"][..], &["faults"], &["explain", "UPD-1"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "error: cannot write to standard output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

#[test]
fn tag_expressions_too_long_or_too_deep_are_refused_at_once() {
    let cases = [
        // 20,000 parentheses deep: too long long before it is too deep.
        (
            format!("{}@UPD-1{}", "(".repeat(20_000), ")".repeat(20_000)),
            "tag expression too long: 40006 bytes, at most 1024",
        ),
        (
            vec!["@UPD-1"; 10_000].join(" or "),
            "tag expression too long",
        ),
        (
            format!("{}@UPD-1{}", "(".repeat(40), ")".repeat(40)),
            "nested too deep: 40 levels of parentheses, at most 32",
        ),
        (
            format!("{}@UPD-1", "not ".repeat(200)),
            "too complex: 200 operators (and, or, not), at most 64",
        ),
        (
            vec!["@UPD-1"; 100].join(" or "),
            "too complex: 99 operators",
        ),
    ];
    for (expr, message) in cases {
        let started = Instant::now();
        let (code, out, err) = tck(&["run", "--tags", &expr]);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(message), "{err}");
        assert!(err.len() < 400, "the expression is quoted elided: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused before any scenario ran"
        );
    }
}

#[test]
fn an_unwritable_out_path_fails_before_the_suite_runs() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .args(["run", "--format", "json=/nonexistent/x.json"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("/nonexistent/x.json") && err.contains("No such file or directory"),
        "{err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "no scenario ran, nor the suite: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // A directory is not a file either.
    let dir = std::env::temp_dir();
    let (code, _, err) = tck(&["run", "--format", &format!("table={}", dir.display())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write the report to"), "{err}");
    // --out is a directory: one under a file cannot be made, and a file is not taken for one.
    let (code, _, err) = tck(&["run", "--out", "/dev/null/reports"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot create the report directory /dev/null/reports"),
        "{err}"
    );
    let file = dir.join(format!("convo-tck-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) = tck(&["run", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is a file") && err.contains("--format FORMAT=PATH"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    let _ = std::fs::remove_file(&file);
    // Two formats cannot share standard output.
    let (code, _, err) = tck(&["run", "--format", "table,json"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 formats would go to standard output"),
        "{err}"
    );
    let (code, _, err) = tck(&["run", "--format", "xml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown format `xml`"), "{err}");
}

#[test]
fn a_run_refused_after_out_was_opened_leaves_the_file_as_it_was() {
    let dir = std::env::temp_dir();
    let kept = dir.join(format!("convo-tck-kept-{}.json", std::process::id()));
    std::fs::write(&kept, "previous report").unwrap();
    let kept_arg = format!("json={}", kept.display());
    let (code, _, err) = tck(&["run", "--tags", "@UPD-9", "--format", &kept_arg]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "previous report");
    let _ = std::fs::remove_file(&kept);
    let fresh = dir.join(format!("convo-tck-fresh-{}.json", std::process::id()));
    let fresh_arg = format!("json={}", fresh.display());
    let (code, _, _) = tck(&["run", "--tags", "@UPD-9", "--format", &fresh_arg]);
    assert_eq!(code, 2);
    assert!(!fresh.exists(), "a file the run created is removed");
}

#[test]
fn no_argument_is_echoed_back_unbounded() {
    let huge = "x".repeat(100_000);
    let fault_eq = format!("--fault={huge}");
    let rule = format!("UPD-{}", "1".repeat(100_000));
    let tags = format!("@{huge}");
    let out = format!("/dev/null/{huge}");
    for args in [
        &["run", "--fault", &huge][..],
        &["run", &fault_eq],
        &["run", "--rule", &rule],
        &["run", "--profile", &huge],
        &["run", "--seed", &huge],
        &["run", "--tags", &tags],
        &["run", "--out", &out],
        &["explain", &huge],
        &[&huge],
        &["run", &huge],
    ] {
        let (code, _, err) = tck(args);
        assert_eq!(code, 2, "{err}");
        assert!(err.len() < 1024, "{} bytes: {err}", err.len());
        assert!(err.contains("bytes in all)"), "{err}");
    }
    let (code, out, _) = tck(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage"), "{out}");
    let (code, out, _) = tck(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("convo-tck "), "{out}");
}

#[test]
fn logs_follow_rust_log_and_carry_no_token() {
    let run = |log: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convo-tck"));
        cmd.args(["run", "--rule", "UPD-1"]).env_remove("RUST_LOG");
        if let Some(log) = log {
            cmd.env("RUST_LOG", log);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(None);
    assert!(quiet.is_empty(), "a normal run logs nothing: {quiet}");
    let trace = run(Some("trace"));
    assert!(
        trace.contains("DEBUG convo_tck::scenario::runner: scenario starts"),
        "{trace}"
    );
    assert!(
        trace.contains("TRACE convo_tck::harness::driver: settle round"),
        "{trace}"
    );
    // Tokens are JWTs, whose header starts `{"`: `eyJ` in base64url.
    assert!(!trace.contains("eyJ"), "a token leaked into the logs");
}

#[test]
fn stress_runs_the_suite_repeatedly_and_reports_one_outcome() {
    let (code, out, err) = tck(&["stress", "--runs", "3", "--jobs", "3", "--rule", "LIST-2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("3 runs, 3 at once"), "{out}");
    assert!(out.contains(": 1 outcome(s)"), "{out}");
    let (code, _, err) = tck(&["stress", "--runs", "1"]);
    assert_eq!(code, 2, "one run compares nothing: {err}");
}

#[test]
fn convo_tck_toml_is_checked_and_flags_win_over_it() {
    let dir = std::env::temp_dir().join(format!("convo-tck-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |toml: &str, args: &[&str]| {
        std::fs::write(dir.join("convo-tck.toml"), toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run("[adapter]\ntimeout_ms = 0\n", &["run", "--rule", "UPD-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("timeout_ms = 0 is out of range"), "{err}");
    let (code, _, err) = run("[adapter]\nflavour = 1\n", &["run", "--rule", "UPD-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `flavour`"), "{err}");
    // The file names the adapter and its profile; the flag's profile wins.
    let reference = format!(
        "[adapter]\ncommand = \"{} reference-adapter --profile js\"\nprofile = \"js\"\n",
        env!("CARGO_BIN_EXE_convo-tck")
    );
    let (code, out, err) = run(&reference, &["run", "--rule", "UPD-1", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"profile\": \"js\""), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_property_failure_prints_its_shrunk_case_as_a_command_that_replays_it() {
    let (code, out, err) = tck(&[
        "properties",
        "--fault",
        "update-completes-on-ack",
        "--campaign",
        "lifecycle",
        "--cases",
        "16",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("lifecycle: VIOLATED UPD-"), "{out}");
    let command = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .unwrap_or_else(|| panic!("no replay line: {out}"));
    let mut words = shlex::split(command).unwrap();
    assert_eq!(words.remove(0), "convo-tck");
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let (code, again, _) = tck(&args);
    assert_eq!(code, 1, "{command}\n{again}");
    assert!(again.contains("VIOLATED UPD-"), "{again}");
    // Without the fault the same case holds.
    let fixed: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--fault" && *a != "update-completes-on-ack")
        .collect();
    let (code, held, _) = tck(&fixed);
    assert_eq!(code, 0, "{held}");
    assert!(held.contains("held"), "{held}");
}

#[test]
fn property_campaigns_pass_the_reference_client_shard_their_cases_and_refuse_garbage() {
    let (code, out, err) = tck(&["properties", "--cases", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("lifecycle: 4 case(s), every invariant held"),
        "{out}"
    );
    assert!(
        out.contains("lists: 4 case(s), every invariant held"),
        "{out}"
    );
    let (code, out, _) = tck(&["properties", "--cases", "10", "--partition", "3/4"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shard 3/4: 2 of 10 case(s) per campaign"),
        "{out}"
    );
    assert!(out.contains("lifecycle: 2 case(s)"), "{out}");
    let (code, _, err) = tck(&["properties", "--replay", "{\"nope\":1}"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a counterexample"), "{err}");
    let (code, _, err) = tck(&["properties", "--partition", "5/4"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid partition `5/4`"), "{err}");
}

#[test]
fn an_unknown_scenario_name_is_an_error_naming_the_nearest() {
    let (code, _, err) = tck(&[
        "run",
        "--scenario",
        "The same client comes back after the network refused it for 11 minutes",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the nearest is `The same client comes back after the network refused it for 10 minutes`"),
        "{err}"
    );
}

#[test]
fn an_empty_shard_is_not_an_error_and_two_reports_cannot_share_a_file() {
    let dir = std::env::temp_dir().join(format!("convo-tck-empty-shard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, err) = tck(&[
        "run",
        "--partition",
        "1000/1000",
        "--format",
        "json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["scenarios"], 0);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    assert_eq!(report["partition"]["index"], 1000);
    let (code, _, err) = tck(&[
        "run",
        "--format",
        "json,json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would hold two reports"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
