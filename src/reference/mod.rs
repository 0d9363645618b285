//! The reference client stack: a real async client over HTTP and a WebSocket, with planted bugs.
//!
//! [`ReferenceAdapter`] implements [`Adapter`](crate::adapter::Adapter) in-process: each session
//! spawns an `engine` task (all client state, one input at a time) whose timers run on its own
//! [`VirtualClock`](crate::clock::VirtualClock), moved by `advance_time`. `net` holds the wire
//! side. [`Fault`]s make it break single rules, which is how the kit proves its checks can fail.
//! With no faults it must pass every rule in both profiles.

mod engine;
mod fault;
mod net;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

pub use fault::{Fault, FaultSet, UnknownFault};

use crate::adapter::{
    Adapter, AdapterError, AdapterSession, Capabilities, Hello, PROTOCOL_VERSION, Profile,
};

/// How the reference client behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Which profile it claims.
    pub profile: Profile,
    /// Planted bugs.
    pub faults: FaultSet,
    /// `PageSize` it asks the subscribed list for.
    pub page_size: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Mobile,
            faults: FaultSet::none(),
            page_size: 50,
        }
    }
}

/// The built-in reference client as an in-process adapter.
#[derive(Clone, Debug, Default)]
pub struct ReferenceAdapter {
    config: Arc<Config>,
}

impl ReferenceAdapter {
    /// A reference adapter with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// A compliant reference client claiming `profile`, with `faults` switched on.
    pub fn with_faults(profile: Profile, faults: FaultSet) -> Self {
        Self::new(Config {
            profile,
            faults,
            ..Config::default()
        })
    }
}

impl Adapter for ReferenceAdapter {
    fn name(&self) -> String {
        let faults: Vec<_> = self.config.faults.iter().map(Fault::name).collect();
        if faults.is_empty() {
            "reference".into()
        } else {
            format!("reference (faults: {})", faults.join(", "))
        }
    }

    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>> {
        let config = self.config.clone();
        async move {
            let hello = Hello {
                protocol: PROTOCOL_VERSION,
                adapter: "reference".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                profile: config.profile,
                capabilities: Capabilities {
                    virtual_time: true,
                    settle: true,
                    count_cache_lifetime_ms: None,
                    features: vec!["messages".into()],
                },
            };
            let (req_tx, req_rx) = mpsc::unbounded_channel();
            let (ev_tx, ev_rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(engine::Engine::run(config, req_rx, ev_tx));
            let closer = async move {
                // The engine stops when its request channel closes; give it a moment, then stop it.
                let abort = task.abort_handle();
                if tokio::time::timeout(Duration::from_secs(2), task)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            }
            .boxed();
            Ok(AdapterSession::new(hello, req_tx, ev_rx, closer))
        }
        .boxed()
    }
}
