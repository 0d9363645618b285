//! The lifecycle property: random sequences of app and backend steps against a model, with
//! every rule as an invariant after every step.
//!
//! [`Lifecycle`] is the pure model (a `proptest-state-machine` reference machine): it generates
//! steps and tracks just enough to keep them meaningful. [`System`] drives the real thing for
//! one case: a fresh harness (backend and adapter session) per case. After every step the whole
//! journal is judged; with a planted fault, [`run_campaign`] must find a violation and shrink it
//! to a few steps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestError, TestRunner};
use proptest_state_machine::ReferenceStateMachine;
use serde_json::json;

use super::{CampaignResult, config};
use crate::adapter::{Adapter, Command, CountKind, HandleId, Outcome, ReplyBody, Target};
use crate::backend::fixture::Fixture;
use crate::backend::{Gate, Outage};
use crate::harness::Harness;
use crate::harness::panics::{harness_panic, quiet_marked_panics};
use crate::rules::{self, RuleId};
use crate::wire::{ConversationSid, ObjectKey};

/// One step of a lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Start alice's client.
    Start,
    /// Alice writes `{"v": n}` to her user.
    UpdateUser(u8),
    /// Alice writes `{"v": n}` to the "general" conversation.
    UpdateConversation(u8),
    /// Alice reads "general".
    ReadConversation,
    /// Gate the last page of alice's subscribed list.
    GateLastPage,
    /// Open that gate.
    OpenLastPage,
    /// Gate the participants of "general" (it cannot finish synchronizing).
    GateParticipants,
    /// Open that gate.
    OpenParticipants,
    /// Hold Updated events of "general".
    Hold,
    /// Release them.
    Release,
    /// Another writer sets "general" to `{"other": n}`.
    OtherWriter(u8),
    /// Re-deliver the previous snapshot of "general".
    Stale,
    /// Let `n` seconds of virtual time pass.
    Advance(u8),
    /// Let six minutes pass (past the reconnect bound).
    LongWait,
    /// The network fails: refused, half-open or silent sockets.
    Outage(Outage),
    /// The network comes back.
    Restore,
    /// Bob posts a message to "general" (an event for alice).
    Post,
    /// The app goes to the background.
    Background,
    /// The app returns to the foreground.
    Foreground,
    /// Open a handle on "general".
    Open,
    /// Release the newest live handle.
    ReleaseHandle,
    /// Log out.
    Logout,
    /// The app is killed.
    Kill,
    /// Start a client for the other identity (bob when alice was last, alice when bob was): a
    /// switch of login when a client runs.
    SwitchLogin,
    /// Use the client after it ended (list the conversations).
    UseEnded,
    /// The token generator issues a 2-minute token for a start (as dave, who has no stored
    /// token); two minutes pass; the generator issues the case's lifetime again.
    ShortTokenStart,
    /// An hour and a minute pass (past the case's 1-hour token lifetime), in 2-minute steps.
    Hour,
    /// The app sleeps in the background past its token's expiry, then returns.
    Sleep,
    /// The OS hands the app device token number `n` (the harness sends it with later starts).
    Rotate(u8),
    /// The app reads a count of "general" `n` times in a row.
    ReadCount(CountKind, u8),
    /// Six seconds pass (past the documented 5-second count cache).
    CacheLifetime,
}

/// What the model knows.
#[derive(Clone, Debug, Default)]
pub struct Model {
    started: bool,
    writes: u32,
    /// Bob is the one logged in (or was, last).
    bob: bool,
    background: bool,
    outage: Option<Outage>,
    handles: u32,
    /// A client ended (logout, switch or kill) at least once.
    ended: bool,
}

impl Model {
    /// Whether a client can be created now (the token generator is reachable).
    fn reachable(&self) -> bool {
        matches!(self.outage, None | Some(Outage::Silence))
    }
}

/// The pure model of a lifecycle.
pub struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let outage = prop_oneof![
            Just(Outage::Refuse),
            Just(Outage::Drop),
            Just(Outage::Silence)
        ];
        if !state.started {
            return prop_oneof![
                4 => Just(Step::Start),
                1 => Just(Step::SwitchLogin),
                1 => Just(Step::ShortTokenStart),
                1 => Just(Step::GateLastPage),
                1 => Just(Step::GateParticipants),
                1 => Just(Step::Hold),
                1 => (0u8..4).prop_map(Step::OtherWriter),
                1 => outage.prop_map(Step::Outage),
                1 => Just(Step::Restore),
                1 => Just(Step::UseEnded),
            ]
            .boxed();
        }
        prop_oneof![
            3 => (0u8..4).prop_map(Step::UpdateConversation),
            1 => (0u8..4).prop_map(Step::UpdateUser),
            3 => Just(Step::ReadConversation),
            1 => Just(Step::GateLastPage),
            2 => Just(Step::OpenLastPage),
            1 => Just(Step::GateParticipants),
            2 => Just(Step::OpenParticipants),
            2 => Just(Step::Hold),
            2 => Just(Step::Release),
            2 => (0u8..4).prop_map(Step::OtherWriter),
            1 => Just(Step::Stale),
            2 => prop_oneof![1u8..4, Just(30u8)].prop_map(Step::Advance),
            2 => Just(Step::LongWait),
            3 => outage.prop_map(Step::Outage),
            3 => Just(Step::Restore),
            2 => Just(Step::Post),
            1 => Just(Step::Background),
            3 => Just(Step::Foreground),
            2 => Just(Step::Open),
            1 => Just(Step::ReleaseHandle),
            1 => Just(Step::Logout),
            1 => Just(Step::Kill),
            1 => Just(Step::SwitchLogin),
            1 => Just(Step::Hour),
            1 => Just(Step::Sleep),
            1 => (0u8..3).prop_map(Step::Rotate),
            4 => (count_kind(), prop_oneof![Just(1u8), Just(5u8)])
                .prop_map(|(k, n)| Step::ReadCount(k, n)),
            2 => Just(Step::CacheLifetime),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        match step {
            Step::Start | Step::ShortTokenStart => !state.started && state.reachable(),
            Step::Hour | Step::CacheLifetime | Step::ReadCount(..) => state.started,
            // A new device token while no client runs is the next start's to register.
            Step::Rotate(_) => state.started,
            Step::Sleep => state.started && !state.background,
            Step::SwitchLogin => state.reachable(),
            Step::UpdateUser(_)
            | Step::UpdateConversation(_)
            | Step::ReadConversation
            | Step::Advance(_)
            | Step::LongWait
            | Step::Post
            | Step::Open
            | Step::Logout
            | Step::Kill => state.started,
            Step::Background => state.started && !state.background,
            Step::Foreground => state.started && state.background,
            Step::ReleaseHandle => state.started && state.handles > 0,
            Step::Outage(_) => state.outage.is_none(),
            Step::Restore => state.outage.is_some(),
            Step::UseEnded => !state.started && state.ended,
            Step::Stale => state.writes >= 1,
            _ => true,
        }
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match step {
            Step::Start => {
                state.started = true;
                state.bob = false;
                state.background = false;
            }
            Step::SwitchLogin => {
                state.ended |= state.started;
                state.started = true;
                state.bob = !state.bob;
                state.background = false;
                state.handles = 0;
            }
            Step::Logout | Step::Kill => {
                state.started = false;
                state.ended = true;
                state.background = false;
                state.handles = 0;
            }
            Step::UpdateConversation(_) | Step::OtherWriter(_) => state.writes += 1,
            Step::Outage(o) => state.outage = Some(*o),
            Step::Restore => state.outage = None,
            Step::Background => state.background = true,
            Step::Foreground => state.background = false,
            Step::Open => state.handles += 1,
            Step::ReleaseHandle => state.handles = state.handles.saturating_sub(1),
            _ => {}
        }
        state
    }
}

fn count_kind() -> impl Strategy<Value = CountKind> {
    // Messages first: a post changes that count, so its reads are the ones a stale cache shows.
    prop_oneof![
        1 => Just(CountKind::Participants),
        2 => Just(CountKind::Messages),
        1 => Just(CountKind::Unread)
    ]
}

/// The device token `n` of a case.
fn device_token(n: u8) -> String {
    format!("fcm-device-{n}")
}

/// The lifetime the token generator mints in every case.
const CASE_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The real system for one case: a harness on a runtime of its own.
pub struct System {
    runtime: tokio::runtime::Runtime,
    harness: Option<Harness>,
    general: ConversationSid,
    /// Handles the client handed out and the app has not released, newest last.
    handles: Vec<HandleId>,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("System")
    }
}

impl System {
    fn new(adapter: Arc<dyn Adapter>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| harness_panic(e));
        let harness = runtime.block_on(async {
            let mut h = Harness::builder(adapter)
                .seed(7)
                .start()
                .await
                .unwrap_or_else(|e| harness_panic(e));
            // Tokens live an hour in every case, so their warning and expiry are a step away
            // (the app still asks for what it asks for: TOKEN-2 judges the ask).
            h.backend.force_token_ttl(Some(CASE_TOKEN_LIFETIME));
            // The device has a push token from the start: every start is judged by PUSH-1..4.
            h.device_token = Some(device_token(0));
            let fixture = Fixture::named("basic").unwrap_or_else(|e| harness_panic(e));
            h.backend.load_fixture("basic", &fixture);
            h.backend
                .seed_conversations("extra", 12, &["alice".to_owned()]);
            h
        });
        let general = harness
            .backend
            .conversation_sid("general")
            .unwrap_or_else(|e| harness_panic(e));
        Self {
            runtime,
            harness: Some(harness),
            general,
            handles: Vec::new(),
        }
    }

    fn harness(&mut self) -> &mut Harness {
        self.harness
            .as_mut()
            .unwrap_or_else(|| harness_panic("the harness is gone"))
    }

    /// Runs `f` on the harness, on this case's runtime.
    fn drive<R>(&mut self, f: impl AsyncFnOnce(&mut Harness) -> R) -> R {
        let h = self
            .harness
            .as_mut()
            .unwrap_or_else(|| harness_panic("the harness is gone"));
        self.runtime.block_on(f(h))
    }

    fn call(&mut self, command: Command) -> Outcome {
        self.drive(async |h| h.driver.call(command).await)
            .unwrap_or_else(|e| harness_panic(e))
    }

    fn settle(&mut self) {
        self.drive(async |h| h.driver.settle().await)
            .unwrap_or_else(|e| harness_panic(e));
    }

    fn submit(&mut self, command: Command) {
        self.harness()
            .driver
            .submit(command)
            .map(|_| ())
            .unwrap_or_else(|e| harness_panic(e));
    }

    /// Takes `step`; `model` is the model's state after it.
    fn step(&mut self, step: Step, model: &Model) {
        let general = ObjectKey::Conversation(self.general.clone());
        let last_page = Gate::LastListPage {
            user: "alice".into(),
        };
        let participants = Gate::Participants {
            sid: self.general.clone(),
        };
        match step {
            Step::Start => {
                let command = self.harness().start_command("alice");
                match self.call(command) {
                    Outcome::Ok(_) => {}
                    other => harness_panic(format!("start failed: {other:?}")),
                }
            }
            Step::UpdateUser(n) => self.submit(Command::UpdateAttributes {
                target: Target::User,
                attributes: json!({ "v": n }),
            }),
            Step::UpdateConversation(n) => self.submit(Command::UpdateAttributes {
                target: Target::Conversation {
                    sid: self.general.clone(),
                },
                attributes: json!({ "v": n }),
            }),
            Step::ReadConversation => {
                self.settle();
                // What it shows is judged by the value invariants (UPD-2, UPD-3).
                self.call(Command::ReadAttributes {
                    target: Target::Conversation {
                        sid: self.general.clone(),
                    },
                });
            }
            Step::GateLastPage => self.harness().backend.close_gate(last_page),
            Step::OpenLastPage => self.harness().backend.open_gate(&last_page),
            Step::GateParticipants => self.harness().backend.close_gate(participants),
            Step::OpenParticipants => self.harness().backend.open_gate(&participants),
            Step::Hold => self.harness().backend.hold(general),
            Step::Release => {
                self.harness().backend.release(&general);
            }
            Step::OtherWriter(n) => {
                self.harness()
                    .backend
                    .external_update(&general, json!({ "other": n }))
                    .unwrap_or_else(|e| harness_panic(e));
            }
            Step::Stale => {
                // Nothing to replay until the object has two snapshots; that is not an error.
                let _ = self.harness().backend.deliver_stale(&general);
            }
            Step::Advance(s) => self
                .drive(async |h| h.advance(Duration::from_secs(u64::from(s))).await)
                .unwrap_or_else(|e| harness_panic(e)),
            // Past the reconnect bound; minute steps are fine enough for it (the backoff
            // ceiling is 90 s) and keep the case cheap.
            Step::LongWait => self
                .drive(async |h| {
                    h.driver
                        .advance_in_steps(
                            &h.clock,
                            Duration::from_secs(6 * 60),
                            Duration::from_secs(60),
                        )
                        .await
                })
                .unwrap_or_else(|e| harness_panic(e)),
            Step::Outage(o) => self
                .drive(async |h| h.backend.outage(o).await)
                .unwrap_or_else(|e| harness_panic(e)),
            Step::Restore => self
                .drive(async |h| h.backend.restore().await)
                .unwrap_or_else(|e| harness_panic(e)),
            Step::Post => {
                let general = self.general.clone();
                self.harness()
                    .backend
                    .post_message(&general, "bob", "hello")
                    .unwrap_or_else(|e| harness_panic(e));
            }
            Step::Background => {
                self.call(Command::Background);
            }
            Step::Foreground => {
                self.call(Command::Foreground);
            }
            Step::Open => {
                let conversation = self.general.clone();
                // A client still synchronizing may not know it yet: that is its answer to give.
                if let Outcome::Ok(ReplyBody::Handle { handle }) =
                    self.call(Command::OpenConversation { conversation })
                {
                    self.handles.push(handle);
                }
            }
            Step::ReleaseHandle => {
                if let Some(handle) = self.handles.pop() {
                    self.call(Command::Release { handle });
                }
            }
            Step::Logout | Step::Kill => {
                self.call(if step == Step::Logout {
                    Command::Logout
                } else {
                    Command::Kill
                });
                // The ended client's handles: using one is judged (LIFE-4).
                let kept = std::mem::take(&mut self.handles);
                if let Some(handle) = kept.into_iter().next() {
                    self.call(Command::Release { handle });
                }
            }
            Step::SwitchLogin => {
                let who = if model.bob { "bob" } else { "alice" };
                let command = self.harness().start_command(who);
                match self.call(command) {
                    Outcome::Ok(_) => {}
                    other => harness_panic(format!("the switch to {who} failed: {other:?}")),
                }
                self.handles.clear();
            }
            Step::UseEnded => {
                self.call(Command::ListConversations);
            }
            Step::ShortTokenStart => {
                self.harness()
                    .backend
                    .force_token_ttl(Some(Duration::from_secs(120)));
                // Dave never started here, so no stored token of his can stand in for the
                // short one; a compliant client refuses to start with it (TOKEN-1 judges it).
                let command = self.harness().start_command("dave");
                self.submit(command);
                self.settle();
                self.pass(Duration::from_secs(120), Duration::from_secs(10));
                self.harness()
                    .backend
                    .force_token_ttl(Some(CASE_TOKEN_LIFETIME));
            }
            // Two-minute steps: the warning comes three minutes ahead, so each one is seen
            // (and acted on, within a settle) before the expiry.
            Step::Hour => self.pass(
                CASE_TOKEN_LIFETIME + Duration::from_secs(60),
                Duration::from_secs(120),
            ),
            Step::Rotate(n) => {
                let token = device_token(n);
                self.harness().device_token = Some(token.clone());
                self.call(Command::DeviceTokenChanged {
                    device_token: token,
                });
            }
            Step::ReadCount(kind, n) => {
                for _ in 0..n {
                    // What it reads is judged by the count invariants (COUNT-1..3). Not waited
                    // for: during an outage or behind a gate the read waits for the backend.
                    self.submit(Command::GetCount {
                        conversation: self.general.clone(),
                        kind,
                    });
                    self.settle();
                }
                // The app looks at it for a second: a change after it is a later instant.
                self.pass(Duration::from_secs(1), Duration::from_secs(1));
            }
            Step::CacheLifetime => self.pass(Duration::from_secs(6), Duration::from_secs(1)),
            Step::Sleep => {
                self.call(Command::Background);
                self.pass(
                    CASE_TOKEN_LIFETIME + Duration::from_secs(60),
                    Duration::from_secs(600),
                );
                self.call(Command::Foreground);
                self.settle();
                self.pass(Duration::from_secs(60), Duration::from_secs(10));
            }
        }
        if model.started || model.ended {
            self.settle();
        }
    }

    /// Lets `d` pass in steps of `step`, settling after each.
    fn pass(&mut self, d: Duration, step: Duration) {
        self.drive(async |h| h.driver.advance_in_steps(&h.clock, d, step).await)
            .unwrap_or_else(|e| harness_panic(e));
    }

    /// Every rule, judged on the whole journal so far.
    fn check(&mut self, judged: &[RuleId]) {
        let entries = self.harness().journal.snapshot();
        super::assert_judged(&rules::judge(&entries), judged);
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(h) = self.harness.take() {
            self.runtime.block_on(h.close());
        }
    }
}

/// Plays `steps` against a fresh system; panics at the first violation of a `judged` rule
/// (any rule when empty).
pub(super) fn play(adapter: &Arc<dyn Adapter>, steps: &[Step], judged: &[RuleId]) {
    play_counting(adapter, steps, judged, None);
}

/// [`play`], telling `seen` of every step before it is played. The shrinker needs it: it drops
/// the steps after the failing one untested, as never seen, so a campaign that did not count
/// them shrank every counterexample to nothing.
fn play_counting(
    adapter: &Arc<dyn Adapter>,
    steps: &[Step],
    judged: &[RuleId],
    seen: Option<&std::sync::atomic::AtomicUsize>,
) {
    let mut system = System::new(adapter.clone());
    let mut model = Model::default();
    for step in steps {
        if let Some(seen) = seen {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        model = Lifecycle::apply(model, step);
        system.step(step.clone(), &model);
        system.check(judged);
    }
}

/// How to run a lifecycle campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// Random lifecycles to try.
    pub cases: u32,
    /// Longest lifecycle, in steps.
    pub max_steps: usize,
    /// Seed of the case generator: same seed, same cases.
    pub seed: u64,
    /// Where failing seeds are persisted (and replayed first next time).
    pub persistence: Option<&'static str>,
    /// The rules held as invariants (all when empty).
    pub rules: Vec<RuleId>,
    /// Fed the number of cases played so far.
    pub progress: Option<super::Progress>,
}

impl Default for Campaign {
    fn default() -> Self {
        Self {
            cases: 64,
            max_steps: 30,
            seed: 1,
            persistence: None,
            rules: Vec::new(),
            progress: None,
        }
    }
}

/// Runs a campaign of random lifecycles against `adapter`.
pub fn run_campaign(adapter: Arc<dyn Adapter>, campaign: &Campaign) -> CampaignResult<Vec<Step>> {
    quiet_marked_panics();
    let mut runner = TestRunner::new(config(
        campaign.cases,
        campaign.seed,
        campaign.persistence,
        2048,
    ));
    let strategy = Lifecycle::sequential_strategy(1..campaign.max_steps);
    let tick = super::Progress::counter(campaign.progress.as_ref());
    let result = runner.run(&strategy, |(_, steps, seen)| {
        tick();
        play_counting(&adapter, &steps, &campaign.rules, seen.as_deref());
        Ok(())
    });
    let result = CampaignResult::from_run(
        campaign.cases,
        result.map_err(|e| match e {
            TestError::Fail(r, (_, steps, _)) => TestError::Fail(r, steps),
            TestError::Abort(r) => TestError::Abort(r),
        }),
    );
    match result {
        CampaignResult::Violated {
            counterexample,
            message,
        } => {
            let (counterexample, message) =
                minimize(&adapter, counterexample, message, &campaign.rules);
            CampaignResult::Violated {
                counterexample,
                message,
            }
        }
        other => other,
    }
}

/// The rule a violation message names (`UPD-1 FAIL: ...` → `UPD-1`).
fn violated_rule(message: &str) -> &str {
    message.split_whitespace().next().unwrap_or_default()
}

/// Shrinks a counterexample further than proptest can: proptest deletes one step at a time, and
/// a step whose removal breaks the model's preconditions (a `logout` between two `start`s) is
/// never deleted, though the pair could be. This removes runs of two steps, then single steps,
/// keeping a removal when the rest is a valid lifecycle that still breaks the same rule, until
/// nothing more can go.
fn minimize(
    adapter: &Arc<dyn Adapter>,
    mut steps: Vec<Step>,
    mut message: String,
    judged: &[RuleId],
) -> (Vec<Step>, String) {
    let rule = violated_rule(&message).to_owned();
    let valid = |steps: &[Step]| {
        let mut model = Model::default();
        steps.iter().all(|step| {
            let ok = Lifecycle::preconditions(&model, step);
            model = Lifecycle::apply(model.clone(), step);
            ok
        })
    };
    let fails = |steps: &[Step]| -> Option<String> {
        super::outcome(|| play(adapter, steps, judged))
            .err()
            .filter(|m| violated_rule(m) == rule)
    };
    'shrink: loop {
        for width in [2, 1] {
            for at in 0..steps.len().saturating_sub(width - 1) {
                let mut candidate = steps.clone();
                candidate.drain(at..at + width);
                if !valid(&candidate) {
                    continue;
                }
                if let Some(m) = fails(&candidate) {
                    steps = candidate;
                    message = m;
                    continue 'shrink;
                }
            }
        }
        return (steps, message);
    }
}

/// Replays one step sequence (e.g. a shrunk counterexample); returns the violation, if any.
pub fn replay(adapter: Arc<dyn Adapter>, steps: Vec<Step>) -> Result<(), String> {
    super::outcome(|| play(&adapter, &steps, &[]))
}
