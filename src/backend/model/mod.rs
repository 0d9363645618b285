//! The backend's truth, as pure data: users, conversations, participants and messages with
//! per-object revisions, each user's list index, gates, held events and the event log.
//!
//! Every mutation bumps the object's revision, keeps the old snapshot (so a stale one can be
//! replayed) and returns the [`PendingEvent`]s it causes; it never publishes anything itself.
//! The service above renders and logs events; the transport reads the log.
//!
//! Must not import: the service, the transport, the facade, the journal, the adapter protocol.
//! No I/O here: no sockets, no tasks, no locks.

mod bindings;
mod events;
mod gates;
mod list_actions;
mod list_index;
mod network;
mod records;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

pub use bindings::BindingChange;
pub(crate) use events::{Events, PendingEvent, Published};
pub use gates::Gate;
pub(crate) use gates::Gates;
pub use list_actions::{At, ListAction};
pub use list_index::ListOrder;
pub(crate) use list_index::{ListIndex, Position};
pub use network::Outage;
pub use records::{BINDING_IDLE_EXPIRY, BindingType, DEFAULT_MESSAGE_TYPES};
pub(crate) use records::{
    BindingRecord, ConversationRecord, History, MessageRecord, ParticipantRecord, Snapshot,
    UserRecord,
};

use crate::clock::{VirtualClock, VirtualInstant};
use crate::wire::{ConversationSid, EventType, ObjectKey, sid};

/// The fields a v1 conversation update changes (`None`: left as is).
#[derive(Clone, Debug, Default)]
pub struct ConversationChange {
    /// New attributes.
    pub attributes: Option<Value>,
    /// New friendly name (`Some(None)` clears it).
    pub friendly_name: Option<Option<String>>,
    /// New unique name (`Some(None)` clears it).
    pub unique_name: Option<Option<String>>,
    /// New state (`active`, `inactive`, `closed`).
    pub state: Option<String>,
}

/// The mutable truth of one backend.
pub struct Model {
    /// `AC...`
    pub account_sid: String,
    /// `IS...`
    pub service_sid: String,
    /// `CR...`: the push credential every binding names.
    pub credential_sid: String,
    /// Where the REST API lives (resource URLs are absolute).
    pub base_url: String,
    clock: VirtualClock,
    next_sid: u64,
    activity: u64,
    users: BTreeMap<String, UserRecord>,
    conversations: BTreeMap<ConversationSid, ConversationRecord>,
    /// Deleted conversations, kept so one can be restored with its sid.
    removed: BTreeMap<ConversationSid, ConversationRecord>,
    by_creation: BTreeMap<u64, ConversationSid>,
    /// Every user's subscribed list.
    pub lists: ListIndex,
    /// Closed gates.
    pub gates: Gates,
    /// Holds, held events, the event log.
    pub events: Events,
    /// List changes waiting for their point of the page walk.
    schedule: Vec<(At, ListAction)>,
    /// The lifetime the token generator mints whatever it is asked for (`None`: what it is
    /// asked for).
    pub token_ttl: Option<std::time::Duration>,
    /// Push bindings by (identity, address).
    bindings: BTreeMap<(String, String), BindingRecord>,
    /// The registration order the next binding gets.
    next_binding: u64,
}

impl Model {
    /// An empty backend whose sids derive from `seed`.
    pub fn new(seed: u64, base_url: String, clock: VirtualClock) -> Self {
        Self {
            account_sid: sid("AC", seed),
            service_sid: sid("IS", seed),
            credential_sid: sid("CR", seed),
            base_url,
            clock,
            next_sid: 1,
            activity: 0,
            users: BTreeMap::new(),
            conversations: BTreeMap::new(),
            removed: BTreeMap::new(),
            by_creation: BTreeMap::new(),
            lists: ListIndex::default(),
            gates: Gates::default(),
            events: Events::default(),
            schedule: Vec::new(),
            token_ttl: None,
            bindings: BTreeMap::new(),
            next_binding: 0,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> VirtualInstant {
        self.clock.now()
    }

    fn next(&mut self, prefix: &str) -> String {
        let n = self.next_sid;
        self.next_sid += 1;
        sid(prefix, n)
    }

    /// A user by identity.
    pub fn user(&self, identity: &str) -> Option<&UserRecord> {
        self.users.get(identity)
    }

    /// A conversation by sid.
    pub fn conversation(&self, sid: &ConversationSid) -> Option<&ConversationRecord> {
        self.conversations.get(sid)
    }

    /// Every user, by identity.
    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values()
    }

    /// Every live conversation, by sid.
    pub fn conversations(&self) -> impl Iterator<Item = &ConversationRecord> {
        self.conversations.values()
    }

    /// Every removed conversation (restorable), by sid.
    pub fn removed_conversations(&self) -> impl Iterator<Item = &ConversationRecord> {
        self.removed.values()
    }

    /// A conversation, or a removed one the list index still shows.
    pub fn listed_conversation(&self, sid: &ConversationSid) -> Option<&ConversationRecord> {
        self.conversations
            .get(sid)
            .or_else(|| self.lists.ghosts.get(sid))
    }

    /// The sid of the conversation with this unique name (a deleted one too).
    pub fn sid_named(&self, name: &str) -> Option<ConversationSid> {
        self.conversations
            .values()
            .chain(self.removed.values())
            .find(|c| c.unique_name.as_deref() == Some(name))
            .map(|c| c.sid.clone())
    }

    /// `identity`'s subscribed conversations now, in creation order.
    pub fn subscribed(&self, identity: &str) -> BTreeSet<ConversationSid> {
        self.lists
            .of(identity)
            .map(|m| {
                m.sids()
                    .filter(|sid| self.conversations.contains_key(*sid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where a conversation (or a lagging removed one) stands in the current list order.
    pub fn list_key(&self, sid: &ConversationSid) -> Option<Position> {
        self.listed_conversation(sid).map(|c| self.lists.key(c))
    }

    /// Adds a user if missing; returns its sid.
    pub fn ensure_user(&mut self, identity: &str) -> String {
        if let Some(u) = self.users.get(identity) {
            return u.sid.clone();
        }
        let sid = self.next("US");
        let now = self.clock.now();
        self.users.insert(
            identity.to_owned(),
            UserRecord {
                sid: sid.clone(),
                identity: identity.to_owned(),
                friendly_name: None,
                created: now,
                history: History::new(json!({}), now),
            },
        );
        sid
    }

    /// Creates a conversation with `participants`; returns its sid and the events to emit.
    pub fn create_conversation(
        &mut self,
        unique_name: Option<&str>,
        friendly_name: Option<&str>,
        attributes: Value,
        participants: &[String],
    ) -> (ConversationSid, Vec<PendingEvent>) {
        let sid = ConversationSid::new(self.next("CH"));
        let now = self.clock.now();
        let created_index = self.by_creation.keys().next_back().map_or(0, |k| k + 1);
        self.activity += 1;
        let mut parts = Vec::new();
        for identity in participants {
            self.ensure_user(identity);
            parts.push(ParticipantRecord {
                sid: self.next("MB"),
                identity: identity.clone(),
                created: now,
                last_read_message_index: None,
                notification_level: "default".into(),
                unread_changed: now,
            });
        }
        let record = ConversationRecord {
            sid: sid.clone(),
            created_index,
            unique_name: unique_name.map(str::to_owned),
            friendly_name: friendly_name.map(str::to_owned),
            state: "active".into(),
            created_by: participants.first().cloned().unwrap_or_default(),
            created: now,
            activity: self.activity,
            history: History::new(attributes, now),
            participants: parts,
            messages: BTreeMap::new(),
            next_message_index: 0,
            participants_changed: now,
            messages_changed: now,
        };
        for identity in participants {
            self.lists.add(identity, &record);
        }
        self.conversations.insert(sid.clone(), record);
        self.by_creation.insert(created_index, sid.clone());
        let ev = PendingEvent::new(
            EventType::ConversationAdded,
            ObjectKey::Conversation(sid.clone()),
        );
        (sid, vec![ev])
    }

    /// Marks activity on a conversation: it moves to the front of the by-activity order.
    pub fn bump(&mut self, sid: &ConversationSid) -> bool {
        let Some(c) = self.conversations.get(sid) else {
            return false;
        };
        let members = c.members();
        for m in &members {
            self.lists.remove(m, c);
        }
        self.activity += 1;
        let activity = self.activity;
        let Some(c) = self.conversations.get_mut(sid) else {
            return false;
        };
        c.activity = activity;
        for m in &members {
            self.lists.add(m, c);
        }
        true
    }

    /// Deletes a conversation; returns the events (sent to its former participants).
    pub fn remove_conversation(&mut self, sid: &ConversationSid) -> Option<Vec<PendingEvent>> {
        let c = self.conversations.remove(sid)?;
        for m in c.members() {
            self.lists.remove(&m, &c);
        }
        self.by_creation.remove(&c.created_index);
        let mut ev = PendingEvent::new(
            EventType::ConversationRemoved,
            ObjectKey::Conversation(sid.clone()),
        );
        ev.audience = Some(c.members().into_iter().collect());
        self.removed.insert(sid.clone(), c);
        Some(vec![ev])
    }

    /// Brings a deleted conversation back, with its sid, as the newest activity; returns the
    /// events (its participants are told it was added).
    pub fn restore_conversation(&mut self, sid: &ConversationSid) -> Option<Vec<PendingEvent>> {
        let mut c = self.removed.remove(sid)?;
        self.activity += 1;
        c.activity = self.activity;
        for m in c.members() {
            self.lists.add(&m, &c);
        }
        self.by_creation.insert(c.created_index, sid.clone());
        self.conversations.insert(sid.clone(), c);
        Some(vec![PendingEvent::new(
            EventType::ConversationAdded,
            ObjectKey::Conversation(sid.clone()),
        )])
    }

    /// Deletes a conversation but leaves it listed until the next final page of the list is
    /// served; returns the events.
    pub fn remove_conversation_lagging(
        &mut self,
        sid: &ConversationSid,
    ) -> Option<Vec<PendingEvent>> {
        let c = self.conversations.get(sid)?.clone();
        let events = self.remove_conversation(sid)?;
        for m in c.members() {
            self.lists.add(&m, &c);
        }
        self.lists.ghosts.insert(sid.clone(), c);
        Some(events)
    }

    fn history_mut(&mut self, key: &ObjectKey) -> Option<(&mut History, EventType)> {
        match key {
            ObjectKey::User(id) => {
                Some((&mut self.users.get_mut(id)?.history, EventType::UserUpdated))
            }
            ObjectKey::Conversation(sid) => Some((
                &mut self.conversations.get_mut(sid)?.history,
                EventType::ConversationUpdated,
            )),
        }
    }

    fn history(&self, key: &ObjectKey) -> Option<(&History, EventType)> {
        match key {
            ObjectKey::User(id) => Some((&self.users.get(id)?.history, EventType::UserUpdated)),
            ObjectKey::Conversation(sid) => Some((
                &self.conversations.get(sid)?.history,
                EventType::ConversationUpdated,
            )),
        }
    }

    /// Writes new attributes to an object; returns the new revision and the events to emit.
    pub fn set_attributes(
        &mut self,
        key: &ObjectKey,
        attributes: Value,
    ) -> Option<(u64, Vec<PendingEvent>)> {
        let now = self.clock.now();
        let (history, kind) = self.history_mut(key)?;
        let revision = history.write(attributes, now);
        let ev = PendingEvent::new(kind, key.clone()).because("attributes");
        Some((revision, vec![ev]))
    }

    /// Applies a v1 update of a conversation in one new revision; returns the events (an
    /// update naming what changed). `None` if there is no such conversation.
    pub fn update_conversation(
        &mut self,
        sid: &ConversationSid,
        change: ConversationChange,
    ) -> Option<Vec<PendingEvent>> {
        let now = self.clock.now();
        let c = self.conversations.get_mut(sid)?;
        let mut reasons = Vec::new();
        let attributes = match change.attributes {
            Some(a) => {
                reasons.push("attributes");
                a
            }
            None => c.history.current().attributes.clone(),
        };
        if let Some(name) = change.friendly_name {
            c.friendly_name = name;
            reasons.push("friendlyName");
        }
        if let Some(name) = change.unique_name {
            c.unique_name = name;
            reasons.push("uniqueName");
        }
        if let Some(state) = change.state {
            c.state = state;
            reasons.push("state");
        }
        c.history.write(attributes, now);
        let mut ev = PendingEvent::new(
            EventType::ConversationUpdated,
            ObjectKey::Conversation(sid.clone()),
        );
        for r in reasons {
            ev = ev.because(r);
        }
        Some(vec![ev])
    }

    /// Applies a v1 update of a user in one new revision; returns the events.
    pub fn update_user(
        &mut self,
        identity: &str,
        attributes: Option<Value>,
        friendly_name: Option<Option<String>>,
    ) -> Option<Vec<PendingEvent>> {
        let now = self.clock.now();
        let u = self.users.get_mut(identity)?;
        let mut ev = PendingEvent::new(EventType::UserUpdated, ObjectKey::User(identity.into()));
        let attributes = match attributes {
            Some(a) => {
                ev = ev.because("attributes");
                a
            }
            None => u.history.current().attributes.clone(),
        };
        if let Some(name) = friendly_name {
            u.friendly_name = name;
            ev = ev.because("friendlyName");
        }
        u.history.write(attributes, now);
        Some(vec![ev])
    }

    /// Moves `identity`'s read horizon in a conversation (and, if given, its notification
    /// level); `None` if they do not take part.
    pub fn set_read_state(
        &mut self,
        sid: &ConversationSid,
        identity: &str,
        horizon: Option<Option<u64>>,
        notification_level: Option<String>,
    ) -> Option<()> {
        let now = self.clock.now();
        let c = self.conversations.get_mut(sid)?;
        let unread = c.unread_counts();
        let p = c.participants.iter_mut().find(|p| p.identity == identity)?;
        if let Some(h) = horizon {
            p.last_read_message_index = h;
        }
        if let Some(level) = notification_level {
            p.notification_level = level;
        }
        c.unread_moved(&unread, now);
        Some(())
    }

    /// A user by identity or by sid.
    pub fn user_by_sid_or_identity(&self, wanted: &str) -> Option<&UserRecord> {
        self.users
            .get(wanted)
            .or_else(|| self.users.values().find(|u| u.sid == wanted))
    }

    /// A live conversation by sid or by unique name.
    pub fn conversation_by_sid_or_name(&self, wanted: &str) -> Option<&ConversationRecord> {
        self.conversations
            .get(&ConversationSid::new(wanted.to_owned()))
            .or_else(|| {
                self.conversations
                    .values()
                    .find(|c| c.unique_name.as_deref() == Some(wanted))
            })
    }

    /// The newest snapshot of an object.
    pub fn snapshot(&self, key: &ObjectKey) -> Option<&Snapshot> {
        self.history(key).map(|(h, _)| h.current())
    }

    /// An event re-sending the snapshot before the newest one (a stale delivery).
    pub fn stale_event(&self, key: &ObjectKey) -> Option<PendingEvent> {
        let (history, kind) = self.history(key)?;
        let mut ev = PendingEvent::new(kind, key.clone()).because("attributes");
        ev.stale = Some(history.previous()?.clone());
        Some(ev)
    }

    /// Appends a message; returns its index and events.
    pub fn add_message(
        &mut self,
        conversation: &ConversationSid,
        author: &str,
        body: &str,
    ) -> Option<(u64, Vec<PendingEvent>)> {
        self.add_message_with(conversation, author, body, json!({}))
    }

    /// Appends a message with attributes; returns its index and events.
    pub fn add_message_with(
        &mut self,
        conversation: &ConversationSid,
        author: &str,
        body: &str,
        attributes: Value,
    ) -> Option<(u64, Vec<PendingEvent>)> {
        let msid = self.next("IM");
        let now = self.clock.now();
        let c = self.conversations.get_mut(conversation)?;
        let unread = c.unread_counts();
        let index = c.next_message_index;
        c.next_message_index += 1;
        c.messages.insert(
            (index, 0),
            MessageRecord {
                sid: msid,
                index,
                author: author.to_owned(),
                body: body.to_owned(),
                attributes,
                created: now,
                updated: now,
            },
        );
        c.messages_changed = now;
        c.unread_moved(&unread, now);
        self.bump(conversation);
        Some((
            index,
            vec![message_event(EventType::MessageAdded, conversation, index)],
        ))
    }

    /// Changes a message's body; returns the events.
    pub fn edit_message(
        &mut self,
        conversation: &ConversationSid,
        index: u64,
        body: &str,
    ) -> Option<Vec<PendingEvent>> {
        let now = self.clock.now();
        let m = self
            .conversations
            .get_mut(conversation)?
            .messages
            .get_mut(&(index, 0))?;
        m.body = body.to_owned();
        m.updated = now;
        Some(vec![message_event(
            EventType::MessageUpdated,
            conversation,
            index,
        )])
    }

    /// Deletes a message; returns the events.
    pub fn remove_message(
        &mut self,
        conversation: &ConversationSid,
        index: u64,
    ) -> Option<Vec<PendingEvent>> {
        let now = self.clock.now();
        let c = self.conversations.get_mut(conversation)?;
        let unread = c.unread_counts();
        c.messages.remove(&(index, 0))?;
        c.messages_changed = now;
        c.unread_moved(&unread, now);
        Some(vec![message_event(
            EventType::MessageRemoved,
            conversation,
            index,
        )])
    }

    /// Who receives an event about `key` now.
    pub fn audience(&self, key: &ObjectKey) -> BTreeSet<String> {
        match key {
            ObjectKey::User(id) => BTreeSet::from([id.clone()]),
            ObjectKey::Conversation(sid) => self
                .conversations
                .get(sid)
                .map(|c| c.members().into_iter().collect())
                .unwrap_or_default(),
        }
    }

    /// Schedules a list change for a point of the page walk.
    pub fn schedule(&mut self, at: At, action: ListAction) {
        self.schedule.push((at, action));
    }

    /// Takes the changes scheduled for `at` (all of them when `at` is `None`), in order.
    pub fn take_scheduled(&mut self, at: Option<At>) -> Vec<(At, ListAction)> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.schedule)
            .into_iter()
            .partition(|(a, _)| at.is_none_or(|at| *a == at));
        self.schedule = later;
        due
    }
}

fn message_event(kind: EventType, conversation: &ConversationSid, index: u64) -> PendingEvent {
    let mut ev = PendingEvent::new(kind, ObjectKey::Conversation(conversation.clone()));
    ev.index = Some(index);
    ev
}
