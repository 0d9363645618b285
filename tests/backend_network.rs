//! The backend's network outages, for real on loopback: refused with the ports kept (and served
//! again on the same numbers), half-open (accepted and dropped, each attempt journaled), and
//! silent sockets (no events, no heartbeat echo; the settle barrier still answers); events
//! published meanwhile replay exactly once from the resume point.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, Fact, Outage, Port};
use convo_tck::journal::{EntryKind, Journal};
use convo_tck::wire::ObjectKey;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(backend: &Backend, token: &str, since: Option<u64>) -> Result<Socket, String> {
    let url = match since {
        Some(s) => format!("{}?since={s}", backend.events_url()),
        None => backend.events_url().to_owned(),
    };
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("x-twilio-token", token.parse().unwrap());
    req.headers_mut()
        .insert("x-convo-client", "net-1".parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The next text frame, as JSON (`None` when the socket ended). Bounded by a generous safety
/// timeout: absence is shown with the barrier (`nothing_before_pong`), never by waiting.
async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return None,
            Err(_) => panic!("no frame within 10 s"),
        }
    }
}

/// Sends a ping: the hub answers after everything due, so a pong first means nothing was due.
async fn nothing_before_pong(ws: &mut Socket, nonce: u64) {
    let ping = json!({"type": "ping", "nonce": nonce}).to_string();
    ws.send(Message::text(ping)).await.unwrap();
    assert_eq!(
        next(ws).await.unwrap(),
        json!({"type": "pong", "nonce": nonce})
    );
}

fn facts(journal: &Journal) -> Vec<(Option<String>, Fact)> {
    journal
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Backend(f) => Some((e.instance.map(|i| i.to_string()), f)),
            EntryKind::Harness(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_refusing_outage_cuts_sockets_refuses_connections_and_comes_back_on_the_same_ports() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let token = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    let general = ObjectKey::Conversation(backend.conversation_sid("general").unwrap());
    let mut ws = open(&backend, &token, None).await.unwrap();
    let welcome = next(&mut ws).await.unwrap();
    assert_eq!(
        (welcome["type"].as_str(), welcome["seq"].as_u64()),
        (Some("welcome"), Some(0))
    );
    let (rest, events) = (
        backend.rest_url().to_owned(),
        backend.events_url().to_owned(),
    );

    backend.outage(Outage::Refuse).await.unwrap();
    assert_eq!(backend.current_outage().await, Some(Outage::Refuse));
    // The open socket was cut, and its close journaled before the outage call returned.
    assert!(matches!(
        ws.next().await,
        None | Some(Err(_)) | Some(Ok(Message::Close(_)))
    ));
    assert!(facts(&journal).iter().any(
        |(i, f)| i.as_deref() == Some("net-1") && matches!(f, Fact::Disconnected { socket: 1 })
    ));
    let refused = reqwest::Client::new()
        .get(format!("{rest}/v1/Users/alice"))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(refused.is_connect(), "{refused}");
    assert!(open(&backend, &token, None).await.is_err());
    // Published while nobody can connect.
    backend.external_update(&general, json!({"n": 1})).unwrap();

    backend.restore().await.unwrap();
    assert_eq!(
        (backend.rest_url(), backend.events_url()),
        (rest.as_str(), events.as_str())
    );
    let mut ws = open(&backend, &token, Some(0)).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
    let replayed = next(&mut ws).await.unwrap();
    assert_eq!(replayed["seq"], 1, "{replayed}");
    nothing_before_pong(&mut ws, 1).await;
    let controls: Vec<String> = journal
        .snapshot()
        .iter()
        .filter_map(|e| e.control().map(ToString::to_string))
        .collect();
    assert!(
        controls.iter().any(|c| c.contains("connections refused")),
        "{controls:?}"
    );
    assert!(
        controls.iter().any(|c| c == "network restored"),
        "{controls:?}"
    );
}

#[tokio::test]
async fn a_half_open_outage_accepts_drops_and_journals_every_attempt() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let token = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    backend.outage(Outage::Drop).await.unwrap();
    for _ in 0..3 {
        let err = open(&backend, &token, Some(4)).await.unwrap_err();
        assert!(!err.contains("refused"), "accepted, then dropped: {err}");
    }
    let r = reqwest::Client::new()
        .get(format!("{}/v1/Users/alice", backend.rest_url()))
        .header("x-convo-client", "net-1")
        .send()
        .await;
    assert!(r.is_err(), "no answer on a half-open network");
    let dropped: Vec<_> = facts(&journal)
        .into_iter()
        .filter_map(|(i, f)| match f {
            Fact::Dropped(d) => Some((i, d.port, d.target)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 4, "{dropped:?}");
    assert!(
        dropped[..3]
            .iter()
            .all(|(i, port, target)| i.as_deref() == Some("net-1")
                && *port == Port::Events
                && target.as_deref() == Some("/v1/events?since=4"))
    );
    assert_eq!(dropped[3].1, Port::Rest);
    // The token never lands in the journal.
    let text = serde_json::to_string(&journal.snapshot()).unwrap();
    assert!(!text.contains(&token));

    backend.restore().await.unwrap();
    let mut ws = open(&backend, &token, None).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
}

#[tokio::test]
async fn a_silenced_socket_delivers_nothing_and_echoes_no_heartbeat_but_answers_the_barrier() {
    let (backend, _journal, _) = scene::journaled_backend().await;
    let token = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    let general = ObjectKey::Conversation(backend.conversation_sid("general").unwrap());
    let mut ws = open(&backend, &token, None).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
    ws.send(Message::text(r#"{"type":"heartbeat","nonce":1}"#))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"type": "heartbeat", "nonce": 1})
    );

    backend.outage(Outage::Silence).await.unwrap();
    backend.external_update(&general, json!({"n": 1})).unwrap();
    ws.send(Message::text(r#"{"type":"heartbeat","nonce":2}"#))
        .await
        .unwrap();
    // No event, no heartbeat echo: only the barrier's pong.
    nothing_before_pong(&mut ws, 3).await;

    // A new socket is not silenced and replays what the old one swallowed.
    let mut fresh = open(&backend, &token, Some(0)).await.unwrap();
    assert_eq!(next(&mut fresh).await.unwrap()["type"], "welcome");
    assert_eq!(next(&mut fresh).await.unwrap()["seq"], 1);
    fresh
        .send(Message::text(r#"{"type":"heartbeat","nonce":4}"#))
        .await
        .unwrap();
    assert_eq!(next(&mut fresh).await.unwrap()["nonce"], 4);
    // Restoring does not wake the silenced socket: only its client can replace it.
    backend.restore().await.unwrap();
    backend.external_update(&general, json!({"n": 2})).unwrap();
    assert_eq!(next(&mut fresh).await.unwrap()["seq"], 2);
    nothing_before_pong(&mut ws, 5).await;
}
