//! Checks for the LIST rules: creation does not wait for the list; pages and events merge into
//! the backend's truth, each conversation once.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckOutcome, of_instance};
use crate::adapter::Observation;
use crate::backend::journal::{Endpoint, Entry, EntryKind, InstanceId};
use crate::rules::ids::{LIST_1, LIST_2, LIST_3, LIST_4};

fn final_page<'a>(entries: &'a [Entry], instance: &'a InstanceId) -> Option<&'a Entry> {
    of_instance(entries, instance).find(|e| {
        matches!(
            &e.kind,
            EntryKind::Request {
                endpoint: Endpoint::UserConversations { last: true, .. },
                status: 200,
                ..
            }
        )
    })
}

/// Journal entries of `instance` that tell of `sid`: pages listing it, frames about it, reports.
fn mentions<'a>(
    entries: &'a [Entry],
    instance: &'a InstanceId,
    sid: &'a str,
) -> impl Iterator<Item = &'a Entry> + 'a {
    of_instance(entries, instance).filter(move |e| match &e.kind {
        EntryKind::Request {
            endpoint: Endpoint::UserConversations { items, .. },
            ..
        } => items.iter().any(|s| s == sid),
        EntryKind::Frame {
            target: Some(t), ..
        } => t == sid,
        EntryKind::Observation {
            observation:
                Observation::ConversationAdded { conversation }
                | Observation::ConversationRemoved { conversation },
        } => conversation == sid,
        _ => false,
    })
}

/// LIST-1: the reply to `start` (request `start_id`) came before the final page of the
/// subscribed list was served.
pub fn created_before_full_list(
    entries: &[Entry],
    instance: Option<&InstanceId>,
    start_id: u64,
) -> CheckOutcome {
    let reply = entries
        .iter()
        .find(|e| matches!(&e.kind, EntryKind::Reply { id, .. } if *id == start_id));
    let last = instance.and_then(|i| final_page(entries, i));
    match (reply, last) {
        (Some(r), None) => CheckOutcome::pass(
            LIST_1,
            format!(
                "the client was created ({}) while the final page of the list had not been served",
                r.summary()
            ),
        ),
        (Some(r), Some(l)) if r.seq < l.seq => CheckOutcome::pass(
            LIST_1,
            format!(
                "the client was created ({}) before the final page was served ({})",
                r.summary(),
                l.summary()
            ),
        ),
        (Some(r), Some(l)) => CheckOutcome::fail(
            LIST_1,
            format!(
                "the client was created only after the whole list was fetched: final page {}, then creation {}",
                l.summary(),
                r.summary()
            ),
            vec![l.seq, r.seq],
        ),
        (None, _) => {
            // Point at the start command and the list pages the client was refused meanwhile.
            let culprits: Vec<u64> = entries
                .iter()
                .filter(|e| match &e.kind {
                    EntryKind::Command { id, .. } => *id == start_id,
                    EntryKind::Request {
                        endpoint: Endpoint::UserConversations { .. },
                        status,
                        ..
                    } => *status != 200,
                    _ => false,
                })
                .map(|e| e.seq)
                .collect();
            CheckOutcome::fail(
                LIST_1,
                "client creation did not complete while the last page of the list was unavailable: creation waits for the whole list",
                culprits,
            )
        }
    }
}

/// The sids a `list_conversations` reply listed.
pub fn listed(body: &serde_json::Value) -> Vec<String> {
    body["conversations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// LIST-2: every conversation announced (a `conversation_added` frame delivered to the client)
/// while the list was being fetched, and still in the truth, is in the client's final list.
pub fn announced_during_fetch_are_listed(
    entries: &[Entry],
    instance: &InstanceId,
    list: &[String],
    truth: &BTreeSet<String>,
) -> CheckOutcome {
    let first_page = of_instance(entries, instance)
        .find(|e| {
            matches!(
                &e.kind,
                EntryKind::Request {
                    endpoint: Endpoint::UserConversations { .. },
                    ..
                }
            )
        })
        .map_or(0, |e| e.seq);
    let end = final_page(entries, instance).map_or(u64::MAX, |e| e.seq);
    let mut announced = 0;
    for e in of_instance(entries, instance) {
        let EntryKind::Frame {
            event,
            target: Some(sid),
            ..
        } = &e.kind
        else {
            continue;
        };
        if event != "conversation_added" || e.seq < first_page || e.seq > end {
            continue;
        }
        announced += 1;
        if truth.contains(sid) && !list.contains(sid) {
            return CheckOutcome::fail(
                LIST_2,
                format!(
                    "{sid} was announced while the list was being fetched ({}), but is missing from the client's list: the added-listener was attached too late or dropped it",
                    e.summary()
                ),
                vec![e.seq],
            );
        }
    }
    CheckOutcome::pass(
        LIST_2,
        format!("{announced} conversation(s) announced during the fetch, all in the client's list"),
    )
}

/// LIST-3: no sid twice in the client's list, and no second `conversation_added` observation for
/// a sid without its removal in between.
pub fn each_conversation_once(
    entries: &[Entry],
    instance: &InstanceId,
    list: &[String],
) -> CheckOutcome {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for sid in list {
        *counts.entry(sid).or_default() += 1;
    }
    if let Some((sid, n)) = counts.iter().find(|(_, n)| **n > 1) {
        let told: Vec<&Entry> = mentions(entries, instance, sid).collect();
        return CheckOutcome::fail(
            LIST_3,
            format!(
                "the client's list holds {sid} {n} times; it learned of it from: {}",
                told.iter()
                    .map(|e| e.summary())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            told.iter().map(|e| e.seq).collect(),
        );
    }
    let mut present: BTreeMap<&str, u64> = BTreeMap::new();
    for e in of_instance(entries, instance) {
        let EntryKind::Observation { observation } = &e.kind else {
            continue;
        };
        match observation {
            Observation::ConversationAdded { conversation } => {
                if let Some(first) = present.insert(conversation, e.seq) {
                    return CheckOutcome::fail(
                        LIST_3,
                        format!(
                            "{conversation} was added to the app's list twice: first at #{first}, again at {}",
                            e.summary()
                        ),
                        vec![first, e.seq],
                    );
                }
            }
            Observation::ConversationRemoved { conversation } => {
                present.remove(conversation.as_str());
            }
            _ => {}
        }
    }
    CheckOutcome::pass(
        LIST_3,
        format!("{} conversation(s) listed, each once", list.len()),
    )
}

/// LIST-4: the client's list, as a set, equals the backend's truth.
pub fn list_equals_truth(
    entries: &[Entry],
    instance: &InstanceId,
    list: &[String],
    truth: &BTreeSet<String>,
) -> CheckOutcome {
    let shown: BTreeSet<String> = list.iter().cloned().collect();
    let missing: Vec<&String> = truth.difference(&shown).collect();
    let extra: Vec<&String> = shown.difference(truth).collect();
    if missing.is_empty() && extra.is_empty() {
        return CheckOutcome::pass(
            LIST_4,
            format!(
                "the client's list equals the backend's {} conversation(s)",
                truth.len()
            ),
        );
    }
    // Point at what the client was told about each wrong sid; for a sid it was never told of,
    // at the last page it fetched.
    let mut told: Vec<&Entry> = missing
        .iter()
        .chain(extra.iter())
        .flat_map(|sid| mentions(entries, instance, sid))
        .collect();
    if told.is_empty() {
        told.extend(
            of_instance(entries, instance)
                .filter(|e| {
                    matches!(
                        &e.kind,
                        EntryKind::Request {
                            endpoint: Endpoint::UserConversations { .. },
                            ..
                        }
                    )
                })
                .last(),
        );
    }
    told.sort_by_key(|e| e.seq);
    told.dedup_by_key(|e| e.seq);
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "missing {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !extra.is_empty() {
        parts.push(format!(
            "holding {} that the backend no longer has",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let context: Vec<String> = told.iter().map(|e| e.summary()).collect();
    CheckOutcome::fail(
        LIST_4,
        format!(
            "the client's list differs from the backend's: {}; what the client saw of them: {}",
            parts.join("; "),
            context.join(" | ")
        ),
        told.iter().map(|e| e.seq).collect(),
    )
}
