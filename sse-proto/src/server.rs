//! The server side of an event stream, sans-IO: answering a request with
//! the stream's head, framing, keep-alive comments and a clean end. Reading
//! requests and writing error responses is the `http` module's.

use alloc::string::String;
use alloc::vec::Vec;
use std::time::{Duration, Instant};

use crate::client::ConfigError;
use crate::encoder::{EncodeError, Event, encode_comment};
use crate::http::{LAST_CHUNK, Version, encode_chunk, validate_header, write_response_head};

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

    /// An extra response header (CORS, for example). Checked by
    /// [`validate`](Self::validate) and when a session is created.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The keep-alive interval, `None` when keep-alives are off.
    pub fn keep_alive_interval(&self) -> Option<Duration> {
        self.keep_alive
    }

    /// The `retry` sent first, if any.
    pub fn retry_hint(&self) -> Option<Duration> {
        self.retry
    }

    /// Checks that every extra header can be sent: it passes
    /// [`validate_header`], and is not `Content-Length` or
    /// `Transfer-Encoding`, which would contradict the stream's framing.
    /// Sessions check this too; a router can call it once per route when it
    /// is built.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeader`] naming the first bad header.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.headers {
            let framing =
                name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding");
            if framing || validate_header(name, value).is_err() {
                return Err(ConfigError::InvalidHeader { name: name.clone() });
            }
        }
        Ok(())
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
/// To an HTTP/1.1 client the stream is chunked (and the connection may
/// carry another request after [`close`](Self::close)); to an HTTP/1.0
/// client, which has no chunked coding, the stream is delimited by closing
/// the connection (see [`with_version`](Self::with_version)).
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
    version: Version,
    deadline: Option<Instant>,
    started: bool,
    closed: bool,
    scratch: Vec<u8>,
}

impl ServerSession {
    /// A session for one response to an HTTP/1.1 request: chunked framing.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeader`] when an extra header cannot be sent
    /// (see [`ServerConfig::validate`]).
    pub fn new(config: ServerConfig, now: Instant) -> Result<Self, ConfigError> {
        Self::with_version(config, Version::Http11, now)
    }

    /// A session for one response to a request of `version` (see
    /// [`Request::version`](crate::Request::version)).
    ///
    /// For [`Version::Http10`] the stream is delimited by the end of the
    /// connection (RFC 9112 §6.3 rule 8; HTTP/1.0 has no chunked coding,
    /// §6.1): the head says `Connection: close` and has no
    /// `Transfer-Encoding`, frames are written as they are, and
    /// [`close`](Self::close) writes nothing: the caller ends the stream by
    /// closing the connection.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeader`] when an extra header cannot be sent
    /// (see [`ServerConfig::validate`]).
    pub fn with_version(config: ServerConfig, version: Version, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let deadline = config.keep_alive.map(|k| now + k);
        Ok(ServerSession { config, version, deadline, started: false, closed: false, scratch: Vec::new() })
    }

    /// The HTTP version the response is framed for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether frames are chunked (HTTP/1.1) rather than close-delimited.
    fn chunked(&self) -> bool {
        self.version != Version::Http10
    }

    /// Appends `frame` as the body framing requires.
    fn write_frame(&self, frame: &[u8], out: &mut Vec<u8>) {
        if self.chunked() {
            encode_chunk(frame, out);
        } else {
            out.extend_from_slice(frame);
        }
    }

    /// Writes the response head: status 200, `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, `X-Accel-Buffering:
    /// no` (nginx must not buffer), the extra headers, and the framing: for
    /// HTTP/1.1 `Connection: keep-alive` and `Transfer-Encoding: chunked`,
    /// for HTTP/1.0 `Connection: close`. Then `retry`, if set. Only the
    /// first call writes.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut headers = Vec::with_capacity(5 + self.config.headers.len());
        headers.extend([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]);
        if self.chunked() {
            headers.push(("Connection", "keep-alive"));
        }
        headers.push(("X-Accel-Buffering", "no"));
        if self.chunked() {
            headers.push(("Transfer-Encoding", "chunked"));
        }
        headers.extend(self.config.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        // HTTP/1.0: close-delimited, so `Connection: close` (RFC 9112 §9.3).
        write_response_head(out, 200, self.version, &headers, None, !self.chunked());
        if let Some(retry) = self.config.retry {
            let mut frame = Vec::new();
            // A retry-only block dispatches nothing; it cannot fail.
            let _ = Event::default().retry(retry).encode(&mut frame);
            self.write_frame(&frame, out);
        }
    }

    /// Writes an encoded frame (one or more events or comments; many at
    /// once cost one chunk), and pushes the keep-alive deadline back.
    /// Nothing after `close`.
    pub fn send_frame(&mut self, frame: &[u8], now: Instant, out: &mut Vec<u8>) {
        if self.closed || frame.is_empty() {
            return;
        }
        self.start(out);
        self.write_frame(frame, out);
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

    /// Ends the stream cleanly: the last chunk for HTTP/1.1. For HTTP/1.0
    /// nothing more is written (beyond the head, if not yet sent): the
    /// caller ends the stream by closing the connection. Only the first
    /// call writes.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.start(out);
        self.closed = true;
        self.deadline = None;
        if self.chunked() {
            out.extend_from_slice(LAST_CHUNK);
        }
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

    #[test]
    fn http10_streams_are_close_delimited() {
        let t0 = Instant::now();
        let config = ServerConfig::default().retry(Duration::from_millis(500)).header("X-A", "1");
        let mut s = ServerSession::with_version(config, Version::Http10, t0).unwrap();
        assert_eq!(s.version(), Version::Http10);
        let mut out = Vec::new();
        s.send(&Event::new("x"), t0, &mut out).unwrap();
        s.handle_timeout(t0 + ServerConfig::DEFAULT_KEEP_ALIVE, &mut out);
        s.close(&mut out);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                    X-Accel-Buffering: no\r\nX-A: 1\r\nConnection: close\r\n\r\n";
        let body = "retry: 500\n\ndata: x\n\n: keep-alive\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), [head, body].concat());
        s.close(&mut out);
        assert!(s.is_closed());
        assert_eq!(out.len(), head.len() + body.len());
    }

    #[test]
    fn configs_are_validated_and_readable() {
        let t0 = Instant::now();
        let config = ServerConfig::default().keep_alive(None).retry(Duration::from_secs(2));
        assert_eq!((config.keep_alive_interval(), config.retry_hint()), (None, Some(Duration::from_secs(2))));
        assert_eq!(config.validate(), Ok(()));
        for (name, value) in
            [("X", "a\nb"), ("X Y", "1"), ("X", "a\0"), ("Content-Length", "1"), ("transfer-encoding", "x")]
        {
            let config = ServerConfig::default().header(name, value);
            let want = Err(ConfigError::InvalidHeader { name: name.into() });
            assert_eq!(config.validate(), want);
            assert_eq!(ServerSession::new(config, t0).map(|_| ()), want);
        }
    }
}
