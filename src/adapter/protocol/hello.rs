//! The handshake: who the adapter is, which profile it claims, what it can do.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which SDK family's documented behaviour the adapter claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The JavaScript SDK (client resolves before the list is fetched, count caches...).
    Js,
    /// The Android and iOS SDKs (sync status, Updated events, handle release...).
    #[default]
    Mobile,
}

impl Profile {
    /// Every profile, for listings.
    pub const ALL: [Profile; 2] = [Profile::Js, Profile::Mobile];
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Js => "js",
            Self::Mobile => "mobile",
        })
    }
}

/// A profile name that is not `js` or `mobile`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}`; valid profiles: js, mobile")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "js" | "javascript" => Ok(Self::Js),
            "mobile" | "android" | "ios" => Ok(Self::Mobile),
            _ => Err(UnknownProfile(s.to_owned())),
        }
    }
}

/// The adapter's first message: who it is and what it can do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Hello {
    /// Protocol version the adapter speaks; must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Adapter name, e.g. `reference` or `acme-android`.
    pub adapter: String,
    /// Adapter version.
    pub version: String,
    /// Which profile's rules the adapter must follow.
    pub profile: Profile,
    /// What the adapter can do.
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// Optional abilities an adapter declares; a rule that needs a missing one is N/A, not FAIL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capabilities {
    /// The client's timers run on a clock driven by `advance_time`.
    #[serde(default)]
    pub virtual_time: bool,
    /// The adapter answers `settle` only when its work queue is drained.
    #[serde(default)]
    pub settle: bool,
    /// The lifetime of the client's count cache, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_cache_lifetime_ms: Option<u64>,
    /// Further named features (`push`, `messages`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// The commands the adapter implements, when it lacks some (absent: all of them). A
    /// scenario that needs a command the adapter lacks (`background` on a server-side SDK, say)
    /// is N/A, never FAIL; so is one whose command the adapter answers `unsupported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<super::command::CommandKind>>,
}

impl Capabilities {
    /// Whether the adapter says it implements `command`.
    pub fn implements(&self, command: super::command::CommandKind) -> bool {
        self.commands.as_ref().is_none_or(|c| c.contains(&command))
    }
}
