//! One-line human descriptions of journal entries, as traces and evidence quote them:
//! `#12 t+1.000s [ref-1] POST /v1/Conversations/CH... → 200 (revision 3)`.

use serde::Serialize;

use super::{Checkpoint, Entry, EntryKind, HarnessEntry};
use crate::backend::{Endpoint, Fact, FrameFact, Layer, RefusedFact, RequestFact, TokenNotice};

fn json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn request(r: &RequestFact) -> String {
    let mut s = format!("{} {}", r.method, r.path);
    if let Some(q) = &r.query {
        s.push('?');
        s.push_str(q);
    }
    s.push_str(&format!(" → {}", r.status));
    if let (
        Endpoint::UserConversations {
            page, last, items, ..
        },
        200,
    ) = (&r.endpoint, r.status)
    {
        s.push_str(&format!(
            " (page {}{}: {} conversation(s){})",
            u64::from(*page) + 1,
            if *last { ", the last" } else { "" },
            items.len(),
            match (items.first(), items.last()) {
                (Some(a), Some(b)) if items.len() > 1 => format!(", {a} … {b}"),
                (Some(a), _) => format!(", {a}"),
                _ => String::new(),
            }
        ));
    }
    if let Some(rev) = r.revision {
        s.push_str(&format!(" (revision {rev})"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(": {e}"));
    }
    s
}

fn refused(r: &RefusedFact) -> String {
    let layer = match r.layer {
        Layer::Http => "HTTP",
        Layer::WebSocket => "WebSocket",
    };
    let mut s = format!("{layer} input refused ({})", r.cause);
    if let Some(line) = &r.request_line {
        s.push_str(&format!(": `{line}`"));
    }
    if let Some(status) = r.status {
        s.push_str(&format!(" → {status}"));
    }
    if let Some(code) = r.close_code {
        s.push_str(&format!(" → close {code}"));
    }
    s.push_str(&format!(": {}", r.detail));
    s
}

fn frame(f: &FrameFact) -> String {
    format!(
        "event {} about {}{} at revision {} (event seq {}) sent to the client's socket",
        f.event,
        f.target
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string),
        f.index
            .map_or_else(String::new, |i| format!(" message {i}")),
        f.revision.map_or_else(|| "?".to_owned(), |r| r.to_string()),
        f.event_seq
    )
}

/// Who takes part in a journal entry, as a sequence diagram draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The harness: scenario steps, controls, checkpoints.
    Harness,
    /// The client under test (through its adapter).
    Client,
    /// The backend's REST face.
    Rest,
    /// The backend's event channel.
    Events,
}

/// An entry as a sequence diagram draws it: an arrow from one party to another, or a note
/// over one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A request or command: `from` asks `to`.
    Call(Party, Party),
    /// An answer: `from` answers `to`.
    Answer(Party, Party),
    /// A push `from` one party `to` another (an event, an observation).
    Push(Party, Party),
    /// Something that broke off between `from` and `to` (a refusal, a close, a drop).
    Broken(Party, Party),
    /// A note over a party.
    Note(Party),
}

impl Entry {
    /// Who this entry is between, for a sequence diagram.
    pub fn flow(&self) -> Flow {
        use Party::{Client, Events, Harness, Rest};
        match &self.kind {
            EntryKind::Backend(Fact::Request(_)) => Flow::Call(Client, Rest),
            EntryKind::Backend(Fact::Refused(r)) => match r.layer {
                Layer::Http => Flow::Broken(Rest, Client),
                Layer::WebSocket => Flow::Broken(Events, Client),
            },
            EntryKind::Backend(Fact::Frame(_)) => Flow::Push(Events, Client),
            EntryKind::Backend(Fact::Published(_) | Fact::Binding(_)) => Flow::Note(Rest),
            EntryKind::Backend(Fact::Connected { .. }) => Flow::Call(Client, Events),
            EntryKind::Backend(Fact::Disconnected { .. }) => Flow::Broken(Events, Client),
            EntryKind::Backend(Fact::Dropped(d)) => match d.port {
                crate::backend::Port::Rest => Flow::Broken(Rest, Client),
                crate::backend::Port::Events => Flow::Broken(Events, Client),
            },
            EntryKind::Backend(Fact::Control(_)) => Flow::Call(Harness, Rest),
            EntryKind::Backend(Fact::Token(t)) => match t.notice {
                TokenNotice::Updated => Flow::Call(Client, Events),
                TokenNotice::Rejected => Flow::Answer(Events, Client),
                TokenNotice::AboutToExpire => Flow::Push(Events, Client),
                TokenNotice::Expired => Flow::Broken(Events, Client),
            },
            EntryKind::Harness(HarnessEntry::Command { .. }) => Flow::Call(Harness, Client),
            EntryKind::Harness(HarnessEntry::Reply(_)) => Flow::Answer(Client, Harness),
            EntryKind::Harness(HarnessEntry::Observation { .. }) => Flow::Push(Client, Harness),
            EntryKind::Harness(HarnessEntry::Log { .. }) => Flow::Note(Client),
            EntryKind::Harness(
                HarnessEntry::Restless { .. }
                | HarnessEntry::TimePassed { .. }
                | HarnessEntry::Checkpoint(_),
            ) => Flow::Note(Harness),
        }
    }

    /// A one-line human description: `#12 t+1.000s [ref-1] POST /v1/... → 200 (revision 3)`.
    pub fn summary(&self) -> String {
        let who = self
            .instance
            .as_ref()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
        format!("#{} {}{who} {}", self.seq, self.at, self.describe())
    }

    /// What happened, without the sequence number, time and instance of [`Entry::summary`].
    pub fn describe(&self) -> String {
        match &self.kind {
            EntryKind::Backend(Fact::Request(r)) => request(r),
            EntryKind::Backend(Fact::Refused(r)) => refused(r),
            EntryKind::Backend(Fact::Frame(f)) => frame(f),
            EntryKind::Backend(Fact::Published(p)) => format!(
                "event {} about {} at revision {} published (event seq {}) for {}",
                p.event,
                p.target
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), ToString::to_string),
                p.revision.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                p.event_seq,
                p.audience.join(", ")
            ),
            EntryKind::Backend(Fact::Connected { socket, since, .. }) => match since {
                Some(s) => format!("event socket {socket} opened, replaying after seq {s}"),
                None => format!("event socket {socket} opened"),
            },
            EntryKind::Backend(Fact::Disconnected { socket }) => {
                format!("event socket {socket} closed")
            }
            EntryKind::Backend(Fact::Dropped(d)) => format!(
                "{} connection dropped unanswered (half-open network){}",
                match d.port {
                    crate::backend::Port::Rest => "REST",
                    crate::backend::Port::Events => "event channel",
                },
                d.target
                    .as_ref()
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
            ),
            EntryKind::Backend(Fact::Binding(b)) => b.to_string(),
            EntryKind::Backend(Fact::Control(c)) => format!("harness: {c}"),
            EntryKind::Backend(Fact::Token(t)) => {
                let socket = t.socket;
                let (token, at) = (&t.token, t.expires_at);
                match t.notice {
                    TokenNotice::AboutToExpire => format!(
                        "event socket {socket}: token {token} about to expire (at {at}) sent"
                    ),
                    TokenNotice::Expired => format!(
                        "event socket {socket}: token {token} expired, socket closed (4410)"
                    ),
                    TokenNotice::Updated => format!(
                        "event socket {socket}: client handed over token {token} (expires {at})"
                    ),
                    TokenNotice::Rejected => format!(
                        "event socket {socket}: token {token} handed over and refused ({})",
                        t.code.unwrap_or_default()
                    ),
                }
            }
            EntryKind::Harness(HarnessEntry::Command { id, command }) => {
                format!("command {id}: {}", json(command))
            }
            EntryKind::Harness(HarnessEntry::Reply(r)) => {
                format!(
                    "reply to command {} ({}): {}",
                    r.id,
                    r.command,
                    json(&r.outcome)
                )
            }
            EntryKind::Harness(HarnessEntry::Observation { observation }) => {
                format!("observed {}", json(observation))
            }
            EntryKind::Harness(HarnessEntry::Log { line }) => format!("log: {line}"),
            EntryKind::Harness(HarnessEntry::Restless { rounds }) => {
                format!("harness: the client was still busy after {rounds} settle rounds; going on")
            }
            EntryKind::Harness(HarnessEntry::TimePassed { ms }) => {
                format!("harness: {ms} ms of virtual time pass")
            }
            EntryKind::Harness(HarnessEntry::Checkpoint(Checkpoint::SubscribedList {
                user,
                conversations,
            })) => format!(
                "harness: the backend lists {} conversation(s) for {user}",
                conversations.len()
            ),
            EntryKind::Harness(HarnessEntry::Checkpoint(Checkpoint::Counts(t))) => format!(
                "harness: the backend counts {} participant(s), {} message(s) and {} unread for {} in {}",
                t.participants,
                t.messages,
                t.unread
                    .map_or_else(|| "unknown (null)".to_owned(), |n| n.to_string()),
                t.identity,
                t.conversation
            ),
            EntryKind::Harness(HarnessEntry::Checkpoint(Checkpoint::CountCacheLifetime { ms })) => {
                format!("harness: count reads are judged with a cache lifetime of {ms} ms")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::{Endpoint, Fact, RequestFact};
    use crate::clock::VirtualClock;
    use crate::journal::{EntryKind, Journal};
    use crate::secrets::Secrets;

    #[test]
    fn a_page_summary_is_total_for_any_page_number() {
        let j = Journal::new(VirtualClock::new(), Secrets::default());
        for page in [0, 1, u32::MAX - 1, u32::MAX] {
            j.record(
                None,
                EntryKind::Backend(Fact::Request(RequestFact {
                    method: "GET".into(),
                    path: "/v1/Users/alice/Conversations".into(),
                    query: None,
                    endpoint: Endpoint::UserConversations {
                        user: "alice".into(),
                        page,
                        last: true,
                        items: Vec::new(),
                    },
                    status: 200,
                    revision: None,
                    attributes: None,
                    token: None,
                    error: None,
                    issued: None,
                    token_in_url: false,
                })),
            );
        }
        let lines: Vec<String> = j.snapshot().iter().map(|e| e.summary()).collect();
        assert!(
            lines[3].contains("page 4294967296, the last"),
            "{}",
            lines[3]
        );
    }
}
