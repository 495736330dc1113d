//! The server: a builder that owns routes, limits and metrics; accepting
//! connections; serving any transport; graceful shutdown.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::metrics::Metrics;
use crate::router::{Router, RouterError, Routes};
use crate::runtime::{Runtime, timeout_at};
use crate::signal::Signal;
use crate::stream::StreamShared;

/// Limits and timings of a server, set through [`ServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) head_timeout: Duration,
    pub(crate) max_head_len: usize,
    pub(crate) max_body_len: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) stream_queue: usize,
    pub(crate) drain_timeout: Duration,
}

/// Connections beyond the stream limit that are still read, so that plain
/// requests (publishing, `/health`) get in and refused streams get their
/// `503` while the streams are at their limit.
pub(crate) const PLAIN_HEADROOM: usize = 64;

/// The default stream limit: what the process's descriptor limit leaves
/// after headroom for plain requests, refusals, listeners, files and
/// outgoing connections (a twentieth of the limit, at least 128).
fn default_max_connections() -> usize {
    match descriptor_limit() {
        Some(limit) => limit.saturating_sub((limit / 20).max(2 * PLAIN_HEADROOM)).max(1),
        None => 10_000,
    }
}

/// The soft limit on open files of this process, if the platform says.
#[cfg(unix)]
fn descriptor_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    usize::try_from(limit).ok()
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<usize> {
    None
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            head_timeout: Duration::from_secs(10),
            max_head_len: 16 * 1024,
            max_body_len: 1024 * 1024,
            write_timeout: Duration::from_secs(30),
            stream_queue: 64,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Signals shutdown to every connection of a server.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Default)]
struct ShutdownInner {
    signal: Signal,
    /// The exchanges in progress, to end at shutdown without a listener per
    /// connection.
    exchanges: Mutex<Vec<Weak<StreamShared>>>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("triggered", &self.is_triggered()).finish()
    }
}

impl Shutdown {
    /// Starts a graceful shutdown: stop accepting, end every stream with a
    /// terminating chunk, answer handlers still deciding with `503`, close
    /// idle connections, and wait for the rest up to the drain timeout.
    pub fn trigger(&self) {
        self.inner.signal.set();
        let exchanges = std::mem::take(&mut *self.exchanges());
        for exchange in exchanges.iter().filter_map(Weak::upgrade) {
            exchange.shutdown();
        }
    }

    /// Whether shutdown began.
    pub fn is_triggered(&self) -> bool {
        self.inner.signal.is_set()
    }

    /// Completes when shutdown begins.
    pub async fn wait(&self) {
        self.inner.signal.wait().await
    }

    fn exchanges(&self) -> std::sync::MutexGuard<'_, Vec<Weak<StreamShared>>> {
        self.inner.exchanges.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an exchange to end at shutdown (at once if it began).
    pub(crate) fn register(&self, exchange: &Arc<StreamShared>) {
        {
            let mut exchanges = self.exchanges();
            if exchanges.len() >= 64 && exchanges.len().is_power_of_two() {
                // Forget those that ended, at doubling sizes: amortized O(1).
                exchanges.retain(|w| w.strong_count() > 0);
            }
            exchanges.push(Arc::downgrade(exchange));
        }
        if self.is_triggered() {
            exchange.shutdown();
        }
    }
}

/// What every connection of a server shares.
pub(crate) struct App<R> {
    pub(crate) rt: R,
    pub(crate) routes: Routes,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: Shutdown,
    /// Notified when a connection ends (shutdown waits on it).
    idle: event_listener::Event,
    /// The shared tick of bursts' writes.
    pub(crate) coalescer: Arc<crate::coalesce::Coalescer>,
    /// TLS for every accepted connection, when set.
    #[cfg(feature = "rustls-core")]
    tls: Option<crate::tls::ServerTls>,
}

/// Builds a [`Server`]: its routes, limits and counters.
///
/// ```
/// use std::time::Duration;
/// use sse_io::{Ctx, Router, Server};
/// # #[derive(Clone)] struct Rt;
/// # fn build<R: sse_io::Runtime>(rt: R) -> Result<(), sse_io::RouterError> {
/// let router = Router::new().get("/events", |ctx: Ctx| async move {
///     let sse = ctx.sse();
///     sse.comment("hello").await
/// });
/// let server = Server::builder(rt)
///     .router(router)
///     .max_connections(5_000)
///     .write_timeout(Duration::from_secs(10))
///     .build()?;
/// # let _ = server; Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ServerBuilder<R> {
    rt: R,
    routes: Option<crate::router::RouteTable>,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
    #[cfg(feature = "rustls-core")]
    tls: Option<crate::tls::ServerTls>,
}

impl<R: Runtime> fmt::Debug for ServerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder").field("limits", &self.limits).finish()
    }
}

impl<R: Runtime> ServerBuilder<R> {
    /// The routes (the last call wins).
    pub fn router<S: Send + Sync + 'static>(mut self, router: Router<S>) -> Self {
        self.routes = Some(router.into_table());
        self
    }

    /// Event streams served at once; more get `503` with `Retry-After`
    /// (default: the process's descriptor limit less a twentieth of it, at
    /// least 128: 19,000 with a limit of 20,000). Beyond it, a few more
    /// connections are still read, so that plain requests (publishing,
    /// `/health`) get in; past those, new connections get an immediate
    /// `503`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n.max(1);
        self
    }

    /// Time allowed to send a request head, or its body, and the longest a
    /// kept-alive connection waits for its next request (default 10 s).
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.limits.head_timeout = timeout;
        self
    }

    /// Largest request head; larger gets `431` (default 16 KiB).
    pub fn max_head_len(mut self, len: usize) -> Self {
        self.limits.max_head_len = len;
        self
    }

    /// Largest request body, chunked or not; larger gets `413` before any
    /// of it is read past the limit (default 1 MiB).
    pub fn max_body_len(mut self, len: usize) -> Self {
        self.limits.max_body_len = len;
        self
    }

    /// A client that accepts no bytes for this long is dropped (default
    /// 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// Frames a stream queues before `send` waits (default 64).
    pub fn stream_queue(mut self, frames: usize) -> Self {
        self.limits.stream_queue = frames.max(1);
        self
    }

    /// How long shutdown waits for connections to end (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.limits.drain_timeout = timeout;
        self
    }

    /// Counts into `metrics` (to share them with broadcast channels);
    /// by default the server makes its own.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves every accepted connection over TLS (`https://`): the
    /// handshake must complete within the head timeout. (Feature `tls`.)
    #[cfg(feature = "rustls-core")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The server.
    ///
    /// # Errors
    ///
    /// The first mistake in the routes ([`RouterError`]): a path the router
    /// cannot take, a route given twice, invalid stream settings or CORS
    /// policy.
    pub fn build(self) -> Result<Server<R>, RouterError> {
        let routes = Routes::build(self.routes.unwrap_or_default())?;
        Ok(Server {
            app: Arc::new(App {
                rt: self.rt,
                routes,
                limits: self.limits,
                metrics: self.metrics.unwrap_or_default(),
                shutdown: Shutdown::default(),
                idle: event_listener::Event::new(),
                coalescer: Arc::default(),
                #[cfg(feature = "rustls-core")]
                tls: self.tls,
            }),
        })
    }
}

/// An HTTP/1.1 server of event streams and plain responses, generic over
/// the [`Runtime`].
pub struct Server<R: Runtime> {
    app: Arc<App<R>>,
}

impl<R: Runtime> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server { app: self.app.clone() }
    }
}

impl<R: Runtime> fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("limits", &self.app.limits).finish()
    }
}

impl<R: Runtime> Server<R> {
    /// A builder for a server on `rt`.
    pub fn builder(rt: R) -> ServerBuilder<R> {
        ServerBuilder {
            rt,
            routes: None,
            limits: Limits::default(),
            metrics: None,
            #[cfg(feature = "rustls-core")]
            tls: None,
        }
    }

    /// A server of `router` with default limits.
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::build`].
    pub fn new<S: Send + Sync + 'static>(rt: R, router: Router<S>) -> Result<Self, RouterError> {
        Server::builder(rt).router(router).build()
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.app.metrics.clone()
    }

    /// A handle that shuts the server down.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.app.shutdown.clone()
    }

    /// Binds `addr`.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn bind(self, addr: SocketAddr) -> io::Result<Bound<R>> {
        let listener = self.app.rt.bind(addr).await?;
        let local = self.app.rt.local_addr(&listener)?;
        Ok(Bound { server: self, listener, local })
    }

    /// Serves one connection over any transport (TCP accepted by the
    /// caller, TLS, a Unix socket...): requests one after another while
    /// the client keeps the connection, or one event stream. Completes when
    /// the connection is done.
    pub async fn serve_connection<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let app = &*self.app;
        app.metrics.open_connections.fetch_add(1, Ordering::Relaxed);
        app.metrics.total_connections.fetch_add(1, Ordering::Relaxed);
        /// Counts the connection out however the future ends (dropped
        /// included).
        struct Open<'a, R>(&'a App<R>);
        impl<R> Drop for Open<'_, R> {
            fn drop(&mut self) {
                self.0.metrics.open_connections.fetch_sub(1, Ordering::Relaxed);
                self.0.idle.notify(usize::MAX);
            }
        }
        let _open = Open(app);
        crate::conn::serve(app, io).await;
    }

    /// Serves one connection accepted by [`Bound::run`]: over TLS when the
    /// builder set it, else as it is.
    async fn serve_accepted(&self, io: R::Stream) {
        #[cfg(feature = "rustls-core")]
        if let Some(tls) = &self.app.tls {
            // Boxed: a TLS connection's state is large, and the task of a
            // plain connection must not reserve room for it.
            return Box::pin(self.serve_tls_connection(io, tls)).await;
        }
        self.serve_connection(io).await
    }

    /// Serves one connection over TLS: the handshake (within the head
    /// timeout; a client that fails it or stalls is dropped), then as
    /// [`serve_connection`](Self::serve_connection). (Feature `tls`.)
    #[cfg(feature = "rustls-core")]
    pub async fn serve_tls_connection<IO>(&self, io: IO, tls: &crate::tls::ServerTls)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let app = &*self.app;
        let deadline = app.rt.now() + app.limits.head_timeout;
        if let Some(Ok(stream)) = timeout_at(&app.rt, deadline, tls.acceptor().accept(io)).await {
            self.serve_connection(stream).await;
        }
    }
}

/// A server bound to an address, ready to run.
pub struct Bound<R: Runtime> {
    server: Server<R>,
    listener: R::Listener,
    local: SocketAddr,
}

impl<R: Runtime> fmt::Debug for Bound<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound").field("local_addr", &self.local).finish()
    }
}

impl<R: Runtime> Bound<R> {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle that shuts the server down.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.server.shutdown_handle()
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.server.metrics()
    }

    /// Accepts and serves connections until shutdown, then ends every
    /// stream cleanly and waits (up to the drain timeout) for the
    /// connections to close.
    ///
    /// # Errors
    ///
    /// None today: a failed accept (a reset connection, no descriptor
    /// left) is waited out rather than returned; the result is for fatal
    /// errors to come.
    pub async fn run(self) -> io::Result<()> {
        let app = self.server.app.clone();
        loop {
            let accepted =
                futures_lite::future::or(async { Some(app.rt.accept(&self.listener).await) }, async {
                    app.shutdown.wait().await;
                    None
                })
                .await;
            let Some(accepted) = accepted else { break };
            let Ok((mut stream, _peer)) = accepted else {
                // Out of descriptors, or a connection reset before accept:
                // back off a moment rather than spin.
                app.rt.sleep(Duration::from_millis(5)).await;
                continue;
            };
            if app.metrics.open_connections() as usize >= app.limits.max_connections + PLAIN_HEADROOM {
                app.metrics.rejected_connections.fetch_add(1, Ordering::Relaxed);
                let rt = app.rt.clone();
                app.rt.spawn(Box::pin(async move {
                    let response = sse_proto::error_response(503, &[("Retry-After", "1")]);
                    let deadline = rt.now() + Duration::from_secs(1);
                    let _ = timeout_at(&rt, deadline, async {
                        stream.write_all(&response).await?;
                        stream.close().await
                    })
                    .await;
                }));
                continue;
            }
            let server = self.server.clone();
            app.rt.spawn(Box::pin(async move { server.serve_accepted(stream).await }));
        }
        drop(self.listener);
        // Every connection saw the shutdown signal and is ending; wait for
        // them within the deadline.
        let deadline = app.rt.now() + app.limits.drain_timeout;
        while app.metrics.open_connections() > 0 {
            let listener = app.idle.listen();
            if app.metrics.open_connections() == 0 {
                break;
            }
            if timeout_at(&app.rt, deadline, listener).await.is_none() {
                break;
            }
        }
        Ok(())
    }
}

/// Serves `router` on `addr` with the default limits until the process
/// ends: what the facades' one-call `serve` runs. For limits, shutdown or
/// the bound address, use [`Server::builder`].
///
/// # Errors
///
/// A router mistake ([`RouterError`], as `InvalidInput`), an address that
/// does not resolve, or the bind error.
pub async fn serve<R: Runtime, S: Send + Sync + 'static>(
    rt: R,
    addr: impl std::net::ToSocketAddrs,
    router: Router<S>,
) -> io::Result<()> {
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing"))?;
    let server = Server::new(rt, router)?;
    server.bind(addr).await?.run().await
}
