//! The EventSource processing model (WHATWG HTML §9.2.2–9.2.5), sans-IO: a
//! client connection that decides when to connect, what to send, how to read
//! the response, and when and how to reconnect. Time enters as `now`,
//! randomness as a seed; bytes go in and commands come out.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use std::time::{Duration, Instant};

use crate::decoder::{DecodeError, Decoder, DecoderConfig};
use crate::event::MessageEvent;
use crate::http::{BodyDecoder, HttpError, ResponseHead, is_token, mime_essence, validate_header};
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
    /// (CR, LF, NUL; see [`validate_header`](crate::validate_header)), or
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
}

impl ClientConfig {
    /// The spec's initial reconnection time: 3 s (browsers' common value).
    pub const DEFAULT_RECONNECTION_TIME: Duration = Duration::from_secs(3);

    /// A `GET` of `url` with the defaults: 3 s reconnection time, no
    /// backoff, 20 redirects (fetch's limit), no read timeout, 64 KiB
    /// response heads, the default decoder limits.
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
            decoder: DecoderConfig::default(),
            last_event_id: String::new(),
            seed: 0x9E37_79B9_7F4A_7C15,
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

    /// A request body, sent with a `Content-Length`.
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

    /// Limits for the event stream decoder.
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

/// Why an `error` event fired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCause {
    /// The stream ended cleanly; the client reconnects.
    EndOfStream,
    /// The connection failed or broke (reported by the caller, or a body cut
    /// short); the client reconnects.
    Network,
    /// No bytes for the read timeout; the client reconnects.
    ReadTimeout,
    /// A status other than 200 (204 is how a server stops a client). Fatal.
    Status(u16),
    /// A `Content-Type` whose essence is not `text/event-stream`. Fatal.
    ContentType(Option<String>),
    /// A redirect without a usable `Location`, or too many. Fatal.
    Redirect(String),
    /// A response that is not valid HTTP/1.1. Fatal.
    Http(HttpError),
    /// The stream went past a decoder limit. Fatal.
    Decode(DecodeError),
}

impl fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCause::EndOfStream => f.write_str("the event stream ended"),
            ErrorCause::Network => f.write_str("the connection failed"),
            ErrorCause::ReadTimeout => f.write_str("no data within the read timeout"),
            ErrorCause::Status(s) => write!(f, "response status {s}"),
            ErrorCause::ContentType(Some(t)) => {
                write!(f, "response content type {t:?} is not text/event-stream")
            }
            ErrorCause::ContentType(None) => f.write_str("response has no content type"),
            ErrorCause::Redirect(why) => write!(f, "redirect: {why}"),
            ErrorCause::Http(e) => write!(f, "{e}"),
            ErrorCause::Decode(e) => write!(f, "{e}"),
        }
    }
}

/// What the client reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The spec's `open` event: a stream was accepted.
    Open,
    /// A dispatched message.
    Message(MessageEvent),
    /// The spec's `error` event, with the ready state it left the client in:
    /// `Connecting` (it will reconnect) or `Closed` (it will not).
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
}

#[derive(Debug, Clone, Copy, Default)]
struct Timers([Option<Instant>; 2]);

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
    /// Closed for good.
    Closed,
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
/// // The server closes: the client waits the reconnection time, then resumes.
/// client.handle_eof(t0);
/// assert!(matches!(client.poll_event(), Some(ClientEvent::Error { .. })));
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
            let parsed = ResponseHead::parse(head, self.config.max_head_len);
            match parsed {
                Ok(None) => return,
                Err(e) => return self.fail(ErrorCause::Http(e)),
                Ok(Some(response)) => {
                    let head = core::mem::take(head);
                    if !self.accept(&response, now) {
                        return;
                    }
                    let rest = &head[response.head_len..];
                    self.body(rest, now);
                    return;
                }
            }
        }
        if let Phase::Body(_) = self.phase {
            self.body(bytes, now);
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
                let clean = body.finish().is_ok();
                self.end_of_stream(now, if clean { ErrorCause::EndOfStream } else { ErrorCause::Network });
            }
            // Closed before a response: a network error.
            Phase::Head(_) => self.reestablish(now, ErrorCause::Network),
            Phase::Waiting | Phase::Closed => {}
        }
    }

    /// The connection could not be made or broke.
    pub fn handle_error(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        self.connected = false;
        match self.phase {
            Phase::Body(_) => self.end_of_stream(now, ErrorCause::Network),
            Phase::Head(_) => self.reestablish(now, ErrorCause::Network),
            Phase::Waiting | Phase::Closed => {}
        }
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expired(Timer::Read, now) {
            self.timers.stop(Timer::Read);
            if self.connected {
                self.connected = false;
                self.commands.push_back(Command::Disconnect);
                match self.phase {
                    Phase::Body(_) => self.end_of_stream(now, ErrorCause::ReadTimeout),
                    _ => self.reestablish(now, ErrorCause::ReadTimeout),
                }
            }
        }
        if self.timers.expired(Timer::Reconnect, now) {
            self.timers.stop(Timer::Reconnect);
            if matches!(self.phase, Phase::Waiting) && self.state == ReadyState::Connecting {
                self.url = self.config.url.clone();
                self.method = self.config.method.clone();
                self.send_body = self.config.body.is_some();
                self.redirects = 0;
                self.connect(now);
            }
        }
    }

    /// The application closes the client: state `Closed`, no reconnection,
    /// and `Disconnect` if a connection is live. No `error` event fires
    /// (spec: `close()` does not fire one).
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

    /// Decides on a response head: follow a redirect, fail, or open.
    /// Returns whether the body is to be read.
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
            // Fetch: 303, and 301/302 after POST, become a GET without body.
            if status == 303 || (matches!(status, 301 | 302) && self.method == "POST") {
                self.method = "GET".into();
                self.send_body = false;
            }
            self.url = url;
            self.connected = false;
            self.commands.push_back(Command::Disconnect);
            self.connect(now);
            return false;
        }
        // Spec: "if res's status is not 200, or if res's `Content-Type` is
        // not `text/event-stream`, then fail the connection."
        if status != 200 {
            self.fail(ErrorCause::Status(status));
            return false;
        }
        if response.content_type.as_deref().and_then(mime_essence).as_deref() != Some("text/event-stream") {
            self.fail(ErrorCause::ContentType(response.content_type.clone()));
            return false;
        }
        // "Announce the connection": OPEN, and an `open` event.
        self.state = ReadyState::Open;
        self.failures = 0;
        self.events.push_back(ClientEvent::Open);
        self.decoder.reset();
        self.phase = Phase::Body(BodyDecoder::new(response.framing));
        true
    }

    /// Body bytes of an accepted response.
    fn body(&mut self, bytes: &[u8], now: Instant) {
        let Phase::Body(body) = &mut self.phase else { return };
        let decoder = &mut self.decoder;
        if let Err(e) = body.decode(bytes, |piece| decoder.feed(piece)) {
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
            self.end_of_stream(now, ErrorCause::EndOfStream);
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

    /// The body ended (cleanly or not): the pending block is discarded, then
    /// the client reconnects.
    fn end_of_stream(&mut self, now: Instant, cause: ErrorCause) {
        self.decoder.finish();
        if !self.drain() {
            return;
        }
        self.reestablish(now, cause);
    }

    /// Spec: "reestablish the connection": `error` with state CONNECTING,
    /// then a new request after the reconnection time.
    fn reestablish(&mut self, now: Instant, cause: ErrorCause) {
        if self.state == ReadyState::Closed {
            return;
        }
        if self.state != ReadyState::Open {
            self.failures = self.failures.saturating_add(1);
        }
        self.state = ReadyState::Connecting;
        self.phase = Phase::Waiting;
        self.timers.stop(Timer::Read);
        self.events.push_back(ClientEvent::Error { ready_state: ReadyState::Connecting, cause });
        let delay = self.delay();
        self.timers.set(Timer::Reconnect, now + delay);
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
