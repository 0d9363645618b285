//! The journal: one ordered record of everything that happened in a scenario.
//!
//! The backend writes every REST request (with the endpoint it was classified as, the status it
//! got and a token fingerprint) and every event frame it put on a socket; the scenario driver
//! writes the commands it sent, the replies and observations it received and the controls it
//! applied. One sequence number orders them all, and every entry carries virtual time, so checks
//! can say "the reply came before the event" and reports can quote the trace. Tokens are never
//! stored: [`Secrets`] turns them into fingerprints.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::adapter::{Command, Observation, Outcome};
use crate::clock::{VirtualClock, VirtualInstant};

/// A client instance id, as sent in `X-Convo-Client`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub String);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token's fingerprint: `tok:` and the first 12 hex digits of its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenFingerprint(pub String);

impl TokenFingerprint {
    /// The fingerprint of `token`.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self(format!("tok:{hex}"))
    }
}

/// Every token minted in a run, so any text can be scrubbed of them.
#[derive(Clone, Default, Debug)]
pub struct Secrets {
    tokens: Arc<Mutex<Vec<(String, TokenFingerprint)>>>,
}

impl Secrets {
    /// Remembers a token to redact.
    pub fn register(&self, token: &str) {
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.push((token.to_owned(), TokenFingerprint::of(token)));
    }

    /// A copy of `entry` with every known token replaced by its fingerprint, wherever it hides.
    pub fn redact_entry(&self, entry: &Entry) -> Entry {
        let text = serde_json::to_string(entry).unwrap_or_default();
        let clean = self.redact(&text);
        if clean == text {
            return entry.clone();
        }
        serde_json::from_str(&clean).unwrap_or_else(|_| Entry {
            kind: EntryKind::Log {
                line: "(entry withheld: it held a token and could not be redacted)".into(),
            },
            ..entry.clone()
        })
    }

    /// `text` with every known token replaced by its fingerprint.
    pub fn redact(&self, text: &str) -> String {
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_owned();
        for (token, fp) in t.iter() {
            if out.contains(token.as_str()) {
                out = out.replace(token.as_str(), &fp.0);
            }
        }
        out
    }
}

/// What the REST layer took a request for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "endpoint", rename_all = "snake_case")]
pub enum Endpoint {
    /// The app's token generator.
    Token,
    /// A page of the user's subscribed conversations.
    UserConversations {
        /// Zero-based page number.
        page: u32,
        /// Whether it was the final page.
        last: bool,
        /// The conversation sids the page listed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<String>,
    },
    /// Read the user.
    GetUser,
    /// Update the user (a client-level operation).
    UpdateUser,
    /// Read a conversation.
    GetConversation {
        /// Conversation sid.
        sid: String,
    },
    /// Update a conversation (a conversation operation).
    UpdateConversation {
        /// Conversation sid.
        sid: String,
    },
    /// Read a conversation's participants.
    Participants {
        /// Conversation sid.
        sid: String,
    },
    /// Read a conversation's messages.
    Messages {
        /// Conversation sid.
        sid: String,
    },
    /// Send a message (a conversation operation).
    SendMessage {
        /// Conversation sid.
        sid: String,
    },
    /// Nothing we serve.
    Unknown,
}

/// How a request relates to synchronization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationClass<'a> {
    /// Part of fetching state (allowed any time).
    Sync,
    /// An operation on the client as a whole.
    ClientOperation,
    /// An operation on one conversation.
    ConversationOperation(&'a str),
    /// Neither.
    Other,
}

impl Endpoint {
    /// The journal names of every endpoint.
    pub const NAMES: &'static [&'static str] = &[
        "token",
        "user_conversations",
        "get_user",
        "update_user",
        "get_conversation",
        "update_conversation",
        "participants",
        "messages",
        "send_message",
        "unknown",
    ];

    /// The endpoint's journal name (`update_conversation`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::UserConversations { .. } => "user_conversations",
            Self::GetUser => "get_user",
            Self::UpdateUser => "update_user",
            Self::GetConversation { .. } => "get_conversation",
            Self::UpdateConversation { .. } => "update_conversation",
            Self::Participants { .. } => "participants",
            Self::Messages { .. } => "messages",
            Self::SendMessage { .. } => "send_message",
            Self::Unknown => "unknown",
        }
    }

    /// How this endpoint relates to synchronization.
    pub fn class(&self) -> OperationClass<'_> {
        match self {
            Self::UserConversations { .. }
            | Self::GetUser
            | Self::GetConversation { .. }
            | Self::Participants { .. }
            | Self::Messages { .. } => OperationClass::Sync,
            Self::UpdateUser => OperationClass::ClientOperation,
            Self::UpdateConversation { sid } | Self::SendMessage { sid } => {
                OperationClass::ConversationOperation(sid)
            }
            Self::Token | Self::Unknown => OperationClass::Other,
        }
    }
}

/// One journal entry's content.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A REST request and the status it was answered with.
    Request {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// Query string, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Classification.
        #[serde(flatten)]
        endpoint: Endpoint,
        /// Response status.
        status: u16,
        /// The object revision the response carried, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
        /// Fingerprint of the token presented.
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<TokenFingerprint>,
        /// Why it was refused, if it was.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An event channel was opened by a client.
    Connected {
        /// The replay point the client asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// An event channel closed.
    Disconnected,
    /// An event frame was written to a client's socket.
    Frame {
        /// The event's sequence number.
        event_seq: u64,
        /// The event type (`conversation_updated`).
        event: String,
        /// The object it concerns (`CH...` or `user:alice`).
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The object's revision in the event.
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
        /// The message index, for message events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u64>,
    },
    /// The harness sent a command.
    Command {
        /// Request id.
        id: u64,
        /// The command.
        command: Command,
    },
    /// The adapter replied.
    Reply {
        /// Request id.
        id: u64,
        /// The outcome.
        outcome: Outcome,
    },
    /// The adapter reported an observation.
    Observation {
        /// What it saw.
        observation: Observation,
    },
    /// The harness changed the backend or the world (gate, hold, another writer...).
    Control {
        /// Description.
        action: String,
    },
    /// A line of adapter log output (redacted).
    Log {
        /// The line.
        line: String,
    },
}

/// One journal entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Global order within the scenario.
    pub seq: u64,
    /// Virtual time of the harness clock.
    pub at: VirtualInstant,
    /// The client instance involved, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EntryKind,
}

impl Entry {
    /// A one-line human description: `#12 t+1.000s [ref-1] POST /v1/... → 200 (revision 3)`.
    pub fn summary(&self) -> String {
        let json = |v: &dyn erased::Json| v.json();
        let what = match &self.kind {
            EntryKind::Request {
                method,
                path,
                query,
                endpoint,
                status,
                revision,
                error,
                ..
            } => {
                let mut s = format!("{method} {path}");
                if let Some(q) = query {
                    s.push('?');
                    s.push_str(q);
                }
                s.push_str(&format!(" → {status}"));
                if let (Endpoint::UserConversations { page, last, items }, 200) = (endpoint, status)
                {
                    s.push_str(&format!(
                        " (page {}{}: {} conversation(s){})",
                        page + 1,
                        if *last { ", the last" } else { "" },
                        items.len(),
                        match (items.first(), items.last()) {
                            (Some(a), Some(b)) if items.len() > 1 => format!(", {a} … {b}"),
                            (Some(a), _) => format!(", {a}"),
                            _ => String::new(),
                        }
                    ));
                }
                if let Some(r) = revision {
                    s.push_str(&format!(" (revision {r})"));
                }
                if let Some(e) = error {
                    s.push_str(&format!(": {e}"));
                }
                s
            }
            EntryKind::Frame {
                event,
                target,
                revision,
                event_seq,
                index,
            } => format!(
                "event {event} about {}{} at revision {} (event seq {event_seq}) delivered",
                target.as_deref().unwrap_or("?"),
                index.map_or_else(String::new, |i| format!(" message {i}")),
                revision.map_or_else(|| "?".to_owned(), |r| r.to_string())
            ),
            EntryKind::Command { id, command } => format!("command {id}: {}", json(command)),
            EntryKind::Reply { id, outcome } => format!("reply to command {id}: {}", json(outcome)),
            EntryKind::Observation { observation } => format!("observed {}", json(observation)),
            EntryKind::Connected { since } => match since {
                Some(s) => format!("event channel opened, replaying after seq {s}"),
                None => "event channel opened".into(),
            },
            EntryKind::Disconnected => "event channel closed".into(),
            EntryKind::Control { action } => format!("harness: {action}"),
            EntryKind::Log { line } => format!("log: {line}"),
        };
        let who = self
            .instance
            .as_ref()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
        format!("#{} {}{who} {what}", self.seq, self.at)
    }
}

mod erased {
    /// Compact JSON of anything serializable, for summaries.
    pub(super) trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// The shared, append-only journal of one scenario.
#[derive(Clone, Debug)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
    clock: VirtualClock,
    secrets: Secrets,
}

impl Journal {
    /// An empty journal stamping entries with `clock`'s time.
    pub fn new(clock: VirtualClock, secrets: Secrets) -> Self {
        Self {
            entries: Arc::default(),
            clock,
            secrets,
        }
    }

    /// Appends an entry, with every known token replaced by its fingerprint wherever it hides
    /// (a log line, an error message an adapter echoed, a command); returns its sequence number.
    pub fn record(&self, instance: Option<InstanceId>, kind: EntryKind) -> u64 {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let seq = e.len() as u64 + 1;
        let entry = Entry {
            seq,
            at: self.clock.now(),
            instance,
            kind,
        };
        e.push(self.secrets.redact_entry(&entry));
        seq
    }

    /// A copy of every entry so far.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len() as u64 + 1
    }

    /// The redactor for this run's tokens.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}
