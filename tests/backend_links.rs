//! Every URL the backend hands out resolves: a walk from the user's conversation list through
//! every `url`, `links` value and page URL of every resource it serves, as a client token and
//! as the account (HTTP Basic), each fetched and required to answer 200.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use convo_tck::backend::fixture::Fixture;
use convo_tck::backend::{Backend, ListAction};
use convo_tck::clock::VirtualClock;
use serde_json::Value;

/// How a walk authenticates.
#[derive(Clone)]
enum Auth {
    Token(String),
    Basic(String, String),
}

fn with(r: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
    match auth {
        Auth::Token(t) => r.header("X-Twilio-Token", t),
        Auth::Basic(user, password) => r.basic_auth(user, Some(password)),
    }
}

/// Every string in `v` that is a URL of the backend.
fn urls_in(v: &Value, base: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with(base) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| urls_in(i, base, out)),
        Value::Object(map) => map.values().for_each(|i| urls_in(i, base, out)),
        _ => {}
    }
}

/// Fetches `start` and everything reachable from it; returns the URLs visited and the bodies
/// by path shape.
async fn walk(backend: &Backend, auth: &Auth, start: &[String]) -> BTreeSet<String> {
    let http = reqwest::Client::new();
    let mut seen: BTreeSet<String> = start.iter().cloned().collect();
    let mut queue: VecDeque<String> = start.iter().cloned().collect();
    while let Some(url) = queue.pop_front() {
        assert!(seen.len() < 5_000, "the walk does not end");
        let r = with(http.get(&url), auth).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "GET {url} -> {status}: {body}");
        let mut found = Vec::new();
        urls_in(&body, backend.rest_url(), &mut found);
        // Every list keeps to the v1 envelope: its meta names the list under `key`.
        if let Some(meta) = body.get("meta") {
            let key = meta["key"].as_str().expect("meta.key");
            assert!(body[key].is_array(), "{url}: meta.key {key} names no list");
            for field in ["page", "page_size", "first_page_url", "url"] {
                assert!(!meta[field].is_null(), "{url}: meta.{field} missing");
            }
            for field in ["previous_page_url", "next_page_url"] {
                assert!(meta.get(field).is_some(), "{url}: meta.{field} missing");
            }
        }
        for u in found {
            if seen.insert(u.clone()) {
                queue.push_back(u);
            }
        }
    }
    seen
}

async fn backend() -> Backend {
    let backend = Backend::builder(VirtualClock::new()).start().await.unwrap();
    backend.load_fixture("basic", &Fixture::named("basic").unwrap());
    backend.seed_conversations("extra", 5, &["alice".into()]);
    backend
        .apply(ListAction::Insert {
            name: "bobs-own".into(),
            participants: vec!["bob".into()],
        })
        .unwrap();
    backend
}

/// The kinds of resource a set of URLs covers (path with sids replaced by `*`).
fn shapes(urls: &BTreeSet<String>, base: &str) -> BTreeSet<String> {
    urls.iter()
        .map(|u| {
            let path = u[base.len()..].split('?').next().unwrap_or_default();
            path.split('/')
                .enumerate()
                .map(|(i, s)| if i % 2 == 0 || i == 1 { s } else { "*" })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[tokio::test]
async fn every_url_and_link_a_client_is_handed_resolves() {
    let backend = backend().await;
    let token = backend
        .mint_token("alice", Duration::from_secs(3600))
        .unwrap();
    let auth = Auth::Token(token);
    let base = backend.rest_url().to_owned();
    // A read horizon set, so its resources carry one.
    let general = backend.conversation_sid("general").unwrap();
    let r = with(
        reqwest::Client::new().post(format!("{base}/v1/Users/alice/Conversations/{general}")),
        &auth,
    )
    .form(&[("LastReadMessageIndex", "0")])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let start = vec![
        format!("{base}/v1/Users/alice/Conversations?PageSize=3"),
        format!("{base}/v1/Users/alice"),
        format!("{base}/v1/Conversations/general"),
    ];
    let seen = walk(&backend, &auth, &start).await;
    let kinds = shapes(&seen, &base);
    for kind in [
        "/v1/Users/*",
        "/v1/Users/*/Conversations",
        "/v1/Users/*/Conversations/*",
        "/v1/Conversations/*",
        "/v1/Conversations/*/Participants",
        "/v1/Conversations/*/Participants/*",
        "/v1/Conversations/*/Messages",
        "/v1/Conversations/*/Messages/*",
        "/v1/Conversations/*/Webhooks",
    ] {
        assert!(
            kinds.contains(kind),
            "the walk never reached {kind}: {kinds:?}"
        );
    }
    let bobs = backend.conversation_sid("bobs-own").unwrap();
    assert!(
        !seen.iter().any(|u| u.contains(bobs.as_str())),
        "alice's walk reached a conversation she is not in"
    );
}

#[tokio::test]
async fn every_url_the_account_is_handed_resolves_too() {
    let backend = backend().await;
    let auth = Auth::Basic(
        backend.account_sid().to_owned(),
        backend.auth_token().to_owned(),
    );
    let base = backend.rest_url().to_owned();
    let start = vec![
        format!("{base}/v1/Users/alice/Conversations?PageSize=2"),
        format!("{base}/v1/Users/bob/Conversations"),
    ];
    let seen = walk(&backend, &auth, &start).await;
    let bobs = backend.conversation_sid("bobs-own").unwrap();
    assert!(
        seen.iter()
            .any(|u| u.ends_with(&format!("/v1/Conversations/{bobs}"))),
        "the account reaches every user's conversations"
    );
}
