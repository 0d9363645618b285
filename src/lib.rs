//! convo-tck: a lifecycle conformance kit for Conversations-style chat client SDKs.
//!
//! A vendor's client stack, wrapped in an [`Adapter`], is driven through Gherkin scenarios
//! against a mock Conversations service (REST in the Twilio v1 shape plus a WebSocket event
//! channel) on loopback, on virtual time. Checks turn what the client did into a verdict per
//! lifecycle rule of the vendor's best-practice page; the [`Report`] is the compliance matrix.
//!
//! ```no_run
//! # async fn demo() -> Result<(), convo_tck::scenario::SuiteError> {
//! use std::sync::Arc;
//! use convo_tck::{Profile, Report, ReferenceAdapter, SuiteOptions, run_suite};
//!
//! let adapter = Arc::new(ReferenceAdapter::with_faults(Profile::Mobile, Default::default()));
//! let run = run_suite(adapter, &SuiteOptions::default()).await?;
//! let report = Report::build(&run);
//! assert_eq!(report.exit_code(), 0);
//! # Ok(()) }
//! ```
//!
//! Modules, left to right along the data flow: [`scenario`] (features, steps, runner),
//! [`adapter`] (the contract), [`reference`] (the built-in client and its faults), [`backend`]
//! (the mock service and its journal), [`clock`] (virtual time), [`checks`] (verdicts),
//! [`report`] (matrix writers) and [`rules`] (the catalog everything refers to).

pub mod adapter;
pub mod backend;
pub mod checks;
pub mod clock;
pub mod properties;
pub mod reference;
pub mod report;
pub mod rules;
pub mod scenario;

pub use adapter::{Adapter, Profile};
pub use checks::Verdict;
pub use reference::{Fault, FaultSet, ReferenceAdapter};
pub use report::Report;
pub use rules::RuleId;
pub use scenario::{SuiteOptions, run_suite};
