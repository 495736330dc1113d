//! A [`Broker`] for `sse-io`'s [`Topics`](sse_io::Topics) on Redis (or
//! Valkey) Streams: any number of server processes sharing one Redis act as
//! one feed, with the same ids, the same order, and gapless `Last-Event-ID`
//! resume on any of them.
//!
//! ```no_run
//! use sse_io::{Event, Topics};
//! use sse_redis::RedisBroker;
//!
//! # smol::block_on(async {
//! let broker = RedisBroker::builder().max_len(10_000).open("redis://127.0.0.1:6379/").unwrap();
//! let topics = Topics::new(broker);
//! let id = topics.publish("room/1", Event::new("hello")).await?; // e.g. "1718000000000-0"
//! let subscription = topics.subscribe("room/1", Some(&id))?; // gapless from there
//! # let _ = subscription;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # });
//! ```
//!
//! # How it works
//!
//! - **One stream per topic**, key `<prefix><topic>` (prefix `sse:` by
//!   default). Each entry holds the event's encoded frame without its id
//!   (`f`) and a sequence number (`n`), one more than the entry before it.
//!   The **entry id is the event id**: ids are monotonic across nodes, and
//!   `Last-Event-ID` is a position in the stream.
//! - **Publish** is one Lua script (`EVALSHA`): read the last entry's `n`,
//!   `XADD … MAXLEN ~ N * n <n+1> f <frame>`, optionally `XTRIM … MINID ~`
//!   for an age bound and `PEXPIRE` for idle topics. A single key, so it
//!   also runs on a Redis Cluster node. Publishing fails fast with
//!   [`BrokerError::Unavailable`] when Redis is down or slow to answer
//!   (the response timeout, 2 s by default): nothing was published.
//! - **Live delivery**: per node (per `RedisBroker`), one task tails every
//!   topic that has local subscribers with `XREAD BLOCK` on a *dedicated*
//!   connection (a blocking command stalls everything queued behind it on a
//!   multiplexed connection, and its response timeout is set above the block
//!   time, since the client's default of 500 ms would cut every `XREAD BLOCK`
//!   short). Frames are fanned out in process; no connection per
//!   subscriber. A topic joins the tail at once: the tail is woken with
//!   `CLIENT UNBLOCK` from the command connection.
//! - **No gap, no duplicate**: the hub registers a resuming subscriber,
//!   then asks for `XRANGE key <last id> <where the tail stood>`, then
//!   merges the live frames held meanwhile by `n`. The last id must still
//!   be in the stream, and the `n` values must follow one another, else the
//!   subscriber starts with the reset event.
//! - **Data loss is never silent**: if the tail reads an `n` that does not
//!   follow the one before (Redis lost its data, restarted empty, or
//!   trimmed what the tail had not read), or if, after reconnecting, the
//!   last entry it delivered is gone, every subscriber of the topic gets the
//!   reset event and delivery goes on. A resume from an id Redis no longer
//!   has (trimmed, flushed, expired) starts with the reset event.
//! - **Redis down**: open streams stay open (keep-alive comments) and the
//!   node reconnects with backoff (50 ms doubling to 2 s); then the tail
//!   resumes where it stopped, so nothing published on other nodes
//!   meanwhile is missed. A resume that arrives meanwhile waits for Redis
//!   with its stream open.
//!
//! # Redis Cluster
//!
//! Each topic is one key, and publishing and replay touch only that key, so
//! they work on any cluster node that owns it. The tail reads every watched
//! topic in one `XREAD`, which a cluster refuses across hash slots
//! (`CROSSSLOT`): put all topics in one slot with a hash tag in the prefix
//! (`.prefix("{sse}:")`), which works but puts every topic on one shard.
//! This crate connects to a single endpoint (no cluster redirections), so
//! run it against a standalone Redis/Valkey, a primary with replicas, or a
//! cluster proxy; a tail per shard is not implemented.
//!
//! Durability is Redis's: without AOF (`appendfsync everysec` or
//! `always`) a restart loses recent entries; this broker then sends reset
//! events rather than silently skipping them, but cannot bring them back.
//! Keep stream keys out of eviction (`maxmemory-policy noeviction` or
//! `volatile-*` without the TTL option).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Value};
pub use sse_io::BrokerError;
use sse_io::{BoxFuture, Broker, Entry, History, LiveFeed, Position, frame_with_id};

/// Appends one event: the next sequence number follows the last entry's,
/// so that the stream itself (not a separate key that could be evicted on
/// its own) says whether entries are missing.
const PUBLISH_SCRIPT: &str = r"
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local n = 1
if #last > 0 then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then n = tonumber(fields[i + 1]) + 1 end
  end
end
local seq = string.format('%.0f', n)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'n', seq, 'f', ARGV[1])
if ARGV[3] ~= '0' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', now - tonumber(ARGV[3])))
end
if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return id
";

/// Marks a failure to get a connection at all (not worth a retry).
const UNAVAILABLE: &str = "unavailable: ";

/// How long the tail's `XREAD` blocks.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries read per `XREAD` or `XRANGE` page.
const PAGE: usize = 1000;
/// Reconnection backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Builds a [`RedisBroker`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct RedisBrokerBuilder {
    prefix: String,
    max_len: usize,
    max_age: Option<Duration>,
    ttl: Option<Duration>,
    response_timeout: Duration,
    connect_timeout: Duration,
}

impl RedisBrokerBuilder {
    /// Key prefix of the topics' streams (default `sse:`). Use a hash tag
    /// (`{sse}:`) on a Redis Cluster (see the crate docs).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// History kept per topic, in events (default 1024; trimmed with
    /// `MAXLEN ~`, so a little more may be kept).
    pub fn max_len(mut self, events: usize) -> Self {
        self.max_len = events.max(1);
        self
    }

    /// History kept per topic, by age (default: no age bound; trimmed with
    /// `MINID ~` on each publish).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// A topic nobody publishes to for this long is deleted by Redis
    /// (default 24 hours; a resume into it is then a reset).
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a publish or a replay read waits for Redis's answer before
    /// failing (default 2 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long connecting to Redis may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The broker for the Redis at `url` (`redis://[:password@]host:port[/db]`
    /// or `unix:///path`). Connections are made when first needed.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] for a URL the client does not accept.
    pub fn open(self, url: &str) -> Result<RedisBroker, BrokerError> {
        let client = Client::open(url).map_err(unavailable)?;
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                client,
                config: self,
                command: async_lock::Mutex::new(Slot::default()),
                tail: Mutex::new(TailRequests::default()),
                requested: event_listener::Event::new(),
                tail_running: AtomicBool::new(false),
            }),
        })
    }
}

/// The [`Broker`] on Redis Streams; see the crate docs. Clones share the
/// connections and the tail.
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker").field("prefix", &self.inner.config.prefix).finish()
    }
}

struct Inner {
    client: Client,
    config: RedisBrokerBuilder,
    /// The connection for publishing, replays and `CLIENT UNBLOCK`.
    command: async_lock::Mutex<Slot>,
    tail: Mutex<TailRequests>,
    /// Wakes the tail for new topics.
    requested: event_listener::Event,
    tail_running: AtomicBool,
}

#[derive(Default)]
struct Slot {
    conn: Option<(MultiplexedConnection, Option<String>)>,
    /// No new attempt before this (backoff while Redis is down).
    retry_at: Option<Instant>,
    backoff: Option<Duration>,
}

#[derive(Default)]
struct TailRequests {
    new: Vec<LiveFeed>,
    /// The tail connection's `CLIENT ID`, for `CLIENT UNBLOCK`.
    client_id: Option<i64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(e: impl fmt::Display) -> BrokerError {
    BrokerError::Unavailable { reason: e.to_string() }
}

/// Whether the connection that gave `e` is unusable (else the command
/// failed on its own, for example a wrong id).
fn broken(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(e.kind(), ErrorKind::Io)
}

impl RedisBroker {
    /// A builder with the defaults.
    pub fn builder() -> RedisBrokerBuilder {
        RedisBrokerBuilder {
            prefix: "sse:".into(),
            max_len: 1024,
            max_age: None,
            ttl: Some(Duration::from_secs(24 * 3600)),
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// The broker for the Redis at `url` with the defaults.
    ///
    /// # Errors
    ///
    /// As [`RedisBrokerBuilder::open`].
    pub fn open(url: &str) -> Result<Self, BrokerError> {
        RedisBroker::builder().open(url)
    }

    /// The Redis key of `topic`'s stream.
    pub fn key(&self, topic: &str) -> String {
        format!("{}{topic}", self.inner.config.prefix)
    }
}

impl Inner {
    fn key(&self, topic: &str) -> String {
        format!("{}{topic}", self.config.prefix)
    }

    fn conn_config(&self, response_timeout: Option<Duration>) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(response_timeout)
    }

    /// The command connection, made if needed; fails at once while backing
    /// off after a failed attempt, so a publish never waits for a Redis that
    /// is down.
    async fn command(&self) -> Result<(MultiplexedConnection, Option<String>), BrokerError> {
        let mut slot = self.command.lock().await;
        if let Some(conn) = &slot.conn {
            return Ok(conn.clone());
        }
        if slot.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(BrokerError::Unavailable { reason: "redis is unreachable (reconnecting)".into() });
        }
        let config = self.conn_config(Some(self.config.response_timeout));
        let made = async {
            let mut conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
            let sha: String =
                redis::cmd("SCRIPT").arg("LOAD").arg(PUBLISH_SCRIPT).query_async(&mut conn).await?;
            Ok::<_, RedisError>((conn, Some(sha)))
        };
        match made.await {
            Ok(conn) => {
                *slot = Slot { conn: Some(conn.clone()), retry_at: None, backoff: None };
                Ok(conn)
            }
            Err(e) => {
                let backoff = slot.backoff.map_or(BACKOFF_MIN, |b| (b * 2).min(BACKOFF_MAX));
                slot.backoff = Some(backoff);
                slot.retry_at = Some(Instant::now() + backoff);
                Err(unavailable(e))
            }
        }
    }

    /// Forgets the command connection after `e` if it is broken (the next
    /// call connects again).
    async fn failed(&self, e: &RedisError) {
        if broken(e) {
            self.command.lock().await.conn = None;
        }
    }

    async fn publish(&self, topic: &str, body: Bytes) -> Result<String, BrokerError> {
        match self.publish_once(topic, &body).await {
            // The connection broke while idle (Redis restarted, say) and
            // the command was never sent: once more on a new connection.
            // Not after a timeout, when the script may have run.
            Err(e) if e.is_io_error() && !e.is_timeout() => {
                self.failed(&e).await;
                self.publish_once(topic, &body).await
            }
            result => result,
        }
        .map_err(|e| match e.kind() {
            ErrorKind::Client if e.detail().is_some_and(|d| d.starts_with(UNAVAILABLE)) => {
                let detail = e.detail().unwrap_or_default();
                BrokerError::Unavailable { reason: detail[UNAVAILABLE.len()..].into() }
            }
            _ => unavailable(e),
        })
    }

    async fn publish_once(&self, topic: &str, body: &Bytes) -> Result<String, RedisError> {
        let (mut conn, sha) = match self.command().await {
            Ok(c) => c,
            Err(e) => {
                let reason = match e {
                    BrokerError::Unavailable { reason } => reason,
                    e => e.to_string(),
                };
                return Err(RedisError::from((
                    ErrorKind::Client,
                    "broker",
                    format!("{UNAVAILABLE}{reason}"),
                )));
            }
        };
        let key = self.key(topic);
        let age = self.config.max_age.map_or(0, |a| a.as_millis());
        let ttl = self.config.ttl.map_or(0, |t| t.as_millis());
        let args = |cmd: &mut redis::Cmd| {
            cmd.arg(1).arg(&key).arg(&body[..]).arg(self.config.max_len).arg(age as u64).arg(ttl as u64);
        };
        let mut result = match &sha {
            Some(sha) => {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(sha);
                args(&mut cmd);
                cmd.query_async::<String>(&mut conn).await
            }
            None => Err(RedisError::from((ErrorKind::Server(redis::ServerErrorKind::NoScript), "no script"))),
        };
        if result.as_ref().is_err_and(|e| e.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript)) {
            // The script cache was flushed: send the script itself.
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(PUBLISH_SCRIPT);
            args(&mut cmd);
            result = cmd.query_async::<String>(&mut conn).await;
        }
        if let Err(e) = &result {
            self.failed(e).await;
        }
        result
    }

    /// One try at a replay; `Err` when Redis could not answer.
    async fn replay_once(
        &self,
        key: &str,
        after: StreamId,
        until: &Option<Position>,
    ) -> Result<History, RedisError> {
        let (mut conn, _) = match self.command().await {
            Ok(c) => c,
            Err(e) => return Err(RedisError::from((ErrorKind::Io, "unavailable", e.to_string()))),
        };
        let exists = |conn: &mut MultiplexedConnection| {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(key).arg(after.to_string()).arg(after.to_string());
            let mut conn = conn.clone();
            async move {
                let entries = parse_entries(&cmd.query_async::<Value>(&mut conn).await?);
                Ok::<_, RedisError>(match entries.first() {
                    Some(e) if e.id == after => History::UpToDate { seq: e.seq },
                    _ => History::Gap,
                })
            }
        };
        let Some(until) = until else { return exists(&mut conn).await };
        let Some(until_id) = StreamId::parse(until.id()) else { return Ok(History::Gap) };
        if after == until_id {
            return Ok(History::UpToDate { seq: until.seq() });
        }
        if after > until_id {
            // Newer than where this node's tail stood: live frames up to it
            // are dropped by the merge.
            return exists(&mut conn).await;
        }
        let mut events = Vec::new();
        let mut expect: Option<u64> = None;
        let mut start = after.to_string();
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(key)
                .arg(&start)
                .arg(until_id.to_string())
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn)
                .await?;
            let page = parse_entries(&reply);
            let full = page.len() == PAGE;
            for e in page {
                match expect {
                    None if e.id != after => return Ok(History::Gap),
                    None => {}
                    Some(n) if e.seq != n => return Ok(History::Gap),
                    Some(_) => {
                        events.push(Entry { seq: e.seq, frame: frame_with_id(&e.id.to_string(), &e.body) })
                    }
                }
                expect = Some(e.seq + 1);
                start = format!("({}", e.id);
            }
            if !full {
                break;
            }
        }
        match (expect, events.last()) {
            (None, _) => Ok(History::Gap),
            (Some(_), None) => Ok(History::Gap),
            (Some(next), Some(_)) if next == until.seq() + 1 => Ok(History::Events(events)),
            _ => Ok(History::Gap),
        }
    }

    async fn replay(&self, topic: &str, after: &str, until: Option<Position>) -> History {
        let Some(after) = StreamId::parse(after) else { return History::Gap };
        let key = self.key(topic);
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.replay_once(&key, after, &until).await {
                Ok(history) => return history,
                Err(e) => {
                    self.failed(&e).await;
                    if !broken(&e) && !matches!(e.kind(), ErrorKind::Io) {
                        // Redis answered with an error: treat the id as unknown.
                        return History::Gap;
                    }
                    smol::Timer::after(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, topic: &str, body: Bytes) -> BoxFuture<'static, Result<String, BrokerError>> {
        let (inner, topic) = (self.inner.clone(), topic.to_owned());
        Box::pin(async move { inner.publish(&topic, body).await })
    }

    fn watch(&self, _topic: &str, feed: LiveFeed) -> Result<(), BrokerError> {
        lock(&self.inner.tail).new.push(feed);
        self.inner.requested.notify(usize::MAX);
        if !self.inner.tail_running.swap(true, Ordering::AcqRel) {
            smol::spawn(tail(Arc::downgrade(&self.inner))).detach();
        }
        Ok(())
    }

    fn replay(&self, topic: &str, after: &str, until: Option<Position>) -> BoxFuture<'static, History> {
        let (inner, topic, after) = (self.inner.clone(), topic.to_owned(), after.to_owned());
        Box::pin(async move { inner.replay(&topic, &after, until).await })
    }
}

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-')?;
        let digits = |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// A stream entry as this broker writes them.
struct StreamEntry {
    id: StreamId,
    seq: u64,
    body: Vec<u8>,
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// `[[id, [field, value, ...]], ...]`; entries this broker did not write
/// are skipped.
fn parse_entries(v: &Value) -> Vec<StreamEntry> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else { return None };
            let id = StreamId::parse(std::str::from_utf8(text(pair.first()?)?).ok()?)?;
            let Value::Array(fields) = pair.get(1)? else { return None };
            let (mut seq, mut body) = (None, None);
            for kv in fields.chunks(2) {
                match (kv.first().and_then(text), kv.get(1).and_then(text)) {
                    (Some(b"n"), Some(n)) => seq = std::str::from_utf8(n).ok()?.parse().ok(),
                    (Some(b"f"), Some(f)) => body = Some(f.to_vec()),
                    _ => {}
                }
            }
            Some(StreamEntry { id, seq: seq?, body: body? })
        })
        .collect()
}

/// One tailed topic.
struct Tailed {
    key: String,
    feeds: Vec<LiveFeed>,
    /// The last entry delivered (id and `n`); `None`: the stream was empty.
    position: Option<(StreamId, u64)>,
    /// A reset went out: the next entry's `n` starts a new run.
    resync: bool,
}

impl Tailed {
    fn position(&self) -> Option<Position> {
        self.position.map(|(id, n)| Position::new(id.to_string(), n))
    }

    /// Entries may be missing: a reset (without an id: the entries after it
    /// carry theirs), and the next entry read starts a new run of `n`. The
    /// read goes on after the last entry delivered, so that whatever Redis
    /// holds after it (published after a restart, say) is still delivered.
    fn lost(&mut self) {
        self.resync = true;
        for feed in &self.feeds {
            feed.lost(None);
        }
    }
}

/// The newest entry of a stream.
async fn newest(conn: &mut MultiplexedConnection, key: &str) -> Result<Option<(StreamId, u64)>, RedisError> {
    let reply: Value =
        redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(conn).await?;
    Ok(parse_entries(&reply).first().map(|e| (e.id, e.seq)))
}

/// Whether the entry `id` numbered `n` is still there.
async fn still_there(
    conn: &mut MultiplexedConnection,
    key: &str,
    id: StreamId,
    n: u64,
) -> Result<bool, RedisError> {
    let reply: Value =
        redis::cmd("XRANGE").arg(key).arg(id.to_string()).arg(id.to_string()).query_async(conn).await?;
    Ok(parse_entries(&reply).first().is_some_and(|e| e.id == id && e.seq == n))
}

/// The node's tail: one dedicated connection reading every topic that has
/// subscribers here, delivering to their feeds; reconnects with backoff and
/// checks on reconnection that nothing it had not read was lost.
async fn tail(weak: Weak<Inner>) {
    let mut topics: HashMap<String, Tailed> = HashMap::new();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if conn.is_none() {
            let config = inner.conn_config(Some(BLOCK + inner.config.response_timeout));
            let made = async {
                let mut c = inner.client.get_multiplexed_async_connection_with_config(&config).await?;
                let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut c).await?;
                // Where each topic stood may be gone (Redis restarted empty,
                // or trimmed while we were away): then a reset.
                for t in topics.values_mut() {
                    if let Some((id, n)) = t.position
                        && !still_there(&mut c, &t.key, id, n).await?
                    {
                        t.lost();
                    }
                }
                Ok::<_, RedisError>((c, id))
            };
            match made.await {
                Ok((c, id)) => {
                    lock(&inner.tail).client_id = Some(id);
                    conn = Some(c);
                    backoff = BACKOFF_MIN;
                }
                Err(_) => {
                    drop(inner);
                    smol::Timer::after(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // New feeds: a new topic starts at its newest entry.
        let new = std::mem::take(&mut lock(&inner.tail).new);
        let mut failed = None;
        for feed in new {
            let key = inner.key(feed.topic());
            if let Some(t) = topics.get_mut(&key) {
                feed.start(t.position());
                t.feeds.push(feed);
                continue;
            }
            match newest(c, &key).await {
                Ok(position) => {
                    let t = Tailed { key: key.clone(), feeds: vec![feed], position, resync: false };
                    t.feeds[0].start(t.position());
                    topics.insert(key, t);
                }
                Err(e) => {
                    lock(&inner.tail).new.push(feed);
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_some() {
            conn = None;
            continue;
        }
        topics.retain(|_, t| {
            t.feeds.retain(|f| !f.is_closed());
            !t.feeds.is_empty()
        });
        if topics.is_empty() {
            let listener = inner.requested.listen();
            if lock(&inner.tail).new.is_empty() {
                drop(inner);
                // Wakes for a new topic, or now and then to notice the
                // broker was dropped.
                futures_lite::future::or(listener, async {
                    smol::Timer::after(BLOCK).await;
                })
                .await;
            }
            continue;
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(PAGE).arg("BLOCK").arg(BLOCK.as_millis() as u64).arg("STREAMS");
        let keys: Vec<&String> = topics.keys().collect();
        for key in &keys {
            cmd.arg(key.as_str());
        }
        for key in &keys {
            cmd.arg(topics[*key].position.map_or_else(|| "0-0".to_owned(), |(id, _)| id.to_string()));
        }
        let read = cmd.query_async::<Value>(c);
        // A topic joining while the read blocks: unblock it (again, until it
        // returns, in case the read reached Redis after the first try).
        let poke = async {
            loop {
                let listener = inner.requested.listen();
                if lock(&inner.tail).new.is_empty() {
                    listener.await;
                }
                let id = lock(&inner.tail).client_id;
                if let (Some(id), Ok((mut cmd_conn, _))) = (id, inner.command().await) {
                    let _: Result<Value, _> =
                        redis::cmd("CLIENT").arg("UNBLOCK").arg(id).query_async(&mut cmd_conn).await;
                }
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        };
        let reply = futures_lite::future::or(read, async {
            poke.await;
            unreachable!("the poke loop never ends")
        })
        .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => {
                conn = None;
                continue;
            }
        };
        deliver(&mut topics, &reply);
    }
}

/// Hands an `XREAD` reply to the feeds, checking that each entry's `n`
/// follows the one before.
fn deliver(topics: &mut HashMap<String, Tailed>, reply: &Value) {
    let streams: Vec<(&Value, &Value)> = match reply {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) if pair.len() == 2 => Some((&pair[0], &pair[1])),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => return,
    };
    for (key, entries) in streams {
        let Some(key) = text(key).and_then(|k| std::str::from_utf8(k).ok()) else { continue };
        let Some(t) = topics.get_mut(key) else { continue };
        for e in parse_entries(entries) {
            let expected = t.position.map_or(1, |(_, n)| n + 1);
            if e.seq != expected && !t.resync {
                // Entries are missing (trimmed before we read them, or Redis
                // lost its data): a reset, then on from this entry.
                t.lost();
            }
            t.resync = false;
            t.position = Some((e.id, e.seq));
            let id = e.id.to_string();
            let frame = frame_with_id(&id, &e.body);
            t.feeds.retain(|feed| feed.deliver(&id, e.seq, frame.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_and_order() {
        assert_eq!(StreamId::parse("1718000000000-3"), Some(StreamId(1_718_000_000_000, 3)));
        for bad in ["", "1", "-1", "1-", "a-1", "1-2-3", "99999999999999999999999-0", " 1-1"] {
            assert_eq!(StreamId::parse(bad), None, "{bad}");
        }
        assert!(StreamId(2, 0) > StreamId(1, 9));
        assert_eq!(StreamId(5, 1).to_string(), "5-1");
    }

    #[test]
    fn entries_without_a_sequence_number_are_skipped() {
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                Value::BulkString(id.into()),
                Value::Array(fields.iter().map(|f| Value::BulkString(f.as_bytes().to_vec())).collect()),
            ])
        };
        let reply =
            Value::Array(vec![entry("1-0", &["n", "1", "f", "data: x\n\n"]), entry("2-0", &["other", "y"])]);
        let entries = parse_entries(&reply);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].id, entries[0].seq, &entries[0].body[..]),
            (StreamId(1, 0), 1, &b"data: x\n\n"[..])
        );
    }
}
