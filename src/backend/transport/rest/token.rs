//! `POST /token`: the app's token generator (form fields `identity`, `ttl` in seconds).
//!
//! It mints what it is asked for (an hour when `ttl` is absent; more than a day is capped at a
//! day, as app servers built on Twilio's helper libraries do) and journals the TTL asked, the
//! lifetime minted and the expiry. It does not refuse short lifetimes: a 2-minute token is
//! minted, and refused where it is used (20104). A scenario can force the lifetime it mints
//! (`Backend::force_token_ttl`), a 2-day token included (refused where used: 20157).

use std::time::Duration;

use super::{Answer, Call};
use crate::backend::endpoint::Endpoint;
use crate::backend::fact::Issued;
use crate::backend::tokens::MAX_TTL;
use crate::secrets::TokenFingerprint;
use crate::wire::resources::IssuedToken;

pub(super) fn mint(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Token;
    if let Some(a) = call.service.read(|m| Answer::gated(m, &ep)) {
        return a;
    }
    let Some(identity) = call.form.get("identity").filter(|s| !s.is_empty()) else {
        return Answer::error(ep, 400, 20_001, "missing form field `identity`");
    };
    let asked = match call.form.get("ttl").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Answer::error(ep, 400, 20_001, "`ttl` must be a number of seconds"),
    };
    // The generator mints what it is asked for (an hour when not asked), capped at the
    // service's day, unless a scenario made it mint a fixed lifetime.
    let forced = call.service.read(|m| m.token_ttl);
    let ttl = forced.map_or(asked.unwrap_or(3600).min(MAX_TTL.as_secs()), |d| {
        d.as_secs()
    });
    match call
        .service
        .tokens
        .generate(identity, Duration::from_secs(ttl))
    {
        Ok(token) => {
            call.service.quietly(|m| m.ensure_user(identity));
            let issued = Issued {
                identity: identity.clone(),
                token: TokenFingerprint::of(&token),
                ttl_asked: asked,
                ttl,
                expires_at: call
                    .service
                    .tokens
                    .clock()
                    .now()
                    .plus(Duration::from_secs(ttl)),
            };
            let mut answer = Answer::ok(
                ep,
                IssuedToken {
                    identity: identity.clone(),
                    ttl,
                    token,
                },
            );
            answer.issued = Some(issued);
            answer
        }
        Err(e) => Answer::error(ep, 400, e.code(), e.to_string()),
    }
}
