//! `sse-contract-service`: the test service of LaunchDarkly's SSE contract
//! test suite (<https://github.com/launchdarkly/sse-contract-tests>) for our
//! `EventSource`, so that the suite can be run against this client.
//!
//! ```text
//! cargo run --release -p sse-smol --example sse-contract-service [-- --addr 127.0.0.1:8000]
//! sse-contract-tests --url http://localhost:8000
//! ```
//!
//! The protocol (the suite's `docs/service_spec.md`):
//!
//! - `GET /`: `{"capabilities": [...]}`, the optional features the client
//!   has ([`CAPABILITIES`]);
//! - `DELETE /`: the service stops;
//! - `POST /` with `{"streamUrl", "callbackUrl", "tag"?, "initialDelayMs"?,
//!   "readTimeoutMs"?, "lastEventId"?, "method"?, "body"?, "headers"?}`:
//!   starts an `EventSource` on `streamUrl` and answers `201` with the
//!   stream's resource in `Location` (`400` for a config the client refuses);
//! - `POST /streams/{id}` with `{"command": "restart"}`: the client drops
//!   its connection and reconnects now (`400` for another command, `404` for
//!   no such stream);
//! - `DELETE /streams/{id}`: the client is closed (`404` for no such
//!   stream).
//!
//! What the client reports is posted as JSON to `callbackUrl/1`,
//! `callbackUrl/2`, ..., one at a time and in order (a task per stream does
//! the posting): `{"kind": "event", "event": {"type", "data", "id"}}` for a
//! message (`id` the last event ID at dispatch), `{"kind": "comment",
//! "comment": text}` for a comment line, `{"kind": "error", "error":
//! message}` for a `ClientEvent::Error` (the field the suite reads is
//! `error`). `Open` and `Ended` (a clean end of the stream, which our client
//! does not count as an error) are logged, not posted.
//!
//! Prints `listening on http://ADDR` on stdout once bound (`--addr
//! 127.0.0.1:0` picks a free port); logs each stream's life on stderr.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use smol::channel::{Receiver, Sender, unbounded};
use smol::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use sse_smol::proto::{ResponseHead, Url};
use sse_smol::{ClientConfig, ClientEvent, Ctx, EventSource, Response, Router, Runtime, Server, Smol};

const USAGE: &str = "sse-contract-service [--addr HOST:PORT]  (default 127.0.0.1:8000)";

/// What `GET /` declares. Every one is a feature of `EventSource` and
/// `ClientConfig`: comment lines reported in order (`comments(true)`),
/// extra request headers (`header`), a `Last-Event-ID` on the first request
/// (`last_event_id`), `POST` and any other method with a body, resent on
/// reconnection (`method`, `body`: hence `report`), a read timeout
/// (`read_timeout`), and `restart()`. Not `event-type-listeners`: the
/// client delivers events of every type without being asked to listen.
pub(crate) const CAPABILITIES: &[&str] =
    &["comments", "headers", "last-event-id", "post", "read-timeout", "report", "restart"];

/// How long one callback may take before it is given up (and the next one
/// is posted).
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest callback response head read.
const MAX_CALLBACK_HEAD: usize = 16 * 1024;

/// The body of `POST /`: the stream to open and how.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamOptions {
    stream_url: String,
    callback_url: String,
    tag: Option<String>,
    initial_delay_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    last_event_id: Option<String>,
    method: Option<String>,
    body: Option<String>,
    headers: Option<BTreeMap<String, String>>,
}

impl StreamOptions {
    /// The client's configuration: comments reported, and whatever the
    /// options set. A body without a `Content-Type` among the headers is
    /// sent as `text/plain` (as the suite allows).
    fn client_config(&self) -> Result<ClientConfig, String> {
        let mut config =
            ClientConfig::new(&self.stream_url).map_err(|e| format!("streamUrl: {e}"))?.comments(true);
        if let Some(method) = self.method.as_deref().filter(|m| !m.is_empty()) {
            config = config.method(method);
        }
        let headers = self.headers.iter().flatten();
        let mut content_type = false;
        for (name, value) in headers {
            content_type |= name.eq_ignore_ascii_case("content-type");
            config = config.header(name, value);
        }
        if let Some(body) = &self.body {
            if !content_type {
                config = config.header("Content-Type", "text/plain");
            }
            config = config.body(body.clone().into_bytes());
        }
        if let Some(ms) = self.initial_delay_ms {
            config = config.reconnection_time(Duration::from_millis(ms));
        }
        if let Some(ms) = self.read_timeout_ms.filter(|&ms| ms > 0) {
            config = config.read_timeout(Duration::from_millis(ms));
        }
        if let Some(id) = self.last_event_id.as_deref().filter(|id| !id.is_empty()) {
            config = config.last_event_id(id);
        }
        Ok(config)
    }
}

/// What the service asks of a stream's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Restart,
    Close,
}

/// The service's state: the open streams, and the way to stop.
pub(crate) struct Service {
    streams: Mutex<HashMap<u64, Sender<Command>>>,
    next_id: AtomicU64,
    stop: Sender<()>,
}

impl Service {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Sender<Command>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The command channel of stream `id`, if it is open.
    fn stream(&self, ctx: &Ctx<Service>) -> Option<(u64, Sender<Command>)> {
        let id: u64 = ctx.param("id")?.parse().ok()?;
        let commands = self.streams().get(&id)?.clone();
        Some((id, commands))
    }
}

/// The service's routes; `stop` receives a message on `DELETE /`.
pub(crate) fn router(stop: Sender<()>) -> Router<Service> {
    let service = Service { streams: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1), stop };
    Router::with_state(service)
        .get("/", |_ctx: Ctx<Service>| async {
            let body = json!({ "capabilities": CAPABILITIES }).to_string();
            Response::new(200).with_body("application/json", body)
        })
        .route("DELETE", "/", |ctx: Ctx<Service>| async move {
            eprintln!("stop requested");
            let _ = ctx.state().stop.try_send(());
            Response::new(204)
        })
        .post("/", |ctx: Ctx<Service>| async move { create_stream(&ctx) })
        .post("/streams/{id}", |ctx: Ctx<Service>| async move {
            let Some((id, commands)) = ctx.state().stream(&ctx) else {
                return Response::new(404).text("no such stream\n");
            };
            let command = serde_json::from_slice::<Value>(ctx.body()).ok();
            match command.as_ref().and_then(|c| c.get("command")).and_then(Value::as_str) {
                Some("restart") => {
                    eprintln!("stream {id}: restart");
                    let _ = commands.try_send(Command::Restart);
                    Response::new(204)
                }
                Some(other) => Response::new(400).text(format!("unknown command {other:?}\n")),
                None => Response::new(400).text("expected {\"command\": ...}\n"),
            }
        })
        .route("DELETE", "/streams/{id}", |ctx: Ctx<Service>| async move {
            let Some((id, commands)) = ctx.state().stream(&ctx) else {
                return Response::new(404).text("no such stream\n");
            };
            ctx.state().streams().remove(&id);
            let _ = commands.try_send(Command::Close);
            eprintln!("stream {id}: closed");
            Response::new(204)
        })
}

/// `POST /`: starts a client and its callback poster.
fn create_stream(ctx: &Ctx<Service>) -> Response {
    let options: StreamOptions = match serde_json::from_slice(ctx.body()) {
        Ok(options) => options,
        Err(e) => return Response::new(400).text(format!("invalid stream options: {e}\n")),
    };
    match Url::parse(&options.callback_url) {
        Ok(url) if !url.is_secure() => {}
        Ok(_) => return Response::new(400).text("callbackUrl: only http:// callbacks are supported\n"),
        Err(e) => return Response::new(400).text(format!("callbackUrl: {e}\n")),
    }
    let source =
        match options.client_config().and_then(|c| EventSource::new(Smol, c).map_err(|e| e.to_string())) {
            Ok(source) => source,
            Err(e) => return Response::new(400).text(format!("{e}\n")),
        };
    let service = ctx.state();
    let id = service.next_id.fetch_add(1, Ordering::Relaxed);
    let tag = options.tag.clone().unwrap_or_default();
    eprintln!("stream {id} [{tag}]: {} {}", options.method.as_deref().unwrap_or("GET"), options.stream_url);
    let (commands, command_rx) = unbounded();
    service.streams().insert(id, commands);
    let (messages, message_rx) = unbounded();
    let closed = Arc::new(AtomicBool::new(false));
    Smol.spawn(Box::pin(post_callbacks(id, options.callback_url, message_rx, closed.clone())));
    Smol.spawn(Box::pin(drive(id, source, command_rx, messages, closed)));
    let location = match ctx.header("host") {
        Some(host) => format!("http://{host}/streams/{id}"),
        None => format!("/streams/{id}"),
    };
    Response::new(201).header("Location", &location)
}

/// One step of a stream's task.
enum Step {
    Command(Option<Command>),
    Event(Option<ClientEvent>),
}

/// Runs one client: its events become callback messages (in order, to the
/// poster), commands restart or close it. After the client stops for good
/// it waits for the `DELETE` that closes it.
async fn drive(
    id: u64,
    mut source: EventSource<Smol>,
    commands: Receiver<Command>,
    messages: Sender<Value>,
    closed: Arc<AtomicBool>,
) {
    let mut running = true;
    loop {
        // Commands first: a flood of events must not delay a restart.
        // Dropping an unfinished `next` loses nothing (the client keeps it).
        let next_command = async { Step::Command(commands.recv().await.ok()) };
        let step = if running {
            future::or(next_command, async { Step::Event(source.next().await) }).await
        } else {
            next_command.await
        };
        match step {
            Step::Event(Some(event)) => {
                if let Some(message) = callback_message(id, event) {
                    let _ = messages.try_send(message);
                }
            }
            Step::Event(None) => {
                eprintln!("stream {id}: the client stopped");
                running = false;
            }
            Step::Command(Some(Command::Restart)) => source.restart(),
            Step::Command(Some(Command::Close) | None) => {
                closed.store(true, Ordering::SeqCst);
                source.close();
                return;
            }
        }
    }
}

/// The callback message for a client event, if it is one the suite takes.
fn callback_message(id: u64, event: ClientEvent) -> Option<Value> {
    match event {
        ClientEvent::Message(m) => Some(json!({
            "kind": "event",
            "event": { "type": m.event_type(), "data": m.data(), "id": m.last_event_id() },
        })),
        ClientEvent::Comment(text) => Some(json!({ "kind": "comment", "comment": text })),
        ClientEvent::Error { cause, ready_state } => {
            eprintln!("stream {id}: error ({ready_state:?}): {cause}");
            Some(json!({ "kind": "error", "error": cause.to_string() }))
        }
        other => {
            eprintln!("stream {id}: {other:?}");
            None
        }
    }
}

/// Posts the messages of one stream to `base/1`, `base/2`, ..., each after
/// the previous one was answered; stops once the stream is closed.
async fn post_callbacks(id: u64, base: String, messages: Receiver<Value>, closed: Arc<AtomicBool>) {
    let base = base.trim_end_matches('/');
    let mut counter = 0u64;
    while let Ok(message) = messages.recv().await {
        if closed.load(Ordering::SeqCst) {
            break;
        }
        counter += 1;
        let url = format!("{base}/{counter}");
        match post_json(&url, &message).await {
            Ok(status) if status < 300 => {}
            Ok(status) => eprintln!("stream {id}: callback {url} answered {status}"),
            Err(e) => eprintln!("stream {id}: callback {url} failed: {e}"),
        }
    }
}

/// `POST`s `message` to an `http://` URL on a connection of its own;
/// returns the response's status.
async fn post_json(url: &str, message: &Value) -> io::Result<u16> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let url = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let body = message.to_string();
    let exchange = async {
        let host = url.host().trim_start_matches('[').trim_end_matches(']');
        let mut conn = TcpStream::connect((host, url.port())).await?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            url.target(),
            url.authority(),
            body.len()
        );
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body.as_bytes()).await?;
        conn.flush().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(head) =
                ResponseHead::parse(&buf, MAX_CALLBACK_HEAD).map_err(|e| invalid(e.to_string()))?
            {
                return Ok(head.status);
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    future::or(exchange, async {
        smol::Timer::after(CALLBACK_TIMEOUT).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "no response in time"))
    })
    .await
}

/// `--addr HOST:PORT` (default `127.0.0.1:8000`); exits 2 on a mistake.
fn parse_addr() -> SocketAddr {
    let fail = |msg: &str| -> ! {
        eprintln!("sse-contract-service: {msg}\nusage: {USAGE}");
        exit(2)
    };
    let mut addr = String::from("127.0.0.1:8000");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                exit(0);
            }
            "--addr" => addr = args.next().unwrap_or_else(|| fail("--addr needs a value")),
            _ => match arg.strip_prefix("--addr=") {
                Some(value) => addr = value.to_owned(),
                None => fail(&format!("unexpected argument {arg:?}")),
            },
        }
    }
    match addr.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(addr) => addr,
        None => fail(&format!("--addr {addr:?} is not HOST:PORT")),
    }
}

fn main() -> io::Result<()> {
    let addr = parse_addr();
    smol::block_on(async {
        let (stop, stopped) = unbounded();
        let bound = Server::builder(Smol).router(router(stop)).build()?.bind(addr).await?;
        println!("listening on http://{}", bound.local_addr());
        io::stdout().flush()?;
        let shutdown = bound.shutdown_handle();
        Smol.spawn(Box::pin(async move {
            let _ = stopped.recv().await;
            // Let the answer to `DELETE /` go out first.
            smol::Timer::after(Duration::from_millis(100)).await;
            shutdown.trigger();
        }));
        bound.run().await
    })
}
