//! The model's records in the wire's shapes: v1 resources and event frames.
//!
//! Must not import: the service, the transport, the facade (rendering reads the model and
//! writes wire types; it changes nothing).

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    BindingRecord, ConversationRecord, MessageRecord, Model, ParticipantRecord, PendingEvent,
    Published, Snapshot, UserRecord,
};
use crate::wire::resources::{self, encode_attributes};
use crate::wire::{EventFrame, ObjectKey};

fn links<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A conversation resource as of `snap`.
pub(super) fn conversation(
    m: &Model,
    c: &ConversationRecord,
    snap: &Snapshot,
) -> resources::Conversation {
    let url = format!("{}/v1/Conversations/{}", m.base_url, c.sid);
    resources::Conversation {
        account_sid: m.account_sid.clone(),
        chat_service_sid: m.service_sid.clone(),
        messaging_service_sid: None,
        sid: c.sid.clone(),
        friendly_name: c.friendly_name.clone(),
        unique_name: c.unique_name.clone(),
        attributes: encode_attributes(&snap.attributes),
        state: c.state.clone(),
        date_created: c.created.rfc3339(),
        date_updated: snap.at.rfc3339(),
        timers: BTreeMap::new(),
        links: links([
            ("participants", format!("{url}/Participants")),
            ("messages", format!("{url}/Messages")),
            ("webhooks", format!("{url}/Webhooks")),
        ]),
        url,
        bindings: None,
    }
}

/// A user-conversation resource (an item of `/v1/Users/{id}/Conversations`).
pub(super) fn user_conversation(
    m: &Model,
    user: &UserRecord,
    c: &ConversationRecord,
) -> resources::UserConversation {
    let snap = c.history.current();
    let participant = c.participants.iter().find(|p| p.identity == user.identity);
    let horizon = participant.and_then(|p| p.last_read_message_index);
    let unread = participant.and_then(|p| c.unread(p));
    resources::UserConversation {
        account_sid: m.account_sid.clone(),
        chat_service_sid: m.service_sid.clone(),
        conversation_sid: c.sid.clone(),
        unread_messages_count: unread,
        last_read_message_index: horizon,
        participant_sid: participant.map(|p| p.sid.clone()),
        user_sid: user.sid.clone(),
        friendly_name: c.friendly_name.clone(),
        conversation_state: c.state.clone(),
        timers: BTreeMap::new(),
        attributes: encode_attributes(&snap.attributes),
        date_created: c.created.rfc3339(),
        date_updated: snap.at.rfc3339(),
        created_by: c.created_by.clone(),
        notification_level: participant
            .map_or_else(|| "default".into(), |p| p.notification_level.clone()),
        unique_name: c.unique_name.clone(),
        url: format!(
            "{}/v1/Users/{}/Conversations/{}",
            m.base_url, user.sid, c.sid
        ),
        links: links([
            (
                "participant",
                format!(
                    "{}/v1/Conversations/{}/Participants/{}",
                    m.base_url,
                    c.sid,
                    participant.map(|p| p.sid.as_str()).unwrap_or_default()
                ),
            ),
            (
                "conversation",
                format!("{}/v1/Conversations/{}", m.base_url, c.sid),
            ),
        ]),
    }
}

/// A push binding resource (`/v1/Services/{sid}/Bindings/{BS}`).
pub(super) fn binding(m: &Model, b: &BindingRecord) -> resources::Binding {
    resources::Binding {
        sid: b.sid.clone(),
        account_sid: m.account_sid.clone(),
        chat_service_sid: m.service_sid.clone(),
        credential_sid: m.credential_sid.clone(),
        date_created: b.created.rfc3339(),
        date_updated: b.updated.rfc3339(),
        endpoint: format!("{}:{}", b.identity, b.address),
        identity: b.identity.clone(),
        binding_type: b.binding_type.name().to_owned(),
        message_types: b.message_types.clone(),
        url: format!(
            "{}/v1/Services/{}/Bindings/{}",
            m.base_url, m.service_sid, b.sid
        ),
    }
}

/// The counts of a conversation (`/v1/Conversations/{sid}/Counts`).
pub(super) fn counts(m: &Model, c: &ConversationRecord) -> resources::ConversationCounts {
    resources::ConversationCounts {
        conversation_sid: c.sid.clone(),
        participants_count: c.participants.len() as u64,
        messages_count: c.messages.len() as u64,
        url: format!("{}/v1/Conversations/{}/Counts", m.base_url, c.sid),
    }
}

/// A user resource as of `snap`.
pub(super) fn user(m: &Model, u: &UserRecord, snap: &Snapshot) -> resources::User {
    let url = format!("{}/v1/Users/{}", m.base_url, u.sid);
    resources::User {
        sid: u.sid.clone(),
        account_sid: m.account_sid.clone(),
        chat_service_sid: m.service_sid.clone(),
        role_sid: None,
        identity: u.identity.clone(),
        friendly_name: u.friendly_name.clone(),
        attributes: encode_attributes(&snap.attributes),
        is_online: None,
        is_notifiable: None,
        date_created: u.created.rfc3339(),
        date_updated: snap.at.rfc3339(),
        links: links([("user_conversations", format!("{url}/Conversations"))]),
        url,
    }
}

/// A participant resource.
pub(super) fn participant(
    m: &Model,
    c: &ConversationRecord,
    p: &ParticipantRecord,
) -> resources::Participant {
    resources::Participant {
        account_sid: m.account_sid.clone(),
        conversation_sid: c.sid.clone(),
        sid: p.sid.clone(),
        identity: p.identity.clone(),
        attributes: "{}".into(),
        messaging_binding: None,
        role_sid: None,
        date_created: p.created.rfc3339(),
        date_updated: p.created.rfc3339(),
        url: format!(
            "{}/v1/Conversations/{}/Participants/{}",
            m.base_url, c.sid, p.sid
        ),
        last_read_message_index: p.last_read_message_index,
        last_read_timestamp: None,
    }
}

/// A message resource.
pub(super) fn message(
    m: &Model,
    c: &ConversationRecord,
    msg: &MessageRecord,
) -> resources::Message {
    resources::Message {
        account_sid: m.account_sid.clone(),
        conversation_sid: c.sid.clone(),
        sid: msg.sid.clone(),
        index: msg.index,
        author: msg.author.clone(),
        body: msg.body.clone(),
        media: None,
        attributes: encode_attributes(&msg.attributes),
        participant_sid: c
            .participants
            .iter()
            .find(|p| p.identity == msg.author)
            .map(|p| p.sid.clone()),
        date_created: msg.created.rfc3339(),
        date_updated: msg.updated.rfc3339(),
        url: format!(
            "{}/v1/Conversations/{}/Messages/{}",
            m.base_url, c.sid, msg.sid
        ),
        delivery: None,
        links: BTreeMap::new(),
        content_sid: None,
    }
}

/// An event as it is published now, numbered `seq`: the body is built from the model at this
/// moment (the current snapshot, or the old one of a stale replay), as a sync service sends it.
pub(super) fn event(m: &Model, ev: &PendingEvent, seq: u64) -> Published {
    let audience: BTreeSet<String> = ev.audience.clone().unwrap_or_else(|| m.audience(&ev.key));
    let snapshot = ev.stale.clone().or_else(|| m.snapshot(&ev.key).cloned());
    let mut frame = EventFrame {
        seq,
        kind: ev.kind,
        revision: snapshot.as_ref().map(|s| s.revision),
        reasons: ev.reasons.clone(),
        conversation_sid: None,
        conversation: None,
        user: None,
        index: ev.index,
        message: None,
    };
    match &ev.key {
        ObjectKey::User(id) => {
            frame.user = m
                .user(id)
                .zip(snapshot.as_ref())
                .map(|(u, s)| user(m, u, s));
        }
        ObjectKey::Conversation(sid) => {
            frame.conversation_sid = Some(sid.clone());
            let c = m.conversation(sid);
            frame.conversation = c.zip(snapshot.as_ref()).map(|(c, s)| conversation(m, c, s));
            frame.message = c
                .zip(ev.index)
                .and_then(|(c, i)| c.messages.get(&(i, 0)).map(|msg| message(m, c, msg)));
        }
    }
    let text = serde_json::to_string(&frame).unwrap_or_default();
    Published {
        audience,
        frame,
        text,
    }
}
