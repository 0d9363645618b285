//! The app-layer half of a mutant: a task between the harness and the wrapped client stack that
//! forwards commands, replies and observations, except where the mutant changes them (answers a
//! command itself, sends the stack commands of its own, drops, delays or invents reports). It
//! also starts the session's proxy when it sees `start`, and points the stack at it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;

use super::proxy::{Outgoing, Proxy};
use super::{Kind, Mutant, Pending, Shared, Signal, lock};
use crate::adapter::{
    AdapterEvent, ClientSyncStatus, Command, Observation, Outcome, Reply, ReplyBody, Request,
    Target,
};
use crate::wire::InstanceId;

/// How often the app refreshes its user's presence (mutant `zombie-presence-timer`).
const PRESENCE_EVERY_MS: u64 = 60_000;

/// An app timer armed for one client: what it captured of that client, and the virtual time
/// it has seen pass.
pub(super) struct PresenceTimer {
    identity: String,
    instance: InstanceId,
    /// The token and instance header of the client, captured on its first request.
    credentials: Option<(String, Option<String>)>,
    elapsed_ms: u64,
}

/// Ids of the wrapper's own commands to the stack: far above the harness's.
const OWN_IDS: u64 = 1 << 40;

pub(super) struct Wrapper {
    pub(super) mutant: &'static Mutant,
    pub(super) shared: Arc<Mutex<Shared>>,
    pub(super) to_harness: mpsc::UnboundedSender<AdapterEvent>,
    pub(super) to_stack: mpsc::UnboundedSender<Request>,
    pub(super) signals: mpsc::UnboundedReceiver<Signal>,
    pub(super) proxy: Option<Proxy>,
    pub(super) next_own: u64,
    /// Harness requests whose stack reply is swallowed (the wrapper answered already).
    pub(super) answered: Vec<u64>,
    /// What the app layer itself wrote last, per target.
    pub(super) written: HashMap<Target, Value>,
    /// A reply held back until something is seen.
    pub(super) held_start: Option<Reply>,
    /// Observations held back.
    pub(super) held: Vec<Observation>,
    pub(super) settle_ids: Vec<u64>,
    pub(super) synced: bool,
    /// The app's presence timers, one armed per client created, none ever cancelled.
    pub(super) timers: Vec<PresenceTimer>,
}

impl Wrapper {
    pub(super) async fn run(
        mut self,
        mut from_harness: mpsc::UnboundedReceiver<Request>,
        mut from_stack: mpsc::UnboundedReceiver<AdapterEvent>,
    ) {
        loop {
            tokio::select! {
                req = from_harness.recv() => match req {
                    Some(req) => self.command(req).await,
                    None => break,
                },
                ev = from_stack.recv() => match ev {
                    Some(ev) => self.event(ev),
                    None => break,
                },
                Some(signal) = self.signals.recv() => self.signal(signal),
            }
        }
    }

    fn own(&mut self, command: Command) {
        self.next_own += 1;
        let _ = self.to_stack.send(Request {
            id: OWN_IDS + self.next_own,
            command,
        });
    }

    fn answer(&mut self, id: u64, outcome: Outcome) {
        self.answered.push(id);
        let _ = self
            .to_harness
            .send(AdapterEvent::Reply(Reply { id, outcome }));
    }

    fn observe(&self, o: Observation) {
        let _ = self.to_harness.send(AdapterEvent::Observation(o));
    }

    async fn command(&mut self, Request { id, command }: Request) {
        let command = match command {
            Command::Start {
                identity,
                token_url,
                rest_url,
                events_url,
                storage_dir,
                device_token,
                // The proxy speaks the v1 face only: a wrapped stack is not told of twilsock.
                twilsock_url: _,
            } => {
                {
                    // A new client walks its list afresh.
                    let mut st = lock(&self.shared);
                    st.identity.clone_from(&identity);
                    st.list_done = false;
                    st.pages = 0;
                    st.logged_out = false;
                }
                // One proxy per session: a later start (refused or not) must not cut the
                // connections of a client that is still running.
                if self.proxy.is_none() {
                    match Proxy::start(&rest_url, &events_url, self.mutant, self.shared.clone())
                        .await
                    {
                        Ok(proxy) => self.proxy = Some(proxy),
                        Err(e) => {
                            let _ = self.to_harness.send(AdapterEvent::Exited(format!(
                                "the proxy did not start: {e}"
                            )));
                            return;
                        }
                    }
                }
                let Some(proxy) = &self.proxy else { return };
                Command::Start {
                    identity,
                    token_url: token_url.replacen(&rest_url, &proxy.http_url, 1),
                    rest_url: proxy.http_url.clone(),
                    events_url: proxy.events_url.clone(),
                    twilsock_url: None,
                    storage_dir,
                    device_token,
                }
            }
            other => other,
        };
        match (&self.mutant.kind, &command) {
            (_, Command::Logout) => lock(&self.shared).logged_out = true,
            // The process dies, and its timers with it.
            (Kind::ZombiePresenceTimer, Command::Kill) => self.timers.clear(),
            (Kind::ZombiePresenceTimer, Command::AdvanceTime { ms }) => {
                self.presence(*ms).await;
            }
            (Kind::ReplyBeforeUpdate, Command::UpdateAttributes { attributes, .. }) => {
                let written = attributes.clone();
                self.answer(
                    id,
                    Outcome::Ok(ReplyBody::Attributes {
                        attributes: written,
                    }),
                );
            }
            (Kind::ReadOwnWrite, Command::ReadAttributes { target }) => {
                if let Some(v) = self.written.get(target).cloned() {
                    self.answer(id, Outcome::Ok(ReplyBody::Attributes { attributes: v }));
                    return;
                }
            }
            (
                Kind::UserUpdateEcho,
                Command::UpdateAttributes {
                    target: Target::User,
                    attributes,
                },
            ) => {
                self.observe(Observation::UserUpdated {
                    attributes: attributes.clone(),
                });
            }
            (Kind::AdvanceCompletes, Command::AdvanceTime { ms }) => {
                let due: Vec<(u64, Value)> = {
                    let mut st = lock(&self.shared);
                    st.pending.values_mut().for_each(|p| p.waited_ms += ms);
                    let ids: Vec<u64> = st
                        .pending
                        .iter()
                        .filter(|(_, p)| p.waited_ms >= 10_000)
                        .map(|(id, _)| *id)
                        .collect();
                    ids.into_iter()
                        .filter_map(|id| st.pending.remove(&id).map(|p| (id, p.written)))
                        .collect()
                };
                for (id, written) in due {
                    self.answer(
                        id,
                        Outcome::Ok(ReplyBody::Attributes {
                            attributes: written,
                        }),
                    );
                }
            }
            (Kind::AutoloadOnOpen, Command::OpenConversation { conversation }) => {
                let conversation = conversation.clone();
                let _ = self.to_stack.send(Request {
                    id,
                    command: command.clone(),
                });
                self.own(Command::FetchMessages {
                    conversation,
                    count: 50,
                });
                return;
            }
            _ => {}
        }
        match &command {
            Command::UpdateAttributes { target, attributes } => {
                self.written.insert(target.clone(), attributes.clone());
                lock(&self.shared).pending.insert(
                    id,
                    Pending {
                        target: target.clone(),
                        written: attributes.clone(),
                        waited_ms: 0,
                    },
                );
            }
            Command::Settle => self.settle_ids.push(id),
            _ => {}
        }
        let _ = self.to_stack.send(Request { id, command });
    }

    /// `ms` of virtual time pass for the app's presence timers: each that comes due sends the
    /// presence refresh of the client it was armed for, as that client.
    async fn presence(&mut self, ms: u64) {
        self.capture();
        let mut due = Vec::new();
        for t in &mut self.timers {
            let before = t.elapsed_ms / PRESENCE_EVERY_MS;
            t.elapsed_ms += ms;
            if t.elapsed_ms / PRESENCE_EVERY_MS > before
                && let Some((token, client)) = &t.credentials
            {
                let mut headers = vec![("x-twilio-token".to_owned(), token.clone())];
                headers.extend(client.clone().map(|c| ("x-convo-client".to_owned(), c)));
                due.push(Outgoing {
                    method: reqwest::Method::GET,
                    target: format!("/v1/Users/{}", t.identity),
                    headers,
                    body: bytes::Bytes::new(),
                });
            }
        }
        if let Some(proxy) = &self.proxy {
            for out in due {
                let _ = proxy.inject(&out).await;
            }
        }
    }

    /// Timers that have not yet seen their client's credentials take them from its requests.
    fn capture(&mut self) {
        if self.timers.iter().all(|t| t.credentials.is_some()) {
            return;
        }
        let current = lock(&self.shared).credentials.clone();
        for t in self.timers.iter_mut().filter(|t| t.credentials.is_none()) {
            if current
                .as_ref()
                .is_some_and(|(_, c)| c.as_deref() == Some(t.instance.as_str()))
            {
                t.credentials.clone_from(&current);
            }
        }
    }

    fn event(&mut self, ev: AdapterEvent) {
        match ev {
            AdapterEvent::Reply(reply) => self.reply(reply),
            AdapterEvent::Observation(o) => self.observation(o),
            other => {
                let _ = self.to_harness.send(other);
            }
        }
    }

    fn reply(&mut self, mut reply: Reply) {
        if reply.id > OWN_IDS {
            return;
        }
        lock(&self.shared).pending.remove(&reply.id);
        if let Some(i) = self.answered.iter().position(|a| *a == reply.id) {
            self.answered.swap_remove(i);
            return;
        }
        if let Outcome::Ok(ReplyBody::Conversations { conversations }) = &mut reply.outcome {
            match self.mutant.kind {
                Kind::DuplicateListEntry => {
                    if let Some(last) = conversations.last().cloned() {
                        conversations.push(last);
                    }
                }
                Kind::ListDropsLast => {
                    conversations.pop();
                }
                _ => {}
            }
        }
        let waits = matches!(
            self.mutant.kind,
            Kind::StartWaitsForSync | Kind::StartWaitsFirstConversation
        );
        if waits && matches!(reply.outcome, Outcome::Ok(ReplyBody::Started { .. })) && !self.synced
        {
            self.held_start = Some(reply);
            return;
        }
        let settled = self.settle_ids.contains(&reply.id);
        let _ = self.to_harness.send(AdapterEvent::Reply(reply));
        if settled && self.mutant.kind == Kind::LateMessageReport {
            for o in std::mem::take(&mut self.held) {
                self.observe(o);
            }
        }
    }

    fn release_start(&mut self) {
        self.synced = true;
        if let Some(r) = self.held_start.take() {
            let _ = self.to_harness.send(AdapterEvent::Reply(r));
        }
    }

    fn observation(&mut self, o: Observation) {
        if let (Kind::ZombiePresenceTimer, Observation::ClientCreated { instance }) =
            (&self.mutant.kind, &o)
        {
            self.timers.push(PresenceTimer {
                identity: lock(&self.shared).identity.clone(),
                instance: instance.clone(),
                credentials: None,
                elapsed_ms: 0,
            });
        }
        if self.mutant.kind == Kind::ZombiePresenceTimer {
            self.capture();
        }
        match (&self.mutant.kind, &o) {
            (Kind::DoubleMessageReport, Observation::MessageAdded { .. }) => {
                self.observe(o.clone());
            }
            (
                Kind::MessageEditEcho,
                Observation::MessageAdded {
                    conversation,
                    index,
                },
            ) => {
                self.observe(o.clone());
                self.observe(Observation::MessageUpdated {
                    conversation: conversation.clone(),
                    index: *index,
                });
                return;
            }
            (Kind::RemoveAddRefresh, Observation::MessageAdded { conversation, .. }) => {
                let c = conversation.clone();
                self.observe(o);
                self.observe(Observation::ConversationRemoved {
                    conversation: c.clone(),
                });
                self.observe(Observation::ConversationAdded { conversation: c });
                return;
            }
            (Kind::ConversationAddedTwice, Observation::ConversationAdded { .. }) => {
                self.observe(o.clone());
            }
            (Kind::LateMessageReport, Observation::MessageAdded { .. }) => {
                self.held.push(o);
                return;
            }
            (Kind::StatusReorder, Observation::ClientSync { status }) => match status {
                ClientSyncStatus::ConversationsCompleted => {
                    self.held.push(o);
                    return;
                }
                ClientSyncStatus::Completed => {
                    self.observe(o);
                    for held in std::mem::take(&mut self.held) {
                        self.observe(held);
                    }
                    return;
                }
                _ => {}
            },
            (
                Kind::ForgetSyncReport,
                Observation::ClientSync {
                    status: ClientSyncStatus::Completed,
                },
            ) => {
                return;
            }
            (Kind::SyncEarlyReport, Observation::ClientCreated { .. }) => {
                self.observe(o);
                self.observe(Observation::ClientSync {
                    status: ClientSyncStatus::Completed,
                });
                return;
            }
            (Kind::RestartStatusOnAdd, Observation::ConversationAdded { .. }) if self.synced => {
                self.observe(o);
                self.observe(Observation::ClientSync {
                    status: ClientSyncStatus::Started,
                });
                return;
            }
            (
                Kind::RestartStatusOnAdd,
                Observation::ClientSync {
                    status: ClientSyncStatus::Completed,
                },
            ) => {
                self.synced = true;
            }
            (
                Kind::StartWaitsForSync,
                Observation::ClientSync {
                    status: ClientSyncStatus::Completed,
                },
            )
            | (Kind::StartWaitsFirstConversation, Observation::ConversationAdded { .. }) => {
                self.observe(o);
                self.release_start();
                return;
            }
            _ => {}
        }
        self.observe(o);
    }

    /// The proxy saw something the app layer reacts to.
    fn signal(&mut self, signal: Signal) {
        match signal {
            Signal::UpdatedFrame { target, attributes } => {
                let due: Vec<u64> = {
                    let mut st = lock(&self.shared);
                    let ids: Vec<u64> = st
                        .pending
                        .iter()
                        .filter(|(_, p)| p.target == target)
                        .map(|(id, _)| *id)
                        .collect();
                    ids.iter().for_each(|id| {
                        st.pending.remove(id);
                    });
                    ids
                };
                for id in due {
                    self.answer(
                        id,
                        Outcome::Ok(ReplyBody::Attributes {
                            attributes: attributes.clone(),
                        }),
                    );
                }
            }
        }
    }
}
