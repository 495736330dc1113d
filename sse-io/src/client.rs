//! `EventSource`: the sans-IO client connection of `sse-proto`, driven over
//! TCP on any [`Runtime`], with automatic reconnection.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, Stream};
use sse_proto::{Client, ClientConfig, ClientEvent, Command, ConfigError, ReadyState};

use crate::runtime::{BoxFuture, Runtime, timeout};

/// How long a connection attempt may take before it counts as a network
/// error (and the client retries after its reconnection time).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A reconnecting Server-Sent Events client: the browser's `EventSource`,
/// as a [`Stream`] of [`ClientEvent`]s.
///
/// It connects at once, follows redirects, reconnects after the server's
/// `retry` time (with the configured backoff) sending `Last-Event-ID`, and
/// ends only when the connection fails for good (a status other than 200, a
/// wrong content type, a `204`) or [`close`](Self::close) is called. Plain
/// HTTP for now: an `https` URL fails each attempt as a network error.
///
/// Host names are resolved with the operating system's resolver, which
/// blocks; pass an IP address where that matters.
pub struct EventSource<R: Runtime> {
    /// The connection, while no `next` is in flight.
    inner: Option<Inner<R>>,
    /// A `next` in flight (through the `Stream` API), owning the connection.
    pending: Option<BoxFuture<'static, (Inner<R>, Option<ClientEvent>)>>,
    /// Copies kept for the getters while a `next` is in flight.
    ready_state: ReadyState,
    last_event_id: String,
}

struct Inner<R: Runtime> {
    rt: R,
    client: Client,
    conn: Option<R::Stream>,
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
}

impl<R: Runtime> EventSource<R> {
    /// A client for `config`; it connects on the first poll.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the request cannot be made.
    pub fn new(rt: R, config: ClientConfig) -> Result<Self, ConfigError> {
        let client = Client::new(config, rt.now())?;
        Ok(EventSource {
            ready_state: client.ready_state(),
            last_event_id: client.last_event_id().to_owned(),
            inner: Some(Inner { rt, client, conn: None, buf: vec![0; 16 * 1024] }),
            pending: None,
        })
    }

    /// The ready state.
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
    }

    /// The last event ID.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Closes for good: the stream ends (`next` returns `None`).
    pub fn close(&mut self) {
        self.pending = None;
        if let Some(inner) = self.inner.as_mut() {
            inner.client.close();
            inner.conn = None;
        }
        self.inner = None;
        self.ready_state = ReadyState::Closed;
    }

    /// The next event (`Open`, a message, or an `Error` that says whether
    /// the client reconnects); `None` once it is closed for good.
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
                        let started = self.rt.now();
                        match open(&self.rt, request.url(), request.bytes()).await {
                            Some(stream) => self.conn = Some(stream),
                            None => self.client.handle_error(started),
                        }
                    }
                }
            }
            if let Some(event) = self.client.poll_event() {
                return Some(event);
            }
            if self.client.ready_state() == ReadyState::Closed && self.client.poll_command().is_none() {
                self.conn = None;
                return None;
            }
            // Wait for bytes or the next deadline, whichever comes first.
            let deadline = self.client.poll_timeout();
            let rt = self.rt.clone();
            let sleep = async move {
                match deadline {
                    Some(at) => rt.sleep_until(at).await,
                    None => futures_lite::future::pending::<()>().await,
                }
                Wake::Timer
            };
            let wake = match self.conn.as_mut() {
                Some(conn) => {
                    let buf = &mut self.buf;
                    futures_lite::future::or(async { Wake::Read(conn.read(buf).await) }, sleep).await
                }
                None => sleep.await,
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
            }
        }
    }
}

/// Connects and writes the request; `None` on any failure.
async fn open<R: Runtime>(rt: &R, url: &sse_proto::Url, request: &[u8]) -> Option<R::Stream> {
    if url.is_secure() {
        return None;
    }
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    let addr: SocketAddr = (host, url.port()).to_socket_addrs().ok()?.next()?;
    let mut stream = timeout(rt, CONNECT_TIMEOUT, rt.connect(addr)).await?.ok()?;
    stream.write_all(request).await.ok()?;
    stream.flush().await.ok()?;
    Some(stream)
}
