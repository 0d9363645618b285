//! Planted bugs: each [`Fault`] makes the reference client break specific rules.
//!
//! The rule catalog says which rules each fault must fail; the self-check runs the suite with
//! each fault switched on and demands exactly that. A rule that no fault can fail is a check
//! that cannot fail. Names are kebab-case and stable, since users pass them as `--fault NAME`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One deliberate deviation of the reference client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Fails SYNC-1: client operations go to the backend before the client finished
    /// synchronizing.
    OpsBeforeSync,
    /// Fails SYNC-2: conversation operations go to the backend before that conversation
    /// synchronized.
    ConversationOpsBeforeSync,
    /// Fails SYNC-3: a refresh after sync re-announces an earlier sync status (of the
    /// conversation, and of the client when a conversation arrives after sync completed).
    SyncStatusRegresses,
    /// Fails UPD-1: `update_attributes` completes when the REST call is acknowledged, not on the
    /// Updated event.
    UpdateCompletesOnAck,
    /// Fails UPD-2: the client reports the value it wrote instead of the one the backend
    /// announced.
    LocalWriteWins,
    /// Fails UPD-3: events are applied without comparing revisions, so a late old snapshot
    /// overwrites a newer one.
    StaleEventOverwrites,
    /// Fails LIST-1: `start` answers only once the whole subscribed list is fetched.
    AwaitFullList,
    /// Fails LIST-2: conversation events are ignored until the list fetch is complete (the
    /// listener is attached late).
    ListenAfterFetch,
    /// Fails LIST-3: a conversation learned twice (a page and an event) is listed twice.
    NoDedupe,
    /// Fails LIST-4: an update about a conversation the client has not seen yet is dropped.
    IgnoreUnknownUpdates,
    /// Fails LIST-4: a later page brings back a conversation an event removed.
    NoTombstones,
    /// Fails LIST-4: only the first page of the subscribed list is fetched.
    FirstPageOnly,
    /// Fails LIST-4: a conversation removed once never comes back, not even when it is added
    /// again.
    TombstonesForever,
    /// Fails MSG-1: messages are fetched as soon as a conversation is loaded.
    AutoloadMessages,
    /// Fails MSG-1: new messages are not reported (no message-added observation).
    SilentNewMessages,
    /// Fails MSG-2: message updates and removals are reported for messages the app never
    /// fetched.
    EventsForUnfetched,
    /// Fails MSG-2: message updates and removals are never reported, even for fetched messages.
    DropFetchedUpdates,
    /// Fails LIFE-1: a lost connection shuts the instance down and creates a new one.
    RecreateOnReconnect,
    /// Fails LIFE-1: a reconnect starts from the live end of the event log, so events
    /// published while the client was away are never delivered.
    LoseOutageEvents,
    /// Fails LIFE-1: no heartbeat, so a socket that went silent is never noticed or replaced.
    NoHeartbeat,
    /// Fails LIFE-2: going to the background shuts the client down; the foreground creates a
    /// new one.
    ShutdownOnBackground,
    /// Fails LIFE-3: a lost connection shuts the client down for good.
    ShutdownOnError,
    /// Fails LIFE-4: after a logout the next client comes back as the old instance, and the old
    /// handles still work.
    ReuseAfterShutdown,
    /// Fails LIFE-5: reconnect attempts repeat every 100 ms with no backoff.
    NoBackoff,
    /// Fails LIFE-5: the socket stays open in the background and the foreground opens another.
    SecondSocket,
    /// Fails REL-1: on logout the client shuts down first and releases its handles after.
    ReleaseAfterShutdown,
    /// Fails REL-1: on logout the handles are never released.
    LeakHandles,
    /// Fails TOKEN-1: a token the generator issued living under 3 minutes is fetched again every 10 s instead of being reported as a typed error.
    RetryShortToken,
    /// Fails TOKEN-2: the app asks its generator for 10-minute tokens (under an hour).
    TtlTooShort,
    /// Fails TOKEN-2: the app asks its generator for 48-hour tokens (over 24 hours; the generator caps them at 24 h).
    TtlTooLong,
    /// Fails TOKEN-3: the about-to-expire warning is reported, but nothing is refreshed until the token expired and the socket closed.
    IgnoreAboutToExpire,
    /// Fails TOKEN-4: an expired token (noticed after a sleep, or announced by the channel) shuts the instance down and creates a new one.
    RecreateOnExpired,
    /// Fails TOKEN-5: every start waits for the token generator, even with a valid token in storage.
    WaitForGenerator,
    /// Fails TOKEN-6: after start the client prefetches its user with `?token=` in the URL (refused, and ignored).
    TokenInUrl,
    /// Fails TOKEN-6: every token fetched is written to the log.
    LogToken,
    /// Fails PUSH-1: a start never registers the device for push; only a rotation of the device token does.
    NoRegisterOnStart,
    /// Fails PUSH-2: every start writes the registration again, even when the stored device token is unchanged.
    RegisterEveryStart,
    /// Fails PUSH-3: `device_token_changed` is ignored: the stale binding stays and the new token is never registered.
    IgnoreTokenRotation,
    /// Fails PUSH-4: relaunched as another identity, the client registers the new one and leaves the previous identity's binding for the device.
    KeepOldIdentityBinding,
    /// Fails COUNT-1: every count read goes to the backend, with no cache.
    UncachedCounts,
    /// Fails COUNT-2: a count read once is served from the cache for good.
    CacheForever,
    /// Fails COUNT-3: an unread count the backend does not know (no read horizon) is reported as 0.
    ZeroUnread,
}

impl Fault {
    /// Every fault, in a stable order.
    pub const ALL: &'static [Fault] = &[
        Fault::OpsBeforeSync,
        Fault::ConversationOpsBeforeSync,
        Fault::SyncStatusRegresses,
        Fault::UpdateCompletesOnAck,
        Fault::LocalWriteWins,
        Fault::StaleEventOverwrites,
        Fault::AwaitFullList,
        Fault::ListenAfterFetch,
        Fault::NoDedupe,
        Fault::IgnoreUnknownUpdates,
        Fault::NoTombstones,
        Fault::FirstPageOnly,
        Fault::TombstonesForever,
        Fault::AutoloadMessages,
        Fault::SilentNewMessages,
        Fault::EventsForUnfetched,
        Fault::DropFetchedUpdates,
        Fault::RecreateOnReconnect,
        Fault::LoseOutageEvents,
        Fault::NoHeartbeat,
        Fault::ShutdownOnBackground,
        Fault::ShutdownOnError,
        Fault::ReuseAfterShutdown,
        Fault::NoBackoff,
        Fault::SecondSocket,
        Fault::ReleaseAfterShutdown,
        Fault::LeakHandles,
        Fault::RetryShortToken,
        Fault::TtlTooShort,
        Fault::TtlTooLong,
        Fault::IgnoreAboutToExpire,
        Fault::RecreateOnExpired,
        Fault::WaitForGenerator,
        Fault::TokenInUrl,
        Fault::LogToken,
        Fault::NoRegisterOnStart,
        Fault::RegisterEveryStart,
        Fault::IgnoreTokenRotation,
        Fault::KeepOldIdentityBinding,
        Fault::UncachedCounts,
        Fault::CacheForever,
        Fault::ZeroUnread,
    ];

    /// The `--fault` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpsBeforeSync => "ops-before-sync",
            Self::ConversationOpsBeforeSync => "conversation-ops-before-sync",
            Self::SyncStatusRegresses => "sync-status-regresses",
            Self::UpdateCompletesOnAck => "update-completes-on-ack",
            Self::LocalWriteWins => "local-write-wins",
            Self::StaleEventOverwrites => "stale-event-overwrites",
            Self::AwaitFullList => "await-full-list",
            Self::ListenAfterFetch => "listen-after-fetch",
            Self::NoDedupe => "no-dedupe",
            Self::IgnoreUnknownUpdates => "ignore-unknown-updates",
            Self::NoTombstones => "no-tombstones",
            Self::FirstPageOnly => "first-page-only",
            Self::TombstonesForever => "tombstones-forever",
            Self::AutoloadMessages => "autoload-messages",
            Self::SilentNewMessages => "silent-new-messages",
            Self::EventsForUnfetched => "events-for-unfetched",
            Self::DropFetchedUpdates => "drop-fetched-updates",
            Self::RecreateOnReconnect => "recreate-on-reconnect",
            Self::LoseOutageEvents => "lose-outage-events",
            Self::NoHeartbeat => "no-heartbeat",
            Self::ShutdownOnBackground => "shutdown-on-background",
            Self::ShutdownOnError => "shutdown-on-error",
            Self::ReuseAfterShutdown => "reuse-after-shutdown",
            Self::NoBackoff => "no-backoff",
            Self::SecondSocket => "second-socket",
            Self::ReleaseAfterShutdown => "release-after-shutdown",
            Self::LeakHandles => "leak-handles",
            Self::RetryShortToken => "retry-short-token",
            Self::TtlTooShort => "ttl-too-short",
            Self::TtlTooLong => "ttl-too-long",
            Self::IgnoreAboutToExpire => "ignore-about-to-expire",
            Self::RecreateOnExpired => "recreate-on-expired",
            Self::WaitForGenerator => "wait-for-generator",
            Self::TokenInUrl => "token-in-url",
            Self::LogToken => "log-token",
            Self::NoRegisterOnStart => "no-register-on-start",
            Self::RegisterEveryStart => "register-every-start",
            Self::IgnoreTokenRotation => "ignore-token-rotation",
            Self::KeepOldIdentityBinding => "keep-old-identity-binding",
            Self::UncachedCounts => "uncached-counts",
            Self::CacheForever => "cache-forever",
            Self::ZeroUnread => "zero-unread",
        }
    }

    /// What the fault does, for listings.
    pub fn description(self) -> &'static str {
        match self {
            Self::OpsBeforeSync => "client operations are sent before the client sync completed",
            Self::ConversationOpsBeforeSync => {
                "conversation operations are sent before that conversation synced"
            }
            Self::SyncStatusRegresses => {
                "a refresh after sync re-announces the conversation as only metadata-synced"
            }
            Self::UpdateCompletesOnAck => {
                "update_attributes answers on the REST acknowledgement, before the Updated event"
            }
            Self::LocalWriteWins => "the client shows the value it wrote, not the backend's",
            Self::StaleEventOverwrites => "events are applied without comparing revisions",
            Self::AwaitFullList => "start answers only once the whole subscribed list is fetched",
            Self::ListenAfterFetch => {
                "conversation events are ignored until the list fetch completes"
            }
            Self::NoDedupe => "a conversation learned from a page and an event is listed twice",
            Self::IgnoreUnknownUpdates => "an update about a conversation not yet seen is dropped",
            Self::NoTombstones => "a later page brings back a conversation an event removed",
            Self::FirstPageOnly => "only the first page of the subscribed list is fetched",
            Self::TombstonesForever => {
                "a removed conversation is never listed again, even when added back"
            }
            Self::AutoloadMessages => "messages are fetched as soon as a conversation is loaded",
            Self::SilentNewMessages => "new messages are not reported as added",
            Self::EventsForUnfetched => {
                "message updates/removals are reported for unfetched messages"
            }
            Self::DropFetchedUpdates => "message updates/removals are never reported",
            Self::RecreateOnReconnect => {
                "a lost connection shuts the client down and creates a new instance"
            }
            Self::LoseOutageEvents => {
                "a reconnect does not resume after the last event, losing the outage's events"
            }
            Self::NoHeartbeat => "no heartbeat: a silent socket is never noticed",
            Self::ShutdownOnBackground => {
                "background shuts the client down; foreground creates a new one"
            }
            Self::ShutdownOnError => "a lost connection shuts the client down for good",
            Self::ReuseAfterShutdown => {
                "after logout the old instance id and its handles are used again"
            }
            Self::NoBackoff => "reconnect attempts repeat every 100 ms without backoff",
            Self::SecondSocket => {
                "the socket stays open in the background; the foreground opens a second one"
            }
            Self::ReleaseAfterShutdown => "handles are released after the client shut down",
            Self::LeakHandles => "handles are never released on logout",
            Self::RetryShortToken => {
                "a token living under 3 minutes is fetched again and again (every 10 s), never reported as an error"
            }
            Self::TtlTooShort => "the app asks its token generator for 10-minute tokens",
            Self::TtlTooLong => "the app asks its token generator for 48-hour tokens",
            Self::IgnoreAboutToExpire => {
                "token_about_to_expire is reported but no new token is fetched until the old one expired"
            }
            Self::RecreateOnExpired => {
                "an expired token shuts the client down and creates a new instance"
            }
            Self::WaitForGenerator => {
                "every start fetches a token first, even with a valid one stored"
            }
            Self::TokenInUrl => {
                "after start the client prefetches its user with the token in the URL"
            }
            Self::LogToken => "every token fetched is written to the adapter's log",
            Self::NoRegisterOnStart => {
                "starting never registers the device for push (only a rotation does)"
            }
            Self::RegisterEveryStart => {
                "every start registers again, even with the same device token stored"
            }
            Self::IgnoreTokenRotation => "a new device token from the OS is ignored",
            Self::KeepOldIdentityBinding => {
                "relaunching as another identity leaves the previous identity's binding"
            }
            Self::UncachedCounts => "every count read goes to the backend",
            Self::CacheForever => "a count, once read, is cached for good",
            Self::ZeroUnread => "an unknown unread count (no read horizon) is reported as 0",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A fault name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{given}`; `convo-tck faults` lists the {} valid ones{}", Fault::ALL.len(), suggestion(given))]
pub struct UnknownFault {
    /// What was asked for.
    pub given: String,
}

/// ", did you mean `x`?" for the valid name sharing the longest prefix with `given` (at least 3
/// characters), else nothing.
fn suggestion(given: &str) -> String {
    let given = given.trim();
    Fault::ALL
        .iter()
        .map(|f| {
            let shared = f
                .name()
                .chars()
                .zip(given.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (shared, f.name())
        })
        .filter(|(shared, _)| *shared >= 3)
        .max_by_key(|(shared, _)| *shared)
        .map(|(_, name)| format!(", did you mean `{name}`?"))
        .unwrap_or_default()
}

impl FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| UnknownFault {
                given: s.to_owned(),
            })
    }
}

/// The faults switched on for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(BTreeSet<Fault>);

impl FaultSet {
    /// No faults: the compliant reference client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Every fault that is on.
    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl From<Fault> for FaultSet {
    fn from(f: Fault) -> Self {
        Self(BTreeSet::from([f]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(*f));
        }
        let err = "nope".parse::<Fault>().unwrap_err().to_string();
        assert!(err.contains("`convo-tck faults` lists the"), "{err}");
        let err = "update-completes".parse::<Fault>().unwrap_err().to_string();
        assert!(
            err.contains("did you mean `update-completes-on-ack`?"),
            "{err}"
        );
    }
}
