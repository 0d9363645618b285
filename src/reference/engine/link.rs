//! The event connection: one socket per instance, a heartbeat that notices a silent link, and
//! reconnection with exponential backoff and jitter on the virtual clock, resuming after the
//! last event received.
//!
//! A lost socket (cut, refused, silent) is replaced by the same instance: the client is never
//! shut down or re-created for it. Attempts wait out a backoff first: the n-th failed attempt in
//! a row waits `min(1 s × 2ⁿ, 60 s)` stretched by a jitter in `[1, 1.5)` drawn from a seeded
//! generator, so runs repeat. Going to the background parks the link (the socket closes, no
//! attempts); coming back opens a socket at once.

use std::time::Duration;

use super::state::LinkState;
use super::{Engine, Input, TaskResult};
use crate::adapter::{ConnectionState, Observation};
use crate::reference::net::{self, SocketEvent};
use crate::wire::Heartbeat;

/// How often an open socket is probed.
pub(super) const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// The first backoff.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The constant retry of a client without backoff (fault `no-backoff`).
const NO_BACKOFF: Duration = Duration::from_millis(100);

impl Engine {
    /// A socket number for the next connection.
    pub(super) fn next_link(&mut self) -> u64 {
        self.links += 1;
        self.links
    }

    /// What the socket numbered `link` delivers, as the engine's input.
    pub(super) fn deliver_to(&self, link: u64) -> impl Fn(SocketEvent) -> bool + Send + 'static {
        let inputs = self.inputs.clone();
        move |event| inputs.send(Input::Socket { link, event }).is_ok()
    }

    /// A socket is open for the session: start its heartbeat.
    pub(super) fn linked(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.link.failures = 0;
        s.link.heartbeat = None;
        let link = s.link.id;
        self.observe(Observation::ConnectionState {
            state: ConnectionState::Connected,
        });
        if self.policy.heartbeat {
            self.arm_heartbeat(link);
        }
    }

    fn arm_heartbeat(&mut self, link: u64) {
        let (clock, activity) = (self.clock.clone(), self.activity.clone());
        self.spawn(async move {
            activity.sleep(&clock, HEARTBEAT_EVERY).await;
            TaskResult::HeartbeatDue { link }
        });
    }

    /// The heartbeat timer of socket `link` fired: probe it, or give it up if the last probe
    /// was never echoed.
    pub(super) fn heartbeat_due(&mut self, link: u64) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.link.id != link || s.link.sender().is_none() {
            return;
        }
        if s.link.heartbeat.is_some() {
            // Silent for a whole period: the link is dead even though the socket is open.
            self.lost_link();
            // After: a loss that ends the client resets its activity, and this socket is still
            // closing either way.
            self.letting_go(Some(link));
            return;
        }
        self.nonce += 1;
        let nonce = self.nonce;
        let frame = serde_json::to_string(&Heartbeat { nonce }).unwrap_or_default();
        if let Some(tx) = s.link.sender() {
            let _ = tx.send(frame);
        }
        s.link.heartbeat = Some(nonce);
        self.arm_heartbeat(link);
    }

    /// The hub echoed a heartbeat.
    pub(super) fn heartbeat_echoed(&mut self, link: u64, nonce: u64) {
        if let Some(s) = self.session.as_mut()
            && s.link.id == link
            && s.link.heartbeat == Some(nonce)
        {
            s.link.heartbeat = None;
        }
    }

    /// The socket numbered `link` closed.
    pub(super) fn socket_closed(&mut self, link: u64) {
        let current = self
            .session
            .as_ref()
            .is_some_and(|s| s.link.id == link && s.link.sender().is_some());
        if current {
            self.lost_link();
        }
    }

    /// The open socket is gone (closed by the other side, or dead): close it, and replace it
    /// unless the app is in the background.
    pub(super) fn lost_link(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        // Dropping the sender closes the socket.
        s.link.state = LinkState::Reconnecting;
        s.link.heartbeat = None;
        self.forget_pings();
        self.observe(Observation::ConnectionState {
            state: ConnectionState::Disconnected,
        });
        if !self.policy.survive_connection_loss {
            // Fault `shutdown-on-error`: the loss ends the client.
            let _ = self.shut_down();
            return;
        }
        if !self.policy.keep_instance_on_reconnect {
            // Fault `recreate-on-reconnect`: a new client replaces the old one.
            self.recreate();
            return;
        }
        if self.session.as_ref().is_some_and(|s| s.background) {
            if let Some(s) = self.session.as_mut() {
                s.link.state = LinkState::Parked;
            }
            return;
        }
        self.observe(Observation::ConnectionState {
            state: ConnectionState::Connecting,
        });
        self.reconnect(true);
    }

    /// The backoff before the next attempt.
    fn backoff(&mut self, failures: u32) -> Duration {
        if !self.policy.reconnect_backoff {
            return NO_BACKOFF;
        }
        let base = BACKOFF_MIN
            .saturating_mul(1 << failures.min(16))
            .min(BACKOFF_MAX);
        // splitmix64: a seeded jitter in [1, 1.5).
        self.jitter = self.jitter.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.jitter;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let stretch = 1.0 + (z >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        base.mul_f64(stretch)
    }

    /// Opens a new socket for the session, after the backoff when `wait` is set, resuming after
    /// the last event received.
    pub(super) fn reconnect(&mut self, wait: bool) {
        let failures = match &self.session {
            Some(s) => s.link.failures,
            None => return,
        };
        let delay = wait.then(|| self.backoff(failures));
        let link = self.next_link();
        let deliver = self.deliver_to(link);
        let (clock, activity) = (self.clock.clone(), self.activity.clone());
        let resume = self.policy.resume_after_last_event;
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let since = if resume { s.link.last_seq } else { None };
        if let LinkState::Open(old) = std::mem::replace(&mut s.link.state, LinkState::Reconnecting)
        {
            // Fault `second-socket`: the old socket is left open.
            s.link.leaked.push(old);
        }
        s.link.id = link;
        // An attempt still waiting out its backoff when the app parks the link (or the client
        // ends) must not connect: it checks it is still the one wanted before it dials.
        let wanted = self.wanted_link.clone();
        wanted.store(link, std::sync::atomic::Ordering::SeqCst);
        let events_url = s.login.events_url.clone();
        let token = s.rest.current_token();
        let instance = s.instance.clone();
        let (token_url, identity) = (s.login.token_url.clone(), s.login.identity.clone());
        let expires = s.token_expires;
        let generator = self.generator(&token_url, &identity, &instance);
        self.spawn(async move {
            if let Some(d) = delay {
                activity.sleep(&clock, d).await;
            }
            if wanted.load(std::sync::atomic::Ordering::SeqCst) != link {
                return TaskResult::Reconnected {
                    link,
                    result: Err(crate::adapter::CommandError::new(
                        crate::adapter::ErrorKind::Internal,
                        "the attempt was abandoned",
                    )),
                };
            }
            // A token that expired (or is about to) while the client was away is replaced
            // before the attempt: the same instance goes on with a fresh one.
            let fresh = if expires <= clock.now().plus(super::tokens::MARGIN) {
                match generator.fetch().await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        return TaskResult::Reconnected {
                            link,
                            result: Err(e),
                        };
                    }
                }
            } else {
                None
            };
            let token = fresh.as_ref().map_or(token, |c| c.token.clone());
            let result = net::connect_events(&events_url, &token, &instance, since, deliver)
                .await
                .map(|events| (fresh, events));
            TaskResult::Reconnected { link, result }
        });
    }

    /// A reconnection attempt ended.
    pub(super) fn reconnected(
        &mut self,
        link: u64,
        result: Result<
            (
                Option<super::state::Credential>,
                tokio::sync::mpsc::UnboundedSender<String>,
            ),
            crate::adapter::CommandError,
        >,
    ) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.link.id != link || !matches!(s.link.state, LinkState::Reconnecting) {
            return;
        }
        match result {
            Ok((fresh, events)) => {
                s.link.state = LinkState::Open(events);
                if let Some(credential) = fresh {
                    self.adopt(&credential);
                }
                self.linked();
            }
            Err(e) => {
                if e.kind == crate::adapter::ErrorKind::TokenRejected {
                    // The channel refused the token: the next attempt fetches one first.
                    s.token_expires = s.token_expires.min(self.clock.now());
                }
                s.link.failures = s.link.failures.saturating_add(1);
                if !self.policy.survive_connection_loss {
                    let _ = self.shut_down();
                    return;
                }
                self.reconnect(true);
            }
        }
    }

    /// The app went to the background: the socket closes and no attempts are made. Returns
    /// the number of the socket being closed, if one was open.
    pub(super) fn park(&mut self) -> Option<u64> {
        let close = self.policy.close_socket_in_background;
        let s = self.session.as_mut()?;
        s.background = true;
        if !close {
            // Fault `second-socket`: the socket stays open in the background.
            return None;
        }
        let was_open = s.link.sender().is_some().then_some(s.link.id);
        s.link.state = LinkState::Parked;
        s.link.heartbeat = None;
        // A socket number no answer can match: an attempt in flight is abandoned (one still
        // waiting out its backoff does not even dial).
        s.link.id = 0;
        self.wanted_link
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.forget_pings();
        if was_open.is_some() {
            self.observe(Observation::ConnectionState {
                state: ConnectionState::Disconnected,
            });
        }
        self.letting_go(was_open);
        was_open
    }

    /// The app came back: open a socket at once (fault `second-socket`: even if one is open).
    pub(super) fn unpark(&mut self) {
        // A token that expired while the app slept is refreshed by the reconnect (fault
        // `recreate-on-expired`: a new instance instead).
        if !self.notice_expiry() {
            return;
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.background = false;
        s.link.failures = 0;
        let reopen = match s.link.state {
            LinkState::Parked => true,
            LinkState::Open(_) => !self.policy.close_socket_in_background,
            LinkState::Reconnecting => false,
        };
        if reopen {
            self.observe(Observation::ConnectionState {
                state: ConnectionState::Connecting,
            });
            self.reconnect(false);
        }
    }
}
