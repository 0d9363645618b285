//! Steps about synchronization: gates on the backend, operations issued before the client (or
//! a conversation) synchronized, and the SYNC assertions.

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, Target};
use crate::backend::Gate;
use crate::checks::sync as checks;
use crate::scenario::params::{Actor, Json, Named, Operation, Text, expr};
use crate::scenario::world::{StepResult, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("the last page of {actor}'s conversation list is gated"),
        gate_last_page,
    )
    .given(
        None,
        expr("the participants of {conversation} are gated"),
        gate_participants,
    )
    .when(
        None,
        expr("the gate on the last page of {actor}'s conversation list is opened"),
        open_last_page,
    )
    .when(
        None,
        expr("the gate on the participants of {conversation} is opened"),
        open_participants,
    )
    .when(
        None,
        expr("{actor} updates her/his/their user attributes to {json} without waiting"),
        update_user,
    )
    .when(
        None,
        expr("{actor} updates the attributes of {conversation} to {json} without waiting"),
        update_conversation,
    )
    .when(
        None,
        expr("{actor} sends {text} to {conversation} without waiting"),
        send_message,
    )
    .then(
        None,
        expr("no client operation has reached the backend before the client synchronized"),
        client_ops_waited,
    )
    .then(
        None,
        expr("no conversation operation has reached the backend before that conversation synchronized"),
        conversation_ops_waited,
    )
    .then(
        None,
        expr("{actor}'s {operation} completes or is refused as not synchronized"),
        completes_or_refused,
    )
    .then(
        None,
        expr("{actor}'s client finished synchronizing"),
        finished_sync,
    )
    .then(
        None,
        expr("the sync status never moved backwards"),
        never_backwards,
    )
}

step!(gate_last_page, |w, actor: Actor| {
    w.harness()?
        .backend
        .close_gate(Gate::LastListPage { user: actor.0 });
    Ok(())
});

step!(gate_participants, |w, name: Named| {
    let h = w.harness()?;
    let sid = h.backend.conversation_sid(&name.0)?;
    h.backend.close_gate(Gate::Participants { sid });
    Ok(())
});

step!(open_last_page, |w, actor: Actor| {
    w.harness()?
        .backend
        .open_gate(&Gate::LastListPage { user: actor.0 });
    Ok(())
});

step!(open_participants, |w, name: Named| {
    let h = w.harness()?;
    let sid = h.backend.conversation_sid(&name.0)?;
    h.backend.open_gate(&Gate::Participants { sid });
    Ok(())
});

/// Sends `command` as `actor` without waiting, remembered as `op` for later steps.
pub(super) fn leave_in_flight(
    w: &mut TckWorld,
    actor: &Actor,
    op: Operation,
    command: Command,
) -> StepResult {
    w.client_of(actor)?;
    let id = w.harness()?.driver.submit(command)?;
    w.pending.insert(op, id);
    Ok(())
}

step!(update_user, |w, actor: Actor, attributes: Json| {
    let command = Command::UpdateAttributes {
        target: Target::User,
        attributes: attributes.0,
    };
    leave_in_flight(w, &actor, Operation::UserUpdate, command)
});

step!(
    update_conversation,
    |w, actor: Actor, name: Named, attributes: Json| {
        let sid = w.harness()?.backend.conversation_sid(&name.0)?;
        let command = Command::UpdateAttributes {
            target: Target::Conversation { sid },
            attributes: attributes.0,
        };
        leave_in_flight(w, &actor, Operation::UpdateOf(name.0), command)
    }
);

step!(send_message, |w, actor: Actor, body: Text, name: Named| {
    let sid = w.harness()?.backend.conversation_sid(&name.0)?;
    let command = Command::SendMessage {
        conversation: sid,
        body: body.0,
    };
    leave_in_flight(w, &actor, Operation::MessageTo(name.0), command)
});

step!(client_ops_waited, |w| {
    w.expect(&[&checks::CLIENT_OPS_WAIT])
});

step!(conversation_ops_waited, |w| {
    w.expect(&[&checks::CONVERSATION_OPS_WAIT])
});

step!(completes_or_refused, |w, actor: Actor, op: Operation| {
    w.client_of(&actor)?;
    w.issued(&op)?;
    match op {
        Operation::UserUpdate => w.expect(&[&checks::EARLY_CLIENT_OPS_ANSWERED]),
        Operation::UpdateOf(_) | Operation::MessageTo(_) => {
            w.expect(&[&checks::EARLY_CONVERSATION_OPS_ANSWERED])
        }
    }
});

step!(finished_sync, |w, actor: Actor| {
    w.client_of(&actor)?;
    w.expect(&[&checks::SYNC_COMPLETION_REPORTED])
});

step!(never_backwards, |w| {
    w.expect(&[&checks::STATUS_ONLY_FORWARD])
});
