//! Checks for the SYNC rules: operations wait for synchronization; status only moves forward.

use std::collections::BTreeMap;

use super::{CheckOutcome, of_instance};
use crate::adapter::{ClientSyncStatus, ConversationSyncStatus, Observation};
use crate::backend::journal::{Endpoint, Entry, EntryKind, InstanceId, OperationClass};
use crate::rules::ids::{SYNC_1, SYNC_2, SYNC_3};

fn served(e: &Entry, pred: impl Fn(&Endpoint) -> bool) -> bool {
    matches!(&e.kind, EntryKind::Request { endpoint, status: 200..=299, .. } if pred(endpoint))
}

fn operation<'a>(e: &'a Entry) -> Option<OperationClass<'a>> {
    match &e.kind {
        EntryKind::Request { endpoint, .. } => Some(endpoint.class()),
        _ => None,
    }
}

/// Where, in the journal, the client had everything its initial synchronization needs: the final
/// page of the subscribed list, and the metadata and participants of every conversation the
/// pages listed, all served to `instance`. `Err` says what is still missing.
pub fn sync_complete_at(entries: &[Entry], instance: &InstanceId) -> Result<u64, String> {
    let mine: Vec<&Entry> = of_instance(entries, instance).collect();
    let final_page = mine
        .iter()
        .find(|e| {
            served(e, |ep| {
                matches!(ep, Endpoint::UserConversations { last: true, .. })
            })
        })
        .ok_or("the final page of the subscribed list had not been served")?;
    let mut done = final_page.seq;
    let listed: Vec<&String> = mine
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Request {
                endpoint: Endpoint::UserConversations { items, .. },
                status: 200,
                ..
            } => Some(items),
            _ => None,
        })
        .flatten()
        .collect();
    for sid in listed {
        let first = |want: fn(&Endpoint, &str) -> bool| {
            mine.iter()
                .find(|e| served(e, |ep| want(ep, sid)))
                .map(|e| e.seq)
        };
        let meta = first(|ep, sid| matches!(ep, Endpoint::GetConversation { sid: s } if s == sid))
            .ok_or_else(|| format!("conversation {sid} had not been fetched"))?;
        let parts = first(|ep, sid| matches!(ep, Endpoint::Participants { sid: s } if s == sid))
            .ok_or_else(|| format!("the participants of {sid} had not been fetched"))?;
        done = done.max(meta).max(parts);
    }
    Ok(done)
}

/// SYNC-1: no client operation reached the backend before the client's initial synchronization
/// was complete (see [`sync_complete_at`]).
pub fn client_ops_wait_for_sync(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let complete = sync_complete_at(entries, instance);
    let ops: Vec<&Entry> = of_instance(entries, instance)
        .filter(|e| operation(e) == Some(OperationClass::ClientOperation))
        .collect();
    let early: Vec<&Entry> = ops
        .iter()
        .copied()
        .filter(|e| complete.as_ref().is_err() || complete.as_ref().is_ok_and(|c| e.seq < *c))
        .collect();
    match (early.first(), &complete) {
        (None, Ok(c)) => CheckOutcome::pass(
            SYNC_1,
            format!(
                "{} client operation(s) reached the backend, none before synchronization completed (#{c})",
                ops.len()
            ),
        ),
        (None, Err(_)) => CheckOutcome::pass(
            SYNC_1,
            "no client operation reached the backend while synchronization was incomplete",
        ),
        (Some(op), Ok(c)) => CheckOutcome::fail(
            SYNC_1,
            format!(
                "{} reached the backend before the client had synchronized (the last piece of synchronization was served at #{c})",
                op.summary()
            ),
            early.iter().map(|e| e.seq).chain([*c]).collect(),
        ),
        (Some(op), Err(missing)) => CheckOutcome::fail(
            SYNC_1,
            format!(
                "{} reached the backend while {missing}: the client had not synchronized",
                op.summary()
            ),
            early.iter().map(|e| e.seq).collect(),
        ),
    }
}

/// SYNC-2: no operation on a conversation reached the backend before that conversation's own
/// resource and its participants had been served to the same instance.
pub fn conversation_ops_wait_for_sync(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let mut checked = 0;
    for e in of_instance(entries, instance) {
        let Some(OperationClass::ConversationOperation(sid)) = operation(e) else {
            continue;
        };
        checked += 1;
        let before = || of_instance(entries, instance).take_while(|x| x.seq < e.seq);
        let meta = before().any(|x| {
            served(
                x,
                |ep| matches!(ep, Endpoint::GetConversation { sid: s } if s == sid),
            )
        });
        let parts = before().any(|x| {
            served(
                x,
                |ep| matches!(ep, Endpoint::Participants { sid: s } if s == sid),
            )
        });
        if !(meta && parts) {
            let missing = match (meta, parts) {
                (false, false) => "neither its metadata nor its participants",
                (false, true) => "its metadata",
                _ => "its participants",
            };
            return CheckOutcome::fail(
                SYNC_2,
                format!(
                    "{} operated on {sid} before {missing} had been served to the client: the conversation had not synchronized",
                    e.summary()
                ),
                vec![e.seq],
            );
        }
    }
    CheckOutcome::pass(
        SYNC_2,
        format!(
            "{checked} conversation operation(s) reached the backend, each after its conversation synchronized"
        ),
    )
}

/// SYNC-3: the client and conversation sync statuses each instance reported never step back
/// below the furthest status already reached (`failed` may follow anything; a later status
/// below the furthest reached is a regression even after a failure).
pub fn sync_status_only_moves_forward(entries: &[Entry]) -> CheckOutcome {
    type Key<'a> = (Option<&'a InstanceId>, Option<&'a str>);
    let mut furthest: BTreeMap<Key<'_>, (u8, String, u64)> = BTreeMap::new();
    let mut seen = 0;
    for e in entries {
        let EntryKind::Observation { observation } = &e.kind else {
            continue;
        };
        let (key, rank, name, what): (Key<'_>, Option<u8>, String, String) = match observation {
            Observation::ClientSync { status } => (
                (e.instance.as_ref(), None),
                (*status != ClientSyncStatus::Failed).then_some(*status as u8),
                format!("{status:?}"),
                "the client sync status".into(),
            ),
            Observation::ConversationSync {
                conversation,
                status,
            } => (
                (e.instance.as_ref(), Some(conversation.as_str())),
                (*status != ConversationSyncStatus::Failed).then_some(*status as u8),
                format!("{status:?}"),
                format!("the sync status of {conversation}"),
            ),
            _ => continue,
        };
        seen += 1;
        let Some(rank) = rank else { continue };
        match furthest.get(&key) {
            Some((best, best_name, at)) if rank < *best => {
                return CheckOutcome::fail(
                    SYNC_3,
                    format!(
                        "{what} went back from {best_name} (#{at}) to {name} ({})",
                        e.summary()
                    ),
                    vec![*at, e.seq],
                );
            }
            Some((best, ..)) if rank == *best => {}
            _ => {
                furthest.insert(key, (rank, name, e.seq));
            }
        }
    }
    if seen == 0 {
        return CheckOutcome::fail(
            SYNC_3,
            "the client reported no synchronization status at all, so its progress cannot be shown to move forward",
            vec![],
        );
    }
    CheckOutcome::pass(
        SYNC_3,
        format!("{seen} sync status report(s), none stepping back"),
    )
}

/// SYNC-1 liveness: the client reported its synchronization complete.
pub fn client_finished_sync(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let done = of_instance(entries, instance).find(|e| {
        matches!(
            &e.kind,
            EntryKind::Observation {
                observation: Observation::ClientSync {
                    status: ClientSyncStatus::Completed
                }
            }
        )
    });
    match done {
        Some(e) => CheckOutcome::pass(SYNC_1, format!("client sync completed at {}", e.summary())),
        None => CheckOutcome::fail(
            SYNC_1,
            "the client never reported its synchronization completed after the backend served everything",
            vec![],
        ),
    }
}
