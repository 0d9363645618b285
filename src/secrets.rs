//! Keeping tokens out of everything the kit writes down.
//!
//! Every token the backend mints is registered with the run's [`Secrets`]; the journal, the
//! evidence and the reports pass through [`Secrets::redact`], which replaces each known token by
//! its [`TokenFingerprint`] (`tok:` and 12 hex digits of its SHA-256). Fingerprints still let a
//! reader see that two requests used the same token.
//!
//! Must not import: anything else of the crate (a leaf).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A token's fingerprint: `tok:` and the first 12 hex digits of its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

    /// `text` with every known token replaced by its fingerprint.
    pub fn redact(&self, text: &str) -> String {
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_owned();
        for (token, fp) in t.iter() {
            if out.contains(token.as_str()) {
                out = out.replace(token.as_str(), fp.as_str());
            }
        }
        out
    }

    /// Whether `text` holds a known token.
    pub fn leaks(&self, text: &str) -> bool {
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().any(|(token, _)| text.contains(token.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
