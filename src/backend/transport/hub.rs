//! The event hub: a WebSocket listener that delivers the model's event log to connected clients.
//!
//! A client connects to `/v1/events` with its token in `X-Twilio-Token`, its instance id in
//! `X-Convo-Client` and, when reconnecting, `?since=SEQ`. Its connection keeps a cursor into the
//! log, set before the handshake answer leaves (so no event slips past a fresh client): the
//! events after `SEQ`, or after the log's end. Woken whenever the log grows, it delivers what its
//! identity receives, journaling each frame before writing it. A `{"type":"ping","nonce":n}` is
//! answered with a pong after every event already in the log, which is how clients settle.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::backend::endpoint::Endpoint;
use crate::backend::fact::{Fact, FrameFact, RequestFact};
use crate::backend::model::Published;
use crate::backend::service::Service;
use crate::secrets::TokenFingerprint;
use crate::wire::{HubFrame, InstanceId, Ping, TwilioError};

/// Accepts connections until the task is aborted; aborting it closes every connection too.
pub(crate) async fn serve(listener: TcpListener, service: Arc<Service>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    // Small frames (events, pongs) must not wait for delayed ACKs.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, service.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What the handshake learned.
#[derive(Default)]
struct Handshake {
    instance: Option<InstanceId>,
    token: Option<TokenFingerprint>,
    /// The identity whose events the socket receives, and the log position to deliver after.
    subscription: Option<(String, u64)>,
    since: Option<u64>,
}

fn refuse(status: StatusCode, code: u32, message: &str) -> ErrorResponse {
    let body = serde_json::to_string(&TwilioError::new(status.as_u16(), code, message)).ok();
    let mut resp = ErrorResponse::new(body);
    *resp.status_mut() = status;
    resp
}

#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes the error type"
)]
async fn connection(stream: TcpStream, service: Arc<Service>) {
    let mut hs = Handshake::default();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        hs.instance = header("x-convo-client").map(InstanceId::from);
        let token = header("x-twilio-token");
        hs.token = token.map(TokenFingerprint::of);
        let query = req.uri().query().unwrap_or_default().to_owned();
        hs.since = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse().ok());
        let record = |status: u16, error: Option<String>| {
            service.recorder.record(
                hs.instance.clone(),
                Fact::Request(RequestFact {
                    method: "GET".into(),
                    path: req.uri().path().to_owned(),
                    query: (!query.is_empty()).then(|| query.clone()),
                    endpoint: Endpoint::EventChannel,
                    status,
                    revision: None,
                    attributes: None,
                    token: token.map(TokenFingerprint::of),
                    error,
                    issued: None,
                }),
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
        match token.map(|t| service.tokens.validate(t)) {
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
                // Journaled before the answer leaves, so it precedes anything the client does
                // once it knows it is connected.
                record(101, None);
                // Place the cursor before the handshake answer leaves: from the moment the client
                // knows it is connected, no event can slip past it.
                let cursor = hs
                    .since
                    .unwrap_or_else(|| service.read(|m| m.events.last_seq()));
                hs.subscription = Some((claims.grants.identity, cursor));
                Ok(resp)
            }
        }
    };
    let mut published = service.published();
    let accepted = tokio_tungstenite::accept_hdr_async(stream, callback).await;
    let (Some((identity, mut cursor)), Ok(ws)) = (hs.subscription, accepted) else {
        return;
    };
    let instance = hs.instance;
    service.recorder.record(
        instance.clone(),
        Fact::Connected {
            since: hs.since,
            token: hs.token.clone(),
        },
    );
    // Frames of a connection that did not name its instance carry its token instead.
    let anonymous = instance.is_none().then_some(hs.token).flatten();
    let (mut sink, mut stream) = ws.split();
    'socket: loop {
        // Deliver everything published so far, then wait for more or for the client.
        if !send_due(
            &service,
            (&instance, &anonymous),
            &identity,
            &mut cursor,
            &mut sink,
        )
        .await
        {
            break;
        }
        tokio::select! {
            changed = published.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(ping) = serde_json::from_str::<Ping>(t.as_str()) else { continue };
                    // The pong goes after every event already published.
                    if !send_due(&service, (&instance, &anonymous), &identity, &mut cursor, &mut sink).await {
                        break 'socket;
                    }
                    let pong = HubFrame::Pong { nonce: ping.nonce }.encode();
                    if sink.send(Message::text(pong)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    service.recorder.record(instance, Fact::Disconnected);
}

type Sink = futures::stream::SplitSink<tokio_tungstenite::WebSocketStream<TcpStream>, Message>;

/// Journals and writes, one by one, every event published after `cursor` that `identity`
/// receives (a frame is journaled right before the socket takes it); false once the socket is
/// gone.
async fn send_due(
    service: &Service,
    (instance, token): (&Option<InstanceId>, &Option<TokenFingerprint>),
    identity: &str,
    cursor: &mut u64,
    sink: &mut Sink,
) -> bool {
    let due: Vec<Arc<Published>> = service.read(|m| {
        let due = m.events.after(*cursor, identity);
        *cursor = m.events.last_seq();
        due
    });
    for p in due {
        let mut fact = frame_fact(&p);
        fact.token.clone_from(token);
        service.recorder.record(instance.clone(), Fact::Frame(fact));
        if sink.send(Message::text(p.text.clone())).await.is_err() {
            return false;
        }
    }
    true
}

fn frame_fact(p: &Published) -> FrameFact {
    FrameFact {
        event_seq: p.frame.seq,
        event: p.frame.kind,
        target: p.frame.target(),
        revision: p.frame.revision,
        attributes: p.frame.attributes(),
        index: p.frame.index,
        token: None,
    }
}
