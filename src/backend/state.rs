//! The backend's truth: users, conversations, participants and messages, with per-object revisions.
//!
//! Every mutation bumps the object's revision, remembers the snapshot (so a stale one can be
//! replayed later) and returns the [`PendingEvent`]s it causes. The backend's front
//! ([`super::Backend`] and the REST responders) hands those to [`BackendState::emit`], which either
//! publishes them on the hub or parks them while the object is held. Event bodies are built when
//! they are published, from the state at that moment, as a sync service would send them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use super::hub::{Hub, Published};
use super::journal::Endpoint;
use super::resources;
use crate::clock::{VirtualClock, VirtualInstant};

/// A deterministic Twilio-style sid: two-letter prefix and 32 hex digits.
pub fn sid(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:032x}")
}

/// An object events can be about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum ObjectKey {
    /// A user by identity.
    User(String),
    /// A conversation by sid.
    Conversation(String),
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Conversation(sid) => f.write_str(sid),
        }
    }
}

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
    /// Attribute history, newest last (never empty).
    pub history: Vec<Snapshot>,
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
    /// Read horizon.
    pub last_read_message_index: Option<u64>,
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
    /// Created at.
    pub created: VirtualInstant,
    /// Last changed at.
    pub updated: VirtualInstant,
}

/// A conversation.
#[derive(Clone, Debug)]
pub struct ConversationRecord {
    /// `CH...`
    pub sid: String,
    /// Creation order.
    pub created_index: u64,
    /// Unique name, if any.
    pub unique_name: Option<String>,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Created at.
    pub created: VirtualInstant,
    /// Last activity stamp (creation, messages, bumps): orders the by-activity list.
    pub activity: u64,
    /// Attribute history, newest last (never empty).
    pub history: Vec<Snapshot>,
    /// Participants.
    pub participants: Vec<ParticipantRecord>,
    /// Messages by `(index, 0)`; indices keep increasing after removals.
    pub messages: BTreeMap<(u64, u64), MessageRecord>,
    /// The index the next message gets.
    pub next_message_index: u64,
}

fn current(history: &[Snapshot]) -> &Snapshot {
    history
        .last()
        .expect("an object always has a first snapshot")
}

impl UserRecord {
    /// The newest snapshot.
    pub fn current(&self) -> &Snapshot {
        current(&self.history)
    }
}

impl ConversationRecord {
    /// The newest snapshot.
    pub fn current(&self) -> &Snapshot {
        current(&self.history)
    }

    /// Whether `identity` takes part.
    pub fn has_participant(&self, identity: &str) -> bool {
        self.participants.iter().any(|p| p.identity == identity)
    }
}

/// Event types the hub carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The user was added to a conversation.
    ConversationAdded,
    /// A conversation changed.
    ConversationUpdated,
    /// The user left or lost a conversation.
    ConversationRemoved,
    /// The user changed.
    UserUpdated,
    /// A message was sent.
    MessageAdded,
    /// A message was edited.
    MessageUpdated,
    /// A message was deleted.
    MessageRemoved,
}

impl EventType {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConversationAdded => "conversation_added",
            Self::ConversationUpdated => "conversation_updated",
            Self::ConversationRemoved => "conversation_removed",
            Self::UserUpdated => "user_updated",
            Self::MessageAdded => "message_added",
            Self::MessageUpdated => "message_updated",
            Self::MessageRemoved => "message_removed",
        }
    }
}

/// An event caused by a mutation, not yet published.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    /// Type.
    pub kind: EventType,
    /// The object.
    pub key: ObjectKey,
    /// Update reasons (`attributes`, ...).
    pub reasons: Vec<String>,
    /// Publish this old snapshot instead of the current one (stale replays).
    pub stale: Option<Snapshot>,
    /// Extra fields (a message index, ...).
    pub extra: Value,
    /// Who receives it, when not the object's current audience (a removed conversation).
    pub audience: Option<BTreeSet<String>>,
}

impl PendingEvent {
    pub(crate) fn new(kind: EventType, key: ObjectKey) -> Self {
        Self {
            kind,
            key,
            reasons: Vec::new(),
            stale: None,
            extra: Value::Null,
            audience: None,
        }
    }
}

/// A closed gate on an endpoint: answered 503 with Retry-After until opened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gate {
    /// The final page of the subscribed-conversations list.
    LastListPage,
    /// A conversation's participants list.
    Participants(String),
    /// A conversation's own resource (GET).
    Conversation(String),
    /// Every request to one kind of endpoint, by its journal name (see [`Endpoint::NAMES`]).
    Endpoint(&'static str),
    /// Every page of the subscribed list from page `n` (0-based) on: lets a harness walk the
    /// client through the list one page at a time.
    ListPagesFrom(u32),
}

impl Gate {
    /// Whether a request classified as `ep` is held back by this gate.
    pub fn matches(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (Self::LastListPage, Endpoint::UserConversations { last, .. }) => *last,
            (Self::Participants(s), Endpoint::Participants { sid }) => s == sid,
            (Self::Conversation(s), Endpoint::GetConversation { sid }) => s == sid,
            (Self::Endpoint(name), ep) => ep.name() == *name,
            (Self::ListPagesFrom(n), Endpoint::UserConversations { page, .. }) => page >= n,
            _ => false,
        }
    }

    /// A gate on every request to the endpoint called `name`.
    pub fn endpoint(name: &str) -> Result<Self, String> {
        Endpoint::NAMES
            .iter()
            .find(|n| **n == name)
            .map(|n| Self::Endpoint(n))
            .ok_or_else(|| {
                format!(
                    "unknown endpoint `{name}`; known endpoints: {}",
                    Endpoint::NAMES.join(", ")
                )
            })
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LastListPage => f.write_str("the last page of the subscribed list"),
            Self::Participants(s) => write!(f, "the participants of {s}"),
            Self::Conversation(s) => write!(f, "conversation {s}"),
            Self::Endpoint(name) => write!(f, "every `{name}` request"),
            Self::ListPagesFrom(n) => write!(f, "the subscribed list from page {} on", n + 1),
        }
    }
}

/// How `/v1/Users/{id}/Conversations` orders its items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// By creation, oldest first: stable while the list changes at its end.
    #[default]
    Creation,
    /// By last activity, most recent first: an activity bump moves a conversation to the front.
    Activity,
}

/// One user's subscribed conversations, indexed in both orders.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// `(created_index, 0)` → sid.
    pub by_creation: BTreeMap<(u64, u64), String>,
    /// `(u64::MAX - activity, created_index)` → sid.
    pub by_activity: BTreeMap<(u64, u64), String>,
}

impl Memberships {
    /// The index for `order`.
    pub fn ordered(&self, order: ListOrder) -> &BTreeMap<(u64, u64), String> {
        match order {
            ListOrder::Creation => &self.by_creation,
            ListOrder::Activity => &self.by_activity,
        }
    }
}

fn activity_key(c: &ConversationRecord) -> (u64, u64) {
    (u64::MAX - c.activity, c.created_index)
}

/// The mutable truth of one backend.
pub struct BackendState {
    pub(crate) account_sid: String,
    pub(crate) service_sid: String,
    pub(crate) base_url: String,
    pub(crate) clock: VirtualClock,
    pub(crate) hub: Hub,
    next_sid: u64,
    pub(crate) users: BTreeMap<String, UserRecord>,
    pub(crate) conversations: BTreeMap<String, ConversationRecord>,
    /// Conversations by creation index.
    pub(crate) by_creation: BTreeMap<u64, String>,
    /// Each user's subscribed conversations, in both orders.
    pub(crate) memberships: BTreeMap<String, Memberships>,
    /// The order the subscribed list is served in.
    pub(crate) list_order: ListOrder,
    /// The most conversations one page of the subscribed list holds, whatever the client asks.
    pub(crate) max_page_size: u32,
    /// Removed conversations the list index still shows until the next final page is served
    /// (a list that lags behind the event stream).
    pub(crate) ghosts: BTreeMap<String, ConversationRecord>,
    activity: u64,
    gate_list: Vec<Gate>,
    pub(crate) retry_after_secs: u64,
    holds: BTreeSet<ObjectKey>,
    held: Vec<PendingEvent>,
}

impl BackendState {
    /// An empty backend.
    pub fn new(seed: u64, base_url: String, clock: VirtualClock, hub: Hub) -> Self {
        Self {
            account_sid: sid("AC", seed),
            service_sid: sid("IS", seed),
            base_url,
            clock,
            hub,
            next_sid: 1,
            users: BTreeMap::new(),
            conversations: BTreeMap::new(),
            by_creation: BTreeMap::new(),
            memberships: BTreeMap::new(),
            list_order: ListOrder::default(),
            max_page_size: 50,
            ghosts: BTreeMap::new(),
            activity: 0,
            gate_list: Vec::new(),
            retry_after_secs: 1,
            holds: BTreeSet::new(),
            held: Vec::new(),
        }
    }

    fn next(&mut self, prefix: &str) -> String {
        let n = self.next_sid;
        self.next_sid += 1;
        sid(prefix, n)
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
                history: vec![Snapshot {
                    revision: 1,
                    attributes: json!({}),
                    at: now,
                }],
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
    ) -> (String, Vec<PendingEvent>) {
        let sid = self.next("CH");
        let now = self.clock.now();
        let created_index = self.by_creation.keys().next_back().map_or(0, |k| k + 1);
        self.activity += 1;
        let activity = self.activity;
        let mut parts = Vec::new();
        for identity in participants {
            self.ensure_user(identity);
            parts.push(ParticipantRecord {
                sid: self.next("MB"),
                identity: identity.clone(),
                created: now,
                last_read_message_index: None,
            });
        }
        self.conversations.insert(
            sid.clone(),
            ConversationRecord {
                sid: sid.clone(),
                created_index,
                unique_name: unique_name.map(str::to_owned),
                friendly_name: friendly_name.map(str::to_owned),
                created_by: participants.first().cloned().unwrap_or_default(),
                created: now,
                activity,
                history: vec![Snapshot {
                    revision: 1,
                    attributes,
                    at: now,
                }],
                participants: parts,
                messages: BTreeMap::new(),
                next_message_index: 0,
            },
        );
        self.by_creation.insert(created_index, sid.clone());
        for identity in participants {
            self.index_membership(identity, &sid);
        }
        let ev = PendingEvent::new(
            EventType::ConversationAdded,
            ObjectKey::Conversation(sid.clone()),
        );
        (sid, vec![ev])
    }

    fn index_membership(&mut self, identity: &str, sid: &str) {
        let Some(c) = self.conversations.get(sid) else {
            return;
        };
        let m = self.memberships.entry(identity.to_owned()).or_default();
        m.by_creation.insert((c.created_index, 0), sid.to_owned());
        m.by_activity.insert(activity_key(c), sid.to_owned());
    }

    fn unindex_membership(&mut self, identity: &str, sid: &str) {
        let Some(c) = self.conversations.get(sid) else {
            return;
        };
        if let Some(m) = self.memberships.get_mut(identity) {
            m.by_creation.remove(&(c.created_index, 0));
            m.by_activity.remove(&activity_key(c));
        }
    }

    /// Deletes a conversation but leaves it listed until the next final page of the list is
    /// served; returns the events.
    pub fn remove_conversation_lagging(&mut self, sid: &str) -> Option<Vec<PendingEvent>> {
        let c = self.conversations.get(sid)?.clone();
        let events = self.remove_conversation(sid)?;
        for p in &c.participants {
            let m = self.memberships.entry(p.identity.clone()).or_default();
            m.by_creation.insert((c.created_index, 0), sid.to_owned());
            m.by_activity.insert(activity_key(&c), sid.to_owned());
        }
        self.ghosts.insert(sid.to_owned(), c);
        Some(events)
    }

    /// Drops the lagging listings of removed conversations.
    pub fn forget_ghosts(&mut self) {
        for (sid, c) in std::mem::take(&mut self.ghosts) {
            for p in &c.participants {
                if let Some(m) = self.memberships.get_mut(&p.identity) {
                    m.by_creation.remove(&(c.created_index, 0));
                    m.by_activity.remove(&activity_key(&c));
                }
            }
            let _ = sid;
        }
    }

    /// Where a conversation (or a lagging removed one) stands in the current list order.
    pub fn list_key(&self, sid: &str) -> Option<(u64, u64)> {
        let c = self
            .conversations
            .get(sid)
            .or_else(|| self.ghosts.get(sid))?;
        Some(match self.list_order {
            ListOrder::Creation => (c.created_index, 0),
            ListOrder::Activity => activity_key(c),
        })
    }

    /// The sid of the conversation with this unique name.
    pub fn sid_named(&self, name: &str) -> Option<String> {
        self.conversations
            .values()
            .find(|c| c.unique_name.as_deref() == Some(name))
            .map(|c| c.sid.clone())
    }

    /// Marks activity on a conversation: it moves to the front of the by-activity order.
    pub fn bump(&mut self, sid: &str) -> bool {
        let Some(c) = self.conversations.get(sid) else {
            return false;
        };
        let members: Vec<String> = c.participants.iter().map(|p| p.identity.clone()).collect();
        for m in &members {
            self.unindex_membership(m, sid);
        }
        self.activity += 1;
        let activity = self.activity;
        if let Some(c) = self.conversations.get_mut(sid) {
            c.activity = activity;
        }
        for m in &members {
            self.index_membership(m, sid);
        }
        true
    }

    /// Deletes a conversation; returns the events (sent to its former participants).
    pub fn remove_conversation(&mut self, sid: &str) -> Option<Vec<PendingEvent>> {
        let members: Vec<String> = self
            .conversations
            .get(sid)?
            .participants
            .iter()
            .map(|p| p.identity.clone())
            .collect();
        for m in &members {
            self.unindex_membership(m, sid);
        }
        let c = self.conversations.remove(sid)?;
        self.by_creation.remove(&c.created_index);
        let mut ev = PendingEvent::new(
            EventType::ConversationRemoved,
            ObjectKey::Conversation(sid.to_owned()),
        );
        ev.audience = Some(members.into_iter().collect());
        Some(vec![ev])
    }

    /// Writes new attributes to an object; returns the new revision and the events to emit.
    pub fn set_attributes(
        &mut self,
        key: &ObjectKey,
        attributes: Value,
    ) -> Option<(u64, Vec<PendingEvent>)> {
        let now = self.clock.now();
        let (history, kind) = match key {
            ObjectKey::User(id) => (&mut self.users.get_mut(id)?.history, EventType::UserUpdated),
            ObjectKey::Conversation(sid) => (
                &mut self.conversations.get_mut(sid)?.history,
                EventType::ConversationUpdated,
            ),
        };
        let revision = current(history).revision + 1;
        history.push(Snapshot {
            revision,
            attributes,
            at: now,
        });
        let mut ev = PendingEvent::new(kind, key.clone());
        ev.reasons = vec!["attributes".into()];
        Some((revision, vec![ev]))
    }

    /// The newest snapshot of an object.
    pub fn snapshot(&self, key: &ObjectKey) -> Option<&Snapshot> {
        match key {
            ObjectKey::User(id) => self.users.get(id).map(UserRecord::current),
            ObjectKey::Conversation(sid) => {
                self.conversations.get(sid).map(ConversationRecord::current)
            }
        }
    }

    /// An event re-sending the snapshot before the newest one (a stale delivery).
    pub fn stale_event(&self, key: &ObjectKey) -> Option<PendingEvent> {
        let (history, kind) = match key {
            ObjectKey::User(id) => (&self.users.get(id)?.history, EventType::UserUpdated),
            ObjectKey::Conversation(sid) => (
                &self.conversations.get(sid)?.history,
                EventType::ConversationUpdated,
            ),
        };
        let old = history.iter().rev().nth(1)?.clone();
        let mut ev = PendingEvent::new(kind, key.clone());
        ev.reasons = vec!["attributes".into()];
        ev.stale = Some(old);
        Some(ev)
    }

    /// Appends a message; returns its index and events.
    pub fn add_message(
        &mut self,
        conversation: &str,
        author: &str,
        body: &str,
    ) -> Option<(u64, Vec<PendingEvent>)> {
        let msid = self.next("IM");
        let now = self.clock.now();
        let c = self.conversations.get_mut(conversation)?;
        let index = c.next_message_index;
        c.next_message_index += 1;
        c.messages.insert(
            (index, 0),
            MessageRecord {
                sid: msid,
                index,
                author: author.to_owned(),
                body: body.to_owned(),
                created: now,
                updated: now,
            },
        );
        self.bump(conversation);
        Some((
            index,
            vec![self.message_event(EventType::MessageAdded, conversation, index)],
        ))
    }

    fn message_event(&self, kind: EventType, conversation: &str, index: u64) -> PendingEvent {
        let mut ev = PendingEvent::new(kind, ObjectKey::Conversation(conversation.to_owned()));
        ev.extra = json!({ "index": index });
        if let Some(m) = self
            .conversations
            .get(conversation)
            .and_then(|c| c.messages.get(&(index, 0)).map(|m| (c, m)))
        {
            ev.extra["message"] = resources::message(self, m.0, m.1);
        }
        ev
    }

    /// Changes a message's body; returns the events.
    pub fn edit_message(
        &mut self,
        conversation: &str,
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
        Some(vec![self.message_event(
            EventType::MessageUpdated,
            conversation,
            index,
        )])
    }

    /// Deletes a message; returns the events.
    pub fn remove_message(&mut self, conversation: &str, index: u64) -> Option<Vec<PendingEvent>> {
        let ev = self.message_event(EventType::MessageRemoved, conversation, index);
        self.conversations
            .get_mut(conversation)?
            .messages
            .remove(&(index, 0))?;
        Some(vec![ev])
    }

    /// Closes a gate.
    pub fn close_gate(&mut self, gate: Gate) {
        if !self.gate_list.contains(&gate) {
            self.gate_list.push(gate);
        }
    }

    /// Opens a gate; returns whether it was closed.
    pub fn open_gate(&mut self, gate: &Gate) -> bool {
        let before = self.gate_list.len();
        self.gate_list.retain(|g| g != gate);
        before != self.gate_list.len()
    }

    /// The closed gate that holds back a request classified as `ep`, if any.
    pub fn closed_gate(&self, ep: &Endpoint) -> Option<&Gate> {
        self.gate_list.iter().find(|g| g.matches(ep))
    }

    /// Starts holding events about `key`.
    pub fn hold(&mut self, key: ObjectKey) {
        self.holds.insert(key);
    }

    /// Stops holding events about `key`; publishes what was held, in order.
    pub fn release(&mut self, key: &ObjectKey) -> usize {
        self.holds.remove(key);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|e| &e.key == key);
        self.held = later;
        let n = now.len();
        for ev in now {
            self.publish(ev);
        }
        n
    }

    /// Publishes events, or parks those whose object is held.
    pub fn emit(&mut self, events: Vec<PendingEvent>) {
        for ev in events {
            if self.holds.contains(&ev.key) {
                self.held.push(ev);
            } else {
                self.publish(ev);
            }
        }
    }

    /// Who should receive an event about `key`.
    fn audience(&self, key: &ObjectKey) -> BTreeSet<String> {
        match key {
            ObjectKey::User(id) => BTreeSet::from([id.clone()]),
            ObjectKey::Conversation(sid) => self
                .conversations
                .get(sid)
                .map(|c| c.participants.iter().map(|p| p.identity.clone()).collect())
                .unwrap_or_default(),
        }
    }

    fn publish(&mut self, ev: PendingEvent) {
        let audience = ev
            .audience
            .clone()
            .unwrap_or_else(|| self.audience(&ev.key));
        let snapshot = match &ev.stale {
            Some(s) => Some(s.clone()),
            None => self.snapshot(&ev.key).cloned(),
        };
        let revision = snapshot.as_ref().map(|s| s.revision);
        let mut body = json!({
            "type": ev.kind.name(),
            "revision": revision,
            "reasons": ev.reasons,
        });
        match &ev.key {
            ObjectKey::User(id) => {
                if let (Some(u), Some(s)) = (self.users.get(id), &snapshot) {
                    body["user"] = resources::user(self, u, s);
                }
            }
            ObjectKey::Conversation(sid) => {
                body["conversation_sid"] = json!(sid);
                if let (Some(c), Some(s)) = (self.conversations.get(sid), &snapshot) {
                    body["conversation"] = resources::conversation(self, c, s);
                }
            }
        }
        if let Value::Object(extra) = &ev.extra {
            for (k, v) in extra {
                body[k] = v.clone();
            }
        }
        self.hub.publish(Published {
            audience,
            event: ev.kind.name().to_owned(),
            target: ev.key.to_string(),
            revision,
            body,
        });
    }
}
