//! The JSON writer: `{"profile", "rules": [{"id", "level", "verdict", "evidence", "trace"?}], "summary"}`.

use serde_json::Value;

use super::Report;

/// The report's format version (bumped on incompatible changes).
pub const FORMAT_VERSION: u32 = 3;

/// The report as JSON.
pub fn to_value(report: &Report) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
    v["format_version"] = FORMAT_VERSION.into();
    v
}

/// The report as pretty-printed JSON text.
pub fn to_string(report: &Report) -> String {
    serde_json::to_string_pretty(&to_value(report)).unwrap_or_default()
}
