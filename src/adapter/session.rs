//! One live adapter session, and the helper that lets an in-process stack serve it.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::protocol::{
    Command, CommandKind, ErrorKind, Hello, Observation, Outcome, Reply, ReplyBody, Request,
};

/// What an adapter session sends back to the harness, in order.
#[derive(Debug)]
pub enum AdapterEvent {
    /// A reply to a request.
    Reply(Reply),
    /// An observation.
    Observation(Observation),
    /// A line of the adapter's log (stderr for processes).
    Log(String),
    /// The adapter stopped; no more events follow.
    Exited(String),
    /// The adapter broke the protocol; the session is over (the first such error only).
    Misbehaved(super::AdapterError),
}

/// One live adapter: a client stack under test, for one scenario.
pub struct AdapterSession {
    hello: Hello,
    requests: mpsc::UnboundedSender<Request>,
    events: mpsc::UnboundedReceiver<AdapterEvent>,
    closer: BoxFuture<'static, ()>,
}

impl AdapterSession {
    /// Wraps the channels of a started adapter. `closer` runs on close, after the request
    /// channel is dropped; it should wait (boundedly) for the stack to stop.
    pub fn new(
        hello: Hello,
        requests: mpsc::UnboundedSender<Request>,
        events: mpsc::UnboundedReceiver<AdapterEvent>,
        closer: BoxFuture<'static, ()>,
    ) -> Self {
        Self {
            hello,
            requests,
            events,
            closer,
        }
    }

    /// Runs `stack` as the session's client stack on a task of its own. It receives the
    /// commands in order ([`Commands::next`]), answers each through its [`Responder`] (at once, or
    /// later from wherever the work finishes), and reports what it sees through the
    /// [`Observer`]. When the harness closes the session, `next` returns `None`; the stack should
    /// then return (it is aborted after two seconds).
    pub fn serve<F, Fut>(hello: Hello, stack: F) -> Self
    where
        F: FnOnce(Commands, Observer) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let commands = Commands {
            requests: req_rx,
            events: ev_tx.clone(),
        };
        let task = tokio::spawn(stack(commands, Observer { events: ev_tx }));
        let closer = async move {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        .boxed();
        Self::new(hello, req_tx, ev_rx, closer)
    }

    /// The adapter's handshake.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Splits the session into its request sender, its event receiver and its closer.
    pub(crate) fn into_parts(
        self,
    ) -> (
        mpsc::UnboundedSender<Request>,
        mpsc::UnboundedReceiver<AdapterEvent>,
        BoxFuture<'static, ()>,
    ) {
        (self.requests, self.events, self.closer)
    }
}

/// The commands the harness sends an in-process stack, each with its [`Responder`].
pub struct Commands {
    requests: mpsc::UnboundedReceiver<Request>,
    events: mpsc::UnboundedSender<AdapterEvent>,
}

impl Commands {
    /// The next command, or `None` once the harness closed the session.
    pub async fn next(&mut self) -> Option<(Command, Responder)> {
        let Request { id, command } = self.requests.recv().await?;
        let responder = Responder {
            id,
            command: command.kind(),
            events: Some(self.events.clone()),
        };
        Some((command, responder))
    }
}

/// The one answer a command gets. Dropping it unanswered answers an `internal` error, so a
/// forgotten command shows up in the report instead of hanging the scenario.
#[must_use = "every command must be answered: call ok, done, error or answer"]
#[derive(Debug)]
pub struct Responder {
    id: u64,
    command: CommandKind,
    events: Option<mpsc::UnboundedSender<AdapterEvent>>,
}

impl Responder {
    /// The request id this answers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Which command this answers.
    pub fn command(&self) -> CommandKind {
        self.command
    }

    /// Answers with `outcome`.
    pub fn answer(mut self, outcome: Outcome) {
        if let Some(events) = self.events.take() {
            let _ = events.send(AdapterEvent::Reply(Reply {
                id: self.id,
                outcome,
            }));
        }
    }

    /// Answers with a success body.
    pub fn ok(self, body: ReplyBody) {
        self.answer(Outcome::Ok(body));
    }

    /// Answers `{}`.
    pub fn done(self) {
        self.answer(Outcome::done());
    }

    /// Answers with a typed failure.
    pub fn error(self, kind: ErrorKind, message: impl Into<String>) {
        self.answer(Outcome::error(kind, message));
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(events) = self.events.take() {
            let _ = events.send(AdapterEvent::Reply(Reply {
                id: self.id,
                outcome: Outcome::error(
                    ErrorKind::Internal,
                    format!(
                        "the adapter dropped `{}` without answering it",
                        self.command
                    ),
                ),
            }));
        }
    }
}

/// Where an in-process stack reports what it sees. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Observer {
    events: mpsc::UnboundedSender<AdapterEvent>,
}

impl Observer {
    /// Reports an observation.
    pub fn observe(&self, observation: Observation) {
        let _ = self.events.send(AdapterEvent::Observation(observation));
    }

    /// Writes a line to the adapter's log (journaled, tokens redacted).
    pub fn log(&self, line: impl Into<String>) {
        let _ = self.events.send(AdapterEvent::Log(line.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{Capabilities, PROTOCOL_VERSION, Profile};

    fn hello() -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            adapter: "echo".into(),
            version: "0".into(),
            profile: Profile::Js,
            capabilities: Capabilities::default(),
        }
    }

    #[tokio::test]
    async fn a_served_stack_answers_through_responders_and_a_dropped_one_is_an_error() {
        let session = AdapterSession::serve(hello(), |mut commands, observer| async move {
            while let Some((command, responder)) = commands.next().await {
                observer.log(command.name());
                if command == Command::Settle {
                    responder.done();
                }
                // Anything else is dropped unanswered.
            }
        });
        let (requests, mut events, closer) = session.into_parts();
        requests
            .send(Request {
                id: 1,
                command: Command::Settle,
            })
            .unwrap();
        requests
            .send(Request {
                id: 2,
                command: Command::Inspect,
            })
            .unwrap();
        let mut replies = Vec::new();
        while replies.len() < 2 {
            if let Some(AdapterEvent::Reply(r)) = events.recv().await {
                replies.push(r);
            }
        }
        assert_eq!(replies[0].outcome, Outcome::done());
        assert!(
            matches!(&replies[1].outcome, Outcome::Error(e) if e.kind == ErrorKind::Internal && e.message.contains("inspect"))
        );
        drop(requests);
        closer.await;
    }
}
