//! The list property: for random lists (0 to 300 conversations), page sizes (1 to 50), both list
//! orders and random changes between pages, the reference client's final list equals the
//! backend's with no duplicate; each list bug is found and shrunk to a small case.
//! Failing seeds of the fault campaigns are kept under `proptest-regressions/` and replayed first.

use convo_tck::properties::lists::run_list_campaign;
use convo_tck::{Fault, FaultSet};

#[test]
fn the_reference_client_lists_exactly_the_backends_conversations_for_random_lists() {
    run_list_campaign(
        FaultSet::none(),
        24,
        300,
        1,
        Some("proptest-regressions/lists.txt"),
    )
    .expect_held();
}

fn finds_and_shrinks(fault: Fault, persistence: &'static str) {
    let case = run_list_campaign(fault.into(), 128, 300, 1, Some(persistence)).expect_caught(fault);
    // The schedule is what must be minimal; the list length shrinks as far as proptest's in-order
    // tuple shrinking gets (usually to 1..4 conversations).
    assert!(
        case.schedule.len() <= 1,
        "`{fault}` shrank only to {case:?}"
    );
}

macro_rules! campaigns {
    ($($name:ident => $fault:expr, $file:literal;)*) => {$(
        #[test]
        fn $name() {
            finds_and_shrinks($fault, concat!("proptest-regressions/lists/", $file, ".txt"));
        }
    )*};
}

campaigns! {
    list_property_finds_listen_after_fetch => Fault::ListenAfterFetch, "listen-after-fetch";
    list_property_finds_no_dedupe => Fault::NoDedupe, "no-dedupe";
    list_property_finds_ignore_unknown_updates => Fault::IgnoreUnknownUpdates, "ignore-unknown-updates";
    list_property_finds_no_tombstones => Fault::NoTombstones, "no-tombstones";
    list_property_finds_first_page_only => Fault::FirstPageOnly, "first-page-only";
    list_property_finds_await_full_list => Fault::AwaitFullList, "await-full-list";
}
