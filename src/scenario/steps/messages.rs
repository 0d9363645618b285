//! Steps about messages: opening conversations, fetching messages, other participants' posts,
//! edits and removals, and the MSG assertions.

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, Outcome, ReplyBody};
use crate::checks::messages as checks;
use crate::scenario::params::{Actor, Count, MessageChange, Named, expr};
use crate::scenario::world::{StepFail, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.when(None, expr("{actor} opens {conversation}"), open)
        .when(
            None,
            expr("{actor} fetches the last {count} message(s) of {conversation}"),
            fetch,
        )
        .when(
            None,
            expr("another participant {message_change} message {count} of {conversation}"),
            change,
        )
        .when(
            None,
            expr("{actor} posts a message to {conversation}"),
            post,
        )
        .when(
            None,
            expr("{actor} posts {count} messages to {conversation}"),
            post_many,
        )
        .then(
            None,
            expr("no messages were fetched before the app asked for them"),
            none_fetched,
        )
        .then(
            None,
            expr("{actor}'s client reported the new message in {conversation}"),
            new_message_reported,
        )
        .then(
            None,
            expr("{actor}'s client reported each new message in {conversation} once"),
            new_message_reported,
        )
        .then(
            None,
            expr("message changes were reported for fetched messages only"),
            changes_for_fetched,
        )
}

/// Runs `command` as `actor` and demands success.
async fn run_as(w: &mut TckWorld, actor: &Actor, command: Command) -> Result<ReplyBody, StepFail> {
    w.client_of(actor)?;
    let name = command.name();
    match w.harness()?.driver.call(command).await? {
        Outcome::Ok(body) => Ok(body),
        Outcome::Error(e) => Err(StepFail::Harness(format!("{actor}'s `{name}` failed: {e}"))),
    }
}

step!(open, |w, actor: Actor, name: Named| {
    let sid = w.harness()?.backend.conversation_sid(&name.0)?;
    run_as(w, &actor, Command::OpenConversation { conversation: sid }).await?;
    w.settle().await
});

step!(fetch, |w, actor: Actor, count: Count, name: Named| {
    let sid = w.harness()?.backend.conversation_sid(&name.0)?;
    let command = Command::FetchMessages {
        conversation: sid,
        count: count.small()?,
    };
    run_as(w, &actor, command).await?;
    w.settle().await
});

step!(change, |w,
               what: MessageChange,
               index: Count,
               name: Named| {
    let h = w.harness()?;
    let sid = h.backend.conversation_sid(&name.0)?;
    match what {
        MessageChange::Edit => h.backend.edit_message(&sid, index.0, "edited")?,
        MessageChange::Remove => h.backend.remove_message(&sid, index.0)?,
    }
    Ok(())
});

step!(post, |w, author: Actor, name: Named| {
    let h = w.harness()?;
    let sid = h.backend.conversation_sid(&name.0)?;
    h.backend
        .post_message(&sid, &author.0, &format!("hello from {author}"))?;
    Ok(())
});

step!(post_many, |w, author: Actor, count: Count, name: Named| {
    let h = w.harness()?;
    let sid = h.backend.conversation_sid(&name.0)?;
    for n in 1..=count.small()? {
        h.backend
            .post_message(&sid, &author.0, &format!("message {n} from {author}"))?;
    }
    Ok(())
});

step!(none_fetched, |w| {
    w.expect(&[&checks::NO_FETCH_BEFORE_ASKED])
});

step!(new_message_reported, |w, actor: Actor, name: Named| {
    w.client_of(&actor)?;
    w.harness()?.backend.conversation_sid(&name.0)?;
    w.expect(&[&checks::NEW_MESSAGES_REPORTED])
});

step!(changes_for_fetched, |w| {
    w.expect(&[
        &checks::FETCHED_CHANGES_REPORTED,
        &checks::UNFETCHED_CHANGES_SILENT,
    ])
});
