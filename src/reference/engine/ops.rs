//! Operations that must wait for synchronization: queued until they may run, refused when
//! they never can, run against the backend when they may.

use reqwest::Method;

use super::state::{Op, segment};
use super::{Engine, TaskResult};
use crate::adapter::{
    ClientSyncStatus, ConversationSyncStatus, ErrorKind, Outcome, Responder, Target,
};
use crate::wire::ConversationSid;

impl Engine {
    /// Whether `op` may go to the backend now; `Err` when it can never go.
    fn may_run(&self, op: &Op) -> Result<bool, Outcome> {
        let Some(s) = &self.session else {
            return Err(Outcome::error(
                ErrorKind::ClientShutDown,
                "no client is started",
            ));
        };
        let failed = |what: &str| {
            Err(Outcome::error(
                ErrorKind::NotSynchronized,
                format!("{what} failed to synchronize"),
            ))
        };
        match op.conversation() {
            None if !self.policy.client_ops_wait_for_sync => Ok(true),
            None if s.sync == ClientSyncStatus::Failed => failed("the client"),
            None => Ok(s.sync == ClientSyncStatus::Completed),
            Some(_) if !self.policy.conversation_ops_wait_for_sync => Ok(true),
            Some(sid) => match s.conversations.get(sid) {
                Some(c) if c.sync == ConversationSyncStatus::Failed => {
                    failed(&format!("conversation {sid}"))
                }
                Some(c) => Ok(c.sync == ConversationSyncStatus::All),
                None if s.sync == ClientSyncStatus::Completed => Err(Outcome::error(
                    ErrorKind::NotFound,
                    format!("conversation {sid} is not in the user's list"),
                )),
                None if s.sync == ClientSyncStatus::Failed => failed("the client"),
                None => Ok(false),
            },
        }
    }

    /// Runs `op` if it may run now, queues it if it may later, refuses it otherwise.
    pub(super) fn submit(&mut self, responder: Responder, op: Op) {
        match self.may_run(&op) {
            Ok(true) => self.execute(responder, op),
            Ok(false) => match self.session.as_mut() {
                Some(s) => s.waiting_ops.push((responder, op)),
                None => responder.error(ErrorKind::ClientShutDown, "no client is started"),
            },
            Err(outcome) => responder.answer(outcome),
        }
    }

    /// Runs every waiting operation that may run now.
    pub(super) fn flush_ops(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        for (responder, op) in std::mem::take(&mut s.waiting_ops) {
            self.submit(responder, op);
        }
    }

    /// Fails the waiting operations on a conversation that was removed.
    pub(super) fn drop_ops_on(&mut self, sid: &ConversationSid) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let (dead, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.waiting_ops)
            .into_iter()
            .partition(|(_, op)| op.conversation() == Some(sid));
        s.waiting_ops = waiting;
        for (responder, _) in dead {
            responder.error(
                ErrorKind::NotFound,
                format!("conversation {sid} was removed"),
            );
        }
    }

    fn execute(&mut self, responder: Responder, op: Op) {
        let Some(s) = &self.session else {
            return responder.error(ErrorKind::ClientShutDown, "no client is started");
        };
        let rest = s.rest.clone();
        match op {
            Op::Update { target, attributes } => {
                let path = match &target {
                    Target::User => format!("/v1/Users/{}", segment(&s.login.identity)),
                    Target::Conversation { sid } => format!("/v1/Conversations/{sid}"),
                };
                self.spawn(async move {
                    let form = vec![("Attributes", attributes.to_string())];
                    let result = rest.call(Method::POST, &path, Some(form)).await;
                    TaskResult::Ack {
                        responder,
                        target,
                        written: attributes,
                        result,
                    }
                });
            }
            Op::Send { conversation, body } => {
                self.spawn(async move {
                    let path = format!("/v1/Conversations/{conversation}/Messages");
                    let result = rest
                        .call(Method::POST, &path, Some(vec![("Body", body)]))
                        .await;
                    TaskResult::Sent { responder, result }
                });
            }
        }
    }
}
