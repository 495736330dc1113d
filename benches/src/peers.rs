//! Every decoder under comparison, driven through its public API the way a
//! user would drive it.
//!
//! - sse-proto: sans-IO [`sse_proto::Decoder`], fed with `feed_bytes` (the
//!   zero-copy path) or `feed(&[u8])`, drained with `poll_event` (owned
//!   events) or `poll_event_ref` (events lent until the next call).
//! - sse-parse: sans-IO [`sse_parse::SseParser`] (`feed`, `next_event`,
//!   `finish`).
//! - sse-stream: [`sse_stream::SseByteStream`] over a `Stream` of `Bytes`. It
//!   yields raw blocks (metadata-only blocks too, ids not inherited), so the
//!   user counts blocks with `data` and carries the last event ID.
//! - sseer: [`sseer::EventStream`] over a `Stream` of `Bytes`.
//! - eventsource-stream: [`eventsource_stream::EventStream`] over a `Stream`
//!   of `Bytes`.
//!
//! The `Stream`-based peers are polled with [`Waker::noop`]: the input
//! streams are always ready, so no executor is involved.

use core::convert::Infallible;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::{Stream, stream};

use crate::Tally;

/// A decoder implementation under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderImpl {
    /// sse-proto, chunks handed over with `Decoder::feed_bytes` (zero-copy).
    SseProtoBytes,
    /// sse-proto, chunks copied in with `Decoder::feed(&[u8])`.
    SseProtoSlice,
    /// sse-proto, `feed_bytes`, events lent by `Decoder::poll_event_ref`.
    SseProtoRef,
    /// sse-parse 0.1, `SseParser`.
    SseParse,
    /// sse-stream 0.3, `SseByteStream`.
    SseStream,
    /// sseer 0.3, `EventStream`.
    Sseer,
    /// eventsource-stream 0.2, `EventStream`.
    EventsourceStream,
}

impl DecoderImpl {
    /// Every implementation, sse-proto first.
    pub const ALL: [DecoderImpl; 7] = [
        DecoderImpl::SseProtoBytes,
        DecoderImpl::SseProtoSlice,
        DecoderImpl::SseProtoRef,
        DecoderImpl::SseParse,
        DecoderImpl::SseStream,
        DecoderImpl::Sseer,
        DecoderImpl::EventsourceStream,
    ];

    /// Name used in benchmark ids and tables.
    pub fn name(self) -> &'static str {
        match self {
            DecoderImpl::SseProtoBytes => "sse-proto/feed_bytes",
            DecoderImpl::SseProtoSlice => "sse-proto/feed",
            DecoderImpl::SseProtoRef => "sse-proto/ref",
            DecoderImpl::SseParse => "sse-parse",
            DecoderImpl::SseStream => "sse-stream",
            DecoderImpl::Sseer => "sseer",
            DecoderImpl::EventsourceStream => "eventsource-stream",
        }
    }

    /// Decodes a whole stream, given as chunks, and tallies the events.
    ///
    /// # Errors
    ///
    /// The decoder's error, as text.
    pub fn decode(self, chunks: &[Bytes]) -> Result<Tally, String> {
        self.decode_owned(chunks.to_vec())
    }

    /// Decodes a whole stream, given as chunks each decoder takes over (as
    /// it would take them from a socket's read loop: a chunk it keeps costs
    /// no reference count, one it drops is freed by it), and tallies the
    /// events. Timed loops clone the chunks first, outside the timer.
    ///
    /// # Errors
    ///
    /// The decoder's error, as text.
    pub fn decode_owned(self, chunks: Vec<Bytes>) -> Result<Tally, String> {
        match self {
            DecoderImpl::SseProtoBytes => sse_proto_decode(chunks, true),
            DecoderImpl::SseProtoSlice => sse_proto_decode(chunks, false),
            DecoderImpl::SseProtoRef => sse_proto_decode_ref(chunks),
            DecoderImpl::SseParse => sse_parse_decode(chunks),
            DecoderImpl::SseStream => sse_stream_decode(chunks),
            DecoderImpl::Sseer => sseer_decode(chunks),
            DecoderImpl::EventsourceStream => eventsource_stream_decode(chunks),
        }
    }

    /// A fresh incremental decoder of this implementation.
    pub fn feeder(self) -> Box<dyn Feeder> {
        match self {
            DecoderImpl::SseProtoBytes => {
                Box::new(SseProtoFeeder { decoder: sse_proto::Decoder::new(), zero_copy: true, lend: false })
            }
            DecoderImpl::SseProtoSlice => {
                Box::new(SseProtoFeeder { decoder: sse_proto::Decoder::new(), zero_copy: false, lend: false })
            }
            DecoderImpl::SseProtoRef => {
                Box::new(SseProtoFeeder { decoder: sse_proto::Decoder::new(), zero_copy: true, lend: true })
            }
            DecoderImpl::SseParse => Box::new(SseParseFeeder(sse_parse::SseParser::new())),
            DecoderImpl::SseStream => stream_feeder(sse_stream::SseByteStream::new, |last_id, item| {
                let block = item.map_err(|e| e.to_string())?;
                if let Some(id) = block.id {
                    *last_id = id;
                }
                Ok(block.data.map(|data| Ev {
                    event_type: block.event.filter(|t| !t.is_empty()).unwrap_or_else(|| "message".to_owned()),
                    data,
                    last_event_id: last_id.clone(),
                }))
            }),
            DecoderImpl::Sseer => stream_feeder(sseer::EventStream::new, |_, item| {
                let ev = item.map_err(|e| e.to_string())?;
                Ok(Some(Ev {
                    event_type: ev.event.to_string(),
                    data: ev.data.to_string(),
                    last_event_id: ev.id.to_string(),
                }))
            }),
            DecoderImpl::EventsourceStream => {
                stream_feeder(eventsource_stream::EventStream::new, |_, item| {
                    let ev = item.map_err(|e| e.to_string())?;
                    Ok(Some(Ev { event_type: ev.event, data: ev.data, last_event_id: ev.id }))
                })
            }
        }
    }
}

/// An always-ready `Stream` over pre-made chunks, as a user would build with
/// `futures::stream::iter`.
fn ready_stream(chunks: Vec<Bytes>) -> impl Stream<Item = Result<Bytes, Infallible>> {
    stream::iter(chunks.into_iter().map(Ok))
}

/// Polls `stream` to its end with a no-op waker, handing every item to `f`.
fn drain<S: Stream>(stream: S, mut f: impl FnMut(S::Item) -> Result<(), String>) -> Result<(), String> {
    let mut stream = std::pin::pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => f(item)?,
            Poll::Ready(None) => return Ok(()),
            Poll::Pending => return Err("Pending on always-ready input".to_owned()),
        }
    }
}

fn sse_proto_decode(chunks: Vec<Bytes>, zero_copy: bool) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        if zero_copy {
            decoder.feed_bytes(chunk);
        } else {
            decoder.feed(&chunk);
        }
        while let Some(ev) = decoder.poll_event().map_err(|e| e.to_string())? {
            tally.add(ev.data().len());
        }
    }
    decoder.finish();
    while let Some(ev) = decoder.poll_event().map_err(|e| e.to_string())? {
        tally.add(ev.data().len());
    }
    Ok(tally)
}

fn sse_proto_decode_ref(chunks: Vec<Bytes>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        decoder.feed_bytes(chunk);
        while let Some(ev) = decoder.poll_event_ref().map_err(|e| e.to_string())? {
            tally.add(ev.data.len());
        }
    }
    decoder.finish();
    while let Some(ev) = decoder.poll_event_ref().map_err(|e| e.to_string())? {
        tally.add(ev.data.len());
    }
    Ok(tally)
}

fn sse_parse_decode(chunks: Vec<Bytes>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut parser = sse_parse::SseParser::new();
    for chunk in chunks {
        parser.feed(&chunk);
        while let Some(ev) = parser.next_event() {
            tally.add(ev.data.len());
        }
    }
    parser.finish();
    while let Some(ev) = parser.next_event() {
        tally.add(ev.data.len());
    }
    Ok(tally)
}

fn sse_stream_decode(chunks: Vec<Bytes>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    drain(sse_stream::SseByteStream::new(ready_stream(chunks)), |item| {
        let block = item.map_err(|e| e.to_string())?;
        // Raw blocks: only those with a `data` field are events.
        if let Some(data) = &block.data {
            tally.add(data.len());
        }
        Ok(())
    })?;
    Ok(tally)
}

fn sseer_decode(chunks: Vec<Bytes>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    drain(sseer::EventStream::new(ready_stream(chunks)), |item| {
        let ev = item.map_err(|e| e.to_string())?;
        tally.add(ev.data.len());
        Ok(())
    })?;
    Ok(tally)
}

fn eventsource_stream_decode(chunks: Vec<Bytes>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    drain(eventsource_stream::EventStream::new(ready_stream(chunks)), |item| {
        let ev = item.map_err(|e| e.to_string())?;
        tally.add(ev.data.len());
        Ok(())
    })?;
    Ok(tally)
}

impl DecoderImpl {
    /// Feeds `chunks` one at a time through [`feeder`](Self::feeder), as a
    /// client would, and checks every event against `want` (the reference
    /// decoder's events for the whole stream, see
    /// [`reference::events`](crate::reference::events)).
    ///
    /// # Errors
    ///
    /// The decoder's error, or where its output first differs.
    pub fn check(self, chunks: &[Bytes], want: &[Ev]) -> Result<(), String> {
        let mut feeder = self.feeder();
        let mut got = Vec::with_capacity(want.len());
        for chunk in chunks {
            feeder.push(chunk.clone(), &mut got)?;
        }
        feeder.end(&mut got)?;
        if let Some(k) = (0..got.len().min(want.len())).find(|&k| got[k] != want[k]) {
            return Err(format!("event {k} is {:?}, the reference has {:?}", got[k], want[k]));
        }
        if got.len() != want.len() {
            return Err(format!("{} events, the reference has {}", got.len(), want.len()));
        }
        Ok(())
    }
}

/// One dispatched event, as a browser's `EventSource` exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    /// `type` (`message` when the block set none).
    pub event_type: String,
    /// `data`.
    pub data: String,
    /// `lastEventId`.
    pub last_event_id: String,
}

/// An incremental decoder: chunks go in one at a time, events come out as
/// soon as the decoder has them.
pub trait Feeder {
    /// Feeds one chunk and appends the events it completed to `out`.
    ///
    /// # Errors
    ///
    /// The decoder's error, as text.
    fn push(&mut self, chunk: Bytes, out: &mut Vec<Ev>) -> Result<(), String>;

    /// Ends the stream and appends the remaining events to `out`.
    ///
    /// # Errors
    ///
    /// The decoder's error, as text.
    fn end(&mut self, out: &mut Vec<Ev>) -> Result<(), String>;
}

struct SseProtoFeeder {
    decoder: sse_proto::Decoder,
    zero_copy: bool,
    lend: bool,
}

impl SseProtoFeeder {
    fn drain(&mut self, out: &mut Vec<Ev>) -> Result<(), String> {
        if self.lend {
            while let Some(ev) = self.decoder.poll_event_ref().map_err(|e| e.to_string())? {
                out.push(Ev {
                    event_type: ev.event_type.to_owned(),
                    data: ev.data.to_owned(),
                    last_event_id: ev.last_event_id.to_owned(),
                });
            }
            return Ok(());
        }
        while let Some(ev) = self.decoder.poll_event().map_err(|e| e.to_string())? {
            out.push(Ev {
                event_type: ev.event_type().to_owned(),
                data: ev.data().to_owned(),
                last_event_id: ev.last_event_id().to_owned(),
            });
        }
        Ok(())
    }
}

impl Feeder for SseProtoFeeder {
    fn push(&mut self, chunk: Bytes, out: &mut Vec<Ev>) -> Result<(), String> {
        if self.zero_copy {
            self.decoder.feed_bytes(chunk);
        } else {
            self.decoder.feed(&chunk);
        }
        self.drain(out)
    }

    fn end(&mut self, out: &mut Vec<Ev>) -> Result<(), String> {
        self.decoder.finish();
        self.drain(out)
    }
}

struct SseParseFeeder(sse_parse::SseParser);

impl SseParseFeeder {
    fn drain(&mut self, out: &mut Vec<Ev>) {
        while let Some(ev) = self.0.next_event() {
            out.push(Ev { event_type: ev.event, data: ev.data, last_event_id: ev.id });
        }
    }
}

impl Feeder for SseParseFeeder {
    fn push(&mut self, chunk: Bytes, out: &mut Vec<Ev>) -> Result<(), String> {
        self.0.feed(&chunk);
        self.drain(out);
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Ev>) -> Result<(), String> {
        self.0.finish();
        self.drain(out);
        Ok(())
    }
}

/// Chunks waiting to be read by a [`GateStream`], and whether the body ended.
#[derive(Debug, Default)]
struct Gate {
    queue: VecDeque<Bytes>,
    closed: bool,
}

/// A body stream that is `Pending` until the caller pushes the next chunk:
/// lets the `Stream`-based peers be fed one chunk at a time.
#[derive(Debug)]
pub struct GateStream(Rc<RefCell<Gate>>);

impl Stream for GateStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut gate = self.0.borrow_mut();
        match gate.queue.pop_front() {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if gate.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

type Convert<T> = Box<dyn FnMut(&mut String, T) -> Result<Option<Ev>, String>>;

struct StreamFeeder<S: Stream> {
    gate: Rc<RefCell<Gate>>,
    stream: Pin<Box<S>>,
    convert: Convert<S::Item>,
    /// Last event ID kept by the user, for peers that do not carry it.
    last_id: String,
}

fn stream_feeder<S, F>(make: impl FnOnce(GateStream) -> S, convert: F) -> Box<dyn Feeder>
where
    S: Stream + 'static,
    F: FnMut(&mut String, S::Item) -> Result<Option<Ev>, String> + 'static,
{
    let gate = Rc::new(RefCell::new(Gate::default()));
    Box::new(StreamFeeder {
        stream: Box::pin(make(GateStream(Rc::clone(&gate)))),
        gate,
        convert: Box::new(convert),
        last_id: String::new(),
    })
}

impl<S: Stream> StreamFeeder<S> {
    fn pump(&mut self, out: &mut Vec<Ev>) -> Result<(), String> {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match self.stream.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(item)) => {
                    if let Some(ev) = (self.convert)(&mut self.last_id, item)? {
                        out.push(ev);
                    }
                }
                Poll::Ready(None) | Poll::Pending => return Ok(()),
            }
        }
    }
}

impl<S: Stream> Feeder for StreamFeeder<S> {
    fn push(&mut self, chunk: Bytes, out: &mut Vec<Ev>) -> Result<(), String> {
        self.gate.borrow_mut().queue.push_back(chunk);
        self.pump(out)
    }

    fn end(&mut self, out: &mut Vec<Ev>) -> Result<(), String> {
        self.gate.borrow_mut().closed = true;
        self.pump(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_decodes_a_simple_stream() {
        let input = Bytes::from_static(b"event: a\nid: 1\ndata: x\ndata: y\n\ndata: z\n\n");
        for imp in DecoderImpl::ALL {
            for size in [1, 3, input.len()] {
                let chunks = crate::chunks(&input, size);
                let tally = imp.decode(&chunks).unwrap();
                assert_eq!(tally, Tally { events: 2, data_bytes: 4 }, "{}", imp.name());

                let mut feeder = imp.feeder();
                let mut out = Vec::new();
                for chunk in chunks {
                    feeder.push(chunk, &mut out).unwrap();
                }
                feeder.end(&mut out).unwrap();
                let got: Vec<_> = out
                    .iter()
                    .map(|e| (e.event_type.as_str(), e.data.as_str(), e.last_event_id.as_str()))
                    .collect();
                assert_eq!(got, [("a", "x\ny", "1"), ("message", "z", "1")], "{}", imp.name());
            }
        }
    }
}
