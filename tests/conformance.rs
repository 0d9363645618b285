//! The suite itself, as `cargo test` runs it: every embedded feature against the built-in
//! reference client, in both profiles. Prints the compliance matrix and fails when a rule that has
//! a check does not PASS, or when any scenario hit a harness error.

use std::process::ExitCode;
use std::sync::Arc;

use convo_tck::report::table;
use convo_tck::rules::CATALOG;
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{FaultSet, Profile, ReferenceAdapter, Report, Verdict};

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    for profile in Profile::ALL {
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
