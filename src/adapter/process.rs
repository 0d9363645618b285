//! Adapters in any language: a child process per session, speaking JSON lines over stdio.
//!
//! [`ProcessAdapter`] starts its command once per scenario in a process group of its own, reads
//! its `hello`, then writes each [`Request`] as one line on its stdin and reads `reply` and
//! `observation` lines from its stdout; every stderr line becomes a log line of the journal. It
//! closes a session by closing stdin: the adapter must exit; one that does not is sent SIGTERM
//! after [`ProcessLimits::exit_grace`], and SIGKILL after as long again (the whole group, so no
//! grandchild survives). [`terminate_all`] kills every group still running (the command line
//! calls it when it is interrupted).
//!
//! Every way an adapter can break the protocol is an [`AdapterError`] naming it, with the
//! offending output quoted (cut to [`QUOTE_MAX`] bytes): no `hello` in time, a `hello` of another
//! version, a line that is not JSON or not UTF-8 or longer than [`ProcessLimits::max_line`], an
//! unknown message type, a reply to a request never sent or already answered, a reply whose body
//! does not fit its command, a second `hello`, output after close that is not a last reply or
//! observation, a crash (its exit status or signal), and a process that ignores termination.
//! The first such error ends the session: the process group is killed and the scenario is a
//! harness error; a hang is the driver's real-time safety timeout.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use super::protocol::{
    AdapterMessage, CommandKind, Hello, Outcome, PROTOCOL_VERSION, Reply, Request,
};
use super::{Adapter, AdapterError, AdapterEvent, AdapterSession};

/// How much of an offending line an error quotes.
pub const QUOTE_MAX: usize = 200;

/// The limits a process adapter is held to.
#[derive(Clone, Debug)]
pub struct ProcessLimits {
    /// How long the adapter may take to say `hello` after it was started (real time).
    pub hello_timeout: Duration,
    /// The longest line it may write, in bytes (1 MiB).
    pub max_line: usize,
    /// How long it may take to exit once its stdin closed, and then once sent SIGTERM.
    pub exit_grace: Duration,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        Self {
            hello_timeout: Duration::from_secs(10),
            max_line: 1024 * 1024,
            exit_grace: Duration::from_secs(2),
        }
    }
}

/// The command line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CommandLineError {
    /// Nothing to run.
    #[error("the adapter command is empty")]
    Empty,
    /// Unbalanced quotes.
    #[error("the adapter command `{0}` has unbalanced quotes")]
    Quotes(String),
}

/// An adapter that runs a command per session.
#[derive(Clone, Debug)]
pub struct ProcessAdapter {
    command_line: String,
    program: String,
    args: Vec<String>,
    limits: ProcessLimits,
}

impl ProcessAdapter {
    /// An adapter running `command_line` (split as a POSIX shell would split words, without
    /// expanding anything).
    pub fn new(command_line: &str) -> Result<Self, CommandLineError> {
        let words = shlex::split(command_line)
            .ok_or_else(|| CommandLineError::Quotes(quote(command_line.as_bytes())))?;
        let mut words = words.into_iter();
        let program = words.next().ok_or(CommandLineError::Empty)?;
        Ok(Self {
            command_line: command_line.to_owned(),
            program,
            args: words.collect(),
            limits: ProcessLimits::default(),
        })
    }

    /// The same adapter held to `limits`.
    pub fn with_limits(mut self, limits: ProcessLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// `bytes` as an error quotes them: lossy UTF-8, at most [`QUOTE_MAX`] bytes, then the length.
fn quote(bytes: &[u8]) -> String {
    if bytes.len() <= QUOTE_MAX {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    format!(
        "{}… ({} bytes in all)",
        String::from_utf8_lossy(&bytes[..QUOTE_MAX]),
        bytes.len()
    )
}

fn protocol(line: &[u8], reason: impl Into<String>) -> AdapterError {
    AdapterError::Protocol {
        line: quote(line),
        reason: reason.into(),
    }
}

/// A line read within a limit.
enum Line {
    Text(Vec<u8>),
    /// Over the limit: how many bytes were seen, and the first of them (to quote). The rest of
    /// the line is skipped.
    TooLong(usize, Vec<u8>),
    /// Bytes without their newline, then the end of the stream (a process cut off mid-line).
    Unfinished(Vec<u8>),
    Eof,
}

/// Reads one line (without its `\n` or `\r\n`), at most `max` bytes.
async fn read_line(r: &mut (impl AsyncBufRead + Unpin), max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() {
                Line::Eof
            } else {
                Line::Unfinished(line)
            });
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(pos) => (&buf[..pos], Some(pos + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() > max {
            let mut seen = line.len() + chunk.len();
            line.extend_from_slice(&chunk[..chunk.len().min(QUOTE_MAX)]);
            line.truncate(QUOTE_MAX);
            let mut ended = done.is_some();
            let n = done.unwrap_or(buf.len());
            r.consume(n);
            // Skip the rest of the line, so it does not read as lines of its own.
            while !ended {
                let buf = r.fill_buf().await?;
                if buf.is_empty() {
                    break;
                }
                let n = match buf.iter().position(|b| *b == b'\n') {
                    Some(pos) => {
                        ended = true;
                        pos + 1
                    }
                    None => buf.len(),
                };
                seen += n;
                r.consume(n);
            }
            return Ok(Line::TooLong(seen, line));
        }
        line.extend_from_slice(chunk);
        let n = done.unwrap_or(buf.len());
        r.consume(n);
        if done.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Text(line));
        }
    }
}

/// What an exit status says, for a report.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            let name = match signal {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGINT => " (SIGINT)",
                libc::SIGPIPE => " (SIGPIPE)",
                _ => "",
            };
            return format!("killed by signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "ended without an exit status".into(),
    }
}

/// Process groups still running, so an interrupted run can kill them.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `signal` to the process group `pgid`.
fn signal_group(pgid: u32, signal: i32) {
    #[cfg(unix)]
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: killpg only sends a signal; a group that is gone yields ESRCH, ignored.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Kills every adapter process group still running (for an interrupted run).
pub fn terminate_all() {
    for pgid in std::mem::take(&mut *live()) {
        signal_group(pgid, libc::SIGKILL);
    }
}

/// Owns a process group: dropping it kills the group and forgets it.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
        live().remove(&self.0);
    }
}

/// What the reader and the writer share about the session.
#[derive(Default)]
struct Ledger {
    /// Requests written and not yet answered, with their command.
    in_flight: HashMap<u64, CommandKind>,
    /// Requests answered.
    answered: HashSet<u64>,
    /// The harness closed the session (stdin is closed or closing).
    closed: bool,
    /// The session ended in a protocol error.
    failed: bool,
}

struct Session {
    ledger: Mutex<Ledger>,
    events: mpsc::UnboundedSender<AdapterEvent>,
    pgid: u32,
}

impl Session {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports the first protocol error and kills the group; later ones are dropped.
    fn fail(&self, error: AdapterError) {
        let first = !std::mem::replace(&mut self.ledger().failed, true);
        if first {
            let _ = self.events.send(AdapterEvent::Misbehaved(error));
            signal_group(self.pgid, libc::SIGKILL);
        }
    }

    /// Handles one stdout line after the handshake.
    fn line(&self, bytes: &[u8]) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return self.fail(protocol(bytes, "a line that is not UTF-8"));
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.fail(protocol(bytes, format!("a line that is not JSON ({e})"))),
        };
        let kind = value.get("type").and_then(Value::as_str).map(str::to_owned);
        match kind.as_deref() {
            Some("hello" | "reply" | "observation") => {}
            Some(other) => {
                return self.fail(protocol(
                    bytes,
                    format!(
                        "an unknown message type `{}` (expected reply or observation)",
                        quote(other.as_bytes())
                    ),
                ));
            }
            None => {
                return self.fail(protocol(bytes, "a message without a `type`"));
            }
        }
        let message: AdapterMessage = match serde_json::from_value(value) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(protocol(bytes, format!("a malformed message ({e})")));
            }
        };
        let closed = self.ledger().closed;
        match message {
            AdapterMessage::Hello(_) if closed => {
                self.fail(protocol(bytes, "output after close: a second hello"));
            }
            AdapterMessage::Hello(_) => self.fail(protocol(bytes, "a second hello")),
            AdapterMessage::Observation(o) => {
                // Last words at close (a shutdown reported) are fine; nobody reads them.
                if !closed {
                    let _ = self.events.send(AdapterEvent::Observation(o));
                }
            }
            AdapterMessage::Reply { id, outcome } => {
                let command = {
                    let mut ledger = self.ledger();
                    let command = ledger.in_flight.remove(&id);
                    if command.is_some() {
                        ledger.answered.insert(id);
                    }
                    (command, ledger.answered.contains(&id))
                };
                match command {
                    (Some(command), _) => match Outcome::decode(command, outcome) {
                        Ok(outcome) => {
                            let _ = self.events.send(AdapterEvent::Reply(Reply { id, outcome }));
                        }
                        Err(reason) => self.fail(protocol(bytes, reason)),
                    },
                    (None, true) => self.fail(protocol(
                        bytes,
                        format!(
                            "{}a second reply to request {id}",
                            if closed { "output after close: " } else { "" }
                        ),
                    )),
                    (None, false) => self.fail(protocol(
                        bytes,
                        format!(
                            "{}a reply to request {id}, which was never sent",
                            if closed { "output after close: " } else { "" }
                        ),
                    )),
                }
            }
        }
    }
}

/// Reads the handshake: the first line must be a `hello` of this protocol version.
fn hello(bytes: &[u8]) -> Result<Hello, AdapterError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        AdapterError::Handshake(format!("its first line is not UTF-8: `{}`", quote(bytes)))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        AdapterError::Handshake(format!(
            "its first line is not JSON ({e}): `{}`",
            quote(bytes)
        ))
    })?;
    if value.get("type").and_then(Value::as_str) != Some("hello") {
        return Err(AdapterError::Handshake(format!(
            "its first line is not a hello: `{}`",
            quote(bytes)
        )));
    }
    match value.get("protocol").and_then(Value::as_u64) {
        Some(v) if super::protocol::speaks(v) => {}
        Some(v) => {
            return Err(AdapterError::Handshake(format!(
                "the adapter speaks protocol version {v}; this kit speaks versions 1 to {PROTOCOL_VERSION}"
            )));
        }
        None => {
            return Err(AdapterError::Handshake(format!(
                "its hello names no protocol version (this kit speaks version {PROTOCOL_VERSION}): `{}`",
                quote(bytes)
            )));
        }
    }
    match serde_json::from_value::<AdapterMessage>(value) {
        Ok(AdapterMessage::Hello(h)) => Ok(h),
        Ok(_) => unreachable!("the type was checked"),
        Err(e) => Err(AdapterError::Handshake(format!(
            "a malformed hello ({e}): `{}`",
            quote(bytes)
        ))),
    }
}

impl Adapter for ProcessAdapter {
    fn name(&self) -> String {
        format!("process `{}`", quote(self.command_line.as_bytes()))
    }

    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>> {
        let spec = self.clone();
        async move { spec.start().await }.boxed()
    }
}

impl ProcessAdapter {
    async fn start(self) -> Result<AdapterSession, AdapterError> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| AdapterError::Spawn(format!("`{}`: {e}", self.program)))?;
        let Some(pgid) = child.id().filter(|id| *id > 0) else {
            return Err(AdapterError::Spawn(
                "the adapter process has no id (it ended at once)".into(),
            ));
        };
        live().insert(pgid);
        // Kills the group if this future, or the session's closer, is dropped before the end
        // (a cancelled open, a session dropped without closing).
        let guard = GroupGuard(pgid);
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            signal_group(pgid, libc::SIGKILL);
            live().remove(&pgid);
            return Err(AdapterError::Spawn("its stdio could not be piped".into()));
        };
        let (events, event_rx) = mpsc::unbounded_channel();
        // Exit status, when it comes.
        let (status_tx, mut status_rx) = watch::channel(None::<String>);
        // Stdout reached its end (set by the reader).
        let (stdout_done, stdout_done_rx) = watch::channel(false);
        let grace = self.limits.exit_grace;
        tokio::spawn(async move {
            let status = child.wait().await.map_or_else(|e| e.to_string(), describe);
            let _ = status_tx.send(Some(status));
            // A process the adapter started can hold its stdout open after it died; then the
            // reader would never see the end and the crash would pass for a hang. The group
            // goes once the adapter is gone (the group stays in LIVE until its session closes).
            let mut done = stdout_done_rx;
            if tokio::time::timeout(grace, done.wait_for(|d| *d))
                .await
                .is_err()
            {
                signal_group(pgid, libc::SIGKILL);
            }
        });
        // Stderr: log lines (and the last few, for a failed handshake).
        let tail = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr_task = {
            let (events, tail, max) = (events.clone(), tail.clone(), self.limits.max_line);
            tokio::spawn(async move {
                let mut err = BufReader::new(stderr);
                loop {
                    let line = match read_line(&mut err, max).await {
                        Ok(Line::Text(b) | Line::Unfinished(b)) => quote_log(&b),
                        Ok(Line::TooLong(n, head)) => {
                            format!("{}… (a stderr line of {n} bytes, cut)", quote_log(&head))
                        }
                        Ok(Line::Eof) | Err(_) => break,
                    };
                    {
                        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                        t.push(line.clone());
                        if t.len() > 5 {
                            t.remove(0);
                        }
                    }
                    let _ = events.send(AdapterEvent::Log(line));
                }
            })
        };
        let mut out = BufReader::with_capacity(64 * 1024, stdout);
        let first = tokio::time::timeout(
            self.limits.hello_timeout,
            read_line(&mut out, self.limits.max_line),
        )
        .await;
        let hello: Result<Hello, String> = match first {
            Err(_) => Err(format!(
                "no hello within {} ms of real time",
                self.limits.hello_timeout.as_millis()
            )),
            Ok(Err(e)) => Err(format!("its stdout failed: {e}")),
            Ok(Ok(Line::Eof | Line::Unfinished(_))) => {
                let status = tokio::time::timeout(
                    self.limits.exit_grace,
                    status_rx.wait_for(Option::is_some),
                )
                .await
                .ok()
                .and_then(|s| s.ok().and_then(|s| s.clone()))
                .unwrap_or_else(|| "closed its stdout".into());
                Err(format!("the adapter ended before its hello ({status})"))
            }
            Ok(Ok(Line::TooLong(n, head))) => Err(format!(
                "its first line is {n} bytes long, over the limit of {}: `{}`",
                self.limits.max_line,
                quote(&head)
            )),
            Ok(Ok(Line::Text(bytes))) => match hello(&bytes) {
                Ok(h) => Ok(h),
                Err(AdapterError::Handshake(why)) => Err(why),
                Err(e) => Err(e.to_string()),
            },
        };
        let hello = match hello {
            Ok(h) => h,
            Err(why) => {
                signal_group(pgid, libc::SIGKILL);
                // Its last words on stderr, all of them: the group is dead, so stderr ends.
                let _ = tokio::time::timeout(self.limits.exit_grace, stderr_task).await;
                live().remove(&pgid);
                let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).join(" | ");
                return Err(AdapterError::Handshake(if tail.is_empty() {
                    why
                } else {
                    format!("{why}; its stderr ended with: {tail}")
                }));
            }
        };
        let session = Arc::new(Session {
            ledger: Mutex::default(),
            events: events.clone(),
            pgid,
        });
        // Stdout: replies and observations, then the exit.
        let reader = {
            let (session, max) = (session.clone(), self.limits.max_line);
            let mut status_rx = status_rx.clone();
            tokio::spawn(async move {
                let mut cut = None;
                loop {
                    match read_line(&mut out, max).await {
                        Ok(Line::Text(bytes)) => session.line(&bytes),
                        Ok(Line::TooLong(n, head)) => session.fail(protocol(
                            &head,
                            format!("a line of {n} bytes or more, over the limit of {max}"),
                        )),
                        Ok(Line::Unfinished(bytes)) => {
                            cut = Some(bytes);
                            break;
                        }
                        Ok(Line::Eof) | Err(_) => break,
                    }
                }
                let _ = stdout_done.send(true);
                let status = status_rx
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|s| s.clone())
                    .unwrap_or_else(|| "closed its stdout".into());
                let status = match cut {
                    Some(bytes) => format!("{status}, its last line cut off: `{}`", quote(&bytes)),
                    None => status,
                };
                let _ = session.events.send(AdapterEvent::Exited(status));
            })
        };
        // Stdin: requests, until the harness closes the session.
        let (requests, mut request_rx) = mpsc::unbounded_channel::<Request>();
        let writer = {
            let session = session.clone();
            tokio::spawn(async move {
                while let Some(request) = request_rx.recv().await {
                    session
                        .ledger()
                        .in_flight
                        .insert(request.id, request.command.kind());
                    let Ok(mut line) = serde_json::to_vec(&request) else {
                        continue;
                    };
                    line.push(b'\n');
                    if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                        // The adapter is gone; the reader reports how.
                        break;
                    }
                }
                session.ledger().closed = true;
                drop(stdin);
            })
        };
        let grace = self.limits.exit_grace;
        let closer = async move {
            let guard = guard;
            // The writer ends once the harness dropped its requests and the last line is out;
            // an adapter that stopped reading its stdin would hold that write forever, so it is
            // given the grace and then cut off (which closes stdin all the same).
            let mut writer = writer;
            if tokio::time::timeout(grace, &mut writer).await.is_err() {
                writer.abort();
                session.ledger().closed = true;
            }
            let exited = |rx: &mut watch::Receiver<Option<String>>| {
                let rx = rx.clone();
                async move {
                    let mut rx = rx;
                    tokio::time::timeout(grace, rx.wait_for(Option::is_some))
                        .await
                        .is_ok()
                }
            };
            if !exited(&mut status_rx).await {
                signal_group(pgid, libc::SIGTERM);
                if !exited(&mut status_rx).await {
                    session.fail(AdapterError::Exited(format!(
                        "the adapter ignored termination: it did not exit within {} ms of its stdin closing nor of SIGTERM, and was killed",
                        grace.as_millis()
                    )));
                    signal_group(pgid, libc::SIGKILL);
                }
            }
            // Whatever it wrote before it exited is judged (output after close).
            let _ = tokio::time::timeout(grace, reader).await;
            // Nothing of the group may outlive the session.
            drop(guard);
        }
        .boxed();
        Ok(AdapterSession::new(hello, requests, event_rx, closer))
    }
}

/// A stderr line as journaled: lossy UTF-8, cut to 4 KiB.
fn quote_log(bytes: &[u8]) -> String {
    const MAX: usize = 4096;
    if bytes.len() <= MAX {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    format!(
        "{}… ({} bytes in all)",
        String::from_utf8_lossy(&bytes[..MAX]),
        bytes.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_within_their_limit() {
        let mut r = BufReader::with_capacity(4, &b"ab\r\ncdefgh\nij"[..]);
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), Line::Text(l) if l == b"ab"));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), Line::TooLong(n, _) if n > 5));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), Line::Unfinished(l) if l == b"ij"));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), Line::Eof));
    }

    #[test]
    fn a_hello_of_another_version_names_both() {
        let e =
            hello(br#"{"type":"hello","protocol":3,"adapter":"x","version":"1","profile":"js"}"#)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("version 3") && e.contains("versions 1 to 2"),
            "{e}"
        );
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        let a = ProcessAdapter::new(r#"node "my adapter.js" --fast"#).unwrap();
        assert_eq!(a.program, "node");
        assert_eq!(a.args, vec!["my adapter.js", "--fast"]);
        assert!(ProcessAdapter::new("  ").is_err());
        assert!(ProcessAdapter::new(r#"node "open"#).is_err());
    }
}
