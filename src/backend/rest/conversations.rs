//! `/v1/Conversations/{sid}` with its participants and messages.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use serde_json::Value;

use super::{Answer, Call, PageMeta};
use crate::backend::journal::Endpoint;
use crate::backend::resources;
use crate::backend::state::ObjectKey;

/// Authenticates and checks that the caller takes part in the addressed conversation.
fn member(call: &Call<'_>, ep: &Endpoint) -> Result<(String, String), Answer> {
    let claims = call.authenticate(ep)?;
    let sid = call.segments.get(2).cloned().unwrap_or_default();
    let st = call.shared.lock();
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
        Some(_) => Ok((sid, claims.grants.identity)),
    }
}

fn sid_of(call: &Call<'_>) -> String {
    call.segments.get(2).cloned().unwrap_or_default()
}

pub(super) fn get(call: &Call<'_>) -> Answer {
    let ep = Endpoint::GetConversation { sid: sid_of(call) };
    let (sid, _) = match member(call, &ep) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let c = &st.conversations[&sid];
    Answer::ok(ep, resources::conversation(&st, c, c.current())).with_revision(c.current().revision)
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateConversation { sid: sid_of(call) };
    let (sid, _) = match member(call, &ep) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let attrs = match call.attributes(&ep) {
        Ok(a) => a,
        Err(a) => return a,
    };
    let mut st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let attrs = attrs.unwrap_or_else(|| st.conversations[&sid].current().attributes.clone());
    let Some((revision, events)) = st.set_attributes(&ObjectKey::Conversation(sid.clone()), attrs)
    else {
        return Answer::error(ep, 404, 20_404, "conversation vanished");
    };
    let c = &st.conversations[&sid];
    let body = resources::conversation(&st, c, c.current());
    st.emit(events);
    Answer::ok(ep, body).with_revision(revision)
}

pub(super) fn participants(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Participants { sid: sid_of(call) };
    let (sid, _) = match member(call, &ep) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let page_size = match call.query_num("PageSize", 50, 1..=1000, &ep) {
        Ok(n) => n,
        Err(a) => return a,
    };
    let st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let c = &st.conversations[&sid];
    let items: Vec<Value> = c
        .participants
        .iter()
        .take(page_size as usize)
        .map(|p| resources::participant(&st, c, p))
        .collect();
    let meta = PageMeta {
        key: "participants",
        path: format!("/v1/Conversations/{sid}/Participants"),
        page: 0,
        page_size,
        next_token: None,
        previous_token: None,
    };
    Answer::ok(ep, meta.envelope(&st.base_url, items))
}

pub(super) fn messages(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Messages { sid: sid_of(call) };
    let (sid, _) = match member(call, &ep) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let page_size = match call.query_num("PageSize", 50, 1..=1000, &ep) {
        Ok(n) => n,
        Err(a) => return a,
    };
    let st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let c = &st.conversations[&sid];
    let desc = call.query.get("Order").is_some_and(|o| o == "desc");
    let mut items: Vec<Value> = c
        .messages
        .iter()
        .map(|m| resources::message(&st, c, m))
        .collect();
    if desc {
        items.reverse();
    }
    items.truncate(page_size as usize);
    let meta = PageMeta {
        key: "messages",
        path: format!("/v1/Conversations/{sid}/Messages"),
        page: 0,
        page_size,
        next_token: None,
        previous_token: None,
    };
    Answer::ok(ep, meta.envelope(&st.base_url, items))
}

pub(super) fn send_message(call: &Call<'_>) -> Answer {
    let ep = Endpoint::SendMessage { sid: sid_of(call) };
    let (sid, identity) = match member(call, &ep) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let Some(body) = call.form.get("Body") else {
        return Answer::error(ep, 400, 20_001, "missing form field `Body`");
    };
    let author = call.form.get("Author").cloned().unwrap_or(identity);
    let mut st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let Some((index, events)) = st.add_message(&sid, &author, body) else {
        return Answer::error(ep, 404, 20_404, "conversation vanished");
    };
    let c = &st.conversations[&sid];
    let resource = resources::message(&st, c, &c.messages[c.messages.len() - 1]);
    debug_assert_eq!(resource["index"], index);
    st.emit(events);
    Answer::ok(ep, resource).with_status(201)
}
