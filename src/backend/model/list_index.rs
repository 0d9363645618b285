//! Each user's subscribed list, indexed in both orders the list can be served in, so a page is a
//! range read whatever the list's length.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::records::ConversationRecord;
use crate::wire::ConversationSid;

/// How `/v1/Users/{id}/Conversations` orders its items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// By creation, oldest first: stable while the list changes at its end.
    #[default]
    Creation,
    /// By last activity, most recent first: an activity bump moves a conversation to the front.
    Activity,
}

impl std::fmt::Display for ListOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Creation => "creation",
            Self::Activity => "last activity",
        })
    }
}

/// A position in a list's order.
pub(crate) type Position = (u64, u64);

/// One user's subscribed conversations, in both orders.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    by_creation: BTreeMap<Position, ConversationSid>,
    by_activity: BTreeMap<Position, ConversationSid>,
}

impl Memberships {
    /// The index for `order`.
    pub fn ordered(&self, order: ListOrder) -> &BTreeMap<Position, ConversationSid> {
        match order {
            ListOrder::Creation => &self.by_creation,
            ListOrder::Activity => &self.by_activity,
        }
    }

    /// The conversations in creation order.
    pub fn sids(&self) -> impl Iterator<Item = &ConversationSid> {
        self.by_creation.values()
    }

    fn insert(&mut self, c: &ConversationRecord) {
        self.by_creation.insert(creation_key(c), c.sid.clone());
        self.by_activity.insert(activity_key(c), c.sid.clone());
    }

    fn remove(&mut self, c: &ConversationRecord) {
        self.by_creation.remove(&creation_key(c));
        self.by_activity.remove(&activity_key(c));
    }
}

/// Where a conversation stands in the by-creation order.
pub(super) fn creation_key(c: &ConversationRecord) -> Position {
    (c.created_index, 0)
}

/// Where a conversation stands in the by-activity order (most recent first).
pub(super) fn activity_key(c: &ConversationRecord) -> Position {
    (u64::MAX - c.activity, c.created_index)
}

/// Every user's list, the order they are served in and how long a page may be.
#[derive(Clone, Debug)]
pub struct ListIndex {
    members: BTreeMap<String, Memberships>,
    /// The order the subscribed list is served in.
    pub order: ListOrder,
    /// The most conversations one page holds, whatever the client asks.
    pub max_page_size: u32,
    /// Removed conversations the index still shows until the next final page is served (a list
    /// that lags behind the event stream).
    pub ghosts: BTreeMap<ConversationSid, ConversationRecord>,
}

impl Default for ListIndex {
    fn default() -> Self {
        Self {
            members: BTreeMap::new(),
            order: ListOrder::default(),
            max_page_size: 50,
            ghosts: BTreeMap::new(),
        }
    }
}

impl ListIndex {
    /// `identity`'s list, if they have one.
    pub fn of(&self, identity: &str) -> Option<&Memberships> {
        self.members.get(identity)
    }

    /// Lists `c` for `identity`.
    pub fn add(&mut self, identity: &str, c: &ConversationRecord) {
        self.members
            .entry(identity.to_owned())
            .or_default()
            .insert(c);
    }

    /// Unlists `c` for `identity`.
    pub fn remove(&mut self, identity: &str, c: &ConversationRecord) {
        if let Some(m) = self.members.get_mut(identity) {
            m.remove(c);
        }
    }

    /// Where `c` stands in the current order.
    pub fn key(&self, c: &ConversationRecord) -> Position {
        match self.order {
            ListOrder::Creation => creation_key(c),
            ListOrder::Activity => activity_key(c),
        }
    }

    /// Drops the lagging removals: the index has caught up with the event stream.
    pub fn forget_ghosts(&mut self) {
        for (_, c) in std::mem::take(&mut self.ghosts) {
            for identity in c.members() {
                self.remove(&identity, &c);
            }
        }
    }
}
