//! The terminal writer: the matrix as a table, then each failure with its evidence and trace.

use std::fmt::Write as _;

use super::{Report, RuleRow};
use crate::rules::Verdict;

fn failure(out: &mut String, r: &RuleRow) {
    let _ = writeln!(out, "\nFAIL {} ({}): {}", r.id, r.level, r.summary);
    for line in r.failure_lines() {
        let _ = writeln!(out, "  {line}");
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
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<7} {:<9} {}",
            r.id,
            r.level_shown(),
            r.profile,
            r.verdict,
            r.summary
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
        if let Some(command) = &e.replay {
            let _ = writeln!(out, "  rerun: {command}");
        }
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
