//! The Redis broker against a real `redis-server` that each test starts on
//! a free loopback port (and stops): two feed-like servers on one Redis,
//! resumes across them through random cuts, eviction, Redis killed and
//! restarted empty mid-stream, FLUSHALL. Skipped with a notice when
//! `redis-server` is not installed, unless `SSE_REQUIRE_EXTERNAL` is set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sse_redis::RedisBroker;
use sse_smol::{
    ClientConfig, ClientEvent, Ctx, Event, EventSource, PublishError, RESET_EVENT, Response, Router, Server,
    Shutdown, Smol, Topics,
};

/// A `redis-server` of the test's own, on 127.0.0.1 in a temporary folder.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts one, or `None` (with a notice) where it is not installed.
    fn start(name: &str) -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("sse-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let mut redis = Redis { port, dir, child: None };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("SSE_REQUIRE_EXTERNAL").is_none(),
                    "redis-server is required (SSE_REQUIRE_EXTERNAL is set) but not installed"
                );
                eprintln!("notice: redis-server is not installed; skipping {name}");
                None
            }
            Err(e) => panic!("redis-server: {e}"),
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server we started (by its PID), losing everything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A server again on the same port, empty.
    fn restart(&mut self) {
        self.kill();
        self.spawn().expect("redis-server restarts");
    }

    fn command(&self, args: &[&str]) {
        let client = redis::Client::open(self.url()).unwrap();
        smol::block_on(async {
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node: the feed example's two routes on a hub over its own broker.
struct Node {
    addr: SocketAddr,
    shutdown: Shutdown,
    topics: Topics,
}

async fn node(redis: &Redis, max_len: usize) -> Node {
    let broker = RedisBroker::builder().max_len(max_len).open(&redis.url()).unwrap();
    let topics = Topics::new(broker);
    let router = Router::with_state(topics.clone())
        .get("/events/feed", |ctx: Ctx<Topics>| async move {
            let topic = ctx.query("topic").unwrap_or_else(|| "feed".into());
            let sub = ctx
                .state()
                .subscribe(&topic, ctx.last_event_id())
                .map_err(|e| Response::new(400).text(e.to_string()))?;
            ctx.sse().forward(sub).await.map_err(Response::from)
        })
        .post("/publish", |ctx: Ctx<Topics>| async move {
            let topic = ctx.query("topic").unwrap_or_else(|| "feed".into());
            let text = ctx.body_text()?;
            match ctx.state().publish(&topic, Event::new(text)).await {
                Ok(id) => Ok(Response::ok_text(id)),
                Err(PublishError::Broker(e)) => Err(Response::new(503).text(e.to_string())),
                Err(e) => Err(Response::new(400).text(e.to_string())),
            }
        });
    let server = Server::builder(Smol).router(router).build().unwrap();
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (addr, shutdown) = (bound.local_addr(), bound.shutdown_handle());
    smol::spawn(async move {
        let _ = bound.run().await;
    })
    .detach();
    Node { addr, shutdown, topics }
}

/// `POST` and the status and body of the answer.
async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = smol::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn source(addr: SocketAddr, topic: &str, last: Option<&str>) -> EventSource<Smol> {
    let mut config = ClientConfig::new(&format!("http://{addr}/events/feed?topic={topic}"))
        .unwrap()
        .reconnection_time(Duration::from_millis(100));
    if let Some(id) = last {
        config = config.last_event_id(id);
    }
    EventSource::new(Smol, config).unwrap()
}

/// The next message (type, id, data), skipping opens; `None` on an error or
/// end of the stream.
async fn next(source: &mut EventSource<Smol>) -> Option<(String, String, String)> {
    loop {
        match source.next().await? {
            ClientEvent::Message(m) => {
                return Some((m.event_type().to_owned(), m.last_event_id().to_owned(), m.data().to_owned()));
            }
            ClientEvent::Open => {}
            other => panic!("the stream did not stay open: {other:?}"),
        }
    }
}

async fn opened(source: &mut EventSource<Smol>) {
    assert_eq!(source.next().await, Some(ClientEvent::Open));
}

fn bounded(test: impl Future<Output = ()>) {
    smol::block_on(async {
        let done = futures_lite::future::or(
            async {
                test.await;
                true
            },
            async {
                smol::Timer::after(Duration::from_secs(90)).await;
                false
            },
        );
        assert!(done.await, "test timed out");
    });
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn two_nodes_are_one_feed_and_a_client_cut_at_random_resumes_on_the_other() {
    let Some(redis) = Redis::start("two-nodes") else { return };
    bounded(async {
        let (a, b) = (node(&redis, 10_000).await, node(&redis, 10_000).await);
        let mut on_a = source(a.addr, "feed", None);
        let mut on_b = source(b.addr, "feed", None);
        let mut other = source(b.addr, "other", None);
        opened(&mut on_a).await;
        opened(&mut on_b).await;
        opened(&mut other).await;
        wait_for("subscribers", || {
            a.topics.subscriber_count("feed") == 1 && b.topics.subscriber_count("feed") == 1
        })
        .await;
        const N: usize = 400;
        let (addr_a, addr_b) = (a.addr, b.addr);
        let publisher = smol::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..N {
                let at = if i % 2 == 0 { addr_a } else { addr_b };
                let (status, id) = post(at, "/publish?topic=feed", &format!("e{i}")).await;
                assert_eq!(status, 200, "{id}");
                ids.push(id);
                if i % 20 == 0 {
                    smol::Timer::after(Duration::from_millis(2)).await;
                }
            }
            ids
        });
        // A client cut at random points, resuming on the other node each
        // time with its last id.
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut cuts = 0;
        let mut last: Option<String> = None;
        while seen.len() < N {
            let at = if cuts % 2 == 0 { b.addr } else { a.addr };
            let mut s = source(at, "feed", last.as_deref());
            opened(&mut s).await;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..1 + x % 40 {
                let (ty, id, data) = next(&mut s).await.expect("open");
                assert_ne!(ty, RESET_EVENT, "no gap while Redis holds everything");
                seen.push((id.clone(), data));
                last = Some(id);
                if seen.len() == N {
                    break;
                }
            }
            cuts += 1;
        }
        let ids = publisher.await;
        let want: Vec<(String, String)> =
            ids.iter().enumerate().map(|(i, id)| (id.clone(), format!("e{i}"))).collect();
        assert_eq!(seen, want, "every event once, in order, with the ids /publish answered");
        assert!(cuts > 10);
        for s in [&mut on_a, &mut on_b] {
            let mut got = Vec::new();
            while got.len() < N {
                let (_, id, data) = next(s).await.unwrap();
                got.push((id, data));
            }
            assert_eq!(got, want, "both nodes deliver the same events in the same order");
        }
        // Topics never leak into each other.
        let (status, id) = post(a.addr, "/publish?topic=other", "o1").await;
        assert_eq!(status, 200);
        assert_eq!(next(&mut other).await.unwrap(), ("message".into(), id, "o1".into()));
        // A node killed mid-stream: its client resumes on the other node.
        let mut on_a2 = source(a.addr, "feed", Some(&ids[N - 1]));
        opened(&mut on_a2).await;
        a.shutdown.trigger();
        let (status, id) = post(b.addr, "/publish?topic=feed", "after").await;
        assert_eq!(status, 200);
        let mut resumed = source(b.addr, "feed", Some(&ids[N - 1]));
        opened(&mut resumed).await;
        assert_eq!(next(&mut resumed).await.unwrap(), ("message".into(), id, "after".into()));
        b.shutdown.trigger();
    });
}

#[test]
fn a_resume_from_a_trimmed_id_or_after_flushall_starts_with_a_reset() {
    let Some(redis) = Redis::start("trimmed") else { return };
    bounded(async {
        let a = node(&redis, 10).await;
        let mut ids = Vec::new();
        for i in 0..400 {
            ids.push(post(a.addr, "/publish", &format!("e{i}")).await.1);
        }
        // MAXLEN ~ 10 keeps about one node of entries: the first are gone.
        let mut s = source(a.addr, "feed", Some(&ids[0]));
        opened(&mut s).await;
        let (ty, id, data) = next(&mut s).await.unwrap();
        assert_eq!((ty.as_str(), id.as_str(), data.as_str()), (RESET_EVENT, ids[399].as_str(), "gap"));
        // Recent ids still resume exactly.
        let mut recent = source(a.addr, "feed", Some(&ids[397]));
        opened(&mut recent).await;
        assert_eq!(next(&mut recent).await.unwrap().2, "e398");
        assert_eq!(next(&mut recent).await.unwrap().2, "e399");
        // Redis loses everything: a live subscriber gets a reset with the
        // next event, a resume gets a reset.
        redis.command(&["FLUSHALL"]);
        let (_, fresh) = post(a.addr, "/publish", "fresh").await;
        let (ty, _, _) = next(&mut recent).await.unwrap();
        assert_eq!(ty, RESET_EVENT);
        assert_eq!(next(&mut recent).await.unwrap(), ("message".into(), fresh.clone(), "fresh".into()));
        let mut after_flush = source(a.addr, "feed", Some(&ids[399]));
        opened(&mut after_flush).await;
        assert_eq!(next(&mut after_flush).await.unwrap(), (RESET_EVENT.into(), fresh, "gap".into()));
        a.shutdown.trigger();
    });
}

#[test]
fn redis_down_publish_fails_fast_streams_stay_open_and_continue_after_a_restart() {
    let Some(mut redis) = Redis::start("outage") else { return };
    bounded(async {
        let (a, b) = (node(&redis, 1000).await, node(&redis, 1000).await);
        let (_, first) = post(a.addr, "/publish", "before").await;
        let mut on_b = source(b.addr, "feed", Some(&first));
        opened(&mut on_b).await;
        wait_for("the subscriber", || b.topics.subscriber_count("feed") == 1).await;
        let (_, second) = post(a.addr, "/publish", "live").await;
        assert_eq!(next(&mut on_b).await.unwrap(), ("message".into(), second.clone(), "live".into()));

        redis.kill();
        let started = Instant::now();
        let (status, body) = post(a.addr, "/publish", "lost?").await;
        assert_eq!(status, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(3), "fails fast: {:?}", started.elapsed());
        let direct = a.topics.publish("feed", Event::new("x")).await;
        assert!(matches!(direct, Err(PublishError::Broker(sse_redis::BrokerError::Unavailable { .. }))));
        // A resume during the outage waits with its stream open.
        let mut during = source(a.addr, "feed", Some(&second));
        opened(&mut during).await;
        smol::Timer::after(Duration::from_millis(500)).await;

        redis.restart();
        // Publishing works again once the node reconnected (backoff ≤ 2 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        let third = loop {
            let (status, id) = post(a.addr, "/publish", "back").await;
            if status == 200 {
                break id;
            }
            assert!(Instant::now() < deadline, "publishing never came back");
            smol::Timer::after(Duration::from_millis(100)).await;
        };
        // Redis came back empty: the open stream gets a reset, then goes on,
        // on the same connection (next() panics on any end or error).
        let (ty, _, _) = next(&mut on_b).await.unwrap();
        assert_eq!(ty, RESET_EVENT);
        let mut got = next(&mut on_b).await.unwrap();
        if got.0 == RESET_EVENT {
            got = next(&mut on_b).await.unwrap();
        }
        assert_eq!(got, ("message".into(), third.clone(), "back".into()));
        // The resume made during the outage: its id is gone, so a reset,
        // then live events.
        let (ty, _, _) = next(&mut during).await.unwrap();
        assert_eq!(ty, RESET_EVENT);
        // Resumes work again, on either node.
        let (status, fourth) = post(b.addr, "/publish", "more").await;
        assert_eq!(
            status, 200,
            "the first publish after the restart on a node that published nothing meanwhile"
        );
        let mut resumed = source(a.addr, "feed", Some(&third));
        opened(&mut resumed).await;
        assert_eq!(next(&mut resumed).await.unwrap(), ("message".into(), fourth, "more".into()));
        a.shutdown.trigger();
        b.shutdown.trigger();
    });
}
