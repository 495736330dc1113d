//! A reactive value pushed as `update` events.
//!
//! ```text
//! cargo run -p sse-smol --example notifications [-- --addr 127.0.0.1:8080]
//! curl -N http://127.0.0.1:8080/events/notifications
//! curl -d 'deploy finished' http://127.0.0.1:8080/notify
//! ```
//!
//! The state (a counter and the latest message) changes every 5 seconds on a
//! timer and on every `POST /notify`. Each client gets the current state at
//! once, then the newest state after each change; a slow client skips
//! intermediate states instead of falling behind. `/metrics` and `/health`
//! serve the counters.

use std::time::Duration;

use serde::Serialize;
use std::sync::Arc;

use sse_smol::{Metrics, Reactive, Response, Router, Server, ServerOptions, Smol, addr_from_args};

#[derive(Debug, Clone, Serialize)]
struct State {
    count: u64,
    message: String,
}

fn main() -> std::io::Result<()> {
    let addr = addr_from_args("127.0.0.1:8080");
    let state = Reactive::new(State { count: 0, message: "started".into() });
    let (timer_state, notify_state) = (state.clone(), state.clone());
    smol::spawn(async move {
        loop {
            smol::Timer::after(Duration::from_secs(5)).await;
            timer_state.update(|s| {
                s.count += 1;
                s.message = "timer".into();
            });
        }
    })
    .detach();
    let metrics = Arc::new(Metrics::default());
    let router = Router::new()
        .observability(metrics.clone())
        .post("/notify", move |_req, body| {
            let state = notify_state.clone();
            async move {
                let message = String::from_utf8_lossy(&body).into_owned();
                state.update(|s| {
                    s.count += 1;
                    s.message = message;
                });
                Response::text("ok\n")
            }
        })
        .sse("/events/notifications", move |_req, sse| {
            let mut watcher = state.watch();
            async move {
                loop {
                    let next = futures_lite::future::or(async { Some(watcher.next().await) }, async {
                        sse.closed().await;
                        None
                    })
                    .await;
                    let Some(value) = next else { break };
                    if sse.json(&value, Some("update"), None).await.is_err() {
                        break;
                    }
                }
            }
        });
    smol::block_on(async {
        let server = Server::with_metrics(Smol, router, ServerOptions::default(), metrics).bind(addr).await?;
        eprintln!("notifications: curl -N http://{}/events/notifications", server.local_addr());
        server.run().await
    })
}
