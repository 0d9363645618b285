//! Steps about the client's lifecycle: network outages of each kind, background and foreground,
//! logout, a switch of login, kill, and using what an ended client left behind; LIFE and REL
//! assertions.
//!
//! A lifecycle command the adapter says it lacks (its `commands` capability), or answers
//! `unsupported`, makes the scenario N/A: a server-side SDK has no background, and that is not a
//! failure.

use std::time::Duration;

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, CommandKind, ErrorKind, HandleId, Observation, Outcome, Target};
use crate::backend::Outage;
use crate::checks::lifecycle as checks;
use crate::scenario::params::{Actor, Count, Named, expr};
use crate::scenario::world::{StepFail, StepResult, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.when(None, expr("the network goes down"), network_down)
        .when(None, expr("the network goes half-open"), network_half_open)
        .when(None, expr("{actor}'s event socket goes silent"), socket_silent)
        .when(None, expr("the network comes back"), network_back)
        .when(
            None,
            expr("the network flaps {count} times, half-open for {count} seconds and up for {count} seconds each time"),
            flap,
        )
        .when(None, expr("{actor}'s app goes to the background"), background)
        .when(
            None,
            expr("{actor}'s app returns to the foreground"),
            foreground,
        )
        .when(
            None,
            expr("{actor}'s app goes to the background and returns {count} times, {count} seconds each time, while {actor} posts a message to {conversation}"),
            background_cycles,
        )
        .when(None, expr("{actor} logs out"), logout)
        .when(None, expr("{actor}'s app is killed"), kill)
        .when(None, expr("{actor} uses the closed client"), use_closed_client)
        .when(
            None,
            expr("the app releases the handles it kept from the closed client"),
            release_old_handles,
        )
        .then(
            None,
            expr("the same client reconnected and received what it missed"),
            came_through_outage,
        )
        .then(
            None,
            expr("the same client resumed and received what it missed"),
            came_back_from_background,
        )
        .then(
            None,
            expr("no client was shut down without a logout"),
            no_stray_shutdown,
        )
        .then(
            None,
            expr("the closed client was never used again"),
            closed_client_retired,
        )
        .then(
            None,
            expr("nothing of the closed client was reachable"),
            closed_client_refused,
        )
        .then(None, expr("the client kept one event socket"), one_socket)
        .then(
            None,
            expr("the reconnect attempts stayed within the backoff bounds"),
            bounded_backoff,
        )
        .then(
            None,
            expr("every handle was released before the client shut down"),
            handles_released_first,
        )
}

/// Sends an app `command` and waits for its answer: N/A when the adapter lacks it (or answers
/// it `unsupported`), a harness error when it fails.
pub(super) async fn send(w: &mut TckWorld, command: Command) -> StepResult {
    let kind = command.kind();
    let h = w.harness()?;
    if !h.driver.hello().capabilities.implements(kind) {
        return Err(StepFail::NotApplicable(format!(
            "the adapter does not implement `{kind}` (its capabilities say so)"
        )));
    }
    match h.driver.call(command).await? {
        Outcome::Ok(_) => Ok(()),
        Outcome::Error(e) if e.kind == ErrorKind::Unsupported => {
            Err(StepFail::NotApplicable(format!(
                "the adapter answered `{kind}` as unsupported: {}",
                e.message
            )))
        }
        Outcome::Error(e) => Err(StepFail::Harness(format!("`{kind}` failed: {e}"))),
    }
}

/// Breaks the network, then lets the client notice (settled) before anything else happens, so
/// its reaction starts at the same virtual instant in every run.
async fn outage(w: &mut TckWorld, outage: Outage) -> StepResult {
    w.harness()?.backend.outage(outage).await?;
    w.settle().await
}

async fn restore(w: &mut TckWorld) -> StepResult {
    w.harness()?.backend.restore().await?;
    w.settle().await
}

step!(network_down, |w| { outage(w, Outage::Refuse).await });

step!(network_half_open, |w| { outage(w, Outage::Drop).await });

step!(socket_silent, |w, actor: Actor| {
    w.client_of(&actor)?;
    outage(w, Outage::Silence).await
});

step!(network_back, |w| { restore(w).await });

step!(flap, |w, times: Count, down: Count, up: Count| {
    for _ in 0..times.small()? {
        outage(w, Outage::Drop).await?;
        w.advance(Duration::from_secs(down.0)).await?;
        restore(w).await?;
        w.advance(Duration::from_secs(up.0)).await?;
    }
    Ok(())
});

step!(background, |w, actor: Actor| {
    w.client_of(&actor)?;
    send(w, Command::Background).await?;
    w.settle().await
});

step!(foreground, |w, actor: Actor| {
    w.client_of(&actor)?;
    send(w, Command::Foreground).await?;
    w.settle().await
});

step!(background_cycles, |w,
                          actor: Actor,
                          times: Count,
                          secs: Count,
                          author: Actor,
                          name: Named| {
    w.client_of(&actor)?;
    let sid = w.harness()?.backend.conversation_sid(&name.0)?;
    for n in 1..=times.small()? {
        send(w, Command::Background).await?;
        w.settle().await?;
        w.harness()?.backend.post_message(
            &sid,
            &author.0,
            &format!("posted while {actor} was away ({n})"),
        )?;
        w.advance(Duration::from_secs(secs.0)).await?;
        send(w, Command::Foreground).await?;
        w.settle().await?;
    }
    Ok(())
});

step!(logout, |w, actor: Actor| {
    w.client_of(&actor)?;
    send(w, Command::Logout).await?;
    w.settle().await
});

step!(kill, |w, actor: Actor| {
    w.client_of(&actor)?;
    send(w, Command::Kill).await?;
    w.settle().await
});

step!(use_closed_client, |w, actor: Actor| {
    w.client_of(&actor)?;
    // Each answer is judged (LIFE-4): any answer is the client's to give. Several kinds of
    // command, so a client that refuses only some of them is seen.
    let general = w.harness()?.backend.conversation_sid("general")?;
    for command in [
        Command::ListConversations,
        Command::ReadAttributes {
            target: Target::User,
        },
        Command::UpdateAttributes {
            target: Target::User,
            attributes: serde_json::json!({"after": "logout"}),
        },
        Command::OpenConversation {
            conversation: general.clone(),
        },
        Command::FetchMessages {
            conversation: general,
            count: 1,
        },
    ] {
        if w.harness()?
            .driver
            .hello()
            .capabilities
            .implements(command.kind())
        {
            w.harness()?.driver.call(command).await?;
        }
    }
    w.settle().await
});

step!(release_old_handles, |w| {
    let h = w.harness()?;
    // The handles reported before the last client ended.
    let entries = h.journal.snapshot();
    let ended = entries
        .iter()
        .rev()
        .find(|e| matches!(e.observation(), Some(Observation::ClientShutDown { .. })))
        .map_or(0, |e| e.seq);
    let old: Vec<HandleId> = entries
        .iter()
        .filter(|e| e.seq < ended)
        .filter_map(|e| match e.observation() {
            Some(Observation::HandleAcquired { handle }) => Some(handle.clone()),
            _ => None,
        })
        .collect();
    if old.is_empty() {
        return Err(StepFail::Harness(
            "precondition: the closed client never reported a handle acquired".into(),
        ));
    }
    if !h
        .driver
        .hello()
        .capabilities
        .implements(CommandKind::Release)
    {
        return Err(StepFail::NotApplicable(
            "the adapter does not implement `release`".into(),
        ));
    }
    for handle in old {
        h.driver.call(Command::Release { handle }).await?;
    }
    w.settle().await
});

step!(came_through_outage, |w| {
    w.expect(&[
        &checks::SAME_INSTANCE_AFTER_OUTAGE,
        &checks::OUTAGE_EVENTS_ONCE,
    ])
});

step!(came_back_from_background, |w| {
    w.expect(&[
        &checks::SAME_INSTANCE_AFTER_BACKGROUND,
        &checks::BACKGROUND_EVENTS_ONCE,
    ])
});

step!(no_stray_shutdown, |w| {
    w.expect(&[&checks::SHUTDOWN_ONLY_ON_LOGOUT])
});

step!(closed_client_retired, |w| {
    w.expect(&[&checks::OLD_INSTANCE_RETIRED])
});

step!(closed_client_refused, |w| {
    w.expect(&[&checks::ENDED_CLIENT_REFUSES])
});

step!(one_socket, |w| { w.expect(&[&checks::ONE_SOCKET]) });

step!(bounded_backoff, |w| {
    w.expect(&[&checks::BOUNDED_BACKOFF])
});

step!(handles_released_first, |w| {
    w.expect(&[&checks::HANDLES_RELEASED_FIRST])
});
