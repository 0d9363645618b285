//! The reference client's engine: one task that owns all client state.
//!
//! It takes the harness's commands and the results of its own background work (REST calls,
//! event frames) as inputs, one at a time, so its state needs no locks. Concerns live in files of
//! their own: `session` (start, logout, kill), `sync` (the fetch lane and sync statuses), `ops`
//! (operations that wait for synchronization), `updates` (snapshots and updates completing on
//! their events), `list` (merging pages and events), `frames` (what each event means),
//! `messages` (handles and messages), `push` (registering the device), `counts` (cached count
//! reads) and `settle` (quiescence). It follows the documented
//! lifecycle unless the [`Policy`] says a fault switched a behaviour off.

mod counts;
mod frames;
mod link;
mod list;
mod messages;
mod ops;
mod push;
mod session;
mod settle;
mod state;
mod sync;
mod tokens;
mod updates;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Config;
use super::net::{Activity, Fetched, SocketEvent};
use super::policy::Policy;
use crate::adapter::HandleId;
use crate::adapter::{
    Command, CommandError, Commands, ErrorKind, Inspection, Observation, Observer, ReplyBody,
    Responder, Target,
};
use crate::clock::VirtualClock;
use crate::wire::resources::{Conversation, ConversationsPage, Message, MessagesPage, User};
use crate::wire::{ConversationSid, EventFrame, InstanceId};

use state::{Login, Op, PendingStart, Session, SettleWaiter};

/// Something for the engine to handle besides a command.
pub(super) enum Input {
    /// The event socket numbered `link` delivered something.
    Socket {
        /// Which socket.
        link: u64,
        /// What it delivered.
        event: SocketEvent,
    },
    /// A background task finished.
    Task {
        /// The session generation that spawned it (results of older sessions are dropped).
        generation: u64,
        /// What it produced.
        result: Box<TaskResult>,
    },
}

/// An answer that carries a new version of an object: only its attributes matter here.
#[derive(serde::Deserialize)]
pub(super) struct Versioned {
    attributes: String,
}

/// The result of one background task.
pub(super) enum TaskResult {
    Started {
        /// The app's `start`, or `None` when the client re-created itself.
        responder: Option<Responder>,
        result: Result<(state::Credential, mpsc::UnboundedSender<String>), CommandError>,
    },
    Reconnected {
        link: u64,
        /// A token fetched first (the old one had expired), and the socket.
        result: Result<(Option<state::Credential>, mpsc::UnboundedSender<String>), CommandError>,
    },
    Refreshed {
        result: Result<state::Credential, CommandError>,
    },
    /// Work whose result does not matter (fault `token-in-url`'s prefetch).
    Nothing,
    HeartbeatDue {
        link: u64,
    },
    ListPage {
        result: Result<Fetched<ConversationsPage>, CommandError>,
    },
    User {
        result: Result<Fetched<User>, CommandError>,
    },
    Metadata {
        sid: ConversationSid,
        result: Result<Fetched<Conversation>, CommandError>,
    },
    Participants {
        sid: ConversationSid,
        result: Result<Fetched<serde_json::Value>, CommandError>,
    },
    Ack {
        responder: Responder,
        target: Target,
        written: serde_json::Value,
        result: Result<Fetched<Versioned>, CommandError>,
    },
    Sent {
        responder: Responder,
        result: Result<Fetched<Message>, CommandError>,
    },
    /// A push registration task ended (see `push`).
    Registered {
        storage: crate::reference::storage::Storage,
        result: push::Registered,
    },
    /// A count fetch ended (see `counts`).
    Count {
        responder: Responder,
        conversation: ConversationSid,
        kind: crate::adapter::CountKind,
        result: counts::CountsFetched,
    },
    Messages {
        /// The app's request, or `None` when the client loaded them on its own.
        responder: Option<Responder>,
        sid: ConversationSid,
        result: Result<Fetched<MessagesPage>, CommandError>,
    },
}

/// The reference client: all its state, owned by one task.
pub(crate) struct Engine {
    config: Arc<Config>,
    policy: Policy,
    clock: VirtualClock,
    observer: Observer,
    inputs: mpsc::UnboundedSender<Input>,
    http: reqwest::Client,
    activity: Arc<Activity>,
    tasks: JoinSet<()>,
    generation: u64,
    instances: u64,
    session: Option<Session>,
    pending_start: Option<PendingStart>,
    /// Event frames that arrived between the socket opening and the client existing.
    early_frames: Vec<EventFrame>,
    settling: Vec<SettleWaiter>,
    epoch: u64,
    nonce: u64,
    /// Sockets numbered so far.
    links: u64,
    /// The socket number a reconnect attempt may still dial for (0: none).
    wanted_link: Arc<std::sync::atomic::AtomicU64>,
    /// The state of the seeded backoff jitter.
    jitter: u64,
    /// The resume point the first socket of a client being created announced.
    welcome: Option<u64>,
    /// Commands (`background`, `logout`) waiting for a socket (numbered) to be closed.
    closing: Vec<(u64, Responder)>,
    /// Sockets the client let go of that have not closed yet: they keep it busy (a settle
    /// waits for them), so a close is complete before the client says it is quiet.
    closing_links: BTreeSet<u64>,
    /// Handles made so far (ids are never reused).
    handles_made: u64,
    /// Handles of instances that are gone: using one is `client_shut_down`.
    retired: BTreeSet<HandleId>,
    /// The last login, for a client that re-creates itself.
    last_login: Option<Login>,
    /// The app is in the background with no client (fault `shutdown-on-background`).
    in_background: bool,
    /// An instance to come back as (fault `reuse-after-shutdown`).
    reused: Option<InstanceId>,
    /// Handles to carry into the next session (fault `reuse-after-shutdown`).
    carried_handles: BTreeMap<HandleId, ConversationSid>,
}

impl Engine {
    /// Serves `commands` until the harness closes the session.
    pub(crate) async fn run(
        config: Arc<Config>,
        http: reqwest::Client,
        mut commands: Commands,
        observer: Observer,
    ) {
        let (inputs, mut input_rx) = mpsc::unbounded_channel();
        let activity = Arc::new(Activity::default());
        let mut engine = Engine {
            policy: Policy::from(&config.faults),
            config,
            clock: VirtualClock::new(),
            observer,
            inputs,
            http,
            activity: activity.clone(),
            tasks: JoinSet::new(),
            generation: 0,
            instances: 0,
            session: None,
            pending_start: None,
            early_frames: Vec::new(),
            settling: Vec::new(),
            epoch: 0,
            nonce: 0,
            links: 0,
            wanted_link: Arc::default(),
            jitter: 0x5eed,
            welcome: None,
            closing: Vec::new(),
            closing_links: BTreeSet::new(),
            handles_made: 0,
            retired: BTreeSet::new(),
            last_login: None,
            in_background: false,
            reused: None,
            carried_handles: BTreeMap::new(),
        };
        loop {
            tokio::select! {
                next = commands.next() => match next {
                    Some((command, responder)) => engine.command(command, responder),
                    None => break,
                },
                Some(input) = input_rx.recv() => engine.input(input),
                () = activity.nudged() => {}
                Some(_) = engine.tasks.join_next(), if !engine.tasks.is_empty() => {}
            }
            engine.pump();
            engine.poll_settle();
        }
        engine.tasks.abort_all();
    }

    fn observe(&self, o: Observation) {
        self.observer.observe(o);
    }

    /// Runs `work` in the background, counted as activity; its result comes back as an input.
    fn spawn<F>(&mut self, work: F)
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        self.activity.begin();
        let inputs = self.inputs.clone();
        let generation = self.generation;
        self.tasks.spawn(async move {
            let result = work.await;
            let _ = inputs.send(Input::Task {
                generation,
                result: Box::new(result),
            });
        });
    }

    fn command(&mut self, command: Command, responder: Responder) {
        if !matches!(command, Command::Settle) {
            self.epoch += 1;
        }
        if self.config.lacks.contains(&command.kind()) {
            return responder.error(
                ErrorKind::Unsupported,
                format!("this client has no `{}`", command.name()),
            );
        }
        match command {
            Command::Start {
                identity,
                token_url,
                events_url,
                rest_url,
                storage_dir,
                device_token,
                twilsock_url: _,
            } => self.start(
                responder,
                Login {
                    identity,
                    token_url,
                    rest_url,
                    events_url,
                    storage: crate::reference::storage::Storage::new(storage_dir.as_deref()),
                    device_token,
                },
            ),
            Command::Background => self.background(responder),
            Command::Foreground => {
                self.foreground();
                responder.done();
            }
            Command::Logout => {
                // A user who logged out leaves no credential behind.
                if let Some(s) = &self.session {
                    s.login.storage.update(|stored| stored.token = None);
                }
                let closing = self.shut_down();
                self.when_closed(closing, responder);
            }
            Command::Kill => {
                // The process dies: its socket goes with it (answered once it is gone).
                let closing = self
                    .session
                    .as_ref()
                    .and_then(|s| s.link.sender().is_some().then_some(s.link.id));
                self.drop_session();
                self.letting_go(closing);
                self.when_closed(closing, responder);
            }
            Command::UpdateAttributes { target, attributes } => {
                self.submit(responder, Op::Update { target, attributes })
            }
            Command::SendMessage { conversation, body } => {
                self.submit(responder, Op::Send { conversation, body })
            }
            Command::ReadAttributes { target } => self.read(responder, &target),
            Command::ListConversations => match &self.session {
                Some(s) => responder.ok(ReplyBody::Conversations {
                    conversations: s.list.clone(),
                }),
                None => responder.error(ErrorKind::ClientShutDown, "no client"),
            },
            Command::OpenConversation { conversation } => self.open(responder, conversation),
            Command::Release { handle } => self.release(responder, handle),
            Command::FetchMessages {
                conversation,
                count,
            } => {
                let known = self
                    .session
                    .as_ref()
                    .map(|s| s.conversations.contains_key(&conversation));
                match known {
                    Some(true) => self.fetch_messages(Some(responder), conversation, count),
                    Some(false) => responder.error(
                        ErrorKind::NotFound,
                        format!("conversation {conversation} is unknown"),
                    ),
                    None => responder.error(ErrorKind::ClientShutDown, "no client"),
                }
            }
            Command::DeviceTokenChanged { device_token } => {
                self.device_token_changed(device_token);
                responder.done();
            }
            Command::GetCount { conversation, kind } => {
                self.get_count(responder, conversation, kind)
            }
            Command::AdvanceTime { ms } => {
                self.clock.advance(Duration::from_millis(ms));
                responder.done();
            }
            Command::Settle => self.begin_settle(responder),
            Command::Inspect => responder.ok(ReplyBody::Inspection(self.inspect())),
        }
    }

    fn inspect(&self) -> Inspection {
        let Some(s) = &self.session else {
            return Inspection::default();
        };
        Inspection {
            instance: Some(s.instance.clone()),
            connection: Some(if s.link.sender().is_some() {
                crate::adapter::ConnectionState::Connected
            } else {
                crate::adapter::ConnectionState::Disconnected
            }),
            sync: Some(s.sync),
            conversations: s
                .conversations
                .iter()
                .map(|(k, c)| (k.clone(), c.sync))
                .collect(),
            handles: s.handles.keys().cloned().collect(),
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Socket { link, event } => self.socket(link, event),
            Input::Task { generation, result } => {
                self.epoch += 1;
                if generation == self.generation {
                    self.activity.end();
                    self.task(*result);
                }
            }
        }
    }

    fn socket(&mut self, link: u64, event: SocketEvent) {
        use crate::wire::HubFrame;
        if matches!(event, SocketEvent::Closed) && self.closing_links.remove(&link) {
            // A socket the client let go of is gone at last: it no longer keeps it busy.
            self.activity.end();
        }
        let pending = self.pending_start.as_ref().map(|p| p.link);
        let current = self.session.as_ref().map(|s| s.link.id);
        if pending != Some(link) && current != Some(link) {
            // A socket the client gave up (or left open: fault `second-socket`); a pong on it
            // still ends a settle, its close answers a `background` waiting for it, the rest
            // is stale.
            match event {
                SocketEvent::Frame(HubFrame::Pong { nonce }) => self.ponged(nonce),
                SocketEvent::Closed => {
                    let (done, waiting) = std::mem::take(&mut self.closing)
                        .into_iter()
                        .partition(|(l, _)| *l == link);
                    self.closing = waiting;
                    for (_, responder) in done {
                        responder.done();
                    }
                }
                SocketEvent::Frame(_) => {}
            }
            return;
        }
        match event {
            SocketEvent::Frame(HubFrame::Welcome { seq, .. }) => match self.session.as_mut() {
                // A socket opened without a resume point starts at the log's end.
                Some(s) => s.link.last_seq = s.link.last_seq.max(Some(seq)),
                None => self.welcome = Some(seq),
            },
            SocketEvent::Frame(HubFrame::Pong { nonce }) => self.ponged(nonce),
            SocketEvent::Frame(HubFrame::Heartbeat { nonce }) => self.heartbeat_echoed(link, nonce),
            SocketEvent::Frame(
                frame @ (HubFrame::TokenAboutToExpire { .. }
                | HubFrame::TokenExpired
                | HubFrame::TokenUpdated { .. }
                | HubFrame::TokenRejected { .. }),
            ) => self.token_frame(frame),
            SocketEvent::Frame(HubFrame::Event(frame)) => {
                if self.session.is_none() {
                    // The socket is up before the client is: keep what arrives until it is.
                    self.early_frames.push(*frame);
                    return;
                }
                self.epoch += 1;
                if let Some(s) = self.session.as_mut() {
                    if s.link.last_seq.is_some_and(|last| frame.seq <= last) {
                        // Delivered before (a replay overlapping what arrived): once is enough.
                        return;
                    }
                    s.link.last_seq = Some(frame.seq);
                }
                self.frame(*frame);
            }
            SocketEvent::Closed => {
                self.epoch += 1;
                self.socket_closed(link);
            }
        }
    }

    fn task(&mut self, result: TaskResult) {
        match result {
            TaskResult::Started { responder, result } => self.started(responder, result),
            TaskResult::Reconnected { link, result } => self.reconnected(link, result),
            TaskResult::Refreshed { result } => self.refreshed(result),
            TaskResult::Nothing => {}
            TaskResult::HeartbeatDue { link } => self.heartbeat_due(link),
            TaskResult::ListPage { result } => {
                self.lane_done();
                self.list_page(result)
            }
            TaskResult::User { result } => {
                self.lane_done();
                self.user(result)
            }
            TaskResult::Metadata { sid, result } => {
                self.lane_done();
                self.metadata(sid, result)
            }
            TaskResult::Participants { sid, result } => {
                self.lane_done();
                self.participants(sid, result)
            }
            TaskResult::Ack {
                responder,
                target,
                written,
                result,
            } => self.acked(responder, target, written, result),
            TaskResult::Sent { responder, result } => match result {
                Ok(ok) => responder.ok(ReplyBody::Sent {
                    index: ok.body.index,
                }),
                Err(e) => responder.answer(crate::adapter::Outcome::Error(e)),
            },
            TaskResult::Messages {
                responder,
                sid,
                result,
            } => self.messages(responder, sid, result),
            TaskResult::Registered { storage, result } => self.registered(&storage, result),
            TaskResult::Count {
                responder,
                conversation,
                kind,
                result,
            } => self.counted(responder, conversation, kind, result),
        }
    }
}
