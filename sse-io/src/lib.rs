//! Runtime-neutral async Server-Sent Events, over futures-io.
//!
//! `sse-io` is written once against a small [`Runtime`] trait (spawn, a
//! timer, TCP); `sse-smol` and `sse-async-std` bind it to a runtime. On top
//! of the sans-IO `sse-proto` it provides:
//!
//! - a [`Server`] with a [`Router`]: event stream routes get an [`Sse`]
//!   handle (`send`, `json`, `comment`, `on_close`, `closed`, `close`,
//!   `last_event_id`), with the response headers, keep-alive comments while
//!   idle, disconnect detection, limits (connections, head size and time,
//!   slow readers) and graceful shutdown handled for them;
//! - a [`Broadcast`] channel that encodes each event once, keeps a replay
//!   log, and resumes clients from `Last-Event-ID` with no gap and no
//!   duplicate (or an explicit [`RESET_EVENT`]), never blocking on a slow
//!   subscriber;
//! - [`Reactive`] values whose watchers get the newest state, coalesced;
//! - [`Metrics`] in Prometheus text;
//! - an [`EventSource`] client that reconnects with `Last-Event-ID`.

mod broadcast;
mod client;
mod metrics;
mod reactive;
mod runtime;
mod server;
mod signal;
mod sse;

pub use broadcast::{
    Broadcast, BroadcastConfig, RESET_EVENT, ReplayStore, Resume, SlowPolicy, Subscription, SubscriptionItem,
};
pub use client::EventSource;
pub use metrics::Metrics;
pub use reactive::{Reactive, Watcher};
pub use runtime::{BoxFuture, Runtime, timeout};
pub use server::{Bound, Response, Router, Server, ServerOptions, Shutdown};
pub use sse::{SendError, Sse};

/// The protocol crate, re-exported: `Event`, `Request`, `ReplayConfig`...
pub use sse_proto as proto;
pub use sse_proto::{ClientConfig, ClientEvent, Event, ReadyState, Request};

/// The listening address for examples and small servers: the value of a
/// `--addr HOST:PORT` argument, or `default`.
///
/// # Panics
///
/// When the address given (or the default) is not `HOST:PORT`, with a
/// message saying so: this is for `main`, where that is the right answer.
pub fn addr_from_args(default: &str) -> std::net::SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut addr = default.to_owned();
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args.next().unwrap_or_default();
        } else if let Some(a) = arg.strip_prefix("--addr=") {
            addr = a.to_owned();
        }
    }
    std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("--addr {addr:?} is not HOST:PORT"))
}
