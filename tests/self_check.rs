//! Testing the tester: every planted bug of the reference client must make its target rules FAIL,
//! and only rules it is known to touch; with no bug, every checked rule must PASS.

use std::sync::Arc;

use convo_tck::checks::Verdict;
use convo_tck::rules::{CATALOG, RuleId};
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{Fault, FaultSet, Profile, ReferenceAdapter, Report};

async fn report(profile: Profile, faults: FaultSet) -> Report {
    let adapter = Arc::new(ReferenceAdapter::with_faults(profile, faults));
    let run = run_suite(adapter, &SuiteOptions::default())
        .await
        .expect("the suite runs");
    Report::build(&run)
}

fn failing(report: &Report) -> Vec<RuleId> {
    report
        .rules
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.id)
        .collect()
}

async fn fault_fails_its_rules(fault: Fault) {
    for profile in Profile::ALL {
        let report = report(profile, fault.into()).await;
        assert!(
            report.errors.is_empty(),
            "harness errors under {fault}: {:?}",
            report.errors
        );
        for target in fault.targets() {
            let row = report.rule(*target);
            assert_eq!(
                row.verdict,
                Verdict::Fail,
                "fault `{fault}` must make {target} FAIL in the {profile} profile, but it is {}: {:?}",
                row.verdict,
                row.evidence
            );
            let trace = row
                .trace
                .as_ref()
                .unwrap_or_else(|| panic!("{target} failed without a trace"));
            assert!(
                !trace.entries.is_empty() && !trace.culprits.is_empty(),
                "{target}'s trace points at nothing"
            );
        }
        let allowed: Vec<RuleId> = fault
            .targets()
            .iter()
            .chain(fault.collateral())
            .copied()
            .collect();
        let stray: Vec<RuleId> = failing(&report)
            .into_iter()
            .filter(|r| !allowed.contains(r))
            .collect();
        assert!(
            stray.is_empty(),
            "fault `{fault}` also failed unrelated rules {stray:?} in the {profile} profile"
        );
    }
}

macro_rules! fault_tests {
    ($($name:ident => $fault:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            fault_fails_its_rules($fault).await;
        }
    )*};
}

fault_tests! {
    ops_before_sync_fails_sync_1 => Fault::OpsBeforeSync,
    conversation_ops_before_sync_fails_sync_2 => Fault::ConversationOpsBeforeSync,
    sync_status_regresses_fails_sync_3 => Fault::SyncStatusRegresses,
    update_completes_on_ack_fails_upd_1 => Fault::UpdateCompletesOnAck,
    local_write_wins_fails_upd_2 => Fault::LocalWriteWins,
    stale_event_overwrites_fails_upd_3 => Fault::StaleEventOverwrites,
    await_full_list_fails_list_1 => Fault::AwaitFullList,
    listen_after_fetch_fails_list_2 => Fault::ListenAfterFetch,
    no_dedupe_fails_list_3 => Fault::NoDedupe,
    ignore_unknown_updates_fails_list_4 => Fault::IgnoreUnknownUpdates,
    no_tombstones_fails_list_4 => Fault::NoTombstones,
    first_page_only_fails_list_4 => Fault::FirstPageOnly,
    autoload_messages_fails_msg_1 => Fault::AutoloadMessages,
    silent_new_messages_fails_msg_1 => Fault::SilentNewMessages,
    events_for_unfetched_fails_msg_2 => Fault::EventsForUnfetched,
    drop_fetched_updates_fails_msg_2 => Fault::DropFetchedUpdates,
}

/// Does not compile when a fault is added without an entry in `fault_tests!` above: a fault
/// without a self-check is a check nobody proved.
#[allow(dead_code)]
fn every_fault_has_a_self_check_test(f: Fault) {
    match f {
        Fault::OpsBeforeSync
        | Fault::ConversationOpsBeforeSync
        | Fault::SyncStatusRegresses
        | Fault::UpdateCompletesOnAck
        | Fault::LocalWriteWins
        | Fault::StaleEventOverwrites
        | Fault::AwaitFullList
        | Fault::ListenAfterFetch
        | Fault::NoDedupe
        | Fault::IgnoreUnknownUpdates
        | Fault::NoTombstones
        | Fault::FirstPageOnly
        | Fault::AutoloadMessages
        | Fault::SilentNewMessages
        | Fault::EventsForUnfetched
        | Fault::DropFetchedUpdates => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_passes_every_checked_rule_in_both_profiles() {
    for profile in Profile::ALL {
        let report = report(profile, FaultSet::none()).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        for rule in CATALOG.iter().filter(|r| r.is_implemented()) {
            let row = report.rule(rule.id);
            assert_eq!(
                row.verdict,
                Verdict::Pass,
                "{} in {profile}: {:?}",
                rule.id,
                row.evidence
            );
        }
        assert_eq!(report.exit_code(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_without_checks_are_untested_never_pass() {
    let report = report(Profile::Mobile, FaultSet::none()).await;
    for rule in CATALOG
        .iter()
        .filter(|r| !r.is_implemented() && r.is_judged())
    {
        assert_eq!(
            report.rule(rule.id).verdict,
            Verdict::Untested,
            "{}",
            rule.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_must_failure_gates_with_exit_1_only_in_the_profile_that_requires_it() {
    let mobile = report(Profile::Mobile, Fault::UpdateCompletesOnAck.into()).await;
    assert_eq!(mobile.exit_code(), 1);
    // UPD-1 is a mobile rule: the JS profile reports the failure without gating on it.
    let js = report(Profile::Js, Fault::UpdateCompletesOnAck.into()).await;
    assert_eq!(js.rule(convo_tck::rules::ids::UPD_1).verdict, Verdict::Fail);
    assert_eq!(js.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_same_verdicts() {
    let a = report(Profile::Mobile, Fault::LocalWriteWins.into()).await;
    let b = report(Profile::Mobile, Fault::LocalWriteWins.into()).await;
    let verdicts = |r: &Report| {
        r.rules
            .iter()
            .map(|x| (x.id, x.verdict))
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&a), verdicts(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_is_failed_by_some_fault() {
    // A scenario no planted bug can fail is a check nobody proved can fail.
    let mut all = std::collections::BTreeSet::new();
    let mut failed = std::collections::BTreeSet::new();
    for fault in Fault::ALL {
        let adapter = Arc::new(ReferenceAdapter::with_faults(
            Profile::Mobile,
            (*fault).into(),
        ));
        let run = run_suite(adapter, &SuiteOptions::default())
            .await
            .expect("the suite runs");
        for s in run.scenarios.iter().filter(|s| !s.boundary) {
            let name = format!("{}: {}", s.feature, s.scenario);
            if s.outcomes.iter().any(|o| o.verdict == Verdict::Fail) {
                failed.insert(name.clone());
            }
            all.insert(name);
        }
    }
    let unproven: Vec<_> = all.difference(&failed).collect();
    assert!(
        unproven.is_empty(),
        "no fault fails these scenarios: {unproven:#?}"
    );
}
