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
    /// A topic subscriber resuming through a broker: live frames wait here
    /// until its replay is merged in front of them.
    pending: Option<Pending>,
}

/// A resuming topic subscriber's live frames, held while its replay is read
/// (subscribe, buffer, replay, merge: nothing published meanwhile is missed,
/// and what the replay already holds is dropped by sequence number).
#[derive(Default)]
pub(crate) struct Pending {
    /// Live frames with their sequence numbers, oldest first.
    pub(crate) buffered: VecDeque<(u64, Bytes)>,
    /// The channel's position when this subscriber joined: `None` until the
    /// broker started the topic's live feed, then the newest event
    /// delivered before this subscriber (`Some(None)`: none).
    pub(crate) until: Option<Option<Position>>,
    /// The broker lost track of the topic meanwhile: the merge becomes a
    /// reset at this position.
    pub(crate) lost: Option<Option<Position>>,
    /// Frames were dropped under the drop-oldest policy.
    pub(crate) lagged: bool,
}

pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: event_listener::Event,
}

impl QueueState {
    fn has_item(&self) -> bool {
        self.pending.is_none() && (self.lagged || self.dropped || !self.frames.is_empty())
    }
}

impl Queue {
    pub(crate) fn new(pending: Option<Pending>) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(QueueState { pending, ..QueueState::default() }),
            ready: event_listener::Event::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever reads the queue.
    fn wake(&self, mut q: std::sync::MutexGuard<'_, QueueState>) {
        let driver = q.driver.take();
        drop(q);
        wake_readers(self, driver);
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
    /// (after what is queued), or replaces a pending replay.
    pub(crate) fn set_lost(&self, position: Option<&Position>) {
        let mut q = self.lock();
        if q.gone || q.dropped {
            return;
        }
        if let Some(pending) = q.pending.as_mut() {
            pending.buffered.clear();
            pending.lost = Some(position.cloned());
            if pending.until.is_none() {
                pending.until = Some(position.cloned());
            }
        } else {
            q.frames.push_back(reset_frame("gap", position.map(Position::id)));
        }
        self.wake(q);
    }
}

/// Offers `frame` (sequence number `seq`) to one subscriber queue, applying
/// the slow policy; false once the subscriber is gone or dropped.
pub(crate) fn offer(
    queue: &Queue,
    frame: &Bytes,
    seq: u64,
    capacity: usize,
    policy: SlowPolicy,
    metrics: Option<&Metrics>,
) -> bool {
    let mut q = queue.lock();
    if q.gone || q.dropped {
        return false;
    }
    let len = match &q.pending {
        Some(p) => p.buffered.len(),
        None => q.frames.len(),
    };
    if len >= capacity {
        if let Some(m) = metrics {
            m.slow_drop();
        }
        match policy {
            SlowPolicy::Disconnect => {
                q.dropped = true;
                q.pending = None;
                q.frames = VecDeque::new();
                queue.wake(q);
                return false;
            }
            SlowPolicy::DropOldest => match q.pending.as_mut() {
                Some(p) => {
                    p.buffered.pop_front();
                    p.lagged = true;
                }
                None => {
                    q.frames.pop_front();
                    q.lagged = true;
                }
            },
        }
    }
    match q.pending.as_mut() {
        Some(p) => p.buffered.push_back((seq, frame.clone())),
        None => q.frames.push_back(frame.clone()),
    }
    queue.wake(q);
    true
}

struct State {
    log: ReplayLog,
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
                capacity: self.capacity,
                policy: self.policy,
                state: Mutex::new(State { log, subscribers: Vec::new() }),
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
        let (capacity, policy) = (self.inner.capacity, self.inner.policy);
        let metrics = self.inner.metrics.as_deref();
        state.subscribers.retain(|queue| offer(queue, &frame, 0, capacity, policy, metrics));
        Ok(id)
    }

    /// Subscribes. With `last_event_id`, the subscription starts with what
    /// was missed after that id, or with a [`RESET_EVENT`] when that is no
    /// longer known.
    #[must_use = "dropping a subscription unsubscribes"]
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let queue = Queue::new(None);
        let mut state = self.lock();
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
        state.subscribers.push(queue.clone());
        drop(state);
        Subscription::new(queue, None, None)
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
    listener: Option<event_listener::EventListener>,
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
        Subscription { queue, listener: None, ended: false, resume, member, metrics: None }
    }

    pub(crate) fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Moves a resume along: once the channel knows where this subscriber
    /// joined, reads the replay (polled with `waker`) and merges it in
    /// front of the live frames held meanwhile. Locks are not held while
    /// the replay is polled (a broker may take its own).
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

    /// The replay is in: replayed frames, then the live ones it does not
    /// already hold (by sequence number); a reset first after a gap.
    fn merge(&mut self, history: History) {
        self.resume = None;
        let mut q = self.queue.lock();
        let Some(pending) = q.pending.take() else { return };
        let metrics = self.metrics.as_deref();
        let until = pending.until.flatten();
        let mut frames = VecDeque::with_capacity(pending.buffered.len());
        let through = match (pending.lost, history) {
            (Some(at), _) => {
                // The broker lost track meanwhile: what is buffered came after.
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
        frames.extend(
            pending.buffered.into_iter().filter(|(seq, _)| through.is_none_or(|t| *seq > t)).map(|(_, f)| f),
        );
        q.frames = frames;
        q.lagged |= pending.lagged;
        self.queue.wake(q);
    }

    /// The next frame, waiting for one; `Dropped` once the channel gave up
    /// on this subscriber (then forever).
    pub async fn recv(&mut self) -> SubscriptionItem {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<SubscriptionItem> {
        loop {
            self.advance(cx.waker());
            if let Some(item) = self.take_next() {
                self.listener = None;
                return Poll::Ready(item);
            }
            let listener = self.listener.get_or_insert_with(|| self.queue.ready.listen());
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => self.listener = None,
                Poll::Pending => {
                    // Registered: look once more so a publish made before
                    // the listener existed is not missed.
                    let q = self.queue.lock();
                    if q.has_item() || (q.pending.is_none() && self.resume.is_some()) {
                        drop(q);
                        self.listener = None;
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Driver side: publishes stop waking the driver until its next
    /// [`drain`](Self::drain) (frames still queue up), while it gathers a
    /// burst for one write.
    pub(crate) fn pause(&self) {
        self.queue.lock().driver = None;
    }

    /// Driver side of a forwarded subscription: hands queued frames to
    /// `take` until it returns false or none is left (then `waker` is woken
    /// by the next publish, or by the replay of a resuming subscriber).
    /// Returns whether any frame was taken and whether the channel dropped
    /// this subscriber.
    pub(crate) fn drain(&mut self, waker: &Waker, mut take: impl FnMut(Bytes) -> bool) -> (bool, bool) {
        self.advance(waker);
        let mut q = self.queue.lock();
        let mut took = false;
        if q.pending.is_none() {
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
        }
        if q.dropped {
            return (took, true);
        }
        if !q.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            q.driver = Some(waker.clone());
        }
        (took, false)
    }

    /// The next frame if one is queued, without waiting. (A resuming topic
    /// subscriber has none until its replay is in.)
    pub fn try_next(&mut self) -> Option<SubscriptionItem> {
        self.advance(Waker::noop());
        self.take_next()
    }

    fn take_next(&mut self) -> Option<SubscriptionItem> {
        let mut q = self.queue.lock();
        if q.pending.is_some() {
            return q.dropped.then_some(SubscriptionItem::Dropped);
        }
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
        let q = self.queue.lock();
        q.frames.len() + q.pending.as_ref().map_or(0, |p| p.buffered.len())
    }

    /// Whether this subscriber is still waiting for its replay (a topic
    /// subscriber resuming through a broker that is slow or unreachable).
    pub fn is_resuming(&self) -> bool {
        self.resume.is_some()
    }
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
            q.frames.clear();
            q.pending = None;
        }
        if let Some(member) = self.member.take() {
            member.leave();
        }
    }
}
