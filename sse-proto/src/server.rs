//! The server side, sans-IO: reading a request head, answering it with an
//! event stream (headers, chunked framing, keep-alive comments, a clean
//! end) or with a short error response.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use std::time::{Duration, Instant};

use crate::client::{ConfigError, is_token};
use crate::encoder::{EncodeError, Event, encode_comment};
use crate::http::{HttpError, LAST_CHUNK, MAX_HEADERS, encode_chunk};

/// Why a request cannot be served, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a valid HTTP/1.1 request head: 400.
    Malformed(HttpError),
    /// The head is larger than allowed: 431.
    HeadTooLarge {
        /// Bytes seen.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The method is not one the resource takes: 405.
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header.
        allow: String,
    },
}

impl RequestError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::HeadTooLarge { .. } => 431,
            RequestError::MethodNotAllowed { .. } => 405,
        }
    }

    /// The complete error response (see [`error_response`]).
    pub fn response(&self) -> Vec<u8> {
        match self {
            RequestError::MethodNotAllowed { allow } => error_response(405, &[("Allow", allow)]),
            e => error_response(e.status(), &[]),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(e) => write!(f, "bad request: {e}"),
            RequestError::HeadTooLarge { len, max } => {
                write!(f, "request head of more than {len} bytes exceeds the limit of {max} bytes")
            }
            RequestError::MethodNotAllowed { allow } => write!(f, "method not allowed (allowed: {allow})"),
        }
    }
}

impl core::error::Error for RequestError {}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    head_len: usize,
}

impl Request {
    /// Parses a request head from the front of `buf`. `Ok(None)`: not
    /// complete yet (incomplete input is never an error).
    ///
    /// ```
    /// use sse_proto::Request;
    /// let req = Request::parse(b"GET /events?lastEventId=7 HTTP/1.1\r\nHost: x\r\n\r\n", 8192)?
    ///     .expect("a complete head");
    /// assert_eq!((req.method(), req.path(), req.last_event_id().as_deref()), ("GET", "/events", Some("7")));
    /// # Ok::<(), sse_proto::RequestError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RequestError::Malformed`] (400) or [`RequestError::HeadTooLarge`]
    /// (431).
    pub fn parse(buf: &[u8], max_head_len: usize) -> Result<Option<Request>, RequestError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(buf).map_err(|e| match e {
            httparse::Error::TooManyHeaders => {
                RequestError::HeadTooLarge { len: buf.len(), max: max_head_len }
            }
            e => RequestError::Malformed(e.into()),
        })?;
        let head_len = match status {
            httparse::Status::Partial if buf.len() > max_head_len => {
                return Err(RequestError::HeadTooLarge { len: buf.len(), max: max_head_len });
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) if n > max_head_len => {
                return Err(RequestError::HeadTooLarge { len: n, max: max_head_len });
            }
            httparse::Status::Complete(n) => n,
        };
        let malformed = |why| RequestError::Malformed(HttpError::MalformedHead(why));
        let method = req.method.ok_or(malformed("missing method"))?.to_string();
        let target = req.path.ok_or(malformed("missing target"))?;
        if !target.starts_with('/') {
            return Err(malformed("request target is not an absolute path"));
        }
        let headers = req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        Ok(Some(Request { method, target: target.to_string(), headers, head_len }))
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target (path and query).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// A query parameter, percent-decoded (`+` as space), first occurrence.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// The first header of that name (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Bytes of the head (what follows is the body, if any).
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The id the client resumes after: the `Last-Event-ID` header, or for
    /// polyfills that cannot set headers, the `lastEventId` query parameter.
    /// An empty value means none.
    pub fn last_event_id(&self) -> Option<String> {
        self.header("last-event-id")
            .map(|v| v.trim_matches([' ', '\t']).to_string())
            .or_else(|| self.query_param("lastEventId"))
            .filter(|id| !id.is_empty())
    }

    /// Whether `Accept` allows `text/event-stream` (or is absent).
    pub fn accepts_event_stream(&self) -> bool {
        self.header("accept").is_none_or(|accept| {
            accept.split(',').any(|range| {
                let essence = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                matches!(essence.as_str(), "text/event-stream" | "text/*" | "*/*")
            })
        })
    }

    /// Checks the method against those a resource takes.
    ///
    /// # Errors
    ///
    /// [`RequestError::MethodNotAllowed`] (405) listing `allowed`.
    pub fn check_method(&self, allowed: &[&str]) -> Result<(), RequestError> {
        if allowed.contains(&self.method.as_str()) {
            return Ok(());
        }
        Err(RequestError::MethodNotAllowed { allow: allowed.join(", ") })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The reason phrase for the statuses this crate answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A complete, short error response that closes the connection: the status
/// line, `Content-Type: text/plain`, a `Content-Length`, `Connection: close`,
/// `extra` headers (CR and LF removed from values), and the status as body.
///
/// ```
/// let res = sse_proto::error_response(404, &[]);
/// assert!(res.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
/// assert!(res.ends_with(b"\r\n\r\n404 Not Found\n"));
/// ```
pub fn error_response(status: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let body = format!("{status} {}\n", reason(status));
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        if is_token(name) {
            head.push_str(name);
            head.push_str(": ");
            head.extend(value.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')));
            head.push_str("\r\n");
        }
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

/// How an event stream response behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    keep_alive: Option<Duration>,
    retry: Option<Duration>,
    headers: Vec<(String, String)>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { keep_alive: Some(Self::DEFAULT_KEEP_ALIVE), retry: None, headers: Vec::new() }
    }
}

impl ServerConfig {
    /// Keep-alive interval by default: 15 s (below common proxy idle timeouts).
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

    /// Sends a comment when nothing was sent for `interval`; `None` turns
    /// keep-alives off.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// Sends `retry` first, setting the clients' reconnection time.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// An extra response header (CORS, for example).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One event stream response, sans-IO: it writes bytes into the caller's
/// buffer and tells when the keep-alive timer is due.
///
/// After creating it, write [`start`](Self::start)'s bytes; then
/// [`send`](Self::send) events, call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout), and [`close`](Self::close) to
/// end the stream cleanly.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sse_proto::{Event, ServerConfig, ServerSession};
///
/// let t0 = Instant::now();
/// let mut session = ServerSession::new(ServerConfig::default(), t0)?;
/// let mut out = Vec::new();
/// session.start(&mut out);
/// assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
/// out.clear();
/// session.send(&Event::new("hi"), t0, &mut out)?;
/// assert_eq!(out, b"a\r\ndata: hi\n\n\r\n");
/// // Idle for 15 s: a keep-alive comment.
/// assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(15)));
/// out.clear();
/// session.handle_timeout(t0 + Duration::from_secs(15), &mut out);
/// assert_eq!(out, b"d\r\n: keep-alive\n\r\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerSession {
    config: ServerConfig,
    deadline: Option<Instant>,
    started: bool,
    closed: bool,
    scratch: Vec<u8>,
}

impl ServerSession {
    /// A session for one response.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeader`] when an extra header cannot be sent.
    pub fn new(config: ServerConfig, now: Instant) -> Result<Self, ConfigError> {
        for (name, value) in &config.headers {
            if !is_token(name) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(ConfigError::InvalidHeader { name: name.clone() });
            }
        }
        let deadline = config.keep_alive.map(|k| now + k);
        Ok(ServerSession { config, deadline, started: false, closed: false, scratch: Vec::new() })
    }

    /// Writes the response head: status 200, `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, `Connection:
    /// keep-alive`, `X-Accel-Buffering: no` (nginx must not buffer),
    /// chunked transfer coding, the extra headers; then `retry` if set.
    /// Only the first call writes.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Connection: keep-alive\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
        );
        for (name, value) in &self.config.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(retry) = self.config.retry {
            let mut frame = Vec::new();
            // A retry-only block dispatches nothing; it cannot fail.
            let _ = Event::default().retry(retry).encode(&mut frame);
            encode_chunk(&frame, out);
        }
    }

    /// Writes an encoded frame (one or more events or comments) as a chunk,
    /// and pushes the keep-alive deadline back. Nothing after `close`.
    pub fn send_frame(&mut self, frame: &[u8], now: Instant, out: &mut Vec<u8>) {
        if self.closed || frame.is_empty() {
            return;
        }
        self.start(out);
        encode_chunk(frame, out);
        self.deadline = self.config.keep_alive.map(|k| now + k);
    }

    /// Encodes and writes an event (see [`send_frame`](Self::send_frame)).
    ///
    /// # Errors
    ///
    /// The event's [`EncodeError`]; nothing is written then.
    pub fn send(&mut self, event: &Event<'_>, now: Instant, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut frame = core::mem::take(&mut self.scratch);
        frame.clear();
        let result = event.encode(&mut frame);
        if result.is_ok() {
            self.send_frame(&frame, now, out);
        }
        self.scratch = frame;
        result
    }

    /// Writes a comment (clients ignore it).
    pub fn comment(&mut self, text: &str, now: Instant, out: &mut Vec<u8>) {
        let mut frame = Vec::new();
        encode_comment(text, &mut frame);
        self.send_frame(&frame, now, out);
    }

    /// When the keep-alive comment is due, if keep-alives are on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed { None } else { self.deadline }
    }

    /// Writes a keep-alive comment if nothing was sent for the interval.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.deadline.is_some_and(|d| d <= now) && !self.closed {
            self.comment("keep-alive", now, out);
        }
    }

    /// Ends the stream cleanly: the last chunk. Only the first call writes.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.start(out);
        self.closed = true;
        self.deadline = None;
        out.extend_from_slice(LAST_CHUNK);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_limits_and_errors() {
        let req = Request::parse(
            b"GET /s?a=1&lastEventId=x%20y HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.last_event_id().as_deref(), Some("x y"));
        assert!(req.accepts_event_stream());
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nHost:", 1024), Ok(None));
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nHost: hhhhhhhhhhhh", 16).unwrap_err().status(), 431);
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n", 1024).unwrap_err().status(), 400);
        assert_eq!(Request::parse(b"GET * HTTP/1.1\r\n\r\n", 1024).unwrap_err().status(), 400);
        let header_wins =
            Request::parse(b"GET /?lastEventId=q HTTP/1.1\r\nLast-Event-ID:  42 \r\n\r\n", 1024)
                .unwrap()
                .unwrap();
        assert_eq!(header_wins.last_event_id().as_deref(), Some("42"));
        let err = req.check_method(&["POST"]).unwrap_err();
        assert_eq!(err.status(), 405);
        assert!(err.response().windows(12).any(|w| w == b"Allow: POST\r"));
        let html = Request::parse(b"GET / HTTP/1.1\r\nAccept: text/html\r\n\r\n", 1024).unwrap().unwrap();
        assert!(!html.accepts_event_stream());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(percent_decode("%E2%80%A6"), "\u{2026}");
    }

    #[test]
    fn keep_alive_only_when_idle_and_close_once() {
        let t0 = Instant::now();
        let mut s =
            ServerSession::new(ServerConfig::default().retry(Duration::from_millis(500)), t0).unwrap();
        let mut out = Vec::new();
        s.start(&mut out);
        assert!(out.ends_with(b"\r\n\r\nc\r\nretry: 500\n\n\r\n"));
        let k = ServerConfig::DEFAULT_KEEP_ALIVE;
        out.clear();
        s.send(&Event::new("x"), t0 + k / 2, &mut out).unwrap();
        // Not idle yet at the original deadline.
        s.handle_timeout(t0 + k, &mut out);
        assert!(!out.windows(10).any(|w| w == b"keep-alive"));
        assert_eq!(s.poll_timeout(), Some(t0 + k / 2 + k));
        s.handle_timeout(t0 + k / 2 + k, &mut out);
        assert!(out.windows(10).any(|w| w == b"keep-alive"));
        out.clear();
        s.close(&mut out);
        s.close(&mut out);
        assert_eq!(out, LAST_CHUNK);
        assert_eq!(s.poll_timeout(), None);
        assert!(s.send(&Event::new("late"), t0, &mut out).is_ok());
        assert_eq!(out, LAST_CHUNK);
        assert!(ServerSession::new(ServerConfig::default().header("X", "a\nb"), t0).is_err());
    }
}
