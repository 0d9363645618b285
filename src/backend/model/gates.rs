//! Gates: endpoints that answer 503 with Retry-After until the harness opens them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backend::endpoint::{Endpoint, EndpointKind};
use crate::wire::ConversationSid;

/// A closed gate on part of the service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    /// The final page of a user's subscribed list.
    LastListPage {
        /// Whose list.
        user: String,
    },
    /// Every page of a user's subscribed list from page `page` (0-based) on: lets a harness walk
    /// the client through the list one page at a time.
    ListPagesFrom {
        /// Whose list.
        user: String,
        /// The first page held back.
        page: u32,
    },
    /// A conversation's participants list.
    Participants {
        /// The conversation.
        sid: ConversationSid,
    },
    /// A conversation's own resource (GET).
    Conversation {
        /// The conversation.
        sid: ConversationSid,
    },
    /// Every request to one endpoint.
    Endpoint {
        /// Which endpoint.
        endpoint: EndpointKind,
    },
}

impl Gate {
    /// Whether a request classified as `ep` is held back by this gate.
    pub fn matches(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (Self::LastListPage { user }, Endpoint::UserConversations { user: u, last, .. }) => {
                *last && user == u
            }
            (
                Self::ListPagesFrom { user, page },
                Endpoint::UserConversations {
                    user: u, page: p, ..
                },
            ) => user == u && p >= page,
            (Self::Participants { sid }, Endpoint::Participants { sid: s }) => sid == s,
            (Self::Conversation { sid }, Endpoint::GetConversation { sid: s }) => sid == s,
            (Self::Endpoint { endpoint }, ep) => ep.kind() == *endpoint,
            _ => false,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LastListPage { user } => {
                write!(f, "the last page of {user}'s subscribed list")
            }
            Self::ListPagesFrom { user, page } => {
                write!(
                    f,
                    "{user}'s subscribed list from page {} on",
                    u64::from(*page) + 1
                )
            }
            Self::Participants { sid } => write!(f, "the participants of {sid}"),
            Self::Conversation { sid } => write!(f, "conversation {sid}"),
            Self::Endpoint { endpoint } => write!(f, "every `{endpoint}` request"),
        }
    }
}

/// The closed gates and how long a gated answer asks clients to wait.
#[derive(Clone, Debug)]
pub struct Gates {
    closed: Vec<Gate>,
    /// Seconds in the Retry-After of a gated answer.
    pub retry_after_secs: u64,
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            closed: Vec::new(),
            retry_after_secs: 1,
        }
    }
}

impl Gates {
    /// Closes a gate (again).
    pub fn close(&mut self, gate: Gate) {
        if !self.closed.contains(&gate) {
            self.closed.push(gate);
        }
    }

    /// Opens a gate; returns whether it was closed.
    pub fn open(&mut self, gate: &Gate) -> bool {
        let before = self.closed.len();
        self.closed.retain(|g| g != gate);
        before != self.closed.len()
    }

    /// The closed gates, in the order they were closed.
    pub fn closed(&self) -> &[Gate] {
        &self.closed
    }

    /// Whether `gate` is closed.
    pub fn is_closed(&self, gate: &Gate) -> bool {
        self.closed.contains(gate)
    }

    /// The closed gate that holds back a request classified as `ep`, if any.
    pub fn holding(&self, ep: &Endpoint) -> Option<&Gate> {
        self.closed.iter().find(|g| g.matches(ep))
    }
}
