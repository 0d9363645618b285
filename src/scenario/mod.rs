//! Running the Gherkin suite against an adapter.
//!
//! Parts: [`features`] (the embedded `.feature` files), `world` (the per-scenario cucumber
//! `World`), `driver` (commands in, replies and observations journaled), `steps` (definitions by
//! domain) and `runner` ([`run_suite`], used by `cargo test` and `convo-tck run` alike). Every
//! scenario gets a fresh backend on its own loopback ports and a fresh adapter session; scenarios
//! run concurrently.

mod driver;
pub mod features;
mod runner;
mod steps;
pub(crate) mod world;

pub use driver::Driver;
pub use runner::{SuiteError, SuiteOptions, SuiteRun, run_suite};
pub use world::ScenarioRecord;
