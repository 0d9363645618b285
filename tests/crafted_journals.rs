//! Journals written by hand, judged by the catalog: the orderings a real run produces only
//! sometimes (updates acknowledged out of order, an event before a fetch) are pinned here, so a
//! check that misjudges them fails every time, not once in a while.

use convo_tck::Secrets;
use convo_tck::adapter::{Command, CommandKind, Observation, Outcome, ReplyBody, Target};
use convo_tck::backend::{Endpoint, Fact, FrameFact, PublishedFact, RequestFact};
use convo_tck::clock::VirtualClock;
use convo_tck::journal::{EntryKind, HarnessEntry, Journal, ReplyRecord};
use convo_tck::rules::{self, RuleId};
use convo_tck::wire::{ConversationSid, EventType, InstanceId, ObjectKey};
use serde_json::{Value, json};

/// A journal of one client instance, written step by step.
struct Scene {
    journal: Journal,
    client: Option<InstanceId>,
    next_event: u64,
    next_id: u64,
}

const CH: &str = "CH00000000000000000000000000000001";

fn sid() -> ConversationSid {
    CH.into()
}

impl Scene {
    fn new() -> Self {
        Self {
            journal: Journal::new(VirtualClock::new(), Secrets::default()),
            client: Some("ref-1".into()),
            next_event: 1,
            next_id: 1,
        }
    }

    fn command(&mut self, command: Command) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.journal
            .note(self.client.clone(), HarnessEntry::Command { id, command });
        id
    }

    fn reply(&self, id: u64, command: CommandKind, outcome: Outcome) {
        self.journal.note(
            self.client.clone(),
            HarnessEntry::Reply(ReplyRecord {
                id,
                command,
                outcome,
            }),
        );
    }

    fn settle(&mut self) {
        let id = self.command(Command::Settle);
        self.reply(id, CommandKind::Settle, Outcome::done());
    }

    fn observe(&self, observation: Observation) {
        self.journal.note(
            self.client.clone(),
            HarnessEntry::Observation { observation },
        );
    }

    fn request(
        &self,
        method: &str,
        endpoint: Endpoint,
        revision: Option<u64>,
        attributes: Option<Value>,
    ) {
        self.journal.record(
            self.client.clone(),
            EntryKind::Backend(Fact::Request(RequestFact {
                method: method.into(),
                path: "/v1/...".into(),
                query: None,
                endpoint,
                status: 200,
                revision,
                attributes,
                token: None,
                error: None,
                issued: None,
                token_in_url: false,
            })),
        );
    }

    /// The client's event channel opens.
    fn open_channel(&self) {
        self.journal.record(
            self.client.clone(),
            EntryKind::Backend(Fact::Request(RequestFact {
                method: "GET".into(),
                path: "/v1/events".into(),
                query: None,
                endpoint: Endpoint::EventChannel,
                status: 101,
                revision: None,
                attributes: None,
                token: None,
                error: None,
                issued: None,
                token_in_url: false,
            })),
        );
    }

    /// An event published and delivered to the client.
    fn event(
        &mut self,
        event: EventType,
        revision: u64,
        attributes: Option<Value>,
        index: Option<u64>,
    ) {
        let event_seq = self.next_event;
        self.next_event += 1;
        let target = Some(ObjectKey::Conversation(sid()));
        self.journal.record(
            None,
            EntryKind::Backend(Fact::Published(PublishedFact {
                event_seq,
                event,
                target: target.clone(),
                revision: Some(revision),
                audience: vec!["alice".into()],
            })),
        );
        self.journal.record(
            self.client.clone(),
            EntryKind::Backend(Fact::Frame(FrameFact {
                event_seq,
                event,
                target,
                revision: Some(revision),
                attributes,
                index,
                token: None,
                socket: None,
            })),
        );
    }

    fn violations(&self) -> Vec<(RuleId, String)> {
        rules::judge(&self.journal.snapshot())
            .into_iter()
            .filter(|j| j.finding.is_violated())
            .map(|j| (j.rule, j.finding.evidence().to_owned()))
            .collect()
    }

    fn held(&self, rule: &str) -> bool {
        let id: RuleId = rule.parse().unwrap();
        rules::judge(&self.journal.snapshot())
            .iter()
            .any(|j| j.rule == id && j.finding.is_held())
    }
}

#[test]
fn an_edit_reported_after_a_fetch_answers_the_edit_after_the_fetch() {
    let mut s = Scene::new();
    // Message 1 is edited before the app fetched it; the client rightly says nothing.
    s.event(EventType::MessageUpdated, 1, None, Some(1));
    s.settle();
    let fetch = s.command(Command::FetchMessages {
        conversation: sid(),
        count: 1,
    });
    s.request("GET", Endpoint::Messages { sid: sid() }, None, None);
    s.reply(
        fetch,
        CommandKind::FetchMessages,
        Outcome::Ok(ReplyBody::Messages { messages: vec![1] }),
    );
    // Edited again: now it is fetched, and the client reports it.
    s.event(EventType::MessageUpdated, 1, None, Some(1));
    s.observe(Observation::MessageUpdated {
        conversation: sid(),
        index: 1,
    });
    s.settle();
    assert_eq!(s.violations(), vec![]);
    assert!(s.held("MSG-2"));
}

#[test]
fn updates_acknowledged_out_of_command_order_are_each_matched_to_their_own_write() {
    let mut s = Scene::new();
    let target = Target::Conversation { sid: sid() };
    let a = s.command(Command::UpdateAttributes {
        target: target.clone(),
        attributes: json!({"v": 1}),
    });
    let b = s.command(Command::UpdateAttributes {
        target,
        attributes: json!({"v": 2}),
    });
    // The backend takes B first.
    let update = || Endpoint::UpdateConversation { sid: sid() };
    s.request("POST", update(), Some(2), Some(json!({"v": 2})));
    s.event(
        EventType::ConversationUpdated,
        2,
        Some(json!({"v": 2})),
        None,
    );
    s.request("POST", update(), Some(3), Some(json!({"v": 1})));
    let attrs = |v: Value| Outcome::Ok(ReplyBody::Attributes { attributes: v });
    s.reply(b, CommandKind::UpdateAttributes, attrs(json!({"v": 2})));
    s.event(
        EventType::ConversationUpdated,
        3,
        Some(json!({"v": 1})),
        None,
    );
    s.reply(a, CommandKind::UpdateAttributes, attrs(json!({"v": 1})));
    s.settle();
    let upd: Vec<_> = s
        .violations()
        .into_iter()
        .filter(|(r, _)| r.as_str().starts_with("UPD"))
        .collect();
    assert_eq!(upd, vec![]);
}

#[test]
fn showing_its_own_write_over_another_writers_newer_value_is_upd_2_not_upd_3() {
    let mut s = Scene::new();
    let target = Target::Conversation { sid: sid() };
    s.request(
        "GET",
        Endpoint::GetConversation { sid: sid() },
        Some(1),
        Some(json!({"topic": "old"})),
    );
    s.request("GET", Endpoint::Participants { sid: sid() }, None, None);
    let write = s.command(Command::UpdateAttributes {
        target: target.clone(),
        attributes: json!({"topic": "mine"}),
    });
    s.request(
        "POST",
        Endpoint::UpdateConversation { sid: sid() },
        Some(2),
        Some(json!({"topic": "mine"})),
    );
    s.event(
        EventType::ConversationUpdated,
        2,
        Some(json!({"topic": "mine"})),
        None,
    );
    let attrs = |v: Value| Outcome::Ok(ReplyBody::Attributes { attributes: v });
    s.reply(
        write,
        CommandKind::UpdateAttributes,
        attrs(json!({"topic": "mine"})),
    );
    s.event(
        EventType::ConversationUpdated,
        3,
        Some(json!({"topic": "theirs"})),
        None,
    );
    s.settle();
    let read = s.command(Command::ReadAttributes { target });
    s.reply(
        read,
        CommandKind::ReadAttributes,
        attrs(json!({"topic": "mine"})),
    );
    let rules: Vec<&str> = s.violations().iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rules, vec!["UPD-2"]);
}

#[test]
fn a_removal_report_without_a_backend_removal_is_a_list_3_violation() {
    let mut s = Scene::new();
    s.open_channel();
    let page = Endpoint::UserConversations {
        user: "alice".into(),
        page: 0,
        last: true,
        items: vec![sid()],
    };
    s.request("GET", page, None, None);
    s.observe(Observation::ConversationAdded {
        conversation: sid(),
    });
    // A new message; the client "refreshes" the conversation by removing and adding it.
    s.event(EventType::MessageAdded, 1, None, Some(0));
    s.observe(Observation::MessageAdded {
        conversation: sid(),
        index: 0,
    });
    s.observe(Observation::ConversationRemoved {
        conversation: sid(),
    });
    s.observe(Observation::ConversationAdded {
        conversation: sid(),
    });
    s.settle();
    let rules: Vec<&str> = s.violations().iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rules, vec!["LIST-3"]);
}

/// A journal of starts and token mints, none of whose backend entries name an instance.
struct Mints {
    journal: Journal,
    next_id: u64,
}

impl Mints {
    fn new() -> Self {
        Self {
            journal: Journal::new(VirtualClock::new(), Secrets::default()),
            next_id: 1,
        }
    }

    fn start(&mut self, under: Option<&str>, identity: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let command = Command::Start {
            identity: identity.into(),
            token_url: "http://127.0.0.1:1/token".into(),
            rest_url: "http://127.0.0.1:1".into(),
            events_url: "ws://127.0.0.1:2/v1/events".into(),
            twilsock_url: None,
            storage_dir: None,
            device_token: None,
        };
        self.journal.note(
            under.map(InstanceId::from),
            HarnessEntry::Command { id, command },
        );
        id
    }

    fn reply(&self, under: &str, id: u64, outcome: Outcome) {
        self.journal.note(
            Some(under.into()),
            HarnessEntry::Reply(ReplyRecord {
                id,
                command: CommandKind::Start,
                outcome,
            }),
        );
    }

    /// A headerless request: a mint for `identity` (when given), or one presenting `token`.
    fn request(&self, identity: Option<&str>, token: &str) -> u64 {
        let fp = convo_tck::TokenFingerprint::of(token);
        self.journal.record(
            None,
            EntryKind::Backend(Fact::Request(RequestFact {
                method: if identity.is_some() { "POST" } else { "GET" }.into(),
                path: "/...".into(),
                query: None,
                endpoint: if identity.is_some() {
                    Endpoint::Token
                } else {
                    Endpoint::GetUser
                },
                status: 200,
                revision: None,
                attributes: None,
                token: identity.is_none().then(|| fp.clone()),
                error: None,
                issued: identity.map(|identity| convo_tck::backend::Issued {
                    identity: identity.into(),
                    token: fp,
                    ttl_asked: Some(3600),
                    ttl: 3600,
                    expires_at: Default::default(),
                }),
                token_in_url: false,
            })),
        )
    }
}

#[test]
fn a_minted_token_is_owned_only_by_the_one_instance_started_as_its_identity() {
    use convo_tck::adapter::{CommandError, ErrorKind};
    use convo_tck::checks::History;

    // alice starts and gets ref-1; bob's start fails (its error reply is journaled under the
    // instance the driver last saw, ref-1): bob's token is nobody's.
    let mut j = Mints::new();
    let a = j.start(None, "alice");
    let alice_mint = j.request(Some("alice"), "token-a");
    j.reply(
        "ref-1",
        a,
        Outcome::Ok(ReplyBody::Started {
            instance: "ref-1".into(),
        }),
    );
    let b = j.start(Some("ref-1"), "bob");
    let bob_mint = j.request(Some("bob"), "token-b");
    j.reply(
        "ref-1",
        b,
        Outcome::Error(CommandError::new(ErrorKind::TokenRejected, "refused")),
    );
    let bob_read = j.request(None, "token-b");
    let alice_read = j.request(None, "token-a");
    let entries = j.journal.snapshot();
    let h = History::new(&entries);
    let owner = |seq: u64| h.get(seq).and_then(|e| h.owner(e)).map(ToString::to_string);
    assert_eq!(owner(alice_mint).as_deref(), Some("ref-1"));
    assert_eq!(owner(alice_read).as_deref(), Some("ref-1"));
    assert_eq!(owner(bob_mint), None);
    // The generator's own request is judged by identity (TOKEN-1, TOKEN-2), not reported as
    // unattributed; bob's token used against the service is.
    let anonymous: Vec<u64> = h.unattributed_requests().iter().map(|e| e.seq).collect();
    assert_eq!(anonymous, vec![bob_read]);

    // Two starts as alice, the second never answered: a token minted before the second start
    // is the first instance's; one minted after it could be either's, so it is nobody's.
    let mut j = Mints::new();
    let a = j.start(None, "alice");
    let first = j.request(Some("alice"), "token-a");
    j.reply(
        "ref-1",
        a,
        Outcome::Ok(ReplyBody::Started {
            instance: "ref-1".into(),
        }),
    );
    j.start(Some("ref-1"), "alice");
    let second = j.request(Some("alice"), "token-a2");
    let entries = j.journal.snapshot();
    let h = History::new(&entries);
    let owner = |seq: u64| h.get(seq).and_then(|e| h.owner(e)).map(ToString::to_string);
    assert_eq!(owner(first).as_deref(), Some("ref-1"));
    assert_eq!(owner(second), None);
}
