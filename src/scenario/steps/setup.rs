//! Steps that set the stage: backend contents, starting the client, settling, passing time.

use std::time::Duration;

use cucumber::step::Collection;

use super::{re, step};
use crate::adapter::{ClientSyncStatus, Command, Observation, Outcome};
use crate::backend::fixture::Fixture;
use crate::backend::journal::EntryKind;
use crate::scenario::world::{StepFail, StepResult, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        re(r#"^the backend has the "([^"]+)" fixture$"#),
        fixture,
    )
    .given(
        None,
        re(r"^(\w+) is in (\d+) more conversations$"),
        more_conversations,
    )
    .given(
        None,
        re(r"^(\w+)'s client has started and synchronized$"),
        started_and_synced,
    )
    .when(None, re(r"^(\w+)'s client starts$"), start)
    .when(None, re(r"^the client settles$"), settle)
    .when(None, re(r"^(\d+) seconds? pass(?:es)?$"), seconds_pass)
}

step!(fixture, |w, a| {
    let env = w.env()?;
    let f = Fixture::named(a.text(0)).map_err(|e| StepFail::Harness(e.to_string()))?;
    env.backend.load_fixture(a.text(0), &f);
    Ok(())
});

step!(more_conversations, |w, a| {
    let n = a.num(1)? as usize;
    let env = w.env()?;
    env.backend
        .seed_conversations("extra", n, &[a.text(0).to_owned()]);
    Ok(())
});

/// Starts a client for `identity` and waits for `start`'s reply. With a settling adapter the wait
/// ends when the adapter is quiet: a client that will not be created while part of its list is
/// unavailable cannot go through this scenario (LIST-1 judges that), which makes it N/A here.
pub(crate) async fn start_client(w: &mut TckWorld, identity: &str) -> StepResult {
    let env = w.env()?;
    let command = Command::Start {
        identity: identity.to_owned(),
        token_url: env.backend.token_url(),
        rest_url: env.backend.rest_url().to_owned(),
        events_url: env.backend.events_url().to_owned(),
        storage_dir: None,
        device_token: None,
    };
    let outcome = if env.driver.hello().capabilities.settle {
        let id = env.driver.submit(command)?;
        env.driver.settle().await?;
        env.driver.reply(id).ok_or_else(|| {
            StepFail::NotApplicable(
                "the client was not created while part of its subscribed list was unavailable (LIST-1 judges that), so this scenario could not go on".into(),
            )
        })?
    } else {
        env.driver.call(command).await?
    };
    match outcome {
        Outcome::Ok(_) => Ok(()),
        Outcome::Error(e) => Err(StepFail::Harness(format!(
            "the client failed to start: {e}"
        ))),
    }
}

step!(start, |w, a| {
    start_client(w, a.text(0)).await?;
    w.settle().await
});

step!(started_and_synced, |w, a| {
    start_client(w, a.text(0)).await?;
    w.settle().await?;
    let instance = w.instance()?;
    // Stacks without a sync status (the JS SDK has none) are synchronized once settled.
    let statuses: Vec<ClientSyncStatus> = w
        .env()?
        .journal
        .snapshot()
        .into_iter()
        .filter(|e| e.instance.as_ref() == Some(&instance))
        .filter_map(|e| match e.kind {
            EntryKind::Observation {
                observation: Observation::ClientSync { status },
            } => Some(status),
            _ => None,
        })
        .collect();
    let synced = statuses.is_empty() || statuses.contains(&ClientSyncStatus::Completed);
    if !synced {
        return Err(StepFail::Harness(
            "precondition: the client did not report its sync completed after settling on an ungated backend".into(),
        ));
    }
    Ok(())
});

step!(settle, |w, a| { w.settle().await });

step!(seconds_pass, |w, a| {
    let secs = a.num(0)?;
    w.advance(Duration::from_secs(secs)).await
});
