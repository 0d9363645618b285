//! The Markdown writer, for a pull-request comment or a CI job summary: the verdict, the matrix
//! with icons, and for every FAIL its evidence, the command that replays it, and a Mermaid
//! `sequenceDiagram` of its minimal trace (harness, client, REST and event channel as
//! participants; the entries the check pointed at highlighted), with the trace as text below.
//!
//! Everything quoted from a run (evidence, adapter output in the journal) is escaped: it cannot
//! open HTML, break the table, or end a diagram or a code block.

use std::fmt::Write as _;

use super::{HarnessError, Report, RuleRow};
use crate::journal::{Entry, Flow, Party};
use crate::rules::Verdict;

/// The most entries a diagram draws; the rest of a long trace is elided around the culprits.
pub const MAX_DIAGRAM_ENTRIES: usize = 30;
/// The most entries the text trace under a diagram lists (the last ones).
pub const MAX_TEXT_ENTRIES: usize = 200;
/// The longest message text in a diagram, in characters.
const MAX_MESSAGE_CHARS: usize = 110;
/// Entries drawn before each culprit, for context.
const CONTEXT_BEFORE: usize = 4;

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::NotApplicable => "➖",
        Verdict::Untested => "❔",
    }
}

/// `text` as inline Markdown: no HTML, no emphasis, no links, no math, no mentions, no table
/// breaks, one line.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // No @-mention of a user or team when the report is posted as a comment.
            '@' => out.push_str("@\u{2060}"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code fence longer than any run of backticks in `content`.
fn fence(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// `content` as an inline code span (shown as is): delimited by more backticks than it holds in
/// a row, on one line.
fn code_span(content: &str) -> String {
    let line: String = content
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    format!("{ticks} {line} {ticks}")
}

fn code_block(out: &mut String, lang: &str, content: &str) {
    indented_code_block(out, "", lang, content);
}

/// A fenced block inside a list item: every line indented like the item's text.
fn indented_code_block(out: &mut String, indent: &str, lang: &str, content: &str) {
    let f = fence(content);
    let _ = writeln!(out, "{indent}{f}{lang}");
    for line in content.trim_end().lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent}{f}");
}

/// `text` as a Mermaid sequence-diagram message. Characters Mermaid's grammar gives a meaning
/// become `#NNN;` entity codes, which it renders as the character: `;` ends a statement, `#`
/// starts a comment or an entity, `<` `>` make `<br>` a line break, `&` starts an HTML entity;
/// so do other ASCII punctuation and controls not known to be safe. Newlines become spaces;
/// other Unicode passes (tests/tools/README.md has the parser's evidence for each).
pub fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (count, c) in text.chars().enumerate() {
        if count == MAX_MESSAGE_CHARS {
            out.push_str("#8230;");
            break;
        }
        match c {
            'a'..='z'
            | 'A'..='Z'
            | '0'..='9'
            | ' '
            | '.'
            | ','
            | '/'
            | '-'
            | '_'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '='
            | '+'
            | '\''
            | '"'
            | ':'
            | '@'
            | '?'
            | '!'
            | '*'
            | '$'
            | '^'
            | '~'
            | '|' => out.push(c),
            '\n' | '\r' | '\t' => out.push(' '),
            c if !c.is_ascii() && !c.is_control() => out.push(c),
            c => {
                let _ = write!(out, "#{};", c as u32);
            }
        }
    }
    out
}

fn alias(p: Party) -> &'static str {
    match p {
        Party::Harness => "H",
        Party::Client => "C",
        Party::Rest => "R",
        Party::Events => "E",
    }
}

/// Which trace entries a diagram draws: every culprit, the entries just before each, then the
/// scenario's story (commands, replies, controls) while the budget lasts; in trace order.
fn drawn(entries: &[Entry], culprits: &[u64]) -> Vec<usize> {
    if entries.len() <= MAX_DIAGRAM_ENTRIES {
        return (0..entries.len()).collect();
    }
    let mut keep = vec![false; entries.len()];
    let mut budget = MAX_DIAGRAM_ENTRIES;
    let mut take = |i: usize, keep: &mut Vec<bool>| {
        if !keep[i] && budget > 0 {
            keep[i] = true;
            budget -= 1;
        }
    };
    let at: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| culprits.contains(&e.seq))
        .map(|(i, _)| i)
        .collect();
    // The last culprit first: the trace ends at it, and it is the one the failure turned on.
    for &i in at.iter().rev() {
        take(i, &mut keep);
    }
    for back in 1..=CONTEXT_BEFORE {
        for &i in at.iter().rev() {
            if let Some(j) = i.checked_sub(back) {
                take(j, &mut keep);
            }
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.flow(), Flow::Call(Party::Harness, _)) {
            take(i, &mut keep);
        }
    }
    (0..entries.len()).filter(|&i| keep[i]).collect()
}

/// Sids as diagrams write them: `CH…0033`, the part that tells them apart (the text trace keeps
/// them whole).
fn short_sids(text: &str) -> std::borrow::Cow<'_, str> {
    static SID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b([A-Z]{2})0*([0-9a-f]{28})([0-9a-f]{4})\b").expect("a valid regex")
    });
    SID.replace_all(text, "$1…$3")
}

/// How diagram lines are labelled: the time only when it moved since the line before, the
/// instance only when the trace has more than one.
struct Labels {
    instances: bool,
    last_time: Option<crate::clock::VirtualInstant>,
}

fn diagram_line(e: &Entry, labels: &mut Labels) -> String {
    let who = e
        .instance
        .as_ref()
        .filter(|_| labels.instances)
        .map(|i| format!(" [{i}]"))
        .unwrap_or_default();
    let when = if labels.last_time == Some(e.at) {
        String::new()
    } else {
        format!(" {}", e.at)
    };
    labels.last_time = Some(e.at);
    let text = mermaid_text(&format!(
        "#{}{when}{who} {}",
        e.seq,
        short_sids(&e.describe())
    ));
    match e.flow() {
        Flow::Call(a, b) => format!("{}->>{}: {text}", alias(a), alias(b)),
        Flow::Answer(a, b) => format!("{}-->>{}: {text}", alias(a), alias(b)),
        Flow::Push(a, b) => format!("{}-){}: {text}", alias(a), alias(b)),
        Flow::Broken(a, b) => format!("{}-x{}: {text}", alias(a), alias(b)),
        Flow::Note(a) => format!("Note over {}: {text}", alias(a)),
    }
}

/// The Mermaid `sequenceDiagram` of a trace, culprits highlighted in red.
pub fn sequence_diagram(entries: &[Entry], culprits: &[u64]) -> String {
    let mut out = String::from(
        "sequenceDiagram\n    participant H as Harness\n    participant C as Client\n    participant R as REST\n    participant E as Events\n",
    );
    let keep = drawn(entries, culprits);
    let mut next = 0;
    let elided = |out: &mut String, n: usize| {
        let _ = writeln!(
            out,
            "    Note over H,E: {}",
            mermaid_text(&format!(
                "... {n} {} not drawn ...",
                if n == 1 { "entry" } else { "entries" }
            )),
        );
    };
    let mut instances: Vec<&crate::adapter::InstanceId> =
        entries.iter().filter_map(|e| e.instance.as_ref()).collect();
    instances.sort();
    instances.dedup();
    let mut labels = Labels {
        instances: instances.len() > 1,
        last_time: None,
    };
    for &i in &keep {
        if i > next {
            elided(&mut out, i - next);
        }
        let e = &entries[i];
        let culprit = culprits.contains(&e.seq);
        if culprit {
            out.push_str("    rect rgb(255, 214, 214)\n");
            let _ = writeln!(out, "        {}", diagram_line(e, &mut labels));
            out.push_str("    end\n");
        } else {
            let _ = writeln!(out, "    {}", diagram_line(e, &mut labels));
        }
        next = i + 1;
    }
    if next < entries.len() {
        elided(&mut out, entries.len() - next);
    }
    out
}

/// The traces already drawn in a report: `(feature, scenario, entries)` and the rule drawn for.
type Drawn = Vec<(String, String, usize, crate::rules::RuleId)>;

fn failure(out: &mut String, r: &RuleRow, drawn_before: &mut Drawn) {
    let level = if r.required {
        r.level.to_string()
    } else {
        format!("{}, not required of this profile", r.level)
    };
    let _ = writeln!(
        out,
        "\n### {} {} ({level}): {}\n",
        icon(r.verdict),
        r.id,
        inline(r.summary)
    );
    for e in &r.evidence {
        let _ = writeln!(out, "- {}", inline(e));
    }
    let _ = writeln!(out, "\nIf this fails, check: {}", inline(r.hint));
    if !r.replay.is_empty() {
        let _ = writeln!(out, "\nRerun locally:\n");
        code_block(out, "sh", &r.replay.join("\n"));
    }
    let Some(t) = &r.trace else {
        return;
    };
    let pointed = t
        .culprits
        .iter()
        .map(|c| format!("#{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some((_, _, _, rule)) = drawn_before
        .iter()
        .find(|(f, s, n, _)| *f == t.feature && *s == t.scenario && *n == t.entries.len())
    {
        let _ = writeln!(
            out,
            "\nTrace: the journal of *{}* drawn above for {rule}; this check pointed at {pointed}.",
            inline(&t.scenario)
        );
        return;
    }
    drawn_before.push((t.feature.clone(), t.scenario.clone(), t.entries.len(), r.id));
    let _ = writeln!(
        out,
        "\nTrace of *{}* ({}): {} entries up to the last one the check pointed at ({pointed}, highlighted).\n",
        inline(&t.scenario),
        inline(&t.feature),
        t.entries.len()
    );
    code_block(out, "mermaid", &sequence_diagram(&t.entries, &t.culprits));
    let skipped = t.entries.len().saturating_sub(MAX_TEXT_ENTRIES);
    let _ = writeln!(
        out,
        "\n<details><summary>The trace as text{}</summary>\n",
        if skipped > 0 {
            format!(
                " (the last {MAX_TEXT_ENTRIES}; {skipped} earlier entries are in the JSON report)"
            )
        } else {
            String::new()
        }
    );
    let text: Vec<String> = t.entries[skipped..].iter().map(|e| t.marked(e)).collect();
    code_block(out, "text", &text.join("\n"));
    out.push_str("\n</details>\n");
}

fn harness_error(out: &mut String, e: &HarnessError) {
    let _ = writeln!(out, "- **{}**: {}", inline(&e.scenario), inline(&e.error));
    if let Some(command) = &e.replay {
        out.push('\n');
        indented_code_block(out, "  ", "sh", command);
        out.push('\n');
    }
}

/// The report as Markdown.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let headline = match s.exit_code {
        super::EXIT_PASS => "✅ conformant".to_owned(),
        super::EXIT_FAIL => format!(
            "❌ {} required MUST rule(s) failed",
            s.required_must_failures
        ),
        _ => format!("💥 {} harness or adapter error(s)", s.harness_errors),
    };
    let _ = writeln!(out, "## convo-tck: {headline}\n");
    let _ = writeln!(
        out,
        "Adapter {}, profile **{}**, seed {}{}: {} scenario(s); {} pass, {} fail, {} n/a, {} untested; exit {}.\n",
        code_span(&report.adapter),
        report.profile,
        report.seed,
        report
            .partition
            .map(|p| format!(", shard {p}"))
            .unwrap_or_default(),
        s.scenarios,
        s.pass,
        s.fail,
        s.not_applicable,
        s.untested,
        s.exit_code
    );
    out.push_str("| | Rule | Level | Profile | Verdict | Rule text |\n|---|---|---|---|---|---|\n");
    for r in &report.rules {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            icon(r.verdict),
            r.id,
            r.level_shown(),
            r.profile,
            r.verdict,
            inline(r.summary)
        );
    }
    let _ = writeln!(
        out,
        "\n(LEVEL) in parentheses: reported, but not required of the {} profile.",
        report.profile
    );
    let failed: Vec<&RuleRow> = report
        .rules
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\n## Failures");
        let mut drawn_before = Drawn::new();
        for r in failed {
            failure(&mut out, r, &mut drawn_before);
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\n## Harness and adapter errors\n");
        for e in &report.errors {
            harness_error(&mut out, e);
        }
    }
    out
}
