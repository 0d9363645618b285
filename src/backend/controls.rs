//! The backend's controls: what scenarios and properties do to the service besides serving the
//! client. Each one changes the model through the service and journals a typed [`Control`].

use std::collections::BTreeSet;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fact::Control;
use super::fixture::Fixture;
use super::model::{
    At, BindingRecord, BindingType, ConversationRecord, Gate, ListAction, ListOrder, Outage,
};
use super::service::binding_fact;
use super::tokens::TokenError;
use super::{Backend, BackendError};
use crate::clock::VirtualInstant;
use crate::wire::{ConversationSid, ObjectKey};

/// What the backend holds now, for a person looking at it (`convo-tck backend`'s `GET /state`).
#[derive(Clone, Debug, Serialize)]
pub struct BackendState {
    /// Virtual time now.
    pub now: VirtualInstant,
    /// Virtual time now, RFC 3339.
    pub now_rfc3339: String,
    /// The account sid.
    pub account_sid: String,
    /// The conversation service's sid.
    pub service_sid: String,
    /// Users, by identity.
    pub users: Vec<UserState>,
    /// Live conversations, by sid.
    pub conversations: Vec<ConversationState>,
    /// Removed conversations (each can be restored with its sid).
    pub removed_conversations: Vec<ConversationState>,
    /// Closed gates, in the order they were closed.
    pub gates_closed: Vec<Gate>,
    /// Seconds in the Retry-After of a gated answer.
    pub retry_after_secs: u64,
    /// Objects whose events are held.
    pub holding: Vec<ObjectKey>,
    /// Events waiting for a release.
    pub events_held: usize,
    /// Events published so far.
    pub events_published: u64,
    /// Live push bindings, in registration order.
    pub bindings: Vec<BindingState>,
}

/// A push binding as the backend holds it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingState {
    /// `BS...`
    pub sid: String,
    /// Chat identity.
    pub identity: String,
    /// The device token.
    pub address: String,
    /// Push technology.
    pub binding_type: BindingType,
    /// The message types it is subscribed to.
    pub message_types: Vec<String>,
    /// Created at.
    pub date_created: VirtualInstant,
    /// The last registration write.
    pub date_updated: VirtualInstant,
    /// The last activity: a registration write or an event-channel connection of its identity.
    pub last_active: VirtualInstant,
    /// When it expires if nothing happens meanwhile (a year after `last_active`).
    pub expires_at: VirtualInstant,
}

impl BindingState {
    fn of(b: &BindingRecord) -> Self {
        Self {
            sid: b.sid.clone(),
            identity: b.identity.clone(),
            address: b.address.clone(),
            binding_type: b.binding_type,
            message_types: b.message_types.clone(),
            date_created: b.created,
            date_updated: b.updated,
            last_active: b.last_active,
            expires_at: b.expires_at(),
        }
    }
}

/// The counts of one conversation as one participant sees them now, and when each last changed
/// (the truth a client's counts are judged against).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CountsTruth {
    /// The conversation.
    pub conversation: ConversationSid,
    /// Whose unread count.
    pub identity: String,
    /// How many participants it has.
    pub participants: u64,
    /// When that last changed.
    pub participants_changed: VirtualInstant,
    /// How many messages it has.
    pub messages: u64,
    /// When that last changed (a message added or removed).
    pub messages_changed: VirtualInstant,
    /// `identity`'s unread messages: null until it has a read horizon, exactly as its
    /// user-conversation resource answers.
    pub unread: Option<u64>,
    /// When that last changed (joining, or a message or read-horizon write that moved it).
    pub unread_changed: VirtualInstant,
}

/// A user as [`BackendState`] shows it.
#[derive(Clone, Debug, Serialize)]
pub struct UserState {
    /// Chat identity.
    pub identity: String,
    /// `US...`
    pub sid: String,
    /// Attributes revision.
    pub revision: u64,
    /// Attributes.
    pub attributes: Value,
    /// How many conversations its subscribed list holds.
    pub subscribed: usize,
}

/// A conversation as [`BackendState`] shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConversationState {
    /// `CH...`
    pub sid: ConversationSid,
    /// Unique name.
    pub unique_name: Option<String>,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Attributes revision.
    pub revision: u64,
    /// Attributes.
    pub attributes: Value,
    /// Participant identities.
    pub participants: Vec<String>,
    /// How many messages it has.
    pub messages: usize,
}

impl ConversationState {
    fn of(c: &ConversationRecord) -> Self {
        let current = c.history.current();
        Self {
            sid: c.sid.clone(),
            unique_name: c.unique_name.clone(),
            friendly_name: c.friendly_name.clone(),
            revision: current.revision,
            attributes: current.attributes.clone(),
            participants: c.members(),
            messages: c.messages.len(),
        }
    }
}

fn bindings_in_order<'a>(all: impl Iterator<Item = &'a BindingRecord>) -> Vec<BindingState> {
    let mut v: Vec<&BindingRecord> = all.collect();
    v.sort_by_key(|b| b.seq);
    v.into_iter().map(BindingState::of).collect()
}

impl Backend {
    fn name_of(&self, key: &ObjectKey) -> Option<String> {
        let sid = key.conversation()?;
        self.service
            .read(|m| m.conversation(sid).and_then(|c| c.unique_name.clone()))
    }

    fn missing(what: String) -> BackendError {
        BackendError::Missing(what)
    }

    /// Adds a fixture's users and conversations, silently (as if they always existed).
    pub fn load_fixture(&self, name: &str, fixture: &Fixture) {
        self.service.quietly(|m| {
            for u in &fixture.users {
                m.ensure_user(&u.identity);
                if let Some(a) = &u.attributes {
                    // Loading is silent: the write's events are dropped.
                    let _ = m.set_attributes(&ObjectKey::User(u.identity.clone()), a.clone());
                }
            }
            for c in &fixture.conversations {
                let (sid, _) = m.create_conversation(
                    Some(&c.unique_name),
                    c.friendly_name.as_deref(),
                    c.attributes.clone().unwrap_or_else(|| json!({})),
                    &c.participants,
                );
                for msg in &c.messages {
                    let _ = m.add_message(&sid, &msg.author, &msg.body);
                }
            }
        });
        self.service.control(Control::FixtureLoaded {
            name: name.to_owned(),
        });
    }

    /// Adds `n` conversations named `{prefix}-{i}` with the given participants, silently.
    pub fn seed_conversations(&self, prefix: &str, n: usize, participants: &[String]) {
        self.service.quietly(|m| {
            for i in 0..n {
                m.create_conversation(
                    Some(&format!("{prefix}-{i}")),
                    None,
                    json!({}),
                    participants,
                );
            }
        });
        self.service.control(Control::ConversationsSeeded {
            prefix: prefix.to_owned(),
            count: n,
            participants: participants.to_vec(),
        });
    }

    /// The sid of the conversation with this unique name.
    pub fn conversation_sid(&self, unique_name: &str) -> Result<ConversationSid, BackendError> {
        self.service
            .read(|m| m.sid_named(unique_name))
            .ok_or_else(|| Self::missing(format!("no conversation named `{unique_name}`")))
    }

    /// Schedules `action` for an exact point of the client's walk through its subscribed list.
    pub fn schedule(&self, at: At, action: ListAction) {
        self.service.control(Control::ListChangeScheduled {
            at,
            change: action.clone(),
        });
        self.service.quietly(|m| m.schedule(at, action));
    }

    /// Makes every scheduled change whose point was never reached (after the final page, or
    /// after pages the list did not have); returns how many.
    pub fn fire_pending(&self) -> usize {
        self.service.reach(None)
    }

    /// Makes a list change now.
    pub fn apply(&self, action: ListAction) -> Result<(), BackendError> {
        let outcome = self.service.change(|m| match action.apply(m) {
            Ok((sid, events)) => (Ok(sid), events),
            Err(e) => (Err(e), Vec::new()),
        });
        let failed = outcome.clone().err();
        self.service.control(Control::ListChanged {
            at: None,
            late: false,
            change: action,
            outcome,
        });
        failed.map_or(Ok(()), |e| Err(Self::missing(e)))
    }

    /// Serves at most `n` (1..=50) conversations per page of the subscribed list from now on.
    pub fn set_max_page_size(&self, n: u32) {
        let max = n.clamp(1, 50);
        self.service.quietly(|m| m.lists.max_page_size = max);
        self.service.control(Control::PageSizeCapped { max });
    }

    /// Serves the subscribed list in `order` from now on.
    pub fn set_list_order(&self, order: ListOrder) {
        self.service.quietly(|m| m.lists.order = order);
        self.service.control(Control::ListOrdered { order });
    }

    /// The sids of `identity`'s subscribed conversations now (the truth a client's list must
    /// equal).
    pub fn subscribed(&self, identity: &str) -> BTreeSet<ConversationSid> {
        self.service.read(|m| m.subscribed(identity))
    }

    /// Another participant edits message `index` of a conversation.
    pub fn edit_message(
        &self,
        sid: &ConversationSid,
        index: u64,
        body: &str,
    ) -> Result<(), BackendError> {
        self.service
            .change(|m| match m.edit_message(sid, index, body) {
                Some(events) => (true, events),
                None => (false, Vec::new()),
            })
            .then_some(())
            .ok_or_else(|| Self::missing(format!("no message {index} in {sid}")))?;
        self.service.control(Control::MessageEdited {
            conversation: sid.clone(),
            index,
        });
        Ok(())
    }

    /// Another participant removes message `index` of a conversation.
    pub fn remove_message(&self, sid: &ConversationSid, index: u64) -> Result<(), BackendError> {
        self.service
            .change(|m| match m.remove_message(sid, index) {
                Some(events) => (true, events),
                None => (false, Vec::new()),
            })
            .then_some(())
            .ok_or_else(|| Self::missing(format!("no message {index} in {sid}")))?;
        self.service.control(Control::MessageRemoved {
            conversation: sid.clone(),
            index,
        });
        Ok(())
    }

    /// `author` posts a message; returns its index.
    pub fn post_message(
        &self,
        sid: &ConversationSid,
        author: &str,
        body: &str,
    ) -> Result<u64, BackendError> {
        let index = self
            .service
            .change(|m| match m.add_message(sid, author, body) {
                Some((index, events)) => (Some(index), events),
                None => (None, Vec::new()),
            })
            .ok_or_else(|| Self::missing(format!("no conversation {sid}")))?;
        self.service.control(Control::MessagePosted {
            conversation: sid.clone(),
            author: author.to_owned(),
            index,
        });
        Ok(index)
    }

    /// Breaks the network the way `outage` says, until [`Backend::restore`]. Connections the
    /// outage cuts are journaled as closed after the outage itself.
    pub async fn outage(&self, outage: Outage) -> Result<(), BackendError> {
        self.service.control(Control::Outage { outage });
        self.network.lock().await.fail(outage).await
    }

    /// Mends the network: both ports serve again, on their old numbers (sockets a silence took
    /// stay silent until their client replaces them).
    pub async fn restore(&self) -> Result<(), BackendError> {
        self.network.lock().await.restore().await?;
        self.service.control(Control::Restored);
        Ok(())
    }

    /// The outage in force, if any.
    pub async fn current_outage(&self) -> Option<Outage> {
        self.network.lock().await.outage()
    }

    /// Closes a gate: what it covers answers 503 + Retry-After until [`Backend::open_gate`].
    pub fn close_gate(&self, gate: Gate) {
        self.service
            .control(Control::GateClosed { gate: gate.clone() });
        self.service.quietly(|m| m.gates.close(gate));
    }

    /// Opens a gate.
    pub fn open_gate(&self, gate: &Gate) {
        self.service.quietly(|m| m.gates.open(gate));
        self.service
            .control(Control::GateOpened { gate: gate.clone() });
    }

    /// Whether `gate` is closed.
    pub fn is_gated(&self, gate: &Gate) -> bool {
        self.service.read(|m| m.gates.is_closed(gate))
    }

    /// Sets how many seconds gated answers ask clients to wait.
    pub fn set_retry_after(&self, secs: u64) {
        self.service.quietly(|m| m.gates.retry_after_secs = secs);
    }

    /// Holds every event about `key` until [`Backend::release`].
    pub fn hold(&self, key: ObjectKey) {
        self.service.control(Control::Holding {
            name: self.name_of(&key),
            object: key.clone(),
        });
        self.service.quietly(|m| m.events.hold(key));
    }

    /// Publishes what was held about `key`; returns how many events.
    pub fn release(&self, key: &ObjectKey) -> usize {
        let events = self.service.release(|m| m.events.release(key));
        self.service.control(Control::Released {
            object: key.clone(),
            name: self.name_of(key),
            events,
        });
        events
    }

    /// Another writer sets `key`'s attributes; returns the new revision.
    pub fn external_update(&self, key: &ObjectKey, attributes: Value) -> Result<u64, BackendError> {
        let revision = self
            .service
            .change(|m| match m.set_attributes(key, attributes.clone()) {
                Some((revision, events)) => (Some(revision), events),
                None => (None, Vec::new()),
            })
            .ok_or_else(|| Self::missing(format!("no object {key}")))?;
        self.service.control(Control::OtherWriter {
            object: key.clone(),
            name: self.name_of(key),
            attributes,
            revision,
        });
        Ok(revision)
    }

    /// Re-sends the snapshot before the newest one of `key` (a late, stale event).
    pub fn deliver_stale(&self, key: &ObjectKey) -> Result<(), BackendError> {
        let revision = self
            .service
            .change(|m| match m.stale_event(key) {
                Some(ev) => (ev.stale.as_ref().map(|s| s.revision), vec![ev]),
                None => (None, Vec::new()),
            })
            .ok_or_else(|| Self::missing(format!("{key} has no older snapshot")))?;
        self.service.control(Control::StaleRedelivered {
            object: key.clone(),
            name: self.name_of(key),
            revision,
        });
        Ok(())
    }

    /// Re-sends the snapshot before the newest one of `key` now, even while its events are
    /// held: an older event overtaking the held newer one.
    pub fn deliver_stale_past_hold(&self, key: &ObjectKey) -> Result<(), BackendError> {
        let stale = self.service.read(|m| m.stale_event(key));
        let revision = stale
            .as_ref()
            .and_then(|ev| ev.stale.as_ref().map(|s| s.revision))
            .ok_or_else(|| Self::missing(format!("{key} has no older snapshot")))?;
        self.service.release(|_| stale.into_iter().collect());
        self.service.control(Control::StaleRedelivered {
            object: key.clone(),
            name: self.name_of(key),
            revision,
        });
        Ok(())
    }

    /// The backend's current attributes of `key`.
    pub fn attributes(&self, key: &ObjectKey) -> Option<Value> {
        self.service
            .read(|m| m.snapshot(key).map(|s| s.attributes.clone()))
    }

    /// Everything the backend holds now, for a person to look at.
    pub fn state(&self) -> BackendState {
        self.service.sweep_bindings();
        self.service.read(|m| {
            let (holding, events_held) = m.events.holding();
            BackendState {
                now: m.now(),
                now_rfc3339: m.now().rfc3339(),
                account_sid: m.account_sid.clone(),
                service_sid: m.service_sid.clone(),
                users: m
                    .users()
                    .map(|u| {
                        let current = u.history.current();
                        UserState {
                            identity: u.identity.clone(),
                            sid: u.sid.clone(),
                            revision: current.revision,
                            attributes: current.attributes.clone(),
                            subscribed: m.subscribed(&u.identity).len(),
                        }
                    })
                    .collect(),
                conversations: m.conversations().map(ConversationState::of).collect(),
                removed_conversations: m
                    .removed_conversations()
                    .map(ConversationState::of)
                    .collect(),
                gates_closed: m.gates.closed().to_vec(),
                retry_after_secs: m.gates.retry_after_secs,
                holding,
                events_held,
                events_published: m.events.last_seq(),
                bindings: bindings_in_order(m.bindings()),
            }
        })
    }

    /// The push bindings now, in registration order (bindings idle for a year expire first,
    /// journaled).
    pub fn bindings(&self) -> Vec<BindingState> {
        self.service
            .bindings(|m| (bindings_in_order(m.bindings()), Vec::new()))
    }

    /// Registers a push binding for `identity`'s device `address` now, as the client's
    /// registration write would (scenario setup: "carol registered device D2 a year ago", then
    /// let time pass). Journals the control, and the binding's creation or refresh.
    pub fn register_binding(
        &self,
        identity: &str,
        address: &str,
        binding_type: BindingType,
    ) -> BindingState {
        let state = self.service.bindings(|m| {
            let (b, change) = m.register_binding(identity, address, binding_type, None);
            (BindingState::of(&b), vec![binding_fact(change, &b)])
        });
        self.service.control(Control::BindingRegistered {
            identity: identity.to_owned(),
            address: address.to_owned(),
            binding_type,
        });
        state
    }

    /// The counts of `conversation` as `identity` (a participant) sees them now.
    pub fn counts(
        &self,
        conversation: &ConversationSid,
        identity: &str,
    ) -> Result<CountsTruth, BackendError> {
        self.counts_oracle().counts(conversation, identity)
    }

    /// A handle on [`Backend::counts`] that does not borrow the backend (the driver journals
    /// the truth with every count read it sends).
    pub fn counts_oracle(&self) -> CountsOracle {
        CountsOracle(self.service.clone())
    }

    /// How many events have been published so far.
    pub fn events_published(&self) -> u64 {
        self.service.read(|m| m.events.last_seq())
    }

    /// Mints a token directly (scenario setup), within the service's TTL bounds.
    pub fn mint_token(&self, identity: &str, ttl: Duration) -> Result<String, TokenError> {
        self.service.tokens.mint(identity, ttl)
    }

    /// Makes the token generator mint tokens of lifetime `ttl` whatever it is asked for
    /// (`None`: what it is asked for again). Journaled.
    pub fn force_token_ttl(&self, ttl: Option<Duration>) {
        self.service.quietly(|m| m.token_ttl = ttl);
        self.service.control(Control::TokenTtl {
            secs: ttl.map(|d| d.as_secs()),
        });
    }

    /// The earliest instant after now at which the backend has something due on its own (an
    /// open socket's token warning or expiry). The harness steps virtual time onto it, never
    /// over it, so a client always gets the warning before the expiry whatever step a scenario
    /// takes.
    pub fn next_deadline(&self) -> Option<VirtualInstant> {
        self.service
            .next_deadline(self.service.tokens.clock().now())
    }
}

/// The backend's counts truth, reachable without the [`Backend`] (see
/// [`Backend::counts_oracle`]).
#[derive(Clone)]
pub struct CountsOracle(std::sync::Arc<super::service::Service>);

impl std::fmt::Debug for CountsOracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountsOracle")
    }
}

impl CountsOracle {
    /// The counts of `conversation` as `identity` (a participant) sees them now.
    pub fn counts(
        &self,
        conversation: &ConversationSid,
        identity: &str,
    ) -> Result<CountsTruth, BackendError> {
        self.0.read(|m| {
            let c = m
                .conversation(conversation)
                .ok_or_else(|| Backend::missing(format!("no conversation {conversation}")))?;
            let p = c
                .participants
                .iter()
                .find(|p| p.identity == identity)
                .ok_or_else(|| {
                    Backend::missing(format!("{identity} is not a participant of {conversation}"))
                })?;
            Ok(CountsTruth {
                conversation: c.sid.clone(),
                identity: identity.to_owned(),
                participants: c.participants.len() as u64,
                participants_changed: c.participants_changed,
                messages: c.messages.len() as u64,
                messages_changed: c.messages_changed,
                unread: c.unread(p),
                unread_changed: p.unread_changed,
            })
        })
    }
}
