//! The `EventSource` over the simulation's in-memory network and fake
//! clock: behaviours the LaunchDarkly contract suite checks, with a raw
//! server that writes exactly the chunks a test asks for.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sse_io::{ClientConfig, ClientEvent, EventSource, Runtime};
use support::{End, FakeRuntime, Sim};

const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// Accepts one connection and reads its request head.
async fn accept(rt: &FakeRuntime, listener: &support::Listener) -> (End, String) {
    let (mut conn, _) = rt.accept(listener).await.expect("a connection");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).await.expect("the request head");
        head.push(byte[0]);
    }
    (conn, String::from_utf8(head).expect("UTF-8 head"))
}

async fn listen(rt: &FakeRuntime) -> (support::Listener, SocketAddr) {
    let listener = rt.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = rt.local_addr(&listener).unwrap();
    (listener, addr)
}

async fn message(source: &mut EventSource<FakeRuntime>) -> sse_io::proto::MessageEvent {
    loop {
        match source.next().await.expect("open") {
            ClientEvent::Message(m) => return m,
            ClientEvent::Open => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn large_single_line_events_pass_with_the_default_limits() {
    let sim = Sim::new();
    let rt = sim.rt();
    rt.set_connect_capacity(1 << 20);
    sim.run(async {
        let (listener, addr) = listen(&rt).await;
        let a: String = (0..7 * 1000 * 1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let b: String = a.chars().rev().collect();
        let server = rt.spawn_task({
            let (rt, a, b) = (rt.clone(), a.clone(), b.clone());
            async move {
                let (mut conn, _) = accept(&rt, &listener).await;
                conn.write_all(OK_HEAD).await.unwrap();
                // ~7 MB on one line, in one write.
                conn.write_all(format!("data: {a}\n\n").as_bytes()).await.unwrap();
                // ~14 MB on one line, in two writes.
                conn.write_all(format!("data: {a}").as_bytes()).await.unwrap();
                conn.write_all(format!("{b}\n\n").as_bytes()).await.unwrap();
                conn
            }
        });
        let config = ClientConfig::new(&format!("http://{addr}/")).unwrap();
        let mut source = EventSource::new(rt.clone(), config).unwrap();
        assert!(message(&mut source).await.data() == a, "the 7 MB event");
        let second = message(&mut source).await;
        assert_eq!(second.data().len(), a.len() + b.len());
        assert!(second.data().starts_with(&a[..100]) && second.data().ends_with(&b[b.len() - 100..]));
        drop(server.await);
    });
}

#[test]
fn comments_come_in_order_with_events_when_asked_for() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        let (listener, addr) = listen(&rt).await;
        let _server = rt.spawn_task({
            let rt = rt.clone();
            async move {
                let (mut conn, _) = accept(&rt, &listener).await;
                conn.write_all(OK_HEAD).await.unwrap();
                conn.write_all(b":Hello\n").await.unwrap();
                conn.write_all(b"data: Hello\n\n: World\n").await.unwrap();
                futures_lite::future::pending::<()>().await;
            }
        });
        let config = ClientConfig::new(&format!("http://{addr}/")).unwrap().comments(true);
        let mut source = EventSource::new(rt.clone(), config).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match source.next().await.expect("open") {
                ClientEvent::Comment(c) => seen.push(format!("comment {c}")),
                ClientEvent::Message(m) => seen.push(format!("message {}", m.data())),
                _ => {}
            }
        }
        assert_eq!(seen, ["comment Hello", "message Hello", "comment World"]);
    });
}

#[test]
fn restart_while_a_read_waits_reconnects_at_once_with_the_last_event_id() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        let (listener, addr) = listen(&rt).await;
        let server = rt.spawn_task({
            let rt = rt.clone();
            async move {
                let (mut first, head1) = accept(&rt, &listener).await;
                first.write_all(OK_HEAD).await.unwrap();
                first.write_all(b"id: 41\ndata: Hello\n\nid: 42\ndata: half").await.unwrap();
                let (mut second, head2) = accept(&rt, &listener).await;
                let at = rt.elapsed();
                second.write_all(OK_HEAD).await.unwrap();
                second.write_all(b"data: Thanks\n\n").await.unwrap();
                (head1, head2, at)
            }
        });
        // A long reconnection time: only `restart` can bring the second
        // connection this soon.
        let config =
            ClientConfig::new(&format!("http://{addr}/")).unwrap().reconnection_time(Duration::from_secs(60));
        let mut source = EventSource::new(rt.clone(), config).unwrap();
        assert_eq!(message(&mut source).await.data(), "Hello");
        // A `next` is in flight (waiting for bytes) when restart comes.
        let waited = futures_lite::future::or(async { source.next().await }, async {
            rt.sleep(Duration::from_secs(5)).await;
            None
        })
        .await;
        assert_eq!(waited, None, "nothing more on the first stream");
        source.restart();
        let thanks = message(&mut source).await;
        assert_eq!((thanks.data(), thanks.last_event_id()), ("Thanks", "41"));
        let (head1, head2, at) = server.await;
        assert!(!head1.contains("Last-Event-ID"));
        assert!(head2.contains("Last-Event-ID: 41\r\n"), "{head2}");
        assert_eq!(at, Duration::from_secs(5), "reconnected at once, not after the reconnection time");
    });
}
