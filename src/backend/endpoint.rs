//! What the REST layer took a request for: the classification the journal records, the gates
//! match and the checks read.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::wire::ConversationSid;

/// One endpoint of the mock service, with what identifies the request's object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "endpoint", rename_all = "snake_case")]
pub enum Endpoint {
    /// The app's token generator.
    Token,
    /// A page of a user's subscribed conversations.
    UserConversations {
        /// Whose list (chat identity).
        user: String,
        /// Zero-based page number.
        page: u32,
        /// Whether it was the final page.
        last: bool,
        /// The conversation sids the page listed (only for a page actually served).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<ConversationSid>,
    },
    /// Read the user.
    GetUser,
    /// Update the user (a client-level operation).
    UpdateUser,
    /// Read a conversation.
    GetConversation {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Update a conversation (a conversation operation).
    UpdateConversation {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Read a conversation's participants.
    Participants {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Read a conversation's messages.
    Messages {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Send a message (a conversation operation).
    SendMessage {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// The event channel's WebSocket handshake.
    EventChannel,
    /// Read one participant of a conversation.
    Participant {
        /// Conversation sid.
        sid: ConversationSid,
        /// The participant as the path named it (sid or identity).
        participant: String,
    },
    /// Read one message of a conversation.
    Message {
        /// Conversation sid.
        sid: ConversationSid,
        /// The message as the path named it.
        message: String,
    },
    /// Read a conversation's webhooks (always an empty page).
    Webhooks {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Read a user's view of one conversation (its read horizon, notification level).
    UserConversation {
        /// Chat identity.
        user: String,
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// Update a user's view of one conversation (a conversation operation: the read horizon).
    UpdateUserConversation {
        /// Chat identity.
        user: String,
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// A path under a conversation the mock does not serve: still about that conversation.
    OtherConversation {
        /// Conversation sid.
        sid: ConversationSid,
        /// Whether the request would change something (any method but GET).
        write: bool,
    },
    /// A conversation's counts (`/v1/Conversations/{sid}/Counts`, the kit's, not public v1): a
    /// read of that conversation.
    Counts {
        /// Conversation sid.
        sid: ConversationSid,
    },
    /// A page of the service's push bindings (account-level; a token sees its own).
    Bindings,
    /// Read one push binding.
    Binding {
        /// `BS...` as the path named it.
        sid: String,
    },
    /// Delete one push binding.
    DeleteBinding {
        /// `BS...` as the path named it.
        sid: String,
    },
    /// A client's push registration write (`POST /v1/Client/Registrations`, the kit's, not
    /// public v1): creates or refreshes the binding of (its identity, `address`).
    Register {
        /// The device token (not a secret; cut to 200 characters if longer than the limit).
        address: String,
    },
    /// A client's push unregistration (`DELETE /v1/Client/Registrations/{address}`).
    Unregister {
        /// The device token.
        address: String,
    },
    /// The client configuration the twilsock face serves first (`GET
    /// /Client/v2/Configuration`: identity, links, options, the user's Sync object names).
    Configuration,
    /// A Sync object's descriptor on the twilsock face (a map, list or document without its
    /// items, e.g. a conversation's message list before any message is read).
    SyncObject {
        /// The Sync object's name.
        object: String,
    },
    /// A Sync subscription request on the twilsock face (`POST /v4/Subscriptions`).
    Subscriptions,
    /// Nothing we serve.
    Unknown,
}

/// An endpoint without what identifies the request's object: what a gate on "every request to
/// one endpoint" names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// `token`
    Token,
    /// `user_conversations`
    UserConversations,
    /// `get_user`
    GetUser,
    /// `update_user`
    UpdateUser,
    /// `get_conversation`
    GetConversation,
    /// `update_conversation`
    UpdateConversation,
    /// `participants`
    Participants,
    /// `messages`
    Messages,
    /// `send_message`
    SendMessage,
    /// `event_channel`
    EventChannel,
    /// `other_conversation`
    OtherConversation,
    /// `unknown`
    Unknown,
    /// `participant`
    Participant,
    /// `message`
    Message,
    /// `webhooks`
    Webhooks,
    /// `user_conversation`
    UserConversation,
    /// `update_user_conversation`
    UpdateUserConversation,
    /// `counts`
    Counts,
    /// `bindings`
    Bindings,
    /// `binding`
    Binding,
    /// `delete_binding`
    DeleteBinding,
    /// `register`
    Register,
    /// `unregister`
    Unregister,
    /// `configuration`
    Configuration,
    /// `sync_object`
    SyncObject,
    /// `subscriptions`
    Subscriptions,
}

impl EndpointKind {
    /// Every kind, in a stable order.
    pub const ALL: [EndpointKind; 26] = [
        Self::Token,
        Self::UserConversations,
        Self::GetUser,
        Self::UpdateUser,
        Self::GetConversation,
        Self::UpdateConversation,
        Self::Participants,
        Self::Messages,
        Self::SendMessage,
        Self::EventChannel,
        Self::OtherConversation,
        Self::Unknown,
        Self::Participant,
        Self::Message,
        Self::Webhooks,
        Self::UserConversation,
        Self::UpdateUserConversation,
        Self::Counts,
        Self::Bindings,
        Self::Binding,
        Self::DeleteBinding,
        Self::Register,
        Self::Unregister,
        Self::Configuration,
        Self::SyncObject,
        Self::Subscriptions,
    ];

    /// The journal name (`update_conversation`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::UserConversations => "user_conversations",
            Self::GetUser => "get_user",
            Self::UpdateUser => "update_user",
            Self::GetConversation => "get_conversation",
            Self::UpdateConversation => "update_conversation",
            Self::Participants => "participants",
            Self::Messages => "messages",
            Self::SendMessage => "send_message",
            Self::EventChannel => "event_channel",
            Self::OtherConversation => "other_conversation",
            Self::Unknown => "unknown",
            Self::Participant => "participant",
            Self::Message => "message",
            Self::Webhooks => "webhooks",
            Self::UserConversation => "user_conversation",
            Self::UpdateUserConversation => "update_user_conversation",
            Self::Counts => "counts",
            Self::Bindings => "bindings",
            Self::Binding => "binding",
            Self::DeleteBinding => "delete_binding",
            Self::Register => "register",
            Self::Unregister => "unregister",
            Self::Configuration => "configuration",
            Self::SyncObject => "sync_object",
            Self::Subscriptions => "subscriptions",
        }
    }
}

impl fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// An endpoint name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown endpoint `{given}`; known endpoints: {}", EndpointKind::ALL.map(EndpointKind::name).join(", "))]
pub struct UnknownEndpoint {
    /// What was asked for.
    pub given: String,
}

impl FromStr for EndpointKind {
    type Err = UnknownEndpoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| UnknownEndpoint {
                given: s.to_owned(),
            })
    }
}

/// How a request relates to synchronization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationClass<'a> {
    /// Part of fetching state (allowed any time).
    Sync,
    /// An operation on the client as a whole.
    ClientOperation,
    /// An operation on one conversation.
    ConversationOperation(&'a ConversationSid),
    /// Neither.
    Other,
}

impl Endpoint {
    /// Which endpoint this is, without its object.
    pub fn kind(&self) -> EndpointKind {
        match self {
            Self::Token => EndpointKind::Token,
            Self::UserConversations { .. } => EndpointKind::UserConversations,
            Self::GetUser => EndpointKind::GetUser,
            Self::UpdateUser => EndpointKind::UpdateUser,
            Self::GetConversation { .. } => EndpointKind::GetConversation,
            Self::UpdateConversation { .. } => EndpointKind::UpdateConversation,
            Self::Participants { .. } => EndpointKind::Participants,
            Self::Messages { .. } => EndpointKind::Messages,
            Self::SendMessage { .. } => EndpointKind::SendMessage,
            Self::EventChannel => EndpointKind::EventChannel,
            Self::OtherConversation { .. } => EndpointKind::OtherConversation,
            Self::Unknown => EndpointKind::Unknown,
            Self::Participant { .. } => EndpointKind::Participant,
            Self::Message { .. } => EndpointKind::Message,
            Self::Webhooks { .. } => EndpointKind::Webhooks,
            Self::UserConversation { .. } => EndpointKind::UserConversation,
            Self::UpdateUserConversation { .. } => EndpointKind::UpdateUserConversation,
            Self::Counts { .. } => EndpointKind::Counts,
            Self::Bindings => EndpointKind::Bindings,
            Self::Binding { .. } => EndpointKind::Binding,
            Self::DeleteBinding { .. } => EndpointKind::DeleteBinding,
            Self::Register { .. } => EndpointKind::Register,
            Self::Unregister { .. } => EndpointKind::Unregister,
            Self::Configuration => EndpointKind::Configuration,
            Self::SyncObject { .. } => EndpointKind::SyncObject,
            Self::Subscriptions => EndpointKind::Subscriptions,
        }
    }

    /// How this endpoint relates to synchronization.
    pub fn class(&self) -> OperationClass<'_> {
        match self {
            Self::UserConversations { .. }
            | Self::GetUser
            | Self::GetConversation { .. }
            | Self::Participants { .. }
            | Self::Messages { .. }
            | Self::Participant { .. }
            | Self::Message { .. }
            | Self::Webhooks { .. }
            | Self::UserConversation { .. }
            | Self::Counts { .. }
            | Self::Configuration
            | Self::SyncObject { .. }
            | Self::Subscriptions => OperationClass::Sync,
            Self::UpdateUser => OperationClass::ClientOperation,
            Self::UpdateConversation { sid }
            | Self::SendMessage { sid }
            | Self::UpdateUserConversation { sid, .. }
            | Self::OtherConversation { sid, write: true } => {
                OperationClass::ConversationOperation(sid)
            }
            Self::OtherConversation { write: false, .. } => OperationClass::Sync,
            // Push bindings are neither synchronization nor an operation synchronization must
            // precede: an SDK registers its device whenever the app hands it a token.
            Self::Token
            | Self::EventChannel
            | Self::Bindings
            | Self::Binding { .. }
            | Self::DeleteBinding { .. }
            | Self::Register { .. }
            | Self::Unregister { .. }
            | Self::Unknown => OperationClass::Other,
        }
    }
}
