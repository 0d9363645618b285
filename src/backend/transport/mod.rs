//! How the backend meets the network: the REST endpoints (served by wiremock) and the
//! WebSocket event hub, both on loopback listeners of their own.
//!
//! Must not import: the facade (the transport serves the model through the service; the facade
//! is what the harness holds).

pub(crate) mod hub;
pub(crate) mod rest;
