//! The real, unmodified `@twilio/conversations` 3.0.1 under the kit: the whole suite against
//! `examples/adapters/twilio-js` (the SDK over the backend's twilsock face), and its verdicts
//! must be the ones recorded in `docs/results/twilio-conversations-js-3.0.1.md`, so a change of
//! the kit (or of the emulation) that flips one is seen. The adapter's pinned packages are
//! installed with `npm ci` on first use (CI installs them up front).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const RESULTS: &str = "docs/results/twilio-conversations-js-3.0.1.md";

/// The verdicts the results file records: its matrix (the kit's table, in a `text` block).
fn recorded() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(RESULTS)).expect("the results file");
    let matrix = text
        .split("<!-- matrix -->")
        .nth(1)
        .and_then(|after| after.split("```").nth(1))
        .expect("the results file's matrix: a fenced block after <!-- matrix -->");
    matrix
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let id = *cells.first()?;
            let is_rule = id.contains('-')
                && id
                    .split('-')
                    .nth(1)
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            (is_rule && cells.len() > 3).then(|| (id.to_owned(), cells[3].to_owned()))
        })
        .collect()
}

fn installed(dir: &Path) {
    if dir.join("node_modules/@twilio/conversations").exists() {
        return;
    }
    let out = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_real_sdk_gets_the_recorded_verdicts() {
    let dir = root().join("examples/adapters/twilio-js");
    installed(&dir);
    let report =
        std::env::temp_dir().join(format!("convo-tck-twilio-js-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .current_dir(root())
        .args(["run", "--jobs", "2", "--adapter"])
        .arg(format!("node {}", dir.join("adapter.js").display()))
        .arg("--format")
        .arg(format!("json={}", report.display()))
        .output()
        .expect("the kit runs");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap_or_else(|e| {
            panic!(
                "no report ({e}); the kit said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .expect("a JSON report");
    let _ = std::fs::remove_file(&report);
    let computed: BTreeMap<String, String> = json["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let verdict = match r["verdict"].as_str().unwrap_or_default() {
                "pass" => "PASS",
                "fail" => "FAIL",
                "not_applicable" => "N/A",
                "untested" => "UNTESTED",
                other => other,
            };
            (
                r["id"].as_str().unwrap_or_default().to_owned(),
                verdict.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        json["summary"]["harness_errors"], 0,
        "harness errors against the real SDK: {}",
        json["errors"]
    );
    let recorded = recorded();
    let flipped: Vec<String> = computed
        .iter()
        .filter(|(id, v)| recorded.get(*id) != Some(v))
        .map(|(id, v)| format!("{id}: recorded {:?}, now {v}", recorded.get(id)))
        .collect();
    assert!(
        flipped.is_empty(),
        "verdicts against the real SDK differ from {RESULTS}:\n{}",
        flipped.join("\n")
    );
    assert_eq!(recorded.len(), computed.len(), "every rule is recorded");
}
