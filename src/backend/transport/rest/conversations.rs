//! `/v1/Conversations/{sid}` with its participants and messages.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use std::collections::BTreeMap;

use super::paging::{self, Envelope, Position};
use super::{Answer, Call};
use crate::backend::endpoint::Endpoint;
use crate::backend::model::{ConversationRecord, Model, ParticipantRecord};
use crate::backend::render;
use crate::wire::resources::{MessagesPage, Meta, ParticipantsPage};
use crate::wire::{ConversationSid, ObjectKey};

/// The addressed conversation's sid (path segment 2).
fn sid_of(call: &Call<'_>) -> ConversationSid {
    ConversationSid::new(call.segments.get(2).cloned().unwrap_or_default())
}

/// Authenticates and finds the addressed conversation, which the caller must take part in.
fn member<'m>(
    call: &Call<'_>,
    m: &'m Model,
    ep: &Endpoint,
) -> Result<(&'m ConversationRecord, String), Answer> {
    let claims = call.authenticate(ep)?;
    let sid = sid_of(call);
    match m.conversation(&sid) {
        None => Err(Answer::error(
            ep.clone(),
            404,
            20_404,
            format!("conversation {sid} not found"),
        )),
        Some(c) if !c.has_participant(&claims.grants.identity) => Err(Answer::error(
            ep.clone(),
            403,
            50_430,
            format!("{} is not a participant of {sid}", claims.grants.identity),
        )),
        Some(c) => Ok((c, claims.grants.identity)),
    }
}

pub(super) fn get(call: &Call<'_>) -> Answer {
    let ep = Endpoint::GetConversation { sid: sid_of(call) };
    call.service.read(|m| {
        let c = match member(call, m, &ep) {
            Ok((c, _)) => c,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        let snap = c.history.current();
        Answer::ok(ep.clone(), render::conversation(m, c, snap)).with_snapshot(snap)
    })
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateConversation { sid: sid_of(call) };
    call.service.change(|m| {
        let (sid, current) = match member(call, m, &ep) {
            Ok((c, _)) => (c.sid.clone(), c.history.current().attributes.clone()),
            Err(a) => return (a, Vec::new()),
        };
        let attrs = match call.attributes(&ep) {
            Ok(a) => a.unwrap_or(current),
            Err(a) => return (a, Vec::new()),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        super::write_attributes(m, ep, &ObjectKey::Conversation(sid), attrs)
    })
}

/// One page of a conversation's sub-list (`Participants`, `Messages`): its items and meta.
fn sub_page<'i, V>(
    call: &Call<'_>,
    m: &Model,
    c: &ConversationRecord,
    ep: &Endpoint,
    (key, path): (&'static str, &'static str),
    items: &'i BTreeMap<Position, V>,
    descending: bool,
) -> Result<(Vec<&'i V>, Meta), Answer> {
    let (page_size, at) = call.paging(ep, 100)?;
    if let Some(a) = Answer::gated(m, ep) {
        return Err(a);
    }
    let read = paging::read(items, at.cursor, page_size as usize, descending);
    let keep = if key == "messages" {
        vec![("Order", if descending { "desc" } else { "asc" }.to_owned())]
    } else {
        Vec::new()
    };
    let envelope = Envelope {
        key,
        list_url: format!("{}/v1/Conversations/{}/{path}", m.base_url, c.sid),
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

pub(super) fn participants(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Participants { sid: sid_of(call) };
    call.service.read(|m| {
        let c = match member(call, m, &ep) {
            Ok((c, _)) => c,
            Err(a) => return a,
        };
        let by_join: BTreeMap<Position, &ParticipantRecord> = c
            .participants
            .iter()
            .enumerate()
            .map(|(i, p)| ((i as u64, 0), p))
            .collect();
        match sub_page(
            call,
            m,
            c,
            &ep,
            ("participants", "Participants"),
            &by_join,
            false,
        ) {
            Ok((items, meta)) => Answer::ok(
                ep.clone(),
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

pub(super) fn messages(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Messages { sid: sid_of(call) };
    call.service.read(|m| {
        let c = match member(call, m, &ep) {
            Ok((c, _)) => c,
            Err(a) => return a,
        };
        let descending = match call.query.get("Order").map(|o| o.to_ascii_lowercase()) {
            None => false,
            Some(o) if o == "asc" => false,
            Some(o) if o == "desc" => true,
            Some(o) => {
                return Answer::error(
                    ep.clone(),
                    400,
                    20_001,
                    format!("invalid Order `{o}`: expected asc or desc"),
                );
            }
        };
        match sub_page(
            call,
            m,
            c,
            &ep,
            ("messages", "Messages"),
            &c.messages,
            descending,
        ) {
            Ok((items, meta)) => Answer::ok(
                ep.clone(),
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

pub(super) fn send_message(call: &Call<'_>) -> Answer {
    let ep = Endpoint::SendMessage { sid: sid_of(call) };
    call.service.change(|m| {
        let (sid, identity) = match member(call, m, &ep) {
            Ok((c, identity)) => (c.sid.clone(), identity),
            Err(a) => return (a, Vec::new()),
        };
        let Some(body) = call.form.get("Body") else {
            return (
                Answer::error(ep, 400, 20_001, "missing form field `Body`"),
                Vec::new(),
            );
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        // A client token speaks for its own identity only.
        let author = match call.form.get("Author") {
            Some(claimed) if *claimed != identity => {
                return (
                    Answer::error(
                        ep,
                        403,
                        20_403,
                        format!(
                            "a token of {identity} may only author messages as {identity}, not as {}",
                            super::echo(claimed)
                        ),
                    ),
                    Vec::new(),
                );
            }
            _ => identity,
        };
        let Some((index, events)) = m.add_message(&sid, &author, body) else {
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
