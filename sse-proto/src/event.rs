//! `MessageEvent`: what the decoder dispatches.

use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;
use core::ops::Range;

use crate::str::{Str, utf8_unchecked};

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

/// Events whose fields fit in this many bytes are stored inline. 64 holds
/// most ticks, tokens and notifications and keeps an event at 96 bytes (the
/// shared form is 64 too), cheap to move out of `poll_event`.
pub(crate) const INLINE_CAP: usize = 64;

/// An event the stream dispatched: what a browser's `EventSource` hands to
/// its listeners as a `MessageEvent`.
///
/// An event is one buffer and the positions of its fields in it:
///
/// - An event whose fields fit in 64 bytes (most ticks, tokens and
///   notifications) holds them inline: no allocation and no reference count
///   to touch when it is made, moved or dropped (copying 64 bytes costs less
///   than the two atomic updates of a shared count).
/// - A larger block that arrived whole in one chunk given to
///   [`Decoder::feed_bytes`](crate::Decoder::feed_bytes) keeps that chunk as
///   its buffer: no copy and no allocation, and `data` is a slice of the
///   bytes that were fed in.
/// - A larger event with one `data` line shares the part of the decoder's
///   input buffer it came from (no copy).
/// - Any other event (several `data` lines) is gathered by the decoder in a
///   buffer that up to 16 KiB events share, one after another: once they
///   are dropped the decoder writes over it again, allocating nothing. A
///   larger event has a buffer to itself.
///
/// An event that shares memory keeps it alive while it lives (the fed
/// chunk, a part of the decoder's buffer, or a buffer shared with a few
/// events next to it), and so do [`data_bytes`](Self::data_bytes) and
/// [`into_data`](Self::into_data), which slice it: keep a copy (for
/// example `String::from(event.data())`) when holding a few events of a
/// busy stream for long.
#[derive(Clone)]
pub struct MessageEvent {
    /// Invariant: the bytes the spans point at (and `id_shared`) are valid
    /// UTF-8. `new` starts from `str`s; the crate's other constructors are
    /// `unsafe` with that obligation.
    repr: Repr,
    data: Span,
    /// Empty means the default type, `message`.
    event_type: Span,
    id: Span,
}

#[derive(Clone)]
enum Repr {
    Inline(InlineBytes),
    Shared {
        buf: Bytes,
        /// The last event ID when it was set by an earlier block (then `id`
        /// is unused).
        id_shared: Option<Bytes>,
    },
    /// A shared buffer, and a short last event ID set by an earlier block,
    /// held here (`id` points into it): no second buffer to count
    /// references to.
    SharedOwnId {
        buf: Bytes,
        id: OwnId,
    },
}

/// The last event ID held by an event with a shared buffer, word-aligned:
/// as a plain byte array it would sit right after the enum's tag, and every
/// move of the event would copy it with unaligned stores that the loads
/// after them wait for.
#[derive(Clone, Copy)]
#[repr(align(8))]
struct OwnId([u8; OWN_ID_CAP]);

/// The longest inherited last event ID an event with a shared buffer holds
/// itself (the room the shared form leaves, so the event stays 96 bytes).
pub(crate) const OWN_ID_CAP: usize = 32;

impl MessageEvent {
    /// Builds an event, as a decoder would dispatch it. An empty `event_type`
    /// means `message`.
    pub fn new(event_type: &str, data: &str, last_event_id: &str) -> Self {
        let event_type = if event_type == "message" { "" } else { event_type };
        let mut parts = InlineBuilder::new();
        let fits = data.len() + event_type.len() + last_event_id.len() <= INLINE_CAP;
        if fits {
            let data = parts.push(data.as_bytes());
            let ty = parts.push(event_type.as_bytes());
            let id = parts.push(last_event_id.as_bytes());
            // SAFETY: the spans point at what was pushed: three `str`s.
            #[allow(unsafe_code)]
            return unsafe { parts.finish(data, ty, id) };
        }
        let mut buf = BytesMut::with_capacity(data.len() + event_type.len() + last_event_id.len());
        buf.extend_from_slice(data.as_bytes());
        buf.extend_from_slice(event_type.as_bytes());
        buf.extend_from_slice(last_event_id.as_bytes());
        // The buffer holds three `str`s, where the spans point.
        MessageEvent {
            repr: Repr::Shared { buf: buf.freeze(), id_shared: None },
            data: Span::new(0, data.len()),
            event_type: Span::new(data.len(), event_type.len()),
            id: Span::new(data.len() + event_type.len(), last_event_id.len()),
        }
    }

    /// Assembles an event from validated parts in a shared buffer (the
    /// decoder's constructor).
    ///
    /// # Safety
    ///
    /// The spans must lie in `buf` and point at valid UTF-8, and
    /// `id_shared` must be valid UTF-8: the accessors trust it.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn from_parts(
        buf: Bytes,
        data: Span,
        event_type: Span,
        id: Span,
        id_shared: Option<Bytes>,
    ) -> Self {
        MessageEvent { repr: Repr::Shared { buf, id_shared }, data, event_type, id }
    }

    /// Assembles an event from validated parts in a shared buffer and the
    /// last event ID set by an earlier block, which the event holds itself.
    ///
    /// # Safety
    ///
    /// The spans must lie in `buf` and point at valid UTF-8: the accessors
    /// trust it (the last event ID is valid UTF-8 by [`LastId`]'s
    /// invariant). The last event ID must be at most [`OWN_ID_CAP`] bytes
    /// long and its window up to date ([`LastId::ready`]).
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn from_parts_own_id(
        buf: Bytes,
        data: Span,
        event_type: Span,
        last_id: &LastId,
    ) -> Self {
        MessageEvent {
            repr: Repr::SharedOwnId { buf, id: OwnId(*last_id.head()) },
            data,
            event_type,
            id: Span::new(0, last_id.len()),
        }
    }

    /// The first [`INLINE_CAP`] bytes of a block (zero-padded if shorter),
    /// for [`Staged::block`].
    #[inline(always)]
    pub(crate) fn inline_head(block: &[u8]) -> [u8; INLINE_CAP] {
        match block.first_chunk::<INLINE_CAP>() {
            // A fixed-size copy: a few vector moves rather than a call.
            Some(head) => *head,
            None => short_head(block),
        }
    }

    /// The inline event `staged` holds.
    #[inline(always)]
    pub(crate) fn from_staged(staged: &Staged) -> Self {
        // `Staged`'s invariant is the one of `repr`.
        MessageEvent {
            repr: Repr::Inline(staged.bytes),
            data: staged.data,
            event_type: staged.event_type,
            id: staged.id,
        }
    }

    /// Whether the fields are held inline.
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.repr, Repr::Inline(_))
    }

    /// The buffer the spans point into.
    #[inline]
    fn buf(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline(bytes) => &bytes.0,
            Repr::Shared { buf, .. } | Repr::SharedOwnId { buf, .. } => buf,
        }
    }

    /// The event type: the last `event` field of the block, or `message`.
    #[inline]
    pub fn event_type(&self) -> &str {
        if self.event_type.len() == 0 {
            return "message";
        }
        // SAFETY: the spans point at valid UTF-8 (the invariant of `repr`).
        #[allow(unsafe_code)]
        unsafe {
            utf8_unchecked(&self.buf()[self.event_type.range()])
        }
    }

    /// The data: every `data` field of the block joined with LF.
    #[inline]
    pub fn data(&self) -> &str {
        // SAFETY: the spans point at valid UTF-8 (the invariant of `repr`).
        #[allow(unsafe_code)]
        unsafe {
            utf8_unchecked(&self.buf()[self.data.range()])
        }
    }

    /// The data as shared bytes: for a single-line `data` field fed in with
    /// `feed_bytes`, a slice of the fed chunk, without copying. Data held
    /// inline is copied.
    pub fn data_bytes(&self) -> Bytes {
        match &self.repr {
            Repr::Inline(bytes) => Bytes::copy_from_slice(&bytes.0[self.data.range()]),
            Repr::Shared { buf, .. } | Repr::SharedOwnId { buf, .. } => buf.slice(self.data.range()),
        }
    }

    /// Takes the data out of the event (without copying it unless it is
    /// held inline; short data then goes inline in the `Str` too).
    pub fn into_data(self) -> Str {
        // SAFETY: the spans point at valid UTF-8 (the invariant of `repr`).
        #[allow(unsafe_code)]
        unsafe {
            match &self.repr {
                Repr::Inline(bytes) => Str::from_validated_slice(&bytes.0[self.data.range()]),
                Repr::Shared { buf, .. } | Repr::SharedOwnId { buf, .. } => {
                    Str::from_validated_bytes(buf.slice(self.data.range()))
                }
            }
        }
    }

    /// The stream's last event ID when the event fired (`lastEventId`): the
    /// latest `id` field, which persists across events until changed.
    #[inline]
    pub fn last_event_id(&self) -> &str {
        match &self.repr {
            Repr::SharedOwnId { id, .. } => {
                // SAFETY: `id` holds a copy of the last event ID where the
                // span points (the invariant of `repr`).
                #[allow(unsafe_code)]
                unsafe {
                    utf8_unchecked(&id.0[self.id.range()])
                }
            }
            Repr::Shared { id_shared: Some(id), .. } => {
                // SAFETY: `id_shared` is valid UTF-8 (the invariant of `repr`).
                #[allow(unsafe_code)]
                unsafe {
                    utf8_unchecked(id)
                }
            }
            // SAFETY: the spans point at valid UTF-8 (the invariant of `repr`).
            #[allow(unsafe_code)]
            _ => unsafe { utf8_unchecked(&self.buf()[self.id.range()]) },
        }
    }
}

/// The last event ID, kept also in a zero-padded window from which an
/// inline event takes it at any offset with whole-vector operations.
///
/// Appending the id with a copy of its length would write the event with
/// stores narrower than the loads that move it out of `poll_event`, and
/// every such load would wait for the stores to retire (a failed store
/// forward): that cost as much as decoding the event.
#[derive(Clone)]
pub(crate) struct LastId {
    /// Invariant: valid UTF-8 (`set` takes a `str`).
    bytes: Vec<u8>,
    /// 64 zero bytes, the id if it is at most [`INLINE_CAP`] bytes long (the
    /// only ids copied inline), zeros after it.
    window: [u8; 2 * INLINE_CAP],
    /// The id changed since the window was written: it is rewritten on
    /// first use, so a stream whose every event sets its id pays nothing.
    stale: bool,
}

/// 64 zero bytes, then 64 bytes 0xFF: from offset `64 - at`, a mask of the
/// bytes at `at` and after.
const FROM_MASK: [u8; 2 * INLINE_CAP] = {
    let mut m = [0u8; 2 * INLINE_CAP];
    let mut i = INLINE_CAP;
    while i < 2 * INLINE_CAP {
        m[i] = 0xFF;
        i += 1;
    }
    m
};

impl LastId {
    pub(crate) const fn new() -> Self {
        LastId { bytes: Vec::new(), window: [0; 2 * INLINE_CAP], stale: false }
    }

    /// Replaces the id.
    #[inline]
    pub(crate) fn set(&mut self, id: &str) {
        self.bytes.clear();
        self.bytes.extend_from_slice(id.as_bytes());
        self.stale = true;
    }

    /// The id.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: `bytes` only ever holds a copy of the `str` given to `set`.
        #[allow(unsafe_code)]
        unsafe {
            utf8_unchecked(&self.bytes)
        }
    }

    /// The first [`OWN_ID_CAP`] bytes of the window: the id, zero-padded,
    /// when it is that short. The window must be up to date
    /// ([`ready`](Self::ready)).
    #[inline]
    pub(crate) fn head(&self) -> &[u8; OWN_ID_CAP] {
        debug_assert!(!self.stale && self.bytes.len() <= OWN_ID_CAP);
        self.window[INLINE_CAP..INLINE_CAP + OWN_ID_CAP].try_into().expect("32 bytes")
    }

    /// The id with its window written, for [`merge`](Self::merge).
    #[inline]
    pub(crate) fn ready(&mut self) -> &Self {
        if self.stale {
            self.stale = false;
            self.window[INLINE_CAP..].fill(0);
            if let Some(to) = self.window.get_mut(INLINE_CAP..INLINE_CAP + self.bytes.len()) {
                to.copy_from_slice(&self.bytes);
            }
        }
        self
    }

    /// `head` with the id written over it from `at` on (the bytes after the
    /// id are zero). The id must fit: `at + len <= 64`.
    #[inline(always)]
    fn merge(&self, head: &[u8; INLINE_CAP], at: usize) -> [u8; INLINE_CAP] {
        debug_assert!(at + self.bytes.len() <= INLINE_CAP && !self.stale);
        let from = INLINE_CAP - at;
        let id: &[u8; INLINE_CAP] = self.window[from..from + INLINE_CAP].try_into().expect("64 bytes");
        let mask: &[u8; INLINE_CAP] = FROM_MASK[from..from + INLINE_CAP].try_into().expect("64 bytes");
        // Byte-wise and branch-free: compiled to a few vector operations.
        let mut out = [0; INLINE_CAP];
        for (((o, &h), &i), &m) in out.iter_mut().zip(head).zip(id).zip(mask) {
            *o = (h & !m) | i;
        }
        out
    }
}

impl core::ops::Deref for LastId {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The inline bytes of a block shorter than [`INLINE_CAP`] (out of line, so
/// that the usual fixed-size copy stays free of a length check).
#[inline(never)]
fn short_head(block: &[u8]) -> [u8; INLINE_CAP] {
    // With AVX-512, one masked load: the copy of the exact length below
    // stores the bytes at other widths than they are then loaded, and
    // waits for those stores (a sixth of the decoder's time on token
    // events fed one a chunk).
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx512) = crate::scan::Avx512::detect() {
        return avx512.head(block);
    }
    let mut bytes = [0; INLINE_CAP];
    let n = block.len().min(INLINE_CAP);
    bytes[..n].copy_from_slice(&block[..n]);
    bytes
}

/// Inline storage, word-aligned so that moving an event moves whole words.
#[derive(Clone, Copy)]
#[repr(align(8))]
struct InlineBytes([u8; INLINE_CAP]);

/// Fills an inline event. The caller checks that the parts fit in
/// [`INLINE_CAP`] bytes.
pub(crate) struct InlineBuilder {
    bytes: [u8; INLINE_CAP],
    len: usize,
}

impl InlineBuilder {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        InlineBuilder { bytes: [0; INLINE_CAP], len: 0 }
    }

    /// Appends `part` and returns where it is.
    #[inline(always)]
    pub(crate) fn push(&mut self, part: &[u8]) -> Span {
        let start = self.len;
        self.bytes[start..start + part.len()].copy_from_slice(part);
        self.len += part.len();
        Span::new(start, part.len())
    }

    /// The event.
    ///
    /// # Safety
    ///
    /// The spans must point at what was pushed (valid UTF-8 only): the
    /// accessors trust it.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn finish(self, data: Span, event_type: Span, id: Span) -> MessageEvent {
        MessageEvent { repr: Repr::Inline(InlineBytes(self.bytes)), data, event_type, id }
    }

    /// The event, staged (see [`Staged`]).
    ///
    /// # Safety
    ///
    /// As for [`finish`](Self::finish).
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn stage(self, data: Span, event_type: Span, id: Span) -> Staged {
        Staged { bytes: InlineBytes(self.bytes), data, event_type, id }
    }
}

/// An inline event that the decoder's out-of-line poll leaves for the
/// inlined [`Decoder::poll_event`](crate::Decoder::poll_event) to turn into
/// a [`MessageEvent`] in its caller.
///
/// An event returned from a function that is not inlined is written to the
/// caller's memory by the callee and read back by the caller, each at the
/// widths its own code chose: a read that spans two writes waits for both
/// to reach the cache (a failed store forwarding, some 15 cycles each). The
/// caller's moves of a returned event read it in other pieces than the
/// decoder wrote it, several stalls per event: about a tenth of the decoding
/// time of small events. Staged in the decoder, the event is written and
/// read field by field, and built in the caller's own code.
///
/// Invariant: the spans point at valid UTF-8 in `bytes`.
#[derive(Clone, Copy)]
pub(crate) struct Staged {
    bytes: InlineBytes,
    data: Span,
    event_type: Span,
    id: Span,
}

impl Default for Staged {
    /// Empty spans: valid UTF-8 wherever they point.
    fn default() -> Self {
        Staged {
            bytes: InlineBytes([0; INLINE_CAP]),
            data: Span::default(),
            event_type: Span::default(),
            id: Span::default(),
        }
    }
}

impl Staged {
    /// An inline event made of the head of a block
    /// ([`MessageEvent::inline_head`]), where the spans point; `last_id`, if
    /// given, goes after the first `used` bytes and becomes the id. The
    /// caller checks that it fits.
    ///
    /// # Safety
    ///
    /// The spans must point at valid UTF-8 in `head` (the last event ID is
    /// valid UTF-8 by [`LastId`]'s invariant): the accessors trust it.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn block(
        head: [u8; INLINE_CAP],
        data: Span,
        event_type: Span,
        id: Span,
        last_id: Option<(usize, &LastId)>,
    ) -> Self {
        let (bytes, id) = match last_id {
            Some((used, last_id)) => (last_id.merge(&head, used), Span::new(used, last_id.len())),
            None => (head, id),
        };
        Staged { bytes: InlineBytes(bytes), data, event_type, id }
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
    fn a_short_head_is_the_block_zero_padded() {
        // Every length up to past the inline size, from every offset of a
        // buffer (the masked load must read nothing past the block).
        let source: alloc::vec::Vec<u8> = (1..=200u8).collect();
        for n in 0..=INLINE_CAP + 6 {
            for at in [0, 1, 7, 63, 200 - n] {
                let block = &source[at..at + n];
                let head = short_head(block);
                let k = n.min(INLINE_CAP);
                assert_eq!(&head[..k], &block[..k], "{n} bytes at {at}");
                assert!(head[k..].iter().all(|&b| b == 0), "{n} bytes at {at}: {head:?}");
            }
        }
    }

    #[test]
    fn the_last_id_lands_at_any_offset_over_the_head() {
        let head: [u8; INLINE_CAP] = core::array::from_fn(|i| b'a' + (i % 26) as u8);
        let mut last = LastId::new();
        for len in 0..=INLINE_CAP {
            let id: alloc::vec::Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
            // A longer id before must leave nothing behind.
            last.set(&"z".repeat(INLINE_CAP));
            last.ready();
            last.set(core::str::from_utf8(&id).expect("ASCII"));
            assert_eq!(&*last, &id[..]);
            for at in 0..=INLINE_CAP - len {
                let out = last.ready().merge(&head, at);
                assert_eq!(out[..at], head[..at], "len {len}, at {at}");
                assert_eq!(out[at..at + len], id[..], "len {len}, at {at}");
                assert!(out[at + len..].iter().all(|&b| b == 0), "len {len}, at {at}");
            }
        }
    }

    #[test]
    fn built_events_read_back() {
        let ev = MessageEvent::new("message", "a\nb", "7");
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("message", "a\nb", "7"));
        let ev = MessageEvent::new("tick", "", "");
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("tick", "", ""));
        assert_eq!(ev, ev.clone());
        // `poll_event`'s result is no larger than the event: `?` on it needs
        // no copy to another layout.
        assert_eq!(size_of::<Result<Option<MessageEvent>, crate::DecodeError>>(), size_of::<MessageEvent>());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<MessageEvent>(), 96, "an event is cheap to move");
        assert_eq!(&*MessageEvent::new("", "xyz", "").into_data(), "xyz");
        // Past the inline capacity, the same through a shared buffer.
        let long = "x".repeat(INLINE_CAP);
        let ev = MessageEvent::new("tick", &long, "9");
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("tick", &*long, "9"));
        assert_eq!(&*ev.clone().into_data(), long);
    }
}
