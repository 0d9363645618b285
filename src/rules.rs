//! The rule catalog: every lifecycle rule the kit knows, as data.
//!
//! This list is the single source of truth that the Gherkin tags (`@SYNC-1`), the checks, the
//! reference client's [`Fault`](crate::Fault)s and the report rows all refer to. Rule texts are our
//! own paraphrase of the vendor's best-practice page; `source` names the section they come from.
//! The CLI prints it (`convo-tck rules`), the runner turns it into matrix rows.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// How strongly a rule binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A failure fails the run (exit code 1).
    Must,
    /// A failure is reported; it does not fail the run.
    Should,
    /// Listed for completeness, never judged (the rule says why).
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
            Self::Info => "INFO",
        })
    }
}

/// Which client profile a rule is required of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleProfile {
    /// Every client stack.
    All,
    /// The JavaScript SDK's behaviour (and stacks that claim it).
    Js,
    /// The Android/iOS SDKs' behaviour.
    Mobile,
}

impl RuleProfile {
    /// Whether an adapter of `profile` is required to follow a rule of this profile.
    pub fn requires(self, profile: crate::Profile) -> bool {
        match self {
            Self::All => true,
            Self::Js => profile == crate::Profile::Js,
            Self::Mobile => profile == crate::Profile::Mobile,
        }
    }
}

impl fmt::Display for RuleProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::All => "all",
            Self::Js => "js",
            Self::Mobile => "mobile",
        })
    }
}

/// A rule identifier such as `SYNC-1`; only ids of the catalog can be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(&'static str);

impl RuleId {
    /// The id as written in tags and reports.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The catalog entry of this id.
    pub fn rule(self) -> &'static Rule {
        CATALOG
            .iter()
            .find(|r| r.id == self)
            .expect("a RuleId is only built from the catalog")
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// A rule id that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{given}`; known rules: {}", known_ids())]
pub struct UnknownRule {
    /// What was asked for.
    pub given: String,
}

fn known_ids() -> String {
    CATALOG
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().trim_start_matches('@');
        CATALOG
            .iter()
            .find(|r| r.id.0.eq_ignore_ascii_case(wanted))
            .map(|r| r.id)
            .ok_or_else(|| UnknownRule {
                given: s.to_owned(),
            })
    }
}

/// One rule of the catalog.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Identifier, e.g. `UPD-1`.
    pub id: RuleId,
    /// MUST, SHOULD or INFO.
    pub level: Level,
    /// Which profile must follow it.
    pub profile: RuleProfile,
    /// One line, our own words.
    pub summary: &'static str,
    /// Section of the source document this rule paraphrases.
    pub source: &'static str,
    /// How the scenarios provoke it.
    pub provoke: &'static str,
    /// What evidence makes it FAIL; `None` while no check is implemented (the rule is UNTESTED).
    pub check: Option<&'static str>,
    /// For INFO rules: why the kit does not judge it.
    pub not_judged: Option<&'static str>,
    /// What to look at in the client stack when the rule fails.
    pub hint: &'static str,
}

impl Rule {
    /// Whether the kit has a check for this rule yet.
    pub fn is_implemented(&self) -> bool {
        self.check.is_some()
    }

    /// Whether the rule is judged at all (INFO rules are not).
    pub fn is_judged(&self) -> bool {
        self.level != Level::Info
    }
}

/// Constants for the ids the code refers to by name.
pub mod ids {
    use super::RuleId;

    macro_rules! ids {
        ($($name:ident = $id:literal),* $(,)?) => {$(
            #[doc = concat!("Rule `", $id, "`.")]
            pub const $name: RuleId = RuleId($id);
        )*};
    }

    ids! {
        LIFE_1 = "LIFE-1",
        LIFE_2 = "LIFE-2",
        LIFE_3 = "LIFE-3",
        LIFE_4 = "LIFE-4",
        LIFE_5 = "LIFE-5",
        PUSH_1 = "PUSH-1",
        PUSH_2 = "PUSH-2",
        PUSH_3 = "PUSH-3",
        PUSH_4 = "PUSH-4",
        PUSH_5 = "PUSH-5",
        TOKEN_1 = "TOKEN-1",
        TOKEN_2 = "TOKEN-2",
        TOKEN_3 = "TOKEN-3",
        TOKEN_4 = "TOKEN-4",
        TOKEN_5 = "TOKEN-5",
        TOKEN_6 = "TOKEN-6",
        LIST_1 = "LIST-1",
        LIST_2 = "LIST-2",
        LIST_3 = "LIST-3",
        LIST_4 = "LIST-4",
        MSG_1 = "MSG-1",
        MSG_2 = "MSG-2",
        COUNT_1 = "COUNT-1",
        COUNT_2 = "COUNT-2",
        COUNT_3 = "COUNT-3",
        SYNC_1 = "SYNC-1",
        SYNC_2 = "SYNC-2",
        SYNC_3 = "SYNC-3",
        UPD_1 = "UPD-1",
        UPD_2 = "UPD-2",
        UPD_3 = "UPD-3",
        REL_1 = "REL-1",
    }
}

use Level::{Info, Must, Should};
use RuleProfile::{All, Js, Mobile};
use ids::*;

const LIFECYCLE: &str = "The SDK lifecycle";
const PUSH: &str = "Push registration and lifecycle";
const TOKEN: &str = "The JWT / JWE token lifecycle";
const JS: &str = "JavaScript";
const MOBILE: &str = "Mobile SDKs specifics";

macro_rules! rule {
    ($id:expr, $profile:expr, $level:expr, $source:expr, $summary:expr, $provoke:expr, $hint:expr) => {
        Rule {
            id: $id,
            level: $level,
            profile: $profile,
            summary: $summary,
            source: $source,
            provoke: $provoke,
            check: None,
            not_judged: None,
            hint: $hint,
        }
    };
    ($id:expr, $profile:expr, $level:expr, $source:expr, $summary:expr, $provoke:expr, $hint:expr, check = $check:expr) => {
        Rule {
            check: Some($check),
            ..rule!($id, $profile, $level, $source, $summary, $provoke, $hint)
        }
    };
}

/// Every rule, in report order.
pub static CATALOG: &[Rule] = &[
    rule!(
        LIFE_1,
        All,
        Must,
        LIFECYCLE,
        "After a network outage the same client instance reconnects on its own.",
        "drop both listeners, restore them, advance time",
        "check that the connection loss does not trigger a shutdown/create cycle"
    ),
    rule!(
        LIFE_2,
        All,
        Must,
        LIFECYCLE,
        "Going to the background and back to the foreground resumes the same instance.",
        "background, let time pass, foreground",
        "check the app's background/foreground handlers for shutdown or re-creation"
    ),
    rule!(
        LIFE_3,
        All,
        Must,
        LIFECYCLE,
        "A client is shut down only for a logout or a switch of login.",
        "every scenario",
        "look for shutdown calls outside the logout path"
    ),
    rule!(
        LIFE_4,
        All,
        Must,
        LIFECYCLE,
        "After a shutdown a new instance is created; the old one is never used again.",
        "logout, login, use the old handles",
        "look for a cached client object that outlives logout"
    ),
    rule!(
        LIFE_5,
        All,
        Should,
        LIFECYCLE,
        "One live event connection per instance, with bounded reconnect backoff.",
        "flap the network, 20 background cycles",
        "check the reconnect loop's backoff and that old sockets are closed"
    ),
    rule!(
        PUSH_1,
        All,
        Must,
        PUSH,
        "A push registration exists after every application start.",
        "start, kill, start",
        "register for push on every start, not only on the first"
    ),
    rule!(
        PUSH_2,
        All,
        Should,
        PUSH,
        "Re-register only when the device token changed (compare with the persisted one).",
        "restart with the same device token",
        "persist the OS device token and compare it on start"
    ),
    rule!(
        PUSH_3,
        All,
        Must,
        PUSH,
        "When the OS reports a new device token, register again with it.",
        "device_token_changed",
        "subscribe to the OS token-change event"
    ),
    rule!(
        PUSH_4,
        All,
        Must,
        PUSH,
        "Relaunching with another identity removes the previous identity's registration.",
        "start as A, kill, start as B",
        "unregister the old identity before registering the new one"
    ),
    Rule {
        not_judged: Some(
            "the one-year idle expiry and the daily deregistration advice are guidance, not a contract a client can be checked against",
        ),
        ..rule!(
            PUSH_5,
            All,
            Info,
            PUSH,
            "Registrations expire after a year idle; deregistering daily is advised.",
            "modelled by the backend",
            "nothing to check"
        )
    },
    rule!(
        TOKEN_1,
        All,
        Must,
        TOKEN,
        "A token with a TTL under three minutes is refused: the client reports it and does not loop.",
        "hand the client a two-minute token",
        "surface token errors instead of retrying them"
    ),
    rule!(
        TOKEN_2,
        All,
        Should,
        TOKEN,
        "The app asks for tokens lasting hours, at most a day.",
        "the token endpoint sees the requested TTL",
        "request a TTL between 1 h and 24 h"
    ),
    rule!(
        TOKEN_3,
        All,
        Must,
        TOKEN,
        "On about-to-expire the app fetches a new token and hands it to the running client.",
        "advance past expiry minus three minutes",
        "implement the token-about-to-expire handler with updateToken"
    ),
    rule!(
        TOKEN_4,
        All,
        Must,
        TOKEN,
        "On expiry (e.g. after sleeping) the app refreshes the token and the client resumes.",
        "advance past expiry while in the background",
        "implement the token-expired handler"
    ),
    rule!(
        TOKEN_5,
        All,
        Should,
        TOKEN,
        "A cached token that is still valid is used at start, without waiting for the generator.",
        "kill, start",
        "keep the last token in temporary storage and use it first"
    ),
    rule!(
        TOKEN_6,
        All,
        Should,
        TOKEN,
        "The token is confidential: never in a URL, never in logs.",
        "every scenario",
        "send the token in a header and scrub it from logs"
    ),
    rule!(
        LIST_1,
        Js,
        Must,
        JS,
        "Client creation completes before the subscribed list is fully fetched.",
        "gate the last page of the list",
        "do not await the whole list inside client creation",
        check = "the reply to `start` arrives while the final page of the subscribed list has not been served"
    ),
    rule!(
        LIST_2,
        Js,
        Must,
        JS,
        "The listener for added conversations is attached before the list is requested.",
        "add a conversation during the initial fetch",
        "subscribe to conversationAdded before calling getSubscribedConversations",
        check = "every conversation announced by a `conversation_added` event during the fetch, and still the user's, is in the client's final list"
    ),
    rule!(
        LIST_3,
        Js,
        Must,
        JS,
        "Each conversation appears exactly once across events and pages.",
        "added events before, between and after pages; a page shift",
        "de-duplicate by conversation sid",
        check = "no sid twice in the client's list, and no second added report for a sid without its removal in between"
    ),
    rule!(
        LIST_4,
        Js,
        Must,
        JS,
        "The merged list equals the backend's: nothing lost to a page shift or an early update, nothing removed brought back.",
        "bump, insert and remove between pages",
        "merge pages and events by sid and remember removals made during the fetch",
        check = "the client's final list, as a set, equals the backend's subscribed conversations"
    ),
    rule!(
        MSG_1,
        Js,
        Must,
        JS,
        "Loading a conversation fetches none of its messages.",
        "open a conversation and settle",
        "fetch messages only when the app asks",
        check = "no message list request reaches the backend before the app's first `fetch_messages`; new messages are still reported"
    ),
    rule!(
        MSG_2,
        Js,
        Must,
        JS,
        "Message updates and removals are reported for fetched messages, and only for them.",
        "edit fetched and unfetched messages",
        "track which messages were fetched",
        check = "every edit or removal of a fetched message is reported, and none of a message the app never fetched"
    ),
    rule!(
        COUNT_1,
        Js,
        Must,
        JS,
        "Count reads are cached: at most one request per cache lifetime.",
        "read a count 50 times inside the lifetime",
        "cache participant/message/unread counts"
    ),
    rule!(
        COUNT_2,
        Js,
        Must,
        JS,
        "After the cache lifetime, count reads converge to the backend's value.",
        "change the count, advance past the lifetime, read",
        "expire the count cache"
    ),
    rule!(
        COUNT_3,
        Js,
        Should,
        JS,
        "The unread count is unknown (null) until a read horizon exists.",
        "a fresh participant reads its unread count",
        "return null rather than 0 before the first read horizon"
    ),
    rule!(
        SYNC_1,
        Mobile,
        Must,
        MOBILE,
        "Client operations are issued only after the client finished synchronizing.",
        "gate the last page of the subscribed list, then issue a client operation",
        "queue client operations until the client sync status is COMPLETED, or fail them with not_synchronized",
        check = "the journal shows no client-operation request before the final page of the subscribed list was served to that instance"
    ),
    rule!(
        SYNC_2,
        Mobile,
        Must,
        MOBILE,
        "Operations on a conversation are issued only after that conversation synchronized.",
        "gate the conversation's participants, then operate on it",
        "wait for the conversation's synchronization status ALL before operating on it",
        check = "the journal shows no request operating on a conversation before its metadata and participants were served to that instance"
    ),
    rule!(
        SYNC_3,
        Mobile,
        Should,
        MOBILE,
        "Synchronization status only moves forward.",
        "another writer's changes and refreshes after sync completed",
        "never re-emit an earlier synchronization status for the same object",
        check = "the observed client and conversation sync statuses never step back"
    ),
    rule!(
        UPD_1,
        Mobile,
        Must,
        MOBILE,
        "An update completes only once its Updated event has arrived.",
        "hold the Updated event of the command, then release it",
        "complete the operation in the Updated handler, not in the command's success callback",
        check = "no reply to the update before the backend delivered an Updated event at or past the revision the command produced"
    ),
    rule!(
        UPD_2,
        Mobile,
        Must,
        MOBILE,
        "The value the backend reports wins over the value the client wrote.",
        "another writer changes the object before the client's Updated event is delivered",
        "read values from the Updated event, not from the request you sent",
        check = "the reply and later reads equal the backend's value, not the local write"
    ),
    rule!(
        UPD_3,
        All,
        Should,
        MOBILE,
        "An older snapshot never overwrites a newer one.",
        "deliver a stale Updated event late",
        "compare revisions before applying an event",
        check = "after a stale event the client still reports the newest value"
    ),
    rule!(
        REL_1,
        Mobile,
        Must,
        MOBILE,
        "Every object handle is released before the client itself is released.",
        "log out while handles are held",
        "release conversations, participants and messages before shutdown"
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_32_rules_of_the_design_once_each() {
        assert_eq!(CATALOG.len(), 32);
        let mut ids: Vec<_> = CATALOG.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 32);
    }

    #[test]
    fn ids_parse_case_insensitively_and_with_a_tag_sign() {
        assert_eq!("@upd-1".parse::<RuleId>(), Ok(UPD_1));
        let err = "UPD-9".parse::<RuleId>().unwrap_err();
        assert!(err.to_string().contains("UPD-1, UPD-2, UPD-3"), "{err}");
    }

    #[test]
    fn only_info_rules_say_why_they_are_not_judged() {
        for r in CATALOG {
            assert_eq!(r.level == Level::Info, r.not_judged.is_some(), "{}", r.id);
        }
    }
}
