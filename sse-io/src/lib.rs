//! Runtime-neutral async Server-Sent Events, over futures-io.
//!
//! `sse-io` is written once against a small [`Runtime`] trait (spawn, a
//! clock and timers, TCP); `sse-smol` and `sse-async-std` bind it to a
//! runtime. On top of the sans-IO `sse-proto` it provides:
//!
//! - a [`Server`] whose [`Router`] handlers decide, then stream: a handler
//!   gets a [`Ctx`] (request, path parameters, body, shared state) and
//!   answers any [`Response`], or calls [`Ctx::sse`] and streams events
//!   through the [`Sse`] handle (`send`, `send_json`, `comment`, `on_close`,
//!   `close`) until it returns. The handler owns its stream: when the client
//!   leaves, its future is dropped. Strict HTTP/1.1 (parsed in `sse-proto`),
//!   routing with parameters, CORS, keep-alive comments, limits and graceful
//!   shutdown come with it, over any transport ([`Server::serve_connection`]);
//! - a [`Broadcast`] channel that encodes each event once, keeps a replay
//!   log, and resumes clients from `Last-Event-ID` with no gap and no
//!   duplicate (or an explicit [`RESET_EVENT`]), never blocking on a slow
//!   subscriber;
//! - [`Topics`], a hub of named topics over a [`Broker`] (in memory by
//!   default, [`MemoryBroker`]; Redis Streams in `sse-redis`, for many
//!   server processes acting as one): publishing may fail (the broker is
//!   down), resuming reads the broker's history and merges it with the live
//!   frames by sequence number;
//! - [`Reactive`] values whose watchers get the newest state, coalesced;
//! - [`Metrics`] in Prometheus text;
//! - an [`EventSource`] client that reconnects with `Last-Event-ID`, over
//!   `http://` and (feature `tls`) `https://`, with comments, `restart`,
//!   POST bodies and errors that say whether it retries;
//! - TLS on both sides with rustls (feature `tls`, ring; or `aws-lc-rs`):
//!   [`ClientTls`] for clients, [`ServerTls`] with [`ServerBuilder::tls`]
//!   for servers.
//!
//! Subscriptions, watchers and the client are `futures_core::Stream`s.
//!
//! ```
//! use sse_io::{Ctx, Event, Response, Router};
//!
//! let router = Router::new()
//!     .get("/", |_ctx: Ctx| async { Response::html("<p>hello</p>") })
//!     .get("/events/{topic}", |ctx: Ctx| async move {
//!         if ctx.param("topic") == Some("secret") {
//!             return Err(Response::new(404));
//!         }
//!         let sse = ctx.sse(); // the stream's head goes out now
//!         for n in 0..3u64 {
//!             sse.send(Event::new("tick").event("tick").id(n)).await?;
//!         }
//!         Ok(()) // returning ends the stream cleanly
//!     })
//!     .observability(); // /health and /metrics
//! # let _ = router;
//! ```

mod broadcast;
mod broker;
mod client;
mod coalesce;
mod conn;
mod cors;
mod metrics;
mod reactive;
mod response;
mod router;
mod runtime;
mod server;
mod signal;
mod stream;
#[cfg(feature = "rustls-core")]
mod tls;
mod topics;

pub use broadcast::{Broadcast, BroadcastBuilder, RESET_EVENT, SlowPolicy, Subscription, SubscriptionItem};
pub use broker::{Broker, BrokerError, Entry, History, MemoryBroker, Position, frame_with_id};
pub use client::{Connector, EventSource};
pub use cors::Cors;
pub use metrics::Metrics;
pub use reactive::{Reactive, Watcher};
pub use response::{IntoResponse, Response};
pub use router::{Ctx, Router, RouterError, StreamConfig};
pub use runtime::{BoxFuture, Runtime, timeout, timeout_at};
pub use server::{Bound, Server, ServerBuilder, Shutdown, serve};
pub use stream::{SendError, Sse};
pub use topics::{LiveFeed, MAX_TOPIC_LEN, PublishError, SubscribeError, Topics, TopicsBuilder};

/// rustls, re-exported for configurations made by hand.
#[cfg(feature = "rustls-core")]
pub use rustls;
/// The protocol crate, re-exported: `Event`, `Request`, `ReplayConfig`...
pub use sse_proto as proto;
pub use sse_proto::{
    ClientConfig, ClientEvent, ConnectError, ErrorCause, Event, ReadyState, ReplayConfig, Request,
};
#[cfg(feature = "rustls-core")]
pub use tls::{ClientTls, ServerTls, TlsError};
