//! The mutation campaign: the suite must catch every mutant of `convo_tck::mutants` (realistic
//! client bugs planted around the reference client by an app layer and a loopback proxy, not by
//! the reference client's own faults), and the transparent ones must pass every checked rule.
//!
//! `campaign!` holds one test per mutant with the rules it must fail, so a mutant whose rule
//! list changes in the library without the test changing fails here;
//! `every_mutant_of_the_campaign_has_its_test` fails when the library gains a mutant the list
//! lacks. Run alone with `cargo test --test mutants`.

use std::collections::BTreeSet;

use convo_tck::mutants::{Layer, MUTANTS, mutant, run_mutant};

async fn caught(name: &str, rules: &[&str]) {
    let m = mutant(name).unwrap_or_else(|| panic!("no mutant `{name}`"));
    let declared: Vec<String> = m.must_fail.iter().map(ToString::to_string).collect();
    assert_eq!(declared, rules, "the rules `{name}` must fail");
    let result = run_mutant(m).await.expect("the suite runs");
    let failed: Vec<String> = result.failed.iter().map(ToString::to_string).collect();
    if rules.is_empty() {
        assert!(
            result.caught,
            "the transparent mutant `{name}` ({}) must pass every checked rule without harness errors, but {failed:?} failed and {} harness error(s) occurred",
            m.models, result.errors
        );
    } else {
        assert!(
            result.caught,
            "mutant `{name}` ({}) escaped: it had to fail {rules:?}, and only {failed:?} failed",
            m.models
        );
    }
}

macro_rules! campaign {
    ($($test:ident $name:literal [$($rule:literal),*];)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                caught($name, &[$($rule),*]).await;
            }
        )*
        const TESTED: &[&str] = &[$($name),*];
    };
}

campaign! {
    identity "identity" [];
    strip_client_header "strip-client-header" [];
    reply_before_update "reply-before-update" ["UPD-1"];
    read_own_write "read-own-write" ["UPD-2"];
    double_message_report "double-message-report" ["MSG-1"];
    message_edit_echo "message-edit-echo" ["MSG-2"];
    autoload_on_open "autoload-on-open" ["MSG-1"];
    duplicate_list_entry "duplicate-list-entry" ["LIST-3"];
    list_drops_last "list-drops-last" ["LIST-4"];
    start_waits_for_sync "start-waits-for-sync" ["LIST-1"];
    start_waits_first_conversation "start-waits-first-conversation" ["LIST-1"];
    remove_add_refresh "remove-add-refresh" ["LIST-3"];
    status_reorder "status-reorder" ["SYNC-3"];
    restart_status_on_add "restart-status-on-add" ["SYNC-3"];
    forget_sync_report "forget-sync-report" ["SYNC-1"];
    update_timeout "update-timeout" ["UPD-1"];
    sync_early_report "sync-early-report" ["SYNC-3"];
    conversation_added_twice "conversation-added-twice" ["LIST-3"];
    user_update_echo "user-update-echo" ["UPD-2"];
    late_message_report "late-message-report" ["MSG-1"];
    complete_on_any_event "complete-on-any-event" ["UPD-1"];
    early_write_unlabelled "early-write-unlabelled" ["SYNC-1"];
    write_unserved_path "write-unserved-path" ["SYNC-2"];
    lazy_socket "lazy-socket" ["LIST-2"];
    drop_every_fifth_event "drop-every-fifth-event" ["MSG-1"];
    duplicate_events "duplicate-events" [];
    drop_removals "drop-removals" ["LIST-4"];
    drop_added_during_fetch "drop-added-during-fetch" ["LIST-2"];
    drop_message_changes "drop-message-changes" ["MSG-2"];
    corrupt_attributes "corrupt-attributes" ["UPD-2"];
    drop_first_page_item "drop-first-page-item" ["LIST-4"];
    stop_after_second_page "stop-after-second-page" ["LIST-4"];
    resume_inclusive "resume-inclusive" ["LIFE-1", "LIFE-2"];
    linger_after_logout "linger-after-logout" ["LIFE-4"];
    zombie_presence_timer "zombie-presence-timer" ["LIFE-4"];
    rest_keeps_first_token "rest-keeps-first-token" ["TOKEN-3"];
    refresh_by_reconnect "refresh-by-reconnect" ["TOKEN-3"];
}

#[test]
fn every_mutant_of_the_campaign_has_its_test() {
    let library: BTreeSet<&str> = MUTANTS.iter().map(|m| m.name).collect();
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    assert_eq!(
        library, tested,
        "mutants without a test, or tests without a mutant"
    );
    assert_eq!(library.len(), MUTANTS.len(), "mutant names are unique");
    assert!(MUTANTS.len() >= 30, "the campaign has at least 30 mutants");
    assert!(
        MUTANTS
            .iter()
            .any(|m| m.name == "identity" && m.must_fail.is_empty()),
        "the identity mutant must pass everything"
    );
    for layer in [Layer::App, Layer::Transport] {
        assert!(
            MUTANTS.iter().filter(|m| m.layer == layer).count() >= 10,
            "both layers carry a share of the bugs ({layer:?})"
        );
    }
}

#[test]
fn every_rule_a_mutant_must_fail_is_checked() {
    for m in MUTANTS {
        for rule in m.must_fail {
            assert!(
                rule.rule().is_implemented(),
                "mutant `{}` must fail {rule}, which has no check",
                m.name
            );
        }
    }
}
