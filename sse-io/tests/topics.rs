//! The topics hub over the in-memory broker: per-topic ids and history,
//! bounds, idle topics, two hubs on one broker acting as two nodes, and the
//! resume merge while the broker's replay is slow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::block_on;
use sse_io::proto::{Decoder, MessageEvent};
use sse_io::{
    BoxFuture, Broker, BrokerError, Event, History, LiveFeed, MemoryBroker, Position, RESET_EVENT,
    ReplayConfig, SubscribeError, Subscription, SubscriptionItem, Topics,
};

/// Every frame queued now, decoded.
fn drain(sub: &mut Subscription) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    while let Some(item) = sub.try_next() {
        let SubscriptionItem::Frame(frame) = item else { panic!("dropped") };
        decoder.feed(&frame);
    }
    std::iter::from_fn(|| decoder.poll_event().unwrap()).collect()
}

fn data(events: &[MessageEvent]) -> Vec<String> {
    events.iter().map(|e| format!("{}:{}:{}", e.event_type(), e.last_event_id(), e.data())).collect()
}

#[test]
fn each_topic_has_its_own_ids_and_history_and_nothing_leaks() {
    block_on(async {
        let topics = Topics::default();
        let mut a_live = topics.subscribe("a", None).unwrap();
        let mut b_live = topics.subscribe("b", None).unwrap();
        for i in 1..=3 {
            assert_eq!(topics.publish("a", Event::new(format!("a{i}"))).await.unwrap(), i.to_string());
        }
        // An id on the event is not used: the broker numbers events.
        assert_eq!(topics.publish("b", Event::new("b1").id("999")).await.unwrap(), "1");
        assert_eq!(data(&drain(&mut a_live)), ["message:1:a1", "message:2:a2", "message:3:a3"]);
        assert_eq!(data(&drain(&mut b_live)), ["message:1:b1"]);
        let mut resumed = topics.subscribe("a", Some("1")).unwrap();
        assert_eq!(data(&drain(&mut resumed)), ["message:2:a2", "message:3:a3"]);
        let mut up_to_date = topics.subscribe("b", Some("1")).unwrap();
        assert!(drain(&mut up_to_date).is_empty());
        topics.publish("b", Event::new("b2")).await.unwrap();
        assert_eq!(data(&drain(&mut up_to_date)), ["message:2:b2"]);
        assert!(drain(&mut a_live).is_empty(), "b's events never reach a");
        assert_eq!(topics.subscriber_count("a"), 2);
        assert!(matches!(topics.subscribe("", None), Err(SubscribeError::InvalidTopic)));
        assert!(topics.publish("bad\ntopic", Event::new("x")).await.is_err());
    });
}

#[test]
fn the_hub_bounds_topics_and_drops_a_channel_with_its_last_subscriber() {
    block_on(async {
        let topics = Topics::builder().max_topics(2).build();
        let a = topics.subscribe("a", None).unwrap();
        let b = topics.subscribe("b", None).unwrap();
        assert_eq!(topics.topic_count(), 2);
        assert_eq!(topics.subscribe("c", None).unwrap_err(), SubscribeError::TooManyTopics { max: 2 });
        // A second subscriber of a known topic is fine.
        let a2 = topics.subscribe("a", None).unwrap();
        drop(a);
        assert_eq!(topics.topic_count(), 2, "a still has a subscriber");
        drop(a2);
        assert_eq!(topics.topic_count(), 1);
        let _c = topics.subscribe("c", None).unwrap();
        drop(b);
        assert_eq!(topics.topic_count(), 1);
    });
}

#[test]
fn idle_topics_are_dropped_and_a_resume_into_them_is_a_reset() {
    block_on(async {
        let broker = MemoryBroker::default().max_topics(2);
        let topics = Topics::new(broker.clone());
        for t in ["a", "b"] {
            topics.publish(t, Event::new(format!("{t}1"))).await.unwrap();
        }
        // A third topic: the least recently used unwatched one goes.
        topics.publish("c", Event::new("c1")).await.unwrap();
        assert_eq!(broker.topic_count(), 2);
        assert_eq!(broker.history_len("a"), 0);
        // Recreated, `a` numbers after every id handed out: "1" is unknown.
        assert_eq!(topics.publish("a", Event::new("a-again")).await.unwrap(), "2");
        let mut sub = topics.subscribe("a", Some("1")).unwrap();
        assert_eq!(data(&drain(&mut sub)), [format!("{RESET_EVENT}:2:gap")]);
        // A watched topic is never dropped; with every topic watched, a new
        // one is refused.
        let _b = topics.subscribe("b", None).unwrap();
        let err = topics.publish("d", Event::new("d1")).await.unwrap_err();
        assert!(
            matches!(err, sse_io::PublishError::Broker(BrokerError::TooManyTopics { max: 2 })),
            "{err:?}"
        );
        drop(sub);
        // Idle time: with no idle allowance an unwatched topic goes at once.
        let broker = MemoryBroker::default().idle_after(Duration::ZERO);
        let topics = Topics::new(broker.clone());
        topics.publish("x", Event::new("x1")).await.unwrap();
        topics.publish("y", Event::new("y1")).await.unwrap();
        assert_eq!(broker.topic_count(), 1);
    });
}

#[test]
fn two_hubs_on_one_broker_act_as_one_feed() {
    block_on(async {
        let broker = MemoryBroker::new(ReplayConfig { max_events: 5, ..Default::default() });
        let (node_a, node_b) = (Topics::new(broker.clone()), Topics::new(broker.clone()));
        let mut on_a = node_a.subscribe("feed", None).unwrap();
        let mut on_b = node_b.subscribe("feed", None).unwrap();
        for i in 1..=4 {
            let node = if i % 2 == 0 { &node_a } else { &node_b };
            node.publish("feed", Event::new(format!("e{i}"))).await.unwrap();
        }
        let want = ["message:1:e1", "message:2:e2", "message:3:e3", "message:4:e4"];
        assert_eq!(data(&drain(&mut on_a)), want);
        assert_eq!(data(&drain(&mut on_b)), want);
        // A client of A resumes on B.
        let mut moved = node_b.subscribe("feed", Some("2")).unwrap();
        assert_eq!(data(&drain(&mut moved)), ["message:3:e3", "message:4:e4"]);
        // Evicted history: a reset carrying the newest id, then live events.
        for i in 5..=12 {
            node_a.publish("feed", Event::new(format!("e{i}"))).await.unwrap();
        }
        let mut late = node_b.subscribe("feed", Some("3")).unwrap();
        node_a.publish("feed", Event::new("e13")).await.unwrap();
        assert_eq!(data(&drain(&mut late)), [format!("{RESET_EVENT}:12:gap"), "message:13:e13".into()]);
    });
}

/// A broker whose replays wait for a gate, and which can report a loss.
#[derive(Clone)]
struct Gated {
    inner: MemoryBroker,
    open: Arc<Mutex<bool>>,
    opened: Arc<event_listener::Event>,
    feeds: Arc<Mutex<Vec<LiveFeed>>>,
}

impl Broker for Gated {
    fn publish(&self, topic: &str, body: Bytes) -> BoxFuture<'static, Result<String, BrokerError>> {
        self.inner.publish(topic, body)
    }
    fn watch(&self, topic: &str, feed: LiveFeed) -> Result<(), BrokerError> {
        self.feeds.lock().unwrap().push(feed.clone());
        self.inner.watch(topic, feed)
    }
    fn replay(&self, topic: &str, after: &str, until: Option<Position>) -> BoxFuture<'static, History> {
        let replay = self.inner.replay(topic, after, until);
        let (open, opened) = (self.open.clone(), self.opened.clone());
        Box::pin(async move {
            loop {
                let listener = opened.listen();
                if *open.lock().unwrap() {
                    break;
                }
                listener.await;
            }
            replay.await
        })
    }
}

#[test]
fn a_slow_replay_is_merged_with_the_live_events_held_meanwhile() {
    block_on(async {
        let gated = Gated {
            inner: MemoryBroker::default(),
            open: Arc::default(),
            opened: Arc::default(),
            feeds: Arc::default(),
        };
        let topics = Topics::new(gated.clone());
        let _keep = topics.subscribe("t", None).unwrap();
        for i in 1..=5 {
            topics.publish("t", Event::new(format!("e{i}"))).await.unwrap();
        }
        let mut resuming = topics.subscribe("t", Some("2")).unwrap();
        for i in 6..=8 {
            topics.publish("t", Event::new(format!("e{i}"))).await.unwrap();
        }
        assert!(drain(&mut resuming).is_empty(), "nothing before the replay");
        assert!(resuming.is_resuming());
        *gated.open.lock().unwrap() = true;
        gated.opened.notify(usize::MAX);
        let got = data(&drain(&mut resuming));
        let want: Vec<String> = (3..=8).map(|i| format!("message:{i}:e{i}")).collect();
        assert_eq!(
            got, want,
            "the replay up to where the channel stood, then the held live events, once each"
        );
        // recv() drives a resume too.
        let mut other = topics.subscribe("t", Some("7")).unwrap();
        topics.publish("t", Event::new("e9")).await.unwrap();
        let SubscriptionItem::Frame(f) = other.recv().await else { panic!() };
        assert!(String::from_utf8_lossy(&f).contains("e8"));
        // The broker loses track: live subscribers get a reset at the new
        // position, then live events go on.
        let feed = gated.feeds.lock().unwrap()[0].clone();
        feed.lost(Some(Position::new("9", 9)));
        assert_eq!(data(&drain(&mut resuming)), ["message:9:e9", &format!("{RESET_EVENT}:9:gap")]);
    });
}
