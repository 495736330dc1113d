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
    Broadcast, BroadcastConfig, Event, Metrics, RESET_EVENT, Response, Router, Runtime, Server,
    ServerOptions, Shutdown,
};

/// Upper bound for any single test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a server in the background; returns its address and shutdown.
pub async fn start<R: Runtime>(
    rt: &R,
    router: Router,
    options: ServerOptions,
) -> (SocketAddr, Shutdown, Arc<Metrics>) {
    let server = Server::with_options(rt.clone(), router, options);
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
    let _ = stream.read_to_end(&mut out).await;
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

pub async fn exact_response_head<R: Runtime>(rt: R) {
    let router = Router::new().sse("/s", |_req, sse| async move {
        let _ = sse.send(Event::new("x")).await;
    });
    let (addr, shutdown, _) = start(&rt, router, ServerOptions::default()).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    assert_eq!(
        r.head_text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\
         X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(r.next().await.map(|e| e.data().to_owned()).as_deref(), Some("x"));
    shutdown.trigger();
}

pub async fn named_events_and_json<R: Runtime>(rt: R) {
    let router = Router::new().sse("/s", |_req, sse| async move {
        sse.send(Event::new("line 1\nline 2").event("multi").id("a1")).await.unwrap();
        sse.json(&serde_json::json!({"n": 1, "s": "é"}), Some("tick"), Some("a2")).await.unwrap();
        sse.comment("not an event").await.unwrap();
        sse.send(Event::new("plain")).await.unwrap();
        sse.close();
    });
    let (addr, shutdown, _) = start(&rt, router, ServerOptions::default()).await;
    let mut r = StreamReader::open(&rt, addr, "/s", None).await;
    let events = r.until_end().await;
    let got: Vec<_> = events.iter().map(|e| (e.event_type(), e.data(), e.last_event_id())).collect();
    assert_eq!(
        got,
        [
            ("multi", "line 1\nline 2", "a1"),
            ("tick", "{\"n\":1,\"s\":\"é\"}", "a2"),
            ("message", "plain", "a2")
        ]
    );
    assert!(r.raw.windows(14).any(|w| w == b": not an event"));
    shutdown.trigger();
}

pub async fn keep_alive_only_when_idle<R: Runtime>(rt: R) {
    let options = ServerOptions {
        stream: sse_io::proto::ServerConfig::default().keep_alive(Some(Duration::from_millis(300))),
        ..Default::default()
    };
    let timer = rt.clone();
    let router = Router::new().sse("/s", move |_req, sse| {
        let timer = timer.clone();
        async move {
            // Busy for 1 s (an event every 100 ms, under the 300 ms
            // keep-alive interval), then idle.
            for i in 0..10 {
                sse.send(Event::new(i.to_string())).await.unwrap();
                timer.sleep(Duration::from_millis(100)).await;
            }
            sse.closed().await;
        }
    });
    let (addr, shutdown, _) = start(&rt, router, options).await;
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

pub async fn on_close_fires_once_for_every_ending<R: Runtime>(rt: R) {
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let router = Router::new()
        .sse("/client-drops", {
            let f = f.clone();
            move |_req, sse| {
                let f = f.clone();
                async move {
                    sse.on_close(move || {
                        f.fetch_add(1, Ordering::SeqCst);
                    });
                    let _ = sse.send(Event::new("hi")).await;
                }
            }
        })
        .sse("/server-closes", {
            let f = f.clone();
            move |_req, sse| {
                let f = f.clone();
                async move {
                    sse.on_close(move || {
                        f.fetch_add(100, Ordering::SeqCst);
                    });
                    sse.send(Event::new("bye")).await.unwrap();
                    sse.close();
                    sse.close();
                }
            }
        })
        .sse("/shutdown", move |_req, sse| {
            let f = f.clone();
            async move {
                sse.on_close(move || {
                    f.fetch_add(10_000, Ordering::SeqCst);
                });
                let _ = sse.send(Event::new("wait")).await;
            }
        });
    let (addr, shutdown, metrics) = start(&rt, router, ServerOptions::default()).await;
    // 1. The client drops.
    let mut r = StreamReader::open(&rt, addr, "/client-drops", None).await;
    r.next().await.unwrap();
    drop(r);
    // 2. The server closes (twice).
    let mut r = StreamReader::open(&rt, addr, "/server-closes", None).await;
    assert_eq!(r.until_end().await.len(), 1);
    // 3. Shutdown ends the last one with a terminating chunk.
    let mut r = StreamReader::open(&rt, addr, "/shutdown", None).await;
    r.next().await.unwrap();
    wait_for(&rt, || fired.load(Ordering::SeqCst) == 101).await;
    shutdown.trigger();
    assert!(r.until_end().await.is_empty());
    assert!(r.body.is_done(), "shutdown ends streams with the terminating chunk");
    wait_for(&rt, || fired.load(Ordering::SeqCst) == 10_101).await;
    sleep(&rt, 100).await;
    assert_eq!(fired.load(Ordering::SeqCst), 10_101, "each callback exactly once");
    wait_for(&rt, || metrics.open_connections() == 0).await;
}

/// Polls `cond` until true (bounded).
pub async fn wait_for<R: Runtime>(rt: &R, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        sleep(rt, 5).await;
    }
}

fn feed_router(feed: &Broadcast) -> Router {
    let publisher = feed.clone();
    let feed = feed.clone();
    Router::new()
        .post("/publish", move |_req, body| {
            let feed = publisher.clone();
            async move { Response::text(feed.publish(Event::new(String::from_utf8_lossy(&body))).unwrap()) }
        })
        .sse("/feed", move |req, sse| {
            let sub = feed.subscribe(req.last_event_id().as_deref());
            async move {
                let _ = sse.forward(sub).await;
            }
        })
}

pub async fn resumes_through_random_cuts_without_gap_or_duplicate<R: Runtime>(rt: R) {
    let feed = Broadcast::new(BroadcastConfig::default());
    let (addr, shutdown, _) = start(&rt, feed_router(&feed), ServerOptions::default()).await;
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
    let mut config = BroadcastConfig::default();
    config.replay.max_events = 5;
    let feed = Broadcast::new(config);
    let (addr, shutdown, _) = start(&rt, feed_router(&feed), ServerOptions::default()).await;
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
    let config = BroadcastConfig { capacity: 1024, ..BroadcastConfig::default() };
    let feed = Broadcast::new(config);
    let options = ServerOptions { write_timeout: Duration::from_secs(2), ..Default::default() };
    let (addr, shutdown, _) = start(&rt, feed_router(&feed), options).await;
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
    let router = Router::new().sse("/s", |_req, sse| async move {
        let _ = sse.send(Event::new("first")).await;
        sse.closed().await;
    });
    let server = Server::new(rt.clone(), router);
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
    shutdown.trigger();
    for r in &mut readers {
        assert!(r.until_end().await.is_empty());
        assert!(r.body.is_done(), "terminating chunk");
    }
    sse_io::timeout(&rt, Duration::from_secs(10), done_rx.recv()).await.expect("run returns").unwrap();
    assert_eq!(metrics.open_connections(), 0);
    // No longer accepting.
    assert!(
        rt.connect(addr).await.is_err()
            || raw_request(&rt, addr, b"GET /s HTTP/1.1\r\n\r\n").await.is_empty()
    );
}

pub async fn bad_requests_get_their_status<R: Runtime>(rt: R) {
    let options =
        ServerOptions { max_head_len: 1024, head_timeout: Duration::from_millis(500), ..Default::default() };
    let router = Router::new().sse("/s", |_req, sse| async move { sse.closed().await });
    let (addr, shutdown, _) = start(&rt, router, options).await;
    let cases: [(&[u8], &str); 4] = [
        (b"GET /s HTTP/1.1\r\nBad header\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET /nowhere HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"DELETE /s HTTP/1.1\r\n\r\n", "HTTP/1.1 405 "),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "HTTP/1.1 400 "),
    ];
    for (request, status) in cases {
        let response = raw_request(&rt, addr, request).await;
        assert!(response.starts_with(status), "{request:?} got {response:?}");
    }
    let mut big = b"GET /s HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4096));
    assert!(raw_request(&rt, addr, &big).await.starts_with("HTTP/1.1 431 "));
    // 405 names what is allowed.
    assert!(raw_request(&rt, addr, b"POST /s HTTP/1.1\r\n\r\n").await.contains("Allow: GET\r\n"));
    // A client that never finishes its head is dropped at the head timeout.
    let mut slow = rt.connect(addr).await.unwrap();
    slow.write_all(b"GET /s HTT").await.unwrap();
    let mut out = Vec::new();
    let read = sse_io::timeout(&rt, Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(read.is_some(), "dropped within the head timeout");
    shutdown.trigger();
}

pub async fn connection_limit_answers_503<R: Runtime>(rt: R) {
    let options = ServerOptions { max_connections: 2, ..Default::default() };
    let router = Router::new().sse("/s", |_req, sse| async move { sse.closed().await });
    let (addr, shutdown, metrics) = start(&rt, router, options).await;
    let _a = StreamReader::open(&rt, addr, "/s", None).await;
    let _b = StreamReader::open(&rt, addr, "/s", None).await;
    wait_for(&rt, || metrics.open_connections() == 2).await;
    assert!(raw_request(&rt, addr, b"GET /s HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 503 "));
    shutdown.trigger();
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

pub async fn ten_thousand_sequential_connections_leak_nothing<R: Runtime>(rt: R) {
    let router = Router::new().sse("/s", |_req, sse| async move {
        let _ = sse.send(Event::new("one")).await;
        sse.close();
    });
    let (addr, shutdown, metrics) = start(&rt, router, ServerOptions::default()).await;
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
    use sse_io::{ClientConfig, ClientEvent, EventSource};
    let feed = Broadcast::new(BroadcastConfig::default());
    let streams = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (f, st) = (feed.clone(), streams.clone());
    let router = Router::new().sse("/feed", move |req, sse| {
        let sub = f.subscribe(req.last_event_id().as_deref());
        st.lock().unwrap().push((req.last_event_id(), sse.clone()));
        async move {
            let _ = sse.forward(sub).await;
        }
    });
    let options = ServerOptions {
        stream: sse_io::proto::ServerConfig::default().retry(Duration::from_millis(50)),
        ..Default::default()
    };
    let (addr, shutdown, _) = start(&rt, router, options).await;
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
    for i in 4..=5 {
        feed.publish(Event::new(format!("e{i}"))).unwrap();
    }
    let mut errors = 0;
    while data.len() < 5 {
        match source.next().await.expect("still open") {
            ClientEvent::Message(m) => data.push(m.data().to_owned()),
            ClientEvent::Error { .. } => errors += 1,
            ClientEvent::Open => {}
        }
    }
    assert_eq!(data, ["e1", "e2", "e3", "e4", "e5"]);
    assert_eq!(errors, 1);
    assert_eq!(source.last_event_id(), "5");
    assert_eq!(streams.lock().unwrap()[1].0.as_deref(), Some("3"), "resumed with Last-Event-ID");
    source.close();
    assert_eq!(source.next().await, None);
    shutdown.trigger();
}

/// Instantiates the suite for a runtime: `runtime_suite!(Smol, smol::block_on);`
#[macro_export]
macro_rules! runtime_suite {
    ($rt:expr, $block_on:path) => {
        $crate::runtime_suite!(@tests $rt, $block_on,
            exact_response_head,
            named_events_and_json,
            keep_alive_only_when_idle,
            on_close_fires_once_for_every_ending,
            resumes_through_random_cuts_without_gap_or_duplicate,
            eviction_sends_a_reset_event,
            a_stalled_subscriber_slows_no_one,
            shutdown_drains_and_run_returns,
            bad_requests_get_their_status,
            connection_limit_answers_503,
            ten_thousand_sequential_connections_leak_nothing,
            event_source_client_reconnects_and_resumes
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
