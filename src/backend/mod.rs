//! The mock Conversations service: real HTTP and a real WebSocket on loopback.
//!
//! Parts: [`state`] (the truth and its revisions), [`resources`] (v1 JSON shapes), `rest`
//! (wiremock endpoints), [`hub`] (the WebSocket event channel), [`tokens`] (JWT minting and
//! validation on virtual time), [`journal`] (the record of everything the client did) and
//! [`fixture`] (starting states). [`Backend`] is the front: the scenario driver starts one per
//! scenario and uses its controls (gates, event holds, another writer's changes, stale replays).

pub mod fixture;
pub mod hub;
pub mod journal;
mod list_actions;
pub mod resources;
mod rest;
pub mod state;
pub mod tokens;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wiremock::MockServer;

use crate::clock::VirtualClock;
use fixture::Fixture;
use hub::{Hub, HubContext};
use journal::{EntryKind, Journal};
use state::{BackendState, Gate, ListOrder, ObjectKey};

pub use list_actions::ListAction;
use tokens::TokenAuthority;

/// The backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A loopback listener could not be bound.
    #[error("could not bind a loopback listener: {0}")]
    Bind(#[from] std::io::Error),
    /// A scenario referred to something the backend does not have.
    #[error("{0}")]
    Missing(String),
}

/// A point in the client's walk through its subscribed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// When page `n` (0-based) is requested, before it is computed.
    BeforePage(u32),
    /// After page `n` was served: when the client asks for the next page, before that request
    /// is answered (so the client has page `n` in hand and cannot get page `n + 1` without the
    /// change). After the final page nothing is asked: the harness makes such changes with
    /// [`Backend::fire_pending`] once the client has settled on the whole list.
    AfterPage(u32),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Pages are numbered from 1 for people, as in the feature files.
            Self::BeforePage(n) => write!(f, "before page {} was served", n + 1),
            Self::AfterPage(n) => write!(f, "after page {} was served", n + 1),
        }
    }
}

/// State shared by the REST responders, the hub and the controls.
pub(crate) struct Shared {
    state: Mutex<BackendState>,
    pub(crate) journal: Journal,
    pub(crate) tokens: Arc<TokenAuthority>,
    /// Changes to make at exact points of the list walk.
    scheduled: Mutex<Vec<(At, ListAction)>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, BackendState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs (once) the changes scheduled for `at`, journaling each.
    pub(crate) fn reached(&self, at: At) {
        let due: Vec<ListAction> = {
            let mut pending = self.scheduled.lock().unwrap_or_else(|p| p.into_inner());
            let (due, later): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(a, _)| *a == at);
            *pending = later;
            due.into_iter().map(|(_, a)| a).collect()
        };
        for action in due {
            let what = match action.apply(&mut self.lock()) {
                Ok(what) => what,
                Err(e) => format!("could not {action}: {e}"),
            };
            self.journal.record(
                None,
                EntryKind::Control {
                    action: format!("{at}: {what}"),
                },
            );
        }
    }
}

/// A running mock backend. Dropping it stops both listeners.
pub struct Backend {
    shared: Arc<Shared>,
    hub: Hub,
    rest: Option<MockServer>,
    rest_url: String,
    events_url: String,
    hub_task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.hub_task.abort();
        // wiremock's MockServer verifies its expectations on drop with a blocking `block_on`
        // over tokio locks; inside an async task whose cooperative budget is spent that spins
        // forever. Drop it on a blocking thread instead.
        if let Some(server) = self.rest.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || drop(server));
                }
                Err(_) => drop(server),
            }
        }
    }
}

impl Backend {
    /// Starts a backend on fresh loopback ports. `seed` makes sids and token secrets reproducible.
    pub async fn start(
        clock: VirtualClock,
        journal: Journal,
        seed: u64,
    ) -> Result<Self, BackendError> {
        let rest_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let rest_url = format!("http://{}", rest_listener.local_addr()?);
        let events_listener = TcpListener::bind("127.0.0.1:0").await?;
        let events_url = format!("ws://{}/v1/events", events_listener.local_addr()?);
        let hub = Hub::default();
        let st = BackendState::new(seed, rest_url.clone(), clock.clone(), hub.clone());
        let tokens = Arc::new(TokenAuthority::new(
            clock,
            journal.secrets().clone(),
            seed,
            &st.account_sid,
            &st.service_sid,
        ));
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            journal: journal.clone(),
            tokens: tokens.clone(),
            scheduled: Mutex::new(Vec::new()),
        });
        let server = MockServer::builder()
            .listener(rest_listener)
            .disable_request_recording()
            .start()
            .await;
        rest::mount(&server, &shared).await;
        let ctx = Arc::new(HubContext {
            hub: hub.clone(),
            journal,
            tokens,
        });
        let hub_task = tokio::spawn(hub::serve(events_listener, ctx));
        Ok(Self {
            shared,
            hub,
            rest: Some(server),
            rest_url,
            events_url,
            hub_task,
        })
    }

    /// Base URL of the REST API (`http://127.0.0.1:PORT`).
    pub fn rest_url(&self) -> &str {
        &self.rest_url
    }

    /// The token generator's URL.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.rest_url)
    }

    /// The event channel's URL.
    pub fn events_url(&self) -> &str {
        &self.events_url
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// The event hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Direct access to the truth, for controls and checks.
    pub fn state(&self) -> MutexGuard<'_, BackendState> {
        self.shared.lock()
    }

    /// `"general" (CH...)` for a named conversation, the key itself otherwise: for control entries.
    fn name_of(&self, key: &ObjectKey) -> String {
        match key {
            ObjectKey::Conversation(sid) => match self
                .state()
                .conversations
                .get(sid)
                .and_then(|c| c.unique_name.clone())
            {
                Some(name) => format!("\"{name}\" ({sid})"),
                None => sid.clone(),
            },
            ObjectKey::User(_) => key.to_string(),
        }
    }

    fn control(&self, action: String) {
        self.shared
            .journal
            .record(None, EntryKind::Control { action });
    }

    /// Adds a fixture's users and conversations, silently.
    pub fn load_fixture(&self, name: &str, fixture: &Fixture) {
        let mut st = self.state();
        for u in &fixture.users {
            st.ensure_user(&u.identity);
            if let Some(a) = &u.attributes {
                let key = ObjectKey::User(u.identity.clone());
                st.set_attributes(&key, a.clone());
            }
        }
        for c in &fixture.conversations {
            let (sid, _) = st.create_conversation(
                Some(&c.unique_name),
                c.friendly_name.as_deref(),
                c.attributes
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({})),
                &c.participants,
            );
            for m in &c.messages {
                st.add_message(&sid, &m.author, &m.body);
            }
        }
        drop(st);
        self.control(format!("loaded fixture `{name}`"));
    }

    /// Adds `n` conversations named `{prefix}-{i}` with the given participants, silently.
    pub fn seed_conversations(&self, prefix: &str, n: usize, participants: &[String]) {
        let mut st = self.state();
        for i in 0..n {
            st.create_conversation(
                Some(&format!("{prefix}-{i}")),
                None,
                serde_json::json!({}),
                participants,
            );
        }
        drop(st);
        self.control(format!(
            "seeded {n} conversations `{prefix}-*` for {}",
            participants.join(", ")
        ));
    }

    /// The sid of the conversation with this unique name.
    pub fn conversation_sid(&self, unique_name: &str) -> Result<String, BackendError> {
        self.state()
            .conversations
            .values()
            .find(|c| c.unique_name.as_deref() == Some(unique_name))
            .map(|c| c.sid.clone())
            .ok_or_else(|| BackendError::Missing(format!("no conversation named `{unique_name}`")))
    }

    /// Schedules `action` for an exact point of the client's walk through its subscribed list.
    pub fn schedule(&self, at: At, action: ListAction) {
        self.control(format!("scheduled {at}: {action}"));
        self.shared
            .scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((at, action));
    }

    /// Makes every scheduled change whose point was never reached (after the final page, or
    /// after pages the list did not have); returns how many.
    pub fn fire_pending(&self) -> usize {
        let pending: Vec<(At, ListAction)> = std::mem::take(
            &mut *self
                .shared
                .scheduled
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let n = pending.len();
        for (at, action) in pending {
            let what = match action.apply(&mut self.state()) {
                Ok(what) => what,
                Err(e) => format!("could not {action}: {e}"),
            };
            self.control(format!(
                "{at} (never reached, made once the client settled): {what}"
            ));
        }
        n
    }

    /// Makes a list change now.
    pub fn apply(&self, action: ListAction) -> Result<(), BackendError> {
        let what = action
            .apply(&mut self.state())
            .map_err(BackendError::Missing)?;
        self.control(what);
        Ok(())
    }

    /// Serves at most `n` (1..=50) conversations per page of the subscribed list from now on.
    pub fn set_max_page_size(&self, n: u32) {
        self.state().max_page_size = n.clamp(1, 50);
        self.control(format!(
            "the subscribed list serves at most {} per page",
            n.clamp(1, 50)
        ));
    }

    /// The sids of `identity`'s subscribed conversations now (the truth a client's list must equal).
    pub fn subscribed(&self, identity: &str) -> std::collections::BTreeSet<String> {
        let st = self.state();
        st.memberships
            .get(identity)
            .map(|m| {
                m.by_creation
                    .values()
                    .filter(|sid| st.conversations.contains_key(*sid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Another participant edits message `index` of a conversation.
    pub fn edit_message(&self, sid: &str, index: u64, body: &str) -> Result<(), BackendError> {
        let mut st = self.state();
        let events = st
            .edit_message(sid, index, body)
            .ok_or_else(|| BackendError::Missing(format!("no message {index} in {sid}")))?;
        st.emit(events);
        drop(st);
        self.control(format!(
            "another participant edits message {index} of {sid}"
        ));
        Ok(())
    }

    /// Another participant removes message `index` of a conversation.
    pub fn remove_message(&self, sid: &str, index: u64) -> Result<(), BackendError> {
        let mut st = self.state();
        let events = st
            .remove_message(sid, index)
            .ok_or_else(|| BackendError::Missing(format!("no message {index} in {sid}")))?;
        st.emit(events);
        drop(st);
        self.control(format!(
            "another participant removes message {index} of {sid}"
        ));
        Ok(())
    }

    /// `author` posts a message; returns its index.
    pub fn post_message(&self, sid: &str, author: &str, body: &str) -> Result<u64, BackendError> {
        let mut st = self.state();
        let (index, events) = st
            .add_message(sid, author, body)
            .ok_or_else(|| BackendError::Missing(format!("no conversation {sid}")))?;
        st.emit(events);
        drop(st);
        self.control(format!("{author} posts message {index} to {sid}"));
        Ok(index)
    }

    /// Serves the subscribed list in `order` from now on.
    pub fn set_list_order(&self, order: ListOrder) {
        self.state().list_order = order;
        self.control(format!(
            "the subscribed list is ordered by {}",
            match order {
                ListOrder::Creation => "creation",
                ListOrder::Activity => "last activity",
            }
        ));
    }

    /// Closes a gate: the endpoint answers 503 + Retry-After until [`Backend::open_gate`].
    pub fn close_gate(&self, gate: Gate) {
        self.control(format!("gate closed on {gate}"));
        self.state().close_gate(gate);
    }

    /// Opens a gate.
    pub fn open_gate(&self, gate: &Gate) {
        self.state().open_gate(gate);
        self.control(format!("gate opened on {gate}"));
    }

    /// Sets how many seconds gated answers ask clients to wait.
    pub fn set_retry_after(&self, secs: u64) {
        self.state().retry_after_secs = secs;
    }

    /// Holds every event about `key` until [`Backend::release`].
    pub fn hold(&self, key: ObjectKey) {
        self.control(format!("holding events about {}", self.name_of(&key)));
        self.state().hold(key);
    }

    /// Publishes what was held about `key`; returns how many events.
    pub fn release(&self, key: &ObjectKey) -> usize {
        let name = self.name_of(key);
        let n = self.state().release(key);
        self.control(format!("released {n} held event(s) about {name}"));
        n
    }

    /// Another writer sets `key`'s attributes; returns the new revision.
    pub fn external_update(&self, key: &ObjectKey, attributes: Value) -> Result<u64, BackendError> {
        self.control(format!(
            "another writer sets the attributes of {} to {attributes}",
            self.name_of(key)
        ));
        let mut st = self.state();
        let (rev, events) = st
            .set_attributes(key, attributes)
            .ok_or_else(|| BackendError::Missing(format!("no object {key}")))?;
        st.emit(events);
        Ok(rev)
    }

    /// Re-sends the snapshot before the newest one of `key` (a late, stale event).
    pub fn deliver_stale(&self, key: &ObjectKey) -> Result<(), BackendError> {
        let mut st = self.state();
        let ev = st
            .stale_event(key)
            .ok_or_else(|| BackendError::Missing(format!("{key} has no older snapshot")))?;
        let rev = ev.stale.as_ref().map_or(0, |s| s.revision);
        st.emit(vec![ev]);
        drop(st);
        self.control(format!(
            "re-delivered the stale snapshot (revision {rev}) of {}",
            self.name_of(key)
        ));
        Ok(())
    }

    /// The backend's current attributes of `key`.
    pub fn attributes(&self, key: &ObjectKey) -> Option<Value> {
        self.state().snapshot(key).map(|s| s.attributes.clone())
    }

    /// Mints a token directly (scenario setup), within the service's TTL bounds.
    pub fn mint_token(&self, identity: &str, ttl: Duration) -> Result<String, tokens::TokenError> {
        self.shared.tokens.mint(identity, ttl)
    }
}
