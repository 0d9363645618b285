//! How the network between the clients and the backend can fail.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A network outage the harness can switch on (and off with a restore).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outage {
    /// Nothing listens on either port: connections are refused by the operating system. Open
    /// connections are cut. The ports stay reserved and come back on the same numbers.
    Refuse,
    /// Both ports accept connections and drop them unanswered (a half-open link, a captive
    /// portal). Open connections are cut.
    Drop,
    /// Event sockets open now stay open and go silent for good: no events, no heartbeat
    /// echoes (the settle barrier still answers). New connections and REST work.
    Silence,
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refuse => "connections refused",
            Self::Drop => "connections accepted and dropped (half-open)",
            Self::Silence => "open event sockets go silent",
        })
    }
}
