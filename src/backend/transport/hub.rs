//! The event hub: a WebSocket listener that delivers the model's event log to connected clients.
//!
//! A client connects to `/v1/events` with its token in `X-Twilio-Token`, its instance id in
//! `X-Convo-Client` and, when reconnecting, `?since=SEQ`. Its connection keeps a cursor into the
//! log, set before the handshake answer leaves (so no event slips past a fresh client): the
//! events after `SEQ`, or after the log's end. Woken whenever the log grows, it delivers what its
//! identity receives, journaling each frame before writing it. A `{"type":"ping","nonce":n}` is
//! answered with a pong after every event already in the log, which is how clients settle.
//!
//! The handshake is read within the limits of [`http1`] and checked here (RFC 6455 §4.2.1):
//! anything that is not a valid upgrade is answered with a Twilio error body and journaled as a
//! [`Fact::Refused`]. On an open channel, a protocol violation (an unmasked frame, a reserved
//! opcode or bits, a bad close), a text message that is not UTF-8 or a message over
//! [`MAX_CLIENT_MESSAGE`] is journaled the same way and the socket is closed with code 1002,
//! 1007 or 1009.

use std::sync::Arc;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::http1::{self, Head, Refused};
use crate::backend::fact::{
    Fact, FrameFact, Layer, Refusal, RefusedFact, RequestFact, TokenFact, TokenNotice, quoted,
};
use crate::backend::model::Published;
use crate::backend::service::Service;
use crate::backend::tokens::{EXPIRY_WARNING, TokenError};
use crate::clock::VirtualInstant;
use crate::secrets::TokenFingerprint;
use crate::wire::{Heartbeat, HubFrame, InstanceId, Ping, TOKEN_EXPIRED_CLOSE, UpdateToken};

/// Accepts connections until `stop` fires (then closes every connection it took, each journaled
/// as closed, before it returns) or the task is aborted.
pub(crate) async fn serve(listener: TcpListener, service: Arc<Service>, stop: super::Stop) {
    super::accept_until(listener, stop, move |stream| {
        connection(stream, service.clone())
    })
    .await;
}

/// The largest WebSocket message (and frame) a client may send: clients send only pings, so
/// anything larger is refused with close code 1009.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.2.1).
fn valid_key(key: &[u8]) -> bool {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| B64.contains(b))
        // The last character carries 2 bits of the 16th byte: the other 4 must be zero.
        && b"AQgw".contains(&key[21])
}

/// Checks that `head` is a WebSocket upgrade (RFC 6455 §4.2.1) and returns its key.
fn upgrade_key(head: &Head) -> Result<&[u8], Refused> {
    let bad = |status: u16, detail: &str| {
        Refused::new(Refusal::BadUpgrade, status, detail).with_line(Some(&head.line))
    };
    if head.method != "GET" {
        return Err(bad(405, "the event channel takes only a GET upgrade")
            .with_header("allow", "GET".into()));
    }
    if head.minor == 0 {
        return Err(bad(400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    if !head.lists("upgrade", "websocket") || !head.lists("connection", "upgrade") {
        return Err(bad(
            426,
            "not a WebSocket upgrade: `Upgrade: websocket` and `Connection: Upgrade` are required",
        )
        .with_header("upgrade", "websocket".into())
        .with_header("sec-websocket-version", "13".into()));
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(bad(426, "unsupported Sec-WebSocket-Version: 13 is served")
            .with_header("sec-websocket-version", "13".into()));
    }
    let mut keys = head.values("sec-websocket-key");
    match (keys.next(), keys.next()) {
        (Some(key), None) if valid_key(key.trim_ascii()) => Ok(key.trim_ascii()),
        _ => Err(bad(
            400,
            "Sec-WebSocket-Key must be given once, as base64 of 16 bytes",
        )),
    }
}

/// A WebSocket error the client caused: what to journal and the close code to send. `None` for
/// a connection that merely went away.
pub(super) fn violation(e: &WsError) -> Option<(Refusal, CloseCode)> {
    match e {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some((Refusal::ProtocolViolation, CloseCode::Protocol)),
        WsError::Utf8(_) => Some((Refusal::InvalidUtf8, CloseCode::Invalid)),
        WsError::Capacity(_) => Some((Refusal::MessageTooLarge, CloseCode::Size)),
        _ => None,
    }
}

async fn connection(mut stream: TcpStream, service: Arc<Service>) {
    let mut buf = BytesMut::new();
    let head = match http1::read_head(&mut stream, &mut buf).await {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(refused) => return super::refuse(&service, &mut stream, None, refused).await,
    };
    let target_path = head
        .target
        .split_once('?')
        .map_or(head.target.as_str(), |(p, _)| p);
    let target_query = head
        .target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .to_owned();
    if target_path == super::twilsock::SETTLE_PATH && head.method == "GET" {
        return super::twilsock::settle(stream, &target_query, service).await;
    }
    let twilsock = target_path == super::twilsock::PATH;
    let instance = head
        .header("x-convo-client")
        .map(|i| InstanceId::from(quoted(i)))
        .or_else(|| {
            twilsock
                .then(|| super::twilsock::instance_in(&target_query))
                .flatten()
        });
    let key = match upgrade_key(&head) {
        Ok(key) => key,
        Err(refused) => return super::refuse(&service, &mut stream, instance, refused).await,
    };
    let token = head.header("x-twilio-token");
    let fingerprint = token.map(TokenFingerprint::of);
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    let since = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "since")
        .and_then(|(_, v)| v.parse().ok());
    let record = |status: u16, error: Option<String>| {
        service.recorder.record(
            instance.clone(),
            Fact::Request(RequestFact::event_channel(
                "GET",
                path,
                (!query.is_empty()).then(|| query.to_owned()),
                status,
                error,
                fingerprint.clone(),
            )),
        );
    };
    let refuse = |status: u16, code: u32, message: &str| {
        http1::error_response(status, code, message, &[], true)
    };
    let decoded_query = percent_encoding::percent_decode_str(query).decode_utf8_lossy();
    if let Some(in_url) = crate::secrets::find_token(&decoded_query) {
        // A token in the URL ends up in logs along the way: refused, and journaled as such.
        let message = "an access token in the URL: tokens travel in the X-Twilio-Token header only";
        let mut fact = RequestFact::event_channel(
            "GET",
            path,
            Some(query.to_owned()),
            400,
            Some(message.into()),
            fingerprint
                .clone()
                .or_else(|| Some(TokenFingerprint::of(in_url))),
        );
        fact.token_in_url = true;
        service
            .recorder
            .record(instance.clone(), Fact::Request(fact));
        let answer = refuse(400, 20_001, message);
        return http1::answer_and_close(&mut stream, &answer).await;
    }
    if twilsock {
        // The twilsock face: its token comes in the `init` frame, not in a header.
        let accept = derive_accept_key(key);
        return super::twilsock::session(stream, buf.to_vec(), accept, instance, service).await;
    }
    if path != "/v1/events" {
        record(404, Some("no such event channel".into()));
        let answer = refuse(404, 20_404, "no such event channel");
        return http1::answer_and_close(&mut stream, &answer).await;
    }
    let claims = match token.map(|t| service.tokens.validate(t)) {
        None => {
            record(401, Some("missing X-Twilio-Token".into()));
            let answer = refuse(401, 20_101, "missing X-Twilio-Token");
            return http1::answer_and_close(&mut stream, &answer).await;
        }
        Some(Err(e)) => {
            record(401, Some(e.to_string()));
            let answer = refuse(401, e.code(), &e.to_string());
            return http1::answer_and_close(&mut stream, &answer).await;
        }
        Some(Ok(claims)) => claims,
    };
    let mut published = service.published();
    let socket = service.next_socket();
    // Journaled before the answer leaves, so it precedes anything the client does once it
    // knows it is connected; the cursor is placed before the answer leaves too, so no event
    // can slip past the client.
    record(101, None);
    service.touch_identity(&claims.grants.identity);
    let identity = claims.grants.identity;
    let mut lease = Lease::new(fingerprint.clone(), claims.exp);
    let mut cursor = since.unwrap_or_else(|| service.read(|m| m.events.last_seq()));
    let accept = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key)
    );
    if stream.write_all(accept.as_bytes()).await.is_err() {
        return;
    }
    let ws =
        WebSocketStream::from_partially_read(stream, buf.to_vec(), Role::Server, Some(ws_config()))
            .await;
    service.recorder.record(
        instance.clone(),
        Fact::Connected {
            socket,
            since,
            token: fingerprint.clone(),
        },
    );

    // Frames of a connection that did not name its instance carry its token instead.
    let mut anonymous = instance.is_none().then_some(fingerprint).flatten();
    let (mut sink, mut stream) = ws.split();
    // However the connection ends (the client, a violation, an outage cutting it), its close is
    // journaled; declared after the socket's halves, so it is dropped (journaled) before they
    // are (closed): the close is in the journal before the client can see it.
    let _open = OpenSocket {
        service: service.clone(),
        instance: instance.clone(),
        socket,
    };
    // The first frame says where this socket starts in the event log: a client that has
    // received nothing yet resumes from here after a reconnect.
    let welcome = HubFrame::Welcome {
        seq: cursor,
        socket,
    };
    if sink.send(Message::text(welcome.encode())).await.is_err() {
        return;
    }
    let clock = service.tokens.clock().clone();
    let mut deadline = Box::pin(clock.sleep_until(lease.next_deadline()));
    service.set_deadline(socket, Some(lease.next_deadline()));
    'socket: loop {
        // Deliver everything published so far, then wait for more or for the client. A silenced
        // socket delivers nothing, ever again (no token notices either).
        let silent = service.is_silenced(socket);
        if !silent {
            match lease.due(&service, socket, &instance, &mut sink).await {
                Due::Nothing => {}
                Due::Sent => {
                    deadline = Box::pin(clock.sleep_until(lease.next_deadline()));
                    service.set_deadline(socket, Some(lease.next_deadline()));
                }
                Due::Closed => break,
            }
            if !send_due(
                &service,
                socket,
                (&instance, &anonymous),
                &identity,
                &mut cursor,
                &mut sink,
            )
            .await
            {
                break;
            }
        }
        tokio::select! {
            () = &mut deadline, if !silent => {}
            changed = published.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    // The `type` field says which: a tagged struct does not check its tag.
                    let kind = serde_json::from_str::<serde_json::Value>(t.as_str())
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned));
                    if kind.as_deref() == Some("heartbeat")
                        && let Ok(beat) = serde_json::from_str::<Heartbeat>(t.as_str())
                    {
                        // A live link echoes heartbeats; a silenced one swallows them.
                        if service.is_silenced(socket) {
                            continue;
                        }
                        let echo = HubFrame::Heartbeat { nonce: beat.nonce }.encode();
                        if sink.send(Message::text(echo)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    if kind.as_deref() == Some("update_token")
                        && let Ok(update) = serde_json::from_str::<UpdateToken>(t.as_str())
                    {
                        let answer = lease.update(&service, socket, &instance, &identity, &update.token);
                        if matches!(answer, HubFrame::TokenUpdated { .. }) {
                            anonymous = instance.is_none().then(|| lease.token.clone()).flatten();
                            deadline = Box::pin(clock.sleep_until(lease.next_deadline()));
                            service.set_deadline(socket, Some(lease.next_deadline()));
                        }
                        if service.is_silenced(socket) {
                            continue;
                        }
                        if sink.send(Message::text(answer.encode())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    let Ok(ping) = serde_json::from_str::<Ping>(t.as_str()) else { continue };
                    if kind.as_deref() != Some("ping") {
                        continue;
                    }
                    // The pong goes after every token notice now due and every event already
                    // published (on a silenced socket it is the settle barrier alone: nothing
                    // else will come).
                    if !service.is_silenced(socket) {
                        match lease.due(&service, socket, &instance, &mut sink).await {
                            Due::Nothing => {}
                            Due::Sent => {
                                deadline = Box::pin(clock.sleep_until(lease.next_deadline()));
                                service.set_deadline(socket, Some(lease.next_deadline()));
                            }
                            Due::Closed => break 'socket,
                        }
                        if !send_due(&service, socket, (&instance, &anonymous), &identity, &mut cursor, &mut sink).await {
                            break 'socket;
                        }
                    }
                    let pong = HubFrame::Pong { nonce: ping.nonce }.encode();
                    if sink.send(Message::text(pong)).await.is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    if let Some((cause, code)) = violation(&e) {
                        let mut fact = RefusedFact::new(Layer::WebSocket, cause, &e.to_string());
                        fact.close_code = Some(code.into());
                        service.recorder.record(instance.clone(), Fact::Refused(fact));
                        let close = CloseFrame { code, reason: cause.name().into() };
                        let _ = sink.send(Message::Close(Some(close))).await;
                    }
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The token that governs an open channel: when to warn, when to close.
pub(super) struct Lease {
    pub(super) token: Option<TokenFingerprint>,
    expires_at: VirtualInstant,
    warned: bool,
}

/// What [`Lease::due`] did.
enum Due {
    Nothing,
    /// A warning went out.
    Sent,
    /// The token expired: the socket is closed.
    Closed,
}

impl Lease {
    pub(super) fn new(token: Option<TokenFingerprint>, exp: u64) -> Self {
        Self {
            token,
            expires_at: VirtualInstant::from_unix_secs(exp),
            warned: false,
        }
    }

    fn warn_at(&self) -> VirtualInstant {
        VirtualInstant::from_millis(
            self.expires_at
                .as_millis()
                .saturating_sub(EXPIRY_WARNING.as_millis() as u64),
        )
    }

    /// The next instant something is due: the warning, then the expiry.
    pub(super) fn next_deadline(&self) -> VirtualInstant {
        if self.warned {
            self.expires_at
        } else {
            self.warn_at()
        }
    }

    fn fact(&self, socket: u64, notice: TokenNotice) -> Fact {
        Fact::Token(TokenFact {
            socket,
            notice,
            token: self
                .token
                .clone()
                .unwrap_or_else(|| TokenFingerprint::of("")),
            expires_at: self.expires_at,
            code: None,
        })
    }

    /// Journals what the virtual clock made due and returns it: `AboutToExpire` once per
    /// token, three minutes before its expiry; `Expired` at the expiry. The caller writes it in
    /// its channel's dialect.
    pub(super) fn notice(
        &mut self,
        service: &Service,
        socket: u64,
        instance: &Option<InstanceId>,
    ) -> Option<TokenNotice> {
        let now = service.tokens.clock().now();
        if now >= self.expires_at {
            service
                .recorder
                .record(instance.clone(), self.fact(socket, TokenNotice::Expired));
            return Some(TokenNotice::Expired);
        }
        if !self.warned && now >= self.warn_at() {
            self.warned = true;
            service.recorder.record(
                instance.clone(),
                self.fact(socket, TokenNotice::AboutToExpire),
            );
            return Some(TokenNotice::AboutToExpire);
        }
        None
    }

    /// Sends what the virtual clock made due: `token_about_to_expire` once per token, three
    /// minutes before its expiry; at the expiry, `token_expired` and a close with code 4410.
    /// Each is journaled before it is written.
    async fn due(
        &mut self,
        service: &Service,
        socket: u64,
        instance: &Option<InstanceId>,
        sink: &mut Sink,
    ) -> Due {
        match self.notice(service, socket, instance) {
            Some(TokenNotice::Expired) => {
                let _ = sink
                    .send(Message::text(HubFrame::TokenExpired.encode()))
                    .await;
                let close = CloseFrame {
                    code: CloseCode::from(TOKEN_EXPIRED_CLOSE),
                    reason: "token expired (20104)".into(),
                };
                let _ = sink.send(Message::Close(Some(close))).await;
                Due::Closed
            }
            Some(_) => {
                let frame = HubFrame::TokenAboutToExpire {
                    expires_at: self.expires_at.rfc3339(),
                };
                if sink.send(Message::text(frame.encode())).await.is_err() {
                    return Due::Closed;
                }
                Due::Sent
            }
            None => Due::Nothing,
        }
    }

    /// Takes a token handed over on the open channel, if the service accepts it and it is the
    /// channel's identity's; journals either way and returns the new expiry or the refusal.
    pub(super) fn accept(
        &mut self,
        service: &Service,
        socket: u64,
        instance: &Option<InstanceId>,
        identity: &str,
        token: &str,
    ) -> Result<VirtualInstant, TokenError> {
        let fingerprint = TokenFingerprint::of(token);
        let checked = service.tokens.validate(token).and_then(|c| {
            if c.grants.identity == identity {
                Ok(c)
            } else {
                Err(TokenError::OtherIdentity)
            }
        });
        match checked {
            Ok(claims) => {
                *self = Self::new(Some(fingerprint), claims.exp);
                service
                    .recorder
                    .record(instance.clone(), self.fact(socket, TokenNotice::Updated));
                Ok(self.expires_at)
            }
            Err(e) => {
                service.recorder.record(
                    instance.clone(),
                    Fact::Token(TokenFact {
                        socket,
                        notice: TokenNotice::Rejected,
                        token: fingerprint,
                        expires_at: self.expires_at,
                        code: Some(e.code()),
                    }),
                );
                Err(e)
            }
        }
    }

    /// [`Lease::accept`] answered in the v1 channel's frames.
    fn update(
        &mut self,
        service: &Service,
        socket: u64,
        instance: &Option<InstanceId>,
        identity: &str,
        token: &str,
    ) -> HubFrame {
        match self.accept(service, socket, instance, identity, token) {
            Ok(at) => HubFrame::TokenUpdated {
                expires_at: at.rfc3339(),
            },
            Err(e) => HubFrame::TokenRejected {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

/// An open event socket: journals its close when dropped, however the connection ended.
pub(super) struct OpenSocket {
    pub(super) service: Arc<Service>,
    pub(super) instance: Option<InstanceId>,
    pub(super) socket: u64,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.service.set_deadline(self.socket, None);
        self.service.recorder.record(
            self.instance.take(),
            Fact::Disconnected {
                socket: self.socket,
            },
        );
    }
}

type Sink = futures::stream::SplitSink<tokio_tungstenite::WebSocketStream<TcpStream>, Message>;

/// Journals and writes, one by one, every event published after `cursor` that `identity`
/// receives (a frame is journaled right before the socket takes it); false once the socket is
/// gone.
async fn send_due(
    service: &Service,
    socket: u64,
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
        fact.socket = Some(socket);
        fact.token.clone_from(token);
        service.recorder.record(instance.clone(), Fact::Frame(fact));
        if sink.send(Message::text(p.text.clone())).await.is_err() {
            return false;
        }
    }
    true
}

pub(super) fn frame_fact(p: &Published) -> FrameFact {
    FrameFact {
        event_seq: p.frame.seq,
        event: p.frame.kind,
        target: p.frame.target(),
        revision: p.frame.revision,
        attributes: p.frame.attributes(),
        index: p.frame.index,
        token: None,
        socket: None,
    }
}
