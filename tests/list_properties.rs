//! The list property: for random lists (0 to 300 conversations), page sizes (1 to 50), both list
//! orders and random changes between pages, the reference client holds every rule (its final
//! list equals the backend's, each conversation once); each list bug is found and shrunk to a
//! small case. Failing seeds of the fault campaigns are kept under `proptest-regressions/` and
//! replayed first.

use std::sync::Arc;

use convo_tck::properties::lists::run_list_campaign;
use convo_tck::{Adapter, Fault, FaultSet, Profile, ReferenceAdapter};

fn reference(faults: FaultSet) -> Arc<dyn Adapter> {
    Arc::new(ReferenceAdapter::with_faults(Profile::Js, faults))
}

#[test]
fn the_reference_client_lists_exactly_the_backends_conversations_for_random_lists() {
    run_list_campaign(
        reference(FaultSet::none()),
        24,
        300,
        1,
        Some("proptest-regressions/lists.txt"),
    )
    .expect_held();
}

fn finds_and_shrinks(fault: Fault, persistence: &'static str) {
    let case = run_list_campaign(reference(fault.into()), 128, 300, 1, Some(persistence))
        .expect_caught(fault);
    // The schedule is what must be minimal; the list length shrinks as far as proptest's in-order
    // tuple shrinking gets (usually to 1..4 conversations).
    assert!(
        case.schedule.len() <= 1,
        "`{fault}` shrank only to {case:?}"
    );
}

macro_rules! campaigns {
    ($($rule:literal $name:ident => $fault:expr, $file:literal;)*) => {$(
        #[doc = concat!($rule, ": a random list catches the planted fault and shrinks it.")]
        #[test]
        fn $name() {
            finds_and_shrinks($fault, concat!("proptest-regressions/lists/", $file, ".txt"));
        }
    )*};
}

campaigns! {
    "LIST-2" list_property_finds_listen_after_fetch => Fault::ListenAfterFetch, "listen-after-fetch";
    "LIST-3" list_property_finds_no_dedupe => Fault::NoDedupe, "no-dedupe";
    "LIST-4" list_property_finds_ignore_unknown_updates => Fault::IgnoreUnknownUpdates, "ignore-unknown-updates";
    "LIST-4" list_property_finds_no_tombstones => Fault::NoTombstones, "no-tombstones";
    "LIST-4" list_property_finds_first_page_only => Fault::FirstPageOnly, "first-page-only";
    "LIST-1" list_property_finds_await_full_list => Fault::AwaitFullList, "await-full-list";
}
