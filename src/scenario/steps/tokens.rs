//! Steps about access tokens: what the token generator mints, and the TOKEN assertions.

use std::time::Duration;

use cucumber::step::Collection;

use super::step;
use crate::checks::tokens as checks;
use crate::scenario::params::{Count, expr};
use crate::scenario::world::TckWorld;

pub(super) fn register(c: Collection<TckWorld>) -> Collection<TckWorld> {
    c.given(
        None,
        expr("the token generator issues {count}-minute tokens"),
        minute_tokens,
    )
    .given(
        None,
        expr("the token generator issues {count}-hour tokens"),
        hour_tokens,
    )
    .then(
        None,
        expr("the short token was reported and not fetched again"),
        short_token_refused,
    )
    .then(
        None,
        expr("every token request asked for a lifetime of hours, at most a day"),
        ttl_in_hours,
    )
    .then(
        None,
        expr("the client handed its channel a new token before the old one expired"),
        refreshed_on_warning,
    )
    .then(
        None,
        expr("the same client came back with a fresh token"),
        resumed_after_expiry,
    )
    .then(
        None,
        expr("the restart used the stored token only while it was valid"),
        stored_token_at_start,
    )
    .then(
        None,
        expr("no token travelled in a URL or appeared in a log"),
        token_confidential,
    )
}

step!(minute_tokens, |w, minutes: Count| {
    w.harness()?
        .backend
        .force_token_ttl(Some(Duration::from_secs(minutes.0.saturating_mul(60))));
    Ok(())
});

step!(hour_tokens, |w, hours: Count| {
    w.harness()?
        .backend
        .force_token_ttl(Some(Duration::from_secs(hours.0.saturating_mul(3600))));
    Ok(())
});

step!(short_token_refused, |w| {
    w.expect(&[&checks::SHORT_TOKEN_REFUSED])
});

step!(ttl_in_hours, |w| { w.expect(&[&checks::TTL_IN_HOURS]) });

step!(refreshed_on_warning, |w| {
    w.expect(&[&checks::REFRESH_ON_WARNING])
});

step!(resumed_after_expiry, |w| {
    w.expect(&[&checks::RESUME_AFTER_EXPIRY])
});

step!(stored_token_at_start, |w| {
    w.expect(&[&checks::STORED_TOKEN_AT_START])
});

step!(token_confidential, |w| {
    w.expect(&[&checks::TOKEN_CONFIDENTIAL])
});
