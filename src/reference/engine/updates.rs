//! Objects and updates: snapshots applied only when newer, updates completing once the client
//! has seen the revision their request produced.

use serde_json::Value;

use super::state::{AwaitedUpdate, Object};
use super::{Engine, Versioned};
use crate::adapter::{CommandError, ErrorKind, Observation, Outcome, ReplyBody, Responder, Target};
use crate::reference::net::Fetched;
use crate::wire::resources::parse_attributes;

impl Engine {
    pub(super) fn object(&self, target: &Target) -> Option<&Object> {
        let s = self.session.as_ref()?;
        match target {
            Target::User => Some(&s.user),
            Target::Conversation { sid } => s.conversations.get(sid).map(|c| &c.object),
        }
    }

    fn object_mut(&mut self, target: &Target) -> Option<&mut Object> {
        let s = self.session.as_mut()?;
        match target {
            Target::User => Some(&mut s.user),
            Target::Conversation { sid } => s.conversations.get_mut(sid).map(|c| &mut c.object),
        }
    }

    /// Answers what the client shows for `target`, without asking the backend.
    pub(super) fn read(&self, responder: Responder, target: &Target) {
        match self.object(target) {
            Some(o) => responder.ok(ReplyBody::Attributes {
                attributes: o.attributes.clone(),
            }),
            None if self.session.is_none() => {
                responder.error(ErrorKind::ClientShutDown, "no client")
            }
            None => responder.error(
                ErrorKind::NotFound,
                format!("{target} is unknown to the client"),
            ),
        }
    }

    /// The backend acknowledged an update: wait for its event (or not, under a fault).
    pub(super) fn acked(
        &mut self,
        responder: Responder,
        target: Target,
        written: Value,
        result: Result<Fetched<Versioned>, CommandError>,
    ) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => return responder.answer(Outcome::Error(e)),
        };
        let revision = ok.revision.unwrap_or(0);
        if self.policy.compare_revisions
            && let Some(obj) = self.object_mut(&target)
        {
            // Whatever is older than this revision is stale from now on (a replay after an
            // outage can bring an older snapshot after the acknowledgement).
            obj.floor = obj.floor.max(revision);
        }
        if !self.policy.updates_complete_on_event || revision == 0 {
            return responder.ok(ReplyBody::Attributes {
                attributes: parse_attributes(&ok.body.attributes),
            });
        }
        match self.session.as_mut() {
            Some(s) => s.awaited.push(AwaitedUpdate {
                responder,
                target: target.clone(),
                revision,
                written,
            }),
            None => return responder.error(ErrorKind::ClientShutDown, "no client"),
        }
        self.complete_updates(&target);
    }

    /// Applies a snapshot unless it is older than what the client has; reports whether it did.
    pub(super) fn apply_snapshot(
        &mut self,
        target: &Target,
        attributes: Value,
        revision: u64,
        reasons: &[String],
    ) -> bool {
        let compare = self.policy.compare_revisions;
        let Some(obj) = self.object_mut(target) else {
            return false;
        };
        let newer = if compare {
            revision > obj.revision && revision >= obj.floor
        } else {
            revision != obj.revision
        };
        if !newer {
            return false;
        }
        obj.attributes = attributes.clone();
        obj.revision = revision;
        if !reasons.is_empty() {
            self.observe(match target {
                Target::User => Observation::UserUpdated { attributes },
                Target::Conversation { sid } => Observation::ConversationUpdated {
                    conversation: sid.clone(),
                    reasons: reasons.to_vec(),
                    attributes,
                },
            });
        }
        true
    }

    /// Completes every update of `target` whose revision the client has now seen.
    pub(super) fn complete_updates(&mut self, target: &Target) {
        let Some(current) = self.object(target).map(|o| o.revision) else {
            return;
        };
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.awaited)
            .into_iter()
            .partition(|a| &a.target == target && a.revision <= current);
        s.awaited = waiting;
        for a in done {
            let shown = if self.policy.show_backend_value {
                self.object(target)
                    .map(|o| o.attributes.clone())
                    .unwrap_or_default()
            } else {
                if let Some(obj) = self.object_mut(target) {
                    obj.attributes = a.written.clone();
                }
                a.written
            };
            a.responder.ok(ReplyBody::Attributes { attributes: shown });
        }
    }
}
