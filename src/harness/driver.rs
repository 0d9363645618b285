//! The driver: sends commands to one adapter session and journals what comes back.
//!
//! A recorder task reads the adapter's replies, observations and logs as they arrive and writes
//! them to the [`Journal`] at once, so the journal's order is the order things happened. Commands
//! can be awaited ([`Driver::call`]) or left in flight ([`Driver::submit`]) while the scenario
//! works the backend, and looked at later ([`Driver::reply`]). Waiting is bounded by a real-time
//! safety timeout; everything a rule depends on runs on virtual time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

use crate::adapter::{
    AdapterError, AdapterEvent, AdapterSession, Command, CommandKind, Hello, Observation, Outcome,
    Request,
};
use crate::backend::CountsOracle;
use crate::clock::VirtualClock;
use crate::journal::{Checkpoint, EntryKind, HarnessEntry, Journal, ReplyRecord};
use crate::wire::InstanceId;

/// How many `settle` rounds one settle step may take before it goes on regardless (a client
/// that is never quiet).
const MAX_SETTLE_ROUNDS: usize = 8;

/// A command the driver sent, by its request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a request id is how the reply to a command left in flight is found"]
pub struct RequestId(pub u64);

#[derive(Default)]
struct Inbox {
    sent: HashMap<u64, CommandKind>,
    replies: HashMap<u64, Outcome>,
    exited: Option<String>,
    /// The adapter broke the protocol: the session is over.
    failed: Option<AdapterError>,
    /// A request could not be handed over: the adapter stopped taking requests (its reason
    /// usually follows on the event stream).
    refused: bool,
    instance: Option<InstanceId>,
}

#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    notify: Notify,
}

impl Shared {
    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drives one adapter session for one scenario.
pub struct Driver {
    hello: Hello,
    requests: mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    journal: Journal,
    next_id: u64,
    safety: Duration,
    closer: Option<BoxFuture<'static, ()>>,
    recorder: tokio::task::JoinHandle<()>,
    /// The backend's counts, journaled before every `get_count` (see [`Driver::journal_counts`]).
    counts: Option<CountsOracle>,
    /// The identity of the last `start` sent: whose counts a `get_count` reads.
    identity: Option<String>,
}

fn record(shared: &Shared, journal: &Journal, ev: AdapterEvent) {
    let instance = shared.inbox().instance.clone();
    match ev {
        AdapterEvent::Reply(r) => {
            let command = shared.inbox().sent.get(&r.id).copied();
            match command {
                Some(command) => {
                    journal.note(
                        instance,
                        HarnessEntry::Reply(ReplyRecord {
                            id: r.id,
                            command,
                            outcome: r.outcome.clone(),
                        }),
                    );
                    shared.inbox().replies.insert(r.id, r.outcome);
                }
                None => {
                    tracing::warn!(request = r.id, "adapter replied to a request never sent");
                    journal.note(
                        instance,
                        HarnessEntry::Log {
                            line: format!("(a reply to request {}, which was never sent)", r.id),
                        },
                    );
                }
            }
        }
        AdapterEvent::Observation(o) => {
            let instance = match &o {
                Observation::ClientCreated { instance } => {
                    shared.inbox().instance = Some(instance.clone());
                    Some(instance.clone())
                }
                _ => instance,
            };
            journal.note(instance, HarnessEntry::Observation { observation: o });
        }
        AdapterEvent::Log(line) => {
            journal.note(instance, HarnessEntry::Log { line });
        }
        AdapterEvent::Misbehaved(error) => {
            tracing::warn!(%error, "adapter broke the protocol");
            journal.note(
                instance,
                HarnessEntry::Log {
                    line: format!("(adapter error: {error})"),
                },
            );
            shared.inbox().failed.get_or_insert(error);
        }
        AdapterEvent::Exited(why) => {
            tracing::debug!(reason = %why, "adapter session exited");
            shared.inbox().exited = Some(why);
        }
    }
}

/// How many times a wait is extended by the safety bound while the journal keeps growing.
pub(crate) const MAX_EXTENSIONS: u32 = 5;

impl Driver {
    /// Takes over an opened session; `safety` bounds every wait in real time.
    pub fn new(session: AdapterSession, journal: Journal, safety: Duration) -> Self {
        let hello = session.hello().clone();
        let (requests, mut events, closer) = session.into_parts();
        let shared = Arc::new(Shared::default());
        let recorder = {
            let shared = shared.clone();
            let journal = journal.clone();
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    record(&shared, &journal, ev);
                    shared.notify.notify_waiters();
                }
                let mut inbox = shared.inbox();
                if inbox.exited.is_none() {
                    inbox.exited = Some("the adapter closed its event stream".into());
                }
                drop(inbox);
                shared.notify.notify_waiters();
            })
        };
        Self {
            hello,
            requests,
            shared,
            journal,
            next_id: 1,
            safety,
            closer: Some(closer),
            recorder,
            counts: None,
            identity: None,
        }
    }

    /// Journals the backend's counts truth (a [`Checkpoint::Counts`]) just before every
    /// `get_count` this driver sends, for the identity of the last `start` it sent.
    pub fn journal_counts(&mut self, oracle: CountsOracle) {
        self.counts = Some(oracle);
    }

    /// The adapter's handshake.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The instance id of the newest client the adapter reported.
    pub fn instance(&self) -> Option<InstanceId> {
        self.shared.inbox().instance.clone()
    }

    /// Sends a command without waiting; returns its request id. An adapter that has exited is
    /// an error here; one that stopped taking requests is reported by `wait`, with the reason
    /// its exit gives.
    pub fn submit(&mut self, command: Command) -> Result<RequestId, AdapterError> {
        if let Some(error) = self.shared.inbox().failed.clone() {
            return Err(error);
        }
        if let Some(why) = self.shared.inbox().exited.clone() {
            return Err(AdapterError::Exited(why));
        }
        match &command {
            Command::Start { identity, .. } => self.identity = Some(identity.clone()),
            Command::GetCount { conversation, .. } => {
                // The truth the reply is judged against; none when the identity cannot read
                // that conversation (nothing to judge the reply by).
                if let (Some(oracle), Some(identity)) = (&self.counts, &self.identity)
                    && let Ok(truth) = oracle.counts(conversation, identity)
                {
                    self.journal.note(
                        self.instance(),
                        HarnessEntry::Checkpoint(Checkpoint::Counts(truth)),
                    );
                }
            }
            _ => {}
        }
        let id = self.next_id;
        self.next_id += 1;
        self.shared.inbox().sent.insert(id, command.kind());
        self.journal.note(
            self.instance(),
            HarnessEntry::Command {
                id,
                command: command.clone(),
            },
        );
        if self.requests.send(Request { id, command }).is_err() {
            // The adapter is going away; `wait` reports why once its exit arrives.
            self.shared.inbox().refused = true;
        }
        Ok(RequestId(id))
    }

    /// The reply to request `id`, if it has arrived.
    pub fn reply(&self, id: RequestId) -> Option<Outcome> {
        self.shared.inbox().replies.get(&id.0).cloned()
    }

    /// Waits (boundedly, in real time) for the reply to request `id`. The bound detects a
    /// stack that stopped making progress: while the journal keeps growing (a synchronization
    /// of a thousand conversations on a loaded machine), the wait is extended, up to five
    /// more times the safety bound. Log lines alone are not progress.
    pub async fn wait(&self, id: RequestId) -> Result<Outcome, AdapterError> {
        let mut deadline = tokio::time::Instant::now() + self.safety;
        let mut progress = self.journal.last_seq();
        let mut extensions = 0;
        loop {
            let notified = self.shared.notify.notified();
            let command = {
                let inbox = self.shared.inbox();
                if let Some(o) = inbox.replies.get(&id.0) {
                    return Ok(o.clone());
                }
                if let Some(error) = &inbox.failed {
                    return Err(error.clone());
                }
                if let Some(why) = &inbox.exited {
                    tracing::warn!(request = id.0, reason = %why, "adapter session ended while a request waited");
                    return Err(AdapterError::Exited(why.clone()));
                }
                inbox.sent.get(&id.0).copied()
            };
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let now_at = self.journal.last_seq();
                let busy = self
                    .journal
                    .since(progress)
                    .iter()
                    .any(|e| !matches!(e.kind, EntryKind::Harness(HarnessEntry::Log { .. })));
                if busy && extensions < MAX_EXTENSIONS {
                    // Busy, not hung: the client or the backend did something meanwhile.
                    tracing::debug!(request = id.0, extensions, "still busy; waiting longer");
                    progress = now_at;
                    extensions += 1;
                    deadline = tokio::time::Instant::now() + self.safety;
                    continue;
                }
                if self.shared.inbox().refused {
                    tracing::warn!(request = id.0, "adapter session stopped taking requests");
                    return Err(AdapterError::Exited(
                        "the adapter stopped taking requests".into(),
                    ));
                }
                let command = command.map_or("?", CommandKind::name);
                // The bounds waited out (not the clock: the message stays the same run to run).
                let waited_ms = (self.safety * (extensions + 1)).as_millis() as u64;
                tracing::warn!(
                    request = id.0,
                    command,
                    waited_ms,
                    "adapter session did not answer in time"
                );
                return Err(AdapterError::Hung {
                    command,
                    id: id.0,
                    waited_ms,
                });
            }
        }
    }

    /// Sends a command and waits for its reply.
    pub async fn call(&mut self, command: Command) -> Result<Outcome, AdapterError> {
        let id = self.submit(command)?;
        self.wait(id).await
    }

    /// Waits until the adapter reports it is quiet.
    pub async fn settle(&mut self) -> Result<(), AdapterError> {
        // A settle covers what was published before its command; what the client was still
        // receiving while it settled (a page served, an event published meanwhile) is covered
        // by the next one. Settling again until a round sees nothing happen makes the point
        // where the client has had everything independent of how fast it got there.
        for round in 1..=MAX_SETTLE_ROUNDS {
            let before = self.journal.last_seq();
            match self.call(Command::Settle).await? {
                Outcome::Ok(_) => {}
                Outcome::Error(e) => {
                    tracing::warn!(round, error = %e, "adapter session failed to settle");
                    return Err(AdapterError::Protocol {
                        line: "settle".into(),
                        reason: format!("settle failed: {e}"),
                    });
                }
            }
            let quiet = self.journal.since(before).iter().all(|e| {
                e.command()
                    .is_some_and(|(_, c)| matches!(c, Command::Settle))
                    || e.reply().is_some_and(|r| r.command == CommandKind::Settle)
            });
            tracing::trace!(round, quiet, "settle round");
            if quiet {
                return Ok(());
            }
        }
        tracing::debug!(
            rounds = MAX_SETTLE_ROUNDS,
            "the adapter was still busy after the last settle round; going on regardless"
        );
        self.journal.note(
            self.instance(),
            HarnessEntry::Restless {
                rounds: MAX_SETTLE_ROUNDS as u32,
            },
        );
        Ok(())
    }

    /// Moves the backend's clock and the adapter's clock forward by `d`, settling after each
    /// step. Steps are a second long, or a sixtieth of `d` for long spans, so that retries and
    /// backoffs inside the span get their turns.
    pub async fn advance(
        &mut self,
        backend_clock: &VirtualClock,
        d: Duration,
    ) -> Result<(), AdapterError> {
        let step = (d / 60).max(Duration::from_secs(1));
        self.advance_in_steps(backend_clock, d, step).await
    }

    /// Moves both clocks forward by `d` in steps of `step` (the last may be shorter), settling
    /// after each; for spans where nothing finer than `step` matters (a wait past a bound).
    pub async fn advance_in_steps(
        &mut self,
        backend_clock: &VirtualClock,
        d: Duration,
        step: Duration,
    ) -> Result<(), AdapterError> {
        self.journal.note(
            None,
            HarnessEntry::TimePassed {
                ms: d.as_millis() as u64,
            },
        );
        let step = step.max(Duration::from_millis(1));
        let mut left = d;
        while !left.is_zero() {
            let now = left.min(step);
            left -= now;
            backend_clock.advance(now);
            self.call(Command::AdvanceTime {
                ms: now.as_millis() as u64,
            })
            .await?;
            self.settle().await?;
        }
        Ok(())
    }

    /// Ends the session: stops sending, lets the adapter stop, stops recording.
    /// Closes the session; returns the protocol error the adapter made, if any (also one made
    /// while closing: output after close, a process that ignores termination).
    pub async fn close(mut self) -> Option<AdapterError> {
        let (dummy, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.requests, dummy));
        if let Some(closer) = self.closer.take() {
            closer.await;
        }
        // Let the events the closing produced be recorded: the stream ends with the session,
        // and a protocol error made while closing is the last of them (bounded: a session
        // that never lets go of its stream is cut off).
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.recorder).await;
        self.recorder.abort();
        self.shared.inbox().failed.clone()
    }
}
