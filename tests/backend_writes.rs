//! Every write either applies a v1 field or refuses it with a 400 in Twilio's error shape (and
//! changes nothing); page URLs stay on the path and query the request used; the read horizon;
//! server-side calls with HTTP Basic act as the account.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, ListAction};
use convo_tck::journal::Journal;
use serde_json::Value;

struct Fx {
    backend: Backend,
    journal: Journal,
    http: reqwest::Client,
    alice: String,
}

async fn fx() -> Fx {
    let (backend, journal, _) = scene::journaled_backend().await;
    backend
        .apply(ListAction::Insert {
            name: "bobs-own".into(),
            participants: vec!["bob".into()],
        })
        .unwrap();
    let alice = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    Fx {
        backend,
        journal,
        http: reqwest::Client::new(),
        alice,
    }
}

struct Reply {
    status: u16,
    etag: Option<String>,
    body: Value,
}

impl Fx {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.backend.rest_url())
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Reply {
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        Reply {
            status,
            etag,
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(self.url(path))
                .header("X-Twilio-Token", &self.alice),
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .header("X-Twilio-Token", &self.alice)
                .form(form),
        )
        .await
    }

    fn account(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        r.basic_auth(self.backend.account_sid(), Some(self.backend.auth_token()))
    }
}

fn assert_400(reply: &Reply, naming: &str) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["status"], 400, "{}", reply.body);
    assert_eq!(reply.body["code"], 20_001, "{}", reply.body);
    let message = reply.body["message"].as_str().unwrap();
    assert!(message.contains(naming), "{message} should name {naming}");
    assert!(
        reply.body["more_info"]
            .as_str()
            .unwrap()
            .starts_with("https://www.twilio.com/docs/errors/")
    );
}

#[tokio::test]
async fn a_conversation_update_applies_every_v1_field_it_takes() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let path = format!("/v1/Conversations/{sid}");
    let before = fx.get(&path).await;
    let r = fx
        .post(
            &path,
            &[
                ("FriendlyName", "Renamed"),
                ("UniqueName", "renamed"),
                ("State", "inactive"),
                ("Attributes", r#"{"n":1}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.etag, before.etag, "a write is a new revision");
    let after = fx.get("/v1/Conversations/renamed").await;
    assert_eq!(after.status, 200, "found by its new unique name");
    assert_eq!(after.body["sid"], sid.as_str());
    assert_eq!(after.body["friendly_name"], "Renamed");
    assert_eq!(after.body["unique_name"], "renamed");
    assert_eq!(after.body["state"], "inactive");
    assert_eq!(after.body["attributes"], r#"{"n":1}"#);
    assert_eq!(after.etag, r.etag);
    let listed = fx
        .get(&format!("/v1/Users/alice/Conversations/{sid}"))
        .await;
    assert_eq!(listed.body["conversation_state"], "inactive");
    assert_eq!(fx.get("/v1/Conversations/general").await.status, 404);
}

#[tokio::test]
async fn conversation_update_refusals_change_nothing() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let path = format!("/v1/Conversations/{sid}");
    let before = fx.get(&path).await;
    assert_400(&fx.post(&path, &[("State", "bogus")]).await, "State");
    assert_400(&fx.post(&path, &[("Colour", "blue")]).await, "Colour");
    assert_400(
        &fx.post(&path, &[("FriendlyName", "x"), ("Timers.Closed", "PT1M")])
            .await,
        "Timers.Closed",
    );
    assert_400(&fx.post(&path, &[]).await, "nothing to update");
    assert_400(
        &fx.post(&path, &[("Attributes", "{nope")]).await,
        "Attributes",
    );
    let json = fx
        .send(
            fx.http
                .post(fx.url(&path))
                .header("X-Twilio-Token", &fx.alice)
                .json(&serde_json::json!({"Attributes": "{}"})),
        )
        .await;
    assert_400(&json, "Content-Type");
    let taken = fx.post(&path, &[("UniqueName", "support")]).await;
    assert_eq!(
        (taken.status, &taken.body["code"]),
        (409, &Value::from(50_353))
    );
    let sid_shaped = fx
        .backend
        .conversation_sid("support")
        .unwrap()
        .as_str()
        .to_owned();
    assert_400(
        &fx.post(&path, &[("UniqueName", &sid_shaped)]).await,
        "UniqueName",
    );
    let after = fx.get(&path).await;
    assert_eq!(after.etag, before.etag, "no refusal bumps the revision");
    assert_eq!(after.body, before.body);
}

#[tokio::test]
async fn user_and_message_writes_apply_their_fields_or_refuse() {
    let fx = fx().await;
    let before = fx.get("/v1/Users/alice").await;
    let r = fx
        .post("/v1/Users/alice", &[("FriendlyName", "Alice A.")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["friendly_name"], "Alice A.");
    assert_eq!(
        r.body["attributes"], before.body["attributes"],
        "attributes kept"
    );
    let user = fx.get("/v1/Users/alice").await;
    assert_400(
        &fx.post("/v1/Users/alice", &[("RoleSid", "RL1")]).await,
        "RoleSid",
    );
    assert_400(&fx.post("/v1/Users/alice", &[]).await, "nothing to update");
    assert_eq!(fx.get("/v1/Users/alice").await.etag, user.etag);

    let sid = fx.backend.conversation_sid("general").unwrap();
    let messages = format!("/v1/Conversations/{sid}/Messages");
    let sent = fx
        .post(
            &messages,
            &[("Body", "hey"), ("Attributes", r#"{"k":"v"}"#)],
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["attributes"], r#"{"k":"v"}"#);
    assert_eq!(sent.body["author"], "alice");
    let fetched = fx
        .get(&format!(
            "{messages}/{}",
            sent.body["sid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fetched.body, sent.body);
    assert_400(
        &fx.post(&messages, &[("Body", "x"), ("MediaSid", "ME1")])
            .await,
        "MediaSid",
    );
    assert_400(
        &fx.post(&messages, &[("Body", "x"), ("Attributes", "[")])
            .await,
        "Attributes",
    );
    let impostor = fx
        .post(&messages, &[("Body", "x"), ("Author", "bob")])
        .await;
    assert_eq!(
        (impostor.status, &impostor.body["code"]),
        (403, &Value::from(20_403))
    );
    let list = fx.get(&messages).await;
    assert_eq!(list.body["messages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn page_urls_stay_on_the_path_and_query_the_request_used() {
    let fx = fx().await;
    let user_sid = fx.get("/v1/Users/alice").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_sid = fx
        .get(&format!("/v1/Users/{user_sid}/Conversations?PageSize=2"))
        .await;
    assert_eq!(by_sid.status, 200);
    let prefix = fx.url(&format!("/v1/Users/{user_sid}/Conversations?"));
    for field in ["url", "first_page_url", "next_page_url"] {
        let u = by_sid.body["meta"][field].as_str().unwrap();
        assert!(u.starts_with(&prefix), "meta.{field} = {u}");
    }
    let sid = fx.backend.conversation_sid("general").unwrap();
    let plain = fx
        .get(&format!("/v1/Conversations/{sid}/Messages?PageSize=1"))
        .await;
    let meta = &plain.body["meta"];
    assert_eq!(meta["key"], "messages");
    assert_eq!(
        meta["url"],
        fx.url(&format!(
            "/v1/Conversations/{sid}/Messages?PageSize=1&Page=0"
        ))
    );
    assert_eq!(meta["first_page_url"], meta["url"]);
    assert!(meta["previous_page_url"].is_null());
    let next = meta["next_page_url"].as_str().unwrap();
    assert!(!next.contains("Order"), "{next}");
    let page1 = fx.get(next).await;
    assert_eq!(page1.body["meta"]["page"], 1);
    assert!(
        page1.body["meta"]["previous_page_url"].is_string(),
        "{}",
        page1.body
    );
    let desc = fx
        .get(&format!(
            "/v1/Conversations/{sid}/Messages?Order=desc&PageSize=1"
        ))
        .await;
    assert_eq!(
        desc.body["meta"]["url"],
        fx.url(&format!(
            "/v1/Conversations/{sid}/Messages?Order=desc&PageSize=1&Page=0"
        ))
    );
}

#[tokio::test]
async fn the_read_horizon_is_set_and_unread_counts_follow_it() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let path = format!("/v1/Users/alice/Conversations/{sid}");
    let fresh = fx.get(&path).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert!(fresh.body["last_read_message_index"].is_null());
    assert!(fresh.body["unread_messages_count"].is_null());
    let set = fx.post(&path, &[("LastReadMessageIndex", "0")]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["last_read_message_index"], 0);
    assert_eq!(set.body["unread_messages_count"], 1, "messages 1.. unread");
    // The same in the list and on the participant.
    let list = fx.get("/v1/Users/alice/Conversations").await;
    let item = list.body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation_sid"] == sid.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["unread_messages_count"], 1);
    let participant = fx.get(item["links"]["participant"].as_str().unwrap()).await;
    assert_eq!(participant.body["last_read_message_index"], 0);
    fx.post(
        &format!("/v1/Conversations/{sid}/Messages"),
        &[("Body", "more")],
    )
    .await;
    assert_eq!(fx.get(&path).await.body["unread_messages_count"], 2);
    let all = fx.post(&path, &[("LastReadMessageIndex", "2")]).await;
    assert_eq!(all.body["unread_messages_count"], 0);
    let cleared = fx.post(&path, &[("LastReadMessageIndex", "")]).await;
    assert!(cleared.body["unread_messages_count"].is_null());
    let by_name = fx
        .post(
            "/v1/Users/alice/Conversations/general",
            &[("NotificationLevel", "muted")],
        )
        .await;
    assert_eq!(by_name.body["notification_level"], "muted");
    assert_400(
        &fx.post(&path, &[("LastReadMessageIndex", "-1")]).await,
        "LastReadMessageIndex",
    );
    assert_400(
        &fx.post(&path, &[("NotificationLevel", "loud")]).await,
        "NotificationLevel",
    );
    assert_400(
        &fx.post(&path, &[("LastReadTimestamp", "2020-01-01T00:00:00Z")])
            .await,
        "LastReadTimestamp",
    );
    assert_400(&fx.post(&path, &[]).await, "nothing to update");
}

#[tokio::test]
async fn a_client_token_sees_only_what_its_identity_may_see() {
    let fx = fx().await;
    let bobs = fx.backend.conversation_sid("bobs-own").unwrap();
    for path in [
        format!("/v1/Conversations/{bobs}"),
        "/v1/Conversations/bobs-own".to_owned(),
        format!("/v1/Conversations/{bobs}/Participants/bob"),
        format!("/v1/Conversations/{bobs}/Webhooks"),
    ] {
        assert_eq!(fx.get(&path).await.status, 403, "{path}");
    }
    assert_eq!(
        fx.get(&format!("/v1/Users/bob/Conversations/{bobs}"))
            .await
            .status,
        403
    );
    assert_eq!(
        fx.get(&format!("/v1/Users/alice/Conversations/{bobs}"))
            .await
            .status,
        404,
        "not one of alice's conversations"
    );
}

#[tokio::test]
async fn basic_auth_acts_as_the_account_and_its_token_is_never_journaled() {
    let fx = fx().await;
    assert_eq!(fx.backend.auth_token().len(), 32);
    assert!(fx.backend.account_sid().starts_with("AC"));
    let bobs = fx.backend.conversation_sid("bobs-own").unwrap();
    let read = fx
        .send(fx.account(fx.http.get(fx.url(&format!("/v1/Conversations/{bobs}")))))
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let sent = fx
        .send(
            fx.account(
                fx.http
                    .post(fx.url(&format!("/v1/Conversations/{bobs}/Messages")))
                    .form(&[("Body", "from the server"), ("Author", "bob")]),
            ),
        )
        .await;
    assert_eq!((sent.status, &sent.body["author"]), (201, &"bob".into()));
    let system = fx
        .send(
            fx.account(
                fx.http
                    .post(fx.url(&format!("/v1/Conversations/{bobs}/Messages")))
                    .form(&[("Body", "notice")]),
            ),
        )
        .await;
    assert_eq!(system.body["author"], "system");
    let list = fx
        .send(fx.account(fx.http.get(fx.url("/v1/Users/bob/Conversations"))))
        .await;
    assert_eq!(list.status, 200);
    let wrong = fx
        .send(
            fx.http
                .get(fx.url("/v1/Users/bob"))
                .basic_auth(fx.backend.account_sid(), Some("0".repeat(32))),
        )
        .await;
    assert_eq!(
        (wrong.status, &wrong.body["code"]),
        (401, &Value::from(20_003))
    );
    let journal = serde_json::to_string(&fx.journal.snapshot()).unwrap();
    assert!(!journal.contains(fx.backend.auth_token()));
    let fingerprints = fx
        .journal
        .snapshot()
        .iter()
        .filter_map(|e| e.request().and_then(|r| r.token.clone()))
        .count();
    assert!(
        fingerprints >= 5,
        "every request journals its credential's fingerprint"
    );
}
