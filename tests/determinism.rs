//! Determinism under load: the suite against the reference client, without a fault and with
//! every planted fault, in both profiles, run several times with several runs at once, must
//! give the same report every time (verdicts, evidence, harness errors, the culprits of every
//! trace; see `convo_tck::stress` for the documented fields that may vary).
//!
//! CI runs a bounded count (`CONVO_TCK_STRESS_RUNS`, default 2 per configuration, 4 at once:
//! 172 suite runs; the simulated year only where no fault or a push fault is on). Raise it to hunt a flip: `CONVO_TCK_STRESS_RUNS=50 CONVO_TCK_STRESS_JOBS=8
//! cargo test --release --test determinism -- --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use convo_tck::adapter::Adapter;
use convo_tck::stress::repeat;
use convo_tck::{Fault, FaultSet, Profile, ReferenceAdapter, SuiteOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_configuration_gives_the_same_report_every_time() {
    let runs = env("CONVO_TCK_STRESS_RUNS", 2);
    let jobs = env("CONVO_TCK_STRESS_JOBS", 4);
    let started = Instant::now();
    let mut configs: Vec<(Profile, Option<Fault>)> = Vec::new();
    for profile in [Profile::Js, Profile::Mobile] {
        configs.push((profile, None));
        configs.extend(Fault::ALL.iter().map(|f| (profile, Some(*f))));
    }
    let mut flips = Vec::new();
    for (profile, fault) in &configs {
        let (profile, fault) = (*profile, *fault);
        let make = move || -> Arc<dyn Adapter> {
            Arc::new(ReferenceAdapter::with_faults(
                profile,
                fault.into_iter().collect::<FaultSet>(),
            ))
        };
        // The simulated year (366 starts) is the suite's longest scenario by far: it runs in
        // the configurations without a fault and with the push faults it can show, not in every
        // other fault's (whose scenarios it does not provoke).
        let pushy = fault.is_none_or(|f| {
            convo_tck::rules::targets_of(f)
                .iter()
                .any(|r| r.as_str().starts_with("PUSH-"))
        });
        let opts = SuiteOptions {
            profile,
            tags: (!pushy).then(|| "not @PUSH-5".to_owned()),
            ..SuiteOptions::default()
        };
        let stress = repeat(make, &opts, runs, jobs)
            .await
            .expect("the suite runs");
        if !stress.is_deterministic() {
            flips.push(format!(
                "{profile} {}: {} outcomes over {runs} runs ({:?}):\n{}",
                fault.map_or("(no fault)", |f| f.name()),
                stress.outcomes.len(),
                stress
                    .outcomes
                    .iter()
                    .map(|o| o.runs.len())
                    .collect::<Vec<_>>(),
                stress.difference().join("\n")
            ));
        }
    }
    println!(
        "determinism: {} configurations x {runs} runs, {jobs} at once: {} suite runs in {:.1} s",
        configs.len(),
        configs.len() * runs,
        started.elapsed().as_secs_f64()
    );
    // The suite's runner quiets panics while it runs; say what differed before asserting.
    for flip in &flips {
        eprintln!("{flip}\n");
    }
    assert!(flips.is_empty(), "{}", flips.join("\n\n"));
}
