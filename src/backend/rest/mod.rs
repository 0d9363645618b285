//! The REST side of the mock backend, served by wiremock.
//!
//! One wiremock [`Mock`] per endpoint (method + path regex), each answered by an [`Api`]
//! responder that parses the request into a [`Call`], runs the endpoint's handler against the
//! shared state and journals the outcome. Handlers live in one file per endpoint group
//! ([`token`], [`users`], [`conversations`]). Anything unmatched or malformed gets a Twilio-style
//! error body (`{code, message, more_info, status}`), never a panic.

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself, built once per request"
)]

mod conversations;
mod paging;
mod token;
mod users;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use super::Shared;
use super::journal::{Endpoint, EntryKind, InstanceId, TokenFingerprint};
use super::state::{BackendState, ObjectKey};
use super::tokens::Claims;

/// A Twilio-style error body.
pub(crate) fn twilio_error(status: u16, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

/// A parsed request.
pub(crate) struct Call<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) segments: Vec<String>,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) form: BTreeMap<String, String>,
    pub(crate) token: Option<String>,
}

/// A handler's answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) endpoint: Endpoint,
    pub(crate) revision: Option<u64>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) error: Option<String>,
}

impl Answer {
    pub(crate) fn ok(endpoint: Endpoint, body: Value) -> Self {
        Self {
            status: 200,
            body,
            endpoint,
            revision: None,
            retry_after: None,
            error: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn with_revision(mut self, revision: u64) -> Self {
        self.revision = Some(revision);
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
            body: twilio_error(status, code, &message),
            endpoint,
            revision: None,
            retry_after: None,
            error: Some(message),
        }
    }

    /// 503 with Retry-After if a closed gate holds `endpoint` back. Handlers call it once they
    /// know their endpoint and before they change anything.
    pub(crate) fn gated(st: &BackendState, endpoint: &Endpoint) -> Option<Self> {
        let gate = st.closed_gate(endpoint)?;
        let mut a = Self::error(
            endpoint.clone(),
            503,
            20_503,
            format!("service unavailable: {gate} is gated"),
        );
        a.retry_after = Some(st.retry_after_secs);
        Some(a)
    }
}

impl Call<'_> {
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
        self.shared
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
                            "invalid {name} `{v}`: expected {}..={}",
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
        self.query_num("Page", 0, 0..=100_000, endpoint)?;
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

/// Writes an object's attributes and answers with its resource at the new revision (the ack the
/// client gets before the Updated event).
pub(crate) fn write_attributes(
    st: &mut BackendState,
    ep: Endpoint,
    key: &ObjectKey,
    attributes: Value,
) -> Answer {
    let Some((revision, events)) = st.set_attributes(key, attributes) else {
        return Answer::error(ep, 404, 20_404, format!("{key} vanished"));
    };
    let body = match key {
        ObjectKey::User(id) => st
            .users
            .get(id)
            .map(|u| super::resources::user(st, u, u.current())),
        ObjectKey::Conversation(sid) => st
            .conversations
            .get(sid)
            .map(|c| super::resources::conversation(st, c, c.current())),
    };
    let Some(body) = body else {
        return Answer::error(ep, 404, 20_404, format!("{key} vanished"));
    };
    st.emit(events);
    Answer::ok(ep, body).with_revision(revision)
}

/// `s` percent-encoded for use as one URL path segment.
pub(crate) fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

type Handler = fn(&Call<'_>) -> Answer;

/// The responder every endpoint mock uses.
struct Api {
    shared: Arc<Shared>,
    handler: Handler,
}

fn pairs(raw: &[u8]) -> Result<BTreeMap<String, String>, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|v| v.into_iter().collect())
        .map_err(|e| e.to_string())
}

impl Respond for Api {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let instance = header("x-convo-client").map(InstanceId);
        let token = header("x-twilio-token");
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
            Ok(BTreeMap::new())
        } else {
            pairs(&req.body)
        };
        let answer = match (query, form) {
            (Ok(query), Ok(form)) => (self.handler)(&Call {
                shared: &self.shared,
                segments,
                query,
                form,
                token: token.clone(),
            }),
            (Err(e), _) | (_, Err(e)) => Answer::error(
                Endpoint::Unknown,
                400,
                20_001,
                format!("malformed request: {e}"),
            ),
        };
        let journal = &self.shared.journal;
        journal.record(
            instance,
            EntryKind::Request {
                method: req.method.to_string(),
                path: req.url.path().to_owned(),
                query: req.url.query().map(|q| journal.secrets().redact(q)),
                endpoint: answer.endpoint.clone(),
                status: answer.status,
                revision: answer.revision,
                token: token.as_deref().map(TokenFingerprint::of),
                error: answer.error.clone(),
            },
        );
        if let (Endpoint::UserConversations { last: true, .. }, 200) =
            (&answer.endpoint, answer.status)
        {
            // The list index has caught up with removals once a final page was served.
            self.shared.lock().forget_ghosts();
        }
        let mut t = ResponseTemplate::new(answer.status).set_body_json(answer.body);
        if let Some(rev) = answer.revision {
            t = t.insert_header("ETag", format!("\"{rev}\""));
        }
        if let Some(secs) = answer.retry_after {
            t = t.insert_header("Retry-After", secs.to_string());
        }
        t
    }
}

fn unknown(_: &Call<'_>) -> Answer {
    Answer::error(
        Endpoint::Unknown,
        404,
        20_404,
        "the requested resource was not found",
    )
}

/// Mounts every endpoint on `server`.
pub(crate) async fn mount(server: &MockServer, shared: &Arc<Shared>) {
    let routes: &[(&str, &str, Handler)] = &[
        ("POST", r"^/token$", token::mint),
        (
            "GET",
            r"^/v1/Users/[^/]+/Conversations$",
            users::list_conversations,
        ),
        ("GET", r"^/v1/Users/[^/]+$", users::get),
        ("POST", r"^/v1/Users/[^/]+$", users::update),
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
    ];
    for (verb, path, handler) in routes {
        Mock::given(method(*verb))
            .and(path_regex(*path))
            .respond_with(Api {
                shared: shared.clone(),
                handler: *handler,
            })
            .with_priority(1)
            .mount(server)
            .await;
    }
    Mock::given(any())
        .respond_with(Api {
            shared: shared.clone(),
            handler: unknown,
        })
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}
