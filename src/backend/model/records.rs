//! The records the model keeps: users, conversations, participants, messages, and the attribute
//! snapshots that give objects their revisions.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::clock::VirtualInstant;
use crate::wire::ConversationSid;

/// One remembered version of an object's attributes.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Revision it had.
    pub revision: u64,
    /// Its attributes.
    pub attributes: Value,
    /// When it was written.
    pub at: VirtualInstant,
}

/// An object's attribute history, newest last; never empty.
#[derive(Clone, Debug)]
pub struct History(Vec<Snapshot>);

impl History {
    /// A history starting at revision 1 with `attributes`.
    pub fn new(attributes: Value, at: VirtualInstant) -> Self {
        Self(vec![Snapshot {
            revision: 1,
            attributes,
            at,
        }])
    }

    /// The newest snapshot.
    pub fn current(&self) -> &Snapshot {
        self.0
            .last()
            .expect("a history is created with its first snapshot")
    }

    /// The snapshot before the newest, if any (what a stale delivery re-sends).
    pub fn previous(&self) -> Option<&Snapshot> {
        self.0.iter().rev().nth(1)
    }

    /// Writes a new revision; returns it.
    pub fn write(&mut self, attributes: Value, at: VirtualInstant) -> u64 {
        let revision = self.current().revision + 1;
        self.0.push(Snapshot {
            revision,
            attributes,
            at,
        });
        revision
    }
}

/// A user.
#[derive(Clone, Debug)]
pub struct UserRecord {
    /// `US...`
    pub sid: String,
    /// Chat identity.
    pub identity: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Created at.
    pub created: VirtualInstant,
    /// Attribute history.
    pub history: History,
}

/// A participant of a conversation.
#[derive(Clone, Debug)]
pub struct ParticipantRecord {
    /// `MB...`
    pub sid: String,
    /// Chat identity.
    pub identity: String,
    /// Joined at.
    pub created: VirtualInstant,
    /// Read horizon: the index of the last message read (none until the participant sets it).
    pub last_read_message_index: Option<u64>,
    /// `default` or `muted`.
    pub notification_level: String,
}

/// A message.
#[derive(Clone, Debug)]
pub struct MessageRecord {
    /// `IM...`
    pub sid: String,
    /// Index within the conversation.
    pub index: u64,
    /// Author identity.
    pub author: String,
    /// Text.
    pub body: String,
    /// Attributes (a JSON value).
    pub attributes: Value,
    /// Created at.
    pub created: VirtualInstant,
    /// Last changed at.
    pub updated: VirtualInstant,
}

/// A conversation.
#[derive(Clone, Debug)]
pub struct ConversationRecord {
    /// `CH...`
    pub sid: ConversationSid,
    /// Creation order.
    pub created_index: u64,
    /// Unique name, if any.
    pub unique_name: Option<String>,
    /// Display name.
    pub friendly_name: Option<String>,
    /// `active`, `inactive` or `closed`.
    pub state: String,
    /// Who created it.
    pub created_by: String,
    /// Created at.
    pub created: VirtualInstant,
    /// Last activity stamp (creation, messages, bumps): orders the by-activity list.
    pub activity: u64,
    /// Attribute history.
    pub history: History,
    /// Participants.
    pub participants: Vec<ParticipantRecord>,
    /// Messages by `(index, 0)`; indices keep increasing after removals.
    pub messages: BTreeMap<(u64, u64), MessageRecord>,
    /// The index the next message gets.
    pub next_message_index: u64,
}

impl ConversationRecord {
    /// Whether `identity` takes part.
    pub fn has_participant(&self, identity: &str) -> bool {
        self.participants.iter().any(|p| p.identity == identity)
    }

    /// Its participants' identities.
    pub fn members(&self) -> Vec<String> {
        self.participants
            .iter()
            .map(|p| p.identity.clone())
            .collect()
    }
}
