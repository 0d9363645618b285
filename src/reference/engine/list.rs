//! The app's list: conversations learned from pages and events, merged by sid, with
//! tombstones for what an event removed.

use super::Engine;
use super::state::{Conversation, Object, Source, SyncJob};
use crate::adapter::{ClientSyncStatus, ConversationSyncStatus, Observation};
use crate::wire::ConversationSid;

impl Engine {
    /// A conversation sid became known: add it to the app's list and start synchronizing it.
    /// Pages cannot bring back what an event removed; events can. Duplicates are merged by sid.
    pub(super) fn learn_conversation(&mut self, sid: &ConversationSid, source: Source) {
        let policy = self.policy;
        let Some(s) = self.session.as_mut() else {
            return;
        };
        match source {
            Source::Page if s.tombstones.contains(sid) && policy.keep_tombstones => return,
            // Only an explicit add brings a removed conversation back.
            Source::Event if s.tombstones.contains(sid) => return,
            Source::Added if policy.add_clears_tombstone => {
                s.tombstones.remove(sid);
            }
            Source::Added if s.tombstones.contains(sid) => return,
            Source::Added => {}
            Source::Page | Source::Event => {}
        }
        if s.conversations.contains_key(sid) {
            if !policy.dedupe_by_sid {
                s.list.push(sid.clone());
                self.observe(Observation::ConversationAdded {
                    conversation: sid.clone(),
                });
            }
            return;
        }
        s.list.push(sid.clone());
        let after_sync = s.sync == ClientSyncStatus::Completed;
        s.conversations.insert(
            sid.clone(),
            Conversation {
                sync: ConversationSyncStatus::Identifier,
                object: Object::unknown(),
            },
        );
        self.observe(Observation::ConversationAdded {
            conversation: sid.clone(),
        });
        self.observe(Observation::ConversationSync {
            conversation: sid.clone(),
            status: ConversationSyncStatus::Identifier,
        });
        if after_sync && !policy.sync_status_never_regresses {
            // Recomputes the client's status from its conversations: one is not synced yet.
            self.observe(Observation::ClientSync {
                status: ClientSyncStatus::ConversationsCompleted,
            });
        }
        self.enqueue(SyncJob::Metadata(sid.clone()), false);
    }

    /// An event said the conversation is gone: forget it and remember that it is gone.
    pub(super) fn forget_conversation(&mut self, sid: &ConversationSid) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.tombstones.insert(sid.clone());
        let known = s.conversations.remove(sid).is_some();
        s.list.retain(|x| x != sid);
        s.fetched.remove(sid);
        self.drop_ops_on(sid);
        if known {
            self.observe(Observation::ConversationRemoved {
                conversation: sid.clone(),
            });
        }
    }
}
