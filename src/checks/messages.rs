//! Checks for the MSG rules: loading fetches no messages; updates and removals are reported for
//! fetched messages only.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckOutcome, of_instance};
use crate::adapter::{Command, Observation, Outcome};
use crate::backend::journal::{Endpoint, Entry, EntryKind, InstanceId};
use crate::rules::ids::{MSG_1, MSG_2};

/// MSG-1: no message list request reached the backend before the app asked for messages.
pub fn no_messages_before_asked(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let asked = entries
        .iter()
        .find(|e| {
            matches!(
                &e.kind,
                EntryKind::Command {
                    command: Command::FetchMessages { .. },
                    ..
                }
            )
        })
        .map_or(u64::MAX, |e| e.seq);
    let early = of_instance(entries, instance).find(|e| {
        e.seq < asked
            && matches!(
                &e.kind,
                EntryKind::Request {
                    endpoint: Endpoint::Messages { .. },
                    ..
                }
            )
    });
    match early {
        Some(e) => CheckOutcome::fail(
            MSG_1,
            format!(
                "{} fetched messages although the app had not asked for any",
                e.summary()
            ),
            vec![e.seq],
        ),
        None => CheckOutcome::pass(MSG_1, "no message was fetched before the app asked"),
    }
}

/// The message indices the app received from its `fetch_messages` commands, per conversation.
fn fetched(entries: &[Entry]) -> BTreeMap<String, BTreeSet<u64>> {
    let mut asked: BTreeMap<u64, String> = BTreeMap::new();
    let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for e in entries {
        match &e.kind {
            EntryKind::Command {
                id,
                command: Command::FetchMessages { conversation, .. },
            } => {
                asked.insert(*id, conversation.clone());
            }
            EntryKind::Reply {
                id,
                outcome: Outcome::Ok(body),
            } => {
                if let Some(sid) = asked.get(id) {
                    let got = body["messages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i.as_u64());
                    out.entry(sid.clone()).or_default().extend(got);
                }
            }
            _ => {}
        }
    }
    out
}

/// MSG-2: for every `message_updated` / `message_removed` frame delivered to the client, an
/// observation of it was reported if the app had fetched that message, and none otherwise.
pub fn changes_reported_for_fetched_only(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let fetched = fetched(entries);
    let mut judged = 0;
    let mut used: BTreeSet<u64> = BTreeSet::new();
    for f in of_instance(entries, instance) {
        let EntryKind::Frame {
            event,
            target: Some(sid),
            event_seq,
            index: Some(index),
            ..
        } = &f.kind
        else {
            continue;
        };
        let index = *index;
        let removed = event == "message_removed";
        if event != "message_updated" && !removed {
            continue;
        }
        judged += 1;
        let was_fetched = fetched.get(sid).is_some_and(|s| s.contains(&index));
        // The matching report: same kind, same message, after the frame, not used before.
        let reported = of_instance(entries, instance).find(|o| {
            o.seq > f.seq
                && !used.contains(&o.seq)
                && match &o.kind {
                    EntryKind::Observation {
                        observation:
                            Observation::MessageUpdated {
                                conversation,
                                index: i,
                            },
                    } => !removed && conversation == sid && *i == index,
                    EntryKind::Observation {
                        observation:
                            Observation::MessageRemoved {
                                conversation,
                                index: i,
                            },
                    } => removed && conversation == sid && *i == index,
                    _ => false,
                }
        });
        if let Some(o) = reported {
            used.insert(o.seq);
        }
        let what = if removed { "removal" } else { "edit" };
        match (was_fetched, reported) {
            (true, None) => {
                return CheckOutcome::fail(
                    MSG_2,
                    format!(
                        "the {what} of fetched message {index} of {sid} (event seq {event_seq}, {}) was never reported",
                        f.summary()
                    ),
                    vec![f.seq],
                );
            }
            (false, Some(o)) => {
                return CheckOutcome::fail(
                    MSG_2,
                    format!(
                        "the {what} of message {index} of {sid}, which the app never fetched, was reported ({})",
                        o.summary()
                    ),
                    vec![f.seq, o.seq],
                );
            }
            _ => {}
        }
    }
    if judged == 0 {
        return CheckOutcome::fail(
            MSG_2,
            "no message edit or removal reached the client, so nothing was judged",
            vec![],
        );
    }
    CheckOutcome::pass(
        MSG_2,
        format!("{judged} message change(s): reported exactly for the fetched messages"),
    )
}
