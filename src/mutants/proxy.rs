//! A loopback proxy between a client stack and the mock backend: HTTP (hyper) and the event
//! channel's WebSocket, forwarding everything unless the mutant says otherwise.
//!
//! The wrapper starts one per session when it sees `start`, and points the client at it. Each
//! request and each event frame passes through the mutant's transport hooks (`Mutant::request`,
//! `Mutant::response`, `Mutant::event`), which can drop, duplicate or rewrite traffic, or send
//! requests of their own with the client's credentials.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest};
use tokio_tungstenite::tungstenite::http::{HeaderName, StatusCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Kind, Mutant, Shared, lock};

/// One request on its way upstream.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub(crate) method: reqwest::Method,
    /// Path and query.
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Outgoing {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn drop_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// The running proxy: its two listeners and their tasks (stopped on drop).
pub(crate) struct Proxy {
    pub(crate) http_url: String,
    pub(crate) events_url: String,
    upstream: Arc<Upstream>,
    tasks: JoinSet<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

struct Upstream {
    rest: String,
    /// The proxy's own base URL, which replaces `rest` in answers (next-page links and
    /// resource URLs lead back through the proxy, as they would through a real one).
    public: String,
    events: String,
    http: reqwest::Client,
    mutant: &'static Mutant,
    shared: Arc<Mutex<Shared>>,
    /// Wakes a held event channel once the first list page passed (lazy socket).
    first_page: Arc<Notify>,
}

const HEADERS: [&str; 4] = ["content-type", "x-twilio-token", "x-convo-client", "accept"];
const ANSWER_HEADERS: [&str; 3] = ["content-type", "etag", "retry-after"];

impl Proxy {
    /// Starts a proxy in front of `rest` (`http://...`) and `events` (`ws://.../v1/events`).
    pub(crate) async fn start(
        rest: &str,
        events: &str,
        mutant: &'static Mutant,
        shared: Arc<Mutex<Shared>>,
    ) -> std::io::Result<Self> {
        let http_listener = TcpListener::bind("127.0.0.1:0").await?;
        let ws_listener = TcpListener::bind("127.0.0.1:0").await?;
        let http_addr: SocketAddr = http_listener.local_addr()?;
        let ws_addr: SocketAddr = ws_listener.local_addr()?;
        let upstream = Arc::new(Upstream {
            rest: rest.trim_end_matches('/').to_owned(),
            public: format!("http://{http_addr}"),
            events: events.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(std::io::Error::other)?,
            mutant,
            shared,
            first_page: Arc::new(Notify::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_http(http_listener, upstream.clone()));
        tasks.spawn(serve_events(ws_listener, upstream.clone()));
        Ok(Self {
            http_url: format!("http://{http_addr}"),
            events_url: format!("ws://{ws_addr}/v1/events"),
            upstream,
            tasks,
        })
    }

    /// Sends a request of the app's own upstream and waits for its answer's status.
    pub(crate) async fn inject(&self, out: &Outgoing) -> Option<u16> {
        send(&self.upstream, out)
            .await
            .ok()
            .map(|(status, _, _)| status)
    }
}

async fn serve_http(listener: TcpListener, upstream: Arc<Upstream>) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let upstream = upstream.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| forward(req, upstream.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn send(
    upstream: &Upstream,
    out: &Outgoing,
) -> Result<(u16, Vec<(String, String)>, Bytes), String> {
    let mut req = upstream
        .http
        .request(
            out.method.clone(),
            format!("{}{}", upstream.rest, out.target),
        )
        .body(out.body.clone());
    for (k, v) in &out.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| ANSWER_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, headers, body))
}

async fn forward(
    req: hyper::Request<Incoming>,
    upstream: Arc<Upstream>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Outgoing {
        method: reqwest::Method::from_bytes(method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET),
        target,
        headers,
        body,
    };
    let extra = upstream.mutant.request(&upstream.shared, &mut out);
    for injected in extra {
        let _ = send(&upstream, &injected).await;
    }
    let answer = match send(&upstream, &out).await {
        Ok((status, headers, body)) => {
            let (body, extra) = upstream
                .mutant
                .response(&upstream.shared, &out, status, body);
            for injected in extra {
                let _ = send(&upstream, &injected).await;
            }
            if out.path().ends_with("/Conversations") && out.path().starts_with("/v1/Users/") {
                upstream.first_page.notify_waiters();
                upstream.first_page.notify_one();
            }
            let body = rebase(&body, &upstream.rest, &upstream.public);
            let mut b = hyper::Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(Full::new(body))
        }
        Err(e) => hyper::Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(e))),
    };
    Ok(answer.unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}

/// `body` with every occurrence of the upstream base URL `from` replaced by `to`.
fn rebase(body: &Bytes, from: &str, to: &str) -> Bytes {
    match std::str::from_utf8(body) {
        Ok(text) if text.contains(from) => Bytes::from(text.replace(from, to)),
        _ => body.clone(),
    }
}

async fn serve_events(listener: TcpListener, upstream: Arc<Upstream>) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        connections.spawn(relay(stream, upstream.clone()));
    }
}

/// The head of a WebSocket handshake request: its bytes, its query and the headers we forward.
struct Head {
    bytes: Vec<u8>,
    query: String,
    headers: Vec<(String, String)>,
}

/// Reads the client's handshake request up to its blank line (it sends nothing more before
/// the answer).
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Head> {
    let mut bytes = Vec::new();
    let mut chunk = [0_u8; 2048];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() > 64 * 1024 {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = text.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_owned();
    let query = target
        .split_once('?')
        .map(|(_, q)| q.to_owned())
        .unwrap_or_default();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| HEADERS.contains(&k.as_str()))
        .collect();
    Some(Head {
        bytes,
        query,
        headers,
    })
}

type Upstreamed = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the event channel upstream with the client's query and headers; a refusal comes back
/// as the answer to give the client.
async fn connect_upstream(upstream: &Upstream, head: &Head) -> Result<Upstreamed, ErrorResponse> {
    let url = if head.query.is_empty() {
        upstream.events.clone()
    } else {
        format!("{}?{}", upstream.events, head.query)
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| ErrorResponse::new(Some(e.to_string())))?;
    for (k, v) in &head.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), v.parse()) {
            request.headers_mut().insert(name, value);
        }
    }
    match tokio_tungstenite::connect_async_with_config(request, None, true).await {
        Ok((server, _)) => Ok(server),
        Err(WsError::Http(answer)) => {
            let (parts, body) = answer.into_parts();
            let body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
            Err(ErrorResponse::from_parts(parts, body))
        }
        Err(e) => {
            let mut refusal = ErrorResponse::new(Some(e.to_string()));
            *refusal.status_mut() = StatusCode::BAD_GATEWAY;
            Err(refusal)
        }
    }
}

/// Answers the client's handshake with the backend's refusal.
#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes the error type"
)]
async fn pass_refusal<S>(stream: S, refusal: ErrorResponse)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio_tungstenite::accept_hdr_async(stream, |_: &WsRequest, _| Err(refusal)).await;
}

/// One event channel: the client's handshake read, the channel opened upstream (so the client's
/// socket is open only once the backend's is, or refused as the backend refused it), frames
/// pumped both ways (events through the mutant).
async fn relay(mut stream: tokio::net::TcpStream, upstream: Arc<Upstream>) {
    let Some(mut head) = read_head(&mut stream).await else {
        return;
    };
    if upstream.mutant.kind == Kind::StripClientHeader {
        head.headers.retain(|(k, _)| k != "x-convo-client");
    }
    if upstream.mutant.kind == Kind::ResumeInclusive {
        // "Events from `since` on": the resume point is taken as inclusive.
        head.query = head
            .query
            .split('&')
            .map(
                |kv| match kv.strip_prefix("since=").map(str::parse::<u64>) {
                    Some(Ok(n)) if n > 0 => format!("since={}", n - 1),
                    _ => kv.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("&");
    }
    let (read, write) = stream.into_split();
    let replayed = tokio::io::join(std::io::Cursor::new(head.bytes.clone()).chain(read), write);
    let (client, server) = if upstream.mutant.kind == Kind::LazySocket {
        // The socket is "opened" only once the first page of the list has come back.
        let Ok(client) = tokio_tungstenite::accept_async(replayed).await else {
            return;
        };
        upstream.first_page.notified().await;
        let Ok(server) = connect_upstream(&upstream, &head).await else {
            return;
        };
        (client, server)
    } else {
        match connect_upstream(&upstream, &head).await {
            Ok(server) => {
                let Ok(client) = tokio_tungstenite::accept_async(replayed).await else {
                    return;
                };
                (client, server)
            }
            Err(refusal) => return pass_refusal(replayed, refusal).await,
        }
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_server, mut from_server) = server.split();
    // Left only when the mutant `linger-after-logout` abandons the connection.
    loop {
        tokio::select! {
            msg = from_server.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    for text in upstream.mutant.event(&upstream.shared, t.as_str().to_owned()) {
                        if to_client.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    let _ = to_client.close().await;
                    return;
                }
            },
            msg = from_client.next() => match msg {
                Some(Ok(Message::Text(t)))
                    if !(upstream.mutant.kind == Kind::RefreshByReconnect
                        && t.as_str().contains("\"update_token\"")) =>
                {
                    if to_server.send(Message::text(t.as_str().to_owned())).await.is_err() {
                        return;
                    }
                }
                // Mutant `refresh-by-reconnect`: a new token drops the connection (the client
                // opens another with it).
                Some(Ok(Message::Text(_) | Message::Close(_))) | None | Some(Err(_)) => {
                    if upstream.mutant.kind == Kind::LingerAfterLogout
                        && lock(&upstream.shared).logged_out
                    {
                        break;
                    }
                    // Transparent: the client learns its socket is closed only once the backend
                    // has let go of its side too (what it still sends is for nobody).
                    let _ = to_server.close().await;
                    while let Some(Ok(m)) = from_server.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                    let _ = to_client.close().await;
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    // The logout dropped the connection object without closing it: the client's side is gone,
    // the backend's stays open, and what it writes is read and ignored.
    drop((to_client, from_client));
    while let Some(Ok(_)) = from_server.next().await {}
    drop(to_server);
}
