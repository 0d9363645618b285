//! Benchmark (not a timed test): prints the figures DESIGN §8 sets targets for.
//!
//! - whole default suite against the reference client, both profiles (wall time);
//! - per-scenario overhead: a backend on fresh loopback ports, an adapter session, a driver, and
//!   tearing them down again (target: under 20 ms);
//! - property campaign throughput against the compliant reference client (cases per second);
//! - the cost of serving a page of the subscribed list with 100 and with 10,000 conversations
//!   (it must not grow with the list), in both orders;
//! - list property throughput (random lists of up to 300 conversations walked page by page);
//! - the cost of judging every rule on a scenario's journal (the largest of the suite's, and all
//!   of one suite run's together).
//!
//! - the mutation campaign: mutants caught / total, per rule group, and what it costs.
//! - REST request cost through the front door (a small GET, kept alive), and the backend fuzz
//!   (hostile REST and WebSocket cases per second, each with its checks and a health check).
//!
//! - adapters as processes: the stdio round trip of `settle` with an idle adapter (median, p99;
//!   target under 200 µs), the per-scenario overhead with the reference client served as a
//!   process and with the example adapters in Node and Python (spawn included), and the whole
//!   suite's wall time with each at `--jobs 1` and `--jobs 2`. The examples are measured when
//!   they are installed (`npm ci` in examples/adapters/node, the venv of examples/adapters/python);
//!   `CONVO_BENCH_NODE` / `CONVO_BENCH_PYTHON` override their command lines.
//!
//! - the lifecycle: every lifecycle scenario's virtual span and the longest's real time; the
//!   cost of a reconnect (real time from the network's restore to the client holding the events
//!   it missed, with the harness stepping virtual time as scenarios do, and the reconnect step
//!   alone); the lifecycle property's cases per second.
//!
//! - time-driven rules (tokens, push, counts): every such scenario's virtual span and the
//!   group's wall time; the simulated year of daily app starts (the scenario tagged `@PUSH-5`):
//!   its real time (target under 3 s) and the cost per virtual day.
//!
//! - reports: rendering a failing full-suite report in every format (table, JSON, JUnit,
//!   Markdown with its diagrams) and its size; a 4-shard run (shards one after the other) and
//!   the merge of its shard reports, against the single run.
//!
//! - the real Twilio Conversations JS SDK (`examples/adapters/twilio-js`, when `npm ci` installed
//!   it; `CONVO_BENCH_TWILIO_JS` overrides the command line): the per-scenario overhead (spawn,
//!   the SDK loaded, one settle), a client's life (start, settled, logout) and the whole suite's
//!   wall time at `--jobs 1` and `--jobs 2`.
//!
//! Run with `cargo bench --bench suite`; `CONVO_BENCH_QUICK=1` shortens it;
//! `CONVO_BENCH_ONLY=overhead,requests,fuzz` (any of `overhead`, `suite`, `properties`, `pages`,
//! `lists`, `mutants`, `requests`, `fuzz`, `stdio`, `lifecycle`, `time`, `reports`, `twilio-js`) runs
//! only
//! those figures.

#[path = "../tests/support/hostile.rs"]
mod hostile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convo_tck::backend::{Backend, ListOrder};
use convo_tck::clock::VirtualClock;
use convo_tck::harness::Harness;
use convo_tck::mutants::{MUTANTS, run_mutant};
use convo_tck::properties::lists::run_list_campaign;
use convo_tck::properties::{Campaign, CampaignResult, run_campaign};
use convo_tck::scenario::{SuiteOptions, run_suite};
use convo_tck::{Adapter, FaultSet, Profile, ReferenceAdapter};

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let n = samples.len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().sum::<Duration>() / n as u32;
    format!(
        "n={n} mean={:.2} ms p50={:.2} ms p95={:.2} ms max={:.2} ms",
        ms(mean),
        ms(samples[n / 2]),
        ms(samples[(n * 95 / 100).min(n - 1)]),
        ms(samples[n - 1])
    )
}

/// The process adapters to measure: the reference client served over stdio, and the example
/// adapters where they are installed.
fn process_adapters() -> Vec<(&'static str, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![(
        "reference (process)",
        format!("{} reference-adapter", env!("CARGO_BIN_EXE_convo-tck")),
    )];
    let node = root.join("examples/adapters/node");
    if let Some(cmd) = std::env::var("CONVO_BENCH_NODE").ok().or_else(|| {
        node.join("node_modules")
            .exists()
            .then(|| format!("node {}", node.join("adapter.js").display()))
    }) {
        out.push(("node example", cmd));
    }
    let python = root.join("examples/adapters/python");
    if let Some(cmd) = std::env::var("CONVO_BENCH_PYTHON").ok().or_else(|| {
        let venv = python.join(".venv/bin/python");
        venv.exists()
            .then(|| format!("{} {}", venv.display(), python.join("adapter.py").display()))
    }) {
        out.push(("python example", cmd));
    }
    out
}

/// What a scene costs: a backend on fresh ports, an adapter session, one settle, tearing both
/// down; `iterations` samples.
fn scene_costs(
    runtime: &tokio::runtime::Runtime,
    adapter: &Arc<dyn Adapter>,
    iterations: usize,
) -> Vec<Duration> {
    runtime.block_on(async {
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            let mut h = Harness::builder(adapter.clone())
                .start()
                .await
                .expect("harness");
            h.driver.settle().await.expect("settle");
            h.close().await;
            samples.push(t.elapsed());
        }
        samples
    })
}

fn stdio_figures(runtime: &tokio::runtime::Runtime, quick: bool) {
    use convo_tck::adapter::{Command, ProcessAdapter};
    let reference = format!("{} reference-adapter", env!("CARGO_BIN_EXE_convo-tck"));
    // The round trip: settle with an idle adapter (no client started), many times.
    let rounds = if quick { 500 } else { 5000 };
    let (process, in_process) = runtime.block_on(async {
        let mut both = Vec::new();
        let adapters: [Arc<dyn Adapter>; 2] = [
            Arc::new(ProcessAdapter::new(&reference).expect("a command")),
            Arc::new(ReferenceAdapter::with_faults(
                Profile::Mobile,
                FaultSet::none(),
            )),
        ];
        for adapter in adapters {
            let mut h = Harness::builder(adapter).start().await.expect("harness");
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let t = Instant::now();
                h.driver.call(Command::Settle).await.expect("settle");
                samples.push(t.elapsed());
            }
            h.close().await;
            both.push(samples);
        }
        (both.remove(0), both.remove(0))
    });
    let micros = |mut s: Vec<Duration>| {
        s.sort();
        let at = |q: usize| s[(s.len() * q / 100).min(s.len() - 1)].as_secs_f64() * 1e6;
        format!("median {:.0} µs, p99 {:.0} µs", at(50), at(99))
    };
    println!(
        "stdio round trip (settle, idle adapter, {rounds} rounds): process {}; in-process {}",
        micros(process),
        micros(in_process)
    );
    for (name, command) in process_adapters() {
        let adapter: Arc<dyn Adapter> = Arc::new(ProcessAdapter::new(&command).expect("a command"));
        let overhead = scene_costs(runtime, &adapter, if quick { 10 } else { 40 });
        println!(
            "per-scenario overhead, {name} (spawn included): {}",
            stats(overhead)
        );
        for jobs in [1, 2] {
            let (took, report) = timed_suite(runtime, &adapter, jobs);
            println!(
                "suite, {name}, --jobs {jobs}: {:.2} s for {} scenarios (exit {})",
                took.as_secs_f64(),
                report.summary.scenarios,
                report.exit_code()
            );
        }
    }
}

/// The whole suite against `adapter`, `jobs` scenarios at once: its wall time and report.
fn timed_suite(
    runtime: &tokio::runtime::Runtime,
    adapter: &Arc<dyn Adapter>,
    jobs: usize,
) -> (Duration, convo_tck::Report) {
    let opts = SuiteOptions {
        concurrency: jobs,
        ..SuiteOptions::default()
    };
    let t = Instant::now();
    let run = runtime
        .block_on(run_suite(adapter.clone(), &opts))
        .expect("suite");
    (t.elapsed(), convo_tck::Report::build(&run))
}

/// The real SDK's costs (see the module docs); skipped when its adapter is not installed.
fn twilio_js_figures(runtime: &tokio::runtime::Runtime, quick: bool) {
    use convo_tck::adapter::{Command, ProcessAdapter};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/adapters/twilio-js");
    let Some(command) = std::env::var("CONVO_BENCH_TWILIO_JS").ok().or_else(|| {
        dir.join("node_modules")
            .exists()
            .then(|| format!("node {}", dir.join("adapter.js").display()))
    }) else {
        println!("twilio-js: not installed (npm ci --prefix examples/adapters/twilio-js)");
        return;
    };
    let adapter: Arc<dyn Adapter> = Arc::new(ProcessAdapter::new(&command).expect("a command"));
    let overhead = scene_costs(runtime, &adapter, if quick { 5 } else { 20 });
    println!(
        "per-scenario overhead, real JS SDK (spawn, SDK loaded, one settle): {}",
        stats(overhead)
    );
    let lives: Vec<Duration> = (0..if quick { 3 } else { 10 })
        .map(|_| {
            runtime.block_on(async {
                let mut h = Harness::builder(adapter.clone())
                    .start()
                    .await
                    .expect("harness");
                h.backend.load_fixture(
                    "basic",
                    &convo_tck::backend::fixture::Fixture::named("basic").expect("fixture"),
                );
                let t = Instant::now();
                let start = h.start_command("alice");
                h.driver.call(start).await.expect("start");
                h.driver.call(Command::Settle).await.expect("settle");
                h.driver.call(Command::Logout).await.expect("logout");
                let took = t.elapsed();
                h.close().await;
                took
            })
        })
        .collect();
    println!(
        "a real JS SDK client's life (start, initialized and settled, logout): {}",
        stats(lives)
    );
    for jobs in [1, 2] {
        let (took, report) = timed_suite(runtime, &adapter, jobs);
        println!(
            "suite, real JS SDK, --jobs {jobs}: {:.2} s for {} scenarios ({:.2} s per scenario; exit {})",
            took.as_secs_f64(),
            report.summary.scenarios,
            took.as_secs_f64() / report.summary.scenarios.max(1) as f64,
            report.exit_code()
        );
    }
}

fn main() {
    let quick = std::env::var_os("CONVO_BENCH_QUICK").is_some();
    let only = std::env::var("CONVO_BENCH_ONLY").ok();
    let wants = |figure: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|f| f.trim() == figure))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let adapter: Arc<dyn Adapter> = Arc::new(ReferenceAdapter::with_faults(
        Profile::Mobile,
        FaultSet::none(),
    ));
    if wants("stdio") {
        stdio_figures(&runtime, quick);
    }

    if wants("reports") {
        report_figures(&runtime, quick);
    }

    if wants("twilio-js") {
        twilio_js_figures(&runtime, quick);
    }

    if wants("overhead") {
        // Per-scenario overhead.
        let overhead = scene_costs(&runtime, &adapter, if quick { 50 } else { 300 });
        println!(
            "per-scenario overhead (backend + adapter start, settle, stop): {}",
            stats(overhead)
        );
    }

    if wants("suite") {
        // Whole suite.
        let runs = if quick { 3 } else { 10 };
        let mut journals = Vec::new();
        for profile in Profile::ALL {
            let mut walls = Vec::new();
            let mut scenarios = 0;
            for _ in 0..runs {
                let adapter = Arc::new(ReferenceAdapter::with_faults(profile, FaultSet::none()));
                let t = Instant::now();
                let run = runtime
                    .block_on(run_suite(adapter, &SuiteOptions::default()))
                    .expect("suite");
                walls.push(t.elapsed());
                scenarios = run.scenarios.len();
                journals = run.scenarios.into_iter().map(|s| s.journal).collect();
            }
            println!(
                "whole suite, {profile} profile ({scenarios} scenarios): {}",
                stats(walls)
            );
        }

        // Judging.
        let largest = journals
            .iter()
            .max_by_key(|j| j.len())
            .cloned()
            .unwrap_or_default();
        let judged = |journals: &[Vec<convo_tck::journal::Entry>]| {
            let t = Instant::now();
            for j in journals {
                std::hint::black_box(convo_tck::rules::judge(j));
            }
            t.elapsed()
        };
        let one: Vec<Duration> = (0..if quick { 5 } else { 30 })
            .map(|_| judged(std::slice::from_ref(&largest)))
            .collect();
        println!(
            "judging every rule on the largest journal ({} entries): {}",
            largest.len(),
            stats(one)
        );
        let all: Vec<Duration> = (0..if quick { 5 } else { 30 })
            .map(|_| judged(&journals))
            .collect();
        println!(
            "judging every rule on all {} journals of a suite run ({} entries): {}",
            journals.len(),
            journals.iter().map(Vec::len).sum::<usize>(),
            stats(all)
        );
    }

    if wants("lifecycle") {
        lifecycle_figures(&runtime, &adapter, quick);
    }

    if wants("time") {
        time_figures(&runtime, &adapter, quick);
    }

    if wants("properties") {
        // Property throughput.
        let cases = if quick { 20 } else { 100 };
        let t = Instant::now();
        let result = run_campaign(
            adapter.clone(),
            &Campaign {
                cases,
                ..Campaign::default()
            },
        );
        let secs = t.elapsed().as_secs_f64();
        match result {
            CampaignResult::Held { cases } => println!(
                "property campaign (up to 30 steps per case): {cases} cases in {secs:.2} s = {:.0} cases/s",
                f64::from(cases) / secs
            ),
            CampaignResult::Violated { message, .. } | CampaignResult::Error { message } => {
                println!("property campaign found a violation in the reference client: {message}")
            }
        }
    }

    if wants("pages") {
        // Page cost against list size.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        for order in [ListOrder::Creation, ListOrder::Activity] {
            for size in [100usize, 10_000] {
                let (first, deep) = runtime.block_on(async {
                    let backend = Backend::builder(VirtualClock::new())
                        .start()
                        .await
                        .expect("backend");
                    backend.seed_conversations("c", size, &["alice".to_owned()]);
                    backend.set_list_order(order);
                    let token = backend
                        .mint_token("alice", Duration::from_secs(3600))
                        .expect("token");
                    let get = |url: String| {
                        let http = http.clone();
                        let token = token.clone();
                        async move {
                            let t = Instant::now();
                            let body: serde_json::Value = http
                                .get(url)
                                .header("X-Twilio-Token", token)
                                .send()
                                .await
                                .expect("page")
                                .json()
                                .await
                                .expect("json");
                            (t.elapsed(), body)
                        }
                    };
                    let first_url = format!(
                        "{}/v1/Users/alice/Conversations?PageSize=50",
                        backend.rest_url()
                    );
                    let mut first = Vec::new();
                    let mut deep = Vec::new();
                    for _ in 0..if quick { 20 } else { 100 } {
                        first.push(get(first_url.clone()).await.0);
                    }
                    // Walk the whole list by its cursors, timing every later page, down to the last.
                    for _ in 0..if quick { 1 } else { 3 } {
                        let (_, mut body) = get(first_url.clone()).await;
                        while let Some(url) =
                            body["meta"]["next_page_url"].as_str().map(str::to_owned)
                        {
                            let (d, next) = get(url).await;
                            deep.push(d);
                            body = next;
                        }
                    }
                    (first, deep)
                });
                println!(
                    "subscribed-list page of 50, {order:?} order, {size} conversations: first page {}; every later page down to the last {}",
                    stats(first),
                    if deep.is_empty() {
                        "-".into()
                    } else {
                        stats(deep)
                    }
                );
            }
        }
    }

    if wants("lists") {
        // List property throughput.
        let cases = if quick { 10 } else { 40 };
        let t = Instant::now();
        let js: Arc<dyn Adapter> =
            Arc::new(ReferenceAdapter::with_faults(Profile::Js, FaultSet::none()));
        let result = run_list_campaign(js, cases, 300, 1, None);
        let secs = t.elapsed().as_secs_f64();
        match result {
            CampaignResult::Held { cases } => println!(
                "list property (up to 300 conversations, walked page by page): {cases} cases in {secs:.2} s = {:.1} cases/s",
                f64::from(cases) / secs
            ),
            CampaignResult::Violated { message, .. } | CampaignResult::Error { message } => {
                println!("list property found a violation in the reference client: {message}")
            }
        }
    }

    if wants("mutants") {
        // The mutation campaign, one mutant after the other.
        let t = Instant::now();
        let results = runtime.block_on(async {
            let mut out = Vec::new();
            for m in MUTANTS {
                out.push(run_mutant(m).await.expect("the suite runs"));
            }
            out
        });
        let total = t.elapsed();
        let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in &results {
            let group = r.must_fail.first().map_or_else(
                || "transparent".to_owned(),
                |id| {
                    id.to_string()
                        .split('-')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                },
            );
            let g = groups.entry(group).or_default();
            g.0 += usize::from(r.caught);
            g.1 += 1;
        }
        let caught = results.iter().filter(|r| r.caught).count();
        let per_group: Vec<String> = groups
            .iter()
            .map(|(g, (c, n))| format!("{g} {c}/{n}"))
            .collect();
        println!(
            "mutation campaign: {caught}/{} caught ({}); {:.1} s in all, {}",
            results.len(),
            per_group.join(", "),
            total.as_secs_f64(),
            stats(
                results
                    .iter()
                    .map(|r| Duration::from_millis(u64::try_from(r.millis).unwrap_or(u64::MAX)))
                    .collect()
            )
        );
        for r in results.iter().filter(|r| !r.caught) {
            println!(
                "  escaped: {} (had to fail {:?}, failed {:?})",
                r.name, r.must_fail, r.failed
            );
        }
    }

    requests_and_fuzz(&runtime, quick, &wants);
}

/// REST request cost through the front door, and the backend fuzz's throughput.
fn requests_and_fuzz(runtime: &tokio::runtime::Runtime, quick: bool, wants: &dyn Fn(&str) -> bool) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    if wants("requests") {
        let samples = runtime.block_on(async {
            let backend = Backend::builder(VirtualClock::new())
                .start()
                .await
                .expect("backend");
            backend.seed_conversations("c", 1, &["alice".to_owned()]);
            let token = backend
                .mint_token("alice", Duration::from_secs(3600))
                .expect("token");
            let http = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client");
            let url = format!("{}/v1/Users/alice", backend.rest_url());
            let mut samples = Vec::new();
            for _ in 0..if quick { 200 } else { 2_000 } {
                let start = Instant::now();
                let r = http
                    .get(&url)
                    .header("X-Twilio-Token", &token)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 200);
                r.bytes().await.expect("body");
                samples.push(start.elapsed());
            }
            samples
        });
        println!("REST request (GET a user, kept alive): {}", stats(samples));
    }
    if wants("fuzz") {
        for ws in [false, true] {
            let cases = if quick { 64 } else { 256 } / if ws { 2 } else { 1 };
            let (secs, failures) = runtime.block_on(async {
                let t = hostile::Target::start().await;
                let mut runner = TestRunner::deterministic();
                let mut failures = 0;
                let start = Instant::now();
                for _ in 0..cases {
                    let outcome = if ws {
                        let case = hostile::ws_case()
                            .new_tree(&mut runner)
                            .expect("case")
                            .current();
                        hostile::run_ws_case(&t, &case).await
                    } else {
                        let case = hostile::rest_case()
                            .new_tree(&mut runner)
                            .expect("case")
                            .current();
                        hostile::run_rest_case(&t, &case).await
                    };
                    failures += usize::from(outcome.is_err());
                }
                (start.elapsed().as_secs_f64(), failures)
            });
            println!(
                "backend fuzz, {}: {cases} cases in {secs:.2} s = {:.0} cases/s ({failures} failed)",
                if ws { "WebSocket" } else { "REST" },
                f64::from(cases) / secs
            );
        }
    }
}

/// Lifecycle figures: scenario spans, the reconnect's cost, the property's throughput.
fn lifecycle_figures(runtime: &tokio::runtime::Runtime, adapter: &Arc<dyn Adapter>, quick: bool) {
    use convo_tck::backend::{Fact, Outage};
    use convo_tck::journal::EntryKind;
    use convo_tck::rules::RuleId;

    // Every lifecycle scenario, one at a time: its virtual span; the suite's wall time.
    let rules: Vec<RuleId> = ["LIFE-1", "LIFE-2", "LIFE-3", "LIFE-4", "LIFE-5", "REL-1"]
        .iter()
        .map(|r| r.parse().expect("a rule id"))
        .collect();
    let (run, wall) = one_at_a_time(runtime, adapter, rules);
    let spans = spans(&run);
    println!(
        "lifecycle scenarios ({}), one at a time: {:.2} s wall",
        spans.len(),
        wall.as_secs_f64()
    );
    for (span, entries, name) in spans.iter().rev().take(4) {
        println!(
            "  {:>8.1} min virtual, {entries:>5} journal entries: {name}",
            *span as f64 / 60_000.0
        );
    }

    // The longest outage scenario by hand: 3 hours refused, a post, restore, 5 minutes.
    let samples = if quick { 3 } else { 10 };
    let mut long = Vec::new();
    let mut stepped = Vec::new();
    let mut alone = Vec::new();
    for _ in 0..samples {
        runtime.block_on(async {
            let mut h = Harness::builder(adapter.clone())
                .start()
                .await
                .expect("harness");
            let fixture = convo_tck::backend::fixture::Fixture::named("basic").expect("fixture");
            h.backend.load_fixture("basic", &fixture);
            let general = h.backend.conversation_sid("general").expect("general");
            let start = h.start_command("alice");
            h.driver.call(start).await.expect("start");
            h.driver.settle().await.expect("settle");
            let t = Instant::now();
            h.backend.outage(Outage::Refuse).await.expect("outage");
            h.driver.settle().await.expect("settle");
            h.advance(Duration::from_secs(3 * 3600))
                .await
                .expect("advance");
            h.backend
                .post_message(&general, "bob", "missed")
                .expect("post");
            // Restore, then step time as a scenario does until the missed event is delivered.
            let restored = Instant::now();
            h.backend.restore().await.expect("restore");
            h.driver.settle().await.expect("settle");
            let delivered = |h: &Harness| {
                h.journal.snapshot().iter().any(
                    |e| matches!(&e.kind, EntryKind::Backend(Fact::Frame(f)) if f.index == Some(2)),
                )
            };
            let mut last_step = Duration::ZERO;
            for _ in 0..600 {
                if delivered(&h) {
                    break;
                }
                let s = Instant::now();
                h.advance(Duration::from_secs(1)).await.expect("advance");
                last_step = s.elapsed();
            }
            assert!(delivered(&h), "the client came back");
            stepped.push(restored.elapsed());
            alone.push(last_step);
            h.advance(Duration::from_secs(300)).await.expect("advance");
            long.push(t.elapsed());
            let _ = h.close().await;
        });
    }
    println!(
        "3 h refused outage + restore + 5 min (the longest outage scenario's span, 3 h 5 min virtual): {}",
        stats(long)
    );
    println!(
        "reconnect, restore to missed event delivered (stepping 1 s of virtual time at a time through the backoff): {}",
        stats(stepped)
    );
    println!(
        "reconnect, the step that reconnects alone (advance 1 s, connect, replay, settle): {}",
        stats(alone)
    );
}

/// The time-driven rules: their scenarios' virtual spans and wall time, and the simulated year.
fn time_figures(runtime: &tokio::runtime::Runtime, adapter: &Arc<dyn Adapter>, quick: bool) {
    use convo_tck::rules::RuleId;

    let ids = [
        "TOKEN-1", "TOKEN-2", "TOKEN-3", "TOKEN-4", "TOKEN-5", "TOKEN-6", "PUSH-1", "PUSH-2",
        "PUSH-3", "PUSH-4", "PUSH-5", "COUNT-1", "COUNT-2", "COUNT-3",
    ];
    let rules: Vec<RuleId> = ids.iter().map(|r| r.parse().expect("a rule id")).collect();
    let (run, wall) = one_at_a_time(runtime, adapter, rules);
    let spans = spans(&run);
    let virtual_total: u64 = spans.iter().map(|s| s.0).sum();
    println!(
        "time-driven scenarios ({}), one at a time: {:.2} s wall for {:.1} virtual days",
        spans.len(),
        wall.as_secs_f64(),
        virtual_total as f64 / 86_400_000.0
    );
    for (span, entries, name) in spans.iter().rev().take(4) {
        println!(
            "  {:>8.1} h virtual, {entries:>6} journal entries: {name}",
            *span as f64 / 3_600_000.0
        );
    }

    // The simulated year alone, a few times.
    let samples = if quick { 1 } else { 3 };
    let mut year = Vec::new();
    let mut days = 0.0;
    for _ in 0..samples {
        let t = Instant::now();
        let run = runtime
            .block_on(run_suite(
                adapter.clone(),
                &SuiteOptions {
                    tags: Some("@PUSH-5".into()),
                    concurrency: 1,
                    ..SuiteOptions::default()
                },
            ))
            .expect("suite");
        year.push(t.elapsed());
        days = run
            .scenarios
            .iter()
            .map(|s| match (s.journal.first(), s.journal.last()) {
                (Some(a), Some(b)) => (b.at.as_millis() - a.at.as_millis()) as f64 / 86_400_000.0,
                _ => 0.0,
            })
            .fold(0.0, f64::max);
    }
    let best = year.iter().min().copied().unwrap_or_default();
    println!(
        "simulated year (@PUSH-5): {} (target under 3 s); {:.1} virtual days, {:.2} ms real per virtual day",
        stats(year),
        days,
        if days > 0.0 {
            best.as_secs_f64() * 1000.0 / days
        } else {
            0.0
        }
    );
}

/// Every scenario of `run`: its virtual span (ms), its journal's length and its name, shortest
/// span first.
fn spans(run: &convo_tck::scenario::SuiteRun) -> Vec<(u64, usize, String)> {
    let mut spans: Vec<(u64, usize, String)> = run
        .scenarios
        .iter()
        .map(|s| {
            let span = match (s.journal.first(), s.journal.last()) {
                (Some(a), Some(b)) => b.at.as_millis() - a.at.as_millis(),
                _ => 0,
            };
            (span, s.journal.len(), s.scenario.clone())
        })
        .collect();
    spans.sort();
    spans
}

/// The scenarios of `rules`, one at a time, and the wall time they took.
fn one_at_a_time(
    runtime: &tokio::runtime::Runtime,
    adapter: &Arc<dyn Adapter>,
    rules: Vec<convo_tck::rules::RuleId>,
) -> (convo_tck::scenario::SuiteRun, Duration) {
    let t = Instant::now();
    let run = runtime
        .block_on(run_suite(
            adapter.clone(),
            &SuiteOptions {
                rules,
                concurrency: 1,
                ..SuiteOptions::default()
            },
        ))
        .expect("suite");
    (run, t.elapsed())
}

/// What the report writers and a sharded run cost.
fn report_figures(runtime: &tokio::runtime::Runtime, quick: bool) {
    use convo_tck::Report;
    use convo_tck::report::{json, junit, markdown, merge, table};
    use convo_tck::scenario::Partition;
    let faults: FaultSet = [
        convo_tck::Fault::UpdateCompletesOnAck,
        convo_tck::Fault::NoBackoff,
        convo_tck::Fault::OpsBeforeSync,
    ]
    .into_iter()
    .collect();
    let run_with = |opts: SuiteOptions| {
        let adapter = Arc::new(ReferenceAdapter::with_faults(
            Profile::Mobile,
            faults.clone(),
        ));
        runtime.block_on(run_suite(adapter, &opts)).expect("suite")
    };
    let runs = if quick { 3 } else { 10 };
    let mut single = Vec::new();
    let mut report = None;
    for _ in 0..runs {
        let t = Instant::now();
        let run = run_with(SuiteOptions::default());
        report = Some(Report::build(&run));
        single.push(t.elapsed());
    }
    let report = report.expect("a report");
    println!(
        "single run with 3 faults ({} scenarios, {} FAIL): {}",
        report.summary.scenarios,
        report.summary.fail,
        stats(single)
    );
    type Writer = fn(&Report) -> String;
    let writers: [(&str, Writer); 4] = [
        ("table", table::render),
        ("json", json::to_string),
        ("junit", junit::render),
        ("markdown", markdown::render),
    ];
    for (name, write) in writers {
        let samples: Vec<Duration> = (0..if quick { 5 } else { 30 })
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(write(&report));
                t.elapsed()
            })
            .collect();
        println!(
            "writing the {name} report ({} bytes): {}",
            write(&report).len(),
            stats(samples)
        );
    }
    let mut sharded = Vec::new();
    let mut merges = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let shards: Vec<(String, String)> = (1..=4)
            .map(|index| {
                let run = run_with(SuiteOptions {
                    partition: Some(Partition { index, count: 4 }),
                    ..SuiteOptions::default()
                });
                (
                    format!("shard{index}"),
                    json::to_string(&Report::build(&run)),
                )
            })
            .collect();
        sharded.push(t.elapsed());
        let t = Instant::now();
        let merged = merge(&shards).expect("the shards merge");
        merges.push(t.elapsed());
        assert_eq!(merged.summary, report.summary);
    }
    println!(
        "4 shards one after the other (same machine): {}",
        stats(sharded)
    );
    println!("merging the 4 shard reports: {}", stats(merges));
}
