//! A broken adapter is the adapter's failure, not a rule's: every scenario still runs, the report
//! names the cause, and the exit code is 2.

use std::sync::Arc;
use std::time::Duration;

use convo_tck::Report;
use convo_tck::Verdict;
use convo_tck::adapter::{
    Adapter, AdapterError, AdapterEvent, AdapterSession, Capabilities, Hello, PROTOCOL_VERSION,
    Profile,
};
use convo_tck::scenario::{SuiteOptions, run_suite};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

#[derive(Clone, Copy)]
enum Breakage {
    CannotStart,
    NeverAnswers,
    Dies,
}

struct Broken(Breakage);

fn hello() -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        adapter: "broken".into(),
        version: "0".into(),
        profile: Profile::Mobile,
        capabilities: Capabilities {
            virtual_time: true,
            settle: true,
            ..Capabilities::default()
        },
    }
}

impl Adapter for Broken {
    fn name(&self) -> String {
        "broken".into()
    }

    fn open(&self) -> BoxFuture<'static, Result<AdapterSession, AdapterError>> {
        let breakage = self.0;
        async move {
            let (req_tx, mut req_rx) = mpsc::unbounded_channel();
            let (ev_tx, ev_rx) = mpsc::unbounded_channel();
            match breakage {
                Breakage::CannotStart => {
                    return Err(AdapterError::Spawn("no such program `acme-adapter`".into()));
                }
                Breakage::NeverAnswers => {
                    tokio::spawn(async move {
                        // Reads requests, answers none, keeps the event channel open.
                        let _keep = ev_tx;
                        while req_rx.recv().await.is_some() {}
                    });
                }
                Breakage::Dies => {
                    let _ = ev_tx.send(AdapterEvent::Log("segmentation fault".into()));
                    let _ = ev_tx.send(AdapterEvent::Exited("killed by signal 11".into()));
                    drop(req_rx);
                }
            }
            Ok(AdapterSession::new(
                hello(),
                req_tx,
                ev_rx,
                async {}.boxed(),
            ))
        }
        .boxed()
    }
}

async fn report(b: Breakage) -> Report {
    let opts = SuiteOptions {
        safety: Duration::from_millis(300),
        ..SuiteOptions::default()
    };
    let run = run_suite(Arc::new(Broken(b)), &opts)
        .await
        .expect("the suite runs");
    Report::build(&run)
}

fn assert_every_scenario_errored(report: &Report, cause: &str) {
    assert_eq!(report.exit_code(), 2);
    assert_eq!(
        report.errors.len(),
        report.summary.scenarios,
        "every scenario is reported: {:?}",
        report.errors
    );
    assert!(report.summary.scenarios >= 10);
    for e in &report.errors {
        assert!(
            e.error.contains(cause),
            "{} does not name the cause `{cause}`",
            e.error
        );
    }
    assert!(
        report.rules.iter().all(|r| r.verdict != Verdict::Pass),
        "nothing passes when nothing ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_cannot_start_is_an_error_not_a_failure() {
    assert_every_scenario_errored(&report(Breakage::CannotStart).await, "could not be started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_never_answers_is_reported_as_hung() {
    assert_every_scenario_errored(
        &report(Breakage::NeverAnswers).await,
        "within 300 ms of real time",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_dies_is_reported_as_exited() {
    assert_every_scenario_errored(&report(Breakage::Dies).await, "killed by signal 11");
}

/// A client that is never quiet (it logs a line for every settle) does not hold the scenario
/// forever: the settle step gives up after its rounds and says so in the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_is_never_quiet_is_journaled_as_restless() {
    use convo_tck::clock::VirtualClock;
    use convo_tck::harness::Driver;
    use convo_tck::journal::{EntryKind, HarnessEntry, Journal};

    let session = AdapterSession::serve(hello(), |mut commands, observer| async move {
        while let Some((_, responder)) = commands.next().await {
            observer.log("still busy");
            responder.done();
        }
    });
    let journal = Journal::new(VirtualClock::new(), convo_tck::Secrets::default());
    let mut driver = Driver::new(session, journal.clone(), Duration::from_secs(5));
    driver.settle().await.expect("settle answers");
    let restless: Vec<_> = journal
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Harness(HarnessEntry::Restless { rounds }) => Some(rounds),
            _ => None,
        })
        .collect();
    assert_eq!(restless, vec![8], "one note after the maximum rounds");
}

/// The real-time bound detects a stack that stopped making progress, not a slow one: a settle
/// answered after three bounds' worth of time is waited for while the client keeps reporting
/// (a sync of a thousand conversations on a loaded machine); a stack that only logs is hung.
/// In-process channels only, so tokio's paused clock stands in for real time: no sleeping.
#[tokio::test(start_paused = true)]
async fn a_busy_stack_is_waited_for_and_one_that_only_logs_is_hung() {
    use convo_tck::adapter::{ClientSyncStatus, Command, Observation};
    use convo_tck::clock::VirtualClock;
    use convo_tck::harness::Driver;
    use convo_tck::journal::Journal;

    let safety = Duration::from_millis(500);
    for progress in [true, false] {
        let session = AdapterSession::serve(hello(), move |mut commands, observer| async move {
            while let Some((_, responder)) = commands.next().await {
                // 75 ticks of 20 ms: three times the bound, reporting (or only logging) on each.
                for _ in 0..75 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if progress {
                        observer.observe(Observation::ClientSync {
                            status: ClientSyncStatus::Started,
                        });
                    } else {
                        observer.log("working on it");
                    }
                }
                responder.done();
            }
        });
        let journal = Journal::new(VirtualClock::new(), convo_tck::Secrets::default());
        let mut driver = Driver::new(session, journal, safety);
        let outcome = driver.call(Command::Settle).await;
        if progress {
            assert!(outcome.is_ok(), "a busy stack is waited for: {outcome:?}");
        } else {
            let err = outcome.expect_err("a stack that only logs is hung");
            assert!(err.to_string().contains("did not answer"), "{err}");
        }
        let _ = driver.close().await;
    }
}
