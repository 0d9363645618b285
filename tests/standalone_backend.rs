//! `convo-tck backend` as a vendor runs it: a child process that prints its URLs, serves the
//! mock service and a control API on loopback, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The backend as a child process, killed if a test fails before it stops it.
struct Served {
    child: Child,
    urls: Value,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .arg("backend")
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("convo-tck starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let urls: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the first line is one JSON object ({e}): {line:?}"));
    Served { child, urls }
}

impl Served {
    fn url(&self, key: &str) -> String {
        self.urls[key]
            .as_str()
            .unwrap_or_else(|| panic!("no `{key}` in {}", self.urls))
            .to_owned()
    }

    fn port_of(&self, key: &str) -> u16 {
        url::Url::parse(&self.url(key))
            .unwrap()
            .port()
            .expect("an explicit port")
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit; returns its stderr.
    fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit 20 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

async fn control(http: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn mint(http: &reqwest::Client, token_url: &str, ttl: u64) -> String {
    let r = http
        .post(token_url)
        .form(&[("identity", "alice"), ("ttl", &ttl.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_vendor_drives_the_standalone_backend_by_hand_and_stops_it() {
    let mut served = start(&["--conversations", "60", "--seed", "7"]);
    for key in ["account_sid", "auth_token", "example"] {
        assert!(served.urls[key].is_string(), "{key} in {}", served.urls);
    }
    assert!(served.url("account_sid").starts_with("AC"));
    assert_eq!(served.url("auth_token").len(), 32);
    let rest = served.url("rest_url");
    let token_url = served.url("token_url");
    let ctl = served.url("control_url");
    for key in ["rest_url", "token_url", "control_url"] {
        assert!(served.url(key).starts_with("http://127.0.0.1:"), "{key}");
    }
    assert!(served.url("events_url").starts_with("ws://127.0.0.1:"));
    assert_eq!(
        served.url("example"),
        format!("curl -X POST {token_url} -d identity=alice -d ttl=3600")
    );
    let http = reqwest::Client::new();

    // A token, then alice's conversations: the fixture's three and the 60 seeded.
    let token = mint(&http, &token_url, 3600).await;
    let list = format!("{rest}/v1/Users/alice/Conversations");
    let get = |token: String| {
        let http = http.clone();
        let list = list.clone();
        async move {
            http.get(list)
                .header("X-Twilio-Token", token)
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(token.clone()).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert!(!page["conversations"].as_array().unwrap().is_empty());
    let (status, state) = control(&http, &ctl, "/state", json!({})).await;
    assert_eq!(status, 405, "{state}");
    let state: Value = http
        .get(format!("{ctl}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["conversations"].as_array().unwrap().len(), 63);
    let alice = &state["users"].as_array().unwrap()[0];
    assert_eq!(alice["identity"], "alice");
    assert_eq!(alice["subscribed"], 63);

    // A closed gate answers 503; opened, the list is served again.
    let gate = json!({"gate": "endpoint", "endpoint": "user_conversations"});
    let (status, body) = control(&http, &ctl, "/gates/close", gate.clone()).await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    let r = get(token.clone()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let (status, body) = control(&http, &ctl, "/gates/open", gate).await;
    assert_eq!((status, &body["was_closed"]), (200, &json!(true)), "{body}");
    assert_eq!(get(token.clone()).await.status(), 200);

    // Bad input is a 400 that says what is wrong.
    let (status, body) = control(&http, &ctl, "/gates/close", json!({"gate": "nope"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    let (status, body) = control(&http, &ctl, "/clock/advance", json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = control(&http, &ctl, "/hold", json!({"object": "user:nobody"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = control(&http, &ctl, "/outage", json!({"outage": "flood"})).await;
    assert_eq!(status, 400, "{body}");

    // An outage refuses connections; a restore serves on the same port again.
    let (status, body) = control(&http, &ctl, "/outage", json!({"outage": "refuse"})).await;
    assert_eq!((status, &body["outage"]), (200, &json!("refuse")), "{body}");
    let refused = reqwest::Client::new()
        .get(&list)
        .header("X-Twilio-Token", token.clone())
        .send()
        .await
        .expect_err("refused during the outage");
    assert!(refused.is_connect(), "{refused}");
    let (status, body) = control(&http, &ctl, "/restore", json!({})).await;
    assert_eq!(
        (status, &body["restored"]),
        (200, &json!("refuse")),
        "{body}"
    );
    assert_eq!(get(token.clone()).await.status(), 200);

    // Other writers and held events.
    let (status, body) = control(&http, &ctl, "/hold", json!({"object": "general"})).await;
    assert_eq!(status, 200, "{body}");
    let update = json!({"object": "general", "attributes": {"topic": "changed"}});
    let (status, body) = control(&http, &ctl, "/external-update", update).await;
    assert_eq!((status, &body["revision"]), (200, &json!(2)), "{body}");
    let post = json!({"conversation": "general", "author": "bob", "body": "by hand"});
    let (status, body) = control(&http, &ctl, "/messages", post).await;
    assert_eq!((status, &body["index"]), (200, &json!(2)), "{body}");
    let (status, body) = control(&http, &ctl, "/release", json!({"object": "general"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["events"].as_u64().unwrap() >= 1, "{body}");
    let remove = json!({"conversation": "random"});
    let (status, body) = control(&http, &ctl, "/conversations/remove", remove.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = control(&http, &ctl, "/conversations/restore", remove).await;
    assert_eq!(status, 200, "{body}");

    // Virtual time: a token of the shortest lifetime expires when the clock passes it.
    let short = mint(&http, &token_url, 180).await;
    assert_eq!(get(short.clone()).await.status(), 200);
    let (status, body) = control(&http, &ctl, "/clock/advance", json!({"secs": 181})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["now_rfc3339"], "2026-01-01T00:03:01Z");
    let r = get(short.clone()).await;
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], 20104, "{err}");

    // The journal has it all, and no token or credential.
    let journal = http
        .get(format!("{ctl}/journal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(journal.contains("gate_closed"), "{journal:.2000}");
    assert!(journal.contains("time_passed"), "{journal:.2000}");
    for secret in [&token, &short, &served.url("auth_token")] {
        assert!(!journal.contains(secret.as_str()));
    }
    let since: Value = http
        .get(format!("{ctl}/journal?since=100000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(since["entries"], json!([]));

    // SIGTERM: exit 0, a message, every port closed.
    let ports = ["rest_url", "events_url", "control_url"].map(|k| served.port_of(k));
    let (status, stderr) = served.terminate();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopped on SIGTERM"), "{stderr}");
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}

#[test]
fn an_unknown_fixture_is_an_error_naming_the_available_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .args(["backend", "--fixture", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no fixture `nope`") && err.contains("basic"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_taken_control_port_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_convo-tck"))
        .args(["backend", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bind the control API"), "{err}");
}
