//! Twilsock v3 framing: `TWILSOCK V3.0 <header bytes>\r\n<header JSON>\r\n<payload>`, one frame
//! per binary WebSocket message. The header's `payload_size` says how many payload bytes follow;
//! `payload_type` `application/json` (or none) makes the payload JSON.

use serde_json::{Map, Value};

/// One twilsock frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    /// The header object (`method`, `id`, ...), without `payload_size`.
    pub(crate) header: Map<String, Value>,
    /// The payload: JSON when it parsed as JSON, else a string; `Null` when empty.
    pub(crate) payload: Value,
}

/// Why a message is not a twilsock frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The first line is not `TWILSOCK V3.0 <n>`.
    #[error("not a twilsock v3.0 frame: the first line must be `TWILSOCK V3.0 <header size>`")]
    Magic,
    /// The header is not a JSON object of the announced size.
    #[error("the header is not a JSON object of the announced size: {0}")]
    Header(String),
    /// Fewer payload bytes than `payload_size`.
    #[error("the payload is shorter than its payload_size")]
    Truncated,
}

const MAGIC: &str = "TWILSOCK V3.0 ";

impl Frame {
    /// A frame with this `method` and no payload.
    pub(crate) fn new(method: &str) -> Self {
        let mut header = Map::new();
        header.insert("method".into(), Value::from(method));
        Self {
            header,
            payload: Value::Null,
        }
    }

    /// With a header field.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.header.insert(key.into(), value.into());
        self
    }

    /// With a JSON payload.
    pub(crate) fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// A header field as a string.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.header.get(key).and_then(Value::as_str)
    }

    /// Encodes the frame (sets `payload_size` and, for a payload, `payload_type`).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let body = match &self.payload {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut header = self.header.clone();
        header.insert("payload_size".into(), Value::from(body.len()));
        if !body.is_empty() && !header.contains_key("payload_type") {
            header.insert("payload_type".into(), Value::from("application/json"));
        }
        let header = Value::Object(header).to_string();
        let mut out = format!("{MAGIC}{}\r\n{header}\r\n", header.len()).into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }

    /// Decodes one frame.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let eol = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(FrameError::Magic)?;
        let first = std::str::from_utf8(&bytes[..eol]).map_err(|_| FrameError::Magic)?;
        let size: usize = first
            .strip_prefix(MAGIC)
            .and_then(|n| n.trim().parse().ok())
            .ok_or(FrameError::Magic)?;
        let start = eol + 2;
        let end = start
            .checked_add(size)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| FrameError::Header("shorter than announced".into()))?;
        let raw = &bytes[start..end];
        let header: Map<String, Value> =
            serde_json::from_slice(raw).map_err(|e| FrameError::Header(e.to_string()))?;
        let payload_size = header
            .get("payload_size")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let mut header = header;
        header.remove("payload_size");
        let payload = if payload_size == 0 {
            Value::Null
        } else {
            if bytes.get(end..end + 2) != Some(b"\r\n".as_slice()) {
                return Err(FrameError::Header("no CRLF after the header".into()));
            }
            let at = end + 2;
            let raw = at
                .checked_add(payload_size)
                .and_then(|stop| bytes.get(at..stop))
                .ok_or(FrameError::Truncated)?;
            let text = String::from_utf8_lossy(raw);
            let json = header
                .get("payload_type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.starts_with("application/json"));
            if json {
                serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
            } else {
                Value::String(text.into_owned())
            }
        };
        Ok(Self { header, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_with_and_without_payload() {
        let f = Frame::new("reply")
            .with("id", "TM1")
            .payload(json!({"a": [1, "é"]}));
        assert_eq!(
            Frame::decode(&f.encode()).unwrap().payload,
            json!({"a": [1, "é"]})
        );
        let bare = Frame::new("close").with("id", "x");
        let back = Frame::decode(&bare.encode()).unwrap();
        assert_eq!(back.payload, Value::Null);
        assert_eq!(back.str("method"), Some("close"));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(Frame::decode(b"hello"), Err(FrameError::Magic));
        assert_eq!(
            Frame::decode(b"TWILSOCK V3.0 x\r\n{}"),
            Err(FrameError::Magic)
        );
        assert!(matches!(
            Frame::decode(b"TWILSOCK V3.0 2\r\n[]\r\n"),
            Err(FrameError::Header(_))
        ));
        assert_eq!(
            Frame::decode(b"TWILSOCK V3.0 18\r\n{\"payload_size\":9}\r\nab"),
            Err(FrameError::Truncated)
        );
        // Sizes near the top of usize are errors, not overflows.
        assert!(matches!(
            Frame::decode(b"TWILSOCK V3.0 18446744073709551615\r\n{}"),
            Err(FrameError::Header(_))
        ));
        let header = r#"{"payload_size":18446744073709551615}"#;
        let frame = format!("TWILSOCK V3.0 {}\r\n{header}\r\nab", header.len());
        assert_eq!(Frame::decode(frame.as_bytes()), Err(FrameError::Truncated));
    }
}
