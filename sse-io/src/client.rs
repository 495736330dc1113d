//! `EventSource`: the sans-IO client connection of `sse-proto`, driven over
//! TCP on any [`Runtime`], with automatic reconnection.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, Stream};
use sse_proto::{Client, ClientConfig, ClientEvent, Command, ConfigError, ReadyState};

use crate::runtime::{Runtime, timeout};

/// How long a connection attempt may take before it counts as a network
/// error (and the client retries after its reconnection time).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A reconnecting Server-Sent Events client: the browser's `EventSource`,
/// as an async iterator of [`ClientEvent`]s.
///
/// It connects at once, follows redirects, reconnects after the server's
/// `retry` time (with the configured backoff) sending `Last-Event-ID`, and
/// ends only when the connection fails for good (a status other than 200, a
/// wrong content type) or [`close`](Self::close) is called. Plain HTTP for
/// now: an `https` URL fails each attempt as a network error.
///
/// Host names are resolved with the operating system's resolver, which
/// blocks; pass an IP address where that matters.
pub struct EventSource<R: Runtime> {
    rt: R,
    client: Client,
    conn: Option<R::Stream>,
    buf: Vec<u8>,
}

impl<R: Runtime> fmt::Debug for EventSource<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &self.client.url().to_string())
            .field("ready_state", &self.client.ready_state())
            .finish()
    }
}

enum Wake {
    Read(std::io::Result<usize>),
    Timer,
}

impl<R: Runtime> EventSource<R> {
    /// A client for `config`; it connects on the first [`next`](Self::next).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the request cannot be made.
    pub fn new(rt: R, config: ClientConfig) -> Result<Self, ConfigError> {
        Ok(EventSource {
            rt,
            client: Client::new(config, Instant::now())?,
            conn: None,
            buf: vec![0; 16 * 1024],
        })
    }

    /// The ready state.
    pub fn ready_state(&self) -> ReadyState {
        self.client.ready_state()
    }

    /// The last event ID.
    pub fn last_event_id(&self) -> &str {
        self.client.last_event_id()
    }

    /// Closes for good: the next [`next`](Self::next) returns `None`.
    pub fn close(&mut self) {
        self.client.close();
        self.disconnect();
    }

    fn disconnect(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.rt.shutdown(&conn);
        }
    }

    /// The next event (`Open`, a message, or an `Error` that says whether
    /// the client reconnects); `None` once it is closed for good.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        loop {
            while let Some(command) = self.client.poll_command() {
                match command {
                    Command::Disconnect => self.disconnect(),
                    Command::Connect(request) => {
                        self.disconnect();
                        let now = Instant::now();
                        match self.open(request.url(), request.bytes()).await {
                            Some(stream) => self.conn = Some(stream),
                            None => self.client.handle_error(now),
                        }
                    }
                }
            }
            if let Some(event) = self.client.poll_event() {
                return Some(event);
            }
            if self.client.ready_state() == ReadyState::Closed && self.client.poll_command().is_none() {
                self.disconnect();
                return None;
            }
            // Wait for bytes or the next deadline, whichever comes first.
            let deadline = self.client.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => self.rt.sleep(at.saturating_duration_since(Instant::now())).await,
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
            let now = Instant::now();
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

    /// Connects and writes the request; `None` on any failure.
    async fn open(&self, url: &sse_proto::Url, request: &[u8]) -> Option<R::Stream> {
        if url.is_secure() {
            return None;
        }
        let host = url.host().trim_start_matches('[').trim_end_matches(']');
        let addr: SocketAddr = (host, url.port()).to_socket_addrs().ok()?.next()?;
        let mut stream = timeout(&self.rt, CONNECT_TIMEOUT, self.rt.connect(addr)).await?.ok()?;
        stream.write_all(request).await.ok()?;
        stream.flush().await.ok()?;
        Some(stream)
    }

    /// The events as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = ClientEvent> + Send {
        futures_lite::stream::unfold(self, |mut source| async move {
            let event = source.next().await?;
            Some((event, source))
        })
    }
}
