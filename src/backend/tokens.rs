//! Access tokens: HS256 JWTs with Twilio access-token claims, minted and checked on virtual time.
//!
//! The token endpoint (the app's token generator) mints them; REST and the event hub validate
//! them. Expiry is judged against the backend's [`VirtualClock`], never the wall clock. Every
//! minted token is registered with [`Secrets`] so it never reaches a report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::VirtualClock;
use crate::secrets::Secrets;

/// Shortest token lifetime the service accepts (three minutes).
pub const MIN_TTL: Duration = Duration::from_secs(180);
/// Longest token lifetime the service accepts (a day).
pub const MAX_TTL: Duration = Duration::from_secs(86_400);
/// Longest TTL the token generator mints (a week): the generator is the app's, and mints what
/// it is asked for within reason; the service refuses lifetimes outside [`MIN_TTL`]..=[`MAX_TTL`]
/// where a token is used.
pub const GENERATOR_MAX_TTL: Duration = Duration::from_secs(7 * 86_400);
/// How long before its expiry the event channel warns a client (`token_about_to_expire`).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(180);

/// The `grants` claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Grants {
    /// Chat identity.
    pub identity: String,
    /// Chat grant.
    pub chat: ChatGrant,
}

/// The chat grant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ChatGrant {
    /// Conversations service sid.
    pub service_sid: String,
}

/// Twilio access-token claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Claims {
    /// Token id (`SK...-n`).
    pub jti: String,
    /// API key sid that signed it.
    pub iss: String,
    /// Account sid.
    pub sub: String,
    /// Issued at (unix seconds, virtual).
    pub iat: u64,
    /// Expiry (unix seconds, virtual).
    pub exp: u64,
    /// Grants.
    pub grants: Grants,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The generator was asked for a TTL it does not mint (0, or over a week).
    #[error("token TTL of {0} s is outside the generator's 1..=604800 s")]
    BadTtl(u64),
    /// Not a token we signed.
    #[error("invalid access token")]
    Invalid,
    /// Past its expiry on the virtual clock.
    #[error("access token expired")]
    Expired,
    /// Its lifetime (`exp - iat`) is under three minutes: the service does not work with it.
    #[error(
        "access token expiration date invalid: a lifetime of {0} s is under the 3-minute minimum"
    )]
    TooShort(u64),
    /// Its lifetime is over a day.
    #[error("access token expiration time exceeds the maximum of 24 hours ({0} s)")]
    TooLong(u64),
    /// Handed to a channel of another identity.
    #[error("access token is for another identity")]
    OtherIdentity,
}

impl TokenError {
    /// The Twilio error code for this refusal: 20101 invalid, 20104 expired or an invalid
    /// expiration (a lifetime under 3 minutes), 20157 expiration beyond 24 hours, 20103 a
    /// token of another subject, 20001 a request the generator does not serve.
    pub fn code(&self) -> u32 {
        match self {
            Self::BadTtl(_) => 20_001,
            Self::Invalid => 20_101,
            Self::OtherIdentity => 20_103,
            Self::Expired | Self::TooShort(_) => 20_104,
            Self::TooLong(_) => 20_157,
        }
    }
}

/// Mints and validates tokens with a per-run secret.
pub(super) struct TokenAuthority {
    clock: VirtualClock,
    secrets: Secrets,
    encoding: EncodingKey,
    decoding: DecodingKey,
    api_key_sid: String,
    account_sid: String,
    service_sid: String,
    /// The account's auth token: HTTP Basic with the account sid and it acts as the account.
    auth_token: String,
    next: AtomicU64,
}

impl TokenAuthority {
    /// An authority with a fresh random signing key (`seed` only names its API key sid).
    pub(super) fn new(
        clock: VirtualClock,
        secrets: Secrets,
        seed: u64,
        account_sid: &str,
        service_sid: &str,
    ) -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth)?;
        let auth_token: String = auth.iter().map(|b| format!("{b:02x}")).collect();
        secrets.register(&auth_token);
        Ok(Self {
            clock,
            secrets,
            encoding: EncodingKey::from_secret(&key).expect("an HMAC key of 32 bytes is valid"),
            decoding: DecodingKey::from_secret(&key).expect("an HMAC key of 32 bytes is valid"),
            api_key_sid: crate::wire::sid("SK", seed),
            account_sid: account_sid.to_owned(),
            service_sid: service_sid.to_owned(),
            auth_token,
            next: AtomicU64::new(1),
        })
    }

    /// Mints a token for `identity` living `ttl` from now, within the service's bounds.
    pub(super) fn mint(&self, identity: &str, ttl: Duration) -> Result<String, TokenError> {
        if ttl < MIN_TTL {
            return Err(TokenError::TooShort(ttl.as_secs()));
        }
        if ttl > MAX_TTL {
            return Err(TokenError::TooLong(ttl.as_secs()));
        }
        Ok(self.mint_unchecked(identity, ttl))
    }

    /// Mints what the app's token generator is asked for: any whole number of seconds up to
    /// [`GENERATOR_MAX_TTL`]. A lifetime the service refuses is minted all the same (a
    /// generator does not know the service's bounds); the service refuses it where it is used.
    pub(super) fn generate(&self, identity: &str, ttl: Duration) -> Result<String, TokenError> {
        if ttl.is_zero() || ttl > GENERATOR_MAX_TTL {
            return Err(TokenError::BadTtl(ttl.as_secs()));
        }
        Ok(self.mint_unchecked(identity, ttl))
    }

    /// The clock tokens live on.
    pub(super) fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Mints a token without the TTL bounds (for scenarios that hand a client a bad token).
    pub(super) fn mint_unchecked(&self, identity: &str, ttl: Duration) -> String {
        let now = self.clock.now();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let claims = Claims {
            jti: format!("{}-{n}", self.api_key_sid),
            iss: self.api_key_sid.clone(),
            sub: self.account_sid.clone(),
            iat: now.unix_secs(),
            exp: now.plus(ttl).unix_secs(),
            grants: Grants {
                identity: identity.to_owned(),
                chat: ChatGrant {
                    service_sid: self.service_sid.clone(),
                },
            },
        };
        let mut header = Header::new(Algorithm::HS256);
        header.cty = Some("twilio-fpa;v=1".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        self.secrets.register(&token);
        token
    }

    /// The account's auth token (32 random hex digits, drawn per backend), the password of
    /// HTTP Basic.
    pub(super) fn auth_token(&self) -> &str {
        &self.auth_token
    }

    /// Whether an `Authorization` header value is HTTP Basic with the account sid and the auth
    /// token.
    pub(super) fn accepts_basic(&self, header: &str) -> bool {
        let Some((scheme, credential)) = header.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("basic")
            && credential.trim()
                == base64(format!("{}:{}", self.account_sid, self.auth_token).as_bytes())
    }

    /// Validates `token` against the virtual clock; returns its claims.
    pub(super) fn validate(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| TokenError::Invalid)?;
        let c = data.claims;
        let lifetime = c.exp.saturating_sub(c.iat);
        if lifetime > MAX_TTL.as_secs() {
            return Err(TokenError::TooLong(lifetime));
        }
        if lifetime < MIN_TTL.as_secs() {
            return Err(TokenError::TooShort(lifetime));
        }
        if c.exp <= self.clock.now().unix_secs() {
            return Err(TokenError::Expired);
        }
        Ok(c)
    }
}

/// Standard base64 with padding (what every HTTP client sends in Basic credentials).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(clock: &VirtualClock) -> TokenAuthority {
        TokenAuthority::new(clock.clone(), Secrets::default(), 1, "AC1", "IS1")
            .expect("the OS random source")
    }

    #[test]
    fn two_authorities_of_the_same_seed_do_not_accept_each_others_tokens() {
        let clock = VirtualClock::new();
        let (a, b) = (authority(&clock), authority(&clock));
        let t = a.mint("alice", Duration::from_secs(3600)).unwrap();
        assert!(a.validate(&t).is_ok());
        assert_eq!(b.validate(&t).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn ttl_outside_three_minutes_to_a_day_is_refused() {
        let a = authority(&VirtualClock::new());
        assert_eq!(
            a.mint("alice", Duration::from_secs(120)),
            Err(TokenError::TooShort(120))
        );
        assert!(a.mint("alice", Duration::from_secs(90_000)).is_err());
        assert!(a.mint("alice", Duration::from_secs(3600)).is_ok());
        // The generator mints them all the same; the service refuses them where they are used.
        let short = a.generate("alice", Duration::from_secs(120)).unwrap();
        assert_eq!(a.validate(&short).unwrap_err(), TokenError::TooShort(120));
        assert_eq!(a.validate(&short).unwrap_err().code(), 20_104);
        let long = a.generate("alice", Duration::from_secs(90_000)).unwrap();
        assert_eq!(a.validate(&long).unwrap_err().code(), 20_157);
        assert_eq!(
            a.generate("alice", Duration::ZERO),
            Err(TokenError::BadTtl(0))
        );
    }

    #[test]
    fn basic_credentials_are_the_account_sid_and_a_random_auth_token() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        let (a, b) = (
            authority(&VirtualClock::new()),
            authority(&VirtualClock::new()),
        );
        assert_eq!(a.auth_token().len(), 32);
        assert_ne!(a.auth_token(), b.auth_token());
        let good = format!(
            "Basic {}",
            base64(format!("AC1:{}", a.auth_token()).as_bytes())
        );
        assert!(a.accepts_basic(&good));
        assert!(!b.accepts_basic(&good));
        assert!(!a.accepts_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(!a.accepts_basic("Bearer x"));
    }

    #[test]
    fn tokens_expire_on_virtual_time() {
        let clock = VirtualClock::new();
        let a = authority(&clock);
        let t = a.mint("alice", Duration::from_secs(3600)).unwrap();
        assert_eq!(a.validate(&t).unwrap().grants.identity, "alice");
        clock.advance(Duration::from_secs(3600));
        assert_eq!(a.validate(&t).unwrap_err(), TokenError::Expired);
        assert_eq!(a.validate("garbage").unwrap_err(), TokenError::Invalid);
    }
}
