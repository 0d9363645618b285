//! The reference client's wire side: REST calls with retry on virtual time, the token
//! generator, the event socket, and the activity ledger that tells the engine when it is quiet.
//!
//! Everything here returns results (typed: responses decode into the wire's resources, frames
//! into [`HubFrame`]s); nothing here knows the engine. Every background task the engine spawns is
//! counted in [`Activity`]; a task waiting on the virtual clock (a Retry-After or a backoff)
//! registers its deadline, so the engine can tell "waiting for time" (quiet) from "waiting for
//! the network" (busy) when it answers `settle`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::adapter::{CommandError, ErrorKind};
use crate::clock::{VirtualClock, VirtualInstant};
use crate::wire::resources::IssuedToken;
use crate::wire::{HubFrame, InstanceId};

/// An HTTP client for loopback: it never routes through a proxy from the environment.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client without proxies: {e}"))
}

/// Background work in flight, and which of it only waits for virtual time.
#[derive(Default)]
pub(crate) struct Activity {
    ledger: Mutex<Ledger>,
    nudge: Notify,
}

#[derive(Default)]
struct Ledger {
    inflight: usize,
    sleeping: Vec<VirtualInstant>,
}

impl Activity {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A task starts.
    pub(crate) fn begin(&self) {
        self.ledger().inflight += 1;
    }

    /// A task ended (its result has been handled).
    pub(crate) fn end(&self) {
        let mut l = self.ledger();
        l.inflight = l.inflight.saturating_sub(1);
    }

    /// Whether every task in flight is asleep until a deadline still in the future.
    pub(crate) fn is_quiet(&self, now: VirtualInstant) -> bool {
        let l = self.ledger();
        l.inflight == l.sleeping.iter().filter(|d| **d > now).count()
    }

    /// Forgets every task (they were aborted).
    pub(crate) fn reset(&self) {
        *self.ledger() = Ledger::default();
    }

    /// Resolves when a task went to sleep since the last call: quiescence may have changed.
    pub(crate) async fn nudged(&self) {
        self.nudge.notified().await;
    }

    /// Sleeps on the virtual clock, counted as quiet.
    pub(crate) async fn sleep(&self, clock: &VirtualClock, d: Duration) {
        let deadline = clock.now().plus(d);
        self.ledger().sleeping.push(deadline);
        self.nudge.notify_one();
        clock.sleep_until(deadline).await;
        let mut l = self.ledger();
        if let Some(i) = l.sleeping.iter().position(|x| *x == deadline) {
            l.sleeping.swap_remove(i);
        }
    }
}

/// A successful REST answer, decoded.
#[derive(Debug)]
pub(crate) struct Fetched<T> {
    pub(crate) body: T,
    /// The object revision the answer carried (`ETag`).
    pub(crate) revision: Option<u64>,
}

/// REST access for one client instance.
#[derive(Clone)]
pub(crate) struct Rest {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Arc<Mutex<String>>,
    pub(crate) instance: InstanceId,
    pub(crate) clock: VirtualClock,
    pub(crate) activity: Arc<Activity>,
}

/// How many times a gated (503) or failing call is retried before giving up.
const MAX_ATTEMPTS: u32 = 100;

impl Rest {
    /// The token the client presents now (a refresh replaces it).
    pub(crate) fn current_token(&self) -> String {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls `path` (absolute, like a `next_page_url`, or relative to the base) and decodes the
    /// answer as `T`, retrying gated and unreachable answers on virtual time.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: Option<Vec<(&str, String)>>,
    ) -> Result<Fetched<T>, CommandError> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut backoff = Duration::from_millis(500);
        for _ in 0..MAX_ATTEMPTS {
            let token = self.current_token();
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("X-Convo-Client", self.instance.as_str())
                .header("X-Twilio-Token", token);
            if let Some(form) = &form {
                req = req.form(form);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // Unreachable, refused, or cut before the answer (a half-open network):
                    // try again later, on virtual time.
                    tracing::debug!(%method, url = %url, error = %e, "request failed; retrying");
                    self.activity.sleep(&self.clock, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let status = resp.status();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim_matches('"').to_owned())
            };
            let revision = header("etag").and_then(|v| v.parse().ok());
            let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
            let bytes = resp.bytes().await.unwrap_or_default();
            if status.is_success() {
                // A bodiless answer (`204`) reads as `null`.
                let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
                return serde_json::from_slice(bytes)
                    .map(|body| Fetched { body, revision })
                    .map_err(|e| {
                        CommandError::new(
                            ErrorKind::Backend,
                            format!("{method} {url}: malformed answer: {e}"),
                        )
                    });
            }
            if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
            {
                let wait = retry_after.map_or(backoff, Duration::from_secs);
                self.activity.sleep(&self.clock, wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            let kind = match status {
                StatusCode::UNAUTHORIZED => ErrorKind::TokenRejected,
                StatusCode::NOT_FOUND => ErrorKind::NotFound,
                _ => ErrorKind::Backend,
            };
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(CommandError::new(
                kind,
                format!("{method} {url}: {status}: {message}"),
            ));
        }
        Err(CommandError::new(
            ErrorKind::Backend,
            format!("{method} {url}: gave up after {MAX_ATTEMPTS} attempts"),
        ))
    }
}

/// Fetches a token from the app's generator.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    token_url: &str,
    identity: &str,
    instance: &InstanceId,
    ttl: Duration,
) -> Result<IssuedToken, CommandError> {
    let resp = http
        .post(token_url)
        .header("X-Convo-Client", instance.as_str())
        .form(&[
            ("identity", identity.to_owned()),
            ("ttl", ttl.as_secs().to_string()),
        ])
        .send()
        .await
        .map_err(|e| {
            CommandError::new(
                ErrorKind::Backend,
                format!("token generator unreachable: {e}"),
            )
        })?;
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<IssuedToken>(&bytes) {
        Ok(issued) if status.is_success() => Ok(issued),
        _ => Err(CommandError::new(
            ErrorKind::TokenRejected,
            format!(
                "token generator answered {status}: {}",
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// What the event socket delivers.
pub(crate) enum SocketEvent {
    /// A frame, decoded.
    Frame(HubFrame),
    /// The socket closed.
    Closed,
}

/// Opens the event socket; hands every frame to `deliver` (which says whether to go on) and
/// returns the sender for outgoing frames (pings).
pub(crate) async fn connect_events(
    events_url: &str,
    token: &str,
    instance: &InstanceId,
    since: Option<u64>,
    deliver: impl Fn(SocketEvent) -> bool + Send + 'static,
) -> Result<mpsc::UnboundedSender<String>, CommandError> {
    let url = match since {
        Some(s) => format!("{events_url}?since={s}"),
        None => events_url.to_owned(),
    };
    let mut req = url.into_client_request().map_err(|e| {
        CommandError::new(ErrorKind::InvalidCommand, format!("bad events_url: {e}"))
    })?;
    let headers = req.headers_mut();
    let header = |v: &str| {
        v.parse()
            .map_err(|_| CommandError::new(ErrorKind::Internal, "header value is not ASCII"))
    };
    headers.insert("x-convo-client", header(instance.as_str())?);
    headers.insert("x-twilio-token", header(token)?);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .map_err(|e| {
            let kind = match &e {
                tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401 => {
                    ErrorKind::TokenRejected
                }
                _ => ErrorKind::Backend,
            };
            CommandError::new(kind, format!("event channel refused: {e}"))
        })?;
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        // However the socket ends (the hub closed it, a write failed, the client let go of
        // the sender), the engine hears `Closed` exactly once, after the last frame.
        let mut closing = false;
        loop {
            tokio::select! {
                out = out_rx.recv(), if !closing => match out {
                    Some(text) => if sink.send(Message::text(text)).await.is_err() { break },
                    None => {
                        // The client closes: say so, then read until the hub lets go, so the
                        // close is complete (the hub journaled it) when `Closed` is delivered.
                        closing = true;
                        if sink.close().await.is_err() { break }
                    }
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if closing { continue }
                        if let Ok(frame) = HubFrame::decode(t.as_str())
                            && !deliver(SocketEvent::Frame(frame))
                        {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => break,
                }
            }
        }
        deliver(SocketEvent::Closed);
    });
    Ok(out_tx)
}
