//! Checks for the access token's lifecycle and confidentiality (TOKEN-1..6).
//!
//! They read what the token generator issued (the TTL asked, the lifetime minted, the expiry:
//! `issued` on the generator's request facts), the event channel's token facts (warned,
//! expired, handed over, refused), the lives of instances, the sockets they opened and the
//! tokens they presented (fingerprints only), and the adapter's log lines, in which the journal
//! has already replaced every token it knows by its fingerprint.

use std::collections::BTreeMap;
use std::time::Duration;

use super::history::History;
use super::lifecycle::{End, disturbed, lives, uncaused_shutdowns, uncommanded_creations};
use super::{Check, Finding, fold};
use crate::adapter::{Command, ErrorKind, Observation, Outcome};
use crate::backend::{Control, Endpoint, Fact, Issued, MIN_TTL, TokenNotice};
use crate::clock::VirtualInstant;
use crate::journal::{EntryKind, HarnessEntry};
use crate::secrets::TokenFingerprint;
use crate::wire::InstanceId;

/// The shortest TTL an app should ask for (an hour: "several hours" is the advice).
pub(crate) const MIN_ASKED_TTL: Duration = Duration::from_secs(3600);
/// The longest TTL an app may ask for (a day).
pub(crate) const MAX_ASKED_TTL: Duration = Duration::from_secs(86_400);
/// How long after a short token a client must show it does not ask again.
pub(crate) const NO_LOOP_FOR: Duration = Duration::from_secs(60);
/// A stored token this close to its expiry is not worth starting with.
pub(crate) const STORED_MARGIN: Duration = Duration::from_secs(180);
/// How soon after the app returns (or the channel expired) a client must be back with a fresh
/// token.
pub(crate) const RESUME_WITHIN: Duration = Duration::from_secs(60);
/// How many refused handshakes with an expired token a client may make before it refreshes.
pub(crate) const MAX_EXPIRED_ATTEMPTS: usize = 2;

/// Every token the generator issued: its request entry and what it issued.
fn issued<'a>(h: &History<'a>) -> Vec<(&'a crate::journal::Entry, &'a Issued)> {
    h.entries()
        .iter()
        .filter_map(|e| e.request().and_then(|r| r.issued.as_ref()).map(|i| (e, i)))
        .collect()
}

/// When each token the journal knows expires: issued ones, and ones an event channel took.
fn expiries<'a>(h: &History<'a>) -> BTreeMap<&'a TokenFingerprint, VirtualInstant> {
    let mut out: BTreeMap<&TokenFingerprint, VirtualInstant> = issued(h)
        .into_iter()
        .map(|(_, i)| (&i.token, i.expires_at))
        .collect();
    for e in h.entries() {
        if let EntryKind::Backend(Fact::Token(t)) = &e.kind {
            out.entry(&t.token).or_insert(t.expires_at);
        }
    }
    out
}

/// Whether entry `e` is a typed report that a token was refused: an error reply or an error
/// observation of kind `token_rejected`.
fn reports_token_error(e: &crate::journal::Entry) -> bool {
    matches!(
        e.observation(),
        Some(Observation::Error {
            kind: ErrorKind::TokenRejected,
            ..
        })
    ) || e.reply().is_some_and(
        |r| matches!(&r.outcome, Outcome::Error(err) if err.kind == ErrorKind::TokenRejected),
    )
}

/// TOKEN-1: a token the generator issued living under three minutes does not work with the
/// service; the client says so with a typed error and does not fetch another in a loop while
/// the generator keeps issuing them.
pub(crate) static SHORT_TOKEN_REFUSED: Check = Check {
    name: "a token living under 3 minutes is reported as a typed error and not fetched again",
    fails_when: "the generator issued a token living under 3 minutes and, within a minute, the client fetched another, or never reported `token_rejected`",
    judge: |h| {
        let all = issued(h);
        let cases = all.iter().filter(|(_, i)| i.ttl < MIN_TTL.as_secs()).map(|(e, i)| {
            // The window: until the generator's lifetime is changed again, or the app starts
            // a client anew.
            let end = h
                .entries()
                .iter()
                .find(|x| {
                    x.seq > e.seq
                        && (matches!(x.control(), Some(Control::TokenTtl { .. }))
                            || matches!(x.command(), Some((_, Command::Start { .. }))))
                })
                .map_or(u64::MAX, |x| x.seq);
            let due = e.at.plus(NO_LOOP_FOR);
            let Some(settle) = h
                .settles()
                .iter()
                .find(|s| s.reply > e.seq && s.reply < end && h.get(s.reply).is_some_and(|r| r.at >= due))
                .copied()
            else {
                return Finding::not_provoked("");
            };
            let again: Vec<u64> = all
                .iter()
                .filter(|(x, j)| x.seq > e.seq && x.seq < end && j.identity == i.identity)
                .map(|(x, _)| x.seq)
                .collect();
            if let Some(first) = again.first() {
                return Finding::violated(
                    format!(
                        "the generator issued a token living {} s for {} ({}), and the client fetched {} more within {} s (first {}): a token under 3 minutes never works, so fetching again is a loop",
                        i.ttl,
                        i.identity,
                        h.quote(&[e.seq]),
                        again.len(),
                        NO_LOOP_FOR.as_secs(),
                        h.quote(&[*first])
                    ),
                    vec![e.seq, *first],
                );
            }
            let reported = h
                .entries()
                .iter()
                .find(|x| x.seq > e.seq && x.seq < settle.reply && reports_token_error(x));
            match reported {
                Some(r) => Finding::held(format!(
                    "a {}-second token ({}) was reported as `token_rejected` ({}) and not fetched again for {} s",
                    i.ttl,
                    h.quote(&[e.seq]),
                    h.quote(&[r.seq]),
                    NO_LOOP_FOR.as_secs()
                )),
                None => Finding::violated(
                    format!(
                        "the generator issued a token living {} s ({}) and the client had reported no `token_rejected` error by the settle {} s later (#{}): the app cannot tell why nothing works",
                        i.ttl,
                        h.quote(&[e.seq]),
                        NO_LOOP_FOR.as_secs(),
                        settle.reply
                    ),
                    vec![e.seq, settle.reply],
                ),
            }
        });
        fold(
            cases.collect::<Vec<_>>(),
            "the generator never issued a token living under 3 minutes and time never passed after one",
        )
    },
};

/// TOKEN-2: every token request asks for hours, at most a day.
pub(crate) static TTL_IN_HOURS: Check = Check {
    name: "every token request asks for a TTL of an hour to a day",
    fails_when: "a token request asked for under an hour or over a day",
    judge: |h| {
        let cases = issued(h).into_iter().map(|(e, i)| match i.ttl_asked {
            Some(t) if t < MIN_ASKED_TTL.as_secs() || t > MAX_ASKED_TTL.as_secs() => {
                Finding::violated(
                    format!(
                        "the app asked its token generator for a TTL of {t} s ({}): tokens should last hours, at most a day ({}..={} s)",
                        h.quote(&[e.seq]),
                        MIN_ASKED_TTL.as_secs(),
                        MAX_ASKED_TTL.as_secs()
                    ),
                    vec![e.seq],
                )
            }
            Some(t) => Finding::held(format!("asked for {t} s ({})", h.quote(&[e.seq]))),
            None => Finding::held(format!(
                "asked for no TTL, so the generator's hour ({})",
                h.quote(&[e.seq])
            )),
        });
        fold(cases.collect::<Vec<_>>(), "the app asked for no token")
    },
};

/// The instance that owns event socket `socket` (the one that opened it).
fn socket_owner<'a>(h: &History<'a>, socket: u64) -> Option<&'a InstanceId> {
    h.entries().iter().find_map(|e| match &e.kind {
        EntryKind::Backend(Fact::Connected { socket: s, .. }) if *s == socket => h.owner(e),
        _ => None,
    })
}

/// The token facts of the sockets `instance` opened.
fn token_facts<'a>(
    h: &History<'a>,
    instance: &InstanceId,
) -> Vec<(&'a crate::journal::Entry, &'a crate::backend::TokenFact)> {
    h.entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Backend(Fact::Token(t)) if socket_owner(h, t.socket) == Some(instance) => {
                Some((e, t))
            }
            _ => None,
        })
        .collect()
}

/// TOKEN-3: warned three minutes ahead, the running client hands a new token to its open
/// channel before the old one expires: the channel never closes for expiry, and the same
/// instance goes on.
pub(crate) static REFRESH_ON_WARNING: Check = Check {
    name: "after token_about_to_expire the running client hands a new token to its channel before expiry",
    fails_when: "a warned channel reached its token's expiry without an update_token, REST kept presenting the old token past its expiry, or the client was shut down or re-created for it",
    judge: |h| {
        let lives = lives(h);
        let stray_ends = uncaused_shutdowns(h, &lives);
        let stray_births = uncommanded_creations(h, &lives);
        let mut cases = Vec::new();
        for l in &lives {
            let facts = token_facts(h, l.instance);
            for (w, warned) in facts
                .iter()
                .filter(|(_, t)| t.notice == TokenNotice::AboutToExpire)
            {
                // Provoked once the client settled past the token's expiry while still alive,
                // or the channel expired.
                let expired = facts.iter().find(|(e, t)| {
                    e.seq > w.seq && t.notice == TokenNotice::Expired && t.token == warned.token
                });
                let past = h
                    .settles()
                    .iter()
                    .find(|s| {
                        s.reply > w.seq && h.get(s.reply).is_some_and(|r| r.at >= warned.expires_at)
                    })
                    .copied();
                let horizon = match (expired, past) {
                    (Some((e, _)), _) => e.seq,
                    (None, Some(s)) => s.reply,
                    (None, None) => continue,
                };
                if disturbed(h, w.seq, horizon) {
                    // Cut off (an outage, the background): the channel could not be handed a
                    // token; what happens at the expiry is TOKEN-4's.
                    continue;
                }
                if l.ended.is_some_and(|(end, _)| end < horizon) {
                    // Ended (by the app) before the expiry: nothing to hand over.
                    if !matches!(l.ended, Some((_, End::ShutDown))) || expired.is_none() {
                        continue;
                    }
                }
                let updated = facts.iter().find(|(e, t)| {
                    e.seq > w.seq && e.seq < horizon && t.notice == TokenNotice::Updated
                });
                if let Some((e, _)) = expired {
                    cases.push(Finding::violated(
                        format!(
                            "the channel of {} warned that its token expires ({}), and it expired and closed ({}) without the client handing over a new token",
                            l.instance,
                            h.quote(&[w.seq]),
                            h.quote(&[e.seq])
                        ),
                        vec![w.seq, e.seq],
                    ));
                    continue;
                }
                if let Some(&(at, who)) = stray_ends
                    .iter()
                    .chain(stray_births.iter())
                    .find(|(at, _)| *at > w.seq && *at < horizon)
                {
                    cases.push(Finding::violated(
                        format!(
                            "after the token warning ({}), {who} was shut down or re-created ({}) instead of taking a new token",
                            h.quote(&[w.seq]),
                            h.quote(&[at])
                        ),
                        vec![w.seq, at],
                    ));
                    continue;
                }
                // REST went on with the new token too: a request refused with the old one
                // after its expiry means half the client never took it.
                let refused = h.requests(l.instance).find(|(e, r)| {
                    e.seq > w.seq
                        && e.at >= warned.expires_at
                        && r.status == 401
                        && r.token.as_ref() == Some(&warned.token)
                });
                if let (Some((u, _)), Some((e, _))) = (updated, refused) {
                    cases.push(Finding::violated(
                        format!(
                            "warned ({}), the client handed its channel a new token ({}), but REST still presented the old one after it expired and was refused ({})",
                            h.quote(&[w.seq]),
                            h.quote(&[u.seq]),
                            h.quote(&[e.seq])
                        ),
                        vec![w.seq, u.seq, e.seq],
                    ));
                    continue;
                }
                match updated {
                    Some((u, _)) => cases.push(Finding::held(format!(
                        "warned ({}), the client handed over a new token ({}) before the old one expired",
                        h.quote(&[w.seq]),
                        h.quote(&[u.seq])
                    ))),
                    None => cases.push(Finding::violated(
                        format!(
                            "the channel of {} warned that its token expires ({}) and the client settled past the expiry (#{horizon}) without handing over a new token on the channel",
                            l.instance,
                            h.quote(&[w.seq])
                        ),
                        vec![w.seq, horizon],
                    )),
                }
            }
        }
        fold(
            cases,
            "no channel was warned about its token and then kept until past the expiry",
        )
    },
};

/// The last token `instance` presented to the backend at or before entry `seq`.
fn token_in_use<'a>(
    h: &History<'a>,
    instance: &'a InstanceId,
    seq: u64,
) -> Option<&'a TokenFingerprint> {
    let mut last = None;
    for e in h.of(instance).filter(move |e| e.seq <= seq) {
        match &e.kind {
            EntryKind::Backend(Fact::Connected { token: Some(t), .. }) => last = Some(t),
            EntryKind::Backend(Fact::Request(r))
                if r.succeeded() && r.endpoint != Endpoint::Token =>
            {
                if let Some(t) = &r.token {
                    last = Some(t);
                }
            }
            _ => {}
        }
    }
    for (e, t) in token_facts(h, instance) {
        if e.seq <= seq && t.notice == TokenNotice::Updated {
            last = Some(&t.token);
        }
    }
    last
}

/// TOKEN-4: a token that expired while the app slept (or that the channel closed for) is
/// refreshed, and the same instance comes back with a fresh one: no shutdown, no new client,
/// no loop of handshakes with the expired token.
pub(crate) static RESUME_AFTER_EXPIRY: Check = Check {
    name: "after its token expired the same instance comes back with a fresh token",
    fails_when: "after the token expired (asleep, or the channel closed for it) the client was re-created or shut down, kept presenting the expired token, or was not back within a minute",
    judge: |h| {
        let lives = lives(h);
        let stray_ends = uncaused_shutdowns(h, &lives);
        let stray_births = uncommanded_creations(h, &lives);
        let expiries = expiries(h);
        let mut cases = Vec::new();
        // The provocations: a foreground with an expired token in use, or a channel expiry.
        let mut provocations: Vec<(u64, &InstanceId, &TokenFingerprint, &'static str)> = Vec::new();
        for l in &lives {
            for (e, t) in token_facts(h, l.instance) {
                if t.notice == TokenNotice::Expired {
                    provocations.push((
                        e.seq,
                        l.instance,
                        &t.token,
                        "the channel closed at the token's expiry",
                    ));
                }
            }
            for (e, _, c) in h.commands() {
                if !matches!(c, Command::Foreground) || !l.alive_at(e.seq) {
                    continue;
                }
                if let Some(token) = token_in_use(h, l.instance, e.seq)
                    && expiries.get(token).is_some_and(|exp| *exp <= e.at)
                {
                    provocations.push((
                        e.seq,
                        l.instance,
                        token,
                        "the app came back after its token expired",
                    ));
                }
            }
        }
        for (at, instance, stale, what) in provocations {
            let Some(start) = h.get(at) else { continue };
            let due = start.at.plus(RESUME_WITHIN);
            let Some(settle) = h
                .settles()
                .iter()
                .find(|s| s.reply > at && h.get(s.reply).is_some_and(|r| r.at >= due))
                .copied()
            else {
                continue;
            };
            if disturbed(h, at, settle.reply) {
                continue;
            }
            let life = lives
                .iter()
                .find(|l| l.instance == instance && l.alive_at(at));
            if life.is_some_and(|l| {
                l.ended
                    .is_some_and(|(end, k)| end < settle.reply && k == End::Killed)
            }) {
                continue;
            }
            if let Some(&(x, who)) = stray_ends
                .iter()
                .chain(stray_births.iter())
                .find(|(x, _)| *x > at && *x < settle.reply)
            {
                cases.push(Finding::violated(
                    format!(
                        "{what} ({}), and {who} was shut down or re-created ({}) instead of refreshing the token for the same instance",
                        h.quote(&[at]),
                        h.quote(&[x])
                    ),
                    vec![at, x],
                ));
                continue;
            }
            let refused: Vec<u64> = h
                .of(instance)
                .filter(|e| e.seq <= settle.reply)
                .filter(|e| e.seq > at)
                .filter(|e| {
                    e.request()
                        .is_some_and(|r| r.status == 401 && r.token.as_ref() == Some(stale))
                })
                .map(|e| e.seq)
                .collect();
            if refused.len() > MAX_EXPIRED_ATTEMPTS {
                cases.push(Finding::violated(
                    format!(
                        "{what} ({}), and {instance} presented the expired token {} more times (first {})",
                        h.quote(&[at]),
                        refused.len(),
                        h.quote(&refused[..1])
                    ),
                    vec![at, refused[0]],
                ));
                continue;
            }
            let back = h.of(instance).filter(|e| e.seq <= settle.reply).find(|e| {
                e.seq > at
                    && matches!(&e.kind, EntryKind::Backend(Fact::Connected { token: Some(t), .. }) if t != stale)
            });
            match back {
                Some(b) => cases.push(Finding::held(format!(
                    "{what} ({}); the same instance came back with a fresh token ({})",
                    h.quote(&[at]),
                    h.quote(&[b.seq])
                ))),
                None => cases.push(Finding::violated(
                    format!(
                        "{what} ({}), and {instance} had no channel open with a fresh token by the settle {} s later (#{})",
                        h.quote(&[at]),
                        RESUME_WITHIN.as_secs(),
                        settle.reply
                    ),
                    vec![at, settle.reply],
                )),
            }
        }
        fold(
            cases,
            "no token expired while the app slept or on an open channel, with time passing after",
        )
    },
};

/// A `start` after the app was killed, for the identity its last life had: the start, the
/// newest token issued for that identity before it, and that token's issue.
fn restarts<'a>(
    h: &History<'a>,
) -> Vec<(
    &'a crate::journal::Entry,
    &'a str,
    &'a crate::journal::Entry,
    &'a Issued,
)> {
    let lives = lives(h);
    let tokens = issued(h);
    let mut out = Vec::new();
    for (e, _, c) in h.commands() {
        let Command::Start {
            identity,
            storage_dir: Some(_),
            ..
        } = c
        else {
            continue;
        };
        // The life before this start was this identity's and was killed.
        let before = lives.iter().rev().find(|l| l.created < e.seq);
        if !before.is_some_and(|l| {
            l.identity == Some(identity.as_str())
                && matches!(l.ended, Some((end, End::Killed)) if end < e.seq)
        }) {
            continue;
        }
        if let Some((t, i)) = tokens
            .iter()
            .rev()
            .find(|(t, i)| t.seq < e.seq && i.identity == *identity && i.ttl >= MIN_TTL.as_secs())
        {
            out.push((e, identity.as_str(), *t, *i));
        }
    }
    out
}

/// The first thing the backend saw after `start` from the instance it created or for its
/// identity (a token request, a REST request, a handshake).
fn first_contact<'a>(
    h: &History<'a>,
    start: &crate::journal::Entry,
    identity: &str,
) -> Option<&'a crate::journal::Entry> {
    h.entries().iter().find(|e| {
        e.seq > start.seq
            && e.request().is_some_and(|r| {
                r.issued.as_ref().is_some_and(|i| i.identity == identity)
                    || (r.endpoint == Endpoint::Token && r.issued.is_none())
                    || (r.endpoint != Endpoint::Token && h.owner(e).is_some())
            })
    })
}

/// TOKEN-5: restarted with a valid token in storage, the client does not wait for the
/// generator; with only an expired one, it does not present it.
pub(crate) static STORED_TOKEN_AT_START: Check = Check {
    name: "a restart uses a valid stored token without the generator, and never presents an expired one",
    fails_when: "restarted with a token still valid for more than 3 minutes, the client fetched a token before anything else; or it presented its expired stored token",
    judge: |h| {
        let cases = restarts(h).into_iter().map(|(start, identity, t, i)| {
            let Some(first) = first_contact(h, start, identity) else {
                return Finding::not_provoked("");
            };
            let fetched_first = first.request().is_some_and(|r| r.endpoint == Endpoint::Token);
            if i.expires_at > start.at.plus(STORED_MARGIN) {
                return if fetched_first {
                    Finding::violated(
                        format!(
                            "restarted ({}) with the token of {} ({}) valid until {}, the client asked the generator first ({}) instead of starting with it",
                            h.quote(&[start.seq]),
                            identity,
                            h.quote(&[t.seq]),
                            i.expires_at,
                            h.quote(&[first.seq])
                        ),
                        vec![start.seq, t.seq, first.seq],
                    )
                } else {
                    Finding::held(format!(
                        "restarted ({}) with a valid stored token, the client's first contact was {}",
                        h.quote(&[start.seq]),
                        h.quote(&[first.seq])
                    ))
                };
            }
            if i.expires_at > start.at {
                // Inside the margin: either way is fine.
                return Finding::not_provoked("");
            }
            let presented = h.entries().iter().find(|e| {
                e.seq > start.seq
                    && match &e.kind {
                        EntryKind::Backend(Fact::Request(r)) => r.token.as_ref() == Some(&i.token),
                        EntryKind::Backend(Fact::Connected { token, .. }) => token.as_ref() == Some(&i.token),
                        _ => false,
                    }
            });
            match presented {
                Some(p) => Finding::violated(
                    format!(
                        "restarted ({}) after the stored token of {} ({}) expired at {}, the client presented it anyway ({})",
                        h.quote(&[start.seq]),
                        identity,
                        h.quote(&[t.seq]),
                        i.expires_at,
                        h.quote(&[p.seq])
                    ),
                    vec![start.seq, p.seq],
                ),
                None => Finding::held(format!(
                    "restarted ({}) with an expired stored token, the client never presented it",
                    h.quote(&[start.seq])
                )),
            }
        });
        fold(
            cases.collect::<Vec<_>>(),
            "no client was restarted after a kill with a token stored from its earlier run",
        )
    },
};

/// TOKEN-6: no token in a URL the client requested, and none in what the adapter logged.
pub(crate) static TOKEN_CONFIDENTIAL: Check = Check {
    name: "no token travels in a URL or appears in the adapter's log",
    fails_when: "a request carried a token in its URL, or a log line held a token the client had",
    judge: |h| {
        let known: Vec<&TokenFingerprint> = expiries(h).into_keys().collect();
        if known.is_empty() {
            return Finding::not_provoked("no token was issued to the client");
        }
        for e in h.entries() {
            match &e.kind {
                EntryKind::Backend(Fact::Request(r)) if r.token_in_url => {
                    return Finding::violated(
                        format!(
                            "a token travelled in a URL ({}): URLs end up in logs along the way",
                            h.quote(&[e.seq])
                        ),
                        vec![e.seq],
                    );
                }
                EntryKind::Harness(HarnessEntry::Log { line })
                    if known.iter().any(|t| line.contains(t.as_str())) =>
                {
                    return Finding::violated(
                        format!(
                            "the adapter logged a token the client had ({}; the journal shows its fingerprint)",
                            h.quote(&[e.seq])
                        ),
                        vec![e.seq],
                    );
                }
                _ => {}
            }
        }
        Finding::held(format!(
            "{} token(s) issued; none in a URL, none in {} log line(s)",
            known.len(),
            h.entries()
                .iter()
                .filter(|e| matches!(e.kind, EntryKind::Harness(HarnessEntry::Log { .. })))
                .count()
        ))
    },
};
