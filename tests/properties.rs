//! Property campaigns: the compliant reference client holds every SYNC and UPD invariant over
//! random lifecycles, and each planted bug is found and shrunk to a short lifecycle.
//! Failing seeds of the fault campaigns are kept under `proptest-regressions/` and replayed first.

use convo_tck::Fault;
use convo_tck::properties::{Campaign, run_campaign};

#[test]
fn the_reference_client_holds_sync_and_upd_invariants_over_random_lifecycles() {
    let campaign = Campaign {
        cases: 48,
        persistence: Some("proptest-regressions/lifecycle.txt"),
        ..Campaign::default()
    };
    run_campaign(&campaign).expect_held();
}

fn finds_and_shrinks(fault: Fault, persistence: &'static str) {
    let campaign = Campaign {
        faults: fault.into(),
        cases: 256,
        persistence: Some(persistence),
        ..Campaign::default()
    };
    let steps = run_campaign(&campaign).expect_caught(fault);
    assert!(
        steps.len() <= 8,
        "fault `{fault}` shrank only to {} steps: {steps:?}",
        steps.len()
    );
}

macro_rules! campaigns {
    ($($name:ident => $fault:expr, $file:literal;)*) => {$(
        #[test]
        fn $name() {
            finds_and_shrinks($fault, concat!("proptest-regressions/faults/", $file, ".txt"));
        }
    )*};
}

campaigns! {
    property_finds_ops_before_sync => Fault::OpsBeforeSync, "ops-before-sync";
    property_finds_conversation_ops_before_sync => Fault::ConversationOpsBeforeSync, "conversation-ops-before-sync";
    property_finds_sync_status_regresses => Fault::SyncStatusRegresses, "sync-status-regresses";
    property_finds_update_completes_on_ack => Fault::UpdateCompletesOnAck, "update-completes-on-ack";
    property_finds_local_write_wins => Fault::LocalWriteWins, "local-write-wins";
    property_finds_stale_event_overwrites => Fault::StaleEventOverwrites, "stale-event-overwrites";
}

#[test]
fn a_shrunk_lifecycle_replays_to_the_same_violation() {
    use convo_tck::properties::{Step, replay};
    let steps = vec![Step::Start, Step::Hold, Step::UpdateConversation(0)];
    let err = replay(Fault::UpdateCompletesOnAck.into(), steps.clone()).unwrap_err();
    assert!(err.starts_with("UPD-1 FAIL"), "{err}");
    assert_eq!(replay(convo_tck::FaultSet::none(), steps), Ok(()));
}
