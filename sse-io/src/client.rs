//! `EventSource`: the sans-IO client connection of `sse-proto`, driven over
//! TCP or TLS on any [`Runtime`], with automatic reconnection.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Stream};
use sse_proto::{
    Client, ClientConfig, ClientEvent, Command, ConfigError, ConnectError, ConnectRequest, ReadyState,
    ResponseHead, Url,
};

use crate::runtime::{BoxFuture, Runtime, timeout};

/// Bytes read from the connection at a time (a TLS record is 16 KiB).
const READ_CHUNK: usize = 32 * 1024;

/// The largest answer a proxy may give to `CONNECT`.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// A connection the client reads and writes: TCP, or TLS over it.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// How an [`EventSource`] reaches its server: name resolution and connect
/// timeouts, TLS, an HTTP proxy.
///
/// Each attempt resolves the host off the executor (see
/// [`Runtime::resolve`]) within the resolve timeout, tries every address
/// in turn, each within the connect timeout, then (for `https://`)
/// completes the TLS handshake within the connect timeout too. A failure
/// of any step is a [`ConnectError`]; the client retries after its
/// reconnection time, except for TLS failures that retrying cannot mend (an
/// untrusted, expired or misnamed certificate), which stop it.
///
/// ```
/// use std::time::Duration;
/// use sse_io::Connector;
/// let connector = Connector::new()
///     .resolve_timeout(Duration::from_secs(5))
///     .connect_timeout(Duration::from_secs(5));
/// # let _ = connector;
/// ```
#[derive(Clone)]
pub struct Connector {
    resolve_timeout: Duration,
    connect_timeout: Duration,
    proxy: Option<Url>,
    #[cfg(feature = "rustls-core")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("resolve_timeout", &self.resolve_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("proxy", &self.proxy.as_ref().map(ToString::to_string))
            .finish_non_exhaustive()
    }
}

impl Default for Connector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector {
    /// The defaults: 10 s to resolve, 10 s per address to connect (and as
    /// much for the TLS handshake), no proxy, and (with TLS built in)
    /// Mozilla's root certificates.
    pub fn new() -> Self {
        Connector {
            resolve_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            proxy: None,
            #[cfg(feature = "rustls-core")]
            tls: None,
        }
    }

    /// The longest wait for name resolution.
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout;
        self
    }

    /// The longest wait for each address to accept a connection, and for
    /// the TLS handshake.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects through an HTTP proxy (`http://host:port`): a `CONNECT`
    /// tunnel (RFC 9110 §9.3.6) to the server, for `http://` and `https://`
    /// URLs alike (TLS runs end to end inside the tunnel).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Url`] when `url` is not an `http://` URL.
    pub fn proxy(mut self, url: &str) -> Result<Self, ConfigError> {
        let proxy = Url::parse(url)?;
        if proxy.is_secure() {
            return Err(ConfigError::Url(sse_proto::UrlError::UnsupportedScheme));
        }
        self.proxy = Some(proxy);
        Ok(self)
    }

    /// The TLS configuration for `https://` URLs (see
    /// [`ClientTls`](crate::ClientTls)); by default, Mozilla's roots.
    #[cfg(feature = "rustls-core")]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// Asks an in-flight `next` to restart, from [`EventSource::restart`].
#[derive(Default)]
struct Control {
    restart: AtomicBool,
    changed: event_listener::Event,
}

impl Control {
    fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
        self.changed.notify(usize::MAX);
    }

    fn take_restart(&self) -> bool {
        self.restart.swap(false, Ordering::SeqCst)
    }

    /// Completes once a restart is asked for (it stays asked for).
    async fn restart_requested(&self) {
        loop {
            if self.restart.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.changed.listen();
            if self.restart.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// A reconnecting Server-Sent Events client: the browser's `EventSource`,
/// as a [`Stream`] of [`ClientEvent`]s, for `http://` and (with the `tls`
/// feature) `https://` URLs.
///
/// It connects at once, follows redirects (never from `https` to `http`),
/// reconnects after the server's `retry` time (with the configured backoff)
/// sending `Last-Event-ID` and resending the request body, and ends (`next`
/// returns `None`) only when the connection fails for good (a status other
/// than 200, a `204`, a wrong content type, an untrusted certificate) or
/// [`close`](Self::close) is called. Each [`ClientEvent::Error`] says
/// whether it retries; a clean end of the stream is
/// [`ClientEvent::Ended`], not an error.
///
/// ```no_run
/// # async fn run<R: sse_io::Runtime>(rt: R) -> Result<(), Box<dyn std::error::Error>> {
/// use sse_io::{ClientConfig, ClientEvent, EventSource};
///
/// let config = ClientConfig::new("https://api.example.com/v1/stream")?
///     .method("POST")
///     .header("Authorization", "Bearer t0k3n")
///     .header("Content-Type", "application/json")
///     .body(r#"{"prompt": "hello", "stream": true}"#);
/// let mut source = EventSource::new(rt, config)?;
/// while let Some(event) = source.next().await {
///     match event {
///         ClientEvent::Message(m) => println!("{}: {}", m.event_type(), m.data()),
///         ClientEvent::Error { cause, .. } if cause.is_fatal() => eprintln!("stopped: {cause}"),
///         other => eprintln!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct EventSource<R: Runtime> {
    /// The connection, while no `next` is in flight.
    inner: Option<Inner<R>>,
    /// A `next` in flight (through the `Stream` API), owning the connection.
    pending: Option<BoxFuture<'static, (Inner<R>, Option<ClientEvent>)>>,
    control: Arc<Control>,
    /// Copies kept for the getters while a `next` is in flight.
    ready_state: ReadyState,
    last_event_id: String,
}

struct Inner<R: Runtime> {
    rt: R,
    client: Client,
    connector: Connector,
    control: Arc<Control>,
    conn: Option<Box<dyn Transport>>,
    buf: Vec<u8>,
}

impl<R: Runtime> fmt::Debug for EventSource<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("ready_state", &self.ready_state)
            .field("last_event_id", &self.last_event_id)
            .finish()
    }
}

enum Wake {
    Read(std::io::Result<usize>),
    Timer,
    Restart,
}

impl<R: Runtime> EventSource<R> {
    /// A client for `config` with the default [`Connector`]; it connects on
    /// the first poll.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the request cannot be made.
    pub fn new(rt: R, config: ClientConfig) -> Result<Self, ConfigError> {
        Self::with_connector(rt, config, Connector::new())
    }

    /// A client for `config` that connects as `connector` says (timeouts,
    /// TLS, proxy).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the request cannot be made.
    pub fn with_connector(rt: R, config: ClientConfig, connector: Connector) -> Result<Self, ConfigError> {
        let client = Client::new(config, rt.now())?;
        let control = Arc::new(Control::default());
        Ok(EventSource {
            ready_state: client.ready_state(),
            last_event_id: client.last_event_id().to_owned(),
            inner: Some(Inner {
                rt,
                client,
                connector,
                control: control.clone(),
                conn: None,
                buf: vec![0; READ_CHUNK],
            }),
            pending: None,
            control,
        })
    }

    /// The ready state (as of the last event returned).
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
    }

    /// The last event ID (as of the last event returned).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Closes for good: the connection is dropped, and the stream ends
    /// (`next` returns `None`). Nothing reopens it; `restart` after it does
    /// nothing.
    pub fn close(&mut self) {
        self.pending = None;
        if let Some(inner) = self.inner.as_mut() {
            inner.client.close();
            inner.conn = None;
        }
        self.inner = None;
        self.ready_state = ReadyState::Closed;
    }

    /// Drops the current connection (an event half received is discarded)
    /// and connects again now, with `Last-Event-ID`, whatever the
    /// reconnection time: for a caller who knows the stream went stale.
    /// The next `Open` says the new stream is up. Takes effect at the next
    /// poll if a `next` is in flight. Does nothing after
    /// [`close`](Self::close).
    pub fn restart(&mut self) {
        match self.inner.as_mut() {
            Some(inner) => {
                inner.conn = None;
                let now = inner.rt.now();
                inner.client.restart(now);
                self.ready_state = inner.client.ready_state();
            }
            None if self.pending.is_some() => self.control.request_restart(),
            None => {}
        }
    }

    /// The next event (`Open`, a message, a comment if asked for, `Ended`,
    /// or an `Error` that says whether the client reconnects); `None` once
    /// it is closed for good.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        futures_lite::StreamExt::next(self).await
    }
}

// Nothing is pinned structurally: the in-flight future is boxed.
impl<R: Runtime> Unpin for EventSource<R> {}

impl<R: Runtime> Stream for EventSource<R> {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let Some(mut inner) = this.inner.take() else { return Poll::Ready(None) };
            this.pending = Some(Box::pin(async move {
                let event = inner.next().await;
                (inner, event)
            }));
        }
        let Some(pending) = this.pending.as_mut() else { return Poll::Ready(None) };
        let (inner, event) = futures_lite::ready!(pending.as_mut().poll(cx));
        this.pending = None;
        this.ready_state = inner.client.ready_state();
        this.last_event_id.clear();
        this.last_event_id.push_str(inner.client.last_event_id());
        if event.is_some() {
            this.inner = Some(inner);
        }
        Poll::Ready(event)
    }
}

impl<R: Runtime> Inner<R> {
    async fn next(&mut self) -> Option<ClientEvent> {
        loop {
            while let Some(command) = self.client.poll_command() {
                match command {
                    Command::Disconnect => self.conn = None,
                    Command::Connect(request) => {
                        self.conn = None;
                        let control = self.control.clone();
                        let opened = futures_lite::future::or(
                            async { Some(open(&self.rt, &self.connector, &request).await) },
                            async {
                                control.restart_requested().await;
                                None
                            },
                        )
                        .await;
                        let now = self.rt.now();
                        match opened {
                            Some(Ok(stream)) => self.conn = Some(stream),
                            Some(Err(e)) => self.client.handle_connect_error(e, now),
                            None => {
                                self.control.take_restart();
                                self.client.restart(now);
                            }
                        }
                    }
                }
            }
            if let Some(event) = self.client.poll_event() {
                return Some(event);
            }
            if self.client.ready_state() == ReadyState::Closed {
                self.conn = None;
                return None;
            }
            // Wait for bytes, the next deadline or a restart, whichever
            // comes first.
            let deadline = self.client.poll_timeout();
            let rt = self.rt.clone();
            let sleep = async move {
                match deadline {
                    Some(at) => rt.sleep_until(at).await,
                    None => futures_lite::future::pending::<()>().await,
                }
                Wake::Timer
            };
            let control = self.control.clone();
            let restart = async move {
                control.restart_requested().await;
                Wake::Restart
            };
            let wake = match self.conn.as_mut() {
                Some(conn) => {
                    let buf = &mut self.buf;
                    let read = async { Wake::Read(conn.read(buf).await) };
                    futures_lite::future::or(read, futures_lite::future::or(sleep, restart)).await
                }
                None => futures_lite::future::or(sleep, restart).await,
            };
            let now = self.rt.now();
            match wake {
                Wake::Read(Ok(0)) => {
                    self.conn = None;
                    self.client.handle_eof(now);
                }
                Wake::Read(Ok(n)) => self.client.handle_input(&self.buf[..n], now),
                Wake::Read(Err(_)) => {
                    self.conn = None;
                    self.client.handle_error(now);
                }
                Wake::Timer => self.client.handle_timeout(now),
                Wake::Restart => {
                    self.control.take_restart();
                    self.conn = None;
                    self.client.restart(now);
                }
            }
        }
    }
}

/// Connects (through the proxy, if any), completes TLS for `https`, and
/// writes the request.
async fn open<R: Runtime>(
    rt: &R,
    connector: &Connector,
    request: &ConnectRequest,
) -> Result<Box<dyn Transport>, ConnectError> {
    let url = request.url();
    let mut stream: Box<dyn Transport> = match &connector.proxy {
        Some(proxy) => {
            let tcp = connect_tcp(rt, connector, proxy.host(), proxy.port()).await?;
            Box::new(tunnel(rt, connector, tcp, url).await?)
        }
        None => Box::new(connect_tcp(rt, connector, url.host(), url.port()).await?),
    };
    if url.is_secure() {
        stream = handshake(rt, connector, stream, url).await?;
    }
    let written = async {
        stream.write_all(request.bytes()).await?;
        stream.flush().await
    };
    match timeout(rt, connector.connect_timeout, written).await {
        Some(Ok(())) => Ok(stream),
        Some(Err(e)) => Err(ConnectError::Connect { reason: format!("sending the request: {e}") }),
        None => Err(ConnectError::Connect { reason: "sending the request timed out".into() }),
    }
}

/// Resolves `host` (within the resolve timeout) and tries each address in
/// turn (each within the connect timeout).
async fn connect_tcp<R: Runtime>(
    rt: &R,
    connector: &Connector,
    host: &str,
    port: u16,
) -> Result<R::Stream, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let resolve_error = |reason: String| ConnectError::Resolve { host: bare.to_owned(), reason };
            match timeout(rt, connector.resolve_timeout, rt.resolve(bare, port)).await {
                None => {
                    return Err(resolve_error(format!("no answer within {:?}", connector.resolve_timeout)));
                }
                Some(Err(e)) => return Err(resolve_error(e.to_string())),
                Some(Ok(addrs)) if addrs.is_empty() => return Err(resolve_error("no address".into())),
                Some(Ok(addrs)) => addrs,
            }
        }
    };
    let mut failures = Vec::new();
    for addr in addrs {
        match timeout(rt, connector.connect_timeout, rt.connect(addr)).await {
            Some(Ok(stream)) => return Ok(stream),
            Some(Err(e)) => failures.push(format!("{addr}: {e}")),
            None => failures.push(format!("{addr}: no answer within {:?}", connector.connect_timeout)),
        }
    }
    Err(ConnectError::Connect { reason: failures.join("; ") })
}

/// Opens a `CONNECT` tunnel to `url`'s host through a proxy (RFC 9110
/// §9.3.6): any 2xx answer opens it; the bytes after it are the server's.
async fn tunnel<R: Runtime, S: AsyncRead + AsyncWrite + Unpin>(
    rt: &R,
    connector: &Connector,
    mut stream: S,
    url: &Url,
) -> Result<S, ConnectError> {
    let authority = format!("{}:{}", url.host(), url.port());
    let proxy_error = |status, reason: String| ConnectError::Proxy { status, reason };
    let exchange = async {
        let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        // Read byte by byte up to the end of the head: nothing of the
        // tunnel's own bytes may be taken.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if stream.read(&mut byte).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            head.push(byte[0]);
            if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") || head.len() > MAX_PROXY_HEAD {
                return Ok(head);
            }
        }
    };
    let head = match timeout(rt, connector.connect_timeout, exchange).await {
        None => return Err(proxy_error(None, "no answer to CONNECT in time".into())),
        Some(Err(e)) => return Err(proxy_error(None, e.to_string())),
        Some(Ok(head)) => head,
    };
    match ResponseHead::parse(&head, MAX_PROXY_HEAD) {
        Ok(Some(response)) if (200..300).contains(&response.status) => Ok(stream),
        Ok(Some(response)) => Err(proxy_error(Some(response.status), format!("CONNECT {authority} refused"))),
        Ok(None) => Err(proxy_error(None, "answer head too large".into())),
        Err(e) => Err(proxy_error(None, e.to_string())),
    }
}

/// TLS for an `https` URL: SNI and certificate checking for its host.
#[cfg(feature = "rustls-core")]
async fn handshake<R: Runtime>(
    rt: &R,
    connector: &Connector,
    stream: Box<dyn Transport>,
    url: &Url,
) -> Result<Box<dyn Transport>, ConnectError> {
    let tls_error = |reason: String| ConnectError::Tls { reason };
    let config = match &connector.tls {
        Some(config) => config.clone(),
        None => crate::tls::ClientTls::shared_default().map_err(tls_error)?,
    };
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| tls_error(format!("{host:?} is not a valid server name: {e}")))?;
    let connecting = futures_rustls::TlsConnector::from(config).connect(name, stream);
    match timeout(rt, connector.connect_timeout, connecting).await {
        Some(Ok(tls)) => Ok(Box::new(tls)),
        Some(Err(e)) => match crate::tls::handshake_error(&e) {
            (true, reason) => Err(tls_error(format!("{host}: {reason}"))),
            (false, reason) => {
                Err(ConnectError::Connect { reason: format!("TLS handshake with {host}: {reason}") })
            }
        },
        None => Err(ConnectError::Connect {
            reason: format!("TLS handshake with {host}: no answer within {:?}", connector.connect_timeout),
        }),
    }
}

/// Without TLS built in, an `https` URL cannot be reached: fatal, and said.
#[cfg(not(feature = "rustls-core"))]
async fn handshake<R: Runtime>(
    _rt: &R,
    _connector: &Connector,
    _stream: Box<dyn Transport>,
    _url: &Url,
) -> Result<Box<dyn Transport>, ConnectError> {
    Err(ConnectError::Tls { reason: "this build has no TLS (enable sse-io's `tls` feature)".into() })
}
