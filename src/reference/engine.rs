//! The reference client's engine: one task that owns all client state.
//!
//! It takes the harness's requests and the results of its own background tasks (REST calls,
//! event frames) as [`Input`]s, one at a time, so its state needs no locks. It follows the
//! documented lifecycle: operations wait for synchronization, updates complete on their Updated
//! event, older snapshots never replace newer ones. [`Fault`]s switch single behaviours off.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Config;
use super::fault::Fault;
use super::net::{self, Activity, Rest, RestOk};
use crate::adapter::{
    AdapterEvent, ClientSyncStatus, Command, CommandError, ConnectionState, ConversationSyncStatus,
    ErrorKind, Inspection, Observation, Outcome, Reply, Request, Target,
};
use crate::clock::VirtualClock;

/// TTL the reference client asks its token generator for (four hours).
const TOKEN_TTL: Duration = Duration::from_secs(4 * 3600);

/// Something for the engine to handle.
pub(crate) enum Input {
    /// A background task went to sleep: re-check quiescence.
    Nudge,
    /// An event frame arrived.
    Frame(Value),
    /// The event socket closed.
    Disconnected,
    /// A background task finished.
    Task { generation: u64, result: TaskResult },
}

/// The result of one background task.
pub(crate) enum TaskResult {
    Started {
        req: u64,
        result: Result<(String, mpsc::UnboundedSender<String>), CommandError>,
    },
    ListPage {
        result: Result<RestOk, CommandError>,
    },
    User {
        result: Result<RestOk, CommandError>,
    },
    Metadata {
        sid: String,
        result: Result<RestOk, CommandError>,
    },
    Participants {
        sid: String,
        result: Result<RestOk, CommandError>,
    },
    Ack {
        req: u64,
        target: Target,
        written: Value,
        result: Result<RestOk, CommandError>,
    },
    Sent {
        req: u64,
        result: Result<RestOk, CommandError>,
    },
    Messages {
        /// The app's request, or `None` when the client loaded them on its own.
        req: Option<u64>,
        sid: String,
        result: Result<RestOk, CommandError>,
    },
}

/// An operation that must wait for synchronization.
#[derive(Clone, Debug)]
enum Op {
    Update { target: Target, attributes: Value },
    Send { conversation: String, body: String },
}

impl Op {
    fn conversation(&self) -> Option<&str> {
        match self {
            Op::Update {
                target: Target::Conversation { sid },
                ..
            } => Some(sid),
            Op::Update {
                target: Target::User,
                ..
            } => None,
            Op::Send { conversation, .. } => Some(conversation),
        }
    }
}

struct Object {
    attributes: Value,
    revision: u64,
}

struct Conversation {
    sync: ConversationSyncStatus,
    object: Object,
}

struct AwaitedUpdate {
    req: u64,
    target: Target,
    revision: u64,
    written: Value,
}

struct Session {
    instance: String,
    identity: String,
    rest: Rest,
    events: mpsc::UnboundedSender<String>,
    connected: bool,
    sync: ClientSyncStatus,
    list_done: bool,
    user: Object,
    conversations: BTreeMap<String, Conversation>,
    waiting_ops: Vec<(u64, Op)>,
    awaited: Vec<AwaitedUpdate>,
    /// Synchronization fetches, run one at a time so the client's traffic has one order.
    lane: VecDeque<SyncJob>,
    lane_busy: bool,
    /// The app's list of conversations, in the order it learned them.
    list: Vec<String>,
    /// Conversations removed by an event: a page cannot bring them back.
    tombstones: BTreeSet<String>,
    /// Message indices the app fetched, per conversation.
    fetched: BTreeMap<String, BTreeSet<u64>>,
    /// Live handles: id → conversation sid.
    handles: BTreeMap<String, String>,
    next_handle: u64,
    /// A `start` whose reply waits for the whole list (fault `await-full-list`).
    start_reply: Option<(u64, String)>,
}

/// How the client learned of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A page of the subscribed list.
    Page,
    /// A `conversation_added` event.
    Added,
    /// Any other event about it (an update, a message).
    Event,
}

/// One synchronization fetch.
#[derive(Clone, Debug)]
enum SyncJob {
    /// A page of the subscribed list (URL relative to the REST base, or absolute).
    Page(String),
    /// The user's own resource.
    User,
    /// A conversation's resource.
    Metadata(String),
    /// A conversation's participants.
    Participants(String),
}

struct SettleWaiter {
    req: u64,
    nonce: Option<u64>,
    epoch: u64,
}

pub(crate) struct Engine {
    config: Arc<Config>,
    clock: VirtualClock,
    out: mpsc::UnboundedSender<AdapterEvent>,
    inputs: mpsc::UnboundedSender<Input>,
    http: reqwest::Client,
    activity: Arc<Activity>,
    tasks: JoinSet<()>,
    generation: u64,
    instances: u64,
    session: Option<Session>,
    pending_start: Option<(String, String, String)>,
    /// Event frames that arrived between the socket opening and the client existing.
    early_frames: Vec<Value>,
    settling: Vec<SettleWaiter>,
    epoch: u64,
    nonce: u64,
}

fn parse_attributes(resource: &Value) -> Value {
    match &resource["attributes"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// `s` percent-encoded as one URL path segment.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Outcome {
    Outcome::Error(CommandError::new(kind, message))
}

impl Engine {
    /// Runs until the harness drops its request sender.
    pub(crate) async fn run(
        config: Arc<Config>,
        mut requests: mpsc::UnboundedReceiver<Request>,
        out: mpsc::UnboundedSender<AdapterEvent>,
    ) {
        let (inputs, mut input_rx) = mpsc::unbounded_channel();
        let mut engine = Engine {
            config,
            clock: VirtualClock::new(),
            out,
            inputs,
            // Loopback only: never route through a proxy from the environment.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            activity: Arc::default(),
            tasks: JoinSet::new(),
            generation: 0,
            instances: 0,
            session: None,
            pending_start: None,
            early_frames: Vec::new(),
            settling: Vec::new(),
            epoch: 0,
            nonce: 0,
        };
        loop {
            tokio::select! {
                req = requests.recv() => match req {
                    Some(req) => engine.request(req),
                    None => break,
                },
                Some(input) = input_rx.recv() => engine.input(input),
                Some(_) = engine.tasks.join_next(), if !engine.tasks.is_empty() => {}
            }
            engine.pump();
            engine.poll_settle();
        }
        engine.tasks.abort_all();
    }

    fn has(&self, fault: Fault) -> bool {
        self.config.faults.has(fault)
    }

    fn observe(&self, o: Observation) {
        let _ = self.out.send(AdapterEvent::Observation(o));
    }

    fn reply(&self, id: u64, outcome: Outcome) {
        let _ = self.out.send(AdapterEvent::Reply(Reply { id, outcome }));
    }

    fn spawn<F>(&mut self, work: F)
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        self.activity.begin();
        let inputs = self.inputs.clone();
        let generation = self.generation;
        self.tasks.spawn(async move {
            let result = work.await;
            let _ = inputs.send(Input::Task { generation, result });
        });
    }

    // ---- requests -------------------------------------------------------------------------

    fn request(&mut self, Request { id, command }: Request) {
        if !matches!(command, Command::Settle) {
            self.epoch += 1;
        }
        match command {
            Command::Start {
                identity,
                token_url,
                events_url,
                rest_url,
                ..
            } => self.start(id, identity, token_url, rest_url, events_url),
            Command::Logout => {
                self.shut_down();
                self.reply(id, Outcome::done());
            }
            Command::Kill => {
                self.drop_session();
                self.reply(id, Outcome::done());
            }
            Command::UpdateAttributes { target, attributes } => {
                self.submit(id, Op::Update { target, attributes })
            }
            Command::SendMessage { conversation, body } => {
                self.submit(id, Op::Send { conversation, body })
            }
            Command::ReadAttributes { target } => {
                let outcome = match self.object(&target) {
                    Some(o) => Outcome::Ok(json!({ "attributes": o.attributes })),
                    None if self.session.is_none() => error(ErrorKind::ClientShutDown, "no client"),
                    None => error(
                        ErrorKind::NotFound,
                        format!("{target} is unknown to the client"),
                    ),
                };
                self.reply(id, outcome);
            }
            Command::ListConversations => {
                let outcome = match &self.session {
                    Some(s) => Outcome::Ok(json!({ "conversations": s.list })),
                    None => error(ErrorKind::ClientShutDown, "no client"),
                };
                self.reply(id, outcome);
            }
            Command::OpenConversation { conversation } => self.open(id, conversation),
            Command::Release { handle } => {
                let released = self
                    .session
                    .as_mut()
                    .and_then(|s| s.handles.remove(&handle));
                let outcome = match released {
                    Some(_) => {
                        self.observe(Observation::HandleReleased { handle });
                        Outcome::done()
                    }
                    None => error(
                        ErrorKind::ReleasedHandle,
                        format!("handle {handle} is not live"),
                    ),
                };
                self.reply(id, outcome);
            }
            Command::FetchMessages {
                conversation,
                count,
            } => {
                let known = self
                    .session
                    .as_ref()
                    .map(|s| s.conversations.contains_key(&conversation));
                match known {
                    Some(true) => self.fetch_messages(Some(id), conversation, count),
                    Some(false) => self.reply(
                        id,
                        error(
                            ErrorKind::NotFound,
                            format!("conversation {conversation} is unknown"),
                        ),
                    ),
                    None => self.reply(id, error(ErrorKind::ClientShutDown, "no client")),
                }
            }
            Command::AdvanceTime { ms } => {
                self.clock.advance(Duration::from_millis(ms));
                self.reply(id, Outcome::done());
            }
            Command::Settle => self.begin_settle(id),
            Command::Inspect => {
                let inspection = match &self.session {
                    None => Inspection::default(),
                    Some(s) => Inspection {
                        instance: Some(s.instance.clone()),
                        connection: Some(if s.connected {
                            ConnectionState::Connected
                        } else {
                            ConnectionState::Disconnected
                        }),
                        sync: Some(s.sync),
                        conversations: s
                            .conversations
                            .iter()
                            .map(|(k, c)| (k.clone(), c.sync))
                            .collect(),
                        handles: s.handles.keys().cloned().collect(),
                    },
                };
                self.reply(
                    id,
                    Outcome::Ok(serde_json::to_value(inspection).unwrap_or_default()),
                );
            }
            other => self.reply(
                id,
                error(
                    ErrorKind::Unsupported,
                    format!(
                        "the reference client does not implement `{}` yet",
                        other.name()
                    ),
                ),
            ),
        }
    }

    fn start(
        &mut self,
        id: u64,
        identity: String,
        token_url: String,
        rest_url: String,
        events_url: String,
    ) {
        if self.session.is_some() || self.pending_start.is_some() {
            return self.reply(
                id,
                error(
                    ErrorKind::InvalidCommand,
                    "a client is already started; log out first",
                ),
            );
        }
        self.generation += 1;
        self.instances += 1;
        let instance = format!("ref-{}", self.instances);
        let http = self.http.clone();
        let inputs = self.inputs.clone();
        let (inst, ident) = (instance.clone(), identity.clone());
        self.spawn(async move {
            let result = async {
                let token = net::fetch_token(&http, &token_url, &ident, &inst, TOKEN_TTL).await?;
                let events = net::connect_events(&events_url, &token, &inst, None, inputs).await?;
                Ok((token, events))
            }
            .await;
            TaskResult::Started { req: id, result }
        });
        // Stash what the session needs once the task reports back.
        self.pending_start = Some((instance, identity, rest_url));
    }

    fn object(&self, target: &Target) -> Option<&Object> {
        let s = self.session.as_ref()?;
        match target {
            Target::User => Some(&s.user),
            Target::Conversation { sid } => s.conversations.get(sid).map(|c| &c.object),
        }
    }

    fn object_mut(&mut self, target: &Target) -> Option<&mut Object> {
        let s = self.session.as_mut()?;
        match target {
            Target::User => Some(&mut s.user),
            Target::Conversation { sid } => s.conversations.get_mut(sid).map(|c| &mut c.object),
        }
    }

    /// Ends the session without a shutdown (the process died).
    fn drop_session(&mut self) {
        self.tasks.abort_all();
        // Aborted tasks never report: forget them.
        self.activity.reset();
        self.generation += 1;
        self.pending_start = None;
        self.session = None;
    }

    /// Logout: fail what is pending, release everything, shut the client down.
    fn shut_down(&mut self) {
        let Some(s) = self.session.take() else { return };
        for (req, _) in &s.waiting_ops {
            self.reply(
                *req,
                error(ErrorKind::ClientShutDown, "the client was shut down"),
            );
        }
        for a in &s.awaited {
            self.reply(
                a.req,
                error(ErrorKind::ClientShutDown, "the client was shut down"),
            );
        }
        self.observe(Observation::ClientShutDown {
            instance: s.instance.clone(),
        });
        self.session = Some(s);
        self.drop_session();
    }

    // ---- operations gated on sync ---------------------------------------------------------

    /// Whether `op` may go to the backend now; `Err` when it can never go.
    fn may_run(&self, op: &Op) -> Result<bool, Outcome> {
        let Some(s) = &self.session else {
            return Err(error(ErrorKind::ClientShutDown, "no client is started"));
        };
        let failed = |what: &str| {
            Err(error(
                ErrorKind::NotSynchronized,
                format!("{what} failed to synchronize"),
            ))
        };
        match op.conversation() {
            None if self.has(Fault::OpsBeforeSync) => Ok(true),
            None if s.sync == ClientSyncStatus::Failed => failed("the client"),
            None => Ok(s.sync == ClientSyncStatus::Completed),
            Some(_) if self.has(Fault::ConversationOpsBeforeSync) => Ok(true),
            Some(sid) => match s.conversations.get(sid) {
                Some(c) if c.sync == ConversationSyncStatus::Failed => {
                    failed(&format!("conversation {sid}"))
                }
                Some(c) => Ok(c.sync == ConversationSyncStatus::All),
                None if s.sync == ClientSyncStatus::Completed => Err(error(
                    ErrorKind::NotFound,
                    format!("conversation {sid} is not in the user's list"),
                )),
                None if s.sync == ClientSyncStatus::Failed => failed("the client"),
                None => Ok(false),
            },
        }
    }

    fn submit(&mut self, req: u64, op: Op) {
        match self.may_run(&op) {
            Ok(true) => self.execute(req, op),
            Ok(false) => {
                if let Some(s) = self.session.as_mut() {
                    s.waiting_ops.push((req, op));
                }
            }
            Err(outcome) => self.reply(req, outcome),
        }
    }

    /// Runs every waiting operation that may run now.
    fn flush_ops(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let waiting = std::mem::take(&mut s.waiting_ops);
        for (req, op) in waiting {
            self.submit(req, op);
        }
    }

    fn execute(&mut self, req: u64, op: Op) {
        let Some(s) = &self.session else { return };
        let rest = s.rest.clone();
        match op {
            Op::Update { target, attributes } => {
                let path = match &target {
                    Target::User => format!("/v1/Users/{}", segment(&s.identity)),
                    Target::Conversation { sid } => format!("/v1/Conversations/{sid}"),
                };
                let written = attributes.clone();
                self.spawn(async move {
                    let form = vec![("Attributes", attributes.to_string())];
                    let result = rest.call(Method::POST, &path, Some(form)).await;
                    TaskResult::Ack {
                        req,
                        target,
                        written,
                        result,
                    }
                });
            }
            Op::Send { conversation, body } => {
                self.spawn(async move {
                    let path = format!("/v1/Conversations/{conversation}/Messages");
                    let result = rest
                        .call(Method::POST, &path, Some(vec![("Body", body)]))
                        .await;
                    TaskResult::Sent { req, result }
                });
            }
        }
    }

    // ---- background results ---------------------------------------------------------------

    fn input(&mut self, input: Input) {
        match input {
            Input::Nudge => {}
            Input::Frame(frame) => {
                if frame["type"] == "pong" {
                    let nonce = frame["nonce"].as_u64();
                    for w in &mut self.settling {
                        if w.nonce == nonce {
                            w.nonce = None;
                        }
                    }
                } else if self.session.is_none() && self.pending_start.is_some() {
                    // The socket is up before the client is: keep what arrives until it is.
                    self.early_frames.push(frame);
                } else {
                    self.epoch += 1;
                    self.frame(frame);
                }
            }
            Input::Disconnected => {
                self.epoch += 1;
                if let Some(s) = self.session.as_mut() {
                    s.connected = false;
                    self.observe(Observation::ConnectionState {
                        state: ConnectionState::Disconnected,
                    });
                }
            }
            Input::Task { generation, result } => {
                self.epoch += 1;
                if generation == self.generation {
                    self.activity.end();
                    self.task(result);
                }
            }
        }
    }

    fn task(&mut self, result: TaskResult) {
        let from_lane = matches!(
            result,
            TaskResult::ListPage { .. }
                | TaskResult::User { .. }
                | TaskResult::Metadata { .. }
                | TaskResult::Participants { .. }
        );
        if from_lane {
            if let Some(s) = self.session.as_mut() {
                s.lane_busy = false;
            }
        }
        self.handle(result);
    }

    fn handle(&mut self, result: TaskResult) {
        match result {
            TaskResult::User { result } => self.user(result),
            TaskResult::Messages { req, sid, result } => self.messages(req, sid, result),
            TaskResult::Started { req, result } => self.started(req, result),
            TaskResult::ListPage { result } => self.list_page(result),
            TaskResult::Metadata { sid, result } => self.metadata(sid, result),
            TaskResult::Participants { sid, result } => match result {
                Ok(_) => {
                    if self.has(Fault::AutoloadMessages) {
                        self.fetch_messages(None, sid.clone(), 50);
                    }
                    self.set_conversation_sync(&sid, ConversationSyncStatus::All);
                    self.advance_client_sync();
                    self.flush_ops();
                }
                Err(e) => self.conversation_failed(&sid, e),
            },
            TaskResult::Ack {
                req,
                target,
                written,
                result,
            } => self.acked(req, target, written, result),
            TaskResult::Sent { req, result } => {
                let outcome = match result {
                    Ok(ok) => Outcome::Ok(json!({ "index": ok.body["index"] })),
                    Err(e) => Outcome::Error(e),
                };
                self.reply(req, outcome);
            }
        }
    }

    fn started(
        &mut self,
        req: u64,
        result: Result<(String, mpsc::UnboundedSender<String>), CommandError>,
    ) {
        let Some((instance, identity, rest_url)) = self.pending_start.take() else {
            return;
        };
        let (token, events) = match result {
            Ok(parts) => parts,
            Err(e) => return self.reply(req, Outcome::Error(e)),
        };
        let rest = Rest {
            http: self.http.clone(),
            base: rest_url.trim_end_matches('/').to_owned(),
            token: Arc::new(Mutex::new(token)),
            instance: instance.clone(),
            clock: self.clock.clone(),
            activity: self.activity.clone(),
            nudge: self.inputs.clone(),
        };
        self.session = Some(Session {
            instance: instance.clone(),
            identity: identity.clone(),
            rest: rest.clone(),
            events,
            connected: true,
            sync: ClientSyncStatus::Started,
            list_done: false,
            user: Object {
                attributes: json!({}),
                revision: 0,
            },
            conversations: BTreeMap::new(),
            waiting_ops: Vec::new(),
            awaited: Vec::new(),
            lane: VecDeque::new(),
            lane_busy: false,
            list: Vec::new(),
            tombstones: BTreeSet::new(),
            fetched: BTreeMap::new(),
            handles: BTreeMap::new(),
            next_handle: 0,
            start_reply: None,
        });
        self.observe(Observation::ClientCreated {
            instance: instance.clone(),
        });
        self.observe(Observation::ConnectionState {
            state: ConnectionState::Connected,
        });
        self.observe(Observation::ClientSync {
            status: ClientSyncStatus::Started,
        });
        for frame in std::mem::take(&mut self.early_frames) {
            self.frame(frame);
        }
        if self.has(Fault::AwaitFullList) {
            if let Some(s) = self.session.as_mut() {
                s.start_reply = Some((req, instance.clone()));
            }
        } else {
            self.reply(req, Outcome::Ok(json!({ "instance": instance })));
        }
        let first = format!(
            "/v1/Users/{}/Conversations?PageSize={}",
            segment(&identity),
            self.config.page_size
        );
        self.enqueue(SyncJob::Page(first), false);
        self.enqueue(SyncJob::User, false);
    }

    /// Adds a synchronization fetch to the lane (`urgent` ones go first); the engine starts the
    /// next fetch once it has handled the current input, so every input's jobs are queued first.
    fn enqueue(&mut self, job: SyncJob, urgent: bool) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if urgent {
            s.lane.push_front(job);
        } else {
            s.lane.push_back(job);
        }
    }

    /// Starts the next synchronization fetch unless one is running.
    fn pump(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.lane_busy {
            return;
        }
        let Some(job) = s.lane.pop_front() else {
            return;
        };
        s.lane_busy = true;
        let rest = s.rest.clone();
        let identity = segment(&s.identity);
        self.spawn(async move {
            match job {
                SyncJob::Page(url) => TaskResult::ListPage {
                    result: rest.call(Method::GET, &url, None).await,
                },
                SyncJob::User => TaskResult::User {
                    result: rest
                        .call(Method::GET, &format!("/v1/Users/{identity}"), None)
                        .await,
                },
                SyncJob::Metadata(sid) => TaskResult::Metadata {
                    result: rest
                        .call(Method::GET, &format!("/v1/Conversations/{sid}"), None)
                        .await,
                    sid,
                },
                SyncJob::Participants(sid) => TaskResult::Participants {
                    result: rest
                        .call(
                            Method::GET,
                            &format!("/v1/Conversations/{sid}/Participants"),
                            None,
                        )
                        .await,
                    sid,
                },
            }
        });
    }

    fn list_page(&mut self, result: Result<RestOk, CommandError>) {
        let page = match result {
            Ok(p) => p.body,
            Err(e) => {
                if let Some(s) = self.session.as_mut() {
                    s.sync = ClientSyncStatus::Failed;
                }
                self.observe(Observation::ClientSync {
                    status: ClientSyncStatus::Failed,
                });
                self.observe(Observation::Error {
                    kind: e.kind,
                    message: e.message,
                });
                return;
            }
        };
        let items = page["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for item in items {
            if let Some(sid) = item["conversation_sid"].as_str() {
                self.learn_conversation(sid, Source::Page);
            }
        }
        let next = page["meta"]["next_page_url"]
            .as_str()
            .filter(|_| !self.has(Fault::FirstPageOnly));
        match next {
            Some(next) => self.enqueue(SyncJob::Page(next.to_owned()), true),
            None => {
                let deferred = self.session.as_mut().and_then(|s| {
                    s.list_done = true;
                    s.start_reply.take()
                });
                if let Some((req, instance)) = deferred {
                    self.reply(req, Outcome::Ok(json!({ "instance": instance })));
                }
                self.advance_client_sync();
                self.flush_ops();
            }
        }
    }

    /// A conversation sid became known: add it to the app's list and start synchronizing it.
    /// Pages cannot bring back what an event removed; events can. Duplicates are merged by sid.
    fn learn_conversation(&mut self, sid: &str, source: Source) {
        let no_dedupe = self.has(Fault::NoDedupe);
        let no_tombstones = self.has(Fault::NoTombstones);
        let Some(s) = self.session.as_mut() else {
            return;
        };
        match source {
            Source::Page if s.tombstones.contains(sid) && !no_tombstones => return,
            // Only an explicit add brings a removed conversation back.
            Source::Event if s.tombstones.contains(sid) => return,
            Source::Added => {
                s.tombstones.remove(sid);
            }
            Source::Page | Source::Event => {}
        }
        if s.conversations.contains_key(sid) {
            if no_dedupe {
                s.list.push(sid.to_owned());
                self.observe(Observation::ConversationAdded {
                    conversation: sid.to_owned(),
                });
            }
            return;
        }
        s.list.push(sid.to_owned());
        s.conversations.insert(
            sid.to_owned(),
            Conversation {
                sync: ConversationSyncStatus::Identifier,
                object: Object {
                    attributes: json!({}),
                    revision: 0,
                },
            },
        );
        self.observe(Observation::ConversationAdded {
            conversation: sid.to_owned(),
        });
        self.observe(Observation::ConversationSync {
            conversation: sid.to_owned(),
            status: ConversationSyncStatus::Identifier,
        });
        self.enqueue(SyncJob::Metadata(sid.to_owned()), false);
    }

    /// An event said the conversation is gone: forget it and remember that it is gone.
    fn forget_conversation(&mut self, sid: &str) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.tombstones.insert(sid.to_owned());
        let known = s.conversations.remove(sid).is_some();
        s.list.retain(|x| x != sid);
        s.fetched.remove(sid);
        let (dead, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.waiting_ops)
            .into_iter()
            .partition(|(_, op)| op.conversation() == Some(sid));
        s.waiting_ops = waiting;
        for (req, _) in dead {
            self.reply(
                req,
                error(
                    ErrorKind::NotFound,
                    format!("conversation {sid} was removed"),
                ),
            );
        }
        if known {
            self.observe(Observation::ConversationRemoved {
                conversation: sid.to_owned(),
            });
        }
    }

    fn metadata(&mut self, sid: String, result: Result<RestOk, CommandError>) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => return self.conversation_failed(&sid, e),
        };
        let target = Target::Conversation { sid: sid.clone() };
        self.apply_snapshot(
            &target,
            parse_attributes(&ok.body),
            ok.revision.unwrap_or(1),
            &[],
        );
        self.set_conversation_sync(&sid, ConversationSyncStatus::Metadata);
        self.enqueue(SyncJob::Participants(sid), true);
    }

    fn user(&mut self, result: Result<RestOk, CommandError>) {
        match result {
            Ok(ok) => {
                self.apply_snapshot(
                    &Target::User,
                    parse_attributes(&ok.body),
                    ok.revision.unwrap_or(1),
                    &[],
                );
            }
            Err(e) => self.observe(Observation::Error {
                kind: e.kind,
                message: e.message,
            }),
        }
    }

    fn conversation_failed(&mut self, sid: &str, e: CommandError) {
        self.set_conversation_sync(sid, ConversationSyncStatus::Failed);
        self.observe(Observation::Error {
            kind: e.kind,
            message: e.message,
        });
    }

    fn set_conversation_sync(&mut self, sid: &str, status: ConversationSyncStatus) {
        let Some(c) = self
            .session
            .as_mut()
            .and_then(|s| s.conversations.get_mut(sid))
        else {
            return;
        };
        if c.sync == status {
            return;
        }
        c.sync = status;
        self.observe(Observation::ConversationSync {
            conversation: sid.to_owned(),
            status,
        });
    }

    /// Moves the client sync status forward as far as the facts allow.
    fn advance_client_sync(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if !s.list_done
            || s.sync == ClientSyncStatus::Completed
            || s.sync == ClientSyncStatus::Failed
        {
            return;
        }
        let mut steps = Vec::new();
        if s.sync == ClientSyncStatus::Started {
            s.sync = ClientSyncStatus::ConversationsCompleted;
            steps.push(s.sync);
        }
        let settled = |c: &Conversation| {
            matches!(
                c.sync,
                ConversationSyncStatus::All | ConversationSyncStatus::Failed
            )
        };
        if s.conversations.values().all(settled) {
            s.sync = ClientSyncStatus::Completed;
            steps.push(s.sync);
        }
        for status in steps {
            self.observe(Observation::ClientSync { status });
        }
    }

    // ---- updates --------------------------------------------------------------------------

    fn acked(
        &mut self,
        req: u64,
        target: Target,
        written: Value,
        result: Result<RestOk, CommandError>,
    ) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => return self.reply(req, Outcome::Error(e)),
        };
        let revision = ok.revision.unwrap_or(0);
        if self.has(Fault::UpdateCompletesOnAck) || revision == 0 {
            return self.reply(
                req,
                Outcome::Ok(json!({ "attributes": parse_attributes(&ok.body) })),
            );
        }
        if let Some(s) = self.session.as_mut() {
            s.awaited.push(AwaitedUpdate {
                req,
                target: target.clone(),
                revision,
                written,
            });
        }
        self.complete_updates(&target);
    }

    /// Applies a snapshot unless it is older than what the client has; reports whether it did.
    fn apply_snapshot(
        &mut self,
        target: &Target,
        attributes: Value,
        revision: u64,
        reasons: &[String],
    ) -> bool {
        let overwrite_stale = self.has(Fault::StaleEventOverwrites);
        let Some(obj) = self.object_mut(target) else {
            return false;
        };
        let newer = revision > obj.revision || (overwrite_stale && revision != obj.revision);
        if !newer {
            return false;
        }
        obj.attributes = attributes.clone();
        obj.revision = revision;
        if !reasons.is_empty() {
            self.observe(match target {
                Target::User => Observation::UserUpdated { attributes },
                Target::Conversation { sid } => Observation::ConversationUpdated {
                    conversation: sid.clone(),
                    reasons: reasons.to_vec(),
                    attributes,
                },
            });
        }
        true
    }

    /// Completes every update of `target` whose revision the client has now seen.
    fn complete_updates(&mut self, target: &Target) {
        let local_wins = self.has(Fault::LocalWriteWins);
        let Some(current) = self.object(target).map(|o| o.revision) else {
            return;
        };
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.awaited)
            .into_iter()
            .partition(|a| &a.target == target && a.revision <= current);
        s.awaited = waiting;
        for a in done {
            let shown = if local_wins {
                if let Some(obj) = self.object_mut(target) {
                    obj.attributes = a.written.clone();
                }
                a.written
            } else {
                self.object(target)
                    .map(|o| o.attributes.clone())
                    .unwrap_or_default()
            };
            self.reply(a.req, Outcome::Ok(json!({ "attributes": shown })));
        }
    }

    fn frame(&mut self, frame: Value) {
        let reasons: Vec<String> = frame["reasons"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let revision = frame["revision"].as_u64().unwrap_or(0);
        let kind = frame["type"].as_str().unwrap_or_default();
        let list_done = self.session.as_ref().is_some_and(|s| s.list_done);
        if kind.starts_with("conversation_") && self.has(Fault::ListenAfterFetch) && !list_done {
            // The listener is not attached yet: the event is lost.
            return;
        }
        match kind {
            "conversation_added" => {
                if let Some(sid) = frame["conversation_sid"].as_str() {
                    self.learn_conversation(sid, Source::Added);
                }
            }
            "conversation_removed" => {
                if let Some(sid) = frame["conversation_sid"].as_str() {
                    self.forget_conversation(sid);
                }
            }
            "conversation_updated" => {
                let Some(sid) = frame["conversation_sid"].as_str().map(str::to_owned) else {
                    return;
                };
                let known = self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.conversations.contains_key(&sid));
                if !known {
                    if self.has(Fault::IgnoreUnknownUpdates) {
                        return;
                    }
                    // An update can overtake the add: it still means the user has the conversation.
                    self.learn_conversation(&sid, Source::Event);
                }
                let target = Target::Conversation { sid: sid.clone() };
                let applied = self.apply_snapshot(
                    &target,
                    parse_attributes(&frame["conversation"]),
                    revision,
                    &reasons,
                );
                if applied && self.has(Fault::SyncStatusRegresses) {
                    let synced = self
                        .session
                        .as_ref()
                        .and_then(|s| s.conversations.get(&sid))
                        .is_some_and(|c| c.sync == ConversationSyncStatus::All);
                    if synced {
                        self.set_conversation_sync(&sid, ConversationSyncStatus::Metadata);
                        self.enqueue(SyncJob::Participants(sid), true);
                    }
                }
                self.complete_updates(&target);
            }
            "message_updated" | "message_removed" => {
                let (Some(sid), Some(index)) =
                    (frame["conversation_sid"].as_str(), frame["index"].as_u64())
                else {
                    return;
                };
                let fetched = self
                    .session
                    .as_ref()
                    .and_then(|s| s.fetched.get(sid))
                    .is_some_and(|f| f.contains(&index));
                let report = !self.has(Fault::DropFetchedUpdates)
                    && (fetched || self.has(Fault::EventsForUnfetched));
                let conversation = sid.to_owned();
                if kind == "message_removed" {
                    if let Some(f) = self.session.as_mut().and_then(|s| s.fetched.get_mut(sid)) {
                        f.remove(&index);
                    }
                }
                if report {
                    self.observe(if kind == "message_updated" {
                        Observation::MessageUpdated {
                            conversation,
                            index,
                        }
                    } else {
                        Observation::MessageRemoved {
                            conversation,
                            index,
                        }
                    });
                }
            }
            "user_updated" => {
                self.apply_snapshot(
                    &Target::User,
                    parse_attributes(&frame["user"]),
                    revision,
                    &reasons,
                );
                self.complete_updates(&Target::User);
            }
            "message_added" => {
                if let (Some(sid), Some(index)) =
                    (frame["conversation_sid"].as_str(), frame["index"].as_u64())
                {
                    let known = self
                        .session
                        .as_ref()
                        .is_some_and(|s| s.conversations.contains_key(sid));
                    if !known && !self.has(Fault::IgnoreUnknownUpdates) {
                        // A message in a conversation not seen yet still means the user has it.
                        self.learn_conversation(sid, Source::Event);
                    }
                    if self.has(Fault::SilentNewMessages) {
                        return;
                    }
                    self.observe(Observation::MessageAdded {
                        conversation: sid.to_owned(),
                        index,
                    });
                }
            }
            _ => {}
        }
    }

    // ---- conversations and messages -------------------------------------------------------

    /// Hands out a handle on a known conversation; loading it fetches no messages.
    fn open(&mut self, req: u64, conversation: String) {
        let Some(s) = self.session.as_mut() else {
            return self.reply(req, error(ErrorKind::ClientShutDown, "no client"));
        };
        if !s.conversations.contains_key(&conversation) {
            return self.reply(
                req,
                error(
                    ErrorKind::NotFound,
                    format!("conversation {conversation} is unknown"),
                ),
            );
        }
        s.next_handle += 1;
        let handle = format!("h-{}", s.next_handle);
        s.handles.insert(handle.clone(), conversation);
        self.observe(Observation::HandleAcquired {
            handle: handle.clone(),
        });
        self.reply(req, Outcome::Ok(json!({ "handle": handle })));
    }

    /// Fetches the newest `count` messages of a conversation.
    fn fetch_messages(&mut self, req: Option<u64>, sid: String, count: u32) {
        let Some(s) = &self.session else { return };
        let rest = s.rest.clone();
        let path = format!(
            "/v1/Conversations/{sid}/Messages?Order=desc&PageSize={}",
            count.clamp(1, 100)
        );
        self.spawn(async move {
            let result = rest.call(Method::GET, &path, None).await;
            TaskResult::Messages { req, sid, result }
        });
    }

    fn messages(&mut self, req: Option<u64>, sid: String, result: Result<RestOk, CommandError>) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => {
                if let Some(req) = req {
                    self.reply(req, Outcome::Error(e));
                }
                return;
            }
        };
        let indices: Vec<u64> = ok.body["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["index"].as_u64()).collect())
            .unwrap_or_default();
        if let Some(s) = self.session.as_mut() {
            s.fetched
                .entry(sid)
                .or_default()
                .extend(indices.iter().copied());
        }
        if let Some(req) = req {
            self.reply(req, Outcome::Ok(json!({ "messages": indices })));
        }
    }

    // ---- settle ---------------------------------------------------------------------------

    fn ping(&mut self) -> Option<u64> {
        let s = self.session.as_ref().filter(|s| s.connected)?;
        self.nonce += 1;
        let frame = json!({ "type": "ping", "nonce": self.nonce }).to_string();
        s.events.send(frame).ok()?;
        Some(self.nonce)
    }

    fn begin_settle(&mut self, req: u64) {
        let nonce = self.ping();
        self.settling.push(SettleWaiter {
            req,
            nonce,
            epoch: self.epoch,
        });
    }

    /// Answers every settle whose last ping came back with nothing new happening and nothing
    /// but virtual-time sleeps in flight; re-pings the others.
    fn poll_settle(&mut self) {
        if self.settling.is_empty() || !self.activity.is_quiet(self.clock.now()) {
            return;
        }
        let waiters = std::mem::take(&mut self.settling);
        for mut w in waiters {
            if w.nonce.is_some() {
                self.settling.push(w);
            } else if w.epoch == self.epoch {
                self.reply(w.req, Outcome::done());
            } else {
                w.epoch = self.epoch;
                w.nonce = self.ping();
                if w.nonce.is_none() {
                    self.reply(w.req, Outcome::done());
                } else {
                    self.settling.push(w);
                }
            }
        }
    }
}
