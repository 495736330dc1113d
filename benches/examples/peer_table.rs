//! Prints a Markdown table of facts about sse-proto and each decoding peer:
//!
//! 1. how many `kind: "parser"` cases of the WPT conformance file it passes
//!    (type, data and lastEventId of every event), fed the case's own chunks
//!    and fed one byte per chunk; a panic counts as a failure;
//! 2. what happens when a 64 MiB line with no line break arrives in 16 KiB
//!    chunks: an error, or the peak heap it grows to (a counting global
//!    allocator tracks the peak);
//! 3. the time to decode a 768 KiB single `data:` line fed one byte at a
//!    time against a 96 KiB one: a ratio near 8 is linear, near 64 quadratic;
//! 4. whether a chunk `data: x\r\r` dispatches its event at once (the spec:
//!    a lone CR ends its line, the decoder must not wait for the next byte).
//!
//! ```text
//! cargo run --release -p sse-benches --example peer_table [-- path/to/wpt_cases.json]
//! ```
//!
//! The default conformance file is `sse-proto/tests/data/wpt_cases.json`.
//! Slow peers are cut off by time budgets, and the table says so.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peak_alloc::PeakAlloc;
use sse_benches::conformance::{self, Case};
use sse_benches::peers::{DecoderImpl, Ev};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const MIB: usize = 1 << 20;
/// Length of the unterminated line of column 2.
const LONG_LINE: usize = 64 * MIB;
/// Chunk size of column 2.
const LONG_LINE_CHUNK: usize = 16 * 1024;
/// Time budget of column 2, per decoder.
const LONG_LINE_BUDGET: Duration = Duration::from_secs(20);
/// Line lengths of column 3.
const SMALL_LINE: usize = 96 * 1024;
const LARGE_LINE: usize = 768 * 1024;
/// Column 3 skips the 768 KiB run when the 96 KiB run projects (quadratically)
/// past this.
const ONE_BYTE_BUDGET: Duration = Duration::from_secs(90);

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../sse-proto/tests/data/wpt_cases.json").to_owned()
    });
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let cases = conformance::load_parser_cases(&json).expect("valid conformance file");

    // Panics are caught and counted; keep their messages off the terminal.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    let mut table = String::new();
    let mut failures = String::new();
    table.push_str(&format!(
        "| decoder | WPT parser cases, file's chunks (of {n}) | WPT parser cases, 1-byte chunks (of {n}) \
         | 64 MiB line, no line break, 16 KiB chunks | 96 KiB `data:` line, 1 byte/chunk \
         | 768 KiB line, 1 byte/chunk | ratio (8 = linear, 64 = quadratic) \
         | `data: x\\r\\r` dispatched at once |\n",
        n = cases.len()
    ));
    table.push_str("|---|---|---|---|---|---|---|---|\n");

    for imp in DecoderImpl::ALL {
        eprintln!("measuring {}", imp.name());
        let (pass_chunked, failed_chunked) = conformance_pass(imp, &cases, false);
        let (pass_bytes, failed_bytes) = conformance_pass(imp, &cases, true);
        let long_line = long_line(imp);
        let (small, large, ratio) = one_byte_feed(imp);
        let lone_cr = lone_cr_dispatch(imp);
        let _ = writeln!(
            table,
            "| {} | {pass_chunked} | {pass_bytes} | {long_line} | {small} | {large} | {ratio} | {lone_cr} |",
            imp.name()
        );
        for (label, failed) in [("file's chunks", failed_chunked), ("1-byte chunks", failed_bytes)] {
            if !failed.is_empty() {
                let _ = writeln!(failures, "- {} ({label}): {}", imp.name(), failed.join("; "));
            }
        }
    }
    std::panic::set_hook(default_hook);

    println!("{table}");
    if !failures.is_empty() {
        println!("Failed conformance cases:\n\n{failures}");
    }
    println!(
        "Notes: sse-stream yields raw blocks; its row applies the EventSource rules a user adds on \
         top (blocks without `data` are not events, type defaults to `message`, the last `id` is \
         carried over). Peak heap is measured from just before the decoder is created; while a \
         growing buffer is reallocated both copies count (the counting allocator has no in-place \
         realloc), so a doubling buffer peaks at 1.5x its final size."
    );
}

/// Number of cases passed, and a short reason for each failure.
fn conformance_pass(imp: DecoderImpl, cases: &[Case], one_byte: bool) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut failed = Vec::new();
    for case in cases {
        let chunks = if one_byte { conformance::one_byte_chunks(&case.chunks) } else { case.chunks.clone() };
        match conformance::run(imp, &chunks) {
            Ok(events) if events == case.expected => passed += 1,
            Ok(events) => {
                failed.push(format!("{} ({})", case.name, first_difference(&events, &case.expected)))
            }
            Err(err) => failed.push(format!("{} ({})", case.name, shorten(&err))),
        }
    }
    (passed, failed)
}

fn first_difference(got: &[Ev], want: &[Ev]) -> String {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return shorten(&format!(
                "event {i}: got {:?}/{:?}/{:?}, want {:?}/{:?}/{:?}",
                g.event_type, g.data, g.last_event_id, w.event_type, w.data, w.last_event_id
            ));
        }
    }
    format!("{} events, want {}", got.len(), want.len())
}

/// One line of at most ~160 bytes, control characters escaped.
fn shorten(text: &str) -> String {
    const MAX: usize = 160;
    let text: &str =
        &text
            .chars()
            .map(|c| {
                if c.is_control() || c == '\u{feff}' { c.escape_default().to_string() } else { c.to_string() }
            })
            .collect::<String>();
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// Column 2: feed `data: aaaa…` (64 MiB, no line break) in 16 KiB chunks.
fn long_line(imp: DecoderImpl) -> String {
    let mut first = b"data: ".to_vec();
    first.resize(LONG_LINE_CHUNK, b'a');
    let first = Bytes::from(first);
    let rest = Bytes::from(vec![b'a'; LONG_LINE_CHUNK]);
    let mut out = Vec::new();

    let base = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let mut feeder = imp.feeder();
    let start = Instant::now();
    let mut fed = 0;
    let mut stop = None;
    for i in 0..LONG_LINE / LONG_LINE_CHUNK {
        let chunk = if i == 0 { first.clone() } else { rest.clone() };
        fed += chunk.len();
        if let Err(err) = feeder.push(chunk, &mut out) {
            stop = Some(format!("error after {} fed: {}", mib(fed), shorten(&err)));
            break;
        }
        if start.elapsed() > LONG_LINE_BUDGET {
            stop = Some(format!(
                "cut off by the {} s budget after {} fed",
                LONG_LINE_BUDGET.as_secs(),
                mib(fed)
            ));
            break;
        }
    }
    let elapsed = start.elapsed();
    let held = ALLOC.current_usage().saturating_sub(base);
    let peak = ALLOC.peak_usage().saturating_sub(base);
    drop(feeder);
    let outcome =
        stop.unwrap_or_else(|| format!("no error, all 64 MiB buffered ({:.1} s)", elapsed.as_secs_f64()));
    format!("{outcome}; peak heap {}, held at end {}", mib(peak), mib(held))
}

/// Decodes `data: <len × 'a'>\n\n` fed one byte per chunk; the best of a few
/// runs when they are quick.
fn time_one_byte(imp: DecoderImpl, len: usize) -> Result<Duration, String> {
    let mut line = b"data: ".to_vec();
    line.resize(6 + len, b'a');
    line.extend_from_slice(b"\n\n");
    let line = Bytes::from(line);
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    for _ in 0..3 {
        let chunks: Vec<Bytes> = (0..line.len()).map(|i| line.slice(i..i + 1)).collect();
        let mut out = Vec::new();
        let mut feeder = imp.feeder();
        let start = Instant::now();
        for chunk in chunks {
            feeder.push(chunk, &mut out)?;
        }
        feeder.end(&mut out)?;
        let elapsed = start.elapsed();
        if out.len() != 1 || out[0].data.len() != len {
            return Err(format!("{} events", out.len()));
        }
        best = best.min(elapsed);
        total += elapsed;
        if total > Duration::from_secs(1) {
            break;
        }
    }
    Ok(best)
}

fn secs(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Column 3: (96 KiB time, 768 KiB time, ratio).
fn one_byte_feed(imp: DecoderImpl) -> (String, String, String) {
    let small = match time_one_byte(imp, SMALL_LINE) {
        Ok(t) => t,
        Err(err) => return (format!("failed: {err}"), "-".into(), "-".into()),
    };
    let projected = small.saturating_mul(64);
    if projected <= ONE_BYTE_BUDGET {
        return match time_one_byte(imp, LARGE_LINE) {
            Ok(large) => {
                (secs(small), secs(large), format!("{:.1}", large.as_secs_f64() / small.as_secs_f64()))
            }
            Err(err) => (secs(small), format!("failed: {err}"), "-".into()),
        };
    }
    // Too slow to run at 768 KiB: measure 48 KiB, and extrapolate the
    // doubling ratio over the three doublings from 96 to 768 KiB.
    match time_one_byte(imp, SMALL_LINE / 2) {
        Ok(half) => {
            let doubling = small.as_secs_f64() / half.as_secs_f64();
            (
                secs(small),
                format!("not run (would take ≥ {})", secs(projected)),
                format!("≈ {:.0} (96/48 KiB ratio {doubling:.1}, cubed)", doubling.powi(3)),
            )
        }
        Err(err) => (secs(small), "not run".into(), format!("failed at 48 KiB: {err}")),
    }
}

/// Column 4: is the event of `data: x\r\r` dispatched before more input
/// arrives?
fn lone_cr_dispatch(imp: DecoderImpl) -> String {
    let mut feeder = imp.feeder();
    let mut out = Vec::new();
    match feeder.push(Bytes::from_static(b"data: x\r\r"), &mut out) {
        Err(err) => format!("error: {}", shorten(&err)),
        Ok(()) if out.len() == 1 => "yes".to_owned(),
        Ok(()) => {
            let _ = feeder.end(&mut out);
            format!("no: waits for the next byte ({} event(s) after end of stream)", out.len())
        }
    }
}
