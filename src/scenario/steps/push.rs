//! Steps about push registration: the device token the OS hands the app, a new one later, a
//! device some other identity registered long ago, a year of daily starts; PUSH assertions.
//!
//! A step that needs `device_token_changed` is N/A when the adapter lacks it.

use std::time::Duration;

use cucumber::step::Collection;

use super::setup::start_client;
use super::step;
use crate::adapter::{Command, CommandKind};
use crate::backend::{BindingChange, BindingType, Fact};
use crate::checks::push as checks;
use crate::journal::EntryKind;
use crate::scenario::params::{Actor, Count, Text, expr};
use crate::scenario::world::{StepFail, TckWorld};

/// A day of virtual time.
const DAY: Duration = Duration::from_secs(86_400);

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("the device's push token is {text}"),
        device_token,
    )
    .given(
        None,
        expr("{actor} registered the device {text} for push"),
        registered_elsewhere,
    )
    .when(
        None,
        expr("the OS hands the app the new push token {text}"),
        token_rotated,
    )
    .when(
        None,
        expr("{actor}'s app starts daily for {count} days"),
        daily_starts,
    )
    .then(
        None,
        expr("every start left a push registration"),
        registered_after_start,
    )
    .then(
        None,
        expr("the unchanged push token was not registered again"),
        not_registered_again,
    )
    .then(
        None,
        expr("the push registration follows the new token"),
        follows_rotation,
    )
    .then(
        None,
        expr("the previous identity's push registration is gone"),
        previous_identity_unbound,
    )
    .then(
        None,
        expr("{actor}'s idle push binding has expired"),
        idle_binding_expired,
    )
}

step!(device_token, |w, token: Text| {
    w.harness()?.device_token = Some(token.0);
    Ok(())
});

step!(registered_elsewhere, |w, actor: Actor, address: Text| {
    w.harness()?
        .backend
        .register_binding(&actor.0, &address.0, BindingType::Apn);
    Ok(())
});

step!(token_rotated, |w, token: Text| {
    w.harness()?.device_token = Some(token.0.clone());
    super::lifecycle::send(
        w,
        Command::DeviceTokenChanged {
            device_token: token.0,
        },
    )
    .await?;
    w.settle().await
});

step!(daily_starts, |w, actor: Actor, days: Count| {
    let h = w.harness()?;
    let caps = &h.driver.hello().capabilities;
    if !caps.virtual_time || !caps.implements(CommandKind::Kill) {
        return Err(StepFail::NotApplicable(
            "a year of daily starts needs virtual time and `kill`".into(),
        ));
    }
    for _ in 0..days.0 {
        // Started and settled (the start step settles); a kill is answered once the client's
        // socket is closed, so nothing is left to settle before the day passes.
        start_client(w, &actor).await?;
        super::lifecycle::send(w, Command::Kill).await?;
        // No client runs: the day passes in one step.
        let h = w.harness()?;
        h.driver.advance_in_steps(&h.clock, DAY, DAY).await?;
    }
    Ok(())
});

step!(registered_after_start, |w| {
    w.expect(&[&checks::REGISTERED_AFTER_START])
});

step!(not_registered_again, |w| {
    w.expect(&[&checks::NO_REREGISTRATION])
});

step!(follows_rotation, |w| {
    w.expect(&[&checks::FOLLOWS_TOKEN_ROTATION])
});

step!(previous_identity_unbound, |w| {
    w.expect(&[&checks::PREVIOUS_IDENTITY_UNBOUND])
});

step!(idle_binding_expired, |w, actor: Actor| {
    // PUSH-5 is guidance, not judged: this shows the backend models the year-long idle expiry.
    let h = w.harness()?;
    if let Some(b) = h.backend.bindings().iter().find(|b| b.identity == actor.0) {
        return Err(StepFail::Harness(format!(
            "{actor}'s binding for `{}` is still there",
            b.address
        )));
    }
    let expired = h.journal.snapshot().iter().any(|e| {
        matches!(&e.kind, EntryKind::Backend(Fact::Binding(b))
            if b.identity == actor.0 && b.change == BindingChange::Expired)
    });
    if expired {
        Ok(())
    } else {
        Err(StepFail::Harness(format!(
            "the journal shows no expiry of {actor}'s binding"
        )))
    }
});
