//! Checks for updates: an update completes on its Updated event, and what the client shows is
//! the backend's newest value it received, never its own write over another writer's, never an
//! older snapshot over a newer one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::history::{History, Settle};
use super::{Check, Finding, fold};
use crate::adapter::{Command, Observation, Outcome, Target};
use crate::backend::{Control, Endpoint};
use crate::journal::Entry;
use crate::wire::{ConversationSid, InstanceId, ObjectKey};

/// An object as the client addresses it (its own user, or a conversation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    User,
    Conversation(ConversationSid),
}

impl Object {
    fn of_target(t: &Target) -> Self {
        match t {
            Target::User => Self::User,
            Target::Conversation { sid } => Self::Conversation(sid.clone()),
        }
    }

    fn of_key(k: &ObjectKey) -> Self {
        match k {
            ObjectKey::User(_) => Self::User,
            ObjectKey::Conversation(sid) => Self::Conversation(sid.clone()),
        }
    }

    fn fetched_by(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (Self::User, Endpoint::GetUser) => true,
            (Self::Conversation(sid), Endpoint::GetConversation { sid: s }) => sid == s,
            _ => false,
        }
    }

    fn acked_by(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (Self::User, Endpoint::UpdateUser) => true,
            (Self::Conversation(sid), Endpoint::UpdateConversation { sid: s }) => sid == s,
            _ => false,
        }
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User => f.write_str("the user"),
            Self::Conversation(sid) => write!(f, "conversation {sid}"),
        }
    }
}

/// One `update_attributes` the harness sent, with the request that carried it out.
struct Update<'a> {
    command: &'a Entry,
    id: u64,
    object: Object,
    instance: &'a InstanceId,
    /// The acknowledging request and the revision it produced.
    ack: Option<(&'a Entry, u64)>,
}

/// Every update whose acknowledgement can be told apart, each matched to the first not yet
/// matched acknowledgement after it that wrote what it asked for. (Updates of one object may
/// reach the backend in any order; two in flight at once that write the same value cannot be
/// told apart, and are left unjudged.)
fn updates<'a>(h: &History<'a>) -> Vec<Update<'a>> {
    let writes: Vec<(&Entry, u64, &Target, &Value, &InstanceId)> = h
        .commands()
        .filter_map(|(e, id, command)| match (command, e.instance.as_ref()) {
            (Command::UpdateAttributes { target, attributes }, Some(instance)) => {
                Some((e, id, target, attributes, instance))
            }
            _ => None,
        })
        .collect();
    let in_flight = |e: &Entry, id: u64| (e.seq, h.reply_to(id).map_or(u64::MAX, |(r, _)| r.seq));
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for &(e, id, target, attributes, instance) in &writes {
        let (start, end) = in_flight(e, id);
        let twin = writes.iter().any(|&(o, oid, ot, oa, oi)| {
            let (os, oe) = in_flight(o, oid);
            oid != id
                && ot == target
                && oa == attributes
                && oi == instance
                && os < end
                && start < oe
        });
        if twin {
            continue;
        }
        let object = Object::of_target(target);
        let ack = h
            .requests(instance)
            .find(|(x, r)| {
                x.seq > e.seq
                    && !used.contains(&x.seq)
                    && r.succeeded()
                    && object.acked_by(&r.endpoint)
                    && r.attributes.as_ref() == Some(attributes)
            })
            .and_then(|(x, r)| r.revision.map(|rev| (x, rev)));
        if let Some((x, _)) = ack {
            used.insert(x.seq);
        }
        out.push(Update {
            command: e,
            id,
            object,
            instance,
            ack,
        });
    }
    out
}

/// The first news of `u`'s object at or past the revision its acknowledgement produced that did
/// not come from the acknowledgement itself: an Updated event, or a fetch of the object.
fn its_event<'a>(h: &History<'a>, u: &Update<'a>) -> Option<&'a Entry> {
    // The revision did not exist before the write, so anything carrying it came after the
    // command; the backend may journal the event before the acknowledging request.
    let (_, revision) = u.ack?;
    h.of(u.instance).find(|e| {
        let at_least = |rev: Option<u64>| rev.is_some_and(|r| r >= revision);
        e.seq > u.command.seq
            && (e.frame().is_some_and(|f| {
                f.event.is_update()
                    && f.target
                        .as_ref()
                        .is_some_and(|t| Object::of_key(t) == u.object)
                    && at_least(f.revision)
            }) || e.request().is_some_and(|r| {
                r.succeeded() && u.object.fetched_by(&r.endpoint) && at_least(r.revision)
            }))
    })
}

/// UPD-1: an update is answered only after an Updated event (or a fetch of the object) at or
/// past the revision its own request produced was delivered to the client: never on the
/// acknowledgement alone.
pub(crate) static COMPLETES_ON_EVENT: Check = Check {
    name: "an update completes only after its Updated event arrived",
    fails_when: "the reply to an update comes before an Updated event (or a fetch) at or past the revision its request produced was delivered",
    judge: |h| {
        let settles = h.settles();
        let findings = updates(h).into_iter().map(|u| {
            let what = format!("the update of {} (command #{})", u.object, u.command.seq);
            let reply = h
                .reply_to(u.id)
                .filter(|(_, r)| matches!(r.outcome, Outcome::Ok(_)));
            let event = its_event(h, &u);
            // The client had a moment to answer early: it settled between the acknowledgement
            // and the event.
            let provoked = u.ack.is_some_and(|(ack, _)| {
                settles.iter().any(|s| {
                    s.reply > ack.seq && event.is_none_or(|f| h.publication_of(f) > s.reply)
                })
            });
            match (reply, u.ack, event) {
                (Some((r, _)), None, _) => Finding::violated(
                    format!("{what} completed ({}) but no update request reached the backend", r.summary()),
                    vec![u.command.seq, r.seq],
                ),
                (Some((r, _)), Some((ack, rev)), Some(f)) if f.seq > r.seq => Finding::violated(
                    format!(
                        "{what} completed ({}) before its Updated event was delivered ({}); the backend acknowledged it at revision {rev} ({})",
                        r.summary(),
                        f.summary(),
                        ack.summary()
                    ),
                    vec![ack.seq, r.seq, f.seq],
                ),
                (Some((r, _)), Some((ack, rev)), None) => Finding::violated(
                    format!(
                        "{what} completed ({}) while no Updated event at revision {rev} or later had been delivered: the client answered on the acknowledgement ({}), not on the event",
                        r.summary(),
                        ack.summary()
                    ),
                    vec![ack.seq, r.seq],
                ),
                _ if !provoked => Finding::not_provoked(""),
                (_, Some((ack, rev)), _) => Finding::held(format!(
                    "{what} was acknowledged at revision {rev} ({}) and did not complete before its Updated event",
                    ack.summary()
                )),
                (_, None, _) => Finding::not_provoked(""),
            }
        });
        fold(
            findings,
            "no update was acknowledged while its Updated event was held back and the client settled",
        )
    },
};

/// UPD-1: once an update's Updated event was delivered and the client settled, the update has
/// completed (successfully).
pub(crate) static COMPLETES_ONCE_DELIVERED: Check = Check {
    name: "an update completes once its Updated event arrived",
    fails_when: "an update whose Updated event was delivered has no successful reply by the next settle",
    judge: |h| {
        let findings = updates(h).into_iter().map(|u| {
            let Some(f) = its_event(h, &u) else {
                return Finding::not_provoked("");
            };
            let Some(settle) = h.settle_after_frame(f) else {
                return Finding::not_provoked("");
            };
            let what = format!("the update of {} (command #{})", u.object, u.command.seq);
            match h.reply_to(u.id).filter(|(r, _)| r.seq < settle.reply) {
                Some((r, rec)) => match &rec.outcome {
                    Outcome::Ok(_) => Finding::held(format!(
                        "{what} completed ({}) after its event ({})",
                        r.summary(),
                        f.summary()
                    )),
                    Outcome::Error(err) => Finding::violated(
                        format!("{what} failed after its Updated event arrived: {err} ({})", r.summary()),
                        vec![f.seq, r.seq],
                    ),
                },
                None => Finding::violated(
                    format!(
                        "{what} never completed, although its Updated event was delivered ({}) and the client settled (#{})",
                        f.summary(),
                        settle.reply
                    ),
                    vec![u.command.seq, f.seq, settle.reply],
                ),
            }
        });
        fold(
            findings,
            "no update's Updated event was delivered before the client settled",
        )
    },
};

/// A value the client received for an object: from an Updated event or a fetch of the object.
struct Delivery<'a> {
    seq: u64,
    revision: u64,
    attributes: &'a Value,
    /// Where an event was published (a fetch: `None`).
    published: Option<u64>,
}

impl Delivery<'_> {
    /// Whether the client had processed it by the reply to `settle`.
    fn processed_by(&self, settle: Settle) -> bool {
        match self.published {
            Some(p) => p < settle.command,
            None => self.seq < settle.reply,
        }
    }
}

/// A value the client showed for an object.
struct Report<'a> {
    entry: &'a Entry,
    object: Object,
    shown: &'a Value,
    instance: &'a InstanceId,
}

impl Report<'_> {
    /// `#12 ... showed {...} for conversation CH...`.
    fn describe(&self) -> String {
        format!(
            "{} showed {} for {}",
            self.entry.summary(),
            self.shown,
            self.object
        )
    }
}

/// What a value report was judged to be.
enum Shown {
    /// One of the values the client may show.
    Current,
    /// The value of an older snapshot than one the client is known to have processed.
    Older { newer: u64 },
    /// A value the backend never delivered at or past what the client had processed.
    Foreign { newer: Option<u64> },
}

struct Judged<'a> {
    report: Report<'a>,
    shown: Shown,
    /// Whether an older snapshot had been delivered after a newer one before the report.
    after_stale: bool,
    /// Whether another writer wrote the object after the client's own update of it.
    after_contest: bool,
}

/// Every value report of every instance, judged against what the client received: a report may
/// show any value delivered at or past the newest revision the client is known to have processed
/// (delivered before the last settle that was answered before the report).
fn judged_reports<'a>(h: &History<'a>) -> Vec<Judged<'a>> {
    let commands: BTreeMap<u64, &Command> = h.commands().map(|(_, id, c)| (id, c)).collect();
    let mut out = Vec::new();
    for instance in h.instances() {
        let mut deliveries: BTreeMap<Object, Vec<Delivery<'a>>> = BTreeMap::new();
        let mut stale: BTreeSet<Object> = BTreeSet::new();
        // Values delivered late, older than one delivered before them.
        let mut stale_values: BTreeMap<Object, Vec<&'a Value>> = BTreeMap::new();
        let mut updated: BTreeMap<Object, u64> = BTreeMap::new();
        // What the client itself wrote.
        let mut written: BTreeMap<Object, Vec<&'a Value>> = BTreeMap::new();
        let mut contested: BTreeSet<Object> = BTreeSet::new();
        for e in h.entries() {
            if let Some(Control::OtherWriter { object, .. }) = e.control() {
                let o = Object::of_key(object);
                if updated.contains_key(&o) {
                    contested.insert(o);
                }
                continue;
            }
            if h.owner(e) != Some(instance) {
                continue;
            }
            let delivered = match (e.frame(), e.request()) {
                (Some(f), _) if f.event.is_update() => f
                    .target
                    .as_ref()
                    .zip(f.revision)
                    .zip(f.attributes.as_ref())
                    .map(|((t, rev), a)| (Object::of_key(t), rev, a, Some(h.delivery_point(e)))),
                (_, Some(r)) if r.succeeded() => {
                    let object = match &r.endpoint {
                        Endpoint::GetUser => Some(Object::User),
                        Endpoint::GetConversation { sid } => {
                            Some(Object::Conversation(sid.clone()))
                        }
                        _ => None,
                    };
                    object
                        .zip(r.revision)
                        .zip(r.attributes.as_ref())
                        .map(|((o, rev), a)| (o, rev, a, None))
                }
                _ => None,
            };
            if let Some((object, revision, attributes, published)) = delivered {
                let list = deliveries.entry(object.clone()).or_default();
                if list.iter().any(|d| d.revision > revision) {
                    stale_values
                        .entry(object.clone())
                        .or_default()
                        .push(attributes);
                    stale.insert(object);
                }
                list.push(Delivery {
                    seq: e.seq,
                    revision,
                    attributes,
                    published,
                });
                continue;
            }
            if let Some((_, Command::UpdateAttributes { target, attributes })) = e.command() {
                updated.insert(Object::of_target(target), e.seq);
                written
                    .entry(Object::of_target(target))
                    .or_default()
                    .push(attributes);
                continue;
            }
            let report = match (e.observation(), e.reply()) {
                (
                    Some(Observation::ConversationUpdated {
                        conversation,
                        attributes,
                        ..
                    }),
                    _,
                ) => Some((Object::Conversation(conversation.clone()), attributes)),
                (Some(Observation::UserUpdated { attributes }), _) => {
                    Some((Object::User, attributes))
                }
                (_, Some(r)) => match (commands.get(&r.id), r.outcome.attributes()) {
                    (
                        Some(
                            Command::ReadAttributes { target }
                            | Command::UpdateAttributes { target, .. },
                        ),
                        Some(shown),
                    ) => Some((Object::of_target(target), shown)),
                    _ => None,
                },
                _ => None,
            };
            let Some((object, shown)) = report else {
                continue;
            };
            let Some(received) = deliveries.get(&object).filter(|d| !d.is_empty()) else {
                continue;
            };
            let floor = h
                .last_settle_before(e.seq)
                .map(|s| {
                    received
                        .iter()
                        .filter(|d| d.processed_by(s))
                        .map(|d| d.revision)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            let current = received
                .iter()
                .any(|d| d.revision >= floor && d.attributes == shown);
            let older = received
                .iter()
                .any(|d| d.revision < floor && d.attributes == shown);
            let newer = received.iter().map(|d| d.revision).max();
            let among = |m: &BTreeMap<Object, Vec<&Value>>| {
                m.get(&object).is_some_and(|v| v.contains(&shown))
            };
            // A late old snapshot that was applied is UPD-3; the client's own write shown over
            // the backend's value is UPD-2, even when the backend once delivered it too.
            out.push(Judged {
                after_stale: stale.contains(&object),
                after_contest: contested.contains(&object),
                shown: if current {
                    Shown::Current
                } else if among(&stale_values) {
                    Shown::Older { newer: floor }
                } else if among(&written) || !older {
                    Shown::Foreign { newer }
                } else {
                    Shown::Older { newer: floor }
                },
                report: Report {
                    entry: e,
                    object,
                    shown,
                    instance,
                },
            });
        }
    }
    out
}

fn newest_value<'a>(h: &History<'a>, j: &Judged<'a>) -> String {
    let newest = h
        .of(j.report.instance)
        .take_while(|e| e.seq < j.report.entry.seq)
        .filter_map(|e| e.frame().filter(|f| f.event.is_update()))
        .filter(|f| {
            f.target
                .as_ref()
                .is_some_and(|t| Object::of_key(t) == j.report.object)
        })
        .filter_map(|f| f.revision.zip(f.attributes.as_ref()))
        .max_by_key(|(rev, _)| *rev);
    match newest {
        Some((rev, a)) => format!("the newest value delivered was {a} at revision {rev}"),
        None => "no Updated event had delivered another value".into(),
    }
}

/// UPD-2: what the client shows (update results, reads, update reports) is a value the backend
/// delivered, at or past the newest revision the client processed, never its own write instead.
pub(crate) static SHOWS_BACKEND_VALUE: Check = Check {
    name: "the client shows the backend's value, not its own write",
    fails_when: "an update's result, a read or an update report shows a value (such as the client's own write) the backend did not deliver at or past the revision the client had processed",
    judge: |h| {
        let findings = judged_reports(h).into_iter().map(|j| match j.shown {
            Shown::Foreign { newer } => Finding::violated(
                format!(
                    "{}, which is not a value the backend delivered at or past the revision the client had processed{}; {}",
                    j.report.describe(),
                    newer.map_or_else(String::new, |r| format!(
                        " (it had delivered up to revision {r})"
                    )),
                    newest_value(h, &j)
                ),
                vec![j.report.entry.seq],
            ),
            Shown::Current if j.after_contest => Finding::held(format!(
                "{}, the backend's value, after another writer changed it",
                j.report.describe()
            )),
            _ => Finding::not_provoked(""),
        });
        fold(
            findings,
            "the client showed no value of an object it updated while another writer changed it",
        )
    },
};

/// UPD-3: a late older snapshot never replaces a newer one the client already processed.
pub(crate) static STALE_NEVER_WINS: Check = Check {
    name: "an older snapshot never overwrites a newer one",
    fails_when: "after a late stale event, a read, an update result or an update report shows the older value",
    judge: |h| {
        let findings = judged_reports(h).into_iter().map(|j| match j.shown {
            Shown::Older { newer } => Finding::violated(
                format!(
                    "{}, the value of an older snapshot than revision {newer}, which it had already processed",
                    j.report.describe()
                ),
                vec![j.report.entry.seq],
            ),
            Shown::Current if j.after_stale => Finding::held(format!(
                "{}, still the newer value, after a stale event",
                j.report.describe()
            )),
            _ => Finding::not_provoked(""),
        });
        fold(
            findings,
            "no value was reported after a stale snapshot was delivered late",
        )
    },
};
