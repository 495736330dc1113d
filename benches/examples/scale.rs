//! The scale benchmark: thousands of concurrent event streams against the
//! `feed` example (sse-smol, as a user runs it) and against the same feed on
//! axum + tokio, in one run, every delivery checked.
//!
//! ```text
//! cargo build --release -p sse-smol --example feed -p sse-benches --example axum_feed --example scale
//! target/release/examples/scale [--streams 19500] [--paced 20] [--burst 200] [--servers ours,axum]
//! ```
//!
//! For each server, in its own process: open N streams (`GET /events/feed`)
//! from 199 loopback source addresses; let them idle and measure the
//! server's resident memory growth per connection; publish `--paced` events
//! 50 ms apart and then `--burst` back to back (`POST /publish`), each event
//! carrying its sequence number and publish time; check that every stream
//! got every event exactly once, in order; report the server's CPU time
//! (user and system, from /proc) per million deliveries and the
//! publish-to-receive latency (p50, p99) of the paced and burst events.
//! The load generator runs on one thread (tokio, current-thread).

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sse_proto::{BodyDecoder, Decoder, ResponseHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Source addresses the streams come from (127.0.0.2 ...).
const SOURCES: u32 = 199;

struct Options {
    streams: usize,
    paced: usize,
    burst: usize,
    servers: Vec<String>,
    /// A server started by hand (`PORT:PID`, to run it under a profiler).
    external: Option<(u16, u32)>,
}

fn options() -> Options {
    let mut o = Options {
        streams: 10_000,
        paced: 20,
        burst: 200,
        servers: vec!["ours".into(), "axum".into()],
        external: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--streams" => o.streams = value().parse().expect("--streams N"),
            "--paced" => o.paced = value().parse().expect("--paced N"),
            "--burst" => o.burst = value().parse().expect("--burst N"),
            "--servers" => o.servers = value().split(',').map(str::to_owned).collect(),
            "--external" => {
                let v = value();
                let (port, pid) = v.split_once(':').expect("--external PORT:PID");
                o.external = Some((port.parse().expect("a port"), pid.parse().expect("a pid")));
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    o
}

/// Nanoseconds since the benchmark started (shared by publisher and
/// receivers, one process).
fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// What the streams saw.
#[derive(Default)]
struct Tally {
    connected: AtomicUsize,
    delivered: AtomicU64,
    /// Publish-to-receive latencies in ns, paced and burst apart.
    paced: Mutex<Vec<u64>>,
    burst: Mutex<Vec<u64>>,
    errors: Mutex<Vec<String>>,
}

/// One stream: connect from `source`, read the head, then check every
/// event (`"<seq> <stamp>"`, seq counting from 0, in order, once).
async fn stream(
    server: SocketAddr,
    source: Ipv4Addr,
    tally: Arc<Tally>,
    base: Instant,
    paced: usize,
    total: usize,
) {
    let fail = |e: String| tally.errors.lock().unwrap().push(e);
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0))).expect("bind a source address");
    let mut conn = match socket.connect(server).await {
        Ok(c) => c,
        Err(e) => return fail(format!("connect: {e}")),
    };
    let request = format!("GET /events/feed HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n");
    if let Err(e) = conn.write_all(request.as_bytes()).await {
        return fail(format!("request: {e}"));
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let head = loop {
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return fail("closed before the head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = ResponseHead::parse(&buf, 64 * 1024).expect("a valid head") {
            break head;
        }
    };
    if head.status != 200 {
        return fail(format!("status {}", head.status));
    }
    tally.connected.fetch_add(1, Ordering::SeqCst);
    let mut body = BodyDecoder::new(head.framing);
    let mut decoder = Decoder::new();
    let mut pending = buf[head.head_len..].to_vec();
    let mut next = 0usize;
    let mut latencies = (Vec::new(), Vec::new());
    while next < total {
        body.decode(&pending, |piece| decoder.feed(piece)).expect("valid framing");
        while let Some(event) = decoder.poll_event().expect("valid events") {
            let now = stamp(base);
            let mut parts = event.data().split(' ');
            let seq: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
            let sent: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if seq != next {
                return fail(format!("expected event {next}, got {seq}"));
            }
            let latency = now.saturating_sub(sent);
            if seq < paced {
                latencies.0.push(latency)
            } else {
                latencies.1.push(latency)
            }
            next += 1;
            tally.delivered.fetch_add(1, Ordering::Relaxed);
        }
        if next == total {
            break;
        }
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return fail(format!("closed after {next} events"));
        }
        pending.clear();
        pending.extend_from_slice(&chunk[..n]);
    }
    tally.paced.lock().unwrap().extend(latencies.0);
    tally.burst.lock().unwrap().extend(latencies.1);
}

/// A kept-alive connection that publishes.
struct Publisher {
    conn: TcpStream,
    server: SocketAddr,
}

impl Publisher {
    async fn publish(&mut self, data: &str) {
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{data}",
            self.server,
            data.len()
        );
        self.conn.write_all(request.as_bytes()).await.expect("publish");
        let mut buf = Vec::new();
        let mut byte = [0u8; 512];
        loop {
            let n = self.conn.read(&mut byte).await.expect("publish answer");
            assert!(n > 0, "the server closed the publishing connection");
            buf.extend_from_slice(&byte[..n]);
            if let Some(head) = ResponseHead::parse(&buf, 8192).expect("a valid head") {
                assert_eq!(head.status, 200, "publish: {}", String::from_utf8_lossy(&buf));
                if let sse_proto::BodyFraming::Length(len) = head.framing
                    && buf.len() >= head.head_len + len as usize
                {
                    return;
                }
            }
        }
    }
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// User and system CPU time of a process, in seconds.
fn cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime / ticks, stime / ticks)
}

struct Figures {
    rss_per_stream: f64,
    user_per_m: f64,
    total_per_m: f64,
    paced_p50: f64,
    paced_p99: f64,
    burst_p50: f64,
    burst_p99: f64,
    threads: usize,
    /// From the server's `/metrics`, where it reports its writes.
    writes_per_delivery: Option<f64>,
}

fn percentile_ms(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1e6
}

fn start(name: &str, port: u16, streams: usize) -> Child {
    let dir = std::env::current_exe().expect("own path").parent().expect("examples dir").to_owned();
    let addr = format!("127.0.0.1:{port}");
    let mut command = match name {
        "ours" => {
            let mut c = Command::new(dir.join("feed"));
            c.args(["--addr", &addr, "--max-connections", &(streams + 100).to_string()]);
            c
        }
        "axum" => {
            let mut c = Command::new(dir.join("axum_feed"));
            c.args(["--addr", &addr]);
            c
        }
        other => panic!("unknown server {other}"),
    };
    command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
        panic!("starting {name} ({e}): build it first: cargo build --release -p sse-smol --example feed -p sse-benches --example axum_feed")
    })
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write as _;
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A counter from the server's `/metrics` (Prometheus text), if it has it.
fn scrape(port: u16, name: &str) -> Option<u64> {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

fn run(name: &str, port: u16, o: &Options) -> Figures {
    let (mut child, port, pid) = match o.external {
        Some((port, pid)) => (None, port, pid),
        None => {
            let child = start(name, port, o.streams);
            let pid = child.id();
            (Some(child), port, pid)
        }
    };
    wait_healthy(port);
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let figures = rt.block_on(async {
        let base = Instant::now();
        let tally = Arc::new(Tally::default());
        let total = o.paced + o.burst;
        let mut publisher =
            Publisher { conn: TcpStream::connect(server).await.expect("publisher connects"), server };
        // Warm the publishing path, then take the baseline.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss0 = rss(pid);
        let mut tasks = Vec::with_capacity(o.streams);
        for i in 0..o.streams {
            let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + (i as u32 % SOURCES));
            tasks.push(tokio::spawn(stream(server, source, tally.clone(), base, o.paced, total)));
            if i % 500 == 499 {
                tokio::task::yield_now().await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while tally.connected.load(Ordering::SeqCst) < o.streams {
            {
                let errors = tally.errors.lock().unwrap();
                assert!(errors.is_empty(), "{name}: {} streams failed, first: {}", errors.len(), errors[0]);
            }
            assert!(Instant::now() < deadline, "{name}: streams did not all connect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Idle: let allocations settle, then measure.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss1 = rss(pid);
        let writes0 = scrape(port, "sse_writes_total");
        let cpu0 = cpu(pid);
        let mut seq = 0usize;
        for _ in 0..o.paced {
            publisher.publish(&format!("{seq} {}", stamp(base))).await;
            seq += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..o.burst {
            publisher.publish(&format!("{seq} {}", stamp(base))).await;
            seq += 1;
        }
        for task in tasks {
            task.await.expect("stream task");
        }
        let cpu1 = cpu(pid);
        let writes = scrape(port, "sse_writes_total").zip(writes0).map(|(after, before)| after - before);
        let errors = tally.errors.lock().unwrap();
        assert!(errors.is_empty(), "{name}: {} streams failed, first: {}", errors.len(), errors[0]);
        let deliveries = tally.delivered.load(Ordering::SeqCst);
        assert_eq!(deliveries, (o.streams * total) as u64, "{name}: every event to every stream once");
        let per_m = 1e6 / deliveries as f64;
        let mut paced = std::mem::take(&mut *tally.paced.lock().unwrap());
        let mut burst = std::mem::take(&mut *tally.burst.lock().unwrap());
        Figures {
            rss_per_stream: (rss1 as f64 - rss0 as f64) / o.streams as f64,
            user_per_m: (cpu1.0 - cpu0.0) * per_m,
            total_per_m: (cpu1.0 + cpu1.1 - cpu0.0 - cpu0.1) * per_m,
            paced_p50: if paced.is_empty() { 0.0 } else { percentile_ms(&mut paced, 0.5) },
            paced_p99: if paced.is_empty() { 0.0 } else { percentile_ms(&mut paced, 0.99) },
            burst_p50: if burst.is_empty() { 0.0 } else { percentile_ms(&mut burst, 0.5) },
            burst_p99: if burst.is_empty() { 0.0 } else { percentile_ms(&mut burst, 0.99) },
            threads: threads(pid),
            writes_per_delivery: writes.map(|w| w as f64 / deliveries as f64),
        }
    });
    if let Some(child) = child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    figures
}

fn main() {
    // Streams, the publisher and the servers' own descriptors: take the
    // hard limit (children inherit it).
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum },
    );
    let o = options();
    println!(
        "scale: {} streams from {SOURCES} loopback addresses, {} paced events (50 ms apart) + {} back to back",
        o.streams, o.paced, o.burst
    );
    println!(
        "| server | threads | RSS per stream | CPU-s per 1M deliveries (user / total) | paced p50 / p99 | burst p50 / p99 | writes per delivery |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for (i, name) in o.servers.iter().enumerate() {
        let f = run(name, 18_700 + i as u16, &o);
        let writes = f.writes_per_delivery.map_or("n/a".to_owned(), |w| format!("{w:.2}"));
        println!(
            "| {name} | {} | {:.0} B | {:.2} / {:.2} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {writes} |",
            f.threads,
            f.rss_per_stream,
            f.user_per_m,
            f.total_per_m,
            f.paced_p50,
            f.paced_p99,
            f.burst_p50,
            f.burst_p99
        );
        results.push((name.clone(), f));
    }
    if let [(_, ours), (_, axum)] = results.as_slice() {
        println!(
            "ours / axum: RSS per stream {:.2}x, user CPU {:.2}x, total CPU {:.2}x, paced p50 {:.2}x, burst p50 {:.2}x",
            ours.rss_per_stream / axum.rss_per_stream,
            ours.user_per_m / axum.user_per_m,
            ours.total_per_m / axum.total_per_m,
            ours.paced_p50 / axum.paced_p50,
            ours.burst_p50 / axum.burst_p50
        );
    }
}
