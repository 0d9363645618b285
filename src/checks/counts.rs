//! Checks for count reads (COUNT-1..3).
//!
//! They read every `get_count` command with the counts truth the harness journaled just before
//! it (a `counts` checkpoint: the backend's value of each count and the instant it last
//! changed), the reply, the count requests the backend saw, and the count-cache lifetime the
//! scenario is judged with (a `count_cache_lifetime` checkpoint; the documented 5 s without
//! one).
//!
//! A count request is attributed to the counts it can answer: the conversation's `Counts`
//! resource carries both the participant and the message count, so a request for it is a
//! request for both keys; the user's view of a conversation carries the unread count.

use std::time::Duration;

use super::history::History;
use super::{Check, Finding, fold};
use crate::adapter::{Command, CountKind, Outcome, ReplyBody};
use crate::backend::{CountsTruth, Endpoint};
use crate::clock::VirtualInstant;
use crate::journal::{Checkpoint, Entry};
use crate::wire::{ConversationSid, InstanceId};

/// The documented count-cache lifetime.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(5);
/// How long past the lifetime a changed count must be read correctly.
const GRACE: Duration = Duration::from_secs(1);

/// One `get_count` the harness sent.
struct Read<'a> {
    command: &'a Entry,
    instance: Option<&'a InstanceId>,
    conversation: &'a ConversationSid,
    kind: CountKind,
    /// The backend's counts just before the command.
    truth: Option<&'a CountsTruth>,
    /// The reply, when it came: its entry and outcome.
    reply: Option<(&'a Entry, &'a Outcome)>,
}

impl Read<'_> {
    /// The truth of the count this read asked for, and when it last changed.
    fn truth(&self) -> Option<(Option<u64>, VirtualInstant)> {
        let t = self.truth?;
        Some(match self.kind {
            CountKind::Participants => (Some(t.participants), t.participants_changed),
            CountKind::Messages => (Some(t.messages), t.messages_changed),
            CountKind::Unread => (t.unread, t.unread_changed),
        })
    }

    /// The count the client answered.
    fn answered(&self) -> Option<Option<u64>> {
        match self.reply?.1 {
            Outcome::Ok(ReplyBody::Count { count }) => Some(*count),
            _ => None,
        }
    }

    fn same_key(&self, other: &Read<'_>) -> bool {
        self.instance == other.instance
            && self.conversation == other.conversation
            && self.kind == other.kind
    }
}

fn kind_name(kind: CountKind) -> &'static str {
    match kind {
        CountKind::Participants => "participants",
        CountKind::Messages => "messages",
        CountKind::Unread => "unread",
    }
}

fn show(count: Option<u64>) -> String {
    count.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn reads<'a>(h: &History<'a>) -> Vec<Read<'a>> {
    let entries = h.entries();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Some((id, Command::GetCount { conversation, kind })) = e.command() else {
            continue;
        };
        // The checkpoint journaled for it: the nearest one before, since the last command.
        let truth = entries[..i]
            .iter()
            .rev()
            .take_while(|x| x.command().is_none())
            .find_map(|x| match x.checkpoint() {
                Some(Checkpoint::Counts(t)) if t.conversation == *conversation => Some(t),
                _ => None,
            });
        out.push(Read {
            command: e,
            instance: e.instance.as_ref(),
            conversation,
            kind: *kind,
            truth,
            reply: h.reply_to(id).map(|(r, rec)| (r, &rec.outcome)),
        });
    }
    out
}

/// The count-cache lifetime judged with at entry `seq`.
fn lifetime_at(h: &History<'_>, seq: u64) -> Duration {
    h.entries()
        .iter()
        .take_while(|e| e.seq <= seq)
        .filter_map(|e| match e.checkpoint() {
            Some(Checkpoint::CountCacheLifetime { ms }) => Some(Duration::from_millis(*ms)),
            _ => None,
        })
        .last()
        .unwrap_or(DEFAULT_LIFETIME)
}

/// The count keys a request can answer.
fn request_keys(ep: &Endpoint) -> Vec<(&ConversationSid, CountKind)> {
    match ep {
        Endpoint::Counts { sid } => {
            vec![(sid, CountKind::Participants), (sid, CountKind::Messages)]
        }
        Endpoint::UserConversation { sid, .. } => vec![(sid, CountKind::Unread)],
        _ => Vec::new(),
    }
}

/// COUNT-1: count reads are cached: one key is requested at most once per lifetime.
pub(crate) static ONE_REQUEST_PER_LIFETIME: Check = Check {
    name: "one count is requested at most once per cache lifetime",
    fails_when: "the client requested one count of one conversation twice less than the cache lifetime apart",
    judge: |h| {
        let all = reads(h);
        // Provoked: two reads of one key, the second inside the lifetime of the first's answer.
        let provoked: Vec<(&Read<'_>, &Read<'_>)> = all
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let (reply, outcome) = a.reply?;
                if !matches!(outcome, Outcome::Ok(_)) {
                    return None;
                }
                let lifetime = lifetime_at(h, a.command.seq);
                all[i + 1..]
                    .iter()
                    .find(|b| {
                        b.same_key(a)
                            && b.command.seq > reply.seq
                            && b.command.at < reply.at.plus(lifetime)
                    })
                    .map(|b| (a, b))
            })
            .collect();
        // Every count request, judged whatever provoked it.
        let mut served: Vec<(&Entry, &InstanceId, &ConversationSid, CountKind)> = Vec::new();
        for e in h.entries() {
            let (Some(r), Some(owner)) = (e.request(), h.owner(e)) else {
                continue;
            };
            for (sid, kind) in request_keys(&r.endpoint) {
                if let Some((first, ..)) = served
                    .iter()
                    .rev()
                    .find(|(_, o, s, k)| *o == owner && *s == sid && *k == kind)
                {
                    let lifetime = lifetime_at(h, e.seq);
                    if e.at < first.at.plus(lifetime) {
                        return Finding::violated(
                            format!(
                                "{owner} requested the {} count of {sid} again {} ms after it was served ({}, then {}): within the {} ms cache lifetime a read is served from the cache",
                                kind_name(kind),
                                e.at.since(first.at).as_millis(),
                                h.quote(&[first.seq]),
                                h.quote(&[e.seq]),
                                lifetime.as_millis()
                            ),
                            vec![first.seq, e.seq],
                        );
                    }
                }
                if r.succeeded() {
                    served.push((e, owner, sid, kind));
                }
            }
        }
        let cases = provoked.into_iter().map(|(a, b)| {
            let n = all
                .iter()
                .filter(|x| x.same_key(a) && x.command.seq >= a.command.seq)
                .count();
            Finding::held(format!(
                "{} count of {} read {n} time(s) from {} on, again inside the lifetime ({}), one request per lifetime",
                kind_name(a.kind),
                a.conversation,
                h.quote(&[a.command.seq]),
                h.quote(&[b.command.seq])
            ))
        });
        fold(
            cases.collect::<Vec<_>>(),
            "no count was read twice within its cache lifetime",
        )
    },
};

/// COUNT-2: once the cache lifetime has passed since a count changed, a read answers the
/// backend's value.
pub(crate) static CONVERGES_AFTER_LIFETIME: Check = Check {
    name: "a count read a lifetime after the count changed answers the backend's value",
    fails_when: "a count read earlier, then changed, then read again more than the cache lifetime (plus a second) after the change, answered anything but the backend's value",
    judge: |h| {
        let all = reads(h);
        let cases = all.iter().enumerate().filter_map(|(i, r)| {
            let (value, changed) = r.truth()?;
            let lifetime = lifetime_at(h, r.command.seq);
            if r.command.at < changed.plus(lifetime + GRACE) {
                return None;
            }
            // An earlier read of the key that saw the count before this change.
            let earlier = all[..i].iter().rev().find(|x| {
                x.same_key(r) && x.truth().is_some_and(|(_, c)| c < changed)
            })?;
            let (reply, _) = r.reply?;
            let answered = r.answered();
            Some(if answered == Some(value) {
                Finding::held(format!(
                    "the {} count of {} changed after the read {} and, read {} ms after the change, answered {} as the backend has it ({})",
                    kind_name(r.kind),
                    r.conversation,
                    h.quote(&[earlier.command.seq]),
                    r.command.at.since(changed).as_millis(),
                    show(value),
                    h.quote(&[reply.seq])
                ))
            } else {
                Finding::violated(
                    format!(
                        "the {} count of {} was read ({}), then changed to {}, and read again {} ms after the change (past the {} ms lifetime): the client answered {} ({})",
                        kind_name(r.kind),
                        r.conversation,
                        h.quote(&[earlier.command.seq]),
                        show(value),
                        r.command.at.since(changed).as_millis(),
                        lifetime.as_millis(),
                        answered.map_or_else(|| "an error".to_owned(), show),
                        h.quote(&[reply.seq])
                    ),
                    vec![earlier.command.seq, r.command.seq, reply.seq],
                )
            })
        });
        fold(
            cases.collect::<Vec<_>>(),
            "no count was read, changed, and read again past the cache lifetime",
        )
    },
};

/// COUNT-3: without a read horizon the unread count is unknown: null, not a number.
pub(crate) static UNKNOWN_UNREAD_IS_NULL: Check = Check {
    name: "the unread count is null while the user has no read horizon",
    fails_when: "an unread count was answered with a number while the backend had no read horizon for the user",
    judge: |h| {
        let cases = reads(h).into_iter().filter_map(|r| {
            if r.kind != CountKind::Unread {
                return None;
            }
            let (value, _) = r.truth()?;
            if value.is_some() {
                return None;
            }
            let (reply, _) = r.reply?;
            Some(match r.answered()? {
                None => Finding::held(format!(
                    "no read horizon for {} in {}, and the unread count was null ({})",
                    r.truth.map_or("", |t| t.identity.as_str()),
                    r.conversation,
                    h.quote(&[reply.seq])
                )),
                Some(n) => Finding::violated(
                    format!(
                        "the backend had no read horizon in {} for the user, so the unread count is unknown, but the client answered {n} ({})",
                        r.conversation,
                        h.quote(&[reply.seq])
                    ),
                    vec![r.command.seq, reply.seq],
                ),
            })
        });
        fold(
            cases.collect::<Vec<_>>(),
            "no unread count was read while the user had no read horizon",
        )
    },
};
