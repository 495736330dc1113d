//! The encoders compared in the encode benchmarks, each driven through its
//! public API, shared by the criterion bench and the interleaved example.
//!
//! `small`: [`N`] events, each `event: tick`, a numeric `id` (formatted into a
//! stack buffer with itoa) and a pre-serialized JSON data string ([`payloads`]).
//! Each encoder takes the data the way its API does. sse-proto borrows it
//! (`Cow`). sse-stream's `Sse` and russe's `Message` own their fields, so the
//! data is copied in per event (what a server that keeps its payload, for
//! example to fan it out to several clients, pays). sse-stream returns a fresh
//! `Bytes` per event, which is appended to the `Vec`. russe is a tokio-util
//! codec and writes into a `BytesMut`. axum's `Event` has no public way to get
//! its bytes except through the `Sse` response body, so all events go through
//! one `Sse` response per call and its body's data frames are appended.
//!
//! `json`: the same framing with the data serialized from a small
//! `#[derive(Serialize)]` struct ([`readings`]): sse-proto's `encode_json`
//! against `serde_json::to_writer` into the `Vec` between a direct write of
//! the framing.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::response::IntoResponse;
use bytes::BytesMut;
use futures_util::{Stream, stream};
use serde::Serialize;
use tokio_util::codec::Encoder as _;

use crate::reference;

/// Events per call.
pub const N: usize = 10_000;

/// The pre-serialized data strings.
pub fn payloads() -> Arc<[String]> {
    (0..N).map(|i| format!(r#"{{"seq":{i},"ok":true,"sensor":"s-{}"}}"#, i % 97)).collect()
}

/// Polls an always-ready stream to its end with a no-op waker.
pub fn for_each_ready<S: Stream>(stream: S, mut f: impl FnMut(S::Item)) {
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

/// sse-proto: `Event` borrowing type, id and data, `encode` into the `Vec`.
pub fn sse_proto_small(data: &[String], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        sse_proto::Event::new(d.as_str()).event("tick").id(id.format(i)).encode(out).expect("valid event");
    }
}

/// sse-stream 0.3: `Sse::encode` to a fresh `Bytes`, appended to the `Vec`.
pub fn sse_stream_small(data: &[String], out: &mut Vec<u8>) {
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

/// russe 0.3: a `Message` through its tokio-util `Encoder` into a `BytesMut`.
pub fn russe_small(data: &[String], encoder: &mut russe::Encoder, out: &mut BytesMut) {
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

/// axum 0.8: `Event`s through one `Sse` response body, its frames appended.
pub fn axum_small(data: &Arc<[String]>, out: &mut Vec<u8>) {
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

/// The limit: the frame bytes written with `extend_from_slice`, unchecked.
pub fn direct_small(data: &[String], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, d) in data.iter().enumerate() {
        reference::write_event(out, "tick", id.format(i), d);
    }
}

/// A small JSON payload.
#[derive(Serialize)]
pub struct Reading {
    seq: u64,
    sensor: &'static str,
    ok: bool,
    values: [u32; 4],
}

/// The values serialized by the `json` encoders.
pub fn readings() -> Vec<Reading> {
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
pub fn write_json_event(out: &mut Vec<u8>, id: &str, value: &Reading) {
    out.extend_from_slice(b"event: tick\nid: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, value).expect("serializable");
    out.extend_from_slice(b"\n\n");
}

/// sse-proto: `Event::encode_json`, serializing straight into the `Vec`.
pub fn sse_proto_json(values: &[Reading], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, v) in values.iter().enumerate() {
        sse_proto::Event::default().event("tick").id(id.format(i)).encode_json(v, out).expect("valid event");
    }
}

/// The limit: [`write_json_event`] for every value.
pub fn direct_json(values: &[Reading], out: &mut Vec<u8>) {
    let mut id = itoa::Buffer::new();
    for (i, v) in values.iter().enumerate() {
        write_json_event(out, id.format(i), v);
    }
}
