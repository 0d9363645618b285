//! Keeping tokens out of everything the kit writes down.
//!
//! Every token the backend mints is registered with the run's [`Secrets`]; the journal, the
//! evidence and the reports pass through [`Secrets::redact`], which replaces each known token by
//! its [`TokenFingerprint`] (`tok:` and 12 hex digits of its SHA-256). Fingerprints still let a
//! reader see that two requests used the same token.
//!
//! Tokens the backend did not mint (a vendor's own, a forged one, one an adapter echoes) are
//! caught by their shape: [`scrub`] replaces every *token-shaped* value, registered or not:
//! - a JWT in compact form (three base64url segments, the header starting `eyJ`);
//! - the value of a credential-named parameter (`token`, `access_token`, `password`, `secret`,
//!   `signature`, `api_key`, any case, also with a `X-Twilio-`/`x_` prefix) after `=` or `:`;
//! - the value of an `X-Twilio-Token` or `Authorization` header line.
//!
//! Logs (the `tracing` writer), the journal and the reports all pass through it.
//!
//! Must not import: anything else of the crate (a leaf).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A token's fingerprint: `tok:` and the first 12 hex digits of its SHA-256.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct TokenFingerprint(String);

impl TokenFingerprint {
    /// The fingerprint of `token`.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self(format!("tok:{hex}"))
    }

    /// The fingerprint as written (`tok:0123456789ab`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every token minted in a run, so any text can be scrubbed of them. Cheap to clone: clones
/// share one registry.
#[derive(Clone, Default, Debug)]
pub struct Secrets {
    tokens: Arc<Mutex<Vec<(String, TokenFingerprint)>>>,
}

impl Secrets {
    /// Remembers a token to redact.
    pub fn register(&self, token: &str) {
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.push((token.to_owned(), TokenFingerprint::of(token)));
    }

    /// `text` with every known token and every token-shaped value (see [`scrub`]) replaced by
    /// its fingerprint.
    pub fn redact(&self, text: &str) -> String {
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_owned();
        // A JWT can only be in a text that holds a JWT header: most texts hold none, and the
        // registry grows with every token minted (a simulated year mints hundreds).
        let jwts = out.contains(JWT_HEADER);
        for (token, fp) in t.iter() {
            if (jwts || !token.starts_with(JWT_HEADER)) && out.contains(token.as_str()) {
                out = out.replace(token.as_str(), fp.as_str());
            }
        }
        drop(t);
        match scrub(&out) {
            Cow::Borrowed(_) => out,
            Cow::Owned(clean) => clean,
        }
    }

    /// Whether `text` holds a known token or a token-shaped value.
    pub fn leaks(&self, text: &str) -> bool {
        if has_token_shape(text) {
            return true;
        }
        let jwts = text.contains(JWT_HEADER);
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().any(|(token, _)| {
            (jwts || !token.starts_with(JWT_HEADER)) && text.contains(token.as_str())
        })
    }
}

/// How every JWT starts: base64url of `{"`.
const JWT_HEADER: &str = "eyJ";

/// A JWT in compact serialization: a JSON header (`eyJ`…), a payload and a signature, each
/// base64url; the signature may be empty (an unsigned token is still a credential) or cut off
/// (a token some message quoted in part).
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)?")
        .expect("a valid regex")
});

/// A credential-named parameter or header (a whole word: `PageToken` is no credential) and its
/// value (group 3). The value stops at a separator of
/// the text it sits in (`&`, quotes, whitespace, `,`, `;`, `}`, a backslash of a JSON escape).
/// A push `device_token` matches too, with group 2 set: it names a device, not a credential
/// (the backend journals it as a binding's address), so it is left as it is.
static CREDENTIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:^|[^a-z0-9])(device[-_])?(?:x[-_]twilio[-_])?(?:access[-_]?)?(?:token|password|secret|signature|api[-_]?key)["']?\s*[=:]\s*["']?(?:bearer\s+)?)([^&"'\s,;}\\]{4,})"#,
    )
    .expect("a valid regex")
});

/// The credential-named parameters in `text` (device tokens left out): each match's captures.
fn credentials(text: &str) -> impl Iterator<Item = regex::Captures<'_>> {
    CREDENTIAL
        .captures_iter(text)
        .filter(|c| c.get(2).is_none())
}

/// An `Authorization` header value, whatever its scheme.
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:^|[^a-z0-9])authorization["']?\s*:\s*["']?(?:[a-z]+\s+)?)([^&"'\s,;}\\]{4,})"#,
    )
    .expect("a valid regex")
});

/// The first token-shaped value in `text` (a JWT, or the value of a credential-named
/// parameter), for fingerprinting a token found where it must not be.
pub(crate) fn find_token(text: &str) -> Option<&str> {
    JWT.find(text).map(|m| m.as_str()).or_else(|| {
        credentials(text)
            .next()
            .and_then(|c| c.get(3))
            .map(|m| m.as_str())
    })
}

/// Whether `text` holds anything [`scrub`] would replace.
pub fn has_token_shape(text: &str) -> bool {
    JWT.is_match(text) || credentials(text).next().is_some() || AUTHORIZATION.is_match(text)
}

/// `text` with every token-shaped value replaced by its fingerprint: JWTs wherever they are,
/// and the values of credential-named parameters and headers (the name stays, so a reader sees
/// *that* a token was there and, by the fingerprint, *which*). Values already fingerprinted
/// (`tok:…`) are left alone, so scrubbing twice changes nothing.
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !has_token_shape(text) {
        return Cow::Borrowed(text);
    }
    let fp = |v: &str| {
        if v.starts_with("tok:") {
            v.to_owned()
        } else {
            TokenFingerprint::of(v).0
        }
    };
    let out = JWT.replace_all(text, |c: &regex::Captures<'_>| fp(&c[0]));
    let out = CREDENTIAL
        .replace_all(&out, |c: &regex::Captures<'_>| match c.get(2) {
            Some(_) => c[0].to_owned(),
            None => format!("{}{}", &c[1], fp(&c[3])),
        })
        .into_owned();
    let out = AUTHORIZATION
        .replace_all(&out, |c: &regex::Captures<'_>| {
            format!("{}{}", &c[1], fp(&c[2]))
        })
        .into_owned();
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_device_token_is_no_credential() {
        let text = r#"{"device_token":"fcm-device-1","token":"abcdefgh"}"#;
        let clean = scrub(text);
        assert!(
            clean.contains(r#""device_token":"fcm-device-1""#),
            "{clean}"
        );
        assert!(!clean.contains("abcdefgh"), "{clean}");
        assert!(!has_token_shape(r#"{"device_token":"fcm-device-1"}"#));
    }

    #[test]
    fn a_registered_token_is_replaced_by_its_fingerprint() {
        let s = Secrets::default();
        s.register("secret-token");
        let clean = s.redact("Bearer secret-token!");
        assert_eq!(
            clean,
            format!("Bearer {}!", TokenFingerprint::of("secret-token"))
        );
        assert!(!s.leaks(&clean));
        assert!(s.leaks("secret-token"));
    }

    const FOREIGN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl";

    #[test]
    fn a_foreign_jwt_is_scrubbed_wherever_it_hides() {
        for text in [
            format!("/v1/Users/{FOREIGN}"),
            format!("PageSize=5&x={FOREIGN}"),
            format!(r#"{{"instance":"{FOREIGN}"}}"#),
            format!("invalid token `{FOREIGN}`"),
            format!("{FOREIGN}."),
            format!("quoted: {}…", &FOREIGN[..40]),
        ] {
            let clean = scrub(&text);
            assert!(!clean.contains("eyJ"), "{clean}");
            assert!(clean.contains("tok:"), "{clean}");
            assert!(Secrets::default().leaks(&text));
            assert!(!Secrets::default().leaks(&clean), "{clean}");
        }
    }

    #[test]
    fn credential_values_are_scrubbed_and_their_names_kept() {
        for (text, name) in [
            ("Token=opaque-vendor-credential&PageSize=5", "Token="),
            ("access_token=abcd1234", "access_token="),
            ("x-twilio-token: abcd1234\r\n", "x-twilio-token: "),
            (r#"{"password":"hunter22"}"#, r#""password":""#),
            ("Authorization: Bearer abcd1234", "Authorization: Bearer "),
        ] {
            let clean = scrub(text);
            assert!(clean.contains(name), "{clean}");
            assert!(clean.contains("tok:"), "{clean}");
            assert!(
                !clean.contains("abcd1234") && !clean.contains("hunter22"),
                "{clean}"
            );
            assert_eq!(scrub(&clean), clean, "scrubbing twice changes nothing");
        }
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for text in [
            "/v1/Users/alice/Conversations?PageSize=10&PageToken=PA0_1_10",
            "c-15 was announced while the list was being fetched",
            r#"{"attributes":{"topic":"eyJ"}}"#,
        ] {
            assert!(matches!(scrub(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
