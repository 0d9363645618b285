//! Counts over real loopback HTTP: the user-conversation resource's unread count and read
//! horizon, the kit's `/v1/Conversations/{sid}/Counts` resource (not public v1), and the
//! harness's truth query `Backend::counts` with the instant each count last changed.

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{Backend, CountsTruth, Endpoint, Fact};
use convo_tck::clock::{VirtualClock, VirtualInstant};
use convo_tck::journal::{EntryKind, Journal};
use convo_tck::wire::resources::ConversationCounts;
use serde_json::Value;

struct Fx {
    backend: Backend,
    journal: Journal,
    clock: VirtualClock,
    http: reqwest::Client,
    alice: String,
}

async fn fx() -> Fx {
    let (backend, journal, clock) = scene::journaled_backend().await;
    let alice = backend
        .mint_token("alice", Duration::from_secs(86_400))
        .unwrap();
    Fx {
        backend,
        journal,
        clock,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        alice,
    }
}

impl Fx {
    async fn send(&self, r: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let reply = r.header("X-Twilio-Token", token).send().await.unwrap();
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.backend.rest_url());
        self.send(self.http.get(url), &self.alice).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{path}", self.backend.rest_url());
        self.send(self.http.post(url).form(form), &self.alice).await
    }
}

#[tokio::test]
async fn the_user_conversation_has_no_unread_count_until_a_read_horizon_exists() {
    let fx = fx().await;
    let sid = fx.backend.conversation_sid("general").unwrap();
    let path = format!("/v1/Users/alice/Conversations/{sid}");
    let (status, fresh) = fx.get(&path).await;
    assert_eq!(status, 200, "{fresh}");
    assert!(fresh["unread_messages_count"].is_null(), "{fresh}");
    assert!(fresh["last_read_message_index"].is_null(), "{fresh}");
    let (status, set) = fx.post(&path, &[("LastReadMessageIndex", "0")]).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["last_read_message_index"], 0);
    assert_eq!(set["unread_messages_count"], 1);
    let (_, again) = fx.get(&path).await;
    assert_eq!(
        (
            again["last_read_message_index"].as_u64(),
            again["unread_messages_count"].as_u64()
        ),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn the_counts_resource_counts_participants_and_messages_for_whoever_sees_it() {
    let fx = fx().await;
    let general = fx.backend.conversation_sid("general").unwrap();
    let (status, body) = fx.get(&format!("/v1/Conversations/{general}/Counts")).await;
    assert_eq!(status, 200, "{body}");
    let counts: ConversationCounts = serde_json::from_value(body).unwrap();
    assert_eq!(
        counts,
        ConversationCounts {
            conversation_sid: general.clone(),
            participants_count: 2,
            messages_count: 2,
            url: format!(
                "{}/v1/Conversations/{general}/Counts",
                fx.backend.rest_url()
            ),
        }
    );
    // By unique name too; a removed message is no longer counted.
    fx.backend.remove_message(&general, 0).unwrap();
    let (_, body) = fx.get("/v1/Conversations/general/Counts").await;
    assert_eq!(body["messages_count"], 1);
    // The same rule as the conversation itself: a non-participant is refused, as is no token.
    let random = fx.backend.conversation_sid("random").unwrap();
    let bob = fx
        .backend
        .mint_token("bob", Duration::from_secs(3600))
        .unwrap();
    let url = format!("{}/v1/Conversations/{random}/Counts", fx.backend.rest_url());
    let (status, _) = fx.send(fx.http.get(&url), &bob).await;
    let (conversation_status, _) = fx
        .send(
            fx.http.get(format!(
                "{}/v1/Conversations/{random}",
                fx.backend.rest_url()
            )),
            &bob,
        )
        .await;
    assert_eq!((status, conversation_status), (403, 403));
    let (status, _) = fx.send(fx.http.get(&url), "").await;
    assert_eq!(status, 401);
    let (status, _) = fx.get("/v1/Conversations/nowhere/Counts").await;
    assert_eq!(status, 404);
    // Journaled as a read of that conversation.
    let counted = fx
        .journal
        .snapshot()
        .into_iter()
        .filter(|e| {
            matches!(&e.kind, EntryKind::Backend(Fact::Request(r))
                if r.endpoint == Endpoint::Counts { sid: general.clone() } && r.succeeded())
        })
        .count();
    assert_eq!(counted, 2);
}

#[tokio::test]
async fn the_counts_truth_follows_every_change_with_the_instant_it_changed() {
    let fx = fx().await;
    let epoch = VirtualInstant::default();
    let general = fx.backend.conversation_sid("general").unwrap();
    let truth = fx.backend.counts(&general, "alice").unwrap();
    assert_eq!(
        truth,
        CountsTruth {
            conversation: general.clone(),
            identity: "alice".into(),
            participants: 2,
            participants_changed: epoch,
            messages: 2,
            messages_changed: epoch,
            unread: None,
            unread_changed: epoch,
        }
    );
    // A message moves the message count; without a horizon the unread count stays null, and
    // so keeps its instant.
    fx.clock.advance(Duration::from_secs(10));
    let t10 = fx.clock.now();
    fx.backend
        .post_message(&general, "bob", "one more")
        .unwrap();
    let truth = fx.backend.counts(&general, "alice").unwrap();
    assert_eq!((truth.messages, truth.messages_changed), (3, t10));
    assert_eq!((truth.unread, truth.unread_changed), (None, epoch));

    // A read-horizon write moves alice's unread count, not bob's.
    fx.clock.advance(Duration::from_secs(10));
    let t20 = fx.clock.now();
    let (status, body) = fx
        .post(
            &format!("/v1/Users/alice/Conversations/{general}"),
            &[("LastReadMessageIndex", "1")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let truth = fx.backend.counts(&general, "alice").unwrap();
    assert_eq!((truth.unread, truth.unread_changed), (Some(1), t20));
    assert_eq!(
        body["unread_messages_count"], 1,
        "the resource says the same"
    );
    let bobs = fx.backend.counts(&general, "bob").unwrap();
    assert_eq!((bobs.unread, bobs.unread_changed), (None, epoch));

    // A message after the horizon moves the unread count; removing one before it does not.
    fx.clock.advance(Duration::from_secs(10));
    let t30 = fx.clock.now();
    fx.backend.post_message(&general, "bob", "unread").unwrap();
    fx.clock.advance(Duration::from_secs(10));
    let t40 = fx.clock.now();
    fx.backend.remove_message(&general, 0).unwrap();
    let truth = fx.backend.counts(&general, "alice").unwrap();
    assert_eq!((truth.messages, truth.messages_changed), (3, t40));
    assert_eq!((truth.unread, truth.unread_changed), (Some(2), t30));
    assert_eq!((truth.participants, truth.participants_changed), (2, epoch));

    // The truth is journaled as data: it round-trips.
    let json = serde_json::to_value(&truth).unwrap();
    assert_eq!(json["unread"], 2);
    assert_eq!(serde_json::from_value::<CountsTruth>(json).unwrap(), truth);

    // Only a participant of a live conversation has counts.
    let random = fx.backend.conversation_sid("random").unwrap();
    assert!(fx.backend.counts(&random, "bob").is_err());
    assert!(fx.backend.counts(&"CHnowhere".into(), "alice").is_err());
}
