//! `/v1/Conversations/{sid}` with its participants and messages.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use std::collections::BTreeMap;

use serde_json::Value;

use super::paging::{self, Envelope, Position};
use super::{Answer, Call};
use crate::backend::journal::Endpoint;
use crate::backend::resources;
use crate::backend::state::{BackendState, ConversationRecord, ObjectKey, ParticipantRecord};

/// The addressed conversation's sid (path segment 2).
fn sid_of(call: &Call<'_>) -> String {
    call.segments.get(2).cloned().unwrap_or_default()
}

/// Authenticates and finds the addressed conversation, which the caller must take part in.
fn member<'s>(
    call: &Call<'_>,
    st: &'s BackendState,
    ep: &Endpoint,
) -> Result<(&'s ConversationRecord, String), Answer> {
    let claims = call.authenticate(ep)?;
    let sid = sid_of(call);
    match st.conversations.get(&sid) {
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
    let st = call.shared.lock();
    let c = match member(call, &st, &ep) {
        Ok((c, _)) => c,
        Err(a) => return a,
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    Answer::ok(ep, resources::conversation(&st, c, c.current())).with_revision(c.current().revision)
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateConversation { sid: sid_of(call) };
    let mut st = call.shared.lock();
    let (sid, current) = match member(call, &st, &ep) {
        Ok((c, _)) => (c.sid.clone(), c.current().attributes.clone()),
        Err(a) => return a,
    };
    let attrs = match call.attributes(&ep) {
        Ok(a) => a.unwrap_or(current),
        Err(a) => return a,
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    super::write_attributes(&mut st, ep, &ObjectKey::Conversation(sid), attrs)
}

/// Serves one page of a conversation's sub-list (`Participants`, `Messages`) in the v1 envelope.
struct SubList<'a, V> {
    key: &'static str,
    path: &'static str,
    items: &'a BTreeMap<Position, V>,
    descending: bool,
}

impl<V> SubList<'_, V> {
    fn answer(
        &self,
        call: &Call<'_>,
        st: &BackendState,
        c: &ConversationRecord,
        ep: Endpoint,
        render: impl Fn(&V) -> Value,
    ) -> Answer {
        let (page_size, at) = match call.paging(&ep, 100) {
            Ok(p) => p,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(st, &ep) {
            return a;
        }
        let read = paging::read(self.items, at.cursor, page_size as usize, self.descending);
        let items: Vec<Value> = read.items.iter().map(|(_, v)| render(v)).collect();
        let keep = if self.key == "messages" {
            vec![(
                "Order",
                if self.descending { "desc" } else { "asc" }.to_owned(),
            )]
        } else {
            Vec::new()
        };
        let envelope = Envelope {
            key: self.key,
            list_url: format!("{}/v1/Conversations/{}/{}", st.base_url, c.sid, self.path),
            keep,
            page: at.page,
            page_size,
        };
        Answer::ok(
            ep,
            envelope.wrap(
                &read,
                items,
                call.query.get("PageToken").map(String::as_str),
                |_| None,
            ),
        )
    }
}

pub(super) fn participants(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Participants { sid: sid_of(call) };
    let st = call.shared.lock();
    let c = match member(call, &st, &ep) {
        Ok((c, _)) => c,
        Err(a) => return a,
    };
    let by_join: BTreeMap<Position, &ParticipantRecord> = c
        .participants
        .iter()
        .enumerate()
        .map(|(i, p)| ((i as u64, 0), p))
        .collect();
    let list = SubList {
        key: "participants",
        path: "Participants",
        items: &by_join,
        descending: false,
    };
    list.answer(call, &st, c, ep, |p| resources::participant(&st, c, p))
}

pub(super) fn messages(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Messages { sid: sid_of(call) };
    let st = call.shared.lock();
    let c = match member(call, &st, &ep) {
        Ok((c, _)) => c,
        Err(a) => return a,
    };
    let descending = match call.query.get("Order").map(|o| o.to_ascii_lowercase()) {
        None => false,
        Some(o) if o == "asc" => false,
        Some(o) if o == "desc" => true,
        Some(o) => {
            return Answer::error(
                ep,
                400,
                20_001,
                format!("invalid Order `{o}`: expected asc or desc"),
            );
        }
    };
    let list = SubList {
        key: "messages",
        path: "Messages",
        items: &c.messages,
        descending,
    };
    list.answer(call, &st, c, ep, |m| resources::message(&st, c, m))
}

pub(super) fn send_message(call: &Call<'_>) -> Answer {
    let ep = Endpoint::SendMessage { sid: sid_of(call) };
    let mut st = call.shared.lock();
    let (sid, identity) = match member(call, &st, &ep) {
        Ok((c, identity)) => (c.sid.clone(), identity),
        Err(a) => return a,
    };
    let Some(body) = call.form.get("Body") else {
        return Answer::error(ep, 400, 20_001, "missing form field `Body`");
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let author = call.form.get("Author").cloned().unwrap_or(identity);
    let Some((_, events)) = st.add_message(&sid, &author, body) else {
        return Answer::error(ep, 404, 20_404, "conversation vanished");
    };
    let Some(resource) = st.conversations.get(&sid).and_then(|c| {
        c.messages
            .values()
            .next_back()
            .map(|m| resources::message(&st, c, m))
    }) else {
        return Answer::error(ep, 404, 20_404, "conversation vanished");
    };
    st.emit(events);
    Answer::ok(ep, resource).with_status(201)
}
