//! A broadcast channel with `Last-Event-ID` replay: publish once, deliver to
//! every subscriber, and let resuming clients catch up with no gap and no
//! duplicate.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use sse_proto::{EncodeError, Event, Replay, ReplayConfig, ReplayLog};

use crate::broker::{Broker, History, Position};
use crate::metrics::Metrics;
use crate::runtime::BoxFuture;
use crate::topics::Membership;

/// The event type of the reset event a resuming subscriber gets when the
/// events it missed are no longer known (its id is unknown or evicted), or
/// when it fell behind under [`SlowPolicy::DropOldest`]. Its data says which
/// (`gap` or `lagged`); after a gap its id is the newest id, so the client's
/// next resume starts from the present (after `lagged`, the events that
/// follow carry their own ids). A client that sees it must resynchronize
/// (fetch the state afresh) instead of assuming it saw every event.
pub const RESET_EVENT: &str = "sse-reset";

/// What happens to a subscriber that falls a whole capacity behind (the
/// channel keeps only the newest `capacity` frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Drop the subscriber: its stream closes and the client resumes with
    /// `Last-Event-ID`, catching up from the replay log. Nothing is lost
    /// while the log still holds what it missed.
    Disconnect,
    /// Skip the events it missed and send it a reset event first.
    DropOldest,
}

/// The shortest list of waiters checked for dropped subscriptions.
const COMPACT_MIN: usize = 64;

/// A channel's live frames, shared by its subscribers: the newest
/// `capacity` frames, which every subscriber reads from its own cursor.
///
/// A publish appends one frame here and wakes only the subscribers that
/// wait for it (those that read everything before). It does not touch the
/// others: with thousands of subscribers on several threads, writing into
/// each one's queue cost more than the rest of a delivery (every subscriber's
/// lock and buffer lived in another core's cache).
pub(crate) struct Live {
    state: Mutex<LiveState>,
    capacity: usize,
    policy: SlowPolicy,
    metrics: Option<Arc<Metrics>>,
}

struct LiveState {
    /// The frames numbered `next - frames.len() .. next`, with the
    /// channel's sequence numbers (0 for a [`Broadcast`]).
    frames: VecDeque<(u64, Bytes)>,
    /// The number the next frame gets.
    next: u64,
    /// Subscribers that read every frame and wait for the next, with their
    /// queues (a subscription dropped while waiting is found by its queue
    /// and forgotten, so that a quiet channel with clients coming and going
    /// does not hold their tasks).
    waiters: Vec<(Arc<Queue>, Waker)>,
    /// The previous `waiters`, kept for its capacity.
    spare: Vec<(Arc<Queue>, Waker)>,
    /// `waiters` is checked for dropped subscriptions when it reaches this
    /// length.
    compact_at: usize,
    /// How many times `waiters` was emptied: a subscriber registered at
    /// this epoch is in the list.
    epoch: u64,
}

impl LiveState {
    fn first(&self) -> u64 {
        self.next - self.frames.len() as u64
    }
}

impl Live {
    pub(crate) fn new(capacity: usize, policy: SlowPolicy, metrics: Option<Arc<Metrics>>) -> Arc<Live> {
        Arc::new(Live {
            state: Mutex::new(LiveState {
                frames: VecDeque::new(),
                next: 0,
                waiters: Vec::new(),
                spare: Vec::new(),
                compact_at: COMPACT_MIN,
                epoch: 0,
            }),
            capacity,
            policy,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number the next frame gets: where a subscriber that joins now
    /// starts reading.
    pub(crate) fn next(&self) -> u64 {
        self.lock().next
    }

    /// Appends a frame (sequence number `seq`) and wakes the subscribers
    /// waiting for it. Returns whether the subscriber list is due for a
    /// [`sweep`](Self::sweep).
    pub(crate) fn push(&self, seq: u64, frame: Bytes) -> bool {
        let mut st = self.lock();
        st.frames.push_back((seq, frame));
        st.next += 1;
        if st.frames.len() > self.capacity {
            st.frames.pop_front();
        }
        // Every half capacity: a subscriber is found a whole capacity
        // behind at most half a capacity late.
        let sweep = st.next.is_multiple_of((self.capacity as u64 / 2).max(1));
        if st.waiters.is_empty() {
            return sweep;
        }
        let mut waiters = std::mem::take(&mut st.spare);
        std::mem::swap(&mut waiters, &mut st.waiters);
        st.epoch += 1;
        drop(st);
        for (_, waker) in waiters.drain(..) {
            waker.wake();
        }
        let mut st = self.lock();
        if st.spare.capacity() < waiters.capacity() {
            st.spare = waiters;
        }
        sweep
    }

    /// Forgets the subscribers that left, and drops those that fell a whole
    /// capacity behind under the disconnect policy, so that a subscriber
    /// that stopped reading is dropped promptly (one that reads finds out
    /// itself).
    pub(crate) fn sweep(&self, subscribers: &mut Vec<Arc<Queue>>) {
        let first = self.lock().first();
        subscribers.retain(|queue| {
            let mut q = queue.lock();
            if q.gone || q.dropped {
                return false;
            }
            if q.cursor < first && self.policy == SlowPolicy::Disconnect {
                self.drop_slow(&mut q);
                queue.wake(q);
                return false;
            }
            true
        });
    }

    fn drop_slow(&self, q: &mut QueueState) {
        if let Some(m) = self.metrics.as_deref() {
            m.slow_drop();
        }
        q.dropped = true;
        q.pending = None;
        q.frames = VecDeque::new();
    }
}

#[derive(Default)]
struct QueueState {
    /// Frames that go before the live ones: a replay, a reset.
    frames: VecDeque<Bytes>,
    /// The number of the next live frame to read.
    cursor: u64,
    /// The live epoch this subscriber's waker was registered at, plus one
    /// (0: not registered).
    registered: u64,
    /// Dropped under the disconnect policy.
    dropped: bool,
    /// Frames were skipped under the drop-oldest policy: a reset goes first.
    lagged: bool,
    /// The subscription was dropped by its owner.
    gone: bool,
    /// The driver gathers a burst: reading everything does not register
    /// it for the next publish (the coalescing tick wakes it).
    paused: bool,
    /// Whoever reads this queue (a connection driver, or a task in `recv`):
    /// registered with the live frames, and woken when the queue changes
    /// other than by a publish (a replay is in, a reset, a drop).
    driver: Option<Waker>,
    /// A topic subscriber resuming through a broker: live frames wait in
    /// the channel until its replay is merged in front of them.
    pending: Option<Pending>,
}

/// Adds a subscriber to a channel's list. A list that reached a power of
/// two (from 64) is first cleared of subscriptions dropped since, so that a
/// channel nobody publishes to, with clients coming and going, does not
/// keep them (publishes clear it too, in [`Live::sweep`]).
pub(crate) fn join(subscribers: &mut Vec<Arc<Queue>>, queue: Arc<Queue>) {
    let len = subscribers.len();
    if len >= COMPACT_MIN && len.is_power_of_two() {
        subscribers.retain(|q| !q.gone.load(Ordering::Relaxed));
    }
    subscribers.push(queue);
}

/// A resuming topic subscriber's place, held while its replay is read
/// (subscribe, replay, merge: nothing published meanwhile is missed, since
/// the channel keeps the live frames, and what the replay already holds is
/// dropped by sequence number).
#[derive(Default)]
pub(crate) struct Pending {
    /// The channel's position when this subscriber joined: `None` until the
    /// broker started the topic's live feed, then the newest event
    /// delivered before this subscriber (`Some(None)`: none).
    pub(crate) until: Option<Option<Position>>,
    /// The broker lost track of the topic meanwhile: the merge becomes a
    /// reset at this position.
    pub(crate) lost: Option<Option<Position>>,
}

/// One subscriber's state: what goes before the live frames, and where it
/// reads them.
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    live: Arc<Live>,
    /// The subscription was dropped (also in the state, under its lock;
    /// here for the live frames' waiters, without it).
    gone: AtomicBool,
}

impl Queue {
    /// A subscriber of `live` that reads from frame number `cursor` on.
    pub(crate) fn new(live: Arc<Live>, cursor: u64, pending: Option<Pending>) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(QueueState { cursor, pending, ..QueueState::default() }),
            live,
            gone: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever reads the queue.
    fn wake(&self, q: std::sync::MutexGuard<'_, QueueState>) {
        let driver = q.driver.clone();
        drop(q);
        if let Some(waker) = driver {
            waker.wake();
        }
    }

    /// A topic channel learned its position: a resuming subscriber can read
    /// its replay now.
    pub(crate) fn set_start(&self, position: Option<Position>) {
        let mut q = self.lock();
        if let Some(pending) = q.pending.as_mut().filter(|p| p.until.is_none()) {
            pending.until = Some(position);
            self.wake(q);
        }
    }

    /// The broker lost track of the topic: a reset goes out at `position`
    /// (after the live frames not read yet), or replaces a pending replay.
    pub(crate) fn set_lost(&self, position: Option<&Position>) {
        let mut q = self.lock();
        if q.gone || q.dropped {
            return;
        }
        let live = self.live.lock();
        if let Some(pending) = q.pending.as_mut() {
            // What came before the loss is not merged: the reset stands for it.
            pending.lost = Some(position.cloned());
            if pending.until.is_none() {
                pending.until = Some(position.cloned());
            }
        } else {
            let first = live.first();
            q.lagged |= q.cursor < first;
            let from = q.cursor.max(first);
            let unread: Vec<Bytes> =
                live.frames.range((from - first) as usize..).map(|(_, f)| f.clone()).collect();
            q.frames.extend(unread);
            q.frames.push_back(reset_frame("gap", position.map(Position::id)));
        }
        q.cursor = live.next;
        drop(live);
        self.wake(q);
    }
}

struct State {
    log: ReplayLog,
    subscribers: Vec<Arc<Queue>>,
}

struct Inner {
    state: Mutex<State>,
    live: Arc<Live>,
    metrics: Option<Arc<Metrics>>,
}

/// A broadcast channel with replay. Clones share the channel.
///
/// `publish` encodes an event once into shared bytes, gives it an id,
/// appends it to the replay log and to the live frames every subscriber
/// reads from its own place; it never waits for a subscriber. `subscribe` registers a subscriber and computes
/// its replay atomically with respect to `publish`, so a resuming client
/// gets exactly the events after its id, then the live ones: no gap, no
/// duplicate.
#[derive(Clone)]
pub struct Broadcast {
    inner: Arc<Inner>,
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast").field("subscribers", &self.subscriber_count()).finish()
    }
}

/// Builds a [`Broadcast`]: queue capacity, slow policy, replay bounds and
/// counters together.
///
/// ```
/// use sse_io::{Broadcast, ReplayConfig, SlowPolicy};
/// let mut replay = ReplayConfig::default();
/// replay.max_events = 10_000;
/// let feed = Broadcast::builder().capacity(512).policy(SlowPolicy::DropOldest).replay(replay).build();
/// # let _ = feed;
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct BroadcastBuilder {
    capacity: usize,
    policy: SlowPolicy,
    replay: ReplayConfig,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for BroadcastBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastBuilder")
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("replay", &self.replay)
            .finish()
    }
}

impl BroadcastBuilder {
    /// Live frames kept: how far a subscriber may fall behind before the
    /// slow policy applies (default 256).
    pub fn capacity(mut self, frames: usize) -> Self {
        self.capacity = frames.max(1);
        self
    }

    /// What happens to a subscriber that falls behind (default
    /// [`SlowPolicy::Disconnect`]).
    pub fn policy(mut self, policy: SlowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Bounds of the in-memory replay log (count, bytes, age).
    pub fn replay(mut self, replay: ReplayConfig) -> Self {
        self.replay = replay;
        self
    }

    /// Counts replays, resets and slow-subscriber drops in `metrics` (the
    /// server's, from [`Server::metrics`](crate::Server::metrics)).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The channel.
    pub fn build(self) -> Broadcast {
        let log = ReplayLog::new(self.replay);
        Broadcast {
            inner: Arc::new(Inner {
                state: Mutex::new(State { log, subscribers: Vec::new() }),
                live: Live::new(self.capacity, self.policy, self.metrics.clone()),
                metrics: self.metrics,
            }),
        }
    }
}

impl Default for Broadcast {
    fn default() -> Self {
        Broadcast::builder().build()
    }
}

impl Broadcast {
    /// A builder; [`Broadcast::default`] is a channel with the defaults.
    pub fn builder() -> BroadcastBuilder {
        BroadcastBuilder {
            capacity: 256,
            policy: SlowPolicy::Disconnect,
            replay: ReplayConfig::default(),
            metrics: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes an event to every subscriber and the replay log. An event
    /// without an id gets the next generated one. Returns the id.
    ///
    /// # Errors
    ///
    /// The event's [`EncodeError`]; nothing is published then.
    pub fn publish(&self, event: Event<'_>) -> Result<String, EncodeError> {
        let mut state = self.lock();
        let id = match event.id_str() {
            Some(id) => id.to_owned(),
            None => state.log.next_id(),
        };
        let frame = event.id(id.as_str()).to_bytes()?;
        state.log.push(&id, frame.clone(), Instant::now());
        // Under the state lock: a subscriber joins before or after this
        // frame, never beside it.
        if self.inner.live.push(0, frame) {
            self.inner.live.sweep(&mut state.subscribers);
        }
        Ok(id)
    }

    /// Subscribes. With `last_event_id`, the subscription starts with what
    /// was missed after that id, or with a [`RESET_EVENT`] when that is no
    /// longer known.
    #[must_use = "dropping a subscription unsubscribes"]
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let mut state = self.lock();
        let queue = Queue::new(self.inner.live.clone(), self.inner.live.next(), None);
        if let Some(id) = last_event_id {
            let metrics = self.inner.metrics.as_deref();
            let mut q = queue.lock();
            match state.log.since(id, Instant::now()) {
                Replay::Frames(frames) => {
                    if let Some(m) = metrics {
                        m.replayed(frames.len() as u64);
                    }
                    q.frames.extend(frames.map(|(_, f)| f.clone()));
                }
                Replay::UpToDate => {}
                Replay::Gap => {
                    if let Some(m) = metrics {
                        m.reset();
                    }
                    q.frames.push_back(reset_frame("gap", state.log.newest_id()));
                }
            }
        }
        join(&mut state.subscribers, queue.clone());
        drop(state);
        Subscription::new(queue, None, None)
    }

    /// Subscribers registered now (dropped ones are removed on the next
    /// publish).
    pub fn subscriber_count(&self) -> usize {
        self.lock()
            .subscribers
            .iter()
            .filter(|q| {
                let q = q.lock();
                !q.gone && !q.dropped
            })
            .count()
    }
}

pub(crate) fn reset_frame(reason: &str, newest: Option<&str>) -> Bytes {
    let mut event = Event::new(reason).event(RESET_EVENT);
    if let Some(id) = newest {
        event = event.id(id);
    }
    // The type and reason are constants and the id came out of the log.
    event.to_bytes().unwrap_or_default()
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionItem {
    /// An encoded event (replayed or live), ready to write.
    Frame(Bytes),
    /// The channel dropped this subscriber for falling behind (disconnect
    /// policy): close the stream so the client resumes by replay.
    Dropped,
}

/// A topic subscriber's resume: the broker's replay after its id, read by
/// whoever reads the subscription (the connection driver, for a forwarded
/// one), then merged in front of the live frames held meanwhile.
pub(crate) struct Resume {
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) topic: Arc<str>,
    pub(crate) after: String,
    pub(crate) replay: Option<BoxFuture<'static, History>>,
}

/// One subscriber's view of a [`Broadcast`] or of a topic of
/// [`Topics`](crate::Topics): [`recv`](Self::recv) or use it as a
/// [`Stream`](futures_lite::Stream).
pub struct Subscription {
    queue: Arc<Queue>,
    ended: bool,
    resume: Option<Box<Resume>>,
    /// A topic subscriber's place in its channel (left on drop).
    member: Option<Membership>,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.queue.lock().frames.len())
            .field("resuming", &self.resume.is_some())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(queue: Arc<Queue>, resume: Option<Box<Resume>>, member: Option<Membership>) -> Self {
        Subscription { queue, ended: false, resume, member, metrics: None }
    }

    pub(crate) fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Moves a resume along: once the channel knows where this subscriber
    /// joined, reads the replay (polled with `waker`) and merges it in
    /// front of the live frames published meanwhile. Locks are not held
    /// while the replay is polled (a broker may take its own).
    fn advance(&mut self, waker: &Waker) {
        let Some(resume) = self.resume.as_mut() else { return };
        if resume.replay.is_none() {
            let until = {
                let mut q = self.queue.lock();
                let Some(pending) = q.pending.as_ref() else {
                    // Dropped meanwhile.
                    self.resume = None;
                    return;
                };
                match (&pending.lost, &pending.until) {
                    (Some(_), _) => None,
                    (None, Some(until)) => Some(until.clone()),
                    (None, None) => {
                        // The channel has not started: its start wakes us.
                        if !q.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
                            q.driver = Some(waker.clone());
                        }
                        return;
                    }
                }
            };
            match until {
                Some(until) => {
                    resume.replay = Some(resume.broker.replay(&resume.topic, &resume.after, until))
                }
                None => {
                    // Lost before the replay began: the merge is a reset.
                    self.merge(History::Gap);
                    return;
                }
            }
        }
        let Some(replay) = resume.replay.as_mut() else { return };
        if let Poll::Ready(history) = replay.as_mut().poll(&mut Context::from_waker(waker)) {
            self.merge(history);
        }
    }

    /// The replay is in: replayed frames, then the live ones published
    /// since this subscriber joined that it does not already hold (by
    /// sequence number); a reset first after a gap.
    fn merge(&mut self, history: History) {
        self.resume = None;
        let mut q = self.queue.lock();
        let Some(pending) = q.pending.take() else { return };
        let metrics = self.metrics.as_deref();
        let until = pending.until.flatten();
        let mut frames = VecDeque::new();
        let through = match (pending.lost, history) {
            (Some(at), _) => {
                // The broker lost track meanwhile: what is live came after.
                frames.push_back(reset_frame("gap", at.as_ref().map(Position::id)));
                metrics.inspect(|m| m.reset());
                None
            }
            (None, History::Gap) => {
                frames.push_back(reset_frame("gap", until.as_ref().map(Position::id)));
                metrics.inspect(|m| m.reset());
                None
            }
            (None, History::UpToDate { seq }) => Some(seq),
            (None, History::Events(entries)) => {
                metrics.inspect(|m| m.replayed(entries.len() as u64));
                let last = entries.last().map(|e| e.seq);
                frames.extend(entries.into_iter().map(|e| e.frame));
                last
            }
        };
        let live = self.queue.live.clone();
        let live = live.lock();
        let first = live.first();
        if q.cursor < first {
            // The live frames outgrew the channel while the replay was read.
            match live_policy(&self.queue) {
                SlowPolicy::Disconnect => {
                    self.queue.live.drop_slow(&mut q);
                    drop(live);
                    self.queue.wake(q);
                    return;
                }
                SlowPolicy::DropOldest => {
                    if let Some(m) = metrics {
                        m.slow_drop();
                    }
                    q.lagged = true;
                    q.cursor = first;
                }
            }
        }
        // The live frames the replay does not hold go in front too: the
        // cursor moves past them.
        let from = (q.cursor - first) as usize;
        frames.extend(
            live.frames
                .range(from..)
                .filter(|(seq, _)| through.is_none_or(|t| *seq > t))
                .map(|(_, f)| f.clone()),
        );
        q.cursor = live.next;
        drop(live);
        q.frames = frames;
        self.queue.wake(q);
    }

    /// The next frame, waiting for one; `Dropped` once the channel gave up
    /// on this subscriber (then forever).
    pub async fn recv(&mut self) -> SubscriptionItem {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<SubscriptionItem> {
        self.advance(cx.waker());
        let mut next = None;
        let (_, dropped) = self.pull(Some(cx.waker()), |frame| {
            next = Some(frame.clone());
            false
        });
        match next {
            Some(frame) => Poll::Ready(SubscriptionItem::Frame(frame)),
            None if dropped => Poll::Ready(SubscriptionItem::Dropped),
            // Registered with the queue and the live frames.
            None => Poll::Pending,
        }
    }

    /// Driver side: publishes stop waking the driver until
    /// [`resume`](Self::resume) (frames still come in), while it gathers a
    /// burst for one write. (A waker registered before stays registered
    /// until the next publish: at most one wake-up more.)
    pub(crate) fn pause(&self) {
        self.queue.lock().paused = true;
    }

    /// Driver side: the burst is gathered; the next read of everything
    /// registers for the next publish again.
    pub(crate) fn resume(&self) {
        self.queue.lock().paused = false;
    }

    /// Driver side of a forwarded subscription: hands frames to `take`
    /// until it returns false or none is left (then `waker` is woken by the
    /// next publish, or by the replay of a resuming subscriber). Returns
    /// whether any frame was taken and whether the channel dropped this
    /// subscriber.
    pub(crate) fn drain(&mut self, waker: &Waker, take: impl FnMut(&Bytes) -> bool) -> (bool, bool) {
        self.advance(waker);
        self.pull(Some(waker), take)
    }

    /// Hands frames to `take` (the ones before the live frames, then the
    /// live ones from this subscriber's cursor) until it returns false or
    /// none is left; with `waker`, registers it for what comes next.
    /// Returns whether any frame was taken and whether the channel dropped
    /// this subscriber.
    ///
    /// `take` borrows each frame: a live frame is not cloned (its count is
    /// shared by every subscriber, on every core).
    fn pull(&mut self, waker: Option<&Waker>, mut take: impl FnMut(&Bytes) -> bool) -> (bool, bool) {
        let queue = &*self.queue;
        let mut q = queue.lock();
        if let Some(waker) = waker
            && !q.driver.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            q.driver = Some(waker.clone());
            q.registered = 0;
        }
        if q.dropped {
            return (false, true);
        }
        if q.pending.is_some() {
            // Live frames wait in the channel until the replay is merged.
            return (false, false);
        }
        let mut took = false;
        if q.lagged {
            q.lagged = false;
            took = true;
            if !take(&reset_frame("lagged", None)) {
                return (true, false);
            }
        }
        while let Some(frame) = q.frames.pop_front() {
            took = true;
            if !take(&frame) {
                return (true, false);
            }
        }
        if q.frames.capacity() > 16 {
            // A replay grew the queue; an idle subscriber holds nothing.
            q.frames = VecDeque::new();
        }
        let mut live = queue.live.lock();
        let first = live.first();
        if q.cursor < first {
            // Fell a whole capacity behind.
            match live_policy(queue) {
                SlowPolicy::Disconnect => {
                    queue.live.drop_slow(&mut q);
                    return (took, true);
                }
                SlowPolicy::DropOldest => {
                    if let Some(m) = queue.live.metrics.as_deref() {
                        m.slow_drop();
                    }
                    q.cursor = first;
                    took = true;
                    if !take(&reset_frame("lagged", None)) {
                        return (true, false);
                    }
                }
            }
        }
        while q.cursor < live.next {
            let frame = &live.frames[(q.cursor - first) as usize].1;
            q.cursor += 1;
            took = true;
            if !take(frame) {
                return (true, false);
            }
        }
        // Read everything: wait for the next publish.
        if waker.is_some() && !q.paused && q.registered != live.epoch + 1 {
            if let Some(driver) = q.driver.as_ref() {
                if live.waiters.len() >= live.compact_at {
                    live.waiters.retain(|(queue, _)| !queue.gone.load(Ordering::Relaxed));
                    live.compact_at = (live.waiters.len() * 2).max(COMPACT_MIN);
                }
                live.waiters.push((self.queue.clone(), driver.clone()));
            }
            q.registered = live.epoch + 1;
        }
        (took, false)
    }

    /// The next frame if one is queued, without waiting. (A resuming topic
    /// subscriber has none until its replay is in.)
    pub fn try_next(&mut self) -> Option<SubscriptionItem> {
        self.advance(Waker::noop());
        let mut next = None;
        let (_, dropped) = self.pull(None, |frame| {
            next = Some(frame.clone());
            false
        });
        match next {
            Some(frame) => Some(SubscriptionItem::Frame(frame)),
            None => dropped.then_some(SubscriptionItem::Dropped),
        }
    }

    /// Frames waiting.
    pub fn queued(&self) -> usize {
        let q = self.queue.lock();
        if q.dropped {
            return 0;
        }
        let next = self.queue.live.next();
        q.frames.len()
            + usize::from(q.lagged)
            + (next.saturating_sub(q.cursor) as usize).min(self.queue.live.capacity)
    }

    /// Whether this subscriber is still waiting for its replay (a topic
    /// subscriber resuming through a broker that is slow or unreachable).
    pub fn is_resuming(&self) -> bool {
        self.resume.is_some()
    }
}

/// The slow policy of a queue's channel.
fn live_policy(queue: &Queue) -> SlowPolicy {
    queue.live.policy
}

/// The frames, then one `Dropped` if the channel gives up on this
/// subscriber; the stream ends after it.
impl futures_lite::Stream for Subscription {
    type Item = SubscriptionItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        this.poll_recv(cx).map(|item| {
            this.ended = item == SubscriptionItem::Dropped;
            Some(item)
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        {
            let mut q = self.queue.lock();
            q.gone = true;
            self.queue.gone.store(true, Ordering::Relaxed);
            q.frames = VecDeque::new();
            q.pending = None;
            q.driver = None;
        }
        if let Some(member) = self.member.take() {
            member.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn data(item: SubscriptionItem) -> String {
        match item {
            SubscriptionItem::Frame(frame) => String::from_utf8(frame.to_vec()).unwrap(),
            SubscriptionItem::Dropped => "dropped".into(),
        }
    }

    fn publish(feed: &Broadcast, text: &str) {
        feed.publish(Event::new(text)).unwrap();
    }

    #[test]
    fn a_waiting_subscriber_is_woken_by_a_publish() {
        let feed = Broadcast::default();
        let mut sub = feed.subscribe(None);
        let publisher = feed.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            publish(&publisher, "a");
            publish(&publisher, "b");
        });
        assert_eq!(data(block_on(sub.recv())), "id: 1\ndata: a\n\n");
        assert_eq!(data(block_on(sub.recv())), "id: 2\ndata: b\n\n");
        thread.join().unwrap();
        assert_eq!(sub.try_next(), None);
    }

    #[test]
    fn drop_oldest_skips_to_the_newest_frames_after_a_reset() {
        let feed = Broadcast::builder().capacity(4).policy(SlowPolicy::DropOldest).build();
        let mut sub = feed.subscribe(None);
        for n in 0..10 {
            publish(&feed, &n.to_string());
        }
        assert_eq!(sub.queued(), 4);
        let first = data(sub.try_next().unwrap());
        assert!(first.contains("event: sse-reset") && first.contains("data: lagged"), "{first}");
        let rest: Vec<String> = (0..4).map(|_| data(sub.try_next().unwrap())).collect();
        assert_eq!(
            rest,
            ["id: 7\ndata: 6\n\n", "id: 8\ndata: 7\n\n", "id: 9\ndata: 8\n\n", "id: 10\ndata: 9\n\n"]
        );
        assert_eq!(sub.try_next(), None);
        publish(&feed, "10");
        assert_eq!(data(sub.try_next().unwrap()), "id: 11\ndata: 10\n\n");
        assert_eq!(feed.subscriber_count(), 1);
    }

    #[test]
    fn disconnect_drops_a_subscriber_that_stopped_reading_and_keeps_one_that_reads() {
        let metrics = Arc::new(Metrics::default());
        let feed = Broadcast::builder().capacity(4).metrics(metrics.clone()).build();
        let mut idle = feed.subscribe(None);
        let mut reader = feed.subscribe(None);
        for n in 0..4 {
            publish(&feed, &n.to_string());
        }
        assert_eq!(feed.subscriber_count(), 2, "a full queue is not behind yet");
        for _ in 0..4 {
            assert!(matches!(reader.try_next(), Some(SubscriptionItem::Frame(_))));
        }
        for n in 4..40 {
            publish(&feed, &n.to_string());
            assert!(matches!(reader.try_next(), Some(SubscriptionItem::Frame(_))));
            assert_eq!(reader.try_next(), None);
        }
        // Found by the publisher's sweep, without reading.
        assert_eq!(feed.subscriber_count(), 1);
        assert_eq!(metrics.slow_client_drops(), 1);
        assert_eq!(idle.try_next(), Some(SubscriptionItem::Dropped));
        assert_eq!(block_on(idle.recv()), SubscriptionItem::Dropped);
        assert_eq!(idle.queued(), 0);
    }

    #[test]
    fn a_quiet_channel_forgets_the_waiters_that_left() {
        let feed = Broadcast::default();
        let mut staying = feed.subscribe(None);
        assert!(block_on(futures_lite::future::poll_once(staying.recv())).is_none());
        for _ in 0..10_000 {
            let mut sub = feed.subscribe(None);
            assert!(block_on(futures_lite::future::poll_once(sub.recv())).is_none());
        }
        let waiting = feed.inner.live.lock().waiters.len();
        assert!(waiting <= 2 * COMPACT_MIN, "{waiting} wakers held for one subscriber");
        publish(&feed, "x");
        assert_eq!(data(block_on(staying.recv())), "id: 1\ndata: x\n\n");
    }

    #[test]
    fn a_quiet_channel_forgets_the_subscribers_that_left() {
        let feed = Broadcast::default();
        let _staying = feed.subscribe(None);
        for _ in 0..10_000 {
            drop(feed.subscribe(None));
        }
        let listed = feed.lock().subscribers.len();
        assert!(listed <= 2 * COMPACT_MIN, "{listed} subscribers listed for one");
        assert_eq!(feed.subscriber_count(), 1);
    }

    #[test]
    fn a_resume_replays_then_goes_live_without_gap_or_duplicate() {
        let feed = Broadcast::default();
        for n in 0..5 {
            publish(&feed, &n.to_string());
        }
        let mut sub = feed.subscribe(Some("2"));
        publish(&feed, "5");
        let got: Vec<String> = std::iter::from_fn(|| sub.try_next()).map(data).collect();
        let want: Vec<String> = (2..6).map(|n| format!("id: {}\ndata: {n}\n\n", n + 1)).collect();
        assert_eq!(got, want);
    }
}
