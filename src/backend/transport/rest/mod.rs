//! The REST side of the mock backend, served by wiremock.
//!
//! One wiremock [`Mock`] per endpoint (method + path regex), each answered by an [`Api`]
//! responder that parses the request into a [`Call`], runs the endpoint's handler against the
//! service and journals the outcome. Handlers live in one file per endpoint group ([`token`],
//! [`users`], [`conversations`]); [`paging`] serves every list by cursor. Anything unmatched or
//! malformed gets a Twilio error body (`{code, message, more_info, status}`), never a panic.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself, built once per request"
)]

pub(crate) mod bindings;
pub(crate) mod conversations;
pub(crate) mod paging;
mod token;
pub(crate) mod users;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::backend::endpoint::Endpoint;
use crate::backend::fact::{Fact, Issued, RequestFact};
use crate::backend::model::{Model, Snapshot};
use crate::backend::service::Service;
use crate::backend::tokens::Claims;
use crate::secrets::TokenFingerprint;
use crate::wire::{InstanceId, ObjectKey, TwilioError};

/// A parsed request.
pub(crate) struct Call<'a> {
    pub(crate) service: &'a Service,
    pub(crate) method: &'a str,
    pub(crate) segments: Vec<String>,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) form: BTreeMap<String, String>,
    /// Every query parameter in order, repeated ones included (`query` keeps the last).
    pub(crate) query_pairs: Vec<(String, String)>,
    /// Every form field in order, repeated ones included (`form` keeps the last).
    pub(crate) form_pairs: Vec<(String, String)>,
    pub(crate) token: Option<String>,
    /// The `Authorization` header (HTTP Basic with the account's credentials).
    pub(crate) authorization: Option<String>,
    /// The `Content-Type` header of a request with a body.
    pub(crate) content_type: Option<String>,
}

/// Who a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    /// HTTP Basic with the account sid and auth token: a server-side call that may read and
    /// write anything and author as anyone.
    Account,
    /// An access token: a client that acts for its identity only.
    Client(String),
}

impl Principal {
    /// Whether it may see (and act in) a conversation.
    pub(crate) fn sees(&self, c: &crate::backend::model::ConversationRecord) -> bool {
        match self {
            Self::Account => true,
            Self::Client(identity) => c.has_participant(identity),
        }
    }
}

/// A handler's answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) endpoint: Endpoint,
    /// The revision and attributes of the object the answer carries.
    pub(crate) snapshot: Option<(u64, Value)>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) error: Option<String>,
    /// The token the answer mints.
    pub(crate) issued: Option<Issued>,
}

impl Answer {
    pub(crate) fn ok(endpoint: Endpoint, body: impl Serialize) -> Self {
        Self {
            status: 200,
            body: serde_json::to_value(body).unwrap_or(Value::Null),
            endpoint,
            snapshot: None,
            retry_after: None,
            error: None,
            issued: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Says which revision of the object the answer carries (sent as `ETag`, journaled).
    pub(crate) fn with_snapshot(mut self, snap: &Snapshot) -> Self {
        self.snapshot = Some((snap.revision, snap.attributes.clone()));
        self
    }

    pub(crate) fn error(
        endpoint: Endpoint,
        status: u16,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            status,
            body: serde_json::to_value(TwilioError::new(status, code, message.clone()))
                .unwrap_or(Value::Null),
            endpoint,
            snapshot: None,
            retry_after: None,
            error: Some(message),
            issued: None,
        }
    }

    /// 503 with Retry-After if a closed gate holds `endpoint` back. Handlers call it once they
    /// know their endpoint and before they change anything.
    pub(crate) fn gated(m: &Model, endpoint: &Endpoint) -> Option<Self> {
        let gate = m.gates.holding(endpoint)?;
        let mut a = Self::error(
            endpoint.clone(),
            503,
            20_503,
            format!("service unavailable: {gate} is gated"),
        );
        a.retry_after = Some(m.gates.retry_after_secs);
        Some(a)
    }
}

impl Call<'_> {
    /// Who the request acts for: the account for valid HTTP Basic credentials, the token's
    /// identity for a valid access token; the error answer is ready to return.
    pub(crate) fn principal(&self, endpoint: &Endpoint) -> Result<Principal, Answer> {
        if let Some(header) = &self.authorization {
            return if self.service.tokens.accepts_basic(header) {
                Ok(Principal::Account)
            } else {
                Err(Answer::error(
                    endpoint.clone(),
                    401,
                    20_003,
                    "authenticate: HTTP Basic needs the account sid and its auth token",
                ))
            };
        }
        self.authenticate(endpoint)
            .map(|claims| Principal::Client(claims.grants.identity))
    }

    /// Checks a form endpoint's body: form-encoded, only fields in `allowed` (each a v1 field
    /// the endpoint applies), and, if `required`, at least one of them.
    pub(crate) fn form_fields(
        &self,
        endpoint: &Endpoint,
        allowed: &[&str],
        required: bool,
    ) -> Result<(), Answer> {
        let bad = |message: String| Answer::error(endpoint.clone(), 400, 20_001, message);
        if let Some(ct) = &self.content_type {
            let mime = ct.split(';').next().unwrap_or_default().trim();
            if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(bad(format!(
                    "unsupported Content-Type `{}`: this endpoint takes \
                     application/x-www-form-urlencoded",
                    echo(mime)
                )));
            }
        }
        if let Some(unknown) = self.form.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown or unsupported parameter `{}`: this endpoint takes {}",
                echo(unknown),
                allowed.join(", ")
            )));
        }
        if required && self.form.is_empty() {
            return Err(bad(format!(
                "nothing to update: give at least one of {}",
                allowed.join(", ")
            )));
        }
        Ok(())
    }

    /// Validates the presented token; the error answer is ready to return.
    pub(crate) fn authenticate(&self, endpoint: &Endpoint) -> Result<Claims, Answer> {
        let Some(token) = &self.token else {
            return Err(Answer::error(
                endpoint.clone(),
                401,
                20_101,
                "missing X-Twilio-Token",
            ));
        };
        self.service
            .tokens
            .validate(token)
            .map_err(|e| Answer::error(endpoint.clone(), 401, e.code(), e.to_string()))
    }

    /// A query parameter parsed as a number within `range`, or `default` when absent.
    pub(crate) fn query_num(
        &self,
        name: &str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
        endpoint: &Endpoint,
    ) -> Result<u32, Answer> {
        match self.query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    Answer::error(
                        endpoint.clone(),
                        400,
                        20_001,
                        format!(
                            "invalid {name} `{}`: expected {}..={}",
                            echo(v),
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    /// `PageSize` (1..=`max`, default 50) and `PageToken`, as the v1 API takes them (`Page` is
    /// checked but, as in the v1 API, only the client's bookkeeping).
    pub(crate) fn paging(
        &self,
        endpoint: &Endpoint,
        max: u32,
    ) -> Result<(u32, paging::PageRef), Answer> {
        let size = self.query_num("PageSize", 50.min(max), 1..=max, endpoint)?;
        self.query_num("Page", 0, 0..=paging::MAX_PAGE, endpoint)?;
        let at = paging::PageRef::parse(self.query.get("PageToken").map(String::as_str))
            .map_err(|e| Answer::error(endpoint.clone(), 400, 20_001, e))?;
        Ok((size, at))
    }

    /// The `Attributes` form field parsed as JSON.
    pub(crate) fn attributes(&self, endpoint: &Endpoint) -> Result<Option<Value>, Answer> {
        match self.form.get("Attributes") {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw).map(Some).map_err(|e| {
                Answer::error(
                    endpoint.clone(),
                    400,
                    20_001,
                    format!("Attributes is not valid JSON: {e}"),
                )
            }),
        }
    }
}

/// Answers a write with the object's resource at its new revision (the ack the client gets
/// before the Updated event).
pub(crate) fn written(m: &Model, ep: Endpoint, key: &ObjectKey) -> Answer {
    let answer = match key {
        ObjectKey::User(id) => m.user(id).map(|u| {
            let snap = u.history.current();
            Answer::ok(ep.clone(), crate::backend::render::user(m, u, snap)).with_snapshot(snap)
        }),
        ObjectKey::Conversation(sid) => m.conversation(sid).map(|c| {
            let snap = c.history.current();
            Answer::ok(ep.clone(), crate::backend::render::conversation(m, c, snap))
                .with_snapshot(snap)
        }),
    };
    answer.unwrap_or_else(|| Answer::error(ep, 404, 20_404, format!("{key} vanished")))
}

/// Longest piece of a request an error message quotes back.
const ECHO_MAX: usize = 64;

/// `s` as an error message may quote it: token-shaped values replaced by their fingerprints
/// (the answer goes back to whoever sent it, but also into the journal), then at most
/// [`ECHO_MAX`] characters, the rest elided with its length (a hostile request must not make
/// the answer, or the journal, grow with it).
pub(crate) fn echo(s: &str) -> String {
    let s = crate::secrets::scrub(s);
    match s.char_indices().nth(ECHO_MAX) {
        None => s.into_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// `s` percent-encoded for use as one URL path segment.
pub(crate) fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

type Handler = fn(&Call<'_>) -> Answer;

/// The responder every endpoint mock uses.
struct Api {
    service: Arc<Service>,
    handler: Handler,
}

fn pairs(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw).map_err(|e| e.to_string())
}

impl Respond for Api {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let instance = header("x-convo-client").map(InstanceId::from);
        let token = header("x-twilio-token");
        let authorization = header("authorization");
        let content_type = header("content-type").filter(|_| !req.body.is_empty());
        let segments: Vec<String> = req
            .url
            .path_segments()
            .map(|s| {
                s.map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
            })
            .unwrap_or_default();
        let query = pairs(req.url.query().unwrap_or_default().as_bytes());
        let form = if req.body.is_empty() {
            Ok(Vec::new())
        } else {
            pairs(&req.body)
        };
        // An access token never travels in a URL (URLs end up in proxies' and servers' logs):
        // a request that carries one there is refused, and journaled as such.
        let raw_query = req.url.query().map(|q| {
            percent_encoding::percent_decode_str(q)
                .decode_utf8_lossy()
                .into_owned()
        });
        let url_token = raw_query
            .as_deref()
            .and_then(crate::secrets::find_token)
            .map(TokenFingerprint::of);
        let answer = match (query, form) {
            _ if url_token.is_some() => Answer::error(
                Endpoint::Unknown,
                400,
                20_001,
                "an access token in the URL: tokens travel in the X-Twilio-Token header only",
            ),
            (Ok(query_pairs), Ok(form_pairs)) => (self.handler)(&Call {
                service: &self.service,
                method: req.method.as_str(),
                segments,
                query: query_pairs.iter().cloned().collect(),
                form: form_pairs.iter().cloned().collect(),
                query_pairs,
                form_pairs,
                token: token.clone(),
                authorization: authorization.clone(),
                content_type,
            }),
            (Err(e), _) | (_, Err(e)) => Answer::error(
                Endpoint::Unknown,
                400,
                20_001,
                format!("malformed request: {e}"),
            ),
        };
        let (revision, attributes) = answer.snapshot.clone().unzip();
        self.service.recorder.record(
            instance,
            Fact::Request(RequestFact {
                method: req.method.to_string(),
                path: req.url.path().to_owned(),
                query: req.url.query().map(str::to_owned),
                endpoint: answer.endpoint.clone(),
                status: answer.status,
                revision,
                attributes,
                // The credential's fingerprint, never the credential (the auth token included).
                token: token
                    .as_deref()
                    .or(authorization.as_deref())
                    .map(TokenFingerprint::of)
                    .or_else(|| url_token.clone()),
                error: answer.error.clone(),
                issued: answer.issued.clone(),
                token_in_url: url_token.is_some(),
            }),
        );
        if let (Endpoint::UserConversations { last: true, .. }, 200) =
            (&answer.endpoint, answer.status)
        {
            // The list index has caught up with removals once a final page was served.
            self.service.quietly(|m| m.lists.forget_ghosts());
        }
        let mut t = ResponseTemplate::new(answer.status);
        // A 204 has no body.
        if answer.status != 204 {
            t = t.set_body_json(answer.body);
        }
        if let Some(rev) = revision {
            t = t.insert_header("ETag", format!("\"{rev}\""));
        }
        if let Some(secs) = answer.retry_after {
            t = t.insert_header("Retry-After", secs.to_string());
        }
        t
    }
}

/// Anything not served: a 404, classified by what it is about (a request under a
/// conversation's path is still an operation on, or a read of, that conversation).
fn unknown(call: &Call<'_>) -> Answer {
    let endpoint = match call.segments.as_slice() {
        [v1, conversations, sid, ..] if v1 == "v1" && conversations == "Conversations" => {
            Endpoint::OtherConversation {
                sid: sid.as_str().into(),
                write: call.method != "GET",
            }
        }
        _ => Endpoint::Unknown,
    };
    Answer::error(
        endpoint,
        404,
        20_404,
        "the requested resource was not found",
    )
}

/// Mounts every endpoint on `server`.
pub(crate) async fn mount(server: &MockServer, service: &Arc<Service>) {
    let routes: &[(&str, &str, Handler)] = &[
        ("POST", r"^/token$", token::mint),
        (
            "GET",
            r"^/v1/Users/[^/]+/Conversations$",
            users::list_conversations,
        ),
        ("GET", r"^/v1/Users/[^/]+$", users::get),
        ("POST", r"^/v1/Users/[^/]+$", users::update),
        (
            "GET",
            r"^/v1/Users/[^/]+/Conversations/[^/]+$",
            users::get_user_conversation,
        ),
        (
            "POST",
            r"^/v1/Users/[^/]+/Conversations/[^/]+$",
            users::update_user_conversation,
        ),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Participants/[^/]+$",
            conversations::participant,
        ),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Messages/[^/]+$",
            conversations::message,
        ),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Webhooks$",
            conversations::webhooks,
        ),
        ("GET", r"^/v1/Conversations/[^/]+$", conversations::get),
        ("POST", r"^/v1/Conversations/[^/]+$", conversations::update),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Participants$",
            conversations::participants,
        ),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Messages$",
            conversations::messages,
        ),
        (
            "POST",
            r"^/v1/Conversations/[^/]+/Messages$",
            conversations::send_message,
        ),
        (
            "GET",
            r"^/v1/Conversations/[^/]+/Counts$",
            conversations::counts,
        ),
        ("GET", r"^/v1/Services/[^/]+/Bindings$", bindings::list),
        (
            "GET",
            r"^/v1/Services/[^/]+/Bindings/[^/]+$",
            bindings::fetch,
        ),
        (
            "DELETE",
            r"^/v1/Services/[^/]+/Bindings/[^/]+$",
            bindings::delete,
        ),
        ("POST", r"^/v1/Client/Registrations$", bindings::register),
        (
            "DELETE",
            r"^/v1/Client/Registrations/[^/]+$",
            bindings::unregister,
        ),
    ];
    for (verb, path, handler) in routes {
        Mock::given(method(*verb))
            .and(path_regex(*path))
            .respond_with(Api {
                service: service.clone(),
                handler: *handler,
            })
            .with_priority(1)
            .mount(server)
            .await;
    }
    Mock::given(any())
        .respond_with(Api {
            service: service.clone(),
            handler: unknown,
        })
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}
