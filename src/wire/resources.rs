//! REST resources in the field names of `specs/twilio_conversations_v1.yaml`.
//!
//! The backend renders its records into these; the reference client decodes responses into them.
//! As in the real API, `attributes` is a JSON-encoded string ([`parse_attributes`] reads it) and
//! URLs are absolute. Lists come in the v1 envelope: the items under the list's key, and a
//! [`Meta`] with absolute `next_page_url` / `previous_page_url`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ConversationSid;

/// The JSON value an `attributes` string encodes (`null` when it is not JSON).
pub fn parse_attributes(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// `value` encoded as an `attributes` string.
pub fn encode_attributes(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// `/v1/Conversations/{sid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Account.
    pub account_sid: String,
    /// Conversations service.
    pub chat_service_sid: String,
    /// Messaging service (none here).
    pub messaging_service_sid: Option<String>,
    /// `CH...`
    pub sid: ConversationSid,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Unique name.
    pub unique_name: Option<String>,
    /// JSON-encoded attributes.
    pub attributes: String,
    /// `active`.
    pub state: String,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339, when this revision was written.
    pub date_updated: String,
    /// Timers (none here).
    pub timers: BTreeMap<String, Value>,
    /// Absolute URL of the resource.
    pub url: String,
    /// `participants`, `messages`, `webhooks`.
    pub links: BTreeMap<String, String>,
    /// Bindings (none here).
    pub bindings: Option<Value>,
}

/// An item of `/v1/Users/{identity}/Conversations`: the user's view of one conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserConversation {
    /// Account.
    pub account_sid: String,
    /// Conversations service.
    pub chat_service_sid: String,
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// Unread messages, unknown until the user has a read horizon.
    pub unread_messages_count: Option<u64>,
    /// The user's read horizon.
    pub last_read_message_index: Option<u64>,
    /// The user's participant sid in it.
    pub participant_sid: Option<String>,
    /// `US...`
    pub user_sid: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// `active`.
    pub conversation_state: String,
    /// Timers (none here).
    pub timers: BTreeMap<String, Value>,
    /// JSON-encoded attributes.
    pub attributes: String,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Creator's identity.
    pub created_by: String,
    /// `default`.
    pub notification_level: String,
    /// Unique name.
    pub unique_name: Option<String>,
    /// Absolute URL.
    pub url: String,
    /// `participant`, `conversation`.
    pub links: BTreeMap<String, String>,
}

/// `/v1/Users/{identity}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `US...`
    pub sid: String,
    /// Account.
    pub account_sid: String,
    /// Conversations service.
    pub chat_service_sid: String,
    /// Role (none here).
    pub role_sid: Option<String>,
    /// Chat identity.
    pub identity: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// JSON-encoded attributes.
    pub attributes: String,
    /// Presence (not modelled).
    pub is_online: Option<bool>,
    /// Push reachability (not modelled).
    pub is_notifiable: Option<bool>,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Absolute URL.
    pub url: String,
    /// `user_conversations`.
    pub links: BTreeMap<String, String>,
}

/// `/v1/Conversations/{sid}/Participants/{sid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// Account.
    pub account_sid: String,
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// `MB...`
    pub sid: String,
    /// Chat identity.
    pub identity: String,
    /// JSON-encoded attributes.
    pub attributes: String,
    /// Non-chat binding (none here).
    pub messaging_binding: Option<Value>,
    /// Role (none here).
    pub role_sid: Option<String>,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Absolute URL.
    pub url: String,
    /// Read horizon.
    pub last_read_message_index: Option<u64>,
    /// When the horizon moved (not modelled).
    pub last_read_timestamp: Option<String>,
}

/// `/v1/Conversations/{sid}/Messages/{sid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Account.
    pub account_sid: String,
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// `IM...`
    pub sid: String,
    /// Index within the conversation.
    pub index: u64,
    /// Author identity.
    pub author: String,
    /// Text.
    pub body: String,
    /// Media (none here).
    pub media: Option<Value>,
    /// JSON-encoded attributes.
    pub attributes: String,
    /// The author's participant sid.
    pub participant_sid: Option<String>,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Absolute URL.
    pub url: String,
    /// Delivery receipts (none here).
    pub delivery: Option<Value>,
    /// Links (none here).
    pub links: BTreeMap<String, String>,
    /// Content template (none here).
    pub content_sid: Option<String>,
}

/// The paging part of a v1 list envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Page number as the client counts it.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Absolute URL of the first page.
    pub first_page_url: String,
    /// Absolute URL of the page before, if any.
    pub previous_page_url: Option<String>,
    /// Absolute URL of this page.
    pub url: String,
    /// Absolute URL of the page after, if any.
    pub next_page_url: Option<String>,
    /// The key the items are listed under.
    pub key: String,
}

/// A page of `/v1/Users/{identity}/Conversations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationsPage {
    /// The items.
    pub conversations: Vec<UserConversation>,
    /// Paging.
    pub meta: Meta,
}

/// A page of `/v1/Conversations/{sid}/Participants`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantsPage {
    /// The items.
    pub participants: Vec<Participant>,
    /// Paging.
    pub meta: Meta,
}

/// A page of `/v1/Conversations/{sid}/Messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesPage {
    /// The items.
    pub messages: Vec<Message>,
    /// Paging.
    pub meta: Meta,
}

/// `/v1/Services/{ChatServiceSid}/Bindings/{Sid}`: a push binding (one device address of one
/// identity). The same resource answers the client registration write the kit's backend serves
/// (`POST /v1/Client/Registrations`, not part of the public v1 API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// `BS...`
    pub sid: String,
    /// Account.
    pub account_sid: String,
    /// Conversations service.
    pub chat_service_sid: String,
    /// `CR...`: the push credential.
    pub credential_sid: String,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339: the last registration write.
    pub date_updated: String,
    /// The binding's endpoint identifier (`{identity}:{address}` here).
    pub endpoint: String,
    /// Chat identity.
    pub identity: String,
    /// `apn`, `gcm`, `fcm` (or `twilsock`, which the mock never creates).
    pub binding_type: String,
    /// The message types it is subscribed to.
    pub message_types: Vec<String>,
    /// Absolute URL of the resource.
    pub url: String,
}

/// A page of `/v1/Services/{ChatServiceSid}/Bindings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingsPage {
    /// The items.
    pub bindings: Vec<Binding>,
    /// Paging.
    pub meta: Meta,
}

/// `/v1/Conversations/{sid}/Counts`: the kit's backend's count resource, NOT part of the public
/// v1 API. It carries the counts the real JS SDK reads from its conversation resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationCounts {
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// How many participants it has.
    pub participants_count: u64,
    /// How many messages it has (removed ones not counted).
    pub messages_count: u64,
    /// Absolute URL of the resource.
    pub url: String,
}

/// The token generator's answer (`POST /token`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// Chat identity.
    pub identity: String,
    /// Lifetime in seconds.
    pub ttl: u64,
    /// The JWT.
    pub token: String,
}

/// A Twilio error body: `{code, message, more_info, status}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioError {
    /// Twilio error code (`20404`).
    pub code: u32,
    /// What went wrong.
    pub message: String,
    /// The error's documentation page.
    pub more_info: String,
    /// HTTP status.
    pub status: u16,
}

impl TwilioError {
    /// An error body for `status` with Twilio `code`.
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status,
        }
    }
}
