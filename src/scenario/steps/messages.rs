//! Steps about messages: opening conversations, fetching messages, other participants' edits and
//! removals, and the MSG checks.

use cucumber::step::Collection;

use super::{re, step};
use crate::adapter::{Command, Observation, Outcome};
use crate::backend::journal::EntryKind;
use crate::checks::{CheckOutcome, messages as checks};
use crate::rules::ids::MSG_1;
use crate::scenario::world::{StepFail, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.when(None, re(r#"^(\w+) opens "([^"]+)"$"#), open)
        .when(
            None,
            re(r#"^(\w+) fetches the last (\d+) messages? of "([^"]+)"$"#),
            fetch,
        )
        .when(
            None,
            re(r#"^another participant (edits|removes) message (\d+) of "([^"]+)"$"#),
            change,
        )
        .when(None, re(r#"^(\w+) posts a message to "([^"]+)"$"#), post)
        .then(
            None,
            re(r"^no messages were fetched before the app asked for them$"),
            none_fetched,
        )
        .then(
            None,
            re(r#"^the client reported the new message in "([^"]+)"$"#),
            new_message_reported,
        )
        .then(
            None,
            re(r"^message changes were reported for fetched messages only$"),
            changes_for_fetched,
        )
}

async fn expect_ok(w: &mut TckWorld, command: Command) -> Result<serde_json::Value, StepFail> {
    let name = command.name();
    match w.env()?.driver.call(command).await? {
        Outcome::Ok(v) => Ok(v),
        Outcome::Error(e) => Err(StepFail::Harness(format!("`{name}` failed: {e}"))),
    }
}

step!(open, |w, a| {
    let sid = w.env()?.backend.conversation_sid(a.text(1))?;
    expect_ok(w, Command::OpenConversation { conversation: sid }).await?;
    w.settle().await
});

step!(fetch, |w, a| {
    let count: u32 = a
        .num(1)?
        .try_into()
        .map_err(|_| StepFail::Harness("count too large".into()))?;
    let sid = w.env()?.backend.conversation_sid(a.text(2))?;
    expect_ok(
        w,
        Command::FetchMessages {
            conversation: sid,
            count,
        },
    )
    .await?;
    w.settle().await
});

step!(change, |w, a| {
    let index = a.num(1)?;
    let env = w.env()?;
    let sid = env.backend.conversation_sid(a.text(2))?;
    if a.text(0) == "edits" {
        env.backend.edit_message(&sid, index, "edited")?;
    } else {
        env.backend.remove_message(&sid, index)?;
    }
    Ok(())
});

step!(post, |w, a| {
    let env = w.env()?;
    let sid = env.backend.conversation_sid(a.text(1))?;
    env.backend
        .post_message(&sid, "bob", &format!("hello {}", a.text(0)))?;
    Ok(())
});

step!(none_fetched, |w, a| {
    let instance = w.instance()?;
    let outcome = checks::no_messages_before_asked(&w.env()?.journal.snapshot(), &instance);
    w.check(outcome)
});

step!(new_message_reported, |w, a| {
    let sid = w.env()?.backend.conversation_sid(a.text(0))?;
    let instance = w.instance()?;
    let entries = w.env()?.journal.snapshot();
    let mine = || {
        entries
            .iter()
            .filter(|e| e.instance.as_ref() == Some(&instance))
    };
    let reported = mine().any(|e| {
        matches!(&e.kind, EntryKind::Observation { observation: Observation::MessageAdded { conversation, .. } } if *conversation == sid)
    });
    let delivered: Vec<u64> = mine()
        .filter(|e| matches!(&e.kind, EntryKind::Frame { event, target: Some(t), .. } if event == "message_added" && *t == sid))
        .map(|e| e.seq)
        .collect();
    w.check(if reported {
        CheckOutcome::pass(MSG_1, format!("the new message in {sid} was reported without fetching messages"))
    } else {
        CheckOutcome::fail(
            MSG_1,
            format!("a new message was posted to {sid} and its event delivered, but the client never reported it"),
            delivered,
        )
    })
});

step!(changes_for_fetched, |w, a| {
    let instance = w.instance()?;
    let outcome =
        checks::changes_reported_for_fetched_only(&w.env()?.journal.snapshot(), &instance);
    w.check(outcome)
});
