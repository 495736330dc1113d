//! Sans-IO Server-Sent Events.
//!
//! `sse-proto` is the protocol core of the SSE toolkit: it turns bytes into
//! events and events into bytes exactly as the WHATWG HTML standard
//! ("Server-sent events", §9.2) and browsers do, and does nothing else. It
//! performs no I/O, reads no clock and spawns nothing, so the same code runs
//! inside any server, client, runtime, test or fuzzer. It is `no_std` with
//! `alloc` (turn off the default `std` feature).
//!
//! # Decoding
//!
//! A [`Decoder`] takes bytes as they arrive, in pieces of any size, and yields
//! [`MessageEvent`]s. Feeding only buffers; [`Decoder::poll_event`] parses.
//! The rule for every caller: after each feed, poll until `Ok(None)`.
//!
//! ```
//! use sse_proto::Decoder;
//!
//! // Stand-in for a socket: the stream arrives in arbitrary pieces.
//! let pieces: [&[u8]; 4] = [b"retry: 2000\nevent: up", b"date\ndata: {\"n\":1}\nid: 4", b"2\n\r\n", b"data: par"];
//!
//! let mut decoder = Decoder::new();
//! let mut seen = Vec::new();
//! for piece in pieces {
//!     decoder.feed(piece);
//!     // Drain: every complete event, until the decoder needs more bytes.
//!     while let Some(event) = decoder.poll_event()? {
//!         seen.push((event.event_type().to_owned(), event.data().to_owned(), event.last_event_id().to_owned()));
//!     }
//! }
//! // End of stream: the unterminated "data: par" block is discarded.
//! decoder.finish();
//! assert!(decoder.poll_event()?.is_none());
//!
//! assert_eq!(seen, [("update".to_owned(), "{\"n\":1}".to_owned(), "42".to_owned())]);
//! assert_eq!(decoder.last_event_id(), "42");
//! assert_eq!(decoder.reconnection_time(), Some(std::time::Duration::from_millis(2000)));
//! # Ok::<(), sse_proto::DecodeError>(())
//! ```
//!
//! Given [`bytes::Bytes`] (as most HTTP clients hand out),
//! [`Decoder::feed_bytes`] parses them in place and single-line `data` comes
//! back as a slice of them, without a copy.
//!
//! The decoder's memory is bounded by [`DecoderConfig`]; a peer that sends an
//! endless line gets a [`DecodeError`], not your memory.
//!
//! # Encoding
//!
//! An [`Event`] is validated (no line break can sneak into a field and forge
//! another) and appended to your buffer as one contiguous frame:
//!
//! ```
//! use sse_proto::{encode_comment, Event};
//!
//! let mut out = Vec::new();
//! Event::new("hello").event("greeting").id("1").encode(&mut out)?;
//! encode_comment("keep-alive", &mut out);
//! assert_eq!(out, b"event: greeting\nid: 1\ndata: hello\n\n: keep-alive\n");
//! # Ok::<(), sse_proto::EncodeError>(())
//! ```
//!
//! With the `json` feature, `Event::encode_json` serializes a `serde` value
//! straight into the frame.
//!
//! # Connection lifecycle (feature `std`)
//!
//! [`Client`] is the EventSource processing model: connecting, status and
//! MIME checks, redirects, body framing, reconnection after the `retry`
//! time (with optional backoff and seeded jitter), `Last-Event-ID`, a read
//! timeout. [`ServerSession`] answers a [`Request`] with an event stream:
//! headers, chunked framing, keep-alive comments only when idle, a clean
//! end. [`ReplayLog`] keeps recent frames so a resuming client gets exactly
//! what it missed, or learns of a gap.
//!
//! They do no I/O and read no clock: time enters as `now`, bytes enter
//! through `handle_*`, and what must happen leaves through `poll_*`. The one
//! rule for every caller: **after any `handle_*` call, drain every `poll_*`
//! method until it returns `None`, then sleep until `poll_timeout()`.** A
//! complete driver loop, here against an in-memory server:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sse_proto::{Client, ClientConfig, ClientEvent, Command};
//!
//! /// Stand-in for a socket: what the server sends for each connection.
//! struct FakeNet { responses: Vec<&'static [u8]> }
//!
//! let mut net = FakeNet { responses: vec![
//!     b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 10\nid: 1\ndata: a\n\n",
//!     b"HTTP/1.1 204 No Content\r\n\r\n",
//! ] };
//! let mut now = Instant::now();
//! let mut client = Client::new(ClientConfig::new("http://127.0.0.1:8080/events")?, now)?;
//! let mut connection: Option<&[u8]> = None;
//! let mut seen = Vec::new();
//! loop {
//!     // 1. Drain commands: open and close connections.
//!     while let Some(command) = client.poll_command() {
//!         match command {
//!             Command::Connect(request) => {
//!                 // Real code: connect to request.url(), write request.bytes().
//!                 assert!(request.bytes().starts_with(b"GET /events"));
//!                 connection = Some(net.responses.remove(0));
//!             }
//!             Command::Disconnect => connection = None,
//!         }
//!     }
//!     // 2. Drain events.
//!     while let Some(event) = client.poll_event() {
//!         seen.push(event);
//!     }
//!     if client.ready_state().is_closed() {
//!         break;
//!     }
//!     // 3. Wait for input or the next deadline, then hand it over.
//!     if let Some(bytes) = connection.take() {
//!         client.handle_input(bytes, now);
//!         client.handle_eof(now); // the server closed after sending
//!     } else if let Some(deadline) = client.poll_timeout() {
//!         now = deadline; // real code: sleep until the deadline
//!         client.handle_timeout(now);
//!     }
//! }
//! assert!(matches!(&seen[1], ClientEvent::Message(m) if m.data() == "a"));
//! assert!(matches!(seen.last(), Some(ClientEvent::Error { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # HTTP/1.1
//!
//! Both sides of HTTP/1.1, sans-IO and strict (RFC 9112): [`Request::parse`]
//! reads and validates a request head, refusing ambiguous framing (the
//! stuff of request smuggling) with a [`RequestError`] that knows its
//! status and response; [`BodyReader`] reads a request body under a limit;
//! [`write_response_head`] and [`error_response`] write responses. On the
//! client side, [`ResponseHead`] and [`BodyDecoder`] read them. None of it
//! needs `std`.
//!
//! # Features
//!
//! - `std` (default): runtime CPU detection for the SIMD search, and the
//!   connection lifecycle (client, server session, replay log), which need
//!   `std::time::Instant`. The environment variable `SSE_PROTO_SIMD`
//!   (`portable`, `avx2`, `avx512` or `avx512vbmi`), read once, caps the
//!   SIMD code chosen, to test or measure on this machine what another CPU
//!   runs; it never enables what the CPU lacks.
//! - `json`: JSON event data through `serde_json`.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod client;
mod decoder;
mod encoder;
mod event;
mod http;
#[cfg(feature = "std")]
mod replay;
mod scan;
#[cfg(feature = "std")]
mod server;
mod str;
mod url;

#[cfg(feature = "std")]
pub use client::{
    Backoff, Client, ClientConfig, ClientEvent, Command, ConfigError, ConnectError, ConnectRequest,
    ErrorCause, ReadyState,
};
pub use decoder::{DecodeError, Decoder, DecoderConfig, EventRef};
pub use encoder::{EncodeError, Event, FrameBuf, IntoEventId, encode_comment};
pub use event::MessageEvent;
pub use http::{
    BodyDecoder, BodyFraming, BodyReader, CONTINUE, ChunkedDecoder, HeaderError, HttpError, LAST_CHUNK,
    Request, RequestError, RequestFraming, ResponseHead, Version, encode_chunk, error_response, mime_essence,
    reason_phrase, validate_header, write_response_head,
};
#[cfg(feature = "std")]
pub use replay::{Replay, ReplayConfig, ReplayFrames, ReplayLog};
#[cfg(feature = "std")]
pub use server::{ServerConfig, ServerSession};
pub use str::Str;
pub use url::{Url, UrlError, percent_decode_path};

/// Re-export of the `bytes` crate, whose types appear in this API.
pub use bytes;
