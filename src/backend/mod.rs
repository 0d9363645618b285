//! The mock Conversations service: real HTTP and a real WebSocket on loopback.
//!
//! Layers, bottom up, each importing only those below it:
//! - [`endpoint`]: what a request was taken for;
//! - `model`: the truth as pure data (records, revisions, list index, gates, holds, event log);
//! - [`fact`]: what the backend writes down, and the [`Recorder`] it writes to;
//! - `render`: the model in the wire's shapes (v1 resources, event frames);
//! - `tokens`: JWT minting and validation on virtual time;
//! - `service`: one lock around the model, the publishing path;
//! - `transport`: REST endpoints (wiremock, behind a front door on the public port) and the event
//!   hub (WebSocket);
//! - this facade, [`Backend`], with its typed controls (`controls`), the `network` it serves
//!   on (which outages break and restores mend), and [`fixture`]s.
//!
//! Must not import: the journal, the adapter protocol, the harness, the checks (the backend
//! records facts to a [`Recorder`] and knows nothing of who reads them).

mod controls;
pub mod endpoint;
pub mod fact;
pub mod fixture;
mod model;
mod network;
mod render;
mod service;
mod tokens;
mod transport;

use std::sync::Arc;

use wiremock::MockServer;

use crate::clock::VirtualClock;
use crate::secrets::Secrets;
use service::Service;

pub use controls::{
    BackendState, BindingState, ConversationState, CountsOracle, CountsTruth, UserState,
};
pub use endpoint::{Endpoint, EndpointKind, OperationClass};
pub use fact::{
    BindingFact, Control, DroppedFact, Fact, FrameFact, Issued, Layer, Port, PublishedFact,
    Recorder, Refusal, RefusedFact, RequestFact, TokenFact, TokenNotice,
};
pub use model::{
    At, BINDING_IDLE_EXPIRY, BindingChange, BindingType, DEFAULT_MESSAGE_TYPES, Gate, ListAction,
    ListOrder, Outage,
};
pub use tokens::{EXPIRY_WARNING, GENERATOR_MAX_TTL, MAX_TTL, MIN_TTL, TokenError};

/// The backend could not start, or a control named something it does not have.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A loopback listener could not be bound.
    #[error("could not bind a loopback listener: {0}")]
    Bind(#[from] std::io::Error),
    /// The operating system's random source failed (the signing key is drawn from it).
    #[error("could not draw a signing key from the OS random source: {0}")]
    Random(String),
    /// A control referred to something the backend does not have.
    #[error("{0}")]
    Missing(String),
}

/// How to start a backend.
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct BackendBuilder {
    clock: VirtualClock,
    recorder: Arc<dyn Recorder>,
    secrets: Secrets,
    seed: u64,
}

/// A recorder that keeps nothing (for benchmarks of the backend alone).
struct Discard;

impl Recorder for Discard {
    fn record(&self, _: Option<crate::wire::InstanceId>, _: Fact) {}
}

impl BackendBuilder {
    /// Where the backend's facts go (nowhere by default).
    pub fn record_to(mut self, recorder: Arc<dyn Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// The registry every minted token is added to, so reports can redact it.
    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Makes sids and token secrets reproducible: same seed, same sids (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Binds fresh loopback ports and starts serving.
    pub async fn start(self) -> Result<Backend, BackendError> {
        // The public REST port is the front door's; wiremock listens on one of its own that
        // only the front door uses.
        let ports = network::Ports::reserve()?;
        let rest_url = format!("http://{}", ports.rest);
        let wiremock_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let wiremock_addr = wiremock_listener.local_addr()?;
        let events_url = format!("ws://{}/v1/events", ports.events);
        let model = model::Model::new(self.seed, rest_url.clone(), self.clock.clone());
        let clock = self.clock.clone();
        let tokens = tokens::TokenAuthority::new(
            self.clock,
            self.secrets.clone(),
            self.seed,
            &model.account_sid,
            &model.service_sid,
        )
        .map_err(|e| BackendError::Random(e.to_string()))?;
        let account_sid = model.account_sid.clone();
        // The token authority drew the auth token (and registered it with the secrets): HTTP
        // Basic is checked against that one.
        let auth_token = tokens.auth_token().to_owned();
        let service = Arc::new(Service::new(model, self.recorder, tokens));
        let server = MockServer::builder()
            .listener(wiremock_listener)
            .disable_request_recording()
            .start()
            .await;
        transport::rest::mount(&server, &service).await;
        let network = network::Network::up(ports, wiremock_addr, service.clone())?;
        let expiry = tokio::spawn(service::expire_idle_bindings(service.clone(), clock));
        Ok(Backend {
            expiry,
            service,
            rest: Some(server),
            rest_url,
            events_url,
            account_sid,
            auth_token,
            network: tokio::sync::Mutex::new(network),
        })
    }
}

/// A running mock backend. Dropping it stops both listeners.
#[must_use = "dropping the backend stops it"]
pub struct Backend {
    service: Arc<Service>,
    rest: Option<MockServer>,
    rest_url: String,
    events_url: String,
    account_sid: String,
    auth_token: String,
    network: tokio::sync::Mutex<network::Network>,
    /// The task that expires idle push bindings on virtual time.
    expiry: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.expiry.abort();
        self.network.get_mut().abort();
        // wiremock's MockServer verifies its expectations on drop with a blocking `block_on`
        // over tokio locks; inside an async task whose cooperative budget is spent that spins
        // forever. Drop it on a blocking thread instead.
        if let Some(server) = self.rest.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || drop(server));
                }
                Err(_) => drop(server),
            }
        }
    }
}

impl Backend {
    /// A builder for a backend on virtual `clock`.
    pub fn builder(clock: VirtualClock) -> BackendBuilder {
        BackendBuilder {
            clock,
            recorder: Arc::new(Discard),
            secrets: Secrets::default(),
            seed: 1,
        }
    }

    /// Base URL of the REST API (`http://127.0.0.1:PORT`).
    pub fn rest_url(&self) -> &str {
        &self.rest_url
    }

    /// The token generator's URL.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.rest_url)
    }

    /// The event channel's URL.
    pub fn events_url(&self) -> &str {
        &self.events_url
    }

    /// The twilsock face's URL (on the event channel's port; see `transport::twilsock`).
    pub fn twilsock_url(&self) -> String {
        self.events_url.replace("/v1/events", "/v3/wsconnect")
    }

    /// The account sid (`AC...`) every resource and token names.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The auth token: the server-side credential that goes with [`Backend::account_sid`]
    /// (random, drawn once per backend, registered with the run's secrets so the journal
    /// never shows it).
    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_backend_draws_its_own_auth_token() {
        let a = Backend::builder(VirtualClock::new()).start().await.unwrap();
        let b = Backend::builder(VirtualClock::new()).start().await.unwrap();
        assert_eq!(a.account_sid(), b.account_sid(), "same seed, same sid");
        assert!(a.account_sid().starts_with("AC"));
        assert_eq!(a.auth_token().len(), 32);
        assert!(a.auth_token().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.auth_token(), b.auth_token());
    }
}
