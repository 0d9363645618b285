//! Adapter → harness: what the client stack reports on its own, as it happens.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::{ErrorKind, HandleId};
use crate::wire::{ConversationSid, InstanceId};

/// Client-level synchronization progress (the mobile SDKs' names).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
