//! The reference client's engine: one task that owns all client state.
//!
//! It takes the harness's commands and the results of its own background work (REST calls,
//! event frames) as inputs, one at a time, so its state needs no locks. Concerns live in files of
//! their own: `session` (start, logout, kill), `sync` (the fetch lane and sync statuses), `ops`
//! (operations that wait for synchronization), `updates` (snapshots and updates completing on
//! their events), `list` (merging pages and events), `frames` (what each event means),
//! `messages` (handles and messages) and `settle` (quiescence). It follows the documented
//! lifecycle unless the [`Policy`] says a fault switched a behaviour off.

mod frames;
mod list;
mod messages;
mod ops;
mod session;
mod settle;
mod state;
mod sync;
mod updates;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Config;
use super::net::{Activity, Fetched, SocketEvent};
use super::policy::Policy;
use crate::adapter::{
    Command, CommandError, Commands, ErrorKind, Inspection, Observation, Observer, ReplyBody,
    Responder, Target,
};
use crate::clock::VirtualClock;
use crate::wire::resources::{Conversation, ConversationsPage, Message, MessagesPage, User};
use crate::wire::{ConversationSid, EventFrame};

use state::{Op, PendingStart, Session, SettleWaiter};

/// Something for the engine to handle besides a command.
pub(super) enum Input {
    /// The event socket delivered something.
    Socket(SocketEvent),
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
        responder: Responder,
        result: Result<(String, mpsc::UnboundedSender<String>), CommandError>,
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
        match command {
            Command::Start {
                identity,
                token_url,
                events_url,
                rest_url,
                ..
            } => self.start(responder, identity, token_url, rest_url, events_url),
            Command::Logout => {
                self.shut_down();
                responder.done();
            }
            Command::Kill => {
                self.drop_session();
                responder.done();
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
            Command::AdvanceTime { ms } => {
                self.clock.advance(Duration::from_millis(ms));
                responder.done();
            }
            Command::Settle => self.begin_settle(responder),
            Command::Inspect => responder.ok(ReplyBody::Inspection(self.inspect())),
            other => responder.error(
                ErrorKind::Unsupported,
                format!(
                    "the reference client does not implement `{}` yet",
                    other.name()
                ),
            ),
        }
    }

    fn inspect(&self) -> Inspection {
        let Some(s) = &self.session else {
            return Inspection::default();
        };
        Inspection {
            instance: Some(s.instance.clone()),
            connection: Some(if s.connected {
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
            Input::Socket(SocketEvent::Frame(crate::wire::HubFrame::Pong { nonce })) => {
                self.ponged(nonce)
            }
            Input::Socket(SocketEvent::Frame(crate::wire::HubFrame::Event(frame))) => {
                if self.session.is_none() && self.pending_start.is_some() {
                    // The socket is up before the client is: keep what arrives until it is.
                    self.early_frames.push(*frame);
                } else {
                    self.epoch += 1;
                    self.frame(*frame);
                }
            }
            Input::Socket(SocketEvent::Closed) => {
                self.epoch += 1;
                if let Some(s) = self.session.as_mut() {
                    s.connected = false;
                    self.observe(Observation::ConnectionState {
                        state: crate::adapter::ConnectionState::Disconnected,
                    });
                }
            }
            Input::Task { generation, result } => {
                self.epoch += 1;
                if generation == self.generation {
                    self.activity.end();
                    self.task(*result);
                }
            }
        }
    }

    fn task(&mut self, result: TaskResult) {
        match result {
            TaskResult::Started { responder, result } => self.started(responder, result),
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
        }
    }
}
