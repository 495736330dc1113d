//! The EventSource processing model (WHATWG HTML §9.2.2–9.2.5), sans-IO: a
//! client connection that decides when to connect, what to send, how to read
//! the response, and when and how to reconnect. Time enters as `now`,
//! randomness as a seed; bytes go in and commands come out.
//!
//! Beyond the browser's `EventSource` (and what real APIs need): comments
//! reported on request, `restart`, request methods, headers and bodies
//! (resent on every reconnection), the status and start of the body of a
//! refused response, failures that say whether the client retries, a clean
//! end of stream kept apart from errors, and limits that take the tens of
//! megabytes feature-flag payloads reach.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use std::time::{Duration, Instant};

use crate::decoder::{DecodeError, Decoder, DecoderConfig};
use crate::event::MessageEvent;
use crate::http::{
    BodyDecoder, BodyFraming, HttpError, ResponseHead, is_token, mime_essence, validate_header,
};
use crate::url::{Url, UrlError};

/// Exponential backoff between reconnection attempts that fail before a
/// stream opens: the delay is the reconnection time multiplied by `factor`
/// per consecutive failure, capped at `max`, then shortened by a random
/// fraction of up to `jitter` (0.0 to 1.0) so that many clients do not
/// reconnect in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Growth per consecutive failed attempt (1 disables growth).
    pub factor: u32,
    /// The longest delay.
    pub max: Duration,
    /// The largest fraction of the delay taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    /// Doubling, capped at 60 s, with up to 20% jitter.
    fn default() -> Self {
        Backoff { factor: 2, max: Duration::from_secs(60), jitter: 0.2 }
    }
}

/// Why a [`ClientConfig`] cannot make requests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL is not usable.
    Url(UrlError),
    /// The method is not an HTTP token.
    InvalidMethod,
    /// A header name is not a token, its value holds a control character
    /// (CR, LF, NUL; see [`validate_header`](crate::validate_header())), or
    /// (for a server) it is a framing header the session writes itself.
    InvalidHeader {
        /// The header's name.
        name: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Url(e) => write!(f, "invalid URL: {e}"),
            ConfigError::InvalidMethod => f.write_str("invalid HTTP method"),
            ConfigError::InvalidHeader { name } => write!(f, "invalid header {name:?}"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl From<UrlError> for ConfigError {
    fn from(e: UrlError) -> Self {
        ConfigError::Url(e)
    }
}

/// What a [`Client`] connects to and how it behaves.
///
/// ```
/// use std::time::Duration;
/// use sse_proto::{Backoff, ClientConfig};
/// let config = ClientConfig::new("http://127.0.0.1:8080/events")?
///     .header("Authorization", "Bearer t0k3n")
///     .reconnection_time(Duration::from_secs(1))
///     .backoff(Backoff::default())
///     .read_timeout(Duration::from_secs(45));
/// # Ok::<(), sse_proto::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    url: Url,
    method: String,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    reconnection_time: Duration,
    backoff: Option<Backoff>,
    max_redirects: u32,
    read_timeout: Option<Duration>,
    max_head_len: usize,
    decoder: DecoderConfig,
    last_event_id: String,
    seed: u64,
    comments: bool,
    max_error_body: usize,
}

impl ClientConfig {
    /// The spec's initial reconnection time: 3 s (browsers' common value).
    pub const DEFAULT_RECONNECTION_TIME: Duration = Duration::from_secs(3);

    /// The client's default for both decoder limits (the longest line and
    /// the most data one event may hold): 64 MiB.
    ///
    /// A client must take what its server sends: feature-flag payloads of
    /// 10 MB on one `data:` line are real, and a stream that exceeds a limit
    /// is failed for good. So the client's defaults are far above the
    /// decoder's own (2 MiB lines), and take one event of 32 MiB with room
    /// to spare. Memory stays bounded all the same: while an event arrives
    /// the decoder holds at most its line (up to this limit, plus one read)
    /// and its data (up to this limit), so a hostile server can make a
    /// client hold about twice this, never more. A small device lowers it
    /// with [`decoder`](Self::decoder).
    pub const DEFAULT_MAX_EVENT_LEN: usize = 64 * 1024 * 1024;

    /// The default for [`max_error_body`](Self::max_error_body): 4 KiB.
    pub const DEFAULT_MAX_ERROR_BODY: usize = 4 * 1024;

    /// How long the body of a refused response is waited for (its start is
    /// reported with the failure): 1 s after the head.
    pub const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(1);

    /// A `GET` of `url` with the defaults: 3 s reconnection time, no
    /// backoff, 20 redirects (fetch's limit), no read timeout, 64 KiB
    /// response heads, decoder limits of
    /// [`DEFAULT_MAX_EVENT_LEN`](Self::DEFAULT_MAX_EVENT_LEN), comments not
    /// reported, 4 KiB of a refused response's body kept.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Url`] when `url` is not an absolute http(s) URL.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Ok(ClientConfig {
            url: Url::parse(url)?,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            reconnection_time: Self::DEFAULT_RECONNECTION_TIME,
            backoff: None,
            max_redirects: 20,
            read_timeout: None,
            max_head_len: 64 * 1024,
            decoder: DecoderConfig::new()
                .max_line_len(Self::DEFAULT_MAX_EVENT_LEN)
                .max_data_len(Self::DEFAULT_MAX_EVENT_LEN),
            last_event_id: String::new(),
            seed: 0x9E37_79B9_7F4A_7C15,
            comments: false,
            max_error_body: Self::DEFAULT_MAX_ERROR_BODY,
        })
    }

    /// The request method (`POST` for APIs that stream their answer).
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    /// Adds a request header. `Host`, `Accept`, `Cache-Control`,
    /// `Last-Event-ID` and `Content-Length` are set by the client.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A request body, sent with a `Content-Length` on every request,
    /// reconnections included (an LLM API's JSON prompt is resent as it
    /// was). A redirect with 303, or 301/302 after `POST`, drops it (fetch).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The reconnection time until the server sets one with `retry`.
    pub fn reconnection_time(mut self, t: Duration) -> Self {
        self.reconnection_time = t;
        self
    }

    /// Exponential backoff for attempts that fail before a stream opens.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// How many redirects one connection may follow.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Reconnect when no bytes arrive for this long (a silent dead peer).
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = Some(t);
        self
    }

    /// The largest response head accepted.
    pub fn max_head_len(mut self, n: usize) -> Self {
        self.max_head_len = n;
        self
    }

    /// Limits for the event stream decoder (default: both
    /// [`DEFAULT_MAX_EVENT_LEN`](Self::DEFAULT_MAX_EVENT_LEN)).
    pub fn decoder(mut self, config: DecoderConfig) -> Self {
        self.decoder = config;
        self
    }

    /// Resume after this event id: the first request already sends it as
    /// `Last-Event-ID`, and events carry it until the stream sets another.
    pub fn last_event_id(mut self, id: &str) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// Seeds the jitter of the backoff (randomness enters as an argument;
    /// tests pass a fixed seed, programs a random one).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed | 1;
        self
    }

    /// Report comment lines (`: keep-alive`) as [`ClientEvent::Comment`],
    /// in stream order with the events (default: not reported, as in
    /// browsers).
    pub fn comments(mut self, report: bool) -> Self {
        self.comments = report;
        self
    }

    /// How much of the body of a refused response (a status other than 200,
    /// or the wrong content type) is kept for
    /// [`ErrorCause::Status`] and [`ErrorCause::ContentType`]: an API's
    /// JSON error says what went wrong (default 4 KiB).
    pub fn max_error_body(mut self, len: usize) -> Self {
        self.max_error_body = len;
        self
    }

    /// The configured URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !is_token(&self.method) {
            return Err(ConfigError::InvalidMethod);
        }
        for (name, value) in &self.headers {
            if validate_header(name, value).is_err() {
                return Err(ConfigError::InvalidHeader { name: name.clone() });
            }
        }
        if validate_header("Last-Event-ID", &self.last_event_id).is_err() {
            return Err(ConfigError::InvalidHeader { name: "Last-Event-ID".into() });
        }
        Ok(())
    }
}

/// The spec's `readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Connecting or waiting to reconnect.
    Connecting,
    /// A stream is open and events flow.
    Open,
    /// Failed for good, or closed by the caller. Terminal.
    Closed,
}

impl ReadyState {
    /// Whether the state is terminal.
    pub fn is_closed(self) -> bool {
        self == ReadyState::Closed
    }
}

/// How an attempt to connect failed, as the caller's I/O saw it (given to
/// [`Client::handle_connect_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve, or not in time. Retried.
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// No address of the host took the connection (refused, unreachable,
    /// timed out). Retried.
    Connect {
        /// The addresses tried, and what each said.
        reason: String,
    },
    /// A proxy did not open the tunnel. Retried.
    Proxy {
        /// The proxy's status, when it answered.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// TLS failed in a way retrying cannot mend: the certificate is not
    /// trusted, names another host, has expired; the server refused the
    /// handshake; or TLS is not available. Fatal (the spec lets a client
    /// fail the connection when it "knows that to be futile").
    Tls {
        /// What went wrong, as the TLS library said it.
        reason: String,
    },
}

impl ConnectError {
    /// Whether the client stops for good on this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ConnectError::Tls { .. })
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve { host, reason } => write!(f, "cannot resolve {host}: {reason}"),
            ConnectError::Connect { reason } => write!(f, "cannot connect: {reason}"),
            ConnectError::Proxy { status: Some(s), reason } => write!(f, "proxy answered {s}: {reason}"),
            ConnectError::Proxy { status: None, reason } => write!(f, "proxy: {reason}"),
            ConnectError::Tls { reason } => write!(f, "TLS: {reason}"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// Why an [`ClientEvent::Error`] fired.
///
/// [`is_fatal`](Self::is_fatal) says whether the client stopped (the
/// event's ready state is then `Closed`) or retries after the reconnection
/// time (`Connecting`). The clean end of a stream is not an error: it is
/// [`ClientEvent::Ended`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCause {
    /// The connection broke (reported by the caller, or a body cut short
    /// of its framing). Retried.
    Network,
    /// A connection could not be made. Retried, except
    /// [`ConnectError::Tls`].
    Connect(ConnectError),
    /// No bytes for the read timeout. Retried.
    ReadTimeout,
    /// A status other than 200 (a `204` is how a server stops a client).
    /// Fatal.
    Status {
        /// The status code.
        status: u16,
        /// The response's `Content-Type`, if any.
        content_type: Option<String>,
        /// The start of the body (up to
        /// [`ClientConfig::max_error_body`] bytes, lossy UTF-8): an API's
        /// error message.
        body: String,
    },
    /// A 200 whose `Content-Type` essence is not `text/event-stream`. Fatal.
    ContentType {
        /// The `Content-Type`, if any.
        content_type: Option<String>,
        /// The start of the body, as for [`Status`](Self::Status).
        body: String,
    },
    /// A redirect without a usable `Location`, too many, or from `https` to
    /// `http`. Fatal.
    Redirect(String),
    /// A response that is not valid HTTP/1.1. Fatal.
    Http(HttpError),
    /// The stream went past a decoder limit. Fatal.
    Decode(DecodeError),
}

impl ErrorCause {
    /// Whether the client stops for good on this error.
    pub fn is_fatal(&self) -> bool {
        match self {
            ErrorCause::Network | ErrorCause::ReadTimeout => false,
            ErrorCause::Connect(e) => e.is_fatal(),
            ErrorCause::Status { .. }
            | ErrorCause::ContentType { .. }
            | ErrorCause::Redirect(_)
            | ErrorCause::Http(_)
            | ErrorCause::Decode(_) => true,
        }
    }
}

/// Writes `: body` after an error, when there is a body.
fn write_body(f: &mut fmt::Formatter<'_>, body: &str) -> fmt::Result {
    let body = body.trim();
    if body.is_empty() { Ok(()) } else { write!(f, ": {body}") }
}

impl fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCause::Network => f.write_str("the connection failed"),
            ErrorCause::Connect(e) => write!(f, "{e}"),
            ErrorCause::ReadTimeout => f.write_str("no data within the read timeout"),
            ErrorCause::Status { status, body, .. } => {
                write!(f, "response status {status}")?;
                let reason = crate::http::reason_phrase(*status);
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                write_body(f, body)
            }
            ErrorCause::ContentType { content_type: Some(t), body } => {
                write!(f, "response content type {t:?} is not text/event-stream")?;
                write_body(f, body)
            }
            ErrorCause::ContentType { content_type: None, body } => {
                f.write_str("response has no content type")?;
                write_body(f, body)
            }
            ErrorCause::Redirect(why) => write!(f, "redirect: {why}"),
            ErrorCause::Http(e) => write!(f, "{e}"),
            ErrorCause::Decode(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ErrorCause {}

/// What the client reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The spec's `open` event: a stream was accepted.
    Open,
    /// A dispatched message. An `event: error` in the stream is an ordinary
    /// message of type `error`.
    Message(MessageEvent),
    /// A comment line, without its `:` and one leading space (only with
    /// [`ClientConfig::comments`]).
    Comment(String),
    /// The stream ended cleanly: the server finished its response. Not an
    /// error (servers end streams on deploys, proxies after a time); the
    /// client is `Connecting` and resumes with `Last-Event-ID` after
    /// `reconnect_in`. (A browser fires its `error` event here.)
    Ended {
        /// When the client reconnects.
        reconnect_in: Duration,
    },
    /// The spec's `error` event, with the ready state it left the client in:
    /// `Connecting` (it reconnects) or `Closed` (it stopped for good; see
    /// [`ErrorCause::is_fatal`]).
    Error {
        /// The state after the error.
        ready_state: ReadyState,
        /// What happened.
        cause: ErrorCause,
    },
}

/// A request to send on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    url: Url,
    bytes: Bytes,
    last_event_id: Option<String>,
}

impl ConnectRequest {
    /// Where to connect.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The request head and body, ready to write.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The `Last-Event-ID` the request carries, if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }
}

/// What the caller's I/O must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Close the current connection, if any, open one to the request's URL
    /// and write the request.
    Connect(ConnectRequest),
    /// Close the current connection; the client has finished with it.
    Disconnect,
}

/// Deadlines, one slot each (quinn's timer table, in miniature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Reconnect = 0,
    Read = 1,
    /// The wait for the body of a refused response.
    ErrorBody = 2,
}

#[derive(Debug, Clone, Copy, Default)]
struct Timers([Option<Instant>; 3]);

impl Timers {
    fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    fn expired(&self, t: Timer, now: Instant) -> bool {
        self.get(t).is_some_and(|at| at <= now)
    }
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the reconnect timer.
    Waiting,
    /// A request went out; reading the response head.
    Head(Vec<u8>),
    /// Reading the body of an accepted response.
    Body(BodyDecoder),
    /// Reading the start of a refused response's body, to report it.
    Refused(Box<Refused>),
    /// Closed for good.
    Closed,
}

/// A refused response whose body is being read for the report.
#[derive(Debug)]
struct Refused {
    body: BodyDecoder,
    status: u16,
    content_type: Option<String>,
    collected: Vec<u8>,
}

impl Refused {
    fn into_cause(self) -> ErrorCause {
        let body = String::from_utf8_lossy(&self.collected).into_owned();
        if self.status == 200 {
            ErrorCause::ContentType { content_type: self.content_type, body }
        } else {
            ErrorCause::Status { status: self.status, content_type: self.content_type, body }
        }
    }
}

/// Finds comment lines in the body as it arrives, so that they can be
/// reported in order with the events (the decoder, per the spec, drops
/// them). Tracks just enough of the line structure: line starts after CR,
/// LF or CRLF (a CRLF split between reads is one ending), and the BOM the
/// spec strips at the start of a stream.
#[derive(Debug)]
struct CommentScanner {
    /// Bytes of the leading BOM matched (3: past it, or none came).
    bom: u8,
    /// The next byte starts a line.
    line_start: bool,
    /// The last byte was a CR: an LF right after it ends no new line.
    after_cr: bool,
    /// Inside a comment line; its text so far.
    in_comment: bool,
    text: Vec<u8>,
    /// The most text kept per comment (the decoder's line limit: a longer
    /// line fails the stream anyway).
    max: usize,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl CommentScanner {
    fn new(max: usize) -> Self {
        CommentScanner { bom: 0, line_start: true, after_cr: false, in_comment: false, text: Vec::new(), max }
    }

    /// Scans `input`; calls `found(end, text)` for each comment line that
    /// ends in it, `end` being the offset just past its line terminator.
    fn scan(&mut self, input: &[u8], mut found: impl FnMut(usize, String)) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if self.bom < 3 {
                if b == BOM[usize::from(self.bom)] {
                    self.bom += 1;
                    i += 1;
                    continue;
                }
                // A BOM cut short is text: the line has begun.
                if self.bom > 0 {
                    self.line_start = false;
                }
                self.bom = 3;
            }
            if core::mem::take(&mut self.after_cr) && b == b'\n' {
                i += 1;
                continue;
            }
            if self.line_start && b != b'\r' && b != b'\n' {
                self.line_start = false;
                // Spec: "If the line starts with a U+003A COLON character
                // (:): ignore the line." We report it instead of ignoring.
                self.in_comment = b == b':';
                self.text.clear();
                i += 1;
                continue;
            }
            // Up to the end of this line.
            let end = memchr::memchr2(b'\r', b'\n', &input[i..]).map(|n| i + n);
            let stop = end.unwrap_or(input.len());
            if self.in_comment {
                let room = self.max.saturating_sub(self.text.len());
                self.text.extend_from_slice(&input[i..stop.min(i + room)]);
            }
            let Some(end) = end else { return };
            self.after_cr = input[end] == b'\r';
            self.line_start = true;
            if core::mem::take(&mut self.in_comment) {
                // The value after one leading space, as for a field.
                let text = self.text.strip_prefix(b" ").unwrap_or(&self.text);
                found(end + 1, String::from_utf8_lossy(text).into_owned());
            }
            i = end + 1;
        }
    }
}

/// An EventSource client connection, sans-IO.
///
/// Shaped like quinn-proto's `Connection`: getters; `handle_*` methods for
/// everything that happens (bytes read, the connection ending or failing, a
/// timer expiring); `close` for the application; and `poll_*` methods for
/// what must happen next. After any `handle_*` call (and after creating the
/// client), drain `poll_command` and `poll_event` until they return `None`,
/// and re-arm your timer from `poll_timeout`.
///
/// Application calls: [`close`](Self::close) (final) and
/// [`restart`](Self::restart) (drop the connection, reconnect now).
///
/// ```
/// use std::time::{Duration, Instant};
/// use sse_proto::{Client, ClientConfig, ClientEvent, Command};
///
/// let t0 = Instant::now();
/// let mut client = Client::new(ClientConfig::new("http://127.0.0.1:8080/events")?, t0)?;
/// let Some(Command::Connect(request)) = client.poll_command() else { panic!("connects at once") };
/// assert!(request.bytes().starts_with(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
///
/// // ... the caller connects, writes the request, and reads:
/// client.handle_input(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 500\nid: 1\ndata: hi\n\n", t0);
/// assert_eq!(client.poll_event(), Some(ClientEvent::Open));
/// let Some(ClientEvent::Message(m)) = client.poll_event() else { panic!("a message") };
/// assert_eq!((m.data(), m.last_event_id()), ("hi", "1"));
///
/// // The server closes: not an error; the client waits the reconnection
/// // time, then resumes.
/// client.handle_eof(t0);
/// assert_eq!(client.poll_event(), Some(ClientEvent::Ended { reconnect_in: Duration::from_millis(500) }));
/// assert_eq!(client.poll_timeout(), Some(t0 + Duration::from_millis(500)));
/// client.handle_timeout(t0 + Duration::from_millis(500));
/// let Some(Command::Connect(again)) = client.poll_command() else { panic!("reconnects") };
/// assert_eq!(again.last_event_id(), Some("1"));
/// # Ok::<(), sse_proto::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    state: ReadyState,
    phase: Phase,
    decoder: Decoder,
    /// The URL of the current request (differs from the configured one while
    /// following redirects).
    url: Url,
    method: String,
    send_body: bool,
    redirects: u32,
    /// Consecutive attempts that did not open a stream (for the backoff).
    failures: u32,
    /// A connection is live: the caller holds one for this client.
    connected: bool,
    /// The current request left the configured origin (by a redirect):
    /// credentials are not sent there.
    cross_origin: bool,
    comments: Option<CommentScanner>,
    timers: Timers,
    commands: VecDeque<Command>,
    events: VecDeque<ClientEvent>,
    rng: u64,
}

impl Client {
    /// A client in state `Connecting` that wants to connect at once (drain
    /// [`poll_command`](Self::poll_command)).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the method or a header cannot be sent.
    pub fn new(config: ClientConfig, now: Instant) -> Result<Client, ConfigError> {
        config.validate()?;
        let decoder = Decoder::with_last_event_id(config.decoder, &config.last_event_id);
        let mut client = Client {
            url: config.url.clone(),
            method: config.method.clone(),
            send_body: config.body.is_some(),
            rng: config.seed,
            state: ReadyState::Connecting,
            phase: Phase::Waiting,
            decoder,
            redirects: 0,
            failures: 0,
            connected: false,
            cross_origin: false,
            comments: None,
            timers: Timers::default(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        client.connect(now);
        Ok(client)
    }

    /// The current ready state.
    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    /// The last event ID (sent as `Last-Event-ID` on reconnection).
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The reconnection time: the latest `retry`, or the configured one.
    pub fn reconnection_time(&self) -> Duration {
        self.decoder.reconnection_time().unwrap_or(self.config.reconnection_time)
    }

    /// The latest `retry` the server sent, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.decoder.reconnection_time()
    }

    /// The URL of the current or next request.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The next command for the caller's I/O.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if
    /// a timer runs. Never in the past relative to the last `handle_*` time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Bytes read from the connection: the response head, then the body.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !self.connected {
            // Bytes from a connection the client already gave up: ignore.
            return;
        }
        if let Some(t) = self.config.read_timeout {
            self.timers.set(Timer::Read, now + t);
        }
        if let Phase::Head(head) = &mut self.phase {
            head.extend_from_slice(bytes);
            loop {
                let Phase::Head(head) = &mut self.phase else { return };
                match ResponseHead::parse(head, self.config.max_head_len) {
                    Ok(None) => return,
                    Err(e) => return self.fail(ErrorCause::Http(e)),
                    // RFC 9110 §15.2: an interim response (100, 103 Early
                    // Hints...) precedes the final one; skip it.
                    Ok(Some(response)) if (100..200).contains(&response.status) && response.status != 101 => {
                        head.drain(..response.head_len);
                    }
                    Ok(Some(response)) => {
                        let head = core::mem::take(head);
                        if self.accept(&response, now) {
                            self.body(&head[response.head_len..], now);
                        } else if let Phase::Refused(_) = self.phase {
                            self.refused_body(&head[response.head_len..]);
                        }
                        return;
                    }
                }
            }
        }
        match self.phase {
            Phase::Body(_) => self.body(bytes, now),
            Phase::Refused(_) => self.refused_body(bytes),
            Phase::Waiting | Phase::Head(_) | Phase::Closed => {}
        }
    }

    /// The connection ended (the peer closed it, or the caller gave up on
    /// it after `Disconnect`).
    pub fn handle_eof(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        self.connected = false;
        match &self.phase {
            Phase::Body(body) => {
                if body.finish().is_ok() {
                    self.end_of_stream(now, None);
                } else {
                    self.end_of_stream(now, Some(ErrorCause::Network));
                }
            }
            // Closed before a response: a network error.
            Phase::Head(_) => self.reestablish(now, ErrorCause::Network),
            Phase::Refused(_) => self.refused_done(),
            Phase::Waiting | Phase::Closed => {}
        }
    }

    /// The connection broke (a read or write failed).
    pub fn handle_error(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        self.connected = false;
        match self.phase {
            Phase::Body(_) => self.end_of_stream(now, Some(ErrorCause::Network)),
            Phase::Head(_) => self.reestablish(now, ErrorCause::Network),
            Phase::Refused(_) => self.refused_done(),
            Phase::Waiting | Phase::Closed => {}
        }
    }

    /// The connection asked for by the last [`Command::Connect`] could not
    /// be made: the client retries after the reconnection time, or, for a
    /// [fatal](ConnectError::is_fatal) error (a certificate that is not
    /// trusted), stops.
    pub fn handle_connect_error(&mut self, error: ConnectError, now: Instant) {
        if !self.connected || !matches!(self.phase, Phase::Head(_)) {
            return;
        }
        self.connected = false;
        if error.is_fatal() {
            self.fail(ErrorCause::Connect(error));
        } else {
            self.reestablish(now, ErrorCause::Connect(error));
        }
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expired(Timer::ErrorBody, now) {
            self.timers.stop(Timer::ErrorBody);
            if let Phase::Refused(_) = self.phase {
                self.refused_done();
            }
        }
        if self.timers.expired(Timer::Read, now) {
            self.timers.stop(Timer::Read);
            if self.connected {
                self.connected = false;
                self.commands.push_back(Command::Disconnect);
                match self.phase {
                    Phase::Body(_) => self.end_of_stream(now, Some(ErrorCause::ReadTimeout)),
                    Phase::Refused(_) => self.refused_done(),
                    _ => self.reestablish(now, ErrorCause::ReadTimeout),
                }
            }
        }
        if self.timers.expired(Timer::Reconnect, now) {
            self.timers.stop(Timer::Reconnect);
            if matches!(self.phase, Phase::Waiting) && self.state == ReadyState::Connecting {
                self.connect_afresh(now);
            }
        }
    }

    /// The application closes the client: state `Closed`, no reconnection,
    /// and `Disconnect` if a connection is live. No `error` event fires
    /// (spec: `close()` does not fire one). Final: nothing reopens it.
    pub fn close(&mut self) {
        if self.state == ReadyState::Closed {
            return;
        }
        self.state = ReadyState::Closed;
        self.phase = Phase::Closed;
        self.timers = Timers::default();
        if self.connected {
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
        }
    }

    /// The application asks for a new connection now: the current one (if
    /// any) is dropped (`Disconnect`), an unfinished event in it is
    /// discarded as at the end of a stream, and a request to the configured
    /// URL goes out at once (`Connect`) with `Last-Event-ID`, whatever the
    /// reconnection time or backoff. No event fires for the drop itself;
    /// `Open` follows when the new stream is accepted. Does nothing once the
    /// client is `Closed`: [`close`](Self::close) is final.
    pub fn restart(&mut self, now: Instant) {
        if self.state == ReadyState::Closed {
            return;
        }
        if self.connected {
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
        }
        self.timers = Timers::default();
        self.state = ReadyState::Connecting;
        self.failures = 0;
        self.connect_afresh(now);
    }

    /// A new request to the configured URL, redirects forgotten.
    fn connect_afresh(&mut self, now: Instant) {
        self.url = self.config.url.clone();
        self.method = self.config.method.clone();
        self.send_body = self.config.body.is_some();
        self.redirects = 0;
        self.cross_origin = false;
        self.connect(now);
    }

    /// Emits the request for the current URL.
    fn connect(&mut self, now: Instant) {
        let last_event_id = self.decoder.last_event_id();
        let last_event_id = (!last_event_id.is_empty()).then(|| String::from(last_event_id));
        let bytes = self.request_bytes(last_event_id.as_deref());
        self.commands.push_back(Command::Connect(ConnectRequest {
            url: self.url.clone(),
            bytes,
            last_event_id,
        }));
        self.connected = true;
        self.phase = Phase::Head(Vec::new());
        self.timers.stop(Timer::ErrorBody);
        if let Some(t) = self.config.read_timeout {
            self.timers.set(Timer::Read, now + t);
        }
    }

    fn request_bytes(&self, last_event_id: Option<&str>) -> Bytes {
        let mut req = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
            self.method,
            self.url.target(),
            self.url.authority()
        );
        // Spec: "If the event source's last event ID string is not the empty
        // string, set `Last-Event-ID` to it, UTF-8 encoded."
        if let Some(id) = last_event_id {
            req.push_str("Last-Event-ID: ");
            req.push_str(id);
            req.push_str("\r\n");
        }
        for (name, value) in &self.config.headers {
            // Fetch (§4.4 HTTP-redirect fetch): credentials are not carried
            // to another origin.
            if self.cross_origin && is_credential(name) {
                continue;
            }
            req.push_str(name);
            req.push_str(": ");
            req.push_str(value);
            req.push_str("\r\n");
        }
        let body = self.config.body.as_ref().filter(|_| self.send_body);
        if let Some(body) = body {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        Bytes::from(bytes)
    }

    /// Decides on a response head: follow a redirect, refuse, or open.
    /// Returns whether the body is an event stream to read.
    fn accept(&mut self, response: &ResponseHead, now: Instant) -> bool {
        let status = response.status;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let Some(location) = response.location.as_deref().filter(|l| !l.trim().is_empty()) else {
                self.fail(ErrorCause::Redirect(format!("status {status} without a Location")));
                return false;
            };
            self.redirects += 1;
            if self.redirects > self.config.max_redirects {
                self.fail(ErrorCause::Redirect(format!("more than {} redirects", self.config.max_redirects)));
                return false;
            }
            let url = match self.url.join(location) {
                Ok(url) => url,
                Err(e) => {
                    self.fail(ErrorCause::Redirect(format!("Location {location:?}: {e}")));
                    return false;
                }
            };
            // Never from https to http: what was sent encrypted (headers,
            // body, the stream itself) would go out in clear.
            if self.url.is_secure() && !url.is_secure() {
                self.fail(ErrorCause::Redirect(format!("refusing to follow https to {url}")));
                return false;
            }
            // Fetch: 303, and 301/302 after POST, become a GET without body.
            if status == 303 || (matches!(status, 301 | 302) && self.method == "POST") {
                self.method = "GET".into();
                self.send_body = false;
            }
            let origin = |u: &Url| (u.is_secure(), String::from(u.host()), u.port());
            self.cross_origin |= origin(&url) != origin(&self.config.url);
            self.url = url;
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
            self.connect(now);
            return false;
        }
        // Spec: "if res's status is not 200, or if res's `Content-Type` is
        // not `text/event-stream`, then fail the connection." The failure
        // waits (briefly) for the start of the body, which says why.
        let is_stream =
            response.content_type.as_deref().and_then(mime_essence).as_deref() == Some("text/event-stream");
        if status != 200 || !is_stream {
            // RFC 9112 §6.3: 204 and 304 have no body, whatever the head says.
            let framing = if matches!(status, 204 | 304) { BodyFraming::Length(0) } else { response.framing };
            self.phase = Phase::Refused(Box::new(Refused {
                body: BodyDecoder::new(framing),
                status,
                content_type: response.content_type.clone(),
                collected: Vec::new(),
            }));
            self.timers.stop(Timer::Read);
            self.timers.set(Timer::ErrorBody, now + ClientConfig::ERROR_BODY_TIMEOUT);
            return false;
        }
        // "Announce the connection": OPEN, and an `open` event.
        self.state = ReadyState::Open;
        self.failures = 0;
        self.events.push_back(ClientEvent::Open);
        self.decoder.reset();
        if self.config.comments {
            self.comments = Some(CommentScanner::new(self.config.decoder.line_limit()));
        }
        self.phase = Phase::Body(BodyDecoder::new(response.framing));
        true
    }

    /// Body bytes of a refused response: keep the start, then fail.
    fn refused_body(&mut self, bytes: &[u8]) {
        let Phase::Refused(refused) = &mut self.phase else { return };
        let max = self.config.max_error_body;
        let Refused { body, collected, .. } = &mut **refused;
        let result = body.decode(bytes, |piece| {
            let room = max.saturating_sub(collected.len());
            collected.extend_from_slice(&piece[..piece.len().min(room)]);
        });
        if result.is_err() || body.is_done() || collected.len() >= max {
            self.refused_done();
        }
    }

    /// The refused response's body is complete, cut off or waited for long
    /// enough: fail the connection with it.
    fn refused_done(&mut self) {
        let Phase::Refused(refused) = core::mem::replace(&mut self.phase, Phase::Waiting) else { return };
        self.fail(refused.into_cause());
    }

    /// Body bytes of an accepted response.
    fn body(&mut self, bytes: &[u8], now: Instant) {
        let Phase::Body(body) = &mut self.phase else { return };
        let decoder = &mut self.decoder;
        let result = match &mut self.comments {
            None => body.decode(bytes, |piece| decoder.feed(piece)),
            Some(scanner) => {
                let events = &mut self.events;
                body.decode(bytes, |piece| {
                    // Feed up to each comment's end, move the events that
                    // came before it out, then report it: stream order.
                    let mut start = 0;
                    scanner.scan(piece, |end, text| {
                        decoder.feed(&piece[start..end]);
                        start = end;
                        while let Ok(Some(ev)) = decoder.poll_event() {
                            events.push_back(ClientEvent::Message(ev));
                        }
                        events.push_back(ClientEvent::Comment(text));
                    });
                    decoder.feed(&piece[start..]);
                })
            }
        };
        if let Err(e) = result {
            return self.fail(ErrorCause::Http(e));
        }
        let done = body.is_done();
        if !self.drain() {
            return;
        }
        if done {
            // The framing says the body is complete: the stream ended.
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
            self.end_of_stream(now, None);
        }
    }

    /// Moves decoded events out. Returns false if the stream failed.
    fn drain(&mut self) -> bool {
        loop {
            match self.decoder.poll_event() {
                Ok(Some(ev)) => self.events.push_back(ClientEvent::Message(ev)),
                Ok(None) => return true,
                Err(e) => {
                    self.fail(ErrorCause::Decode(e));
                    return false;
                }
            }
        }
    }

    /// The body ended, cleanly (`cause` is `None`) or not: the pending block
    /// is discarded, then the client reconnects.
    fn end_of_stream(&mut self, now: Instant, cause: Option<ErrorCause>) {
        self.decoder.finish();
        if !self.drain() {
            return;
        }
        match cause {
            Some(cause) => self.reestablish(now, cause),
            None => {
                if self.state == ReadyState::Closed {
                    return;
                }
                let reconnect_in = self.wait_to_reconnect(now);
                self.events.push_back(ClientEvent::Ended { reconnect_in });
            }
        }
    }

    /// Spec: "reestablish the connection": `error` with state CONNECTING,
    /// then a new request after the reconnection time.
    fn reestablish(&mut self, now: Instant, cause: ErrorCause) {
        if self.state == ReadyState::Closed {
            return;
        }
        self.wait_to_reconnect(now);
        self.events.push_back(ClientEvent::Error { ready_state: ReadyState::Connecting, cause });
    }

    /// CONNECTING, and the reconnect timer set; returns the delay.
    fn wait_to_reconnect(&mut self, now: Instant) -> Duration {
        if self.state != ReadyState::Open {
            self.failures = self.failures.saturating_add(1);
        }
        self.state = ReadyState::Connecting;
        self.phase = Phase::Waiting;
        self.timers.stop(Timer::Read);
        let delay = self.delay();
        self.timers.set(Timer::Reconnect, now + delay);
        delay
    }

    /// The reconnection time, grown by the backoff and shortened by jitter.
    fn delay(&mut self) -> Duration {
        let base = self.reconnection_time();
        let Some(b) = self.config.backoff else { return base };
        let grown = (0..self.failures.saturating_sub(1)).fold(base, |d, _| d.saturating_mul(b.factor.max(1)));
        let capped = grown.min(b.max.max(base));
        // xorshift64: deterministic from the caller's seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        capped.mul_f64(1.0 - b.jitter.clamp(0.0, 1.0) * unit)
    }

    /// Spec: "fail the connection": `error` with state CLOSED, for good.
    fn fail(&mut self, cause: ErrorCause) {
        if self.state == ReadyState::Closed {
            return;
        }
        self.state = ReadyState::Closed;
        self.phase = Phase::Closed;
        self.timers = Timers::default();
        if self.connected {
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
        }
        self.events.push_back(ClientEvent::Error { ready_state: ReadyState::Closed, cause });
    }
}

/// Headers that carry credentials, dropped on a redirect to another origin.
fn is_credential(name: &str) -> bool {
    ["authorization", "cookie", "proxy-authorization"].iter().any(|c| name.eq_ignore_ascii_case(c))
}
