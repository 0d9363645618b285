//! A client session: what one client instance holds, and its lifecycle (start, logout, kill).
//! Reconnects and persisted state will live here too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::state::{Object, PendingStart, Session};
use super::{Engine, Input, TaskResult};
use crate::adapter::{
    ClientSyncStatus, CommandError, ConnectionState, ErrorKind, Observation, Outcome, ReplyBody,
    Responder,
};
use crate::reference::net::{self, Rest};
use crate::wire::InstanceId;

/// TTL the reference client asks its token generator for (four hours).
const TOKEN_TTL: Duration = Duration::from_secs(4 * 3600);

impl Engine {
    /// Creates a client: fetches a token, opens the event socket, then reports the client.
    pub(super) fn start(
        &mut self,
        responder: Responder,
        identity: String,
        token_url: String,
        rest_url: String,
        events_url: String,
    ) {
        if self.session.is_some() || self.pending_start.is_some() {
            return responder.error(
                ErrorKind::InvalidCommand,
                "a client is already started; log out first",
            );
        }
        self.generation += 1;
        self.instances += 1;
        let instance = InstanceId::new(format!("ref-{}", self.instances));
        let http = self.http.clone();
        let inputs = self.inputs.clone();
        let (inst, ident) = (instance.clone(), identity.clone());
        self.spawn(async move {
            let result = async {
                let token = net::fetch_token(&http, &token_url, &ident, &inst, TOKEN_TTL).await?;
                let deliver = move |ev| inputs.send(Input::Socket(ev)).is_ok();
                let events = net::connect_events(&events_url, &token, &inst, None, deliver).await?;
                Ok((token, events))
            }
            .await;
            TaskResult::Started { responder, result }
        });
        self.pending_start = Some(PendingStart {
            instance,
            identity,
            rest_url,
        });
    }

    /// The token and socket are ready (or failed): the client exists now.
    pub(super) fn started(
        &mut self,
        responder: Responder,
        result: Result<(String, mpsc::UnboundedSender<String>), CommandError>,
    ) {
        let Some(PendingStart {
            instance,
            identity,
            rest_url,
        }) = self.pending_start.take()
        else {
            return responder.error(ErrorKind::Internal, "the start was abandoned");
        };
        let (token, events) = match result {
            Ok(parts) => parts,
            Err(e) => return responder.answer(Outcome::Error(e)),
        };
        let rest = Rest {
            http: self.http.clone(),
            base: rest_url.trim_end_matches('/').to_owned(),
            token: Arc::new(Mutex::new(token)),
            instance: instance.clone(),
            clock: self.clock.clone(),
            activity: self.activity.clone(),
        };
        self.session = Some(Session {
            instance: instance.clone(),
            identity: identity.clone(),
            rest,
            events,
            connected: true,
            sync: ClientSyncStatus::Started,
            list_done: false,
            user: Object::unknown(),
            conversations: BTreeMap::new(),
            waiting_ops: Vec::new(),
            awaited: Vec::new(),
            lane: VecDeque::new(),
            lane_busy: false,
            list: Vec::new(),
            tombstones: BTreeSet::new(),
            fetched: BTreeMap::new(),
            handles: BTreeMap::new(),
            next_handle: 0,
            start_reply: None,
        });
        self.observe(Observation::ClientCreated {
            instance: instance.clone(),
        });
        self.observe(Observation::ConnectionState {
            state: ConnectionState::Connected,
        });
        self.observe(Observation::ClientSync {
            status: ClientSyncStatus::Started,
        });
        for frame in std::mem::take(&mut self.early_frames) {
            self.frame(frame);
        }
        if self.policy.start_before_list {
            responder.ok(ReplyBody::Started { instance });
        } else if let Some(s) = self.session.as_mut() {
            s.start_reply = Some((responder, instance));
        }
        self.begin_sync(&identity);
    }

    /// Ends the session without a shutdown (the process died).
    pub(super) fn drop_session(&mut self) {
        self.tasks.abort_all();
        // Aborted tasks never report: forget them.
        self.activity.reset();
        self.generation += 1;
        self.pending_start = None;
        self.session = None;
    }

    /// Logout: fail what is pending, release everything, shut the client down.
    pub(super) fn shut_down(&mut self) {
        let Some(s) = self.session.take() else { return };
        let shut = || Outcome::error(ErrorKind::ClientShutDown, "the client was shut down");
        for (responder, _) in s.waiting_ops {
            responder.answer(shut());
        }
        for a in s.awaited {
            a.responder.answer(shut());
        }
        self.observe(Observation::ClientShutDown {
            instance: s.instance,
        });
        self.drop_session();
    }
}
