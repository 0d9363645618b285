//! `/v1/Users/{identity}` and its subscribed-conversations list.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use serde_json::Value;

use super::paging::{self, Envelope};
use super::{Answer, Call};
use crate::backend::journal::Endpoint;
use crate::backend::resources;
use crate::backend::state::{BackendState, ObjectKey};

/// The identity the token is for, if the path names that same user (by identity or sid).
fn own_identity(call: &Call<'_>, st: &BackendState, ep: &Endpoint) -> Result<String, Answer> {
    let claims = call.authenticate(ep)?;
    let wanted = call.segments.get(2).map_or("", String::as_str);
    let is_self = wanted == claims.grants.identity
        || st
            .users
            .get(&claims.grants.identity)
            .is_some_and(|u| u.sid == wanted);
    if !is_self {
        return Err(Answer::error(
            ep.clone(),
            403,
            20_403,
            "a token may only act on its own user",
        ));
    }
    Ok(claims.grants.identity)
}

pub(super) fn get(call: &Call<'_>) -> Answer {
    let ep = Endpoint::GetUser;
    let mut st = call.shared.lock();
    let identity = match own_identity(call, &st, &ep) {
        Ok(i) => i,
        Err(a) => return a,
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    st.ensure_user(&identity);
    let Some(u) = st.users.get(&identity) else {
        return Answer::error(ep, 404, 20_404, "no such user");
    };
    let snap = u.current();
    Answer::ok(ep, resources::user(&st, u, snap)).with_revision(snap.revision)
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateUser;
    let mut st = call.shared.lock();
    let identity = match own_identity(call, &st, &ep) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let attrs = match call.attributes(&ep) {
        Ok(a) => a,
        Err(a) => return a,
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    st.ensure_user(&identity);
    let key = ObjectKey::User(identity.clone());
    let Some(attrs) = attrs.or_else(|| st.snapshot(&key).map(|s| s.attributes.clone())) else {
        return Answer::error(ep, 404, 20_404, "no such user");
    };
    super::write_attributes(&mut st, ep, &key, attrs)
}

pub(super) fn list_conversations(call: &Call<'_>) -> Answer {
    let probe = Endpoint::UserConversations {
        page: 0,
        last: false,
        items: Vec::new(),
    };
    let st = call.shared.lock();
    let identity = match own_identity(call, &st, &probe) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let (page_size, at) = match call.paging(&probe, 50) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let page_size = page_size.min(st.max_page_size);
    let page = at.page;
    drop(st);
    // Changes scheduled after the previous page happen now: the client has that page and asks
    // for this one, which it gets only after the changes (see `At`).
    if let Some(previous) = page.checked_sub(1) {
        call.shared.reached(crate::backend::At::AfterPage(previous));
    }
    call.shared.reached(crate::backend::At::BeforePage(page));
    let mut st = call.shared.lock();
    st.ensure_user(&identity);
    let empty = Default::default();
    let index = st
        .memberships
        .get(&identity)
        .map_or(&empty, |m| m.ordered(st.list_order));
    // Tokens are anchored on a conversation: resume after (or before) wherever it is now.
    let cursor = match (&at.anchor, at.cursor) {
        (Some(sid), paging::Cursor::After(_)) => {
            st.list_key(sid).map_or(at.cursor, paging::Cursor::After)
        }
        (Some(sid), paging::Cursor::Before(_)) => {
            st.list_key(sid).map_or(at.cursor, paging::Cursor::Before)
        }
        _ => at.cursor,
    };
    let read = paging::read(index, cursor, page_size as usize, false);
    let sids: Vec<String> = read.items.iter().map(|(_, sid)| (*sid).clone()).collect();
    let mut ep = Endpoint::UserConversations {
        page,
        last: read.next.is_none(),
        items: Vec::new(),
    };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    // Only a page actually served lists its items in the journal.
    if let Endpoint::UserConversations { items, .. } = &mut ep {
        items.clone_from(&sids);
    }
    let Some(user) = st.users.get(&identity) else {
        return Answer::error(ep, 404, 20_404, "no such user");
    };
    let items: Vec<Value> = sids
        .iter()
        .filter_map(|sid| st.conversations.get(sid).or_else(|| st.ghosts.get(sid)))
        .map(|c| resources::user_conversation(&st, user, c))
        .collect();
    let envelope = Envelope {
        key: "conversations",
        list_url: format!(
            "{}/v1/Users/{}/Conversations",
            st.base_url,
            super::encode_segment(&identity)
        ),
        keep: Vec::new(),
        page,
        page_size,
    };
    Answer::ok(
        ep,
        envelope.wrap(
            &read,
            items,
            call.query.get("PageToken").map(String::as_str),
            |pos| index.get(&pos).cloned(),
        ),
    )
}
