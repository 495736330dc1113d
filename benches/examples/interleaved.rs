//! Decoding throughput with the implementations interleaved: each round
//! runs every decoder once on the same input, in turn, and the best of the
//! rounds is kept. On a shared machine whose speed drifts, interleaving
//! exposes every implementation to the same phases, so the ratios are
//! steadier than those of sequential criterion groups.
//!
//! ```text
//! cargo run --release -p sse-benches --example interleaved [-- ROUNDS [decode|encode]]
//! ```
//!
//! Every decoding run checks the event count and data bytes; every encoding
//! run checks the output length and event count.

use std::time::Instant;

use bytes::BytesMut;
use sse_benches::encoders::{self, N};
use sse_benches::peers::DecoderImpl;
use sse_benches::{chunks, corpus, reference};

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

fn decode(rounds: usize) {
    println!("best of {rounds} interleaved rounds, GB/s (ratio to the fastest peer)");
    for corpus in corpus::all(corpus::DEFAULT_LEN) {
        let prefix = corpus.prefix(64 * 1024);
        for (label, input, size) in
            [("16KiB", &corpus, 16 * 1024), ("1KiB", &corpus, 1024), ("1B", &prefix, 1)]
        {
            let parts = chunks(&input.bytes, size);
            let mut best = vec![f64::MAX; DecoderImpl::ALL.len() + 1];
            for _ in 0..rounds {
                for (k, imp) in DecoderImpl::ALL.iter().enumerate() {
                    let start = Instant::now();
                    let tally = imp.decode(&parts).expect("decodes");
                    best[k] = best[k].min(start.elapsed().as_secs_f64());
                    assert_eq!(tally, input.expected, "{} on {}/{label}", imp.name(), corpus.name);
                }
                let start = Instant::now();
                assert_eq!(reference::count_events(&input.bytes), input.expected.events);
                let last = best.len() - 1;
                best[last] = best[last].min(start.elapsed().as_secs_f64());
            }
            let gbs: Vec<f64> = best.iter().map(|t| input.bytes.len() as f64 / t / 1e9).collect();
            let peer = DecoderImpl::ALL
                .iter()
                .zip(&gbs)
                .filter(|(imp, _)| !imp.name().starts_with("sse-proto"))
                .map(|(_, g)| *g)
                .fold(0.0, f64::max);
            let mut line = format!("{:>7}/{label:<5}", corpus.name);
            for (imp, g) in DecoderImpl::ALL.iter().zip(&gbs) {
                line.push_str(&format!("  {}: {g:.3} ({:.2}x)", imp.name(), g / peer));
            }
            line.push_str(&format!("  memchr-lines: {:.3}", gbs[gbs.len() - 1]));
            println!("{line}");
        }
    }
}
