//! Checks for the SYNC rules: operations wait for synchronization; status only moves forward.

use std::collections::BTreeMap;

use super::{CheckOutcome, describe, of_instance};
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

/// SYNC-1: no client operation reached the backend before the final page of the subscribed list
/// had been served to the same instance.
pub fn client_ops_wait_for_sync(entries: &[Entry], instance: &InstanceId) -> CheckOutcome {
    let final_page = of_instance(entries, instance)
        .find(|e| {
            served(e, |ep| {
                matches!(ep, Endpoint::UserConversations { last: true, .. })
            })
        })
        .map(|e| e.seq);
    let ops: Vec<&Entry> = of_instance(entries, instance)
        .filter(|e| operation(e) == Some(OperationClass::ClientOperation))
        .collect();
    let early: Vec<&Entry> = ops
        .iter()
        .copied()
        .filter(|e| final_page.is_none_or(|f| e.seq < f))
        .collect();
    match (early.first(), final_page) {
        (None, _) => CheckOutcome::pass(
            SYNC_1,
            format!(
                "{} client operation(s) reached the backend, none before the final list page{}",
                ops.len(),
                final_page.map_or(String::new(), |f| format!(" (#{f})"))
            ),
        ),
        (Some(op), Some(f)) => CheckOutcome::fail(
            SYNC_1,
            format!(
                "{} reached the backend before the final page of the subscribed list was served (#{f}): the client had not finished synchronizing",
                describe(op)
            ),
            early.iter().map(|e| e.seq).chain([f]).collect(),
        ),
        (Some(op), None) => CheckOutcome::fail(
            SYNC_1,
            format!(
                "{} reached the backend while the final page of the subscribed list had not been served: the client had not finished synchronizing",
                describe(op)
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
                    describe(e)
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

/// SYNC-3: the client and conversation sync statuses each instance reported never step back.
pub fn sync_status_only_moves_forward(entries: &[Entry]) -> CheckOutcome {
    let mut client: BTreeMap<Option<&InstanceId>, (ClientSyncStatus, u64)> = BTreeMap::new();
    let mut conversations: BTreeMap<(Option<&InstanceId>, &str), (ConversationSyncStatus, u64)> =
        BTreeMap::new();
    let mut seen = 0;
    for e in entries {
        let EntryKind::Observation { observation } = &e.kind else {
            continue;
        };
        let inst = e.instance.as_ref();
        let regress = match observation {
            Observation::ClientSync { status } => {
                seen += 1;
                let prev = client.insert(inst, (*status, e.seq));
                prev.filter(|(p, _)| p > status && *p != ClientSyncStatus::Failed)
                    .map(|(p, at)| {
                        (
                            format!("the client sync status went from {p:?} (#{at})"),
                            format!("{status:?}"),
                            at,
                        )
                    })
            }
            Observation::ConversationSync {
                conversation,
                status,
            } => {
                seen += 1;
                let prev = conversations.insert((inst, conversation.as_str()), (*status, e.seq));
                prev.filter(|(p, _)| p > status && *p != ConversationSyncStatus::Failed)
                    .map(|(p, at)| {
                        (
                            format!("conversation {conversation} went from {p:?} (#{at})"),
                            format!("{status:?}"),
                            at,
                        )
                    })
            }
            _ => None,
        };
        if let Some((from, to, at)) = regress {
            return CheckOutcome::fail(
                SYNC_3,
                format!("{from} back to {to} ({})", describe(e)),
                vec![at, e.seq],
            );
        }
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
        Some(e) => CheckOutcome::pass(SYNC_1, format!("client sync completed at {}", describe(e))),
        None => CheckOutcome::fail(
            SYNC_1,
            "the client never reported its synchronization completed after the backend served everything",
            vec![],
        ),
    }
}
