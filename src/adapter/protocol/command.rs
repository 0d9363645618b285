//! Harness → adapter: the commands (app intents) and the requests that carry them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::ConversationSid;

crate::wire::string_id! {
    /// A handle on an object of the client stack, as `open_conversation` hands it out.
    HandleId
}

/// What an operation acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
        /// WebSocket URL of the twilsock face (protocol 2): for a stack that speaks twilsock v3
        /// (the Twilio Conversations JS SDK) instead of the v1 REST API and event channel.
        /// Name the client instance with `?client=ID` (the SDK cannot send `X-Convo-Client`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        twilsock_url: Option<String>,
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
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
    /// Every command, in protocol order.
    pub const ALL: &'static [CommandKind] = &[
        Self::Start,
        Self::Logout,
        Self::Kill,
        Self::Background,
        Self::Foreground,
        Self::DeviceTokenChanged,
        Self::ListConversations,
        Self::OpenConversation,
        Self::Release,
        Self::FetchMessages,
        Self::SendMessage,
        Self::UpdateAttributes,
        Self::ReadAttributes,
        Self::GetCount,
        Self::AdvanceTime,
        Self::Settle,
        Self::Inspect,
    ];

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Request {
    /// Correlates the reply.
    pub id: u64,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// Why a command failed, as the client stack reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
