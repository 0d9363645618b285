//! Events in the model: those a mutation causes, those held back, and the log of those published.
//!
//! A mutation returns [`PendingEvent`]s. [`Events::admit`] parks the ones whose object is held
//! and returns the rest; the service renders those into frames, numbers them and appends them to
//! the log, which is what the hub's connections read (and replay from). Holding is the model's
//! way of separating "the write was acknowledged" from "its Updated event was delivered".

use std::collections::BTreeSet;
use std::sync::Arc;

use super::records::Snapshot;
use crate::wire::{EventFrame, EventType, ObjectKey};

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
    /// The message index, for message events.
    pub index: Option<u64>,
    /// Who receives it, when not the object's current audience (a removed conversation).
    pub audience: Option<BTreeSet<String>>,
}

impl PendingEvent {
    /// An event of `kind` about `key`.
    pub fn new(kind: EventType, key: ObjectKey) -> Self {
        Self {
            kind,
            key,
            reasons: Vec::new(),
            stale: None,
            index: None,
            audience: None,
        }
    }

    /// With update reasons.
    pub fn because(mut self, reason: &str) -> Self {
        self.reasons.push(reason.to_owned());
        self
    }
}

/// One published event: its frame, the text put on sockets, and who receives it.
#[derive(Debug)]
pub struct Published {
    /// Identities that receive it.
    pub audience: BTreeSet<String>,
    /// The frame (its `seq` is the event's sequence number).
    pub frame: EventFrame,
    /// The frame as sent.
    pub text: String,
}

/// Holds, held events and the log of published ones.
#[derive(Debug, Default)]
pub struct Events {
    holds: BTreeSet<ObjectKey>,
    held: Vec<PendingEvent>,
    log: Vec<Arc<Published>>,
}

impl Events {
    /// The objects whose events are held, and how many events wait.
    pub fn holding(&self) -> (Vec<ObjectKey>, usize) {
        (self.holds.iter().cloned().collect(), self.held.len())
    }

    /// Starts holding events about `key`.
    pub fn hold(&mut self, key: ObjectKey) {
        self.holds.insert(key);
    }

    /// Stops holding events about `key`; returns what was held, in order, to publish now.
    pub fn release(&mut self, key: &ObjectKey) -> Vec<PendingEvent> {
        self.holds.remove(key);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|e| &e.key == key);
        self.held = later;
        now
    }

    /// Parks the events whose object is held; returns the rest, to publish now.
    pub fn admit(&mut self, events: Vec<PendingEvent>) -> Vec<PendingEvent> {
        let (held, ready): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| self.holds.contains(&e.key));
        self.held.extend(held);
        ready
    }

    /// The sequence number the next published event gets.
    pub fn next_seq(&self) -> u64 {
        self.log.len() as u64 + 1
    }

    /// Sequence number of the newest published event (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// Appends a published event (its frame's `seq` must be [`Events::next_seq`]).
    pub fn append(&mut self, p: Published) {
        debug_assert_eq!(p.frame.seq, self.next_seq());
        self.log.push(Arc::new(p));
    }

    /// The event id a Sync client sees for `frame`: the sequence number of the first published
    /// event that announced its object at its revision (the frame's own for a first
    /// announcement). A stale snapshot whose revision was never announced (the object's first
    /// revision, say) gets an id just below the first event that announced a newer revision:
    /// a redelivered old event, never newer than what followed it.
    pub fn first_announcing(&self, frame: &EventFrame) -> u64 {
        let target = frame.target();
        let earlier = || {
            self.log
                .iter()
                .take_while(|p| p.frame.seq < frame.seq)
                .filter(|p| p.frame.kind == frame.kind && p.frame.target() == target)
        };
        if let Some(p) = earlier().find(|p| p.frame.revision == frame.revision) {
            return p.frame.seq;
        }
        earlier()
            .find(|p| p.frame.revision > frame.revision)
            .map_or(frame.seq, |p| p.frame.seq.saturating_sub(1))
    }

    /// The published events after `seq` that `identity` receives, in order.
    pub fn after(&self, seq: u64, identity: &str) -> Vec<Arc<Published>> {
        self.log
            .iter()
            .skip(usize::try_from(seq).unwrap_or(usize::MAX))
            .filter(|p| p.audience.contains(identity))
            .cloned()
            .collect()
    }
}
