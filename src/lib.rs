//! convo-tck: a lifecycle conformance kit for Conversations-style chat client SDKs.
#![allow(missing_docs)]
pub mod adapter;
pub mod backend;
pub mod clock;
pub mod rules;
pub use adapter::Profile;
