//! The catalog's entries, in report order: our own paraphrase of each rule of the vendor's
//! best-practice page, the section it comes from, how the scenarios provoke it, the checks that
//! judge it and the planted bugs that prove those checks can fail.

use super::Level::{Info, Must, Should};
use super::RuleProfile::{All, Js, Mobile};
use super::{Level, Rule, RuleId, RuleProfile, rule};
use crate::checks::{counts, lifecycle, lists, messages, push, sync, tokens, updates};
use crate::reference::Fault;

const LIFECYCLE: &str = "The SDK lifecycle";
const PUSH: &str = "Push registration and lifecycle";
const TOKEN: &str = "The JWT / JWE token lifecycle";
const JS: &str = "JavaScript";
const MOBILE: &str = "Mobile SDKs specifics";

/// An entry without checks or faults yet: reported UNTESTED.
const fn untested(
    id: RuleId,
    (profile, level, source): (RuleProfile, Level, &'static str),
    summary: &'static str,
    provoke: &'static str,
    hint: &'static str,
) -> Rule {
    Rule {
        id,
        level,
        profile,
        summary,
        source,
        provoke,
        hint,
        sees: "",
        checks: &[],
        faults: &[],
        collateral: &[],
        not_judged: None,
    }
}

/// Every rule, in report order.
pub static CATALOG: &[Rule] = &[
    Rule {
        sees: "Sees the instances the client reports (created, shut down) and the sockets the backend saw each open and close, around every outage the harness made; the events published for the client while it was cut off against the frames written to it afterwards.",
        checks: &[
            &lifecycle::SAME_INSTANCE_AFTER_OUTAGE,
            &lifecycle::OUTAGE_EVENTS_ONCE,
        ],
        faults: &[
            Fault::RecreateOnReconnect,
            Fault::LoseOutageEvents,
            Fault::NoHeartbeat,
        ],
        // A client that dies of a lost connection does not come back either.
        collateral: &[Fault::ShutdownOnError],
        ..untested(
            rule!("LIFE-1"),
            (All, Must, LIFECYCLE),
            "After a network outage the same client instance reconnects on its own.",
            "drop both listeners (refused, half-open or silent), publish events meanwhile, restore them, advance time",
            "check that the connection loss does not trigger a shutdown/create cycle, and that the reconnect resumes after the last event received",
        )
    },
    Rule {
        sees: "Sees the instances around every background/foreground pair and the sockets the backend saw; the events published while in the background against the frames written after the foreground.",
        checks: &[
            &lifecycle::SAME_INSTANCE_AFTER_BACKGROUND,
            &lifecycle::BACKGROUND_EVENTS_ONCE,
        ],
        faults: &[Fault::ShutdownOnBackground],
        // Resuming from the live end loses what was published in the background too; a
        // client re-created for an expired token does not resume after a sleep; a client that
        // never parks its link keeps a reconnect's backoff across the foreground (the property
        // found it: outage, restore, background, foreground).
        collateral: &[
            Fault::LoseOutageEvents,
            Fault::RecreateOnExpired,
            Fault::SecondSocket,
        ],
        ..untested(
            rule!("LIFE-2"),
            (All, Must, LIFECYCLE),
            "Going to the background and back to the foreground resumes the same instance.",
            "background, let time pass, foreground",
            "check the app's background/foreground handlers for shutdown or re-creation",
        )
    },
    Rule {
        sees: "Sees every shutdown the client reports against the logout and start commands before it, in every scenario.",
        checks: &[&lifecycle::SHUTDOWN_ONLY_ON_LOGOUT],
        faults: &[Fault::ShutdownOnError],
        // All three shut the client down on their own.
        collateral: &[
            Fault::RecreateOnReconnect,
            Fault::ShutdownOnBackground,
            Fault::RecreateOnExpired,
        ],
        ..untested(
            rule!("LIFE-3"),
            (All, Must, LIFECYCLE),
            "A client is shut down only for a logout or a switch of login.",
            "every scenario; outages, background spells and logouts tempt it",
            "look for shutdown calls outside the logout path",
        )
    },
    Rule {
        sees: "Sees everything the backend attributes to an instance (by header or token) after its end was settled, the instance ids of new clients, and the answers to commands on an ended client or its handles.",
        checks: &[
            &lifecycle::OLD_INSTANCE_RETIRED,
            &lifecycle::ENDED_CLIENT_REFUSES,
        ],
        faults: &[Fault::ReuseAfterShutdown],
        ..untested(
            rule!("LIFE-4"),
            (All, Must, LIFECYCLE),
            "After a shutdown a new instance is created; the old one is never used again.",
            "log out, use the old client and handles, log in again, use the old handles",
            "look for a cached client object that outlives logout",
        )
    },
    Rule {
        sees: "Sees each instance's sockets as the backend opened and closed them, judged where the client had settled, and its attempts on the event channel during outages (a refused connection never reaches the backend, so attempts are counted on half-open outages).",
        checks: &[&lifecycle::ONE_SOCKET, &lifecycle::BOUNDED_BACKOFF],
        faults: &[Fault::NoBackoff, Fault::SecondSocket],
        ..untested(
            rule!("LIFE-5"),
            (All, Should, LIFECYCLE),
            "One live event connection per instance, with bounded reconnect backoff.",
            "flap a half-open network 10 times, 20 background cycles",
            "check the reconnect loop's backoff and that old sockets are closed",
        )
    },
    Rule {
        sees: "Sees every start with its device token, the settle after it, and the binding set replayed from the backend's binding facts; cannot see a registration with a push service other than the backend's.",
        checks: &[&push::REGISTERED_AFTER_START],
        faults: &[Fault::NoRegisterOnStart],
        ..untested(
            rule!("PUSH-1"),
            (All, Must, PUSH),
            "A push registration exists after every application start.",
            "start, kill, start",
            "register for push on every start, not only on the first",
        )
    },
    Rule {
        sees: "Sees starts with the identity and device token of the start before, the binding still present, and the registration writes the backend saw up to the settle after them.",
        checks: &[&push::NO_REREGISTRATION],
        faults: &[Fault::RegisterEveryStart],
        ..untested(
            rule!("PUSH-2"),
            (All, Should, PUSH),
            "Re-register only when the device token changed (compare with the persisted one).",
            "restart with the same device token",
            "persist the OS device token and compare it on start",
        )
    },
    Rule {
        sees: "Sees every device_token_changed sent to a running client, the settle after it, and the binding set replayed from the backend's binding facts.",
        checks: &[&push::FOLLOWS_TOKEN_ROTATION],
        faults: &[Fault::IgnoreTokenRotation],
        ..untested(
            rule!("PUSH-3"),
            (All, Must, PUSH),
            "When the OS reports a new device token, register again with it.",
            "device_token_changed",
            "subscribe to the OS token-change event",
        )
    },
    Rule {
        sees: "Sees a start as another identity than the start before, the previous identity's bindings for the device tokens it used, and the binding set at the settle after the new start.",
        checks: &[&push::PREVIOUS_IDENTITY_UNBOUND],
        faults: &[Fault::KeepOldIdentityBinding],
        ..untested(
            rule!("PUSH-4"),
            (All, Must, PUSH),
            "Relaunching with another identity removes the previous identity's registration.",
            "start as A, kill, start as B",
            "unregister the old identity before registering the new one",
        )
    },
    Rule {
        not_judged: Some(
            "the one-year idle expiry and the daily deregistration advice are guidance, not a contract a client can be checked against",
        ),
        ..untested(
            rule!("PUSH-5"),
            (All, Info, PUSH),
            "Registrations expire after a year idle; deregistering daily is advised.",
            "modelled by the backend",
            "nothing to check",
        )
    },
    Rule {
        sees: "Sees every token the generator issued (the lifetime it minted), the token requests after a short one until the generator is changed or the app starts anew, and the errors the client reported by the settle a minute later.",
        checks: &[&tokens::SHORT_TOKEN_REFUSED],
        faults: &[Fault::RetryShortToken],
        ..untested(
            rule!("TOKEN-1"),
            (All, Must, TOKEN),
            "A token with a TTL under three minutes is refused: the client reports it and does not loop.",
            "hand the client a two-minute token",
            "surface token errors instead of retrying them",
        )
    },
    Rule {
        sees: "Sees the TTL every token request asked the generator for (the `ttl` field); cannot see what an app's own server would ask on its behalf.",
        checks: &[&tokens::TTL_IN_HOURS],
        faults: &[Fault::TtlTooShort, Fault::TtlTooLong],
        ..untested(
            rule!("TOKEN-2"),
            (All, Should, TOKEN),
            "The app asks for tokens lasting hours, at most a day.",
            "the token endpoint sees the requested TTL",
            "request a TTL between 1 h and 24 h",
        )
    },
    Rule {
        sees: "Sees every token_about_to_expire the event channel sent, the tokens handed over on that instance's channels, expiry closes, and the instance's life up to the first settle past the expiry.",
        checks: &[&tokens::REFRESH_ON_WARNING],
        faults: &[Fault::IgnoreAboutToExpire],
        ..untested(
            rule!("TOKEN-3"),
            (All, Must, TOKEN),
            "On about-to-expire the app fetches a new token and hands it to the running client.",
            "advance past expiry minus three minutes",
            "implement the token-about-to-expire handler with updateToken",
        )
    },
    Rule {
        sees: "Sees foregrounds while the token last presented had expired, and channels closed at expiry; then the instance's life, its refused handshakes and the token of its next channel, up to the first settle a minute later.",
        checks: &[&tokens::RESUME_AFTER_EXPIRY],
        faults: &[Fault::RecreateOnExpired],
        ..untested(
            rule!("TOKEN-4"),
            (All, Must, TOKEN),
            "On expiry (e.g. after sleeping) the app refreshes the token and the client resumes.",
            "advance past expiry while in the background",
            "implement the token-expired handler",
        )
    },
    Rule {
        sees: "Sees starts after a kill of the same identity (with a storage directory), the newest token issued for it and its expiry, and the first thing the backend heard after the start; cannot see a cache the client keeps elsewhere.",
        checks: &[&tokens::STORED_TOKEN_AT_START],
        faults: &[Fault::WaitForGenerator],
        ..untested(
            rule!("TOKEN-5"),
            (All, Should, TOKEN),
            "A cached token that is still valid is used at start, without waiting for the generator.",
            "kill, start",
            "keep the last token in temporary storage and use it first",
        )
    },
    Rule {
        sees: "Sees every URL the backend was asked for (REST and the event channel), and every line the adapter logged (its stderr, in-process logs), against every token the journal knows; cannot see a token written somewhere the kit does not read.",
        checks: &[&tokens::TOKEN_CONFIDENTIAL],
        faults: &[Fault::TokenInUrl, Fault::LogToken],
        ..untested(
            rule!("TOKEN-6"),
            (All, Should, TOKEN),
            "The token is confidential: never in a URL, never in logs.",
            "every scenario",
            "send the token in a header and scrub it from logs",
        )
    },
    Rule {
        sees: "Sees when `start` is answered against a page of the list the backend refused and the client's next settle; cannot see a client that answers `start` but keeps the app waiting some other way.",
        checks: &[&lists::CREATED_BEFORE_FULL_LIST],
        faults: &[Fault::AwaitFullList],
        ..untested(
            rule!("LIST-1"),
            (Js, Must, JS),
            "Client creation completes before the subscribed list is fully fetched.",
            "gate the first or the last page of the list, let the client settle",
            "do not await the whole list inside client creation",
        )
    },
    Rule {
        sees: "Sees when the event channel's handshake was answered against the first page request, and whether a conversation only an added event told of is in the next list the client shows; an event counts once written to the client's socket.",
        checks: &[
            &lists::LISTENS_BEFORE_FETCH,
            &lists::ANNOUNCED_DURING_FETCH_LISTED,
        ],
        faults: &[Fault::ListenAfterFetch],
        ..untested(
            rule!("LIST-2"),
            (Js, Must, JS),
            "The listener for added conversations is attached before the list is requested.",
            "add a conversation during the initial fetch, hold the last page until the client settled",
            "subscribe to conversationAdded before calling getSubscribedConversations",
        )
    },
    Rule {
        sees: "Sees every list the client shows and every added or removed report, each removal matched to one the backend made; cannot see duplicates in an interface the adapter does not report.",
        checks: &[&lists::EACH_CONVERSATION_ONCE],
        faults: &[Fault::NoDedupe],
        // An instance that comes back after its shutdown lists its conversations again.
        collateral: &[Fault::ReuseAfterShutdown],
        ..untested(
            rule!("LIST-3"),
            (Js, Must, JS),
            "Each conversation appears exactly once across events and pages.",
            "added events before, between and after pages; a page shift",
            "de-duplicate by conversation sid",
        )
    },
    Rule {
        sees: "Sees the list the client shows right after the harness recorded the backend's truth, as a set; not its order, and not lists the adapter is never asked for.",
        checks: &[&lists::LIST_EQUALS_TRUTH],
        faults: &[
            Fault::IgnoreUnknownUpdates,
            Fault::NoTombstones,
            Fault::FirstPageOnly,
            Fault::TombstonesForever,
        ],
        // A conversation missed during the fetch is also missing from the final list.
        collateral: &[Fault::ListenAfterFetch],
        ..untested(
            rule!("LIST-4"),
            (Js, Must, JS),
            "The merged list equals the backend's: nothing lost to a page shift or an early update, nothing removed brought back.",
            "bump, insert and remove between pages",
            "merge pages and events by sid and remember removals made during the fetch",
        )
    },
    Rule {
        sees: "Sees every message-list request (attributed by header or token) before the app first asked, and matches every new-message event written to the client's socket to one report by the next settle.",
        checks: &[
            &messages::NO_FETCH_BEFORE_ASKED,
            &messages::NEW_MESSAGES_REPORTED,
        ],
        faults: &[Fault::AutoloadMessages, Fault::SilentNewMessages],
        // A second socket receives every event twice; the client reports it once.
        collateral: &[Fault::SecondSocket],
        ..untested(
            rule!("MSG-1"),
            (Js, Must, JS),
            "Loading a conversation fetches none of its messages.",
            "open a conversation and settle; another participant posts",
            "fetch messages only when the app asks",
        )
    },
    Rule {
        sees: "Matches every edit or removal event written to the client's socket to at most one change report and every report to one event; a change published while a fetch listing the message was being answered is not judged.",
        checks: &[
            &messages::FETCHED_CHANGES_REPORTED,
            &messages::UNFETCHED_CHANGES_SILENT,
        ],
        faults: &[Fault::EventsForUnfetched, Fault::DropFetchedUpdates],
        // Messages the client loaded by itself count as fetched in its eyes.
        collateral: &[Fault::AutoloadMessages],
        ..untested(
            rule!("MSG-2"),
            (Js, Must, JS),
            "Message updates and removals are reported for fetched messages, and only for them.",
            "edit fetched and unfetched messages",
            "track which messages were fetched",
        )
    },
    Rule {
        sees: "Sees every get_count and its reply, and every count request the backend served (the Counts resource answers participants and messages at once, the user's view of a conversation the unread count), against the cache lifetime the scenario is judged with (5 s unless it says otherwise).",
        checks: &[&counts::ONE_REQUEST_PER_LIFETIME],
        faults: &[Fault::UncachedCounts],
        ..untested(
            rule!("COUNT-1"),
            (Js, Must, JS),
            "Count reads are cached: at most one request per cache lifetime.",
            "read a count 50 times inside the lifetime",
            "cache participant/message/unread counts",
        )
    },
    Rule {
        sees: "Sees every get_count with the backend's counts journaled just before it (each count's value and the instant it last changed) and its reply; judges reads made a lifetime and a second after a change that an earlier read preceded.",
        checks: &[&counts::CONVERGES_AFTER_LIFETIME],
        faults: &[Fault::CacheForever],
        ..untested(
            rule!("COUNT-2"),
            (Js, Must, JS),
            "After the cache lifetime, count reads converge to the backend's value.",
            "change the count, advance past the lifetime, read",
            "expire the count cache",
        )
    },
    Rule {
        sees: "Sees every unread get_count with the backend's unread count journaled just before it (null without a read horizon) and its reply.",
        checks: &[&counts::UNKNOWN_UNREAD_IS_NULL],
        faults: &[Fault::ZeroUnread],
        ..untested(
            rule!("COUNT-3"),
            (Js, Should, JS),
            "The unread count is unknown (null) until a read horizon exists.",
            "a fresh participant reads its unread count",
            "return null rather than 0 before the first read horizon",
        )
    },
    Rule {
        sees: "Sees every request of the instance (by header or token) against what its synchronization needed; cannot see work the client does without the backend, and needs the client to report its sync status.",
        checks: &[
            &sync::CLIENT_OPS_WAIT,
            &sync::EARLY_CLIENT_OPS_ANSWERED,
            &sync::SYNC_COMPLETION_REPORTED,
        ],
        faults: &[Fault::OpsBeforeSync],
        // A client that stops after one page calls itself synchronized too early.
        collateral: &[Fault::FirstPageOnly],
        ..untested(
            rule!("SYNC-1"),
            (Mobile, Must, MOBILE),
            "Client operations are issued only after the client finished synchronizing.",
            "gate the last page of the subscribed list, then issue a client operation",
            "queue client operations until the client sync status is COMPLETED, or fail them with not_synchronized",
        )
    },
    Rule {
        sees: "Sees every request about a conversation, served or not, against that conversation's metadata and participants having been served to the same instance.",
        checks: &[
            &sync::CONVERSATION_OPS_WAIT,
            &sync::EARLY_CONVERSATION_OPS_ANSWERED,
        ],
        faults: &[Fault::ConversationOpsBeforeSync],
        ..untested(
            rule!("SYNC-2"),
            (Mobile, Must, MOBILE),
            "Operations on a conversation are issued only after that conversation synchronized.",
            "gate the conversation's participants, then operate on it",
            "wait for the conversation's synchronization status ALL before operating on it",
        )
    },
    Rule {
        sees: "Sees the sync statuses the adapter reports, in order; a client that reports none is not judged.",
        checks: &[&sync::STATUS_ONLY_FORWARD],
        faults: &[Fault::SyncStatusRegresses],
        // An instance that comes back after its shutdown starts its sync statuses over.
        collateral: &[Fault::ReuseAfterShutdown],
        ..untested(
            rule!("SYNC-3"),
            (Mobile, Should, MOBILE),
            "Synchronization status only moves forward.",
            "another writer's changes and refreshes after sync completed",
            "never re-emit an earlier synchronization status for the same object",
        )
    },
    Rule {
        sees: "Sees when each update is answered against the first Updated event (or fetch) at or past the revision its own request produced; an event is only known processed once the client settled after its publication.",
        checks: &[
            &updates::COMPLETES_ON_EVENT,
            &updates::COMPLETES_ONCE_DELIVERED,
        ],
        faults: &[Fault::UpdateCompletesOnAck],
        ..untested(
            rule!("UPD-1"),
            (Mobile, Must, MOBILE),
            "An update completes only once its Updated event has arrived.",
            "hold the Updated event of the command, let the client settle, then release it",
            "complete the operation in the Updated handler, not in the command's success callback",
        )
    },
    Rule {
        sees: "Sees every value the client reports (update results, reads, update reports) against the values the backend sent at or past the revision the client is known to have processed; cannot see values the app shows without reporting them.",
        checks: &[&updates::SHOWS_BACKEND_VALUE],
        faults: &[Fault::LocalWriteWins],
        // Completing on the acknowledgement also reports the local write as the result.
        collateral: &[Fault::UpdateCompletesOnAck],
        ..untested(
            rule!("UPD-2"),
            (Mobile, Must, MOBILE),
            "The value the backend reports wins over the value the client wrote.",
            "another writer changes the object before the client's Updated event is delivered",
            "read values from the Updated event, not from the request you sent",
        )
    },
    Rule {
        sees: "Same evidence as UPD-2; a value shown that a late, older snapshot carried is UPD-3.",
        checks: &[&updates::STALE_NEVER_WINS],
        faults: &[Fault::StaleEventOverwrites],
        ..untested(
            rule!("UPD-3"),
            (All, Should, MOBILE),
            "An older snapshot never overwrites a newer one.",
            "deliver a stale Updated event late",
            "compare revisions before applying an event",
        )
    },
    Rule {
        sees: "Sees the handles the client reports acquired and released against the shutdown it reports; handles the adapter never reports are invisible.",
        checks: &[&lifecycle::HANDLES_RELEASED_FIRST],
        faults: &[Fault::ReleaseAfterShutdown, Fault::LeakHandles],
        ..untested(
            rule!("REL-1"),
            (Mobile, Must, MOBILE),
            "Every object handle is released before the client itself is released.",
            "log out while handles are held",
            "release conversations, participants and messages before shutdown",
        )
    },
];
