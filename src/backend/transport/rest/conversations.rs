//! `/v1/Conversations/{Sid or UniqueName}` with its participants, messages and webhooks.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use std::collections::BTreeMap;

use serde_json::json;

use super::paging::{self, Envelope, Position};
use super::{Answer, Call, Principal};
use crate::backend::endpoint::Endpoint;
use crate::backend::model::{ConversationChange, ConversationRecord, Model, ParticipantRecord};
use crate::backend::render;
use crate::wire::resources::{MessagesPage, Meta, ParticipantsPage};
use crate::wire::{ConversationSid, ObjectKey};

/// The addressed conversation as the path names it (segment 2: a sid or a unique name).
fn named(call: &Call<'_>) -> String {
    call.segments.get(2).cloned().unwrap_or_default()
}

/// The conversation a unique name or sid in a path resolves to, if it is live.
pub(crate) fn resolve<'m>(m: &'m Model, named: &str) -> Option<&'m ConversationRecord> {
    m.conversation_by_sid_or_name(named)
}

/// Authenticates and finds the addressed conversation (by sid or unique name), which a client
/// must take part in; `endpoint` classifies the request once the sid is known.
fn member<'m>(
    call: &Call<'_>,
    m: &'m Model,
    endpoint: impl Fn(ConversationSid) -> Endpoint,
) -> Result<(&'m ConversationRecord, Principal, Endpoint), Answer> {
    let named = named(call);
    let fallback = endpoint(ConversationSid::new(named.clone()));
    let principal = call.principal(&fallback)?;
    let Some(c) = resolve(m, &named) else {
        return Err(Answer::error(
            fallback,
            404,
            20_404,
            format!("conversation {} not found", super::echo(&named)),
        ));
    };
    let ep = endpoint(c.sid.clone());
    if !principal.sees(c) {
        let who = match &principal {
            Principal::Client(identity) => identity.as_str(),
            Principal::Account => "the account",
        };
        return Err(Answer::error(
            ep,
            403,
            50_430,
            format!("{who} is not a participant of {}", c.sid),
        ));
    }
    Ok((c, principal, ep))
}

pub(crate) fn get(call: &Call<'_>) -> Answer {
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::GetConversation { sid }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        let snap = c.history.current();
        Answer::ok(ep, render::conversation(m, c, snap)).with_snapshot(snap)
    })
}

/// The states a v1 conversation may be in.
const STATES: [&str; 3] = ["active", "inactive", "closed"];

/// An optional name: empty clears it.
fn name_field(call: &Call<'_>, field: &str) -> Option<Option<String>> {
    call.form
        .get(field)
        .map(|v| Some(v.clone()).filter(|v| !v.is_empty()))
}

pub(crate) fn update(call: &Call<'_>) -> Answer {
    call.service.change(|m| {
        let (sid, ep) = match member(call, m, |sid| Endpoint::UpdateConversation { sid }) {
            Ok((c, _, ep)) => (c.sid.clone(), ep),
            Err(a) => return (a, Vec::new()),
        };
        match conversation_change(call, m, &sid, &ep) {
            Ok(change) => {
                if let Some(a) = Answer::gated(m, &ep) {
                    return (a, Vec::new());
                }
                match m.update_conversation(&sid, change) {
                    Some(events) => (super::written(m, ep, &ObjectKey::Conversation(sid)), events),
                    None => (
                        Answer::error(ep, 404, 20_404, "conversation vanished"),
                        Vec::new(),
                    ),
                }
            }
            Err(a) => (a, Vec::new()),
        }
    })
}

/// The v1 fields of a conversation update, each checked.
fn conversation_change(
    call: &Call<'_>,
    m: &Model,
    sid: &ConversationSid,
    ep: &Endpoint,
) -> Result<ConversationChange, Answer> {
    call.form_fields(
        ep,
        &["Attributes", "FriendlyName", "UniqueName", "State"],
        true,
    )?;
    let state = match call.form.get("State") {
        None => None,
        Some(s) if STATES.contains(&s.as_str()) => Some(s.clone()),
        Some(s) => {
            return Err(Answer::error(
                ep.clone(),
                400,
                20_001,
                format!(
                    "invalid State `{}`: expected one of {}",
                    super::echo(s),
                    STATES.join(", ")
                ),
            ));
        }
    };
    let unique_name = name_field(call, "UniqueName");
    if let Some(Some(name)) = &unique_name {
        if m.conversation(&ConversationSid::new(name.clone()))
            .is_some_and(|other| other.sid != *sid)
        {
            return Err(Answer::error(
                ep.clone(),
                400,
                20_001,
                format!(
                    "invalid UniqueName `{}`: it is another conversation's sid",
                    super::echo(name)
                ),
            ));
        }
        if m.sid_named(name).is_some_and(|other| other != *sid) {
            return Err(Answer::error(
                ep.clone(),
                409,
                50_353,
                format!(
                    "a conversation with unique name `{}` already exists",
                    super::echo(name)
                ),
            ));
        }
    }
    Ok(ConversationChange {
        attributes: call.attributes(ep)?,
        friendly_name: name_field(call, "FriendlyName"),
        unique_name,
        state,
    })
}

/// The list's own URL, as served: `/v1/Conversations/{sid}/{path}`.
fn list_url(m: &Model, c: &ConversationRecord, path: &str) -> String {
    format!("{}/v1/Conversations/{}/{path}", m.base_url, c.sid)
}

/// One page of a conversation's sub-list (`Participants`, `Messages`): its items and meta;
/// `keep` are the query parameters the request sent that every page URL repeats.
fn sub_page<'i, V>(
    call: &Call<'_>,
    m: &Model,
    ep: &Endpoint,
    (key, list_url): (&'static str, String),
    keep: Vec<(&'static str, String)>,
    items: &'i BTreeMap<Position, V>,
    descending: bool,
) -> Result<(Vec<&'i V>, Meta), Answer> {
    let (page_size, at) = call.paging(ep, 100)?;
    if let Some(a) = Answer::gated(m, ep) {
        return Err(a);
    }
    let read = paging::read(items, at.cursor, page_size as usize, descending);
    let envelope = Envelope {
        key,
        list_url,
        keep,
        page: at.page,
        page_size,
    };
    let meta = envelope.meta(
        &read,
        call.query.get("PageToken").map(String::as_str),
        |_| None,
    );
    Ok((read.items.iter().map(|(_, v)| *v).collect(), meta))
}

pub(crate) fn participants(call: &Call<'_>) -> Answer {
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Participants { sid }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        let by_join: BTreeMap<Position, &ParticipantRecord> = c
            .participants
            .iter()
            .enumerate()
            .map(|(i, p)| ((i as u64, 0), p))
            .collect();
        let list = ("participants", list_url(m, c, "Participants"));
        match sub_page(call, m, &ep, list, Vec::new(), &by_join, false) {
            Ok((items, meta)) => Answer::ok(
                ep,
                ParticipantsPage {
                    participants: items
                        .into_iter()
                        .map(|p| render::participant(m, c, p))
                        .collect(),
                    meta,
                },
            ),
            Err(a) => a,
        }
    })
}

/// `/v1/Conversations/{sid}/Participants/{Sid or identity}`.
pub(crate) fn participant(call: &Call<'_>) -> Answer {
    let wanted = call.segments.get(4).cloned().unwrap_or_default();
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Participant {
            sid,
            participant: wanted.clone(),
        }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        match c
            .participants
            .iter()
            .find(|p| p.sid == wanted || p.identity == wanted)
        {
            Some(p) => Answer::ok(ep, render::participant(m, c, p)),
            None => Answer::error(
                ep,
                404,
                20_404,
                format!(
                    "participant {} not found in {}",
                    super::echo(&wanted),
                    c.sid
                ),
            ),
        }
    })
}

pub(crate) fn messages(call: &Call<'_>) -> Answer {
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Messages { sid }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        let order = call.query.get("Order").map(|o| o.to_ascii_lowercase());
        let descending = match order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => {
                return Answer::error(
                    ep,
                    400,
                    20_001,
                    format!("invalid Order `{}`: expected asc or desc", super::echo(o)),
                );
            }
        };
        // Page URLs repeat the `Order` the request sent, and add none it did not send.
        let keep = order.map(|o| vec![("Order", o)]).unwrap_or_default();
        let list = ("messages", list_url(m, c, "Messages"));
        match sub_page(call, m, &ep, list, keep, &c.messages, descending) {
            Ok((items, meta)) => Answer::ok(
                ep,
                MessagesPage {
                    messages: items
                        .into_iter()
                        .map(|msg| render::message(m, c, msg))
                        .collect(),
                    meta,
                },
            ),
            Err(a) => a,
        }
    })
}

/// `/v1/Conversations/{sid}/Messages/{Sid}`.
pub(crate) fn message(call: &Call<'_>) -> Answer {
    let wanted = call.segments.get(4).cloned().unwrap_or_default();
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Message {
            sid,
            message: wanted.clone(),
        }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        match c.messages.values().find(|msg| msg.sid == wanted) {
            Some(msg) => Answer::ok(ep, render::message(m, c, msg)),
            None => Answer::error(
                ep,
                404,
                20_404,
                format!("message {} not found in {}", super::echo(&wanted), c.sid),
            ),
        }
    })
}

/// `GET /v1/Conversations/{sid}/Counts`: the participant and message counts the real JS SDK
/// reads from its conversation resource. The kit's backend serves this; it is NOT part of the
/// public v1 API. The principal must see the conversation, as for the conversation itself.
pub(crate) fn counts(call: &Call<'_>) -> Answer {
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Counts { sid }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        Answer::ok(ep, render::counts(m, c))
    })
}

/// `/v1/Conversations/{sid}/Webhooks`: the mock has no webhooks, so always an empty page.
pub(crate) fn webhooks(call: &Call<'_>) -> Answer {
    call.service.read(|m| {
        let (c, _, ep) = match member(call, m, |sid| Endpoint::Webhooks { sid }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        let none: BTreeMap<Position, ()> = BTreeMap::new();
        let list = ("webhooks", list_url(m, c, "Webhooks"));
        match sub_page(call, m, &ep, list, Vec::new(), &none, false) {
            Ok((_, meta)) => Answer::ok(ep, json!({ "webhooks": [], "meta": meta })),
            Err(a) => a,
        }
    })
}

/// The author a message is sent as: a client token speaks for its own identity only; the
/// account may name anyone (and is `system` when it names no one, as in v1).
fn author(call: &Call<'_>, principal: &Principal, ep: &Endpoint) -> Result<String, Answer> {
    let claimed = call.form.get("Author");
    match (principal, claimed) {
        (Principal::Account, Some(a)) if !a.is_empty() => Ok(a.clone()),
        (Principal::Account, _) => Ok("system".into()),
        (Principal::Client(identity), Some(claimed)) if claimed != identity => Err(Answer::error(
            ep.clone(),
            403,
            20_403,
            format!(
                "a token of {identity} may only author messages as {identity}, not as {}",
                super::echo(claimed)
            ),
        )),
        (Principal::Client(identity), _) => Ok(identity.clone()),
    }
}

pub(crate) fn send_message(call: &Call<'_>) -> Answer {
    call.service.change(|m| {
        let (sid, principal, ep) = match member(call, m, |sid| Endpoint::SendMessage { sid }) {
            Ok((c, principal, ep)) => (c.sid.clone(), principal, ep),
            Err(a) => return (a, Vec::new()),
        };
        if let Err(a) = call.form_fields(&ep, &["Body", "Author", "Attributes"], false) {
            return (a, Vec::new());
        }
        let Some(body) = call.form.get("Body") else {
            return (
                Answer::error(ep, 400, 20_001, "missing form field `Body`"),
                Vec::new(),
            );
        };
        let attributes = match call.attributes(&ep) {
            Ok(a) => a.unwrap_or_else(|| json!({})),
            Err(a) => return (a, Vec::new()),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        let author = match author(call, &principal, &ep) {
            Ok(a) => a,
            Err(a) => return (a, Vec::new()),
        };
        let Some((index, events)) = m.add_message_with(&sid, &author, body, attributes) else {
            return (
                Answer::error(ep, 404, 20_404, "conversation vanished"),
                Vec::new(),
            );
        };
        let resource = m.conversation(&sid).and_then(|c| {
            c.messages
                .get(&(index, 0))
                .map(|msg| render::message(m, c, msg))
        });
        match resource {
            Some(r) => (Answer::ok(ep, r).with_status(201), events),
            None => (
                Answer::error(ep, 404, 20_404, "conversation vanished"),
                Vec::new(),
            ),
        }
    })
}
