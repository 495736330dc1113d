//! Encoding throughput: sse-proto's `Event` against russe, sse-stream, axum
//! and a direct `Vec` write.
//!
//! `encode/small`: 10 000 events, each `event: tick`, a numeric `id`
//! (formatted into a stack buffer with itoa) and a pre-serialized JSON data
//! string, appended to one reused buffer that is cleared every iteration.
//! Every iteration asserts the exact output length (computed once with the
//! direct write; field order differs between encoders, length does not).
//!
//! Each encoder takes the data the way its API does. sse-proto borrows it
//! (`Cow`). sse-stream's `Sse` and russe's `Message` own their fields, so
//! the data is copied in per event (what a server that keeps its payload,
//! for example to fan it out to several clients, pays). sse-stream returns a
//! fresh `Bytes` per event, which is appended to the `Vec`. russe is a
//! tokio-util codec and writes into a `BytesMut`. axum's `Event` has no
//! public way to get its bytes except through the `Sse` response body, so
//! all events go through one `Sse` response per iteration and its body's
//! data frames are appended to the `Vec`.
//!
//! `encode/json`: the same framing with the data serialized from a small
//! `#[derive(Serialize)]` struct: sse-proto's `encode_json` against
//! `serde_json::to_writer` into the `Vec` between a direct write of the
//! framing.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::response::IntoResponse;
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{Stream, stream};
use serde::Serialize;
use sse_benches::reference;
use tokio_util::codec::Encoder as _;

/// Events per iteration.
const N: usize = 10_000;

/// The pre-serialized data strings.
fn payloads() -> Arc<[String]> {
    (0..N).map(|i| format!(r#"{{"seq":{i},"ok":true,"sensor":"s-{}"}}"#, i % 97)).collect()
}

/// Polls an always-ready stream to its end with a no-op waker.
fn for_each_ready<S: Stream>(stream: S, mut f: impl FnMut(S::Item)) {
    let mut stream = std::pin::pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => f(item),
            Poll::Ready(None) => return,
            Poll::Pending => panic!("always-ready stream returned Pending"),
        }
    }
}

fn sse_proto_small(data: &[String], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        sse_proto::Event::new(d.as_str()).event("tick").id(id.format(i)).encode(out).expect("valid event");
    }
}

fn sse_stream_small(data: &[String], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        let frame = sse_stream::Sse::default()
            .event("tick")
            .id(id.format(i))
            .data(d.as_str())
            .encode()
            .expect("valid event");
        out.extend_from_slice(&frame);
    }
}

fn russe_small(data: &[String], encoder: &mut russe::Encoder, out: &mut BytesMut) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        let message = russe::Message {
            data: d.as_str().into(),
            event: Some("tick".into()),
            retry: None,
            id: Some(id.format(i).into()),
        };
        encoder.encode(russe::Event::Message(message), out).expect("valid event");
    }
}

fn axum_small(data: &Arc<[String]>, out: &mut Vec<u8>) {
    // `Sse::new` needs a `Send + 'static` stream: share the payloads.
    let data = Arc::clone(data);
    let events = stream::iter((0..data.len()).map(move |i| {
        let event = axum::response::sse::Event::default()
            .event("tick")
            .id(itoa::Buffer::new().format(i))
            .data(&data[i]);
        Ok::<_, Infallible>(event)
    }));
    let body = axum::response::sse::Sse::new(events).into_response().into_body();
    for_each_ready(body.into_data_stream(), |frame| {
        out.extend_from_slice(&frame.expect("infallible body"));
    });
}

fn direct_small(data: &[String], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        reference::write_event(out, "tick", id.format(i), d);
    }
}

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

/// A small JSON payload.
#[derive(Serialize)]
struct Reading {
    seq: u64,
    sensor: &'static str,
    ok: bool,
    values: [u32; 4],
}

fn readings() -> Vec<Reading> {
    const SENSORS: [&str; 4] = ["north", "south", "east", "west"];
    (0..N as u64)
        .map(|seq| Reading {
            seq,
            sensor: SENSORS[seq as usize % SENSORS.len()],
            ok: seq % 7 != 0,
            values: [seq as u32, (seq * 31) as u32, 1000 + (seq % 13) as u32, 42],
        })
        .collect()
}

/// The reference: framing written directly, data streamed by serde_json.
fn write_json_event(out: &mut Vec<u8>, id: &str, value: &Reading) {
    out.extend_from_slice(b"event: tick\nid: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, value).expect("serializable");
    out.extend_from_slice(b"\n\n");
}

fn sse_proto_json(values: &[Reading], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, v) in values.iter().enumerate() {
        sse_proto::Event::default().event("tick").id(id.format(i)).encode_json(v, out).expect("valid event");
    }
}

fn direct_json(values: &[Reading], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, v) in values.iter().enumerate() {
        write_json_event(out, id.format(i), v);
    }
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
