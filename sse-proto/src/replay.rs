//! The replay log: recent encoded frames keyed by event id, so that a client
//! resuming with `Last-Event-ID` gets exactly what it missed, or learns that
//! it cannot.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use bytes::Bytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How much the log keeps. An entry goes when any bound is exceeded, oldest
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// At most this many events (default 1024).
    pub max_events: usize,
    /// At most this many bytes of frames (default 4 MiB).
    pub max_bytes: usize,
    /// Nothing older than this (default: no age limit).
    pub max_age: Option<Duration>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig { max_events: 1024, max_bytes: 4 * 1024 * 1024, max_age: None }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    frame: Bytes,
    at: Instant,
}

/// What a resuming client is owed.
#[derive(Debug)]
pub enum Replay<'a> {
    /// The frames after its last event id, oldest first (never empty).
    Frames(ReplayFrames<'a>),
    /// It has seen everything.
    UpToDate,
    /// Its id is unknown or was already evicted: events may have been lost,
    /// and the application must resynchronize it (a reset), not stay silent.
    Gap,
}

/// The frames of a [`Replay::Frames`].
#[derive(Debug, Clone)]
pub struct ReplayFrames<'a> {
    inner: alloc::collections::vec_deque::Iter<'a, Entry>,
}

impl<'a> Iterator for ReplayFrames<'a> {
    /// The event id and its encoded frame.
    type Item = (&'a str, &'a Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|e| (e.id.as_str(), &e.frame))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for ReplayFrames<'_> {}

/// A bounded log of encoded frames keyed by event id.
///
/// Resuming costs a hash lookup plus the frames returned: no scan, so a
/// reconnect storm of thousands of clients stays cheap.
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use sse_proto::{Replay, ReplayConfig, ReplayLog};
///
/// let now = Instant::now();
/// let mut log = ReplayLog::new(ReplayConfig { max_events: 2, ..ReplayConfig::default() });
/// for n in 1..=3 {
///     let id = log.next_id();
///     log.push(&id, Bytes::from(format!("id: {id}\ndata: {n}\n\n")), now);
/// }
/// let Replay::Frames(frames) = log.since("2", now) else { panic!() };
/// assert_eq!(frames.map(|(id, _)| id).collect::<Vec<_>>(), ["3"]);
/// assert!(matches!(log.since("3", now), Replay::UpToDate));
/// assert!(matches!(log.since("1", now), Replay::Gap)); // evicted
/// ```
#[derive(Debug, Clone)]
pub struct ReplayLog {
    config: ReplayConfig,
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    first_seq: u64,
    /// Event id → sequence number of its latest entry.
    index: HashMap<String, u64>,
    bytes: usize,
    /// The id of the newest event ever pushed, even if evicted since.
    newest: Option<String>,
    counter: u64,
}

impl ReplayLog {
    /// An empty log.
    pub fn new(config: ReplayConfig) -> Self {
        ReplayLog {
            config,
            entries: VecDeque::new(),
            first_seq: 0,
            index: HashMap::new(),
            bytes: 0,
            newest: None,
            counter: 0,
        }
    }

    /// A fresh id: increasing decimal numbers from 1, for publishers that do
    /// not supply their own.
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        self.counter.to_string()
    }

    /// Appends a frame (already encoded, with its `id:` line) under `id`,
    /// then evicts what the bounds no longer allow. A frame larger than
    /// `max_bytes` is not kept at all (a resume across it is a gap).
    pub fn push(&mut self, id: &str, frame: Bytes, now: Instant) {
        self.newest = Some(id.to_string());
        if frame.len() > self.config.max_bytes || self.config.max_events == 0 {
            // Cannot be kept: everything before it is unreachable too, since
            // replaying it without this frame would skip one.
            self.clear();
            return;
        }
        let seq = self.first_seq + self.entries.len() as u64;
        self.bytes += frame.len();
        self.index.insert(id.to_string(), seq);
        self.entries.push_back(Entry { id: id.to_string(), frame, at: now });
        while self.entries.len() > self.config.max_events || self.bytes > self.config.max_bytes {
            self.evict_oldest();
        }
        self.expire(now);
    }

    /// Drops entries older than `max_age`.
    pub fn expire(&mut self, now: Instant) {
        let Some(max_age) = self.config.max_age else { return };
        while self.entries.front().is_some_and(|e| now.saturating_duration_since(e.at) > max_age) {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.frame.len();
            if self.index.get(&e.id) == Some(&self.first_seq) {
                self.index.remove(&e.id);
            }
            self.first_seq += 1;
        }
    }

    fn clear(&mut self) {
        self.first_seq += self.entries.len() as u64;
        self.entries.clear();
        self.index.clear();
        self.bytes = 0;
    }

    /// What a client whose last event id is `last_event_id` missed.
    pub fn since(&mut self, last_event_id: &str, now: Instant) -> Replay<'_> {
        self.expire(now);
        if self.newest.as_deref() == Some(last_event_id) {
            return Replay::UpToDate;
        }
        let Some(&seq) = self.index.get(last_event_id) else { return Replay::Gap };
        let start = (seq - self.first_seq + 1) as usize;
        if start >= self.entries.len() {
            return Replay::UpToDate;
        }
        Replay::Frames(ReplayFrames { inner: self.entries.range(start..) })
    }

    /// The id of the newest event pushed, if any.
    pub fn newest_id(&self) -> Option<&str> {
        self.newest.as_deref()
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of frames kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
