//! Checks for the UPD rules: updates complete on their Updated event and show the backend's value.

use serde_json::Value;

use super::{CheckOutcome, of_instance};
use crate::adapter::Outcome;
use crate::backend::journal::{Endpoint, Entry, EntryKind, InstanceId};
use crate::rules::RuleId;
use crate::rules::ids::UPD_1;

fn reply_of(entries: &[Entry], id: u64) -> Option<(&Entry, &Outcome)> {
    entries.iter().find_map(|e| match &e.kind {
        EntryKind::Reply { id: r, outcome } if *r == id => Some((e, outcome)),
        _ => None,
    })
}

fn command_seq(entries: &[Entry], id: u64) -> u64 {
    entries
        .iter()
        .find(|e| matches!(&e.kind, EntryKind::Command { id: c, .. } if *c == id))
        .map_or(0, |e| e.seq)
}

/// UPD-1 while the Updated event is held: the update must not have completed.
pub fn update_still_pending(entries: &[Entry], id: u64, what: &str) -> CheckOutcome {
    match reply_of(entries, id) {
        None => CheckOutcome::pass(
            UPD_1,
            format!("{what} had not completed while its Updated event was held"),
        ),
        Some((e, _)) => CheckOutcome::fail(
            UPD_1,
            format!(
                "{what} completed ({}) while the backend still held its Updated event: the client answered on the acknowledgement, not on the event",
                e.summary()
            ),
            vec![command_seq(entries, id), e.seq],
        ),
    }
}

/// UPD-1 after release: the reply came after a frame at or past the revision the update produced.
/// `key` is the object's journal key (`CH...` or `user:alice`).
pub fn update_completed_after_event(
    entries: &[Entry],
    instance: &InstanceId,
    id: u64,
    key: &str,
    what: &str,
) -> CheckOutcome {
    let issued = command_seq(entries, id);
    let Some((reply, outcome)) = reply_of(entries, id) else {
        return CheckOutcome::fail(
            UPD_1,
            format!(
                "{what} never completed, although its Updated event was delivered and the client settled"
            ),
            vec![issued],
        );
    };
    if let Outcome::Error(err) = outcome {
        return CheckOutcome::fail(UPD_1, format!("{what} failed: {err}"), vec![reply.seq]);
    }
    // The update request for this very object: `key` is `CH...` or `user:<identity>`.
    let is_target = |ep: &Endpoint| match ep {
        Endpoint::UpdateConversation { sid } => sid == key,
        Endpoint::UpdateUser => key.starts_with("user:"),
        _ => false,
    };
    let ack = of_instance(entries, instance).find(|e| {
        e.seq > issued && matches!(&e.kind, EntryKind::Request { endpoint, status: 200..=299, .. } if is_target(endpoint))
    });
    let Some((ack, revision)) = ack.and_then(|e| match &e.kind {
        EntryKind::Request {
            revision: Some(r), ..
        } => Some((e, *r)),
        _ => None,
    }) else {
        return CheckOutcome::fail(
            UPD_1,
            format!("{what} completed but no update request reached the backend"),
            vec![reply.seq],
        );
    };
    let frame = of_instance(entries, instance).find(|e| {
        matches!(&e.kind, EntryKind::Frame { target: Some(t), revision: Some(r), .. } if t == key && *r >= revision)
    });
    match frame {
        Some(f) if f.seq < reply.seq => CheckOutcome::pass(
            UPD_1,
            format!(
                "{what} was acknowledged at revision {revision} ({}), its event delivered ({}), then completed ({})",
                ack.summary(),
                f.summary(),
                reply.summary()
            ),
        ),
        Some(f) => CheckOutcome::fail(
            UPD_1,
            format!(
                "{what} completed ({}) before its Updated event was delivered ({})",
                reply.summary(),
                f.summary()
            ),
            vec![ack.seq, reply.seq, f.seq],
        ),
        None => CheckOutcome::fail(
            UPD_1,
            format!(
                "{what} completed ({}) but no Updated event at revision {revision} or later was ever delivered",
                reply.summary()
            ),
            vec![ack.seq, reply.seq],
        ),
    }
}

/// UPD-2 / UPD-3: a value the client shows equals the backend's.
pub fn shows_backend_value(
    rule: RuleId,
    what: &str,
    shown: Option<&Value>,
    truth: &Value,
    seq: u64,
) -> CheckOutcome {
    match shown {
        Some(v) if v == truth => {
            CheckOutcome::pass(rule, format!("{what} showed the backend's value {truth}"))
        }
        Some(v) => CheckOutcome::fail(
            rule,
            format!("{what} showed {v}, but the backend holds {truth} (#{seq})"),
            vec![seq],
        ),
        None => CheckOutcome::fail(
            rule,
            format!("{what} showed no value; the backend holds {truth} (#{seq})"),
            vec![seq],
        ),
    }
}
