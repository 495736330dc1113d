//! A broadcast feed with replay, authorization and CORS.
//!
//! ```text
//! cargo run -p sse-smol --example feed -- [--addr 127.0.0.1:8080] [--max-connections N]
//!     [--token T] [--cors-origin ORIGIN]... [--tls-cert PEM --tls-key PEM]
//! curl -N http://127.0.0.1:8080/events/feed
//! curl -d 'hello' 'http://127.0.0.1:8080/publish?event=greeting'
//! ```
//!
//! The contract outside scripts rely on:
//!
//! - `GET /events/feed` streams the channel, resuming after `Last-Event-ID`
//!   (header, or `lastEventId` query parameter) from the replay log, or
//!   starting with an `sse-reset` event when that id is no longer known;
//! - `POST /publish[?event=NAME]` publishes the request body (UTF-8) as the
//!   event's data and answers 200 with the assigned id as the body; 400 for
//!   a body that is not UTF-8 or an event name with a line break, 413 over
//!   the body limit (1 MiB);
//! - with `--token T`, both need `Authorization: Bearer T` or an
//!   `access_token=T` query parameter (what a browser `EventSource` can
//!   send), else 401 with `WWW-Authenticate: Bearer`, before any stream;
//! - with `--cors-origin ORIGIN` (repeatable), those origins get CORS
//!   grants with credentials and preflight answers; no one else does;
//! - `/metrics` and `/health` serve the counters;
//! - with `--tls-cert PEM --tls-key PEM`, everything is served over TLS.

#[path = "common/args.rs"]
mod args;

use std::sync::Arc;

use sse_smol::{Broadcast, Cors, Ctx, Event, Metrics, Response, Router, Server, Smol};

const USAGE: &str = "feed [--addr HOST:PORT] [--max-connections N] [--token T] [--cors-origin ORIGIN]... [--redis URL] \
     [--tls-cert PEM --tls-key PEM]";

struct App {
    feed: Broadcast,
    token: Option<String>,
}

/// The bearer token check, header or query (RFC 6750 §2.1, §2.3).
fn authorize(ctx: &Ctx<App>) -> Result<(), Response> {
    let Some(token) = ctx.state().token.as_deref() else { return Ok(()) };
    let header = ctx.header("authorization").and_then(|value| {
        let (scheme, credentials) = value.trim().split_once(' ')?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
    });
    let query = ctx.query("access_token");
    if [header, query.as_deref()].into_iter().flatten().any(|given| same(given, token)) {
        return Ok(());
    }
    Err(Response::new(401).header("WWW-Authenticate", "Bearer").text("a valid bearer token is required\n"))
}

/// Compares in time independent of where the texts differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /events/feed`: the replay after `Last-Event-ID`, then live events.
async fn stream(ctx: Ctx<App>) -> Result<(), Response> {
    authorize(&ctx)?;
    // Subscribe before the head goes out: nothing published from here on
    // is missed.
    let subscription = ctx.state().feed.subscribe(ctx.last_event_id());
    ctx.sse().forward(subscription).await.map_err(Response::from)
}

/// `POST /publish[?event=NAME]`: the body as the event's data.
async fn publish(ctx: Ctx<App>) -> Result<Response, Response> {
    authorize(&ctx)?;
    let mut event = Event::new(ctx.body_text()?);
    let name = ctx.query("event");
    if let Some(name) = name.as_deref() {
        event = event.event(name);
    }
    match ctx.state().feed.publish(event) {
        Ok(id) => Ok(Response::ok_text(id)),
        Err(e) => Err(Response::new(400).text(format!("{e}\n"))),
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Args::parse(
        USAGE,
        &["addr", "max-connections", "token", "cors-origin", "redis", "tls-cert", "tls-key"],
    );
    if args.get("redis").is_some() {
        eprintln!("feed: --redis needs the sse-redis broker, which this build does not include");
        std::process::exit(2);
    }
    let addr = args.addr("127.0.0.1:8080");
    let metrics = Arc::new(Metrics::default());
    let app = App {
        feed: Broadcast::builder().metrics(metrics.clone()).build(),
        token: args.get("token").map(str::to_owned),
    };
    let mut router = Router::with_state(app)
        .get("/", |_ctx: Ctx<App>| async { Response::html(include_str!("feed.html")) })
        .get("/events/feed", stream)
        .post("/publish", publish)
        .observability();
    let origins = args.all("cors-origin");
    if !origins.is_empty() {
        let cors = origins.iter().fold(Cors::new().allow_credentials(true), |cors, o| cors.allow_origin(o));
        router = router.cors(cors);
    }
    let mut builder = Server::builder(Smol).router(router).metrics(metrics);
    if let Some(n) = args.number("max-connections") {
        builder = builder.max_connections(n);
    }
    if let Some(tls) = args.tls() {
        builder = builder.tls(tls);
    }
    smol::block_on(async {
        let server = builder.build()?.bind(addr).await?;
        let (scheme, at) = (args.scheme(), server.local_addr());
        eprintln!("feed: {scheme}://{at}/events/feed, publish with POST {scheme}://{at}/publish");
        server.run().await
    })
}
