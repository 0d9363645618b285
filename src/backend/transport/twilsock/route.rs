//! Upstream requests on the twilsock face: each `message` frame's HTTP request is translated
//! into the v1 endpoint it amounts to, answered by that endpoint's handler (so gates, list
//! changes at exact points, token checks and the journal's typed [`Endpoint`] are the v1
//! face's), and its answer re-shaped as the client API ("CPS") or Sync answers it.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself, built once per request"
)]

use serde_json::{Value, json};

use super::sync::{self, Object};
use super::{Frame, Session};
use crate::backend::endpoint::Endpoint;
use crate::backend::fact::{Fact, RequestFact};
use crate::backend::model::{At, BindingChange};
use crate::backend::transport::rest::{Answer, Call, bindings, conversations, users};
use crate::secrets::TokenFingerprint;
use crate::wire::ConversationSid;
use crate::wire::resources::{Conversation, ConversationCounts, Message, User, UserConversation};

/// Where the SDK is told the client API lives (only paths are routed).
pub(crate) const CPS_HOST: &str = "http://aim.convo-tck.invalid";

/// What answering a request asks the session to do.
pub(crate) enum Out {
    /// Write this frame.
    Frame(Frame),
    /// Subscribe to these objects (name, type, last event id), replay, confirm.
    Establish {
        correlation: Value,
        objects: Vec<(String, String, u64)>,
    },
    /// Cancel these subscriptions and confirm.
    Cancel {
        correlation: Value,
        objects: Vec<(String, String, u64)>,
    },
}

/// A request as it travels in a `message` frame.
struct Request {
    method: String,
    path: String,
    segments: Vec<String>,
    params: Vec<(String, String)>,
    body: Value,
}

impl Request {
    fn parse(frame: &Frame) -> Self {
        let r = frame
            .header
            .get("http_request")
            .cloned()
            .unwrap_or(Value::Null);
        let method = r["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let raw_path = r["path"].as_str().unwrap_or_default();
        let (path, inline) = raw_path.split_once('?').unwrap_or((raw_path, ""));
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let mut params: Vec<(String, String)> = url::form_urlencoded::parse(inline.as_bytes())
            .into_owned()
            .collect();
        if let Some(p) = r["params"].as_object() {
            for (k, v) in p {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                params.push((k.clone(), v));
            }
        }
        let body = match &frame.payload {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            other => other.clone(),
        };
        Self {
            method,
            path: path.to_owned(),
            segments,
            params,
            body,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sync paging: whether `Order` is `desc`, and `PageSize` (1..=100, default 50).
    fn paging(&self) -> (bool, usize) {
        let desc = self
            .param("Order")
            .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
        let size = self
            .param("PageSize")
            .and_then(|p| p.parse().ok())
            .unwrap_or(50)
            .clamp(1, 100);
        (desc, size)
    }

    fn query(&self) -> Option<String> {
        (!self.params.is_empty()).then(|| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.params)
                .finish()
        })
    }
}

/// A v1 call with this session's token.
fn call<'a>(
    s: &'a Session,
    method: &'a str,
    segments: &[&str],
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
) -> Call<'a> {
    Call {
        service: &s.service,
        method,
        segments: segments.iter().map(|p| (*p).to_owned()).collect(),
        query: query.iter().cloned().collect(),
        form: form.iter().cloned().collect(),
        query_pairs: query,
        form_pairs: form,
        token: Some(s.token.clone()),
        authorization: None,
        content_type: None,
    }
}

/// Answers one `message` frame: journals the request as the endpoint it amounts to.
pub(crate) fn upstream(s: &mut Session, frame: &Frame) -> Vec<Out> {
    let id = frame.str("id").unwrap_or_default().to_owned();
    let req = Request::parse(frame);
    let query = req.query();
    let decoded = query.as_deref().map(|q| {
        percent_encoding::percent_decode_str(q)
            .decode_utf8_lossy()
            .into_owned()
    });
    let url_token = decoded
        .as_deref()
        .and_then(crate::secrets::find_token)
        .map(TokenFingerprint::of);
    let mut extra = Vec::new();
    let (answer, body) = if url_token.is_some() {
        let a = Answer::error(
            Endpoint::Unknown,
            400,
            20_001,
            "an access token in the URL: tokens travel in the twilsock init and update frames only",
        );
        let body = a.body.clone();
        (a, body)
    } else {
        route(s, &req, &mut extra)
    };
    let (revision, attributes) = answer.snapshot.clone().unzip();
    s.service.recorder.record(
        s.instance.clone(),
        Fact::Request(RequestFact {
            method: req.method.clone(),
            path: crate::backend::fact::quoted(&req.path),
            query: query.map(|q| crate::backend::fact::quoted(&q)),
            endpoint: answer.endpoint.clone(),
            status: answer.status,
            revision,
            attributes,
            token: url_token
                .clone()
                .or_else(|| Some(TokenFingerprint::of(&s.token))),
            error: answer.error.clone(),
            issued: None,
            token_in_url: url_token.is_some(),
        }),
    );
    if let (Endpoint::UserConversations { last: true, .. }, 200) = (&answer.endpoint, answer.status)
    {
        s.service.quietly(|m| m.lists.forget_ghosts());
    }
    let mut headers = json!({});
    if let Some(secs) = answer.retry_after {
        headers["Retry-After"] = json!(secs.to_string());
    }
    let reply = Frame::new("reply")
        .with("id", id)
        .with("status", json!({"code": 200, "status": "OK"}))
        .with(
            "http_status",
            json!({"code": answer.status, "status": reason(answer.status)}),
        )
        .with("http_headers", headers)
        .payload(body);
    let mut out = vec![Out::Frame(reply)];
    out.extend(extra);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200..=299 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Routes a request; returns the v1-style answer (for the journal) and the body to send.
fn route(s: &mut Session, req: &Request, extra: &mut Vec<Out>) -> (Answer, Value) {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["Client", "v2", "Configuration"]) => configuration(s),
        ("GET", ["Client", "v2", "Users", id, "Conversations"]) => my_conversations(s, req, id),
        ("GET", ["Client", "v2", "Users", id, "Conversations", sid]) => {
            let a = users::get_user_conversation(&call(
                s,
                "GET",
                &["v1", "Users", id, "Conversations", sid],
                vec![],
                vec![],
            ));
            cps(a, user_conversation)
        }
        ("POST", ["Client", "v2", "Users", id, "Conversations", sid]) => {
            let mut form = Vec::new();
            if let Some(i) = req.body.get("last_read_message_index") {
                form.push((
                    "LastReadMessageIndex".into(),
                    i.as_u64().map(|i| i.to_string()).unwrap_or_default(),
                ));
            }
            if let Some(l) = req.body["notification_level"].as_str() {
                form.push(("NotificationLevel".into(), l.to_owned()));
            }
            let a = users::update_user_conversation(&call(
                s,
                "POST",
                &["v1", "Users", id, "Conversations", sid],
                vec![],
                form,
            ));
            cps(a, user_conversation)
        }
        ("POST", ["Client", "v2", "Users", id]) => {
            let mut form = Vec::new();
            if let Some(a) = sync::attributes_field(&req.body["attributes"]) {
                form.push(("Attributes".into(), a));
            }
            if let Some(n) = req.body["friendly_name"].as_str() {
                form.push(("FriendlyName".into(), n.to_owned()));
            }
            let a = users::update(&call(s, "POST", &["v1", "Users", id], vec![], form));
            cps(a, |v| v)
        }
        ("GET", ["Client", "v2", "Conversations", sid]) => {
            let a = conversations::counts(&call(
                s,
                "GET",
                &["v1", "Conversations", sid, "Counts"],
                vec![],
                vec![],
            ));
            cps(a, |v| {
                match serde_json::from_value::<ConversationCounts>(v.clone()) {
                    Ok(c) => {
                        json!({"sid": c.conversation_sid, "conversation_sid": c.conversation_sid,
                                "messages_count": c.messages_count, "participants_count": c.participants_count})
                    }
                    Err(_) => v,
                }
            })
        }
        ("POST", ["Client", "v2", "Conversations", sid]) => {
            let mut form = Vec::new();
            if let Some(a) = sync::attributes_field(&req.body["attributes"]) {
                form.push(("Attributes".into(), a));
            }
            for (cps, v1) in [
                ("friendly_name", "FriendlyName"),
                ("unique_name", "UniqueName"),
            ] {
                if let Some(n) = req.body[cps].as_str() {
                    form.push((v1.into(), n.to_owned()));
                }
            }
            let a = conversations::update(&call(
                s,
                "POST",
                &["v1", "Conversations", sid],
                vec![],
                form,
            ));
            cps(a, |v| v)
        }
        ("POST", ["Client", "v2", "Conversations", sid, "Messages"]) => {
            let mut form = vec![(
                "Body".into(),
                req.body["body"].as_str().unwrap_or_default().to_owned(),
            )];
            if let Some(a) = sync::attributes_field(&req.body["attributes"]) {
                form.push(("Attributes".into(), a));
            }
            let a = conversations::send_message(&call(
                s,
                "POST",
                &["v1", "Conversations", sid, "Messages"],
                vec![],
                form,
            ));
            cps(a, |v| match serde_json::from_value::<Message>(v.clone()) {
                Ok(m) => {
                    json!({"sid": m.sid, "index": m.index, "conversation_sid": m.conversation_sid})
                }
                Err(_) => v,
            })
        }
        ("GET", ["v3", kind @ ("Maps" | "Lists" | "Documents"), name]) => {
            sync_object(s, req, kind, name)
        }
        ("GET", ["v3", "Maps", name, "Items"]) => map_items(s, req, name),
        ("GET", ["v3", "Lists", name, "Items"]) => list_items(s, req, name),
        ("POST", ["v4", "Subscriptions"]) => subscriptions(s, req, extra),
        ("POST", ["v1", "registrations"]) => register(s, req),
        ("DELETE", ["v1", "registrations", id]) => {
            let address = s.service.read(|m| {
                m.binding_by_sid(id)
                    .filter(|b| b.identity == s.identity)
                    .map(|b| b.address.clone())
            });
            unregister(s, address.as_deref().unwrap_or(id))
        }
        ("DELETE", ["v1", "registrations"]) => {
            let address = req.body["address"].as_str().unwrap_or_default().to_owned();
            unregister_device(s, &address)
        }
        _ => {
            let a = Answer::error(
                Endpoint::Unknown,
                404,
                20_404,
                "the requested resource was not found",
            );
            let body = a.body.clone();
            (a, body)
        }
    }
}

/// The answer with its body re-shaped by `shape` when it succeeded.
fn cps(a: Answer, shape: impl FnOnce(Value) -> Value) -> (Answer, Value) {
    let body = if (200..300).contains(&a.status) {
        shape(a.body.clone())
    } else {
        a.body.clone()
    };
    (a, body)
}

fn user_conversation(v: Value) -> Value {
    match serde_json::from_value::<UserConversation>(v.clone()) {
        Ok(u) => sync::cps_user_conversation(&u),
        Err(_) => v,
    }
}

fn configuration(s: &Session) -> (Answer, Value) {
    let ep = Endpoint::Configuration;
    if let Err(e) = s.service.tokens.validate(&s.token) {
        let a = Answer::error(ep, 401, e.code(), e.to_string());
        let body = a.body.clone();
        return (a, body);
    }
    if let Some(a) = s.service.read(|m| Answer::gated(m, &ep)) {
        let body = a.body.clone();
        return (a, body);
    }
    let id = &s.identity;
    let base = format!("{CPS_HOST}/Client/v2");
    let body = json!({
        "identity": id,
        "links": {
            "my_conversations": format!("{base}/Users/{id}/Conversations"),
            "conversations": format!("{base}/Conversations"),
            "users": format!("{base}/Users"),
            "current_user": format!("{base}/Users/{id}"),
            "typing": format!("{base}/Indicators/Typing"),
            "media_service": format!("{CPS_HOST}/v1/Services/MS/Media"),
            "media_set_service": format!("{CPS_HOST}/v1/Services/MS/MediaSet"),
            "messages_receipts": format!("{base}/Conversations/%s/Messages/%s/Receipts"),
        },
        "options": {
            "reachability_enabled": false, "http_cache_interval": "PT5S",
            "consumption_report_interval": "PT5S", "user_infos_to_subscribe": 100,
            "media_attachments_count_limit": 10, "media_attachment_size_limit_in_mb": 16,
            "media_attachments_total_size_limit_in_mb": 64,
            "email_histories_allowed_mime_types": [], "email_bodies_allowed_mime_types": [],
        },
        "sync_objects": {"my_user_info": sync::user_map(id), "my_conversations": sync::my_conversations(id)},
    });
    (Answer::ok(ep, body.clone()), body)
}

/// The client API's pages of the user's conversations: the v1 list, its `PageToken` carried
/// through as `next_token`.
fn my_conversations(s: &Session, req: &Request, id: &str) -> (Answer, Value) {
    let query: Vec<(String, String)> = req
        .param("PageToken")
        .map(|t| vec![("PageToken".to_owned(), t.to_owned())])
        .unwrap_or_default();
    let a = users::list_conversations(&call(
        s,
        "GET",
        &["v1", "Users", id, "Conversations"],
        query,
        vec![],
    ));
    cps(a, |v| {
        let conversations: Vec<Value> = v["conversations"]
            .as_array()
            .map(|c| c.iter().cloned().map(user_conversation).collect())
            .unwrap_or_default();
        let next = v["meta"]["next_page_url"].as_str().and_then(|u| {
            url::Url::parse(u).ok().and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "PageToken")
                    .map(|(_, t)| t.into_owned())
            })
        });
        json!({"conversations": conversations, "meta": {"next_token": next}})
    })
}

/// Checks the session's token; the error answer for `ep` otherwise.
fn authorized(s: &Session, ep: &Endpoint) -> Result<(), Answer> {
    s.service
        .tokens
        .validate(&s.token)
        .map(|_| ())
        .map_err(|e| Answer::error(ep.clone(), 401, e.code(), e.to_string()))
}

fn failed(a: Answer) -> (Answer, Value) {
    let body = a.body.clone();
    (a, body)
}

fn not_found(ep: Endpoint, name: &str) -> (Answer, Value) {
    failed(Answer::error(
        ep,
        404,
        54_100,
        format!(
            "Sync object {} not found",
            crate::backend::transport::rest::echo(name)
        ),
    ))
}

/// `GET /v3/{Maps,Lists,Documents}/{name}`: a descriptor (the user info map with its items on
/// `Include=items`; a conversation's document with its data).
fn sync_object(s: &Session, req: &Request, kind: &str, name: &str) -> (Answer, Value) {
    let last = s.service.read(|m| m.events.last_seq());
    match (kind, Object::parse(name)) {
        ("Maps", Some(Object::UserInfo(id))) => {
            let a = users::get(&call(s, "GET", &["v1", "Users", &id], vec![], vec![]));
            let with_items = req.param("Include") == Some("items");
            cps(a, |v| {
                let mut d = sync::descriptor("Maps", name, 0, last);
                if let (true, Ok(u)) = (with_items, serde_json::from_value::<User>(v)) {
                    d["items"] = json!(sync::user_items(&u, last));
                }
                d
            })
        }
        ("Documents", Some(Object::Document(sid))) => {
            let a = conversations::get(&call(
                s,
                "GET",
                &["v1", "Conversations", sid.as_str()],
                vec![],
                vec![],
            ));
            let revision = a.snapshot.as_ref().map_or(0, |(r, _)| *r);
            cps(a, |v| {
                match serde_json::from_value::<Conversation>(v.clone()) {
                    Ok(c) => {
                        let mut d = sync::descriptor("Documents", name, revision, last);
                        d["data"] = s.service.read(|m| sync::document_data(&c, m));
                        d
                    }
                    Err(_) => v,
                }
            })
        }
        ("Maps", Some(Object::MyConversations(id))) if id == s.identity => {
            let ep = Endpoint::SyncObject {
                object: name.to_owned(),
            };
            match authorized(s, &ep) {
                Ok(()) => {
                    let d = sync::descriptor("Maps", name, 0, last);
                    (Answer::ok(ep, d.clone()), d)
                }
                Err(a) => failed(a),
            }
        }
        ("Maps", Some(Object::Roster(sid))) | ("Lists", Some(Object::Messages(sid))) => {
            let ep = Endpoint::SyncObject {
                object: name.to_owned(),
            };
            if let Err(a) = authorized(s, &ep) {
                return failed(a);
            }
            let member = s.service.read(|m| {
                m.conversation(&sid)
                    .is_some_and(|c| c.has_participant(&s.identity))
            });
            if !member {
                return not_found(ep, name);
            }
            let d = sync::descriptor(kind, name, 0, last);
            (Answer::ok(ep, d.clone()), d)
        }
        _ => not_found(
            Endpoint::SyncObject {
                object: name.to_owned(),
            },
            name,
        ),
    }
}

/// `GET /v3/Maps/{name}/Items`: the user's conversations (a page walk of the subscribed list,
/// `From` an inclusive key), a roster, or the user info map's items.
fn map_items(s: &mut Session, req: &Request, name: &str) -> (Answer, Value) {
    let last = s.service.read(|m| m.events.last_seq());
    match Object::parse(name) {
        Some(Object::MyConversations(id)) if id == s.identity => conversation_items(s, req, name),
        Some(Object::Roster(sid)) => {
            let a = conversations::participants(&call(
                s,
                "GET",
                &["v1", "Conversations", sid.as_str(), "Participants"],
                vec![],
                vec![],
            ));
            cps(a, |v| {
                let items: Vec<Value> = v["participants"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                let key = p["sid"].as_str().unwrap_or_default();
                                let data = json!({"identity": p["identity"], "type": "chat",
                                    "attributes": p["attributes"],
                                    "lastConsumedMessageIndex": p["last_read_message_index"],
                                    "dateCreated": p["date_created"], "dateUpdated": p["date_updated"]});
                                sync::map_item(name, key, data, last)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"items": items, "meta": {"previous_token": null, "next_token": null}})
            })
        }
        Some(Object::UserInfo(id)) => {
            let a = users::get(&call(s, "GET", &["v1", "Users", &id], vec![], vec![]));
            cps(a, |v| match serde_json::from_value::<User>(v.clone()) {
                Ok(u) => {
                    json!({"items": sync::user_items(&u, last), "meta": {"previous_token": null, "next_token": null}})
                }
                Err(_) => v,
            })
        }
        _ => not_found(
            Endpoint::SyncObject {
                object: name.to_owned(),
            },
            name,
        ),
    }
}

/// A page of the user's conversations map. A Sync map is paged in key order (`Order` asc or
/// desc, `From` an inclusive key, the SDK asking one more and dropping the anchor), whatever
/// order the v1 list is served in; the page walk is the v1 list's (list changes scheduled at
/// page points happen here too, and a listed-but-removed conversation stays until a final page).
fn conversation_items(s: &mut Session, req: &Request, name: &str) -> (Answer, Value) {
    let from = req.param("From").map(str::to_owned);
    let (desc, size) = req.paging();
    let page = match &from {
        None => 0,
        Some(k) => s.pages.get(k).copied().unwrap_or(1),
    };
    let probe = Endpoint::UserConversations {
        user: s.identity.clone(),
        page,
        last: false,
        items: Vec::new(),
    };
    if let Err(a) = authorized(s, &probe) {
        return failed(a);
    }
    if let Some(previous) = page.checked_sub(1) {
        s.service.reach(Some(At::AfterPage(previous)));
    }
    s.service.reach(Some(At::BeforePage(page)));
    let identity = s.identity.clone();
    let served = s.service.read(|m| {
        // Read with the items, after the page point's changes were published: no event about
        // what this page serves can fall between the two.
        let last = m.events.last_seq();
        let cap = (m.lists.max_page_size as usize).max(1);
        let keys: std::collections::BTreeSet<ConversationSid> = m
            .lists
            .of(&identity)
            .map(|l| l.sids().cloned().collect())
            .unwrap_or_default();
        let ordered: Vec<&ConversationSid> = if desc {
            keys.iter().rev().collect()
        } else {
            keys.iter().collect()
        };
        let start = match &from {
            None => 0,
            Some(k) => ordered
                .iter()
                .position(|sid| {
                    if desc {
                        sid.as_str() <= k.as_str()
                    } else {
                        sid.as_str() >= k.as_str()
                    }
                })
                .unwrap_or(ordered.len()),
        };
        // `From` is inclusive: the anchor does not count against the page's cap.
        let take = if from.is_some() {
            size.min(cap + 1)
        } else {
            size.min(cap)
        };
        let items: Vec<ConversationSid> = ordered
            .iter()
            .skip(start)
            .take(take)
            .map(|s| (*s).clone())
            .collect();
        let more = start + items.len() < ordered.len();
        let mut ep = Endpoint::UserConversations {
            user: identity.clone(),
            page,
            last: !more,
            items: Vec::new(),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return Err(a);
        }
        // Only a page actually served lists its items, and not the inclusive anchor: the
        // previous page served it (the SDK drops it from this one).
        if let Endpoint::UserConversations { items: listed, .. } = &mut ep {
            *listed = items
                .iter()
                .filter(|sid| from.as_deref() != Some(sid.as_str()))
                .cloned()
                .collect();
        }
        let data: Vec<Value> = items
            .iter()
            .filter_map(|sid| m.listed_conversation(sid))
            .map(|c| {
                let p = c.participants.iter().find(|p| p.identity == identity);
                let data = sync::my_conversation_data(
                    &c.sid,
                    p.and_then(|p| p.last_read_message_index),
                    p.map_or("default", |p| p.notification_level.as_str()),
                );
                sync::map_item(name, c.sid.as_str(), data, last)
            })
            .collect();
        let end_key = items.last().map(|s| s.as_str().to_owned());
        Ok((ep, data, more, end_key))
    });
    match served {
        Err(a) => failed(a),
        Ok((ep, data, more, end_key)) => {
            if let (true, Some(k)) = (more, end_key) {
                s.pages.insert(k, page + 1);
            }
            let body = json!({"items": data, "meta": {"previous_token": from.is_some(), "next_token": more}});
            (Answer::ok(ep, body.clone()), body)
        }
    }
}

/// `GET /v3/Lists/{messages}/Items`: a page of a conversation's messages (`Order`,
/// `PageSize`, `From` an inclusive index).
fn list_items(s: &Session, req: &Request, name: &str) -> (Answer, Value) {
    let last = s.service.read(|m| m.events.last_seq());
    let Some(Object::Messages(sid)) = Object::parse(name) else {
        return not_found(
            Endpoint::SyncObject {
                object: name.to_owned(),
            },
            name,
        );
    };
    let (desc, size) = req.paging();
    let mut query = vec![
        ("PageSize".to_owned(), size.to_string()),
        (
            "Order".to_owned(),
            if desc { "desc" } else { "asc" }.to_owned(),
        ),
    ];
    // `From` (inclusive) as the v1 cursor just past it.
    if let Some(from) = req.param("From").and_then(|f| f.parse::<u64>().ok()) {
        let token = if desc {
            Some(format!("PA{}_0_1", from + 1))
        } else {
            from.checked_sub(1).map(|f| format!("PA{f}_0_1"))
        };
        if let Some(t) = token {
            query.push(("PageToken".to_owned(), t));
        }
    }
    let a = conversations::messages(&call(
        s,
        "GET",
        &["v1", "Conversations", sid.as_str(), "Messages"],
        query,
        vec![],
    ));
    cps(a, |v| {
        let items: Vec<Value> = v["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| serde_json::from_value::<Message>(m.clone()).ok())
                    .map(|m| sync::list_item(name, m.index, sync::message_data(&m), last))
                    .collect()
            })
            .unwrap_or_default();
        let next = v["meta"]["next_page_url"].is_string();
        json!({"items": items, "meta": {"previous_token": null, "next_token": next}})
    })
}

/// `POST /v4/Subscriptions`: accepted (202); the session replays and confirms.
fn subscriptions(s: &Session, req: &Request, extra: &mut Vec<Out>) -> (Answer, Value) {
    let ep = Endpoint::Subscriptions;
    if let Err(a) = authorized(s, &ep) {
        return failed(a);
    }
    let objects: Vec<(String, String, u64)> = req.body["requests"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let sid = r["object_sid"].as_str()?.to_owned();
                    let kind = r["object_type"].as_str().unwrap_or_default().to_owned();
                    let last = r["last_event_id"].as_u64().unwrap_or(0);
                    Some((sid, kind, last))
                })
                .collect()
        })
        .unwrap_or_default();
    let correlation = req.body["correlation_id"].clone();
    match req.body["action"].as_str() {
        Some("establish") => extra.push(Out::Establish {
            correlation,
            objects,
        }),
        Some("cancel") => extra.push(Out::Cancel {
            correlation,
            objects,
        }),
        _ => {
            return failed(Answer::error(
                ep,
                400,
                20_001,
                "action must be establish or cancel",
            ));
        }
    }
    let body = json!({"estimated_delivery_in_ms": 5000, "max_batch_size": 100, "ttl_in_s": -1});
    (Answer::ok(ep, body.clone()).with_status(202), body)
}

/// The push registrar's (ERS) registration write: the kit's client registration
/// (`register`), the device token in `data.registration_id`, the push technology in
/// `channel_type`; answered with the binding's sid as the registration `id`.
fn register(s: &Session, req: &Request) -> (Answer, Value) {
    let mut form = vec![(
        "Address".to_owned(),
        req.body["data"]["registration_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )];
    if let Some(t) = req.body["channel_type"].as_str() {
        form.push(("BindingType".to_owned(), t.to_owned()));
    }
    let a = bindings::register(&call(
        s,
        "POST",
        &["v1", "Client", "Registrations"],
        vec![],
        form,
    ));
    cps(a, |v| json!({"id": v["sid"], "binding": v}))
}

/// The push registrar's removal of one registration (`unregister`).
fn unregister(s: &Session, address: &str) -> (Answer, Value) {
    let a = bindings::unregister(&call(
        s,
        "DELETE",
        &["v1", "Client", "Registrations", address],
        vec![],
        vec![],
    ));
    cps(a, |_| json!({}))
}

/// The push registrar's removal of every registration of a device token (what the SDK's
/// `removePushRegistrations` asks for: "removes all registrations" of that token, whoever made
/// them); journaled as `unregister`, one binding fact per removal.
fn unregister_device(s: &Session, address: &str) -> (Answer, Value) {
    let ep = Endpoint::Unregister {
        address: crate::backend::fact::quoted(address),
    };
    if let Err(a) = authorized(s, &ep) {
        return failed(a);
    }
    let a = s.service.bindings(|m| {
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        let owners: Vec<String> = m
            .bindings()
            .filter(|b| b.address == address)
            .map(|b| b.identity.clone())
            .collect();
        let removed: Vec<_> = owners
            .iter()
            .filter_map(|who| m.remove_binding(who, address))
            .map(|b| crate::backend::service::binding_fact(BindingChange::Removed, &b))
            .collect();
        // Removing what is not there is done too (a delete is idempotent).
        (Answer::ok(ep.clone(), ()).with_status(204), removed)
    });
    cps(a, |_| json!({}))
}
