//! `/v1/Users/{identity}` and its subscribed-conversations list.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use super::paging::{self, Envelope};
use super::{Answer, Call};
use crate::backend::endpoint::Endpoint;
use crate::backend::model::{At, Model};
use crate::backend::render;
use crate::wire::ObjectKey;
use crate::wire::resources::ConversationsPage;

/// The identity the token is for, if the path names that same user (by identity or sid).
fn own_identity(call: &Call<'_>, m: &Model, ep: &Endpoint) -> Result<String, Answer> {
    let claims = call.authenticate(ep)?;
    let wanted = call.segments.get(2).map_or("", String::as_str);
    let is_self = wanted == claims.grants.identity
        || m.user(&claims.grants.identity)
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
    call.service.quietly(|m| {
        let identity = match own_identity(call, m, &ep) {
            Ok(i) => i,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        m.ensure_user(&identity);
        let Some(u) = m.user(&identity) else {
            return Answer::error(ep, 404, 20_404, "no such user");
        };
        let snap = u.history.current();
        Answer::ok(ep.clone(), render::user(m, u, snap)).with_snapshot(snap)
    })
}

pub(super) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateUser;
    call.service.change(|m| {
        let identity = match own_identity(call, m, &ep) {
            Ok(i) => i,
            Err(a) => return (a, Vec::new()),
        };
        let attrs = match call.attributes(&ep) {
            Ok(a) => a,
            Err(a) => return (a, Vec::new()),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        m.ensure_user(&identity);
        let key = ObjectKey::User(identity);
        let Some(attrs) = attrs.or_else(|| m.snapshot(&key).map(|s| s.attributes.clone())) else {
            return (Answer::error(ep, 404, 20_404, "no such user"), Vec::new());
        };
        super::write_attributes(m, ep, &key, attrs)
    })
}

pub(super) fn list_conversations(call: &Call<'_>) -> Answer {
    let wanted = call.segments.get(2).cloned().unwrap_or_default();
    let probe = Endpoint::UserConversations {
        user: wanted,
        page: 0,
        last: false,
        items: Vec::new(),
    };
    let checked = call.service.quietly(|m| {
        let identity = own_identity(call, m, &probe)?;
        let (page_size, at) = call.paging(&probe, 50)?;
        m.ensure_user(&identity);
        Ok((identity, page_size.min(m.lists.max_page_size), at))
    });
    let (identity, page_size, at) = match checked {
        Ok(c) => c,
        Err(a) => return a,
    };
    let page = at.page;
    // Changes scheduled after the previous page happen now: the client has that page and asks
    // for this one, which it gets only after the changes (see `At`).
    if let Some(previous) = page.checked_sub(1) {
        call.service.reach(Some(At::AfterPage(previous)));
    }
    call.service.reach(Some(At::BeforePage(page)));
    call.service
        .read(|m| serve_page(call, m, identity, page_size, at))
}

fn serve_page(
    call: &Call<'_>,
    m: &Model,
    identity: String,
    page_size: u32,
    at: paging::PageRef,
) -> Answer {
    let empty = Default::default();
    let index = m
        .lists
        .of(&identity)
        .map_or(&empty, |l| l.ordered(m.lists.order));
    // Tokens are anchored on a conversation: resume after (or before) wherever it is now.
    let cursor = match (&at.anchor, at.cursor) {
        (Some(sid), paging::Cursor::After(_)) => m
            .list_key(&sid.as_str().into())
            .map_or(at.cursor, paging::Cursor::After),
        (Some(sid), paging::Cursor::Before(_)) => m
            .list_key(&sid.as_str().into())
            .map_or(at.cursor, paging::Cursor::Before),
        _ => at.cursor,
    };
    let read = paging::read(index, cursor, page_size as usize, false);
    let list_url = format!(
        "{}/v1/Users/{}/Conversations",
        m.base_url,
        super::encode_segment(&identity)
    );
    let mut ep = Endpoint::UserConversations {
        user: identity.clone(),
        page: at.page,
        last: read.next.is_none(),
        items: Vec::new(),
    };
    if let Some(a) = Answer::gated(m, &ep) {
        return a;
    }
    let sids: Vec<_> = read.items.iter().map(|(_, sid)| (*sid).clone()).collect();
    // Only a page actually served lists its items in the journal.
    if let Endpoint::UserConversations { items, .. } = &mut ep {
        items.clone_from(&sids);
    }
    let Some(user) = m.user(&identity) else {
        return Answer::error(ep, 404, 20_404, "no such user");
    };
    let conversations = sids
        .iter()
        .filter_map(|sid| m.listed_conversation(sid))
        .map(|c| render::user_conversation(m, user, c))
        .collect();
    let envelope = Envelope {
        key: "conversations",
        list_url,
        keep: Vec::new(),
        page: at.page,
        page_size,
    };
    let meta = envelope.meta(
        &read,
        call.query.get("PageToken").map(String::as_str),
        |pos| index.get(&pos).map(|sid| sid.as_str().to_owned()),
    );
    Answer::ok(
        ep,
        ConversationsPage {
            conversations,
            meta,
        },
    )
}
