//! The REST front door: the public REST port, in front of wiremock.
//!
//! Every request is read whole, within the limits of [`super::http1`], before anything answers
//! it. Whatever is malformed (a head that does not parse or is too large, a body shorter than
//! its `Content-Length`, bad chunks, `CONNECT`, a target that is not a path) is answered here
//! with a Twilio error body and journaled as a [`Fact::Refused`], and the connection closes.
//! Well-formed requests go on to wiremock, which listens on a loopback port of its own, over one
//! kept-alive connection per client connection; its answer comes back unchanged (re-framed with
//! a `Content-Length`). So wiremock only ever sees requests it can take, and the journal sees
//! every request: the endpoints journal those they answer, the front door those it refused.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::http1::{self, Head, Refused};
use crate::backend::fact::{Refusal, quoted};
use crate::backend::service::Service;
use crate::wire::InstanceId;

/// Accepts connections until `stop` fires (then closes every connection it took before it
/// returns) or the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    service: Arc<Service>,
    stop: super::Stop,
) {
    super::accept_until(listener, stop, move |stream| {
        connection(stream, upstream, service.clone())
    })
    .await;
}

/// Headers that belong to one connection, not to the request: never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "content-length",
];

async fn connection(mut stream: TcpStream, upstream: SocketAddr, service: Arc<Service>) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut wiremock: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let head = match http1::read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refused) => return super::refuse(&service, &mut stream, None, refused).await,
        };
        let instance = head
            .header("x-convo-client")
            .map(|i| InstanceId::from(quoted(i)));
        let request = match read_request(&mut stream, &mut buf, &head).await {
            Ok(r) => r,
            Err(refused) => return super::refuse(&service, &mut stream, instance, refused).await,
        };
        let answer = match forward(&mut wiremock, upstream, request).await {
            Ok(a) => a,
            Err(e) => {
                let refused = Refused::new(
                    Refusal::Upstream,
                    502,
                    &format!("the REST layer did not answer: {e}"),
                )
                .with_line(Some(&head.line));
                return super::refuse(&service, &mut stream, instance, refused).await;
            }
        };
        let keep_alive = head.keep_alive();
        let mut bytes = encode(answer, head.method == "HEAD", keep_alive);
        if keep_alive && head.minor == 0 {
            // An HTTP/1.0 client keeps the connection only when the answer says so.
            splice_header(&mut bytes, "connection: keep-alive");
        }
        if stream.write_all(&bytes).await.is_err() || !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads the rest of the request `head` starts, and checks it is one wiremock can take.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head: &Head,
) -> Result<hyper::Request<Full<Bytes>>, Refused> {
    let line = Some(head.line.as_str());
    if head.method == "CONNECT" {
        return Err(Refused::new(
            Refusal::MethodNotAllowed,
            405,
            "CONNECT is not served: this is not a proxy",
        )
        .with_line(line)
        .with_header("allow", "GET, POST".into()));
    }
    // Only origin-form targets (`/path?query`), and only what parses as a URL (wiremock
    // parses it again and must not fail).
    let target_ok = head.target.starts_with('/')
        && url::Url::parse(&format!("http://localhost{}", head.target)).is_ok();
    let uri = target_ok
        .then(|| head.target.parse::<hyper::Uri>().ok())
        .flatten()
        .ok_or_else(|| {
            Refused::new(
                Refusal::BadTarget,
                400,
                "the request target is not a path the service could route",
            )
            .with_line(line)
        })?;
    let framing = http1::framing(head)?;
    if framing != http1::Framing::Empty && head.lists("expect", "100-continue") {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let body = http1::read_body(stream, buf, head, framing).await?;
    let method = hyper::Method::from_bytes(head.method.as_bytes())
        .map_err(|_| Refused::new(Refusal::MalformedHead, 400, "invalid method").with_line(line))?;
    let mut request = hyper::Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    for (name, value) in &head.headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let parsed = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_bytes(value),
        );
        let (Ok(name), Ok(value)) = parsed else {
            return Err(Refused::new(
                Refusal::MalformedHead,
                400,
                &format!("header `{}` is not a valid HTTP header", quoted(name)),
            )
            .with_line(line));
        };
        headers.append(name, value);
    }
    Ok(request)
}

/// Sends `request` to wiremock over the connection's kept-alive upstream connection (opened on
/// first use, and again if wiremock closed it), and reads the whole answer.
async fn forward(
    wiremock: &mut Option<SendRequest<Full<Bytes>>>,
    upstream: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Bytes>, String> {
    if wiremock.as_ref().is_none_or(SendRequest::is_closed) {
        let stream = TcpStream::connect(upstream)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        *wiremock = Some(sender);
    }
    let Some(sender) = wiremock.as_mut() else {
        return Err("no connection".into());
    };
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(hyper::Response::from_parts(parts, body))
}

/// Adds `header` to the head of `answer`.
fn splice_header(answer: &mut Vec<u8>, header: &str) {
    if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
        let at = end + 2;
        answer.splice(at..at, format!("{header}\r\n").into_bytes());
    }
}

/// wiremock's answer as HTTP/1.1 bytes: its status and headers unchanged, framed by a
/// `Content-Length` (a `HEAD` answer keeps wiremock's and carries no body).
fn encode(answer: hyper::Response<Bytes>, head_request: bool, keep_alive: bool) -> Vec<u8> {
    let (parts, body) = answer.into_parts();
    let status = parts.status.as_u16();
    // Answers that never carry a body carry no framing either.
    let head_request = head_request || matches!(status, 100..=199 | 204 | 304);
    let mut out = format!("HTTP/1.1 {status} {}\r\n", http1::reason(status)).into_bytes();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let framing = name == "content-length" && !head_request;
        if framing || matches!(name, "connection" | "keep-alive" | "transfer-encoding") {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !head_request {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request {
        out.extend_from_slice(&body);
    }
    out
}
