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
