//! The adapter protocol documented as data: the committed JSON Schema is the one the Rust types
//! generate, and every JSON example in docs/protocol.md is a line the protocol accepts.

#[path = "support/committed.rs"]
mod committed;

use std::collections::BTreeMap;

use convo_tck::adapter::{AdapterMessage, CommandKind, Outcome, Request, protocol_schema};
use serde_json::Value;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.schema.json");
const PROTOCOL_DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
const REGENERATE: &str = "cargo run --example protocol_schema > docs/protocol.schema.json";

/// The schema as committed: pretty JSON and a final newline, as the example prints it.
fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&protocol_schema()).unwrap();
    text.push('\n');
    text
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    committed::assert_committed(
        SCHEMA_PATH,
        &generated(),
        &format!(
            "docs/protocol.schema.json is not what the protocol types generate; regenerate it \
             with `{REGENERATE}`"
        ),
    );
}

#[test]
fn the_schema_names_both_directions() {
    let schema = protocol_schema();
    let defs = schema["$defs"].as_object().unwrap();
    for name in [
        "Request",
        "AdapterMessage",
        "Hello",
        "Capabilities",
        "Observation",
        "ReplyBody",
        "ErrorKind",
        "Target",
        "ConversationSid",
        "InstanceId",
        "HandleId",
    ] {
        assert!(
            defs.contains_key(name),
            "$defs has no {name}: {:?}",
            defs.keys()
        );
    }
    let roots: Vec<&str> = schema["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["$ref"].as_str())
        .collect();
    assert_eq!(roots, ["#/$defs/Request", "#/$defs/AdapterMessage"]);
}

/// Every line of every ```json block of `markdown`, with its line number.
fn json_example_lines(markdown: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut in_json = false;
    for (n, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_json = !in_json && fence.trim_start_matches('`').trim() == "json";
            continue;
        }
        if in_json && !line.trim().is_empty() {
            lines.push((n + 1, line));
        }
    }
    lines
}

#[test]
fn every_json_example_in_the_protocol_doc_is_a_valid_line() {
    let doc = std::fs::read_to_string(PROTOCOL_DOC).unwrap();
    let lines = json_example_lines(&doc);
    assert!(lines.len() >= 10, "too few examples found: {lines:?}");
    let mut requests: BTreeMap<u64, CommandKind> = BTreeMap::new();
    let mut replies = Vec::new();
    let (mut hellos, mut observations) = (0, 0);
    for &(n, line) in &lines {
        let at = format!("docs/protocol.md:{n}: `{line}`");
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{at} is not JSON: {e}"));
        if value.get("type").is_some() {
            match serde_json::from_value::<AdapterMessage>(value)
                .unwrap_or_else(|e| panic!("{at} is not an adapter message: {e}"))
            {
                AdapterMessage::Hello(_) => hellos += 1,
                AdapterMessage::Observation(_) => observations += 1,
                AdapterMessage::Reply { id, outcome } => replies.push((at, id, outcome)),
            }
        } else {
            let request: Request = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("{at} is not a request: {e}"));
            requests.insert(request.id, request.command.kind());
        }
    }
    assert!(hellos >= 1 && observations >= 1 && !replies.is_empty() && !requests.is_empty());
    // A reply example answers a request example with its id, and has that command's body.
    for (at, id, outcome) in replies {
        let command = *requests
            .get(&id)
            .unwrap_or_else(|| panic!("{at} answers request {id}, which no example shows"));
        Outcome::decode(command, outcome)
            .unwrap_or_else(|e| panic!("{at} is not a reply to `{command}`: {e}"));
    }
}
