//! Encoding throughput: sse-proto's `Event` against russe, sse-stream, axum
//! and a direct `Vec` write (the encoders and their inputs are in
//! `sse_benches::encoders`).
//!
//! `encode/small`: 10 000 events appended to one reused buffer that is
//! cleared every iteration. Every iteration asserts the exact output length
//! (computed once with the direct write; field order differs between
//! encoders, length does not).
//!
//! `encode/json`: the same framing with the data serialized by serde_json:
//! sse-proto's `encode_json` against serde_json plus a direct write.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sse_benches::encoders::{
    N, Reading, axum_small, direct_json, direct_small, payloads, readings, russe_small, sse_proto_json,
    sse_proto_small, sse_stream_small,
};
use sse_benches::reference;

/// Checks one encoder's output once, before timing: exact length and one
/// event per input. On a mismatch the encoder is skipped with a notice.
fn output_ok(group: &str, name: &str, out: &[u8], expected_len: usize) -> bool {
    let events = reference::count_events(out);
    if out.len() == expected_len && events == N {
        return true;
    }
    eprintln!(
        "NOTICE: skipping {name} in {group}: {} bytes / {events} events, expected {expected_len} / {N}",
        out.len()
    );
    false
}

/// An `encode/small` implementation writing into a `Vec`.
type SmallEncoder = fn(&Arc<[String]>, &mut Vec<u8>);

fn encode_small(c: &mut Criterion) {
    const GROUP: &str = "encode/small";
    let data = payloads();
    let mut out: Vec<u8> = Vec::new();
    direct_small(&data, &mut out);
    let expected = out.len();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(N as u64));

    let vec_encoders: [(&str, SmallEncoder); 4] = [
        ("sse-proto", |d, out| sse_proto_small(d, out)),
        ("sse-stream", |d, out| sse_stream_small(d, out)),
        ("axum", axum_small),
        ("direct-write", |d, out| direct_small(d, out)),
    ];
    for (name, encode) in vec_encoders {
        out.clear();
        encode(&data, &mut out);
        if !output_ok(GROUP, name, &out, expected) {
            continue;
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode(&data, &mut out);
                assert_eq!(out.len(), expected);
                black_box(&out);
            });
        });
    }

    // russe is a tokio-util codec: its sink is a `BytesMut`.
    let mut encoder = russe::Encoder::default();
    let mut russe_out = BytesMut::with_capacity(expected);
    russe_small(&data, &mut encoder, &mut russe_out);
    if output_ok(GROUP, "russe", &russe_out, expected) {
        group.bench_function("russe", |b| {
            b.iter(|| {
                russe_out.clear();
                russe_small(&data, &mut encoder, &mut russe_out);
                assert_eq!(russe_out.len(), expected);
                black_box(&russe_out);
            });
        });
    }
    group.finish();
}

/// An `encode/json` implementation.
type JsonEncoder = fn(&[Reading], &mut Vec<u8>);

fn encode_json(c: &mut Criterion) {
    const GROUP: &str = "encode/json";
    let values = readings();
    let mut out: Vec<u8> = Vec::new();
    direct_json(&values, &mut out);
    let expected = out.len();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(N as u64));

    let encoders: [(&str, JsonEncoder); 2] =
        [("sse-proto/encode_json", sse_proto_json), ("serde_json+direct-write", direct_json)];
    for (name, encode) in encoders {
        out.clear();
        encode(&values, &mut out);
        if !output_ok(GROUP, name, &out, expected) {
            continue;
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode(&values, &mut out);
                assert_eq!(out.len(), expected);
                black_box(&out);
            });
        });
    }
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
    targets = encode_small, encode_json
}
criterion_main!(benches);
