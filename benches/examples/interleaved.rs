//! Throughput with the implementations interleaved: each round runs every
//! implementation once on the same input, in turn (each decoding round in
//! a new order); decoding keeps the median of the rounds, encoding the
//! best. On a shared machine whose speed drifts, interleaving exposes every
//! implementation to the same phases, so the ratios are steadier than those
//! of sequential criterion groups.
//!
//! ```text
//! cargo run --release -p sse-benches --example interleaved [-- ROUNDS [decode|encode [MIB [CORPUS]]]]
//! ```
//!
//! `MIB` is the corpus length (default 2), `CORPUS` a substring of the
//! corpus names to run.
//!
//! Two variables measure other inputs the same way:
//!
//! - `SSE_BENCH_FILES`: files of recorded streams, separated by commas, run
//!   instead of the built-in corpora (each whole; `MIB` is then ignored);
//!   what the reference decoder dispatches from each is its expected result.
//! - `SSE_BENCH_CHUNKS`: chunk sizes, separated by commas (default
//!   `16384,1024,1`). At 1 byte a prefix of the input is decoded (`LEN / 8`,
//!   at most 256 KiB). `event` is one chunk per block, as a server that
//!   flushes each event delivers them to a reader that keeps up.
//!
//! Every decoder's events are first checked against the naive reference
//! decoder, and every timed decoding run checks the event count and data
//! bytes; every encoding run checks the output length and event count.

use std::time::Instant;

use bytes::BytesMut;
use sse_benches::encoders::{self, N};
use sse_benches::peers::DecoderImpl;
use sse_benches::{Corpus, XorShift64, chunks, corpus, reference};

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(15);
    let only = std::env::args().nth(2);
    if only.as_deref() != Some("encode") {
        decode(rounds);
    }
    if only.as_deref() != Some("decode") {
        encode(rounds);
    }
}

/// An encoder run: encodes into its reused buffer and returns the time the
/// encoding took, after checking the output's length and event count.
type EncodeRun<'a> = Box<dyn FnMut() -> f64 + 'a>;

/// Times `f` encoding into `out` (cleared first), then checks the output.
fn timed<B: AsRef<[u8]>>(out: &mut B, clear: fn(&mut B), f: impl FnOnce(&mut B), expected: usize) -> f64 {
    clear(out);
    let start = Instant::now();
    f(out);
    let t = start.elapsed().as_secs_f64();
    assert_eq!(out.as_ref().len(), expected, "output length");
    assert_eq!(reference::count_events(out.as_ref()), N, "events in the output");
    t
}

/// Best time of `rounds` runs of each encoder, interleaved.
fn best_of(rounds: usize, runs: &mut [EncodeRun<'_>]) -> Vec<f64> {
    let mut best = vec![f64::MAX; runs.len()];
    for _ in 0..rounds {
        for (k, run) in runs.iter_mut().enumerate() {
            best[k] = best[k].min(run());
        }
    }
    best
}

fn encode(rounds: usize) {
    println!("best of {rounds} interleaved rounds, million events/s (ratio to the direct write)");
    let data = encoders::payloads();
    let mut want = Vec::new();
    encoders::direct_small(&data, &mut want);
    let n = want.len();
    let (mut a, mut b, mut c, mut d, mut e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), BytesMut::new());
    let mut russe = russe::Encoder::default();
    let data = &data;
    let mut runs: Vec<EncodeRun<'_>> = vec![
        Box::new(|| timed(&mut a, Vec::clear, |o| encoders::direct_small(data, o), n)),
        Box::new(|| timed(&mut b, Vec::clear, |o| encoders::sse_proto_small(data, o), n)),
        Box::new(|| timed(&mut c, Vec::clear, |o| encoders::sse_stream_small(data, o), n)),
        Box::new(|| timed(&mut d, Vec::clear, |o| encoders::axum_small(data, o), n)),
        Box::new(|| timed(&mut e, BytesMut::clear, |o| encoders::russe_small(data, &mut russe, o), n)),
    ];
    let times = best_of(rounds, &mut runs);
    report("small", &["direct-write", "sse-proto", "sse-stream", "axum", "russe"], &times);

    let values = encoders::readings();
    let mut want = Vec::new();
    encoders::direct_json(&values, &mut want);
    let n = want.len();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let values = &values;
    let mut runs: Vec<EncodeRun<'_>> = vec![
        Box::new(|| timed(&mut a, Vec::clear, |o| encoders::direct_json(values, o), n)),
        Box::new(|| timed(&mut b, Vec::clear, |o| encoders::sse_proto_json(values, o), n)),
    ];
    let times = best_of(rounds, &mut runs);
    report("json", &["serde_json+direct-write", "sse-proto/encode_json"], &times);
}

fn report(group: &str, names: &[&str], times: &[f64]) {
    let mut line = format!("{group:>7}");
    for (name, t) in names.iter().zip(times) {
        line.push_str(&format!("  {name}: {:.1} ({:.2}x)", N as f64 / t / 1e6, times[0] / t));
    }
    println!("{line}");
}

/// Decoding: every corpus (or file) at 16 KiB and 1 KiB chunks, and a
/// prefix of it (`LEN / 8`, at most 256 KiB) one byte per chunk, or at the
/// sizes of `SSE_BENCH_CHUNKS`. Each decoder's output is first checked event
/// by event against the naive reference decoder (a decoder that disagrees is
/// reported and not timed: "—"); every timed run then checks its event count
/// and data bytes.
/// Prints one Markdown row per input: the medians of the interleaved rounds
/// in GB/s, and the ratios of sse-proto's owned events (`feed_bytes`, then
/// `poll_event` until `None`) to the fastest peer and to the memchr line
/// splitter. "Chunks only" times taking and dropping the chunks, which every
/// decoder's loop pays for before it decodes anything (at 1-byte chunks, most
/// of its time); the last column compares the time beyond that.
fn decode(rounds: usize) {
    let mib: usize = std::env::args().nth(3).and_then(|m| m.parse().ok()).unwrap_or(2);
    let filter = std::env::args().nth(4).unwrap_or_default();
    let mut len = mib << 20;
    let corpora = match std::env::var("SSE_BENCH_FILES") {
        Ok(files) => {
            let corpora: Vec<Corpus> = files
                .split(',')
                .map(|f| Corpus::from_file(f.as_ref()).unwrap_or_else(|e| panic!("reading {f}: {e}")))
                .collect();
            len = corpora.iter().map(|c| c.bytes.len()).max().unwrap_or(0);
            println!("median of {rounds} interleaved rounds, streams from files, GB/s\n");
            corpora
        }
        Err(_) => {
            println!("median of {rounds} interleaved rounds, {mib} MiB corpora, GB/s\n");
            corpus::all(len)
        }
    };
    let sizes: Vec<usize> = match std::env::var("SSE_BENCH_CHUNKS") {
        Ok(sizes) => sizes
            .split(',')
            .map(|s| match s.trim() {
                // One chunk per block, as a server that flushes each event
                // delivers them to a reader that keeps up.
                "event" => 0,
                s => s.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| panic!("a chunk size: {s:?}")),
            })
            .collect(),
        Err(_) => vec![16 * 1024, 1024, 1],
    };
    let names: Vec<&str> = DecoderImpl::ALL.iter().map(|imp| imp.name()).collect();
    println!(
        "| input | {} | memchr-lines | chunks only | owned ÷ fastest peer | lent ÷ fastest peer | owned ÷ memchr-lines | owned ÷ fastest peer, beyond the chunks |",
        names.join(" | ")
    );
    println!("|---|{}---|---|---|---|---|---|", "---|".repeat(names.len()));
    for corpus in corpora {
        if !corpus.name.contains(filter.as_str()) {
            continue;
        }
        let prefix = corpus.prefix((len / 8).min(256 * 1024));
        for &size in &sizes {
            let (label, input) = match size {
                0 => ("event".to_owned(), &corpus),
                1 => ("1B".to_owned(), &prefix),
                n if n % 1024 == 0 => (format!("{}KiB", n / 1024), &corpus),
                n => (format!("{n}B"), &corpus),
            };
            let parts = if size == 0 { input.block_chunks() } else { chunks(&input.bytes, size) };
            let want = reference::events(&input.bytes);
            assert_eq!(want.len(), input.expected.events, "the reference on {}", corpus.name);
            let agrees: Vec<bool> = DecoderImpl::ALL
                .iter()
                .map(|imp| match imp.check(&parts, &want) {
                    Ok(()) => true,
                    Err(why) => {
                        eprintln!(
                            "NOTICE: {} on {}/{label} disagrees with the reference: {why}",
                            imp.name(),
                            corpus.name
                        );
                        false
                    }
                })
                .collect();
            // The decoders, then the memchr splitter, then the chunks only.
            let mut times = vec![Vec::with_capacity(rounds); DecoderImpl::ALL.len() + 2];
            let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15 ^ size as u64);
            let mut order: Vec<usize> = (0..DecoderImpl::ALL.len()).collect();
            for _ in 0..rounds {
                // Each round runs the decoders in a new order. A decoder run
                // right after one that allocates heavily (eventsource-stream,
                // sseer) measured 1.2-1.6x slower, whoever it was: in a fixed
                // order (or a rotated one) the same decoder would pay that
                // every round.
                for i in (1..order.len()).rev() {
                    order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
                }
                for &k in &order {
                    let imp = &DecoderImpl::ALL[k];
                    if !agrees[k] {
                        // It may fail outright (an error, not wrong events):
                        // its time would mean nothing.
                        times[k].push(f64::NAN);
                        continue;
                    }
                    let owned = parts.clone();
                    let start = Instant::now();
                    let tally = imp.decode_owned(owned).expect("decodes");
                    times[k].push(start.elapsed().as_secs_f64());
                    assert_eq!(tally, input.expected, "{} on {}/{label}", imp.name(), corpus.name);
                }
                let start = Instant::now();
                assert_eq!(reference::count_events(&input.bytes), input.expected.events);
                times[DecoderImpl::ALL.len()].push(start.elapsed().as_secs_f64());
                // What every decoder's loop costs before it decodes anything:
                // taking each chunk and dropping it (a reference count on
                // the shared input, the same for every decoder).
                let owned = parts.clone();
                let start = Instant::now();
                let fed: usize = owned.into_iter().map(|c| std::hint::black_box(c).len()).sum();
                times[DecoderImpl::ALL.len() + 1].push(start.elapsed().as_secs_f64());
                assert_eq!(fed, input.bytes.len());
            }
            let secs: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
            let gbs: Vec<f64> = secs.iter().map(|t| input.bytes.len() as f64 / t / 1e9).collect();
            let (peer, peer_gbs) = DecoderImpl::ALL
                .iter()
                .zip(&gbs)
                .zip(&agrees)
                .filter(|((imp, _), ok)| !imp.name().starts_with("sse-proto") && **ok)
                .map(|((imp, g), _)| (imp.name(), *g))
                .fold(("none", 0.0), |best, x| if x.1 > best.1 { x } else { best });
            let owned = gbs[0];
            let lent = gbs[2];
            let memchr = gbs[DecoderImpl::ALL.len()];
            // The time each spends beyond taking and dropping the chunks.
            let floor = secs[DecoderImpl::ALL.len() + 1];
            let bytes = input.bytes.len() as f64 / 1e9;
            let beyond = (bytes / peer_gbs - floor) / (secs[0] - floor);
            let cells: Vec<String> =
                gbs.iter().map(|g| if g.is_nan() { "—".to_owned() } else { format!("{g:.3}") }).collect();
            println!(
                "| {}/{label} | {} | {:.2}× {peer} | {:.2}× | {:.2} | {beyond:.2}× |",
                corpus.name,
                cells.join(" | "),
                owned / peer_gbs,
                lent / peer_gbs,
                owned / memchr
            );
        }
    }
}

/// The median of `times` (sorted in place).
fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2.0 }
}
