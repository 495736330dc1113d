//! Fan-out: one publisher, 1,000 subscribers over loopback, against two
//! servers in the same run: sse-smol (`Broadcast`) and axum on tokio
//! (`tokio::sync::broadcast` into `axum::response::sse::Sse`).
//!
//! The clients are the same for both: 1,000 connections on one dedicated
//! client thread, decoding with sse-proto. Two phases per server:
//!
//! - burst: 500 events published back to back; deliveries per second is
//!   500 x 1,000 over the time from the first publish to the last delivery;
//! - paced: 200 events 20 ms apart (50,000 deliveries a second, well below
//!   what either server sustains); publish-to-receive latency p50 and p99
//!   over all 200,000 deliveries.
//!
//! Every client must receive every event of each phase exactly once (checked),
//! so a server that drops events fails instead of looking fast.
//!
//! `cargo bench -p sse-benches --bench fanout` (about 30 s). The servers get
//! two worker threads each (the machine's cores), the clients one.

#![allow(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::stream;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use sse_proto::{BodyDecoder, Decoder, ResponseHead};
use sse_smol::{Broadcast, Ctx, Router, Server, Smol};

const SUBSCRIBERS: usize = 1000;
const BURST: usize = 500;
const PACED: usize = 200;
const PACE: Duration = Duration::from_millis(20);

/// The clock every timestamp is relative to.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn stamp() -> String {
    base().elapsed().as_nanos().to_string()
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    connected: AtomicUsize,
    delivered: AtomicUsize,
    latencies: Mutex<Vec<u64>>,
    last_delivery: Mutex<Option<Instant>>,
}

/// One subscriber: GET, then decode events, recording latency for `paced`
/// events (data `p <nanos>`) and counting all.
async fn subscriber(addr: SocketAddr, tally: Arc<Tally>) {
    let mut stream = smol::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /feed HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("request");
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let (mut body, mut decoder) = loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the head");
        head.extend_from_slice(&buf[..n]);
        if let Some(h) = ResponseHead::parse(&head, 64 * 1024).expect("valid head") {
            assert_eq!(h.status, 200);
            let mut body = BodyDecoder::new(h.framing);
            let mut decoder = Decoder::new();
            body.decode(&head[h.head_len..], |p| decoder.feed(p)).expect("body");
            break (body, decoder);
        }
    };
    tally.connected.fetch_add(1, Ordering::SeqCst);
    loop {
        while let Some(ev) = decoder.poll_event().expect("decodable") {
            let now = base().elapsed().as_nanos() as u64;
            if let Some(ts) = ev.data().strip_prefix("p ") {
                let ts: u64 = ts.parse().expect("timestamp");
                tally.latencies.lock().unwrap().push(now.saturating_sub(ts));
            }
            if ev.data() == "end" {
                return;
            }
            tally.delivered.fetch_add(1, Ordering::Relaxed);
            *tally.last_delivery.lock().unwrap() = Some(Instant::now());
        }
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        body.decode(&buf[..n], |p| decoder.feed(p)).expect("body");
    }
}

/// What a server under test must offer the driver.
trait Publisher: Send + Sync {
    fn publish(&self, data: String);
    fn subscribers(&self) -> usize;
}

struct Ours(Broadcast);

impl Publisher for Ours {
    fn publish(&self, data: String) {
        self.0.publish(sse_proto::Event::new(data)).expect("valid event");
    }
    fn subscribers(&self) -> usize {
        self.0.subscriber_count()
    }
}

struct Axum(tokio::sync::broadcast::Sender<String>);

impl Publisher for Axum {
    fn publish(&self, data: String) {
        let _ = self.0.send(data);
    }
    fn subscribers(&self) -> usize {
        self.0.receiver_count()
    }
}

fn start_ours() -> (SocketAddr, Box<dyn Publisher>) {
    let feed = Broadcast::builder().capacity(4096).build();
    let router = Router::with_state(feed.clone()).get("/feed", |ctx: Ctx<Broadcast>| async move {
        let sub = ctx.state().subscribe(None);
        ctx.sse().forward(sub).await
    });
    let server = Server::new(Smol, router).expect("a valid router");
    let bound = smol::block_on(server.bind("127.0.0.1:0".parse().unwrap())).expect("bind");
    let addr = bound.local_addr();
    smol::spawn(bound.run()).detach();
    (addr, Box::new(Ours(feed)))
}

fn start_axum() -> (SocketAddr, Box<dyn Publisher>) {
    use axum::response::sse::{Event, Sse};
    let (tx, _) = tokio::sync::broadcast::channel::<String>(4096);
    let t = tx.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/feed",
                axum::routing::get(move || {
                    let rx = t.subscribe();
                    async move {
                        let events = stream::unfold(rx, |mut rx| async move {
                            loop {
                                match rx.recv().await {
                                    Ok(data) => {
                                        return Some((Ok::<_, Infallible>(Event::default().data(data)), rx));
                                    }
                                    // A lagged receiver skips; the bench's count check reports it.
                                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                                }
                            }
                        });
                        Sse::new(events)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addr_tx.send(listener.local_addr().expect("addr")).expect("report addr");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    let addr = addr_rx.recv().expect("axum started");
    (addr, Box::new(Axum(tx)))
}

struct Figures {
    deliveries_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs both phases against one server; the clients live on their own thread.
fn measure(name: &str, addr: SocketAddr, server: &dyn Publisher) -> Figures {
    let tally = Arc::new(Tally::default());
    let t = tally.clone();
    let clients = std::thread::spawn(move || {
        let ex = smol::LocalExecutor::new();
        let tasks: Vec<_> = (0..SUBSCRIBERS).map(|_| ex.spawn(subscriber(addr, t.clone()))).collect();
        smol::block_on(ex.run(async {
            for task in tasks {
                task.await;
            }
        }));
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.connected.load(Ordering::SeqCst) < SUBSCRIBERS || server.subscribers() < SUBSCRIBERS {
        assert!(Instant::now() < deadline, "{name}: subscribers did not all connect");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));

    // Burst.
    let start = Instant::now();
    for i in 0..BURST {
        server.publish(format!("b {i}"));
    }
    let want = BURST * SUBSCRIBERS;
    while tally.delivered.load(Ordering::Relaxed) < want {
        assert!(Instant::now() < deadline + Duration::from_secs(60), "{name}: burst not delivered");
        std::thread::sleep(Duration::from_millis(2));
    }
    let last = tally.last_delivery.lock().unwrap().expect("deliveries");
    let deliveries_per_sec = want as f64 / (last - start).as_secs_f64();

    // Paced, for latency.
    for _ in 0..PACED {
        server.publish(format!("p {}", stamp()));
        std::thread::sleep(PACE);
    }
    let want = (BURST + PACED) * SUBSCRIBERS;
    while tally.delivered.load(Ordering::Relaxed) < want {
        assert!(Instant::now() < deadline + Duration::from_secs(120), "{name}: paced events not delivered");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.publish("end".into());
    clients.join().expect("clients");
    assert_eq!(
        tally.delivered.load(Ordering::SeqCst),
        want,
        "{name}: every event to every client exactly once"
    );
    let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap());
    assert_eq!(lat.len(), PACED * SUBSCRIBERS);
    lat.sort_unstable();
    Figures { deliveries_per_sec, p50_us: percentile(&lat, 0.5), p99_us: percentile(&lat, 0.99) }
}

fn main() {
    // Two executor threads for our server, as tokio gets two workers.
    // SAFETY: single-threaded here, before any thread or executor starts.
    unsafe { std::env::set_var("SMOL_THREADS", "2") };
    base();
    let (ours_addr, ours) = start_ours();
    let (axum_addr, axum) = start_axum();
    let a = measure("axum", axum_addr, axum.as_ref());
    let o = measure("sse-smol", ours_addr, ours.as_ref());
    println!("fan-out: {SUBSCRIBERS} subscribers over loopback, burst of {BURST}, {PACED} paced events");
    println!("| server | deliveries/s (burst) | latency p50 | latency p99 |");
    println!("|---|---|---|---|");
    for (name, f) in [("sse-smol (Broadcast)", &o), ("axum 0.8 + tokio broadcast", &a)] {
        println!("| {name} | {:.0} | {:.0} µs | {:.0} µs |", f.deliveries_per_sec, f.p50_us, f.p99_us);
    }
    println!(
        "ratio sse-smol / axum: deliveries {:.2}x, p50 latency {:.2}x lower, p99 latency {:.2}x lower",
        o.deliveries_per_sec / a.deliveries_per_sec,
        a.p50_us / o.p50_us,
        a.p99_us / o.p99_us
    );
}
