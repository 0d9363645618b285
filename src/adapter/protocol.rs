//! The adapter vocabulary: one set of serde types for the in-process trait and the JSON-lines
//! protocol over stdio.
//!
//! Harness → adapter: a [`Request`] per line (`{"id": 7, "command": "settle"}`).
//! Adapter → harness: first a `hello`, then `reply`s carrying the request's `id` and unsolicited
//! `observation`s, in the order they happen ([`AdapterMessage`]). A reply's body has one shape
//! per command ([`ReplyBody`]); on the wire it is decoded by the command it answers
//! ([`ReplyBody::decode`]). Everything is versioned by [`PROTOCOL_VERSION`]; fields added later
//! are optional so version-1 adapters keep working.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::wire::{ConversationSid, InstanceId};

/// The protocol version this harness speaks.
pub const PROTOCOL_VERSION: u32 = 1;

crate::wire::string_id! {
    /// A handle on an object of the client stack, as `open_conversation` hands it out.
    HandleId
}

/// Which SDK family's documented behaviour the adapter claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The JavaScript SDK (client resolves before the list is fetched, count caches...).
    Js,
    /// The Android and iOS SDKs (sync status, Updated events, handle release...).
    #[default]
    Mobile,
}

impl Profile {
    /// Every profile, for listings.
    pub const ALL: [Profile; 2] = [Profile::Js, Profile::Mobile];
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Js => "js",
            Self::Mobile => "mobile",
        })
    }
}

/// A profile name that is not `js` or `mobile`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}`; valid profiles: js, mobile")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "js" | "javascript" => Ok(Self::Js),
            "mobile" | "android" | "ios" => Ok(Self::Mobile),
            _ => Err(UnknownProfile(s.to_owned())),
        }
    }
}

/// The adapter's first message: who it is and what it can do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the adapter speaks; must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Adapter name, e.g. `reference` or `acme-android`.
    pub adapter: String,
    /// Adapter version.
    pub version: String,
    /// Which profile's rules the adapter must follow.
    pub profile: Profile,
    /// What the adapter can do.
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// Optional abilities an adapter declares; a rule that needs a missing one is N/A, not FAIL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The client's timers run on a clock driven by `advance_time`.
    #[serde(default)]
    pub virtual_time: bool,
    /// The adapter answers `settle` only when its work queue is drained.
    #[serde(default)]
    pub settle: bool,
    /// The lifetime of the client's count cache, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_cache_lifetime_ms: Option<u64>,
    /// Further named features (`push`, `messages`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// What an operation acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The logged-in user (a client-level object).
    User,
    /// One conversation.
    Conversation {
        /// Its sid (`CH...`).
        sid: ConversationSid,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User => f.write_str("user"),
            Self::Conversation { sid } => write!(f, "conversation {sid}"),
        }
    }
}

/// Which count a `get_count` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountKind {
    /// Participants in the conversation.
    Participants,
    /// Messages in the conversation.
    Messages,
    /// Messages the user has not read.
    Unread,
}

/// A command: one app intent the adapter maps onto its client stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Create the client and connect. Replies [`ReplyBody::Started`] once the client exists.
    Start {
        /// Chat identity to log in as.
        identity: String,
        /// The app's token generator (form POST `identity`, `ttl`).
        token_url: String,
        /// Base URL of the REST API (`.../v1` paths live under it).
        rest_url: String,
        /// WebSocket URL of the event channel.
        events_url: String,
        /// Directory the client may persist to; survives `kill`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_dir: Option<String>,
        /// Push device token the OS handed the app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_token: Option<String>,
    },
    /// Log out: release everything and shut the client down.
    Logout,
    /// The app process dies; persisted storage survives.
    Kill,
    /// The app goes to the background.
    Background,
    /// The app returns to the foreground.
    Foreground,
    /// The OS handed the app a new push device token.
    DeviceTokenChanged {
        /// The new token.
        device_token: String,
    },
    /// Replies [`ReplyBody::Conversations`]: the app's current merged list.
    ListConversations,
    /// Acquire a handle on a conversation. Replies [`ReplyBody::Handle`].
    OpenConversation {
        /// Conversation sid.
        conversation: ConversationSid,
    },
    /// Release a handle.
    Release {
        /// Handle id from `open_conversation`.
        handle: HandleId,
    },
    /// Fetch the newest `count` messages of a conversation. Replies [`ReplyBody::Messages`].
    FetchMessages {
        /// Conversation sid.
        conversation: ConversationSid,
        /// How many.
        count: u32,
    },
    /// Send a message. Replies [`ReplyBody::Sent`].
    SendMessage {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Message body.
        body: String,
    },
    /// Set an object's attributes. Replies [`ReplyBody::Attributes`] with the value the backend
    /// holds once the update is applied.
    UpdateAttributes {
        /// What to update.
        target: Target,
        /// The JSON attributes to write.
        attributes: Value,
    },
    /// Replies [`ReplyBody::Attributes`]: what the client currently shows, without asking the
    /// backend.
    ReadAttributes {
        /// What to read.
        target: Target,
    },
    /// Replies [`ReplyBody::Count`].
    GetCount {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Which count.
        kind: CountKind,
    },
    /// Move the adapter's virtual clock forward.
    AdvanceTime {
        /// Milliseconds to advance.
        ms: u64,
    },
    /// Reply once all work the adapter started has finished or is waiting on time or the backend.
    Settle,
    /// Replies [`ReplyBody::Inspection`].
    Inspect,
}

/// The name of a command, without its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// `start`
    Start,
    /// `logout`
    Logout,
    /// `kill`
    Kill,
    /// `background`
    Background,
    /// `foreground`
    Foreground,
    /// `device_token_changed`
    DeviceTokenChanged,
    /// `list_conversations`
    ListConversations,
    /// `open_conversation`
    OpenConversation,
    /// `release`
    Release,
    /// `fetch_messages`
    FetchMessages,
    /// `send_message`
    SendMessage,
    /// `update_attributes`
    UpdateAttributes,
    /// `read_attributes`
    ReadAttributes,
    /// `get_count`
    GetCount,
    /// `advance_time`
    AdvanceTime,
    /// `settle`
    Settle,
    /// `inspect`
    Inspect,
}

impl CommandKind {
    /// The wire name (`update_attributes`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Logout => "logout",
            Self::Kill => "kill",
            Self::Background => "background",
            Self::Foreground => "foreground",
            Self::DeviceTokenChanged => "device_token_changed",
            Self::ListConversations => "list_conversations",
            Self::OpenConversation => "open_conversation",
            Self::Release => "release",
            Self::FetchMessages => "fetch_messages",
            Self::SendMessage => "send_message",
            Self::UpdateAttributes => "update_attributes",
            Self::ReadAttributes => "read_attributes",
            Self::GetCount => "get_count",
            Self::AdvanceTime => "advance_time",
            Self::Settle => "settle",
            Self::Inspect => "inspect",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Command {
    /// Which command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Start { .. } => CommandKind::Start,
            Self::Logout => CommandKind::Logout,
            Self::Kill => CommandKind::Kill,
            Self::Background => CommandKind::Background,
            Self::Foreground => CommandKind::Foreground,
            Self::DeviceTokenChanged { .. } => CommandKind::DeviceTokenChanged,
            Self::ListConversations => CommandKind::ListConversations,
            Self::OpenConversation { .. } => CommandKind::OpenConversation,
            Self::Release { .. } => CommandKind::Release,
            Self::FetchMessages { .. } => CommandKind::FetchMessages,
            Self::SendMessage { .. } => CommandKind::SendMessage,
            Self::UpdateAttributes { .. } => CommandKind::UpdateAttributes,
            Self::ReadAttributes { .. } => CommandKind::ReadAttributes,
            Self::GetCount { .. } => CommandKind::GetCount,
            Self::AdvanceTime { .. } => CommandKind::AdvanceTime,
            Self::Settle => CommandKind::Settle,
            Self::Inspect => CommandKind::Inspect,
        }
    }

    /// The command's wire name (`update_attributes`).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// A command with the id its reply will carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Correlates the reply.
    pub id: u64,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// Why a command failed, as the client stack reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The client (or the conversation) has not finished synchronizing.
    NotSynchronized,
    /// The client was shut down.
    ClientShutDown,
    /// The handle was released.
    ReleasedHandle,
    /// The backend refused the token.
    TokenRejected,
    /// No such object.
    NotFound,
    /// The backend answered with an error.
    Backend,
    /// The adapter does not implement this command.
    Unsupported,
    /// The command was malformed.
    InvalidCommand,
    /// Anything else.
    Internal,
}

/// A typed failure of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WireOutcome {
    /// The success body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Client-level synchronization progress (the mobile SDKs' names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSyncStatus {
    /// Synchronization started.
    Started,
    /// The subscribed list is fetched.
    ConversationsCompleted,
    /// Everything is synchronized.
    Completed,
    /// Synchronization failed.
    Failed,
}

/// Per-conversation synchronization progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationSyncStatus {
    /// Nothing known yet.
    None,
    /// The sid is known.
    Identifier,
    /// The conversation's own fields are fetched.
    Metadata,
    /// Fully synchronized (participants too).
    All,
    /// Synchronization failed.
    Failed,
}

/// Event-connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Trying to connect.
    Connecting,
    /// Connected.
    Connected,
    /// Lost; will retry.
    Disconnected,
    /// The backend refused the client.
    Denied,
}

/// Something the client stack reported on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Observation {
    /// A client instance was created; it sends this id as `X-Convo-Client`.
    ClientCreated {
        /// Instance id.
        instance: InstanceId,
    },
    /// A client instance was shut down.
    ClientShutDown {
        /// Instance id.
        instance: InstanceId,
    },
    /// The event connection changed state.
    ConnectionState {
        /// New state.
        state: ConnectionState,
    },
    /// The client's synchronization status changed.
    ClientSync {
        /// New status.
        status: ClientSyncStatus,
    },
    /// A conversation's synchronization status changed.
    ConversationSync {
        /// Conversation sid.
        conversation: ConversationSid,
        /// New status.
        status: ConversationSyncStatus,
    },
    /// A conversation joined the app's list.
    ConversationAdded {
        /// Conversation sid.
        conversation: ConversationSid,
    },
    /// A conversation's fields changed.
    ConversationUpdated {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Why (`attributes`, `friendly_name`, ...).
        #[serde(default)]
        reasons: Vec<String>,
        /// The attributes now shown.
        #[serde(default)]
        attributes: Value,
    },
    /// A conversation left the app's list.
    ConversationRemoved {
        /// Conversation sid.
        conversation: ConversationSid,
    },
    /// The user's fields changed.
    UserUpdated {
        /// The attributes now shown.
        #[serde(default)]
        attributes: Value,
    },
    /// A message arrived.
    MessageAdded {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Message index.
        index: u64,
    },
    /// A message changed.
    MessageUpdated {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Message index.
        index: u64,
    },
    /// A message was removed.
    MessageRemoved {
        /// Conversation sid.
        conversation: ConversationSid,
        /// Message index.
        index: u64,
    },
    /// The token will expire soon.
    TokenAboutToExpire,
    /// The token expired.
    TokenExpired,
    /// The client received a new token.
    TokenUpdated,
    /// A handle on an object was acquired.
    HandleAcquired {
        /// Handle id.
        handle: HandleId,
    },
    /// A handle was released.
    HandleReleased {
        /// Handle id.
        handle: HandleId,
    },
    /// The client reported an error.
    Error {
        /// What kind.
        kind: ErrorKind,
        /// Detail.
        message: String,
    },
}

/// One line from an out-of-process adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// The body of an `inspect` reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
