//! Decoding throughput: sse-proto against the other Rust SSE decoders and the
//! memchr line-splitter ceiling.
//!
//! One criterion group per corpus and chunking:
//! `decode/<corpus>/16KiB` and `decode/<corpus>/1KiB` run the whole ~2 MiB
//! corpus cut into pre-made `Bytes` chunks of that size;
//! `decode/<corpus>/1B-prefix64KiB` feeds the first 64 KiB (cut at a block
//! boundary) one byte per chunk. Throughput is in input bytes.
//!
//! Every timed iteration asserts that the decoder produced exactly the
//! expected number of events (and data bytes). Before timing, each decoder is
//! run once on each input and its events compared with the naive reference
//! decoder's; one that gets a wrong result, errors or panics is skipped for
//! that input with a notice on stderr, never silently.
//!
//! The `memchr-lines` baseline scans the input as one contiguous buffer
//! (chunking does not apply to it): it is the practical limit, not a decoder.
//!
//! Filter as usual: `cargo bench -p sse-benches --bench decode -- small/16KiB`.

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sse_benches::peers::DecoderImpl;
use sse_benches::{Corpus, chunks, corpus, reference};

/// Length of the prefix decoded one byte at a time.
const PREFIX_LEN: usize = 64 * 1024;

fn decode(c: &mut Criterion) {
    for corpus in corpus::all(corpus::DEFAULT_LEN) {
        let prefix = corpus.prefix(PREFIX_LEN);
        let inputs: [(&str, &Corpus, usize); 3] =
            [("16KiB", &corpus, 16 * 1024), ("1KiB", &corpus, 1024), ("1B-prefix64KiB", &prefix, 1)];
        for (label, input, chunk_size) in inputs {
            bench_input(c, &format!("decode/{}/{label}", corpus.name), input, chunk_size);
        }
    }
}

fn bench_input(c: &mut Criterion, group_name: &str, input: &Corpus, chunk_size: usize) {
    let parts = chunks(&input.bytes, chunk_size);
    let expected = input.expected;
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(input.bytes.len() as u64));
    // Some peers take tens of milliseconds per iteration: flat sampling keeps
    // their run time bounded.
    group.sampling_mode(SamplingMode::Flat);

    let want = reference::events(&input.bytes);
    for imp in DecoderImpl::ALL {
        // Correctness gate, once, outside the timed loop: every event
        // against the naive reference decoder, then the tally.
        let verdict =
            match catch_unwind(AssertUnwindSafe(|| imp.check(&parts, &want).and(imp.decode(&parts)))) {
                Ok(Ok(tally)) if tally == expected => None,
                Ok(Ok(tally)) => Some(format!(
                    "decoded {} events / {} data bytes, expected {} / {}",
                    tally.events, tally.data_bytes, expected.events, expected.data_bytes
                )),
                Ok(Err(err)) => Some(format!("decode error: {err}")),
                Err(_) => Some("panicked".to_owned()),
            };
        if let Some(why) = verdict {
            eprintln!("NOTICE: skipping {} on {group_name}: {why}", imp.name());
            continue;
        }
        group.bench_function(imp.name(), |b| {
            b.iter(|| {
                let tally = imp.decode(black_box(&parts)).expect("decoder error");
                assert_eq!(tally.events, expected.events);
                assert_eq!(tally.data_bytes, expected.data_bytes);
                tally
            });
        });
    }

    let bytes = &input.bytes;
    assert_eq!(reference::count_events(bytes), expected.events);
    group.bench_function("memchr-lines", |b| {
        b.iter(|| {
            let events = reference::count_events(black_box(bytes));
            assert_eq!(events, expected.events);
            events
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode
}
criterion_main!(benches);
