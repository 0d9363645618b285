//! The access token's lifecycle: hours-long tokens from the app's generator, a valid stored
//! token used at start without waiting for the generator, a refresh on `token_about_to_expire`
//! handed to the running instance on its open channel, and a refresh after the token expired
//! (a sleep in the background, a missed warning) that resumes the same instance.
//!
//! A token living under three minutes does not work with the service: the client says so with a
//! typed error and does not ask again. Tokens travel in headers only and are never logged; the
//! only place one is kept is the app's storage.

use std::time::Duration;

use super::state::Credential;
use super::{Engine, TaskResult};
use crate::adapter::{CommandError, ErrorKind, Observation};
use crate::clock::VirtualClock;
use crate::reference::net::{self, Activity};
use crate::reference::storage::{Storage, StoredToken};
use crate::wire::{HubFrame, InstanceId, UpdateToken};

/// The shortest lifetime the service accepts.
const MIN_LIFETIME: Duration = Duration::from_secs(180);
/// A token closer than this to its expiry is not used for a new connection (the service
/// would warn at once).
pub(super) const MARGIN: Duration = Duration::from_secs(180);
/// How often a client with fault `retry-short-token` asks again.
const SHORT_TOKEN_RETRY: Duration = Duration::from_secs(10);

/// Where a token comes from: the generator, for one identity.
#[derive(Clone)]
pub(super) struct Generator {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) identity: String,
    pub(super) instance: InstanceId,
    pub(super) ttl: Duration,
    /// Off: fault `retry-short-token`.
    pub(super) refuse_short: bool,
    pub(super) clock: VirtualClock,
    pub(super) activity: std::sync::Arc<Activity>,
}

impl Generator {
    /// Fetches a token. One living under three minutes is a typed error, not asked for again
    /// (fault `retry-short-token`: asked for again every 10 s, for good).
    pub(super) async fn fetch(&self) -> Result<Credential, CommandError> {
        loop {
            let issued = net::fetch_token(
                &self.http,
                &self.url,
                &self.identity,
                &self.instance,
                self.ttl,
            )
            .await?;
            let lifetime = Duration::from_secs(issued.ttl);
            if lifetime >= MIN_LIFETIME {
                return Ok(Credential {
                    token: issued.token,
                    expires_at: self.clock.now().plus(lifetime),
                    fetched: true,
                });
            }
            if self.refuse_short {
                return Err(CommandError::new(
                    ErrorKind::TokenRejected,
                    format!(
                        "the token generator issued a token living {} s; the service refuses tokens living under 3 minutes, so the client cannot start with it (not asking again)",
                        issued.ttl
                    ),
                ));
            }
            self.activity.sleep(&self.clock, SHORT_TOKEN_RETRY).await;
        }
    }
}

impl Engine {
    /// The lifetime the client asks its generator for.
    pub(super) fn asked_ttl(&self) -> Duration {
        if !self.policy.ttl_hours {
            // Fault `ttl-too-short`.
            return Duration::from_secs(600);
        }
        if !self.policy.ttl_at_most_a_day {
            // Fault `ttl-too-long`.
            return Duration::from_secs(48 * 3600);
        }
        self.config.token_ttl.min(Duration::from_secs(86_400))
    }

    /// The generator for `identity`, as instance `instance`.
    pub(super) fn generator(
        &self,
        token_url: &str,
        identity: &str,
        instance: &InstanceId,
    ) -> Generator {
        Generator {
            http: self.http.clone(),
            url: token_url.to_owned(),
            identity: identity.to_owned(),
            instance: instance.clone(),
            ttl: self.asked_ttl(),
            refuse_short: self.policy.refuse_short_tokens,
            clock: self.clock.clone(),
            activity: self.activity.clone(),
        }
    }

    /// A stored token of `identity` good for a new connection, if the client uses stored
    /// tokens (fault `wait-for-generator`: never).
    pub(super) fn stored_token(&self, storage: &Storage, identity: &str) -> Option<Credential> {
        if !self.policy.use_cached_token {
            return None;
        }
        let stored = storage.load().token?;
        (stored.identity == identity && stored.expires_at > self.clock.now().plus(MARGIN))
            .then_some(Credential {
                token: stored.token,
                expires_at: stored.expires_at,
                fetched: false,
            })
    }

    /// Keeps a freshly fetched token in storage (and, with fault `log-token`, in the log).
    pub(super) fn keep(&self, storage: &Storage, identity: &str, credential: &Credential) {
        if !credential.fetched {
            return;
        }
        storage.update(|s| {
            s.token = Some(StoredToken {
                identity: identity.to_owned(),
                token: credential.token.clone(),
                expires_at: credential.expires_at,
            });
        });
        if !self.policy.never_log_tokens {
            self.observer
                .log(format!("fetched access token {}", credential.token));
        }
    }

    /// The session's token expired while the client could not be told (asleep, disconnected):
    /// say so once; fault `recreate-on-expired` replaces the instance. Returns whether the
    /// instance goes on.
    pub(super) fn notice_expiry(&mut self) -> bool {
        let now = self.clock.now();
        let Some(s) = self.session.as_mut() else {
            return false;
        };
        if s.token_expires > now {
            return true;
        }
        if !std::mem::replace(&mut s.expiry_seen, true) {
            self.observe(Observation::TokenExpired);
        }
        if !self.policy.keep_instance_on_expiry {
            self.recreate();
            return false;
        }
        true
    }

    /// The generator to fetch a fresh token with before a REST call, when the session's token
    /// is within [`MARGIN`] of its expiry (it expired while the app slept, say); none otherwise.
    pub(super) fn stale_token_generator(&self) -> Option<Generator> {
        let s = self.session.as_ref()?;
        (s.token_expires <= self.clock.now().plus(MARGIN))
            .then(|| self.generator(&s.login.token_url, &s.login.identity, &s.instance))
    }

    /// A token frame from the hub.
    pub(super) fn token_frame(&mut self, frame: HubFrame) {
        match frame {
            HubFrame::TokenAboutToExpire { .. } => {
                self.observe(Observation::TokenAboutToExpire);
                if self.policy.refresh_on_warning {
                    self.refresh();
                }
            }
            HubFrame::TokenExpired => {
                if let Some(s) = self.session.as_mut() {
                    s.token_expires = s.token_expires.min(self.clock.now());
                }
                // The socket closes next; the reconnect fetches a token first.
                self.notice_expiry();
            }
            HubFrame::TokenRejected { code, message } => self.observe(Observation::Error {
                kind: ErrorKind::TokenRejected,
                message: format!("the event channel refused the new token ({code}): {message}"),
            }),
            // The channel took the token the client adopted (and reported) already.
            _ => {}
        }
    }

    /// Fetches a new token for the running instance, once at a time.
    fn refresh(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if std::mem::replace(&mut s.refreshing, true) {
            return;
        }
        let (url, identity, instance) = (
            s.login.token_url.clone(),
            s.login.identity.clone(),
            s.instance.clone(),
        );
        let generator = self.generator(&url, &identity, &instance);
        self.spawn(async move {
            TaskResult::Refreshed {
                result: generator.fetch().await,
            }
        });
    }

    /// A refresh ended: the running instance takes the token, and hands it to its channel.
    pub(super) fn refreshed(&mut self, result: Result<Credential, CommandError>) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.refreshing = false;
        match result {
            Ok(credential) => {
                self.adopt(&credential);
                if let Some(s) = self.session.as_ref()
                    && let Some(tx) = s.link.sender()
                {
                    let frame = UpdateToken {
                        token: credential.token,
                    };
                    let _ = tx.send(serde_json::to_string(&frame).unwrap_or_default());
                }
            }
            Err(e) => self.observe(Observation::Error {
                kind: e.kind,
                message: format!("token refresh failed: {}", e.message),
            }),
        }
    }

    /// The running instance takes `credential` for REST and its next connections; kept in
    /// storage; reported.
    pub(super) fn adopt(&mut self, credential: &Credential) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        *s.rest.token.lock().unwrap_or_else(|p| p.into_inner()) = credential.token.clone();
        s.token_expires = credential.expires_at;
        s.expiry_seen = false;
        let (storage, identity) = (s.login.storage.clone(), s.login.identity.clone());
        self.keep(&storage, &identity, credential);
        self.observe(Observation::TokenUpdated);
    }

    /// Fault `token-in-url`: a user prefetch with the token in the URL (refused; ignored).
    pub(super) fn prefetch_with_token_in_url(&mut self) {
        if self.policy.token_in_header_only {
            return;
        }
        let Some(s) = self.session.as_ref() else {
            return;
        };
        let token = s.rest.current_token();
        let url = format!(
            "{}/v1/Users/{}?token={token}",
            s.rest.base,
            super::state::segment(&s.login.identity)
        );
        let (http, instance) = (self.http.clone(), s.instance.clone());
        self.spawn(async move {
            let _ = http
                .get(url)
                .header("X-Convo-Client", instance.as_str())
                .send()
                .await;
            TaskResult::Nothing
        });
    }
}
