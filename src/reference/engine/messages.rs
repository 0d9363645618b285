//! Handles on conversations, and messages: fetched only when the app asks, changes reported
//! only for the messages it fetched.

use reqwest::Method;

use super::{Engine, TaskResult};
use crate::adapter::{
    CommandError, ErrorKind, HandleId, Observation, Outcome, ReplyBody, Responder,
};
use crate::reference::net::Fetched;
use crate::wire::resources::MessagesPage;
use crate::wire::{ConversationSid, EventType};

impl Engine {
    /// Hands out a handle on a known conversation; loading it fetches no messages.
    pub(super) fn open(&mut self, responder: Responder, conversation: ConversationSid) {
        let Some(s) = self.session.as_mut() else {
            return responder.error(ErrorKind::ClientShutDown, "no client");
        };
        if !s.conversations.contains_key(&conversation) {
            return responder.error(
                ErrorKind::NotFound,
                format!("conversation {conversation} is unknown"),
            );
        }
        // Handle ids are never reused, not even by a later instance.
        self.handles_made += 1;
        let handle = HandleId::new(format!("{}/h-{}", s.instance, self.handles_made));
        s.handles.insert(handle.clone(), conversation);
        self.observe(Observation::HandleAcquired {
            handle: handle.clone(),
        });
        responder.ok(ReplyBody::Handle { handle });
    }

    /// Releases a live handle.
    pub(super) fn release(&mut self, responder: Responder, handle: HandleId) {
        if self.retired.contains(&handle) {
            return responder.error(
                ErrorKind::ClientShutDown,
                format!("handle {handle} belonged to a client that was shut down"),
            );
        }
        let Some(s) = self.session.as_mut() else {
            return responder.error(ErrorKind::ClientShutDown, "no client");
        };
        match s.handles.remove(&handle) {
            Some(_) => {
                self.observe(Observation::HandleReleased { handle });
                responder.done();
            }
            None => responder.error(
                ErrorKind::ReleasedHandle,
                format!("handle {handle} is not live"),
            ),
        }
    }

    /// Fetches the newest `count` messages of a conversation (for the app when `responder` is
    /// set, on the client's own initiative otherwise).
    pub(super) fn fetch_messages(
        &mut self,
        responder: Option<Responder>,
        sid: ConversationSid,
        count: u32,
    ) {
        let Some(s) = &self.session else {
            if let Some(r) = responder {
                r.error(ErrorKind::ClientShutDown, "no client");
            }
            return;
        };
        let rest = s.rest.clone();
        let path = format!(
            "/v1/Conversations/{sid}/Messages?Order=desc&PageSize={}",
            count.clamp(1, 100)
        );
        self.spawn(async move {
            let result = rest.call(Method::GET, &path, None).await;
            TaskResult::Messages {
                responder,
                sid,
                result,
            }
        });
    }

    pub(super) fn messages(
        &mut self,
        responder: Option<Responder>,
        sid: ConversationSid,
        result: Result<Fetched<MessagesPage>, CommandError>,
    ) {
        let page = match result {
            Ok(ok) => ok.body,
            Err(e) => {
                if let Some(r) = responder {
                    r.answer(Outcome::Error(e));
                }
                return;
            }
        };
        let indices: Vec<u64> = page.messages.iter().map(|m| m.index).collect();
        if let Some(s) = self.session.as_mut() {
            s.fetched
                .entry(sid)
                .or_default()
                .extend(indices.iter().copied());
        }
        if let Some(r) = responder {
            r.ok(ReplyBody::Messages { messages: indices });
        }
    }

    /// Another participant edited or removed a message: reported if the app fetched it.
    pub(super) fn message_changed(&mut self, kind: EventType, sid: ConversationSid, index: u64) {
        let fetched = self
            .session
            .as_ref()
            .and_then(|s| s.fetched.get(&sid))
            .is_some_and(|f| f.contains(&index));
        let report = self.policy.report_fetched_changes
            && (fetched || !self.policy.changes_for_fetched_only);
        if kind == EventType::MessageRemoved {
            if let Some(f) = self.session.as_mut().and_then(|s| s.fetched.get_mut(&sid)) {
                f.remove(&index);
            }
        }
        if report {
            self.observe(if kind == EventType::MessageUpdated {
                Observation::MessageUpdated {
                    conversation: sid,
                    index,
                }
            } else {
                Observation::MessageRemoved {
                    conversation: sid,
                    index,
                }
            });
        }
    }
}
