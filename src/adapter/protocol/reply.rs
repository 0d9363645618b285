//! Adapter → harness: the answer to each command, one typed body per command, and typed errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::{CommandKind, ErrorKind, HandleId};
use super::observation::{ClientSyncStatus, ConnectionState, ConversationSyncStatus};
use crate::wire::{ConversationSid, InstanceId};

/// A typed failure of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct CommandError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human-readable detail.
    pub message: String,
}

impl CommandError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What a successful command answers: one shape per command.
///
/// On the wire a body is the bare object (`{"attributes": {...}}`); which shape it has follows
/// from the command it answers ([`ReplyBody::decode`]).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ReplyBody {
    /// `start`: the client exists (not: has synchronized).
    Started {
        /// Its instance id.
        instance: InstanceId,
    },
    /// `list_conversations`: the app's merged list, in its order.
    Conversations {
        /// The sids, as the app shows them.
        conversations: Vec<ConversationSid>,
    },
    /// `open_conversation`.
    Handle {
        /// The new handle.
        handle: HandleId,
    },
    /// `fetch_messages`: the indices of the messages fetched.
    Messages {
        /// Message indices.
        messages: Vec<u64>,
    },
    /// `send_message`.
    Sent {
        /// The new message's index.
        index: u64,
    },
    /// `update_attributes` (the value the backend announced) and `read_attributes` (what the
    /// client shows now).
    Attributes {
        /// The attributes.
        attributes: Value,
    },
    /// `get_count`.
    Count {
        /// The count, or `null` when unknown.
        count: Option<u64>,
    },
    /// `inspect`.
    Inspection(Inspection),
    /// Every other command: `{}`.
    Done {},
}

#[derive(Deserialize)]
struct StartedBody {
    instance: InstanceId,
}
#[derive(Deserialize)]
struct ConversationsBody {
    conversations: Vec<ConversationSid>,
}
#[derive(Deserialize)]
struct HandleBody {
    handle: HandleId,
}
#[derive(Deserialize)]
struct MessagesBody {
    messages: Vec<u64>,
}
#[derive(Deserialize)]
struct SentBody {
    index: u64,
}
#[derive(Deserialize)]
struct AttributesBody {
    attributes: Value,
}
#[derive(Deserialize)]
struct CountBody {
    count: Option<u64>,
}

impl ReplyBody {
    /// Reads the body of a reply to a `command`, checking it has that command's shape.
    pub fn decode(command: CommandKind, body: Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value as read;
        Ok(match command {
            CommandKind::Start => Self::Started {
                instance: read::<StartedBody>(body)?.instance,
            },
            CommandKind::ListConversations => Self::Conversations {
                conversations: read::<ConversationsBody>(body)?.conversations,
            },
            CommandKind::OpenConversation => Self::Handle {
                handle: read::<HandleBody>(body)?.handle,
            },
            CommandKind::FetchMessages => Self::Messages {
                messages: read::<MessagesBody>(body)?.messages,
            },
            CommandKind::SendMessage => Self::Sent {
                index: read::<SentBody>(body)?.index,
            },
            CommandKind::UpdateAttributes | CommandKind::ReadAttributes => Self::Attributes {
                attributes: read::<AttributesBody>(body)?.attributes,
            },
            CommandKind::GetCount => Self::Count {
                count: read::<CountBody>(body)?.count,
            },
            CommandKind::Inspect => Self::Inspection(read(body)?),
            CommandKind::Logout
            | CommandKind::Kill
            | CommandKind::Background
            | CommandKind::Foreground
            | CommandKind::DeviceTokenChanged
            | CommandKind::Release
            | CommandKind::AdvanceTime
            | CommandKind::Settle => {
                read::<serde_json::Map<String, Value>>(body)?;
                Self::Done {}
            }
        })
    }

    /// The attributes of an `update_attributes` or `read_attributes` reply.
    pub fn attributes(&self) -> Option<&Value> {
        match self {
            Self::Attributes { attributes } => Some(attributes),
            _ => None,
        }
    }
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Success with the command's body.
    Ok(ReplyBody),
    /// Failure.
    Error(CommandError),
}

impl Outcome {
    /// Success with an empty body.
    pub fn done() -> Self {
        Self::Ok(ReplyBody::Done {})
    }

    /// A failure of `kind`.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Error(CommandError::new(kind, message))
    }

    /// The success body, if any.
    pub fn ok(&self) -> Option<&ReplyBody> {
        match self {
            Self::Ok(v) => Some(v),
            Self::Error(_) => None,
        }
    }

    /// The attributes of a successful `update_attributes` or `read_attributes`.
    pub fn attributes(&self) -> Option<&Value> {
        self.ok().and_then(ReplyBody::attributes)
    }

    /// Reads an outcome off the wire (`{"ok": {...}}` or `{"error": {...}}`) for `command`.
    pub fn decode(command: CommandKind, raw: WireOutcome) -> Result<Self, String> {
        match (raw.ok, raw.error) {
            (Some(body), None) => ReplyBody::decode(command, body)
                .map(Self::Ok)
                .map_err(|e| format!("the reply to `{command}` does not have its shape: {e}")),
            (None, Some(error)) => Ok(Self::Error(error)),
            (Some(_), Some(_)) => Err("a reply carries both `ok` and `error`".into()),
            (None, None) => Err("a reply carries neither `ok` nor `error`".into()),
        }
    }
}

/// An outcome as it travels on the wire, before it is read for its command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WireOutcome {
    /// The success body: the shape of the command it answers ([`ReplyBody`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ReplyBody>")]
    pub ok: Option<Value>,
    /// The failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
}

impl From<&Outcome> for WireOutcome {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::Ok(body) => Self {
                ok: serde_json::to_value(body).ok(),
                error: None,
            },
            Outcome::Error(e) => Self {
                ok: None,
                error: Some(e.clone()),
            },
        }
    }
}

/// The answer to the request with the same `id`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The body of an `inspect` reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inspection {
    /// Current instance id, if a client exists.
    pub instance: Option<InstanceId>,
    /// Event-connection state.
    pub connection: Option<ConnectionState>,
    /// Client sync status.
    pub sync: Option<ClientSyncStatus>,
    /// Per-conversation sync status.
    #[serde(default)]
    pub conversations: Vec<(ConversationSid, ConversationSyncStatus)>,
    /// Live handle ids.
    #[serde(default)]
    pub handles: Vec<HandleId>,
}
