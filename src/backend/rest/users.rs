//! `/v1/Users/{identity}` and its subscribed-conversations list.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use serde_json::Value;

use super::{Answer, Call, PageMeta};
use crate::backend::journal::Endpoint;
use crate::backend::resources;
use crate::backend::state::ObjectKey;

fn own_identity(call: &Call<'_>, ep: &Endpoint) -> Result<String, Answer> {
    let claims = call.authenticate(ep)?;
    let wanted = call.segments.get(2).cloned().unwrap_or_default();
    let st = call.shared.lock();
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
    let identity = match own_identity(call, &ep) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let mut st = call.shared.lock();
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    st.ensure_user(&identity);
    let u = &st.users[&identity];
    let snap = u.current();
    Answer::ok(ep, resources::user(&st, u, snap)).with_revision(snap.revision)
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateUser;
    let identity = match own_identity(call, &ep) {
        Ok(i) => i,
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
    st.ensure_user(&identity);
    let key = ObjectKey::User(identity.clone());
    let attrs = attrs.unwrap_or_else(|| st.users[&identity].current().attributes.clone());
    let Some((revision, events)) = st.set_attributes(&key, attrs) else {
        return Answer::error(ep, 404, 20_404, "no such user");
    };
    let u = &st.users[&identity];
    let body = resources::user(&st, u, u.current());
    st.emit(events);
    Answer::ok(ep, body).with_revision(revision)
}

pub(super) fn list_conversations(call: &Call<'_>) -> Answer {
    let probe = Endpoint::UserConversations {
        page: 0,
        last: false,
    };
    let identity = match own_identity(call, &probe) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let page_size = match call.query_num("PageSize", 50, 1..=50, &probe) {
        Ok(n) => n,
        Err(a) => return a,
    };
    let page = match call.query_num("Page", 0, 0..=u32::MAX, &probe) {
        Ok(n) => n,
        Err(a) => return a,
    };
    // PageToken `PT<n>` resumes after creation index n; without it, skip whole pages.
    let after = match call.query.get("PageToken") {
        None => None,
        Some(t) => match t.strip_prefix("PT").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => return Answer::error(probe, 400, 20_001, format!("invalid PageToken `{t}`")),
        },
    };
    let mut st = call.shared.lock();
    st.ensure_user(&identity);
    let range = match after {
        Some(n) => (std::ops::Bound::Excluded(n), std::ops::Bound::Unbounded),
        None => (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    };
    let skip = if after.is_some() {
        0
    } else {
        page as usize * page_size as usize
    };
    let mut picked: Vec<(u64, &str)> = st
        .by_creation
        .range(range)
        .filter(|(_, sid)| st.conversations[sid.as_str()].has_participant(&identity))
        .skip(skip)
        .take(page_size as usize + 1)
        .map(|(i, s)| (*i, s.as_str()))
        .collect();
    let more = picked.len() > page_size as usize;
    picked.truncate(page_size as usize);
    let ep = Endpoint::UserConversations { page, last: !more };
    if let Some(a) = Answer::gated(&st, &ep) {
        return a;
    }
    let user = &st.users[&identity];
    let items: Vec<Value> = picked
        .iter()
        .map(|(_, sid)| resources::user_conversation(&st, user, &st.conversations[*sid]))
        .collect();
    let meta = PageMeta {
        key: "conversations",
        path: format!("/v1/Users/{identity}/Conversations"),
        page,
        page_size,
        next_token: more.then(|| format!("PT{}", picked.last().map_or(0, |p| p.0))),
        previous_token: (page > 0).then(|| format!("PT{}", picked.first().map_or(0, |p| p.0))),
    };
    Answer::ok(ep, meta.envelope(&st.base_url, items))
}
