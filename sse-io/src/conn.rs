//! One connection, start to end: read a request head and body (sans-IO
//! parsing in `sse-proto`), route it, run the handler, and drive what it
//! decided: a plain response (then perhaps the next request on the same
//! connection) or an event stream.
//!
//! The stream driver is one future per connection that polls, in turn, the
//! handler's future, the stream's frame queue, the socket (writes, and reads
//! that reveal a client gone), one timer (keep-alive, write stall) and the
//! shutdown signal. No task is spawned per stream and no buffer is held
//! while a stream is idle.

use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future::poll_fn;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use sse_proto::{
    BodyReader, CONTINUE, Request, RequestError, ServerSession, Version, error_response, validate_header,
    write_response_head,
};

use crate::coalesce::Coalescer;
use crate::cors::Cors;
use crate::response::{Response, status_response};
use crate::router::parts;
use crate::runtime::{BoxFuture, Runtime, timeout_at};
use crate::server::App;
use crate::stream::StreamShared;

/// Most bytes moved from a stream's queue into one write.
const MAX_BATCH: usize = 64 * 1024;

/// The write buffer a batch starts with (an idle stream holds none).
const BATCH_START: usize = 2048;

/// A stream that wrote less than this long ago is in a burst: its next
/// write waits for the shared tick (at most [`TICK`](crate::coalesce::TICK)), so that it carries
/// every event published meanwhile. On loopback and on busy servers most of
/// a delivery's cost is the kernel's work per write, so batching a burst
/// saves more than the wait costs; an isolated event is written at once.
const BURST_WINDOW: Duration = Duration::from_millis(250);

/// Serves one connection until it closes.
pub(crate) async fn serve<R: Runtime, IO>(app: &App<R>, mut io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Bytes read past the current request: the start of the next one.
    let mut buf = Vec::new();
    loop {
        // The transient phases are boxed, so that the task of a connection
        // holds, for as long as a stream lasts, only what the stream needs.
        let request = match Box::pin(read_head(app, &mut io, &mut buf)).await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(response) => {
                app.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
                let _ = Box::pin(write_all(app, &mut io, &response)).await;
                break;
            }
        };
        // The transient phases are boxed, so that the task of a connection
        // holds, for as long as a stream lasts, only what the stream needs.
        let keep = match Box::pin(exchange(app, &mut io, request, &mut buf)).await {
            Prepared::Done(keep) => keep,
            Prepared::Drive(head, shared, handler) => {
                let (version, keep_alive) = (head.version, head.keep_alive);
                match Driver::new(app, &mut io, shared, handler, head, &mut buf).await {
                    Outcome::Plain(response, view, grant) => {
                        let close = !keep_alive || view.read_closed || app.shutdown.is_triggered();
                        Box::pin(plain_with(app, &mut io, response, &grant, close, version, view)).await
                    }
                    Outcome::Ended => false,
                }
            }
        };
        if !keep {
            break;
        }
    }
    let _ = timeout_at(&app.rt, app.rt.now() + app.limits.write_timeout, io.close()).await;
}

/// Reads a request head. `Ok(None)`: the client closed (or went silent, or
/// shutdown began) between requests; `Err`: the error response to send.
async fn read_head<R: Runtime, IO>(
    app: &App<R>,
    io: &mut IO,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, Vec<u8>>
where
    IO: AsyncRead + Unpin,
{
    let deadline = app.rt.now() + app.limits.head_timeout;
    loop {
        let parsed = if buf.is_empty() {
            None
        } else {
            Request::parse(buf, app.limits.max_head_len).map_err(|e| e.response())?
        };
        if let Some(request) = parsed {
            buf.drain(..request.head_len());
            if buf.is_empty() {
                // Nothing pipelined: hold no buffer while the exchange lasts.
                *buf = Vec::new();
            }
            return Ok(Some(request));
        }
        // Shutdown closes a connection waiting for its next request; one
        // whose request is half read gets to finish it.
        let idle = buf.is_empty();
        let wait = futures_lite::future::or(
            async {
                match timeout_at(&app.rt, deadline, read_into(io, buf)).await {
                    Some(Ok(n)) if n > 0 => Wait::Read,
                    Some(_) => Wait::Closed,
                    None => Wait::Timeout,
                }
            },
            async {
                if idle {
                    app.shutdown.wait().await;
                    Wait::Closed
                } else {
                    futures_lite::future::pending().await
                }
            },
        )
        .await;
        match wait {
            Wait::Read => {}
            Wait::Closed => return Ok(None),
            Wait::Timeout if buf.is_empty() => return Ok(None),
            // Half a head at the deadline (RFC 9110 §15.5.9).
            Wait::Timeout => return Err(error_response(408, &[])),
        }
    }
}

/// What ended a wait for request bytes.
enum Wait {
    Read,
    Closed,
    Timeout,
}

/// Reads what is available into `buf` (through a stack buffer, so an idle
/// connection holds no read buffer).
async fn read_into<IO: AsyncRead + Unpin>(io: &mut IO, buf: &mut Vec<u8>) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut chunk = [0u8; 4096];
        match Pin::new(&mut *io).poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    })
    .await
}

/// Writes all of `bytes` (and flushes) within the write timeout.
async fn write_all<R: Runtime, IO: AsyncWrite + Unpin>(
    app: &App<R>,
    io: &mut IO,
    bytes: &[u8],
) -> io::Result<()> {
    let deadline = app.rt.now() + app.limits.write_timeout;
    let write = async {
        io.write_all(bytes).await?;
        io.flush().await
    };
    match timeout_at(&app.rt, deadline, write).await {
        Some(result) => result,
        None => Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
    }
}

/// Serves one request. Returns whether the connection stays open for the
/// next one.
/// What the first part of an exchange leaves to do.
enum Prepared {
    /// Answered already; whether the connection stays open.
    Done(bool),
    /// A handler to drive (the connection's task does, holding only this).
    Drive(StreamHead, Arc<StreamShared>, BoxFuture<'static, Response>),
}

/// Routes a request, reads its body and calls its handler; answers at once
/// what the server answers itself.
async fn exchange<R: Runtime, IO>(app: &App<R>, io: &mut IO, request: Request, buf: &mut Vec<u8>) -> Prepared
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let routes = &app.routes;
    let mut grant = Vec::new();
    if let Some(cors) = &routes.cors {
        cors.grant(&request, &mut grant);
    }
    // Answers the server makes itself close the connection unless the
    // request had no body to skip (and asked to stay).
    let can_stay = request.framing() == sse_proto::RequestFraming::None;
    if request.target() == "*" {
        // `OPTIONS *`: what the server as a whole takes (RFC 9110 §9.3.7).
        let response = Response::new(204).header("Allow", "GET, HEAD, POST, OPTIONS");
        return Prepared::Done(plain(app, io, &request, response, &grant, !can_stay).await);
    }
    let Some(matched) = routes.find(request.path()) else {
        return Prepared::Done(plain(app, io, &request, status_response(404), &grant, !can_stay).await);
    };
    let allow = matched.endpoint.allow();
    let handler = match matched.endpoint.find(request.method()) {
        Some(handler) => handler.clone(),
        None if request.method() == "OPTIONS" => {
            let response = match &routes.cors {
                Some(cors) if Cors::is_preflight(&request) => cors.preflight(&request, &allow),
                _ => Response::new(204).header("Allow", &allow),
            };
            return Prepared::Done(plain(app, io, &request, response, &grant, !can_stay).await);
        }
        None => {
            let response = status_response(405).header("Allow", &allow);
            return Prepared::Done(plain(app, io, &request, response, &grant, !can_stay).await);
        }
    };
    let body = match read_body(app, io, &request, buf).await {
        Ok(body) => body,
        Err(Some(response)) => {
            app.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            let _ = write_all(app, io, &response).await;
            return Prepared::Done(false);
        }
        Err(None) => return Prepared::Done(false),
    };
    let config = routes.config_of(matched.endpoint);
    let params = matched.params;
    let stream = StreamShared::new(app.limits.stream_queue, request.last_event_id());
    app.shutdown.register(&stream);
    let head = StreamHead {
        config,
        grant,
        version: request.version(),
        head_only: request.method() == "HEAD",
        keep_alive: request.keep_alive(),
    };
    let future = handler(parts(request, params, body, stream.clone(), app.metrics.clone()));
    Prepared::Drive(head, stream, future)
}

/// Reads a request body per its framing (RFC 9112 §6), answering
/// `Expect: 100-continue` first. `Err(None)`: the client left.
async fn read_body<R: Runtime, IO>(
    app: &App<R>,
    io: &mut IO,
    request: &Request,
    buf: &mut Vec<u8>,
) -> Result<Bytes, Option<Vec<u8>>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let refuse = |e: RequestError| Some(e.response());
    let mut reader = BodyReader::new(request, app.limits.max_body_len).map_err(refuse)?;
    if reader.is_done() {
        return Ok(Bytes::new());
    }
    if request.expects_continue() && buf.is_empty() {
        // The client waits for this before sending the body (RFC 9110
        // §10.1.1); the limits were checked above, so it is a promise.
        write_all(app, io, CONTINUE).await.map_err(|_| None)?;
    }
    let deadline = app.rt.now() + app.limits.head_timeout;
    loop {
        if !buf.is_empty() {
            let used = reader.handle_input(buf).map_err(refuse)?;
            buf.drain(..used);
        }
        if reader.is_done() {
            return Ok(Bytes::from(reader.into_body()));
        }
        match timeout_at(&app.rt, deadline, read_into(io, buf)).await {
            Some(Ok(n)) if n > 0 => {}
            // The client closed mid-body: there is no one to answer.
            Some(_) => return Err(None),
            None => return Err(Some(error_response(408, &[]))),
        }
    }
}

/// Writes a plain response the server made itself.
async fn plain<R: Runtime, IO>(
    app: &App<R>,
    io: &mut IO,
    request: &Request,
    response: Response,
    grant: &[(String, String)],
    close: bool,
) -> bool
where
    IO: AsyncWrite + Unpin,
{
    let close = close || !request.keep_alive() || app.shutdown.is_triggered();
    let view = RequestView { head_only: request.method() == "HEAD", read_closed: false };
    plain_with(app, io, response, grant, close, request.version(), view).await
}

/// What writing a response needs to know of its request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView {
    head_only: bool,
    /// The client closed its side while the handler decided.
    read_closed: bool,
}

/// Writes a plain response; returns whether the connection stays open.
async fn plain_with<R: Runtime, IO>(
    app: &App<R>,
    io: &mut IO,
    response: Response,
    grant: &[(String, String)],
    mut close: bool,
    version: Version,
    request: RequestView,
) -> bool
where
    IO: AsyncWrite + Unpin,
{
    let (mut status, headers, mut body) = response.into_parts();
    // An overloaded server frees the descriptor.
    close |= status == 503;
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + grant.len());
    for (name, value) in &headers {
        if validate_header(name, value).is_err() {
            // Never write a header that could split the head; a handler
            // bug becomes a 500 rather than an injection.
            status = 500;
            fields.clear();
            body = Bytes::from_static(b"500 Internal Server Error\n");
            break;
        }
        match name.to_ascii_lowercase().as_str() {
            // Framing is the server's to decide (RFC 9112 §6).
            "content-length" | "transfer-encoding" => {}
            "connection" => close |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")),
            _ => fields.push((name, value)),
        }
    }
    fields.extend(grant.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut out = Vec::with_capacity(256 + body.len());
    let no_body = matches!(status, 100..=199 | 204 | 304);
    let length = (!no_body).then_some(body.len() as u64);
    write_response_head(&mut out, status, version, &fields, length, close);
    if !request.head_only && !no_body {
        out.extend_from_slice(&body);
    }
    if status >= 400 {
        app.metrics.bad_requests.fetch_add(u64::from(status < 500), Ordering::Relaxed);
    }
    write_all(app, io, &out).await.is_ok() && !close
}

/// How a driven exchange ended.
enum Outcome {
    /// The handler answered without streaming (with the CORS grant for
    /// the answer).
    Plain(Response, RequestView, Vec<(String, String)>),
    /// A stream ended (cleanly or not), or the client left: the connection
    /// closes.
    Ended,
}

/// What a stream's head is made of, should the handler start one.
struct StreamHead {
    /// The route's settings (validated when the router was built).
    config: Arc<sse_proto::ServerConfig>,
    /// CORS grant headers for this request.
    grant: Vec<(String, String)>,
    version: Version,
    /// A HEAD request: the head only.
    head_only: bool,
    /// The client allows the connection to stay open after a plain answer.
    keep_alive: bool,
}

/// Drives one exchange: the handler's future and, once it starts one, its
/// event stream.
struct Driver<'a, R: Runtime, IO> {
    app: &'a App<R>,
    io: &'a mut IO,
    /// Where pipelined bytes read while the handler decides go.
    buf: &'a mut Vec<u8>,
    shared: Arc<StreamShared>,
    handler: Option<BoxFuture<'static, Response>>,
    /// What the handler returned, if it did.
    returned: Option<Response>,
    head: StreamHead,
    session: Option<ServerSession>,
    /// Bytes to write, and how many of them are written.
    out: Vec<u8>,
    written: usize,
    /// Events in `out`, for the counters.
    events: u64,
    needs_flush: bool,
    /// The terminating chunk is in `out`: end once it is written.
    finishing: bool,
    read_closed: bool,
    stall_deadline: Option<Instant>,
    /// When the last write went out, and the tick the current batch waits
    /// past, if it waits (see [`BURST_WINDOW`]).
    last_write: Option<Instant>,
    held: Option<u64>,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    shutdown_seen: bool,
    /// Tells reads apart from other wake-ups while streaming, so that a
    /// delivery costs no read attempt.
    read_wake: Option<(Arc<ReadFlag>, Waker)>,
}

impl<'a, R: Runtime, IO> Driver<'a, R, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn new(
        app: &'a App<R>,
        io: &'a mut IO,
        shared: Arc<StreamShared>,
        handler: BoxFuture<'static, Response>,
        head: StreamHead,
        buf: &'a mut Vec<u8>,
    ) -> Self {
        Driver {
            app,
            io,
            buf,
            shared,
            handler: Some(handler),
            returned: None,
            head,
            session: None,
            out: Vec::new(),
            written: 0,
            events: 0,
            needs_flush: false,
            finishing: false,
            read_closed: false,
            stall_deadline: None,
            last_write: None,
            held: None,
            timer: None,
            shutdown_seen: false,
            read_wake: None,
        }
    }

    fn plain(&mut self, response: Response) -> Outcome {
        let view = self.view();
        Outcome::Plain(response, view, std::mem::take(&mut self.head.grant))
    }

    fn view(&self) -> RequestView {
        RequestView { head_only: self.head.head_only, read_closed: self.read_closed }
    }

    /// Polls the handler, catching a panic (it ends this exchange, not the
    /// server).
    fn poll_handler(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(handler) = self.handler.as_mut() else { return false };
        match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(response)) => {
                self.handler = None;
                self.returned = Some(response);
                true
            }
            Err(_) => {
                self.handler = None;
                self.returned = Some(status_response(500));
                true
            }
        }
    }

    /// Starts the stream: the session and its head.
    fn start_stream(&mut self, now: Instant) -> Result<(), Response> {
        // The route's settings (validated when the router was built) and the
        // CORS grant for this request.
        let mut config = (*self.head.config).clone();
        for (name, value) in &self.head.grant {
            config = config.header(name, value);
        }
        let mut session =
            ServerSession::with_version(config, self.head.version, now).map_err(|_| status_response(500))?;
        session.start(&mut self.out);
        if self.head.head_only {
            // HEAD: the head of the stream, no body (RFC 9110 §9.3.2).
            self.finishing = true;
            self.out.truncate(head_len(&self.out));
        }
        self.session = Some(session);
        self.app.metrics.open_streams.fetch_add(1, Ordering::Relaxed);
        // From here on this task delivers frames: requests go first.
        self.app.rt.background();
        Ok(())
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.shared.begin_poll();
        loop {
            let mut progress = self.poll_handler(cx);
            let mut now = None;
            let mut clock = |rt: &R| *now.get_or_insert_with(|| rt.now());

            if self.session.is_none() {
                if self.shared.is_started() {
                    let limits = &self.app.limits;
                    if self.app.metrics.open_streams.load(Ordering::Relaxed) as usize
                        >= limits.max_connections
                    {
                        // At the stream limit: a refusal the client retries.
                        self.app.metrics.rejected_connections.fetch_add(1, Ordering::Relaxed);
                        let response = status_response(503).header("Retry-After", "1");
                        return Poll::Ready(self.plain(response));
                    }
                    if let Err(response) = self.start_stream(clock(&self.app.rt)) {
                        return Poll::Ready(self.plain(response));
                    }
                    if self.shutdown_seen {
                        // Started after shutdown began: the head, then the end.
                        self.shared.close();
                    }
                    progress = true;
                } else if let Some(response) = self.returned.take() {
                    return Poll::Ready(self.plain(response));
                } else if self.shutdown_seen {
                    let response = status_response(503).header("Retry-After", "1");
                    return Poll::Ready(self.plain(response));
                }
            }

            // Frames from the queue into the write buffer.
            if let Some(session) = self.session.as_mut().filter(|_| !self.finishing) {
                let room = MAX_BATCH.saturating_sub(self.out.len() - self.written);
                if room > 0 {
                    let (out, events) = (&mut self.out, &mut self.events);
                    let t = clock(&self.app.rt);
                    let view = self.shared.take_frames(cx.waker(), |frame| {
                        if out.capacity() == 0 {
                            // A batch starts: room for a few frames at once,
                            // rather than a reallocation per doubling.
                            out.reserve(BATCH_START.max(frame.len()));
                        }
                        session.send_frame(frame, t, out);
                        *events += 1;
                        out.len() < MAX_BATCH
                    });
                    progress |= view.took;
                    if view.shutdown && !self.shutdown_seen {
                        self.shutdown_seen = true;
                        progress = true;
                    }
                    let handler_gone = self.handler.is_none();
                    if view.closing
                        || (view.drained && handler_gone && !view.detached)
                        || (view.drained && handler_gone && view.detached_and_abandoned)
                    {
                        session.close(&mut self.out);
                        self.finishing = true;
                        progress = true;
                    }
                }
                if self.written == 0 && !self.out.is_empty() && !self.finishing {
                    let t = clock(&self.app.rt);
                    let in_burst =
                        self.last_write.is_some_and(|w| t.saturating_duration_since(w) < BURST_WINDOW);
                    let coalescer = &self.app.coalescer;
                    match self.held {
                        None if in_burst => {
                            let weak = Arc::downgrade(coalescer);
                            self.held = Some(Coalescer::defer(&weak, coalescer, &self.app.rt, cx.waker()));
                            // Until the tick, publishes queue frames without
                            // waking this task for each.
                            self.shared.pause_source();
                            return Poll::Pending;
                        }
                        // Woken by a publish before the tick: keep gathering.
                        Some(epoch) if coalescer.epoch() == epoch => return Poll::Pending,
                        Some(_) => self.shared.resume_source(),
                        None => {}
                    }
                    self.held = None;
                    self.last_write = Some(t);
                }
            } else if self.session.is_none() {
                // Deciding: be woken when another task starts the stream, or
                // at shutdown.
                let view = self.shared.take_frames(cx.waker(), |_| true);
                if view.shutdown && !self.shutdown_seen {
                    self.shutdown_seen = true;
                    progress = true;
                }
            }

            // Write.
            while self.written < self.out.len() {
                match Pin::new(&mut *self.io).poll_write(cx, &self.out[self.written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Outcome::Ended),
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.stall_deadline = None;
                        self.app.metrics.writes.fetch_add(1, Ordering::Relaxed);
                        progress = true;
                    }
                    Poll::Pending => {
                        if self.stall_deadline.is_none() {
                            self.stall_deadline = Some(clock(&self.app.rt) + self.app.limits.write_timeout);
                        }
                        break;
                    }
                }
            }
            if self.written > 0 && self.written == self.out.len() {
                self.app.metrics.sent(self.events, self.written as u64);
                self.events = 0;
                self.written = 0;
                // An idle stream holds no write buffer: the next batch makes
                // one (an allocation beside a system call).
                self.out = Vec::new();
                self.needs_flush = true;
            }
            if self.needs_flush {
                match Pin::new(&mut *self.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.needs_flush = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(Outcome::Ended),
                    Poll::Pending => {}
                }
            }
            if self.finishing && self.out.is_empty() && !self.needs_flush {
                return Poll::Ready(Outcome::Ended);
            }

            // Read: a stream's client sends nothing more, so bytes are
            // dropped and the end of input means it left. While the handler
            // decides, pipelined bytes are kept for the next request, and
            // the end of input may be a half-close: the answer still goes
            // out.
            while !self.read_closed {
                let streaming = self.session.is_some();
                if !streaming && self.buf.len() >= self.app.limits.max_head_len {
                    break;
                }
                let mut chunk = [0u8; 512];
                let polled = if streaming {
                    // Read only when the transport said it is readable (or
                    // on the first turn): not on every delivery.
                    let (flag, waker) = self.read_wake.get_or_insert_with(|| {
                        let flag =
                            Arc::new(ReadFlag { woken: AtomicBool::new(true), task: Mutex::new(None) });
                        let waker = Waker::from(flag.clone());
                        (flag, waker)
                    });
                    if !flag.woken.swap(false, Ordering::AcqRel) {
                        break;
                    }
                    flag.set_task(cx.waker());
                    let mut read_cx = Context::from_waker(waker);
                    Pin::new(&mut *self.io).poll_read(&mut read_cx, &mut chunk)
                } else {
                    Pin::new(&mut *self.io).poll_read(cx, &mut chunk)
                };
                match polled {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        if streaming {
                            return Poll::Ready(Outcome::Ended);
                        }
                        self.read_closed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        if streaming {
                            // Keep reading (and dropping) what is there.
                            if let Some((flag, _)) = &self.read_wake {
                                flag.woken.store(true, Ordering::Release);
                            }
                        } else {
                            self.buf.extend_from_slice(&chunk[..n]);
                        }
                    }
                    Poll::Pending => break,
                }
            }

            // The timer: keep-alive comments and the write stall.
            let keep_alive = self.session.as_ref().filter(|_| !self.finishing).and_then(|s| s.poll_timeout());
            let due = match (keep_alive, self.stall_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(due) = due {
                if self.timer.as_ref().is_none_or(|(at, _)| *at > due) {
                    self.timer = Some((due, self.app.rt.sleep_until(due)));
                }
                if let Some((_, sleep)) = self.timer.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    self.timer = None;
                    let t = self.app.rt.now();
                    if self.stall_deadline.is_some_and(|d| d <= t) {
                        // The client stopped reading.
                        return Poll::Ready(Outcome::Ended);
                    }
                    if let Some(session) = self.session.as_mut().filter(|_| !self.finishing) {
                        let before = self.out.len();
                        session.handle_timeout(t, &mut self.out);
                        self.events += u64::from(self.out.len() > before);
                    }
                    progress = true;
                }
            } else {
                self.timer = None;
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }
}

/// A waker for a stream's reads: notes that the transport woke the reader,
/// then wakes the connection's task.
struct ReadFlag {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl ReadFlag {
    /// Keeps the task's current waker.
    fn set_task(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if !task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }
}

impl Wake for ReadFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            task.wake_by_ref();
        }
    }
}

/// Bytes of a response head at the front of `out` (through the blank line).
fn head_len(out: &[u8]) -> usize {
    out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |i| i + 4)
}

impl<R: Runtime, IO> Future for Driver<'_, R, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.get_mut().poll_drive(cx)
    }
}

impl<R: Runtime, IO> Drop for Driver<'_, R, IO> {
    fn drop(&mut self) {
        // Whatever ended the exchange: the stream is over, `on_close` runs
        // once, and then the handler's future is dropped (at its await).
        self.shared.end();
        self.handler = None;
        if self.session.is_some() {
            self.app.metrics.open_streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
