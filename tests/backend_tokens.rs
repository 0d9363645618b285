//! The backend's token lifecycle, for real on loopback: the generator mints what it is asked
//! for and journals it; the service refuses lifetimes under 3 minutes (20104) and over 24 hours
//! (20157) where a token is used; an open channel warns 3 minutes before expiry, takes a new
//! token without reconnecting, and closes with 4410 at expiry; an expired token gets 401 with
//! a Twilio error body; a token in a URL is refused and journaled as such.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, Fact, TokenNotice};
use convo_tck::journal::{EntryKind, Journal};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Asks the generator for a token of `ttl` seconds; returns it and the journaled answer.
async fn generate(backend: &Backend, identity: &str, ttl: u64) -> String {
    let answer: Value = reqwest::Client::new()
        .post(backend.token_url())
        .form(&[("identity", identity), ("ttl", &ttl.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().expect("a token").to_owned()
}

async fn open(backend: &Backend, token: &str) -> Result<Socket, String> {
    let mut req = backend.events_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("x-twilio-token", token.parse().unwrap());
    req.headers_mut()
        .insert("x-convo-client", "tok-1".parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The next message: a text frame as JSON, or the close code.
async fn next(ws: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Some(Ok(Message::Close(c)))) => return Err(c.map(|c| u16::from(c.code))),
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Err(None),
            Err(_) => panic!("no frame within 10 s"),
        }
    }
}

/// Pings; returns everything that came before the pong.
async fn until_pong(ws: &mut Socket, nonce: u64) -> Vec<Value> {
    let ping = json!({"type": "ping", "nonce": nonce}).to_string();
    ws.send(Message::text(ping)).await.unwrap();
    let mut before = Vec::new();
    loop {
        let frame = next(ws).await.expect("the socket stays open");
        if frame == json!({"type": "pong", "nonce": nonce}) {
            return before;
        }
        before.push(frame);
    }
}

fn token_facts(journal: &Journal) -> Vec<(TokenNotice, Option<u32>)> {
    journal
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Backend(Fact::Token(t)) => Some((t.notice, t.code)),
            _ => None,
        })
        .collect()
}

async fn get_user(backend: &Backend, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/Users/alice", backend.rest_url()))
        .header("x-twilio-token", token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_generator_mints_any_lifetime_and_journals_it_and_the_service_refuses_out_of_range() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let short = generate(&backend, "alice", 120).await;
    let capped = generate(&backend, "alice", 2 * 86_400).await;
    let good = generate(&backend, "alice", 4 * 3600).await;
    let issued: Vec<(Option<u64>, u64)> = journal
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Backend(Fact::Request(r)) => r.issued.map(|i| (i.ttl_asked, i.ttl)),
            _ => None,
        })
        .collect();
    assert_eq!(
        issued,
        [
            (Some(120), 120),
            (Some(172_800), 86_400),
            (Some(14_400), 14_400)
        ]
    );
    let (status, body) = get_user(&backend, &short).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (401, Some(20_104)),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("3-minute"),
        "{body}"
    );
    assert_eq!(get_user(&backend, &capped).await.0, 200);
    assert_eq!(get_user(&backend, &good).await.0, 200);
    backend.force_token_ttl(Some(Duration::from_secs(2 * 86_400)));
    let long = generate(&backend, "alice", 3600).await;
    let (status, body) = get_user(&backend, &long).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (401, Some(20_157)),
        "{body}"
    );
    backend.force_token_ttl(None);
    let refused = open(&backend, &short).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");

    // A scenario can make the generator mint a fixed lifetime whatever it is asked.
    backend.force_token_ttl(Some(Duration::from_secs(120)));
    let forced = generate(&backend, "alice", 4 * 3600).await;
    assert_eq!(get_user(&backend, &forced).await.0, 401);
    let last = journal
        .snapshot()
        .into_iter()
        .rev()
        .find_map(|e| match e.kind {
            EntryKind::Backend(Fact::Request(r)) => r.issued,
            _ => None,
        })
        .unwrap();
    assert_eq!((last.ttl_asked, last.ttl), (Some(14_400), 120));
}

#[tokio::test]
async fn an_open_channel_warns_three_minutes_ahead_takes_a_new_token_and_closes_at_expiry() {
    let (backend, journal, clock) = scene::journaled_backend().await;
    let first = generate(&backend, "alice", 3600).await;
    let mut ws = open(&backend, &first).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
    clock.advance(Duration::from_secs(3600 - 181));
    assert!(until_pong(&mut ws, 1).await.is_empty());
    clock.advance(Duration::from_secs(1));
    let warned = until_pong(&mut ws, 2).await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0]["type"], "token_about_to_expire");
    assert_eq!(warned[0]["expires_at"], "2026-01-01T01:00:00Z");
    // Warned once only.
    assert!(until_pong(&mut ws, 3).await.is_empty());

    // Another identity's token, or an expired one, is refused and the old one still governs.
    let bobs = generate(&backend, "bob", 3600).await;
    ws.send(Message::text(
        json!({"type": "update_token", "token": bobs}).to_string(),
    ))
    .await
    .unwrap();
    let answer = next(&mut ws).await.unwrap();
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_u64()),
        (Some("token_rejected"), Some(20_103)),
        "{answer}"
    );
    let second = generate(&backend, "alice", 7200).await;
    ws.send(Message::text(
        json!({"type": "update_token", "token": second}).to_string(),
    ))
    .await
    .unwrap();
    let answer = next(&mut ws).await.unwrap();
    assert_eq!(answer["type"], "token_updated", "{answer}");
    // Past the first token's expiry: nothing happens, the channel runs on the second.
    clock.advance(Duration::from_secs(600));
    assert!(until_pong(&mut ws, 4).await.is_empty());
    // The second is warned about, then expires: the socket closes with 4410.
    clock.advance(Duration::from_secs(7200 - 600 - 180));
    let warned = until_pong(&mut ws, 5).await;
    assert_eq!(warned[0]["type"], "token_about_to_expire", "{warned:?}");
    clock.advance(Duration::from_secs(180));
    let ping = json!({"type": "ping", "nonce": 6}).to_string();
    ws.send(Message::text(ping)).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "token_expired");
    assert_eq!(next(&mut ws).await.unwrap_err(), Some(4410));
    assert_eq!(
        token_facts(&journal),
        [
            (TokenNotice::AboutToExpire, None),
            (TokenNotice::Rejected, Some(20_103)),
            (TokenNotice::Updated, None),
            (TokenNotice::AboutToExpire, None),
            (TokenNotice::Expired, None),
        ]
    );
    // And the expired token gets a Twilio error body on REST.
    let (status, body) = get_user(&backend, &second).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20_104)));
    assert_eq!(body["status"], 401);
    assert!(body["more_info"].as_str().is_some(), "{body}");
}

#[tokio::test]
async fn a_warning_is_sent_when_virtual_time_passes_without_any_ping() {
    let (backend, _journal, clock) = scene::journaled_backend().await;
    let token = generate(&backend, "alice", 600).await;
    let mut ws = open(&backend, &token).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
    clock.advance(Duration::from_secs(500));
    assert_eq!(
        next(&mut ws).await.unwrap()["type"],
        "token_about_to_expire"
    );
}

#[tokio::test]
async fn a_token_in_a_url_is_refused_and_journaled_as_such() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let token = generate(&backend, "alice", 3600).await;
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v1/Users/alice?token={token}",
            backend.rest_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let mut req = format!("{}?access_token={token}", backend.events_url())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-twilio-token", token.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let flagged: Vec<_> = journal
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Backend(Fact::Request(r)) if r.token_in_url => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    // The journal has the fingerprint, never the token.
    let text = serde_json::to_string(&journal.snapshot()).unwrap();
    assert!(!text.contains(&token));
    assert!(flagged.iter().all(|r| r.token.is_some()));
    // A page token is no credential.
    reqwest::Client::new()
        .get(format!(
            "{}/v1/Users/alice/Conversations?PageSize=1&PageToken=PT1",
            backend.rest_url()
        ))
        .header("x-twilio-token", &token)
        .send()
        .await
        .unwrap();
    let last = journal
        .snapshot()
        .into_iter()
        .rev()
        .find_map(|e| match e.kind {
            EntryKind::Backend(Fact::Request(r)) => Some(r),
            _ => None,
        })
        .unwrap();
    assert!(!last.token_in_url, "{last:?}");
}
