//! Checks for the client lifecycle: one instance survives outages and background cycles, it is
//! shut down only by a logout or a switch of login, nothing of it is used after its end, it keeps
//! one event socket and backs off when reconnecting, and it releases its handles before it goes.
//!
//! Everything here reads the lives of instances (created, shut down or killed), the episodes the
//! harness provoked (outages between an `outage` and a `restored` control, background between
//! the two commands) and the backend's socket facts (opened, closed, attempts dropped by a
//! half-open network), each with its virtual time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::history::History;
use super::{Check, Finding, fold};
use crate::adapter::{Command, CommandKind, ErrorKind, HandleId, Observation, Outcome};
use crate::backend::{Control, Endpoint, Fact, Outage, Port};
use crate::journal::{Entry, EntryKind};
use crate::wire::InstanceId;

/// The longest a client may take to reconnect once the network is back: its backoff's ceiling.
pub(crate) const RECONNECT_WITHIN: Duration = Duration::from_secs(5 * 60);
/// The most event-channel attempts one instance may make in any [`RATE_WINDOW`] of an outage.
pub(crate) const MAX_ATTEMPTS_PER_WINDOW: usize = 15;
/// The window the attempt rate is judged over.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The least time between two failed attempts of one instance.
pub(crate) const MIN_ATTEMPT_GAP: Duration = Duration::from_millis(500);

/// How an instance's life ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The client reported its shutdown.
    ShutDown,
    /// The harness killed the app.
    Killed,
}

/// One client instance's life, by journal entries.
#[derive(Clone, Debug)]
pub(super) struct Life<'a> {
    pub(super) instance: &'a InstanceId,
    pub(super) created: u64,
    /// The identity the `start` before its creation named.
    pub(super) identity: Option<&'a str>,
    pub(super) ended: Option<(u64, End)>,
}

impl Life<'_> {
    pub(super) fn alive_at(&self, seq: u64) -> bool {
        self.created < seq && self.ended.is_none_or(|(end, _)| end > seq)
    }
}

/// Every instance's life, in order of creation.
pub(super) fn lives<'a>(h: &History<'a>) -> Vec<Life<'a>> {
    let mut lives: Vec<Life<'a>> = Vec::new();
    let mut identity = None;
    for e in h.entries() {
        if let Some((_, Command::Start { identity: who, .. })) = e.command() {
            identity = Some(who.as_str());
        }
        if let Some((_, Command::Kill)) = e.command() {
            for l in lives.iter_mut().filter(|l| l.ended.is_none()) {
                l.ended = Some((e.seq, End::Killed));
            }
        }
        match e.observation() {
            Some(Observation::ClientCreated { instance }) => lives.push(Life {
                instance,
                created: e.seq,
                identity,
                ended: None,
            }),
            Some(Observation::ClientShutDown { instance }) => {
                if let Some(l) = lives
                    .iter_mut()
                    .rev()
                    .find(|l| l.instance == instance && l.ended.is_none())
                {
                    l.ended = Some((e.seq, End::ShutDown));
                }
            }
            _ => {}
        }
    }
    lives
}

/// Something the harness did that a client must live through: an outage or a background spell.
#[derive(Clone, Copy, Debug)]
struct Episode {
    /// What it was.
    kind: EpisodeKind,
    /// Its first entry (the outage control, the `background` command).
    begin: u64,
    /// Its last entry (the restore, the `foreground` command), if it ended.
    end: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpisodeKind {
    Outage(Outage),
    Background,
}

impl EpisodeKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Outage(Outage::Refuse) => "outage (refused)",
            Self::Outage(Outage::Drop) => "outage (half-open)",
            Self::Outage(Outage::Silence) => "outage (silent socket)",
            Self::Background => "app background spell",
        }
    }
}

/// The outages and background spells the harness provoked, in order.
fn episodes(h: &History<'_>) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let close = |out: &mut Vec<Episode>, seq: u64, bg: bool| {
        if let Some(ep) = out
            .iter_mut()
            .rev()
            .find(|ep| ep.end.is_none() && (ep.kind == EpisodeKind::Background) == bg)
        {
            ep.end = Some(seq);
        }
    };
    for e in h.entries() {
        match (e.control(), e.command()) {
            (Some(Control::Outage { outage }), _) => {
                close(&mut out, e.seq, false);
                out.push(Episode {
                    kind: EpisodeKind::Outage(*outage),
                    begin: e.seq,
                    end: None,
                });
            }
            (Some(Control::Restored), _) => close(&mut out, e.seq, false),
            (_, Some((_, Command::Background))) => out.push(Episode {
                kind: EpisodeKind::Background,
                begin: e.seq,
                end: None,
            }),
            (_, Some((_, Command::Foreground))) => close(&mut out, e.seq, true),
            _ => {}
        }
    }
    out
}

/// The entry that ended `ep` and the first settle answered after it at least `grace` of virtual
/// time later: the point by which the client had to be back.
fn settled_past<'a>(
    h: &History<'a>,
    ep: &Episode,
    grace: Duration,
) -> Option<(&'a Entry, crate::checks::Settle)> {
    let end = h.get(ep.end?)?;
    let due = end.at.plus(grace);
    let settle = h
        .settles()
        .iter()
        .find(|s| s.reply > end.seq && h.get(s.reply).is_some_and(|e| e.at >= due))
        .copied()?;
    Some((end, settle))
}

/// Whether an outage or a background spell was in force at some point strictly between
/// entries `from` and `to` (one that ends at `from`, like the background a foreground ends, does
/// not count): a client cannot be judged on reaching the backend meanwhile.
pub(super) fn disturbed(h: &History<'_>, from: u64, to: u64) -> bool {
    episodes(h)
        .iter()
        .any(|x| x.begin < to && x.end.unwrap_or(u64::MAX) > from)
}

/// Whether the network refused or dropped connections at some point strictly between entries
/// `from` and `to`: a client cannot be judged on a write the backend could not receive.
pub(super) fn network_down(h: &History<'_>, from: u64, to: u64) -> bool {
    episodes(h).iter().any(|x| {
        matches!(
            x.kind,
            EpisodeKind::Outage(Outage::Refuse) | EpisodeKind::Outage(Outage::Drop)
        ) && x.begin < to
            && x.end.unwrap_or(u64::MAX) > from
    })
}

/// Whether an episode other than `ep` (a silence aside: a silenced socket is replaced like any
/// lost one) was in force at some point between entries `from` and `to`: then `ep`'s aftermath
/// is that episode's to judge (a client in the background does not reconnect; a client facing
/// another outage cannot).
fn interfered(all: &[Episode], ep: &Episode, from: u64, to: u64) -> bool {
    all.iter().any(|x| {
        x.begin != ep.begin
            && x.kind != EpisodeKind::Outage(Outage::Silence)
            && x.begin < to
            && x.end.unwrap_or(u64::MAX) > from
    })
}

/// The socket facts of one instance: opened (socket number) and closed. A close is the
/// instance's when the socket it closes is: the backend journals it with the instance the
/// socket named, which is none for a socket attributed by its token alone.
fn sockets<'a>(h: &History<'a>, instance: &'a InstanceId) -> Vec<(&'a Entry, bool, u64)> {
    let mut mine = BTreeSet::new();
    // A socket's close is attributed to whoever opened it, so the instance's own entries hold
    // every close of its sockets.
    h.of(instance)
        .filter_map(|e| match &e.kind {
            EntryKind::Backend(Fact::Connected { socket, .. }) if h.owner(e) == Some(instance) => {
                mine.insert(*socket);
                Some((e, true, *socket))
            }
            EntryKind::Backend(Fact::Disconnected { socket }) if mine.contains(socket) => {
                Some((e, false, *socket))
            }
            _ => None,
        })
        .collect()
}

/// The sockets of `instance` open at entry `seq`.
fn open_at(h: &History<'_>, instance: &InstanceId, seq: u64) -> BTreeSet<u64> {
    let mut open = BTreeSet::new();
    for (e, opened, socket) in sockets(h, instance) {
        if e.seq > seq {
            break;
        }
        if opened {
            open.insert(socket);
        } else {
            open.remove(&socket);
        }
    }
    open
}

/// The commands that end an instance on purpose: a logout, or a start (of another login).
fn is_shutdown_cause(command: &Command) -> bool {
    matches!(command, Command::Logout | Command::Start { .. })
}

/// Shutdowns no logout or switch of login asked for: (shutdown entry, instance).
pub(super) fn uncaused_shutdowns<'a>(
    h: &History<'a>,
    lives: &[Life<'a>],
) -> Vec<(u64, &'a InstanceId)> {
    let mut out = Vec::new();
    for l in lives {
        let Some((end, End::ShutDown)) = l.ended else {
            continue;
        };
        let caused = h
            .commands()
            .any(|(e, _, c)| e.seq > l.created && e.seq < end && is_shutdown_cause(c));
        if !caused {
            out.push((end, l.instance));
        }
    }
    out
}

/// Instances created with no `start` asking for them (the client re-created itself).
pub(super) fn uncommanded_creations<'a>(
    h: &History<'a>,
    lives: &[Life<'a>],
) -> Vec<(u64, &'a InstanceId)> {
    let mut last_start_used = 0;
    let mut out = Vec::new();
    for l in lives {
        let start = h
            .commands()
            .filter(|(e, _, c)| {
                e.seq < l.created && e.seq > last_start_used && matches!(c, Command::Start { .. })
            })
            .map(|(e, _, _)| e.seq)
            .last();
        match start {
            Some(s) => last_start_used = s,
            None => out.push((l.created, l.instance)),
        }
    }
    out
}

fn life_at<'l, 'a>(lives: &'l [Life<'a>], seq: u64) -> Option<&'l Life<'a>> {
    lives.iter().rev().find(|l| l.alive_at(seq))
}

/// Judges whether the instance live at an episode's start came through it: the same instance,
/// no shutdown or re-creation, an open socket by the first settle at least `grace` of virtual
/// time after the episode ended.
fn same_instance_through(
    h: &History<'_>,
    kinds: fn(EpisodeKind) -> bool,
    grace: Duration,
    what: &str,
) -> Finding {
    let lives = lives(h);
    let uncaused = uncaused_shutdowns(h, &lives);
    let recreated = uncommanded_creations(h, &lives);
    let mut findings = Vec::new();
    let all = episodes(h);
    for ep in all.iter().copied().filter(|ep| kinds(ep.kind)) {
        let Some(life) = life_at(&lives, ep.begin) else {
            continue;
        };
        let Some((end_entry, settle)) = settled_past(h, &ep, grace) else {
            continue;
        };
        let end = end_entry.seq;
        if interfered(&all, &ep, end, settle.reply) {
            // Another outage or spell was in force before the bound passed: it is judged
            // instead.
            continue;
        }
        let what_ep = ep.kind.describe();
        if let Some((seq, inst)) = uncaused
            .iter()
            .find(|(s, i)| *i == life.instance && *s > ep.begin && *s <= settle.reply)
        {
            findings.push(Finding::violated(
                format!(
                    "instance {inst} was shut down during an {what_ep} (#{}) and nothing asked for it: #{seq} {}",
                    ep.begin,
                    h.quote(&[*seq])
                ),
                vec![ep.begin, *seq],
            ));
            continue;
        }
        if let Some((seq, inst)) = recreated
            .iter()
            .find(|(s, _)| *s > ep.begin && *s <= settle.reply)
        {
            findings.push(Finding::violated(
                format!(
                    "a new instance {inst} replaced {} during an {what_ep} (#{}): #{seq} {}",
                    life.instance,
                    ep.begin,
                    h.quote(&[*seq])
                ),
                vec![ep.begin, *seq],
            ));
            continue;
        }
        if life.ended.is_some_and(|(s, _)| s <= settle.reply) {
            // Ended on purpose (a logout inside the window): nothing to judge.
            continue;
        }
        let mut open = open_at(h, life.instance, settle.reply);
        if ep.kind == EpisodeKind::Outage(Outage::Silence) {
            // A silenced socket is open but dead: only a replacement counts.
            let silenced = open_at(h, life.instance, ep.begin);
            open.retain(|s| !silenced.contains(s));
        }
        if open.is_empty() {
            findings.push(Finding::violated(
                format!(
                    "instance {} had no event socket open {}s of virtual time after the {what_ep} ended (#{end}); by the settle #{} it had not reconnected",
                    life.instance,
                    grace.as_secs(),
                    settle.reply
                ),
                vec![ep.begin, end, settle.reply],
            ));
            continue;
        }
        findings.push(Finding::held(format!(
            "instance {} came through an {what_ep} (#{}..#{end}) and had socket {} open by #{}",
            life.instance,
            ep.begin,
            open.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            settle.reply
        )));
    }
    fold(
        findings,
        &format!("no {what} ended with a client alive and a settle after it"),
    )
}

/// Judges that the events published for an instance's identity while it was cut off (from the
/// episode's start to the first socket it opened after that) reached it exactly once: on that
/// socket, or on a socket it kept through the episode (a client may keep its socket in the
/// background; a silenced socket carries nothing). A client that never opened a new socket is
/// judged at the first settle `grace` after the episode ended.
fn cut_off_events_once(
    h: &History<'_>,
    kinds: fn(EpisodeKind) -> bool,
    grace: Duration,
    what: &str,
) -> Finding {
    let lives = lives(h);
    let all = episodes(h);
    let mut findings = Vec::new();
    for ep in all.iter().copied().filter(|ep| kinds(ep.kind)) {
        let Some(life) = life_at(&lives, ep.begin) else {
            continue;
        };
        let Some(identity) = life.identity else {
            continue;
        };
        let what_ep = ep.kind.describe();
        // The first socket the instance opened once the episode began (a silenced socket is
        // replaced before the episode is called off), and the settle that covers its replay.
        let back = sockets(h, life.instance)
            .into_iter()
            .find(|(e, opened, _)| *opened && e.seq > ep.begin)
            .map(|(e, _, _)| e.seq);
        let (until, settle) = match back {
            Some(back) => match h.settle_after(back) {
                Some(settle) => (back, settle),
                None => continue,
            },
            None => {
                // Never back: judged once the bound after the episode's end has passed.
                let Some((end, settle)) = settled_past(h, &ep, grace) else {
                    continue;
                };
                if interfered(&all, &ep, end.seq, settle.reply) {
                    continue;
                }
                (settle.reply, settle)
            }
        };
        if life.ended.is_some_and(|(s, _)| s <= settle.reply) {
            continue;
        }
        // What the instance had processed before the episode began (a settle covered its frame
        // before then) must not be written to it again on a socket opened since: a reconnect
        // resumes after the last event received, so it gets what it had once, not twice.
        if let Some(again) = replayed(h, life.instance, ep.begin, settle.reply) {
            let (event, first, covered, frame) = again;
            findings.push(Finding::violated(
                format!(
                    "event {event} reached instance {} before the {what_ep} (#{first}, processed by the settle #{covered}) and was written to it again on a socket it opened after the {what_ep} began (#{}): #{frame} {}",
                    life.instance,
                    ep.begin,
                    h.quote(&[frame])
                ),
                vec![first, ep.begin, frame],
            ));
            continue;
        }
        let missed: Vec<(u64, u64)> = h
            .entries()
            .iter()
            .filter(|e| e.seq > ep.begin && e.seq < until)
            .filter_map(|e| e.published().map(|p| (e.seq, p)))
            .filter(|(_, p)| p.audience.iter().any(|a| a == identity))
            .map(|(seq, p)| (seq, p.event_seq))
            .collect();
        if missed.is_empty() {
            continue;
        }
        // Sockets open when it began: what they carried may or may not have been read.
        let old_sockets = open_at(h, life.instance, ep.begin);
        let mut fresh: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut stale: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for e in h.entries().iter().filter(|e| e.seq <= settle.reply) {
            if let Some(f) = e.frame()
                && h.owner(e) == Some(life.instance)
            {
                let old = f.socket.is_some_and(|s| old_sockets.contains(&s));
                let into = if old { &mut stale } else { &mut fresh };
                into.entry(f.event_seq).or_default().push(e.seq);
            }
        }
        let mut bad = None;
        for (published_at, event) in &missed {
            let frames = fresh.get(event).map_or(&[][..], Vec::as_slice);
            let on_old = stale.get(event).is_some_and(|v| !v.is_empty());
            match frames.len() {
                1 => {}
                // Written to a socket the client kept (or was letting go of): it may have
                // read it there.
                0 if on_old => {}
                0 => {
                    let how = match back {
                        Some(b) => format!("after it reconnected (#{b})"),
                        None => ": it never opened a new socket".to_owned(),
                    };
                    bad = Some(Finding::violated(
                        format!(
                            "event {event} (#{published_at}) was published for {identity} during an {what_ep} (#{}) and never reached instance {} {how}, by the settle #{}",
                            ep.begin, life.instance, settle.reply
                        ),
                        std::iter::once(*published_at)
                            .chain(back)
                            .chain([settle.reply])
                            .collect(),
                    ));
                    break;
                }
                n => {
                    bad = Some(Finding::violated(
                        format!(
                            "event {event} (#{published_at}), published during an {what_ep}, reached instance {} {n} times after it reconnected: {}",
                            life.instance,
                            h.quote(frames)
                        ),
                        frames.to_vec(),
                    ));
                    break;
                }
            }
        }
        findings.push(bad.unwrap_or_else(|| {
            Finding::held(format!(
                "{} event(s) published during an {what_ep} (#{}) reached instance {} once each by #{}",
                missed.len(),
                ep.begin,
                life.instance,
                settle.reply
            ))
        }));
    }
    fold(
        findings,
        &format!("no event was published for a client while it was cut off by {what}"),
    )
}

/// An event `instance` had processed before entry `begin` (its frame on a socket opened before
/// then, covered by a settle answered before then) that was written to it again, by entry
/// `until`, on a socket it opened after `begin`: (event seq, first frame, covering settle's
/// reply, repeated frame).
fn replayed(
    h: &History<'_>,
    instance: &InstanceId,
    begin: u64,
    until: u64,
) -> Option<(u64, u64, u64, u64)> {
    let fresh: BTreeSet<u64> = sockets(h, instance)
        .into_iter()
        .filter(|(e, opened, _)| *opened && e.seq > begin && e.seq <= until)
        .map(|(_, _, socket)| socket)
        .collect();
    if fresh.is_empty() {
        return None;
    }
    let mut had: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in h.entries().iter().filter(|e| e.seq <= until) {
        let Some(f) = e.frame() else { continue };
        if h.owner(e) != Some(instance) {
            continue;
        }
        if f.socket.is_some_and(|s| fresh.contains(&s)) {
            if let Some((first, covered)) = had.get(&f.event_seq) {
                return Some((f.event_seq, *first, *covered, e.seq));
            }
        } else if e.seq < begin
            && let Some(settle) = h.settle_after_frame(e).filter(|s| s.reply < begin)
        {
            had.entry(f.event_seq).or_insert((e.seq, settle.reply));
        }
    }
    None
}

fn is_outage(k: EpisodeKind) -> bool {
    matches!(k, EpisodeKind::Outage(_))
}

fn is_background(k: EpisodeKind) -> bool {
    k == EpisodeKind::Background
}

/// LIFE-1: after an outage the same instance is back on its own.
pub(crate) static SAME_INSTANCE_AFTER_OUTAGE: Check = Check {
    name: "the same instance reconnects after an outage",
    fails_when: "the instance is shut down or replaced during an outage, or has no socket open once the network is back and the reconnect bound passed",
    judge: |h| same_instance_through(h, is_outage, RECONNECT_WITHIN, "outage"),
};

/// LIFE-1: what was published during an outage arrives once after it.
pub(crate) static OUTAGE_EVENTS_ONCE: Check = Check {
    name: "events published during an outage are delivered exactly once after it",
    fails_when: "an event published for the client while it was cut off never reaches it after the reconnect, or reaches it twice",
    judge: |h| cut_off_events_once(h, is_outage, RECONNECT_WITHIN, "an outage"),
};

/// LIFE-2: back from the background, the same instance is connected again.
pub(crate) static SAME_INSTANCE_AFTER_BACKGROUND: Check = Check {
    name: "the same instance resumes after background and foreground",
    fails_when: "the instance is shut down or replaced around a background spell, or has no socket open after the foreground",
    judge: |h| same_instance_through(h, is_background, Duration::ZERO, "background spell"),
};

/// LIFE-2: what was published in the background arrives once after the foreground.
pub(crate) static BACKGROUND_EVENTS_ONCE: Check = Check {
    name: "events published in the background are delivered exactly once after the foreground",
    fails_when: "an event published while the app was in the background never reaches the client after it came back, or reaches it twice",
    judge: |h| cut_off_events_once(h, is_background, Duration::ZERO, "a background spell"),
};

/// LIFE-3: shutdowns come only from a logout or a switch of login.
pub(crate) static SHUTDOWN_ONLY_ON_LOGOUT: Check = Check {
    name: "a client is shut down only by a logout or a switch of login",
    fails_when: "a client reports a shutdown that no logout and no login as another identity asked for",
    judge: |h| {
        let lives = lives(h);
        let uncaused = uncaused_shutdowns(h, &lives);
        if let Some((seq, inst)) = uncaused.first() {
            return Finding::violated(
                format!(
                    "instance {inst} shut down with no logout or switch of login asking for it: #{seq} {}",
                    h.quote(&[*seq])
                ),
                vec![*seq],
            );
        }
        // Provoked when a client lived through something that could tempt a shutdown, or was
        // shut down on purpose.
        let tempted = episodes(h)
            .iter()
            .filter(|ep| life_at(&lives, ep.begin).is_some())
            .count();
        let logouts = lives
            .iter()
            .filter(|l| matches!(l.ended, Some((_, End::ShutDown))))
            .count();
        if tempted + logouts == 0 {
            return Finding::not_provoked(
                "no client lived through an outage, a background spell or a logout",
            );
        }
        Finding::held(format!(
            "{tempted} outage(s)/background spell(s) lived through and {logouts} shutdown(s), each asked for by a logout or a switch of login"
        ))
    },
};

/// LIFE-4: nothing of a shut-down (or killed) instance reaches the backend again.
pub(crate) static OLD_INSTANCE_RETIRED: Check = Check {
    name: "an ended instance never reaches the backend again",
    fails_when: "the backend sees an instance again after its shutdown (or the app's kill) was settled, or a new client comes back with the old instance id",
    judge: |h| {
        let lives = lives(h);
        let mut findings = Vec::new();
        for (i, l) in lives.iter().enumerate() {
            let Some((end, _)) = l.ended else { continue };
            if let Some(again) = lives[i + 1..].iter().find(|m| m.instance == l.instance) {
                findings.push(Finding::violated(
                    format!(
                        "instance {} ended at #{end} and a client came back as the same instance: #{} {}",
                        l.instance,
                        again.created,
                        h.quote(&[again.created])
                    ),
                    vec![end, again.created],
                ));
                continue;
            }
            let Some(settle) = h.settled_after(end) else {
                continue;
            };
            let later: Vec<u64> = h
                .of(l.instance)
                .filter(|e| e.seq > settle.reply)
                .filter(|e| {
                    matches!(
                        e.kind,
                        EntryKind::Backend(
                            Fact::Request(_) | Fact::Connected { .. } | Fact::Dropped(_)
                        )
                    )
                })
                .map(|e| e.seq)
                .take(3)
                .collect();
            if !later.is_empty() {
                findings.push(Finding::violated(
                    format!(
                        "instance {} ended at #{end} but reached the backend after that was settled (#{}): {}",
                        l.instance,
                        settle.reply,
                        h.quote(&later)
                    ),
                    std::iter::once(end).chain(later).collect(),
                ));
                continue;
            }
            // Its event socket goes with it: one still open once virtual time has passed since
            // the end (a settle later than the end's instant) is the old instance still in use.
            let ended_at = h.get(end).map(|e| e.at);
            if let Some(later_settle) = h.settles().iter().copied().find(|s| {
                s.reply > end
                    && h.get(s.reply)
                        .is_some_and(|e| ended_at.is_some_and(|at| e.at > at))
            }) {
                let open = open_at(h, l.instance, later_settle.reply);
                if !open.is_empty() {
                    let opened: Vec<u64> = sockets(h, l.instance)
                        .into_iter()
                        .filter(|(_, o, s)| *o && open.contains(s))
                        .map(|(e, _, _)| e.seq)
                        .collect();
                    findings.push(Finding::violated(
                        format!(
                            "instance {} ended at #{end} but its event socket {} was still open at the settle #{}, after virtual time had passed: {}",
                            l.instance,
                            open.iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(", "),
                            later_settle.reply,
                            h.quote(&opened)
                        ),
                        std::iter::once(end)
                            .chain(opened)
                            .chain([later_settle.reply])
                            .collect(),
                    ));
                    continue;
                }
            }
            // Provoked only when the scenario went on long enough to show it: virtual time
            // passed (the old instance's timers had their turn), or the backend served on.
            let went_on = h.entries().iter().any(|e| {
                e.seq > settle.reply
                    && matches!(
                        e.kind,
                        EntryKind::Backend(_)
                            | EntryKind::Harness(crate::journal::HarnessEntry::TimePassed { .. })
                    )
            });
            if went_on {
                findings.push(Finding::held(format!(
                    "instance {} ended at #{end} and never reached the backend again",
                    l.instance
                )));
            }
        }
        fold(
            findings,
            "no instance ended with the scenario going on past the end",
        )
    },
};

/// LIFE-4: using an ended client or its handles gets the typed `client_shut_down` error.
pub(crate) static ENDED_CLIENT_REFUSES: Check = Check {
    name: "commands on an ended client or its handles answer client_shut_down",
    fails_when: "a command on a client that was shut down, or on a handle it held, is answered with anything but the client_shut_down error, or a later client hands out a handle id an ended one held",
    judge: |h| {
        let lives = lives(h);
        // Which instance held each handle: the newest live one when it was acquired. A handle
        // id handed out twice makes the old client's handle indistinguishable from the new one.
        let mut holder: BTreeMap<&HandleId, (&InstanceId, u64)> = BTreeMap::new();
        let mut findings = Vec::new();
        for e in h.entries() {
            if let Some(Observation::HandleAcquired { handle }) = e.observation()
                && let Some(l) = life_at(&lives, e.seq)
            {
                if let Some((first, at)) = holder.get(handle)
                    && *first != l.instance
                {
                    findings.push(Finding::violated(
                        format!(
                            "handle {handle} of instance {first} (#{at}) was handed out again by instance {}: #{} {}",
                            l.instance,
                            e.seq,
                            h.quote(&[e.seq])
                        ),
                        vec![*at, e.seq],
                    ));
                }
                holder.entry(handle).or_insert((l.instance, e.seq));
            }
        }
        let holder: BTreeMap<&HandleId, &InstanceId> =
            holder.into_iter().map(|(k, (i, _))| (k, i)).collect();
        for (e, id, c) in h.commands() {
            let stale = match c {
                Command::Release { handle } => holder.get(handle).and_then(|inst| {
                    lives
                        .iter()
                        .filter(|l| l.instance == *inst)
                        .filter_map(|l| l.ended.map(|(end, _)| (end, l.instance)))
                        .find(|(end, _)| *end < e.seq)
                        .map(|(_, i)| format!("handle {handle} of ended instance {i}"))
                }),
                c if uses_client(c.kind()) && life_at(&lives, e.seq).is_none() => lives
                    .iter()
                    .rev()
                    .find(|l| l.ended.is_some_and(|(end, _)| end < e.seq))
                    .map(|l| format!("the client after instance {} ended", l.instance)),
                _ => None,
            };
            let Some(what) = stale else { continue };
            let Some((reply, r)) = h.reply_to(id) else {
                continue;
            };
            match &r.outcome {
                Outcome::Error(err) if err.kind == ErrorKind::ClientShutDown => {
                    findings.push(Finding::held(format!(
                        "`{}` on {what} answered client_shut_down (#{})",
                        c.name(),
                        reply.seq
                    )))
                }
                other => findings.push(Finding::violated(
                    format!(
                        "`{}` on {what} (#{}) was answered {} instead of client_shut_down: #{} {}",
                        c.name(),
                        e.seq,
                        match other {
                            Outcome::Ok(_) => "ok".to_owned(),
                            Outcome::Error(err) => format!(
                                "with error {}",
                                serde_json::to_value(err.kind)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            ),
                        },
                        reply.seq,
                        h.quote(&[reply.seq])
                    ),
                    vec![e.seq, reply.seq],
                )),
            }
        }
        fold(
            findings,
            "no command used an ended client or a handle it held",
        )
    },
};

/// Commands that need a live client (lifecycle and harness commands do not).
fn uses_client(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::ListConversations
            | CommandKind::OpenConversation
            | CommandKind::FetchMessages
            | CommandKind::SendMessage
            | CommandKind::UpdateAttributes
            | CommandKind::ReadAttributes
            | CommandKind::GetCount
    )
}

/// LIFE-5: one event socket per instance at a time.
pub(crate) static ONE_SOCKET: Check = Check {
    name: "an instance keeps at most one event socket open",
    fails_when: "at a point where the client had settled, the backend had two event sockets of one instance open",
    judge: |h| {
        let lives = lives(h);
        let mut findings = Vec::new();
        for l in &lives {
            let mine = sockets(h, l.instance);
            let opened = mine.iter().filter(|(_, o, _)| *o).count();
            if opened < 2 {
                continue;
            }
            let mut bad = None;
            for s in h.settles() {
                let open = open_at(h, l.instance, s.reply);
                if open.len() > 1 {
                    let seqs: Vec<u64> = mine
                        .iter()
                        .filter(|(e, o, sock)| *o && open.contains(sock) && e.seq < s.reply)
                        .map(|(e, _, _)| e.seq)
                        .collect();
                    bad = Some(Finding::violated(
                        format!(
                            "instance {} had {} event sockets open when it settled (#{}): {}",
                            l.instance,
                            open.len(),
                            s.reply,
                            h.quote(&seqs)
                        ),
                        seqs,
                    ));
                    break;
                }
            }
            findings.push(bad.unwrap_or_else(|| {
                Finding::held(format!(
                    "instance {} opened {opened} sockets, one at a time",
                    l.instance
                ))
            }));
        }
        fold(findings, "no instance opened a second socket")
    },
};

/// An attempt to open the event channel: its entry and whether it failed.
fn attempts<'a>(h: &History<'a>, instance: &InstanceId) -> Vec<(&'a Entry, bool)> {
    h.entries()
        .iter()
        .filter(|e| h.owner(e) == Some(instance))
        .filter_map(|e| match &e.kind {
            EntryKind::Backend(Fact::Request(r)) if r.endpoint == Endpoint::EventChannel => {
                Some((e, r.status != 101))
            }
            EntryKind::Backend(Fact::Dropped(d)) if d.port == Port::Events => Some((e, true)),
            _ => None,
        })
        .collect()
}

/// LIFE-5: reconnect attempts back off (rate and gap bounds) and still come back in time.
pub(crate) static BOUNDED_BACKOFF: Check = Check {
    name: "reconnect attempts back off within the declared bounds",
    fails_when: "during an outage an instance tries to open the event channel more often than the bounds allow (more than 15 attempts in a minute, or two failed attempts under 500 ms apart without the app returning to the foreground between them), or once the network is back it takes longer than 5 minutes to reconnect",
    judge: |h| {
        let lives = lives(h);
        let mut findings = Vec::new();
        let all = episodes(h);
        for ep in all.iter().copied() {
            let EpisodeKind::Outage(outage) = ep.kind else {
                continue;
            };
            let Some(life) = life_at(&lives, ep.begin) else {
                continue;
            };
            let end = ep.end.unwrap_or(u64::MAX);
            let during: Vec<&Entry> = attempts(h, life.instance)
                .into_iter()
                .filter(|(e, failed)| *failed && e.seq > ep.begin && e.seq < end)
                .map(|(e, _)| e)
                .collect();
            // Rate and gap: judged where the attempts were visible (a refused connection never
            // reaches the backend).
            if during.len() >= 3 {
                let window = RATE_WINDOW.as_millis() as u64;
                let crowded = during.iter().enumerate().find_map(|(i, first)| {
                    let inside: Vec<u64> = during[i..]
                        .iter()
                        .take_while(|e| e.at.as_millis() < first.at.as_millis() + window)
                        .map(|e| e.seq)
                        .collect();
                    (inside.len() > MAX_ATTEMPTS_PER_WINDOW).then_some(inside)
                });
                if let Some(inside) = crowded {
                    findings.push(Finding::violated(
                        format!(
                            "instance {} tried the event channel {} times within {} s of virtual time during an outage ({}; at most {MAX_ATTEMPTS_PER_WINDOW} allowed): {}",
                            life.instance,
                            inside.len(),
                            RATE_WINDOW.as_secs(),
                            outage,
                            h.quote(&inside[..3.min(inside.len())])
                        ),
                        inside,
                    ));
                    continue;
                }
                let gap = MIN_ATTEMPT_GAP.as_millis() as u64;
                // The app returning to the foreground is a new start of the connection, not a
                // retry: the attempt it makes at once is not held to the gap.
                let foregrounds: Vec<u64> = h
                    .commands()
                    .filter(|(_, _, c)| matches!(c, Command::Foreground))
                    .map(|(e, _, _)| e.seq)
                    .collect();
                if let Some(pair) = during.windows(2).find(|w| {
                    w[1].at.as_millis() < w[0].at.as_millis() + gap
                        && !foregrounds.iter().any(|f| *f > w[0].seq && *f < w[1].seq)
                }) {
                    findings.push(Finding::violated(
                        format!(
                            "instance {} retried the event channel {} ms after a failed attempt (at least {gap} ms required): {}",
                            life.instance,
                            pair[1].at.as_millis() - pair[0].at.as_millis(),
                            h.quote(&[pair[0].seq, pair[1].seq])
                        ),
                        vec![pair[0].seq, pair[1].seq],
                    ));
                    continue;
                }
                findings.push(Finding::held(format!(
                    "instance {} made {} failed attempts during an outage ({outage}), within the bounds",
                    life.instance,
                    during.len()
                )));
            }
            // The ceiling: back within the bound once the network is.
            if outage == Outage::Silence {
                continue;
            }
            let Some((end_entry, late_settle)) = settled_past(h, &ep, RECONNECT_WITHIN) else {
                continue;
            };
            let due = end_entry.at.plus(RECONNECT_WITHIN);
            if life.ended.is_some_and(|(s, _)| s <= late_settle.reply) {
                continue;
            }
            let back = sockets(h, life.instance)
                .into_iter()
                .find(|(e, opened, _)| *opened && e.seq > end_entry.seq);
            let back_at = back.map_or(late_settle.reply, |(e, _, _)| e.seq);
            if interfered(&all, &ep, end_entry.seq, back_at) {
                // Another outage or a background spell was in force before the client was
                // back: that one is judged.
                continue;
            }
            match back {
                Some((e, _, _)) if e.at <= due => findings.push(Finding::held(format!(
                    "instance {} reconnected {} s after the network came back (#{})",
                    life.instance,
                    e.at.since(end_entry.at).as_secs(),
                    e.seq
                ))),
                other => findings.push(Finding::violated(
                    format!(
                        "instance {} had not reconnected {} s after the network came back (#{}){}",
                        life.instance,
                        RECONNECT_WITHIN.as_secs(),
                        end_entry.seq,
                        other
                            .map(|(e, _, _)| format!("; it did at #{}", e.seq))
                            .unwrap_or_default()
                    ),
                    vec![end_entry.seq, late_settle.reply],
                )),
            }
        }
        fold(
            findings,
            "no outage showed the client's attempts (a half-open one) or ran past the reconnect bound",
        )
    },
};

/// The handles acquired and not released between entries `from` and `to`, with the entry that
/// acquired each.
fn live_handles<'a>(h: &History<'a>, from: u64, to: u64) -> BTreeMap<&'a HandleId, u64> {
    let mut live = BTreeMap::new();
    for e in h.entries().iter().filter(|e| e.seq > from && e.seq < to) {
        match e.observation() {
            Some(Observation::HandleAcquired { handle }) => {
                live.insert(handle, e.seq);
            }
            Some(Observation::HandleReleased { handle }) => {
                live.remove(handle);
            }
            _ => {}
        }
    }
    live
}

/// REL-1: every handle is released before the client shuts down.
pub(crate) static HANDLES_RELEASED_FIRST: Check = Check {
    name: "every handle is released before the client shuts down",
    fails_when: "a client reports its shutdown while handles it acquired are still live, or releases them after it",
    judge: |h| {
        let lives = lives(h);
        let mut findings = Vec::new();
        for l in &lives {
            let Some((end, End::ShutDown)) = l.ended else {
                continue;
            };
            let live = live_handles(h, l.created, end);
            // Provoked when handles were live as the logout (or switch) was asked for.
            let asked = h
                .commands()
                .filter(|(e, _, c)| e.seq > l.created && e.seq < end && is_shutdown_cause(c))
                .map(|(e, _, _)| e.seq)
                .last()
                .unwrap_or(end);
            let held_at_logout = live_handles(h, l.created, asked).len();
            if let Some((handle, acquired)) = live.iter().next() {
                let after = h
                    .entries()
                    .iter()
                    .find(|e| {
                        e.seq > end
                            && matches!(e.observation(), Some(Observation::HandleReleased { handle: x }) if x == *handle)
                    })
                    .map(|e| e.seq);
                let mut culprits = vec![*acquired, end];
                culprits.extend(after);
                findings.push(Finding::violated(
                    format!(
                        "instance {} shut down (#{end}) with {} handle(s) still live, among them {handle} (#{acquired}){}",
                        l.instance,
                        live.len(),
                        after
                            .map(|s| format!("; it was released only after the shutdown, #{s}"))
                            .unwrap_or_else(|| "; it was never released".into())
                    ),
                    culprits,
                ));
                continue;
            }
            if held_at_logout > 0 {
                findings.push(Finding::held(format!(
                    "instance {} released its {held_at_logout} handle(s) before it shut down (#{end})",
                    l.instance
                )));
            }
        }
        fold(findings, "no client shut down while holding handles")
    },
};
