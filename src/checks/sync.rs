//! Checks for synchronization: operations wait for it, operations issued early are eventually
//! run or refused, the client says when it is done, and its status only moves forward.

use std::collections::BTreeMap;

use super::history::History;
use super::{Check, Finding, fold};
use crate::adapter::{
    ClientSyncStatus, Command, ConversationSyncStatus, ErrorKind, Observation, Outcome, Target,
};
use crate::backend::{Endpoint, OperationClass};
use crate::journal::Entry;
use crate::wire::{ConversationSid, EventType, InstanceId};

/// What an operation command acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope<'a> {
    /// The client as a whole (the user).
    Client,
    /// One conversation.
    Conversation(&'a ConversationSid),
}

/// The scope of a command that is an operation, and whether `request` carries it out.
fn operation(command: &Command) -> Option<Scope<'_>> {
    match command {
        Command::UpdateAttributes {
            target: Target::User,
            ..
        } => Some(Scope::Client),
        Command::UpdateAttributes {
            target: Target::Conversation { sid },
            ..
        }
        | Command::SendMessage {
            conversation: sid, ..
        } => Some(Scope::Conversation(sid)),
        _ => None,
    }
}

fn carries_out(command: &Command, ep: &Endpoint) -> bool {
    match (command, ep) {
        (
            Command::UpdateAttributes {
                target: Target::User,
                ..
            },
            Endpoint::UpdateUser,
        ) => true,
        (
            Command::UpdateAttributes {
                target: Target::Conversation { sid },
                ..
            },
            Endpoint::UpdateConversation { sid: s },
        ) => sid == s,
        (Command::SendMessage { conversation, .. }, Endpoint::SendMessage { sid }) => {
            conversation == sid
        }
        _ => false,
    }
}

/// Where `scope` had synchronized for `instance`, or what was still missing.
fn synced_at<'a>(
    h: &History<'a>,
    instance: &'a InstanceId,
    scope: Scope<'_>,
) -> Result<u64, String> {
    match scope {
        Scope::Client => h.sync_complete_at(instance),
        Scope::Conversation(sid) => h
            .conversation_synced_at(instance, sid)
            .ok_or_else(|| format!("conversation {sid} had not synchronized")),
    }
}

/// The operation commands of `scope`'s kind `instance` was sent before that scope synchronized.
fn early_commands<'a>(
    h: &History<'a>,
    instance: &'a InstanceId,
    client_scope: bool,
) -> Vec<(&'a Entry, u64, &'a Command)> {
    h.commands()
        .filter(|(e, _, _)| e.instance.as_ref() == Some(instance))
        .filter(|(e, _, c)| {
            operation(c).is_some_and(|scope| {
                (scope == Scope::Client) == client_scope
                    && !synced_at(h, instance, scope).is_ok_and(|at| e.seq >= at)
            })
        })
        .collect()
}

fn ops_wait(h: &History<'_>, client_scope: bool) -> Finding {
    let what = if client_scope {
        "client operation"
    } else {
        "conversation operation"
    };
    let findings = h.instances().into_iter().map(|instance| {
        let early = early_commands(h, instance, client_scope);
        for (e, r) in h.requests(instance) {
            let scope = match r.endpoint.class() {
                OperationClass::ClientOperation if client_scope => Scope::Client,
                OperationClass::ConversationOperation(sid) if !client_scope => {
                    Scope::Conversation(sid)
                }
                _ => continue,
            };
            match synced_at(h, instance, scope) {
                Err(missing) => {
                    return Finding::violated(
                        format!(
                            "{} reached the backend while {missing}: it had not synchronized",
                            e.summary()
                        ),
                        vec![e.seq],
                    );
                }
                Ok(at) if e.seq < at => {
                    return Finding::violated(
                        format!(
                            "{} reached the backend before it had synchronized (the last piece of its synchronization was served at #{at})",
                            e.summary()
                        ),
                        vec![e.seq, at],
                    );
                }
                Ok(_) => {}
            }
        }
        if early.is_empty() {
            return Finding::not_provoked("");
        }
        Finding::held(format!(
            "{} {what}(s) issued before synchronization completed ({}), none reached the backend before it",
            early.len(),
            early.iter().map(|(e, _, _)| format!("#{}", e.seq)).collect::<Vec<_>>().join(", ")
        ))
    });
    fold(
        findings,
        &format!("no {what} was issued before synchronization completed"),
    )
}

/// SYNC-1: no client operation reaches the backend before the client's initial
/// synchronization is complete (the final list page, and every listed conversation's metadata
/// and participants, served to that instance).
pub(crate) static CLIENT_OPS_WAIT: Check = Check {
    name: "client operations wait for the client's synchronization",
    fails_when: "a client-operation request reaches the backend before the final page of the subscribed list and every listed conversation were served to that instance",
    judge: |h| ops_wait(h, true),
};

/// SYNC-2: no operation on a conversation reaches the backend before that conversation's own
/// resource and its participants were served to the same instance.
pub(crate) static CONVERSATION_OPS_WAIT: Check = Check {
    name: "conversation operations wait for that conversation's synchronization",
    fails_when: "a request operating on a conversation reaches the backend before its metadata and participants were served to that instance",
    judge: |h| ops_wait(h, false),
};

fn early_ops_answered(h: &History<'_>, client_scope: bool) -> Finding {
    let mut findings = Vec::new();
    for instance in h.instances() {
        for (e, id, command) in early_commands(h, instance, client_scope) {
            let Some(scope) = operation(command) else {
                continue;
            };
            let Ok(at) = synced_at(h, instance, scope) else {
                continue;
            };
            let Some(settle) = h.settled_after(at) else {
                continue;
            };
            let name = command.name();
            let reply = h.reply_to(id).filter(|(r, _)| r.seq < settle.reply);
            findings.push(match reply.map(|(r, rec)| (r, &rec.outcome)) {
                Some((_, Outcome::Error(err))) if err.kind == ErrorKind::NotSynchronized => {
                    Finding::held(format!("the early `{name}` (#{}) was refused as not synchronized", e.seq))
                }
                Some((r, Outcome::Error(err))) => Finding::violated(
                    format!(
                        "the `{name}` issued before synchronization completed (#{}) failed once it had completed: {err} ({})",
                        e.seq,
                        r.summary()
                    ),
                    vec![e.seq, r.seq],
                ),
                _ => {
                    let ran = h
                        .requests(instance)
                        .any(|(x, r)| x.seq > at && x.seq < settle.reply && carries_out(command, &r.endpoint));
                    if ran {
                        Finding::held(format!(
                            "the early `{name}` (#{}) reached the backend once synchronization completed (#{at})",
                            e.seq
                        ))
                    } else {
                        Finding::violated(
                            format!(
                                "the `{name}` issued before synchronization completed (#{}) neither reached the backend nor was refused as not synchronized by the time the client settled (#{}) after synchronization completed (#{at})",
                                e.seq, settle.reply
                            ),
                            vec![e.seq, at, settle.reply],
                        )
                    }
                }
            });
        }
    }
    fold(
        findings,
        "no operation issued before synchronization was followed by its completion and a settle",
    )
}

/// SYNC-1: a client operation issued before synchronization completed is run, or refused as
/// `not_synchronized`, once it has completed (not lost, not failed otherwise).
pub(crate) static EARLY_CLIENT_OPS_ANSWERED: Check = Check {
    name: "client operations issued early run or are refused once synchronization completes",
    fails_when: "an early client operation neither reaches the backend nor is refused as not_synchronized by the first settle after synchronization completed",
    judge: |h| early_ops_answered(h, true),
};

/// SYNC-2: an operation on a conversation issued before it synchronized is run, or refused as
/// `not_synchronized`, once it has.
pub(crate) static EARLY_CONVERSATION_OPS_ANSWERED: Check = Check {
    name: "conversation operations issued early run or are refused once the conversation synchronizes",
    fails_when: "an early conversation operation neither reaches the backend nor is refused as not_synchronized by the first settle after the conversation synchronized",
    judge: |h| early_ops_answered(h, false),
};

/// SYNC-1: once the backend served everything synchronization needs and the client settled,
/// the client has reported its synchronization completed.
pub(crate) static SYNC_COMPLETION_REPORTED: Check = Check {
    name: "the client reports its synchronization completed",
    fails_when: "the client settles after the backend served everything its synchronization needs without reporting client sync `completed`",
    judge: |h| {
        let findings = h.instances().into_iter().map(|instance| {
            let Ok(at) = h.sync_complete_at(instance) else {
                return Finding::not_provoked("");
            };
            let Some(settle) = h.settled_after(at) else {
                return Finding::not_provoked("");
            };
            let done = h.of(instance).find(|e| {
                e.seq < settle.reply
                    && matches!(
                        e.observation(),
                        Some(Observation::ClientSync {
                            status: ClientSyncStatus::Completed
                        })
                    )
            });
            match done {
                Some(e) => Finding::held(format!("client sync completed at {}", e.summary())),
                None => Finding::violated(
                    format!(
                        "the backend had served everything synchronization needs (#{at}) and the client settled (#{}), but it never reported its synchronization completed",
                        settle.reply
                    ),
                    vec![at, settle.reply],
                ),
            }
        });
        fold(
            findings,
            "no instance both had everything its synchronization needs and settled afterwards",
        )
    },
};

type Key<'a> = Option<&'a ConversationSid>;

/// SYNC-3 for one instance: each object's status against the furthest it reached.
fn status_regression<'a>(h: &History<'a>, instance: &'a InstanceId) -> Finding {
    let mut furthest: BTreeMap<Key<'a>, (u8, String, u64)> = BTreeMap::new();
    let mut synced_at: BTreeMap<&'a ConversationSid, u64> = BTreeMap::new();
    let mut provoked = None;
    let mut completed = false;
    let mut seen = 0;
    for e in h.of(instance) {
        if let Some(f) = e.frame() {
            // A synchronized conversation changed, or a new one arrived after the client
            // reported its synchronization completed.
            let changed_synced = f.event == EventType::ConversationUpdated
                && f.conversation()
                    .is_some_and(|sid| synced_at.contains_key(sid));
            let added_after = f.event == EventType::ConversationAdded && completed;
            if (changed_synced || added_after) && provoked.is_none() {
                provoked = Some(h.publication_of(e));
            }
            continue;
        }
        let (key, rank, name, what): (Key<'a>, Option<u8>, String, String) = match e.observation() {
            Some(Observation::ClientSync { status }) => {
                completed |= *status == ClientSyncStatus::Completed;
                (
                    None,
                    (*status != ClientSyncStatus::Failed).then_some(*status as u8),
                    format!("{status:?}"),
                    "the client sync status".into(),
                )
            }
            Some(Observation::ConversationSync {
                conversation,
                status,
            }) => {
                if *status == ConversationSyncStatus::All {
                    synced_at.entry(conversation).or_insert(e.seq);
                }
                (
                    Some(conversation),
                    (*status != ConversationSyncStatus::Failed).then_some(*status as u8),
                    format!("{status:?}"),
                    format!("the sync status of {conversation}"),
                )
            }
            // A conversation the client dropped starts a new life if it comes back.
            Some(Observation::ConversationRemoved { conversation }) => {
                furthest.remove(&Some(conversation));
                synced_at.remove(conversation);
                continue;
            }
            _ => continue,
        };
        seen += 1;
        let Some(rank) = rank else { continue };
        match furthest.get(&key) {
            Some((best, best_name, at)) if rank < *best => {
                return Finding::violated(
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
    let settled = provoked.and_then(|p| h.settle_after(p));
    match settled {
        Some(s) => Finding::held(format!(
            "{seen} sync status report(s), none stepping back, also after a synchronized conversation changed or a new one arrived (#{}) and the client settled (#{})",
            provoked.unwrap_or_default(),
            s.reply
        )),
        None => Finding::not_provoked(""),
    }
}

/// SYNC-3: the client and conversation sync statuses each instance reports never step back
/// below the furthest status already reached (`failed` may follow anything; a later status
/// below the furthest reached is a regression even after a failure; a conversation the client
/// reported removed starts afresh if it is added again).
pub(crate) static STATUS_ONLY_FORWARD: Check = Check {
    name: "synchronization status only moves forward",
    fails_when: "a client or conversation sync status report is below the furthest status already reported for it",
    judge: |h| {
        fold(
            h.instances()
                .into_iter()
                .map(|instance| status_regression(h, instance)),
            "no synchronized conversation changed under a client that reports sync statuses",
        )
    },
};
