//! The quick start: a clock.
//!
//! ```text
//! cargo run -p sse-smol --example clock [-- --addr 127.0.0.1:8080]
//!     [--tls-cert PEM --tls-key PEM]
//! ```
//!
//! Open <http://127.0.0.1:8080/> for a page whose `EventSource` shows the
//! ticks, the connection state and reconnections live, or
//! `curl -N http://127.0.0.1:8080/events/clock`. `GET /events/clock` sends a
//! `tick` event with `{"time": "<ISO 8601>"}` every second, its id the Unix
//! second, so a client that reconnects with `Last-Event-ID` resumes after
//! the tick it saw. `/metrics` and `/health` serve the counters.

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sse_smol::{Ctx, Event, Response, Router, SendError, Server, Smol};

/// Seconds since the epoch, and that instant in ISO 8601 (UTC).
fn now_iso8601() -> (u64, String) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let time =
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    (secs, time)
}

/// `GET /events/clock`: a tick a second, until the client leaves (its
/// future is then dropped at an await) or a send fails.
async fn clock(ctx: Ctx) -> Result<(), SendError> {
    let sse = ctx.sse();
    let peer = ctx.header("user-agent").unwrap_or("client").to_owned();
    sse.on_close(move || eprintln!("clock: {peer} left"));
    loop {
        let (secs, time) = now_iso8601();
        sse.send_json(Event::default().event("tick").id(secs), &serde_json::json!({ "time": time })).await?;
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
        smol::Timer::after(Duration::from_millis(u64::from(1000 - millis))).await;
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Args::parse(
        "clock [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM]",
        &["addr", "tls-cert", "tls-key"],
    );
    let addr = args.addr("127.0.0.1:8080");
    let mut builder = Server::builder(Smol);
    if let Some(tls) = args.tls() {
        builder = builder.tls(tls);
    }
    let router = Router::new()
        .get("/", |_ctx: Ctx| async { Response::html(include_str!("clock.html")) })
        .get("/events/clock", clock)
        .observability();
    smol::block_on(async {
        let server = builder.router(router).build()?.bind(addr).await?;
        let (scheme, at) = (args.scheme(), server.local_addr());
        eprintln!("clock: open {scheme}://{at}/ (or curl -N {scheme}://{at}/events/clock)");
        server.run().await
    })
}
