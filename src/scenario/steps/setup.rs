//! Steps that set the stage: backend contents, starting the client, settling, passing time.

use std::time::Duration;

use cucumber::step::Collection;

use super::step;
use crate::adapter::{ClientSyncStatus, Observation, Outcome};
use crate::backend::fixture::Fixture;
use crate::scenario::params::{Actor, Actors, Count, Text, expr};
use crate::scenario::world::{StepFail, StepResult, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(None, expr("the backend has the {text} fixture"), fixture)
        .given(
            None,
            expr("{actor} is in {count} more conversations"),
            more_conversations,
        )
        .given(
            None,
            expr("{actor} has {count} conversations with {actors}"),
            has_conversations,
        )
        .given(
            None,
            expr("{actor}'s client has started and synchronized"),
            started_and_synced,
        )
        .when(None, expr("{actor}'s client starts"), start)
        .when(
            None,
            expr("{actor}'s client starts without waiting"),
            start_without_waiting,
        )
        .when(None, expr("the client settles"), settle)
        .when(None, expr("{count} second(s) pass(es)"), seconds_pass)
        .when(None, expr("{count} minute(s) pass(es)"), minutes_pass)
        .when(None, expr("{count} hour(s) pass(es)"), hours_pass)
        .when(None, expr("{count} day(s) pass(es)"), days_pass)
}

step!(fixture, |w, name: Text| {
    let f = Fixture::named(&name.0).map_err(|e| StepFail::Harness(e.to_string()))?;
    w.harness()?.backend.load_fixture(&name.0, &f);
    Ok(())
});

step!(more_conversations, |w, actor: Actor, n: Count| {
    w.harness()?
        .backend
        .seed_conversations("extra", n.0 as usize, &[actor.0]);
    Ok(())
});

step!(
    has_conversations,
    |w, actor: Actor, n: Count, others: Actors| {
        let members: Vec<String> = std::iter::once(actor.0).chain(others.0).collect();
        w.harness()?
            .backend
            .seed_conversations("c", n.0 as usize, &members);
        Ok(())
    }
);

/// Starts `actor`'s client without waiting for `start`'s reply.
fn submit_start(w: &mut TckWorld, actor: &Actor) -> StepResult {
    let h = w.harness()?;
    let command = h.start_command(&actor.0);
    let id = h.driver.submit(command)?;
    w.start = Some(id);
    w.client = Some(actor.clone());
    Ok(())
}

/// Starts `actor`'s client and waits for `start`'s reply. With a settling adapter the wait ends
/// when the adapter is quiet: a client that will not be created while part of its list is
/// unavailable cannot go through this scenario (LIST-1 judges that), so the scenario stops.
pub(crate) async fn start_client(w: &mut TckWorld, actor: &Actor) -> StepResult {
    submit_start(w, actor)?;
    let id = w
        .start
        .ok_or_else(|| StepFail::Harness("start was not sent".into()))?;
    let h = w.harness()?;
    let outcome = if h.driver.hello().capabilities.settle {
        h.driver.settle().await?;
        h.driver.reply(id).ok_or_else(|| {
            StepFail::NotApplicable(
                "the client was not created while part of its subscribed list was unavailable (LIST-1 judges that), so this scenario could not go on".into(),
            )
        })?
    } else {
        h.driver.wait(id).await?
    };
    match outcome {
        Outcome::Ok(_) => Ok(()),
        Outcome::Error(e) => Err(StepFail::Harness(format!(
            "{actor}'s client failed to start: {e}"
        ))),
    }
}

step!(start, |w, actor: Actor| {
    start_client(w, &actor).await?;
    w.settle().await
});

step!(start_without_waiting, |w, actor: Actor| {
    submit_start(w, &actor)
});

step!(started_and_synced, |w, actor: Actor| {
    start_client(w, &actor).await?;
    w.settle().await?;
    let instance = w.client_of(&actor)?;
    // Stacks without a sync status (the JS SDK has none) are synchronized once settled.
    let statuses: Vec<ClientSyncStatus> = w
        .harness()?
        .journal
        .snapshot()
        .into_iter()
        .filter(|e| e.instance.as_ref() == Some(&instance))
        .filter_map(|e| match e.observation() {
            Some(Observation::ClientSync { status }) => Some(*status),
            _ => None,
        })
        .collect();
    if !statuses.is_empty() && !statuses.contains(&ClientSyncStatus::Completed) {
        return Err(StepFail::Harness(format!(
            "precondition: {actor}'s client did not report its sync completed after settling on an ungated backend"
        )));
    }
    Ok(())
});

step!(settle, |w| { w.settle().await });

step!(seconds_pass, |w, secs: Count| {
    w.advance(Duration::from_secs(secs.0)).await
});

step!(minutes_pass, |w, minutes: Count| {
    w.advance(Duration::from_secs(minutes.0.saturating_mul(60)))
        .await
});

step!(hours_pass, |w, hours: Count| {
    w.advance(Duration::from_secs(hours.0.saturating_mul(3600)))
        .await
});

step!(days_pass, |w, days: Count| {
    w.advance(Duration::from_secs(days.0.saturating_mul(86_400)))
        .await
});
