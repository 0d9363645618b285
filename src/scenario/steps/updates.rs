//! Steps about updates: held Updated events, other writers, stale replays, UPD checks.

use cucumber::step::Collection;

use super::sync::pending;
use super::{re, step};
use crate::adapter::{Command, Outcome, Target};
use crate::backend::state::ObjectKey;
use crate::checks::updates as checks;
use crate::rules::ids::{UPD_2, UPD_3};
use crate::scenario::world::{StepFail, TckWorld};

const OPERATION: &str = r#"(user update|update of "[^"]+")"#;

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        re(r#"^the backend holds the Updated events of "([^"]+)"$"#),
        hold_conversation,
    )
    .given(
        None,
        re(r"^the backend holds the Updated events of (\w+)'s user$"),
        hold_user,
    )
    .when(
        None,
        re(r#"^the backend releases the held events of "([^"]+)"$"#),
        release_conversation,
    )
    .when(
        None,
        re(r"^the backend releases the held events of (\w+)'s user$"),
        release_user,
    )
    .when(
        None,
        re(r#"^another writer sets the attributes of "([^"]+)" to (\{.*\})$"#),
        other_writer,
    )
    .when(
        None,
        re(r#"^the backend re-delivers a stale Updated event for "([^"]+)"$"#),
        stale,
    )
    .then(
        None,
        re(&format!(r"^(\w+)'s {OPERATION} has not completed$")),
        not_completed,
    )
    .then(
        None,
        re(&format!(
            r"^(\w+)'s {OPERATION} completed after its Updated event was delivered$"
        )),
        completed_after_event,
    )
    .then(
        None,
        re(&format!(
            r"^(\w+)'s {OPERATION} reports the backend's value$"
        )),
        reports_backend_value,
    )
    .then(
        None,
        re(r#"^(\w+) reads the backend's value of "([^"]+)"$"#),
        reads_backend_value,
    )
}

fn conversation_key(w: &mut TckWorld, name: &str) -> Result<ObjectKey, StepFail> {
    Ok(ObjectKey::Conversation(
        w.env()?.backend.conversation_sid(name)?,
    ))
}

/// The object an operation named in step text acts on.
fn operation_key(w: &mut TckWorld, identity: &str, operation: &str) -> Result<ObjectKey, StepFail> {
    match operation
        .strip_prefix("update of \"")
        .and_then(|s| s.strip_suffix('"'))
    {
        Some(name) => conversation_key(w, name),
        None => Ok(ObjectKey::User(identity.to_owned())),
    }
}

step!(hold_conversation, |w, a| {
    let key = conversation_key(w, a.text(0))?;
    w.env()?.backend.hold(key);
    Ok(())
});

step!(hold_user, |w, a| {
    w.env()?.backend.hold(ObjectKey::User(a.text(0).to_owned()));
    Ok(())
});

step!(release_conversation, |w, a| {
    let key = conversation_key(w, a.text(0))?;
    w.env()?.backend.release(&key);
    Ok(())
});

step!(release_user, |w, a| {
    w.env()?
        .backend
        .release(&ObjectKey::User(a.text(0).to_owned()));
    Ok(())
});

step!(other_writer, |w, a| {
    let attributes = a.json(1)?;
    let key = conversation_key(w, a.text(0))?;
    w.env()?.backend.external_update(&key, attributes)?;
    Ok(())
});

step!(stale, |w, a| {
    let key = conversation_key(w, a.text(0))?;
    w.env()?.backend.deliver_stale(&key)?;
    Ok(())
});

step!(not_completed, |w, a| {
    let id = pending(w, a.text(1))?;
    let outcome = checks::update_still_pending(
        &w.env()?.journal.snapshot(),
        id,
        &format!("the {}", a.text(1)),
    );
    w.check(outcome)
});

step!(completed_after_event, |w, a| {
    let id = pending(w, a.text(1))?;
    let key = operation_key(w, a.text(0), a.text(1))?;
    let instance = w.instance()?;
    let entries = w.env()?.journal.snapshot();
    let outcome = checks::update_completed_after_event(
        &entries,
        &instance,
        id,
        &key.to_string(),
        &format!("the {}", a.text(1)),
    );
    w.check(outcome)
});

step!(reports_backend_value, |w, a| {
    let id = pending(w, a.text(1))?;
    let key = operation_key(w, a.text(0), a.text(1))?;
    let env = w.env()?;
    let truth = env
        .backend
        .attributes(&key)
        .ok_or_else(|| StepFail::Harness(format!("the backend has no {key}")))?;
    let reply = env.driver.reply(id);
    let seq = env.journal.next_seq().saturating_sub(1);
    let shown = reply.as_ref().and_then(Outcome::attributes);
    for rule in w.scoped(&[UPD_2])? {
        w.check(checks::shows_backend_value(
            rule,
            &format!("the reply to the {}", a.text(1)),
            shown,
            &truth,
            seq,
        ))?;
    }
    Ok(())
});

step!(reads_backend_value, |w, a| {
    let key = conversation_key(w, a.text(1))?;
    let ObjectKey::Conversation(sid) = key.clone() else {
        unreachable!("conversation_key builds conversations")
    };
    let env = w.env()?;
    let truth = env
        .backend
        .attributes(&key)
        .ok_or_else(|| StepFail::Harness(format!("the backend has no {key}")))?;
    let read = env
        .driver
        .call(Command::ReadAttributes {
            target: Target::Conversation { sid },
        })
        .await?;
    let seq = env.journal.next_seq().saturating_sub(1);
    let shown = read.attributes().cloned();
    for rule in w.scoped(&[UPD_2, UPD_3])? {
        let what = format!("{}'s read of \"{}\"", a.text(0), a.text(1));
        w.check(checks::shows_backend_value(
            rule,
            &what,
            shown.as_ref(),
            &truth,
            seq,
        ))?;
    }
    Ok(())
});
