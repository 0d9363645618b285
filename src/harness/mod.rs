//! The harness toolkit: what steps, property campaigns and benchmarks share to set a scene.
//!
//! [`Harness::builder`] starts everything one scenario or one property case needs: a virtual
//! clock, a journal, a backend on fresh loopback ports recording into the journal, and a
//! [`Driver`] over a fresh session of the adapter under test. [`Harness::start_command`] is the
//! one place a `start` command is built. The `panics` part marks the panics the kit raises on
//! purpose (cucumber and proptest report failures as panics) and keeps them quiet.
//!
//! Must not import: the scenario runner, the properties, the report.

mod driver;
pub(crate) mod panics;

use std::sync::Arc;
use std::time::Duration;

pub use driver::{Driver, RequestId};

use crate::adapter::{Adapter, AdapterError, Command, PROTOCOL_VERSION};
use crate::backend::{Backend, BackendError};
use crate::clock::VirtualClock;
use crate::journal::Journal;
use crate::secrets::Secrets;

/// The harness could not set a scene up.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The backend did not start.
    #[error("backend failed to start: {0}")]
    Backend(#[from] BackendError),
    /// The adapter did not start.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// The scene's storage directory could not be made.
    #[error("could not make the scene's storage directory: {0}")]
    Storage(std::io::Error),
}

/// How to set a scene up.
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct HarnessBuilder {
    adapter: Arc<dyn Adapter>,
    seed: u64,
    safety: Duration,
}

impl HarnessBuilder {
    /// Sids and token secrets derive from `seed`: same seed, same scene (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The real-time bound on every wait for the adapter (default 10 s).
    pub fn safety(mut self, safety: Duration) -> Self {
        self.safety = safety;
        self
    }

    /// Starts the backend and opens an adapter session.
    pub async fn start(self) -> Result<Harness, HarnessError> {
        let clock = VirtualClock::new();
        let secrets = Secrets::default();
        let journal = Journal::new(clock.clone(), secrets.clone());
        let backend = Backend::builder(clock.clone())
            .record_to(Arc::new(journal.clone()))
            .secrets(secrets)
            .seed(self.seed)
            .start()
            .await?;
        let session = self.adapter.open().await?;
        if !crate::adapter::speaks(u64::from(session.hello().protocol)) {
            return Err(AdapterError::Handshake(format!(
                "adapter speaks protocol {} but the harness speaks 1 to {PROTOCOL_VERSION}",
                session.hello().protocol
            ))
            .into());
        }
        let mut driver = Driver::new(session, journal.clone(), self.safety);
        driver.journal_counts(backend.counts_oracle());
        let storage = tempfile::Builder::new()
            .prefix("convo-tck-storage-")
            .tempdir()
            .map_err(HarnessError::Storage)?;
        Ok(Harness {
            clock,
            journal,
            backend,
            driver,
            storage,
            device_token: None,
        })
    }
}

/// One scene: a backend and an adapter session, sharing a clock and a journal.
pub struct Harness {
    /// The backend's clock (the adapter's moves with it through `advance_time`).
    pub clock: VirtualClock,
    /// Everything that happened.
    pub journal: Journal,
    /// The mock service.
    pub backend: Backend,
    /// The adapter session.
    pub driver: Driver,
    /// The app's persistent storage (`start`'s `storage_dir`): it survives `kill` and is
    /// removed with the scene.
    storage: tempfile::TempDir,
    /// The push device token the OS has handed the app (sent with every `start`).
    pub device_token: Option<String>,
}

impl Harness {
    /// A builder for a scene with `adapter`.
    pub fn builder(adapter: Arc<dyn Adapter>) -> HarnessBuilder {
        HarnessBuilder {
            adapter,
            seed: 1,
            safety: Duration::from_secs(10),
        }
    }

    /// The `start` command that logs `identity` in against this backend.
    pub fn start_command(&self, identity: &str) -> Command {
        Command::Start {
            identity: identity.to_owned(),
            token_url: self.backend.token_url(),
            rest_url: self.backend.rest_url().to_owned(),
            events_url: self.backend.events_url().to_owned(),
            twilsock_url: Some(self.backend.twilsock_url()),
            storage_dir: Some(self.storage.path().display().to_string()),
            device_token: self.device_token.clone(),
        }
    }

    /// Lets `d` of virtual time pass for the backend and the adapter, in steps that land on
    /// every instant the backend has something due (a token warning, an expiry) on the way.
    pub async fn advance(&mut self, d: Duration) -> Result<(), AdapterError> {
        let end = self.clock.now().plus(d);
        loop {
            let now = self.clock.now();
            if now >= end {
                return Ok(());
            }
            let until = self
                .backend
                .next_deadline()
                .filter(|t| *t < end)
                .unwrap_or(end);
            self.driver.advance(&self.clock, until.since(now)).await?;
        }
    }

    /// Closes the adapter session and the backend; returns the protocol error the adapter
    /// made, if any.
    pub async fn close(self) -> Option<crate::adapter::AdapterError> {
        let failed = self.driver.close().await;
        drop(self.backend);
        failed
    }
}
