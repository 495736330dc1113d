//! A hub of named topics over a [`Broker`]: per-topic live channels on this
//! node, subscriptions that resume through the broker's history with no gap
//! and no duplicate, and publishing that may fail.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use sse_proto::{EncodeError, Event};

use crate::broadcast::{Live, Pending, Queue, Resume, SlowPolicy, Subscription, join};
use crate::broker::{Broker, BrokerError, MemoryBroker, Position};
use crate::metrics::Metrics;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The name is empty, longer than [`MAX_TOPIC_LEN`] or holds a control
    /// character.
    InvalidTopic,
    /// This node has live channels for `max` topics already.
    TooManyTopics {
        /// The hub's bound.
        max: usize,
    },
    /// The broker refused the topic.
    Broker(BrokerError),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::InvalidTopic => f.write_str("invalid topic name"),
            SubscribeError::TooManyTopics { max } => write!(f, "too many topics (at most {max})"),
            SubscribeError::Broker(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// Why an event was not published (nothing was, then).
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The name is empty, longer than [`MAX_TOPIC_LEN`] or holds a control
    /// character.
    InvalidTopic,
    /// The event could not be encoded.
    Encode(EncodeError),
    /// The broker failed: [`BrokerError::Unavailable`] when its store is
    /// down (a server answers 503).
    Broker(BrokerError),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::InvalidTopic => f.write_str("invalid topic name"),
            PublishError::Encode(e) => write!(f, "{e}"),
            PublishError::Broker(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<EncodeError> for PublishError {
    fn from(e: EncodeError) -> Self {
        PublishError::Encode(e)
    }
}

fn valid_topic(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOPIC_LEN && !name.chars().any(char::is_control)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One topic's live channel on this node.
struct Channel {
    topic: Arc<str>,
    hub: Weak<HubInner>,
    /// The live frames, which every subscriber reads from its own cursor.
    live: Arc<Live>,
    metrics: Option<Arc<Metrics>>,
    state: Mutex<ChannelState>,
}

#[derive(Default)]
struct ChannelState {
    subscribers: Vec<Arc<Queue>>,
    /// Live subscriptions (the channel goes with the last).
    members: usize,
    /// The broker called `start`.
    started: bool,
    /// The newest event delivered (or where the feed started).
    position: Option<Position>,
    /// Left by its last subscriber: the broker stops delivering.
    closed: bool,
}

/// The hub's end of a topic's live delivery on this node, handed to
/// [`Broker::watch`]. Cheap to clone.
///
/// The broker calls [`start`](Self::start) once, then
/// [`deliver`](Self::deliver) for each event in the topic's order, and
/// [`lost`](Self::lost) when it may have missed events. Frames go into the
/// channel's live frames, which each subscriber reads from its own place
/// under the slow policy: a delivery never waits.
#[derive(Clone)]
pub struct LiveFeed {
    channel: Arc<Channel>,
}

impl fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFeed").field("topic", &self.channel.topic).finish()
    }
}

impl LiveFeed {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.channel.topic
    }

    /// Where the topic stood when delivery began (its newest event, if any):
    /// resuming subscribers replay up to here. Later calls are ignored.
    pub fn start(&self, position: Option<Position>) {
        let mut st = lock(&self.channel.state);
        if st.started {
            return;
        }
        st.started = true;
        st.position = position.clone();
        for queue in &st.subscribers {
            queue.set_start(position.clone());
        }
    }

    /// Delivers the event `id`, number `seq` of the topic, whose encoded
    /// frame (with its `id:` line) is `frame`. Returns false once the feed
    /// is closed (the broker may forget it).
    pub fn deliver(&self, id: &str, seq: u64, frame: Bytes) -> bool {
        let channel = &*self.channel;
        let mut st = lock(&channel.state);
        if st.closed {
            return false;
        }
        st.started = true;
        st.position = Some(Position::new(id, seq));
        // Under the state lock: a subscriber joins before or after this
        // frame, never beside it.
        if channel.live.push(seq, frame) {
            channel.live.sweep(&mut st.subscribers);
        }
        true
    }

    /// Events may have been lost (the store lost its data, or trimmed what
    /// this feed had not read yet): every subscriber gets the reset event,
    /// with the id of `position` (the newest event now, if any), and
    /// delivery goes on from there.
    pub fn lost(&self, position: Option<Position>) {
        let mut st = lock(&self.channel.state);
        if st.closed {
            return;
        }
        st.started = true;
        st.position = position.clone();
        if let Some(m) = self.channel.metrics.as_deref() {
            for _ in &st.subscribers {
                m.reset();
            }
        }
        for queue in &st.subscribers {
            queue.set_lost(position.as_ref());
        }
    }

    /// Where delivery stands: the newest event delivered.
    pub fn position(&self) -> Option<Position> {
        lock(&self.channel.state).position.clone()
    }

    /// Whether the hub dropped this topic (its last subscriber left).
    pub fn is_closed(&self) -> bool {
        lock(&self.channel.state).closed
    }
}

/// A subscription's place in its channel: leaving as the last one drops the
/// channel (and stops the broker's delivery of it to this node).
pub(crate) struct Membership {
    channel: Arc<Channel>,
}

impl Membership {
    pub(crate) fn leave(self) {
        let hub = self.channel.hub.upgrade();
        let mut channels = hub.as_ref().map(|h| lock(&h.channels));
        let mut st = lock(&self.channel.state);
        st.members -= 1;
        if st.members > 0 {
            return;
        }
        st.closed = true;
        st.subscribers = Vec::new();
        drop(st);
        if let Some(channels) = channels.as_mut()
            && channels.get(&self.channel.topic).is_some_and(|c| Arc::ptr_eq(c, &self.channel))
        {
            channels.remove(&self.channel.topic);
        }
    }
}

struct HubInner {
    broker: Arc<dyn Broker>,
    channels: Mutex<HashMap<Arc<str>, Arc<Channel>>>,
    max_topics: usize,
    capacity: usize,
    policy: SlowPolicy,
    metrics: Option<Arc<Metrics>>,
}

/// A hub of named topics: each topic has its own history and ids (kept by
/// the [`Broker`]), is created on first use and goes when unused.
///
/// On this node, each topic with subscribers has one live channel fed by
/// the broker; its subscribers read its live frames under the slow policy,
/// as with [`Broadcast`](crate::Broadcast). A subscription that resumes
/// after a `Last-Event-ID` is registered first, then reads the broker's
/// history up to where the channel stood, then gets the live frames held
/// meanwhile that the history did not have: no gap, no duplicate, and the
/// [`RESET_EVENT`](crate::RESET_EVENT) when the id is no longer known.
///
/// At most `max_topics` topics have live channels on a node (default
/// 10,000); a channel is dropped when its last subscriber leaves.
///
/// ```
/// # futures_lite::future::block_on(async {
/// use sse_io::{Event, Topics};
/// let topics = Topics::default(); // in memory
/// let mut alice = topics.subscribe("room/1", None).unwrap();
/// let id = topics.publish("room/1", Event::new("hi").event("chat")).await.unwrap();
/// assert_eq!(id, "1");
/// assert!(alice.try_next().is_some());
/// # });
/// ```
#[derive(Clone)]
pub struct Topics {
    inner: Arc<HubInner>,
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topics").field("topics", &self.topic_count()).finish()
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::builder().build()
    }
}

/// Builds a [`Topics`] hub: broker, bounds, slow policy, counters.
#[must_use = "a builder does nothing until `build` is called"]
pub struct TopicsBuilder {
    broker: Option<Arc<dyn Broker>>,
    max_topics: usize,
    capacity: usize,
    policy: SlowPolicy,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for TopicsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicsBuilder")
            .field("max_topics", &self.max_topics)
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .finish()
    }
}

impl TopicsBuilder {
    /// The broker (default: a [`MemoryBroker`] with default bounds).
    pub fn broker(mut self, broker: impl Broker) -> Self {
        self.broker = Some(Arc::new(broker));
        self
    }

    /// At most this many topics with live channels on this node (default
    /// 10,000; at least 1).
    pub fn max_topics(mut self, max: usize) -> Self {
        self.max_topics = max.max(1);
        self
    }

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

    /// Counts replays, resets and slow-subscriber drops in `metrics`.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The hub.
    pub fn build(self) -> Topics {
        Topics {
            inner: Arc::new(HubInner {
                broker: self.broker.unwrap_or_else(|| Arc::new(MemoryBroker::default())),
                channels: Mutex::new(HashMap::new()),
                max_topics: self.max_topics,
                capacity: self.capacity,
                policy: self.policy,
                metrics: self.metrics,
            }),
        }
    }
}

impl Topics {
    /// A builder.
    pub fn builder() -> TopicsBuilder {
        TopicsBuilder {
            broker: None,
            max_topics: 10_000,
            capacity: 256,
            policy: SlowPolicy::Disconnect,
            metrics: None,
        }
    }

    /// A hub over `broker` with the other defaults.
    pub fn new(broker: impl Broker) -> Self {
        Topics::builder().broker(broker).build()
    }

    /// Publishes `event` to `topic` and resolves to the id the broker gave
    /// it (an id set on the event is not used: the broker numbers events).
    /// The event is encoded once; every subscriber on every node gets the
    /// same frame, with that id.
    ///
    /// # Errors
    ///
    /// [`PublishError`]; nothing was published then.
    pub async fn publish(&self, topic: &str, event: Event<'_>) -> Result<String, PublishError> {
        if !valid_topic(topic) {
            return Err(PublishError::InvalidTopic);
        }
        let body =
            if event.id_str().is_some() { without_id(&event).to_bytes()? } else { event.to_bytes()? };
        self.inner.broker.publish(topic, body).await.map_err(PublishError::Broker)
    }

    /// Subscribes to `topic`. With `last_event_id`, the subscription starts
    /// with what was missed after that id (read from the broker), or with
    /// a [`RESET_EVENT`](crate::RESET_EVENT) when that is no longer known;
    /// live events published from now on follow, each once. Without it,
    /// live events from now on.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`]: an invalid name, or too many topics.
    pub fn subscribe(
        &self,
        topic: &str,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        if !valid_topic(topic) {
            return Err(SubscribeError::InvalidTopic);
        }
        let inner = &self.inner;
        let (channel, created) = {
            let mut channels = lock(&inner.channels);
            let (channel, created) = match channels.get(topic) {
                Some(channel) => (channel.clone(), false),
                None => {
                    if channels.len() >= inner.max_topics {
                        return Err(SubscribeError::TooManyTopics { max: inner.max_topics });
                    }
                    let channel = Arc::new(Channel {
                        topic: topic.into(),
                        hub: Arc::downgrade(inner),
                        live: Live::new(inner.capacity, inner.policy, inner.metrics.clone()),
                        metrics: inner.metrics.clone(),
                        state: Mutex::new(ChannelState::default()),
                    });
                    channels.insert(channel.topic.clone(), channel.clone());
                    (channel, true)
                }
            };
            // Joined under the hub's lock: a last member leaving now cannot
            // remove the channel from under us.
            lock(&channel.state).members += 1;
            (channel, created)
        };
        let member = Membership { channel: channel.clone() };
        let queue = {
            let mut st = lock(&channel.state);
            let pending = last_event_id
                .map(|_| Pending { until: st.started.then(|| st.position.clone()), ..Pending::default() });
            let queue = Queue::new(channel.live.clone(), channel.live.next(), pending);
            join(&mut st.subscribers, queue.clone());
            queue
        };
        let resume = last_event_id.map(|id| {
            Box::new(Resume {
                broker: inner.broker.clone(),
                topic: channel.topic.clone(),
                after: id.to_owned(),
                replay: None,
            })
        });
        let subscription = Subscription::new(queue, resume, Some(member)).with_metrics(inner.metrics.clone());
        if created {
            // Outside the hub's lock: the broker may take its own and call
            // `start` at once.
            inner.broker.watch(topic, LiveFeed { channel }).map_err(SubscribeError::Broker)?;
        }
        Ok(subscription)
    }

    /// Topics with live channels on this node.
    pub fn topic_count(&self) -> usize {
        lock(&self.inner.channels).len()
    }

    /// Subscribers of `topic` on this node.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let channel = lock(&self.inner.channels).get(topic).cloned();
        channel.map_or(0, |c| lock(&c.state).members)
    }
}

/// The event without its id (the broker gives one).
fn without_id<'a>(event: &'a Event<'_>) -> Event<'a> {
    let mut e = Event::default();
    if let Some(t) = event.event_type() {
        e = e.event(t);
    }
    if let Some(d) = event.data_str() {
        e = e.data(d);
    }
    if let Some(r) = event.retry_time() {
        e = e.retry(r);
    }
    e
}
