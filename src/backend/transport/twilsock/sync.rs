//! The backend's objects as Sync sees them: every conversation is a document (`ET…`) with a
//! message list (`ES…`) and a participant roster map (`MP_roster_…`); every user has a user
//! info map (`MP_user_…`) and a map of their conversations (`MP_myconvs_…`). Event ids are the
//! event log's sequence numbers, so "replay after `last_event_id`" is "replay after seq".

use serde_json::{Value, json};

use crate::backend::model::Model;
use crate::wire::resources::{Conversation, Message, User, UserConversation};
use crate::wire::{ConversationSid, EventFrame, EventType};

/// Where the SDK is told Sync lives (any host: requests travel on the socket; only paths are
/// routed).
pub(crate) const HOST: &str = "http://cds.convo-tck.invalid";

pub(crate) fn document(sid: &ConversationSid) -> String {
    format!("ET{}", sid.as_str())
}
pub(crate) fn messages(sid: &ConversationSid) -> String {
    format!("ES{}", sid.as_str())
}
pub(crate) fn roster(sid: &ConversationSid) -> String {
    format!("MP_roster_{}", sid.as_str())
}
pub(crate) fn user_map(identity: &str) -> String {
    format!("MP_user_{identity}")
}
pub(crate) fn my_conversations(identity: &str) -> String {
    format!("MP_myconvs_{identity}")
}

/// What a Sync object name stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    Document(ConversationSid),
    Messages(ConversationSid),
    Roster(ConversationSid),
    UserInfo(String),
    MyConversations(String),
}

impl Object {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        if let Some(id) = name.strip_prefix("MP_user_") {
            return Some(Self::UserInfo(id.to_owned()));
        }
        if let Some(id) = name.strip_prefix("MP_myconvs_") {
            return Some(Self::MyConversations(id.to_owned()));
        }
        if let Some(sid) = name.strip_prefix("MP_roster_") {
            return Some(Self::Roster(sid.into()));
        }
        if let Some(sid) = name.strip_prefix("ET") {
            return Some(Self::Document(sid.into()));
        }
        name.strip_prefix("ES")
            .map(|sid| Self::Messages(sid.into()))
    }
}

/// The Sync object an event changes, as `identity` sees it.
pub(crate) fn object_of(frame: &EventFrame, identity: &str) -> String {
    let sid = frame
        .conversation_sid
        .clone()
        .unwrap_or_else(|| ConversationSid::new(""));
    match frame.kind {
        EventType::ConversationAdded | EventType::ConversationRemoved => my_conversations(identity),
        EventType::ConversationUpdated => document(&sid),
        EventType::UserUpdated => user_map(identity),
        EventType::MessageAdded | EventType::MessageUpdated | EventType::MessageRemoved => {
            messages(&sid)
        }
    }
}

fn url(kind: &str, name: &str) -> String {
    format!("{HOST}/v3/{kind}/{name}")
}

/// A map, list or document descriptor (`items`/`data` added by the caller).
pub(crate) fn descriptor(kind: &str, name: &str, revision: u64, last_event_id: u64) -> Value {
    let mut d = json!({
        "sid": name, "unique_name": name, "url": url(kind, name),
        "revision": revision.to_string(), "last_event_id": last_event_id,
        "date_updated": "1970-01-01T00:00:00Z", "date_expires": null,
    });
    if kind != "Documents" {
        d["links"] = json!({"items": format!("{}/Items", url(kind, name))});
    }
    if kind == "Lists" {
        d["links"]["context"] = json!(format!("{}/Context", url(kind, name)));
    }
    d
}

/// A map item.
pub(crate) fn map_item(map: &str, key: &str, data: Value, last_event_id: u64) -> Value {
    json!({"key": key, "url": format!("{}/Items/{key}", url("Maps", map)), "revision": "0",
           "last_event_id": last_event_id, "data": data,
           "date_updated": "1970-01-01T00:00:00Z", "date_expires": null})
}

/// A list item.
pub(crate) fn list_item(list: &str, index: u64, data: Value, last_event_id: u64) -> Value {
    json!({"index": index, "url": format!("{}/Items/{index}", url("Lists", list)), "revision": "0",
           "last_event_id": last_event_id, "data": data,
           "date_updated": "1970-01-01T00:00:00Z", "date_expires": null})
}

/// A conversation document's data.
pub(crate) fn document_data(c: &Conversation, m: &Model) -> Value {
    let record = m.conversation(&c.sid);
    let created_by = record.map(|r| r.created_by.clone());
    let last_message = record.and_then(|r| {
        r.messages
            .values()
            .next_back()
            .map(|msg| (msg.index, msg.created.rfc3339()))
    });
    let mut d = json!({
        "uniqueName": c.unique_name, "friendlyName": c.friendly_name,
        "attributes": c.attributes, "createdBy": created_by,
        "dateCreated": c.date_created, "dateUpdated": c.date_updated,
        "messages": messages(&c.sid), "roster": roster(&c.sid),
    });
    if let Some((index, timestamp)) = last_message {
        d["lastMessage"] = json!({"index": index, "timestamp": timestamp});
    }
    d
}

/// An item of the user's conversations map.
pub(crate) fn my_conversation_data(
    sid: &ConversationSid,
    horizon: Option<u64>,
    level: &str,
) -> Value {
    json!({"channel": document(sid), "messages": messages(sid), "roster": roster(sid),
           "status": "joined", "lastConsumedMessageIndex": horizon, "notificationLevel": level})
}

/// A user-conversation in the client API's shape (an item of `my_conversations`).
pub(crate) fn cps_user_conversation(u: &UserConversation) -> Value {
    json!({
        "conversation_sid": u.conversation_sid, "status": "joined",
        "friendly_name": u.friendly_name, "unique_name": u.unique_name,
        "attributes": u.attributes, "date_created": u.date_created, "date_updated": u.date_updated,
        "created_by": u.created_by, "notification_level": u.notification_level,
        "last_read_message_index": u.last_read_message_index,
        "unread_messages_count": u.unread_messages_count,
        "sync_objects": {"conversation": document(&u.conversation_sid),
                         "messages": messages(&u.conversation_sid),
                         "participants": roster(&u.conversation_sid)},
    })
}

/// A message as a list item's data.
pub(crate) fn message_data(msg: &Message) -> Value {
    json!({"sid": msg.sid, "author": msg.author, "text": msg.body,
           "timestamp": msg.date_created, "dateUpdated": msg.date_updated,
           "attributes": msg.attributes, "type": "text", "lastUpdatedBy": null})
}

/// The user info map's items.
pub(crate) fn user_items(u: &User, last_event_id: u64) -> Vec<Value> {
    let map = user_map(&u.identity);
    vec![
        map_item(
            &map,
            "attributes",
            json!({"value": u.attributes}),
            last_event_id,
        ),
        map_item(
            &map,
            "friendlyName",
            json!({"value": u.friendly_name}),
            last_event_id,
        ),
    ]
}

/// The notification (message type, payload) an event is to `identity`, rendered from the
/// event's frame (the snapshot it announced) and, for list membership, the model now.
pub(crate) fn notification(
    m: &Model,
    frame: &EventFrame,
    identity: &str,
) -> Option<(&'static str, Value)> {
    // An update's event id is the one that first announced its revision: a stale snapshot
    // delivered late comes with its old id, as a redelivered Sync event does.
    let id = if frame.kind.is_update() {
        m.events.first_announcing(frame)
    } else {
        frame.seq
    };
    let now = m.now().rfc3339();
    let sid = frame
        .conversation_sid
        .clone()
        .unwrap_or_else(|| ConversationSid::new(""));
    Some(match frame.kind {
        EventType::ConversationAdded | EventType::ConversationRemoved => {
            let map = my_conversations(identity);
            let (horizon, level) = m
                .listed_conversation(&sid)
                .and_then(|c| c.participants.iter().find(|p| p.identity == identity))
                .map_or((None, "default".to_owned()), |p| {
                    (p.last_read_message_index, p.notification_level.clone())
                });
            let data = my_conversation_data(&sid, horizon, &level);
            let added = frame.kind == EventType::ConversationAdded;
            let event = json!({
                "map_sid": map, "item_key": sid, "item_url": format!("{}/Items/{}", url("Maps", &map), sid.as_str()),
                "id": id, "item_revision": id.to_string(), "item_data": data,
                "date_created": now, "map_revision": id.to_string(),
            });
            let kind = if added {
                "map_item_added"
            } else {
                "map_item_removed"
            };
            (
                "com.twilio.rtd.cds.map",
                json!({"event_type": kind, "event": event}),
            )
        }
        EventType::ConversationUpdated => {
            let c = frame.conversation.as_ref()?;
            let event = json!({
                "document_sid": document(&sid), "id": id,
                "document_revision": frame.revision.unwrap_or_default().to_string(),
                "document_data": document_data(c, m), "date_created": now,
            });
            (
                "com.twilio.rtd.cds.document",
                json!({"event_type": "document_updated", "event": event}),
            )
        }
        EventType::UserUpdated => {
            let u = frame.user.as_ref()?;
            let map = user_map(identity);
            let (key, value) = if frame.reasons.iter().any(|r| r == "friendlyName")
                && !frame.reasons.iter().any(|r| r == "attributes")
            {
                ("friendlyName", json!(u.friendly_name))
            } else {
                ("attributes", json!(u.attributes))
            };
            let event = json!({
                "map_sid": map, "item_key": key, "item_url": format!("{}/Items/{key}", url("Maps", &map)),
                "id": id, "item_revision": frame.revision.unwrap_or_default().to_string(),
                "item_data": {"value": value}, "date_created": now, "map_revision": id.to_string(),
            });
            (
                "com.twilio.rtd.cds.map",
                json!({"event_type": "map_item_updated", "event": event}),
            )
        }
        EventType::MessageAdded | EventType::MessageUpdated | EventType::MessageRemoved => {
            let list = messages(&sid);
            let index = frame.index?;
            let data = frame.message.as_ref().map_or(Value::Null, message_data);
            let kind = match frame.kind {
                EventType::MessageAdded => "list_item_added",
                EventType::MessageUpdated => "list_item_updated",
                _ => "list_item_removed",
            };
            let event = json!({
                "list_sid": list, "item_index": index, "item_url": format!("{}/Items/{index}", url("Lists", &list)),
                "id": id, "item_revision": id.to_string(), "item_data": data,
                "date_created": now, "list_revision": id.to_string(),
            });
            (
                "com.twilio.rtd.cds.list",
                json!({"event_type": kind, "event": event}),
            )
        }
    })
}

/// Attributes in a client-API body: a JSON string (as the SDK sends it) or a value.
pub(crate) fn attributes_field(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
