//! The records the model keeps: users, conversations, participants, messages, and the attribute
//! snapshots that give objects their revisions.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
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
    /// When its unread count last changed (joining, then any message added or removed, or a
    /// read-horizon write, that moved it).
    pub unread_changed: VirtualInstant,
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
    /// When its participant count last changed (creation, a participant added or removed).
    pub participants_changed: VirtualInstant,
    /// When its message count last changed (creation, a message added or removed).
    pub messages_changed: VirtualInstant,
}

impl ConversationRecord {
    /// Whether `identity` takes part.
    pub fn has_participant(&self, identity: &str) -> bool {
        self.participants.iter().any(|p| p.identity == identity)
    }

    /// `p`'s unread count: the messages after its read horizon, unknown (`None`) until it has
    /// one (what the user-conversation resource answers).
    pub fn unread(&self, p: &ParticipantRecord) -> Option<u64> {
        p.last_read_message_index.map(|i| {
            self.messages
                .range((Bound::Excluded((i, u64::MAX)), Bound::Unbounded))
                .count() as u64
        })
    }

    /// Every participant's unread count now, in join order.
    pub fn unread_counts(&self) -> Vec<Option<u64>> {
        self.participants.iter().map(|p| self.unread(p)).collect()
    }

    /// Stamps `at` on every participant whose unread count is no longer what `before` says (a
    /// change that leaves a count as it was does not move its instant).
    pub fn unread_moved(&mut self, before: &[Option<u64>], at: VirtualInstant) {
        let after = self.unread_counts();
        for ((p, was), now) in self.participants.iter_mut().zip(before).zip(after) {
            if *was != now {
                p.unread_changed = at;
            }
        }
    }

    /// Its participants' identities.
    pub fn members(&self) -> Vec<String> {
        self.participants
            .iter()
            .map(|p| p.identity.clone())
            .collect()
    }
}

/// The push technology a binding delivers through (the registration write takes these three).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BindingType {
    /// Apple Push Notification service.
    Apn,
    /// Firebase Cloud Messaging.
    Fcm,
    /// Google Cloud Messaging (legacy).
    Gcm,
}

impl BindingType {
    /// Every type, in a stable order.
    pub const ALL: [BindingType; 3] = [Self::Apn, Self::Fcm, Self::Gcm];

    /// The wire name (`apn`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Apn => "apn",
            Self::Fcm => "fcm",
            Self::Gcm => "gcm",
        }
    }
}

impl fmt::Display for BindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for BindingType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown binding type `{s}`: expected apn, fcm or gcm"))
    }
}

/// The message types a binding is subscribed to when the registration names none.
pub const DEFAULT_MESSAGE_TYPES: [&str; 3] = [
    "new_message",
    "added_to_conversation",
    "removed_from_conversation",
];

/// A push binding: one device address registered by one identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingRecord {
    /// `BS...`
    pub sid: String,
    /// Registration order (the list's position).
    pub seq: u64,
    /// Chat identity.
    pub identity: String,
    /// The device token.
    pub address: String,
    /// Push technology.
    pub binding_type: BindingType,
    /// The message types it is subscribed to.
    pub message_types: Vec<String>,
    /// Created at.
    pub created: VirtualInstant,
    /// Last registration write.
    pub updated: VirtualInstant,
    /// Last activity: a registration write, or an event-channel connection of its identity.
    pub last_active: VirtualInstant,
}

impl BindingRecord {
    /// When it expires if nothing happens meanwhile.
    pub fn expires_at(&self) -> VirtualInstant {
        self.last_active.plus(BINDING_IDLE_EXPIRY)
    }
}

/// How long a binding lives without activity: the service's "one year of idle time".
pub const BINDING_IDLE_EXPIRY: Duration = Duration::from_secs(365 * 86_400);
