//! Property campaigns: the compliant reference client holds every rule over random lifecycles,
//! and each planted SYNC, UPD, LIFE and REL bug is found and shrunk to a short lifecycle.
//! Failing seeds of the fault campaigns are kept under `proptest-regressions/` and replayed first.

use std::sync::Arc;

use convo_tck::properties::{Campaign, Step, replay, run_campaign};
use convo_tck::{Adapter, Fault, FaultSet, Profile, ReferenceAdapter};

fn reference(faults: FaultSet) -> Arc<dyn Adapter> {
    Arc::new(ReferenceAdapter::with_faults(Profile::Mobile, faults))
}

#[test]
fn the_reference_client_holds_every_rule_over_random_lifecycles() {
    let campaign = Campaign {
        cases: 48,
        persistence: Some("proptest-regressions/lifecycle.txt"),
        ..Campaign::default()
    };
    run_campaign(reference(FaultSet::none()), &campaign).expect_held();
}

fn finds_and_shrinks(fault: Fault, persistence: &'static str) {
    let campaign = Campaign {
        cases: 256,
        persistence: Some(persistence),
        ..Campaign::default()
    };
    let steps = run_campaign(reference(fault.into()), &campaign).expect_caught(fault);
    assert!(
        steps.len() <= 8,
        "fault `{fault}` shrank only to {} steps: {steps:?}",
        steps.len()
    );
    // The shrunk case is the failure: played again, it fails the same way (an empty case
    // once passed here, the shrinker having dropped every step untested).
    let err = replay(reference(fault.into()), steps.clone())
        .expect_err("the shrunk counterexample replays to a violation");
    let rules: Vec<_> = convo_tck::rules::targets_of(fault)
        .into_iter()
        .chain(convo_tck::rules::collateral_of(fault))
        .collect();
    assert!(
        rules.iter().any(|r| err.starts_with(r.as_str())),
        "{fault}: {steps:?} replays to {err}"
    );
}

macro_rules! campaigns {
    ($($rule:literal $name:ident => $fault:expr, $file:literal;)*) => {$(
        #[doc = concat!($rule, ": a random lifecycle catches the planted fault and shrinks it.")]
        #[test]
        fn $name() {
            finds_and_shrinks($fault, concat!("proptest-regressions/faults/", $file, ".txt"));
        }
    )*};
}

campaigns! {
    "SYNC-1" property_finds_ops_before_sync => Fault::OpsBeforeSync, "ops-before-sync";
    "SYNC-2" property_finds_conversation_ops_before_sync => Fault::ConversationOpsBeforeSync, "conversation-ops-before-sync";
    "SYNC-3" property_finds_sync_status_regresses => Fault::SyncStatusRegresses, "sync-status-regresses";
    "UPD-1" property_finds_update_completes_on_ack => Fault::UpdateCompletesOnAck, "update-completes-on-ack";
    "UPD-2" property_finds_local_write_wins => Fault::LocalWriteWins, "local-write-wins";
    "UPD-3" property_finds_stale_event_overwrites => Fault::StaleEventOverwrites, "stale-event-overwrites";
    "LIFE-1" property_finds_recreate_on_reconnect => Fault::RecreateOnReconnect, "recreate-on-reconnect";
    "LIFE-1" property_finds_lose_outage_events => Fault::LoseOutageEvents, "lose-outage-events";
    "LIFE-1" property_finds_no_heartbeat => Fault::NoHeartbeat, "no-heartbeat";
    "LIFE-2" property_finds_shutdown_on_background => Fault::ShutdownOnBackground, "shutdown-on-background";
    "LIFE-3" property_finds_shutdown_on_error => Fault::ShutdownOnError, "shutdown-on-error";
    "LIFE-4" property_finds_reuse_after_shutdown => Fault::ReuseAfterShutdown, "reuse-after-shutdown";
    "LIFE-5" property_finds_no_backoff => Fault::NoBackoff, "no-backoff";
    "LIFE-5" property_finds_second_socket => Fault::SecondSocket, "second-socket";
    "REL-1" property_finds_release_after_shutdown => Fault::ReleaseAfterShutdown, "release-after-shutdown";
    "REL-1" property_finds_leak_handles => Fault::LeakHandles, "leak-handles";
    "TOKEN-1" property_finds_retry_short_token => Fault::RetryShortToken, "retry-short-token";
    "TOKEN-2" property_finds_ttl_too_short => Fault::TtlTooShort, "ttl-too-short";
    "TOKEN-2" property_finds_ttl_too_long => Fault::TtlTooLong, "ttl-too-long";
    "TOKEN-3" property_finds_ignore_about_to_expire => Fault::IgnoreAboutToExpire, "ignore-about-to-expire";
    "TOKEN-4" property_finds_recreate_on_expired => Fault::RecreateOnExpired, "recreate-on-expired";
    "TOKEN-5" property_finds_wait_for_generator => Fault::WaitForGenerator, "wait-for-generator";
    "TOKEN-6" property_finds_token_in_url => Fault::TokenInUrl, "token-in-url";
    "TOKEN-6" property_finds_log_token => Fault::LogToken, "log-token";
    "PUSH-1" property_finds_no_register_on_start => Fault::NoRegisterOnStart, "no-register-on-start";
    "PUSH-2" property_finds_register_every_start => Fault::RegisterEveryStart, "register-every-start";
    "PUSH-3" property_finds_ignore_token_rotation => Fault::IgnoreTokenRotation, "ignore-token-rotation";
    "PUSH-4" property_finds_keep_old_identity_binding => Fault::KeepOldIdentityBinding, "keep-old-identity-binding";
    "COUNT-1" property_finds_uncached_counts => Fault::UncachedCounts, "uncached-counts";
    "COUNT-2" property_finds_cache_forever => Fault::CacheForever, "cache-forever";
    "COUNT-3" property_finds_zero_unread => Fault::ZeroUnread, "zero-unread";
}

#[test]
fn a_shrunk_lifecycle_replays_to_the_same_violation() {
    let steps = vec![Step::Start, Step::Hold, Step::UpdateConversation(0)];
    let err = replay(reference(Fault::UpdateCompletesOnAck.into()), steps.clone()).unwrap_err();
    assert!(err.starts_with("UPD-1 FAIL"), "{err}");
    assert_eq!(replay(reference(FaultSet::none()), steps), Ok(()));
}

/// Found by the lifecycle property (as a UPD-3 violation of the compliant client): two events
/// published during a half-open outage replay back to back on the new socket, and the client
/// reports the first before it has read the second. A frame replayed on a reconnect is
/// processed only by a settle after that socket opened, not one after its publication.
#[test]
fn two_events_replayed_back_to_back_after_an_outage_are_not_stale() {
    use convo_tck::backend::Outage;
    let steps = vec![
        Step::Start,
        Step::Outage(Outage::Drop),
        Step::OtherWriter(0),
        Step::OtherWriter(1),
        Step::Restore,
        Step::Advance(2),
    ];
    assert_eq!(replay(reference(FaultSet::none()), steps), Ok(()));
}
