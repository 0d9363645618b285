//! Count reads (`get_count`): semi-real-time values behind a cache. A count is fetched at most
//! once per cache lifetime (`Config::count_cache`) and served from the cache until it is that
//! old; after that the next read fetches again, so reads converge to the backend's value.
//!
//! Participants and messages come from one resource (`/v1/Conversations/{sid}/Counts`), so one
//! fetch fills both keys; the unread count comes from the user's view of the conversation
//! (`/v1/Users/{identity}/Conversations/{sid}`) and stays unknown (null) until the user has a
//! read horizon.

use reqwest::Method;

use super::state::segment;
use super::{Engine, TaskResult};
use crate::adapter::{CommandError, CountKind, ErrorKind, ReplyBody, Responder};
use crate::wire::ConversationSid;
use crate::wire::resources::{ConversationCounts, UserConversation};

/// What one count fetch brought: every count it carries.
pub(super) type CountsFetched = Result<Vec<(CountKind, Option<u64>)>, CommandError>;

impl Engine {
    /// `get_count`: from the cache while it is fresh, fetched otherwise.
    pub(super) fn get_count(
        &mut self,
        responder: Responder,
        conversation: ConversationSid,
        kind: CountKind,
    ) {
        let now = self.clock.now();
        let lifetime = self.config.count_cache;
        let (cache, expire) = (self.policy.cache_counts, self.policy.expire_counts);
        let Some(s) = self.session.as_mut() else {
            return responder.error(ErrorKind::ClientShutDown, "no client");
        };
        if !s.conversations.contains_key(&conversation) {
            return responder.error(
                ErrorKind::NotFound,
                format!("conversation {conversation} is unknown"),
            );
        }
        if let Some((fetched, count)) = s.counts.get(&(conversation.clone(), kind))
            && cache
            && (!expire || now.since(*fetched) < lifetime)
        {
            // Fault `uncached-counts` never gets here; fault `cache-forever` always does.
            return responder.ok(ReplyBody::Count { count: *count });
        }
        let group = (conversation.clone(), kind == CountKind::Unread);
        if cache && let Some(waiting) = s.count_waiters.get_mut(&group) {
            // A fetch of this resource is in flight: the read waits for it.
            waiting.push((responder, kind));
            return;
        }
        if cache {
            s.count_waiters.insert(group, Vec::new());
        }
        let rest = s.rest.clone();
        let identity = s.login.identity.clone();
        let null_unread = self.policy.unknown_unread_is_null;
        self.spawn(async move {
            let result = match kind {
                CountKind::Participants | CountKind::Messages => rest
                    .call::<ConversationCounts>(
                        Method::GET,
                        &format!(
                            "/v1/Conversations/{}/Counts",
                            segment(conversation.as_str())
                        ),
                        None,
                    )
                    .await
                    .map(|c| {
                        vec![
                            (CountKind::Participants, Some(c.body.participants_count)),
                            (CountKind::Messages, Some(c.body.messages_count)),
                        ]
                    }),
                CountKind::Unread => rest
                    .call::<UserConversation>(
                        Method::GET,
                        &format!(
                            "/v1/Users/{}/Conversations/{}",
                            segment(&identity),
                            segment(conversation.as_str())
                        ),
                        None,
                    )
                    .await
                    .map(|u| {
                        let unread = match u.body.unread_messages_count {
                            Some(n) => Some(n),
                            None if null_unread => None,
                            // Fault `zero-unread`.
                            None => Some(0),
                        };
                        vec![(CountKind::Unread, unread)]
                    }),
            };
            TaskResult::Count {
                responder,
                conversation,
                kind,
                result,
            }
        });
    }

    /// A count fetch ended: cache what it brought, answer the read.
    pub(super) fn counted(
        &mut self,
        responder: Responder,
        conversation: ConversationSid,
        kind: CountKind,
        result: CountsFetched,
    ) {
        let now = self.clock.now();
        let waiting = self
            .session
            .as_mut()
            .and_then(|s| {
                s.count_waiters
                    .remove(&(conversation.clone(), kind == CountKind::Unread))
            })
            .unwrap_or_default();
        match result {
            Ok(counts) => {
                let answer = |kind: CountKind| {
                    counts
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .and_then(|(_, c)| *c)
                };
                responder.ok(ReplyBody::Count {
                    count: answer(kind),
                });
                for (r, k) in waiting {
                    r.ok(ReplyBody::Count { count: answer(k) });
                }
                if let Some(s) = self.session.as_mut() {
                    for (k, count) in counts {
                        s.counts.insert((conversation.clone(), k), (now, count));
                    }
                }
            }
            Err(e) => {
                for (r, _) in waiting {
                    r.answer(crate::adapter::Outcome::Error(e.clone()));
                }
                responder.answer(crate::adapter::Outcome::Error(e));
            }
        }
    }
}
