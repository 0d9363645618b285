//! HTTP/1.1 requests read by hand, within limits: what the REST front door and the event
//! channel's handshake share.
//!
//! A request is read whole before anything answers it: its head (request line and headers,
//! parsed by `httparse`), then its body as its framing says (`Content-Length` or chunked).
//! Whatever breaks a limit or cannot be parsed becomes a [`Refused`]: the Twilio error body to
//! answer with, and the [`RefusedFact`] to journal. The limits:
//!
//! - the request line: [`MAX_REQUEST_LINE`] bytes (414);
//! - the head: [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers (431);
//! - the body: [`MAX_BODY`] bytes, however it is framed (413);
//! - a client that stops sending in the middle of a request: [`STALL`] (408). Between requests
//!   a kept-alive connection may stay idle as long as the client likes.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::backend::fact::{Layer, Refusal, RefusedFact, quoted};
use crate::wire::TwilioError;

/// The longest request line read (414 past it).
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;
/// The largest head (request line and headers) read (431 past it).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have (431 past it).
pub(crate) const MAX_HEADERS: usize = 64;
/// The largest body read, however it is framed (413 past it).
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// How long a client may stop sending in the middle of a request (408 past it).
pub(crate) const STALL: Duration = Duration::from_secs(10);
/// The longest line of a chunked body's framing (a chunk size with extensions, a trailer).
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A request's head.
pub(crate) struct Head {
    pub(crate) method: String,
    /// The request target as sent.
    pub(crate) target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub(crate) minor: u8,
    /// Headers in order, names in lower case.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// The request line, cut for quoting.
    pub(crate) line: String,
}

impl Head {
    /// Every value of header `name` (lower case).
    pub(crate) fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let name = name.to_owned();
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name`, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether a comma-separated header `name` lists `token` (case-insensitive).
    pub(crate) fn lists(&self, name: &str, token: &str) -> bool {
        self.values(name).any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Whether the connection stays open after this request.
    pub(crate) fn keep_alive(&self) -> bool {
        if self.lists("connection", "close") {
            false
        } else {
            self.minor >= 1 || self.lists("connection", "keep-alive")
        }
    }
}

/// A request refused before any endpoint saw it: what to answer and what to journal.
pub(crate) struct Refused {
    pub(crate) fact: RefusedFact,
    /// Extra headers for the answer.
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Refused {
    pub(crate) fn new(cause: Refusal, status: u16, detail: &str) -> Self {
        let mut fact = RefusedFact::new(Layer::Http, cause, detail);
        fact.status = Some(status);
        Self {
            fact,
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_line(mut self, line: Option<&str>) -> Self {
        if self.fact.request_line.is_none() {
            self.fact.request_line = line.map(quoted);
        }
        self
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The answer: a Twilio error body (code `20000 + status`; only its head when it answers
    /// a `HEAD` request), and the connection closes.
    pub(crate) fn response(&self) -> Vec<u8> {
        let head_request = self
            .fact
            .request_line
            .as_deref()
            .is_some_and(|l| l.starts_with("HEAD "));
        let status = self.fact.status.unwrap_or(400);
        let mut answer = error_response(
            status,
            20_000 + u32::from(status),
            &self.fact.detail,
            &self.headers,
            true,
        );
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n");
        if let (true, Some(end)) = (head_request, head_end) {
            answer.truncate(end + 4);
        }
        answer
    }
}

/// An HTTP/1.1 answer with a Twilio error body.
pub(crate) fn error_response(
    status: u16,
    code: u32,
    message: &str,
    headers: &[(&'static str, String)],
    close: bool,
) -> Vec<u8> {
    let body = serde_json::to_vec(&TwilioError::new(status, code, message)).unwrap_or_default();
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n", body.len()));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The reason phrase of `status`.
pub(crate) fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Writes `answer` and closes the connection (errors ignored: the client may be gone).
pub(crate) async fn answer_and_close(io: &mut (impl AsyncWrite + Unpin), answer: &[u8]) {
    let _ = io.write_all(answer).await;
    let _ = io.shutdown().await;
}

enum ReadError {
    Eof,
    Stalled,
    Io(std::io::Error),
}

/// Reads more into `buf`; with `stall`, gives up when nothing comes for that long.
async fn read_more(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    stall: Option<Duration>,
) -> Result<(), ReadError> {
    buf.reserve(8 * 1024);
    let read = io.read_buf(buf);
    let n = match stall {
        Some(d) => tokio::time::timeout(d, read)
            .await
            .map_err(|_| ReadError::Stalled)?,
        None => read.await,
    }
    .map_err(ReadError::Io)?;
    if n == 0 { Err(ReadError::Eof) } else { Ok(()) }
}

fn first_line(buf: &[u8]) -> Option<String> {
    let end = buf
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(buf.len())
        .min(MAX_QUOTED_BYTES);
    let line = String::from_utf8_lossy(&buf[..end]);
    let line = line.trim_end_matches('\r');
    (!line.is_empty()).then(|| quoted(line))
}

/// Enough bytes to quote any request line cut to `MAX_QUOTED` characters.
const MAX_QUOTED_BYTES: usize = 4 * crate::backend::fact::MAX_QUOTED + 4;

/// Reads the next request's head from `io` (bytes already read wait in `buf`, and what follows
/// the head stays there). `None`: the connection closed cleanly between requests.
pub(crate) async fn read_head(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Result<Option<Head>, Refused> {
    loop {
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        let blank = buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        buf.advance(blank);
        if !buf.is_empty() {
            let line = first_line(buf);
            match buf.iter().position(|b| *b == b'\n') {
                Some(end) if end > MAX_REQUEST_LINE => {
                    return Err(too_long_line(end).with_line(line.as_deref()));
                }
                None if buf.len() > MAX_REQUEST_LINE => {
                    return Err(too_long_line(buf.len()).with_line(line.as_deref()));
                }
                _ => {}
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head {
                        method: req.method.unwrap_or_default().to_owned(),
                        target: req.path.unwrap_or_default().to_owned(),
                        minor: req.version.unwrap_or(1),
                        headers: req
                            .headers
                            .iter()
                            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                            .collect(),
                        line: line.unwrap_or_default(),
                    };
                    if len > MAX_HEAD {
                        return Err(too_large_head(len).with_line(Some(&head.line)));
                    }
                    buf.advance(len);
                    return Ok(Some(head));
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(too_large_head(buf.len()).with_line(line.as_deref()));
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(Refused::new(
                        Refusal::HeadTooLarge,
                        431,
                        &format!("more than {MAX_HEADERS} headers"),
                    )
                    .with_line(line.as_deref()));
                }
                Err(e) => {
                    return Err(Refused::new(
                        Refusal::MalformedHead,
                        400,
                        &format!("malformed request head: {e}"),
                    )
                    .with_line(line.as_deref()));
                }
            }
        }
        // Between requests the connection may idle; inside one the client must keep sending.
        let stall = (!buf.is_empty()).then_some(STALL);
        match read_more(io, buf, stall).await {
            Ok(()) => {}
            Err(ReadError::Eof) if buf.is_empty() => return Ok(None),
            Err(e) => {
                let line = first_line(buf);
                return Err(broken(e, "its head").with_line(line.as_deref()));
            }
        }
    }
}

fn too_long_line(len: usize) -> Refused {
    Refused::new(
        Refusal::UriTooLong,
        414,
        &format!("request line of {len}+ bytes: the limit is {MAX_REQUEST_LINE}"),
    )
}

fn too_large_head(len: usize) -> Refused {
    Refused::new(
        Refusal::HeadTooLarge,
        431,
        &format!("request head of {len}+ bytes: the limit is {MAX_HEAD}"),
    )
}

/// A refusal for a request cut short while reading `what`.
fn broken(e: ReadError, what: &str) -> Refused {
    match e {
        ReadError::Eof => Refused::new(
            Refusal::Truncated,
            400,
            &format!("the connection closed in the middle of {what}"),
        ),
        ReadError::Stalled => Refused::new(
            Refusal::Timeout,
            408,
            &format!(
                "nothing received for {} s in the middle of {what}",
                STALL.as_secs()
            ),
        ),
        ReadError::Io(e) => Refused::new(
            Refusal::Truncated,
            400,
            &format!("the connection failed in the middle of {what}: {e}"),
        ),
    }
}

/// How a request's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(usize),
    Chunked,
}

/// How `head`'s body is framed, or why that cannot be told.
pub(crate) fn framing(head: &Head) -> Result<Framing, Refused> {
    let bad = |status: u16, detail: String| {
        Refused::new(Refusal::BadFraming, status, &detail).with_line(Some(&head.line))
    };
    let codings: Vec<String> = head
        .values("transfer-encoding")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .collect();
    let lengths: Vec<&[u8]> = head
        .values("content-length")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(bad(
                400,
                "both Content-Length and Transfer-Encoding are present".into(),
            ));
        }
        if head.minor == 0 {
            return Err(bad(400, "Transfer-Encoding in an HTTP/1.0 request".into()));
        }
        return match codings.as_slice() {
            [only] if only == "chunked" => Ok(Framing::Chunked),
            _ => Err(bad(
                501,
                format!(
                    "unsupported Transfer-Encoding `{}`: only chunked is served",
                    quoted(&codings.join(", "))
                ),
            )),
        };
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::Empty);
    };
    if lengths.iter().any(|l| l != first) {
        return Err(bad(400, "Content-Length values disagree".into()));
    }
    let digits = !first.is_empty() && first.iter().all(u8::is_ascii_digit);
    let Some(len) = std::str::from_utf8(first)
        .ok()
        .filter(|_| digits)
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Err(bad(
            400,
            format!(
                "invalid Content-Length `{}`",
                quoted(&String::from_utf8_lossy(first))
            ),
        ));
    };
    match usize::try_from(len).ok().filter(|l| *l <= MAX_BODY) {
        Some(0) => Ok(Framing::Empty),
        Some(len) => Ok(Framing::Length(len)),
        None => Err(Refused::new(
            Refusal::BodyTooLarge,
            413,
            &format!("a body of {len} bytes: the limit is {MAX_BODY}"),
        )
        .with_line(Some(&head.line))),
    }
}

/// Reads the body `framing` announces (chunks decoded), leaving what follows in `buf`.
pub(crate) async fn read_body(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    head: &Head,
    framing: Framing,
) -> Result<Bytes, Refused> {
    let line = Some(head.line.as_str());
    match framing {
        Framing::Empty => Ok(Bytes::new()),
        Framing::Length(len) => {
            while buf.len() < len {
                if let Err(e) = read_more(io, buf, Some(STALL)).await {
                    let what = format!("its body ({} of {len} bytes received)", buf.len());
                    return Err(broken(e, &what).with_line(line));
                }
            }
            Ok(buf.split_to(len).freeze())
        }
        Framing::Chunked => read_chunked(io, buf).await.map_err(|r| r.with_line(line)),
    }
}

/// Reads one CRLF-terminated line of a chunked body's framing (without its line break).
async fn chunk_line(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Result<Bytes, Refused> {
    loop {
        if let Some(end) = buf.iter().position(|b| *b == b'\n') {
            if end > MAX_CHUNK_LINE {
                break;
            }
            let line = buf.split_to(end + 1);
            let Some(line) = line.strip_suffix(b"\r\n") else {
                return Err(Refused::new(
                    Refusal::BadChunk,
                    400,
                    "a chunk line ends in a bare LF",
                ));
            };
            return Ok(Bytes::copy_from_slice(line));
        }
        if buf.len() > MAX_CHUNK_LINE {
            break;
        }
        read_more(io, buf, Some(STALL))
            .await
            .map_err(|e| broken(e, "its chunked body"))?;
    }
    Err(Refused::new(
        Refusal::BadChunk,
        400,
        &format!("a chunk line longer than {MAX_CHUNK_LINE} bytes"),
    ))
}

async fn read_chunked(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Result<Bytes, Refused> {
    let mut body = BytesMut::new();
    loop {
        let line = chunk_line(io, buf).await?;
        // chunk-size [ ; extensions ]; whitespace before the `;` is tolerated.
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = size.trim_ascii();
        let parsed =
            (!size.is_empty() && size.len() <= 16 && size.iter().all(u8::is_ascii_hexdigit))
                .then(|| std::str::from_utf8(size).ok())
                .flatten()
                .and_then(|s| u64::from_str_radix(s, 16).ok());
        let Some(size) = parsed else {
            return Err(Refused::new(
                Refusal::BadChunk,
                400,
                &format!(
                    "invalid chunk size `{}`",
                    quoted(&String::from_utf8_lossy(size))
                ),
            ));
        };
        if size == 0 {
            // Trailers, up to an empty line; they are read and dropped.
            let mut trailers = 0;
            loop {
                let t = chunk_line(io, buf).await?;
                if t.is_empty() {
                    return Ok(body.freeze());
                }
                trailers += t.len();
                if trailers > MAX_HEAD {
                    return Err(Refused::new(
                        Refusal::HeadTooLarge,
                        431,
                        &format!("trailers of {trailers}+ bytes: the limit is {MAX_HEAD}"),
                    ));
                }
            }
        }
        let total = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(body.len()))
            .filter(|t| *t <= MAX_BODY);
        let Some(_) = total else {
            return Err(Refused::new(
                Refusal::BodyTooLarge,
                413,
                &format!("a chunked body past {MAX_BODY} bytes: the limit"),
            ));
        };
        // Checked above: size fits a usize.
        let size = usize::try_from(size).unwrap_or(MAX_BODY);
        while buf.len() < size + 2 {
            read_more(io, buf, Some(STALL))
                .await
                .map_err(|e| broken(e, "a chunk"))?;
        }
        body.extend_from_slice(&buf[..size]);
        if &buf[size..size + 2] != b"\r\n" {
            return Err(Refused::new(
                Refusal::BadChunk,
                400,
                &format!("a chunk of {size} bytes is not followed by CRLF"),
            ));
        }
        buf.advance(size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8]) -> Result<(Head, Bytes), Refused> {
        let mut io = raw;
        let mut buf = BytesMut::new();
        let head = read_head(&mut io, &mut buf).await?.expect("a head");
        let framing = framing(&head)?;
        let body = read_body(&mut io, &mut buf, &head, framing).await?;
        Ok((head, body))
    }

    async fn refusal(raw: &[u8]) -> (Refusal, u16) {
        match parse(raw).await {
            Ok((h, _)) => panic!("accepted {}", h.line),
            Err(r) => (r.fact.cause, r.fact.status.unwrap_or_default()),
        }
    }

    #[tokio::test]
    async fn well_formed_requests_are_read_whole() {
        let (h, b) = parse(b"\r\nPOST /token?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .await
            .ok()
            .unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str()),
            ("POST", "/token?x=1")
        );
        assert_eq!(&b[..], b"abc");
        let (_, b) = parse(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
        )
        .await
        .ok()
        .unwrap();
        assert_eq!(&b[..], b"abcde");
        let (h, _) = parse(b"GET / HTTP/1.0\r\n\r\n").await.ok().unwrap();
        assert!(!h.keep_alive());
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_with_their_cause() {
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        let big_head = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(300)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let cases: Vec<(&[u8], Refusal, u16)> = vec![
            (b"\x00\x01garbage\r\n\r\n", Refusal::MalformedHead, 400),
            (long_line.as_bytes(), Refusal::UriTooLong, 414),
            (big_head.as_bytes(), Refusal::HeadTooLarge, 431),
            (many.as_bytes(), Refusal::HeadTooLarge, 431),
            (b"GET / HT", Refusal::Truncated, 400),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
                Refusal::Truncated,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                Refusal::BadFraming,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                Refusal::BadFraming,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::BadFraming,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                Refusal::BadFraming,
                501,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                Refusal::BadFraming,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n",
                Refusal::BodyTooLarge,
                413,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                Refusal::BadChunk,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                Refusal::BadChunk,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n",
                Refusal::BodyTooLarge,
                413,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
                Refusal::BadChunk,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                Refusal::Truncated,
                400,
            ),
        ];
        for (raw, cause, status) in cases {
            let got = refusal(raw).await;
            assert_eq!(
                got,
                (cause, status),
                "{}",
                String::from_utf8_lossy(&raw[..raw.len().min(80)])
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_quotes_its_request_line_cut_and_answers_in_twilio_shape() {
        let raw = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        let Err(r) = parse(raw.as_bytes()).await else {
            panic!("accepted")
        };
        let line = r.fact.request_line.clone().unwrap();
        assert!(
            line.chars().count() <= crate::backend::fact::MAX_QUOTED + 1,
            "{line}"
        );
        let answer = String::from_utf8(r.response()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        let body: serde_json::Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], 20_414);
        assert_eq!(body["status"], 414);
    }
}
