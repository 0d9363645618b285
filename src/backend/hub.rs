//! The event hub: a WebSocket listener that pushes numbered events to connected clients.
//!
//! Every published event gets the next sequence number and is kept in a log. A client connects
//! to `/v1/events` with its token in `X-Twilio-Token`, its instance id in `X-Convo-Client` and,
//! when reconnecting, `?since=SEQ`: the hub replays the logged events after `SEQ` that concern its
//! identity, then streams live ones. A `{"type":"ping","nonce":n}` frame is answered with a pong
//! queued behind every event already queued for that socket, which is how clients settle. Each
//! frame put on a socket is journaled.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::journal::{Endpoint, EntryKind, InstanceId, Journal, TokenFingerprint};
use super::tokens::TokenAuthority;

/// An event handed to the hub by the state.
#[derive(Clone, Debug)]
pub struct Published {
    /// Identities that receive it.
    pub audience: BTreeSet<String>,
    /// Event type name.
    pub event: String,
    /// Object key (`CH...`, `user:alice`).
    pub target: String,
    /// Object revision carried.
    pub revision: Option<u64>,
    /// Frame body (without `seq`).
    pub body: Value,
}

#[derive(Debug)]
struct Logged {
    seq: u64,
    published: Published,
    text: String,
}

enum Outgoing {
    Event(Arc<Logged>),
    Pong(Value),
}

struct Subscriber {
    id: u64,
    identity: String,
    tx: mpsc::UnboundedSender<Outgoing>,
}

#[derive(Default)]
struct HubState {
    log: Vec<Arc<Logged>>,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
}

/// The hub's shared state; cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HubState>>,
}

impl Hub {
    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs an event and queues it to every connected member of its audience. Never blocks.
    pub fn publish(&self, p: Published) -> u64 {
        let mut st = self.state();
        let seq = st.log.len() as u64 + 1;
        let mut body = p.body.clone();
        body["seq"] = json!(seq);
        let logged = Arc::new(Logged {
            seq,
            text: body.to_string(),
            published: p,
        });
        st.log.push(logged.clone());
        st.subscribers.retain(|s| {
            !logged.published.audience.contains(&s.identity)
                || s.tx.send(Outgoing::Event(logged.clone())).is_ok()
        });
        seq
    }

    /// Sequence number of the newest event (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.state().log.len() as u64
    }

    fn subscribe(&self, identity: &str, since: Option<u64>) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.state();
        if let Some(since) = since {
            for e in st.log.iter().skip(since as usize) {
                if e.published.audience.contains(identity) {
                    let _ = tx.send(Outgoing::Event(e.clone()));
                }
            }
        }
        let id = st.next_subscriber;
        st.next_subscriber += 1;
        st.subscribers.push(Subscriber {
            id,
            identity: identity.to_owned(),
            tx: tx.clone(),
        });
        (id, tx, rx)
    }

    fn unsubscribe(&self, id: u64) {
        self.state().subscribers.retain(|s| s.id != id);
    }
}

/// What a connection task needs.
pub(crate) struct HubContext {
    pub(crate) hub: Hub,
    pub(crate) journal: Journal,
    pub(crate) tokens: Arc<TokenAuthority>,
}

/// Accepts connections until the task is aborted; aborting it closes every connection too.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<HubContext>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    // Small frames (events, pongs) must not wait for delayed ACKs.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, ctx.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type Subscription = (
    u64,
    mpsc::UnboundedSender<Outgoing>,
    mpsc::UnboundedReceiver<Outgoing>,
);

struct Handshake {
    instance: Option<InstanceId>,
    subscription: Option<Subscription>,
    since: Option<u64>,
}

fn refuse(status: StatusCode, code: u32, message: &str) -> ErrorResponse {
    let body = super::rest::twilio_error(status.as_u16(), code, message).to_string();
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = status;
    resp
}

#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes the error type"
)]
async fn connection(stream: TcpStream, ctx: Arc<HubContext>) {
    let mut hs = Handshake {
        instance: None,
        subscription: None,
        since: None,
    };
    let journal = ctx.journal.clone();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        hs.instance = header("x-convo-client").map(|s| InstanceId(s.to_owned()));
        let token = header("x-twilio-token");
        let query = req.uri().query().unwrap_or_default().to_owned();
        hs.since = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse().ok());
        let record = |status: u16, error: Option<String>| {
            journal.record(
                hs.instance.clone(),
                EntryKind::Request {
                    method: "GET".into(),
                    path: req.uri().path().to_owned(),
                    query: (!query.is_empty()).then(|| journal.secrets().redact(&query)),
                    endpoint: Endpoint::Unknown,
                    status,
                    revision: None,
                    token: token.map(TokenFingerprint::of),
                    error,
                },
            );
        };
        if req.uri().path() != "/v1/events" {
            record(404, Some("no such event channel".into()));
            return Err(refuse(
                StatusCode::NOT_FOUND,
                20_404,
                "no such event channel",
            ));
        }
        match token.map(|t| ctx.tokens.validate(t)) {
            None => {
                record(401, Some("missing X-Twilio-Token".into()));
                Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    20_101,
                    "missing X-Twilio-Token",
                ))
            }
            Some(Err(e)) => {
                record(401, Some(e.to_string()));
                Err(refuse(StatusCode::UNAUTHORIZED, e.code(), &e.to_string()))
            }
            Some(Ok(claims)) => {
                // Subscribe before the handshake answer leaves: from the moment the client
                // knows it is connected, no event can slip past it.
                hs.subscription = Some(ctx.hub.subscribe(&claims.grants.identity, hs.since));
                Ok(resp)
            }
        }
    };
    let accepted = tokio_tungstenite::accept_hdr_async(stream, callback).await;
    let Some((id, self_tx, mut rx)) = hs.subscription else {
        return;
    };
    let Ok(ws) = accepted else {
        ctx.hub.unsubscribe(id);
        return;
    };
    let instance = hs.instance;
    journal.record(instance.clone(), EntryKind::Connected { since: hs.since });
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                let text = match out {
                    Outgoing::Event(e) => {
                        journal.record(instance.clone(), EntryKind::Frame {
                            event_seq: e.seq,
                            event: e.published.event.clone(),
                            target: Some(e.published.target.clone()),
                            revision: e.published.revision,
                            index: e.published.body["index"].as_u64(),
                        });
                        e.text.clone()
                    }
                    Outgoing::Pong(v) => v.to_string(),
                };
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                        if v["type"] == "ping" {
                            let _ = self_tx.send(Outgoing::Pong(json!({"type": "pong", "nonce": v["nonce"]})));
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    ctx.hub.unsubscribe(id);
    journal.record(instance, EntryKind::Disconnected);
}
