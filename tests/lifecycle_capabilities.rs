//! A client stack that cannot do a lifecycle command (a server-side SDK has no background) is
//! N/A for the scenarios that need it, never FAIL, and its run still passes; the rules it can be
//! judged on are judged.

use std::sync::Arc;

use convo_tck::adapter::CommandKind;
use convo_tck::reference::Config;
use convo_tck::rules::RuleId;
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{Profile, ReferenceAdapter, Report, Verdict};

fn rule(id: &str) -> RuleId {
    id.parse().expect("a catalog id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_without_background_is_not_applicable_for_it_and_judged_on_the_rest() {
    let adapter = Arc::new(ReferenceAdapter::new(Config {
        profile: Profile::Mobile,
        lacks: vec![CommandKind::Background, CommandKind::Foreground],
        ..Config::default()
    }));
    let rules = ["LIFE-1", "LIFE-2", "LIFE-3", "LIFE-5"].map(rule).to_vec();
    let run = run_suite(
        adapter,
        &SuiteOptions {
            rules,
            ..SuiteOptions::default()
        },
    )
    .await
    .expect("the suite runs");
    let report = Report::build(&run);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let background: Vec<_> = run
        .scenarios
        .iter()
        .filter(|s| s.scenario.contains("background"))
        .collect();
    assert!(!background.is_empty());
    for s in &background {
        let why = s.not_applicable.as_deref().unwrap_or_default();
        assert!(why.contains("`background`"), "{}: {why:?}", s.scenario);
    }
    assert_eq!(report.rule(rule("LIFE-2")).verdict, Verdict::NotApplicable);
    // The outages need no lifecycle command: they are judged.
    assert_eq!(report.rule(rule("LIFE-1")).verdict, Verdict::Pass);
    assert_ne!(report.rule(rule("LIFE-5")).verdict, Verdict::Fail);
    assert_eq!(report.exit_code(), 0);
}
