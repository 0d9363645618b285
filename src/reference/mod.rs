//! The reference client stack: a real async client over HTTP and a WebSocket, with planted bugs.
//!
//! [`ReferenceAdapter`] implements [`Adapter`] in-process through [`AdapterSession::serve`]:
//! each session runs an `engine` (all client state, one input at a time) whose timers run on
//! its own [`VirtualClock`](crate::clock::VirtualClock), moved by `advance_time`. `net` is the
//! wire side (REST, token generator, event socket); `policy` gathers what the [`Fault`]s switch
//! off, which is how the kit proves its checks can fail. With no faults it must pass every rule
//! in both profiles.
//!
//! Must not import: the backend, the journal, the checks, the rules, the harness (the reference
//! client is a client: it knows the wire and the adapter protocol, nothing of the kit).

mod engine;
mod fault;
mod net;
mod policy;
mod storage;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

pub use fault::{Fault, FaultSet, UnknownFault};

use crate::adapter::{
    Adapter, AdapterError, AdapterSession, Capabilities, CommandKind, Hello, PROTOCOL_VERSION,
    Profile,
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
    /// Commands it claims not to have (like a server-side SDK without `background`): left out
    /// of its capabilities and answered `unsupported`.
    pub lacks: Vec<CommandKind>,
    /// The token lifetime it asks its generator for (hours; at most a day).
    pub token_ttl: std::time::Duration,
    /// How long a count read is served from its cache (the documented 5 s by default).
    pub count_cache: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Mobile,
            faults: FaultSet::none(),
            page_size: 50,
            lacks: Vec::new(),
            token_ttl: std::time::Duration::from_secs(4 * 3600),
            count_cache: std::time::Duration::from_secs(5),
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

    /// A reference client claiming `profile`, with `faults` switched on.
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
            let http = net::http_client().map_err(AdapterError::Spawn)?;
            let hello = Hello {
                protocol: PROTOCOL_VERSION,
                adapter: "reference".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                profile: config.profile,
                capabilities: Capabilities {
                    virtual_time: true,
                    settle: true,
                    count_cache_lifetime_ms: Some(config.count_cache.as_millis() as u64),
                    features: vec!["messages".into()],
                    commands: Some(CommandKind::ALL.to_vec()),
                },
            };
            Ok(AdapterSession::serve(hello, move |commands, observer| {
                engine::Engine::run(config, http, commands, observer)
            }))
        }
        .boxed()
    }
}
