//! The event encoder: one validated, contiguous `text/event-stream` frame per
//! event, appended to a caller-owned buffer.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;
use core::time::Duration;

/// A buffer frames are appended to: `Vec<u8>` or [`BytesMut`].
///
/// Sealed: the encoder relies on `truncate` to leave the buffer as it was
/// when encoding fails half-way.
pub trait FrameBuf: sealed::Sealed {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Reserves room for `additional` more bytes.
    fn reserve_bytes(&mut self, additional: usize);
    /// The bytes written so far.
    fn written(&self) -> &[u8];
    /// Shortens the buffer to `len` bytes.
    fn truncate_to(&mut self, len: usize);
}

/// What the encoder needs of a buffer beyond [`FrameBuf`], out of users'
/// reach (the module is private: these can be neither named nor called).
mod sealed {
    use core::mem::MaybeUninit;

    pub trait Sealed {
        /// Appends what `fill` writes, at most `max` bytes, with one
        /// capacity check for all of it.
        fn write_frame(&mut self, max: usize, fill: impl FnOnce(&mut Frame<'_>))
        where
            Self: Sized;
    }

    /// Room reserved at the end of a [`FrameBuf`](super::FrameBuf), filled
    /// from the front.
    #[derive(Debug)]
    pub struct Frame<'a> {
        pub(super) room: &'a mut [MaybeUninit<u8>],
        pub(super) filled: usize,
    }

    impl Frame<'_> {
        /// Appends `bytes`. Panics past the room reserved (a wrong size
        /// computation, never undefined behaviour).
        #[inline(always)]
        pub fn put(&mut self, bytes: &[u8]) {
            let end = self.filled + bytes.len();
            let to = &mut self.room[self.filled..end];
            // SAFETY: `to` is exactly `bytes.len()` writable bytes (the slicing
            // above checked the bounds), and cannot overlap `bytes`: it is spare
            // capacity of a buffer borrowed mutably, `bytes` a shared borrow.
            // (A safe per-byte loop here is not turned into a `memcpy`.)
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), to.as_mut_ptr().cast::<u8>(), bytes.len());
            }
            self.filled = end;
        }
    }
}

/// `Vec<u8>` and `BytesMut` implement [`FrameBuf`] alike.
macro_rules! frame_buf {
    ($t:ty) => {
        impl FrameBuf for $t {
            #[inline]
            fn put(&mut self, bytes: &[u8]) {
                self.extend_from_slice(bytes)
            }
            #[inline]
            fn reserve_bytes(&mut self, additional: usize) {
                self.reserve(additional)
            }
            #[inline]
            fn written(&self) -> &[u8] {
                self
            }
            #[inline]
            fn truncate_to(&mut self, len: usize) {
                self.truncate(len)
            }
        }

        impl sealed::Sealed for $t {
            #[inline(always)]
            fn write_frame(&mut self, max: usize, fill: impl FnOnce(&mut sealed::Frame<'_>)) {
                self.reserve(max);
                let mut frame = sealed::Frame { room: &mut self.spare_capacity_mut()[..max], filled: 0 };
                fill(&mut frame);
                let filled = frame.filled;
                // SAFETY: `Frame::put` is the only way to write to the room,
                // and it fills it contiguously from the front, so the first
                // `filled` bytes past the length are initialized (and within
                // the capacity: the room is a slice of it).
                #[allow(unsafe_code)]
                unsafe {
                    self.set_len(self.len() + filled)
                }
            }
        }
    };
}

frame_buf!(Vec<u8>);
frame_buf!(BytesMut);

/// Why an event cannot be encoded. Each variant names the field and where the
/// offending character is, so the caller can find it; nothing is written.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The event type contains CR or LF, which would end the `event:` line
    /// early and let the rest be read as other fields (stream injection).
    LineBreakInEventType {
        /// Byte offset of the CR or LF.
        index: usize,
    },
    /// The id contains CR or LF (stream injection, as above).
    LineBreakInId {
        /// Byte offset of the CR or LF.
        index: usize,
    },
    /// The id contains U+0000 NULL: a browser would ignore the whole `id`
    /// field, silently keeping the previous last event ID.
    NulInId {
        /// Byte offset of the NUL.
        index: usize,
    },
    /// The value could not be serialized to JSON.
    #[cfg(feature = "json")]
    Json(serde_json::Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::LineBreakInEventType { index } => {
                write!(f, "event type contains a line break at byte {index}")
            }
            EncodeError::LineBreakInId { index } => {
                write!(f, "event id contains a line break at byte {index}")
            }
            EncodeError::NulInId { index } => write!(f, "event id contains NUL at byte {index}"),
            #[cfg(feature = "json")]
            EncodeError::Json(e) => write!(f, "event data could not be serialized to JSON: {e}"),
        }
    }
}

impl core::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            #[cfg(feature = "json")]
            EncodeError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// An event to send: the fields of one `text/event-stream` block.
///
/// Fields borrow or own their text (`&str` or `String`). Encoding validates
/// the event type and id, then appends one contiguous frame:
///
/// - `data` containing CR, LF or CRLF becomes one `data:` line per line, which
///   a decoder joins back with LF (so CR and CRLF come back as LF);
/// - empty `data` still writes `data:`, so the event dispatches; an event with
///   no data at all dispatches nothing but still sets `id` and `retry`;
/// - an empty id is written (`id:`): it resets the client's last event ID;
/// - CR or LF in the type or id, and NUL in the id, are errors, never an
///   injected field.
///
/// ```
/// use sse_proto::Event;
/// let mut out = Vec::new();
/// Event::new("line one\nline two").event("update").id("7").encode(&mut out)?;
/// assert_eq!(out, b"event: update\nid: 7\ndata: line one\ndata: line two\n\n");
/// # Ok::<(), sse_proto::EncodeError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Event<'a> {
    event_type: Option<Cow<'a, str>>,
    data: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    /// Whole milliseconds, or [`NO_RETRY`]. One plain word rather than an
    /// `Option<Duration>`, whose mixed-width halves slow down every move of
    /// the builder.
    retry_ms: u64,
}

/// `retry_ms` when no `retry` is set (a reconnection time of
/// `u64::MAX` milliseconds is written as `u64::MAX - 1`).
const NO_RETRY: u64 = u64::MAX;

/// What [`Event::id`] takes: text (`&str`, `String`, `Cow<str>`) or an
/// integer, written in decimal.
pub trait IntoEventId<'a> {
    /// The id as text.
    fn into_event_id(self) -> Cow<'a, str>;
}

impl<'a> IntoEventId<'a> for &'a str {
    #[inline(always)]
    fn into_event_id(self) -> Cow<'a, str> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoEventId<'a> for &'a alloc::string::String {
    #[inline(always)]
    fn into_event_id(self) -> Cow<'a, str> {
        Cow::Borrowed(self.as_str())
    }
}

impl<'a> IntoEventId<'a> for alloc::string::String {
    #[inline(always)]
    fn into_event_id(self) -> Cow<'a, str> {
        Cow::Owned(self)
    }
}

impl<'a> IntoEventId<'a> for Cow<'a, str> {
    #[inline(always)]
    fn into_event_id(self) -> Cow<'a, str> {
        self
    }
}

macro_rules! integer_ids {
    ($($t:ty),*) => {$(
        impl<'a> IntoEventId<'a> for $t {
            fn into_event_id(self) -> Cow<'a, str> {
                Cow::Owned(alloc::string::ToString::to_string(&self))
            }
        }
    )*};
}

integer_ids!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("event_type", &self.event_type)
            .field("data", &self.data)
            .field("id", &self.id)
            .field("retry", &self.retry_time())
            .finish()
    }
}

impl Default for Event<'_> {
    #[inline(always)]
    fn default() -> Self {
        Event { event_type: None, data: None, id: None, retry_ms: NO_RETRY }
    }
}

impl<'a> Event<'a> {
    /// An event of the default type (`message`) carrying `data`.
    #[inline(always)]
    pub fn new(data: impl Into<Cow<'a, str>>) -> Self {
        Event { event_type: None, data: Some(data.into()), id: None, retry_ms: NO_RETRY }
    }

    /// An event whose data is `value` serialized as JSON.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Json`] when serialization fails.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Event<'static>, EncodeError> {
        serde_json::to_string(value).map(Event::new).map_err(EncodeError::Json)
    }

    /// Sets the event type (`event:`). An empty type is not written.
    #[inline(always)]
    pub fn event(mut self, event_type: impl Into<Cow<'a, str>>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the data, replacing any set before.
    #[inline(always)]
    pub fn data(mut self, data: impl Into<Cow<'a, str>>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the id (`id:`): text or an integer. The client sends it back as
    /// `Last-Event-ID` when it reconnects. An empty id resets the client's
    /// last event ID.
    ///
    /// ```
    /// use sse_proto::Event;
    /// assert_eq!(Event::new("x").id(42u64).id_str(), Some("42"));
    /// assert_eq!(Event::new("x").id("a-1").id_str(), Some("a-1"));
    /// ```
    #[inline(always)]
    pub fn id(mut self, id: impl IntoEventId<'a>) -> Self {
        self.id = Some(id.into_event_id());
        self
    }

    /// Sets the client's reconnection time (`retry:`). The field carries
    /// whole milliseconds: a fraction of a millisecond is dropped, and a
    /// time beyond 2^64 - 2 ms (half a billion years) is written as that.
    #[inline(always)]
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX).min(NO_RETRY - 1);
        self
    }

    /// The event type, if set.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The data, if set.
    pub fn data_str(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The id, if set.
    pub fn id_str(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The reconnection time, if set.
    pub fn retry_time(&self) -> Option<Duration> {
        (self.retry_ms != NO_RETRY).then(|| Duration::from_millis(self.retry_ms))
    }

    /// Checks the event type and id without encoding.
    ///
    /// # Errors
    ///
    /// The same as [`encode`](Self::encode).
    #[inline]
    pub fn validate(&self) -> Result<(), EncodeError> {
        self.fields().validate()
    }

    /// The fields as plain borrowed text, for the encoding paths.
    ///
    /// The slow paths take this view by value instead of `&self`: were the
    /// builder's address taken, it would have to be kept in memory, and an
    /// event built around a call (`Event::new(d).id(itoa.format(i))`) is then
    /// copied as a whole after the call, with loads wider than the stores
    /// that wrote it, a store-forwarding stall that costs more than the
    /// encoding. As scalars, its fields stay in registers.
    #[inline(always)]
    fn fields(&self) -> Fields<'_> {
        Fields {
            event_type: self.event_type.as_deref(),
            id: self.id.as_deref(),
            data: self.data.as_deref(),
            retry_ms: self.retry_ms,
        }
    }

    /// Appends the event as one frame to `buf`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::LineBreakInEventType`], [`EncodeError::LineBreakInId`]
    /// or [`EncodeError::NulInId`]; `buf` is then left unchanged.
    #[inline]
    pub fn encode<B: FrameBuf>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let f = self.fields();
        let ty = f.event_type.unwrap_or("").as_bytes();
        let id = f.id.unwrap_or("").as_bytes();
        let data = f.data.unwrap_or("").as_bytes();
        if f.retry_ms != NO_RETRY || data.is_empty() || (f.id.is_some() && id.is_empty()) {
            return f.encode_general(buf);
        }
        // One pass over each field decides between the common case (nothing
        // to split, refuse or add) and the exact, slower general path.
        if has_special(ty, false) | has_special(id, true) | has_special(data, false) {
            return f.encode_general(buf);
        }
        // The frame is written in one go into reserved room: one capacity
        // check rather than one per piece. Each line's LF is written with the
        // next line's name.
        buf.write_frame(ty.len() + id.len() + data.len() + 24, |frame| {
            let mut sep = false;
            if !ty.is_empty() {
                frame.put(b"event: ");
                frame.put(ty);
                sep = true;
            }
            if !id.is_empty() {
                frame.put(if sep { b"\nid: " } else { b"id: " });
                frame.put(id);
                sep = true;
            }
            frame.put(if sep { b"\ndata: " } else { b"data: " });
            frame.put(data);
            frame.put(b"\n\n");
        });
        Ok(())
    }

    /// The frame as [`Bytes`].
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode).
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }

    /// Appends the event to `buf` with `value`, serialized as JSON straight
    /// into the buffer, as its data (any data set on the event is not used).
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode), plus [`EncodeError::Json`]; `buf` is then
    /// left unchanged.
    #[cfg(feature = "json")]
    #[inline(always)]
    pub fn encode_json<T: serde::Serialize + ?Sized, B: FrameBuf>(
        &self,
        value: &T,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        // The work is done on the fields, by value (see `fields`).
        self.fields().encode_json(value, buf)
    }
}

/// An event's fields as borrowed text: what the encoding paths work on
/// (see `Event::fields`).
#[derive(Clone, Copy)]
struct Fields<'e> {
    event_type: Option<&'e str>,
    id: Option<&'e str>,
    data: Option<&'e str>,
    retry_ms: u64,
}

impl Fields<'_> {
    /// See [`Event::validate`].
    #[inline]
    fn validate(&self) -> Result<(), EncodeError> {
        if let Some(t) = self.event_type
            && let Some(index) = find_line_break(t.as_bytes())
        {
            return Err(EncodeError::LineBreakInEventType { index });
        }
        if let Some(id) = self.id
            && let Some(index) = find_line_break_or_nul(id.as_bytes())
        {
            return Err(if id.as_bytes()[index] == 0 {
                EncodeError::NulInId { index }
            } else {
                EncodeError::LineBreakInId { index }
            });
        }
        Ok(())
    }

    /// See [`Event::encode_json`]. Inlined into the caller with the
    /// serializer: called out of line, the event stays borrowed across a call
    /// that may unwind, which keeps the builder in memory (see
    /// `Event::fields`). The rare rewrite of raw line breaks is out of line.
    #[cfg(feature = "json")]
    #[inline(always)]
    fn encode_json<T: serde::Serialize + ?Sized, B: FrameBuf>(
        self,
        value: &T,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let ty = self.event_type.unwrap_or("");
        if has_special(ty.as_bytes(), false) || self.id.is_some_and(|id| has_special(id.as_bytes(), true)) {
            return self.validate();
        }
        let start = buf.written().len();
        self.write_fields(buf, true);
        let json_start = buf.written().len();
        let mut raw_break = false;
        let mut serializer =
            serde_json::Serializer::with_formatter(JsonWriter(&mut *buf), RawBreaks(&mut raw_break));
        if let Err(e) = value.serialize(&mut serializer) {
            buf.truncate_to(start);
            return Err(EncodeError::Json(e));
        }
        // serde_json's compact output escapes CR and LF inside strings and
        // emits no whitespace; only a raw fragment (a `RawValue`) can carry
        // raw line breaks. Those must become separate `data:` lines or they
        // would end the field early.
        if !raw_break {
            buf.put(b"\n\n");
            return Ok(());
        }
        split_json_lines(buf, start, json_start)
    }

    /// [`Event::encode`] for every shape of event: line breaks in
    /// data, empty data or id, `retry`, and the errors.
    #[inline(never)]
    fn encode_general<B: FrameBuf>(self, buf: &mut B) -> Result<(), EncodeError> {
        self.validate()?;
        buf.reserve_bytes(self.size_hint());
        self.write_fields(buf, false);
        if let Some(data) = self.data {
            write_data(buf, data);
        }
        buf.put(b"\n");
        Ok(())
    }

    /// Upper bound of the frame length for reserving, ignoring line splits.
    #[inline]
    fn size_hint(&self) -> usize {
        let field = |f: Option<&str>| f.map_or(0, |s| s.len() + 8);
        field(self.event_type)
            + field(self.id)
            + field(self.data)
            + if self.retry_ms != NO_RETRY { 28 } else { 0 }
            + 1
    }

    /// Writes the `event`, `id` and `retry` lines (validated by the caller),
    /// and `data: ` after them when `data_prefix`, into room reserved once.
    #[inline(always)]
    fn write_fields<B: FrameBuf>(&self, buf: &mut B, data_prefix: bool) {
        let ty = self.event_type.unwrap_or("").as_bytes();
        let id = self.id.map(str::as_bytes);
        // "event: " + "\n", "id: " + "\n", "retry: " + 20 digits + "\n",
        // "data: ".
        let max = ty.len() + id.map_or(0, <[u8]>::len) + 8 + 5 + 28 + 6;
        buf.write_frame(max, |frame| {
            if !ty.is_empty() {
                frame.put(b"event: ");
                frame.put(ty);
                frame.put(b"\n");
            }
            match id {
                Some([]) => frame.put(b"id:\n"),
                Some(id) => {
                    frame.put(b"id: ");
                    frame.put(id);
                    frame.put(b"\n");
                }
                None => {}
            }
            if self.retry_ms != NO_RETRY {
                frame.put(b"retry: ");
                let mut digits = [0u8; 20];
                frame.put(format_u64(self.retry_ms, &mut digits));
                frame.put(b"\n");
            }
            if data_prefix {
                frame.put(b"data: ");
            }
        });
    }
}

/// The rare end of [`Event::encode_json`]: the JSON (from `json_start`)
/// holds raw line breaks, so it is rewritten as several `data:` lines. On
/// error the buffer is cut back to `start`.
#[cfg(feature = "json")]
#[cold]
#[inline(never)]
fn split_json_lines<B: FrameBuf>(buf: &mut B, start: usize, json_start: usize) -> Result<(), EncodeError> {
    let json = buf.written()[json_start..].to_vec();
    buf.truncate_to(json_start - b"data: ".len());
    // serde_json writes UTF-8 only.
    let Ok(text) = core::str::from_utf8(&json) else {
        buf.truncate_to(start);
        return Err(EncodeError::Json(serde::ser::Error::custom("serializer wrote invalid UTF-8")));
    };
    write_data(buf, text);
    buf.put(b"\n");
    Ok(())
}

/// Appends a comment: `: text`, one comment line per line of `text` (a line
/// break inside a comment must not end it and start a field). Clients ignore
/// comments; servers send them to keep idle connections open.
///
/// ```
/// let mut out = Vec::new();
/// sse_proto::encode_comment("keep-alive", &mut out);
/// assert_eq!(out, b": keep-alive\n");
/// ```
pub fn encode_comment<B: FrameBuf>(text: &str, buf: &mut B) {
    write_lines(buf, b":\n", b": ", text);
}

/// Writes `data` as `data:` lines, splitting at CRLF, CR and LF.
#[inline]
fn write_data<B: FrameBuf>(buf: &mut B, data: &str) {
    write_lines(buf, b"data:\n", b"data: ", data);
}

/// Writes one line per line of `text`: `empty` for an empty one, else
/// `prefix`, the line and LF.
#[inline]
fn write_lines<B: FrameBuf>(buf: &mut B, empty: &[u8], prefix: &[u8], text: &str) {
    for_each_line(text, |line| {
        if line.is_empty() {
            buf.put(empty);
        } else {
            buf.put(prefix);
            buf.put(line.as_bytes());
            buf.put(b"\n");
        }
    });
}

/// Calls `f` for each line of `text`, split at CRLF, CR and LF as the decoder
/// splits them. Always calls `f` at least once (an empty text is one empty
/// line).
#[inline]
fn for_each_line(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(off) = find_line_break(&bytes[start..]) {
        let end = start + off;
        f(&text[start..end]);
        start = end + 1;
        if bytes[end] == b'\r' && bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
    }
    f(&text[start..]);
}

/// Whether any of 16 bytes is CR or LF (or NUL when `nul`).
#[inline(always)]
fn block_hits(b: &[u8; 16], nul: bool) -> bool {
    crate::scan::block16_has_special(b, nul)
}

/// High bit set in each byte of `w` that may be CR or LF (or NUL when
/// `nul`); zero exactly when none is.
#[inline(always)]
fn word_hits(w: u64, nul: bool) -> u64 {
    let h = zero_bytes(w ^ (LO * u64::from(b'\n'))) | zero_bytes(w ^ (LO * u64::from(b'\r')));
    if nul { h | zero_bytes(w) } else { h }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is zero. The lowest set bit is
/// exact (bits above a zero byte may be false positives, from the borrow).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// Whether `bytes` holds CR or LF (or NUL when `nul`): the fast yes/no of
/// [`find_special`]. Short inputs are read as whole words (the last one
/// overlapping), with no per-byte loop and no early exit.
#[inline(always)]
fn has_special(bytes: &[u8], nul: bool) -> bool {
    let n = bytes.len();
    if n > 96 {
        return find_special(bytes, nul).is_some();
    }
    if n >= 16 {
        let mut acc = false;
        for block in bytes.chunks_exact(16) {
            acc |= block_hits(block.try_into().expect("16-byte chunks"), nul);
        }
        return acc | block_hits(bytes[n - 16..].try_into().expect("16 bytes"), nul);
    }
    if n >= 8 {
        let first = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(bytes[n - 8..].try_into().expect("8 bytes"));
        return (word_hits(first, nul) | word_hits(last, nul)) != 0;
    }
    if n >= 4 {
        // Two overlapping 4-byte reads, as one word with a harmless pad.
        let lo = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        let hi = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
        return word_hits(u64::from(lo) | u64::from(hi) << 32, nul) != 0;
    }
    bytes.iter().any(|&b| b == b'\n' || b == b'\r' || (nul && b == 0))
}

/// Position of the first CR or LF (and NUL when `nul`). Fields and typical
/// data are short, so eight bytes a step in a plain register beats a SIMD
/// search with its set-up cost; long data goes to memchr.
#[inline(always)]
fn find_special(bytes: &[u8], nul: bool) -> Option<usize> {
    if bytes.len() > 96 {
        return if nul {
            memchr::memchr3(b'\r', b'\n', 0, bytes)
        } else {
            memchr::memchr2(b'\r', b'\n', bytes)
        };
    }
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let w = u64::from_le_bytes(word.try_into().expect("8-byte chunks"));
        let mut hits = zero_bytes(w ^ (LO * u64::from(b'\n'))) | zero_bytes(w ^ (LO * u64::from(b'\r')));
        if nul {
            hits |= zero_bytes(w);
        }
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b == b'\n' || b == b'\r' || (nul && b == 0)).map(|p| at + p)
}

#[inline]
fn find_line_break(bytes: &[u8]) -> Option<usize> {
    find_special(bytes, false)
}

#[inline]
fn find_line_break_or_nul(bytes: &[u8]) -> Option<usize> {
    find_special(bytes, true)
}

/// Formats `n` in decimal into the end of `buf`.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `io::Write` over a [`FrameBuf`], for serde_json.
#[cfg(feature = "json")]
struct JsonWriter<'b, B>(&'b mut B);

/// serde_json's compact formatter, noting whether text it writes unescaped
/// (a raw fragment, or a number's text) held a line break. Everything else
/// it writes is escaped or made of digits and punctuation.
#[cfg(feature = "json")]
struct RawBreaks<'a>(&'a mut bool);

#[cfg(feature = "json")]
impl serde_json::ser::Formatter for RawBreaks<'_> {
    fn write_raw_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        *self.0 |= find_line_break(fragment.as_bytes()).is_some();
        writer.write_all(fragment.as_bytes())
    }

    /// The other output written as given: a number's text under serde_json's
    /// `arbitrary_precision` feature, which any crate in the build can turn on.
    fn write_number_str<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: &str,
    ) -> std::io::Result<()> {
        *self.0 |= find_line_break(value.as_bytes()).is_some();
        writer.write_all(value.as_bytes())
    }
}

#[cfg(feature = "json")]
impl<B: FrameBuf> std::io::Write for JsonWriter<'_, B> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.put(bytes);
        Ok(bytes.len())
    }
    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.put(bytes);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn enc(ev: &Event<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        ev.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn line_breaks_in_data_become_lines() {
        assert_eq!(enc(&Event::new("a\r\nb\rc\nd")), b"data: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(enc(&Event::new("a\n")), b"data: a\ndata:\n\n");
    }

    #[test]
    fn empty_data_and_empty_id_are_written() {
        assert_eq!(enc(&Event::new("").id("")), b"id:\ndata:\n\n");
        assert_eq!(enc(&Event::default().retry(Duration::from_millis(2500))), b"retry: 2500\n\n");
    }

    #[test]
    fn injection_is_refused_and_nothing_written() {
        let mut out = b"keep".to_vec();
        let err = Event::new("x").event("a\nid: 6").encode(&mut out).unwrap_err();
        assert!(matches!(err, EncodeError::LineBreakInEventType { index: 1 }));
        let err = Event::new("x").id("1\r").encode(&mut out).unwrap_err();
        assert!(matches!(err, EncodeError::LineBreakInId { index: 1 }));
        let err = Event::new("x").id("a\0b").encode(&mut out).unwrap_err();
        assert!(matches!(err, EncodeError::NulInId { index: 1 }));
        let long = "x".repeat(40) + "\n";
        let err = Event::new("x").id(long.as_str()).encode(&mut out).unwrap_err();
        assert!(matches!(err, EncodeError::LineBreakInId { index: 40 }));
        assert_eq!(out, b"keep");
    }

    #[test]
    fn comments_with_line_breaks_stay_comments() {
        let mut out = Vec::new();
        encode_comment("a\r\nb\n", &mut out);
        assert_eq!(out, b": a\n: b\n:\n");
    }

    #[test]
    fn special_byte_search_matches_a_plain_scan() {
        let alphabet = [b'a', b'\n', b'\r', 0, 0x80, 0xff, 0x0b, 0x0e, 0x01];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..200 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly plain bytes, so matches land anywhere.
                        if x.is_multiple_of(16) { alphabet[(x >> 8) as usize % alphabet.len()] } else { b'q' }
                    })
                    .collect();
                for nul in [false, true] {
                    let want = bytes.iter().position(|&b| b == b'\n' || b == b'\r' || (nul && b == 0));
                    assert_eq!(find_special(&bytes, nul), want, "{bytes:?} nul={nul}");
                    assert_eq!(has_special(&bytes, nul), want.is_some(), "{bytes:?} nul={nul}");
                }
            }
        }
    }

    #[test]
    fn formats_numbers() {
        let mut b = [0; 20];
        assert_eq!(format_u64(0, &mut b), b"0");
        assert_eq!(format_u64(u64::MAX, &mut b), b"18446744073709551615");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_goes_straight_into_the_buffer() {
        let mut out = Vec::new();
        Event::default()
            .event("tick")
            .id("1")
            .encode_json(&serde_json::json!({"t": "a\nb"}), &mut out)
            .unwrap();
        assert_eq!(out, b"event: tick\nid: 1\ndata: {\"t\":\"a\\nb\"}\n\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn raw_json_with_line_breaks_is_split_into_data_lines() {
        let raw = serde_json::value::RawValue::from_string("{\n\"a\": 1\r\n}".into()).unwrap();
        let mut out = Vec::new();
        Event::default().encode_json(&raw, &mut out).unwrap();
        assert_eq!(out, b"data: {\ndata: \"a\": 1\ndata: }\n\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn unescaped_json_text_is_checked_for_line_breaks() {
        // Raw fragments and, under `arbitrary_precision`, number text are the
        // two things serde_json writes as given.
        use serde_json::ser::Formatter;
        for (text, breaks) in [("12.5", false), ("1\n2", true), ("{\"a\":\r1}", true)] {
            let mut out = Vec::new();
            let mut seen = false;
            RawBreaks(&mut seen).write_number_str(&mut out, text).unwrap();
            assert_eq!((seen, &out[..]), (breaks, text.as_bytes()));
            let mut seen = false;
            RawBreaks(&mut seen).write_raw_fragment(&mut out, text).unwrap();
            assert_eq!(seen, breaks);
        }
    }

    #[test]
    fn retry_is_whole_milliseconds_and_debug_shows_it() {
        let ev = Event::default().retry(Duration::from_micros(2_500_900));
        assert_eq!(ev.retry_time(), Some(Duration::from_millis(2500)));
        assert_eq!(enc(&ev), b"retry: 2500\n\n");
        assert_eq!(enc(&Event::default().retry(Duration::MAX)), b"retry: 18446744073709551614\n\n");
        assert_eq!(Event::new("x").retry_time(), None);
        let debug = format!("{:?}", Event::new("x").retry(Duration::from_secs(3)));
        assert!(debug.contains("retry: Some(3s)"), "{debug}");
        assert!(format!("{:?}", Event::new("x")).contains("retry: None"));
    }

    #[test]
    fn frame_buffers_can_be_used_as_trait_objects() {
        let mut v = Vec::new();
        let buf: &mut dyn FrameBuf = &mut v;
        buf.put(b"x");
        assert_eq!(buf.written(), b"x");
    }
}
