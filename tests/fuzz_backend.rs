//! Hostile input at the backend, over raw TCP: random bytes and structured-but-hostile requests
//! at every REST route, random handshakes and frames at the event channel. After every case the
//! answer must be well-formed HTTP with a Twilio error body (or a close, for a socket), the case
//! must be journaled (a request or a refusal), and the backend must still serve.
//!
//! 256 REST and 128 WebSocket cases by default; `CONVO_TCK_FUZZ_CASES=N` runs N REST and N/2
//! WebSocket cases. Each property prints its cases per second (`--nocapture` to see them).

#[path = "support/hostile.rs"]
mod hostile;

use std::time::Instant;

use convo_tck::backend::{Fact, Layer, Refusal};
use convo_tck::journal::EntryKind;
use hostile::{
    FrameSpec, Target, WsCase, close_code, exchange, refusals, run_rest_case, run_ws_case,
};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn every_rest_route_answers_hostile_requests_in_twilio_shape_and_journals_them() {
    let rt = runtime();
    let target = rt.block_on(Target::start());
    let cases = hostile::case_count(256, false);
    let started = Instant::now();
    let result = runner(cases).run(&hostile::rest_case(), |case| {
        rt.block_on(run_rest_case(&target, &case))
            .map_err(TestCaseError::fail)
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "REST fuzz: {cases} cases in {secs:.2} s = {:.0} cases/s",
        f64::from(cases) / secs
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_event_channel_refuses_hostile_handshakes_and_frames_and_journals_them() {
    let rt = runtime();
    let target = rt.block_on(Target::start());
    let cases = hostile::case_count(128, true);
    let started = Instant::now();
    let result = runner(cases).run(&hostile::ws_case(), |case| {
        rt.block_on(run_ws_case(&target, &case))
            .map_err(TestCaseError::fail)
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "WebSocket fuzz: {cases} cases in {secs:.2} s = {:.0} cases/s",
        f64::from(cases) / secs
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// What wiremock used to panic on (dropping the connection, journaling nothing) is refused at
/// the front door with its cause.
#[tokio::test]
async fn what_wiremock_panicked_on_is_refused_and_journaled() {
    let t = Target::start().await;
    let addr = t
        .backend
        .rest_url()
        .trim_start_matches("http://")
        .to_owned();
    let cases: &[(&[u8], Refusal, u16)] = &[
        (
            b"POST /token HTTP/1.1\r\nContent-Length: 50\r\n\r\nidentity=alice",
            Refusal::Truncated,
            400,
        ),
        (
            b"POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n",
            Refusal::BadChunk,
            400,
        ),
        (
            b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
            Refusal::MethodNotAllowed,
            405,
        ),
        (b"GET /a\x01b HTTP/1.1\r\n\r\n", Refusal::MalformedHead, 400),
        (b"GET * HTTP/1.1\r\n\r\n", Refusal::BadTarget, 400),
    ];
    for (raw, cause, status) in cases {
        let before = t.journal.last_seq();
        let out = exchange(&addr, raw).await.unwrap();
        let answers = hostile::answers(&out, false).unwrap();
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].status, *status);
        let journaled = t.journal.since(before);
        let refused = refusals(&journaled);
        assert_eq!(refused.len(), 1, "{journaled:?}");
        assert_eq!(
            (refused[0].layer, refused[0].cause, refused[0].status),
            (Layer::Http, *cause, Some(*status))
        );
        t.still_serves().await.unwrap();
    }
    // The summary reads as what happened.
    let last = t.journal.snapshot();
    let line = last
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EntryKind::Backend(Fact::Refused(_))))
        .unwrap()
        .summary();
    assert!(
        line.contains("HTTP input refused (bad_target): `GET * HTTP/1.1` → 400"),
        "{line}"
    );
}

/// Limits: a 414, a 431 and a 413, each journaled with a request line cut to 200 characters.
#[tokio::test]
async fn requests_past_the_limits_are_refused_and_quoted_short() {
    let t = Target::start().await;
    let addr = t
        .backend
        .rest_url()
        .trim_start_matches("http://")
        .to_owned();
    let cases = [
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9_000)), 414),
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(17_000)),
            431,
        ),
        (
            "POST /token HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".to_owned(),
            413,
        ),
    ];
    for (raw, status) in cases {
        let before = t.journal.last_seq();
        let out = exchange(&addr, raw.as_bytes()).await.unwrap();
        assert_eq!(hostile::answers(&out, false).unwrap()[0].status, status);
        let journaled = t.journal.since(before);
        let refused = refusals(&journaled);
        assert_eq!(refused[0].status, Some(status));
        let line = refused[0].request_line.as_deref().unwrap_or_default();
        assert!(line.chars().count() <= 201, "{}", line.len());
        t.still_serves().await.unwrap();
    }
}

/// A request the front door forwards comes back as wiremock answered it, on a kept-alive
/// connection, and well-formed requests pipelined behind each other are each answered.
#[tokio::test]
async fn well_formed_requests_pass_the_front_door_unchanged_and_kept_alive() {
    let t = Target::start().await;
    let addr = t
        .backend
        .rest_url()
        .trim_start_matches("http://")
        .to_owned();
    let get = format!(
        "GET /v1/Users/alice HTTP/1.1\r\nHost: x\r\nX-Twilio-Token: {}\r\n\r\n",
        t.token
    );
    let chunked = "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                   Transfer-Encoding: chunked\r\n\r\n9\r\nidentity=\r\n5\r\nalice\r\n0\r\n\r\n";
    let out = exchange(&addr, format!("{get}{chunked}{get}").as_bytes())
        .await
        .unwrap();
    let answers = hostile::answers(&out, false).unwrap();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200], "{answers:?}");
    assert_eq!(answers[0].body["identity"], "alice");
    assert!(answers[1].body["token"].is_string(), "{:?}", answers[1]);
    assert!(refusals(&t.journal.snapshot()).is_empty());
    // An HTTP/1.0 client that asks to keep the connection is told it is kept.
    let old = get
        .replace("HTTP/1.1", "HTTP/1.0")
        .replace("Host: x\r\n", "Host: x\r\nConnection: keep-alive\r\n");
    let out = exchange(&addr, old.as_bytes()).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_lowercase();
    assert!(text.contains("\r\nconnection: keep-alive\r\n"), "{text}");
    assert_eq!(hostile::answers(&out, false).unwrap()[0].status, 200);
}

/// The event channel: bad upgrades are answered and journaled; protocol violations close the
/// socket with the code RFC 6455 names, journaled with their cause.
#[tokio::test]
async fn the_event_channel_journals_bad_upgrades_and_protocol_violations() {
    let t = Target::start().await;
    let addr = t.backend.events_url().trim_start_matches("ws://");
    let addr = addr.split('/').next().unwrap().to_owned();
    let plain = format!(
        "GET /v1/events HTTP/1.1\r\nX-Twilio-Token: {}\r\n\r\n",
        t.token
    );
    let bad_key = t
        .upgrade("/v1/events", true)
        .replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
    let bad_version = t
        .upgrade("/v1/events", true)
        .replace("Version: 13", "Version: 8");
    for (raw, status) in [(plain, 426), (bad_key, 400), (bad_version, 426)] {
        let before = t.journal.last_seq();
        let out = exchange(&addr, raw.as_bytes()).await.unwrap();
        assert_eq!(hostile::answers(&out, false).unwrap()[0].status, status);
        let journaled = t.journal.since(before);
        let refused = refusals(&journaled);
        assert_eq!(
            (refused[0].cause, refused[0].status),
            (Refusal::BadUpgrade, Some(status))
        );
    }
    let frame = |opcode: u8, masked: bool, payload: &[u8], announce: Option<u64>| FrameSpec {
        fin: true,
        rsv: 0,
        opcode,
        masked,
        payload: payload.to_vec(),
        announce,
    };
    let cases = [
        (
            frame(1, false, b"hi", None),
            Refusal::ProtocolViolation,
            1002,
        ),
        (
            frame(3, true, b"hi", None),
            Refusal::ProtocolViolation,
            1002,
        ),
        (
            frame(1, true, &[0xff, 0xfe], None),
            Refusal::InvalidUtf8,
            1007,
        ),
        (
            frame(2, true, b"x", Some(1 << 20)),
            Refusal::MessageTooLarge,
            1009,
        ),
    ];
    for (spec, cause, code) in cases {
        let before = t.journal.last_seq();
        run_ws_case(&t, &WsCase::Frames(vec![spec.clone()]))
            .await
            .unwrap();
        let journaled = t.journal.since(before);
        let refused = refusals(&journaled);
        assert_eq!(refused.len(), 1, "{spec:?}: {journaled:?}");
        assert_eq!(
            (refused[0].layer, refused[0].cause, refused[0].close_code),
            (Layer::WebSocket, cause, Some(code)),
            "{spec:?}"
        );
    }
    // close_code reads what the hub sent.
    assert_eq!(close_code(&[0x88, 0x02, 0x03, 0xea]), Some(1002));
}
