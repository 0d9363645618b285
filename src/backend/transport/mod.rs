//! How the backend meets the network: the REST endpoints (served by wiremock behind a front door
//! that reads every request whole and refuses malformed ones itself) and the WebSocket event
//! hub, both on loopback listeners of their own; [`http1`] reads requests within limits for both.
//!
//! Must not import: the facade (the transport serves the model through the service; the facade
//! is what the harness holds).

pub(crate) mod front;
pub(crate) mod http1;
pub(crate) mod hub;
pub(crate) mod rest;

/// Journals a refusal (of the REST front door or of the hub's handshake), answers it and
/// closes the connection.
async fn refuse(
    service: &crate::backend::service::Service,
    stream: &mut tokio::net::TcpStream,
    instance: Option<crate::wire::InstanceId>,
    refused: http1::Refused,
) {
    service.recorder.record(
        instance,
        crate::backend::fact::Fact::Refused(refused.fact.clone()),
    );
    http1::answer_and_close(stream, &refused.response()).await;
}
