//! `/v1/Users/{Sid or identity}`, its subscribed-conversations list and each user-conversation
//! resource (the user's view of one conversation: read horizon, notification level).

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use super::paging::{self, Envelope};
use super::{Answer, Call, Principal};
use crate::backend::endpoint::Endpoint;
use crate::backend::model::{At, Model};
use crate::backend::render;
use crate::wire::ObjectKey;
use crate::wire::resources::ConversationsPage;

/// The user as the path names it (segment 2: a sid or an identity).
fn named<'c>(call: &'c Call<'_>) -> &'c str {
    call.segments.get(2).map_or("", String::as_str)
}

/// The identity of the user the path names, if the caller may act on it: a token only on its
/// own user (created on first use, as the v1 service does when a client connects), the account
/// on any existing user.
fn user_identity(call: &Call<'_>, m: &mut Model, ep: &Endpoint) -> Result<String, Answer> {
    let wanted = named(call);
    match call.principal(ep)? {
        Principal::Client(identity) => {
            let is_self = wanted == identity || m.user(&identity).is_some_and(|u| u.sid == wanted);
            if !is_self {
                return Err(Answer::error(
                    ep.clone(),
                    403,
                    20_403,
                    "a token may only act on its own user",
                ));
            }
            m.ensure_user(&identity);
            Ok(identity)
        }
        Principal::Account => m
            .user_by_sid_or_identity(wanted)
            .map(|u| u.identity.clone())
            .ok_or_else(|| {
                Answer::error(
                    ep.clone(),
                    404,
                    20_404,
                    format!("user {} not found", super::echo(wanted)),
                )
            }),
    }
}

pub(crate) fn get(call: &Call<'_>) -> Answer {
    let ep = Endpoint::GetUser;
    call.service.quietly(|m| {
        let identity = match user_identity(call, m, &ep) {
            Ok(i) => i,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        let Some(u) = m.user(&identity) else {
            return Answer::error(ep, 404, 20_404, "no such user");
        };
        let snap = u.history.current();
        Answer::ok(ep.clone(), render::user(m, u, snap)).with_snapshot(snap)
    })
}

pub(crate) fn update(call: &Call<'_>) -> Answer {
    let ep = Endpoint::UpdateUser;
    call.service.change(|m| {
        let identity = match user_identity(call, m, &ep) {
            Ok(i) => i,
            Err(a) => return (a, Vec::new()),
        };
        if let Err(a) = call.form_fields(&ep, &["Attributes", "FriendlyName"], true) {
            return (a, Vec::new());
        }
        let attrs = match call.attributes(&ep) {
            Ok(a) => a,
            Err(a) => return (a, Vec::new()),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        let friendly_name = call
            .form
            .get("FriendlyName")
            .map(|v| Some(v.clone()).filter(|v| !v.is_empty()));
        match m.update_user(&identity, attrs, friendly_name) {
            Some(events) => (super::written(m, ep, &ObjectKey::User(identity)), events),
            None => (Answer::error(ep, 404, 20_404, "no such user"), Vec::new()),
        }
    })
}

pub(crate) fn list_conversations(call: &Call<'_>) -> Answer {
    let wanted = named(call).to_owned();
    let probe = Endpoint::UserConversations {
        user: wanted.clone(),
        page: 0,
        last: false,
        items: Vec::new(),
    };
    let checked = call.service.quietly(|m| {
        let identity = user_identity(call, m, &probe)?;
        let (page_size, at) = call.paging(&probe, 50)?;
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
        .read(|m| serve_page(call, m, (&wanted, identity), page_size, at))
}

/// One page of `identity`'s list, its URLs on the path the request named the user by.
fn serve_page(
    call: &Call<'_>,
    m: &Model,
    (named, identity): (&str, String),
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
        super::encode_segment(named)
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

/// The conversation segment (4) of a user-conversation path: a sid or a unique name.
fn conversation_named(call: &Call<'_>) -> String {
    call.segments.get(4).cloned().unwrap_or_default()
}

/// Finds the user and the conversation of a user-conversation path; the user must take part.
/// Returns the identity and the conversation's sid (a removed conversation the list still
/// shows resolves too, so every listed item's `url` does).
fn user_conversation(
    call: &Call<'_>,
    m: &mut Model,
    endpoint: impl Fn(String, crate::wire::ConversationSid) -> Endpoint,
) -> Result<(String, crate::wire::ConversationSid, Endpoint), Answer> {
    let named_conv = conversation_named(call);
    let probe = endpoint(
        named(call).to_owned(),
        crate::wire::ConversationSid::new(named_conv.clone()),
    );
    let identity = user_identity(call, m, &probe)?;
    let found = super::conversations::resolve(m, &named_conv)
        .or_else(|| m.listed_conversation(&named_conv.as_str().into()))
        .filter(|c| c.has_participant(&identity))
        .map(|c| c.sid.clone());
    match found {
        Some(sid) => {
            let ep = endpoint(identity.clone(), sid.clone());
            Ok((identity, sid, ep))
        }
        None => Err(Answer::error(
            endpoint(
                identity,
                crate::wire::ConversationSid::new(named_conv.clone()),
            ),
            404,
            20_404,
            format!(
                "conversation {} not found among the user's conversations",
                super::echo(&named_conv)
            ),
        )),
    }
}

/// The user-conversation resource of `identity` in `sid`.
fn render_user_conversation(
    m: &Model,
    identity: &str,
    sid: &crate::wire::ConversationSid,
    ep: Endpoint,
) -> Answer {
    match (m.user(identity), m.listed_conversation(sid)) {
        (Some(u), Some(c)) => Answer::ok(ep, render::user_conversation(m, u, c)),
        _ => Answer::error(ep, 404, 20_404, "the user's conversation vanished"),
    }
}

/// `GET /v1/Users/{UserSid}/Conversations/{ConversationSid}`.
pub(crate) fn get_user_conversation(call: &Call<'_>) -> Answer {
    call.service.quietly(|m| {
        let (identity, sid, ep) = match user_conversation(call, m, |user, sid| {
            Endpoint::UserConversation { user, sid }
        }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        render_user_conversation(m, &identity, &sid, ep)
    })
}

/// The notification levels v1 knows.
const LEVELS: [&str; 2] = ["default", "muted"];

/// `POST /v1/Users/{UserSid}/Conversations/{ConversationSid}`: moves the read horizon
/// (`LastReadMessageIndex`, empty for none) or sets the `NotificationLevel`.
pub(crate) fn update_user_conversation(call: &Call<'_>) -> Answer {
    call.service.quietly(|m| {
        let (identity, sid, ep) = match user_conversation(call, m, |user, sid| {
            Endpoint::UpdateUserConversation { user, sid }
        }) {
            Ok(found) => found,
            Err(a) => return a,
        };
        if let Err(a) = call.form_fields(&ep, &["LastReadMessageIndex", "NotificationLevel"], true)
        {
            return a;
        }
        let bad = |message: String| Answer::error(ep.clone(), 400, 20_001, message);
        let horizon = match call.form.get("LastReadMessageIndex").map(String::as_str) {
            None => None,
            Some("") => Some(None),
            Some(v) => match v.parse::<u64>().ok().filter(|i| *i <= i64::MAX as u64) {
                Some(i) => Some(Some(i)),
                None => {
                    return bad(format!(
                        "invalid LastReadMessageIndex `{}`: expected a message index",
                        super::echo(v)
                    ));
                }
            },
        };
        let level = match call.form.get("NotificationLevel") {
            None => None,
            Some(l) if LEVELS.contains(&l.as_str()) => Some(l.clone()),
            Some(l) => {
                return bad(format!(
                    "invalid NotificationLevel `{}`: expected default or muted",
                    super::echo(l)
                ));
            }
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return a;
        }
        if m.set_read_state(&sid, &identity, horizon, level).is_none() {
            return Answer::error(ep, 404, 20_404, "the user's conversation vanished");
        }
        render_user_conversation(m, &identity, &sid, ep)
    })
}
