//! Synchronization: the lane that fetches the list, the user and each conversation one request
//! at a time, and the sync statuses it reports as the facts allow.

use reqwest::Method;

use super::state::{Session, Source, SyncJob, segment};
use super::{Engine, TaskResult};
use crate::adapter::{
    ClientSyncStatus, CommandError, ConversationSyncStatus, Observation, ReplyBody, Target,
};
use crate::reference::net::Fetched;
use crate::wire::ConversationSid;
use crate::wire::resources::{Conversation, ConversationsPage, User, parse_attributes};

impl Engine {
    /// Queues the first page of the list and the user: synchronization begins.
    pub(super) fn begin_sync(&mut self, identity: &str) {
        let first = format!(
            "/v1/Users/{}/Conversations?PageSize={}",
            segment(identity),
            self.config.page_size
        );
        self.enqueue(SyncJob::Page(first), false);
        self.enqueue(SyncJob::User, false);
    }

    /// Adds a synchronization fetch to the lane (`urgent` ones go first); the engine starts the
    /// next fetch once it has handled the current input, so every input's jobs are queued first.
    pub(super) fn enqueue(&mut self, job: SyncJob, urgent: bool) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if urgent {
            s.lane.push_front(job);
        } else {
            s.lane.push_back(job);
        }
    }

    /// The lane's fetch finished.
    pub(super) fn lane_done(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.lane_busy = false;
        }
    }

    /// Starts the next synchronization fetch unless one is running.
    pub(super) fn pump(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.lane_busy {
            return;
        }
        let Some(job) = s.lane.pop_front() else {
            return;
        };
        s.lane_busy = true;
        let rest = s.rest.clone();
        let identity = segment(&s.login.identity);
        self.spawn(async move {
            match job {
                SyncJob::Page(url) => TaskResult::ListPage {
                    result: rest.call(Method::GET, &url, None).await,
                },
                SyncJob::User => TaskResult::User {
                    result: rest
                        .call(Method::GET, &format!("/v1/Users/{identity}"), None)
                        .await,
                },
                SyncJob::Metadata(sid) => TaskResult::Metadata {
                    result: rest
                        .call(Method::GET, &format!("/v1/Conversations/{sid}"), None)
                        .await,
                    sid,
                },
                SyncJob::Participants(sid) => TaskResult::Participants {
                    result: rest
                        .call(
                            Method::GET,
                            &format!("/v1/Conversations/{sid}/Participants"),
                            None,
                        )
                        .await,
                    sid,
                },
            }
        });
    }

    pub(super) fn list_page(&mut self, result: Result<Fetched<ConversationsPage>, CommandError>) {
        let page = match result {
            Ok(p) => p.body,
            Err(e) => {
                if let Some(s) = self.session.as_mut() {
                    s.sync = ClientSyncStatus::Failed;
                }
                self.observe(Observation::ClientSync {
                    status: ClientSyncStatus::Failed,
                });
                self.observe(Observation::Error {
                    kind: e.kind,
                    message: e.message,
                });
                return;
            }
        };
        for item in page.conversations {
            self.learn_conversation(&item.conversation_sid, Source::Page);
        }
        let next = page
            .meta
            .next_page_url
            .filter(|_| self.policy.fetch_every_page);
        match next {
            Some(next) => self.enqueue(SyncJob::Page(next), true),
            None => {
                let deferred = self.session.as_mut().and_then(|s| {
                    s.list_done = true;
                    s.start_reply.take()
                });
                if let Some((responder, instance)) = deferred {
                    responder.ok(ReplyBody::Started { instance });
                }
                self.advance_client_sync();
                self.flush_ops();
            }
        }
    }

    pub(super) fn metadata(
        &mut self,
        sid: ConversationSid,
        result: Result<Fetched<Conversation>, CommandError>,
    ) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => return self.conversation_failed(&sid, e),
        };
        let target = Target::Conversation { sid: sid.clone() };
        self.apply_snapshot(
            &target,
            parse_attributes(&ok.body.attributes),
            ok.revision.unwrap_or(1),
            &[],
        );
        self.set_conversation_sync(&sid, ConversationSyncStatus::Metadata);
        self.enqueue(SyncJob::Participants(sid), true);
    }

    pub(super) fn participants(
        &mut self,
        sid: ConversationSid,
        result: Result<Fetched<serde_json::Value>, CommandError>,
    ) {
        match result {
            Ok(_) => {
                if !self.policy.messages_on_demand {
                    self.fetch_messages(None, sid.clone(), 50);
                }
                self.set_conversation_sync(&sid, ConversationSyncStatus::All);
                self.advance_client_sync();
                self.flush_ops();
            }
            Err(e) => self.conversation_failed(&sid, e),
        }
    }

    pub(super) fn user(&mut self, result: Result<Fetched<User>, CommandError>) {
        match result {
            Ok(ok) => {
                self.apply_snapshot(
                    &Target::User,
                    parse_attributes(&ok.body.attributes),
                    ok.revision.unwrap_or(1),
                    &[],
                );
            }
            Err(e) => self.observe(Observation::Error {
                kind: e.kind,
                message: e.message,
            }),
        }
    }

    fn conversation_failed(&mut self, sid: &ConversationSid, e: CommandError) {
        self.set_conversation_sync(sid, ConversationSyncStatus::Failed);
        self.observe(Observation::Error {
            kind: e.kind,
            message: e.message,
        });
    }

    pub(super) fn set_conversation_sync(
        &mut self,
        sid: &ConversationSid,
        status: ConversationSyncStatus,
    ) {
        let Some(c) = self
            .session
            .as_mut()
            .and_then(|s| s.conversations.get_mut(sid))
        else {
            return;
        };
        if c.sync == status {
            return;
        }
        c.sync = status;
        self.observe(Observation::ConversationSync {
            conversation: sid.clone(),
            status,
        });
    }

    /// Moves the client sync status forward as far as the facts allow.
    pub(super) fn advance_client_sync(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if !s.list_done
            || s.sync == ClientSyncStatus::Completed
            || s.sync == ClientSyncStatus::Failed
        {
            return;
        }
        let steps = advance(s);
        for status in steps {
            self.observe(Observation::ClientSync { status });
        }
    }
}

fn advance(s: &mut Session) -> Vec<ClientSyncStatus> {
    let mut steps = Vec::new();
    if s.sync == ClientSyncStatus::Started {
        s.sync = ClientSyncStatus::ConversationsCompleted;
        steps.push(s.sync);
    }
    let settled = s.conversations.values().all(|c| {
        matches!(
            c.sync,
            ConversationSyncStatus::All | ConversationSyncStatus::Failed
        )
    });
    if settled {
        s.sync = ClientSyncStatus::Completed;
        steps.push(s.sync);
    }
    steps
}
