//! The v1 wire vocabulary that both ends of every socket share: the mock backend writes it, the
//! reference client reads it, the checks and the journal name things with it.
//!
//! Parts: identifiers ([`ConversationSid`], [`InstanceId`], [`ObjectKey`]), the event channel's
//! frames ([`event`]: one [`EventType`] vocabulary, typed [`EventFrame`]s, ping and pong), the
//! REST resources in Twilio Conversations v1 field names ([`resources`]) and the Twilio error
//! body ([`TwilioError`]).
//!
//! Must not import: anything else of the crate but [`crate::clock`]. This is the bottom layer:
//! a type here never knows who sends it.

pub mod event;
pub mod resources;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use event::{
    EventFrame, EventType, Heartbeat, HubFrame, Ping, TOKEN_EXPIRED_CLOSE, UpdateToken,
};
pub use resources::TwilioError;

/// Declares a newtype over `String` for an id: transparent in serde, `Display`, `as_str`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone,
            Debug,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

pub(crate) use string_id;

string_id! {
    /// A conversation's sid (`CH` and 32 hex digits).
    ConversationSid
}

string_id! {
    /// A client instance id, as the client sends it in `X-Convo-Client` and reports it in
    /// `client_created`.
    InstanceId
}

/// A deterministic Twilio-style sid: two-letter prefix and 32 hex digits.
pub fn sid(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:032x}")
}

/// An object that has revisions and Updated events: a user (by identity) or a conversation.
///
/// Written `user:alice` or `CH...` in frames and journal entries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKey {
    /// A user, by chat identity.
    User(String),
    /// A conversation.
    Conversation(ConversationSid),
}

impl ObjectKey {
    /// The conversation's sid, if this is a conversation.
    pub fn conversation(&self) -> Option<&ConversationSid> {
        match self {
            Self::Conversation(sid) => Some(sid),
            Self::User(_) => None,
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Conversation(sid) => f.write_str(sid.as_str()),
        }
    }
}

impl FromStr for ObjectKey {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.strip_prefix("user:") {
            Some(identity) => Self::User(identity.to_owned()),
            None => Self::Conversation(ConversationSid::from(s)),
        })
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Written as its [`Display`](fmt::Display), like its [`Serialize`]: `user:{identity}` for a
/// user, the bare sid for a conversation. Any other string reads as a conversation's sid.
impl schemars::JsonSchema for ObjectKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ObjectKey".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::ObjectKey").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An object that has revisions and Updated events: `user:{identity}` \
                for a user, the conversation's sid for a conversation.",
            "type": "string",
        })
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(text.parse().unwrap_or_else(|never| match never {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_written_as_in_frames() {
        let user = ObjectKey::User("alice".into());
        let conv = ObjectKey::Conversation(ConversationSid::new(sid("CH", 1)));
        assert_eq!(user.to_string(), "user:alice");
        assert_eq!(conv.to_string(), "CH00000000000000000000000000000001");
        for k in [user, conv] {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<ObjectKey>(&json).unwrap(), k);
        }
    }
}
