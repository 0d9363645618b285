//! JSON shapes of the Twilio Conversations v1 resources the backend serves.
//!
//! Field names follow `specs/twilio_conversations_v1.yaml`; `attributes` is a JSON-encoded string
//! as in the real API. URLs are absolute, pointing at this backend.

use serde_json::{Value, json};

use super::state::{
    BackendState, ConversationRecord, MessageRecord, ParticipantRecord, Snapshot, UserRecord,
};

fn attr_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// A conversation resource as of `snap`.
pub fn conversation(st: &BackendState, c: &ConversationRecord, snap: &Snapshot) -> Value {
    let url = format!("{}/v1/Conversations/{}", st.base_url, c.sid);
    json!({
        "account_sid": st.account_sid,
        "chat_service_sid": st.service_sid,
        "messaging_service_sid": null,
        "sid": c.sid,
        "friendly_name": c.friendly_name,
        "unique_name": c.unique_name,
        "attributes": attr_string(&snap.attributes),
        "state": "active",
        "date_created": c.created.rfc3339(),
        "date_updated": snap.at.rfc3339(),
        "timers": {},
        "url": url,
        "links": {
            "participants": format!("{url}/Participants"),
            "messages": format!("{url}/Messages"),
            "webhooks": format!("{url}/Webhooks"),
        },
        "bindings": null,
    })
}

/// A user-conversation resource (an item of `/v1/Users/{id}/Conversations`).
pub fn user_conversation(st: &BackendState, user: &UserRecord, c: &ConversationRecord) -> Value {
    let snap = c.current();
    let participant = c.participants.iter().find(|p| p.identity == user.identity);
    let unread = participant
        .and_then(|p| p.last_read_message_index)
        .map(|i| c.messages.range((i + 1, 0)..).count());
    json!({
        "account_sid": st.account_sid,
        "chat_service_sid": st.service_sid,
        "conversation_sid": c.sid,
        "unread_messages_count": unread,
        "last_read_message_index": participant.and_then(|p| p.last_read_message_index),
        "participant_sid": participant.map(|p| p.sid.clone()),
        "user_sid": user.sid,
        "friendly_name": c.friendly_name,
        "conversation_state": "active",
        "timers": {},
        "attributes": attr_string(&snap.attributes),
        "date_created": c.created.rfc3339(),
        "date_updated": snap.at.rfc3339(),
        "created_by": c.created_by,
        "notification_level": "default",
        "unique_name": c.unique_name,
        "url": format!("{}/v1/Users/{}/Conversations/{}", st.base_url, user.sid, c.sid),
        "links": {
            "participant": format!("{}/v1/Conversations/{}/Participants/{}", st.base_url, c.sid,
                participant.map(|p| p.sid.as_str()).unwrap_or_default()),
            "conversation": format!("{}/v1/Conversations/{}", st.base_url, c.sid),
        },
    })
}

/// A user resource as of `snap`.
pub fn user(st: &BackendState, u: &UserRecord, snap: &Snapshot) -> Value {
    let url = format!("{}/v1/Users/{}", st.base_url, u.sid);
    json!({
        "sid": u.sid,
        "account_sid": st.account_sid,
        "chat_service_sid": st.service_sid,
        "role_sid": null,
        "identity": u.identity,
        "friendly_name": u.friendly_name,
        "attributes": attr_string(&snap.attributes),
        "is_online": null,
        "is_notifiable": null,
        "date_created": u.created.rfc3339(),
        "date_updated": snap.at.rfc3339(),
        "url": url,
        "links": { "user_conversations": format!("{url}/Conversations") },
    })
}

/// A participant resource.
pub fn participant(st: &BackendState, c: &ConversationRecord, p: &ParticipantRecord) -> Value {
    json!({
        "account_sid": st.account_sid,
        "conversation_sid": c.sid,
        "sid": p.sid,
        "identity": p.identity,
        "attributes": "{}",
        "messaging_binding": null,
        "role_sid": null,
        "date_created": p.created.rfc3339(),
        "date_updated": p.created.rfc3339(),
        "url": format!("{}/v1/Conversations/{}/Participants/{}", st.base_url, c.sid, p.sid),
        "last_read_message_index": p.last_read_message_index,
        "last_read_timestamp": null,
    })
}

/// A message resource.
pub fn message(st: &BackendState, c: &ConversationRecord, m: &MessageRecord) -> Value {
    json!({
        "account_sid": st.account_sid,
        "conversation_sid": c.sid,
        "sid": m.sid,
        "index": m.index,
        "author": m.author,
        "body": m.body,
        "media": null,
        "attributes": "{}",
        "participant_sid": c.participants.iter().find(|p| p.identity == m.author).map(|p| p.sid.clone()),
        "date_created": m.created.rfc3339(),
        "date_updated": m.updated.rfc3339(),
        "url": format!("{}/v1/Conversations/{}/Messages/{}", st.base_url, c.sid, m.sid),
        "delivery": null,
        "links": {},
        "content_sid": null,
    })
}
