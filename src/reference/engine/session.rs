//! A client session: what one client instance holds, and its lifecycle: start, logout, a switch
//! of login, kill, background and foreground.
//!
//! An instance is shut down only on logout or when another identity logs in; its handles are
//! released first, and nothing it left behind (a handle, the instance id) works or reaches the
//! backend afterwards. Kill ends the session with no shutdown at all: the process is gone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::state::{Link, Login, Object, PendingStart, Session};
use super::{Engine, TaskResult};
use crate::adapter::{
    ClientSyncStatus, CommandError, ConnectionState, ErrorKind, Observation, Outcome, ReplyBody,
    Responder,
};
use crate::reference::net::{self, Rest};
use crate::wire::InstanceId;

impl Engine {
    /// The `start` command: creates a client for `login`. A client of another identity is shut
    /// down first (a switch of login); starting the same identity twice is refused.
    pub(super) fn start(&mut self, responder: Responder, login: Login) {
        if self.pending_start.is_some() {
            return responder.error(ErrorKind::InvalidCommand, "a client is already starting");
        }
        match &self.session {
            Some(s) if s.login.identity == login.identity => {
                return responder.error(
                    ErrorKind::InvalidCommand,
                    "a client is already started for this identity; log out first",
                );
            }
            Some(_) => {
                self.shut_down();
            }
            None => {}
        }
        self.create(Some(responder), login);
    }

    /// Creates a client instance: fetches a token, opens the event socket, then reports the
    /// client. `responder` is the app's `start`, if the app asked.
    fn create(&mut self, responder: Option<Responder>, login: Login) {
        self.generation += 1;
        let instance = match self.reused.take() {
            // Fault `reuse-after-shutdown`: the old instance comes back.
            Some(old) => old,
            None => {
                self.instances += 1;
                InstanceId::new(format!("ref-{}", self.instances))
            }
        };
        self.last_login = Some(login.clone());
        self.early_frames.clear();
        self.welcome = None;
        let link = self.next_link();
        let deliver = self.deliver_to(link);
        let inst = instance.clone();
        let events_url = login.events_url.clone();
        // A valid token kept from an earlier run starts the client without waiting for the
        // generator (the documented pre-fetch).
        let stored = self.stored_token(&login.storage, &login.identity);
        let generator = self.generator(&login.token_url, &login.identity, &instance);
        self.spawn(async move {
            let result = async {
                let credential = match stored {
                    Some(c) => c,
                    None => generator.fetch().await?,
                };
                let events =
                    net::connect_events(&events_url, &credential.token, &inst, None, deliver)
                        .await?;
                Ok((credential, events))
            }
            .await;
            TaskResult::Started { responder, result }
        });
        self.pending_start = Some(PendingStart {
            instance,
            login,
            link,
        });
    }

    /// The token and socket are ready (or failed): the client exists now.
    pub(super) fn started(
        &mut self,
        responder: Option<Responder>,
        result: Result<(super::state::Credential, mpsc::UnboundedSender<String>), CommandError>,
    ) {
        let welcome = self.welcome.take();
        let Some(PendingStart {
            instance,
            login,
            link,
        }) = self.pending_start.take()
        else {
            if let Some(r) = responder {
                r.error(ErrorKind::Internal, "the start was abandoned");
            }
            return;
        };
        let (credential, events) = match result {
            Ok(parts) => parts,
            Err(e) => {
                // Reported as well as answered: a client the app did not start itself (a
                // re-creation) has no one else to tell.
                self.observe(Observation::Error {
                    kind: e.kind,
                    message: e.message.clone(),
                });
                if let Some(r) = responder {
                    r.answer(Outcome::Error(e));
                }
                return;
            }
        };
        // What the app kept from its earlier runs, before this start changes it.
        let stored = login.storage.load();
        self.keep(&login.storage, &login.identity, &credential);
        let token = credential.token.clone();
        let rest = Rest {
            http: self.http.clone(),
            base: login.rest_url.trim_end_matches('/').to_owned(),
            token: Arc::new(Mutex::new(token)),
            instance: instance.clone(),
            clock: self.clock.clone(),
            activity: self.activity.clone(),
        };
        let identity = login.identity.clone();
        let push_login = login.clone();
        self.session = Some(Session {
            instance: instance.clone(),
            login,
            rest,
            link: Link::open(link, events, welcome),
            background: false,
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
            handles: std::mem::take(&mut self.carried_handles),
            start_reply: None,
            token_expires: credential.expires_at,
            refreshing: false,
            expiry_seen: false,
            counts: std::collections::HashMap::new(),
            count_waiters: BTreeMap::new(),
        });
        self.observe(Observation::ClientCreated {
            instance: instance.clone(),
        });
        self.linked();
        self.observe(Observation::ClientSync {
            status: ClientSyncStatus::Started,
        });
        for frame in std::mem::take(&mut self.early_frames) {
            if let Some(s) = self.session.as_mut() {
                s.link.last_seq = Some(frame.seq);
            }
            self.frame(frame);
        }
        if let Some(responder) = responder {
            if self.policy.start_before_list {
                responder.ok(ReplyBody::Started { instance });
            } else if let Some(s) = self.session.as_mut() {
                s.start_reply = Some((responder, instance));
            }
        }
        self.begin_sync(&identity);
        self.register_on_start(&push_login, stored);
        self.prefetch_with_token_in_url();
    }

    /// Ends the session without a shutdown (the process died): its handles die with it.
    pub(super) fn drop_session(&mut self) {
        self.tasks.abort_all();
        // The activity ledger is reset below: sockets still closing are counted again by
        // whoever let go of them.
        self.closing_links.clear();
        self.wanted_link
            .store(0, std::sync::atomic::Ordering::SeqCst);
        // Aborted tasks never report: forget them.
        self.activity.reset();
        self.generation += 1;
        self.pending_start = None;
        if let Some(s) = self.session.take() {
            self.retired.extend(s.handles.into_keys());
        }
    }

    /// Logout (or a switch of login): fail what is pending, release every handle, then shut
    /// the client down and close its socket. Returns the number of the socket being closed.
    pub(super) fn shut_down(&mut self) -> Option<u64> {
        let mut s = self.session.take()?;
        let shut = || Outcome::error(ErrorKind::ClientShutDown, "the client was shut down");
        for (responder, _) in std::mem::take(&mut s.waiting_ops) {
            responder.answer(shut());
        }
        for a in std::mem::take(&mut s.awaited) {
            a.responder.answer(shut());
        }
        if let Some((responder, _)) = s.start_reply.take() {
            responder.answer(shut());
        }
        let handles: Vec<_> = s.handles.keys().cloned().collect();
        if self.policy.release_handles && self.policy.release_before_shutdown {
            for handle in &handles {
                self.observe(Observation::HandleReleased {
                    handle: handle.clone(),
                });
            }
        }
        self.observe(Observation::ClientShutDown {
            instance: s.instance.clone(),
        });
        if self.policy.release_handles && !self.policy.release_before_shutdown {
            // Fault `release-after-shutdown`: the handles go after the client.
            for handle in &handles {
                self.observe(Observation::HandleReleased {
                    handle: handle.clone(),
                });
            }
        }
        if !self.policy.retire_on_shutdown {
            // Fault `reuse-after-shutdown`: the next client is this one again, handles and all.
            self.reused = Some(s.instance.clone());
            self.carried_handles = std::mem::take(&mut s.handles);
        }
        let closing = s.link.sender().is_some().then_some(s.link.id);
        if closing.is_some() {
            self.observe(Observation::ConnectionState {
                state: ConnectionState::Disconnected,
            });
        }
        self.session = Some(s);
        self.drop_session();
        self.letting_go(closing);
        closing
    }

    /// The client let go of socket `link` (if any): it is busy until the socket has closed.
    pub(super) fn letting_go(&mut self, link: Option<u64>) {
        if let Some(link) = link
            && self.closing_links.insert(link)
        {
            self.activity.begin();
        }
    }

    /// Fault `recreate-on-reconnect`: the instance is shut down and a new one created for the
    /// same login.
    pub(super) fn recreate(&mut self) {
        let login = self.session.as_ref().map(|s| s.login.clone());
        let _ = self.shut_down();
        if let Some(login) = login {
            self.create(None, login);
        }
    }

    /// The app went to the background. Answered once the socket is closed (the backend saw
    /// it go), so nothing published afterwards is written to it.
    pub(super) fn background(&mut self, responder: Responder) {
        if self.session.is_none() {
            return responder.done();
        }
        if !self.policy.survive_background {
            // Fault `shutdown-on-background`: the client is shut down, and made again later.
            let closing = self.shut_down();
            self.in_background = true;
            return self.when_closed(closing, responder);
        }
        let closing = self.park();
        self.when_closed(closing, responder);
    }

    /// Answers `responder` once socket `closing` is closed (at once if there is none).
    pub(super) fn when_closed(&mut self, closing: Option<u64>, responder: Responder) {
        match closing {
            Some(link) => self.closing.push((link, responder)),
            None => responder.done(),
        }
    }

    /// The app came back to the foreground.
    pub(super) fn foreground(&mut self) {
        if std::mem::take(&mut self.in_background)
            && self.session.is_none()
            && let Some(login) = self.last_login.clone()
        {
            self.create(None, login);
            return;
        }
        self.unpark();
    }
}
