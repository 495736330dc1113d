//! End to end in a real browser: headless Chromium's `EventSource` receives
//! named events, the server ends the stream, the browser reconnects with
//! `Last-Event-ID` and gets the events it missed, exactly once.
//!
//! Needs Chromium (`chromium` on the PATH, Debian's package). Without it the
//! test prints a notice and passes, unless `SSE_REQUIRE_EXTERNAL` is set (CI
//! sets it), in which case a missing browser fails the test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sse_smol::{Broadcast, Ctx, Event, Response, Router, Server, Smol, Sse, StreamConfig};

#[path = "support/chromium.rs"]
mod chromium;
use chromium::Browser;

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>e2e</title>
<script>
  let n = 0;
  const report = (body) => fetch("/report", { method: "POST", body: JSON.stringify(body) });
  const source = new EventSource("/events/e2e");
  source.addEventListener("tick", (e) => {
    n += 1;
    report({ n, type: e.type, data: e.data, id: e.lastEventId });
  });
  source.onmessage = (e) => report({ n: -1, type: "message", data: e.data, id: e.lastEventId });
</script>
"#;

#[derive(Default)]
struct Shared {
    reports: Vec<serde_json::Value>,
    /// `Last-Event-ID` of each stream request, in order.
    resume_ids: Vec<Option<String>>,
    streams: Vec<Sse>,
}

/// Polls `cond` every 20 ms, for up to 60 s.
async fn wait_until(shared: &Arc<Mutex<Shared>>, what: &str, cond: impl Fn(&Shared) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond(&shared.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

#[test]
fn chromium_event_source_resumes_without_gap_or_duplicate() {
    let Some(chromium) = chromium::find_or_skip("the browser test") else {
        return;
    };
    smol::block_on(async {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let feed = Broadcast::default();
        let (s1, s2) = (shared.clone(), shared.clone());
        let router = Router::with_state(feed.clone())
            .get("/", |_ctx: Ctx<Broadcast>| async { Response::html(PAGE) })
            .post("/report", move |ctx: Ctx<Broadcast>| {
                let shared = s1.clone();
                async move {
                    let value = serde_json::from_slice(ctx.body()).unwrap_or(serde_json::Value::Null);
                    shared.lock().unwrap().reports.push(value);
                    Response::ok_text("ok")
                }
            })
            .get("/events/e2e", move |ctx: Ctx<Broadcast>| {
                let s2 = s2.clone();
                async move {
                    let last = ctx.last_event_id().map(str::to_owned);
                    let subscription = ctx.state().subscribe(last.as_deref());
                    let sse = ctx.sse();
                    {
                        let mut s = s2.lock().unwrap();
                        s.resume_ids.push(last);
                        s.streams.push(sse.clone());
                    }
                    sse.forward(subscription).await
                }
            })
            .stream_config(StreamConfig::default().retry(Duration::from_millis(200)));
        let server = Server::new(Smol, router).unwrap().bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        smol::spawn(server.run()).detach();

        let _browser = Browser::open(&chromium, addr, "e2e");

        wait_until(&shared, "the browser to connect", |s| s.streams.len() == 1).await;
        for i in 1..=5 {
            feed.publish(Event::new(format!("tick {i}")).event("tick")).unwrap();
        }
        wait_until(&shared, "5 events in the browser", |s| s.reports.len() == 5).await;
        // The server ends the stream; events published meanwhile are missed
        // by the browser until it resumes.
        let first = shared.lock().unwrap().streams.remove(0);
        first.close();
        drop(first);
        for i in 6..=10 {
            feed.publish(Event::new(format!("tick {i}")).event("tick")).unwrap();
        }
        wait_until(&shared, "10 events in the browser", |s| s.reports.len() >= 10).await;
        // Nothing more arrives (no duplicate).
        smol::Timer::after(Duration::from_millis(500)).await;
        let s = shared.lock().unwrap();
        let mut got: Vec<(i64, String, String, String)> = s
            .reports
            .iter()
            .map(|r| {
                (
                    r["n"].as_i64().unwrap_or(0),
                    r["type"].as_str().unwrap_or("").to_owned(),
                    r["data"].as_str().unwrap_or("").to_owned(),
                    r["id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        got.sort();
        let want: Vec<_> =
            (1..=10).map(|i| (i, "tick".to_owned(), format!("tick {i}"), i.to_string())).collect();
        assert_eq!(got, want, "every event exactly once, in order");
        assert_eq!(s.resume_ids, [None, Some("5".to_owned())], "the browser resumed with Last-Event-ID 5");
        shutdown.trigger();
    });
}
