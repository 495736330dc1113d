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
//! The streams are read on one thread (tokio, current-thread); the
//! publisher runs on a thread of its own.
//!
//! `--servers` also takes `redis` (the feed example with `--redis`, on a
//! `redis-server` the benchmark starts on a free loopback port) and
//! `redis-2nodes` (two such feed processes on that Redis: the streams on
//! one, the publisher on the other, so latencies cross nodes).

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
    /// Burst latencies from when the burst began (its events were all due
    /// then): a server that answers publishes slowly delays the later
    /// publishes, and latency from each publish leaves that wait out
    /// ("coordinated omission").
    burst_due: Mutex<Vec<u64>>,
    /// When the last stream received its last event (ns since `base`).
    last: AtomicU64,
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
    let mut latencies = (Vec::new(), Vec::new(), Vec::new());
    // When the bytes in hand arrived: every event they hold was received
    // then (stamping each after decoding the ones before would count the
    // load generator's own work as latency).
    let mut now = stamp(base);
    while next < total {
        body.decode(&pending, |piece| decoder.feed(piece)).expect("valid framing");
        while let Some(event) = decoder.poll_event().expect("valid events") {
            let mut parts = event.data().split(' ');
            let seq: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
            let sent: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let due: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(sent);
            if seq != next {
                return fail(format!("expected event {next}, got {seq}"));
            }
            let latency = now.saturating_sub(sent);
            if seq < paced {
                latencies.0.push(latency)
            } else {
                latencies.1.push(latency);
                latencies.2.push(now.saturating_sub(due));
            }
            next += 1;
            tally.delivered.fetch_add(1, Ordering::Relaxed);
        }
        if next == total {
            break;
        }
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        now = stamp(base);
        if n == 0 {
            return fail(format!("closed after {next} events"));
        }
        pending.clear();
        pending.extend_from_slice(&chunk[..n]);
    }
    tally.last.fetch_max(stamp(base), Ordering::Relaxed);
    tally.paced.lock().unwrap().extend(latencies.0);
    tally.burst.lock().unwrap().extend(latencies.1);
    tally.burst_due.lock().unwrap().extend(latencies.2);
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
    /// Burst p50 from when the burst began.
    burst_due_p50: f64,
    /// p50 over every delivery, paced and burst together.
    all_p50: f64,
    /// From the first burst publish to the last delivery, in ms: how long
    /// the whole burst took to reach everyone. (Latencies are measured from
    /// each event's publish, so a server that answers publishes slowly
    /// delays the next publish and looks faster per event; this does not.)
    burst_done: f64,
    /// From the first burst publish to the last publish's answer, in ms.
    burst_published: f64,
    threads: usize,
    /// From the server's `/metrics`, where it reports its writes.
    writes_per_delivery: Option<f64>,
}

fn percentile_ms(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1e6
}

/// The processes of one server under test: where streams connect, where
/// events are published, and the process whose resources are measured.
struct Deployment {
    children: Vec<Child>,
    stream_port: u16,
    publish_port: u16,
    /// The node the streams are on.
    pid: u32,
}

/// The servers end with the run, whatever ends it.
impl Drop for Deployment {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(program: &str, args: &[&str]) -> Child {
    let dir = std::env::current_exe().expect("own path").parent().expect("examples dir").to_owned();
    Command::new(dir.join(program)).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
        panic!("starting {program} ({e}): build it first: cargo build --release -p sse-smol --example feed -p sse-benches --example axum_feed")
    })
}

/// Starts `name`: `ours` (the feed example), `axum`, `redis` (the feed
/// example keeping its topics in Redis) or `redis-2nodes` (two of those on
/// one Redis: streams on one, publishing on the other).
fn start(name: &str, port: u16, streams: usize, redis: Option<&str>) -> Deployment {
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let max = (streams + 100).to_string();
    let feed = |port: u16, redis: Option<&str>| {
        let a = addr(port);
        let mut args = vec!["--addr", a.as_str(), "--max-connections", max.as_str()];
        if let Some(url) = redis {
            args.extend(["--redis", url]);
        }
        spawn("feed", &args)
    };
    let need_redis = || redis.expect("a Redis server for the redis kinds");
    match name {
        "ours" => {
            let child = feed(port, None);
            Deployment { pid: child.id(), children: vec![child], stream_port: port, publish_port: port }
        }
        "axum" => {
            let child = spawn("axum_feed", &["--addr", &addr(port)]);
            Deployment { pid: child.id(), children: vec![child], stream_port: port, publish_port: port }
        }
        "redis" => {
            let child = feed(port, Some(need_redis()));
            Deployment { pid: child.id(), children: vec![child], stream_port: port, publish_port: port }
        }
        "redis-2nodes" => {
            let streams_node = feed(port, Some(need_redis()));
            let publish_node = feed(port + 50, Some(need_redis()));
            Deployment {
                pid: streams_node.id(),
                children: vec![streams_node, publish_node],
                stream_port: port,
                publish_port: port + 50,
            }
        }
        other => panic!("unknown server {other}"),
    }
}

/// A `redis-server` of this benchmark's own, on a free loopback port, with
/// no persistence; killed when dropped.
struct Redis {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let dir = std::env::temp_dir().join(format!("sse-scale-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, url: format!("redis://127.0.0.1:{port}/"), dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

fn run(name: &str, port: u16, o: &Options, redis: Option<&str>) -> Figures {
    let deployment = match o.external {
        Some((port, pid)) => Deployment { children: Vec::new(), stream_port: port, publish_port: port, pid },
        None => start(name, port, o.streams, redis),
    };
    let (pid, port) = (deployment.pid, deployment.stream_port);
    wait_healthy(deployment.stream_port);
    wait_healthy(deployment.publish_port);
    let server: SocketAddr = ([127, 0, 0, 1], deployment.stream_port).into();
    let publish_to: SocketAddr = ([127, 0, 0, 1], deployment.publish_port).into();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let figures = rt.block_on(async {
        let base = Instant::now();
        let tally = Arc::new(Tally::default());
        let total = o.paced + o.burst;
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
        let (paced, burst) = (o.paced, o.burst);
        // The publisher runs on a thread of its own, so that a publish is
        // not queued behind this thread's reading of thousands of streams:
        // what paces the publishes is then the server's answer.
        let publishing = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
            rt.block_on(async move {
                // Connected now: an idle kept-alive connection would be
                // closed at the server's head timeout while the streams
                // connect.
                let mut publisher = Publisher {
                    conn: TcpStream::connect(publish_to).await.expect("publisher connects"),
                    server: publish_to,
                };
                let mut seq = 0usize;
                for _ in 0..paced {
                    publisher.publish(&format!("{seq} {}", stamp(base))).await;
                    seq += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let burst_start = stamp(base);
                for _ in 0..burst {
                    publisher.publish(&format!("{seq} {} {burst_start}", stamp(base))).await;
                    seq += 1;
                }
                (burst_start, stamp(base).saturating_sub(burst_start) as f64 / 1e6)
            })
        });
        for task in tasks {
            task.await.expect("stream task");
        }
        // Every stream got every event: the publisher is done.
        let (burst_start, burst_published) = publishing.join().expect("the publisher");
        let cpu1 = cpu(pid);
        let writes = scrape(port, "sse_writes_total").zip(writes0).map(|(after, before)| after - before);
        let errors = tally.errors.lock().unwrap();
        assert!(errors.is_empty(), "{name}: {} streams failed, first: {}", errors.len(), errors[0]);
        let deliveries = tally.delivered.load(Ordering::SeqCst);
        assert_eq!(deliveries, (o.streams * total) as u64, "{name}: every event to every stream once");
        let per_m = 1e6 / deliveries as f64;
        let mut paced = std::mem::take(&mut *tally.paced.lock().unwrap());
        let mut burst = std::mem::take(&mut *tally.burst.lock().unwrap());
        let mut burst_due = std::mem::take(&mut *tally.burst_due.lock().unwrap());
        let mut all: Vec<u64> = paced.iter().chain(&burst).copied().collect();
        let burst_done = tally.last.load(Ordering::Relaxed).saturating_sub(burst_start) as f64 / 1e6;
        Figures {
            rss_per_stream: (rss1 as f64 - rss0 as f64) / o.streams as f64,
            user_per_m: (cpu1.0 - cpu0.0) * per_m,
            total_per_m: (cpu1.0 + cpu1.1 - cpu0.0 - cpu0.1) * per_m,
            paced_p50: if paced.is_empty() { 0.0 } else { percentile_ms(&mut paced, 0.5) },
            paced_p99: if paced.is_empty() { 0.0 } else { percentile_ms(&mut paced, 0.99) },
            burst_p50: if burst.is_empty() { 0.0 } else { percentile_ms(&mut burst, 0.5) },
            burst_p99: if burst.is_empty() { 0.0 } else { percentile_ms(&mut burst, 0.99) },
            burst_due_p50: if burst_due.is_empty() { 0.0 } else { percentile_ms(&mut burst_due, 0.5) },
            all_p50: if all.is_empty() { 0.0 } else { percentile_ms(&mut all, 0.5) },
            burst_done,
            burst_published,
            threads: threads(pid),
            writes_per_delivery: writes.map(|w| w as f64 / deliveries as f64),
        }
    });
    drop(deployment);
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
        "| server | threads | RSS per stream | CPU-s per 1M deliveries (user / total) | paced p50 / p99 | burst p50 / p99 | all p50 | burst p50 from its start | burst published in / done in | writes per delivery |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let redis = o.servers.iter().any(|s| s.starts_with("redis")).then(Redis::start);
    let mut results = Vec::new();
    for (i, name) in o.servers.iter().enumerate() {
        let f = run(name, 18_700 + i as u16, &o, redis.as_ref().map(|r| r.url.as_str()));
        let writes = f.writes_per_delivery.map_or("n/a".to_owned(), |w| format!("{w:.2}"));
        println!(
            "| {name} | {} | {:.0} B | {:.2} / {:.2} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} ms | {:.1} ms | {:.0} / {:.0} ms | {writes} |",
            f.threads,
            f.rss_per_stream,
            f.user_per_m,
            f.total_per_m,
            f.paced_p50,
            f.paced_p99,
            f.burst_p50,
            f.burst_p99,
            f.all_p50,
            f.burst_due_p50,
            f.burst_published,
            f.burst_done
        );
        results.push((name.clone(), f));
    }
    let find = |name: &str| results.iter().find(|(n, _)| n == name).map(|(_, f)| f);
    if let (Some(ours), Some(axum)) = (find("ours"), find("axum")) {
        println!(
            "ours / axum: RSS per stream {:.2}x, user CPU {:.2}x, total CPU {:.2}x, paced p50 {:.2}x, burst p50 {:.2}x, all p50 {:.2}x, burst p50 from its start {:.2}x, burst done in {:.2}x",
            ours.rss_per_stream / axum.rss_per_stream,
            ours.user_per_m / axum.user_per_m,
            ours.total_per_m / axum.total_per_m,
            ours.paced_p50 / axum.paced_p50,
            ours.burst_p50 / axum.burst_p50,
            ours.all_p50 / axum.all_p50,
            ours.burst_due_p50 / axum.burst_due_p50,
            ours.burst_done / axum.burst_done
        );
    }
}
