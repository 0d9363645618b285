//! The adapter vocabulary: one set of serde types for the in-process trait and the JSON-lines
//! protocol over stdio.
//!
//! Harness → adapter: a [`Request`] per line (`{"id": 7, "command": "settle"}`).
//! Adapter → harness: first a `hello`, then `reply`s carrying the request's `id` and unsolicited
//! `observation`s, in the order they happen ([`AdapterMessage`]). A reply's body has one shape
//! per command ([`ReplyBody`]); on the wire it is decoded by the command it answers
//! ([`ReplyBody::decode`]). Everything is versioned by [`PROTOCOL_VERSION`]; fields added later
//! are optional so version-1 adapters keep working.

mod command;
mod hello;
mod observation;
mod reply;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::wire::{ConversationSid, InstanceId};
pub use command::{Command, CommandKind, CountKind, ErrorKind, HandleId, Request, Target};
pub use hello::{Capabilities, Hello, Profile, UnknownProfile};
pub use observation::{ClientSyncStatus, ConnectionState, ConversationSyncStatus, Observation};
pub use reply::{CommandError, Inspection, Outcome, Reply, ReplyBody, WireOutcome};

/// The protocol version this harness speaks (version 2 added `start.twilsock_url`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest protocol version the harness still accepts: a version-1 adapter simply never
/// sees the fields added since (they are optional).
pub const OLDEST_PROTOCOL_VERSION: u32 = 1;

/// Whether the harness speaks protocol `version`.
pub fn speaks(version: u64) -> bool {
    (u64::from(OLDEST_PROTOCOL_VERSION)..=u64::from(PROTOCOL_VERSION)).contains(&version)
}

/// The JSON Schema (draft 2020-12) of both directions of the stdio protocol, as committed in
/// `docs/protocol.schema.json`.
///
/// One document: `$defs` holds every type, `$defs/Request` is a line the harness writes to the
/// adapter and `$defs/AdapterMessage` a line the adapter writes back (`hello`, `reply` or
/// `observation`); the root accepts either.
pub fn protocol_schema() -> serde_json::Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let request = generator.subschema_for::<Request>();
    let message = generator.subschema_for::<AdapterMessage>();
    let defs = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://convo-tck.invalid/protocol/1/protocol.schema.json",
        "title": format!("convo-tck adapter protocol, version {PROTOCOL_VERSION}"),
        "description": "One JSON value per line over stdio. Harness to adapter (stdin): \
            #/$defs/Request. Adapter to harness (stdout): #/$defs/AdapterMessage; the first \
            line is a hello. Generated from the Rust types in src/adapter/protocol/; \
            regenerate with `cargo run --example protocol_schema > docs/protocol.schema.json`.",
        "anyOf": [request, message],
        "$defs": defs,
    })
}

/// One line from an out-of-process adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdapterMessage {
    /// The handshake; must come first.
    Hello(Hello),
    /// A reply to a request, read for its command once the harness matched its `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// What happened.
        #[serde(flatten)]
        outcome: WireOutcome,
    },
    /// An unsolicited observation.
    Observation(Observation),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_flat_json_lines() {
        let req = Request {
            id: 7,
            command: Command::UpdateAttributes {
                target: Target::Conversation { sid: "CH1".into() },
                attributes: json!({"topic": "x"}),
            },
        };
        let line = serde_json::to_value(&req).unwrap();
        assert_eq!(
            line,
            json!({"id": 7, "command": "update_attributes",
                   "target": {"kind": "conversation", "sid": "CH1"},
                   "attributes": {"topic": "x"}})
        );
        assert_eq!(serde_json::from_value::<Request>(line).unwrap(), req);
    }

    #[test]
    fn replies_are_read_for_the_command_they_answer() {
        let line =
            r#"{"type":"reply","id":3,"error":{"kind":"not_synchronized","message":"wait"}}"#;
        let AdapterMessage::Reply { id, outcome } = serde_json::from_str(line).unwrap() else {
            panic!("a reply")
        };
        assert_eq!(id, 3);
        assert_eq!(
            Outcome::decode(CommandKind::UpdateAttributes, outcome),
            Ok(Outcome::error(ErrorKind::NotSynchronized, "wait"))
        );
        let ok = WireOutcome {
            ok: Some(json!({"attributes": {"a": 1}})),
            error: None,
        };
        let outcome = Outcome::decode(CommandKind::ReadAttributes, ok.clone()).unwrap();
        assert_eq!(outcome.attributes(), Some(&json!({"a": 1})));
        let wrong = Outcome::decode(CommandKind::ListConversations, ok).unwrap_err();
        assert!(wrong.contains("list_conversations"), "{wrong}");
    }

    #[test]
    fn typed_bodies_are_the_bare_objects_on_the_wire() {
        let line = |o: &Outcome| serde_json::to_string(&WireOutcome::from(o)).unwrap();
        assert_eq!(line(&Outcome::done()), r#"{"ok":{}}"#);
        assert_eq!(
            line(&Outcome::Ok(ReplyBody::Messages { messages: vec![4] })),
            r#"{"ok":{"messages":[4]}}"#
        );
        let obs = serde_json::to_string(&AdapterMessage::Observation(Observation::ClientSync {
            status: ClientSyncStatus::Completed,
        }))
        .unwrap();
        assert_eq!(
            obs,
            r#"{"type":"observation","event":"client_sync","status":"completed"}"#
        );
    }
}
