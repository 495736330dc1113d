//! A reactive value pushed as `update` events.
//!
//! ```text
//! cargo run -p sse-smol --example notifications [-- --addr 127.0.0.1:8080]
//!     [--tls-cert PEM --tls-key PEM]
//! curl -N http://127.0.0.1:8080/events/notifications
//! curl -d 'deploy finished' http://127.0.0.1:8080/notify
//! ```
//!
//! The state (a counter and the latest message) changes every 5 seconds on a
//! timer and on every `POST /notify`. Each client gets the current state at
//! once, then the newest state after each change; a slow client skips
//! intermediate states instead of falling behind. `/metrics` and `/health`
//! serve the counters.

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use serde::Serialize;
use sse_smol::{Ctx, Event, Reactive, Response, Router, SendError, Server, Smol};

#[derive(Debug, Clone, Serialize)]
struct State {
    count: u64,
    message: String,
}

fn bump(state: &Reactive<State>, message: String) {
    state.update(|s| {
        s.count += 1;
        s.message = message;
    });
}

/// `GET /events/notifications`: the state now, then after each change.
async fn notifications(ctx: Ctx<Reactive<State>>) -> Result<(), SendError> {
    let mut watcher = ctx.state().watch();
    let sse = ctx.sse();
    loop {
        let value = watcher.next().await;
        sse.send_json(Event::default().event("update"), &value).await?;
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Args::parse(
        "notifications [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM]",
        &["addr", "tls-cert", "tls-key"],
    );
    let addr = args.addr("127.0.0.1:8080");
    let tls = args.tls();
    let state = Reactive::new(State { count: 0, message: "started".into() });
    let ticker = state.clone();
    smol::spawn(async move {
        loop {
            smol::Timer::after(Duration::from_secs(5)).await;
            bump(&ticker, "timer".into());
        }
    })
    .detach();
    let router = Router::with_state(state)
        .post("/notify", |ctx: Ctx<Reactive<State>>| async move {
            bump(ctx.state(), ctx.body_text()?.to_owned());
            Ok::<_, Response>(Response::ok_text("ok\n"))
        })
        .get("/events/notifications", notifications)
        .observability();
    smol::block_on(async {
        let mut builder = Server::builder(Smol).router(router);
        if let Some(tls) = tls {
            builder = builder.tls(tls);
        }
        let server = builder.build()?.bind(addr).await?;
        eprintln!("notifications: curl -N {}://{}/events/notifications", args.scheme(), server.local_addr());
        server.run().await
    })
}
