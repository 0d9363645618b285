//! The app's list: conversations learned from pages and events, merged by sid, with
//! tombstones for what an event removed.

use super::Engine;
use super::state::{Conversation, Object, Source, SyncJob};
use crate::adapter::{ConversationSyncStatus, Observation};
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
            Source::Added => {
                s.tombstones.remove(sid);
            }
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
