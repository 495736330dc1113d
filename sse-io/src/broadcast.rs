//! A broadcast channel with `Last-Event-ID` replay: publish once, deliver to
//! every subscriber, and let resuming clients catch up with no gap and no
//! duplicate.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use sse_proto::{EncodeError, Event, Replay, ReplayConfig, ReplayLog};

use crate::metrics::Metrics;

/// The event type of the reset event a resuming subscriber gets when the
/// events it missed are no longer known (its id is unknown or evicted), or
/// when it fell behind under [`SlowPolicy::DropOldest`]. Its data says which
/// (`gap` or `lagged`); after a gap its id is the newest id, so the client's
/// next resume starts from the present (after `lagged`, the events that
/// follow carry their own ids). A client that sees it must resynchronize
/// (fetch the state afresh) instead of assuming it saw every event.
pub const RESET_EVENT: &str = "sse-reset";

/// What happens to a subscriber whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Drop the subscriber: its stream closes and the client resumes with
    /// `Last-Event-ID`, catching up from the replay log. Nothing is lost
    /// while the log still holds what it missed.
    Disconnect,
    /// Drop its oldest queued events and send it a reset event.
    DropOldest,
}

/// What a resume finds in a [`ReplayStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resume {
    /// The frames after the id, oldest first.
    Frames(Vec<Bytes>),
    /// Nothing was missed.
    UpToDate,
    /// The id is unknown or evicted.
    Gap,
}

/// Where published frames are kept for replay. The in-memory
/// [`ReplayLog`] implements it; a distributed engine (Redis Streams, say)
/// can take its place.
pub trait ReplayStore: Send + 'static {
    /// A fresh, increasing id.
    fn next_id(&mut self) -> String;
    /// Keeps `frame` under `id`.
    fn append(&mut self, id: &str, frame: Bytes, now: Instant);
    /// What a subscriber that last saw `id` missed.
    fn since(&mut self, id: &str, now: Instant) -> Resume;
    /// The newest id appended, if any.
    fn newest_id(&self) -> Option<String>;
}

impl ReplayStore for ReplayLog {
    fn next_id(&mut self) -> String {
        ReplayLog::next_id(self)
    }
    fn append(&mut self, id: &str, frame: Bytes, now: Instant) {
        self.push(id, frame, now);
    }
    fn since(&mut self, id: &str, now: Instant) -> Resume {
        match ReplayLog::since(self, id, now) {
            Replay::Frames(frames) => Resume::Frames(frames.map(|(_, f)| f.clone()).collect()),
            Replay::UpToDate => Resume::UpToDate,
            Replay::Gap => Resume::Gap,
        }
    }
    fn newest_id(&self) -> Option<String> {
        ReplayLog::newest_id(self).map(str::to_owned)
    }
}

#[derive(Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    /// Dropped under the disconnect policy.
    dropped: bool,
    /// Frames were dropped under the drop-oldest policy: a reset goes first.
    lagged: bool,
    /// The subscription was dropped by its owner.
    gone: bool,
    /// The connection driver reading this queue directly (a subscription
    /// forwarded to a stream), woken on each publish.
    driver: Option<Waker>,
}

struct Queue {
    state: Mutex<QueueState>,
    ready: event_listener::Event,
}

impl QueueState {
    fn has_item(&self) -> bool {
        self.lagged || self.dropped || !self.frames.is_empty()
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct State {
    store: Box<dyn ReplayStore>,
    subscribers: Vec<Arc<Queue>>,
}

struct Inner {
    capacity: usize,
    policy: SlowPolicy,
    state: Mutex<State>,
    metrics: Option<Arc<Metrics>>,
}

/// A broadcast channel with replay. Clones share the channel.
///
/// `publish` encodes an event once into shared bytes, gives it an id,
/// appends it to the replay log and queues it for every subscriber; it never
/// waits for a subscriber. `subscribe` registers a subscriber and computes
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

/// Builds a [`Broadcast`]: queue capacity, slow policy, replay store and
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
    store: Option<Box<dyn ReplayStore>>,
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
    /// Frames queued per subscriber before the slow policy applies
    /// (default 256).
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

    /// Keeps the replay in `store` instead of the in-memory log.
    pub fn store(mut self, store: impl ReplayStore) -> Self {
        self.store = Some(Box::new(store));
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
        let store = self.store.unwrap_or_else(|| Box::new(ReplayLog::new(self.replay)));
        Broadcast {
            inner: Arc::new(Inner {
                capacity: self.capacity,
                policy: self.policy,
                state: Mutex::new(State { store, subscribers: Vec::new() }),
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
            store: None,
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
            None => state.store.next_id(),
        };
        let frame = event.id(id.as_str()).to_bytes()?;
        state.store.append(&id, frame.clone(), Instant::now());
        let capacity = self.inner.capacity;
        let policy = self.inner.policy;
        let metrics = self.inner.metrics.as_deref();
        state.subscribers.retain(|queue| {
            let mut q = queue.lock();
            if q.gone || q.dropped {
                return false;
            }
            if q.frames.len() >= capacity {
                if let Some(m) = metrics {
                    m.slow_drop();
                }
                match policy {
                    SlowPolicy::Disconnect => {
                        q.dropped = true;
                        q.frames = VecDeque::new();
                        let driver = q.driver.take();
                        drop(q);
                        wake_readers(queue, driver);
                        return false;
                    }
                    SlowPolicy::DropOldest => {
                        q.frames.pop_front();
                        q.lagged = true;
                    }
                }
            }
            q.frames.push_back(frame.clone());
            let driver = q.driver.take();
            drop(q);
            wake_readers(queue, driver);
            true
        });
        Ok(id)
    }

    /// Subscribes. With `last_event_id`, the subscription starts with what
    /// was missed after that id, or with a [`RESET_EVENT`] when that is no
    /// longer known.
    #[must_use = "dropping a subscription unsubscribes"]
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let queue =
            Arc::new(Queue { state: Mutex::new(QueueState::default()), ready: event_listener::Event::new() });
        let mut state = self.lock();
        if let Some(id) = last_event_id {
            let metrics = self.inner.metrics.as_deref();
            match state.store.since(id, Instant::now()) {
                Resume::Frames(frames) => {
                    if let Some(m) = metrics {
                        m.replayed(frames.len() as u64);
                    }
                    queue.lock().frames.extend(frames);
                }
                Resume::UpToDate => {}
                Resume::Gap => {
                    if let Some(m) = metrics {
                        m.reset();
                    }
                    let reset = reset_frame("gap", state.store.newest_id().as_deref());
                    queue.lock().frames.push_back(reset);
                }
            }
        }
        state.subscribers.push(queue.clone());
        drop(state);
        Subscription { queue, listener: None, ended: false }
    }

    /// Subscribers registered now (dropped ones are removed on the next
    /// publish).
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.iter().filter(|q| !q.lock().gone).count()
    }
}

/// Wakes whoever reads a queue: its driver, and tasks in `recv`.
fn wake_readers(queue: &Queue, driver: Option<Waker>) {
    if let Some(waker) = driver {
        waker.wake();
    }
    queue.ready.notify(usize::MAX);
}

fn reset_frame(reason: &str, newest: Option<&str>) -> Bytes {
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

/// One subscriber's view of a [`Broadcast`]: [`recv`](Self::recv) or use
/// it as a [`Stream`](futures_lite::Stream).
pub struct Subscription {
    queue: Arc<Queue>,
    listener: Option<event_listener::EventListener>,
    ended: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("queued", &self.queue.lock().frames.len()).finish()
    }
}

impl Subscription {
    /// The next frame, waiting for one; `Dropped` once the channel gave up
    /// on this subscriber (then forever).
    pub async fn recv(&mut self) -> SubscriptionItem {
        loop {
            let listener = {
                if let Some(item) = self.try_next() {
                    return item;
                }
                let listener = self.queue.ready.listen();
                // Look again: a publish between the two is not missed.
                if let Some(item) = self.try_next() {
                    return item;
                }
                listener
            };
            listener.await;
        }
    }

    /// Driver side of a forwarded subscription: hands queued frames to
    /// `take` until it returns false or none is left (then `waker` is woken
    /// by the next publish). Returns whether any frame was taken and whether
    /// the channel dropped this subscriber.
    pub(crate) fn drain(&mut self, waker: &Waker, mut take: impl FnMut(Bytes) -> bool) -> (bool, bool) {
        let mut q = self.queue.lock();
        let mut took = false;
        if q.lagged {
            q.lagged = false;
            took = true;
            if !take(reset_frame("lagged", None)) {
                return (true, false);
            }
        }
        while let Some(frame) = q.frames.pop_front() {
            took = true;
            if !take(frame) {
                return (true, false);
            }
        }
        if q.frames.capacity() > 16 {
            // A burst grew the queue; an idle subscriber holds nothing.
            q.frames = VecDeque::new();
        }
        if q.dropped {
            return (took, true);
        }
        if !q.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            q.driver = Some(waker.clone());
        }
        (took, false)
    }

    /// The next frame if one is queued, without waiting.
    pub fn try_next(&mut self) -> Option<SubscriptionItem> {
        let mut q = self.queue.lock();
        if q.lagged {
            q.lagged = false;
            return Some(SubscriptionItem::Frame(reset_frame("lagged", None)));
        }
        if let Some(frame) = q.frames.pop_front() {
            return Some(SubscriptionItem::Frame(frame));
        }
        q.dropped.then_some(SubscriptionItem::Dropped)
    }

    /// Frames waiting.
    pub fn queued(&self) -> usize {
        self.queue.lock().frames.len()
    }
}

/// The frames, then one `Dropped` if the channel gives up on this
/// subscriber; the stream ends after it.
impl futures_lite::Stream for Subscription {
    type Item = SubscriptionItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(item) = this.try_next() {
                this.ended = item == SubscriptionItem::Dropped;
                return Poll::Ready(Some(item));
            }
            let listener = this.listener.get_or_insert_with(|| this.queue.ready.listen());
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => this.listener = None,
                Poll::Pending => {
                    // Registered: look once more so a publish made before
                    // the listener existed is not missed.
                    if this.queue.lock().has_item() {
                        this.listener = None;
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut q = self.queue.lock();
        q.gone = true;
        q.frames.clear();
    }
}
