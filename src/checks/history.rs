//! A scenario's journal with the queries checks share: who did what, when the client settled,
//! when it had everything its synchronization needs.

use std::collections::{BTreeMap, BTreeSet};

use crate::adapter::{Command, Observation, ReplyBody};
use crate::backend::{Endpoint, Fact, RequestFact};
use crate::journal::{Entry, EntryKind, ReplyRecord};
use crate::secrets::TokenFingerprint;
use crate::wire::{ConversationSid, EventType, InstanceId};

/// A `settle` the adapter answered: every frame delivered before `command` was processed by
/// `reply`, and nothing the client started was still in flight then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settle {
    /// Sequence number of the `settle` command.
    pub command: u64,
    /// Sequence number of its reply.
    pub reply: u64,
}

/// The token fingerprint an entry carries, if any: the token presented, or, for a request
/// that presented none, the token its answer minted.
fn token_of(e: &Entry) -> Option<&TokenFingerprint> {
    match &e.kind {
        EntryKind::Backend(Fact::Request(r)) => r
            .token
            .as_ref()
            .or_else(|| r.issued.as_ref().map(|i| &i.token)),
        EntryKind::Backend(Fact::Connected { token, .. }) => token.as_ref(),
        EntryKind::Backend(Fact::Frame(f)) => f.token.as_ref(),
        EntryKind::Backend(Fact::Dropped(d)) => d.token.as_ref(),
        _ => None,
    }
}

/// Who used each token: the instance that named itself on an entry carrying it; failing that,
/// for a token minted for an identity, the instance created by the one `start` as that identity
/// whose instance was live (from the command to its logout, kill or the next start) when the
/// token was minted.
fn token_owners(entries: &[Entry]) -> BTreeMap<&TokenFingerprint, &InstanceId> {
    let mut tokens: BTreeMap<&TokenFingerprint, &InstanceId> = BTreeMap::new();
    for e in entries {
        if let (Some(instance), Some(token)) = (e.instance.as_ref(), token_of(e)) {
            tokens.entry(token).or_insert(instance);
        }
    }
    // Every `start`: its request id, identity, command seq, and the instance it created.
    let mut starts: Vec<(u64, &str, u64, Option<&InstanceId>)> = Vec::new();
    for e in entries {
        if let Some((id, Command::Start { identity, .. })) = e.command() {
            starts.push((id, identity, e.seq, None));
        } else if let Some(r) = e.reply() {
            if let (Some(ReplyBody::Started { instance }), Some(start)) = (
                r.outcome.ok(),
                starts.iter_mut().find(|(id, ..)| *id == r.id),
            ) {
                start.3 = Some(instance);
            }
        }
    }
    // Where each instance was first told to stop (logout or kill): one pass, not one per
    // token and start (a simulated year has hundreds of each).
    let mut stops: BTreeMap<&InstanceId, u64> = BTreeMap::new();
    for e in entries {
        if let (Some(instance), Some((_, Command::Logout | Command::Kill))) =
            (e.instance.as_ref(), e.command())
        {
            stops.entry(instance).or_insert(e.seq);
        }
    }
    let ended = |instance: &InstanceId| stops.get(instance).copied().unwrap_or(u64::MAX);
    for e in entries {
        let Some(issued) = e.request().and_then(|r| r.issued.as_ref()) else {
            continue;
        };
        // The start as that identity whose instance was live when the token was minted (from
        // its command to its logout or kill, or the next start), when exactly one was; a start
        // that created no instance makes its window ambiguous. Anything else stays
        // unattributed and is reported.
        let windows: Vec<(u64, u64, Option<&InstanceId>)> = starts
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 == issued.identity)
            .map(|(i, &(_, _, command, instance))| {
                let next = starts.get(i + 1).map_or(u64::MAX, |n| n.2);
                let end = instance.map_or(next, |inst| ended(inst).min(next));
                (command, end, instance)
            })
            .collect();
        let mut live = windows
            .iter()
            .filter(|(from, to, _)| e.seq > *from && e.seq < *to);
        if let (Some(&(_, _, Some(only))), None) = (live.next(), live.next()) {
            tokens.entry(&issued.token).or_insert(only);
        }
    }
    tokens
}

/// Whether `ep` is the final page of a subscribed list (of `user`, when given).
fn is_final_page(ep: &Endpoint, user: Option<&str>) -> bool {
    matches!(ep, Endpoint::UserConversations { user: u, last: true, .. } if user.is_none_or(|x| x == u))
}

/// A journal, read by checks.
#[derive(Clone, Debug)]
pub struct History<'a> {
    entries: &'a [Entry],
    /// The client instance each entry is attributed to: the one it named, or the one that used
    /// the token it presented.
    owners: Vec<Option<&'a InstanceId>>,
    settles: Vec<Settle>,
    /// Where each event was published: event seq → journal seq.
    published: BTreeMap<u64, u64>,
    /// Where each event socket was opened: socket number → journal seq.
    opened: BTreeMap<u64, u64>,
    /// The positions of each instance's entries, in order (checks ask per instance, and a
    /// simulated year has hundreds of instances).
    by_owner: BTreeMap<&'a InstanceId, Vec<usize>>,
    /// The positions of the harness's commands, in order.
    command_at: Vec<usize>,
    /// The position of each request's reply, by request id.
    reply_at: BTreeMap<u64, usize>,
    /// The positions of the backend's push binding facts, in order.
    binding_at: Vec<usize>,
}

impl<'a> History<'a> {
    /// The history of `entries` (one scenario's journal, in order).
    pub fn new(entries: &'a [Entry]) -> Self {
        let mut settle_commands = BTreeMap::new();
        let mut settles = Vec::new();
        let mut published = BTreeMap::new();
        let mut opened = BTreeMap::new();
        let tokens = token_owners(entries);
        // Which instances are live at each entry (created, not yet shut down or killed), and
        // which have ended: an app is one process, so a token of an instance that ended,
        // presented while exactly one other instance lives, is that instance's (a stored token
        // used again after a restart, a previous identity's kept to unregister its device).
        // A client being started counts as live from its `start` (it connects before it says it
        // exists): the instance each `start` went on to create.
        let mut created_by: BTreeMap<u64, &InstanceId> = BTreeMap::new();
        let mut last_start = None;
        for e in entries {
            match (e.observation(), e.command()) {
                (_, Some((_, Command::Start { .. }))) => last_start = Some(e.seq),
                (Some(Observation::ClientCreated { instance }), _) => {
                    if let Some(start) = last_start.take() {
                        created_by.insert(start, instance);
                    }
                }
                _ => {}
            }
        }
        let mut live: Vec<&InstanceId> = Vec::new();
        let mut starting: Option<&InstanceId> = None;
        let mut ended: BTreeSet<&InstanceId> = BTreeSet::new();
        let mut owners: Vec<Option<&InstanceId>> = Vec::with_capacity(entries.len());
        for e in entries {
            match (e.observation(), e.command()) {
                (_, Some((_, Command::Start { .. }))) => {
                    starting = created_by.get(&e.seq).copied();
                }
                (Some(Observation::ClientCreated { instance }), _) => {
                    starting = None;
                    live.retain(|i| *i != instance);
                    live.push(instance);
                }
                (Some(Observation::ClientShutDown { instance }), _) => {
                    live.retain(|i| *i != instance);
                    ended.insert(instance);
                }
                (_, Some((_, Command::Kill))) => ended.extend(live.drain(..)),
                _ => {}
            }
            let owner = e.instance.as_ref().or_else(|| {
                let by_token = token_of(e).and_then(|t| tokens.get(t).copied())?;
                let current = match (live.as_slice(), starting) {
                    ([only], None) => Some(*only),
                    ([], Some(next)) => Some(next),
                    _ => None,
                };
                Some(match current {
                    Some(c) if ended.contains(by_token) && c != by_token => c,
                    _ => by_token,
                })
            });
            owners.push(owner);
        }
        // A socket's close (and a frame written to it) belongs to whoever opened it.
        let mut socket_owner = BTreeMap::new();
        for (e, owner) in entries.iter().zip(owners.iter_mut()) {
            match &e.kind {
                EntryKind::Backend(Fact::Connected { socket, .. }) => {
                    if let Some(o) = *owner {
                        socket_owner.insert(*socket, o);
                    }
                }
                EntryKind::Backend(Fact::Disconnected { socket }) if owner.is_none() => {
                    *owner = socket_owner.get(socket).copied();
                }
                EntryKind::Backend(Fact::Frame(f)) if owner.is_none() => {
                    *owner = f.socket.and_then(|s| socket_owner.get(&s).copied());
                }
                _ => {}
            }
        }
        for e in entries {
            if let Some((id, Command::Settle)) = e.command() {
                settle_commands.insert(id, e.seq);
            } else if let Some(command) = e.reply().and_then(|r| settle_commands.get(&r.id)) {
                settles.push(Settle {
                    command: *command,
                    reply: e.seq,
                });
            } else if let Some(p) = e.published() {
                published.insert(p.event_seq, e.seq);
            } else if let EntryKind::Backend(Fact::Connected { socket, .. }) = &e.kind {
                opened.insert(*socket, e.seq);
            }
        }
        let mut by_owner: BTreeMap<&InstanceId, Vec<usize>> = BTreeMap::new();
        for (i, owner) in owners.iter().enumerate() {
            if let Some(o) = owner {
                by_owner.entry(o).or_default().push(i);
            }
        }
        let command_at = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.command().is_some())
            .map(|(i, _)| i)
            .collect();
        let mut reply_at = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(r) = e.reply() {
                reply_at.entry(r.id).or_insert(i);
            }
        }
        let binding_at = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.kind, EntryKind::Backend(Fact::Binding(_))))
            .map(|(i, _)| i)
            .collect();
        Self {
            entries,
            owners,
            settles,
            published,
            opened,
            by_owner,
            command_at,
            reply_at,
            binding_at,
        }
    }

    /// The client instance `entry` is attributed to.
    pub fn owner(&self, entry: &Entry) -> Option<&'a InstanceId> {
        let i = usize::try_from(entry.seq.checked_sub(1)?).ok()?;
        self.owners.get(i).copied().flatten()
    }

    /// Requests no client instance can be attributed to: no `X-Convo-Client` header, and a
    /// token (if any) no instance used.
    pub fn unattributed_requests(&self) -> Vec<&'a Entry> {
        self.entries
            .iter()
            .zip(&self.owners)
            // The token generator is the app's server, not the client stack: a token request
            // made for a start that never created a client has no instance, and is judged by
            // identity (TOKEN-1, TOKEN-2).
            .filter(|(e, owner)| {
                e.request().is_some_and(|r| r.endpoint != Endpoint::Token) && owner.is_none()
            })
            .map(|(e, _)| e)
            .collect()
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &'a [Entry] {
        self.entries
    }

    /// The entry with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&'a Entry> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.entries.get(i).filter(|e| e.seq == seq)
    }

    /// The client instances that appear, in order of first appearance.
    pub fn instances(&self) -> Vec<&'a InstanceId> {
        let mut seen = BTreeSet::new();
        self.owners
            .iter()
            .flatten()
            .copied()
            .filter(|i| seen.insert(*i))
            .collect()
    }

    /// The entries attributed to `instance` (by the instance they name, or by their token).
    pub fn of(&self, instance: &'a InstanceId) -> impl Iterator<Item = &'a Entry> + 'a {
        let entries = self.entries;
        self.by_owner
            .get(instance)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(move |i| &entries[i])
    }

    /// The requests `instance` made, with their entries.
    pub fn requests(
        &self,
        instance: &'a InstanceId,
    ) -> impl Iterator<Item = (&'a Entry, &'a RequestFact)> + 'a {
        self.of(instance)
            .filter_map(|e| e.request().map(|r| (e, r)))
    }

    /// The first request `instance` made that was answered 2xx and matches `pred`.
    pub fn first_served(
        &self,
        instance: &'a InstanceId,
        pred: impl Fn(&Endpoint) -> bool,
    ) -> Option<&'a Entry> {
        self.requests(instance)
            .find(|(_, r)| r.succeeded() && pred(&r.endpoint))
            .map(|(e, _)| e)
    }

    /// Every command the harness sent: its entry, request id and the command.
    pub fn commands(&self) -> impl Iterator<Item = (&'a Entry, u64, &'a Command)> + 'a {
        let entries = self.entries;
        self.command_at.clone().into_iter().filter_map(move |i| {
            let e = &entries[i];
            e.command().map(|(id, c)| (e, id, c))
        })
    }

    /// The backend's push binding facts, in order.
    pub fn binding_facts(&self) -> impl Iterator<Item = &'a Entry> + 'a {
        let entries = self.entries;
        self.binding_at
            .clone()
            .into_iter()
            .map(move |i| &entries[i])
    }

    /// The reply to request `id`, if it came.
    pub fn reply_to(&self, id: u64) -> Option<(&'a Entry, &'a ReplyRecord)> {
        let e = &self.entries[*self.reply_at.get(&id)?];
        e.reply().map(|r| (e, r))
    }

    /// Every answered `settle`, in order of their replies.
    pub fn settles(&self) -> &[Settle] {
        &self.settles
    }

    /// The first answered `settle` sent after entry `seq`: whatever the backend published
    /// before `seq` the client has processed by its reply.
    pub fn settle_after(&self, seq: u64) -> Option<Settle> {
        self.settles.iter().copied().find(|s| s.command > seq)
    }

    /// The first `settle` answered after entry `seq`: a request served before `seq` has been
    /// answered, and the answer processed, by then (a settled client has nothing in flight).
    pub fn settled_after(&self, seq: u64) -> Option<Settle> {
        self.settles.iter().copied().find(|s| s.reply > seq)
    }

    /// The last `settle` answered before entry `seq`.
    pub fn last_settle_before(&self, seq: u64) -> Option<Settle> {
        self.settles.iter().copied().rev().find(|s| s.reply < seq)
    }

    /// Where the event a frame carries was published (the frame's own entry if unknown).
    pub fn publication_of(&self, frame: &Entry) -> u64 {
        frame
            .frame()
            .and_then(|f| self.published.get(&f.event_seq))
            .copied()
            .unwrap_or(frame.seq)
    }

    /// From where a settle covers the event `frame` carries: its publication, or, for an event
    /// replayed on a socket opened after it was published (a reconnect), that socket's opening
    /// (the hub writes the replay before it answers any ping on the new socket).
    pub fn delivery_point(&self, frame: &Entry) -> u64 {
        let published = self.publication_of(frame);
        frame
            .frame()
            .and_then(|f| f.socket)
            .and_then(|s| self.opened.get(&s))
            .map_or(published, |opened| published.max(*opened))
    }

    /// The first `settle` by whose reply the client has processed the event `frame` carries.
    pub fn settle_after_frame(&self, frame: &Entry) -> Option<Settle> {
        self.settle_after(self.delivery_point(frame))
    }

    /// The first final page of `instance`'s subscribed list served to it.
    pub fn final_page(&self, instance: &'a InstanceId) -> Option<&'a Entry> {
        self.first_served(instance, |ep| is_final_page(ep, None))
    }

    /// Every request for the final page of `user`'s subscribed list, however it was answered.
    pub fn final_page_requests(
        &self,
        user: &'a str,
    ) -> impl Iterator<Item = (&'a Entry, &'a RequestFact)> + 'a {
        self.entries.iter().filter_map(move |e| {
            e.request()
                .filter(|r| is_final_page(&r.endpoint, Some(user)))
                .map(|r| (e, r))
        })
    }

    /// The first final page of `user`'s subscribed list served to anyone.
    pub fn final_page_of(&self, user: &'a str) -> Option<&'a Entry> {
        self.final_page_requests(user)
            .find(|(_, r)| r.succeeded())
            .map(|(e, _)| e)
    }

    /// Where `instance` had what a conversation's synchronization needs: its own resource and
    /// its participants, both served to it.
    pub fn conversation_synced_at(
        &self,
        instance: &'a InstanceId,
        sid: &ConversationSid,
    ) -> Option<u64> {
        let meta = self.first_served(
            instance,
            |ep| matches!(ep, Endpoint::GetConversation { sid: s } if s == sid),
        )?;
        let parts = self.first_served(
            instance,
            |ep| matches!(ep, Endpoint::Participants { sid: s } if s == sid),
        )?;
        Some(meta.seq.max(parts.seq))
    }

    /// Where, in the journal, `instance` had everything its initial synchronization needs: the
    /// final page of the subscribed list, and the metadata and participants of every
    /// conversation the pages listed, all served to it. `Err` says what is still missing.
    pub fn sync_complete_at(&self, instance: &'a InstanceId) -> Result<u64, String> {
        let final_page = self
            .final_page(instance)
            .ok_or("the final page of the subscribed list had not been served")?;
        let mut listed: Vec<&ConversationSid> = Vec::new();
        let mut meta: BTreeMap<&ConversationSid, u64> = BTreeMap::new();
        let mut parts: BTreeMap<&ConversationSid, u64> = BTreeMap::new();
        // A conversation removed while the client synchronized is not needed any more.
        let removed: BTreeSet<&ConversationSid> = self
            .of(instance)
            .filter_map(|e| e.frame())
            .filter(|f| f.event == EventType::ConversationRemoved)
            .filter_map(|f| f.conversation())
            .collect();
        for (e, r) in self.requests(instance).filter(|(_, r)| r.succeeded()) {
            match &r.endpoint {
                Endpoint::UserConversations { items, .. } if e.seq <= final_page.seq => {
                    listed.extend(items)
                }
                Endpoint::GetConversation { sid } => {
                    meta.entry(sid).or_insert(e.seq);
                }
                Endpoint::Participants { sid } => {
                    parts.entry(sid).or_insert(e.seq);
                }
                _ => {}
            }
        }
        let mut done = final_page.seq;
        for sid in listed.into_iter().filter(|sid| !removed.contains(sid)) {
            let m = meta
                .get(sid)
                .ok_or_else(|| format!("conversation {sid} had not been fetched"))?;
            let p = parts
                .get(sid)
                .ok_or_else(|| format!("the participants of {sid} had not been fetched"))?;
            done = done.max(*m).max(*p);
        }
        Ok(done)
    }

    /// Whether a page served to `instance` after entry `seq` listed `sid`.
    pub fn listed_after(&self, instance: &'a InstanceId, sid: &ConversationSid, seq: u64) -> bool {
        self.requests(instance).any(|(e, r)| {
            e.seq > seq
                && r.succeeded()
                && matches!(&r.endpoint, Endpoint::UserConversations { items, .. } if items.contains(sid))
        })
    }

    /// `instance`'s walk through its subscribed list: from its first page request to the final
    /// page served (open-ended while that never came).
    pub fn fetch_window(&self, instance: &'a InstanceId) -> Option<(u64, Option<u64>)> {
        let first = self
            .requests(instance)
            .find(|(_, r)| matches!(r.endpoint, Endpoint::UserConversations { .. }))?
            .0
            .seq;
        Some((first, self.final_page(instance).map(|e| e.seq)))
    }

    /// One-line summaries of `seqs`, joined for evidence.
    pub fn quote(&self, seqs: &[u64]) -> String {
        seqs.iter()
            .filter_map(|s| self.get(*s))
            .map(Entry::summary)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}
