//! The suite itself, as `cargo test` runs it: every embedded feature against the built-in
//! reference client, in both profiles. Prints the compliance matrix and fails when a rule that has
//! a check does not PASS, or when any scenario hit a harness error.
//!
//! The target has no libtest harness (`harness = false`), so it speaks just enough of libtest's
//! command line for `cargo nextest run` and for name filters: each profile is one test,
//! `suite::<profile>`.
//!
//! - `--list [--format terse]` prints `suite::js: test` and `suite::mobile: test`; with
//!   `--ignored` the list is empty (no profile is ignored).
//! - Free arguments are name filters (substrings, or whole names with `--exact`), `--skip NAME`
//!   excludes; `--ignored` selects nothing. nextest runs each test as `--exact NAME --nocapture`.
//! - Anything else (`--nocapture`, `--test-threads 2`, `--color always`...) is accepted and ignored:
//!   output is never captured and the profiles run one after the other.

use std::process::ExitCode;
use std::sync::Arc;

use convo_tck::report::table;
use convo_tck::rules::CATALOG;
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{FaultSet, Profile, ReferenceAdapter, Report, Verdict};

/// libtest options whose value is the next argument (or follows `=`); the value is not a filter.
const TAKES_VALUE: &[&str] = &[
    "--format",
    "--color",
    "--test-threads",
    "--skip",
    "--logfile",
    "--shuffle-seed",
    "-Z",
];

/// What the command line asks for, as libtest reads it.
#[derive(Debug, Default)]
struct Args {
    list: bool,
    terse: bool,
    /// `--ignored`: only ignored tests, and no profile is ignored.
    ignored_only: bool,
    exact: bool,
    filters: Vec<String>,
    skips: Vec<String>,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                parsed.filters.extend(args.by_ref());
                break;
            }
            if !arg.starts_with('-') {
                parsed.filters.push(arg);
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let value = if TAKES_VALUE.contains(&flag.as_str()) {
                inline.or_else(|| args.next())
            } else {
                None
            };
            match flag.as_str() {
                "--list" => parsed.list = true,
                "--ignored" => parsed.ignored_only = true,
                "--exact" => parsed.exact = true,
                "--format" => parsed.terse = value.as_deref() == Some("terse"),
                "--skip" => parsed.skips.extend(value),
                _ => {}
            }
        }
        parsed
    }

    fn matches(&self, name: &str, pattern: &str) -> bool {
        if self.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    }

    /// The profiles these arguments select, each with its test name.
    fn selected(&self) -> Vec<(String, Profile)> {
        if self.ignored_only {
            return Vec::new();
        }
        Profile::ALL
            .into_iter()
            .map(|profile| (format!("suite::{profile}"), profile))
            .filter(|(name, _)| {
                (self.filters.is_empty() || self.filters.iter().any(|f| self.matches(name, f)))
                    && !self.skips.iter().any(|s| self.matches(name, s))
            })
            .collect()
    }
}

fn main() -> ExitCode {
    let args = Args::parse(std::env::args().skip(1));
    let selected = args.selected();
    if args.list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        if !args.terse {
            println!("\n{} tests, 0 benchmarks", selected.len());
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        println!("conformance: no profile selected");
        return ExitCode::SUCCESS;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    for (_, profile) in selected {
        let adapter = Arc::new(ReferenceAdapter::with_faults(profile, FaultSet::none()));
        let opts = SuiteOptions {
            progress: true,
            ..SuiteOptions::default()
        };
        let run = runtime
            .block_on(run_suite(adapter, &opts))
            .expect("the suite runs");
        let report = Report::build(&run);
        println!("{}", table::render(&report));
        for rule in CATALOG.iter().filter(|r| r.is_implemented()) {
            let row = report.rule(rule.id);
            if row.verdict == Verdict::Pass {
                passed += 1;
            } else {
                failed += 1;
                eprintln!(
                    "{} is {} for the reference client in the {profile} profile: {:?}",
                    rule.id, row.verdict, row.evidence
                );
            }
        }
        for e in &report.errors {
            failed += 1;
            eprintln!("harness error in {}: {}", e.scenario, e.error);
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
