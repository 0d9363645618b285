//! Prints the adapter protocol's JSON Schema, as committed in `docs/protocol.schema.json`.
//!
//! ```sh
//! cargo run --example protocol_schema > docs/protocol.schema.json
//! ```

fn main() {
    let schema = convo_tck::adapter::protocol_schema();
    let text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    println!("{text}");
}
