//! The backend's twilsock face, driven by a minimal twilsock v3 client written here (not the
//! SDK): framing, `init`, the client API and Sync calls answered as the v1 endpoints they amount
//! to (and journaled as those), notifications on subscribed objects only, replay after
//! `last_event_id`, held events, acknowledgements and the settle barrier, token
//! about-to-expire, `update`, expiry (close 410) and a refused `init`.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, Endpoint, Fact};
use convo_tck::journal::{EntryKind, Journal};
use convo_tck::wire::ObjectKey;
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn encode(header: Value, payload: Option<Value>) -> Vec<u8> {
    let body = payload.map(|p| p.to_string()).unwrap_or_default();
    let mut header = header;
    header["payload_size"] = json!(body.len());
    if !body.is_empty() {
        header["payload_type"] = json!("application/json");
    }
    let h = header.to_string();
    let mut out = format!("TWILSOCK V3.0 {}\r\n{h}\r\n", h.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> (Map<String, Value>, Value) {
    let eol = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
    let first = std::str::from_utf8(&bytes[..eol]).unwrap();
    let size: usize = first
        .strip_prefix("TWILSOCK V3.0 ")
        .unwrap()
        .parse()
        .unwrap();
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes[eol + 2..eol + 2 + size]).unwrap();
    let n = header["payload_size"].as_u64().unwrap_or(0) as usize;
    let at = eol + 2 + size + 2;
    let payload = if n == 0 {
        Value::Null
    } else {
        serde_json::from_slice(&bytes[at..at + n]).unwrap()
    };
    (header, payload)
}

struct Client {
    ws: Socket,
    next: u64,
    /// Frames read while waiting for something else.
    pending: Vec<(Map<String, Value>, Value)>,
}

impl Client {
    async fn connect(backend: &Backend, instance: &str) -> Self {
        let url = format!("{}?client={instance}", backend.twilsock_url());
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Self {
            ws,
            next: 0,
            pending: Vec::new(),
        }
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("TM{}", self.next)
    }

    async fn send(&mut self, header: Value, payload: Option<Value>) {
        self.ws
            .send(Message::binary(encode(header, payload)))
            .await
            .unwrap();
    }

    /// The next frame, or `None` once the socket closed.
    async fn frame(&mut self) -> Option<(Map<String, Value>, Value)> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => return Some(decode(&b)),
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return None,
                Ok(Some(Ok(_))) => continue,
                Err(_) => panic!("no frame within 10 s"),
            }
        }
    }

    /// Sends a request; returns the reply (other frames are kept for later).
    async fn call(&mut self, header: Value, payload: Option<Value>) -> (Map<String, Value>, Value) {
        let id = self.id();
        let mut header = header;
        header["id"] = json!(id);
        self.send(header, payload).await;
        loop {
            let f = match tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => decode(&b),
                Ok(Some(Ok(_))) => continue,
                other => panic!("no reply: {other:?}"),
            };
            if f.0["method"] == "reply" && f.0["id"] == json!(id) {
                return f;
            }
            self.pending.push(f);
        }
    }

    async fn http(
        &mut self,
        method: &str,
        path: &str,
        params: Value,
        body: Option<Value>,
    ) -> (u64, Value) {
        let (h, p) = self
            .call(
                json!({"method": "message", "active_grant": "ip_messaging",
                       "http_request": {"host": "x.test", "path": path, "method": method, "params": params, "headers": {}}}),
                body,
            )
            .await;
        (h["http_status"]["code"].as_u64().unwrap(), p)
    }

    async fn init(&mut self, token: &str) -> Map<String, Value> {
        self.call(
            json!({"method": "init", "token": token, "continuation_token": null,
                   "capabilities": ["client_update", "offline_storage", "telemetry.v1"]}),
            None,
        )
        .await
        .0
    }

    /// Acknowledges a server frame.
    async fn ack(&mut self, header: &Map<String, Value>) {
        self.send(
            json!({"method": "reply", "id": header["id"], "status": {"code": 200, "status": "OK"}}),
            None,
        )
        .await;
    }

    /// The next notification (acknowledged).
    async fn notification(&mut self) -> (String, Value) {
        loop {
            let (h, p) = self.frame().await.expect("the socket stays open");
            self.ack(&h).await;
            if h["method"] == "notification" {
                return (h["message_type"].as_str().unwrap().to_owned(), p);
            }
        }
    }
}

async fn token(backend: &Backend, identity: &str, ttl: u64) -> String {
    let answer: Value = reqwest::Client::new()
        .post(backend.token_url())
        .form(&[("identity", identity), ("ttl", &ttl.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_owned()
}

async fn settle(backend: &Backend, instance: &str) -> Value {
    let url = backend.twilsock_url().replace("ws://", "http://").replace(
        "/v3/wsconnect",
        &format!("/v3/kit/settle?client={instance}"),
    );
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

fn endpoints(journal: &Journal, instance: &str) -> Vec<(Endpoint, u16)> {
    journal
        .snapshot()
        .into_iter()
        .filter(|e| e.instance.as_ref().is_some_and(|i| i.as_str() == instance))
        .filter_map(|e| match e.kind {
            EntryKind::Backend(Fact::Request(r)) => Some((r.endpoint, r.status)),
            _ => None,
        })
        .collect()
}

fn frames(journal: &Journal, instance: &str) -> Vec<u64> {
    journal
        .snapshot()
        .into_iter()
        .filter(|e| e.instance.as_ref().is_some_and(|i| i.as_str() == instance))
        .filter_map(|e| match e.kind {
            EntryKind::Backend(Fact::Frame(f)) => Some(f.event_seq),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn calls_are_the_v1_endpoints_and_notifications_follow_subscriptions() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let tok = token(&backend, "alice", 3600).await;
    let mut c = Client::connect(&backend, "tw-1").await;
    let reply = c.init(&tok).await;
    assert_eq!(reply["status"]["code"], 200, "{reply:?}");
    assert!(reply["offline_storage"]["ip_messaging"]["storage_id"].is_string());
    assert_eq!(
        reply["capabilities"],
        json!(["client_update", "offline_storage"])
    );

    let (status, config) = c
        .http("GET", "/Client/v2/Configuration", json!({}), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        config["sync_objects"]["my_conversations"],
        "MP_myconvs_alice"
    );
    let (status, page) = c
        .http(
            "GET",
            "/Client/v2/Users/alice/Conversations",
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let sid = page["conversations"][0]["conversation_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        page["conversations"][0]["sync_objects"]["conversation"],
        format!("ET{sid}")
    );
    assert_eq!(page["meta"]["next_token"], Value::Null);

    let (status, doc) = c
        .http("GET", &format!("/v3/Documents/ET{sid}"), json!({}), None)
        .await;
    assert_eq!(status, 200);
    let seen = doc["last_event_id"].as_u64().unwrap();
    let (status, list) = c
        .http("GET", &format!("/v3/Lists/ES{sid}"), json!({}), None)
        .await;
    assert_eq!(
        (status, list["sid"].as_str()),
        (200, Some(format!("ES{sid}").as_str()))
    );

    // Not subscribed yet: an update is acknowledged, its event is not sent.
    let (status, _) = c
        .http(
            "POST",
            &format!("/Client/v2/Conversations/{sid}"),
            json!({}),
            Some(json!({"attributes": "{\"a\":1}"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(settle(&backend, "tw-1").await["notifications"], 0);
    assert!(frames(&journal, "tw-1").is_empty());

    // Subscribing from the document's last event id replays it, then confirms.
    let (status, _) = c
        .http("POST", "/v4/Subscriptions", json!({}), Some(json!({"action": "establish", "correlation_id": 7,
            "requests": [{"object_sid": format!("ET{sid}"), "object_type": "document", "last_event_id": seen}]})))
        .await;
    assert_eq!(status, 202);
    let (kind, event) = c.notification().await;
    assert_eq!(kind, "com.twilio.rtd.cds.document");
    assert_eq!(event["event_type"], "document_updated");
    assert_eq!(event["event"]["document_data"]["attributes"], "{\"a\":1}");
    let replayed = event["event"]["id"].as_u64().unwrap();
    assert!(replayed > seen);
    let (kind, confirm) = c.notification().await;
    assert_eq!(kind, "twilio.sync.event");
    assert_eq!(confirm["event_type"], "subscription_established");
    assert_eq!(confirm["events"][0]["last_event_id"], replayed);
    assert_eq!(
        frames(&journal, "tw-1"),
        [replayed],
        "the frame is journaled as the v1 hub's"
    );

    // Held: acknowledged at once, announced only on release.
    let key = ObjectKey::Conversation(sid.as_str().into());
    backend.hold(key.clone());
    let (status, _) = c
        .http(
            "POST",
            &format!("/Client/v2/Conversations/{sid}"),
            json!({}),
            Some(json!({"attributes": "{\"a\":2}"})),
        )
        .await;
    assert_eq!(status, 200);
    let quiet = settle(&backend, "tw-1").await;
    assert_eq!(quiet["notifications"], 1, "{quiet}");
    assert_eq!(backend.release(&key), 1);
    let (_, event) = c.notification().await;
    assert_eq!(event["event"]["document_data"]["attributes"], "{\"a\":2}");
    assert_eq!(settle(&backend, "tw-1").await["notifications"], 2);

    // A second socket resuming from the first event id gets the second event only.
    let mut d = Client::connect(&backend, "tw-2").await;
    assert_eq!(d.init(&tok).await["status"]["code"], 200);
    d.http("POST", "/v4/Subscriptions", json!({}), Some(json!({"action": "establish", "correlation_id": 8,
        "requests": [{"object_sid": format!("ET{sid}"), "object_type": "document", "last_event_id": replayed}]})))
        .await;
    let (_, event) = d.notification().await;
    assert_eq!(event["event"]["document_data"]["attributes"], "{\"a\":2}");
    assert!(event["event"]["id"].as_u64().unwrap() > replayed);

    let seen: Vec<Endpoint> = endpoints(&journal, "tw-1")
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(seen[0], Endpoint::EventChannel);
    assert_eq!(seen[1], Endpoint::Configuration);
    assert!(matches!(
        &seen[2],
        Endpoint::UserConversations {
            page: 0,
            last: true,
            ..
        }
    ));
    assert!(matches!(&seen[3], Endpoint::GetConversation { .. }));
    assert!(matches!(&seen[4], Endpoint::SyncObject { object } if object == &format!("ES{sid}")));
    assert!(matches!(&seen[5], Endpoint::UpdateConversation { .. }));
    assert_eq!(seen[6], Endpoint::Subscriptions);
}

#[tokio::test]
async fn tokens_warn_update_expire_and_refuse_as_twilsock_does() {
    let (backend, journal, clock) = scene::journaled_backend().await;
    let tok = token(&backend, "alice", 3600).await;
    let mut c = Client::connect(&backend, "tw-1").await;
    assert_eq!(c.init(&tok).await["status"]["code"], 200);
    clock.advance(Duration::from_secs(3600 - 180));
    let (h, _) = c.frame().await.expect("a warning");
    assert_eq!(
        (h["method"].as_str(), h["client_update_type"].as_str()),
        (Some("client_update"), Some("token_about_to_expire"))
    );
    c.ack(&h).await;
    let fresh = token(&backend, "alice", 3600).await;
    let (reply, _) = c
        .call(json!({"method": "update", "token": fresh}), None)
        .await;
    assert_eq!(reply["status"]["code"], 200, "{reply:?}");
    // The old expiry passes quietly; the new one closes the channel with 410.
    clock.advance(Duration::from_secs(600));
    assert_eq!(settle(&backend, "tw-1").await["sockets"], 1);
    clock.advance(Duration::from_secs(3600));
    let mut closed = None;
    while let Some((h, _)) = c.frame().await {
        if h["method"] == "close" {
            closed = Some(h["status"]["code"].clone());
        }
    }
    assert_eq!(closed, Some(json!(410)));
    // An expired token is refused at init with 20104.
    let mut d = Client::connect(&backend, "tw-2").await;
    let reply = d.init(&tok).await;
    assert_eq!(
        (
            reply["status"]["code"].clone(),
            reply["status"]["errorCode"].clone()
        ),
        (json!(401), json!(20104))
    );
    assert_eq!(endpoints(&journal, "tw-2"), [(Endpoint::EventChannel, 401)]);
}

#[tokio::test]
async fn garbage_frames_are_refused_and_journaled() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let mut c = Client::connect(&backend, "tw-1").await;
    c.ws.send(Message::binary(b"hello".to_vec())).await.unwrap();
    assert!(c.frame().await.is_none(), "the socket is closed");
    let refused = journal
        .snapshot()
        .into_iter()
        .any(|e| matches!(e.kind, EntryKind::Backend(Fact::Refused(_))));
    assert!(refused);
}

#[tokio::test]
async fn the_conversation_map_pages_in_key_order_from_an_inclusive_key() {
    let (backend, journal, _) = scene::journaled_backend().await;
    backend.seed_conversations("s", 5, &["alice".to_owned()]);
    // The v1 list's order does not matter to a Sync map: it is paged by key.
    backend.set_list_order(convo_tck::backend::ListOrder::Activity);
    let tok = token(&backend, "alice", 3600).await;
    let mut c = Client::connect(&backend, "tw-1").await;
    assert_eq!(c.init(&tok).await["status"]["code"], 200);
    let keys = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = "/v3/Maps/MP_myconvs_alice/Items";
    let (_, first) = c
        .http("GET", path, json!({"PageSize": "3", "Order": "asc"}), None)
        .await;
    let first = keys(&first);
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(first, sorted, "a page is in key order");
    let (_, second) = c
        .http(
            "GET",
            path,
            json!({"PageSize": "6", "Order": "asc", "From": first[2]}),
            None,
        )
        .await;
    let second_keys = keys(&second);
    assert_eq!(second_keys[0], first[2], "From is inclusive");
    let mut all: Vec<String> = first
        .iter()
        .chain(second_keys.iter().skip(1))
        .cloned()
        .collect();
    let walked = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), walked, "no key twice");
    assert_eq!(
        walked,
        3 + 5,
        "every conversation of alice (3 of the fixture, 5 seeded)"
    );
    assert_eq!(second["meta"]["next_token"], false);
    let (_, desc) = c
        .http("GET", path, json!({"PageSize": "2", "Order": "desc"}), None)
        .await;
    assert_eq!(keys(&desc), [all[7].clone(), all[6].clone()]);
    // Journaled as the pages of alice's list walk.
    let pages: Vec<(u32, bool)> = endpoints(&journal, "tw-1")
        .into_iter()
        .filter_map(|(e, _)| match e {
            Endpoint::UserConversations { page, last, .. } => Some((page, last)),
            _ => None,
        })
        .collect();
    assert_eq!(pages, [(0, false), (1, true), (0, false)]);
}

#[tokio::test]
async fn registrar_calls_are_registrations_and_a_device_removal_removes_every_identity() {
    let (backend, journal, _) = scene::journaled_backend().await;
    let alice = token(&backend, "alice", 3600).await;
    let mut a = Client::connect(&backend, "tw-1").await;
    assert_eq!(a.init(&alice).await["status"]["code"], 200);
    let (status, reg) = a
        .http("POST", "/v1/registrations", json!({"productId": "ip_messaging"}),
              Some(json!({"channel_type": "fcm", "version": "3", "message_types": [], "data": {"registration_id": "fcm-device-1"}})))
        .await;
    assert_eq!(status, 201);
    assert!(reg["id"].as_str().unwrap().starts_with("BS"));
    assert_eq!(backend.bindings().len(), 1);
    let bob = token(&backend, "bob", 3600).await;
    let mut b = Client::connect(&backend, "tw-2").await;
    assert_eq!(b.init(&bob).await["status"]["code"], 200);
    let (status, _) = b
        .http(
            "DELETE",
            "/v1/registrations",
            json!({"productId": "ip_messaging"}),
            Some(json!({"binding_type": "fcm", "address": "fcm-device-1"})),
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        backend.bindings().is_empty(),
        "alice's registration of the device is gone"
    );
    let removed = journal.snapshot().into_iter().filter(|e| matches!(&e.kind,
        EntryKind::Backend(Fact::Binding(f)) if f.change == convo_tck::backend::BindingChange::Removed && f.identity == "alice")).count();
    assert_eq!(removed, 1);
    // Removing what is not there is done too.
    let (status, _) = b
        .http(
            "DELETE",
            "/v1/registrations",
            json!({}),
            Some(json!({"binding_type": "fcm", "address": "fcm-device-1"})),
        )
        .await;
    assert_eq!(status, 204);
}
