//! Steps about synchronization: gates on the backend, operations issued early, SYNC checks.

use cucumber::step::Collection;

use super::{re, step};
use crate::adapter::{Command, ErrorKind, Outcome, Target};
use crate::backend::state::Gate;
use crate::checks::{CheckOutcome, sync as checks};
use crate::rules::ids::{SYNC_1, SYNC_2, SYNC_3};
use crate::scenario::world::{StepFail, StepResult, TckWorld};

/// What a pending operation is called in step text: `user update`, `update of "general"`,
/// `message to "general"`.
const OPERATION: &str = r#"(user update|update of "[^"]+"|message to "[^"]+")"#;

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(None, re(r"^the last page of (\w+)'s conversation list is gated$"), gate_last_page)
        .given(None, re(r#"^the participants of "([^"]+)" are gated$"#), gate_participants)
        .when(None, re(r"^the gate on the last page is opened$"), open_last_page)
        .when(None, re(r#"^the gate on the participants of "([^"]+)" is opened$"#), open_participants)
        .when(None, re(r"^(\w+) updates (?:her|his|their) user attributes to (\{.*\}) without waiting$"), update_user)
        .when(None, re(r#"^(\w+) updates the attributes of "([^"]+)" to (\{.*\}) without waiting$"#), update_conversation)
        .when(None, re(r#"^(\w+) sends "([^"]*)" to "([^"]+)" without waiting$"#), send_message)
        .then(None, re(r"^no client operation has reached the backend before the client synchronized$"), client_ops_waited)
        .then(
            None,
            re(r"^no conversation operation has reached the backend before that conversation synchronized$"),
            conversation_ops_waited,
        )
        .then(
            None,
            re(&format!(r"^the {OPERATION} completes or is refused as not synchronized$")),
            completes_or_refused,
        )
        .then(None, re(r"^the client finished synchronizing$"), finished_sync)
        .then(None, re(r"^the sync status never moved backwards$"), never_backwards)
}

step!(gate_last_page, |w, a| {
    w.env()?.backend.close_gate(Gate::LastListPage);
    Ok(())
});

step!(gate_participants, |w, a| {
    let env = w.env()?;
    let sid = env.backend.conversation_sid(a.text(0))?;
    env.backend.close_gate(Gate::Participants(sid));
    Ok(())
});

step!(open_last_page, |w, a| {
    w.env()?.backend.open_gate(&Gate::LastListPage);
    Ok(())
});

step!(open_participants, |w, a| {
    let env = w.env()?;
    let sid = env.backend.conversation_sid(a.text(0))?;
    env.backend.open_gate(&Gate::Participants(sid));
    Ok(())
});

/// Sends `command` without waiting and remembers it as `name`.
pub(crate) fn leave_in_flight(w: &mut TckWorld, name: String, command: Command) -> StepResult {
    let env = w.env()?;
    let id = env.driver.submit(command)?;
    env.pending.insert(name, id);
    Ok(())
}

/// The request id of the operation called `name` in step text.
pub(crate) fn pending(w: &mut TckWorld, name: &str) -> Result<u64, StepFail> {
    w.env()?
        .pending
        .get(name)
        .copied()
        .ok_or_else(|| StepFail::Harness(format!("no earlier step issued the {name}")))
}

step!(update_user, |w, a| {
    let attributes = a.json(1)?;
    leave_in_flight(
        w,
        "user update".into(),
        Command::UpdateAttributes {
            target: Target::User,
            attributes,
        },
    )
});

step!(update_conversation, |w, a| {
    let attributes = a.json(2)?;
    let sid = w.env()?.backend.conversation_sid(a.text(1))?;
    leave_in_flight(
        w,
        format!("update of \"{}\"", a.text(1)),
        Command::UpdateAttributes {
            target: Target::Conversation { sid },
            attributes,
        },
    )
});

step!(send_message, |w, a| {
    let sid = w.env()?.backend.conversation_sid(a.text(2))?;
    leave_in_flight(
        w,
        format!("message to \"{}\"", a.text(2)),
        Command::SendMessage {
            conversation: sid,
            body: a.text(1).to_owned(),
        },
    )
});

step!(client_ops_waited, |w, a| {
    let instance = w.instance()?;
    let outcome = checks::client_ops_wait_for_sync(&w.env()?.journal.snapshot(), &instance);
    w.check(outcome)
});

step!(conversation_ops_waited, |w, a| {
    let instance = w.instance()?;
    let outcome = checks::conversation_ops_wait_for_sync(&w.env()?.journal.snapshot(), &instance);
    w.check(outcome)
});

step!(completes_or_refused, |w, a| {
    let name = a.text(0);
    let id = pending(w, name)?;
    let reply = w.env()?.driver.reply(id);
    for rule in w.scoped(&[SYNC_1, SYNC_2])? {
        let outcome = match &reply {
            Some(Outcome::Ok(_)) => CheckOutcome::pass(
                rule,
                format!("the {name} completed once synchronization allowed it"),
            ),
            Some(Outcome::Error(e)) if e.kind == ErrorKind::NotSynchronized => {
                CheckOutcome::pass(rule, format!("the {name} was refused as not synchronized"))
            }
            Some(Outcome::Error(e)) => {
                CheckOutcome::fail(rule, format!("the {name} failed: {e}"), vec![])
            }
            None => CheckOutcome::fail(
                rule,
                format!(
                    "the {name} neither completed nor was refused after synchronization finished and the client settled"
                ),
                vec![],
            ),
        };
        w.check(outcome)?;
    }
    Ok(())
});

step!(finished_sync, |w, a| {
    let instance = w.instance()?;
    let entries = w.env()?.journal.snapshot();
    for rule in w.scoped(&[SYNC_1, SYNC_3])? {
        let mut outcome = checks::client_finished_sync(&entries, &instance);
        outcome.rule = rule;
        w.check(outcome)?;
    }
    Ok(())
});

step!(never_backwards, |w, a| {
    let outcome = checks::sync_status_only_moves_forward(&w.env()?.journal.snapshot());
    debug_assert_eq!(outcome.rule, SYNC_3);
    w.check(outcome)
});
