//! A feed of topics with replay, authorization and CORS; with `--redis URL`,
//! every `feed` process sharing that Redis is one feed.
//!
//! ```text
//! cargo run -p sse-smol --example feed -- [--addr 127.0.0.1:8080] [--max-connections N]
//!     [--token T] [--cors-origin ORIGIN]... [--redis redis://127.0.0.1:6379/] [--tls-cert PEM --tls-key PEM]
//! curl -N 'http://127.0.0.1:8080/events/feed?topic=news'
//! curl -d 'hello' 'http://127.0.0.1:8080/publish?topic=news&event=greeting'
//! ```
//!
//! The contract outside scripts rely on:
//!
//! - `GET /events/feed[?topic=T]` streams topic T (`feed` when absent),
//!   resuming after `Last-Event-ID` (header, or `lastEventId` query
//!   parameter) from the topic's history, or starting with an `sse-reset`
//!   event when that id is no longer known;
//! - `POST /publish[?topic=T][&event=NAME]` publishes the request body
//!   (UTF-8) as the event's data and answers 200 with the assigned id as
//!   the body; 400 for a body that is not UTF-8, an event name with a line
//!   break or an invalid topic, 413 over the body limit (1 MiB), 503 when
//!   the broker is unreachable (nothing was published);
//! - with `--redis URL`, topics live in Redis Streams: any number of `feed`
//!   processes sharing that Redis give the same ids in the same order, and
//!   a client resumes on any of them; without it, topics live in memory;
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

use sse_smol::{
    BrokerError, Cors, Ctx, Event, Metrics, PublishError, Response, Router, Server, Smol, Topics,
};

const USAGE: &str = "feed [--addr HOST:PORT] [--max-connections N] [--token T] [--cors-origin ORIGIN]... [--redis URL] \
     [--tls-cert PEM --tls-key PEM]";

struct App {
    topics: Topics,
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

fn topic(ctx: &Ctx<App>) -> String {
    ctx.query("topic").unwrap_or_else(|| "feed".to_owned())
}

/// `GET /events/feed[?topic=T]`: the replay after `Last-Event-ID`, then
/// live events.
async fn stream(ctx: Ctx<App>) -> Result<(), Response> {
    authorize(&ctx)?;
    // Subscribe before the head goes out: nothing published from here on
    // is missed. A resume's replay is read by the stream itself, so a
    // broker that is down keeps the stream open (keep-alives) until it is
    // back.
    let subscription = ctx
        .state()
        .topics
        .subscribe(&topic(&ctx), ctx.last_event_id())
        .map_err(|e| Response::new(400).text(format!("{e}\n")))?;
    ctx.sse().forward(subscription).await.map_err(Response::from)
}

/// `POST /publish[?topic=T][&event=NAME]`: the body as the event's data.
async fn publish(ctx: Ctx<App>) -> Result<Response, Response> {
    authorize(&ctx)?;
    let mut event = Event::new(ctx.body_text()?);
    let name = ctx.query("event");
    if let Some(name) = name.as_deref() {
        event = event.event(name);
    }
    match ctx.state().topics.publish(&topic(&ctx), event).await {
        Ok(id) => Ok(Response::ok_text(id)),
        Err(PublishError::Broker(BrokerError::TooLarge { .. })) => {
            Err(Response::new(413).text("event too large\n"))
        }
        Err(PublishError::Broker(e)) => {
            Err(Response::new(503).header("Retry-After", "1").text(format!("{e}\n")))
        }
        Err(e) => Err(Response::new(400).text(format!("{e}\n"))),
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Args::parse(
        USAGE,
        &["addr", "max-connections", "token", "cors-origin", "redis", "tls-cert", "tls-key"],
    );
    let addr = args.addr("127.0.0.1:8080");
    let metrics = Arc::new(Metrics::default());
    let mut topics = Topics::builder().metrics(metrics.clone());
    if let Some(url) = args.get("redis") {
        match sse_redis::RedisBroker::open(url) {
            Ok(broker) => topics = topics.broker(broker),
            Err(e) => {
                eprintln!("feed: --redis {url}: {e}");
                std::process::exit(2);
            }
        }
    }
    let app = App { topics: topics.build(), token: args.get("token").map(str::to_owned) };
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
