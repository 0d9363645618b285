//! Adapters as processes: the JSON-lines protocol over stdio, end to end (the reference client
//! served by `convo-tck reference-adapter`), and every way a process can break it, each with a
//! tiny deliberately broken adapter (`tests/adapters/broken.py MODE`): a typed error naming the
//! cause, every selected scenario still run, exit code 2, no harness panic or hang.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convo_tck::adapter::process::{ProcessAdapter, ProcessLimits};
use convo_tck::{Report, SuiteOptions, Verdict, run_suite};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_convo-tck")
}

fn broken(mode: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adapters/broken.py");
    format!("python3 {} {mode}", script.display())
}

/// Generous real-time bounds (a loaded CI machine starts Python slowly), except where a test
/// waits for one on purpose.
const PATIENT: Duration = Duration::from_secs(20);
/// The bound a test that provokes a timeout uses.
const SHORT: Duration = Duration::from_millis(1500);

fn limits(mode: &str) -> ProcessLimits {
    ProcessLimits {
        hello_timeout: if mode.starts_with("no-hello") {
            SHORT
        } else {
            PATIENT
        },
        exit_grace: Duration::from_millis(300),
        ..ProcessLimits::default()
    }
}

async fn report(command: &str, rule: &str) -> Report {
    let adapter = ProcessAdapter::new(command)
        .expect("a command line")
        .with_limits(limits(command.rsplit(' ').next().unwrap_or_default()));
    let opts = SuiteOptions {
        rules: vec![rule.parse().expect("a rule id")],
        safety: if command.ends_with(" hang") {
            SHORT
        } else {
            PATIENT
        },
        concurrency: 2,
        ..SuiteOptions::default()
    };
    let run = run_suite(Arc::new(adapter), &opts)
        .await
        .expect("the suite runs");
    Report::build(&run)
}

/// Polls the operating system until `done` holds, for at most `bound`. Only for events outside
/// the kit and its clocks (a real child writing its pidfile, a killed process leaving /proc),
/// which no gate or hold of the kit can signal; nothing a rule judges waits on it.
fn poll_os(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + bound;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids an `orphan` adapter wrote, once it wrote any.
fn grandchildren(pidfile: &Path) -> String {
    let read = || std::fs::read_to_string(pidfile).unwrap_or_default();
    assert!(
        poll_os(PATIENT, || !read().is_empty()),
        "no adapter started its grandchild"
    );
    read()
}

/// Of `pids`, those still running (not gone, not a zombie) once a kill had 5 s to land.
fn survivors(pids: &str) -> Vec<&str> {
    let running = |pid: &str| {
        std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    poll_os(Duration::from_secs(5), || !pids.lines().any(running));
    pids.lines().filter(|p| running(p)).collect()
}

/// Every selected scenario is reported with an error naming `cause`; nothing passes.
async fn assert_classified(mode: &str, cause: &str) {
    let report = report(&broken(mode), "UPD-1").await;
    assert_eq!(report.exit_code(), 2, "{mode}");
    assert!(
        report.summary.scenarios >= 2,
        "{mode}: several scenarios ran"
    );
    assert_eq!(
        report.errors.len(),
        report.summary.scenarios,
        "{mode}: every scenario is reported: {:#?}",
        report.errors
    );
    for e in &report.errors {
        assert!(
            e.error.contains(cause),
            "{mode}: `{}` does not name `{cause}`",
            e.error
        );
    }
    assert!(report.rules.iter().all(|r| r.verdict != Verdict::Pass));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_as_a_process_passes_and_its_faults_fail() {
    let good = report(&format!("{} reference-adapter", bin()), "UPD-1").await;
    assert_eq!(good.exit_code(), 0, "{:#?}", good.errors);
    let faulty = report(
        &format!(
            "{} reference-adapter --fault update-completes-on-ack",
            bin()
        ),
        "UPD-1",
    )
    .await;
    assert_eq!(faulty.exit_code(), 1, "{:#?}", faulty.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hello_in_time() {
    assert_classified("no-hello", "no hello within 1500 ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_before_hello_names_its_status_and_stderr() {
    assert_classified(
        "exit-before-hello",
        "ended before its hello (exit status 4)",
    )
    .await;
    assert_classified("exit-before-hello", "cannot find the SDK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_of_another_version_names_both_versions() {
    assert_classified(
        "old-version",
        "the adapter speaks protocol version 99; this kit speaks versions 1 to 2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_line_is_quoted() {
    assert_classified("malformed", "a line that is not JSON").await;
    assert_classified("malformed", "`this is not json`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_message_type() {
    assert_classified("unknown-kind", "an unknown message type `status`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_request_never_sent() {
    assert_classified("unknown-id", "a reply to request 999, which was never sent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reply_to_one_request() {
    assert_classified("duplicate", "a second reply to request 1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_line() {
    assert_classified("oversized", "over the limit of 1048576: `xxxxxxxx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8() {
    assert_classified("invalid-utf8", "a line that is not UTF-8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_body_that_does_not_fit_its_command() {
    assert_classified("wrong-body", "reply to `start`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_scenario_names_its_exit_status() {
    assert_classified("crash", "exit status 3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_a_crash_even_while_a_helper_holds_its_stdout() {
    let started = Instant::now();
    assert_classified("crash-holding-stdout", "exit status 3").await;
    assert!(
        started.elapsed() < PATIENT,
        "reported as a crash, not after the hang timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_is_the_real_time_safety_timeout() {
    assert_classified("hang", "within 1500 ms of real time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_after_close() {
    assert_classified("after-close", "output after close: a second hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_ignores_termination_is_killed_and_reported() {
    let started = Instant::now();
    assert_classified("ignores-termination", "ignored termination").await;
    assert!(started.elapsed() < Duration::from_secs(20), "no hang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_of_the_adapter_outlives_its_scenario() {
    let dir = std::env::temp_dir().join(format!("convo-tck-orphan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("grandchild.pid");
    let report = report(
        &format!("{} {}", broken("orphan"), pidfile.display()),
        "UPD-1",
    )
    .await;
    assert!(report.summary.scenarios >= 1);
    let pids = grandchildren(&pidfile);
    let left = survivors(&pids);
    assert!(
        left.is_empty(),
        "grandchildren outlived their scenarios: {left:?} of {pids:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_run_leaves_no_adapter_process_behind() {
    let dir = std::env::temp_dir().join(format!("convo-tck-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("grandchild.pid");
    let mut run = std::process::Command::new(bin())
        .args([
            "run",
            "--rule",
            "UPD-1",
            "--timeout-ms",
            "60000",
            "--adapter",
            &format!("{} {}", broken("orphan-hang"), pidfile.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // An adapter is running and has started its grandchild.
    grandchildren(&pidfile);
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = run.wait().unwrap().code();
    assert_eq!(code, Some(130), "an interrupted run exits 130");
    let pids = grandchildren(&pidfile);
    let left = survivors(&pids);
    assert!(left.is_empty(), "{left:?} outlived the interrupted run");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An adapter that stops reading its stdin cannot hold the harness: writes that fill the pipe
/// are cut off at close, and the session ends within its grace periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_stops_reading_cannot_hold_the_close() {
    use convo_tck::Adapter as _;
    use convo_tck::adapter::{Command, Target};
    use convo_tck::clock::VirtualClock;
    use convo_tck::harness::Driver;
    use convo_tck::journal::Journal;

    let adapter = ProcessAdapter::new(&broken("deaf"))
        .unwrap()
        .with_limits(limits("deaf"));
    let session = adapter.open().await.expect("the deaf adapter says hello");
    let journal = Journal::new(VirtualClock::new(), convo_tck::Secrets::default());
    let mut driver = Driver::new(session, journal, PATIENT);
    driver
        .call(Command::Start {
            identity: "alice".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            rest_url: "http://127.0.0.1:9".into(),
            events_url: "ws://127.0.0.1:9/v1/events".into(),
            twilsock_url: None,
            storage_dir: None,
            device_token: None,
        })
        .await
        .expect("start is answered");
    // A megabyte of requests: far more than a pipe holds.
    let big = serde_json::json!({ "pad": "x".repeat(64 * 1024) });
    for _ in 0..16 {
        let _ = driver
            .submit(Command::UpdateAttributes {
                target: Target::User,
                attributes: big.clone(),
            })
            .unwrap();
    }
    let started = Instant::now();
    let _ = driver.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the close took {:?}",
        started.elapsed()
    );
}

/// A session dropped without being closed (a harness bug, a panic) still takes its process
/// group with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_without_closing_leaves_no_process() {
    use convo_tck::Adapter as _;
    let dir = std::env::temp_dir().join(format!("convo-tck-dropped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("grandchild.pid");
    let adapter = ProcessAdapter::new(&format!("{} {}", broken("orphan"), pidfile.display()))
        .unwrap()
        .with_limits(limits("orphan"));
    let session = adapter.open().await.expect("hello");
    let pids = grandchildren(&pidfile);
    drop(session);
    let left = survivors(&pids);
    assert!(left.is_empty(), "{left:?} outlived a dropped session");
    let _ = std::fs::remove_dir_all(&dir);
}
