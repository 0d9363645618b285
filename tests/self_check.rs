//! Testing the tester, driven from the catalog: every planted bug the catalog lists for a rule
//! must make that rule FAIL with a trace, and fail no rule the catalog does not expect it to;
//! with no bug, every checked rule must PASS.
//!
//! `self_checks!` holds one test per (rule, fault) pair of the catalog, named with the rule's
//! id; `every_fault_of_the_catalog_has_its_self_check` fails when the catalog gains a pair the
//! list lacks, so no rule can be added without its fault and its test.

use std::sync::Arc;

use convo_tck::rules::{self, CATALOG, RuleId};
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{Fault, FaultSet, Profile, ReferenceAdapter, Report, Verdict};

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

async fn fault_fails_its_rule(rule: &str, fault: Fault) {
    let target: RuleId = rule.parse().expect("a catalog id");
    assert!(
        target.rule().faults.contains(&fault),
        "the catalog does not list `{fault}` for {target}"
    );
    for profile in Profile::ALL {
        let report = report(profile, fault.into()).await;
        assert!(
            report.errors.is_empty(),
            "harness errors under {fault}: {:?}",
            report.errors
        );
        let row = report.rule(target);
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
        let allowed: Vec<RuleId> = rules::targets_of(fault)
            .into_iter()
            .chain(rules::collateral_of(fault))
            .collect();
        let stray: Vec<RuleId> = failing(&report)
            .into_iter()
            .filter(|r| !allowed.contains(r))
            .collect();
        assert!(
            stray.is_empty(),
            "fault `{fault}` also failed {stray:?} in the {profile} profile, which the catalog does not expect: {:?}",
            stray
                .iter()
                .map(|r| &report.rule(*r).evidence)
                .collect::<Vec<_>>()
        );
    }
}

macro_rules! self_checks {
    ($($rule:literal $name:ident => $fault:expr,)*) => {
        /// The (rule, fault) pairs that have a test below.
        const SELF_CHECKS: &[(&str, Fault)] = &[$(($rule, $fault)),*];

        $(
            #[doc = concat!($rule, ": the planted fault makes it FAIL, and nothing unexpected.")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                fault_fails_its_rule($rule, $fault).await;
            }
        )*
    };
}

self_checks! {
    "SYNC-1" sync_1_fails_under_ops_before_sync => Fault::OpsBeforeSync,
    "SYNC-2" sync_2_fails_under_conversation_ops_before_sync => Fault::ConversationOpsBeforeSync,
    "SYNC-3" sync_3_fails_under_sync_status_regresses => Fault::SyncStatusRegresses,
    "UPD-1" upd_1_fails_under_update_completes_on_ack => Fault::UpdateCompletesOnAck,
    "UPD-2" upd_2_fails_under_local_write_wins => Fault::LocalWriteWins,
    "UPD-3" upd_3_fails_under_stale_event_overwrites => Fault::StaleEventOverwrites,
    "LIST-1" list_1_fails_under_await_full_list => Fault::AwaitFullList,
    "LIST-2" list_2_fails_under_listen_after_fetch => Fault::ListenAfterFetch,
    "LIST-3" list_3_fails_under_no_dedupe => Fault::NoDedupe,
    "LIST-4" list_4_fails_under_ignore_unknown_updates => Fault::IgnoreUnknownUpdates,
    "LIST-4" list_4_fails_under_no_tombstones => Fault::NoTombstones,
    "LIST-4" list_4_fails_under_first_page_only => Fault::FirstPageOnly,
    "LIST-4" list_4_fails_under_tombstones_forever => Fault::TombstonesForever,
    "MSG-1" msg_1_fails_under_autoload_messages => Fault::AutoloadMessages,
    "MSG-1" msg_1_fails_under_silent_new_messages => Fault::SilentNewMessages,
    "MSG-2" msg_2_fails_under_events_for_unfetched => Fault::EventsForUnfetched,
    "MSG-2" msg_2_fails_under_drop_fetched_updates => Fault::DropFetchedUpdates,
    "LIFE-1" life_1_fails_under_recreate_on_reconnect => Fault::RecreateOnReconnect,
    "LIFE-1" life_1_fails_under_lose_outage_events => Fault::LoseOutageEvents,
    "LIFE-1" life_1_fails_under_no_heartbeat => Fault::NoHeartbeat,
    "LIFE-2" life_2_fails_under_shutdown_on_background => Fault::ShutdownOnBackground,
    "LIFE-3" life_3_fails_under_shutdown_on_error => Fault::ShutdownOnError,
    "LIFE-4" life_4_fails_under_reuse_after_shutdown => Fault::ReuseAfterShutdown,
    "LIFE-5" life_5_fails_under_no_backoff => Fault::NoBackoff,
    "LIFE-5" life_5_fails_under_second_socket => Fault::SecondSocket,
    "REL-1" rel_1_fails_under_release_after_shutdown => Fault::ReleaseAfterShutdown,
    "REL-1" rel_1_fails_under_leak_handles => Fault::LeakHandles,
    "TOKEN-1" token_1_fails_under_retry_short_token => Fault::RetryShortToken,
    "TOKEN-2" token_2_fails_under_ttl_too_short => Fault::TtlTooShort,
    "TOKEN-2" token_2_fails_under_ttl_too_long => Fault::TtlTooLong,
    "TOKEN-3" token_3_fails_under_ignore_about_to_expire => Fault::IgnoreAboutToExpire,
    "TOKEN-4" token_4_fails_under_recreate_on_expired => Fault::RecreateOnExpired,
    "TOKEN-5" token_5_fails_under_wait_for_generator => Fault::WaitForGenerator,
    "TOKEN-6" token_6_fails_under_token_in_url => Fault::TokenInUrl,
    "TOKEN-6" token_6_fails_under_log_token => Fault::LogToken,
    "PUSH-1" push_1_fails_under_no_register_on_start => Fault::NoRegisterOnStart,
    "PUSH-2" push_2_fails_under_register_every_start => Fault::RegisterEveryStart,
    "PUSH-3" push_3_fails_under_ignore_token_rotation => Fault::IgnoreTokenRotation,
    "PUSH-4" push_4_fails_under_keep_old_identity_binding => Fault::KeepOldIdentityBinding,
    "COUNT-1" count_1_fails_under_uncached_counts => Fault::UncachedCounts,
    "COUNT-2" count_2_fails_under_cache_forever => Fault::CacheForever,
    "COUNT-3" count_3_fails_under_zero_unread => Fault::ZeroUnread,
}

#[test]
fn every_fault_of_the_catalog_has_its_self_check() {
    for rule in CATALOG {
        for fault in rule.faults {
            assert!(
                SELF_CHECKS.contains(&(rule.id.as_str(), *fault)),
                "{} lists fault `{fault}` but self_checks! has no test for the pair",
                rule.id
            );
        }
    }
    for (rule, fault) in SELF_CHECKS {
        let id: RuleId = rule.parse().expect("a catalog id");
        assert!(
            id.rule().faults.contains(fault),
            "self_checks! tests `{fault}` against {rule}, which the catalog does not list"
        );
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
    let upd_1: RuleId = "UPD-1".parse().unwrap();
    let mobile = report(Profile::Mobile, Fault::UpdateCompletesOnAck.into()).await;
    assert_eq!(mobile.exit_code(), 1);
    // UPD-1 is a mobile rule: the JS profile reports the failure without gating on it.
    let js = report(Profile::Js, Fault::UpdateCompletesOnAck.into()).await;
    assert_eq!(js.rule(upd_1).verdict, Verdict::Fail);
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
    // A scenario no planted bug can fail is a provocation nobody proved can catch anything.
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
            if s.judgements.iter().any(|j| j.finding.is_violated()) {
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
