//! A client token speaks for its own identity only, and no token, minted or foreign, reaches
//! the journal or anything written from it.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::Backend;
use convo_tck::journal::Journal;
use futures::SinkExt as _;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A token the backend never minted: a well-formed HS256 JWT signed with another key.
const FOREIGN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZ3JhbnRzIjp7ImlkZW50aXR5IjoiYm9iIn19.X2Zvcmdlcnlfc2lnbmF0dXJlX2J5X2Fub3RoZXJfa2V5";
/// An opaque vendor credential (not a JWT), sent where credentials are named.
const OPAQUE: &str = "vendor-session-0123456789abcdef";

struct Fx {
    backend: Backend,
    journal: Journal,
    http: reqwest::Client,
    alice: String,
    bob: String,
}

async fn fx() -> Fx {
    let (backend, journal, _) = scene::journaled_backend().await;
    let alice = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    let bob = backend
        .mint_token("bob", Duration::from_secs(3600))
        .unwrap();
    Fx {
        backend,
        journal,
        http: reqwest::Client::new(),
        alice,
        bob,
    }
}

impl Fx {
    async fn send(&self, r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.backend.rest_url())
    }
}

#[tokio::test]
async fn a_message_claiming_another_author_is_refused_and_not_stored() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let messages = format!("/v1/Conversations/{sid}/Messages");
    let count = |body: &Value| body["messages"].as_array().map_or(0, Vec::len);
    let (_, before) = fx
        .send(
            fx.http
                .get(fx.url(&messages))
                .header("X-Twilio-Token", &fx.alice),
        )
        .await;
    let (status, body) = fx
        .send(
            fx.http
                .post(fx.url(&messages))
                .header("X-Twilio-Token", &fx.alice)
                .form(&[("Author", "bob"), ("Body", "it was me")]),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], 20_403, "{body}");
    assert_eq!(body["status"], 403, "{body}");
    let (_, after) = fx
        .send(
            fx.http
                .get(fx.url(&messages))
                .header("X-Twilio-Token", &fx.alice),
        )
        .await;
    assert_eq!(count(&before), count(&after), "nothing was stored");
    // Its own identity, named or implied, is fine.
    for form in [
        vec![("Author", "alice"), ("Body", "me")],
        vec![("Body", "me")],
    ] {
        let (status, body) = fx
            .send(
                fx.http
                    .post(fx.url(&messages))
                    .header("X-Twilio-Token", &fx.alice)
                    .form(&form),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["author"], "alice", "{body}");
    }
    // The refusal is journaled like any other answer.
    let refused = fx
        .journal
        .snapshot()
        .into_iter()
        .filter_map(|e| e.request().map(|r| r.status))
        .filter(|s| *s == 403)
        .count();
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn reads_are_scoped_to_what_the_identity_may_see() {
    let fx = fx().await;
    let random = fx.backend.conversation_sid("random").unwrap();
    for (token, path, want) in [
        (&fx.alice, "/v1/Users/bob".to_owned(), 403),
        (&fx.alice, "/v1/Users/bob/Conversations".to_owned(), 403),
        (&fx.bob, format!("/v1/Conversations/{random}"), 403),
        (&fx.bob, format!("/v1/Conversations/{random}/Messages"), 403),
        (
            &fx.bob,
            format!("/v1/Conversations/{random}/Participants"),
            403,
        ),
        (&fx.alice, format!("/v1/Conversations/{random}"), 200),
    ] {
        let (status, body) = fx
            .send(fx.http.get(fx.url(&path)).header("X-Twilio-Token", token))
            .await;
        assert_eq!(status, want, "{path}: {body}");
    }
    let (status, _) = fx
        .send(
            fx.http
                .post(fx.url(&format!("/v1/Conversations/{random}")))
                .header("X-Twilio-Token", &fx.bob)
                .form(&[("Attributes", "{}")]),
        )
        .await;
    assert_eq!(status, 403, "bob may not write a conversation he is not in");
}

#[tokio::test]
async fn foreign_and_minted_tokens_never_reach_the_journal_wherever_they_are_planted() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let get = |path: String, token: &str| {
        fx.http
            .get(fx.url(&path))
            .header("X-Twilio-Token", token.to_owned())
    };
    let planted = [
        // In a query string, named and unnamed.
        get(format!("/v1/Users/alice?Token={FOREIGN}"), &fx.alice),
        get(format!("/v1/Users/alice?x={FOREIGN}"), &fx.alice),
        get(format!("/v1/Users/alice?access_token={OPAQUE}"), &fx.alice),
        get(
            format!("/v1/Users/alice/Conversations?PageToken={FOREIGN}"),
            &fx.alice,
        ),
        // In a path, where the error quotes it.
        get(format!("/v1/Users/{FOREIGN}"), &fx.alice),
        get(format!("/v1/Conversations/{FOREIGN}"), &fx.alice),
        get(format!("/v1/{FOREIGN}/{}", fx.alice), &fx.alice),
        // As the credential, and as the instance id.
        get("/v1/Users/alice".to_owned(), FOREIGN),
        get("/v1/Users/alice".to_owned(), &fx.alice).header("X-Convo-Client", FOREIGN),
        get("/v1/Users/alice".to_owned(), &fx.alice).header("X-Convo-Client", &fx.bob),
        // In a form body the backend echoes (attributes) or refuses (a bad page size).
        fx.http
            .post(fx.url(&format!("/v1/Conversations/{sid}")))
            .header("X-Twilio-Token", &fx.alice)
            .form(&[("Attributes", format!(r#"{{"note":"{FOREIGN}"}}"#))]),
        fx.http
            .post(fx.url(&format!("/v1/Conversations/{sid}/Messages")))
            .header("X-Twilio-Token", &fx.alice)
            .form(&[("Author", FOREIGN), ("Body", &fx.alice)]),
        get(
            format!("/v1/Users/alice/Conversations?PageSize={FOREIGN}"),
            &fx.alice,
        ),
    ];
    for r in planted {
        let _ = r.send().await.unwrap();
    }
    // The event channel: the token in the query, a foreign credential, a foreign instance id.
    for (query, token, instance) in [
        (
            format!("?since=0&token={}", fx.alice),
            fx.alice.as_str(),
            "i-1",
        ),
        (String::new(), FOREIGN, "i-2"),
        (String::new(), fx.alice.as_str(), FOREIGN),
    ] {
        let mut req = format!("{}{query}", fx.backend.events_url())
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("X-Twilio-Token", token.parse().unwrap());
        req.headers_mut()
            .insert("X-Convo-Client", instance.parse().unwrap());
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await {
            let _ = ws.send(Message::text(FOREIGN)).await;
            let _ = ws.close(None).await;
        }
    }
    let entries = fx.journal.snapshot();
    assert!(entries.len() >= 16, "every request was journaled");
    let text = serde_json::to_string(&entries).unwrap();
    let summaries: Vec<String> = entries.iter().map(|e| e.summary()).collect();
    for secret in [FOREIGN, OPAQUE, fx.alice.as_str(), fx.bob.as_str()] {
        assert!(!text.contains(secret), "the journal holds a token: {text}");
        for s in &summaries {
            assert!(!s.contains(secret), "a summary holds a token: {s}");
        }
    }
    assert!(
        !text.contains("eyJ"),
        "no JWT-shaped text at all is left: {text}"
    );
}
