//! Running the Gherkin suite against an adapter.
//!
//! Parts: [`features`] (the embedded `.feature` files), `world` (the per-scenario cucumber
//! `World`), `params` (typed step parameters), `steps` (definitions by domain) and `runner`
//! ([`run_suite`], used by `cargo test` and `convo-tck run` alike). Every scenario gets a fresh
//! scene from the harness and is judged against every rule of the catalog when it ends;
//! scenarios run concurrently.
//!
//! Must not import: the report, the properties.

pub mod features;
mod params;
mod runner;
mod steps;
mod world;

pub use runner::{
    BadPartition, MAX_TAGS_DEPTH, MAX_TAGS_LEN, MAX_TAGS_OPERATORS, Partition, ProgressFeed,
    QUOTE_CHARS, SuiteError, SuiteOptions, SuiteProgress, SuiteRun, elide, run_suite,
};
pub use world::ScenarioRecord;
