//! The terminal writer: the matrix as a table, then each failure with its evidence and trace.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Report, RuleRow};
use crate::checks::Verdict;

fn trace_line(e: &Value, culprits: &[u64]) -> String {
    let seq = e["seq"].as_u64().unwrap_or(0);
    let at = e["at"].as_u64().unwrap_or(0);
    let mark = if culprits.contains(&seq) { ">>" } else { "  " };
    let who = e["instance"]
        .as_str()
        .map(|i| format!(" [{i}]"))
        .unwrap_or_default();
    let kind = e["kind"].as_str().unwrap_or("?");
    let mut rest = e.clone();
    if let Value::Object(m) = &mut rest {
        for k in ["seq", "at", "instance", "kind"] {
            m.remove(k);
        }
    }
    format!(
        "  {mark} #{seq:<4} t+{}.{:03}s{who} {kind} {}",
        at / 1000,
        at % 1000,
        serde_json::to_string(&rest).unwrap_or_default()
    )
}

fn failure(out: &mut String, r: &RuleRow) {
    let _ = writeln!(out, "\nFAIL {} ({}): {}", r.id, r.level, r.summary);
    for e in &r.evidence {
        let _ = writeln!(out, "  - {e}");
    }
    let _ = writeln!(out, "  if this fails, check: {}", r.hint);
    if let Some(t) = &r.trace {
        let _ = writeln!(
            out,
            "  trace of \"{}\" ({}), >> marks what the check pointed at:",
            t.scenario, t.feature
        );
        for e in &t.entries {
            let _ = writeln!(out, "{}", trace_line(e, &t.culprits));
        }
    }
}

/// The report as terminal text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "convo-tck compliance matrix: adapter {}, profile {}, seed {}\n",
        report.adapter, report.profile, report.seed
    );
    let _ = writeln!(
        out,
        "{:<8} {:<8} {:<7} {:<9} RULE",
        "ID", "LEVEL", "PROFILE", "VERDICT"
    );
    for r in &report.rules {
        let level = if r.required {
            r.level.to_string()
        } else {
            format!("({})", r.level)
        };
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<7} {:<9} {}",
            r.id, level, r.profile, r.verdict, r.summary
        );
    }
    let _ = writeln!(
        out,
        "\n(LEVEL) in parentheses: reported, but not required of the {} profile.",
        report.profile
    );
    for r in report.rules.iter().filter(|r| r.verdict == Verdict::Fail) {
        failure(&mut out, r);
    }
    for e in &report.errors {
        let _ = writeln!(out, "\nERROR in \"{}\": {}", e.scenario, e.error);
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} pass, {} fail, {} n/a, {} untested over {} scenarios; {} required MUST failure(s), {} harness error(s): exit {}",
        s.pass,
        s.fail,
        s.not_applicable,
        s.untested,
        s.scenarios,
        s.required_must_failures,
        s.harness_errors,
        s.exit_code
    );
    out
}
