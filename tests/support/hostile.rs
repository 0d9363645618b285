//! Hostile input for the backend over raw TCP: the cases (proptest strategies), how to send one,
//! and what every answer must look like. Shared by `tests/fuzz_backend.rs` and the benchmark.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use convo_tck::Secrets;
use convo_tck::backend::fixture::Fixture;
use convo_tck::backend::{Backend, Fact, Layer, RefusedFact};
use convo_tck::clock::VirtualClock;
use convo_tck::journal::{Entry, EntryKind, Journal};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one case may take to be answered and closed.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A backend with the basic fixture, its journal and a token for alice.
pub struct Target {
    pub backend: Backend,
    pub journal: Journal,
    pub token: String,
    pub http: reqwest::Client,
}

impl Target {
    pub async fn start() -> Self {
        let clock = VirtualClock::new();
        let secrets = Secrets::default();
        let journal = Journal::new(clock.clone(), secrets.clone());
        let backend = Backend::builder(clock)
            .record_to(Arc::new(journal.clone()))
            .secrets(secrets)
            .start()
            .await
            .expect("backend");
        backend.load_fixture("basic", &Fixture::named("basic").expect("fixture"));
        backend.seed_conversations("extra", 3, &["alice".into()]);
        let token = backend
            .mint_token("alice", Duration::from_secs(3600))
            .expect("token");
        Self {
            backend,
            journal,
            token,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    fn rest_addr(&self) -> String {
        self.backend
            .rest_url()
            .trim_start_matches("http://")
            .to_owned()
    }

    fn events_addr(&self) -> String {
        let url = self.backend.events_url().trim_start_matches("ws://");
        url.split('/').next().unwrap_or_default().to_owned()
    }

    /// The backend still serves a normal request, on both ports.
    pub async fn still_serves(&self) -> Result<(), String> {
        let r = self
            .http
            .get(format!("{}/v1/Users/alice", self.backend.rest_url()))
            .header("X-Twilio-Token", &self.token)
            .send()
            .await
            .map_err(|e| format!("a normal request failed: {e}"))?;
        if r.status() != 200 {
            return Err(format!("a normal request got {}", r.status()));
        }
        let mut ws = TcpStream::connect(self.events_addr())
            .await
            .map_err(|e| e.to_string())?;
        ws.write_all(self.upgrade("/v1/events", true).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        tokio::time::timeout(ANSWER_WITHIN, ws.read_exact(&mut head))
            .await
            .map_err(|_| "no handshake answer".to_owned())?
            .map_err(|e| e.to_string())?;
        if &head != b"HTTP/1.1 101" {
            return Err(format!(
                "a normal upgrade got {}",
                String::from_utf8_lossy(&head)
            ));
        }
        Ok(())
    }

    /// A valid upgrade request (with alice's token when `token`).
    pub fn upgrade(&self, path: &str, token: bool) -> String {
        let token = if token {
            format!("X-Twilio-Token: {}\r\n", self.token)
        } else {
            String::new()
        };
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             {token}X-Convo-Client: fuzz\r\n\r\n"
        )
    }

    /// Backend entries journaled after `seq`.
    pub fn facts_since(&self, seq: u64) -> Vec<Entry> {
        self.journal.since(seq)
    }
}

/// The refusals among `entries`.
pub fn refusals(entries: &[Entry]) -> Vec<&RefusedFact> {
    entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Backend(Fact::Refused(r)) => Some(r),
            _ => None,
        })
        .collect()
}

/// Writes `bytes`, closes the sending side, and reads everything until the backend closes.
pub async fn exchange(addr: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    exchange_on(&mut s, bytes).await
}

async fn exchange_on(s: &mut TcpStream, bytes: &[u8]) -> Result<Vec<u8>, String> {
    // The backend may answer (and close) before it read everything: a failed write is fine.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(ANSWER_WITHIN, s.read(&mut chunk)).await {
            Err(_) => return Err(format!("not closed within {ANSWER_WITHIN:?}")),
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            // A reset after the answer (the backend closed with our bytes unread).
            Ok(Err(_)) => return Ok(out),
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Parses every answer in `out` (skipping interim 1xx ones); `head_first`: the first answers a
/// HEAD request (no body). Each must be well-formed HTTP/1.1 with a `Content-Length`, a JSON
/// body, and for an error the Twilio error shape.
pub fn answers(mut out: &[u8], head_first: bool) -> Result<Vec<Answer>, String> {
    let mut all = Vec::new();
    let mut first = true;
    while !out.is_empty() {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("an answer without a full head: {:?}", lossy(out)))?;
        let head = std::str::from_utf8(&out[..end]).map_err(|_| "a head that is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("a bad status line: {status_line:?}"))?;
        out = &out[end + 4..];
        if (100..200).contains(&status) {
            continue;
        }
        let mut length = None;
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("a bad header line: {line:?}"))?;
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
        // A 204 or 304 never carries a body, so it needs no framing either.
        let bodiless = matches!(status, 204 | 304);
        let length = if bodiless {
            0
        } else {
            length.ok_or("an answer without Content-Length")?
        };
        let no_body = (first && head_first) || bodiless;
        first = false;
        let length = if no_body { 0 } else { length };
        if out.len() < length {
            return Err(format!("a body cut short: {} of {length}", out.len()));
        }
        let (body, rest) = out.split_at(length);
        out = rest;
        let body: serde_json::Value = if no_body {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| format!("a body that is not JSON: {e}"))?
        };
        if status >= 400 {
            let ok = body["status"] == status
                && body["code"].is_u64()
                && body["message"].is_string()
                && body["more_info"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("https://www.twilio.com/docs/errors/"));
            if !ok && !no_body {
                return Err(format!(
                    "an error {status} without the Twilio shape: {body}"
                ));
            }
        }
        all.push(Answer { status, body });
    }
    Ok(all)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned()
}

// ---- REST cases ----

/// How a structured request's body is framed.
#[derive(Clone, Debug)]
pub enum Framing {
    /// No body headers.
    None,
    /// A correct `Content-Length`.
    Exact,
    /// A `Content-Length` larger than what is sent.
    Short(usize),
    /// A `Content-Length` that is not a number.
    Junk(String),
    /// Correct chunks.
    Chunked,
    /// `Transfer-Encoding: chunked` followed by junk.
    ChunkedJunk(Vec<u8>),
}

/// A request built to be hostile.
#[derive(Clone, Debug)]
pub struct Hostile {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub token: bool,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl Hostile {
    pub fn bytes(&self, token: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let target = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        out.extend_from_slice(
            format!("{} {target} HTTP/1.1\r\nHost: x\r\n", self.method).as_bytes(),
        );
        if self.token {
            out.extend_from_slice(format!("X-Twilio-Token: {token}\r\n").as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let body: Vec<u8> = match &self.framing {
            Framing::None => {
                out.extend_from_slice(b"\r\n");
                self.body.clone()
            }
            Framing::Exact => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                self.body.clone()
            }
            Framing::Short(more) => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len() + more).as_bytes(),
                );
                self.body.clone()
            }
            Framing::Junk(len) => {
                out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
                self.body.clone()
            }
            Framing::Chunked => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut b = Vec::new();
                for c in self.body.chunks(7) {
                    b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    b.extend_from_slice(c);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n\r\n");
                b
            }
            Framing::ChunkedJunk(junk) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                junk.clone()
            }
        };
        out.extend_from_slice(&body);
        out
    }
}

/// A REST case: raw bytes, or a hostile request.
#[derive(Clone, Debug)]
pub enum RestCase {
    Raw(Vec<u8>),
    Request(Hostile),
}

fn junk_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alice".to_owned()),
        Just("bob".to_owned()),
        "CH[0-9a-f]{32}",
        "[A-Za-z0-9._~-]{0,12}",
        "(%[0-9A-Fa-f]{2}|%|%z|%[g-z]{2}|[a-z]){0,8}",
        Just("%00".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("..".to_owned()),
        // The service sid of a backend of seed 1, and a binding sid it hands out.
        Just(format!("IS{:032x}", 1)),
        Just(format!("BS{:032x}", 1)),
        Just("D1".to_owned()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let s = junk_segment;
    prop_oneof![
        Just("/token".to_owned()),
        s().prop_map(|u| format!("/v1/Users/{u}/Conversations")),
        s().prop_map(|u| format!("/v1/Users/{u}")),
        s().prop_map(|c| format!("/v1/Conversations/{c}")),
        s().prop_map(|c| format!("/v1/Conversations/{c}/Participants")),
        s().prop_map(|c| format!("/v1/Conversations/{c}/Messages")),
        s().prop_map(|c| format!("/v1/Conversations/{c}/Counts")),
        s().prop_map(|i| format!("/v1/Services/{i}/Bindings")),
        (s(), s()).prop_map(|(i, b)| format!("/v1/Services/{i}/Bindings/{b}")),
        Just("/v1/Client/Registrations".to_owned()),
        s().prop_map(|a| format!("/v1/Client/Registrations/{a}")),
        Just("/v1/events".to_owned()),
        prop::collection::vec(s(), 0..5).prop_map(|v| format!("/{}", v.join("/"))),
        "[!-~]{0,20}",
        (1usize..3).prop_map(|k| format!("/{}", "a".repeat(k * 9_000))),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("PageSize"),
        Just("Page"),
        Just("PageToken"),
        Just("Order"),
        Just("Identity"),
        Just("BindingType"),
        Just("Ttl"),
        Just("%zz"),
    ]
    .prop_map(str::to_owned);
    let value = prop_oneof![
        Just("PA0_0_4294967295".to_owned()),
        Just("PB18446744073709551615_0_1".to_owned()),
        Just("4294967296".to_owned()),
        Just("-1".to_owned()),
        "[0-9]{0,25}",
        "(%[0-9A-Fa-f]{2}|%|[a-zA-Z_=&+]){0,12}",
    ];
    prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        Just("X-Convo-Client".to_owned()),
        Just("Content-Type".to_owned()),
        Just("Expect".to_owned()),
        Just("Connection".to_owned()),
        Just("Upgrade".to_owned()),
        Just("Content-Length".to_owned()),
        Just("Transfer-Encoding".to_owned()),
        "[A-Za-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just(b"100-continue".to_vec()),
        Just(b"close".to_vec()),
        Just(b"application/x-www-form-urlencoded".to_vec()),
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..40),
        prop::collection::vec(any::<u8>(), 0..10),
    ];
    (name, value)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"identity=alice&ttl=3600".to_vec()),
        Just(b"Attributes=%7B%22a%22%3A1%7D".to_vec()),
        Just(b"Body=hi&Author=alice".to_vec()),
        Just(b"Address=D1&BindingType=apn&MessageTypes=new_message".to_vec()),
        "(%[0-9A-Fa-f]{2}|%|[a-zA-Z_=&+]){0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        3 => Just(Framing::None),
        4 => Just(Framing::Exact),
        2 => (1usize..100).prop_map(Framing::Short),
        1 => "[-+a-z0-9 ,]{0,12}".prop_map(Framing::Junk),
        2 => Just(Framing::Chunked),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Framing::ChunkedJunk),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("GET".to_owned()),
        4 => Just("POST".to_owned()),
        1 => Just("HEAD".to_owned()),
        1 => Just("PUT".to_owned()),
        1 => Just("DELETE".to_owned()),
        1 => Just("OPTIONS".to_owned()),
        1 => Just("CONNECT".to_owned()),
        1 => "[A-Z]{1,10}",
        1 => "[!-~]{1,6}",
    ]
}

/// Every kind of REST case.
pub fn rest_case() -> impl Strategy<Value = RestCase> {
    let request = (
        method(),
        path(),
        query(),
        prop::collection::vec(header(), 0..4),
        any::<bool>(),
        body(),
        framing(),
    )
        .prop_map(
            |(method, path, query, headers, token, body, framing)| Hostile {
                method,
                path,
                query,
                headers,
                token,
                body,
                framing,
            },
        );
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 1..300).prop_map(RestCase::Raw),
        1 => (0usize..3, 1usize..4)
            .prop_map(|(kind, k)| RestCase::Raw(match kind {
                0 => format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(k * 5_000)).into_bytes(),
                1 => format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(k * 7_000)).into_bytes(),
                _ => format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(k * 40)).into_bytes(),
            })),
        6 => request.prop_map(RestCase::Request),
    ]
}

/// Sends one REST case and checks its answer and its journal entry; then that the backend
/// still serves.
pub async fn run_rest_case(t: &Target, case: &RestCase) -> Result<(), String> {
    let before = t.journal.last_seq();
    let (bytes, head) = match case {
        RestCase::Raw(b) => (b.clone(), false),
        RestCase::Request(h) => (h.bytes(&t.token), h.method == "HEAD"),
    };
    let out = exchange(&t.rest_addr(), &bytes).await?;
    let only_blank = bytes.iter().all(|b| matches!(b, b'\r' | b'\n'));
    let answers = answers(&out, head)?;
    if answers.is_empty() && !only_blank {
        return Err("closed without an answer".into());
    }
    let journaled = t.facts_since(before);
    if journaled.is_empty() && !only_blank {
        return Err("nothing journaled".into());
    }
    // A refusal answers with the status it journaled.
    for r in refusals(&journaled) {
        if r.layer != Layer::Http || !answers.iter().any(|a| Some(a.status) == r.status) {
            return Err(format!("refusal {r:?} but answers {answers:?}"));
        }
        if r.detail.chars().count() > 201 {
            return Err(format!("an unbounded detail: {}", r.detail.len()));
        }
    }
    t.still_serves().await
}

// ---- WebSocket cases ----

/// One WebSocket frame, as hostile as it likes.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
    /// A length to announce instead of the payload's.
    pub announce: Option<u64>,
}

impl FrameSpec {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | ((self.rsv & 7) << 4) | (self.opcode & 15)];
        let len = self.announce.unwrap_or(self.payload.len() as u64);
        let mask_bit = u8::from(self.masked) << 7;
        match len {
            0..=125 => out.push(mask_bit | len as u8),
            126..=0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        if self.masked {
            out.extend_from_slice(&key);
        }
        out.extend(
            self.payload
                .iter()
                .enumerate()
                .map(|(i, b)| if self.masked { b ^ key[i % 4] } else { *b }),
        );
        out
    }
}

/// A WebSocket case: bytes at the handshake, a hostile handshake, or frames after a good one.
#[derive(Clone, Debug)]
pub enum WsCase {
    Raw(Vec<u8>),
    Handshake(Vec<(String, String)>, String),
    Frames(Vec<FrameSpec>),
    RawAfterHandshake(Vec<u8>),
}

fn frame() -> impl Strategy<Value = FrameSpec> {
    let payload = prop_oneof![
        Just(br#"{"type":"ping","nonce":7}"#.to_vec()),
        Just(vec![0xff, 0xfe, 0xfd]),
        prop::collection::vec(any::<u8>(), 0..130),
    ];
    (
        prop::bool::weighted(0.8),
        prop_oneof![6 => Just(0u8), 1 => 1u8..8],
        prop_oneof![3 => Just(1u8), 2 => Just(2u8), 1 => Just(0u8), 1 => 3u8..8, 1 => 8u8..16],
        prop::bool::weighted(0.85),
        payload,
        prop_oneof![8 => Just(None), 1 => (70_000u64..1 << 40).prop_map(Some)],
    )
        .prop_map(|(fin, rsv, opcode, masked, payload, announce)| FrameSpec {
            fin,
            rsv,
            opcode,
            masked,
            payload,
            announce,
        })
}

/// Every kind of WebSocket case.
pub fn ws_case() -> impl Strategy<Value = WsCase> {
    let header = prop_oneof![
        Just(("Upgrade".to_owned(), "websocket".to_owned())),
        Just(("Connection".to_owned(), "Upgrade".to_owned())),
        Just(("Sec-WebSocket-Version".to_owned(), "13".to_owned())),
        "[0-9]{1,3}".prop_map(|v| ("Sec-WebSocket-Version".to_owned(), v)),
        Just((
            "Sec-WebSocket-Key".to_owned(),
            "dGhlIHNhbXBsZSBub25jZQ==".to_owned()
        )),
        "[A-Za-z0-9+/=]{0,30}".prop_map(|v| ("Sec-WebSocket-Key".to_owned(), v)),
        "[ -~]{0,20}".prop_map(|v| ("Upgrade".to_owned(), v)),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 1..200).prop_map(WsCase::Raw),
        2 => (
            prop::collection::vec(header, 0..6),
            prop_oneof![Just("GET".to_owned()), Just("POST".to_owned()), "[A-Z]{1,7}"],
        )
            .prop_map(|(h, m)| WsCase::Handshake(h, m)),
        5 => prop::collection::vec(frame(), 1..4).prop_map(WsCase::Frames),
        1 => prop::collection::vec(any::<u8>(), 1..100).prop_map(WsCase::RawAfterHandshake),
    ]
}

/// The close code of the first close frame among the server's frames in `out`, if any.
pub fn close_code(mut out: &[u8]) -> Option<u16> {
    while out.len() >= 2 {
        let opcode = out[0] & 15;
        let (len, at) = match out[1] & 127 {
            126 if out.len() >= 4 => (u64::from(u16::from_be_bytes([out[2], out[3]])), 4),
            127 if out.len() >= 10 => (
                u64::from_be_bytes(out[2..10].try_into().unwrap_or_default()),
                10,
            ),
            n @ 0..=125 => (u64::from(n), 2),
            _ => return None,
        };
        let len = usize::try_from(len).ok()?;
        let payload = out.get(at..at + len)?;
        if opcode == 8 {
            return Some(match payload {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 1005,
            });
        }
        out = &out[at + len..];
    }
    None
}

/// Sends one WebSocket case and checks the handshake's answer or the socket's close and the
/// journal; then that the backend still serves.
pub async fn run_ws_case(t: &Target, case: &WsCase) -> Result<(), String> {
    let before = t.journal.last_seq();
    let addr = t.events_addr();
    // A client's own close frame is echoed with its code: only then may a 1002/1007/1009 come
    // without a refusal.
    let client_may_close = match case {
        WsCase::Frames(frames) => frames.iter().any(|f| f.opcode == 8),
        _ => true,
    };
    let frames = match case {
        WsCase::Raw(bytes) => {
            let out = exchange(&addr, bytes).await?;
            let only_blank = bytes.iter().all(|b| matches!(b, b'\r' | b'\n'));
            let answers = answers(&out, false)?;
            if answers.is_empty() && !only_blank {
                return Err("closed without an answer".into());
            }
            if t.facts_since(before).is_empty() && !only_blank {
                return Err("nothing journaled".into());
            }
            return t.still_serves().await;
        }
        WsCase::Handshake(headers, method) => {
            let mut req = format!("{method} /v1/events HTTP/1.1\r\nHost: x\r\n");
            req.push_str(&format!("X-Twilio-Token: {}\r\n", t.token));
            for (n, v) in headers {
                req.push_str(&format!("{n}: {v}\r\n"));
            }
            req.push_str("\r\n");
            let out = exchange(&addr, req.as_bytes()).await?;
            if out.starts_with(b"HTTP/1.1 101") {
                // A valid upgrade after all: it must be journaled as connected.
                let connected = t
                    .facts_since(before)
                    .iter()
                    .any(|e| matches!(e.kind, EntryKind::Backend(Fact::Connected { .. })));
                return if connected {
                    t.still_serves().await
                } else {
                    Err("upgraded but not journaled".into())
                };
            }
            let answers = answers(&out, method == "HEAD")?;
            if answers.len() != 1 || t.facts_since(before).is_empty() {
                return Err(format!("answers {answers:?}, or nothing journaled"));
            }
            return t.still_serves().await;
        }
        WsCase::Frames(frames) => frames.iter().flat_map(FrameSpec::encode).collect(),
        WsCase::RawAfterHandshake(bytes) => bytes.clone(),
    };
    let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    s.write_all(t.upgrade("/v1/events", true).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::time::timeout(ANSWER_WITHIN, s.read_exact(&mut b))
            .await
            .map_err(|_| "no handshake answer")?
            .map_err(|e| e.to_string())?;
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("handshake refused: {}", lossy(&head)));
    }
    let out = exchange_on(&mut s, &frames).await?;
    let code = close_code(&out);
    // Every connection ends journaled; give the hub a moment to notice the close.
    let mut journaled = t.facts_since(before);
    for _ in 0..200 {
        if journaled
            .iter()
            .any(|e| matches!(e.kind, EntryKind::Backend(Fact::Disconnected { .. })))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        journaled = t.facts_since(before);
    }
    if !journaled
        .iter()
        .any(|e| matches!(e.kind, EntryKind::Backend(Fact::Disconnected { .. })))
    {
        return Err("the connection's end was not journaled".into());
    }
    let refused = refusals(&journaled);
    match (refused.as_slice(), code) {
        ([], Some(1002 | 1007 | 1009)) if !client_may_close => {
            return Err(format!("closed with {code:?} but nothing refused"));
        }
        ([], _) => {}
        ([r], Some(c)) if r.layer == Layer::WebSocket && r.close_code == Some(c) => {}
        (r, c) => return Err(format!("refusals {r:?} but close code {c:?}")),
    }
    t.still_serves().await
}

/// How many cases to run: `default`, or `CONVO_TCK_FUZZ_CASES` (REST cases; WebSocket cases are
/// half as many) when set.
pub fn case_count(default: u32, ws: bool) -> u32 {
    let n = std::env::var("CONVO_TCK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    match (n, ws) {
        (Some(n), true) => (n / 2).max(1),
        (Some(n), false) => n.max(1),
        (None, _) => default,
    }
}
