//! The SSE contract test service (examples/contract_service.rs), on
//! loopback: its router in-process, driven as the suite's harness drives
//! it, against an in-test event stream and an in-test callback receiver;
//! then the built example binary, started and stopped (skipped with a
//! notice when it is not built, failed when SSE_REQUIRE_EXTERNAL is set).

#[allow(dead_code)]
#[path = "../examples/contract_service.rs"]
mod service;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smol::channel::{Receiver, Sender, unbounded};
use smol::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use sse_smol::proto::ResponseHead;
use sse_smol::{Ctx, Event, Response, Router, Runtime, Server, Smol};

/// Fails the test if `fut` takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    future::or(fut, async {
        smol::Timer::after(limit).await;
        panic!("timed out after {limit:?}: {what}")
    })
    .await
}

/// Binds `router` on a free loopback port and serves it in the background.
async fn start<S: Send + Sync + 'static>(router: Router<S>) -> SocketAddr {
    let bound = Server::new(Smol, router).unwrap().bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = bound.local_addr();
    Smol.spawn(Box::pin(async move {
        let _ = bound.run().await;
    }));
    addr
}

/// A response: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One request on a connection of its own (`Connection: close`), read to
/// the end.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    within(Duration::from_secs(5), "a request to the service", async {
        let mut conn = smol::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.unwrap();
        let head = ResponseHead::parse(&buf, 16 * 1024).unwrap().expect("a complete response head");
        Answer {
            status: head.status,
            location: head.location,
            body: String::from_utf8_lossy(&buf[head.head_len..]).into_owned(),
        }
    })
    .await
}

/// What the in-test event stream saw: each connection, with its
/// `Last-Event-ID` and `X-Contract` headers.
#[derive(Debug, PartialEq, Eq)]
struct Connected {
    last_event_id: Option<String>,
    header: Option<String>,
}

/// The in-test event stream's state: where connections are reported, and
/// the pokes that make a later connection send one more event each.
struct Stream {
    seen: Sender<Connected>,
    pokes: Receiver<()>,
}

/// The in-test event stream: the first connection (`Last-Event-ID: 0`)
/// gets a comment and three events, a later one a fourth event and then one
/// `late` event per poke; each stays open until the client leaves.
fn stream_router(seen: Sender<Connected>, pokes: Receiver<()>) -> Router<Stream> {
    Router::with_state(Stream { seen, pokes }).get("/events", |ctx: Ctx<Stream>| async move {
        let first = ctx.last_event_id() == Some("0");
        let connected = Connected {
            last_event_id: ctx.last_event_id().map(str::to_owned),
            header: ctx.header("x-contract").map(str::to_owned),
        };
        let _ = ctx.state().seen.send(connected).await;
        let sse = ctx.sse();
        if first {
            sse.comment("hello").await?;
            sse.send(Event::new("one").event("greeting").id("1")).await?;
            sse.send(Event::new("two")).await?;
            sse.send(Event::new("three").event("x").id("3")).await?;
        } else {
            sse.send(Event::new("again").id("4")).await?;
            while ctx.state().pokes.recv().await.is_ok() {
                sse.send(Event::new("late")).await?;
            }
        }
        sse.closed().await;
        Ok::<(), sse_smol::SendError>(())
    })
}

/// The in-test callback receiver: every `POST /callbacks/{n}` as (n, body).
fn callback_router(received: Sender<(String, Value)>) -> Router<Sender<(String, Value)>> {
    Router::with_state(received).post("/callbacks/{n}", |ctx: Ctx<Sender<(String, Value)>>| async move {
        let n = ctx.param("n").unwrap_or_default().to_owned();
        let body: Value = serde_json::from_slice(ctx.body()).unwrap_or(Value::Null);
        let _ = ctx.state().send((n, body)).await;
        Response::new(202)
    })
}

async fn next<T>(rx: &Receiver<T>, what: &str) -> T {
    within(Duration::from_secs(5), what, async { rx.recv().await.expect("channel open") }).await
}

#[test]
fn the_service_drives_a_client_as_the_contract_suite_does() {
    smol::block_on(within(Duration::from_secs(25), "the whole exchange", async {
        let (seen_tx, seen) = unbounded();
        let (poke, pokes) = unbounded();
        let (callback_tx, callbacks) = unbounded();
        let (stop_tx, stop) = unbounded();
        let stream_addr = start(stream_router(seen_tx, pokes)).await;
        let callback_addr = start(callback_router(callback_tx)).await;
        let service_addr = start(service::router(stop_tx)).await;

        // Status: the capabilities.
        let status = request(service_addr, "GET", "/", "").await;
        assert_eq!(status.status, 200);
        let status: Value = serde_json::from_str(&status.body).unwrap();
        assert_eq!(
            status["capabilities"],
            json!(["comments", "headers", "last-event-id", "post", "read-timeout", "report", "restart"])
        );

        // Bad configurations are refused.
        assert_eq!(request(service_addr, "POST", "/", "{not json").await.status, 400);
        let no_url = json!({ "streamUrl": "not a url", "callbackUrl": format!("http://{callback_addr}/c") });
        assert_eq!(request(service_addr, "POST", "/", &no_url.to_string()).await.status, 400);

        // Create a stream: a resource in `Location`.
        let options = json!({
            "streamUrl": format!("http://{stream_addr}/events"),
            "callbackUrl": format!("http://{callback_addr}/callbacks"),
            "tag": "in-test",
            "initialDelayMs": 0,
            "lastEventId": "0",
            "headers": { "x-contract": "yes" },
        });
        let created = request(service_addr, "POST", "/", &options.to_string()).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let location = created.location.expect("a Location header");
        let resource = location.strip_prefix(&format!("http://{service_addr}")).expect("an absolute URL");
        assert!(resource.starts_with("/streams/"), "{location}");

        // The client connects with the configured Last-Event-ID and header.
        assert_eq!(
            next(&seen, "the first connection").await,
            Connected { last_event_id: Some("0".into()), header: Some("yes".into()) }
        );

        // The callbacks, numbered from 1, in stream order.
        let expected = [
            json!({ "kind": "comment", "comment": "hello" }),
            json!({ "kind": "event", "event": { "type": "greeting", "data": "one", "id": "1" } }),
            json!({ "kind": "event", "event": { "type": "message", "data": "two", "id": "1" } }),
            json!({ "kind": "event", "event": { "type": "x", "data": "three", "id": "3" } }),
        ];
        for (n, message) in expected.iter().enumerate() {
            let (path, body) = next(&callbacks, "a callback").await;
            assert_eq!((path.as_str(), &body), ((n + 1).to_string().as_str(), message));
        }

        // Commands: unknown ones and unknown streams are refused.
        let bogus = request(service_addr, "POST", resource, r#"{"command": "bogus"}"#).await;
        assert_eq!(bogus.status, 400);
        let missing = request(service_addr, "POST", "/streams/999", r#"{"command": "restart"}"#).await;
        assert_eq!(missing.status, 404);

        // Restart: the connection is dropped and made again, resuming.
        let restarted = request(service_addr, "POST", resource, r#"{"command": "restart"}"#).await;
        assert!((200..300).contains(&restarted.status), "{}", restarted.status);
        assert_eq!(
            next(&seen, "the reconnection").await,
            Connected { last_event_id: Some("3".into()), header: Some("yes".into()) }
        );
        let (path, body) = next(&callbacks, "the callback after the restart").await;
        assert_eq!(path, "5");
        assert_eq!(
            body,
            json!({ "kind": "event", "event": { "type": "message", "data": "again", "id": "4" } })
        );

        // The stream is live: an event sent now is reported.
        poke.send(()).await.unwrap();
        let (path, body) = next(&callbacks, "the callback of a poke").await;
        assert_eq!(path, "6");
        assert_eq!(
            body,
            json!({ "kind": "event", "event": { "type": "message", "data": "late", "id": "4" } })
        );

        // Delete: the client is closed; what the stream sends after it is
        // not reported, and the client does not reconnect.
        assert_eq!(request(service_addr, "DELETE", resource, "").await.status, 204);
        assert_eq!(request(service_addr, "DELETE", resource, "").await.status, 404);
        poke.send(()).await.unwrap();
        smol::Timer::after(Duration::from_millis(300)).await;
        assert!(seen.is_empty(), "no reconnection after DELETE: {:?}", seen.try_recv());
        assert!(callbacks.is_empty(), "no callback after DELETE: {:?}", callbacks.try_recv());

        // Stop.
        assert_eq!(request(service_addr, "DELETE", "/", "").await.status, 204);
        next(&stop, "the stop signal").await;
    }));
}

/// The example binary built beside this test, if it is there.
fn service_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let path = dir.join(format!("sse-contract-service{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        return Some(path);
    }
    let message =
        format!("sse-contract-service not built at {} (run `cargo test -p sse-smol`)", path.display());
    if std::env::var_os("SSE_REQUIRE_EXTERNAL").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

#[test]
fn the_binary_answers_its_status_and_stops_on_delete() {
    let Some(path) = service_binary() else { return };
    let mut child = Command::new(path)
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sse-contract-service starts");
    // The address it bound, from its first line (read on a thread: a
    // child that prints nothing must not hang the test).
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx.recv_timeout(Duration::from_secs(10));
    let addr: Option<SocketAddr> = line
        .as_ref()
        .ok()
        .and_then(|l| l.trim().strip_prefix("listening on http://"))
        .and_then(|a| a.parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no address printed: {line:?}");
    };

    let status = smol::block_on(request(addr, "GET", "/", ""));
    assert_eq!(status.status, 200);
    assert!(status.body.contains("\"restart\""), "{}", status.body);
    assert_eq!(smol::block_on(request(addr, "DELETE", "/", "")).status, 204);

    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break Some(exit);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // A child process has no fake clock: poll its exit.
        std::thread::sleep(Duration::from_millis(20));
    };
    let exit = exit.expect("the service exits after DELETE /");
    assert!(exit.success(), "{exit:?}");
}
