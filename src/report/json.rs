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

/// The JSON Schema of the report (draft 2020-12), as committed in `docs/report.schema.json`:
/// generated from the report's types, with the `format_version` the writer adds.
pub fn schema() -> Value {
    // The serialize contract: a field the writer always writes is required.
    let generated = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Report>();
    let mut schema = serde_json::to_value(generated).unwrap_or(Value::Null);
    schema["$id"] = "https://convo-tck.dev/schemas/report.schema.json".into();
    schema["title"] = "convo-tck report".into();
    schema["description"] = format!(
        "The JSON report of `convo-tck run --format json` and `convo-tck merge`, format {FORMAT_VERSION}."
    )
    .into();
    schema["properties"]["format_version"] = serde_json::json!({
        "description": "The report's format version (bumped on incompatible changes).",
        "const": FORMAT_VERSION,
    });
    if let Some(required) = schema["required"].as_array_mut() {
        required.push("format_version".into());
    }
    schema
}

/// The report as pretty-printed JSON text.
pub fn to_string(report: &Report) -> String {
    serde_json::to_string_pretty(&to_value(report)).unwrap_or_default()
}
