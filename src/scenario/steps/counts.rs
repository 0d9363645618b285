//! Steps about count reads: the cache lifetime a scenario is judged with, reading a count once
//! or many times; COUNT assertions.
//!
//! Every `get_count` goes through the driver, which journals the backend's counts just before
//! it. A step that reads a count is N/A when the adapter lacks `get_count`.

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, CommandKind, CountKind, ErrorKind, Outcome};
use crate::checks::counts as checks;
use crate::journal::{Checkpoint, HarnessEntry};
use crate::scenario::params::{Actor, Count, Named, expr};
use crate::scenario::world::{StepFail, StepResult, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("count reads are judged with a cache lifetime of {count} seconds"),
        lifetime,
    )
    .when(
        None,
        expr("{actor} reads the participant count of {conversation}"),
        read_participants,
    )
    .when(
        None,
        expr("{actor} reads the message count of {conversation}"),
        read_messages,
    )
    .when(
        None,
        expr("{actor} reads the message count of {conversation} {count} times"),
        read_messages_times,
    )
    .when(
        None,
        expr("{actor} reads the unread count of {conversation}"),
        read_unread,
    )
    .then(
        None,
        expr("the count was requested once per cache lifetime"),
        once_per_lifetime,
    )
    .then(
        None,
        expr("the count read after the lifetime matches the backend"),
        converged,
    )
    .then(None, expr("the unread count was null"), unread_null)
}

step!(lifetime, |w, secs: Count| {
    w.harness()?.journal.note(
        None,
        HarnessEntry::Checkpoint(Checkpoint::CountCacheLifetime {
            ms: secs.0.saturating_mul(1000),
        }),
    );
    Ok(())
});

/// Reads `kind` of `name` `times` times as `actor`: N/A when the adapter lacks `get_count`.
/// Whatever the client answers is judged by the COUNT checks.
async fn read(
    w: &mut TckWorld,
    actor: &Actor,
    name: &Named,
    kind: CountKind,
    times: u64,
) -> StepResult {
    w.client_of(actor)?;
    let h = w.harness()?;
    if !h
        .driver
        .hello()
        .capabilities
        .implements(CommandKind::GetCount)
    {
        return Err(StepFail::NotApplicable(
            "the adapter does not implement `get_count` (its capabilities say so)".into(),
        ));
    }
    let conversation = h.backend.conversation_sid(&name.0)?;
    for _ in 0..times {
        let outcome = h
            .driver
            .call(Command::GetCount {
                conversation: conversation.clone(),
                kind,
            })
            .await?;
        if let Outcome::Error(e) = outcome
            && e.kind == ErrorKind::Unsupported
        {
            return Err(StepFail::NotApplicable(format!(
                "the adapter answered `get_count` as unsupported: {}",
                e.message
            )));
        }
    }
    Ok(())
}

step!(read_participants, |w, actor: Actor, name: Named| {
    read(w, &actor, &name, CountKind::Participants, 1).await
});

step!(read_messages, |w, actor: Actor, name: Named| {
    read(w, &actor, &name, CountKind::Messages, 1).await
});

step!(read_messages_times, |w,
                            actor: Actor,
                            name: Named,
                            n: Count| {
    read(w, &actor, &name, CountKind::Messages, n.0).await
});

step!(read_unread, |w, actor: Actor, name: Named| {
    read(w, &actor, &name, CountKind::Unread, 1).await
});

step!(once_per_lifetime, |w| {
    w.expect(&[&checks::ONE_REQUEST_PER_LIFETIME])
});

step!(converged, |w| {
    w.expect(&[&checks::CONVERGES_AFTER_LIFETIME])
});

step!(unread_null, |w| {
    w.expect(&[&checks::UNKNOWN_UNREAD_IS_NULL])
});
