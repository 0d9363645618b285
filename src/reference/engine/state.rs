//! The engine's state, as plain data: what a client session holds, the operations and updates
//! waiting in it, and the fetches of its synchronization lane. The behaviour lives in the
//! sibling files, one concern each; they share these types and nothing else.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::adapter::{ClientSyncStatus, ConversationSyncStatus, HandleId, Responder, Target};
use crate::reference::net::Rest;
use crate::wire::{ConversationSid, InstanceId};

/// An object's attributes as the client shows them, and the revision they came with.
pub(super) struct Object {
    pub(super) attributes: Value,
    pub(super) revision: u64,
    /// The newest revision the client knows exists (an acknowledgement told it): a snapshot
    /// older than this is stale even if it is newer than what is shown.
    pub(super) floor: u64,
}

impl Object {
    pub(super) fn unknown() -> Self {
        Self {
            attributes: json!({}),
            revision: 0,
            floor: 0,
        }
    }
}

/// A conversation the client knows.
pub(super) struct Conversation {
    pub(super) sync: ConversationSyncStatus,
    pub(super) object: Object,
}

/// What a `start` named: the login and where the backend is.
#[derive(Clone, Debug)]
pub(super) struct Login {
    pub(super) identity: String,
    pub(super) token_url: String,
    pub(super) rest_url: String,
    pub(super) events_url: String,
    /// The app's persistent storage.
    pub(super) storage: crate::reference::storage::Storage,
    /// The push device token the OS handed the app.
    pub(super) device_token: Option<String>,
}

/// An access token the client holds, and when it expires.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) token: String,
    pub(crate) expires_at: crate::clock::VirtualInstant,
    /// Fetched from the generator just now (not taken from storage).
    pub(crate) fetched: bool,
}

/// A `start` whose client does not exist yet: its token and socket are being set up.
pub(super) struct PendingStart {
    pub(super) instance: InstanceId,
    pub(super) login: Login,
    /// The socket number its first socket delivers under.
    pub(super) link: u64,
}

/// The event connection of a client instance.
pub(super) struct Link {
    /// The number of the socket open or being opened; events of other sockets are stale.
    pub(super) id: u64,
    pub(super) state: LinkState,
    /// The last event sequence number received: a reconnect resumes after it.
    pub(super) last_seq: Option<u64>,
    /// Attempts that failed since a socket was last open.
    pub(super) failures: u32,
    /// The heartbeat sent and not echoed yet.
    pub(super) heartbeat: Option<u64>,
    /// Sockets left open behind (fault `second-socket`).
    pub(super) leaked: Vec<mpsc::UnboundedSender<String>>,
}

/// Where the event connection is.
pub(super) enum LinkState {
    /// Open: frames to the hub go here.
    Open(mpsc::UnboundedSender<String>),
    /// A connection attempt is waiting out its backoff or in flight.
    Reconnecting,
    /// Closed on purpose (the app is in the background): no attempts.
    Parked,
}

impl Link {
    pub(super) fn open(id: u64, events: mpsc::UnboundedSender<String>, at: Option<u64>) -> Self {
        Self {
            id,
            state: LinkState::Open(events),
            last_seq: at,
            failures: 0,
            heartbeat: None,
            leaked: Vec::new(),
        }
    }

    /// The open socket's sender.
    pub(super) fn sender(&self) -> Option<&mpsc::UnboundedSender<String>> {
        match &self.state {
            LinkState::Open(tx) => Some(tx),
            _ => None,
        }
    }
}

/// Everything one client instance holds.
pub(super) struct Session {
    pub(super) instance: InstanceId,
    pub(super) login: Login,
    pub(super) rest: Rest,
    pub(super) link: Link,
    /// The app is in the background.
    pub(super) background: bool,
    pub(super) sync: ClientSyncStatus,
    pub(super) list_done: bool,
    pub(super) user: Object,
    pub(super) conversations: BTreeMap<ConversationSid, Conversation>,
    pub(super) waiting_ops: Vec<(Responder, Op)>,
    pub(super) awaited: Vec<AwaitedUpdate>,
    /// Synchronization fetches, run one at a time so the client's traffic has one order.
    pub(super) lane: VecDeque<SyncJob>,
    pub(super) lane_busy: bool,
    /// The app's list of conversations, in the order it learned them.
    pub(super) list: Vec<ConversationSid>,
    /// Conversations removed by an event: a page cannot bring them back.
    pub(super) tombstones: BTreeSet<ConversationSid>,
    /// Message indices the app fetched, per conversation.
    pub(super) fetched: BTreeMap<ConversationSid, BTreeSet<u64>>,
    /// Live handles and the conversation each is on.
    pub(super) handles: BTreeMap<HandleId, ConversationSid>,
    /// A `start` whose reply waits for the whole list (policy `start_before_list` off).
    pub(super) start_reply: Option<(Responder, InstanceId)>,
    /// When the token in use expires.
    pub(super) token_expires: crate::clock::VirtualInstant,
    /// A token refresh is in flight.
    pub(super) refreshing: bool,
    /// The client noticed (and reported) that its token expired.
    pub(super) expiry_seen: bool,
    /// Counts read, by conversation and kind: when each was fetched, and its value.
    pub(super) counts: std::collections::HashMap<
        (ConversationSid, crate::adapter::CountKind),
        (crate::clock::VirtualInstant, Option<u64>),
    >,
    /// Count reads waiting on a fetch already in flight, by conversation and resource
    /// (`true`: the unread count's), so concurrent reads make one request.
    pub(super) count_waiters:
        BTreeMap<(ConversationSid, bool), Vec<(Responder, crate::adapter::CountKind)>>,
}

/// An operation that must wait for synchronization.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Update {
        target: Target,
        attributes: Value,
    },
    Send {
        conversation: ConversationSid,
        body: String,
    },
}

impl Op {
    pub(super) fn conversation(&self) -> Option<&ConversationSid> {
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

/// One synchronization fetch.
#[derive(Clone, Debug)]
pub(super) enum SyncJob {
    /// A page of the subscribed list (URL relative to the REST base, or absolute).
    Page(String),
    /// The user's own resource.
    User,
    /// A conversation's resource.
    Metadata(ConversationSid),
    /// A conversation's participants.
    Participants(ConversationSid),
}

/// `s` percent-encoded as one URL path segment.
pub(super) fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An update acknowledged by the backend, waiting for its Updated event.
pub(super) struct AwaitedUpdate {
    pub(super) responder: Responder,
    pub(super) target: Target,
    pub(super) revision: u64,
    pub(super) written: Value,
}

/// How the client learned of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// A page of the subscribed list.
    Page,
    /// A `conversation_added` event.
    Added,
    /// Any other event about it (an update, a message).
    Event,
}

/// A `settle` waiting for quiet.
pub(super) struct SettleWaiter {
    pub(super) responder: Responder,
    /// The ping whose pong is awaited, if any.
    pub(super) nonce: Option<u64>,
    /// The engine's epoch when the last ping went out.
    pub(super) epoch: u64,
}
