//! The service between the model and the transport: one lock around the model, the recorder,
//! the token authority, and the publishing path.
//!
//! Every change goes through [`Service::change`]: the closure mutates the model and returns the
//! events it caused; held ones are parked, the others are rendered, numbered and appended to the
//! event log, all under the model's lock (so event order is revision order). Only after the lock
//! is released are the hub's connections woken to deliver them: nothing here writes to a socket
//! while holding the model.
//!
//! Must not import: the transport, the facade.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use super::fact::{BindingFact, Control, Fact, PublishedFact, Recorder};
use super::model::{At, BindingChange, BindingRecord, Model, PendingEvent};
use super::render;
use super::tokens::TokenAuthority;

/// The state shared by the REST responders, the hub and the facade.
pub(crate) struct Service {
    model: Mutex<Model>,
    pub(crate) recorder: Arc<dyn Recorder>,
    pub(crate) tokens: TokenAuthority,
    published: watch::Sender<u64>,
    /// The last event socket number handed out.
    sockets: AtomicU64,
    /// Sockets numbered up to this one were silenced.
    silenced_through: AtomicU64,
    /// Wakes the expiry task when the bindings changed (its next deadline may have moved).
    bindings_changed: Notify,
    /// The next instant each open socket's token lease has something due (a warning, an
    /// expiry): the harness steps virtual time onto these, never over them.
    deadlines: Mutex<std::collections::BTreeMap<u64, crate::clock::VirtualInstant>>,
    /// Where each open twilsock socket stands, for the settle barrier of that face.
    pub(crate) channels: Channels,
}

/// Where one open twilsock socket stands.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChannelStatus {
    /// Its client instance.
    pub(crate) instance: Option<crate::wire::InstanceId>,
    /// The last event of the log it considered.
    pub(crate) cursor: u64,
    /// Frames written and not yet acknowledged.
    pub(crate) unacked: usize,
    /// Requests it carried.
    pub(crate) requests: u64,
    /// Notifications it carried.
    pub(crate) notifications: u64,
    /// Frames read from the client.
    pub(crate) received: u64,
    /// Upgraded, its `init` not answered yet.
    pub(crate) handshaking: bool,
}

/// The open twilsock sockets' statuses, and a signal that one changed.
#[derive(Default)]
pub(crate) struct Channels {
    open: Mutex<std::collections::BTreeMap<u64, ChannelStatus>>,
    /// Closed sockets' totals, per instance (a running total survives a reconnect).
    closed: Mutex<std::collections::BTreeMap<Option<crate::wire::InstanceId>, (u64, u64)>>,
    changed: watch::Sender<u64>,
}

impl Channels {
    fn lock(&self) -> MutexGuard<'_, std::collections::BTreeMap<u64, ChannelStatus>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a socket's status.
    pub(crate) fn set(&self, socket: u64, status: ChannelStatus) {
        self.lock().insert(socket, status);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Forgets a closed socket (keeping its totals).
    pub(crate) fn remove(&self, socket: u64) {
        if let Some(s) = self.lock().remove(&socket) {
            let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
            let t = closed.entry(s.instance).or_default();
            t.0 += s.requests;
            t.1 += s.notifications;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// A receiver woken whenever a status changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The open sockets of `instance`.
    pub(crate) fn of(&self, instance: &crate::wire::InstanceId) -> Vec<(u64, ChannelStatus)> {
        self.lock()
            .iter()
            .filter(|(_, s)| s.instance.as_ref() == Some(instance))
            .map(|(k, s)| (*k, s.clone()))
            .collect()
    }

    fn totals(&self, instance: &crate::wire::InstanceId) -> (u64, u64) {
        let open = self.of(instance);
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let (r, n) = closed
            .get(&Some(instance.clone()))
            .copied()
            .unwrap_or_default();
        open.iter().fold((r, n), |(r, n), (_, s)| {
            (r + s.requests, n + s.notifications)
        })
    }

    /// Requests `instance`'s sockets carried, all told.
    pub(crate) fn requests(&self, instance: &crate::wire::InstanceId) -> u64 {
        self.totals(instance).0
    }

    /// Notifications `instance`'s sockets carried, all told.
    pub(crate) fn notifications(&self, instance: &crate::wire::InstanceId) -> u64 {
        self.totals(instance).1
    }
}

impl Service {
    pub(crate) fn new(model: Model, recorder: Arc<dyn Recorder>, tokens: TokenAuthority) -> Self {
        Self {
            model: Mutex::new(model),
            recorder,
            tokens,
            published: watch::Sender::new(0),
            sockets: AtomicU64::new(0),
            silenced_through: AtomicU64::new(0),
            bindings_changed: Notify::new(),
            deadlines: Mutex::default(),
            channels: Channels::default(),
        }
    }

    /// Numbers a new event socket.
    pub(crate) fn next_socket(&self) -> u64 {
        self.sockets.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Silences every event socket open now, for good; wakes them so they notice.
    pub(crate) fn silence_open_sockets(&self) {
        self.silenced_through
            .fetch_max(self.sockets.load(Ordering::SeqCst), Ordering::SeqCst);
        self.published.send_modify(|_| {});
    }

    /// Records when `socket` next has something due (`None`: nothing, or it closed).
    pub(crate) fn set_deadline(&self, socket: u64, at: Option<crate::clock::VirtualInstant>) {
        let mut d = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
        match at {
            Some(at) => d.insert(socket, at),
            None => d.remove(&socket),
        };
    }

    /// The earliest instant after `now` at which an open socket has something due.
    pub(crate) fn next_deadline(
        &self,
        now: crate::clock::VirtualInstant,
    ) -> Option<crate::clock::VirtualInstant> {
        let d = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
        d.values().copied().filter(|t| *t > now).min()
    }

    /// Whether `socket` was silenced.
    pub(crate) fn is_silenced(&self, socket: u64) -> bool {
        socket <= self.silenced_through.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the model.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the model; publishes (or parks) the events the change returns.
    pub(crate) fn change<R>(&self, f: impl FnOnce(&mut Model) -> (R, Vec<PendingEvent>)) -> R {
        let (result, last) = {
            let mut m = self.lock();
            let (result, events) = f(&mut m);
            let ready = m.events.admit(events);
            self.publish(&mut m, ready);
            (result, m.events.last_seq())
        };
        self.published.send_if_modified(|seen| {
            let grew = *seen != last;
            *seen = last;
            grew
        });
        result
    }

    /// Changes the model without causing events.
    pub(crate) fn quietly<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        self.change(|m| (f(m), Vec::new()))
    }

    /// Publishes events that were held (they bypass the holds).
    pub(crate) fn release(&self, f: impl FnOnce(&mut Model) -> Vec<PendingEvent>) -> usize {
        let (n, last) = {
            let mut m = self.lock();
            let ready = f(&mut m);
            let n = ready.len();
            self.publish(&mut m, ready);
            (n, m.events.last_seq())
        };
        self.published.send_replace(last);
        n
    }

    /// A receiver that sees the sequence number of the newest published event.
    pub(crate) fn published(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Records a harness control.
    pub(crate) fn control(&self, control: Control) {
        self.recorder.record(None, Fact::Control(control));
    }

    /// Makes (once) the list changes scheduled for `at`, or every one still waiting when `at` is
    /// `None`; journals each. Returns how many were made.
    pub(crate) fn reach(&self, at: Option<At>) -> usize {
        let due = self.quietly(|m| m.take_scheduled(at));
        let n = due.len();
        for (point, change) in due {
            let outcome = self.change(|m| match change.apply(m) {
                Ok((sid, events)) => (Ok(sid), events),
                Err(e) => (Err(e), Vec::new()),
            });
            self.control(Control::ListChanged {
                at: Some(point),
                late: at.is_none(),
                change,
                outcome,
            });
        }
        n
    }
}

/// A binding fact for `b`.
pub(crate) fn binding_fact(change: BindingChange, b: &BindingRecord) -> BindingFact {
    BindingFact {
        change,
        sid: b.sid.clone(),
        identity: b.identity.clone(),
        address: b.address.clone(),
        binding_type: b.binding_type,
    }
}

impl Service {
    /// Changes the push bindings: first expires every binding idle for a year at the virtual
    /// time now, then runs `f`; journals the expiries and the facts `f` returns (one per change
    /// of the set) while the model is still locked, then wakes the expiry task.
    pub(crate) fn bindings<R>(&self, f: impl FnOnce(&mut Model) -> (R, Vec<BindingFact>)) -> R {
        let result = {
            let mut m = self.lock();
            self.sweep_locked(&mut m);
            let (result, facts) = f(&mut m);
            for fact in facts {
                self.recorder.record(None, Fact::Binding(fact));
            }
            result
        };
        self.bindings_changed.notify_one();
        result
    }

    /// Expires every binding idle for a year at the virtual time now (journaling each); returns
    /// when the next one will expire.
    pub(crate) fn sweep_bindings(&self) -> Option<crate::clock::VirtualInstant> {
        let mut m = self.lock();
        self.sweep_locked(&mut m);
        m.next_binding_expiry()
    }

    /// An event-channel connection of `identity` succeeded: expired bindings go first, then
    /// its bindings live another year.
    pub(crate) fn touch_identity(&self, identity: &str) {
        self.bindings(|m| {
            m.touch_identity(identity);
            ((), Vec::new())
        });
    }

    fn sweep_locked(&self, m: &mut Model) {
        let now = m.now();
        for b in m.expire_bindings(now) {
            self.recorder.record(
                None,
                Fact::Binding(binding_fact(BindingChange::Expired, &b)),
            );
        }
    }
}

/// Expires idle bindings as virtual time reaches them, so a scenario that only lets time pass
/// sees the expiry journaled: sleeps on `clock` until the earliest expiry, re-armed whenever the
/// bindings change. Runs until aborted (the backend aborts it when dropped).
pub(crate) async fn expire_idle_bindings(service: Arc<Service>, clock: crate::clock::VirtualClock) {
    type Sleep = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    let mut armed: Option<(crate::clock::VirtualInstant, Sleep)> = None;
    loop {
        let next = service.sweep_bindings();
        // Re-arm only when the deadline moved: a dropped sleeper lingers in the clock.
        if armed.as_ref().map(|(at, _)| *at) != next {
            armed = next.map(|at| (at, Box::pin(clock.sleep_until(at)) as Sleep));
        }
        let changed = service.bindings_changed.notified();
        let fired = match &mut armed {
            Some((_, sleep)) => tokio::select! {
                () = sleep => true,
                () = changed => false,
            },
            None => {
                changed.await;
                false
            }
        };
        if fired {
            armed = None;
        }
    }
}

impl Service {
    /// Renders, numbers and logs `ready`, recording each publication while the model is still
    /// locked: the journal's order of publications is the log's order, and no frame of an event
    /// can be journaled before its publication. (A [`Recorder`] must not call into the backend.)
    fn publish(&self, m: &mut Model, ready: Vec<PendingEvent>) {
        for ev in ready {
            let published = render::event(m, &ev, m.events.next_seq());
            self.recorder.record(
                None,
                Fact::Published(PublishedFact {
                    event_seq: published.frame.seq,
                    event: published.frame.kind,
                    target: published.frame.target().or(Some(ev.key.clone())),
                    revision: published.frame.revision,
                    audience: published.audience.iter().cloned().collect(),
                }),
            );
            m.events.append(published);
        }
    }
}
