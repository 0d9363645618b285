//! The twilsock face: the backend as the real Twilio Conversations JS SDK sees it.
//!
//! That SDK speaks no v1 REST: everything goes over one WebSocket (`/v3/wsconnect` on the event
//! channel's port) in twilsock v3 frames ([`frame`]). After an `init` carrying the token, the
//! client sends `message` frames, each an HTTP request (the "CPS" client API and the Sync API
//! of maps, lists and documents), answered with `reply` frames; the server pushes
//! `notification` frames (Sync events) that the client acknowledges, `client_update`
//! `token_about_to_expire` and, at expiry, `close` 410. The SDK hands over a new token with an
//! `update` frame.
//!
//! This is a second face on the same state, journal and controls as the v1 face: every request
//! is translated into the v1 endpoint it amounts to and answered by that endpoint's handler
//! ([`route`]), so gates, list changes at exact points, holds and token checks work unchanged
//! and the journal records the same typed [`Endpoint`]s; every event of the log is rendered as
//! the Sync notification of the object it changed ([`sync`]) and journaled as the same
//! [`FrameFact`] the v1 hub writes, on the objects the client subscribed to, replayed after
//! the `last_event_id` it subscribes with.
//!
//! `GET /v3/kit/settle?client=ID` on the same port (plain HTTP) is the kit's settle barrier for
//! this face (a stack under test cannot send the v1 channel's `ping`): answered once every
//! event published so far was written to, and acknowledged by, every open twilsock socket of
//! that client instance, with running totals of its requests and notifications; with
//! `&sent=N`, once the N frames the client wrote on its open sockets were read; with
//! `&closed=1`, once that instance has no socket open either (a kill or a logout is answered
//! only once the backend let go of its socket).

mod frame;
mod route;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::http1;
use super::hub::{Lease, OpenSocket, frame_fact, ws_config};
use crate::backend::fact::{Fact, Layer, Refusal, RefusedFact, RequestFact, TokenNotice, quoted};
use crate::backend::service::{ChannelStatus, Service};
use crate::secrets::TokenFingerprint;
use crate::wire::InstanceId;
pub(crate) use frame::Frame;

/// The path the SDK's `Twilsock: { uri }` points at.
pub(crate) const PATH: &str = "/v3/wsconnect";
/// The settle barrier's path.
pub(crate) const SETTLE_PATH: &str = "/v3/kit/settle";
/// How long the settle barrier waits (real time) before it answers 504 with what is missing.
const SETTLE_BOUND: Duration = Duration::from_secs(10);

/// The instance a twilsock URL names: `?client=ID` (the SDK cannot send our header).
pub(crate) fn instance_in(query: &str) -> Option<InstanceId> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client")
        .map(|(_, v)| InstanceId::from(quoted(&v)))
}

/// Answers the settle barrier (see the module docs) and closes the connection.
pub(crate) async fn settle(mut stream: TcpStream, query: &str, service: Arc<Service>) {
    let Some(instance) = instance_in(query) else {
        let answer = http1::error_response(400, 20_001, "settle needs ?client=ID", &[], true);
        return http1::answer_and_close(&mut stream, &answer).await;
    };
    // `&closed=1`: also wait until the instance has no socket open (after a kill or a logout,
    // so the backend has let go of it before the adapter answers).
    let closed =
        url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "closed" && v == "1");
    // `&sent=N`: the frames the client wrote on its open sockets; wait until they were read.
    let sent: u64 = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "sent")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let target = service.read(|m| m.events.last_seq());
    let mut changed = service.channels.subscribe();
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    let (status, body) = loop {
        let open = service.channels.of(&instance);
        let live: Vec<&(u64, ChannelStatus)> = open
            .iter()
            .filter(|(socket, _)| closed || !service.is_silenced(*socket))
            .collect();
        let mut busy: Vec<String> = live
            .iter()
            .filter(|(_, s)| closed || s.handshaking || s.cursor < target || s.unacked > 0)
            .map(|(socket, s)| {
                format!(
                    "socket {socket}: {}delivered through event {} of {target}, {} unacknowledged",
                    if s.handshaking {
                        "before its init, "
                    } else {
                        ""
                    },
                    s.cursor,
                    s.unacked
                )
            })
            .collect();
        let read: u64 = live.iter().map(|(_, s)| s.received).sum();
        if read < sent && !live.is_empty() {
            busy.push(format!(
                "{read} of the {sent} frames the client sent were read"
            ));
        }
        let requests: u64 = service.channels.requests(&instance);
        let notifications: u64 = service.channels.notifications(&instance);
        if busy.is_empty() {
            break (
                200,
                json!({"requests": requests, "notifications": notifications, "sockets": open.len()}),
            );
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break (503, json!({"busy": busy})) },
            () = tokio::time::sleep_until(deadline) => break (504, json!({"busy": busy})),
        }
    };
    let body = body.to_string();
    let answer = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        if status == 200 { "OK" } else { "Busy" },
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

type Sink = futures::stream::SplitSink<WebSocketStream<TcpStream>, Message>;

/// One open twilsock socket after its `init` succeeded.
struct Session {
    service: Arc<Service>,
    socket: u64,
    instance: Option<InstanceId>,
    identity: String,
    /// The token governing the socket (kept to authorize its requests; never journaled).
    token: String,
    lease: Lease,
    /// The last event of the log this socket considered.
    cursor: u64,
    /// Subscribed Sync objects and the last event id each was sent.
    subscribed: BTreeMap<String, u64>,
    /// Notifications and updates written and not yet acknowledged.
    unacked: BTreeSet<String>,
    next_id: u64,
    requests: u64,
    notifications: u64,
    /// Frames read from the client.
    received: u64,
    /// Page numbers of the user's conversation map walks, by the key a page ended on.
    pages: BTreeMap<String, u32>,
}

/// Serves a twilsock connection whose upgrade was checked: answers the upgrade, then frames.
pub(crate) async fn session(
    mut stream: TcpStream,
    buf: Vec<u8>,
    accept: String,
    instance: Option<InstanceId>,
    service: Arc<Service>,
) {
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let ws =
        WebSocketStream::from_partially_read(stream, buf, Role::Server, Some(ws_config())).await;
    let (mut sink, mut stream) = ws.split();
    // Numbered from the upgrade on: a link silenced during the handshake is silent, and the
    // settle barrier counts the socket (busy) until its `init` is answered.
    let socket = service.next_socket();
    let _status = ChannelGuard {
        service: service.clone(),
        socket,
    };
    let mut received = 0;
    let handshake = |received: u64| ChannelStatus {
        instance: instance.clone(),
        handshaking: true,
        received,
        ..ChannelStatus::default()
    };
    service.channels.set(socket, handshake(received));
    // The first frame must be `init`.
    let init = loop {
        let frame = match stream.next().await {
            Some(Ok(Message::Binary(b))) => Frame::decode(&b),
            Some(Ok(Message::Text(t))) => Frame::decode(t.as_bytes()),
            Some(Err(e)) => return violated(&service, &instance, &e, &mut sink).await,
            Some(Ok(Message::Close(_))) | None => return,
            Some(Ok(_)) => continue,
        };
        received += 1;
        service.channels.set(socket, handshake(received));
        match frame {
            // A silenced link carries nothing, the init included.
            Ok(_) if service.is_silenced(socket) => continue,
            Ok(f) if f.str("method") == Some("init") => break f,
            Ok(_) => continue,
            Err(e) => return refuse_frame(&service, &instance, &e.to_string(), &mut sink).await,
        }
    };
    let id = init.str("id").unwrap_or_default().to_owned();
    let token = init.str("token").unwrap_or_default().to_owned();
    let fingerprint = (!token.is_empty()).then(|| TokenFingerprint::of(&token));
    let record = |status: u16, error: Option<String>| {
        service.recorder.record(
            instance.clone(),
            Fact::Request(RequestFact::event_channel(
                "init",
                PATH,
                None,
                status,
                error,
                fingerprint.clone(),
            )),
        );
    };
    let claims = match service.tokens.validate(&token) {
        Ok(c) => c,
        Err(e) => {
            record(401, Some(e.to_string()));
            let reply = Frame::new("reply").with("id", id).with(
                "status",
                json!({"code": 401, "status": "UNAUTHORIZED", "errorCode": e.code(), "description": e.to_string()}),
            );
            let _ = sink.send(Message::binary(reply.encode())).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    // The channel is open once `init` is answered: journaled (as the v1 handshake's 101) before
    // the answer leaves, with the cursor placed, so no event slips past.
    record(101, None);
    service.touch_identity(&claims.grants.identity);
    let cursor = service.read(|m| m.events.last_seq());
    service.recorder.record(
        instance.clone(),
        Fact::Connected {
            socket,
            since: None,
            token: fingerprint.clone(),
        },
    );
    // Dropped before `_status`: the close is journaled before the barrier stops counting it.
    let _open = OpenSocket {
        service: service.clone(),
        instance: instance.clone(),
        socket,
    };
    let mut s = Session {
        service: service.clone(),
        socket,
        instance: instance.clone(),
        identity: claims.grants.identity.clone(),
        token,
        lease: Lease::new(fingerprint, claims.exp),
        cursor,
        subscribed: BTreeMap::new(),
        unacked: BTreeSet::new(),
        next_id: 0,
        requests: 0,
        notifications: 0,
        received,
        pages: BTreeMap::new(),
    };
    let capabilities: Vec<Value> = init
        .header
        .get("capabilities")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|c| c.as_str() != Some("telemetry.v1"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let reply = Frame::new("reply")
        .with("id", id)
        .with("status", json!({"code": 200, "status": "OK"}))
        .with("continuation_token", format!("CT{socket}"))
        .with("capabilities", capabilities)
        .with(
            "offline_storage",
            json!({"ip_messaging": {"storage_id": format!("storage-{}", s.identity)}}),
        )
        .with("init_registrations", Value::Null)
        .with("debug_info", Value::Null);
    if sink.send(Message::binary(reply.encode())).await.is_err() {
        return;
    }
    s.report();
    let mut published = service.published();
    let clock = service.tokens.clock().clone();
    let mut deadline = Box::pin(clock.sleep_until(s.lease.next_deadline()));
    service.set_deadline(socket, Some(s.lease.next_deadline()));
    loop {
        let silent = service.is_silenced(socket);
        if !silent {
            match s.lease.notice(&service, socket, &instance) {
                Some(TokenNotice::Expired) => {
                    let close = Frame::new("close")
                        .with("id", s.fresh_id())
                        .with("status", json!({"code": 410, "status": "TOKEN_EXPIRED", "errorCode": 20104, "description": "Access Token expired or expiration date invalid"}));
                    let _ = sink.send(Message::binary(close.encode())).await;
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                Some(_) => {
                    let id = s.fresh_id();
                    s.unacked.insert(id.clone());
                    let update = Frame::new("client_update")
                        .with("id", id)
                        .with("client_update_type", "token_about_to_expire");
                    if sink.send(Message::binary(update.encode())).await.is_err() {
                        break;
                    }
                    deadline = Box::pin(clock.sleep_until(s.lease.next_deadline()));
                    service.set_deadline(socket, Some(s.lease.next_deadline()));
                }
                None => {}
            }
            if !s.deliver(&mut sink).await {
                break;
            }
        }
        s.report();
        tokio::select! {
            () = &mut deadline, if !silent => {}
            changed = published.changed() => if changed.is_err() { break },
            msg = stream.next() => {
                let frame = match msg {
                    Some(Ok(Message::Binary(b))) => Frame::decode(&b),
                    Some(Ok(Message::Text(t))) => Frame::decode(t.as_bytes()),
                    Some(Err(e)) => return violated(&service, &instance, &e, &mut sink).await,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                };
                s.received += 1;
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => return refuse_frame(&service, &instance, &e.to_string(), &mut sink).await,
                };
                if silent {
                    // A silenced link swallows everything but a token handed over, which the
                    // service still takes (as the v1 hub does); nothing is answered.
                    if frame.str("method") == Some("update") {
                        let token = frame.str("token").unwrap_or_default().to_owned();
                        if s.lease.accept(&service, socket, &instance, &s.identity, &token).is_ok() {
                            s.token = token;
                        }
                    }
                    continue;
                }
                match frame.str("method") {
                    Some("reply") => {
                        if let Some(id) = frame.str("id") {
                            s.unacked.remove(id);
                        }
                    }
                    Some("message") => {
                        s.requests += 1;
                        for out in route::upstream(&mut s, &frame) {
                            let sent = match out {
                                route::Out::Frame(f) => sink.send(Message::binary(f.encode())).await.is_ok(),
                                route::Out::Establish { correlation, objects } => {
                                    s.establish(correlation, objects, &mut sink).await
                                }
                                route::Out::Cancel { correlation, objects } => {
                                    s.cancel(correlation, objects, &mut sink).await
                                }
                            };
                            if !sent {
                                return;
                            }
                        }
                    }
                    Some("update") => {
                        let token = frame.str("token").unwrap_or_default().to_owned();
                        let reply = match s.lease.accept(&service, socket, &instance, &s.identity, &token) {
                            Ok(_) => {
                                s.token = token;
                                deadline = Box::pin(clock.sleep_until(s.lease.next_deadline()));
                                service.set_deadline(socket, Some(s.lease.next_deadline()));
                                json!({"code": 200, "status": "OK"})
                            }
                            Err(e) => json!({"code": 401, "status": "UNAUTHORIZED", "errorCode": e.code(), "description": e.to_string()}),
                        };
                        let reply = Frame::new("reply").with("id", frame.str("id").unwrap_or_default()).with("status", reply);
                        if sink.send(Message::binary(reply.encode())).await.is_err() {
                            break;
                        }
                    }
                    Some("close") => {
                        let _ = sink.send(Message::Close(None)).await;
                        break;
                    }
                    Some("put_notification_ctx" | "delete_notification_ctx") => {
                        let reply = Frame::new("reply")
                            .with("id", frame.str("id").unwrap_or_default())
                            .with("status", json!({"code": 200, "status": "OK"}));
                        if sink.send(Message::binary(reply.encode())).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Journals a WebSocket violation (an oversized message, bad UTF-8, a protocol error) as the v1
/// hub does and closes the socket with its code; a connection that merely went away ends quietly.
async fn violated(
    service: &Service,
    instance: &Option<InstanceId>,
    e: &tokio_tungstenite::tungstenite::Error,
    sink: &mut Sink,
) {
    if let Some((cause, code)) = super::hub::violation(e) {
        let mut fact = RefusedFact::new(Layer::WebSocket, cause, &e.to_string());
        fact.close_code = Some(code.into());
        service
            .recorder
            .record(instance.clone(), Fact::Refused(fact));
        let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code,
            reason: cause.name().into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
    }
}

/// Journals a frame that is not twilsock and closes the socket (1002).
async fn refuse_frame(
    service: &Service,
    instance: &Option<InstanceId>,
    detail: &str,
    sink: &mut Sink,
) {
    let mut fact = RefusedFact::new(Layer::WebSocket, Refusal::ProtocolViolation, detail);
    fact.close_code = Some(1002);
    service
        .recorder
        .record(instance.clone(), Fact::Refused(fact));
    let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Protocol,
        reason: "not a twilsock v3 frame".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

/// Removes a socket's status from the barrier's view when it ends.
struct ChannelGuard {
    service: Arc<Service>,
    socket: u64,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        self.service.channels.remove(self.socket);
    }
}

impl Session {
    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("TMkit{}_{}", self.socket, self.next_id)
    }

    /// Tells the settle barrier where this socket stands.
    fn report(&self) {
        self.service.channels.set(
            self.socket,
            ChannelStatus {
                instance: self.instance.clone(),
                cursor: self.cursor,
                unacked: self.unacked.len(),
                requests: self.requests,
                notifications: self.notifications,
                received: self.received,
                handshaking: false,
            },
        );
    }

    /// Writes every event published after the cursor that this identity receives, about an
    /// object the socket subscribed to; false once the socket is gone.
    async fn deliver(&mut self, sink: &mut Sink) -> bool {
        let due = self.service.read(|m| {
            let due = m.events.after(self.cursor, &self.identity);
            self.cursor = m.events.last_seq();
            due
        });
        for p in due {
            if !self.send_event(&p, sink).await {
                return false;
            }
        }
        true
    }

    /// Writes one event as its Sync notification if its object is subscribed and the event is
    /// newer than what the object was sent; false once the socket is gone.
    async fn send_event(&mut self, p: &crate::backend::model::Published, sink: &mut Sink) -> bool {
        let object = sync::object_of(&p.frame, &self.identity);
        let Some(last) = self.subscribed.get(&object).copied() else {
            return true;
        };
        if p.frame.seq <= last {
            return true;
        }
        let Some((message_type, payload)) = self
            .service
            .read(|m| sync::notification(m, &p.frame, &self.identity))
        else {
            return true;
        };
        self.subscribed.insert(object, p.frame.seq);
        let mut fact = frame_fact(p);
        fact.socket = Some(self.socket);
        if self.instance.is_none() {
            fact.token.clone_from(&self.lease.token);
        }
        self.service
            .recorder
            .record(self.instance.clone(), Fact::Frame(fact));
        let id = self.fresh_id();
        self.unacked.insert(id.clone());
        self.notifications += 1;
        let frame = Frame::new("notification")
            .with("id", id)
            .with("message_type", message_type)
            .payload(payload);
        sink.send(Message::binary(frame.encode())).await.is_ok()
    }

    /// Subscribes to `objects` (sid, type, last event id the client has): replays each one's
    /// events after that id, then confirms with `subscription_established`.
    async fn establish(
        &mut self,
        correlation: Value,
        objects: Vec<(String, String, u64)>,
        sink: &mut Sink,
    ) -> bool {
        let mut confirmed = Vec::new();
        for (object, kind, last) in objects {
            let known = self.subscribed.get(&object).copied();
            // A re-subscription keeps what was already sent: nothing twice.
            let from = known.map_or(last, |k| k.max(last));
            self.subscribed.insert(object.clone(), from);
            let replay = self.service.read(|m| m.events.after(from, &self.identity));
            let cursor = self.cursor;
            for p in replay.iter().filter(|p| p.frame.seq <= cursor) {
                if sync::object_of(&p.frame, &self.identity) == object
                    && !self.send_event(p, sink).await
                {
                    return false;
                }
            }
            let upto = self.subscribed.get(&object).copied().unwrap_or(from);
            confirmed.push(json!({"object_sid": object, "object_type": kind, "replay_status": "completed", "last_event_id": upto}));
        }
        let payload = json!({"event_type": "subscription_established", "correlation_id": correlation, "events": confirmed});
        self.notify_sync(payload, sink).await
    }

    /// Cancels subscriptions and confirms with `subscription_canceled`.
    async fn cancel(
        &mut self,
        correlation: Value,
        objects: Vec<(String, String, u64)>,
        sink: &mut Sink,
    ) -> bool {
        let mut canceled = Vec::new();
        for (object, kind, _) in objects {
            self.subscribed.remove(&object);
            canceled.push(json!({"object_sid": object, "object_type": kind}));
        }
        let payload = json!({"event_type": "subscription_canceled", "correlation_id": correlation, "events": canceled});
        self.notify_sync(payload, sink).await
    }

    /// A `twilio.sync.event` notification (not an event of the log: not journaled as a frame).
    async fn notify_sync(&mut self, payload: Value, sink: &mut Sink) -> bool {
        let id = self.fresh_id();
        self.unacked.insert(id.clone());
        let frame = Frame::new("notification")
            .with("id", id)
            .with("message_type", "twilio.sync.event")
            .payload(payload);
        sink.send(Message::binary(frame.encode())).await.is_ok()
    }
}
