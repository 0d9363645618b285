//! Step definitions, one file per domain: [`setup`] (backend contents, starting clients,
//! settling, time), [`sync`] (gates, operations issued early, SYNC assertions), [`updates`]
//! (holds, other writers, stale replays, UPD assertions), [`lists`] (pages, list changes at exact
//! points, LIST assertions), [`messages`] (MSG assertions) and [`lifecycle`] (outages, background,
//! logout, kill; LIFE and REL assertions), [`tokens`] (what the token generator mints; TOKEN
//! assertions), [`push`] (device tokens; PUSH assertions) and [`counts`] (count reads; COUNT
//! assertions).
//!
//! Steps are registered explicitly into one [`Collection`] (no link-time inventory), so the
//! binary and the tests see the same set. Patterns are Cucumber Expressions over the typed
//! parameters of `params`; a step names its actors, and a step that names one acts as that
//! actor. `Then` steps assert catalog checks (`TckWorld::expect`); every rule is judged again on
//! the whole journal when the scenario ends.

mod counts;
mod lifecycle;
mod lists;
mod messages;
mod push;
mod setup;
mod sync;
mod tokens;
mod updates;

use cucumber::step::Collection;

use super::world::TckWorld;

/// Every step the suite knows.
pub(crate) fn collection() -> Collection<TckWorld> {
    let c = Collection::new();
    let c = setup::register(c);
    let c = sync::register(c);
    let c = lists::register(c);
    let c = messages::register(c);
    let c = lifecycle::register(c);
    let c = tokens::register(c);
    let c = push::register(c);
    let c = counts::register(c);
    updates::register(c)
}

/// Defines a step function: `step!(name, |w, a: Actor, n: Count| async-body returning
/// StepResult)`; the parameters are read from the step's captures in order.
macro_rules! step {
    ($name:ident, |$w:ident $(, $arg:ident : $ty:ty)*| $body:block) => {
        fn $name<'a>(
            $w: &'a mut $crate::scenario::world::TckWorld,
            ctx: cucumber::step::Context,
        ) -> futures::future::LocalBoxFuture<'a, ()> {
            Box::pin(async move {
                if $w.skipping() {
                    return;
                }
                let result: $crate::scenario::world::StepResult = async {
                    let _args = &mut $crate::scenario::params::Args::from(&ctx);
                    $(let $arg: $ty = _args.next()?;)*
                    $body
                }
                .await;
                $w.finish_step(result);
            })
        }
    };
}
pub(crate) use step;
