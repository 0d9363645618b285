//! Push bindings over real loopback HTTP: the client's registration write (create, refresh,
//! unregister), the v1 account-level `/v1/Services/{sid}/Bindings` (list, fetch, delete), who
//! may touch which binding, one journaled fact per change, and idle expiry after a year of
//! virtual time (seen without any request; not while the identity keeps connecting).

#[path = "support/scene.rs"]
mod scene;

use std::time::Duration;

use convo_tck::backend::{
    BINDING_IDLE_EXPIRY, Backend, BindingChange, BindingFact, BindingType, Control, Endpoint, Fact,
};
use convo_tck::clock::VirtualClock;
use convo_tck::journal::{EntryKind, Journal};
use convo_tck::wire::resources::{Binding, BindingsPage};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Fx {
    backend: Backend,
    journal: Journal,
    clock: VirtualClock,
    http: reqwest::Client,
    alice: String,
    bob: String,
}

async fn fx() -> Fx {
    let (backend, journal, clock) = scene::journaled_backend().await;
    let alice = backend
        .mint_token("alice", Duration::from_secs(86_400))
        .unwrap();
    let bob = backend
        .mint_token("bob", Duration::from_secs(86_400))
        .unwrap();
    Fx {
        backend,
        journal,
        clock,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        alice,
        bob,
    }
}

enum Auth<'a> {
    Token(&'a str),
    Account,
}

impl Fx {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.backend.rest_url())
    }

    fn bindings_url(&self) -> String {
        let service = self.backend.state().service_sid;
        self.url(&format!("/v1/Services/{service}/Bindings"))
    }

    async fn send(&self, r: reqwest::RequestBuilder, auth: Auth<'_>) -> (u16, Value) {
        let r = match auth {
            Auth::Token(t) => r.header("X-Twilio-Token", t),
            Auth::Account => {
                r.basic_auth(self.backend.account_sid(), Some(self.backend.auth_token()))
            }
        };
        let reply = r.send().await.unwrap();
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            self.http
                .post(self.url("/v1/Client/Registrations"))
                .form(form),
            Auth::Token(token),
        )
        .await
    }

    async fn get(&self, url: &str, auth: Auth<'_>) -> (u16, Value) {
        self.send(self.http.get(url), auth).await
    }

    async fn delete(&self, url: &str, auth: Auth<'_>) -> (u16, Value) {
        self.send(self.http.delete(url), auth).await
    }

    fn binding_facts(&self) -> Vec<BindingFact> {
        self.journal
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EntryKind::Backend(Fact::Binding(b)) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// Lets the backend's expiry task run (it wakes on the virtual clock) until `n` binding
    /// facts are journaled; bounded by a number of yields, never by real time.
    async fn await_binding_facts(&self, n: usize) -> Vec<BindingFact> {
        for _ in 0..10_000 {
            let facts = self.binding_facts();
            if facts.len() >= n {
                return facts;
            }
            tokio::task::yield_now().await;
        }
        panic!("expected {n} binding facts, got {:?}", self.binding_facts());
    }

    /// Opens (and closes) an event channel as the token's identity: a successful handshake.
    async fn connect(&self, token: &str) {
        let mut req = self.backend.events_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("X-Twilio-Token", token.parse().unwrap());
        let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(response.status().as_u16(), 101);
        ws.close(None).await.ok();
    }
}

fn binding(v: &Value) -> Binding {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[tokio::test]
async fn a_registration_creates_then_refreshes_one_binding_with_the_v1_shape() {
    let fx = fx().await;
    let (status, created) = fx
        .register(&fx.alice, &[("Address", "D1"), ("BindingType", "apn")])
        .await;
    assert_eq!(status, 201, "{created}");
    let created = binding(&created);
    assert!(created.sid.starts_with("BS") && created.sid.len() == 34);
    assert!(created.credential_sid.starts_with("CR") && created.credential_sid.len() == 34);
    assert_eq!(created.account_sid, fx.backend.account_sid());
    assert_eq!(created.chat_service_sid, fx.backend.state().service_sid);
    assert_eq!(
        (created.identity.as_str(), created.endpoint.as_str()),
        ("alice", "alice:D1")
    );
    assert_eq!(created.binding_type, "apn");
    assert_eq!(
        created.message_types,
        [
            "new_message",
            "added_to_conversation",
            "removed_from_conversation"
        ]
    );
    assert_eq!(created.date_created, "2026-01-01T00:00:00Z");
    assert!(created.url.ends_with(&format!("/Bindings/{}", created.sid)));

    fx.clock.advance(Duration::from_secs(60));
    let (status, refreshed) = fx
        .register(
            &fx.alice,
            &[
                ("Address", "D1"),
                ("BindingType", "fcm"),
                ("MessageTypes", "new_message"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let refreshed = binding(&refreshed);
    assert_eq!(refreshed.sid, created.sid, "a refresh keeps the sid");
    assert_eq!(refreshed.binding_type, "fcm");
    assert_eq!(refreshed.message_types, ["new_message"]);
    assert_eq!(refreshed.date_created, created.date_created);
    assert_eq!(refreshed.date_updated, "2026-01-01T00:01:00Z");

    // Another identity may hold a binding for the same address: a binding of its own.
    let (status, bobs) = fx
        .register(&fx.bob, &[("Address", "D1"), ("BindingType", "gcm")])
        .await;
    assert_eq!(status, 201, "{bobs}");
    assert_ne!(binding(&bobs).sid, created.sid);
    assert_eq!(fx.backend.bindings().len(), 2);

    // Refusals change nothing: a missing or bad field, an unknown one, no token.
    for form in [
        &[("BindingType", "apn")][..],
        &[("Address", "D2")][..],
        &[("Address", "D2"), ("BindingType", "twilsock")][..],
        &[("Address", ""), ("BindingType", "apn")][..],
        &[("Address", "D2"), ("BindingType", "apn"), ("Colour", "red")][..],
        &[
            ("Address", "D2"),
            ("BindingType", "apn"),
            ("MessageTypes", "typing"),
        ][..],
    ] {
        let (status, body) = fx.register(&fx.alice, form).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(20_001)),
            "{form:?}"
        );
    }
    let (status, _) = fx
        .send(
            fx.http
                .post(fx.url("/v1/Client/Registrations"))
                .form(&[("Address", "D2"), ("BindingType", "apn")]),
            Auth::Account,
        )
        .await;
    assert_eq!(status, 401, "the registration takes the client's token");
    assert_eq!(fx.backend.bindings().len(), 2);

    let facts = fx.binding_facts();
    let changes: Vec<_> = facts
        .iter()
        .map(|f| (f.change, f.identity.as_str(), f.binding_type))
        .collect();
    assert_eq!(
        changes,
        [
            (BindingChange::Created, "alice", BindingType::Apn),
            (BindingChange::Refreshed, "alice", BindingType::Fcm),
            (BindingChange::Created, "bob", BindingType::Gcm),
        ]
    );
    assert!(facts.iter().all(|f| f.address == "D1"));
    // The requests are journaled with the address they named.
    let registered = fx
        .journal
        .snapshot()
        .into_iter()
        .filter(|e| {
            matches!(&e.kind, EntryKind::Backend(Fact::Request(r))
                if r.endpoint == Endpoint::Register { address: "D1".into() } && r.succeeded())
        })
        .count();
    assert_eq!(registered, 3);
}

#[tokio::test]
async fn the_account_lists_fetches_and_deletes_bindings_and_a_token_only_its_own() {
    let fx = fx().await;
    for (token, address, kind) in [
        (&fx.alice, "A1", "apn"),
        (&fx.alice, "A2", "fcm"),
        (&fx.bob, "B1", "apn"),
    ] {
        let (status, body) = fx
            .register(token, &[("Address", address), ("BindingType", kind)])
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let list = fx.bindings_url();

    // The account lists all, paged like every v1 list.
    let (status, page) = fx.get(&format!("{list}?PageSize=2"), Auth::Account).await;
    assert_eq!(status, 200, "{page}");
    let page: BindingsPage = serde_json::from_value(page).unwrap();
    assert_eq!(page.meta.key, "bindings");
    let first: Vec<_> = page.bindings.iter().map(|b| b.endpoint.as_str()).collect();
    assert_eq!(first, ["alice:A1", "alice:A2"]);
    let next = page.meta.next_page_url.expect("a second page");
    let (_, page2) = fx.get(&next, Auth::Account).await;
    let page2: BindingsPage = serde_json::from_value(page2).unwrap();
    assert_eq!(page2.bindings.len(), 1);
    assert_eq!(page2.bindings[0].endpoint, "bob:B1");
    assert!(page2.meta.next_page_url.is_none());

    // Filters repeat, and page URLs repeat them.
    let (_, filtered) = fx
        .get(
            &format!("{list}?BindingType=apn&Identity=alice&Identity=bob"),
            Auth::Account,
        )
        .await;
    let filtered: BindingsPage = serde_json::from_value(filtered).unwrap();
    let got: Vec<_> = filtered
        .bindings
        .iter()
        .map(|b| b.endpoint.as_str())
        .collect();
    assert_eq!(got, ["alice:A1", "bob:B1"]);
    assert!(
        filtered
            .meta
            .url
            .contains("BindingType=apn&Identity=alice&Identity=bob"),
        "{}",
        filtered.meta.url
    );
    let (status, body) = fx
        .get(&format!("{list}?BindingType=carrier-pigeon"), Auth::Account)
        .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(20_001)));

    // A token lists its own bindings, and may not name another identity.
    let (_, own) = fx.get(&list, Auth::Token(&fx.bob)).await;
    let own: BindingsPage = serde_json::from_value(own).unwrap();
    assert_eq!(own.bindings.len(), 1);
    assert_eq!(own.bindings[0].identity, "bob");
    let (status, body) = fx
        .get(&format!("{list}?Identity=alice"), Auth::Token(&fx.bob))
        .await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(20_403)));

    // Fetch: the account any, a token its own only.
    let alices = fx.backend.bindings()[0].sid.clone();
    let one = format!("{list}/{alices}");
    let (status, body) = fx.get(&one, Auth::Account).await;
    assert_eq!(status, 200);
    assert_eq!(binding(&body).sid, alices);
    let (status, _) = fx.get(&one, Auth::Token(&fx.alice)).await;
    assert_eq!(status, 200);
    let (status, body) = fx.get(&one, Auth::Token(&fx.bob)).await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(20_403)));
    let (status, body) = fx.delete(&one, Auth::Token(&fx.bob)).await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(20_403)));
    assert_eq!(
        fx.backend.bindings().len(),
        3,
        "a refused delete deletes nothing"
    );

    // Unknown service or binding: 404 20404; no credentials: 401.
    let elsewhere = fx.url(&format!("/v1/Services/IS{}/Bindings", "0".repeat(32)));
    let (status, body) = fx.get(&elsewhere, Auth::Account).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20_404)));
    let (status, body) = fx
        .get(&format!("{list}/BS{}", "f".repeat(32)), Auth::Account)
        .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20_404)));
    let (status, _) = fx.send(fx.http.get(&list), Auth::Token("")).await;
    assert_eq!(status, 401);

    // Delete: 204, then gone from list and fetch.
    let (status, _) = fx.delete(&one, Auth::Account).await;
    assert_eq!(status, 204);
    let (status, _) = fx.get(&one, Auth::Account).await;
    assert_eq!(status, 404);
    let bobs = fx.backend.bindings()[1].sid.clone();
    let (status, _) = fx
        .delete(&format!("{list}/{bobs}"), Auth::Token(&fx.bob))
        .await;
    assert_eq!(status, 204, "a token deletes its own binding");

    // Unregistration by address: 204, then 404.
    let unregister = fx.url("/v1/Client/Registrations/A2");
    let (status, _) = fx.delete(&unregister, Auth::Token(&fx.bob)).await;
    assert_eq!(status, 404, "bob has no binding for A2");
    let (status, _) = fx.delete(&unregister, Auth::Token(&fx.alice)).await;
    assert_eq!(status, 204);
    let (status, body) = fx.delete(&unregister, Auth::Token(&fx.alice)).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20_404)));
    assert!(fx.backend.bindings().is_empty());

    // Replaying the facts gives the binding set: three created, three removed.
    let facts = fx.binding_facts();
    let mut set = std::collections::BTreeSet::new();
    for f in &facts {
        match f.change {
            BindingChange::Created => assert!(set.insert(f.sid.clone())),
            BindingChange::Refreshed => assert!(set.contains(&f.sid)),
            BindingChange::Removed | BindingChange::Expired => assert!(set.remove(&f.sid)),
        }
    }
    assert!(set.is_empty(), "{facts:?}");
    assert_eq!(facts.len(), 6);
}

#[tokio::test]
async fn an_address_is_percent_encoded_in_the_unregistration_path() {
    let fx = fx().await;
    let address = "fcm:tok/en+with spaces";
    let (status, _) = fx
        .register(&fx.alice, &[("Address", address), ("BindingType", "fcm")])
        .await;
    assert_eq!(status, 201);
    let encoded: String =
        url::form_urlencoded::byte_serialize(address.as_bytes()).collect::<String>();
    let encoded = encoded.replace('+', "%20");
    let (status, _) = fx
        .delete(
            &fx.url(&format!("/v1/Client/Registrations/{encoded}")),
            Auth::Token(&fx.alice),
        )
        .await;
    assert_eq!(status, 204);
    assert!(fx.backend.bindings().is_empty());
}

#[tokio::test]
async fn a_binding_idle_for_a_year_expires_at_that_instant_without_any_request() {
    let fx = fx().await;
    // Scenario setup: "carol registered device D2 a year ago".
    let carol = fx.backend.register_binding("carol", "D2", BindingType::Apn);
    assert_eq!(
        carol.expires_at,
        carol.last_active.plus(BINDING_IDLE_EXPIRY)
    );
    fx.clock
        .advance(BINDING_IDLE_EXPIRY - Duration::from_secs(1));
    // `bindings()` sweeps first: a second before the year is up, nothing expires.
    assert_eq!(fx.backend.bindings().len(), 1, "not yet expired");
    assert_eq!(fx.binding_facts().len(), 1, "not yet expired");
    fx.clock.advance(Duration::from_secs(1));
    let facts = fx.await_binding_facts(2).await;
    assert_eq!(facts[1].change, BindingChange::Expired);
    assert_eq!(
        (facts[1].sid.as_str(), facts[1].identity.as_str()),
        (carol.sid.as_str(), "carol")
    );
    // Journaled at the virtual instant it expired, after the control that set it up.
    let entries = fx.journal.snapshot();
    let expired = entries
        .iter()
        .find(|e| matches!(&e.kind, EntryKind::Backend(Fact::Binding(b)) if b.change == BindingChange::Expired))
        .unwrap();
    assert_eq!(expired.at, carol.expires_at);
    assert!(entries.iter().any(|e| matches!(
        &e.kind,
        EntryKind::Backend(Fact::Control(Control::BindingRegistered { identity, .. })) if identity == "carol"
    )));
    assert!(fx.backend.bindings().is_empty());
    let (_, page) = fx.get(&fx.bindings_url(), Auth::Account).await;
    assert_eq!(page["bindings"], serde_json::json!([]));
}

#[tokio::test]
async fn a_request_sweeps_expired_bindings_before_it_is_served() {
    let fx = fx().await;
    let (_, body) = fx
        .register(&fx.alice, &[("Address", "D1"), ("BindingType", "apn")])
        .await;
    let old = binding(&body);
    fx.clock.advance(BINDING_IDLE_EXPIRY);
    // Whether or not the expiry task got there first, the registration finds the old binding
    // gone and creates a new one.
    let token = fx
        .backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    let (status, body) = fx
        .register(&token, &[("Address", "D1"), ("BindingType", "apn")])
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(binding(&body).sid, old.sid);
    let changes: Vec<_> = fx.binding_facts().iter().map(|f| f.change).collect();
    assert_eq!(
        changes,
        [
            BindingChange::Created,
            BindingChange::Expired,
            BindingChange::Created
        ]
    );
}

#[tokio::test]
async fn no_expiry_while_the_identity_keeps_connecting() {
    let fx = fx().await;
    let (status, _) = fx
        .register(&fx.alice, &[("Address", "D1"), ("BindingType", "apn")])
        .await;
    assert_eq!(status, 201);
    fx.backend.register_binding("bob", "D9", BindingType::Fcm);
    let day = Duration::from_secs(86_400);
    // Alice connects every 200 days; her token is re-minted as time passes.
    for _ in 0..3 {
        fx.clock.advance(day * 200);
        let token = fx.backend.mint_token("alice", day).unwrap();
        fx.connect(&token).await;
    }
    // `bindings()` sweeps first: what the year expired is gone.
    let bindings = fx.backend.bindings();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].identity, "alice");
    assert_eq!(bindings[0].last_active, fx.clock.now());
    assert_eq!(
        bindings[0].date_updated, bindings[0].date_created,
        "a connection is activity, not a write"
    );
    let facts = fx.binding_facts();
    assert_eq!(facts.len(), 3, "{facts:?}");
    assert_eq!(
        (facts[2].change, facts[2].identity.as_str()),
        (BindingChange::Expired, "bob")
    );
    // Once she stops connecting, a year later her binding expires too.
    fx.clock.advance(BINDING_IDLE_EXPIRY);
    let facts = fx.await_binding_facts(4).await;
    assert_eq!(
        (facts[3].change, facts[3].identity.as_str()),
        (BindingChange::Expired, "alice")
    );
    assert!(fx.backend.state().bindings.is_empty());
}
