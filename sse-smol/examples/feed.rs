//! A broadcast feed with replay.
//!
//! ```text
//! cargo run -p sse-smol --example feed [-- --addr 127.0.0.1:8080]
//! curl -N http://127.0.0.1:8080/events/feed
//! curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
//! ```
//!
//! The contract outside scripts rely on: `GET /events/feed` streams the
//! channel, resuming after `Last-Event-ID` (header, or `lastEventId` query
//! parameter) from the replay log, or sending an `sse-reset` event when that
//! id is no longer known; `POST /publish[?event=NAME]` publishes the request
//! body (UTF-8) as the event's data and answers 200 with the assigned id as
//! the body. `/metrics` and `/health` serve the counters.

use std::sync::Arc;

use sse_smol::proto::Event;
use sse_smol::{
    Broadcast, BroadcastConfig, Metrics, Response, Router, Server, ServerOptions, Smol, addr_from_args,
};

fn main() -> std::io::Result<()> {
    let addr = addr_from_args("127.0.0.1:8080");
    let metrics = Arc::new(Metrics::default());
    let feed = Broadcast::with_metrics(BroadcastConfig::default(), metrics.clone());
    let publisher = feed.clone();
    let router = Router::new()
        .get("/", |_req| async { Response::html(include_str!("feed.html")) })
        .observability(metrics.clone())
        .post("/publish", move |req, body| {
            let feed = publisher.clone();
            async move {
                let Ok(text) = String::from_utf8(body.to_vec()) else {
                    return Response::new(400).body("the body must be UTF-8\n");
                };
                let mut event = Event::new(text.as_str());
                let name = req.query_param("event");
                if let Some(name) = name.as_deref() {
                    event = event.event(name);
                }
                match feed.publish(event) {
                    Ok(id) => Response::text(id),
                    Err(e) => Response::new(400).body(format!("{e}\n")),
                }
            }
        })
        .sse("/events/feed", move |req, sse| {
            let subscription = feed.subscribe(req.last_event_id().as_deref());
            async move {
                let _ = sse.forward(subscription).await;
            }
        });
    smol::block_on(async {
        let server = Server::with_metrics(Smol, router, ServerOptions::default(), metrics).bind(addr).await?;
        eprintln!("feed: http://{0}/events/feed, publish with POST http://{0}/publish", server.local_addr());
        server.run().await
    })
}
