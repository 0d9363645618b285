//! convo-tck: a lifecycle conformance kit for Conversations-style chat client SDKs.
//!
//! A vendor's client stack, wrapped in an [`Adapter`], is driven through Gherkin scenarios and
//! property campaigns against a mock Conversations service (REST in the Twilio v1 shape plus a
//! WebSocket event channel) on loopback, on virtual time. Every rule of the [`rules`] catalog is
//! judged on every scenario's journal; the [`Report`] is the compliance matrix.
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
//! An adapter author needs [`adapter`] (the contract: commands, typed replies, observations,
//! and [`AdapterSession::serve`] for an in-process stack), [`run_suite`] and [`Report`]; the
//! mock service alone is [`Backend`]. Modules, bottom up: [`clock`] and [`wire`] (virtual time,
//! the v1 wire vocabulary), [`adapter`], [`backend`] (the mock service; it records facts and
//! knows nothing of adapters), [`journal`] (everything a scenario did, in one order),
//! [`reference`] (the built-in client and its planted faults), [`checks`] (judges of one
//! property each), [`rules`] (the catalog that owns checks and faults, and judging),
//! [`harness`] (a scene: backend, adapter session, driver), [`scenario`] and [`properties`]
//! (what provokes the rules), [`report`] (the matrix and its writers), [`stress`] (the same
//! suite many times at once: any difference is a determinism bug), [`standalone`] (the mock
//! service alone with a control API: `convo-tck backend`). `docs/architecture.md` maps them.

pub mod adapter;
pub mod backend;
pub mod checks;
pub mod clock;
pub mod harness;
pub mod journal;
pub mod mutants;
pub mod properties;
pub mod reference;
pub mod report;
pub mod rules;
pub mod scenario;
mod secrets;
pub mod standalone;
pub mod stress;
pub mod wire;

pub use adapter::{Adapter, AdapterSession, Profile};
pub use backend::Backend;
pub use reference::{Fault, FaultSet, ReferenceAdapter};
pub use report::Report;
pub use rules::{RuleId, Verdict};
pub use scenario::{SuiteOptions, run_suite};
pub use secrets::{Secrets, TokenFingerprint, has_token_shape, scrub};
