//! `convo-tck backend`: the mock service on its own, for developing an adapter by hand.
//!
//! [`run`] starts a [`Backend`] on loopback (seeded, with a fixture loaded and optionally a long
//! list for `alice`), prints where it lives (REST, token, events and control URLs, the account
//! sid and the auth token), and serves until SIGINT or SIGTERM; then it closes every listener and
//! returns. Beside the service it serves a small **control API** (HTTP/1.1, JSON, on
//! `127.0.0.1` only) exposing the controls a scenario uses, so a person can put their own
//! client in a failing scenario's situation:
//!
//! | route | body | does |
//! |---|---|---|
//! | `GET /` | | lists the routes |
//! | `GET /state` | | conversations, users, gates, holds, events published, clock |
//! | `GET /journal?since=N` | | the journal after entry `N` (tokens redacted) |
//! | `POST /gates/close` | a [`Gate`], e.g. `{"gate":"endpoint","endpoint":"user_conversations"}` | 503 + Retry-After on what it covers |
//! | `POST /gates/open` | a [`Gate`] | serves it again |
//! | `POST /gates/retry-after` | `{"secs":N}` | the Retry-After of gated answers |
//! | `POST /hold` | `{"object":O}` | holds every event about `O` |
//! | `POST /release` | `{"object":O}` | publishes what was held about `O` |
//! | `POST /external-update` | `{"object":O,"attributes":{...}}` | another writer sets `O`'s attributes |
//! | `POST /messages` | `{"conversation":C,"author":A,"body":B}` | `A` posts a message |
//! | `POST /conversations/remove` | `{"conversation":C}` | removes it (`conversation_removed`) |
//! | `POST /conversations/restore` | `{"conversation":C}` | brings it back with its sid |
//! | `POST /clock/advance` | `{"ms":N}` or `{"secs":N}` | moves virtual time (tokens expire on it) |
//! | `POST /outage` | `{"outage":"refuse"\|"drop"\|"silence"}` | breaks the network (refused, half-open, silent sockets) |
//! | `POST /restore` | | mends it: both ports serve again on their numbers |
//!
//! An object `O` is `user:IDENTITY`, a conversation's unique name or its `CH...` sid; a
//! conversation `C` is a unique name or a sid. Every answer is JSON: `{"ok":true,...}`, or
//! `{"status":S,"error":"..."}` with 400 (bad input), 404 (no such route, object or
//! conversation), 405 (wrong method) or 413 (body over [`MAX_CONTROL_BODY`]).
//!
//! Must not import: the adapter protocol, the reference client, the checks, the rules, the
//! harness, the scenario runner, the properties, the report, the mutants, stress (it is the
//! backend and its journal, nothing that drives a client).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::backend::fixture::{Fixture, FixtureError};
use crate::backend::{Backend, BackendError, Gate, ListAction};
use crate::clock::VirtualClock;
use crate::journal::{HarnessEntry, Journal};
use crate::secrets::Secrets;
use crate::wire::{ConversationSid, ObjectKey};

/// The largest control request body read (413 past it).
pub const MAX_CONTROL_BODY: usize = 64 * 1024;

/// The most conversations `--conversations` seeds.
pub const MAX_SEEDED: usize = 100_000;

/// The participants of the conversations `--conversations` seeds.
const SEEDED_FOR: &str = "alice";

/// `convo-tck backend`'s options.
#[derive(Clone, Debug, clap::Args)]
pub struct BackendArgs {
    /// Port of the control API on 127.0.0.1 (0: any free port). The REST and event ports are
    /// always picked by the system.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Embedded fixture to load (`basic`: alice, bob and three conversations).
    #[arg(long, default_value = "basic")]
    pub fixture: String,
    /// Seed for sids.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also seed this many conversations for alice (`seeded-0`, `seeded-1`, ...): a long list.
    #[arg(long, default_value_t = 0, value_parser = seeded_count)]
    pub conversations: usize,
    /// Print the URLs and the credential as one JSON object instead of KEY=VALUE lines.
    #[arg(long)]
    pub json: bool,
}

impl Default for BackendArgs {
    fn default() -> Self {
        Self {
            port: 0,
            fixture: "basic".into(),
            seed: 1,
            conversations: 0,
            json: false,
        }
    }
}

fn seeded_count(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a count"))?;
    if n > MAX_SEEDED {
        return Err(format!("at most {MAX_SEEDED}"));
    }
    Ok(n)
}

/// The standalone backend could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The fixture is unknown or invalid.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The mock service could not start.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The control API's port could not be bound.
    #[error("cannot bind the control API to 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        source: io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot listen for SIGINT/SIGTERM: {0}")]
    Signal(io::Error),
}

/// Where the standalone backend lives, as it prints it on start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    /// Base URL of the REST API.
    pub rest_url: String,
    /// The token generator (`POST`, form fields `identity` and `ttl`).
    pub token_url: String,
    /// The event channel (WebSocket).
    pub events_url: String,
    /// The twilsock face (WebSocket; for a stack that speaks twilsock v3).
    pub twilsock_url: String,
    /// The control API.
    pub control_url: String,
    /// The account sid.
    pub account_sid: String,
    /// The server-side credential that goes with the account sid.
    pub auth_token: String,
    /// The fixture loaded.
    pub fixture: String,
    /// The seed of the sids.
    pub seed: u64,
    /// A ready-to-use command that mints a token for alice.
    pub example: String,
}

impl Endpoints {
    /// The start banner: `KEY=VALUE` lines (or one JSON object), then the example.
    pub fn banner(&self, as_json: bool) -> String {
        if as_json {
            return format!("{}\n", json!(self));
        }
        let mut out = String::new();
        for (key, value) in [
            ("REST_URL", &self.rest_url),
            ("TOKEN_URL", &self.token_url),
            ("EVENTS_URL", &self.events_url),
            ("TWILSOCK_URL", &self.twilsock_url),
            ("CONTROL_URL", &self.control_url),
            ("ACCOUNT_SID", &self.account_sid),
            ("AUTH_TOKEN", &self.auth_token),
            ("FIXTURE", &self.fixture),
        ] {
            let _ = writeln!(out, "{key}={value}");
        }
        let _ = writeln!(out, "SEED={}", self.seed);
        let _ = writeln!(out, "EXAMPLE={}", self.example);
        out
    }
}

/// A started standalone backend, not yet serving its control API.
pub struct Standalone {
    controls: Arc<Controls>,
    listener: TcpListener,
    endpoints: Endpoints,
}

/// What the control API works on.
struct Controls {
    backend: Backend,
    journal: Journal,
    clock: VirtualClock,
}

impl Standalone {
    /// Starts the backend, loads the fixture, seeds the list and binds the control port.
    pub async fn start(args: &BackendArgs) -> Result<Self, StandaloneError> {
        let fixture = Fixture::named(&args.fixture)?;
        let clock = VirtualClock::new();
        let secrets = Secrets::default();
        let journal = Journal::new(clock.clone(), secrets.clone());
        let backend = Backend::builder(clock.clone())
            .record_to(Arc::new(journal.clone()))
            .secrets(secrets)
            .seed(args.seed)
            .start()
            .await?;
        backend.load_fixture(&args.fixture, &fixture);
        if args.conversations > 0 {
            backend.seed_conversations("seeded", args.conversations, &[SEEDED_FOR.to_owned()]);
        }
        let listener = TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|source| StandaloneError::Bind {
                port: args.port,
                source,
            })?;
        let control: SocketAddr =
            listener
                .local_addr()
                .map_err(|source| StandaloneError::Bind {
                    port: args.port,
                    source,
                })?;
        let token_url = backend.token_url();
        let endpoints = Endpoints {
            rest_url: backend.rest_url().to_owned(),
            example: format!("curl -X POST {token_url} -d identity=alice -d ttl=3600"),
            token_url,
            events_url: backend.events_url().to_owned(),
            twilsock_url: backend.twilsock_url(),
            control_url: format!("http://{control}"),
            account_sid: backend.account_sid().to_owned(),
            auth_token: backend.auth_token().to_owned(),
            fixture: args.fixture.clone(),
            seed: args.seed,
        };
        Ok(Self {
            controls: Arc::new(Controls {
                backend,
                journal,
                clock,
            }),
            listener,
            endpoints,
        })
    }

    /// Where it lives.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Serves the control API until `shutdown` completes, then closes every listener (the
    /// control API's, the REST front door's, the event hub's) and returns.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        let Self {
            controls, listener, ..
        } = self;
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let controls = controls.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let controls = controls.clone();
                            async move { Ok::<_, Infallible>(controls.handle(req).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Reap finished connections as they end.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
        // The last reference: dropping it stops the REST front door and the event hub.
        drop(controls);
    }
}

/// Runs `convo-tck backend`: starts, prints the banner on stdout, serves until SIGINT or
/// SIGTERM, closes its listeners and says so on stderr.
pub async fn run(args: BackendArgs) -> Result<(), StandaloneError> {
    // The handlers are in place before the banner: whoever reads it may signal at once.
    let signal = interrupted().map_err(StandaloneError::Signal)?;
    let standalone = Standalone::start(&args).await?;
    let banner = standalone.endpoints().banner(args.json);
    {
        // A reader that went away is no reason to stop serving.
        let mut stdout = io::stdout().lock();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
    }
    if !args.json {
        say("serving on 127.0.0.1 until interrupted (Ctrl-C or SIGTERM)");
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        let name = signal.await;
        let _ = tx.send(name);
    });
    let mut name = "a signal";
    standalone
        .serve_until(async {
            if let Ok(n) = rx.await {
                name = n;
            }
        })
        .await;
    waiter.abort();
    say(&format!(
        "convo-tck backend: stopped on {name}; listeners closed"
    ));
    Ok(())
}

/// One line on stderr (its errors ignored: stderr is the last resort).
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// A future that completes with the signal's name on SIGINT or SIGTERM (Ctrl-C elsewhere).
fn interrupted() -> io::Result<impl Future<Output = &'static str> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        })
    }
}

/// A control's refusal: status and message.
struct Refusal {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn missing(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<BackendError> for Refusal {
    fn from(e: BackendError) -> Self {
        Self::missing(e.to_string())
    }
}

type Answer = Result<Value, Refusal>;

/// The routes, for `GET /` and 404 answers: (method, path, what it does).
const ROUTES: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/state",
        "conversations, users, gates, holds, events published, clock",
    ),
    (
        "GET",
        "/journal",
        "the journal so far (?since=N: after entry N), tokens redacted",
    ),
    (
        "POST",
        "/gates/close",
        "close a gate: {\"gate\":\"endpoint\",\"endpoint\":\"user_conversations\"}",
    ),
    ("POST", "/gates/open", "open a gate (the same body)"),
    (
        "POST",
        "/gates/retry-after",
        "Retry-After of gated answers: {\"secs\":N}",
    ),
    (
        "POST",
        "/hold",
        "hold an object's events: {\"object\":\"user:alice\"|NAME|SID}",
    ),
    (
        "POST",
        "/release",
        "publish what was held: {\"object\":...}",
    ),
    (
        "POST",
        "/external-update",
        "another writer's change: {\"object\":...,\"attributes\":{...}}",
    ),
    (
        "POST",
        "/messages",
        "post as another user: {\"conversation\":NAME|SID,\"author\":\"bob\",\"body\":\"...\"}",
    ),
    (
        "POST",
        "/conversations/remove",
        "remove a conversation: {\"conversation\":NAME|SID}",
    ),
    (
        "POST",
        "/conversations/restore",
        "restore it with its sid: {\"conversation\":NAME|SID}",
    ),
    (
        "POST",
        "/clock/advance",
        "advance virtual time: {\"ms\":N} or {\"secs\":N}",
    ),
    (
        "POST",
        "/outage",
        "break the network: {\"outage\":\"refuse\"|\"drop\"|\"silence\"}",
    ),
    ("POST", "/restore", "mend the network (same ports)"),
];

/// The longest virtual time one advance may move (ten years).
const MAX_ADVANCE: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageBody {
    outage: crate::backend::Outage,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectBody {
    object: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    object: String,
    attributes: Value,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    conversation: String,
    author: String,
    body: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationBody {
    conversation: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    ms: Option<u64>,
    secs: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryAfterBody {
    secs: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    since: Option<u64>,
}

/// `s` cut to 80 characters for quoting.
fn cut(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::bad("expected a JSON object as the request body"));
    }
    serde_json::from_slice(body).map_err(|e| Refusal::bad(format!("invalid body: {e}")))
}

fn respond(status: StatusCode, body: &Value, allow: Option<&'static str>) -> Response<Full<Bytes>> {
    let mut text = body.to_string();
    text.push('\n');
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json");
    if let Some(allow) = allow {
        builder = builder.header(ALLOW, allow);
    }
    builder
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

impl Controls {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let body = match Limited::new(req.into_body(), MAX_CONTROL_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({"status": 413, "error": format!("the body is over {MAX_CONTROL_BODY} bytes")}),
                    None,
                );
            }
        };
        match self.route(&method, &path, &query, &body).await {
            Ok(mut value) => {
                if let Value::Object(map) = &mut value {
                    map.insert("ok".into(), Value::Bool(true));
                }
                respond(StatusCode::OK, &value, None)
            }
            Err(r) => respond(
                r.status,
                &json!({"status": r.status.as_u16(), "error": r.message}),
                r.allow,
            ),
        }
    }

    async fn route(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Answer {
        let Some(&(expected, _, _)) = ROUTES
            .iter()
            .find(|(_, p, _)| *p == path)
            .or_else(|| (path == "/").then_some(&("GET", "/", "")))
        else {
            return Err(Refusal::missing(format!(
                "no control `{}`; GET / lists them",
                cut(path)
            )));
        };
        if method.as_str() != expected {
            let mut r = Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{path} takes {expected}, not {method}"),
            );
            r.allow = Some(expected);
            return Err(r);
        }
        match path {
            "/" => Ok(json!({
                "routes": ROUTES
                    .iter()
                    .map(|(m, p, d)| json!({"method": m, "path": p, "does": d}))
                    .collect::<Vec<_>>()
            })),
            "/state" => Ok(json!(self.backend.state())),
            "/journal" => {
                let q: JournalQuery = serde_urlencoded::from_str(query)
                    .map_err(|e| Refusal::bad(format!("invalid query: {e}")))?;
                let entries = self.journal.since(q.since.unwrap_or(0));
                Ok(json!({"last_seq": self.journal.last_seq(), "entries": entries}))
            }
            "/gates/close" => {
                let gate: Gate = parse(body)?;
                self.backend.close_gate(gate.clone());
                Ok(json!({"closed": gate, "what": gate.to_string()}))
            }
            "/gates/open" => {
                let gate: Gate = parse(body)?;
                let was = self.backend.is_gated(&gate);
                self.backend.open_gate(&gate);
                Ok(json!({"opened": gate, "was_closed": was}))
            }
            "/gates/retry-after" => {
                let b: RetryAfterBody = parse(body)?;
                self.backend.set_retry_after(b.secs);
                Ok(json!({"retry_after_secs": b.secs}))
            }
            "/hold" => {
                let b: ObjectBody = parse(body)?;
                let key = self.object(&b.object)?;
                self.backend.hold(key.clone());
                Ok(json!({"holding": key}))
            }
            "/release" => {
                let b: ObjectBody = parse(body)?;
                let key = self.object(&b.object)?;
                let events = self.backend.release(&key);
                Ok(json!({"released": key, "events": events}))
            }
            "/external-update" => {
                let b: UpdateBody = parse(body)?;
                if !b.attributes.is_object() {
                    return Err(Refusal::bad("`attributes` must be a JSON object"));
                }
                let key = self.object(&b.object)?;
                let revision = self.backend.external_update(&key, b.attributes)?;
                Ok(json!({"object": key, "revision": revision}))
            }
            "/messages" => {
                let b: MessageBody = parse(body)?;
                if b.author.is_empty() {
                    return Err(Refusal::bad("`author` must not be empty"));
                }
                let sid = self.conversation(&b.conversation)?;
                let index = self.backend.post_message(&sid, &b.author, &b.body)?;
                Ok(json!({"conversation": sid, "index": index}))
            }
            "/conversations/remove" | "/conversations/restore" => {
                let b: ConversationBody = parse(body)?;
                let name = self.conversation_name(&b.conversation)?;
                let action = if path.ends_with("remove") {
                    ListAction::Remove { name: name.clone() }
                } else {
                    ListAction::Restore { name: name.clone() }
                };
                self.backend
                    .apply(action)
                    .map_err(|e| Refusal::bad(e.to_string()))?;
                Ok(json!({"conversation": name}))
            }
            "/clock/advance" => {
                let b: AdvanceBody = parse(body)?;
                let d = match (b.ms, b.secs) {
                    (Some(ms), None) => Duration::from_millis(ms),
                    (None, Some(s)) => Duration::from_secs(s),
                    _ => return Err(Refusal::bad("give exactly one of `ms` and `secs`")),
                };
                if d > MAX_ADVANCE {
                    return Err(Refusal::bad("at most ten years at once"));
                }
                self.clock.advance(d);
                self.journal.note(
                    None,
                    HarnessEntry::TimePassed {
                        ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                    },
                );
                let now = self.clock.now();
                Ok(json!({"now": now, "now_rfc3339": now.rfc3339()}))
            }
            "/outage" => {
                let b: OutageBody = parse(body)?;
                self.backend
                    .outage(b.outage)
                    .await
                    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                Ok(json!({"outage": b.outage, "what": b.outage.to_string()}))
            }
            "/restore" => {
                let was = self.backend.current_outage().await;
                self.backend
                    .restore()
                    .await
                    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                Ok(json!({"restored": was}))
            }
            _ => Err(Refusal::missing("no such control")),
        }
    }

    /// An object: `user:IDENTITY`, a conversation's unique name, or its sid.
    fn object(&self, s: &str) -> Result<ObjectKey, Refusal> {
        if let Some(identity) = s.strip_prefix("user:") {
            let key = ObjectKey::User(identity.to_owned());
            return match self.backend.attributes(&key) {
                Some(_) => Ok(key),
                None => Err(Refusal::missing(format!("no user `{identity}`"))),
            };
        }
        Ok(ObjectKey::Conversation(self.conversation(s)?))
    }

    /// A live conversation by unique name or sid.
    fn conversation(&self, s: &str) -> Result<ConversationSid, Refusal> {
        if let Ok(sid) = self.backend.conversation_sid(s) {
            return Ok(sid);
        }
        let sid = ConversationSid::new(s);
        if self
            .backend
            .attributes(&ObjectKey::Conversation(sid.clone()))
            .is_some()
        {
            return Ok(sid);
        }
        Err(Refusal::missing(format!(
            "no conversation named `{s}` or with that sid (`user:IDENTITY` names a user)"
        )))
    }

    /// The unique name of a conversation (removed ones too) given by name or sid.
    fn conversation_name(&self, s: &str) -> Result<String, Refusal> {
        if self.backend.conversation_sid(s).is_ok() {
            return Ok(s.to_owned());
        }
        let state = self.backend.state();
        state
            .conversations
            .iter()
            .chain(&state.removed_conversations)
            .find(|c| c.sid.as_str() == s)
            .and_then(|c| c.unique_name.clone())
            .ok_or_else(|| {
                Refusal::missing(format!("no conversation named `{s}` or with that sid"))
            })
    }
}
