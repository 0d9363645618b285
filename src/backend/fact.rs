//! What the backend writes down: every request it answered, every input it refused before an
//! endpoint saw it ([`RefusedFact`]), every frame it put on a socket, every connection, and every
//! change the harness made to it ([`Control`]).
//!
//! The backend hands these [`Fact`]s to a [`Recorder`] and knows nothing more of where they go:
//! the harness's journal implements it, adding its own entries (commands, replies,
//! observations) to the same sequence.
//!
//! Must not import: the transport, the facade, the journal, the adapter protocol.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::endpoint::Endpoint;
use super::model::{At, BindingChange, BindingType, Gate, ListAction, ListOrder, Outage};
use crate::clock::VirtualInstant;
use crate::secrets::TokenFingerprint;
use crate::wire::{ConversationSid, EventType, InstanceId, ObjectKey};

/// Where the backend's facts go.
pub trait Recorder: Send + Sync + 'static {
    /// Records `fact`, attributed to `instance` when the client named itself.
    fn record(&self, instance: Option<InstanceId>, fact: Fact);
}

/// A REST request and how it was answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestFact {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Classification.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Response status.
    pub status: u16,
    /// The object revision the response carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The object attributes the response carried at that revision, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// Fingerprint of the token presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenFingerprint>,
    /// Why it was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The token the answer minted, if it minted one (the token endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Issued>,
    /// The URL carried a token (in a credential-named parameter or a JWT-shaped value): the
    /// request was refused, and the token is only its fingerprint here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_in_url: bool,
}

/// The most characters of raw input (a request line, a header, an error's text) a fact quotes.
pub const MAX_QUOTED: usize = 200;

/// `text` cut to [`MAX_QUOTED`] characters (with `…` when cut): never journal unbounded input.
pub fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Which layer refused some input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// HTTP/1.1 on the REST port, or the event channel's handshake.
    Http,
    /// WebSocket frames on an open event channel.
    WebSocket,
}

/// Why input was refused before any endpoint saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The request line or a header could not be parsed (400).
    MalformedHead,
    /// The request line is longer than the limit (414).
    UriTooLong,
    /// The head (request line and headers) is larger than the limit, or has too many headers
    /// (431).
    HeadTooLarge,
    /// The request target is not a path the service could route (400).
    BadTarget,
    /// A method served by no HTTP endpoint of the service, such as `CONNECT` (405).
    MethodNotAllowed,
    /// `Content-Length` and `Transfer-Encoding` do not say where the body ends (400, or 501 for
    /// a transfer coding other than chunked).
    BadFraming,
    /// A chunk of a chunked body is malformed (400).
    BadChunk,
    /// The body is larger than the limit (413).
    BodyTooLarge,
    /// The connection ended in the middle of a request (its head or its body).
    Truncated,
    /// The client stalled in the middle of a request for longer than the limit (408).
    Timeout,
    /// The request was well-formed but the REST layer behind the front door did not answer
    /// (502).
    Upstream,
    /// A request on the event channel's port that is not a valid WebSocket upgrade (400, 405 or
    /// 426).
    BadUpgrade,
    /// A WebSocket protocol violation: an unmasked or reserved frame, a bad close, … (close
    /// 1002).
    ProtocolViolation,
    /// A text message that is not UTF-8 (close 1007).
    InvalidUtf8,
    /// A frame or a message larger than the limit (close 1009).
    MessageTooLarge,
}

impl Refusal {
    /// The journal name (`head_too_large`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MalformedHead => "malformed_head",
            Self::UriTooLong => "uri_too_long",
            Self::HeadTooLarge => "head_too_large",
            Self::BadTarget => "bad_target",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadFraming => "bad_framing",
            Self::BadChunk => "bad_chunk",
            Self::BodyTooLarge => "body_too_large",
            Self::Truncated => "truncated",
            Self::Timeout => "timeout",
            Self::Upstream => "upstream",
            Self::BadUpgrade => "bad_upgrade",
            Self::ProtocolViolation => "protocol_violation",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MessageTooLarge => "message_too_large",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Input the backend refused before any endpoint saw it: malformed HTTP on the REST port, a
/// bad upgrade on the event channel's port, a WebSocket protocol violation. Every raw text it
/// quotes is cut to [`MAX_QUOTED`] characters (and, like every entry, redacted by the journal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedFact {
    /// Which layer refused it.
    pub layer: Layer,
    /// Why.
    pub cause: Refusal,
    /// The HTTP status answered, when an HTTP answer was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The WebSocket close code sent, when a close frame was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// The request line as received (cut), when one was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_line: Option<String>,
    /// What exactly was wrong (cut).
    pub detail: String,
}

impl RefusedFact {
    /// A refusal by `layer` for `cause`, with `detail` cut to [`MAX_QUOTED`] characters.
    pub fn new(layer: Layer, cause: Refusal, detail: &str) -> Self {
        Self {
            layer,
            cause,
            status: None,
            close_code: None,
            request_line: None,
            detail: quoted(detail),
        }
    }
}

/// A token the backend minted, by fingerprint, and the identity it was minted for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Issued {
    /// The chat identity.
    pub identity: String,
    /// Fingerprint of the token.
    pub token: TokenFingerprint,
    /// The TTL the request asked for (seconds; absent when it asked for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_asked: Option<u64>,
    /// The lifetime the token was minted with (seconds): what was asked, unless the
    /// generator's TTL was overridden (`Control::TokenTtl`).
    #[serde(default)]
    pub ttl: u64,
    /// When it expires (virtual time).
    #[serde(default)]
    pub expires_at: VirtualInstant,
}

impl RequestFact {
    /// An attempt to open the event channel (either face): journaled with status 101 when it
    /// opened, with the refusal's status and reason otherwise.
    pub fn event_channel(
        method: &str,
        path: &str,
        query: Option<String>,
        status: u16,
        error: Option<String>,
        token: Option<TokenFingerprint>,
    ) -> Self {
        Self {
            method: method.into(),
            path: quoted(path),
            query: query.map(|q| quoted(&q)),
            endpoint: Endpoint::EventChannel,
            status,
            revision: None,
            attributes: None,
            token,
            error,
            issued: None,
            token_in_url: false,
        }
    }

    /// Whether it was answered with a 2xx status.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An event frame written to a client's socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FrameFact {
    /// The event's sequence number.
    pub event_seq: u64,
    /// The event type.
    pub event: EventType,
    /// The object it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectKey>,
    /// The object's revision in the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The object's attributes at that revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// The message index, for message events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The token of a connection that did not name its client instance (so the frame can
    /// still be attributed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenFingerprint>,
    /// The socket it was written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<u64>,
}

impl FrameFact {
    /// The conversation the frame is about, if any.
    pub fn conversation(&self) -> Option<&ConversationSid> {
        self.target.as_ref().and_then(ObjectKey::conversation)
    }
}

/// An event the backend published: numbered, and queued for every connected member of its
/// audience. Recorded when it enters the event log, before any socket carries it, so a `settle`
/// sent after this entry is answered only once the client has processed the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishedFact {
    /// The event's sequence number.
    pub event_seq: u64,
    /// The event type.
    pub event: EventType,
    /// The object it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectKey>,
    /// The object's revision in the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Who receives it.
    pub audience: Vec<String>,
}

/// A change to the set of push bindings, recorded by the service while the model is locked:
/// every change of the set (a creation, a refresh, a removal, an expiry) is exactly one of
/// these, so the set at any point of the journal is the replay of these facts before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BindingFact {
    /// What happened.
    pub change: BindingChange,
    /// `BS...`
    pub sid: String,
    /// Chat identity.
    pub identity: String,
    /// The device token.
    pub address: String,
    /// Push technology.
    pub binding_type: BindingType,
}

impl fmt::Display for BindingFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.change {
            BindingChange::Created => "created",
            BindingChange::Refreshed => "refreshed",
            BindingChange::Removed => "removed",
            BindingChange::Expired => "expired (a year idle)",
        };
        write!(
            f,
            "push binding {} of {} for {} device `{}` {what}",
            self.sid, self.identity, self.binding_type, self.address
        )
    }
}

/// Which of the backend's public ports a connection came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Port {
    /// The REST API (and the token generator).
    Rest,
    /// The event channel.
    Events,
}

/// A connection the half-open network took and dropped without an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DroppedFact {
    /// The port it came to.
    pub port: Port,
    /// The request line's target, when the client sent one before the drop (query redacted
    /// like every other journaled target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Fingerprint of the token it presented, if it sent one before the drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenFingerprint>,
}

/// A change the harness made to the backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum Control {
    /// A fixture's users and conversations were added (as if they always existed).
    FixtureLoaded {
        /// Its name.
        name: String,
    },
    /// Conversations `{prefix}-0..count` were added silently.
    ConversationsSeeded {
        /// Name prefix.
        prefix: String,
        /// How many.
        count: usize,
        /// Their participants.
        participants: Vec<String>,
    },
    /// Pages of the subscribed list hold at most `max` conversations from now on.
    PageSizeCapped {
        /// The cap.
        max: u32,
    },
    /// The subscribed list is served in `order` from now on.
    ListOrdered {
        /// The order.
        order: ListOrder,
    },
    /// A gate closed.
    GateClosed {
        /// Which.
        gate: Gate,
    },
    /// A gate opened.
    GateOpened {
        /// Which.
        gate: Gate,
    },
    /// Events about an object are held from now on.
    Holding {
        /// The object.
        object: ObjectKey,
        /// Its unique name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Held events about an object were published.
    Released {
        /// The object.
        object: ObjectKey,
        /// Its unique name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// How many events.
        events: usize,
    },
    /// Another writer set an object's attributes.
    OtherWriter {
        /// The object.
        object: ObjectKey,
        /// Its unique name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// What it wrote.
        attributes: Value,
        /// The revision it produced.
        revision: u64,
    },
    /// The snapshot before the newest was delivered again, late.
    StaleRedelivered {
        /// The object.
        object: ObjectKey,
        /// Its unique name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The stale revision.
        revision: u64,
    },
    /// Someone posted a message.
    MessagePosted {
        /// The conversation.
        conversation: ConversationSid,
        /// Author identity.
        author: String,
        /// The new message's index.
        index: u64,
    },
    /// Another participant edited a message.
    MessageEdited {
        /// The conversation.
        conversation: ConversationSid,
        /// The message index.
        index: u64,
    },
    /// Another participant removed a message.
    MessageRemoved {
        /// The conversation.
        conversation: ConversationSid,
        /// The message index.
        index: u64,
    },
    /// The network failed the way `outage` says.
    Outage {
        /// How.
        outage: Outage,
    },
    /// The network works again: both ports listen on their old numbers.
    Restored,
    /// The token generator mints tokens of this lifetime whatever it is asked for (`None`:
    /// what it is asked for again).
    TokenTtl {
        /// Seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<u64>,
    },
    /// The harness registered a push binding (scenario setup), as the client's registration
    /// write would.
    BindingRegistered {
        /// Chat identity.
        identity: String,
        /// The device token.
        address: String,
        /// Push technology.
        binding_type: BindingType,
    },
    /// A list change was scheduled for a point of the page walk.
    ListChangeScheduled {
        /// The point (serialized as `point`: an entry's `at` is its time).
        #[serde(rename = "point")]
        at: At,
        /// The change.
        change: ListAction,
    },
    /// A list change was made.
    ListChanged {
        /// The point it was scheduled for, if any (serialized as `point`).
        #[serde(rename = "point", default, skip_serializing_if = "Option::is_none")]
        at: Option<At>,
        /// Whether its point was never reached and it was made once the client settled.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
        /// The change.
        change: ListAction,
        /// The conversation it concerned, or why it could not be made.
        outcome: Result<ConversationSid, String>,
    },
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = |object: &ObjectKey, name: &Option<String>| match name {
            Some(n) => format!("\"{n}\" ({object})"),
            None => object.to_string(),
        };
        match self {
            Self::FixtureLoaded { name } => write!(f, "loaded fixture `{name}`"),
            Self::ConversationsSeeded {
                prefix,
                count,
                participants,
            } => write!(
                f,
                "seeded {count} conversations `{prefix}-*` for {}",
                participants.join(", ")
            ),
            Self::PageSizeCapped { max } => {
                write!(f, "the subscribed list serves at most {max} per page")
            }
            Self::ListOrdered { order } => write!(f, "the subscribed list is ordered by {order}"),
            Self::GateClosed { gate } => write!(f, "gate closed on {gate}"),
            Self::GateOpened { gate } => write!(f, "gate opened on {gate}"),
            Self::Holding { object, name } => {
                write!(f, "holding events about {}", named(object, name))
            }
            Self::Released {
                object,
                name,
                events,
            } => write!(
                f,
                "released {events} held event(s) about {}",
                named(object, name)
            ),
            Self::OtherWriter {
                object,
                name,
                attributes,
                revision,
            } => write!(
                f,
                "another writer sets the attributes of {} to {attributes} (revision {revision})",
                named(object, name)
            ),
            Self::StaleRedelivered {
                object,
                name,
                revision,
            } => write!(
                f,
                "re-delivered the stale snapshot (revision {revision}) of {}",
                named(object, name)
            ),
            Self::MessagePosted {
                conversation,
                author,
                index,
            } => write!(f, "{author} posts message {index} to {conversation}"),
            Self::MessageEdited {
                conversation,
                index,
            } => write!(
                f,
                "another participant edits message {index} of {conversation}"
            ),
            Self::MessageRemoved {
                conversation,
                index,
            } => write!(
                f,
                "another participant removes message {index} of {conversation}"
            ),
            Self::Outage { outage } => write!(f, "network outage: {outage}"),
            Self::Restored => f.write_str("network restored"),
            Self::TokenTtl { secs: Some(s) } => {
                write!(f, "the token generator mints {s}-second tokens")
            }
            Self::TokenTtl { secs: None } => {
                f.write_str("the token generator mints the TTL it is asked for")
            }
            Self::BindingRegistered {
                identity,
                address,
                binding_type,
            } => write!(
                f,
                "{identity} registers {binding_type} device `{address}` for push"
            ),
            Self::ListChangeScheduled { at, change } => write!(f, "scheduled {at}: {change}"),
            Self::ListChanged {
                at,
                late,
                change,
                outcome,
            } => {
                match (at, late) {
                    (Some(at), true) => {
                        write!(f, "{at} (never reached, made once the client settled): ")?
                    }
                    (Some(at), false) => write!(f, "{at}: ")?,
                    (None, _) => {}
                }
                match outcome {
                    Ok(sid) => write!(f, "{change} ({sid})"),
                    Err(e) => write!(f, "could not {change}: {e}"),
                }
            }
        }
    }
}

/// One thing the backend saw or did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// A REST request (or the event channel's handshake) and its answer.
    Request(RequestFact),
    /// Input refused before any endpoint saw it.
    Refused(RefusedFact),
    /// An event channel was opened by a client.
    Connected {
        /// Which socket (numbered per backend, from 1).
        #[serde(default)]
        socket: u64,
        /// The replay point the client asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// Fingerprint of the token it presented.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<TokenFingerprint>,
    },
    /// An event channel closed (by either side, or cut by an outage).
    Disconnected {
        /// Which socket.
        #[serde(default)]
        socket: u64,
    },
    /// A connection was accepted and dropped unanswered: the network was half-open.
    Dropped(DroppedFact),
    /// An event entered the event log.
    Published(PublishedFact),
    /// An event frame was written to a client's socket.
    Frame(FrameFact),
    /// The set of push bindings changed.
    Binding(BindingFact),
    /// The harness changed the backend.
    Control(Control),
    /// The event channel's token lifecycle on one socket: a warning or an expiry the backend
    /// sent, or a token the client handed over on the open channel.
    Token(TokenFact),
}

/// What happened to the token of an open event channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenNotice {
    /// `token_about_to_expire` was sent ([`crate::backend::EXPIRY_WARNING`] before expiry).
    AboutToExpire,
    /// `token_expired` was sent and the socket closed with code 4410.
    Expired,
    /// The client handed over a new token (`update_token`) and the channel took it.
    Updated,
    /// The client handed over a token the channel refused; the old one still governs.
    Rejected,
}

/// One token notice on one socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenFact {
    /// Which socket.
    pub socket: u64,
    /// What happened.
    pub notice: TokenNotice,
    /// Fingerprint of the token concerned (the new one for `updated` and `rejected`).
    pub token: TokenFingerprint,
    /// When that token expires (virtual time).
    pub expires_at: VirtualInstant,
    /// The Twilio error code of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}
