//! What each event means to the client: typed frames in, list changes, snapshots, completed
//! updates and message reports out.

use super::Engine;
use super::state::{Source, SyncJob};
use crate::adapter::{ConversationSyncStatus, Observation, Target};
use crate::wire::{EventFrame, EventType};

impl Engine {
    pub(super) fn frame(&mut self, frame: EventFrame) {
        let list_done = self.session.as_ref().is_some_and(|s| s.list_done);
        let about_conversation = matches!(
            frame.kind,
            EventType::ConversationAdded
                | EventType::ConversationUpdated
                | EventType::ConversationRemoved
        );
        if about_conversation && !self.policy.listen_before_fetch && !list_done {
            // The listener is not attached yet: the event is lost.
            return;
        }
        let revision = frame.revision.unwrap_or(0);
        let attributes = frame.attributes();
        match (frame.kind, frame.conversation_sid) {
            (EventType::ConversationAdded, Some(sid)) => {
                self.learn_conversation(&sid, Source::Added)
            }
            (EventType::ConversationRemoved, Some(sid)) => self.forget_conversation(&sid),
            (EventType::ConversationUpdated, Some(sid)) => {
                let known = self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.conversations.contains_key(&sid));
                if !known {
                    if !self.policy.learn_from_any_event {
                        return;
                    }
                    // An update can overtake the add: it still means the user has the conversation.
                    self.learn_conversation(&sid, Source::Event);
                }
                let target = Target::Conversation { sid: sid.clone() };
                let applied = self.apply_snapshot(
                    &target,
                    attributes.unwrap_or_default(),
                    revision,
                    &frame.reasons,
                );
                let synced = self
                    .session
                    .as_ref()
                    .and_then(|s| s.conversations.get(&sid))
                    .is_some_and(|c| c.sync == ConversationSyncStatus::All);
                if applied && synced && !self.policy.sync_status_never_regresses {
                    self.set_conversation_sync(&sid, ConversationSyncStatus::Metadata);
                    self.enqueue(SyncJob::Participants(sid), true);
                }
                self.complete_updates(&target);
            }
            (EventType::UserUpdated, _) => {
                self.apply_snapshot(
                    &Target::User,
                    attributes.unwrap_or_default(),
                    revision,
                    &frame.reasons,
                );
                self.complete_updates(&Target::User);
            }
            (EventType::MessageAdded, Some(sid)) => {
                let Some(index) = frame.index else { return };
                let known = self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.conversations.contains_key(&sid));
                if !known && self.policy.learn_from_any_event {
                    // A message in a conversation not seen yet still means the user has it.
                    self.learn_conversation(&sid, Source::Event);
                }
                if self.policy.report_new_messages {
                    self.observe(Observation::MessageAdded {
                        conversation: sid,
                        index,
                    });
                }
            }
            (kind @ (EventType::MessageUpdated | EventType::MessageRemoved), Some(sid)) => {
                let Some(index) = frame.index else { return };
                self.message_changed(kind, sid, index);
            }
            _ => {}
        }
    }
}
