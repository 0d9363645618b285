//! Changes to the subscribed list that scenarios and properties make, now or at an exact point
//! of the client's walk through the pages ([`super::At`]).
//!
//! Each action changes the truth and publishes the events a real service would (or, where the
//! scenario says so, deliberately not: a quiet insert, a removal the list index lags behind).

use std::fmt;

use serde_json::{Value, json};

use super::state::{BackendState, EventType, ObjectKey, PendingEvent};

/// One change to a user's subscribed conversations.
#[derive(Clone, Debug, PartialEq)]
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
        }
    }
}

impl ListAction {
    /// Applies the change; returns what happened, for the journal.
    pub fn apply(&self, st: &mut BackendState) -> Result<String, String> {
        let sid_of = |st: &BackendState, name: &str| {
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
                    .conversations
                    .get(&sid)
                    .and_then(|c| c.participants.last().map(|p| p.identity.clone()))
                    .unwrap_or_default();
                let (_, mut events) = st
                    .add_message(&sid, &author, "bump")
                    .ok_or("the conversation vanished")?;
                let mut updated = PendingEvent::new(
                    EventType::ConversationUpdated,
                    ObjectKey::Conversation(sid.clone()),
                );
                updated.reasons = vec!["last_message".into()];
                events.push(updated);
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
        };
        st.emit(events);
        Ok(format!("{self} ({sid})"))
    }
}
