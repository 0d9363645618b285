//! Step definitions, one file per domain: [`setup`] (backend state, client start, time),
//! [`sync`] (gates, operations, SYNC checks), [`updates`] (holds, other writers, UPD checks),
//! [`lists`] (pages, list changes at exact points, LIST checks) and [`messages`] (MSG checks).
//!
//! Steps are registered explicitly into one [`Collection`] (no link-time inventory), so the
//! binary and the tests see the same set. Every step body returns a `StepResult`; a failed check
//! or a harness failure becomes the panic cucumber reports.

mod lists;
mod messages;
mod setup;
mod sync;
mod updates;

use cucumber::step::{Collection, Context};
use regex::Regex;
use serde_json::Value;

use super::world::{StepFail, TckWorld};

/// Every step the suite knows.
pub(crate) fn collection() -> Collection<TckWorld> {
    let c = Collection::new();
    let c = setup::register(c);
    let c = sync::register(c);
    let c = lists::register(c);
    let c = messages::register(c);
    updates::register(c)
}

/// A compiled step pattern (patterns are literals in this module tree).
pub(crate) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("step pattern `{pattern}` is invalid: {e}"))
}

/// The capture groups of a matched step.
pub(crate) struct Args(Vec<String>);

impl Args {
    pub(crate) fn from(ctx: &Context) -> Self {
        Self(ctx.matches.iter().skip(1).map(|(_, v)| v.clone()).collect())
    }

    /// Capture `i` (0-based) as text.
    pub(crate) fn text(&self, i: usize) -> &str {
        self.0.get(i).map_or("", String::as_str)
    }

    /// Capture `i` as a number.
    pub(crate) fn num(&self, i: usize) -> Result<u64, StepFail> {
        self.text(i)
            .parse()
            .map_err(|_| StepFail::Harness(format!("`{}` is not a number", self.text(i))))
    }

    /// Capture `i` as JSON.
    pub(crate) fn json(&self, i: usize) -> Result<Value, StepFail> {
        serde_json::from_str(self.text(i))
            .map_err(|e| StepFail::Harness(format!("`{}` is not JSON: {e}", self.text(i))))
    }
}

/// Defines a step function: `step!(name, |w, args| async-body returning StepResult)`.
macro_rules! step {
    ($name:ident, |$w:ident, $args:ident| $body:block) => {
        fn $name<'a>(
            $w: &'a mut $crate::scenario::world::TckWorld,
            ctx: cucumber::step::Context,
        ) -> futures::future::LocalBoxFuture<'a, ()> {
            Box::pin(async move {
                if $w.skipping() {
                    return;
                }
                #[allow(unused_variables)]
                let $args = $crate::scenario::steps::Args::from(&ctx);
                let result: $crate::scenario::world::StepResult = async { $body }.await;
                $w.finish_step(result);
            })
        }
    };
}
pub(crate) use step;
