//! `POST /token`: the app's token generator (form fields `identity`, `ttl` in seconds).

use std::time::Duration;

use super::{Answer, Call};
use crate::backend::endpoint::Endpoint;
use crate::backend::fact::Issued;
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
    let ttl = match call.form.get("ttl").map(|s| s.parse::<u64>()) {
        None => 3600,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Answer::error(ep, 400, 20_001, "`ttl` must be a number of seconds"),
    };
    match call.service.tokens.mint(identity, Duration::from_secs(ttl)) {
        Ok(token) => {
            call.service.quietly(|m| m.ensure_user(identity));
            let issued = Issued {
                identity: identity.clone(),
                token: TokenFingerprint::of(&token),
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
