//! The loopback integration suite, written once and run on every runtime:
//! `sse-smol` and `sse-async-std` include this file and instantiate it with
//! `runtime_suite!`. Every test talks HTTP over 127.0.0.1 and is bounded in
//! time.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sse_io::proto::{BodyDecoder, Decoder, MessageEvent, ResponseHead};
use sse_io::{
    Broadcast, Ctx, Event, Metrics, RESET_EVENT, ReplayConfig, Response, Router, Runtime, SendError, Server,
    ServerBuilder, Shutdown, StreamConfig,
};

/// Upper bound for any single test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a server in the background; returns its address and shutdown.
pub async fn start<R: Runtime, S: Send + Sync + 'static>(
    rt: &R,
    router: Router<S>,
    limits: impl FnOnce(ServerBuilder<R>) -> ServerBuilder<R>,
) -> (SocketAddr, Shutdown, Arc<Metrics>) {
    let server = limits(Server::builder(rt.clone()).router(router)).build().expect("a valid router");
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
    let (addr, shutdown, metrics) = (bound.local_addr(), bound.shutdown_handle(), bound.metrics());
    rt.spawn(Box::pin(async move {
        let _ = bound.run().await;
    }));
    (addr, shutdown, metrics)
}

/// A client reading one event stream response.
pub struct StreamReader<R: Runtime> {
    pub stream: R::Stream,
    pub head: ResponseHead,
    pub head_text: String,
    body: BodyDecoder,
    decoder: Decoder,
    /// Every body byte, dechunked (to look for comments).
    pub raw: Vec<u8>,
    pub ended: bool,
}

pub async fn get<R: Runtime>(rt: &R, addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> R::Stream {
    let mut stream = rt.connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    if let Some(id) = last_event_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write request");
    stream
}

/// Sends raw bytes and reads the whole response (the server closes).
pub async fn raw_request<R: Runtime>(rt: &R, addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = rt.connect(addr).await.expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = sse_io::timeout(rt, Duration::from_secs(20), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

impl<R: Runtime> StreamReader<R> {
    pub async fn open(rt: &R, addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> Self {
        let mut stream = get(rt, addr, path, last_event_id).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head = loop {
            let n = stream.read(&mut chunk).await.expect("read head");
            assert!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(head) = ResponseHead::parse(&buf, 64 * 1024).expect("valid head") {
                break head;
            }
        };
        let head_text = String::from_utf8_lossy(&buf[..head.head_len]).into_owned();
        let mut reader = StreamReader {
            stream,
            body: BodyDecoder::new(head.framing),
            decoder: Decoder::with_last_event_id(Default::default(), last_event_id.unwrap_or("")),
            head,
            head_text,
            raw: Vec::new(),
            ended: false,
        };
        let rest = buf[reader.head.head_len..].to_vec();
        reader.consume(&rest);
        reader
    }

    fn consume(&mut self, bytes: &[u8]) {
        let (decoder, raw) = (&mut self.decoder, &mut self.raw);
        self.body
            .decode(bytes, |piece| {
                raw.extend_from_slice(piece);
                decoder.feed(piece);
            })
            .expect("valid chunked body");
        if self.body.is_done() {
            self.ended = true;
        }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<MessageEvent> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(ev) = self.decoder.poll_event().expect("decodable") {
                return Some(ev);
            }
            if self.ended {
                return None;
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.ended = true;
                    self.decoder.finish();
                }
                Ok(n) => {
                    let bytes = chunk[..n].to_vec();
                    self.consume(&bytes);
                }
            }
        }
    }

    /// Reads until the stream ends (terminating chunk or close).
    pub async fn until_end(&mut self) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while let Some(ev) = self.next().await {
            events.push(ev);
        }
        events
    }

    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }
}

async fn sleep<R: Runtime>(rt: &R, ms: u64) {
    rt.sleep(Duration::from_millis(ms)).await;
}

// ---------------------------------------------------------------------------
// The tests.

/// A stream handler that sends `events` and then waits for the client to
/// leave (its future is dropped then).
fn hold(
    events: &'static [&'static str],
) -> impl Fn(Ctx) -> sse_io::BoxFuture<'static, Result<(), SendError>> + Clone {
    move |ctx: Ctx| {
        Box::pin(async move {
            let sse = ctx.sse();
            for e in events {
                sse.send(Event::new(*e)).await?;
            }
            futures_lite::future::pending::<()>().await;
            Ok(())
        })
    }
}

pub async fn exact_response_head<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", hold(&["x"]));
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    assert_eq!(
        r.head_text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\
         X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(r.next().await.map(|e| e.data().to_owned()).as_deref(), Some("x"));
    shutdown.trigger();
}

pub async fn named_events_and_json_then_the_handler_returns<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", |ctx: Ctx| async move {
        let sse = ctx.sse();
        sse.send(Event::new("line 1\nline 2").event("multi").id("a1")).await?;
        sse.send_json(Event::default().event("tick").id(2u64), &serde_json::json!({"n": 1, "s": "é"}))
            .await?;
        sse.comment("not an event").await?;
        sse.send(Event::new("plain")).await
        // Returning ends the stream with its terminating chunk.
    });
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    let events = r.until_end().await;
    let got: Vec<_> = events.iter().map(|e| (e.event_type(), e.data(), e.last_event_id())).collect();
    assert_eq!(
        got,
        [
            ("multi", "line 1\nline 2", "a1"),
            ("tick", "{\"n\":1,\"s\":\"é\"}", "2"),
            ("message", "plain", "2")
        ]
    );
    assert!(r.raw.windows(14).any(|w| w == b": not an event"));
    assert!(r.body.is_done(), "the handler's return ends the stream with the terminating chunk");
    shutdown.trigger();
}

pub async fn keep_alive_only_when_idle<R: Runtime>(rt: R) {
    let timer = rt.clone();
    let router = Router::new()
        .get("/s", move |ctx: Ctx| {
            let timer = timer.clone();
            async move {
                let sse = ctx.sse();
                // Busy for 1 s (an event every 100 ms, under the 300 ms
                // keep-alive interval), then idle.
                for i in 0..10 {
                    sse.send(Event::new(i.to_string())).await?;
                    timer.sleep(Duration::from_millis(100)).await;
                }
                futures_lite::future::pending::<()>().await;
                Ok::<(), SendError>(())
            }
        })
        .stream_config(StreamConfig::default().keep_alive(Some(Duration::from_millis(300))));
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    for _ in 0..10 {
        r.next().await.expect("event");
    }
    assert!(!r.raw.windows(10).any(|w| w == b"keep-alive"), "keep-alive while busy");
    // Idle: comments arrive.
    let read_more = async {
        let mut chunk = [0u8; 256];
        let n = r.stream.read(&mut chunk).await.unwrap_or(0);
        chunk[..n].to_vec()
    };
    let more =
        sse_io::timeout(&rt, Duration::from_secs(5), read_more).await.expect("a keep-alive within 5 s");
    assert!(String::from_utf8_lossy(&more).contains(": keep-alive"), "{more:?}");
    shutdown.trigger();
}

/// Polls `cond` until true (bounded).
pub async fn wait_for<R: Runtime>(rt: &R, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        sleep(rt, 5).await;
    }
}

/// Counts how many times a handler's future was dropped.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub async fn on_close_fires_once_for_every_ending_and_handlers_are_dropped<R: Runtime>(rt: R) {
    let fired = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let counted = |weight: usize, close: bool| {
        let (fired, dropped) = (fired.clone(), dropped.clone());
        move |ctx: Ctx| {
            let (fired, dropped) = (fired.clone(), dropped.clone());
            async move {
                let _guard = DropCounter(dropped);
                let sse = ctx.sse();
                sse.on_close(move || {
                    fired.fetch_add(weight, Ordering::SeqCst);
                });
                sse.send(Event::new("hi")).await?;
                if close {
                    sse.close();
                    sse.close();
                }
                // Never returns by itself: only a drop ends it.
                futures_lite::future::pending::<()>().await;
                Ok::<(), SendError>(())
            }
        }
    };
    let router = Router::new()
        .get("/client-drops", counted(1, false))
        .get("/server-closes", counted(100, true))
        .get("/shutdown", counted(10_000, false));
    let (addr, shutdown, metrics) = start(&rt, router, |b| b).await;
    // 1. The client drops: the handler's future is dropped too (no race
    // with `closed()` written by hand).
    let mut r = StreamReader::open(&rt, addr, "/client-drops", None).await;
    r.next().await.unwrap();
    drop(r);
    wait_for(&rt, || dropped.load(Ordering::SeqCst) == 1).await;
    // 2. The server closes (twice).
    let mut r = StreamReader::open(&rt, addr, "/server-closes", None).await;
    assert_eq!(r.until_end().await.len(), 1);
    assert!(r.body.is_done());
    // 3. Shutdown ends the last one with a terminating chunk.
    let mut r = StreamReader::open(&rt, addr, "/shutdown", None).await;
    r.next().await.unwrap();
    wait_for(&rt, || fired.load(Ordering::SeqCst) == 101).await;
    shutdown.trigger();
    assert!(r.until_end().await.is_empty());
    assert!(r.body.is_done(), "shutdown ends streams with the terminating chunk");
    wait_for(&rt, || fired.load(Ordering::SeqCst) == 10_101).await;
    wait_for(&rt, || dropped.load(Ordering::SeqCst) == 3).await;
    sleep(&rt, 100).await;
    assert_eq!(fired.load(Ordering::SeqCst), 10_101, "each callback exactly once");
    wait_for(&rt, || metrics.open_connections() == 0).await;
}

pub async fn handlers_refuse_before_any_stream<R: Runtime>(rt: R) {
    let router = Router::new().get("/events/{topic}", |ctx: Ctx| async move {
        match ctx.param("topic") {
            Some("private") => {
                return Err(Response::new(401).header("WWW-Authenticate", "Bearer").text("no\n"));
            }
            Some("gone") => return Err(Response::new(204)),
            Some(topic) if topic != "news" => return Err(Response::new(404)),
            _ => {}
        }
        let sse = ctx.sse();
        sse.send(Event::new(ctx.param("topic").unwrap_or_default().to_owned())).await?;
        Ok(())
    });
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = raw_request(&rt, addr, get("/events/private").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
    assert!(r.contains("WWW-Authenticate: Bearer\r\n"), "{r}");
    assert!(!r.contains("text/event-stream"), "{r}");
    let r = raw_request(&rt, addr, get("/events/gone").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 204 ") && !r.contains("Content-Length"), "{r}");
    assert!(raw_request(&rt, addr, get("/events/other").as_bytes()).await.starts_with("HTTP/1.1 404 "));
    let mut r = StreamReader::open(&rt, addr, "/events/news", None).await;
    assert_eq!(r.until_end().await.iter().map(|e| e.data().to_owned()).collect::<Vec<_>>(), ["news"]);
    // Path parameters are percent-decoded.
    let router_echo = Router::new().get("/p/{name}", |ctx: Ctx| async move {
        Response::ok_text(ctx.param("name").unwrap_or_default().to_owned())
    });
    let (addr2, shutdown2, _) = start(&rt, router_echo, |b| b).await;
    let r = raw_request(&rt, addr2, get("/p/caf%C3%A9%20au%2Flait").as_bytes()).await;
    assert!(r.ends_with("\r\n\r\ncafé au/lait"), "{r}");
    shutdown.trigger();
    shutdown2.trigger();
}

fn feed_router(feed: &Broadcast) -> Router<Broadcast> {
    Router::with_state(feed.clone())
        .post("/publish", |ctx: Ctx<Broadcast>| async move {
            let text = ctx.body_text()?;
            let id =
                ctx.state().publish(Event::new(text)).map_err(|e| Response::new(400).text(e.to_string()))?;
            Ok::<_, Response>(Response::ok_text(id))
        })
        .get("/feed", |ctx: Ctx<Broadcast>| async move {
            let sub = ctx.state().subscribe(ctx.last_event_id());
            ctx.sse().forward(sub).await
        })
}

pub async fn resumes_through_random_cuts_without_gap_or_duplicate<R: Runtime>(rt: R) {
    let feed = Broadcast::default();
    let (addr, shutdown, _) = start(&rt, feed_router(&feed), |b| b).await;
    const N: usize = 1000;
    // The first connection subscribes before anything is published; every
    // later one resumes with Last-Event-ID.
    let mut first = Some(StreamReader::open(&rt, addr, "/feed", None).await);
    wait_for(&rt, || feed.subscriber_count() == 1).await;
    let publisher = feed.clone();
    let rt2 = rt.clone();
    rt.spawn(Box::pin(async move {
        for i in 0..N {
            publisher.publish(Event::new(format!("event {i}"))).unwrap();
            if i % 50 == 0 {
                sleep(&rt2, 1).await;
            }
        }
    }));
    let mut seen: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut cuts = 0;
    while seen.len() < N {
        let mut r = match first.take() {
            Some(r) => r,
            None => StreamReader::open(&rt, addr, "/feed", last.as_deref()).await,
        };
        // Read a random number of events, then cut the connection.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = 1 + (x % 60) as usize;
        for _ in 0..take {
            let Some(ev) = r.next().await else { break };
            assert_ne!(ev.event_type(), RESET_EVENT, "no gap while the log holds everything");
            seen.push(ev.data().to_owned());
            last = Some(ev.last_event_id().to_owned());
            if seen.len() == N {
                break;
            }
        }
        cuts += 1;
        drop(r);
    }
    let want: Vec<String> = (0..N).map(|i| format!("event {i}")).collect();
    assert_eq!(seen, want, "every event exactly once, in order");
    assert!(cuts > 10);
    shutdown.trigger();
}

pub async fn eviction_sends_a_reset_event<R: Runtime>(rt: R) {
    let replay = ReplayConfig { max_events: 5, ..Default::default() };
    let feed = Broadcast::builder().replay(replay).build();
    let (addr, shutdown, _) = start(&rt, feed_router(&feed), |b| b).await;
    for i in 0..20 {
        feed.publish(Event::new(format!("e{i}"))).unwrap();
    }
    let mut r = StreamReader::open(&rt, addr, "/feed", Some("2")).await;
    let ev = r.next().await.unwrap();
    assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), (RESET_EVENT, "gap", "20"));
    // Live events follow.
    feed.publish(Event::new("live")).unwrap();
    assert_eq!(r.next().await.unwrap().data(), "live");
    // Within the log: exactly the missed events.
    let mut r = StreamReader::open(&rt, addr, "/feed", Some("18")).await;
    assert_eq!(r.next().await.unwrap().data(), "e18");
    assert_eq!(r.next().await.unwrap().data(), "e19");
    assert_eq!(r.next().await.unwrap().data(), "live");
    shutdown.trigger();
}

pub async fn a_stalled_subscriber_slows_no_one<R: Runtime>(rt: R) {
    // The queue bounds what a stalled subscriber can hold: 1024 x 4 KiB.
    let feed = Broadcast::builder().capacity(1024).build();
    let (addr, shutdown, _) =
        start(&rt, feed_router(&feed), |b| b.write_timeout(Duration::from_secs(2))).await;
    // A client that connects and never reads.
    let stalled = get(&rt, addr, "/feed", None).await;
    let mut healthy = StreamReader::open(&rt, addr, "/feed", None).await;
    wait_for(&rt, || feed.subscriber_count() == 2).await;
    let payload = "x".repeat(4096);
    let start_publish = Instant::now();
    const N: usize = 3000;
    let publisher = feed.clone();
    let rt2 = rt.clone();
    rt.spawn(Box::pin(async move {
        for i in 0..N {
            publisher.publish(Event::new(format!("{i} {payload}"))).unwrap();
            if i % 10 == 0 {
                sleep(&rt2, 1).await;
            }
        }
    }));
    for i in 0..N {
        let ev = healthy.next().await.expect("the healthy client keeps receiving");
        assert!(ev.data().starts_with(&format!("{i} ")));
    }
    // 12 MB went to the healthy client; the stalled one was cut off by the
    // channel (queue bound) instead of holding the publisher or memory.
    assert!(start_publish.elapsed() < Duration::from_secs(30));
    wait_for(&rt, || feed.subscriber_count() == 1).await;
    drop(stalled);
    shutdown.trigger();
}

pub async fn shutdown_drains_and_run_returns<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", hold(&["first"]));
    let server = Server::new(rt.clone(), router).unwrap();
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (addr, shutdown, metrics) = (bound.local_addr(), bound.shutdown_handle(), bound.metrics());
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    rt.spawn(Box::pin(async move {
        bound.run().await.unwrap();
        let _ = done_tx.send(()).await;
    }));
    let mut readers = Vec::new();
    for _ in 0..5 {
        let mut r = StreamReader::open(&rt, addr, "/s", None).await;
        r.next().await.unwrap();
        readers.push(r);
    }
    // An idle kept-alive connection is closed too.
    let mut idle = rt.connect(addr).await.unwrap();
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 404");
    shutdown.trigger();
    for r in &mut readers {
        assert!(r.until_end().await.is_empty());
        assert!(r.body.is_done(), "terminating chunk");
    }
    let mut rest = Vec::new();
    let _ = sse_io::timeout(&rt, Duration::from_secs(10), idle.read_to_end(&mut rest))
        .await
        .expect("idle closed");
    sse_io::timeout(&rt, Duration::from_secs(10), done_rx.recv()).await.expect("run returns").unwrap();
    assert_eq!(metrics.open_connections(), 0);
    // No longer accepting.
    assert!(
        rt.connect(addr).await.is_err()
            || raw_request(&rt, addr, b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n").await.is_empty()
    );
}

pub async fn bad_requests_get_their_status<R: Runtime>(rt: R) {
    let router = Router::new()
        .get("/s", hold(&[]))
        .post("/p", |ctx: Ctx| async move { Response::ok_text(format!("{} bytes", ctx.body().len())) });
    let (addr, shutdown, _) = start(&rt, router, |b| {
        b.max_head_len(1024).max_body_len(64).head_timeout(Duration::from_millis(500))
    })
    .await;
    let cases: &[(&[u8], &str)] = &[
        (b"GET /s HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
        (b"DELETE /s HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "HTTP/1.1 400 "),
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        (b"GET /s HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET /s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 "),
        // RFC 9112 §6: framing that could be read two ways is refused.
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", "HTTP/1.1 413 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", "HTTP/1.1 413 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400 "),
        (b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\na", "HTTP/1.1 417 "),
        // A chunked body is decoded, not published raw.
        (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "HTTP/1.1 200 "),
    ];
    for (request, status) in cases {
        let response = raw_request(&rt, addr, request).await;
        assert!(response.starts_with(status), "{:?} got {response:?}", String::from_utf8_lossy(request));
    }
    let chunked = raw_request(&rt, addr, cases.last().unwrap().0).await;
    assert!(chunked.ends_with("\r\n\r\n5 bytes"), "{chunked}");
    let mut big = b"GET /s HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4096));
    assert!(raw_request(&rt, addr, &big).await.starts_with("HTTP/1.1 431 "));
    // 405 names what is allowed.
    let r = raw_request(&rt, addr, b"PUT /s HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(r.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{r}");
    // A client that never finishes its head is dropped at the head timeout.
    let mut slow = rt.connect(addr).await.unwrap();
    slow.write_all(b"GET /s HTT").await.unwrap();
    let mut out = Vec::new();
    let read = sse_io::timeout(&rt, Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(read.is_some(), "dropped within the head timeout");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408 "));
    shutdown.trigger();
}

pub async fn plain_responses_keep_the_connection_and_answer_expect_continue<R: Runtime>(rt: R) {
    let router = Router::new()
        .post("/echo", |ctx: Ctx| async move { Response::ok_text(ctx.body().clone()) })
        .get("/page", |_ctx: Ctx| async { Response::html("<p>hi</p>") });
    let (addr, shutdown, metrics) = start(&rt, router, |b| b).await;
    let mut conn = rt.connect(addr).await.unwrap();
    // Two requests in one write (pipelined), then a HEAD, on one connection.
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /page HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let first = read_response(&mut conn).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n") && first.ends_with("\r\n\r\nhello"), "{first}");
    assert!(!first.contains("Connection: close"));
    let second = read_response(&mut conn).await;
    assert!(second.ends_with("<p>hi</p>"), "{second}");
    conn.write_all(b"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let head = read_response_of(&mut conn, true).await;
    assert!(head.contains("Content-Length: 9\r\n") && head.ends_with("\r\n\r\n"), "{head}");
    // Expect: 100-continue is answered before the body is sent.
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    conn.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(b"abc").await.unwrap();
    assert!(read_response(&mut conn).await.ends_with("\r\n\r\nabc"));
    assert_eq!(metrics.open_connections(), 1, "one connection served all four");
    // `Connection: close` is honoured.
    conn.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("Connection: close\r\n"));
    // HTTP/1.0: no Host needed, the connection closes after the answer.
    let old = raw_request(&rt, addr, b"GET /page HTTP/1.0\r\n\r\n").await;
    assert!(old.contains("Connection: close\r\n") && old.ends_with("<p>hi</p>"), "{old}");
    shutdown.trigger();
}

/// Reads one response with a Content-Length body (only its head when
/// `head_only`: the answer to a HEAD).
async fn read_response_of<S: futures_lite::AsyncRead + Unpin>(conn: &mut S, head_only: bool) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).await.expect("a response head");
        buf.push(byte[0]);
    }
    let head = ResponseHead::parse(&buf, 1 << 16).unwrap().unwrap();
    if let (sse_io::proto::BodyFraming::Length(n), false) = (head.framing, head_only) {
        let mut body = vec![0u8; n as usize];
        conn.read_exact(&mut body).await.expect("the body");
        buf.extend_from_slice(&body);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn read_response<S: futures_lite::AsyncRead + Unpin>(conn: &mut S) -> String {
    read_response_of(conn, false).await
}

pub async fn at_the_stream_limit_streams_get_503_and_plain_requests_get_in<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", hold(&[])).observability();
    let (addr, shutdown, metrics) = start(&rt, router, |b| b.max_connections(2)).await;
    let _a = StreamReader::open(&rt, addr, "/s", None).await;
    let _b = StreamReader::open(&rt, addr, "/s", None).await;
    wait_for(&rt, || metrics.open_streams() == 2).await;
    let refused = raw_request(&rt, addr, b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503 ") && refused.contains("Retry-After: 1\r\n"), "{refused}");
    let health =
        raw_request(&rt, addr, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
    assert_eq!(metrics.open_streams(), 2);
    shutdown.trigger();
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

pub async fn ten_thousand_sequential_connections_leak_nothing<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", |ctx: Ctx| async move { ctx.sse().send(Event::new("one")).await });
    let (addr, shutdown, metrics) = start(&rt, router, |b| b).await;
    // Warm up, then measure.
    for _ in 0..100 {
        let mut r = StreamReader::open(&rt, addr, "/s", None).await;
        assert_eq!(r.until_end().await.len(), 1);
    }
    wait_for(&rt, || metrics.open_connections() == 0).await;
    let fds = open_fds();
    for _ in 0..10_000 {
        let mut r = StreamReader::open(&rt, addr, "/s", None).await;
        assert_eq!(r.until_end().await.len(), 1);
    }
    wait_for(&rt, || metrics.open_connections() == 0 && metrics.open_streams() == 0).await;
    if let (Some(before), Some(after)) = (fds, open_fds()) {
        assert!(after <= before + 4, "descriptors: {before} before, {after} after");
    }
    assert_eq!(metrics.total_connections(), 10_100);
    shutdown.trigger();
}

pub async fn event_source_client_reconnects_and_resumes<R: Runtime>(rt: R) {
    use sse_io::{ClientConfig, ClientEvent, EventSource, Sse};
    let feed = Broadcast::default();
    type Opened = Vec<(Option<String>, Sse)>;
    let streams: Arc<std::sync::Mutex<Opened>> = Arc::default();
    let st = streams.clone();
    let router = Router::with_state(feed.clone())
        .get("/feed", move |ctx: Ctx<Broadcast>| {
            let st = st.clone();
            async move {
                let sub = ctx.state().subscribe(ctx.last_event_id());
                let sse = ctx.sse();
                st.lock().unwrap().push((ctx.last_event_id().map(str::to_owned), sse.clone()));
                sse.forward(sub).await
            }
        })
        .stream_config(StreamConfig::default().retry(Duration::from_millis(50)));
    let (addr, shutdown, metrics) = start(&rt, router, |b| b).await;
    let config = ClientConfig::new(&format!("http://{addr}/feed")).unwrap();
    let mut source = EventSource::new(rt.clone(), config).unwrap();
    assert_eq!(source.next().await, Some(ClientEvent::Open));
    wait_for(&rt, || feed.subscriber_count() == 1).await;
    for i in 1..=3 {
        feed.publish(Event::new(format!("e{i}"))).unwrap();
    }
    let mut data = Vec::new();
    while data.len() < 3 {
        if let Some(ClientEvent::Message(m)) = source.next().await {
            data.push(m.data().to_owned());
        }
    }
    // The server ends the stream; two events are published while the
    // client is away.
    let first = streams.lock().unwrap()[0].1.clone();
    first.close();
    drop(first);
    for i in 4..=5 {
        feed.publish(Event::new(format!("e{i}"))).unwrap();
    }
    let (mut ends, mut errors) = (0, 0);
    while data.len() < 5 {
        match source.next().await.expect("still open") {
            ClientEvent::Message(m) => data.push(m.data().to_owned()),
            ClientEvent::Ended { .. } => ends += 1,
            ClientEvent::Error { .. } => errors += 1,
            _ => {}
        }
    }
    assert_eq!(data, ["e1", "e2", "e3", "e4", "e5"]);
    assert_eq!((ends, errors), (1, 0), "the server's clean end is not an error");
    assert_eq!(source.last_event_id(), "5");
    assert_eq!(streams.lock().unwrap()[1].0.as_deref(), Some("3"), "resumed with Last-Event-ID");
    source.close();
    assert_eq!(source.next().await, None);
    streams.lock().unwrap().clear();
    // The server sees the client go.
    wait_for(&rt, || metrics.open_streams() == 0).await;
    shutdown.trigger();
}

pub async fn cors_grants_only_the_allowed_origins<R: Runtime>(rt: R) {
    let router = Router::new()
        .get("/s", hold(&["x"]))
        .post("/p", |_ctx: Ctx| async { Response::ok_text("ok") })
        .cors(sse_io::Cors::new().allow_origin("https://app.example").allow_credentials(true));
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let preflight = |origin: &str, headers: &str| {
        format!(
            "OPTIONS /p HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: {headers}\r\nConnection: close\r\n\r\n"
        )
    };
    let ok =
        raw_request(&rt, addr, preflight("https://app.example", "authorization, last-event-id").as_bytes())
            .await;
    assert!(ok.starts_with("HTTP/1.1 204 "), "{ok}");
    assert!(ok.contains("Access-Control-Allow-Origin: https://app.example\r\n"), "{ok}");
    assert!(ok.contains("Access-Control-Allow-Credentials: true\r\n"), "{ok}");
    assert!(ok.contains("Access-Control-Allow-Methods: POST, OPTIONS\r\n"), "{ok}");
    assert!(ok.contains("Access-Control-Allow-Headers: authorization, last-event-id\r\n"), "{ok}");
    assert!(ok.contains("Access-Control-Max-Age: "), "{ok}");
    let evil = raw_request(&rt, addr, preflight("https://evil.example", "last-event-id").as_bytes()).await;
    assert!(evil.starts_with("HTTP/1.1 403 ") && !evil.contains("Access-Control-Allow-Origin"), "{evil}");
    // A stream's head carries the grant, and `Vary: Origin`.
    let mut conn = rt.connect(addr).await.unwrap();
    conn.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.contains("Access-Control-Allow-Origin: https://app.example\r\n"), "{head}");
    assert!(head.contains("Vary: Origin\r\n"), "{head}");
    let other = raw_request(
        &rt,
        addr,
        b"POST /p HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 200 ") && !other.contains("Access-Control-Allow-Origin"), "{other}");
    shutdown.trigger();
}

pub async fn http10_streams_are_close_delimited_and_head_has_no_body<R: Runtime>(rt: R) {
    let router = Router::new().get("/s", |ctx: Ctx| async move {
        let sse = ctx.sse();
        sse.send(Event::new("a")).await?;
        sse.send(Event::new("b")).await
    });
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let old = raw_request(&rt, addr, b"GET /s HTTP/1.0\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.1 200 OK\r\n"), "{old}");
    assert!(!old.contains("Transfer-Encoding") && old.contains("Connection: close\r\n"), "{old}");
    assert!(old.ends_with("\r\n\r\ndata: a\n\ndata: b\n\n"), "{old}");
    let head = raw_request(&rt, addr, b"HEAD /s HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"), "{head}");
    assert!(head.contains("text/event-stream") && !head.contains("data:"), "{head}");
    shutdown.trigger();
}

pub async fn a_detached_stream_outlives_its_handler<R: Runtime>(rt: R) {
    let rt2 = rt.clone();
    let router = Router::new().get("/s", move |ctx: Ctx| {
        let rt = rt2.clone();
        async move {
            let sse = ctx.sse();
            sse.detach();
            let sender = sse.clone();
            rt.spawn(Box::pin(async move {
                for i in 0..3 {
                    let _ = sender.send(Event::new(format!("later {i}"))).await;
                }
                // The last handle goes: the stream ends.
            }));
        }
    });
    let (addr, shutdown, _) = start(&rt, router, |b| b).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    let got: Vec<String> = r.until_end().await.iter().map(|e| e.data().to_owned()).collect();
    assert_eq!(got, ["later 0", "later 1", "later 2"]);
    assert!(r.body.is_done());
    shutdown.trigger();
}

/// Instantiates the suite for a runtime: `runtime_suite!(Smol, smol::block_on);`
#[macro_export]
macro_rules! runtime_suite {
    ($rt:expr, $block_on:path) => {
        $crate::runtime_suite!(@tests $rt, $block_on,
            exact_response_head,
            named_events_and_json_then_the_handler_returns,
            keep_alive_only_when_idle,
            on_close_fires_once_for_every_ending_and_handlers_are_dropped,
            handlers_refuse_before_any_stream,
            resumes_through_random_cuts_without_gap_or_duplicate,
            eviction_sends_a_reset_event,
            a_stalled_subscriber_slows_no_one,
            shutdown_drains_and_run_returns,
            bad_requests_get_their_status,
            plain_responses_keep_the_connection_and_answer_expect_continue,
            at_the_stream_limit_streams_get_503_and_plain_requests_get_in,
            ten_thousand_sequential_connections_leak_nothing,
            event_source_client_reconnects_and_resumes,
            cors_grants_only_the_allowed_origins,
            http10_streams_are_close_delimited_and_head_has_no_body,
            a_detached_stream_outlives_its_handler
        );
    };
    (@tests $rt:expr, $block_on:path, $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                // Boxed: the test futures are large, and some runtimes poll
                // them on the (small) stack of the test thread.
                $block_on(Box::pin(async {
                    let rt = $rt;
                    let test = Box::pin(suite::$name(rt.clone()));
                    let bounded = sse_io::timeout(&rt, suite::TEST_TIMEOUT, test).await;
                    assert!(bounded.is_some(), "test timed out");
                }));
            }
        )*
    };
}
