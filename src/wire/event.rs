//! The event channel's frames: numbered events from the hub, the ping/pong barrier and the
//! heartbeat.
//!
//! The hub writes one [`EventFrame`] per event (`{"seq", "type", "revision", "reasons", ...}`)
//! and answers a client's [`Ping`] with a pong queued behind every event already queued for that
//! socket. Clients decode what arrives with [`HubFrame::decode`], once, into these types.
//!
//! The ping is the kit's settle barrier: it says "everything before me was written", nothing
//! about the connection's health, and it is answered even on a socket the harness silenced. A
//! client that wants to know its connection is alive sends a [`Heartbeat`]; the hub echoes it,
//! except on a silenced socket, which is how a client's liveness timer notices a dead link.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::resources::{Conversation, Message, User};
use super::{ConversationSid, ObjectKey};

/// The type of an event, as the `type` field of a frame names it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The user was added to a conversation.
    ConversationAdded,
    /// A conversation changed.
    ConversationUpdated,
    /// The user left or lost a conversation.
    ConversationRemoved,
    /// The user changed.
    UserUpdated,
    /// A message was sent.
    MessageAdded,
    /// A message was edited.
    MessageUpdated,
    /// A message was deleted.
    MessageRemoved,
}

impl EventType {
    /// The wire name (`conversation_updated`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ConversationAdded => "conversation_added",
            Self::ConversationUpdated => "conversation_updated",
            Self::ConversationRemoved => "conversation_removed",
            Self::UserUpdated => "user_updated",
            Self::MessageAdded => "message_added",
            Self::MessageUpdated => "message_updated",
            Self::MessageRemoved => "message_removed",
        }
    }

    /// Whether the event announces a new version of its object (an "Updated event").
    pub fn is_update(self) -> bool {
        matches!(self, Self::ConversationUpdated | Self::UserUpdated)
    }

    /// Whether the event is about one message of a conversation.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            Self::MessageAdded | Self::MessageUpdated | Self::MessageRemoved
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One event as the hub puts it on a socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    /// The event's sequence number (replay with `?since=SEQ`).
    pub seq: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The revision of the object's snapshot this frame carries.
    pub revision: Option<u64>,
    /// Why the object changed (`attributes`, `last_message`).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The conversation, for conversation and message events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_sid: Option<ConversationSid>,
    /// The conversation's resource as of `revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    /// The user's resource as of `revision`, for user events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The message index, for message events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The message's resource, for message events (absent once removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

impl EventFrame {
    /// The object the event is about.
    pub fn target(&self) -> Option<ObjectKey> {
        match (&self.user, &self.conversation_sid) {
            (Some(u), _) => Some(ObjectKey::User(u.identity.clone())),
            (None, Some(sid)) => Some(ObjectKey::Conversation(sid.clone())),
            (None, None) => None,
        }
    }

    /// The attributes of the snapshot the frame carries, parsed.
    pub fn attributes(&self) -> Option<Value> {
        match (&self.user, &self.conversation) {
            (Some(u), _) => Some(super::resources::parse_attributes(&u.attributes)),
            (None, Some(c)) => Some(super::resources::parse_attributes(&c.attributes)),
            (None, None) => None,
        }
    }
}

/// A client's request for a pong (`{"type":"ping","nonce":n}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "ping")]
pub struct Ping {
    /// Echoed in the pong.
    pub nonce: u64,
}

/// A client's liveness probe (`{"type":"heartbeat","nonce":n}`), echoed by a live hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "heartbeat")]
pub struct Heartbeat {
    /// Echoed in the answer.
    pub nonce: u64,
}

/// What the hub writes on a socket.
#[derive(Clone, Debug, PartialEq)]
pub enum HubFrame {
    /// The first frame on every socket: where in the event log it starts (events after `seq`
    /// follow), and its number. A client that has received no event yet resumes from `seq`.
    Welcome {
        /// The last event sequence number before this socket's first event.
        seq: u64,
        /// The socket's number (for logs).
        socket: u64,
    },
    /// The echo of a client's heartbeat: the connection is alive.
    Heartbeat {
        /// The heartbeat's nonce.
        nonce: u64,
    },
    /// An event.
    Event(Box<EventFrame>),
    /// The answer to a ping: every frame queued before the ping came before it.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The channel's token expires in three minutes: hand a new one over (`update_token`).
    TokenAboutToExpire {
        /// When it expires (RFC 3339, virtual time).
        expires_at: String,
    },
    /// The channel's token expired; the socket closes with code [`TOKEN_EXPIRED_CLOSE`].
    TokenExpired,
    /// The token handed over with `update_token` governs the channel now.
    TokenUpdated {
        /// When it expires.
        expires_at: String,
    },
    /// The token handed over with `update_token` was refused; the old one still governs.
    TokenRejected {
        /// The Twilio error code (20101 invalid, 20103 another identity, 20104 expired or a
        /// lifetime under 3 minutes, 20157 a lifetime over 24 hours).
        code: u32,
        /// Why.
        message: String,
    },
}

/// The WebSocket close code of a channel whose token expired (the twilsock 410, in the
/// application range).
pub const TOKEN_EXPIRED_CLOSE: u16 = 4410;

/// A client handing a fresh token to its open channel (`{"type":"update_token","token":...}`),
/// answered with `token_updated` or `token_rejected`, without reconnecting.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename = "update_token")]
pub struct UpdateToken {
    /// The new access token.
    pub token: String,
}

impl fmt::Debug for UpdateToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpdateToken { token: <redacted> }")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TokenFrame {
    #[serde(rename = "token_about_to_expire")]
    AboutToExpire { expires_at: String },
    #[serde(rename = "token_expired")]
    Expired {},
    #[serde(rename = "token_updated")]
    Updated { expires_at: String },
    #[serde(rename = "token_rejected")]
    Rejected { code: u32, message: String },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename = "welcome")]
struct Welcome {
    seq: u64,
    socket: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename = "pong")]
struct Pong {
    nonce: u64,
}

impl HubFrame {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        if value["type"] == "pong" {
            let Pong { nonce } = serde_json::from_value(value)?;
            return Ok(Self::Pong { nonce });
        }
        if value["type"] == "welcome" {
            let Welcome { seq, socket } = serde_json::from_value(value)?;
            return Ok(Self::Welcome { seq, socket });
        }
        if value["type"] == "heartbeat" {
            let Heartbeat { nonce } = serde_json::from_value(value)?;
            return Ok(Self::Heartbeat { nonce });
        }
        if value["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("token_"))
        {
            return Ok(match serde_json::from_value(value)? {
                TokenFrame::AboutToExpire { expires_at } => Self::TokenAboutToExpire { expires_at },
                TokenFrame::Expired {} => Self::TokenExpired,
                TokenFrame::Updated { expires_at } => Self::TokenUpdated { expires_at },
                TokenFrame::Rejected { code, message } => Self::TokenRejected { code, message },
            });
        }
        serde_json::from_value(value).map(|e| Self::Event(Box::new(e)))
    }

    /// Encodes the frame as the text put on the socket.
    pub fn encode(&self) -> String {
        let text = match self {
            Self::Event(e) => serde_json::to_string(e),
            Self::Pong { nonce } => serde_json::to_string(&Pong { nonce: *nonce }),
            Self::Heartbeat { nonce } => serde_json::to_string(&Heartbeat { nonce: *nonce }),
            Self::Welcome { seq, socket } => serde_json::to_string(&Welcome {
                seq: *seq,
                socket: *socket,
            }),
            Self::TokenAboutToExpire { expires_at } => {
                serde_json::to_string(&TokenFrame::AboutToExpire {
                    expires_at: expires_at.clone(),
                })
            }
            Self::TokenExpired => serde_json::to_string(&TokenFrame::Expired {}),
            Self::TokenUpdated { expires_at } => serde_json::to_string(&TokenFrame::Updated {
                expires_at: expires_at.clone(),
            }),
            Self::TokenRejected { code, message } => serde_json::to_string(&TokenFrame::Rejected {
                code: *code,
                message: message.clone(),
            }),
        };
        text.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_pongs_have_the_documented_shape() {
        let ping = serde_json::to_string(&Ping { nonce: 3 }).unwrap();
        assert_eq!(ping, r#"{"type":"ping","nonce":3}"#);
        let pong = HubFrame::Pong { nonce: 3 }.encode();
        assert_eq!(pong, r#"{"type":"pong","nonce":3}"#);
        assert_eq!(
            HubFrame::decode(&pong).unwrap(),
            HubFrame::Pong { nonce: 3 }
        );
    }

    #[test]
    fn token_frames_round_trip() {
        for f in [
            HubFrame::TokenAboutToExpire {
                expires_at: "2026-01-01T01:00:00Z".into(),
            },
            HubFrame::TokenExpired,
            HubFrame::TokenUpdated {
                expires_at: "2026-01-01T02:00:00Z".into(),
            },
            HubFrame::TokenRejected {
                code: 20_104,
                message: "expired".into(),
            },
        ] {
            assert_eq!(HubFrame::decode(&f.encode()).unwrap(), f);
        }
        assert_eq!(
            HubFrame::TokenExpired.encode(),
            r#"{"type":"token_expired"}"#
        );
    }

    #[test]
    fn an_event_frame_decodes_into_its_type() {
        let text = r#"{"seq":4,"type":"message_removed","revision":2,"reasons":[],"conversation_sid":"CH1","index":7}"#;
        let HubFrame::Event(e) = HubFrame::decode(text).unwrap() else {
            panic!("an event")
        };
        assert_eq!(e.kind, EventType::MessageRemoved);
        assert_eq!(e.index, Some(7));
        assert_eq!(
            e.target(),
            Some(ObjectKey::Conversation(ConversationSid::from("CH1")))
        );
    }
}
