//! Steps about the subscribed list: page sizes and orders, changes at exact points of the page
//! walk, and the LIST assertions on the list the client shows.

use cucumber::step::Collection;

use super::step;
use crate::adapter::{Command, Outcome, ReplyBody};
use crate::backend::{At, Gate, ListAction};
use crate::checks::lists as checks;
use crate::journal::{Checkpoint, HarnessEntry};
use crate::scenario::params::{
    Actor, Actors, Count, Creation, ListChange, Named, Order, When, expr,
};
use crate::scenario::world::{StepFail, TckWorld};

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("the backend serves at most {count} conversations per page"),
        max_page_size,
    )
    .given(
        None,
        expr("the subscribed list is ordered by {order}"),
        order,
    )
    .given(
        None,
        expr("{when} page {count} is served, {conversation} is created for {actors} {creation}"),
        schedule_creation,
    )
    .given(
        None,
        expr("{when} page {count} is served, {conversation} {list_change}"),
        schedule_change,
    )
    .when(None, expr("{conversation} {list_change}"), change_now)
    .when(
        None,
        expr("{conversation} is created for {actors} {creation}"),
        create_now,
    )
    .given(
        None,
        expr("the pages of {actor}'s conversation list are gated from page {count}"),
        gate_pages,
    )
    .when(
        None,
        expr("the gate on {actor}'s conversation list from page {count} is opened"),
        open_pages,
    )
    .then(
        None,
        expr("the client was created before the list was fully fetched"),
        created_early,
    )
    .then(
        None,
        expr("{actor}'s list matches the backend"),
        list_matches,
    )
}

step!(max_page_size, |w, n: Count| {
    w.harness()?.backend.set_max_page_size(n.small()?);
    Ok(())
});

step!(order, |w, order: Order| {
    w.harness()?.backend.set_list_order(order.0);
    Ok(())
});

/// The point of the page walk a step names (pages are numbered from 1 in feature text).
fn point(when: When, page: Count) -> Result<At, StepFail> {
    let page = page
        .small()?
        .checked_sub(1)
        .ok_or_else(|| StepFail::Harness("pages are numbered from 1".into()))?;
    Ok(match when {
        When::Before => At::BeforePage(page),
        When::After => At::AfterPage(page),
    })
}

fn change(name: Named, change: ListChange) -> ListAction {
    let name = name.0;
    match change {
        ListChange::Announce => ListAction::Announce { name },
        ListChange::Touch => ListAction::Touch {
            name,
            attributes: serde_json::json!({ "touched": true }),
        },
        ListChange::Bump => ListAction::Bump { name },
        ListChange::Remove => ListAction::Remove { name },
        ListChange::RemoveLagging => ListAction::RemoveLagging { name },
        ListChange::Restore => ListAction::Restore { name },
    }
}

fn creation(name: Named, members: Actors, how: Creation) -> ListAction {
    let (name, participants) = (name.0, members.0);
    match how {
        Creation::Announced => ListAction::Insert { name, participants },
        Creation::Quiet => ListAction::InsertQuietly { name, participants },
    }
}

step!(schedule_creation, |w,
                          when: When,
                          page: Count,
                          name: Named,
                          members: Actors,
                          how: Creation| {
    let at = point(when, page)?;
    w.harness()?
        .backend
        .schedule(at, creation(name, members, how));
    Ok(())
});

step!(create_now, |w,
                   name: Named,
                   members: Actors,
                   how: Creation| {
    w.harness()?.backend.apply(creation(name, members, how))?;
    Ok(())
});

/// The gate on every page of `actor`'s list from page `page` (numbered from 1) on.
fn pages_from(actor: Actor, page: Count) -> Result<Gate, StepFail> {
    let page = page
        .small()?
        .checked_sub(1)
        .ok_or_else(|| StepFail::Harness("pages are numbered from 1".into()))?;
    Ok(Gate::ListPagesFrom {
        user: actor.0,
        page,
    })
}

step!(gate_pages, |w, actor: Actor, page: Count| {
    let gate = pages_from(actor, page)?;
    w.harness()?.backend.close_gate(gate);
    Ok(())
});

step!(open_pages, |w, actor: Actor, page: Count| {
    let gate = pages_from(actor, page)?;
    w.harness()?.backend.open_gate(&gate);
    Ok(())
});

step!(schedule_change, |w,
                        when: When,
                        page: Count,
                        name: Named,
                        what: ListChange| {
    let at = point(when, page)?;
    w.harness()?.backend.schedule(at, change(name, what));
    Ok(())
});

step!(change_now, |w, name: Named, what: ListChange| {
    w.harness()?.backend.apply(change(name, what))?;
    Ok(())
});

step!(created_early, |w| {
    if w.start.is_none() {
        return Err(StepFail::Harness(
            "no earlier step started a client without waiting".into(),
        ));
    }
    w.expect(&[&checks::CREATED_BEFORE_FULL_LIST])
});

step!(list_matches, |w, actor: Actor| {
    let instance = w.client_of(&actor)?;
    let h = w.harness()?;
    // Changes scheduled after the final page (or pages the list never had) happen now.
    if h.backend.fire_pending() > 0 {
        w.settle().await?;
    }
    let h = w.harness()?;
    h.journal.note(
        None,
        HarnessEntry::Checkpoint(Checkpoint::SubscribedList {
            user: actor.0.clone(),
            conversations: h.backend.subscribed(&actor.0).into_iter().collect(),
        }),
    );
    match h.driver.call(Command::ListConversations).await? {
        Outcome::Ok(ReplyBody::Conversations { .. }) => {}
        other => {
            return Err(StepFail::Harness(format!(
                "{actor}'s client ({instance}) could not list its conversations: {other:?}"
            )));
        }
    }
    w.expect(&[
        &checks::ANNOUNCED_DURING_FETCH_LISTED,
        &checks::EACH_CONVERSATION_ONCE,
        &checks::LIST_EQUALS_TRUTH,
    ])
});
