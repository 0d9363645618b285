//! Checks for push registration (PUSH-1..4).
//!
//! They read the `start` commands (the identity and the device token the app handed the SDK),
//! the OS's `device_token_changed` commands, the settles after them, the registration writes
//! the backend saw (`Register` requests) and the binding set, replayed from the backend's
//! `binding` facts (created, refreshed, removed, expired). One device runs one app, so every
//! start and token change in a journal is of one device.

use std::collections::BTreeSet;

use super::history::History;
use super::{Check, Finding, Settle, fold};
use crate::adapter::{Command, ReplyBody};
use crate::backend::{BindingChange, Endpoint, Fact};
use crate::journal::{Entry, EntryKind};

/// A `start` the harness sent, and how it went.
struct Start<'a> {
    entry: &'a Entry,
    identity: &'a str,
    device: Option<&'a str>,
    /// The reply, when it created a client.
    started: Option<u64>,
}

fn starts<'a>(h: &History<'a>) -> Vec<Start<'a>> {
    h.commands()
        .filter_map(|(e, id, c)| match c {
            Command::Start {
                identity,
                device_token,
                ..
            } => Some(Start {
                entry: e,
                identity,
                device: device_token.as_deref(),
                started: h
                    .reply_to(id)
                    .filter(|(_, r)| matches!(r.outcome.ok(), Some(ReplyBody::Started { .. })))
                    .map(|(r, _)| r.seq),
            }),
            _ => None,
        })
        .collect()
}

/// The push bindings the backend held just before entry `seq`: (identity, device token).
fn bindings_before<'a>(h: &History<'a>, seq: u64) -> BTreeSet<(&'a str, &'a str)> {
    let mut held = BTreeSet::new();
    for e in h.binding_facts().take_while(|e| e.seq < seq) {
        if let EntryKind::Backend(Fact::Binding(b)) = &e.kind {
            let key = (b.identity.as_str(), b.address.as_str());
            match b.change {
                BindingChange::Created | BindingChange::Refreshed => {
                    held.insert(key);
                }
                BindingChange::Removed | BindingChange::Expired => {
                    held.remove(&key);
                }
            }
        }
    }
    held
}

/// Whether a command that changes what the app registers (a start, a kill, a logout, a new
/// device token) was sent after `from` and before `to`.
fn interrupted(h: &History<'_>, from: u64, to: u64) -> bool {
    h.commands().any(|(e, _, c)| {
        e.seq > from
            && e.seq < to
            && matches!(
                c,
                Command::Start { .. }
                    | Command::Kill
                    | Command::Logout
                    | Command::DeviceTokenChanged { .. }
            )
    })
}

/// The first settle sent after entry `reply` with nothing that changes the registration in
/// between, and the network up all along: by its reply the client has done what `reply`'s
/// command asked of it.
fn settled<'a>(h: &History<'a>, from: u64, reply: u64) -> Option<Settle> {
    h.settle_after(reply).filter(|s| {
        !interrupted(h, from, s.command) && !super::lifecycle::network_down(h, from, s.reply)
    })
}

/// The device tokens the OS handed the app after entry `from` and before entry `to`.
fn rotations<'a>(h: &History<'a>, from: u64, to: u64) -> Vec<&'a str> {
    h.commands()
        .filter(|(e, _, _)| e.seq > from && e.seq < to)
        .filter_map(|(_, _, c)| match c {
            Command::DeviceTokenChanged { device_token } => Some(device_token.as_str()),
            _ => None,
        })
        .collect()
}

/// PUSH-1: every start with a device token leaves a binding of (identity, device token) by the
/// settle after it.
pub(crate) static REGISTERED_AFTER_START: Check = Check {
    name: "after every start with a device token a binding of (identity, device token) exists",
    fails_when: "a start with a device token was settled and the backend held no binding of that identity for that device token",
    judge: |h| {
        let cases = starts(h).into_iter().filter_map(|st| {
            let device = st.device?;
            let settle = settled(h, st.entry.seq, st.started?)?;
            let held = bindings_before(h, settle.reply);
            Some(if held.contains(&(st.identity, device)) {
                Finding::held(format!(
                    "started as {} with device `{device}` ({}), registered by the settle #{}",
                    st.identity,
                    h.quote(&[st.entry.seq]),
                    settle.reply
                ))
            } else {
                Finding::violated(
                    format!(
                        "started as {} with device token `{device}` ({}), and by the settle after it (#{}) the backend held no push binding of {} for that device: the app gets no pushes",
                        st.identity,
                        h.quote(&[st.entry.seq]),
                        settle.reply,
                        st.identity
                    ),
                    vec![st.entry.seq, settle.reply],
                )
            })
        });
        fold(
            cases.collect::<Vec<_>>(),
            "no start with a device token was settled after",
        )
    },
};

/// PUSH-2: a start with the identity and device token of the previous start, whose binding is
/// still there, writes no registration.
pub(crate) static NO_REREGISTRATION: Check = Check {
    name: "a restart with the same identity and device token writes no registration",
    fails_when: "the app started again as the same identity with the same device token, its binding still present, and the client wrote a registration anyway",
    judge: |h| {
        let all = starts(h);
        let cases = all.windows(2).filter_map(|pair| {
            let (prev, cur) = (&pair[0], &pair[1]);
            let device = cur.device?;
            let known = rotations(h, prev.entry.seq, cur.entry.seq)
                .last()
                .copied()
                .or(prev.device)?;
            if prev.identity != cur.identity || known != device {
                return None;
            }
            if !bindings_before(h, cur.entry.seq).contains(&(cur.identity, device)) {
                return None;
            }
            let settle = settled(h, cur.entry.seq, cur.started?)?;
            let writes: Vec<u64> = h
                .entries()
                .iter()
                .filter(|e| e.seq > cur.entry.seq && e.seq < settle.reply)
                .filter(|e| {
                    e.request().is_some_and(
                        |r| matches!(&r.endpoint, Endpoint::Register { address } if address == device),
                    )
                })
                .map(|e| e.seq)
                .collect();
            Some(match writes.first() {
                Some(first) => Finding::violated(
                    format!(
                        "restarted as {} with the same device token `{device}` ({}) while its binding was still there, and the client wrote the registration again ({}): the token did not change, so nothing needed writing",
                        cur.identity,
                        h.quote(&[cur.entry.seq]),
                        h.quote(&[*first])
                    ),
                    vec![cur.entry.seq, *first],
                ),
                None => Finding::held(format!(
                    "restarted as {} with an unchanged device token ({}); no registration write by #{}",
                    cur.identity,
                    h.quote(&[cur.entry.seq]),
                    settle.reply
                )),
            })
        });
        fold(
            cases.collect::<Vec<_>>(),
            "the app never started again as the same identity with the same device token while its binding was present",
        )
    },
};

/// PUSH-3: after the OS hands the app a new device token, the running identity's binding is
/// for the new token, and the old token's is gone.
pub(crate) static FOLLOWS_TOKEN_ROTATION: Check = Check {
    name: "after device_token_changed the identity is bound to the new token and not to the old one",
    fails_when: "after a new device token was settled, the backend held no binding of the identity for it, or still held the one for the old token",
    judge: |h| {
        let all = starts(h);
        let cases = h.commands().filter_map(|(e, id, c)| {
            let Command::DeviceTokenChanged { device_token: new } = c else {
                return None;
            };
            // The client running: the last start before, with nothing ending it since.
            let st = all.iter().rev().find(|s| s.entry.seq < e.seq)?;
            let created = st.started?;
            let ended = h.commands().any(|(x, _, c)| {
                x.seq > st.entry.seq && x.seq < e.seq && matches!(c, Command::Kill | Command::Logout)
            });
            if ended || created > e.seq {
                return None;
            }
            let old = rotations(h, st.entry.seq, e.seq)
                .last()
                .copied()
                .or(st.device)
                .filter(|old| old != new);
            let (reply, _) = h.reply_to(id)?;
            let settle = settled(h, e.seq, reply.seq)?;
            let held = bindings_before(h, settle.reply);
            let identity = st.identity;
            if !held.contains(&(identity, new.as_str())) {
                return Some(Finding::violated(
                    format!(
                        "the OS handed the app the device token `{new}` ({}), and by the settle #{} {identity} had no binding for it",
                        h.quote(&[e.seq]),
                        settle.reply
                    ),
                    vec![e.seq, settle.reply],
                ));
            }
            if let Some(old) = old
                && held.contains(&(identity, old))
            {
                return Some(Finding::violated(
                    format!(
                        "the OS replaced the device token `{old}` by `{new}` ({}), and by the settle #{} the binding of {identity} for the old token was still there",
                        h.quote(&[e.seq]),
                        settle.reply
                    ),
                    vec![e.seq, settle.reply],
                ));
            }
            Some(Finding::held(format!(
                "new device token ({}) bound for {identity} by #{}, the old one gone",
                h.quote(&[e.seq]),
                settle.reply
            )))
        });
        fold(
            cases.collect::<Vec<_>>(),
            "the OS never handed a running client a new device token",
        )
    },
};

/// PUSH-4: relaunched as another identity, the app removes the previous identity's bindings of
/// the device.
pub(crate) static PREVIOUS_IDENTITY_UNBOUND: Check = Check {
    name: "a start as another identity removes the previous identity's binding of the device",
    fails_when: "the app started as another identity on a device the previous identity had a binding for, and after the settle that binding was still there",
    judge: |h| {
        let all = starts(h);
        let cases = all.windows(2).filter_map(|pair| {
            let (prev, cur) = (&pair[0], &pair[1]);
            if prev.identity == cur.identity {
                return None;
            }
            let tokens: Vec<&str> = prev
                .device
                .into_iter()
                .chain(rotations(h, prev.entry.seq, cur.entry.seq))
                .collect();
            let before = bindings_before(h, cur.entry.seq);
            let stale: Vec<&str> = tokens
                .iter()
                .copied()
                .filter(|t| before.contains(&(prev.identity, *t)))
                .collect();
            if stale.is_empty() {
                return None;
            }
            let settle = settled(h, cur.entry.seq, cur.started?)?;
            let after = bindings_before(h, settle.reply);
            let left: Vec<&str> = stale
                .into_iter()
                .filter(|t| after.contains(&(prev.identity, *t)))
                .collect();
            Some(match left.first() {
                Some(t) => Finding::violated(
                    format!(
                        "the app started as {} ({}) on the device {} had registered, and by the settle #{} the binding of {} for device `{t}` was still there: {} gets {}'s pushes",
                        cur.identity,
                        h.quote(&[cur.entry.seq]),
                        prev.identity,
                        settle.reply,
                        prev.identity,
                        cur.identity,
                        prev.identity
                    ),
                    vec![cur.entry.seq, settle.reply],
                ),
                None => Finding::held(format!(
                    "started as {} after {} ({}); {}'s binding of the device gone by #{}",
                    cur.identity,
                    prev.identity,
                    h.quote(&[cur.entry.seq]),
                    prev.identity,
                    settle.reply
                )),
            })
        });
        fold(
            cases.collect::<Vec<_>>(),
            "the app never started as another identity on a device the previous one had a binding for",
        )
    },
};
