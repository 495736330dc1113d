//! The broker seam: where a topic's events get their ids, are kept for
//! replay and reach every node's live subscribers. In memory by default
//! ([`MemoryBroker`]); on Redis Streams in the `sse-redis` crate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use sse_proto::{Replay, ReplayConfig, ReplayLog};

use crate::runtime::BoxFuture;
use crate::topics::LiveFeed;

/// Where a topic's live feed stands: the newest event delivered, by id and
/// by the broker's sequence number for it.
///
/// Sequence numbers increase by one per event of a topic (a broker that
/// finds one missing has lost events, and says so with
/// [`LiveFeed::lost`]); they order live frames against a replay, so that a
/// resuming subscriber gets each event once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    id: Arc<str>,
    seq: u64,
}

impl Position {
    /// The event `id`, number `seq` of its topic.
    pub fn new(id: impl Into<Arc<str>>, seq: u64) -> Self {
        Position { id: id.into(), seq }
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// One event of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number in the topic.
    pub seq: u64,
    /// The encoded frame, `id:` line included.
    pub frame: Bytes,
}

/// What a broker's history holds after an id, up to a position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum History {
    /// The events after the id, oldest first, up to and including the
    /// position asked for (never empty).
    Events(Vec<Entry>),
    /// Nothing is missing: the id is the event numbered `seq` (the live
    /// frames up to it are dropped too, for an id newer than the position).
    UpToDate {
        /// The sequence number of the id.
        seq: u64,
    },
    /// The id is unknown, trimmed, or from before the broker lost its data:
    /// the subscriber starts with the reset event.
    Gap,
}

/// Why a broker could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker's store cannot be reached (or did not answer in time);
    /// nothing was published.
    Unavailable {
        /// What failed, for logs.
        reason: String,
    },
    /// The broker keeps at most `max` topics and none can be dropped.
    TooManyTopics {
        /// The bound.
        max: usize,
    },
    /// The event is larger than the broker keeps.
    TooLarge {
        /// The encoded event's length.
        len: usize,
        /// The largest kept.
        max: usize,
    },
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Unavailable { reason } => write!(f, "the broker is unavailable: {reason}"),
            BrokerError::TooManyTopics { max } => write!(f, "too many topics (at most {max})"),
            BrokerError::TooLarge { len, max } => write!(f, "event of {len} bytes over the broker's {max}"),
        }
    }
}

impl std::error::Error for BrokerError {}

/// Where a topic's events are numbered, kept and fanned out between nodes.
///
/// A [`Topics`](crate::Topics) hub holds one [`LiveFeed`] per topic that
/// has subscribers on this node and asks the broker for three things:
///
/// - [`publish`](Self::publish): append an event, get its id (may fail:
///   nothing is published then);
/// - [`watch`](Self::watch): deliver every later event of the topic to the
///   feed, in order, after telling it where the topic stands;
/// - [`replay`](Self::replay): the events after a client's last id, up to
///   the position the feed had when that client joined. The hub buffers
///   live frames meanwhile and merges by sequence number, so a resume has
///   no gap and no duplicate whatever the broker's latency.
pub trait Broker: Send + Sync + 'static {
    /// Appends an event to `topic` and hands it to every node watching it.
    /// `body` is the encoded event without an `id:` line; the frame
    /// delivered is `id: <id>\n` followed by `body`. Resolves to the id.
    ///
    /// # Errors
    ///
    /// [`BrokerError`]: nothing was published. A broker whose store is down
    /// answers [`BrokerError::Unavailable`] promptly (within seconds), it
    /// does not wait for the store to return.
    fn publish(&self, topic: &str, body: Bytes) -> BoxFuture<'static, Result<String, BrokerError>>;

    /// Starts delivering `topic` to `feed`: first [`LiveFeed::start`] with
    /// the newest event now (if any), then [`LiveFeed::deliver`] for each
    /// later event in order, [`LiveFeed::lost`] when events may have been
    /// lost (the store lost data, or trimmed what the feed had not read).
    /// Delivery stops once [`LiveFeed::is_closed`].
    ///
    /// # Errors
    ///
    /// [`BrokerError::TooManyTopics`] when the topic cannot be created.
    fn watch(&self, topic: &str, feed: LiveFeed) -> Result<(), BrokerError>;

    /// The events of `topic` after the event `after`, up to and including
    /// `until` (`None`: the topic had no event when the feed started).
    /// The future resolves once the broker can answer: a broker whose store
    /// is down keeps trying (the subscriber's stream stays open meanwhile).
    fn replay(&self, topic: &str, after: &str, until: Option<Position>) -> BoxFuture<'static, History>;
}

/// The frame of an event: its `id:` line, then its encoded body.
pub fn frame_with_id(id: &str, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(id.len() + 5 + body.len());
    frame.put_slice(b"id: ");
    frame.put_slice(id.as_bytes());
    frame.put_u8(b'\n');
    frame.put_slice(body);
    frame.freeze()
}

/// The broker of one process: each topic's history is a [`ReplayLog`]
/// (bounded by count, bytes and age), ids are decimal numbers counting up
/// per topic. Clones share the topics, so several [`Topics`](crate::Topics)
/// hubs on one `MemoryBroker` act as nodes of one feed.
///
/// Topics are bounded: at most `max_topics` (default 10,000); a topic that
/// no hub watches and nobody published to for `idle_after` (default 10
/// minutes) is dropped, history and all, and so is the least recently used
/// unwatched one when a new topic needs room. A topic created again numbers
/// its events after every id handed out before, so an old id is never
/// mistaken for a new one: resuming from it is a gap.
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<Mutex<MemoryState>>,
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker").field("topics", &self.topic_count()).finish()
    }
}

struct MemoryState {
    topics: HashMap<Arc<str>, Arc<Mutex<MemoryTopic>>>,
    replay: ReplayConfig,
    max_topics: usize,
    idle_after: Duration,
    /// The highest sequence number of any dropped topic.
    floor: u64,
}

struct MemoryTopic {
    log: ReplayLog,
    last_seq: u64,
    feeds: Vec<LiveFeed>,
    touched: Instant,
    /// Removed from the broker (a publisher holding it looks again).
    dropped: bool,
}

impl MemoryTopic {
    fn is_watched(&mut self) -> bool {
        self.feeds.retain(|f| !f.is_closed());
        !self.feeds.is_empty()
    }

    fn newest(&self) -> Option<Position> {
        let id = self.log.newest_id()?;
        Some(Position::new(id, id.parse().ok()?))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new(ReplayConfig::default())
    }
}

impl MemoryBroker {
    /// A broker whose topics keep what `replay` allows.
    pub fn new(replay: ReplayConfig) -> Self {
        MemoryBroker {
            inner: Arc::new(Mutex::new(MemoryState {
                topics: HashMap::new(),
                replay,
                max_topics: 10_000,
                idle_after: Duration::from_secs(600),
                floor: 0,
            })),
        }
    }

    /// At most `max` topics (at least 1).
    pub fn max_topics(self, max: usize) -> Self {
        lock(&self.inner).max_topics = max.max(1);
        self
    }

    /// Drops a topic nobody watches and nobody published to for `idle`.
    pub fn idle_after(self, idle: Duration) -> Self {
        lock(&self.inner).idle_after = idle;
        self
    }

    /// Topics kept now.
    pub fn topic_count(&self) -> usize {
        lock(&self.inner).topics.len()
    }

    /// Events kept in `topic`'s history.
    pub fn history_len(&self, topic: &str) -> usize {
        let topic = lock(&self.inner).topics.get(topic).cloned();
        topic.map_or(0, |t| lock(&t).log.len())
    }

    /// The topic, created if needed: idle ones are dropped first, then the
    /// least recently used unwatched one if the bound is reached.
    fn topic(&self, name: &str, now: Instant) -> Result<Arc<Mutex<MemoryTopic>>, BrokerError> {
        let mut state = lock(&self.inner);
        if let Some(topic) = state.topics.get(name) {
            return Ok(topic.clone());
        }
        let idle_after = state.idle_after;
        let mut floor = state.floor;
        let mut lru: Option<(Instant, Arc<str>)> = None;
        state.topics.retain(|name, topic| {
            let mut t = lock(topic);
            if t.is_watched() {
                return true;
            }
            if now.saturating_duration_since(t.touched) >= idle_after {
                floor = floor.max(t.last_seq);
                t.dropped = true;
                return false;
            }
            if lru.as_ref().is_none_or(|(at, _)| t.touched < *at) {
                lru = Some((t.touched, name.clone()));
            }
            true
        });
        if state.topics.len() >= state.max_topics {
            let Some((_, name)) = lru else {
                return Err(BrokerError::TooManyTopics { max: state.max_topics });
            };
            if let Some(topic) = state.topics.remove(&name) {
                let mut t = lock(&topic);
                floor = floor.max(t.last_seq);
                t.dropped = true;
            }
        }
        state.floor = floor;
        let topic = Arc::new(Mutex::new(MemoryTopic {
            log: ReplayLog::new(state.replay),
            last_seq: floor,
            feeds: Vec::new(),
            touched: now,
            dropped: false,
        }));
        state.topics.insert(name.into(), topic.clone());
        Ok(topic)
    }

    fn publish_now(&self, name: &str, body: &[u8]) -> Result<String, BrokerError> {
        let now = Instant::now();
        loop {
            let topic = self.topic(name, now)?;
            let mut t = lock(&topic);
            if t.dropped {
                continue;
            }
            t.last_seq += 1;
            t.touched = now;
            let seq = t.last_seq;
            let id = seq.to_string();
            let frame = frame_with_id(&id, body);
            t.log.push(&id, frame.clone(), now);
            // Delivered under the topic's lock: every feed sees the topic's
            // order, and a feed starting now sees each event once.
            t.feeds.retain(|feed| feed.deliver(&id, seq, frame.clone()));
            return Ok(id);
        }
    }

    fn replay_now(&self, name: &str, after: &str, until: Option<Position>) -> History {
        let topic = lock(&self.inner).topics.get(name).cloned();
        let Some(topic) = topic else { return History::Gap };
        let Ok(after_seq) = after.parse::<u64>() else { return History::Gap };
        let mut t = lock(&topic);
        let until = until.map_or(0, |p| p.seq);
        match t.log.since(after, Instant::now()) {
            Replay::Gap => History::Gap,
            Replay::UpToDate => History::UpToDate { seq: after_seq },
            Replay::Frames(frames) => {
                let entries: Vec<Entry> = frames
                    .filter_map(|(id, frame)| Some(Entry { seq: id.parse().ok()?, frame: frame.clone() }))
                    .take_while(|e| e.seq <= until)
                    .collect();
                if entries.is_empty() {
                    History::UpToDate { seq: after_seq }
                } else {
                    History::Events(entries)
                }
            }
        }
    }
}

impl Broker for MemoryBroker {
    fn publish(&self, topic: &str, body: Bytes) -> BoxFuture<'static, Result<String, BrokerError>> {
        let result = self.publish_now(topic, &body);
        Box::pin(std::future::ready(result))
    }

    fn watch(&self, name: &str, feed: LiveFeed) -> Result<(), BrokerError> {
        loop {
            let topic = self.topic(name, Instant::now())?;
            let mut t = lock(&topic);
            if t.dropped {
                continue;
            }
            feed.start(t.newest());
            t.feeds.push(feed);
            return Ok(());
        }
    }

    fn replay(&self, topic: &str, after: &str, until: Option<Position>) -> BoxFuture<'static, History> {
        // Read when first polled, outside the hub's locks.
        let (broker, topic, after) = (self.clone(), topic.to_owned(), after.to_owned());
        Box::pin(async move { broker.replay_now(&topic, &after, until) })
    }
}
