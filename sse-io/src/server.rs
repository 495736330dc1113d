//! The server: accept, read the head, route, and drive each event stream
//! over the sans-IO `ServerSession`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sse_proto::{Request, RequestError, ServerConfig, ServerSession, error_response};

use crate::metrics::Metrics;
use crate::runtime::{BoxFuture, Runtime, timeout};
use crate::signal::Signal;
use crate::sse::{Message, Sse};

/// A plain HTTP response, for the routes that are not event streams
/// (a page, `/metrics`, a publish endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Response {
    /// A response with a status and an empty body.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Bytes::new() }
    }

    /// `200 OK` with an HTML body.
    pub fn html(body: impl Into<Bytes>) -> Self {
        Response::new(200).header("Content-Type", "text/html; charset=utf-8").body(body)
    }

    /// `200 OK` with a plain text body.
    pub fn text(body: impl Into<Bytes>) -> Self {
        Response::new(200).header("Content-Type", "text/plain; charset=utf-8").body(body)
    }

    /// Adds a header. Names that are not tokens and line breaks in values
    /// are dropped when the response is written (no header injection).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        let reason = match self.status {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            400 => "Bad Request",
            404 => "Not Found",
            413 => "Content Too Large",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        };
        out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", self.status).as_bytes());
        for (name, value) in &self.headers {
            let token = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if token {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend(value.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | 0)));
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(
            format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()).as_bytes(),
        );
        out.extend_from_slice(&self.body);
    }
}

type SseHandler = Arc<dyn Fn(Request, Sse) -> BoxFuture<'static, ()> + Send + Sync>;
type HttpHandler = Arc<dyn Fn(Request, Bytes) -> BoxFuture<'static, Response> + Send + Sync>;

#[derive(Clone)]
enum Handler {
    Sse(SseHandler),
    Http(HttpHandler),
}

/// Routes by exact path and method. Event stream routes answer `GET`.
#[derive(Clone, Default)]
pub struct Router {
    routes: HashMap<String, Vec<(String, Handler)>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router").field("paths", &self.routes.keys().collect::<Vec<_>>()).finish()
    }
}

impl Router {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, method: &str, path: &str, handler: Handler) -> Self {
        self.routes.entry(path.to_owned()).or_default().push((method.to_owned(), handler));
        self
    }

    /// An event stream at `path` (`GET`): the handler gets the request and
    /// the [`Sse`] handle; the stream ends when the handler's client leaves
    /// or it calls `close` (returning from the handler does not close it,
    /// so a handler may hand the `Sse` to other tasks).
    pub fn sse<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Request, Sse) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: SseHandler = Arc::new(move |req, sse| Box::pin(handler(req, sse)));
        self.add("GET", path, Handler::Sse(h))
    }

    /// A plain `GET` route.
    pub fn get<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let h: HttpHandler = Arc::new(move |req, _| Box::pin(handler(req)));
        self.add("GET", path, Handler::Http(h))
    }

    /// A plain `POST` route; the handler gets the body (up to
    /// [`ServerOptions::max_body_len`]).
    pub fn post<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Request, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let h: HttpHandler = Arc::new(move |req, body| Box::pin(handler(req, body)));
        self.add("POST", path, Handler::Http(h))
    }

    /// `GET /metrics` (the counters in Prometheus text) and `GET /health`
    /// (`ok`), the two routes every deployment wants.
    pub fn observability(self, metrics: Arc<Metrics>) -> Self {
        self.get("/health", |_req| async { Response::text("ok\n") }).get("/metrics", move |_req| {
            let body = metrics.render();
            async move { Response::new(200).header("Content-Type", "text/plain; version=0.0.4").body(body) }
        })
    }

    fn find(&self, req: &Request) -> Result<Handler, u16> {
        let Some(routes) = self.routes.get(req.path()) else { return Err(404) };
        routes.iter().find(|(m, _)| m == req.method()).map(|(_, h)| h.clone()).ok_or(405)
    }

    fn allowed(&self, path: &str) -> String {
        self.routes
            .get(path)
            .map(|r| r.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    }
}

/// Limits and timings of a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Connections served at once; more get 503 (default 10 000).
    pub max_connections: usize,
    /// Time allowed to send the request head (default 10 s).
    pub head_timeout: Duration,
    /// Largest request head (default 16 KiB; larger gets 431).
    pub max_head_len: usize,
    /// Largest request body for `POST` routes (default 1 MiB; larger gets 413).
    pub max_body_len: usize,
    /// A client that accepts no bytes for this long is dropped (default 30 s).
    pub write_timeout: Duration,
    /// Frames queued per stream before `send` waits (default 64).
    pub queue: usize,
    /// How a stream behaves: keep-alive interval (default 15 s), `retry`,
    /// extra headers (CORS).
    pub stream: ServerConfig,
    /// How long shutdown waits for streams to end (default 5 s).
    pub drain_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 10_000,
            head_timeout: Duration::from_secs(10),
            max_head_len: 16 * 1024,
            max_body_len: 1024 * 1024,
            write_timeout: Duration::from_secs(30),
            queue: 64,
            stream: ServerConfig::default(),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Signals shutdown to every connection of a server.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Signal>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("triggered", &self.is_triggered()).finish()
    }
}

impl Shutdown {
    /// Starts a graceful shutdown: stop accepting, end every stream with a
    /// terminating chunk, wait for them up to the drain timeout.
    pub fn trigger(&self) {
        self.inner.set();
    }

    /// Whether shutdown began.
    pub fn is_triggered(&self) -> bool {
        self.inner.is_set()
    }

    /// Completes when shutdown begins.
    pub async fn wait(&self) {
        self.inner.wait().await
    }
}

struct App<R> {
    rt: R,
    router: Router,
    options: ServerOptions,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    /// Event stream handles of live connections, to end them at shutdown.
    streams: Mutex<Vec<std::sync::Weak<crate::sse::Shared>>>,
    idle: event_listener::Event,
}

/// An SSE server, generic over the [`Runtime`].
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
        f.debug_struct("Server")
            .field("router", &self.app.router)
            .field("options", &self.app.options)
            .finish()
    }
}

impl<R: Runtime> Server<R> {
    /// A server with default options.
    pub fn new(rt: R, router: Router) -> Self {
        Self::with_options(rt, router, ServerOptions::default())
    }

    /// A server with the given options.
    pub fn with_options(rt: R, router: Router, options: ServerOptions) -> Self {
        Self::with_metrics(rt, router, options, Arc::new(Metrics::default()))
    }

    /// A server counting into `metrics` (share it with broadcast channels
    /// and a `/metrics` route).
    pub fn with_metrics(rt: R, router: Router, options: ServerOptions, metrics: Arc<Metrics>) -> Self {
        Server {
            app: Arc::new(App {
                rt,
                router,
                options,
                metrics,
                shutdown: Shutdown::default(),
                streams: Mutex::new(Vec::new()),
                idle: event_listener::Event::new(),
            }),
        }
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

    /// Serves one connection the caller accepted itself: reads its request,
    /// routes it, and drives the response to its end.
    pub async fn serve_connection(&self, stream: R::Stream) {
        let app = self.app.clone();
        let metrics = app.metrics.clone();
        metrics.open_connections.fetch_add(1, Ordering::Relaxed);
        metrics.total_connections.fetch_add(1, Ordering::Relaxed);
        serve(app.clone(), stream).await;
        metrics.open_connections.fetch_sub(1, Ordering::Relaxed);
        app.idle.notify(usize::MAX);
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
    /// stream cleanly and waits (up to the drain timeout) for them to close.
    ///
    /// # Errors
    ///
    /// Never for a failed accept (those are skipped); the result is for
    /// future fatal errors.
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
            let Ok((stream, _peer)) = accepted else {
                // Out of descriptors, or a connection reset before accept:
                // back off a moment rather than spin.
                app.rt.sleep(Duration::from_millis(5)).await;
                continue;
            };
            if app.metrics.open_connections() as usize >= app.options.max_connections {
                app.metrics.rejected_connections.fetch_add(1, Ordering::Relaxed);
                let rt = app.rt.clone();
                let mut s = stream;
                app.rt.spawn(Box::pin(async move {
                    let res = error_response(503, &[("Retry-After", "1")]);
                    let _ = timeout(&rt, Duration::from_secs(1), s.write_all(&res)).await;
                    rt.shutdown(&s);
                }));
                continue;
            }
            let server = self.server.clone();
            app.rt.spawn(Box::pin(async move { server.serve_connection(stream).await }));
        }
        drop(self.listener);
        // Graceful: end every stream with its terminating chunk...
        let streams = std::mem::take(&mut *app.streams.lock().unwrap_or_else(|e| e.into_inner()));
        for s in streams.iter().filter_map(std::sync::Weak::upgrade) {
            crate::sse::close_shared(&s);
        }
        // ...and wait for the connections to finish, within the deadline.
        let deadline = Instant::now() + app.options.drain_timeout;
        while app.metrics.open_connections() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let listener = app.idle.listen();
            if app.metrics.open_connections() == 0 {
                break;
            }
            let _ = timeout(&app.rt, left.min(Duration::from_millis(50)), listener).await;
        }
        Ok(())
    }
}

/// Reads the request head: the request and the bytes after it.
async fn read_head<R: Runtime>(
    app: &App<R>,
    stream: &mut R::Stream,
) -> Result<(Request, Vec<u8>), Option<RequestError>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match Request::parse(&buf, app.options.max_head_len) {
            Ok(Some(req)) => {
                let rest = buf.split_off(req.head_len());
                return Ok((req, rest));
            }
            Ok(None) => {}
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Writes all of `bytes` within the write timeout.
async fn write<R: Runtime>(app: &App<R>, stream: &mut R::Stream, bytes: &[u8]) -> io::Result<()> {
    match timeout(&app.rt, app.options.write_timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Some(r) => r,
        None => Err(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")),
    }
}

async fn serve<R: Runtime>(app: Arc<App<R>>, mut stream: R::Stream) {
    let head = timeout(&app.rt, app.options.head_timeout, read_head(&app, &mut stream)).await;
    let (req, rest) = match head {
        None => {
            app.rt.shutdown(&stream);
            return;
        }
        Some(Err(None)) => return,
        Some(Err(Some(e))) => {
            app.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            let _ = write(&app, &mut stream, &e.response()).await;
            app.rt.shutdown(&stream);
            return;
        }
        Some(Ok(head)) => head,
    };
    let handler = match app.router.find(&req) {
        Ok(h) => h,
        Err(status) => {
            app.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            let allow = app.router.allowed(req.path());
            let extra: Vec<(&str, &str)> = if status == 405 { vec![("Allow", &allow)] } else { vec![] };
            let _ = write(&app, &mut stream, &error_response(status, &extra)).await;
            app.rt.shutdown(&stream);
            return;
        }
    };
    match handler {
        Handler::Http(h) => serve_http(&app, stream, req, rest, h).await,
        Handler::Sse(h) => serve_sse(&app, stream, req, h).await,
    }
}

async fn serve_http<R: Runtime>(
    app: &App<R>,
    mut stream: R::Stream,
    req: Request,
    mut body: Vec<u8>,
    h: HttpHandler,
) {
    let len = req.header("content-length").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
    if len > app.options.max_body_len {
        let _ = write(app, &mut stream, &error_response(413, &[])).await;
        app.rt.shutdown(&stream);
        return;
    }
    let read_body = async {
        let mut chunk = [0u8; 4096];
        while body.len() < len {
            match stream.clone().read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(len);
        true
    };
    if timeout(&app.rt, app.options.head_timeout, read_body).await != Some(true) {
        app.rt.shutdown(&stream);
        return;
    }
    let response = h(req, Bytes::from(body)).await;
    let mut out = Vec::new();
    response.write_to(&mut out);
    let _ = write(app, &mut stream, &out).await;
    app.rt.shutdown(&stream);
}

/// What woke the stream driver.
enum Wake {
    Message(Option<Message>),
    KeepAlive,
    Shutdown,
}

async fn serve_sse<R: Runtime>(app: &App<R>, mut stream: R::Stream, req: Request, h: SseHandler) {
    let now = Instant::now();
    let Ok(mut session) = ServerSession::new(app.options.stream.clone(), now) else {
        let _ = write(app, &mut stream, &error_response(500, &[])).await;
        return;
    };
    let (sse, rx) = Sse::new(app.options.queue, req.last_event_id());
    let shared = sse.shared().clone();
    {
        let mut streams = app.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.len().is_power_of_two() {
            streams.retain(|w| w.strong_count() > 0);
        }
        streams.push(Arc::downgrade(&shared));
    }
    app.metrics.open_streams.fetch_add(1, Ordering::Relaxed);

    // The response head goes out before the handler's first event.
    let mut out = Vec::with_capacity(512);
    session.start(&mut out);
    let mut ok = write(app, &mut stream, &out).await.is_ok();

    // Disconnect detection: a reader that waits for the client's end.
    {
        let mut reader = stream.clone();
        let shared = shared.clone();
        app.rt.spawn(Box::pin(async move {
            let mut sink = [0u8; 512];
            while let Ok(n) = reader.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            shared.fire_close();
        }));
    }
    if ok {
        app.rt.spawn(h(req, sse.clone()));
    }
    while ok {
        let deadline = session.poll_timeout();
        let wake = futures_lite::future::or(
            async { Wake::Message(rx.recv().await.ok()) },
            futures_lite::future::or(
                async {
                    match deadline {
                        Some(at) => app.rt.sleep(at.saturating_duration_since(Instant::now())).await,
                        None => futures_lite::future::pending::<()>().await,
                    }
                    Wake::KeepAlive
                },
                async {
                    app.shutdown.wait().await;
                    Wake::Shutdown
                },
            ),
        )
        .await;
        out.clear();
        let now = Instant::now();
        match wake {
            Wake::Message(Some(Message::Frame(frame))) => {
                session.send_frame(&frame, now, &mut out);
                // Write whatever else is already queued in the same syscall.
                let mut events = 1;
                let mut close = false;
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(Message::Frame(f)) => {
                            session.send_frame(&f, now, &mut out);
                            events += 1;
                        }
                        Ok(Message::Close) => {
                            close = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let bytes = out.len() as u64;
                if close {
                    session.close(&mut out);
                }
                ok = write(app, &mut stream, &out).await.is_ok();
                if ok {
                    app.metrics.sent(events, bytes);
                }
                if close {
                    break;
                }
            }
            Wake::KeepAlive => {
                session.handle_timeout(now, &mut out);
                if !out.is_empty() {
                    ok = write(app, &mut stream, &out).await.is_ok();
                    app.metrics.sent(1, out.len() as u64);
                }
            }
            Wake::Message(Some(Message::Close)) | Wake::Message(None) | Wake::Shutdown => {
                // A clean end: the terminating chunk (unless the client is
                // already gone, which closed the channel).
                if !shared.client_gone() {
                    session.close(&mut out);
                    let _ = write(app, &mut stream, &out).await;
                }
                break;
            }
        }
    }
    shared.fire_close();
    app.rt.shutdown(&stream);
    app.metrics.open_streams.fetch_sub(1, Ordering::Relaxed);
}
