//! Timing behaviours of the server on a fake clock: keep-alive comments, the
//! retry hint, the head and write timeouts, shutdown, and a client leaving.
//!
//! Each test serves a connection with `Server::serve_connection` over an
//! in-memory pipe inside a deterministic simulation (`support`), and talks
//! raw HTTP on the client end. The clock only moves when nothing can run,
//! so the instants asserted are exact virtual times, and nothing sleeps.

mod support;

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sse_io::{Ctx, Event, Response, Router, Runtime, SendError, Server, ServerBuilder, StreamConfig};
use support::{DEFAULT_CAPACITY, End, FakeRuntime, JoinHandle, Marks, Sim, pipe};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A request for `path` that keeps the connection open.
fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: sim\r\nAccept: text/event-stream\r\n\r\n").into_bytes()
}

/// A server of `router` on the simulation's clock, with `limits`.
fn server(
    rt: &FakeRuntime,
    router: Router<FakeRuntime>,
    limits: impl FnOnce(ServerBuilder<FakeRuntime>) -> ServerBuilder<FakeRuntime>,
) -> Server<FakeRuntime> {
    limits(Server::builder(rt.clone()).router(router)).build().expect("a valid router")
}

/// Serves the connection on `end` on a task of its own.
fn serve(rt: &FakeRuntime, server: &Server<FakeRuntime>, end: End) -> JoinHandle<()> {
    let server = server.clone();
    rt.spawn_task(async move { server.serve_connection(end).await })
}

/// A route `/events` whose handler starts a stream, sends `hello` at
/// `hello_at`, and then waits for the stream to end.
fn hello_then_idle(rt: &FakeRuntime, hello_at: Duration, config: StreamConfig) -> Router<FakeRuntime> {
    Router::with_state(rt.clone())
        .get("/events", move |ctx: Ctx<FakeRuntime>| async move {
            let sse = ctx.sse();
            ctx.state().sleep(hello_at).await;
            sse.send(Event::new("hello")).await?;
            sse.closed().await;
            Ok::<(), SendError>(())
        })
        .route_stream_config("/events", config)
}

#[test]
fn keep_alive_comment_after_the_interval_only_when_idle() {
    let sim = Sim::new();
    let rt = sim.rt();
    let config = StreamConfig::default().keep_alive(Some(secs(15)));
    let server = server(&rt, hello_then_idle(&rt, secs(10), config), |b| b);
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(&get("/events")).await.unwrap();

        rt.sleep(secs(45)).await;
        let response = received.chunked();
        assert!(response.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", response.head);
        assert_eq!(response.head_at, secs(0));
        // The event at 10 s pushes the first comment from 15 s to 25 s;
        // after that, one every 15 s of silence.
        let expected =
            [(secs(10), "data: hello\n\n"), (secs(25), ": keep-alive\n"), (secs(40), ": keep-alive\n")];
        let expected: Vec<_> = expected.iter().map(|(at, text)| (*at, text.to_string())).collect();
        assert_eq!(response.chunks, expected);
        assert!(!conn.is_finished(), "the stream is still open");
        drop(tx);
    });
}

#[test]
fn keep_alive_off_sends_nothing() {
    let sim = Sim::new();
    let rt = sim.rt();
    let config = StreamConfig::default().keep_alive(None);
    let router = Router::with_state(rt.clone())
        .get("/events", |ctx: Ctx<FakeRuntime>| async move {
            let sse = ctx.sse();
            sse.closed().await;
        })
        .route_stream_config("/events", config);
    let server = server(&rt, router, |b| b);
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(&get("/events")).await.unwrap();

        rt.sleep(secs(10 * 60)).await;
        let response = received.chunked();
        assert!(response.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", response.head);
        assert_eq!(response.chunks, vec![], "nothing but the head in 10 minutes");
        assert_eq!(received.bytes().len(), response.head.len());
        assert!(!conn.is_finished(), "the stream is still open");
        // No timer was left armed by the idle stream.
        assert_eq!(rt.pending_timers(), 0);
        drop(tx);
    });
}

#[test]
fn retry_hint_goes_first() {
    let sim = Sim::new();
    let rt = sim.rt();
    let config = StreamConfig::default().retry(secs(2));
    let server = server(&rt, hello_then_idle(&rt, secs(0), config), |b| b);
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let _conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(&get("/events")).await.unwrap();

        rt.sleep(secs(1)).await;
        let response = received.chunked();
        let expected =
            vec![(secs(0), "retry: 2000\n\n".to_string()), (secs(0), "data: hello\n\n".to_string())];
        assert_eq!(response.chunks, expected);
        drop(tx);
    });
}

/// A route that answers plainly (for the head timeout tests, where no
/// handler should run).
fn plain_router(rt: &FakeRuntime) -> Router<FakeRuntime> {
    Router::with_state(rt.clone()).get("/plain", |ctx: Ctx<FakeRuntime>| async move {
        ctx.state().sleep(secs(2)).await;
        Response::ok_text("ok\n")
    })
}

#[test]
fn half_a_head_at_the_head_timeout_gets_408() {
    let sim = Sim::new();
    let rt = sim.rt();
    let server = server(&rt, plain_router(&rt), |b| b.head_timeout(secs(10)));
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(b"GET /plain HTTP/1.1\r\nHost: sim\r\n").await.unwrap();
        // More of the head later does not move the deadline: the whole head
        // is due 10 s after the connection began waiting for it.
        rt.sleep(secs(4)).await;
        tx.write_all(b"Accept: text/plain\r\n").await.unwrap();

        let eof_at = received.eof().await;
        assert_eq!(eof_at, secs(10));
        assert_eq!(received.arrival_of(1), Some(secs(10)), "nothing arrived before the deadline");
        let text = received.text();
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        conn.await;
        assert_eq!(rt.elapsed(), secs(10));
        drop(tx);
    });
}

#[test]
fn an_idle_connection_closes_silently_at_the_head_timeout() {
    let sim = Sim::new();
    let rt = sim.rt();
    let server = server(&rt, plain_router(&rt), |b| b.head_timeout(secs(10)));
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, tx) = client.split();
        let received = rt.record(rx);

        let eof_at = received.eof().await;
        assert_eq!(eof_at, secs(10));
        assert_eq!(received.bytes(), b"", "an idle connection closes without a response");
        assert_eq!(received.error(), None, "a clean end of input");
        conn.await;
        assert_eq!(rt.elapsed(), secs(10));
        drop(tx);
    });
}

#[test]
fn plain_keep_alive_connection_waits_for_the_next_request_until_the_head_timeout() {
    let sim = Sim::new();
    let rt = sim.rt();
    let server = server(&rt, plain_router(&rt), |b| b.head_timeout(secs(10)));
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);

        tx.write_all(&get("/plain")).await.unwrap();
        // The handler takes 2 s.
        assert_eq!(received.until_contains("\r\n\r\nok\n").await, secs(2));
        assert!(!received.text().contains("Connection: close"), "{}", received.text());
        // The next request may come up to 10 s after the answer: at 11 s,
        // one second before that deadline, it is still served.
        rt.sleep_until(rt.start() + secs(11)).await;
        tx.write_all(&get("/plain")).await.unwrap();
        let eof_at = received.eof().await;
        let text = received.text();
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
        assert_eq!(received.arrival_of(text.len()), Some(secs(13)), "the second answer after 2 s");
        // Then 10 s more of silence closes the connection.
        assert_eq!(eof_at, secs(23));
        conn.await;
        assert_eq!(rt.elapsed(), secs(23));
        drop(tx);
    });
}

#[test]
fn a_client_that_stops_reading_is_dropped_at_the_write_timeout() {
    let sim = Sim::new();
    let rt = sim.rt();
    let (closed, handler_dropped) = (Marks::new(&rt), Marks::new(&rt));
    let (on_close, dropped) = (closed.clone(), handler_dropped.clone());
    let router = Router::with_state(rt.clone()).get("/events", move |ctx: Ctx<FakeRuntime>| {
        let (on_close, guard) = (on_close.clone(), dropped.on_drop());
        async move {
            let _guard = guard;
            let sse = ctx.sse();
            sse.on_close(move || on_close.hit());
            // 2 000-byte events, one a second: the 4 KiB pipe holds the head
            // and the first, and fills with the second, at 1 s.
            let data = "x".repeat(2000);
            while sse.send(Event::new(data.as_str())).await.is_ok() {
                ctx.state().sleep(secs(1)).await;
            }
        }
    });
    let server = server(&rt, router, |b| b.write_timeout(secs(30)));
    sim.run(async {
        let (mut client, server_end) = rt.pipe(4096);
        let conn = serve(&rt, &server, server_end);
        client.write_all(&get("/events")).await.unwrap();

        // The client never reads.
        conn.await;
        assert_eq!(client.inbound_full_since(), Some(secs(1)));
        assert_eq!(rt.elapsed(), secs(31), "dropped 30 s after the last byte the client accepted");
        assert_eq!(closed.times(), vec![secs(31)], "on_close ran once, then");
        assert_eq!(handler_dropped.times(), vec![secs(31)], "the handler's future was dropped");
        assert_eq!(client.inbound_buffered(), 4096, "the client was never sent more than it took");
        drop(client);
    });
}

#[test]
fn shutdown_ends_streams_and_closes_idle_connections() {
    let sim = Sim::new();
    let rt = sim.rt();
    let closed = Marks::new(&rt);
    let on_close = closed.clone();
    let router = Router::with_state(rt.clone()).get("/events", move |ctx: Ctx<FakeRuntime>| {
        let on_close = on_close.clone();
        async move {
            let sse = ctx.sse();
            sse.on_close(move || on_close.hit());
            sse.send(Event::new("hello")).await?;
            sse.closed().await;
            Ok::<(), SendError>(())
        }
    });
    let server = server(&rt, router, |b| b);
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let stream_conn = serve(&rt, &server, server_end);
        let (rx, mut stream_tx) = client.split();
        let stream = rt.record(rx);
        stream_tx.write_all(&get("/events")).await.unwrap();
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let idle_conn = serve(&rt, &server, server_end);
        let (rx, idle_tx) = client.split();
        let idle = rt.record(rx);

        rt.sleep(secs(5)).await;
        server.shutdown_handle().trigger();
        stream_conn.await;
        idle_conn.await;
        assert_eq!(rt.elapsed(), secs(5), "every connection ended at once");

        // The stream ends with its terminating chunk, and nothing after it.
        let response = stream.chunked();
        assert_eq!(response.chunks, vec![(secs(0), "data: hello\n\n".to_string())]);
        assert_eq!(response.last_chunk_at, Some(secs(5)));
        assert_eq!(response.after_last_chunk, 0);
        assert_eq!(stream.eof().await, secs(5));
        assert_eq!(closed.times(), vec![secs(5)], "on_close ran once, at the shutdown");

        // The idle connection closes without a word.
        assert_eq!(idle.bytes(), b"");
        assert_eq!(idle.eof().await, secs(5));
        drop((stream_tx, idle_tx));
    });
}

#[test]
fn shutdown_answers_a_handler_still_deciding_with_503() {
    let sim = Sim::new();
    let rt = sim.rt();
    let handler_dropped = Marks::new(&rt);
    let dropped = handler_dropped.clone();
    let router = Router::with_state(rt.clone()).get("/slow", move |ctx: Ctx<FakeRuntime>| {
        let guard = dropped.on_drop();
        async move {
            let _guard = guard;
            // Still deciding when the shutdown comes.
            ctx.state().sleep(secs(60)).await;
            let _sse = ctx.sse();
        }
    });
    let server = server(&rt, router, |b| b);
    sim.run(async {
        let (client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(&get("/slow")).await.unwrap();

        rt.sleep(secs(5)).await;
        server.shutdown_handle().trigger();
        conn.await;
        assert_eq!(rt.elapsed(), secs(5));
        let text = received.text();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text}");
        assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert_eq!(received.arrival_of(1), Some(secs(5)));
        assert_eq!(received.eof().await, secs(5));
        assert_eq!(handler_dropped.times(), vec![secs(5)], "the handler's future was dropped");
        drop(tx);
    });
}

#[test]
fn the_handler_future_is_dropped_when_the_client_leaves() {
    let sim = Sim::new();
    let rt = sim.rt();
    let (closed, handler_dropped) = (Marks::new(&rt), Marks::new(&rt));
    let (on_close, dropped) = (closed.clone(), handler_dropped.clone());
    let router = Router::with_state(rt.clone()).get("/events", move |ctx: Ctx<FakeRuntime>| {
        let (on_close, guard) = (on_close.clone(), dropped.on_drop());
        async move {
            let _guard = guard;
            let sse = ctx.sse();
            sse.on_close(move || on_close.hit());
            sse.send(Event::new("hello")).await?;
            // Busy with something long when the client leaves.
            ctx.state().sleep(secs(30 * 60)).await;
            Ok::<(), SendError>(())
        }
    });
    let server = server(&rt, router, |b| b);
    sim.run(async {
        let (mut client, server_end) = pipe(DEFAULT_CAPACITY);
        let conn = serve(&rt, &server, server_end);
        client.write_all(&get("/events")).await.unwrap();
        let mut received = Vec::new();
        while !received.ends_with(b"data: hello\n\n\r\n") {
            let mut chunk = [0u8; 1024];
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the stream ended early: {:?}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&chunk[..n]);
        }

        rt.sleep(secs(7)).await;
        drop(client);
        conn.await;
        assert_eq!(rt.elapsed(), secs(7), "the server noticed at once");
        assert_eq!(handler_dropped.times(), vec![secs(7)]);
        assert_eq!(closed.times(), vec![secs(7)]);
        // And never again.
        rt.sleep(secs(60)).await;
        assert_eq!(closed.times(), vec![secs(7)]);
        assert_eq!(rt.pending_timers(), 0, "the handler's 30-minute sleep went with it");
    });
}

/// A route `/events` that streams a 2 000-byte event every second until the
/// stream ends; `on_close` marks when it did.
fn firehose(rt: &FakeRuntime, closed: &Marks) -> Router<FakeRuntime> {
    let closed = closed.clone();
    Router::with_state(rt.clone()).get("/events", move |ctx: Ctx<FakeRuntime>| {
        let closed = closed.clone();
        async move {
            let sse = ctx.sse();
            sse.on_close(move || closed.hit());
            let data = "x".repeat(2000);
            while sse.send(Event::new(data.as_str())).await.is_ok() {
                ctx.state().sleep(secs(1)).await;
            }
        }
    })
}

#[test]
fn shutdown_returns_as_soon_as_every_connection_ended() {
    let sim = Sim::new();
    let rt = sim.rt();
    let closed = Marks::new(&rt);
    let server = server(&rt, firehose(&rt, &closed), |b| b.drain_timeout(secs(5)));
    sim.run(async {
        let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (addr, shutdown, metrics) = (bound.local_addr(), bound.shutdown_handle(), bound.metrics());
        let run = rt.spawn_task(bound.run());
        let client = rt.connect(addr).await.unwrap();
        let (rx, mut tx) = client.split();
        let received = rt.record(rx);
        tx.write_all(&get("/events")).await.unwrap();

        // Between two events, so that which of the two comes first at one
        // instant is not in question.
        rt.sleep(Duration::from_millis(2500)).await;
        assert_eq!(metrics.open_connections(), 1);
        shutdown.trigger();
        run.await.unwrap();
        let at = Duration::from_millis(2500);
        assert_eq!(rt.elapsed(), at, "no wait for the drain timeout when nothing is left");
        assert_eq!(metrics.open_connections(), 0);
        assert_eq!(closed.times(), vec![at]);
        let response = received.chunked();
        let times: Vec<Duration> = response.chunks.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, vec![secs(0), secs(1), secs(2)]);
        assert_eq!(response.last_chunk_at, Some(at));
        assert!(rt.connect(addr).await.is_err(), "the listener is closed");
        drop(tx);
    });
}

#[test]
fn shutdown_stops_waiting_for_a_stuck_connection_at_the_drain_timeout() {
    let sim = Sim::new();
    let rt = sim.rt();
    let closed = Marks::new(&rt);
    let server = server(&rt, firehose(&rt, &closed), |b| b.drain_timeout(secs(5)).write_timeout(secs(30)));
    sim.run(async {
        let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (addr, shutdown, metrics) = (bound.local_addr(), bound.shutdown_handle(), bound.metrics());
        let run = rt.spawn_task(bound.run());
        // A client that never reads: its 4 KiB fill at 1 s (the head and
        // two events), so the terminating chunk cannot be written.
        rt.set_connect_capacity(4096);
        let mut client = rt.connect(addr).await.unwrap();
        client.write_all(&get("/events")).await.unwrap();

        rt.sleep(secs(3)).await;
        shutdown.trigger();
        run.await.unwrap();
        assert_eq!(rt.elapsed(), secs(8), "the drain timeout after the shutdown");
        assert_eq!(metrics.open_connections(), 1, "the stuck connection is still open");
        assert_eq!(closed.times(), vec![], "and its stream has not ended");

        // It ends at its own write timeout, 30 s after the pipe filled.
        rt.sleep_until(rt.start() + secs(40)).await;
        assert_eq!(client.inbound_full_since(), Some(secs(1)));
        assert_eq!(closed.times(), vec![secs(31)]);
        assert_eq!(metrics.open_connections(), 0);
        drop(client);
    });
}
