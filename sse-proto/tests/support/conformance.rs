//! Data-driven conformance runner for case files in the schema of
//! `tests/data/README.md` (the web-platform-tests `eventsource/` suite as
//! data). Shared by the `conformance` example and the test suite, so both
//! judge the decoder by the same code.

#![allow(dead_code, unreachable_pub)]

use serde_json::Value;
use sse_proto::{Client, ClientConfig, ClientEvent, Command, Decoder, MessageEvent};
use std::fmt::Write as _;
use std::time::Instant;

/// One dispatched event as a case expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub event_type: String,
    pub data: String,
    pub last_event_id: String,
}

impl From<&MessageEvent> for Expected {
    fn from(ev: &MessageEvent) -> Self {
        Expected {
            event_type: ev.event_type().to_owned(),
            data: ev.data().to_owned(),
            last_event_id: ev.last_event_id().to_owned(),
        }
    }
}

/// A later response of a `client` case.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// `None` = the request must not carry `Last-Event-ID`.
    pub expect_last_event_id_header: Option<String>,
    pub status: u16,
    pub content_type: String,
    pub chunks: Vec<Vec<u8>>,
}

/// The state a case expects after its last response.
#[derive(Debug, Clone, Default)]
pub struct Final {
    /// Outer `None`: not checked. `Some(None)`: unchanged from the default.
    pub reconnection_time_ms: Option<Option<u64>>,
    pub last_event_id: Option<String>,
    pub ready_state: Option<String>,
}

/// A case of either kind.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub kind: String,
    pub chunks: Vec<Vec<u8>>,
    pub status: u16,
    pub content_type: String,
    pub reconnects: Vec<Reconnect>,
    pub expected: Vec<Expected>,
    pub expected_final: Final,
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Reads a case file (a JSON array of cases).
pub fn load(path: &std::path::Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_cases(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the JSON text of a case file.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let arr = v.as_array().ok_or("a case file is a JSON array")?;
    arr.iter().map(parse_case).collect()
}

fn parse_case(v: &Value) -> Result<Case, String> {
    let name = v["name"].as_str().ok_or("case without a name")?.to_owned();
    let ctx = |e: String| format!("case {name:?}: {e}");
    let kind = v["kind"].as_str().ok_or_else(|| ctx("missing kind".into()))?.to_owned();
    if kind != "parser" && kind != "client" {
        return Err(ctx(format!("unknown kind {kind:?}")));
    }
    let encoding = v["encoding"].as_str().unwrap_or("utf8");
    let chunks = parse_chunks(&v["chunks"], encoding).map_err(ctx)?;
    let status = parse_status(&v["status"]).map_err(ctx)?;
    let content_type = v["content_type"].as_str().unwrap_or("text/event-stream").to_owned();
    let mut reconnects = Vec::new();
    if let Some(rs) = v["reconnects"].as_array() {
        for r in rs {
            let enc = r["encoding"].as_str().unwrap_or(encoding);
            reconnects.push(Reconnect {
                expect_last_event_id_header: match &r["expect_last_event_id_header"] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => return Err(ctx(format!("bad expect_last_event_id_header {other}"))),
                },
                status: parse_status(&r["status"]).map_err(ctx)?,
                content_type: r["content_type"].as_str().unwrap_or("text/event-stream").to_owned(),
                chunks: parse_chunks(&r["chunks"], enc).map_err(ctx)?,
            });
        }
    }
    let mut expected = Vec::new();
    for e in v["expected"].as_array().ok_or_else(|| ctx("missing expected".into()))? {
        let field = |k: &str| {
            e[k].as_str().map(str::to_owned).ok_or_else(|| ctx(format!("expected event without {k}")))
        };
        expected.push(Expected {
            event_type: field("type")?,
            data: field("data")?,
            last_event_id: field("lastEventId")?,
        });
    }
    let mut expected_final = Final::default();
    if let Some(f) = v.get("expected_final").and_then(Value::as_object) {
        if let Some(r) = f.get("reconnection_time_ms") {
            expected_final.reconnection_time_ms = Some(match r {
                Value::Null => None,
                r => Some(r.as_u64().ok_or_else(|| ctx("bad reconnection_time_ms".into()))?),
            });
        }
        if let Some(id) = f.get("last_event_id") {
            expected_final.last_event_id =
                Some(id.as_str().ok_or_else(|| ctx("bad last_event_id".into()))?.to_owned());
        }
        if let Some(rs) = f.get("ready_state") {
            expected_final.ready_state =
                Some(rs.as_str().ok_or_else(|| ctx("bad ready_state".into()))?.to_owned());
        }
    }
    Ok(Case { name, kind, chunks, status, content_type, reconnects, expected, expected_final })
}

fn parse_status(v: &Value) -> Result<u16, String> {
    match v {
        Value::Null => Ok(200),
        v => v.as_u64().and_then(|s| u16::try_from(s).ok()).ok_or_else(|| format!("bad status {v}")),
    }
}

fn parse_chunks(v: &Value, encoding: &str) -> Result<Vec<Vec<u8>>, String> {
    let arr = match v {
        Value::Null => return Ok(Vec::new()),
        v => v.as_array().ok_or("chunks must be an array")?,
    };
    arr.iter()
        .map(|c| {
            let s = c.as_str().ok_or("a chunk must be a string")?;
            match encoding {
                "utf8" => Ok(s.as_bytes().to_vec()),
                "base64" => base64_decode(s),
                other => Err(format!("unknown encoding {other:?}")),
            }
        })
        .collect()
}

/// Standard base64 (RFC 4648 §4, padding optional).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("invalid base64 character {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// What one decoding run produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub events: Vec<Expected>,
    pub last_event_id: String,
    pub reconnection_time_ms: Option<u64>,
    pub error: Option<String>,
}

/// Feeds `chunks` to a fresh decoder, draining after each, then finishes.
pub fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    let mut error = None;
    let drain = |d: &mut Decoder, events: &mut Vec<Expected>| loop {
        match d.poll_event() {
            Ok(Some(ev)) => events.push(Expected::from(&ev)),
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        }
    };
    for c in chunks {
        d.feed(c);
        if let Some(e) = drain(&mut d, &mut events) {
            error = Some(e);
            break;
        }
    }
    d.finish();
    if error.is_none() {
        error = drain(&mut d, &mut events);
    }
    Run {
        events,
        last_event_id: d.last_event_id().to_owned(),
        reconnection_time_ms: d.reconnection_time().map(|t| t.as_millis() as u64),
        error,
    }
}

/// Every way the runner splits a parser case's input: as delivered, whole,
/// byte by byte, and in two at every point.
pub fn splits(chunks: &[Vec<u8>]) -> Vec<(String, Vec<Vec<u8>>)> {
    let whole: Vec<u8> = chunks.concat();
    let mut out = vec![
        ("as delivered".to_owned(), chunks.to_vec()),
        ("whole".to_owned(), vec![whole.clone()]),
        ("byte by byte".to_owned(), whole.iter().map(|&b| vec![b]).collect()),
    ];
    for i in 1..whole.len() {
        out.push((format!("split at {i}"), vec![whole[..i].to_vec(), whole[i..].to_vec()]));
    }
    out
}

/// Runs a `parser` case under every split.
pub fn run_parser_case(case: &Case) -> Outcome {
    for (how, chunks) in splits(&case.chunks) {
        let run = decode_chunks(chunks.iter().map(Vec::as_slice));
        if let Some(e) = &run.error {
            return Outcome::Fail(format!("{how}: decode error: {e}"));
        }
        if run.events != case.expected {
            let mut msg = format!("{how}: events differ");
            let _ = write!(msg, "\n    expected: {:?}\n    got:      {:?}", case.expected, run.events);
            return Outcome::Fail(msg);
        }
        let f = &case.expected_final;
        if let Some(id) = &f.last_event_id
            && &run.last_event_id != id
        {
            return Outcome::Fail(format!("{how}: last event ID {:?}, expected {id:?}", run.last_event_id));
        }
        if let Some(rt) = f.reconnection_time_ms
            && run.reconnection_time_ms != rt
        {
            return Outcome::Fail(format!(
                "{how}: reconnection time {:?}, expected {rt:?}",
                run.reconnection_time_ms
            ));
        }
    }
    Outcome::Pass
}

/// Runs one case of either kind.
pub fn run_case(case: &Case) -> Outcome {
    match case.kind.as_str() {
        "parser" => run_parser_case(case),
        _ => run_client_case(case),
    }
}

/// One response of a client case.
struct Response<'a> {
    status: u16,
    content_type: &'a str,
    chunks: &'a [Vec<u8>],
    expect_last_event_id: Option<Option<&'a str>>,
}

/// What a client run produced.
#[derive(Debug, PartialEq, Eq)]
struct ClientRun {
    events: Vec<Expected>,
    ready_state: String,
    retry_ms: Option<u64>,
    last_event_id: String,
}

/// Drives a [`Client`] through a case's responses on a fake clock: each
/// response is served when the client asks to connect (after its
/// reconnection delay), head and body as the case gives them, then the
/// server closes the connection.
fn drive_client(case: &Case, byte_by_byte: bool) -> Result<ClientRun, String> {
    let first = Response {
        status: case.status,
        content_type: &case.content_type,
        chunks: &case.chunks,
        expect_last_event_id: None,
    };
    let later = case.reconnects.iter().map(|r| Response {
        status: r.status,
        content_type: &r.content_type,
        chunks: &r.chunks,
        expect_last_event_id: Some(r.expect_last_event_id_header.as_deref()),
    });
    let mut now = Instant::now();
    let config = ClientConfig::new("http://127.0.0.1:8080/stream").map_err(|e| e.to_string())?;
    let mut client = Client::new(config, now).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let collect = |client: &mut Client, events: &mut Vec<Expected>| {
        while let Some(ev) = client.poll_event() {
            if let ClientEvent::Message(m) = ev {
                events.push(Expected::from(&m));
            }
        }
    };
    for (i, response) in std::iter::once(first).chain(later).enumerate() {
        // Wait (on the fake clock) until the client asks to connect.
        let request = loop {
            match client.poll_command() {
                Some(Command::Connect(r)) => break r,
                Some(Command::Disconnect) => continue,
                None => {
                    collect(&mut client, &mut events);
                    let Some(at) = client.poll_timeout().filter(|_| !client.ready_state().is_closed()) else {
                        return Err(format!(
                            "the client did not make request {} (state {:?})",
                            i + 1,
                            client.ready_state()
                        ));
                    };
                    if at < now {
                        return Err("a deadline in the past".into());
                    }
                    now = at;
                    client.handle_timeout(now);
                }
            }
        };
        if let Some(expected) = response.expect_last_event_id {
            if request.last_event_id() != expected {
                return Err(format!(
                    "request {} sent Last-Event-ID {:?}, expected {expected:?}",
                    i + 1,
                    request.last_event_id()
                ));
            }
            let has_header = request.bytes().windows(15).any(|w| w.eq_ignore_ascii_case(b"last-event-id: "));
            if has_header != expected.is_some() {
                return Err(format!("request {}: Last-Event-ID header present: {has_header}", i + 1));
            }
        }
        let head =
            format!("HTTP/1.1 {} Status\r\nContent-Type: {}\r\n\r\n", response.status, response.content_type);
        client.handle_input(head.as_bytes(), now);
        for chunk in response.chunks {
            if byte_by_byte {
                for b in chunk.chunks(1) {
                    client.handle_input(b, now);
                }
            } else {
                client.handle_input(chunk, now);
            }
            collect(&mut client, &mut events);
        }
        client.handle_eof(now);
        collect(&mut client, &mut events);
    }
    collect(&mut client, &mut events);
    Ok(ClientRun {
        events,
        ready_state: format!("{:?}", client.ready_state()).to_uppercase(),
        retry_ms: client.retry().map(|d| d.as_millis() as u64),
        last_event_id: client.last_event_id().to_owned(),
    })
}

/// Runs a `client` case through the EventSource connection model, with the
/// bodies as delivered and byte by byte.
pub fn run_client_case(case: &Case) -> Outcome {
    for byte_by_byte in [false, true] {
        let how = if byte_by_byte { "byte by byte" } else { "as delivered" };
        let run = match drive_client(case, byte_by_byte) {
            Ok(run) => run,
            Err(e) => return Outcome::Fail(format!("{how}: {e}")),
        };
        if run.events != case.expected {
            return Outcome::Fail(format!(
                "{how}: events differ\n    expected: {:?}\n    got:      {:?}",
                case.expected, run.events
            ));
        }
        let f = &case.expected_final;
        if let Some(rs) = &f.ready_state
            && &run.ready_state != rs
        {
            return Outcome::Fail(format!("{how}: ready state {}, expected {rs}", run.ready_state));
        }
        if let Some(rt) = f.reconnection_time_ms
            && run.retry_ms != rt
        {
            return Outcome::Fail(format!("{how}: reconnection time {:?}, expected {rt:?}", run.retry_ms));
        }
        if let Some(id) = &f.last_event_id
            && &run.last_event_id != id
        {
            return Outcome::Fail(format!("{how}: last event ID {:?}, expected {id:?}", run.last_event_id));
        }
    }
    Outcome::Pass
}
