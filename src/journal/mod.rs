//! The journal: one ordered record of everything that happened in a scenario.
//!
//! The backend records its [`Fact`]s through the [`Recorder`] this journal implements (every
//! REST request with the endpoint it was classified as, every frame put on a socket, every
//! control); the harness's driver records the commands it sent, the replies and observations it
//! received, the virtual time it let pass and the truth it checked against. One sequence number
//! orders them all, every entry carries virtual time, and tokens are never stored: every entry
//! passes through [`Secrets`] on its way in. Checks judge the journal; reports quote it.
//!
//! Must not import: the harness, the scenario runner, the checks, the rules, the report.

mod summary;
pub use summary::{Flow, Party};

use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::adapter::{Command, CommandKind, Observation, Outcome, WireOutcome};
use crate::backend::{Control, CountsTruth, Fact, FrameFact, PublishedFact, Recorder, RequestFact};
use crate::clock::{VirtualClock, VirtualInstant};
use crate::secrets::Secrets;
use crate::wire::{ConversationSid, InstanceId};

/// A reply as the journal keeps it: with the command it answers, so its body can be read back.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ReplyRecord {
    /// The request's id.
    pub id: u64,
    /// Which command it answers.
    pub command: CommandKind,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl<'de> Deserialize<'de> for ReplyRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            id: u64,
            command: CommandKind,
            #[serde(flatten)]
            outcome: WireOutcome,
        }
        let raw = Raw::deserialize(d)?;
        let outcome =
            Outcome::decode(raw.command, raw.outcome).map_err(serde::de::Error::custom)?;
        Ok(Self {
            id: raw.id,
            command: raw.command,
            outcome,
        })
    }
}

/// What the harness checked the client against at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "checkpoint", rename_all = "snake_case")]
pub enum Checkpoint {
    /// The backend's subscribed list of `user` now: the client's next list must equal it.
    SubscribedList {
        /// Whose list.
        user: String,
        /// The conversations the backend lists for them.
        conversations: Vec<ConversationSid>,
    },
    /// The backend's counts of a conversation for the identity the client runs as, recorded
    /// just before the `get_count` command that follows it.
    Counts(CountsTruth),
    /// The count-cache lifetime this scenario's count reads are judged with (the documented
    /// 5 s when no entry says otherwise).
    CountCacheLifetime {
        /// Milliseconds.
        ms: u64,
    },
}

/// What the harness did or heard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HarnessEntry {
    /// The harness sent a command.
    Command {
        /// Request id.
        id: u64,
        /// The command.
        command: Command,
    },
    /// The adapter replied.
    Reply(ReplyRecord),
    /// The adapter reported an observation.
    Observation {
        /// What it saw.
        observation: Observation,
    },
    /// A line of adapter log output (redacted).
    Log {
        /// The line.
        line: String,
    },
    /// A settle step gave up: the client was still busy (the journal grew in every round) after
    /// this many settle rounds, and the scenario went on regardless.
    Restless {
        /// Settle rounds taken.
        rounds: u32,
    },
    /// Virtual time passed for the backend and the adapter.
    TimePassed {
        /// How much.
        ms: u64,
    },
    /// The harness recorded what the client must be checked against.
    Checkpoint(Checkpoint),
}

/// One journal entry's content: a backend fact or a harness entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EntryKind {
    /// Recorded by the backend.
    Backend(Fact),
    /// Recorded by the harness.
    Harness(HarnessEntry),
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// Global order within the scenario.
    pub seq: u64,
    /// Virtual time of the harness clock.
    pub at: VirtualInstant,
    /// The client instance involved, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EntryKind,
}

impl Entry {
    /// The REST request this entry records, if it is one.
    pub fn request(&self) -> Option<&RequestFact> {
        match &self.kind {
            EntryKind::Backend(Fact::Request(r)) => Some(r),
            _ => None,
        }
    }

    /// The event frame this entry records, if it is one.
    pub fn frame(&self) -> Option<&FrameFact> {
        match &self.kind {
            EntryKind::Backend(Fact::Frame(f)) => Some(f),
            _ => None,
        }
    }

    /// The publication this entry records, if it is one.
    pub fn published(&self) -> Option<&PublishedFact> {
        match &self.kind {
            EntryKind::Backend(Fact::Published(p)) => Some(p),
            _ => None,
        }
    }

    /// The control this entry records, if it is one.
    pub fn control(&self) -> Option<&Control> {
        match &self.kind {
            EntryKind::Backend(Fact::Control(c)) => Some(c),
            _ => None,
        }
    }

    /// The command this entry records, with its request id, if it is one.
    pub fn command(&self) -> Option<(u64, &Command)> {
        match &self.kind {
            EntryKind::Harness(HarnessEntry::Command { id, command }) => Some((*id, command)),
            _ => None,
        }
    }

    /// The reply this entry records, if it is one.
    pub fn reply(&self) -> Option<&ReplyRecord> {
        match &self.kind {
            EntryKind::Harness(HarnessEntry::Reply(r)) => Some(r),
            _ => None,
        }
    }

    /// The observation this entry records, if it is one.
    pub fn observation(&self) -> Option<&Observation> {
        match &self.kind {
            EntryKind::Harness(HarnessEntry::Observation { observation }) => Some(observation),
            _ => None,
        }
    }

    /// The checkpoint this entry records, if it is one.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        match &self.kind {
            EntryKind::Harness(HarnessEntry::Checkpoint(c)) => Some(c),
            _ => None,
        }
    }
}

/// The shared, append-only journal of one scenario. Cheap to clone: clones share the entries.
#[derive(Clone, Debug)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
    clock: VirtualClock,
    secrets: Secrets,
}

impl Journal {
    /// An empty journal stamping entries with `clock`'s time, redacting `secrets`.
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
        e.push(self.redact(entry));
        seq
    }

    /// Appends a harness entry; returns its sequence number.
    pub fn note(&self, instance: Option<InstanceId>, entry: HarnessEntry) -> u64 {
        self.record(instance, EntryKind::Harness(entry))
    }

    /// `entry` with every known token replaced by its fingerprint.
    fn redact(&self, entry: Entry) -> Entry {
        let Ok(text) = serde_json::to_string(&entry) else {
            return entry;
        };
        if !self.secrets.leaks(&text) {
            return entry;
        }
        serde_json::from_str(&self.secrets.redact(&text)).unwrap_or_else(|_| Entry {
            kind: EntryKind::Harness(HarnessEntry::Log {
                line: "(entry withheld: it held a token and could not be redacted)".into(),
            }),
            ..entry
        })
    }

    /// A copy of every entry so far.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A copy of the entries after sequence number `seq`.
    pub fn since(&self, seq: u64) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let from = usize::try_from(seq)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        entries[from..].to_vec()
    }

    /// The sequence number of the newest entry (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    /// The redactor for this run's tokens.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

impl Recorder for Journal {
    fn record(&self, instance: Option<InstanceId>, fact: Fact) {
        Journal::record(self, instance, EntryKind::Backend(fact));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::ReplyBody;
    use crate::backend::Endpoint;
    use serde_json::json;

    fn journal() -> Journal {
        Journal::new(VirtualClock::new(), Secrets::default())
    }

    #[test]
    fn entries_round_trip_through_json() {
        let j = journal();
        j.record(
            Some("ref-1".into()),
            EntryKind::Backend(Fact::Request(RequestFact {
                method: "GET".into(),
                path: "/v1/Users/alice/Conversations".into(),
                query: None,
                endpoint: Endpoint::UserConversations {
                    user: "alice".into(),
                    page: 1,
                    last: true,
                    items: vec!["CH1".into()],
                },
                status: 200,
                revision: None,
                attributes: None,
                token: None,
                error: None,
                issued: None,
                token_in_url: false,
            })),
        );
        j.note(
            None,
            HarnessEntry::Reply(ReplyRecord {
                id: 2,
                command: CommandKind::ReadAttributes,
                outcome: Outcome::Ok(ReplyBody::Attributes {
                    attributes: json!({"a": 1}),
                }),
            }),
        );
        j.note(None, HarnessEntry::TimePassed { ms: 1000 });
        for e in j.snapshot() {
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Entry>(&text).unwrap(), e, "{text}");
        }
    }

    #[test]
    fn a_token_never_reaches_an_entry() {
        let secrets = Secrets::default();
        secrets.register("eyJ.secret.token");
        let j = Journal::new(VirtualClock::new(), secrets);
        j.note(
            None,
            HarnessEntry::Log {
                line: "using eyJ.secret.token".into(),
            },
        );
        let text = serde_json::to_string(&j.snapshot()).unwrap();
        assert!(!text.contains("eyJ.secret.token"), "{text}");
        assert!(text.contains("tok:"), "{text}");
    }
}
