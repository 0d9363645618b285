//! Determinism under load: the same suite, run many times and several at once, must give the
//! same report every time.
//!
//! [`repeat`] runs the suite `runs` times, `jobs` at once (each run with its own backends on
//! fresh ports, as concurrent CI jobs would), and groups the runs by their [`signature`]: the
//! report reduced to what must not vary. A run is deterministic when every run has one
//! signature.
//!
//! What must not vary: every rule's verdict, every harness error, the exit code, and, for a
//! compliant client, every line of evidence (a faulty client's evidence may differ: see
//! [`signature`]). Within the evidence, what may vary, and is normalised away (these are the
//! *documented variable fields*):
//! - journal sequence numbers (`#42`): the client's requests and the backend's frames are
//!   journaled as they happen, and independent sources interleave differently run to run;
//! - command numbers (`command 9`): a settle step takes as many rounds as the client needs to be
//!   quiet (see [`crate::harness::Driver::settle`]), so later commands are numbered differently;
//! - token fingerprints (`tok:…`): every backend signs with a key of its own, drawn at random;
//! - loopback ports (`127.0.0.1:…`);
//! - the scene's storage directory (`convo-tck-storage-…`), a fresh temporary directory;
//! - the order of the conversation sids in a list a client reports (`["CH…","CH…"]`): a
//!   conversation that reached the client both by a page and by an event sits where the client's
//!   first delivery put it; checks compare lists as sets and multisets, never by position.
//!
//! Must not import: the reference client (a stress run takes any adapter).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use regex::Regex;

use crate::adapter::Adapter;
use crate::report::Report;
use crate::rules::Verdict;
use crate::scenario::{SuiteError, SuiteOptions, run_suite};

static SEQ: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"#\d+").expect("a valid regex"));
static COMMAND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"command \d+").expect("a valid regex"));
static FINGERPRINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"tok:[0-9a-f]{12}").expect("a valid regex"));
static PORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"127\.0\.0\.1:\d+").expect("a valid regex"));
static STORAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"convo-tck-storage-[A-Za-z0-9]+").expect("a valid regex"));
static SID_LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\[("CH[0-9a-f]+",?)+\]"#).expect("a valid regex"));

/// `text` with the documented variable fields normalised (see the module's documentation).
pub fn normalise(text: &str) -> String {
    let text = SEQ.replace_all(text, "#_");
    let text = COMMAND.replace_all(&text, "command _");
    let text = FINGERPRINT.replace_all(&text, "tok:_");
    let text = PORT.replace_all(&text, "127.0.0.1:_");
    let text = STORAGE.replace_all(&text, "convo-tck-storage-_");
    SID_LIST
        .replace_all(&text, |c: &regex::Captures<'_>| {
            let inner = c[0].trim_start_matches('[').trim_end_matches(']');
            let mut sids: Vec<&str> = inner.split(',').collect();
            sids.sort_unstable();
            format!("[{}]", sids.join(","))
        })
        .into_owned()
}

/// A report reduced to what must be the same in every run, one line per fact: every rule's
/// verdict, every harness error and the exit code; and when no rule failed (a compliant
/// client), every line of evidence too. A client that breaks a rule by racing itself (several
/// requests in flight, an event against a page) can break it in another scenario or way from
/// run to run, and the evidence of its other rules shows what it did differently; the kit
/// reports what the client did. Which rules it breaks is what must not vary.
pub fn signature(report: &Report) -> String {
    let compliant = report.rules.iter().all(|r| r.verdict != Verdict::Fail);
    let mut lines = Vec::new();
    for row in &report.rules {
        lines.push(format!("{} {}", row.id, row.verdict));
        if row.verdict == Verdict::Fail {
            lines.push(format!("  trace: {}", row.trace.is_some()));
        }
        if compliant {
            lines.extend(row.evidence.iter().map(|e| format!("  {}", normalise(e))));
        }
    }
    for e in &report.errors {
        lines.push(format!("error: {}: {}", e.scenario, normalise(&e.error)));
    }
    lines.push(format!("exit {}", report.exit_code()));
    lines.join("\n")
}

/// One group of runs that gave the same signature.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The signature.
    pub signature: String,
    /// The runs (0-based, in the order they were started) that gave it.
    pub runs: Vec<usize>,
}

/// What a stress run found.
#[derive(Clone, Debug)]
pub struct StressReport {
    /// Runs made.
    pub runs: usize,
    /// Runs at once.
    pub jobs: usize,
    /// The distinct outcomes, the most frequent first.
    pub outcomes: Vec<Outcome>,
    /// Wall time of the whole stress run.
    pub wall: Duration,
}

impl StressReport {
    /// Whether every run gave the same report.
    pub fn is_deterministic(&self) -> bool {
        self.outcomes.len() <= 1
    }

    /// The lines in which the two most frequent outcomes differ (`-` the most frequent, `+` the
    /// other), or nothing when deterministic.
    pub fn difference(&self) -> Vec<String> {
        let [a, b, ..] = self.outcomes.as_slice() else {
            return Vec::new();
        };
        let left: Vec<&str> = a.signature.lines().collect();
        let right: Vec<&str> = b.signature.lines().collect();
        let mut out: Vec<String> = left
            .iter()
            .filter(|l| !right.contains(l))
            .map(|l| format!("- {l}"))
            .collect();
        out.extend(
            right
                .iter()
                .filter(|l| !left.contains(l))
                .map(|l| format!("+ {l}")),
        );
        out
    }
}

/// Runs the suite `runs` times, `jobs` at once, with a fresh adapter from `adapter` for each
/// run, and groups the runs by [`signature`].
pub async fn repeat(
    adapter: impl Fn() -> Arc<dyn Adapter>,
    opts: &SuiteOptions,
    runs: usize,
    jobs: usize,
) -> Result<StressReport, SuiteError> {
    let started = Instant::now();
    let jobs = jobs.max(1);
    let results: Vec<(usize, Result<String, SuiteError>)> =
        futures::stream::iter((0..runs).map(|i| {
            let adapter = adapter();
            let opts = opts.clone();
            async move {
                let run = run_suite(adapter, &opts).await;
                (i, run.map(|r| signature(&Report::build(&r))))
            }
        }))
        .buffer_unordered(jobs)
        .collect()
        .await;
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, result) in results {
        groups.entry(result?).or_default().push(i);
    }
    let mut outcomes: Vec<Outcome> = groups
        .into_iter()
        .map(|(signature, mut runs)| {
            runs.sort_unstable();
            Outcome { signature, runs }
        })
        .collect();
    outcomes.sort_by(|a, b| b.runs.len().cmp(&a.runs.len()).then(a.runs.cmp(&b.runs)));
    Ok(StressReport {
        runs,
        jobs,
        outcomes,
        wall: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_variable_fields_are_normalised_and_nothing_else() {
        let a = r#"c-3 (#12 t+1.000s [ref-1] reply to command 9 (list): {"conversations":["CH02","CH01"]}) token tok:0123456789ab at 127.0.0.1:4242"#;
        let b = r#"c-3 (#31 t+1.000s [ref-1] reply to command 8 (list): {"conversations":["CH01","CH02"]}) token tok:ba9876543210 at 127.0.0.1:5151"#;
        assert_eq!(normalise(a), normalise(b));
        // Virtual times, names and counts are facts, not noise.
        let c = a.replace("t+1.000s", "t+2.000s");
        assert_ne!(normalise(a), normalise(&c));
        let d = a.replace("c-3", "c-4");
        assert_ne!(normalise(a), normalise(&d));
        let e = a.replace(r#""CH02","CH01""#, r#""CH02""#);
        assert_ne!(normalise(a), normalise(&e));
    }
}
