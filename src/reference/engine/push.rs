//! Push registration: the app registers the device on every start with a device token, unless
//! its storage shows the same registration (this identity, this device token) was made already;
//! relaunched as another identity, it first removes the previous identity's binding of the
//! device; when the OS hands it a new device token, it registers that one and removes the old.
//!
//! The work runs as background tasks (counted as activity, so a `settle` covers it); what was
//! registered is kept in the app's storage for the next start. A logout leaves the binding alone
//! (and the stored registration with it): the next start, of whichever identity, settles it then.

use reqwest::Method;
use serde_json::Value;

use super::state::{Login, segment};
use super::{Engine, TaskResult};
use crate::adapter::{CommandError, ErrorKind, Observation, Profile};
use crate::reference::net::Rest;
use crate::reference::storage::{Storage, Stored, StoredRegistration};

/// Where the registration write goes (the kit's route, not public v1).
const REGISTRATIONS: &str = "/v1/Client/Registrations";

/// What a registration task did: the registration to keep in storage, or why it failed.
/// What a registration task registered, and a token it had to fetch first (the session's had
/// expired while the app slept), for the running client to take.
pub(super) type Registered =
    Result<(StoredRegistration, Option<super::state::Credential>), CommandError>;

/// Registers `address` with `rest`'s token as `binding_type`.
async fn register(rest: &Rest, address: &str, binding_type: &str) -> Result<(), CommandError> {
    let form = vec![
        ("Address", address.to_owned()),
        ("BindingType", binding_type.to_owned()),
    ];
    rest.call::<Value>(Method::POST, REGISTRATIONS, Some(form))
        .await
        .map(|_| ())
}

/// Removes the binding of `rest`'s identity for `address`; one already gone is fine.
async fn unregister(rest: &Rest, address: &str) -> Result<(), CommandError> {
    let path = format!("{REGISTRATIONS}/{}", segment(address));
    match rest
        .call::<Option<Value>>(Method::DELETE, &path, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Engine {
    /// The binding type this app registers with: FCM in the browser, APNs on a phone.
    fn binding_type(&self) -> &'static str {
        match self.config.profile {
            Profile::Js => "fcm",
            Profile::Mobile => "apn",
        }
    }

    /// The client was created for `login`; `stored` is what the app's storage held before this
    /// start. Registers the device unless the stored registration is this one (PUSH-1, PUSH-2),
    /// removing the previous identity's binding first (PUSH-4).
    pub(super) fn register_on_start(&mut self, login: &Login, stored: Stored) {
        let Some(device) = login.device_token.clone() else {
            return;
        };
        if !self.policy.register_on_start {
            // Fault `no-register-on-start`.
            return;
        }
        let current = StoredRegistration {
            identity: login.identity.clone(),
            device_token: device.clone(),
        };
        if stored.registration.as_ref() == Some(&current) && self.policy.skip_unchanged_registration
        {
            return;
        }
        let Some(s) = self.session.as_ref() else {
            return;
        };
        let rest = s.rest.clone();
        // The binding to remove first: the previous identity's (with a token of that
        // identity), or this identity's for a device token the OS has since replaced.
        let previous = stored.registration.filter(|r| *r != current).filter(|r| {
            if r.identity == login.identity {
                self.policy.follow_token_rotation
            } else {
                self.policy.remove_previous_identity_binding
            }
        });
        let previous = previous.map(|r| {
            let stored_token = stored
                .token
                .filter(|t| {
                    t.identity == r.identity
                        && t.expires_at > self.clock.now().plus(super::tokens::MARGIN)
                })
                .map(|t| t.token);
            let generator = (r.identity != login.identity && stored_token.is_none())
                .then(|| self.generator(&login.token_url, &r.identity, &s.instance));
            (r, stored_token, generator)
        });
        let binding_type = self.binding_type();
        let storage = login.storage.clone();
        self.spawn(async move {
            let result = async {
                if let Some((r, stored_token, generator)) = previous {
                    let token = match (stored_token, generator) {
                        (Some(t), _) => Some(t),
                        (None, Some(g)) => Some(g.fetch().await?.token),
                        // This identity's old device token: the session's own token.
                        (None, None) => None,
                    };
                    let as_previous = match token {
                        Some(t) => Rest {
                            token: std::sync::Arc::new(std::sync::Mutex::new(t)),
                            ..rest.clone()
                        },
                        None => rest.clone(),
                    };
                    unregister(&as_previous, &r.device_token).await?;
                }
                register(&rest, &current.device_token, binding_type).await?;
                Ok((current, None))
            }
            .await;
            TaskResult::Registered { storage, result }
        });
    }

    /// `device_token_changed`: registers the new device token for the running client and
    /// removes the old one's binding (PUSH-3). Without a running client the next `start`
    /// brings the new token.
    pub(super) fn device_token_changed(&mut self, device: String) {
        if !self.policy.follow_token_rotation {
            // Fault `ignore-token-rotation`.
            return;
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let old = s.login.device_token.replace(device.clone());
        if old.as_deref() == Some(device.as_str()) {
            return;
        }
        let (rest, storage) = (s.rest.clone(), s.login.storage.clone());
        let current = StoredRegistration {
            identity: s.login.identity.clone(),
            device_token: device,
        };
        let binding_type = self.binding_type();
        // A token that expired while the app slept is replaced before the writes.
        let refresh = self.stale_token_generator();
        self.spawn(async move {
            let result = async {
                let fresh = match refresh {
                    Some(g) => Some(g.fetch().await?),
                    None => None,
                };
                let rest = match &fresh {
                    Some(c) => Rest {
                        token: std::sync::Arc::new(std::sync::Mutex::new(c.token.clone())),
                        ..rest
                    },
                    None => rest,
                };
                register(&rest, &current.device_token, binding_type).await?;
                if let Some(old) = old {
                    unregister(&rest, &old).await?;
                }
                Ok((current, fresh))
            }
            .await;
            TaskResult::Registered { storage, result }
        });
    }

    /// A registration task ended: what it registered is kept for the next start.
    pub(super) fn registered(&mut self, storage: &Storage, result: Registered) {
        match result {
            Ok((registration, fresh)) => {
                if let Some(credential) = fresh {
                    self.adopt(&credential);
                }
                storage.update(|s| s.registration = Some(registration));
            }
            Err(e) => self.observe(Observation::Error {
                kind: e.kind,
                message: format!("push registration failed: {}", e.message),
            }),
        }
    }
}
