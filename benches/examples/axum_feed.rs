//! The fan-out peer for the scale benchmark: the `feed` example's contract
//! on axum 0.8 + tokio, as a user of that stack writes it.
//!
//! ```text
//! cargo run --release -p sse-benches --example axum_feed -- --addr 127.0.0.1:8081
//! ```
//!
//! `GET /events/feed` streams every event published from then on (a
//! `tokio::sync::broadcast` receiver per stream, `KeepAlive` on);
//! `POST /publish` publishes the UTF-8 body and answers with the event's
//! id; `GET /health` answers `ok`. Like the `feed` example, it runs on every
//! core by default (tokio's multi-threaded runtime).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream;
use tokio::sync::broadcast;

#[derive(Clone)]
struct App {
    tx: broadcast::Sender<(u64, Arc<str>)>,
    next_id: Arc<AtomicU64>,
}

fn main() {
    let mut addr = "127.0.0.1:8081".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().expect("--addr HOST:PORT"),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let (tx, _) = broadcast::channel(4096);
    let app = App { tx, next_id: Arc::new(AtomicU64::new(1)) };
    let router = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/publish",
            axum::routing::post(|State(app): State<App>, body: String| async move {
                let id = app.next_id.fetch_add(1, Ordering::SeqCst);
                let _ = app.tx.send((id, body.into()));
                id.to_string()
            }),
        )
        .route(
            "/events/feed",
            axum::routing::get(|State(app): State<App>| async move {
                let events = stream::unfold(app.tx.subscribe(), |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok((id, data)) => {
                                let event = Event::default().id(id.to_string()).data(&*data);
                                return Some((Ok::<_, Infallible>(event), rx));
                            }
                            // A lagged receiver skips; the benchmark's checks report it.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                });
                Sse::new(events).keep_alive(KeepAlive::default())
            }),
        )
        .with_state(app);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!("axum_feed: http://{}/events/feed", listener.local_addr().expect("addr"));
        axum::serve(listener, router).await.expect("serve");
    });
}
