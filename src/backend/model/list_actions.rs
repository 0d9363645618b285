//! Changes to the subscribed list that scenarios and properties make, now or at an exact point
//! of the client's walk through the pages ([`At`]).
//!
//! Each action changes the truth and returns the events a real service would publish (or, where
//! the scenario says so, deliberately none: a quiet insert, a removal the list index lags behind).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Model, PendingEvent};
use crate::wire::{ConversationSid, EventType, ObjectKey};

/// A point in the client's walk through its subscribed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "point", content = "page", rename_all = "snake_case")]
pub enum At {
    /// When page `n` (0-based) is requested, before it is computed.
    BeforePage(u32),
    /// After page `n` was served: when the client asks for the next page, before that request
    /// is answered (so the client has page `n` in hand and cannot get page `n + 1` without the
    /// change). After the final page nothing is asked: the harness makes such changes once the
    /// client has settled on the whole list.
    AfterPage(u32),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Pages are numbered from 1 for people, as in the feature files.
            Self::BeforePage(n) => write!(f, "before page {} was served", u64::from(*n) + 1),
            Self::AfterPage(n) => write!(f, "after page {} was served", u64::from(*n) + 1),
        }
    }
}

/// One change to a user's subscribed conversations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ListAction {
    /// Create a conversation with these participants and announce it (`conversation_added`).
    Insert {
        /// Unique name.
        name: String,
        /// Participant identities.
        participants: Vec<String>,
    },
    /// Create a conversation without announcing it: the client can only learn of it from the
    /// list or from a later event about it.
    InsertQuietly {
        /// Unique name.
        name: String,
        /// Participant identities.
        participants: Vec<String>,
    },
    /// Send `conversation_added` for an existing conversation (again).
    Announce {
        /// Unique name.
        name: String,
    },
    /// Another writer changes the conversation's attributes (`conversation_updated`).
    Touch {
        /// Unique name.
        name: String,
        /// New attributes.
        attributes: Value,
    },
    /// Another participant posts a message: the conversation moves to the front of the
    /// by-activity order (`message_added`, `conversation_updated` with reason `last_message`).
    Bump {
        /// Unique name.
        name: String,
    },
    /// Delete the conversation (`conversation_removed`).
    Remove {
        /// Unique name.
        name: String,
    },
    /// Delete it, but let the list index show it until the next final page is served.
    RemoveLagging {
        /// Unique name.
        name: String,
    },
    /// Bring a deleted conversation back, with its sid, and announce it (`conversation_added`).
    Restore {
        /// Unique name.
        name: String,
    },
}

impl fmt::Display for ListAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Insert { name, .. } => write!(f, "insert and announce \"{name}\""),
            Self::InsertQuietly { name, .. } => {
                write!(f, "insert \"{name}\" without announcing it")
            }
            Self::Announce { name } => write!(f, "announce \"{name}\" as added"),
            Self::Touch { name, attributes } => write!(
                f,
                "another writer sets the attributes of \"{name}\" to {attributes}"
            ),
            Self::Bump { name } => write!(f, "bump \"{name}\" to the front (a new message)"),
            Self::Remove { name } => write!(f, "remove \"{name}\""),
            Self::RemoveLagging { name } => {
                write!(f, "remove \"{name}\" while the list index still shows it")
            }
            Self::Restore { name } => write!(f, "restore \"{name}\" and announce it"),
        }
    }
}

impl ListAction {
    /// Applies the change; returns the conversation it concerned and the events to emit.
    pub fn apply(&self, st: &mut Model) -> Result<(ConversationSid, Vec<PendingEvent>), String> {
        let sid_of = |st: &Model, name: &str| {
            st.sid_named(name)
                .ok_or_else(|| format!("no conversation named `{name}`"))
        };
        let (sid, events) = match self {
            Self::Insert { name, participants } | Self::InsertQuietly { name, participants } => {
                let (sid, events) =
                    st.create_conversation(Some(name), None, json!({}), participants);
                let events = if matches!(self, Self::Insert { .. }) {
                    events
                } else {
                    Vec::new()
                };
                (sid, events)
            }
            Self::Announce { name } => {
                let sid = sid_of(st, name)?;
                let ev = PendingEvent::new(
                    EventType::ConversationAdded,
                    ObjectKey::Conversation(sid.clone()),
                );
                (sid, vec![ev])
            }
            Self::Touch { name, attributes } => {
                let sid = sid_of(st, name)?;
                let (_, events) = st
                    .set_attributes(&ObjectKey::Conversation(sid.clone()), attributes.clone())
                    .ok_or("the conversation vanished")?;
                (sid, events)
            }
            Self::Bump { name } => {
                let sid = sid_of(st, name)?;
                let author = st
                    .conversation(&sid)
                    .and_then(|c| c.participants.last().map(|p| p.identity.clone()))
                    .unwrap_or_default();
                let (_, mut events) = st
                    .add_message(&sid, &author, "bump")
                    .ok_or("the conversation vanished")?;
                events.push(
                    PendingEvent::new(
                        EventType::ConversationUpdated,
                        ObjectKey::Conversation(sid.clone()),
                    )
                    .because("last_message"),
                );
                (sid, events)
            }
            Self::Remove { name } => {
                let sid = sid_of(st, name)?;
                let events = st
                    .remove_conversation(&sid)
                    .ok_or("the conversation vanished")?;
                (sid, events)
            }
            Self::RemoveLagging { name } => {
                let sid = sid_of(st, name)?;
                let events = st
                    .remove_conversation_lagging(&sid)
                    .ok_or("the conversation vanished")?;
                (sid, events)
            }
            Self::Restore { name } => {
                let sid = sid_of(st, name)?;
                let events = st
                    .restore_conversation(&sid)
                    .ok_or("the conversation was not removed")?;
                (sid, events)
            }
        };
        Ok((sid, events))
    }
}
