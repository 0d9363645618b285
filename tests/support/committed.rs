//! A generated file committed to the repository (a JSON Schema) must be what the code generates
//! now; `CONVO_TCK_BLESS=1` rewrites it instead.

/// Asserts the file at `path` holds `fresh`, or writes it when blessing; `what` names the file
/// and how to regenerate it, for the failure message.
pub(crate) fn assert_committed(path: &str, fresh: &str, what: &str) {
    if std::env::var_os("CONVO_TCK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{what} (or CONVO_TCK_BLESS=1 cargo test), and commit it"
    );
}
