//! Differential test of `sse_proto::Decoder` against a real browser: headless
//! Chromium's `EventSource` parses thousands of generated `text/event-stream`
//! bodies, and every event it dispatches (type, data, `lastEventId`, in order)
//! must equal what our decoder produces from the same bytes.
//!
//! The bodies come from a fixed-seed generator weighted toward the hard cases
//! of WHATWG HTML "Interpreting an event stream" (line endings, the BOM, field
//! parsing, comments, `id` with NUL, invalid UTF-8 replaced per maximal
//! subpart, unterminated last blocks). They are served unmodified by an
//! sse-smol server; a page fetches a manifest, opens one `EventSource` per
//! body and POSTs what it saw back.
//!
//! `SSE_BROWSER_CASES` sets the number of generated bodies (default 2000),
//! `SSE_BROWSER_SEED` the generator's seed (to explore beyond the default).
//!
//! Chromium deviates from the spec in one known way, a BOM directly followed
//! by a line break (see `chromium_bom_quirk`). Streams that differ only by
//! that exact, modelled deviation are counted and printed rather than failed;
//! `SSE_BROWSER_STRICT` makes them fail too. Any other difference fails.
//!
//! Needs Chromium (`chromium` on the PATH, Debian's package). Without it the
//! test prints a notice and passes, unless `SSE_REQUIRE_EXTERNAL` is set (CI
//! sets it), in which case a missing browser fails the test.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sse_smol::proto::Decoder;
use sse_smol::proto::bytes::Bytes;
use sse_smol::{Ctx, Response, Router, Server, Smol};

#[path = "support/chromium.rs"]
mod chromium;
use chromium::Browser;

/// One dispatched event as a page sees it: `(type, data, lastEventId)`.
type Ev = (String, String, String);

/// Generated bodies unless `SSE_BROWSER_CASES` says otherwise.
const DEFAULT_CASES: usize = 2000;
/// The generator's seed unless `SSE_BROWSER_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5EE_D1FF_2024;
/// How long the browser gets for all the streams.
const DEADLINE: Duration = Duration::from_secs(240);

/// The page: fetches the manifest (per stream, the event types to listen
/// for), then runs the streams four at a time (HTTP/1.1 allows six
/// connections per host; the report POSTs need some too). A stream is over
/// at its first `error` event: the server sent the whole body and closed, and
/// the browser would now reconnect, which `close()` prevents. Errors of the
/// page itself are reported as `fatal`, so the test fails fast instead of
/// waiting for reports that never come.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>differential</title>
<script>
  const post = (body) => fetch("/r", { method: "POST", body: JSON.stringify(body) });
  window.onerror = (msg) => { post({ fatal: String(msg) }); };
  function run(i, types) {
    return new Promise((resolve) => {
      const events = [];
      const source = new EventSource("/s?i=" + i);
      // A stream may name its events "error" or "open": those arrive as
      // MessageEvents and are data; the connection's own events are plain.
      const record = (e) => {
        if (e instanceof MessageEvent) events.push({ type: e.type, data: e.data, id: e.lastEventId });
      };
      for (const t of types) source.addEventListener(t, record);
      source.addEventListener("error", (e) => {
        if (e instanceof MessageEvent) return;
        source.close();
        post({ i, events }).then(resolve, resolve);
      });
    });
  }
  (async () => {
    try {
      const manifest = await (await fetch("/manifest")).json();
      let next = 0;
      const worker = async () => {
        while (next < manifest.length) {
          const i = next++;
          await run(i, manifest[i]);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    } catch (e) {
      post({ fatal: String(e) });
    }
  })();
</script>
"#;

// ---------------------------------------------------------------------------
// The generator.

/// xorshift64: tiny, deterministic, good enough to pick tokens.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A token from a weighted table.
    fn pick(&mut self, table: &[(u32, &'static [u8])]) -> &'static [u8] {
        let total: u32 = table.iter().map(|(w, _)| w).sum();
        let mut r = (self.next() % u64::from(total)) as u32;
        for &(w, token) in table {
            if r < w {
                return token;
            }
            r -= w;
        }
        unreachable!("r < total")
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a line starts with: a field name and its separator.
const FIELDS: &[(u32, &[u8])] = &[
    // "If the field name is "data": Append the field value to the data
    // buffer, then append a single U+000A LINE FEED (LF)". "If value starts
    // with a U+0020 SPACE character, remove it": one space only, so "data:  "
    // keeps the second.
    (14, b"data:"),
    (14, b"data: "),
    (3, b"data:  "),
    // "Otherwise, the string is not empty but does not contain a colon:
    // process the field using the whole line as the field name, and the empty
    // string as the field value": `data` alone appends an empty line (when
    // value tokens follow, the whole line is the name and it is ignored).
    (4, b"data"),
    // "If the field name is "id": If the field value does not contain U+0000
    // NULL, then set the last event ID buffer to the field value. Otherwise,
    // ignore the field." An empty value resets the id.
    (6, b"id:"),
    (5, b"id: "),
    (2, b"id"),
    // "If the field name is "event": Set the event type buffer to the field
    // value." Empty means `message` at dispatch.
    (6, b"event:"),
    (5, b"event: "),
    (2, b"event"),
    // "If the field name is "retry": ... only ASCII digits ...": never
    // visible as an event, but it must not disturb the other fields.
    (3, b"retry:"),
    (2, b"retry: "),
    // "If the line starts with a U+003A COLON character (:): Ignore the line."
    (4, b":"),
    (2, b": "),
    // "Otherwise: The field is ignored." Near misses of the known names: case
    // matters, no prefix match, no trimming before the name or the colon.
    (1, b"Data:"),
    (1, b"DATA:"),
    (1, b"datax:"),
    (1, b" data:"),
    (1, b"data :"),
    (1, b"\tdata:"),
    (1, b"ids:"),
    (1, b"Event:"),
    // No name token: the value tokens themselves start the line (a BOM or
    // invalid byte in a field name, a digit, a space...).
    (3, b""),
];

/// What follows the field name: the value (and, for the no-name lines, the
/// name too).
const VALUES: &[(u32, &[u8])] = &[
    // Plain text, including the names the page must tell from connection
    // events ("open", "error") and the default type spelled out.
    (6, b"a"),
    (4, b"hello"),
    (2, b"x y"),
    (2, b"tick"),
    (1, b"message"),
    (1, b"error"),
    (1, b"open"),
    // Digits: `retry` values, ids.
    (3, b"0"),
    (2, b"42"),
    (1, b"3000"),
    // "If value starts with a U+0020 SPACE character, remove it": spaces at
    // the start of a value (after "data:" or "data: ") and elsewhere.
    (5, b" "),
    // Only the first colon separates: later ones belong to the value.
    (3, b":"),
    // A field name inside a value is just text.
    (1, b"data: "),
    // NUL: an `id` value containing it is ignored; elsewhere it is text.
    (3, b"\0"),
    // The BOM after the start of the stream is ordinary text (U+FEFF):
    // "UTF-8 decode" strips only one, at the very start.
    (2, BOM),
    // Partial BOMs: invalid UTF-8, one U+FFFD per maximal subpart (EF BB is
    // one subpart; a lone BB or BF continuation byte is one each).
    (1, b"\xEF"),
    (1, b"\xEF\xBB"),
    (1, b"\xBB\xBF"),
    // Invalid UTF-8 (Encoding standard, UTF-8 decoder): a lone 0xFF and a
    // lone continuation byte are one U+FFFD each...
    (2, b"\xFF"),
    (2, b"\x80"),
    // ...a truncated sequence is one U+FFFD for the whole maximal subpart
    // (E2 82 of "€", F0 9F 98 of "😀"), also when a line break or ASCII
    // follows ("C3 A" replaces only the C3)...
    (2, b"\xE2\x82"),
    (1, b"\xF0\x9F\x98"),
    (2, b"\xC3A"),
    // ...overlong forms and surrogates are never the start of a valid
    // sequence: C0, E0 80, ED A0 are rejected at their second byte, so each
    // byte is its own U+FFFD; beyond U+10FFFF (F4 90) likewise.
    (1, b"\xC0\xAF"),
    (1, b"\xE0\x80\x80"),
    (1, b"\xED\xA0\x80"),
    (1, b"\xF4\x90\x80\x80"),
    // Valid multi-byte characters, two, three and four bytes long.
    (2, "é".as_bytes()),
    (2, "€".as_bytes()),
    (2, "😀".as_bytes()),
];

/// "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE
/// FEED (CRLF) character pair, a single U+000A LINE FEED (LF) character, or a
/// single U+000D CARRIAGE RETURN (CR) character." A lone CR ends a line at
/// once, so "\r\r" is a line end plus a blank line, and "\n\r" two ends.
const EOLS: &[(u32, &[u8])] = &[(6, b"\n"), (3, b"\r\n"), (3, b"\r")];

/// One generated body: up to about 300 bytes.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    // The start of the stream: "UTF-8 decode" strips one leading BOM; a
    // second one, or a partial one, is text (here: the first field name,
    // which then matches nothing).
    match rng.below(100) {
        0..20 => out.extend_from_slice(BOM),
        20..24 => out.extend_from_slice(b"\xEF\xBB\xBF\xEF\xBB\xBF"),
        24..27 => out.extend_from_slice(b"\xEF\xBB"),
        27..29 => out.extend_from_slice(b"\xEF"),
        _ => {}
    }
    // A blank line first (right after the BOM, or at the very start):
    // dispatches nothing, since the data buffer is empty.
    if rng.chance(12) {
        out.extend_from_slice(rng.pick(EOLS));
    }
    let target = rng.below(301);
    if rng.chance(20) {
        // Token soup: names, values and line ends in any order, cut at the
        // target length (possibly inside a multi-byte character, or between
        // the CR and LF of a CRLF).
        while out.len() < target {
            let token = match rng.below(10) {
                0..3 => rng.pick(FIELDS),
                3..7 => rng.pick(VALUES),
                _ => rng.pick(EOLS),
            };
            out.extend_from_slice(token);
        }
        out.truncate(target);
    } else {
        // Blocks of lines, most of them ended by a blank line so that events
        // are dispatched ("If the line is empty (a blank line): Dispatch the
        // event").
        while out.len() < target {
            for _ in 0..1 + rng.below(4) {
                out.extend_from_slice(rng.pick(FIELDS));
                for _ in 0..rng.below(4) {
                    out.extend_from_slice(rng.pick(VALUES));
                }
                out.extend_from_slice(rng.pick(EOLS));
            }
            if rng.chance(85) {
                out.extend_from_slice(rng.pick(EOLS));
            }
        }
        // Sometimes the body ends mid-line or mid-block: "If the file ends in
        // the middle of an event, before the final empty line, the incomplete
        // event is not dispatched." (A cut may also split a character or a
        // CRLF.)
        if rng.chance(8) {
            let cut = rng.below(out.len() + 1);
            out.truncate(cut);
        }
    }
    out
}

/// Hand-written bodies run before the generated ones: the known edge cases,
/// so they are covered whatever the seed.
fn fixed_cases() -> Vec<Vec<u8>> {
    let cases: &[&[u8]] = &[
        b"data: x\n\n",
        // One leading BOM is stripped, also before a line break (where
        // Chromium gets it wrong: see `chromium_bom_quirk`; the CRLF case
        // happens to come out right, the id case loses the id).
        b"\xEF\xBB\xBFdata: x\n\n",
        b"\xEF\xBB\xBF\ndata: x\n\n",
        b"\xEF\xBB\xBF\rdata: x\n\n",
        b"\xEF\xBB\xBF\r\ndata: x\n\n",
        b"\xEF\xBB\xBF\nid: 1\n\ndata: x\n\n",
        // A second BOM, or a partial one, makes the first field name unknown.
        b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
        b"\xEF\xBBdata: x\n\ndata: y\n\n",
        // Line endings: lone CR (also as the very last byte), CRLF, LF CR.
        b"data: x\r\r",
        b"data: x\r\ndata: y\r\n\r\n",
        b"data: x\n\r",
        // Field parsing.
        b"data\n\ndata:\n\ndata:  two spaces\n\n",
        b"data:a:b\n\n:comment\ndata\n\n",
        b"event: t\ndata: 1\n\nevent\ndata: 2\n\nevent: \ndata: 3\n\n",
        b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\nid\ndata: c\n\n",
        b"Data: x\n\n data: x\n\ndata : x\n\ndatax: x\n\n",
        b"event: error\ndata: e\n\nevent: open\ndata: o\n\n",
        // Invalid UTF-8 in data, event and id.
        b"data: \xFF\x80\xE2\x82\xC3A\xC0\xAF\xED\xA0\x80\xF0\x9F\x98\n\n",
        b"event: \xE2\x82\nid: \xF4\x90\x80\x80\ndata: \xEF\xBB\n\n",
        b"data: \xE2\x82\ndata: \xAC\n\n",
        // Unterminated last block or line.
        b"data: x\n\ndata: y\n",
        b"data: x\n\ndata: y",
    ];
    cases.iter().map(|c| c.to_vec()).collect()
}

// ---------------------------------------------------------------------------
// Our side.

/// Our decoder's events for the whole body.
fn decode(body: &[u8]) -> Vec<Ev> {
    let mut decoder = Decoder::new();
    decoder.feed(body);
    decoder.finish();
    drain(&mut decoder)
}

/// The same, one byte at a time (the decoder claims split invariance).
fn decode_bytewise(body: &[u8]) -> Vec<Ev> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for b in body {
        decoder.feed(std::slice::from_ref(b));
        events.extend(drain(&mut decoder));
    }
    decoder.finish();
    events.extend(drain(&mut decoder));
    events
}

fn drain(decoder: &mut Decoder) -> Vec<Ev> {
    let mut events = Vec::new();
    while let Some(e) = decoder.poll_event().expect("no limit is near") {
        events.push((e.event_type().to_owned(), e.data().to_owned(), e.last_event_id().to_owned()));
    }
    events
}

/// The event types the page listens for on one stream: `message`, ours, and
/// every value an `event` line of the body could have, however it is read
/// (each run of bytes between CR/LF, with and without a leading BOM). The
/// extra candidates make an event that only Chromium dispatches visible
/// instead of silently unheard.
fn listen_types(body: &[u8], ours: &[Ev]) -> Vec<String> {
    let mut types: BTreeSet<String> = ours.iter().map(|e| e.0.clone()).collect();
    types.insert("message".to_owned());
    for line in body.split(|&b| b == b'\r' || b == b'\n') {
        for line in [line, line.strip_prefix(BOM).unwrap_or(line)] {
            if let Some(value) = line.strip_prefix(b"event:") {
                types.insert(String::from_utf8_lossy(value).into_owned());
                if let Some(v) = value.strip_prefix(b" ") {
                    types.insert(String::from_utf8_lossy(v).into_owned());
                }
            }
        }
    }
    // An empty type is dispatched as `message`.
    types.remove("");
    types.into_iter().collect()
}

/// Chromium's one known deviation from the spec, found by this test: what
/// Chromium dispatches for `body` when that differs from the spec, or `None`.
///
/// A stream that starts with a BOM directly followed by CR or LF. Per the
/// spec the BOM is stripped ("UTF-8 decode") and the CR or LF ends an empty
/// line (a blank line, which dispatches nothing at the start), so
/// `EF BB BF 0A "data: x" 0A 0A` fires `x`. Chromium's
/// `EventSourceParser::AddBytes` (third_party/blink/renderer/modules/
/// eventsource/event_source_parser.cc) recognizes the BOM when it reaches the
/// fourth byte, then `continue`s the loop, skipping the line-break check for
/// that byte: the CR or LF becomes the first character of the first line,
/// whose field name then matches nothing, so the whole first line is ignored
/// (`x` is never fired; an `id:` there is never set). Modelled exactly by
/// putting a non-break byte in its place.
///
/// Accepted as Chromium's bug (the spec output is accepted too, for when it
/// is fixed), counted and printed; `SSE_BROWSER_STRICT` fails on it instead.
fn chromium_bom_quirk(body: &[u8]) -> Option<Vec<Ev>> {
    let [0xEF, 0xBB, 0xBF, b'\r' | b'\n', rest @ ..] = body else { return None };
    let mut as_chromium_reads_it = b"\xEF\xBB\xBFx".to_vec();
    as_chromium_reads_it.extend_from_slice(rest);
    Some(decode(&as_chromium_reads_it))
}

// ---------------------------------------------------------------------------
// The browser.

#[derive(Default)]
struct Reports {
    /// Per stream, the events Chromium dispatched, once reported.
    events: Vec<Option<Vec<Ev>>>,
    received: usize,
    /// Errors of the page itself, or reports that made no sense.
    fatal: Vec<String>,
}

impl Reports {
    fn add(&mut self, body: &[u8]) {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return self.fatal.push(format!("unparsable report ({e})")),
        };
        if let Some(msg) = value.get("fatal") {
            return self.fatal.push(format!("page error: {msg}"));
        }
        let slot = value["i"].as_u64().and_then(|i| self.events.get_mut(i as usize));
        let (Some(slot), Some(list)) = (slot, value["events"].as_array()) else {
            return self.fatal.push(format!("malformed report: {value}"));
        };
        let text = |e: &serde_json::Value, k: &str| e[k].as_str().unwrap_or("<not a string>").to_owned();
        let events = list.iter().map(|e| (text(e, "type"), text(e, "data"), text(e, "id"))).collect();
        if slot.replace(events).is_some() {
            return self.fatal.push(format!("stream {} reported twice", value["i"]));
        }
        self.received += 1;
    }
}

fn cases_from_env() -> usize {
    match std::env::var("SSE_BROWSER_CASES") {
        Ok(v) => v.trim().parse().expect("SSE_BROWSER_CASES is a number"),
        Err(_) => DEFAULT_CASES,
    }
}

fn seed_from_env() -> u64 {
    match std::env::var("SSE_BROWSER_SEED") {
        // xorshift must not start at zero.
        Ok(v) => v.trim().parse::<u64>().expect("SSE_BROWSER_SEED is a number").max(1),
        Err(_) => DEFAULT_SEED,
    }
}

#[test]
fn chromium_event_source_agrees_with_the_decoder() {
    let Some(chromium) = chromium::find_or_skip("the browser differential test") else {
        return;
    };
    let started = Instant::now();

    // The streams and what our decoder makes of them.
    let mut rng = Rng(seed_from_env());
    let mut bodies = fixed_cases();
    let fixed = bodies.len();
    bodies.extend((0..cases_from_env()).map(|_| generate(&mut rng)));
    let ours: Vec<Vec<Ev>> = bodies.iter().map(|b| decode(b)).collect();
    for (i, (body, events)) in bodies.iter().zip(&ours).enumerate() {
        assert_eq!(
            &decode_bytewise(body),
            events,
            "stream {i} decodes differently byte by byte: b\"{}\"",
            body.escape_ascii()
        );
    }
    let manifest: Vec<Vec<String>> = bodies.iter().zip(&ours).map(|(b, e)| listen_types(b, e)).collect();
    let manifest = serde_json::to_string(&manifest).expect("strings serialize");
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.into_iter().map(Bytes::from).collect());
    let n = bodies.len();

    let reports = Arc::new(Mutex::new(Reports { events: vec![None; n], ..Default::default() }));
    let got = smol::block_on(async {
        let (r, b) = (reports.clone(), bodies.clone());
        let router = Router::new()
            .get("/", |_ctx: Ctx| async { Response::html(PAGE) })
            .get("/manifest", move |_ctx: Ctx| {
                let manifest = manifest.clone();
                async move { Response::new(200).with_body("application/json", manifest) }
            })
            .get("/s", move |ctx: Ctx| {
                // The body exactly as generated: a plain response, so the
                // stream ends when the body does.
                let body = ctx.query("i").and_then(|i| i.parse::<usize>().ok()).and_then(|i| b.get(i));
                let response = match body {
                    Some(body) => Response::new(200).with_body("text/event-stream", body.clone()),
                    None => Response::new(404),
                };
                async move { response }
            })
            .post("/r", move |ctx: Ctx| {
                r.lock().unwrap().add(ctx.body());
                async { Response::ok_text("ok") }
            });
        let server = Server::new(Smol, router).unwrap().bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        smol::spawn(server.run()).detach();

        let browser = Browser::open(&chromium, addr, "diff");

        let deadline = Instant::now() + DEADLINE;
        loop {
            {
                let r = reports.lock().unwrap();
                assert!(r.fatal.is_empty(), "the page failed: {:?}", r.fatal);
                if r.received == n {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out: {} of {n} streams reported after {DEADLINE:?}",
                    r.received
                );
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        drop(browser);
        shutdown.trigger();
        let r = std::mem::take(&mut reports.lock().unwrap().events);
        r.into_iter().map(|e| e.expect("all reported")).collect::<Vec<_>>()
    });

    // The comparison.
    let strict = std::env::var_os("SSE_BROWSER_STRICT").is_some();
    let (mut mismatches, mut quirks) = (Vec::new(), Vec::new());
    for (i, (ours, theirs)) in ours.iter().zip(&got).enumerate() {
        if ours == theirs {
            continue;
        }
        if !strict && chromium_bom_quirk(&bodies[i]).as_ref() == Some(theirs) {
            quirks.push(i);
        } else {
            mismatches.push(i);
        }
    }
    let events: usize = ours.iter().map(Vec::len).sum();
    let dispatching = ours.iter().filter(|e| !e.is_empty()).count();
    eprintln!(
        "browser differential: {n} streams ({fixed} fixed, {} generated), {events} events compared, \
         {dispatching} streams dispatched events, {} mismatches, {:.1?}",
        n - fixed,
        mismatches.len(),
        started.elapsed()
    );
    if let Some(&first) = quirks.first() {
        eprintln!(
            "NOTICE: {} streams differ only by Chromium's known BOM + line break bug \
             (see chromium_bom_quirk), e.g. stream {first}: b\"{}\"",
            quirks.len(),
            bodies[first].escape_ascii()
        );
    }
    if !mismatches.is_empty() {
        let mut msg = format!("{} of {n} streams decode differently in Chromium:\n", mismatches.len());
        for &i in mismatches.iter().take(10) {
            msg += &format!(
                "\nstream {i}: b\"{}\"\n  ours:     {:?}\n  chromium: {:?}\n",
                bodies[i].escape_ascii(),
                ours[i],
                got[i]
            );
        }
        panic!("{msg}");
    }
    // Guard against a vacuous pass (a generator that stopped producing
    // events, a page that hears nothing).
    assert!(
        dispatching * 10 > n * 3,
        "only {dispatching} of {n} streams dispatched an event: the generator has gone astray"
    );
}
