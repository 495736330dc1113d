//! One decoder on one corpus and chunk size, repeated: a target for
//! profilers (`perf record`, `valgrind --tool=callgrind`).
//!
//! ```text
//! cargo run --release -p sse-benches --example decode_one -- CORPUS CHUNK [REPEAT [IMPL [MIB]]]
//! ```
//!
//! `CORPUS` is a corpus name, or the path of a file holding a stream (then
//! decoded whole). `CHUNK` is a size in bytes, or `event` for one chunk per
//! block. `IMPL` is a decoder name as in the interleaved table
//! (default `sse-proto/feed_bytes`); `MIB` the corpus length (default 2, or
//! 256 KiB for 1-byte chunks).
//!
//! `SSE_BENCH_BEFORE=IMPL` runs that decoder, untimed, before each timed
//! run, as the interleaved benchmark's rounds do: the heap the timed run
//! starts from is then the one another decoder left.

use sse_benches::peers::DecoderImpl;
use sse_benches::{Corpus, chunks, corpus};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "cjk".to_owned());
    // `event`: one chunk per block (0 here).
    let size: usize =
        args.next().and_then(|s| if s == "event" { Some(0) } else { s.parse().ok() }).unwrap_or(16 * 1024);
    let repeat: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let which = args.next().unwrap_or_else(|| "sse-proto/feed_bytes".to_owned());
    let imp = *DecoderImpl::ALL.iter().find(|i| i.name() == which).expect("a decoder name");
    let mib: Option<usize> = args.next().and_then(|s| s.parse().ok());
    let len = match mib {
        Some(m) => m << 20,
        None if size == 1 => 256 * 1024,
        None => 2 << 20,
    };
    // A path names a file of recorded traffic, decoded whole.
    let c = match std::path::Path::new(&name) {
        path if path.is_file() => Corpus::from_file(path).expect("a readable file"),
        _ => corpus::named(&name, len).expect("a corpus name or a file"),
    };
    let parts = if size == 0 { c.block_chunks() } else { chunks(&c.bytes, size) };
    // Only the decoding is timed: the chunks are cloned for each run
    // before, as the interleaved benchmark does.
    let before = std::env::var("SSE_BENCH_BEFORE").ok().map(|b| {
        *DecoderImpl::ALL.iter().find(|i| i.name() == b).expect("a decoder name in SSE_BENCH_BEFORE")
    });
    let mut t = 0.0;
    for _ in 0..repeat {
        if let Some(b) = before {
            // Only its effect on the heap matters: a decoder that
            // disagrees with the reference (or fails) on this input is
            // still run.
            let _ = b.decode_owned(parts.clone());
        }
        let owned = parts.clone();
        let start = std::time::Instant::now();
        let tally = imp.decode_owned(owned).expect("decodes");
        t += start.elapsed().as_secs_f64();
        assert_eq!(tally, c.expected);
    }
    let (bytes, events) = ((c.bytes.len() * repeat) as f64, (c.expected.events * repeat) as f64);
    // GB/s stays the last figure but one: `ab.sh` reads it there.
    println!("{which} {name}/{size}: {:.2} M events/s, {:.4} GB/s", events / t / 1e6, bytes / t / 1e9);
}
