//! Push bindings: one device address per (identity, address), refreshed by registration writes
//! and kept alive by the identity's event-channel connections; a binding idle for
//! [`BINDING_IDLE_EXPIRY`] of virtual time expires.
//!
//! Every change returns what it did ([`BindingChange`] with the record), so the service can
//! journal exactly one fact per change of the binding set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Model;
use super::records::{BindingRecord, BindingType, DEFAULT_MESSAGE_TYPES};
use crate::clock::VirtualInstant;
use crate::wire::sid;

/// What happened to a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BindingChange {
    /// A registration write (or the harness) created it.
    Created,
    /// A registration write of the same (identity, address) refreshed it (same sid).
    Refreshed,
    /// It was deleted (by the account, its identity's client, or an unregistration).
    Removed,
    /// It was idle for a year of virtual time.
    Expired,
}

impl Model {
    /// Creates or refreshes the binding of (`identity`, `address`) now: a refresh keeps the sid
    /// and creation time, and takes the new type (and message types, when given). Returns the
    /// binding as it now is and which of the two it was.
    pub fn register_binding(
        &mut self,
        identity: &str,
        address: &str,
        binding_type: BindingType,
        message_types: Option<Vec<String>>,
    ) -> (BindingRecord, BindingChange) {
        let now = self.clock.now();
        let key = (identity.to_owned(), address.to_owned());
        if let Some(b) = self.bindings.get_mut(&key) {
            b.binding_type = binding_type;
            if let Some(types) = message_types {
                b.message_types = types;
            }
            b.updated = now;
            b.last_active = now;
            return (b.clone(), BindingChange::Refreshed);
        }
        self.next_binding += 1;
        let b = BindingRecord {
            sid: sid("BS", self.next_binding),
            seq: self.next_binding,
            identity: identity.to_owned(),
            address: address.to_owned(),
            binding_type,
            message_types: message_types.unwrap_or_else(|| {
                DEFAULT_MESSAGE_TYPES
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect()
            }),
            created: now,
            updated: now,
            last_active: now,
        };
        self.bindings.insert(key, b.clone());
        (b, BindingChange::Created)
    }

    /// Every live binding, by (identity, address).
    pub fn bindings(&self) -> impl Iterator<Item = &BindingRecord> {
        self.bindings.values()
    }

    /// The binding with this sid.
    pub fn binding_by_sid(&self, wanted: &str) -> Option<&BindingRecord> {
        self.bindings.values().find(|b| b.sid == wanted)
    }

    /// The binding of (`identity`, `address`).
    pub fn binding(&self, identity: &str, address: &str) -> Option<&BindingRecord> {
        self.bindings
            .get(&(identity.to_owned(), address.to_owned()))
    }

    /// Removes the binding with this sid; returns it.
    pub fn remove_binding_by_sid(&mut self, wanted: &str) -> Option<BindingRecord> {
        let key = self
            .bindings
            .iter()
            .find(|(_, b)| b.sid == wanted)
            .map(|(k, _)| k.clone())?;
        self.bindings.remove(&key)
    }

    /// Removes the binding of (`identity`, `address`); returns it.
    pub fn remove_binding(&mut self, identity: &str, address: &str) -> Option<BindingRecord> {
        self.bindings
            .remove(&(identity.to_owned(), address.to_owned()))
    }

    /// Activity of `identity` (an event-channel connection): every binding of it stays alive
    /// for another idle period from now.
    pub fn touch_identity(&mut self, identity: &str) {
        let now = self.clock.now();
        for b in self
            .bindings
            .values_mut()
            .filter(|b| b.identity == identity)
        {
            b.last_active = now;
        }
    }

    /// Removes every binding idle for the whole expiry period at `now`; returns them, earliest
    /// expiry first.
    pub fn expire_bindings(&mut self, now: VirtualInstant) -> Vec<BindingRecord> {
        let (mut gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.bindings)
            .into_iter()
            .partition(|(_, b)| b.expires_at() <= now);
        self.bindings = keep.into_iter().collect();
        gone.sort_by_key(|(_, b)| (b.expires_at(), b.seq));
        gone.into_iter().map(|(_, b)| b).collect()
    }

    /// When the next binding expires if nothing happens meanwhile.
    pub fn next_binding_expiry(&self) -> Option<VirtualInstant> {
        self.bindings.values().map(BindingRecord::expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::BINDING_IDLE_EXPIRY;
    use super::*;
    use crate::clock::VirtualClock;

    fn model() -> (Model, VirtualClock) {
        let clock = VirtualClock::new();
        (Model::new(1, "http://x".into(), clock.clone()), clock)
    }

    #[test]
    fn a_second_write_refreshes_the_same_binding_and_identities_share_an_address() {
        let (mut m, clock) = model();
        let (a, c) = m.register_binding("alice", "D1", BindingType::Apn, None);
        assert_eq!(c, BindingChange::Created);
        assert_eq!(a.message_types.len(), 3);
        clock.advance(Duration::from_secs(10));
        let (a2, c2) = m.register_binding("alice", "D1", BindingType::Fcm, None);
        assert_eq!(c2, BindingChange::Refreshed);
        assert_eq!(a2.sid, a.sid);
        assert_eq!(a2.binding_type, BindingType::Fcm);
        assert_eq!((a2.created, a2.updated), (a.created, clock.now()));
        let (b, _) = m.register_binding("bob", "D1", BindingType::Apn, None);
        assert_ne!(b.sid, a.sid);
        assert_eq!(m.bindings().count(), 2);
    }

    #[test]
    fn bindings_expire_after_a_year_without_activity_and_connections_keep_them() {
        let (mut m, clock) = model();
        m.register_binding("alice", "D1", BindingType::Apn, None);
        m.register_binding("bob", "D2", BindingType::Apn, None);
        clock.advance(BINDING_IDLE_EXPIRY - Duration::from_secs(1));
        m.touch_identity("bob");
        assert!(m.expire_bindings(clock.now()).is_empty());
        clock.advance(Duration::from_secs(1));
        let gone = m.expire_bindings(clock.now());
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].identity, "alice");
        assert_eq!(
            m.next_binding_expiry(),
            Some(
                clock
                    .now()
                    .plus(BINDING_IDLE_EXPIRY - Duration::from_secs(1))
            )
        );
    }
}
