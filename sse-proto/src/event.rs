//! `MessageEvent`: what the decoder dispatches.

use bytes::{Bytes, BytesMut};
use core::fmt;
use core::ops::Range;

use crate::str::{Str, validated};

/// A byte range inside a buffer: start in the low 32 bits, length in the
/// high 32. One `u64` rather than two `u32` fields, so it is always stored
/// and loaded whole (two half-width stores read back as one wide load stall
/// the CPU's store forwarding on the hot path). The decoder never builds a
/// buffer of 4 GiB: its limits are clamped far below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span(u64);

impl Span {
    /// A span; `start + len` must stay below 2^32 (the decoder's limits
    /// guarantee it).
    #[inline]
    pub(crate) fn new(start: usize, len: usize) -> Span {
        debug_assert!(start.checked_add(len).is_some_and(|e| e <= u32::MAX as usize));
        Span(start as u64 | (len as u64) << 32)
    }

    #[inline]
    pub(crate) fn start(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }

    #[inline]
    pub(crate) fn len(self) -> usize {
        (self.0 >> 32) as usize
    }

    #[inline]
    pub(crate) fn range(self) -> Range<usize> {
        self.start()..self.start() + self.len()
    }
}

/// An event the stream dispatched: what a browser's `EventSource` hands to
/// its listeners as a `MessageEvent`.
///
/// An event is one reference-counted buffer and the positions of its fields
/// in it. When a block arrives whole in one fed chunk, that buffer *is* the
/// chunk: the event costs no copy and no allocation, and `data` is a slice
/// of the bytes that were fed in.
#[derive(Clone)]
pub struct MessageEvent {
    buf: Bytes,
    data: Span,
    /// Empty means the default type, `message`.
    event_type: Span,
    id: Span,
    /// The last event ID when it was set by an earlier block (then `id` is
    /// unused).
    id_shared: Option<Bytes>,
}

impl MessageEvent {
    /// Builds an event, as a decoder would dispatch it. An empty `event_type`
    /// means `message`.
    pub fn new(event_type: &str, data: &str, last_event_id: &str) -> Self {
        let event_type = if event_type == "message" { "" } else { event_type };
        let mut buf = BytesMut::with_capacity(data.len() + event_type.len() + last_event_id.len());
        buf.extend_from_slice(data.as_bytes());
        buf.extend_from_slice(event_type.as_bytes());
        buf.extend_from_slice(last_event_id.as_bytes());
        MessageEvent {
            buf: buf.freeze(),
            data: Span::new(0, data.len()),
            event_type: Span::new(data.len(), event_type.len()),
            id: Span::new(data.len() + event_type.len(), last_event_id.len()),
            id_shared: None,
        }
    }

    /// Assembles an event from validated parts (the decoder's constructor).
    #[inline]
    pub(crate) fn from_parts(
        buf: Bytes,
        data: Span,
        event_type: Span,
        id: Span,
        id_shared: Option<Bytes>,
    ) -> Self {
        MessageEvent { buf, data, event_type, id, id_shared }
    }

    /// The event type: the last `event` field of the block, or `message`.
    #[inline]
    pub fn event_type(&self) -> &str {
        if self.event_type.len() == 0 { "message" } else { validated(&self.buf[self.event_type.range()]) }
    }

    /// The data: every `data` field of the block joined with LF.
    #[inline]
    pub fn data(&self) -> &str {
        validated(&self.buf[self.data.range()])
    }

    /// The data as shared bytes, without copying: for a single-line `data`
    /// field fed in with `feed_bytes`, a slice of the fed chunk.
    pub fn data_bytes(&self) -> Bytes {
        self.buf.slice(self.data.range())
    }

    /// Takes the data out of the event without copying it.
    pub fn into_data(self) -> Str {
        Str::from_validated_bytes(self.buf.slice(self.data.range()))
    }

    /// The stream's last event ID when the event fired (`lastEventId`): the
    /// latest `id` field, which persists across events until changed.
    #[inline]
    pub fn last_event_id(&self) -> &str {
        match &self.id_shared {
            Some(id) => validated(id),
            None => validated(&self.buf[self.id.range()]),
        }
    }
}

impl PartialEq for MessageEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_type() == other.event_type()
            && self.data() == other.data()
            && self.last_event_id() == other.last_event_id()
    }
}

impl Eq for MessageEvent {}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event_type", &self.event_type())
            .field("data", &self.data())
            .field("last_event_id", &self.last_event_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_events_read_back() {
        let ev = MessageEvent::new("message", "a\nb", "7");
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("message", "a\nb", "7"));
        let ev = MessageEvent::new("tick", "", "");
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("tick", "", ""));
        assert_eq!(ev, ev.clone());
        assert_eq!(&*MessageEvent::new("", "xyz", "").into_data(), "xyz");
    }
}
