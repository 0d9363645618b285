//! The panics the kit raises on purpose: cucumber and proptest learn of a failed check or a
//! harness error through a panic, marked so the panic hook can keep it quiet.

use std::fmt;

use crate::rules::Judgement;

/// The marker that starts every panic message the kit raises on purpose.
pub(crate) const PANIC_MARKER: &str = "[convo-tck]";

/// Silences the panics raised on purpose with [`PANIC_MARKER`] (cucumber and proptest report
/// them); others print as usual.
pub(crate) fn quiet_marked_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !message(info.payload()).starts_with(PANIC_MARKER) {
                previous(info);
            }
        }));
    });
}

/// The text of a panic payload.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default()
}

/// The text of a panic payload without the marker.
pub(crate) fn unmarked(payload: &(dyn std::any::Any + Send)) -> String {
    let m = message(payload);
    if m.is_empty() {
        return "a step panicked".into();
    }
    m.trim_start_matches(PANIC_MARKER).trim().to_owned()
}

/// Stops a property case: the harness itself failed.
pub(crate) fn harness_panic(e: impl fmt::Display) -> ! {
    panic!("{PANIC_MARKER} harness error: {e}")
}

/// Stops a property case at the first violated check, naming its rule first.
pub(crate) fn assert_held<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) {
    if let Some(j) = judgements.into_iter().find(|j| j.finding.is_violated()) {
        panic!("{PANIC_MARKER} {} FAIL: {}", j.rule, j.finding.evidence());
    }
}
