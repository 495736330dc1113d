//! Counters of what the server and its channels did, in Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Server and channel counters. Shared (`Arc`) by everything that counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) open_connections: AtomicU64,
    pub(crate) total_connections: AtomicU64,
    pub(crate) open_streams: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) replayed_events: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) slow_client_drops: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Event streams open now.
    pub fn open_streams(&self) -> u64 {
        self.open_streams.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn total_connections(&self) -> u64 {
        self.total_connections.load(Ordering::Relaxed)
    }

    /// Events (and comments) written to clients.
    pub fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Relaxed)
    }

    /// Bytes written to clients, framing included.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Writes to clients' transports (system calls, on TCP): with
    /// [`events_sent`](Self::events_sent), how well bursts are batched.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Resumes answered from the replay log.
    pub fn replays(&self) -> u64 {
        self.replays.load(Ordering::Relaxed)
    }

    /// Resumes that found a gap and got a reset event.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }

    /// Subscribers dropped (or skipped ahead) for not keeping up.
    pub fn slow_client_drops(&self) -> u64 {
        self.slow_client_drops.load(Ordering::Relaxed)
    }

    pub(crate) fn sent(&self, events: u64, bytes: u64) {
        add(&self.events_sent, events);
        add(&self.bytes_sent, bytes);
    }

    pub(crate) fn replayed(&self, events: u64) {
        add(&self.replays, 1);
        add(&self.replayed_events, events);
    }

    pub(crate) fn reset(&self) {
        add(&self.resets, 1);
    }

    pub(crate) fn slow_drop(&self) {
        add(&self.slow_client_drops, 1);
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP sse_{name} {help}\n# TYPE sse_{name} {kind}\nsse_{name} {value}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        metric("open_connections", "gauge", "Connections open now.", get(&self.open_connections));
        metric("open_streams", "gauge", "Event streams open now.", get(&self.open_streams));
        metric("connections_total", "counter", "Connections accepted.", get(&self.total_connections));
        metric("events_sent_total", "counter", "Events and comments written.", get(&self.events_sent));
        metric("bytes_sent_total", "counter", "Bytes written, framing included.", get(&self.bytes_sent));
        metric("writes_total", "counter", "Writes to clients' transports.", get(&self.writes));
        metric("replays_total", "counter", "Resumes answered from the replay log.", get(&self.replays));
        metric("replayed_events_total", "counter", "Events sent by replays.", get(&self.replayed_events));
        metric("resets_total", "counter", "Resumes that found a gap.", get(&self.resets));
        metric(
            "slow_client_drops_total",
            "counter",
            "Subscribers that fell behind.",
            get(&self.slow_client_drops),
        );
        metric(
            "rejected_connections_total",
            "counter",
            "Connections refused at the limit.",
            get(&self.rejected_connections),
        );
        metric("bad_requests_total", "counter", "Requests answered with 4xx.", get(&self.bad_requests));
        out
    }
}
