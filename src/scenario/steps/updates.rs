//! Steps about updates: held Updated events, other writers, stale replays, and the UPD
//! assertions.

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, Outcome, Target};
use crate::checks::updates as checks;
use crate::scenario::params::{Actor, Json, Named, Operation, expr};
use crate::scenario::world::{StepFail, StepResult, TckWorld};
use crate::wire::ObjectKey;

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("the backend holds the Updated events of {conversation}"),
        hold_conversation,
    )
    .given(
        None,
        expr("the backend holds the Updated events of {actor}'s user"),
        hold_user,
    )
    .when(
        None,
        expr("the backend releases the held events of {conversation}"),
        release_conversation,
    )
    .when(
        None,
        expr("the backend releases the held events of {actor}'s user"),
        release_user,
    )
    .when(
        None,
        expr("another writer sets the attributes of {conversation} to {json}"),
        other_writer,
    )
    .when(
        None,
        expr("the backend re-delivers a stale Updated event for {conversation}"),
        stale,
    )
    .when(
        None,
        expr("the backend delivers a stale Updated event for {conversation} past the hold"),
        stale_past_hold,
    )
    .when(
        None,
        expr("another writer sets {actor}'s user attributes to {json}"),
        other_writer_user,
    )
    .then(
        None,
        expr("{actor}'s {operation} has not completed"),
        not_completed,
    )
    .then(
        None,
        expr("{actor}'s {operation} completed after its Updated event was delivered"),
        completed_after_event,
    )
    .then(
        None,
        expr("{actor}'s {operation} reports the backend's value"),
        reports_backend_value,
    )
    .then(
        None,
        expr("{actor} reads the backend's value of {conversation}"),
        reads_backend_value,
    )
    .then(
        None,
        expr("{actor} reads the backend's value of her/his/their user"),
        reads_user_value,
    )
}

fn conversation_key(w: &mut TckWorld, name: &Named) -> Result<ObjectKey, StepFail> {
    Ok(ObjectKey::Conversation(
        w.harness()?.backend.conversation_sid(&name.0)?,
    ))
}

step!(hold_conversation, |w, name: Named| {
    let key = conversation_key(w, &name)?;
    w.harness()?.backend.hold(key);
    Ok(())
});

step!(hold_user, |w, actor: Actor| {
    w.harness()?.backend.hold(ObjectKey::User(actor.0));
    Ok(())
});

step!(release_conversation, |w, name: Named| {
    let key = conversation_key(w, &name)?;
    w.harness()?.backend.release(&key);
    Ok(())
});

step!(release_user, |w, actor: Actor| {
    w.harness()?.backend.release(&ObjectKey::User(actor.0));
    Ok(())
});

step!(other_writer, |w, name: Named, attributes: Json| {
    let key = conversation_key(w, &name)?;
    w.harness()?.backend.external_update(&key, attributes.0)?;
    Ok(())
});

step!(stale, |w, name: Named| {
    let key = conversation_key(w, &name)?;
    w.harness()?.backend.deliver_stale(&key)?;
    Ok(())
});

step!(stale_past_hold, |w, name: Named| {
    let key = conversation_key(w, &name)?;
    w.harness()?.backend.deliver_stale_past_hold(&key)?;
    Ok(())
});

step!(other_writer_user, |w, actor: Actor, attributes: Json| {
    w.harness()?
        .backend
        .external_update(&ObjectKey::User(actor.0), attributes.0)?;
    Ok(())
});

step!(not_completed, |w, actor: Actor, op: Operation| {
    w.client_of(&actor)?;
    let id = w.pending(&op)?;
    w.expect(&[&checks::COMPLETES_ON_EVENT])?;
    match w.harness()?.driver.reply(id) {
        None => Ok(()),
        Some(Outcome::Ok(_)) => Err(StepFail::Harness(format!(
            "{actor}'s {op} completed although its event was to be held: the hold did not hold"
        ))),
        Some(Outcome::Error(e)) => Err(StepFail::Harness(format!("{actor}'s {op} failed: {e}"))),
    }
});

step!(completed_after_event, |w, actor: Actor, op: Operation| {
    w.client_of(&actor)?;
    w.issued(&op)?;
    w.expect(&[
        &checks::COMPLETES_ON_EVENT,
        &checks::COMPLETES_ONCE_DELIVERED,
    ])
});

step!(reports_backend_value, |w, actor: Actor, op: Operation| {
    w.client_of(&actor)?;
    w.issued(&op)?;
    w.expect(&[&checks::SHOWS_BACKEND_VALUE, &checks::STALE_NEVER_WINS])
});

/// `actor` reads `target` without asking the backend; what it shows is judged.
async fn read_and_judge(w: &mut TckWorld, actor: &Actor, target: Target) -> StepResult {
    w.client_of(actor)?;
    let read = w
        .harness()?
        .driver
        .call(Command::ReadAttributes {
            target: target.clone(),
        })
        .await?;
    if let Outcome::Error(e) = read {
        return Err(StepFail::Harness(format!(
            "{actor} could not read {target}: {e}"
        )));
    }
    w.expect(&[&checks::SHOWS_BACKEND_VALUE, &checks::STALE_NEVER_WINS])
}

step!(reads_backend_value, |w, actor: Actor, name: Named| {
    let sid = w.harness()?.backend.conversation_sid(&name.0)?;
    read_and_judge(w, &actor, Target::Conversation { sid }).await
});

step!(reads_user_value, |w, actor: Actor| {
    read_and_judge(w, &actor, Target::User).await
});
