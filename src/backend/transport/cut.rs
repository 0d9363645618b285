//! The half-open network: a port that accepts connections and drops them unanswered.
//!
//! What a captive portal or a dead NAT mapping looks like to a client: the TCP handshake
//! succeeds, the request goes out, and the connection closes without a byte of answer. Each such
//! connection is journaled as a [`Fact::Dropped`] with the instance and the request target when
//! the client sent them, so the kit can count a client's attempts and the gaps between them.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};

use super::http1;
use crate::backend::fact::{DroppedFact, Fact, Port, quoted};
use crate::backend::service::Service;
use crate::secrets::{TokenFingerprint, scrub};
use crate::wire::InstanceId;

/// Takes and drops connections on `listener` until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    port: Port,
    service: Arc<Service>,
    stop: super::Stop,
) {
    super::accept_until(listener, stop, move |stream| {
        drop_connection(stream, port, service.clone())
    })
    .await;
}

async fn drop_connection(mut stream: TcpStream, port: Port, service: Arc<Service>) {
    let mut buf = BytesMut::new();
    // The head, if the client sends one, names the instance and what it wanted.
    let head = http1::read_head(&mut stream, &mut buf).await.ok().flatten();
    let instance = head
        .as_ref()
        .and_then(|h| h.header("x-convo-client"))
        .map(|i| InstanceId::from(quoted(i)));
    let token = head
        .as_ref()
        .and_then(|h| h.header("x-twilio-token"))
        .map(TokenFingerprint::of);
    let target = head.map(|h| quoted(&scrub(&h.target)));
    service.recorder.record(
        instance,
        Fact::Dropped(DroppedFact {
            port,
            target,
            token,
        }),
    );
    // Dropping the stream closes it without an answer.
}
