//! Checks for the subscribed list: creation does not wait for the list; pages and events merge
//! into the backend's truth, each conversation once.

use std::collections::{BTreeMap, BTreeSet};

use super::history::History;
use super::{Check, Finding, fold};
use crate::adapter::{Command, Observation, ReplyBody};
use crate::backend::Endpoint;
use crate::journal::{Checkpoint, Entry};
use crate::wire::{ConversationSid, EventType, InstanceId};

/// A list the client showed right after the harness recorded the backend's truth.
struct Snapshot<'a> {
    truth_entry: &'a Entry,
    truth: BTreeSet<&'a ConversationSid>,
    reply: &'a Entry,
    list: &'a [ConversationSid],
    instance: &'a InstanceId,
}

/// Every `list_conversations` reply, with the command's instance.
fn lists<'a>(h: &History<'a>) -> Vec<(&'a Entry, &'a Entry, &'a [ConversationSid])> {
    h.commands()
        .filter(|(_, _, c)| matches!(c, Command::ListConversations))
        .filter_map(|(cmd, id, _)| {
            let (reply, rec) = h.reply_to(id)?;
            match rec.outcome.ok() {
                Some(ReplyBody::Conversations { conversations }) => {
                    Some((cmd, reply, conversations.as_slice()))
                }
                _ => None,
            }
        })
        .collect()
}

/// Each truth checkpoint paired with the first list the client showed after it.
fn snapshots<'a>(h: &History<'a>) -> Vec<Snapshot<'a>> {
    let all = lists(h);
    h.entries()
        .iter()
        .filter_map(|k| {
            let Some(Checkpoint::SubscribedList { conversations, .. }) = k.checkpoint() else {
                return None;
            };
            let (cmd, reply, list) = all.iter().find(|(cmd, _, _)| cmd.seq > k.seq)?;
            Some(Snapshot {
                truth_entry: k,
                truth: conversations.iter().collect(),
                reply,
                list,
                instance: cmd.instance.as_ref()?,
            })
        })
        .collect()
}

/// Entries of `instance` that tell of `sid`: pages listing it, frames about it, reports.
fn mentions<'a>(h: &History<'a>, instance: &'a InstanceId, sid: &ConversationSid) -> Vec<u64> {
    h.of(instance)
        .filter(|e| {
            e.request().is_some_and(|r| {
                matches!(&r.endpoint, Endpoint::UserConversations { items, .. } if items.contains(sid))
            }) || e.frame().is_some_and(|f| f.conversation() == Some(sid))
                || matches!(
                    e.observation(),
                    Some(
                        Observation::ConversationAdded { conversation }
                            | Observation::ConversationRemoved { conversation }
                    ) if conversation == sid
                )
        })
        .map(|e| e.seq)
        .collect()
}

/// LIST-1: while a page of the subscribed list is held back and the client has settled,
/// `start` has already been answered.
pub(crate) static CREATED_BEFORE_FULL_LIST: Check = Check {
    name: "client creation does not wait for the whole list",
    fails_when: "the client settles while a page of its list is held back, and `start` is still unanswered",
    judge: |h| {
        let findings = h.commands().filter_map(|(cmd, id, c)| {
            let Command::Start { identity, .. } = c else {
                return None;
            };
            // Any page held back (503) before the final page was served.
            let refused = h.entries().iter().find(|e| {
                e.seq > cmd.seq
                    && e.request().is_some_and(|r| {
                        r.status == 503
                            && matches!(&r.endpoint, Endpoint::UserConversations { user, .. } if user == identity)
                    })
            })?;
            let served = h
                .final_page_requests(identity)
                .find(|(e, r)| e.seq > cmd.seq && r.succeeded())
                .map_or(u64::MAX, |(e, _)| e.seq);
            let settle = h
                .settled_after(refused.seq)
                .filter(|s| s.reply < served)?;
            Some(match h.reply_to(id).filter(|(r, _)| r.seq < settle.reply) {
                Some((r, _)) => Finding::held(format!(
                    "the client was created ({}) while a page of the list was held back ({})",
                    r.summary(),
                    refused.summary()
                )),
                None => Finding::violated(
                    format!(
                        "client creation did not complete while a page of the list was held back ({}) and the client settled (#{}): creation waits for the list",
                        refused.summary(),
                        settle.reply
                    ),
                    vec![cmd.seq, refused.seq, settle.reply],
                ),
            })
        });
        fold(
            findings,
            "no client settled while a page of its list was held back",
        )
    },
};

/// LIST-2: every conversation announced to the client while it walked its list (a
/// `conversation_added` frame between its first page request and the final page), still the
/// user's, and listed by no page served after the announcement (so only the event told of it),
/// is in the list the client shows next. It holds only where the client settled on such an
/// announcement before the final page was served.
pub(crate) static ANNOUNCED_DURING_FETCH_LISTED: Check = Check {
    name: "conversations announced during the fetch are listed",
    fails_when: "a conversation announced by an added event while the list was being fetched, still the user's and on no later page, is missing from the client's list",
    judge: |h| {
        let findings = snapshots(h).into_iter().map(|s| {
            let Some((first, last)) = h.fetch_window(s.instance) else {
                return Finding::not_provoked("");
            };
            let end = last.unwrap_or(u64::MAX);
            let announced: Vec<(&Entry, &ConversationSid)> = h
                .of(s.instance)
                .filter(|e| e.seq > first && e.seq < end && e.seq < s.truth_entry.seq)
                .filter_map(|e| {
                    let f = e.frame()?;
                    (f.event == EventType::ConversationAdded)
                        .then_some(())
                        .and(f.conversation())
                        .filter(|sid| s.truth.contains(sid))
                        .filter(|sid| !h.listed_after(s.instance, sid, h.publication_of(e)))
                        .map(|sid| (e, sid))
                })
                .collect();
            if let Some((e, sid)) = announced.iter().find(|(_, sid)| !s.list.contains(sid)) {
                return Finding::violated(
                    format!(
                        "{sid} was announced while the list was being fetched ({}), but is missing from the client's list ({}): the added-listener was attached too late or dropped it",
                        e.summary(),
                        s.reply.summary()
                    ),
                    vec![e.seq, s.reply.seq],
                );
            }
            // Only an announcement the client settled on before the final page was served
            // certainly reached it during the fetch; one it may have handled after the last
            // page provokes nothing.
            let during = announced
                .iter()
                .filter(|(e, _)| h.settle_after_frame(e).is_some_and(|st| st.reply < end))
                .count();
            if during == 0 {
                return Finding::not_provoked("");
            }
            Finding::held(format!(
                "{during} conversation(s) announced during the fetch and processed before its last page, all in the client's list ({})",
                s.reply.summary()
            ))
        });
        fold(
            findings,
            "no conversation still the user's was announced while the client fetched its list",
        )
    },
};

/// LIST-2: the listener is attached before the list is requested: the client's event channel
/// was open (its handshake answered) before its first request for a page of the list.
pub(crate) static LISTENS_BEFORE_FETCH: Check = Check {
    name: "the event channel is open before the list is requested",
    fails_when: "a client requests its subscribed list before its event channel was open",
    judge: |h| {
        let findings = h.instances().into_iter().map(|instance| {
            let Some((first, _)) = h
                .requests(instance)
                .find(|(_, r)| matches!(r.endpoint, Endpoint::UserConversations { .. }))
            else {
                return Finding::not_provoked("");
            };
            let open = h.requests(instance).find(|(_, r)| {
                r.endpoint == Endpoint::EventChannel && r.status == 101
            });
            match open {
                Some((o, _)) if o.seq < first.seq => Finding::held(format!(
                    "the event channel was open ({}) before the first page was requested ({})",
                    o.summary(),
                    first.summary()
                )),
                Some((o, _)) => Finding::violated(
                    format!(
                        "the list was requested ({}) before the event channel was open ({}): conversations added meanwhile are missed",
                        first.summary(),
                        o.summary()
                    ),
                    vec![first.seq, o.seq],
                ),
                None => Finding::violated(
                    format!(
                        "the list was requested ({}) without an event channel open",
                        first.summary()
                    ),
                    vec![first.seq],
                ),
            }
        });
        fold(findings, "no client requested its subscribed list")
    },
};

/// LIST-3: no list the client shows holds a sid twice, and the client never reports a
/// conversation added again without its removal in between.
pub(crate) static EACH_CONVERSATION_ONCE: Check = Check {
    name: "each conversation appears once",
    fails_when: "a list the client shows holds a sid twice, or the client reports a conversation added twice without a removal the backend made in between",
    judge: |h| {
        for (cmd, reply, list) in lists(h) {
            let mut counts: BTreeMap<&ConversationSid, usize> = BTreeMap::new();
            for sid in list {
                *counts.entry(sid).or_default() += 1;
            }
            if let Some((sid, n)) = counts.iter().find(|(_, n)| **n > 1) {
                let told = cmd
                    .instance
                    .as_ref()
                    .map(|i| mentions(h, i, sid))
                    .unwrap_or_default();
                return Finding::violated(
                    format!(
                        "the client's list ({}) holds {sid} {n} times; it learned of it from: {}",
                        reply.summary(),
                        h.quote(&told)
                    ),
                    told.into_iter().chain([reply.seq]).collect(),
                );
            }
        }
        let findings = h.instances().into_iter().map(|instance| {
            let mut present: BTreeMap<&ConversationSid, u64> = BTreeMap::new();
            let mut learned: BTreeMap<&ConversationSid, usize> = BTreeMap::new();
            let mut removals: BTreeMap<&ConversationSid, usize> = BTreeMap::new();
            let mut twice = None;
            for e in h.of(instance) {
                // What can make a client add the conversation: a page listing it, an added
                // event, or any other event about it that is the client's first news of it (an
                // update that overtook its add). A later update of a listed conversation is not.
                let sources: Vec<&ConversationSid> = match (e.request(), e.frame()) {
                    (Some(r), _) if r.succeeded() => match &r.endpoint {
                        Endpoint::UserConversations { items, .. } => items.iter().collect(),
                        _ => Vec::new(),
                    },
                    (_, Some(f)) if f.event == EventType::ConversationAdded => {
                        f.conversation().into_iter().collect()
                    }
                    (_, Some(f))
                        if matches!(
                            f.event,
                            EventType::ConversationUpdated | EventType::MessageAdded
                        ) =>
                    {
                        f.conversation()
                            .filter(|sid| !learned.contains_key(sid))
                            .into_iter()
                            .collect()
                    }
                    _ => Vec::new(),
                };
                // After a removal the conversation may rightly come back once more.
                if let Some(f) = e.frame().filter(|f| f.event == EventType::ConversationRemoved) {
                    if let Some(sid) = f.conversation() {
                        learned.remove(sid);
                        *removals.entry(sid).or_default() += 1;
                    }
                }
                for sid in sources {
                    let n = learned.entry(sid).or_default();
                    *n += 1;
                    if *n == 2 && twice.is_none() {
                        twice = Some((sid, e.seq));
                    }
                }
                match e.observation() {
                    Some(Observation::ConversationAdded { conversation }) => {
                        if let Some(first) = present.insert(conversation, e.seq) {
                            return Finding::violated(
                                format!(
                                    "{conversation} was added to the app's list twice: first at #{first}, again at {}",
                                    e.summary()
                                ),
                                vec![first, e.seq],
                            );
                        }
                    }
                    // A removal report must answer a removal the backend made: only then may the
                    // conversation be reported added again.
                    Some(Observation::ConversationRemoved { conversation }) => {
                        match removals.get_mut(conversation).filter(|n| **n > 0) {
                            Some(n) => {
                                *n -= 1;
                                present.remove(conversation);
                            }
                            None => {
                                return Finding::violated(
                                    format!(
                                        "{} reports {conversation} removed, but the backend removed nothing the report could answer",
                                        e.summary()
                                    ),
                                    vec![e.seq],
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            let shown = lists(h)
                .into_iter()
                .find(|(cmd, _, _)| cmd.instance.as_ref() == Some(instance) && twice.is_some_and(|(_, at)| cmd.seq > at));
            match (twice, shown) {
                (Some((sid, at)), Some((_, reply, list))) => Finding::held(format!(
                    "{sid} reached the client twice (again at #{at}); its list ({}) holds {} conversation(s), each once",
                    reply.summary(),
                    list.len()
                )),
                _ => Finding::not_provoked(""),
            }
        });
        fold(
            findings,
            "no conversation reached the client from two sources before it showed its list",
        )
    },
};

/// LIST-4: the list the client shows right after the harness recorded the backend's truth
/// equals it, as a set.
pub(crate) static LIST_EQUALS_TRUTH: Check = Check {
    name: "the merged list equals the backend's",
    fails_when: "the client's list, as a set, differs from the backend's subscribed conversations",
    judge: |h| {
        let findings = snapshots(h).into_iter().map(|s| {
            let shown: BTreeSet<&ConversationSid> = s.list.iter().collect();
            let missing: Vec<&&ConversationSid> = s.truth.difference(&shown).collect();
            let extra: Vec<&&ConversationSid> = shown.difference(&s.truth).collect();
            if missing.is_empty() && extra.is_empty() {
                return Finding::held(format!(
                    "the client's list ({}) equals the backend's {} conversation(s)",
                    s.reply.summary(),
                    s.truth.len()
                ));
            }
            // Point at what the client was told about each wrong sid; for a sid it was never
            // told of, at the last page it fetched.
            let mut told: Vec<u64> = missing
                .iter()
                .chain(extra.iter())
                .flat_map(|sid| mentions(h, s.instance, sid))
                .collect();
            if told.is_empty() {
                told.extend(
                    h.requests(s.instance)
                        .filter(|(_, r)| matches!(r.endpoint, Endpoint::UserConversations { .. }))
                        .map(|(e, _)| e.seq)
                        .last(),
                );
            }
            told.sort_unstable();
            told.dedup();
            let join = |v: &[&&ConversationSid]| {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            };
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", join(&missing)));
            }
            if !extra.is_empty() {
                parts.push(format!("holding {} that the backend no longer has", join(&extra)));
            }
            let context = h.quote(&told);
            told.extend([s.truth_entry.seq, s.reply.seq]);
            Finding::violated(
                format!(
                    "the client's list differs from the backend's: {}; what the client saw of them: {context}",
                    parts.join("; ")
                ),
                told,
            )
        });
        fold(
            findings,
            "the harness never compared the client's list with the backend's",
        )
    },
};
