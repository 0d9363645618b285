//! The JUnit XML writer, for CI dashboards (GitHub, GitLab, Jenkins render it).
//!
//! One `<testsuite>` per report (a report judges one profile: `convo-tck.<profile>`), one
//! `<testcase>` per catalog rule (`classname` `convo-tck.<profile>.<group>`, `name` the rule id
//! and text):
//! - FAIL is a `<failure>` whose `type` says whether it gates the run (`MUST`) or not
//!   (`SHOULD`, or `not-required` for another profile's rule), with the evidence, the replay
//!   commands and the minimal trace in its text;
//! - N/A and UNTESTED are `<skipped>` with the reason;
//! - every harness or adapter error is one more test case with an `<error>`.
//!
//! Text is escaped for XML 1.0: characters it cannot carry (controls other than tab, newline
//! and carriage return) become `\u{..}` escapes, so an adapter's output never makes the file
//! invalid.

use std::fmt::Write as _;

use super::{Report, RuleRow};
use crate::rules::{Level, Verdict};

/// `text` escaped for an XML attribute value or element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The rule's group as a class name: `UPD-1` → `UPD`.
fn group(row: &RuleRow) -> &'static str {
    let id = row.id.as_str();
    id.split_once('-').map_or(id, |(g, _)| g)
}

fn failure_text(row: &RuleRow) -> String {
    let mut text = format!("{} ({}): {}\n", row.id, row.level, row.summary);
    for line in row.failure_lines() {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn testsuite(out: &mut String, report: &Report) {
    let profile = report.profile;
    let failures = report
        .rules
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .count();
    let skipped = report
        .rules
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::NotApplicable | Verdict::Untested))
        .count();
    let tests = report.rules.len() + report.errors.len();
    let _ = writeln!(
        out,
        r#"  <testsuite name="convo-tck.{profile}" tests="{tests}" failures="{failures}" errors="{}" skipped="{skipped}" time="0">"#,
        report.errors.len()
    );
    let _ = writeln!(out, "    <properties>");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            out,
            r#"      <property name="{}" value="{}"/>"#,
            escape(name),
            escape(value)
        );
    };
    property("adapter", &report.adapter);
    property("profile", &profile.to_string());
    property("seed", &report.seed.to_string());
    if let Some(p) = report.partition {
        property("partition", &p.to_string());
    }
    property("scenarios", &report.summary.scenarios.to_string());
    property("exit_code", &report.summary.exit_code.to_string());
    let _ = writeln!(out, "    </properties>");
    for row in &report.rules {
        let _ = write!(
            out,
            r#"    <testcase name="{}" classname="convo-tck.{profile}.{}" time="0""#,
            escape(&format!("{}: {}", row.id, row.summary)),
            group(row)
        );
        match row.verdict {
            Verdict::Pass => {
                let _ = writeln!(out, "/>");
            }
            Verdict::Fail => {
                let kind = match (row.required, row.level) {
                    (true, Level::Must) => "MUST",
                    (true, _) => "SHOULD",
                    (false, _) => "not-required",
                };
                let first = row.evidence.first().map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>",
                    escape(first),
                    escape(&failure_text(row))
                );
            }
            Verdict::NotApplicable | Verdict::Untested => {
                let why = row.evidence.join("; ");
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&format!("{}: {why}", row.verdict))
                );
            }
        }
    }
    for e in &report.errors {
        let mut text = format!("{}\n", e.error);
        if let Some(command) = &e.replay {
            let _ = writeln!(text, "rerun: {command}");
        }
        let _ = writeln!(
            out,
            "    <testcase name=\"{}\" classname=\"convo-tck.{profile}.harness\" time=\"0\">\n      <error message=\"{}\" type=\"harness\">{}</error>\n    </testcase>",
            escape(&if e.rules.is_empty() {
                format!("harness: {}", e.scenario)
            } else {
                // One scenario may have an error per rule: each case needs a name of its own.
                format!(
                    "harness: {} ({})",
                    e.scenario,
                    e.rules
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
            escape(&e.error),
            escape(&text)
        );
    }
    let _ = writeln!(out, "  </testsuite>");
}

/// The reports as one JUnit XML document, a test suite each (one per profile).
pub fn render_all(reports: &[&Report]) -> String {
    let count = |f: &dyn Fn(&Report) -> usize| reports.iter().map(|r| f(r)).sum::<usize>();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="convo-tck" tests="{}" failures="{}" errors="{}" time="0">"#,
        count(&|r| r.rules.len() + r.errors.len()),
        count(&|r| r.summary.fail),
        count(&|r| r.errors.len()),
    );
    for r in reports {
        testsuite(&mut out, r);
    }
    out.push_str("</testsuites>\n");
    out
}

/// The report as JUnit XML.
pub fn render(report: &Report) -> String {
    render_all(&[report])
}
