//! Prints the JSON report's JSON Schema, as committed in `docs/report.schema.json`.
//!
//! ```sh
//! cargo run --example report_schema > docs/report.schema.json
//! ```

fn main() {
    let schema = convo_tck::report::json::schema();
    let text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    println!("{text}");
}
