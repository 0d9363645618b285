//! The adapter contract: how the harness talks to a client stack.
//!
//! [`protocol`] holds the serde vocabulary (commands, typed replies, observations, `hello`). The
//! [`Adapter`] trait opens one [`AdapterSession`] per scenario: a fresh client stack. An
//! in-process stack is written with [`AdapterSession::serve`]: it receives each command with a
//! [`Responder`] to answer it (now or later) and reports through an [`Observer`], without
//! touching channels. Out-of-process adapters (JSON lines over stdio) implement the same trait,
//! so one suite serves both. The harness's driver is the only caller of a session.
//!
//! Must not import: the backend, the journal, the checks, the harness (an adapter knows the
//! protocol and nothing of how it is judged).

pub mod process;
pub mod protocol;
mod session;
pub mod stdio;

use futures::future::BoxFuture;

pub use process::ProcessAdapter;
pub use protocol::*;
pub use session::{AdapterEvent, AdapterSession, Commands, Observer, Responder};

/// A failure of the adapter itself (not of a command it ran).
#[derive(Clone, Debug, thiserror::Error)]
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

/// A client stack the kit can test: opens a fresh session per scenario.
pub trait Adapter: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;

    /// Starts a fresh client stack and completes its handshake. Called once per scenario and
    /// per property case, concurrently for concurrent scenarios.
    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>>;
}
