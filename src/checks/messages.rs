//! Checks for messages: loading fetches none; new messages are reported; edits and removals
//! are reported for fetched messages, and only for them.

use super::history::History;
use super::{Check, Finding, fold};
use crate::adapter::{Command, Observation, ReplyBody};
use crate::backend::{Endpoint, FrameFact};
use crate::journal::Entry;
use crate::wire::{ConversationSid, EventType, InstanceId};

/// MSG-1: no message list request reaches the backend before the app first asked for messages.
pub(crate) static NO_FETCH_BEFORE_ASKED: Check = Check {
    name: "loading a conversation fetches no messages",
    fails_when: "a message list request reaches the backend before the app's first `fetch_messages`",
    judge: |h| {
        let findings = h.instances().into_iter().map(|instance| {
            let asked = h
                .commands()
                .find(|(e, _, c)| {
                    e.instance.as_ref() == Some(instance) && matches!(c, Command::FetchMessages { .. })
                })
                .map_or(u64::MAX, |(e, _, _)| e.seq);
            let early = h.requests(instance).find(|(e, r)| {
                e.seq < asked && matches!(r.endpoint, Endpoint::Messages { .. })
            });
            if let Some((e, _)) = early {
                return Finding::violated(
                    format!("{} fetched messages although the app had not asked for any", e.summary()),
                    vec![e.seq],
                );
            }
            // The client loaded a conversation and settled before the app asked for messages.
            let loaded = h.first_served(instance, |ep| matches!(ep, Endpoint::GetConversation { .. }));
            match loaded.and_then(|l| h.settled_after(l.seq).map(|s| (l, s))) {
                Some((l, s)) if s.reply < asked => Finding::held(format!(
                    "conversations were loaded ({}) and the client settled (#{}) without fetching messages before the app asked",
                    l.summary(),
                    s.reply
                )),
                _ => Finding::not_provoked(""),
            }
        });
        fold(
            findings,
            "no client loaded a conversation and settled before the app asked for messages",
        )
    },
};

/// A delivered message event, as a key to match reports against.
fn message_frame(f: &FrameFact) -> Option<(EventType, &ConversationSid, u64)> {
    f.event
        .is_message()
        .then_some(())
        .and(f.conversation())
        .zip(f.index)
        .map(|(sid, i)| (f.event, sid, i))
}

/// A message report, as the same key.
fn message_report(o: &Observation) -> Option<(EventType, &ConversationSid, u64)> {
    match o {
        Observation::MessageAdded {
            conversation,
            index,
        } => Some((EventType::MessageAdded, conversation, *index)),
        Observation::MessageUpdated {
            conversation,
            index,
        } => Some((EventType::MessageUpdated, conversation, *index)),
        Observation::MessageRemoved {
            conversation,
            index,
        } => Some((EventType::MessageRemoved, conversation, *index)),
        _ => None,
    }
}

type Key<'a> = (EventType, &'a ConversationSid, u64);

/// For one instance: every message event delivered and every message report made, each report
/// matched to the earliest unmatched delivered event it reports.
struct Accounting<'a> {
    /// Delivered events: the frame's entry, its key, the report that matched it.
    delivered: Vec<(&'a Entry, Key<'a>, Option<&'a Entry>)>,
    /// Reports that match no delivered event.
    unmatched: Vec<&'a Entry>,
}

impl Accounting<'_> {
    /// A violation for the first report of a `kind` event that matches no delivered event.
    fn unmatched(&self, kind: impl Fn(EventType) -> bool, what: &str) -> Option<Finding> {
        self.unmatched
            .iter()
            .find(|o| {
                o.observation()
                    .and_then(message_report)
                    .is_some_and(|(k, _, _)| kind(k))
            })
            .map(|o| {
                Finding::violated(
                    format!(
                        "{} reports {what} that no delivered event announced, or one already reported",
                        o.summary()
                    ),
                    vec![o.seq],
                )
            })
    }
}

fn account<'a>(h: &History<'a>, instance: &'a InstanceId) -> Accounting<'a> {
    let mut delivered: Vec<(&'a Entry, Key<'a>, Option<&'a Entry>)> = Vec::new();
    let mut unmatched = Vec::new();
    for e in h.of(instance) {
        if let Some(key) = e.frame().and_then(message_frame) {
            delivered.push((e, key, None));
        } else if let Some(key) = e.observation().and_then(message_report) {
            // The earliest unreported event it can answer: an event the client settled on
            // without reporting is closed (a later report is about a later event).
            let open = |f: &Entry| h.settle_after_frame(f).is_none_or(|s| s.reply > e.seq);
            match delivered
                .iter_mut()
                .find(|(f, k, report)| *k == key && report.is_none() && open(f))
            {
                Some(slot) => slot.2 = Some(e),
                None => unmatched.push(e),
            }
        }
    }
    Accounting {
        delivered,
        unmatched,
    }
}

/// MSG-1: every new message delivered to the client is reported by the next settle, once.
pub(crate) static NEW_MESSAGES_REPORTED: Check = Check {
    name: "new messages are reported without fetching",
    fails_when: "a delivered message_added event has no message-added report by the next settle, or a message-added report matches no delivered event",
    judge: |h| {
        let findings = h.instances().into_iter().flat_map(|instance| {
            let a = account(h, instance);
            let extra = a.unmatched(|k| k == EventType::MessageAdded, "a new message");
            let cases: Vec<Finding> = a
                .delivered
                .iter()
                .filter(|(_, (kind, _, _), _)| *kind == EventType::MessageAdded)
                .map(|(f, (_, sid, index), report)| {
                    let Some(settle) = h.settle_after_frame(f) else {
                        return Finding::not_provoked("");
                    };
                    match report.filter(|o| o.seq < settle.reply) {
                        Some(o) => Finding::held(format!(
                            "message {index} of {sid} ({}) was reported ({})",
                            f.summary(),
                            o.summary()
                        )),
                        None => Finding::violated(
                            format!(
                                "message {index} was posted to {sid} and its event delivered ({}), but the client never reported it before it settled (#{})",
                                f.summary(),
                                settle.reply
                            ),
                            vec![f.seq, settle.reply],
                        ),
                    }
                })
                .collect();
            extra.into_iter().chain(cases)
        });
        fold(
            findings,
            "no new message was delivered before the client settled",
        )
    },
};

/// Whether the app had fetched a message when an event about it was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fetch {
    /// Its `fetch_messages` reply listing it came first.
    Fetched,
    /// No fetch listed it.
    Unfetched,
    /// The event was published while a fetch listing it was being answered: the client may
    /// have handled either first, so neither check judges it.
    Unsure,
}

/// What the app of `instance` had fetched of message `index` of `sid` when entry `published`
/// was recorded.
fn fetch_status(
    h: &History<'_>,
    instance: &InstanceId,
    sid: &ConversationSid,
    index: u64,
    published: u64,
) -> Fetch {
    let mut status = Fetch::Unfetched;
    for (cmd, id, command) in h.commands() {
        let Command::FetchMessages { conversation, .. } = command else {
            continue;
        };
        if conversation != sid || cmd.instance.as_ref() != Some(instance) {
            continue;
        }
        let listed = h.reply_to(id).filter(|(_, rec)| {
            matches!(rec.outcome.ok(), Some(ReplyBody::Messages { messages }) if messages.contains(&index))
        });
        let Some((reply, _)) = listed else { continue };
        if reply.seq < published {
            return Fetch::Fetched;
        }
        let served = h.requests(instance).find(|(e, r)| {
            e.seq > cmd.seq && matches!(&r.endpoint, Endpoint::Messages { sid: s } if s == sid)
        });
        if served.is_none_or(|(e, _)| e.seq < published) {
            status = Fetch::Unsure;
        }
    }
    status
}

fn is_change(kind: EventType) -> bool {
    matches!(kind, EventType::MessageUpdated | EventType::MessageRemoved)
}

/// MSG-2: every edit or removal of a message the app fetched is reported by the next settle.
pub(crate) static FETCHED_CHANGES_REPORTED: Check = Check {
    name: "edits and removals of fetched messages are reported",
    fails_when: "an edit or removal of a message the app fetched is delivered and not reported by the next settle",
    judge: |h| {
        let findings = h.instances().into_iter().flat_map(|instance| {
            account(h, instance)
                .delivered
                .into_iter()
                .filter(|(f, (kind, sid, index), _)| {
                    is_change(*kind)
                        && fetch_status(h, instance, sid, *index, h.publication_of(f))
                            == Fetch::Fetched
                })
                .map(|(f, (kind, sid, index), report)| {
                    let Some(settle) = h.settle_after_frame(f) else {
                        return Finding::not_provoked("");
                    };
                    let what = if kind == EventType::MessageRemoved { "removal" } else { "edit" };
                    match report.filter(|o| o.seq < settle.reply) {
                        Some(o) => Finding::held(format!(
                            "the {what} of fetched message {index} of {sid} was reported ({})",
                            o.summary()
                        )),
                        None => Finding::violated(
                            format!(
                                "the {what} of fetched message {index} of {sid} ({}) was never reported before the client settled (#{})",
                                f.summary(),
                                settle.reply
                            ),
                            vec![f.seq, settle.reply],
                        ),
                    }
                })
                .collect::<Vec<_>>()
        });
        fold(
            findings,
            "no edit or removal of a fetched message reached the client",
        )
    },
};

/// MSG-2: the client reports edits and removals only of messages the app fetched: every such
/// report matches a delivered event about a message fetched before it.
pub(crate) static UNFETCHED_CHANGES_SILENT: Check = Check {
    name: "edits and removals of unfetched messages are not reported",
    fails_when: "the client reports an edit or removal of a message the app never fetched, or one no delivered event announced",
    judge: |h| {
        let findings = h.instances().into_iter().flat_map(|instance| {
            let a = account(h, instance);
            let stray = a.unmatched(is_change, "a message change");
            let cases: Vec<Finding> = a
                .delivered
                .iter()
                .filter(|(f, (kind, sid, index), _)| {
                    is_change(*kind)
                        && fetch_status(h, instance, sid, *index, h.publication_of(f))
                            == Fetch::Unfetched
                })
                .map(|(f, (kind, sid, index), report)| {
                    let what = if *kind == EventType::MessageRemoved { "removal" } else { "edit" };
                    match report {
                        Some(o) => Finding::violated(
                            format!(
                                "the {what} of message {index} of {sid}, which the app never fetched ({}), was reported ({})",
                                f.summary(),
                                o.summary()
                            ),
                            vec![f.seq, o.seq],
                        ),
                        None => match h.settle_after_frame(f) {
                            Some(s) => Finding::held(format!(
                                "the {what} of unfetched message {index} of {sid} was not reported by the time the client settled (#{})",
                                s.reply
                            )),
                            None => Finding::not_provoked(""),
                        },
                    }
                })
                .collect();
            stray.into_iter().chain(cases)
        });
        fold(
            findings,
            "no edit or removal of an unfetched message reached the client",
        )
    },
};
