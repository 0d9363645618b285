//! The adapter contract: how the harness talks to a client stack.
//!
//! [`protocol`] holds the serde vocabulary (commands, replies, observations, `hello`). The
//! [`Adapter`] trait opens one [`AdapterSession`] per scenario: a fresh client stack, a request
//! channel in and an event channel out. The in-process reference client implements it directly;
//! the stdio adapter (a child process speaking JSON lines) will implement the same trait, so one
//! suite serves both. The scenario driver is the only caller.

pub mod protocol;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

pub use protocol::*;

/// A failure of the adapter itself (not of a command it ran).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The adapter could not be started.
    #[error("adapter could not be started: {0}")]
    Spawn(String),
    /// The handshake was missing, malformed or of another protocol version.
    #[error("adapter handshake failed: {0}")]
    Handshake(String),
    /// The adapter stopped (crashed or exited) while the harness still needed it.
    #[error("adapter exited: {0}")]
    Exited(String),
    /// The adapter did not answer within the safety timeout (real time).
    #[error("adapter did not answer `{command}` (request {id}) within {waited_ms} ms of real time")]
    Hung {
        /// The command's wire name.
        command: &'static str,
        /// Request id.
        id: u64,
        /// How long the harness waited.
        waited_ms: u64,
    },
    /// The adapter said something that is not the protocol.
    #[error("adapter spoke garbage: {reason}: `{line}`")]
    Protocol {
        /// The offending line (truncated).
        line: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What an adapter session sends back to the harness, in order.
#[derive(Debug)]
pub enum AdapterEvent {
    /// A reply to a request.
    Reply(Reply),
    /// An observation.
    Observation(Observation),
    /// A line of the adapter's log (stderr for processes).
    Log(String),
    /// The adapter stopped; no more events follow.
    Exited(String),
}

/// One live adapter: a client stack under test, for one scenario.
pub struct AdapterSession {
    hello: Hello,
    requests: mpsc::UnboundedSender<Request>,
    events: mpsc::UnboundedReceiver<AdapterEvent>,
    closer: BoxFuture<'static, ()>,
}

impl AdapterSession {
    /// Wraps the channels of a started adapter. `closer` runs on [`AdapterSession::close`] after the
    /// request channel is dropped; it should wait (boundedly) for the stack to stop.
    pub fn new(
        hello: Hello,
        requests: mpsc::UnboundedSender<Request>,
        events: mpsc::UnboundedReceiver<AdapterEvent>,
        closer: BoxFuture<'static, ()>,
    ) -> Self {
        Self {
            hello,
            requests,
            events,
            closer,
        }
    }

    /// The adapter's handshake.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Splits the session into its request sender, its event receiver and its closer.
    pub fn into_parts(
        self,
    ) -> (
        mpsc::UnboundedSender<Request>,
        mpsc::UnboundedReceiver<AdapterEvent>,
        BoxFuture<'static, ()>,
    ) {
        let Self {
            requests,
            events,
            closer,
            ..
        } = self;
        (requests, events, closer)
    }
}

/// A client stack the kit can test: opens a fresh session per scenario.
pub trait Adapter: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;

    /// Starts a fresh client stack and completes its handshake. Called once per scenario and
    /// per property case, concurrently for concurrent scenarios.
    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>>;
}
