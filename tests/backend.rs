//! The mock backend over real loopback HTTP and WebSocket: v1 shapes, Twilio-style errors,
//! gates, tokens on virtual time, and event replay.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, Endpoint, EndpointKind, Gate};
use convo_tck::clock::VirtualClock;
use convo_tck::journal::Journal;
use convo_tck::wire::ObjectKey;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Fx {
    backend: Backend,
    journal: Journal,
    clock: VirtualClock,
    http: reqwest::Client,
    token: String,
}

async fn fx() -> Fx {
    let (backend, journal, clock) = scene::journaled_backend().await;
    backend.seed_conversations("extra", 7, &["alice".into()]);
    let token = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    Fx {
        backend,
        journal,
        clock,
        http: reqwest::Client::new(),
        token,
    }
}

impl Fx {
    async fn get(&self, path_or_url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.backend.rest_url())
        };
        let r = self
            .http
            .get(url)
            .header("X-Twilio-Token", &self.token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }
}

fn assert_twilio_error(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    assert!(body["code"].is_u64(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(
        body["more_info"]
            .as_str()
            .unwrap()
            .starts_with("https://www.twilio.com/docs/errors/"),
        "{body}"
    );
}

#[tokio::test]
async fn the_subscribed_list_pages_with_the_v1_envelope_and_absolute_next_urls() {
    let fx = fx().await;
    let (status, _, page0) = fx.get("/v1/Users/alice/Conversations?PageSize=4").await;
    assert_eq!(status, 200);
    assert_eq!(page0["meta"]["key"], "conversations");
    assert_eq!(page0["meta"]["page"], 0);
    assert_eq!(page0["meta"]["page_size"], 4);
    assert_eq!(page0["conversations"].as_array().unwrap().len(), 4);
    let item = &page0["conversations"][0];
    for field in [
        "conversation_sid",
        "chat_service_sid",
        "account_sid",
        "user_sid",
        "attributes",
        "date_created",
        "url",
        "links",
    ] {
        assert!(item.get(field).is_some(), "missing {field} in {item}");
    }
    let mut sids: Vec<String> = Vec::new();
    let mut next = page0["meta"]["next_page_url"].as_str().map(str::to_owned);
    sids.extend(
        page0["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversation_sid"].as_str().unwrap().to_owned()),
    );
    while let Some(url) = next {
        assert!(
            url.starts_with(fx.backend.rest_url()),
            "next_page_url must be absolute: {url}"
        );
        let (_, _, page) = fx.get(&url).await;
        sids.extend(
            page["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["conversation_sid"].as_str().unwrap().to_owned()),
        );
        next = page["meta"]["next_page_url"].as_str().map(str::to_owned);
    }
    // basic has 3 conversations with alice, plus 7 seeded.
    assert_eq!(sids.len(), 10);
    let unique: std::collections::BTreeSet<_> = sids.iter().collect();
    assert_eq!(unique.len(), 10);
}

#[tokio::test]
async fn malformed_and_unknown_requests_get_twilio_errors_not_panics() {
    let fx = fx().await;
    let (status, _, body) = fx.get("/v1/Users/alice/Conversations?PageSize=500").await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400);
    let (status, _, body) = fx.get("/v1/Nope").await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404);
    let sid = fx.backend.conversation_sid("general").unwrap();
    let r = fx
        .http
        .post(format!("{}/v1/Conversations/{sid}", fx.backend.rest_url()))
        .header("X-Twilio-Token", &fx.token)
        .form(&[("Attributes", "{not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_twilio_error(&r.json().await.unwrap(), 400);
    let r = fx
        .http
        .post(format!(
            "{}/v1/Conversations/{sid}/Messages",
            fx.backend.rest_url()
        ))
        .header("X-Twilio-Token", &fx.token)
        .form(&[("Author", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a message without Body");
    assert_twilio_error(&r.json().await.unwrap(), 400);
    let (status, _, body) = fx
        .get("/v1/Users/alice/Conversations?PageToken=garbage")
        .await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400);
    let (status, _, body) = fx.get("/v1/Users/bob/Conversations").await;
    assert_eq!(status, 403, "alice's token cannot read bob's list");
    assert_twilio_error(&body, 403);
}

#[tokio::test]
async fn page_tokens_out_of_range_are_400s_and_the_journal_stays_readable() {
    let fx = fx().await;
    let list = "/v1/Users/alice/Conversations";
    for token in [
        "PA0_0_4294967295",
        "PB0_0_4294967295",
        "PA0_0_4294967296",
        "PA18446744073709551615_18446744073709551616_1",
        "PA0_0_100001",
        "PA0_+1_1",
    ] {
        let (status, _, body) = fx.get(&format!("{list}?PageToken={token}")).await;
        assert_eq!(status, 400, "{token}: {body}");
        assert_eq!(body["code"], 20_001, "{token}: {body}");
        assert_twilio_error(&body, 400);
    }
    // The largest page number a token may carry is served (an empty final page), and so is
    // its summary.
    let (status, _, body) = fx
        .get(&format!("{list}?PageToken=PA18446744073709551615_0_100000"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["page"], 100_000, "{body}");
    for e in fx.journal.snapshot() {
        let _ = e.summary();
    }
}

#[tokio::test]
async fn tokens_outside_three_minutes_to_a_day_are_refused_and_expire_on_virtual_time() {
    let fx = fx().await;
    // The generator mints what it is asked for (capped at a day); the service refuses lifetimes
    // outside 3 minutes..=24 hours where the token is used (tests/backend_tokens.rs).
    for (ttl, minted, works) in [
        ("0", false, false),
        ("120", true, false),
        ("3600", true, true),
        // Capped at a day by the generator.
        ("90000", true, true),
        ("700000", true, true),
    ] {
        let r = fx
            .http
            .post(fx.backend.token_url())
            .form(&[("identity", "alice"), ("ttl", ttl)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().is_success(), minted, "ttl {ttl}");
        if minted {
            let token: serde_json::Value = r.json().await.unwrap();
            let used = fx
                .http
                .get(format!("{}/v1/Users/alice", fx.backend.rest_url()))
                .header("x-twilio-token", token["token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(used.status().is_success(), works, "ttl {ttl}");
        }
    }
    fx.clock.advance(Duration::from_secs(3601));
    let (status, _, body) = fx.get("/v1/Users/alice").await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], 20_104);
}

#[tokio::test]
async fn a_gated_last_page_answers_503_with_retry_after_until_opened() {
    let fx = fx().await;
    fx.backend.close_gate(Gate::LastListPage {
        user: "alice".into(),
    });
    let (status, _, _) = fx.get("/v1/Users/alice/Conversations?PageSize=50").await;
    assert_eq!(status, 503);
    let (status, headers, _) = fx.get("/v1/Users/alice/Conversations?PageSize=50").await;
    assert_eq!(
        (
            status,
            headers.get("retry-after").unwrap().to_str().unwrap()
        ),
        (503, "1")
    );
    let (status, _, _) = fx.get("/v1/Users/alice/Conversations?PageSize=4").await;
    assert_eq!(
        status, 200,
        "the first of several pages is not the last page"
    );
    let gate = Gate::LastListPage {
        user: "alice".into(),
    };
    assert!(fx.backend.is_gated(&gate));
    fx.backend.open_gate(&gate);
    assert!(!fx.backend.is_gated(&gate));
    let (status, _, _) = fx.get("/v1/Users/alice/Conversations?PageSize=50").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_journal_fingerprints_tokens_and_never_stores_them() {
    let fx = fx().await;
    fx.get("/v1/Users/alice").await;
    let text = serde_json::to_string(&fx.journal.snapshot()).unwrap();
    assert!(!text.contains(&fx.token));
    assert!(text.contains("tok:"));
    let entries = fx.journal.snapshot();
    let request = entries.iter().rev().find_map(|e| e.request()).unwrap();
    assert_eq!(
        (&request.endpoint, request.status),
        (&Endpoint::GetUser, 200)
    );
}

async fn connect(fx: &Fx, since: Option<u64>) -> impl futures::Stream<Item = Value> {
    let url = match since {
        Some(s) => format!("{}?since={s}", fx.backend.events_url()),
        None => fx.backend.events_url().to_owned(),
    };
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("x-twilio-token", fx.token.parse().unwrap());
    req.headers_mut()
        .insert("x-convo-client", "test-1".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut frames = Box::pin(ws.filter_map(|m| async move {
        m.ok()
            .and_then(|m| serde_json::from_str::<Value>(m.to_text().ok()?).ok())
    }));
    // Every socket opens with where it starts in the event log.
    let welcome = frames.next().await.unwrap();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(
        welcome["seq"].as_u64(),
        Some(since.unwrap_or_else(|| fx.backend.events_published())),
        "{welcome}"
    );
    frames
}

#[tokio::test]
async fn the_hub_numbers_events_and_replays_from_a_given_seq() {
    let fx = fx().await;
    let key = ObjectKey::Conversation(fx.backend.conversation_sid("general").unwrap());
    let mut live = Box::pin(connect(&fx, None).await);
    fx.backend.external_update(&key, json!({"n": 1})).unwrap();
    fx.backend.external_update(&key, json!({"n": 2})).unwrap();
    let first = live.next().await.unwrap();
    let second = live.next().await.unwrap();
    assert_eq!(
        (first["seq"].as_u64(), second["seq"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(second["type"], "conversation_updated");
    assert_eq!(second["reasons"], json!(["attributes"]));
    let mut replay = Box::pin(connect(&fx, Some(1)).await);
    let replayed = replay.next().await.unwrap();
    assert_eq!(replayed["seq"], 2);
    assert_eq!(replayed["revision"], second["revision"]);
}

#[tokio::test]
async fn held_events_are_published_on_release_with_the_current_snapshot() {
    let fx = fx().await;
    let key = ObjectKey::Conversation(fx.backend.conversation_sid("general").unwrap());
    let mut live = Box::pin(connect(&fx, None).await);
    fx.backend.hold(key.clone());
    fx.backend.external_update(&key, json!({"n": 1})).unwrap();
    fx.backend.external_update(&key, json!({"n": 2})).unwrap();
    assert_eq!(
        fx.backend.events_published(),
        0,
        "held events are not published"
    );
    assert_eq!(fx.backend.release(&key), 2);
    let ev = live.next().await.unwrap();
    assert_eq!(ev["conversation"]["attributes"], "{\"n\":2}");
}

#[tokio::test]
async fn the_event_channel_refuses_a_missing_or_bad_token() {
    let fx = fx().await;
    let req = fx.backend.events_url().into_client_request().unwrap();
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn any_endpoint_can_be_gated_and_a_gated_write_changes_nothing() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let key = ObjectKey::Conversation(sid.clone());
    let before = fx.backend.attributes(&key).unwrap();
    fx.backend.close_gate(Gate::Endpoint {
        endpoint: "update_conversation".parse().unwrap(),
    });
    let r = fx
        .http
        .post(format!("{}/v1/Conversations/{sid}", fx.backend.rest_url()))
        .header("X-Twilio-Token", &fx.token)
        .form(&[("Attributes", "{\"changed\":true}")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(fx.backend.attributes(&key).unwrap(), before);
    let err = "nope".parse::<EndpointKind>().unwrap_err().to_string();
    assert!(err.contains("update_conversation"), "{err}");
}
