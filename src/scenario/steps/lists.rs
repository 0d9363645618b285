//! Steps about the subscribed list: page sizes and orders, changes at exact points of the page
//! walk, client creation that must not wait, and the LIST checks on the final list.

use std::collections::BTreeSet;

use cucumber::step::Collection;

use super::sync::{leave_in_flight, pending};
use super::{re, step};
use crate::adapter::{Command, Outcome};
use crate::backend::journal::Endpoint;
use crate::backend::state::ListOrder;
use crate::backend::{At, ListAction};
use crate::checks::lists as checks;
use crate::rules::ids::{LIST_2, LIST_3, LIST_4};
use crate::scenario::world::{StepFail, TckWorld};

/// The list changes step text can name, after the conversation's quoted name.
const CHANGE: &str = r"(is created and announced|is created without an announcement|is announced as added|is updated by another writer|is bumped to the front|is removed|is removed while the list still shows it)";

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        re(r"^the backend serves at most (\d+) conversations per page$"),
        max_page_size,
    )
    .given(
        None,
        re(r"^the subscribed list is ordered by (creation|last activity)$"),
        order,
    )
    .given(
        None,
        re(r"^(\w+) has (\d+) conversations$"),
        has_conversations,
    )
    .given(
        None,
        re(&format!(
            r#"^(before|after) page (\d+) is served, "([^"]+)" {CHANGE}$"#
        )),
        schedule,
    )
    .when(None, re(&format!(r#"^"([^"]+)" {CHANGE}$"#)), change_now)
    .when(
        None,
        re(r"^(\w+)'s client starts without waiting$"),
        start_without_waiting,
    )
    .then(
        None,
        re(r"^the client was created before the list was fully fetched$"),
        created_early,
    )
    .then(
        None,
        re(r"^(\w+)'s list matches the backend$"),
        list_matches,
    )
}

step!(max_page_size, |w, a| {
    let n = a.num(0)? as u32;
    w.env()?.backend.set_max_page_size(n);
    Ok(())
});

step!(order, |w, a| {
    let order = if a.text(0) == "creation" {
        ListOrder::Creation
    } else {
        ListOrder::Activity
    };
    w.env()?.backend.set_list_order(order);
    Ok(())
});

step!(has_conversations, |w, a| {
    let n = a.num(1)? as usize;
    w.env()?
        .backend
        .seed_conversations("c", n, &[a.text(0).to_owned(), "bob".to_owned()]);
    Ok(())
});

/// The list action a step names for conversation `name`.
fn action(name: &str, change: &str) -> Result<ListAction, StepFail> {
    let name = name.to_owned();
    let participants = vec!["alice".to_owned(), "bob".to_owned()];
    Ok(match change {
        "is created and announced" => ListAction::Insert { name, participants },
        "is created without an announcement" => ListAction::InsertQuietly { name, participants },
        "is announced as added" => ListAction::Announce { name },
        "is updated by another writer" => ListAction::Touch {
            name,
            attributes: serde_json::json!({ "touched": true }),
        },
        "is bumped to the front" => ListAction::Bump { name },
        "is removed" => ListAction::Remove { name },
        "is removed while the list still shows it" => ListAction::RemoveLagging { name },
        other => return Err(StepFail::Harness(format!("unknown list change `{other}`"))),
    })
}

step!(schedule, |w, a| {
    let page: u32 = a
        .num(1)?
        .try_into()
        .map_err(|_| StepFail::Harness("page number too large".into()))?;
    let page = page
        .checked_sub(1)
        .ok_or_else(|| StepFail::Harness("pages are numbered from 1".into()))?;
    let at = if a.text(0) == "before" {
        At::BeforePage(page)
    } else {
        At::AfterPage(page)
    };
    let action = action(a.text(2), a.text(3))?;
    w.env()?.backend.schedule(at, action);
    Ok(())
});

step!(change_now, |w, a| {
    let action = action(a.text(0), a.text(1))?;
    w.env()?.backend.apply(action)?;
    Ok(())
});

step!(start_without_waiting, |w, a| {
    let env = w.env()?;
    let command = Command::Start {
        identity: a.text(0).to_owned(),
        token_url: env.backend.token_url(),
        rest_url: env.backend.rest_url().to_owned(),
        events_url: env.backend.events_url().to_owned(),
        storage_dir: None,
        device_token: None,
    };
    leave_in_flight(w, "start".into(), command)
});

step!(created_early, |w, a| {
    let id = pending(w, "start")?;
    let instance = w.env()?.driver.instance();
    let entries = w.env()?.journal.snapshot();
    // Judged only while the final page is held back: otherwise the reply and the final page are
    // two independent records whose journal order says nothing.
    let final_page = Endpoint::UserConversations {
        page: 0,
        last: true,
        items: Vec::new(),
    };
    if w.env()?.backend.state().closed_gate(&final_page).is_none() {
        return Err(StepFail::Harness(
            "LIST-1 is judged while the last page of the list is gated; this scenario gates nothing".into(),
        ));
    }
    let outcome = checks::created_before_full_list(&entries, instance.as_ref(), id);
    w.check(outcome)
});

step!(list_matches, |w, a| {
    let identity = a.text(0).to_owned();
    let instance = w.instance()?;
    if w.env()?.backend.fire_pending() > 0 {
        w.settle().await?;
    }
    let env = w.env()?;
    let reply = env.driver.call(Command::ListConversations).await?;
    let Outcome::Ok(body) = reply else {
        return Err(StepFail::Harness(format!(
            "list_conversations failed: {reply:?}"
        )));
    };
    let list = checks::listed(&body);
    let truth: BTreeSet<String> = env.backend.subscribed(&identity);
    let entries = env.journal.snapshot();
    for rule in w.scoped(&[LIST_2, LIST_3, LIST_4])? {
        let outcome = match rule {
            LIST_2 => checks::announced_during_fetch_are_listed(&entries, &instance, &list, &truth),
            LIST_3 => checks::each_conversation_once(&entries, &instance, &list),
            _ => checks::list_equals_truth(&entries, &instance, &list, &truth),
        };
        w.check(outcome)?;
    }
    Ok(())
});
