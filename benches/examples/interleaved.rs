//! Decoding throughput with the implementations interleaved: each round
//! runs every decoder once on the same input, in turn, and the best of the
//! rounds is kept. On a shared machine whose speed drifts, interleaving
//! exposes every implementation to the same phases, so the ratios are
//! steadier than those of sequential criterion groups.
//!
//! ```text
//! cargo run --release -p sse-benches --example interleaved [-- ROUNDS]
//! ```
//!
//! Every run checks the event count and data bytes.

use std::time::Instant;

use sse_benches::peers::DecoderImpl;
use sse_benches::{chunks, corpus, reference};

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(15);
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
