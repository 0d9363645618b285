//! A mutation campaign of the kit's own: realistic client bugs that no planted fault of the
//! reference client resembles, each of which the suite must catch.
//!
//! A mutant wraps the reference client in two layers, both transparent unless the mutant says
//! otherwise: an app layer between the harness and the client stack (`wrapper`: what an app
//! does around the SDK) and a loopback HTTP/WebSocket proxy between the stack and the backend
//! (`proxy`: what a transport does to requests and frames). [`MUTANTS`] lists them with the
//! rules each must fail; the identity mutant and the transparent ones must pass everything.
//! [`run_mutant`] runs the suite against one and says whether it was caught.
//!
//! Must not import: the harness, the properties, the backend, the journal, the checks (a mutant
//! is an adapter around the reference client; the suite judges it like any other).

mod proxy;
mod wrapper;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::adapter::{Adapter, AdapterError, AdapterSession, Target};
use crate::reference::ReferenceAdapter;
use crate::report::Report;
use crate::rules::{CATALOG, RuleId, Verdict, rule};
use crate::scenario::{SuiteError, SuiteOptions, run_suite};
use crate::wire::{EventType, HubFrame, ObjectKey};
use proxy::Outgoing;

/// Where a mutant's bug lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// What the app does around the SDK (commands, results, reports).
    App,
    /// What a transport does to requests and frames.
    Transport,
}

/// The behaviour a mutant plants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Identity,
    ReplyBeforeUpdate,
    ReadOwnWrite,
    DoubleMessageReport,
    MessageEditEcho,
    AutoloadOnOpen,
    DuplicateListEntry,
    ListDropsLast,
    StartWaitsForSync,
    StartWaitsFirstConversation,
    RemoveAddRefresh,
    StatusReorder,
    RestartStatusOnAdd,
    ForgetSyncReport,
    AdvanceCompletes,
    SyncEarlyReport,
    ConversationAddedTwice,
    UserUpdateEcho,
    LateMessageReport,
    CompleteOnAnyFrame,
    StripClientHeader,
    EarlyWriteUnlabelled,
    WriteUnservedPath,
    LazySocket,
    DropEveryFifthEvent,
    DuplicateEvents,
    DropRemovals,
    DropAddedDuringFetch,
    DropMessageChanges,
    CorruptAttributes,
    DropFirstPageItem,
    StopAfterSecondPage,
    ResumeInclusive,
    LingerAfterLogout,
    ZombiePresenceTimer,
    RestKeepsFirstToken,
    RefreshByReconnect,
}

/// One mutant: a realistic client bug and the rules that must catch it.
#[derive(Debug)]
pub struct Mutant {
    /// Stable name.
    pub name: &'static str,
    /// The bug it models.
    pub models: &'static str,
    /// Where the bug lives.
    pub layer: Layer,
    /// Rules that must FAIL (none: the mutant is transparent and must pass everything).
    pub must_fail: &'static [RuleId],
    pub(crate) kind: Kind,
}

macro_rules! mutants {
    ($($kind:ident $name:literal $layer:ident [$($rule:tt),*] $models:literal;)*) => {
        /// Every mutant of the campaign.
        pub static MUTANTS: &[Mutant] = &[$(Mutant {
            name: $name,
            models: $models,
            layer: Layer::$layer,
            must_fail: &[$(rule!($rule)),*],
            kind: Kind::$kind,
        }),*];
    };
}

mutants! {
    Identity "identity" App [] "nothing: the wrapper and the proxy pass everything through";
    StripClientHeader "strip-client-header" Transport [] "a transport that drops the X-Convo-Client header: requests are still attributed by their token";
    ReplyBeforeUpdate "reply-before-update" App ["UPD-1"] "an app that resolves an update as soon as it asked for it";
    ReadOwnWrite "read-own-write" App ["UPD-2"] "an app that shows what it last wrote (optimistic UI) instead of what the SDK holds";
    DoubleMessageReport "double-message-report" App ["MSG-1"] "an app that subscribes its new-message handler twice";
    MessageEditEcho "message-edit-echo" App ["MSG-2"] "an app that treats every new message as an update of a loaded one";
    AutoloadOnOpen "autoload-on-open" App ["MSG-1"] "an app that loads a page of messages whenever it opens a conversation";
    DuplicateListEntry "duplicate-list-entry" App ["LIST-3"] "an app list that appends the last conversation again when it re-renders";
    ListDropsLast "list-drops-last" App ["LIST-4"] "an app list that loses its last row (off-by-one)";
    StartWaitsForSync "start-waits-for-sync" App ["LIST-1"] "an app that awaits full synchronization before it treats the client as created";
    StartWaitsFirstConversation "start-waits-first-conversation" App ["LIST-1"] "an app that awaits the first page of conversations before it treats the client as created";
    RemoveAddRefresh "remove-add-refresh" App ["LIST-3"] "an app that refreshes a conversation row on each new message by removing and re-adding it";
    StatusReorder "status-reorder" App ["SYNC-3"] "a status layer that reports the conversations-completed step after completed";
    RestartStatusOnAdd "restart-status-on-add" App ["SYNC-3"] "a status layer that starts synchronizing again when a conversation arrives";
    ForgetSyncReport "forget-sync-report" App ["SYNC-1"] "an app that never passes on the completed synchronization status";
    AdvanceCompletes "update-timeout" App ["UPD-1"] "an app that resolves an update after ten seconds without its event";
    SyncEarlyReport "sync-early-report" App ["SYNC-3"] "an app that declares itself synchronized as soon as the client exists";
    ConversationAddedTwice "conversation-added-twice" App ["LIST-3"] "an app that registers its conversation-added handler twice";
    UserUpdateEcho "user-update-echo" App ["UPD-2"] "an app that reports its own user write as the user's new value";
    LateMessageReport "late-message-report" App ["MSG-1"] "an app that batches new-message reports until its next idle moment";
    CompleteOnAnyFrame "complete-on-any-event" App ["UPD-1"] "an app that resolves a pending update on the next Updated event of the object, whatever its revision";
    EarlyWriteUnlabelled "early-write-unlabelled" Transport ["SYNC-1"] "an app that writes its user presence with the SDK's token as soon as it has one, through its own HTTP client";
    WriteUnservedPath "write-unserved-path" Transport ["SYNC-2"] "an app that sends a typing indicator to a conversation as soon as it loads it";
    LazySocket "lazy-socket" Transport ["LIST-2"] "an SDK that opens its event socket only after the first page of the list";
    DropEveryFifthEvent "drop-every-fifth-event" Transport ["MSG-1"] "a transport that loses one event frame in five";
    DuplicateEvents "duplicate-events" Transport [] "a transport that delivers every event frame twice (transparent: the client drops a frame whose seq it already has)";
    DropRemovals "drop-removals" Transport ["LIST-4"] "an event layer that ignores conversation removals";
    DropAddedDuringFetch "drop-added-during-fetch" Transport ["LIST-2"] "an event layer that drops conversation-added events while the list is loading";
    DropMessageChanges "drop-message-changes" Transport ["MSG-2"] "an event layer that ignores message edits and removals";
    CorruptAttributes "corrupt-attributes" Transport ["UPD-2"] "a decoder that garbles the attributes of Updated events";
    DropFirstPageItem "drop-first-page-item" Transport ["LIST-4"] "a pagination layer that skips the first item of every page";
    StopAfterSecondPage "stop-after-second-page" Transport ["LIST-4"] "a pagination layer that stops following next-page links after two pages";
    ResumeInclusive "resume-inclusive" Transport ["LIFE-1", "LIFE-2"] "an event layer that reconnects with since = the last seq received minus one (an inclusive resume point), so the last event it had is written again on every new socket";
    LingerAfterLogout "linger-after-logout" Transport ["LIFE-4"] "an SDK whose logout abandons its event connection instead of closing it: the backend keeps the old instance's socket open and writing to it";
    ZombiePresenceTimer "zombie-presence-timer" App ["LIFE-4"] "an app that refreshes its user's presence every 60 s of virtual time with the token and instance id of the client it was armed for, and never cancels the timer on logout";
    RestKeepsFirstToken "rest-keeps-first-token" Transport ["TOKEN-3"] "an HTTP layer configured once with the token the client started with: after a refresh the event channel runs on the new token, REST keeps sending the first one until it expires and is refused";
    RefreshByReconnect "refresh-by-reconnect" Transport ["TOKEN-3"] "an SDK that applies a refreshed token by dropping its event connection and opening a new one with it, instead of handing it over on the open channel";
}

/// What the proxy tells the app layer.
pub(crate) enum Signal {
    /// An Updated event about `target` passed, carrying `attributes`.
    UpdatedFrame {
        /// The object.
        target: Target,
        /// Its attributes in the event.
        attributes: Value,
    },
}

/// An update in flight: its target, the value the app wrote, and the virtual time that passed
/// since.
pub(crate) struct Pending {
    pub(crate) target: Target,
    pub(crate) written: Value,
    pub(crate) waited_ms: u64,
}

/// State the app layer and the proxy of one session share.
pub(crate) struct Shared {
    pub(crate) identity: String,
    /// Updates in flight, by harness request id.
    pub(crate) pending: BTreeMap<u64, Pending>,
    signals: mpsc::UnboundedSender<Signal>,
    events: u64,
    list_done: bool,
    pages: u32,
    credentials: Option<(String, Option<String>)>,
    injected: bool,
    injected_for: Vec<String>,
    /// A logout was asked for and no client was started since.
    logged_out: bool,
    /// The first token each instance presented (mutant `rest-keeps-first-token`).
    first_tokens: HashMap<String, String>,
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mutant {
    /// A request on its way upstream: may be changed; returns requests to send first.
    pub(crate) fn request(&self, shared: &Mutex<Shared>, out: &mut Outgoing) -> Vec<Outgoing> {
        let mut st = lock(shared);
        if let Some(token) = out.header("x-twilio-token") {
            st.credentials = Some((
                token.to_owned(),
                out.header("x-convo-client").map(str::to_owned),
            ));
        }
        match self.kind {
            Kind::StripClientHeader => {
                out.drop_header("x-convo-client");
                Vec::new()
            }
            Kind::RestKeepsFirstToken => {
                if let (Some(token), Some(client)) =
                    (out.header("x-twilio-token"), out.header("x-convo-client"))
                {
                    let first = st
                        .first_tokens
                        .entry(client.to_owned())
                        .or_insert_with(|| token.to_owned())
                        .clone();
                    out.drop_header("x-twilio-token");
                    out.headers.push(("x-twilio-token".into(), first));
                }
                Vec::new()
            }
            Kind::EarlyWriteUnlabelled
                if !st.injected
                    && out.path().starts_with("/v1/Users/")
                    && out.path().ends_with("/Conversations") =>
            {
                st.injected = true;
                let Some((token, _)) = st.credentials.clone() else {
                    return Vec::new();
                };
                vec![Outgoing {
                    method: reqwest::Method::POST,
                    target: format!("/v1/Users/{}", st.identity),
                    headers: vec![
                        ("x-twilio-token".into(), token),
                        (
                            "content-type".into(),
                            "application/x-www-form-urlencoded".into(),
                        ),
                    ],
                    body: Bytes::from_static(b"Attributes=%7B%22presence%22%3A%22online%22%7D"),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The upstream answer to `out`: the body to pass back, and requests the mutant sends
    /// (before the client gets the answer) on seeing it.
    pub(crate) fn response(
        &self,
        shared: &Mutex<Shared>,
        out: &Outgoing,
        status: u16,
        body: Bytes,
    ) -> (Bytes, Vec<Outgoing>) {
        let is_page =
            out.path().starts_with("/v1/Users/") && out.path().ends_with("/Conversations");
        let mut st = lock(shared);
        let Ok(mut page) = serde_json::from_slice::<Value>(&body) else {
            return (body, Vec::new());
        };
        if is_page && status == 200 {
            st.pages += 1;
            match self.kind {
                Kind::DropFirstPageItem => {
                    if let Some(items) = page["conversations"].as_array_mut() {
                        if !items.is_empty() {
                            items.remove(0);
                        }
                    }
                }
                Kind::StopAfterSecondPage if st.pages >= 2 => {
                    page["meta"]["next_page_url"] = Value::Null;
                }
                _ => {}
            }
            if page["meta"]["next_page_url"].is_null() {
                st.list_done = true;
            }
            return (Bytes::from(page.to_string()), Vec::new());
        }
        if self.kind == Kind::WriteUnservedPath
            && status == 200
            && out.method == reqwest::Method::GET
        {
            // Loading a conversation: the app sends a typing indicator to it at once.
            if let Some(sid) = out
                .path()
                .strip_prefix("/v1/Conversations/")
                .filter(|rest| !rest.contains('/'))
            {
                if !st.injected_for.iter().any(|s| s == sid) {
                    st.injected_for.push(sid.to_owned());
                    if let Some((token, client)) = st.credentials.clone() {
                        let mut headers = vec![("x-twilio-token".to_owned(), token)];
                        headers.extend(client.map(|c| ("x-convo-client".to_owned(), c)));
                        let typing = Outgoing {
                            method: reqwest::Method::POST,
                            target: format!("/v1/Conversations/{sid}/Typing"),
                            headers,
                            body: Bytes::new(),
                        };
                        return (body, vec![typing]);
                    }
                }
            }
        }
        (body, Vec::new())
    }

    /// An event frame from the hub: the frames the client gets instead.
    pub(crate) fn event(&self, shared: &Mutex<Shared>, text: String) -> Vec<String> {
        let Ok(HubFrame::Event(frame)) = HubFrame::decode(&text) else {
            return vec![text];
        };
        let mut st = lock(shared);
        st.events += 1;
        match self.kind {
            Kind::DropEveryFifthEvent if st.events % 5 == 0 => Vec::new(),
            Kind::DuplicateEvents => vec![text.clone(), text],
            Kind::DropRemovals if frame.kind == EventType::ConversationRemoved => Vec::new(),
            Kind::DropAddedDuringFetch
                if frame.kind == EventType::ConversationAdded && !st.list_done =>
            {
                Vec::new()
            }
            Kind::DropMessageChanges
                if matches!(
                    frame.kind,
                    EventType::MessageUpdated | EventType::MessageRemoved
                ) =>
            {
                Vec::new()
            }
            Kind::CorruptAttributes if frame.kind.is_update() => {
                let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                for key in ["conversation", "user"] {
                    if v[key].is_object() {
                        v[key]["attributes"] = json!("{\"garbled\":true}");
                    }
                }
                vec![v.to_string()]
            }
            Kind::CompleteOnAnyFrame if frame.kind.is_update() => {
                let target = match frame.target() {
                    Some(ObjectKey::User(_)) => Some(Target::User),
                    Some(ObjectKey::Conversation(sid)) => Some(Target::Conversation { sid }),
                    None => None,
                };
                if let (Some(target), Some(attributes)) = (target, frame.attributes()) {
                    if st.pending.values().any(|p| p.target == target) {
                        let _ = st.signals.send(Signal::UpdatedFrame { target, attributes });
                    }
                }
                vec![text]
            }
            _ => vec![text],
        }
    }
}

/// The reference client, wrapped in a mutant's app layer and proxy.
pub struct MutantAdapter {
    inner: ReferenceAdapter,
    mutant: &'static Mutant,
}

impl MutantAdapter {
    /// The reference client (`inner`) with `mutant` around it.
    pub fn new(inner: ReferenceAdapter, mutant: &'static Mutant) -> Self {
        Self { inner, mutant }
    }
}

impl Adapter for MutantAdapter {
    fn name(&self) -> String {
        format!("reference (mutant: {})", self.mutant.name)
    }

    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>> {
        let inner = self.inner.open();
        let mutant = self.mutant;
        async move {
            let session = inner.await?;
            let hello = session.hello().clone();
            let (to_stack, from_stack, closer) = session.into_parts();
            let (req_tx, from_harness) = mpsc::unbounded_channel();
            let (to_harness, ev_rx) = mpsc::unbounded_channel();
            let (signal_tx, signals) = mpsc::unbounded_channel();
            let shared = Arc::new(Mutex::new(Shared {
                identity: String::new(),
                pending: BTreeMap::new(),
                signals: signal_tx,
                events: 0,
                list_done: false,
                pages: 0,
                credentials: None,
                injected: false,
                injected_for: Vec::new(),
                logged_out: false,
                first_tokens: HashMap::new(),
            }));
            let wrapper = wrapper::Wrapper {
                mutant,
                shared,
                to_harness,
                to_stack,
                signals,
                proxy: None,
                next_own: 0,
                answered: Vec::new(),
                written: HashMap::new(),
                held_start: None,
                held: Vec::new(),
                settle_ids: Vec::new(),
                synced: false,
                timers: Vec::new(),
            };
            let task = tokio::spawn(wrapper.run(from_harness, from_stack));
            let closer = async move {
                task.abort();
                closer.await;
            }
            .boxed();
            Ok(AdapterSession::new(hello, req_tx, ev_rx, closer))
        }
        .boxed()
    }
}

/// How one mutant fared.
#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    /// The mutant.
    pub name: &'static str,
    /// Where its bug lives.
    pub layer: Layer,
    /// The rules it had to fail.
    pub must_fail: Vec<RuleId>,
    /// The rules that failed.
    pub failed: Vec<RuleId>,
    /// Whether the suite did what it had to: failed every rule of `must_fail`, or, for a
    /// transparent mutant, passed every checked rule without a harness error.
    pub caught: bool,
    /// Harness errors of the run.
    pub errors: usize,
    /// Wall time of the run.
    pub millis: u128,
}

/// Runs the suite against the reference client with `mutant` around it.
pub async fn run_mutant(mutant: &'static Mutant) -> Result<MutantResult, SuiteError> {
    let adapter = Arc::new(MutantAdapter::new(ReferenceAdapter::default(), mutant));
    let started = Instant::now();
    let run = run_suite(adapter, &SuiteOptions::default()).await?;
    let report = Report::build(&run);
    let failed: Vec<RuleId> = report
        .rules
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.id)
        .collect();
    let caught = if mutant.must_fail.is_empty() {
        report.errors.is_empty()
            && CATALOG
                .iter()
                .filter(|r| r.is_implemented())
                .all(|r| report.rule(r.id).verdict == Verdict::Pass)
    } else {
        mutant.must_fail.iter().all(|r| failed.contains(r))
    };
    Ok(MutantResult {
        name: mutant.name,
        layer: mutant.layer,
        must_fail: mutant.must_fail.to_vec(),
        failed,
        caught,
        errors: report.errors.len(),
        millis: started.elapsed().as_millis(),
    })
}

/// The mutant called `name`.
pub fn mutant(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}
