//! How the backend meets the network: the REST endpoints (served by wiremock behind a front door
//! that reads every request whole and refuses malformed ones itself) and the WebSocket event
//! hub, both on loopback listeners of their own; [`http1`] reads requests within limits for both.
//!
//! Must not import: the facade (the transport serves the model through the service; the facade
//! is what the harness holds).

pub(crate) mod cut;
pub(crate) mod front;
pub(crate) mod http1;
pub(crate) mod hub;
pub(crate) mod rest;
pub(crate) mod twilsock;

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

/// Tells a listener's task to stop: it closes every connection it took, then returns.
pub(crate) type Stop = tokio::sync::oneshot::Receiver<()>;

/// Accepts connections on `listener` and runs `handle` on each, until `stop` fires or its
/// sender is dropped; then drops the listener and every connection (awaiting their ends, so
/// whatever a connection journals when it ends is journaled before this returns).
async fn accept_until<F, Fut>(listener: tokio::net::TcpListener, mut stop: Stop, handle: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    // Small frames (events, pongs) must not wait for delayed ACKs.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(handle(stream));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    drop(listener);
    connections.shutdown().await;
}
