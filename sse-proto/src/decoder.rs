//! The incremental `text/event-stream` decoder (WHATWG HTML §9.2.6,
//! "Interpreting an event stream").

use alloc::borrow::Cow;
use alloc::string::String;
use bytes::{Buf, Bytes, BytesMut};
use core::fmt;
use core::mem;
use core::time::Duration;

use crate::str::Str;

/// The UTF-8 byte order mark. The spec's "UTF-8 decode" strips one at the
/// start of the stream; any later one is ordinary text.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Limits that bound the decoder's memory whatever the peer sends.
///
/// The defaults hold any realistic event: a 1 MiB JSON document on one `data:`
/// line passes with room to spare. A peer that sends a longer line, or more
/// data for one event, gets a [`DecodeError`] instead of the process's memory.
///
/// ```
/// use sse_proto::{Decoder, DecoderConfig};
/// let config = DecoderConfig::default().max_line_len(64 * 1024).max_data_len(256 * 1024);
/// let decoder = Decoder::with_config(config);
/// # let _ = decoder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    max_line_len: usize,
    max_data_len: usize,
}

impl DecoderConfig {
    /// Default for [`max_line_len`](Self::max_line_len): 2 MiB.
    pub const DEFAULT_MAX_LINE_LEN: usize = 2 * 1024 * 1024;
    /// Default for [`max_data_len`](Self::max_data_len): 8 MiB.
    pub const DEFAULT_MAX_DATA_LEN: usize = 8 * 1024 * 1024;

    /// The default limits (2 MiB per line, 8 MiB of data per event).
    pub const fn new() -> Self {
        DecoderConfig { max_line_len: Self::DEFAULT_MAX_LINE_LEN, max_data_len: Self::DEFAULT_MAX_DATA_LEN }
    }

    /// The longest line, in bytes without its terminator, the decoder will
    /// buffer. Comments and unknown fields count too: the decoder has to hold
    /// a line before it can tell what it is. The decoder never holds more than
    /// this plus one fed chunk of an unterminated line.
    pub const fn max_line_len(mut self, max: usize) -> Self {
        self.max_line_len = max;
        self
    }

    /// The most `data` one event may accumulate, in bytes, counting the LF
    /// that joins `data:` lines.
    pub const fn max_data_len(mut self, max: usize) -> Self {
        self.max_data_len = max;
        self
    }

    /// The configured line limit.
    pub const fn line_limit(&self) -> usize {
        self.max_line_len
    }

    /// The configured data limit.
    pub const fn data_limit(&self) -> usize {
        self.max_data_len
    }
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a stream could not be decoded. Both variants are limits of
/// [`DecoderConfig`]; the format itself has no invalid input (the spec
/// defines a meaning for every byte sequence).
///
/// The error is sticky: once returned, every later
/// [`poll_event`](Decoder::poll_event) returns it again until
/// [`reset`](Decoder::reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line grew past [`DecoderConfig::max_line_len`].
    LineTooLong {
        /// Bytes of the line seen so far (at least `max + 1`).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// One event's `data` grew past [`DecoderConfig::max_data_len`].
    DataTooLong {
        /// Bytes the data buffer would have held.
        len: usize,
        /// The configured limit.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { len, max } => {
                write!(f, "event stream line of {len} bytes exceeds the limit of {max} bytes")
            }
            DecodeError::DataTooLong { len, max } => {
                write!(f, "event data of {len} bytes exceeds the limit of {max} bytes")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// An event the stream dispatched: what a browser's `EventSource` hands to
/// its listeners as a `MessageEvent`.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// Empty means the default type, `message`.
    event_type: Str,
    data: Str,
    last_event_id: Str,
}

impl MessageEvent {
    /// Builds an event, as a decoder would dispatch it. An empty `event_type`
    /// means `message`.
    pub fn new(event_type: impl Into<Str>, data: impl Into<Str>, last_event_id: impl Into<Str>) -> Self {
        let mut event_type = event_type.into();
        if event_type == "message" {
            event_type = Str::new();
        }
        MessageEvent { event_type, data: data.into(), last_event_id: last_event_id.into() }
    }

    /// The event type: the last `event` field of the block, or `message`.
    #[inline]
    pub fn event_type(&self) -> &str {
        if self.event_type.is_empty() { "message" } else { self.event_type.as_str() }
    }

    /// The data: every `data` field of the block joined with LF.
    #[inline]
    pub fn data(&self) -> &str {
        self.data.as_str()
    }

    /// The data as a [`Str`]; a single-line `data` shares the fed buffer.
    #[inline]
    pub fn data_str(&self) -> &Str {
        &self.data
    }

    /// Takes the data out of the event without copying it.
    pub fn into_data(self) -> Str {
        self.data
    }

    /// The stream's last event ID when the event fired (`lastEventId`): the
    /// latest `id` field, which persists across events until changed.
    #[inline]
    pub fn last_event_id(&self) -> &str {
        self.last_event_id.as_str()
    }
}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event_type", &self.event_type())
            .field("data", &self.data())
            .field("last_event_id", &self.last_event_id())
            .finish()
    }
}

/// Where the bytes of the current line come from: the decoder's own buffer,
/// or a [`Bytes`] chunk the caller handed over. Both can give a range away as
/// [`Bytes`] without copying, which is how single-line data stays zero-copy.
trait Source {
    fn bytes(&self) -> &[u8];
    fn skip(&mut self, n: usize);
    fn take(&mut self, n: usize) -> Bytes;
}

impl Source for BytesMut {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self
    }
    #[inline]
    fn skip(&mut self, n: usize) {
        self.advance(n)
    }
    #[inline]
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }
}

impl Source for Bytes {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self
    }
    #[inline]
    fn skip(&mut self, n: usize) {
        self.advance(n)
    }
    #[inline]
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n)
    }
}

/// The data buffer of the spec, shaped for the common case.
enum Data {
    /// No `data` field yet: the block dispatches nothing.
    Empty,
    /// One `data` field (the spec's buffer holds it plus an LF, which dispatch
    /// removes again, so it is not stored): a slice of the input.
    One(Str),
    /// Several fields, joined with LF in `State::data_buf` (again without the
    /// final LF).
    Many,
}

/// Everything but the input buffers, so the line parser can borrow it while
/// it consumes one of them.
struct State {
    config: DecoderConfig,
    /// The previous line ended in CR at the end of the input: an LF that
    /// starts the next input belongs to that line ending (CRLF).
    skip_lf: bool,
    /// Still at the start of the stream, where one BOM is to be dropped.
    bom_pending: bool,
    /// `finish` was called: no more input comes.
    eof: bool,
    data: Data,
    data_buf: BytesMut,
    /// The event type buffer ("" = `message`).
    event_type: Str,
    /// The last event ID buffer: set by `id`, copied to `last_event_id` at
    /// dispatch.
    id_buffer: Str,
    /// `id_buffer` changed since the last dispatch.
    id_dirty: bool,
    last_event_id: Str,
    reconnection_time: Option<Duration>,
    error: Option<DecodeError>,
    /// An error found while feeding (an unterminated line past the limit),
    /// reported once the complete lines before it are decoded.
    overflow: Option<DecodeError>,
}

/// An incremental, spec-exact `text/event-stream` decoder.
///
/// Bytes go in with [`feed`](Self::feed) or [`feed_bytes`](Self::feed_bytes),
/// which only buffer; events come out of [`poll_event`](Self::poll_event),
/// which parses. After each feed, call `poll_event` until it returns
/// `Ok(None)`. At the end of the stream call [`finish`](Self::finish) and
/// drain once more: an unterminated last line or block is then discarded, as
/// the spec requires.
///
/// Guarantees:
///
/// - **Exact**: every step of WHATWG HTML "Interpreting an event stream": one
///   leading BOM stripped (also when split across chunks), CR, LF and CRLF line
///   endings (a CRLF split across chunks is one ending, and a lone CR
///   dispatches at once without waiting for the next byte), comments, field
///   parsing with one optional space, `id` containing NUL ignored, `retry`
///   taking only ASCII digits, default type `message`, persistent last event
///   ID, and invalid UTF-8 replaced by U+FFFD per maximal subpart.
/// - **Split invariant**: the events are the same however the input is cut.
/// - **Linear**: each byte is scanned a bounded number of times, however the
///   input is chunked (the search position is remembered across feeds).
/// - **Bounded**: memory stays within the [`DecoderConfig`] limits plus one
///   fed chunk; going past a limit is a sticky [`DecodeError`].
/// - **Zero-copy**: single-line `data` is a slice of the fed bytes.
/// - **Never panics**, whatever the input.
///
/// ```
/// use sse_proto::Decoder;
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"event: greeting\nid: 1\ndata: hello\n\ndata: wor");
/// let event = decoder.poll_event()?.expect("a complete event");
/// assert_eq!(event.event_type(), "greeting");
/// assert_eq!(event.data(), "hello");
/// assert_eq!(event.last_event_id(), "1");
/// assert!(decoder.poll_event()?.is_none()); // "data: wor" is incomplete
///
/// decoder.feed(b"ld\n\n");
/// let event = decoder.poll_event()?.expect("the second event");
/// assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("message", "world", "1"));
/// # Ok::<(), sse_proto::DecodeError>(())
/// ```
pub struct Decoder {
    /// Input owned by the decoder: bytes from `feed`, and the unterminated
    /// line carried over from a chunk given to `feed_bytes`.
    buf: BytesMut,
    /// How much of the front of `buf` is known to hold no CR or LF, so a
    /// line arriving in many small pieces is scanned once, not once per piece.
    scan: usize,
    /// A chunk from `feed_bytes`, parsed in place. The logical input is
    /// `buf` followed by `ext`.
    ext: Bytes,
    /// Length of the unterminated line at the end of the logical input, kept
    /// up to date by the feeds so an over-long line is refused before it is
    /// buffered.
    tail_len: usize,
    st: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &(self.buf.len() + self.ext.len()))
            .field("last_event_id", &self.st.last_event_id)
            .field("reconnection_time", &self.st.reconnection_time)
            .field("error", &self.st.error)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder with the default [`DecoderConfig`].
    pub fn new() -> Self {
        Self::with_config(DecoderConfig::default())
    }

    /// A decoder with the given limits.
    pub fn with_config(config: DecoderConfig) -> Self {
        Decoder {
            buf: BytesMut::new(),
            scan: 0,
            ext: Bytes::new(),
            tail_len: 0,
            st: State {
                config,
                skip_lf: false,
                bom_pending: true,
                eof: false,
                data: Data::Empty,
                data_buf: BytesMut::new(),
                event_type: Str::new(),
                id_buffer: Str::new(),
                id_dirty: false,
                last_event_id: Str::new(),
                reconnection_time: None,
                error: None,
                overflow: None,
            },
        }
    }

    /// A decoder for a stream that resumes after `last_event_id`: events
    /// without an `id` field carry it, as they do in a reconnected
    /// `EventSource`.
    pub fn with_last_event_id(config: DecoderConfig, last_event_id: impl Into<Str>) -> Self {
        let mut d = Self::with_config(config);
        let id = last_event_id.into();
        d.st.id_buffer = id.clone();
        d.st.last_event_id = id;
        d
    }

    /// The limits in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.st.config
    }

    /// The last event ID: the `id` of the latest dispatched block that had
    /// one (`""` if none yet). An `id` in a block that has not been dispatched
    /// yet is not included (spec: it takes effect at dispatch).
    pub fn last_event_id(&self) -> &str {
        &self.st.last_event_id
    }

    /// The latest reconnection time a `retry` field set, if any. `retry`
    /// takes effect as soon as its line is parsed, even in a block that never
    /// dispatches.
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.st.reconnection_time
    }

    /// Bytes fed but not yet consumed by [`poll_event`](Self::poll_event).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() + self.ext.len()
    }

    /// Appends bytes to the stream. Nothing is parsed until
    /// [`poll_event`](Self::poll_event).
    ///
    /// If the unterminated line at the end of the input would grow past
    /// [`DecoderConfig::max_line_len`], the excess is not buffered and the
    /// next `poll_event`, after the events before it, reports
    /// [`DecodeError::LineTooLong`]. Bytes fed after [`finish`](Self::finish)
    /// or after an error are ignored.
    pub fn feed(&mut self, bytes: &[u8]) {
        let Some(keep) = self.admit(bytes) else { return };
        if !self.ext.is_empty() {
            // Keep the order `buf` then `ext` then the new bytes.
            self.buf.extend_from_slice(&self.ext);
            self.ext = Bytes::new();
        }
        self.buf.extend_from_slice(&bytes[..keep]);
    }

    /// Appends a chunk to the stream, without copying it when the decoder
    /// holds no other unparsed input (the usual case when every feed is
    /// followed by draining [`poll_event`](Self::poll_event)). Otherwise as
    /// [`feed`](Self::feed).
    pub fn feed_bytes(&mut self, mut bytes: Bytes) {
        let Some(keep) = self.admit(&bytes) else { return };
        bytes.truncate(keep);
        if self.ext.is_empty() {
            // `buf` may still hold an unterminated line: `poll_event` joins
            // it with the start of this chunk, and parses the rest in place.
            self.ext = bytes;
        } else {
            if !self.ext.is_empty() {
                self.buf.extend_from_slice(&self.ext);
                self.ext = Bytes::new();
            }
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Bookkeeping shared by the feeds: updates the length of the trailing
    /// unterminated line and returns how many bytes of `bytes` to keep, or
    /// `None` to drop them all.
    fn admit(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.st.error.is_some() || self.st.overflow.is_some() || self.st.eof {
            return None;
        }
        let max = self.st.config.max_line_len;
        match memchr::memrchr2(b'\n', b'\r', bytes) {
            Some(pos) => {
                let tail = bytes.len() - pos - 1;
                if tail > max {
                    // The chunk ends in an over-long line: keep what precedes
                    // it so the events there are still delivered.
                    self.st.overflow = Some(DecodeError::LineTooLong { len: tail, max });
                    self.tail_len = 0;
                    return Some(pos + 1);
                }
                self.tail_len = tail;
            }
            None => {
                let tail = self.tail_len.saturating_add(bytes.len());
                if tail > max {
                    self.st.overflow = Some(DecodeError::LineTooLong { len: tail, max });
                    return None;
                }
                self.tail_len = tail;
            }
        }
        Some(bytes.len())
    }

    /// Marks the end of the stream. Events already complete are still
    /// returned by [`poll_event`](Self::poll_event); an unterminated line and
    /// an undispatched block are discarded (spec: "Once the end of the file is
    /// reached, any pending data must be discarded"), so an `id` in them never
    /// becomes the last event ID.
    pub fn finish(&mut self) {
        self.st.eof = true;
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.st.eof
    }

    /// Starts a new stream, for example the body of a reconnection: drops
    /// buffered input, the block being built, the end-of-stream mark and any
    /// error, and expects a BOM again. Keeps the last event ID (events of the
    /// new stream carry it until an `id` field changes it) and the
    /// reconnection time.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.scan = 0;
        self.ext = Bytes::new();
        self.tail_len = 0;
        let st = &mut self.st;
        st.skip_lf = false;
        st.bom_pending = true;
        st.eof = false;
        st.error = None;
        st.overflow = None;
        st.discard_block();
    }

    /// Parses buffered input and returns the next dispatched event.
    ///
    /// `Ok(None)` means more input is needed (or, after
    /// [`finish`](Self::finish), that the stream is over); incomplete input is
    /// never an error. Errors are sticky.
    pub fn poll_event(&mut self) -> Result<Option<MessageEvent>, DecodeError> {
        if let Some(err) = self.st.error {
            return Err(err);
        }
        if self.st.bom_pending && !self.strip_bom() {
            return self.need_more();
        }
        loop {
            // Lines wholly inside `buf` first.
            if let Some(ev) = parse_lines(&mut self.buf, &mut self.scan, &mut self.st)? {
                return Ok(Some(ev));
            }
            if self.ext.is_empty() {
                return self.need_more();
            }
            if !self.buf.is_empty() {
                // `buf` ends in an unterminated line that continues in `ext`:
                // move the rest of that line (with its terminator) over, so
                // the line is contiguous, and parse it on the next turn.
                match find_eol(&self.ext) {
                    Some(j) => {
                        self.buf.extend_from_slice(&self.ext[..=j]);
                        self.ext.advance(j + 1);
                    }
                    None => {
                        self.buf.extend_from_slice(&self.ext);
                        self.ext = Bytes::new();
                    }
                }
                continue;
            }
            // `buf` is empty: parse the chunk in place.
            let mut scan = 0;
            if let Some(ev) = parse_lines(&mut self.ext, &mut scan, &mut self.st)? {
                return Ok(Some(ev));
            }
            // An unterminated tail is left: carry it in `buf` (copying at most
            // one line) and remember that it holds no terminator.
            self.buf.extend_from_slice(&self.ext);
            self.ext = Bytes::new();
            self.scan = self.buf.len();
            return self.need_more();
        }
    }

    /// Drops one leading BOM. Returns false while the input is too short to
    /// tell (a BOM can arrive one byte at a time).
    fn strip_bom(&mut self) -> bool {
        // The first bytes of the logical input `buf` ++ `ext`.
        let mut head = [0u8; 3];
        let mut n = 0;
        for &b in self.buf.iter().chain(self.ext.iter()).take(BOM.len()) {
            head[n] = b;
            n += 1;
        }
        if head[..n] != BOM[..n] {
            self.st.bom_pending = false;
        } else if n == BOM.len() {
            let from_buf = self.buf.len().min(BOM.len());
            self.buf.advance(from_buf);
            self.ext.advance(BOM.len() - from_buf);
            self.st.bom_pending = false;
        }
        !self.st.bom_pending
    }

    /// Called when no complete line is left: ends the stream if it is
    /// finished, reports a deferred overflow, or asks for more bytes.
    fn need_more(&mut self) -> Result<Option<MessageEvent>, DecodeError> {
        if let Some(err) = self.st.overflow.take() {
            self.buf = BytesMut::new();
            self.ext = Bytes::new();
            self.scan = 0;
            return Err(self.st.fail(err));
        }
        if self.st.eof && !(self.buf.is_empty() && self.ext.is_empty() && matches!(self.st.data, Data::Empty))
        {
            // Spec: at end of file, pending data is discarded.
            self.buf.clear();
            self.ext = Bytes::new();
            self.scan = 0;
            self.tail_len = 0;
            self.st.discard_block();
        }
        Ok(None)
    }
}

impl State {
    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.error = Some(err);
        self.discard_block();
        err
    }

    /// Forgets the block being built; its `id` never reaches the last event ID.
    fn discard_block(&mut self) {
        self.data = Data::Empty;
        self.data_buf.clear();
        self.event_type = Str::new();
        if self.id_dirty {
            self.id_buffer = self.last_event_id.clone();
            self.id_dirty = false;
        }
    }

    /// Spec: "If the line is empty (a blank line): Dispatch the event".
    #[inline]
    fn dispatch(&mut self) -> Option<MessageEvent> {
        // Step 1: the last event ID buffer becomes the last event ID, even if
        // no event fires.
        if self.id_dirty {
            self.last_event_id = self.id_buffer.clone();
            self.id_dirty = false;
        }
        let data = match mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => {
                // Step 2: an empty data buffer fires nothing and clears the type.
                self.event_type = Str::new();
                return None;
            }
            // Step 3 (remove one trailing LF) is implicit: the buffers never
            // store the final LF.
            Data::One(s) => s,
            Data::Many => Str::from_validated_bytes(self.data_buf.split().freeze()),
        };
        Some(MessageEvent {
            event_type: mem::take(&mut self.event_type),
            data,
            last_event_id: self.last_event_id.clone(),
        })
    }

    /// Checks the data limit for a buffer that would hold `len` bytes.
    #[inline]
    fn check_data_len(&mut self, len: usize) -> Result<(), DecodeError> {
        let max = self.config.max_data_len;
        if len > max {
            return Err(self.fail(DecodeError::DataTooLong { len, max }));
        }
        Ok(())
    }

    /// Spec: "If the field name is "data": Append the field value to the
    /// data buffer, then append a single U+000A LINE FEED (LF) character".
    /// The LF is written when the next value arrives, so that dispatch need
    /// not remove it.
    fn append_data(&mut self, value: &str) -> Result<(), DecodeError> {
        match mem::replace(&mut self.data, Data::Many) {
            Data::Empty => {
                self.check_data_len(value.len())?;
                self.data = Data::One(Str::from(value));
            }
            Data::One(first) => {
                let len = first.len() + 1 + value.len();
                self.check_data_len(len)?;
                self.data_buf.clear();
                self.data_buf.reserve(len);
                self.data_buf.extend_from_slice(first.as_bytes());
                self.data_buf.extend_from_slice(b"\n");
                self.data_buf.extend_from_slice(value.as_bytes());
            }
            Data::Many => {
                self.check_data_len(self.data_buf.len() + 1 + value.len())?;
                self.data_buf.extend_from_slice(b"\n");
                self.data_buf.extend_from_slice(value.as_bytes());
            }
        }
        Ok(())
    }
}

/// Position of the first CR or LF.
#[inline]
fn find_eol(hay: &[u8]) -> Option<usize> {
    // memchr's SIMD search has a fixed set-up cost that dominates on the tiny
    // inputs of byte-at-a-time feeding.
    if hay.len() < 8 {
        return hay.iter().position(|&b| b == b'\n' || b == b'\r');
    }
    memchr::memchr2(b'\n', b'\r', hay)
}

/// UTF-8 decode with replacement (spec: the stream is decoded with "UTF-8
/// decode"). Splitting the raw bytes at CR, LF and `:` first and decoding the
/// pieces is equivalent, because ASCII bytes never belong to an invalid
/// subpart.
#[inline]
fn decode_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match core::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Parses complete lines from the front of `src` until an event dispatches or
/// no line terminator is left (then `*scan` records how far was searched).
fn parse_lines<S: Source>(
    src: &mut S,
    scan: &mut usize,
    st: &mut State,
) -> Result<Option<MessageEvent>, DecodeError> {
    if st.skip_lf {
        // Second half of a CRLF whose CR ended the previous input.
        match src.bytes().first() {
            None => return Ok(None),
            Some(&b) => {
                if b == b'\n' {
                    src.skip(1);
                }
                st.skip_lf = false;
            }
        }
    }
    loop {
        let bytes = src.bytes();
        let Some(off) = find_eol(&bytes[*scan..]) else {
            *scan = bytes.len();
            return Ok(None);
        };
        let end = *scan + off;
        *scan = 0;
        if end > st.config.max_line_len {
            return Err(st.fail(DecodeError::LineTooLong { len: end, max: st.config.max_line_len }));
        }
        let cr = bytes[end] == b'\r';
        let event = parse_line(src, end, st)?;
        if cr {
            // A lone CR ends the line at once; an LF right after it is part
            // of the same line ending. If the input ends here, the next input
            // decides.
            match src.bytes().first() {
                Some(b'\n') => src.skip(1),
                Some(_) => {}
                None => st.skip_lf = true,
            }
        }
        if event.is_some() {
            return Ok(event);
        }
    }
}

/// Processes the line `src[..end]` and consumes it with its one-byte
/// terminator (spec: "Interpreting an event stream", the per-line steps).
#[inline]
fn parse_line<S: Source>(
    src: &mut S,
    end: usize,
    st: &mut State,
) -> Result<Option<MessageEvent>, DecodeError> {
    let line = &src.bytes()[..end];
    // "If the line is empty (a blank line): Dispatch the event."
    if line.is_empty() {
        src.skip(1);
        return Ok(st.dispatch());
    }
    // "If the line starts with a U+003A COLON character (:): Ignore the line."
    if line[0] == b':' {
        src.skip(end + 1);
        return Ok(None);
    }
    // "If the line contains a U+003A COLON character: collect the characters
    // on the line before the first colon, and call that string field. Collect
    // the characters on the line after the first colon, and call that string
    // value. If value starts with a U+0020 SPACE character, remove it."
    // "Otherwise, the string is not empty but does not contain a colon: use
    // the whole line as the field name, and the empty string as the field value."
    let (name_end, value_start) = match memchr::memchr(b':', line) {
        Some(c) => (c, if line.get(c + 1) == Some(&b' ') { c + 2 } else { c + 1 }),
        None => (end, end),
    };
    // Field names are compared as bytes: a name that decodes to one of these
    // ASCII words can only be made of exactly these bytes.
    match &line[..name_end] {
        b"data" => {
            let value = &line[value_start..];
            let text = decode_utf8(value);
            if matches!(text, Cow::Borrowed(_)) && matches!(st.data, Data::Empty) {
                // The common single-line case: share the input, no copy.
                st.check_data_len(value.len())?;
                src.skip(value_start);
                let shared = src.take(end - value_start);
                src.skip(1);
                st.data = Data::One(Str::from_validated_bytes(shared));
                return Ok(None);
            }
            st.append_data(&text)?;
        }
        b"event" => {
            // "Set the event type buffer to the field value."
            st.event_type = Str::from(decode_utf8(&line[value_start..]).as_ref());
        }
        b"id" => {
            // "If the field value does not contain U+0000 NULL, then set the
            // last event ID buffer to the field value. Otherwise, ignore the
            // field."
            let value = &line[value_start..];
            if memchr::memchr(0, value).is_none() {
                st.id_buffer = Str::from(decode_utf8(value).as_ref());
                st.id_dirty = true;
            }
        }
        b"retry" => {
            // "If the field value consists of only ASCII digits, then interpret
            // the field value as an integer in base ten, and set the event
            // stream's reconnection time to that integer. Otherwise, ignore
            // the field." An empty value is ignored as browsers do; a value
            // too large for u64 milliseconds is ignored as Chromium does.
            if let Some(ms) = parse_retry(&line[value_start..]) {
                st.reconnection_time = Some(Duration::from_millis(ms));
            }
        }
        // "Otherwise: The field is ignored."
        _ => {}
    }
    src.skip(end + 1);
    Ok(None)
}

/// The `retry` value: non-empty ASCII digits that fit in a u64.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut ms: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        ms = ms.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn decode_all(input: &[u8]) -> Vec<MessageEvent> {
        let mut d = Decoder::new();
        d.feed(input);
        d.finish();
        let mut out = Vec::new();
        while let Some(ev) = d.poll_event().unwrap() {
            out.push(ev);
        }
        out
    }

    #[test]
    fn retry_parsing() {
        assert_eq!(parse_retry(b"3000"), Some(3000));
        assert_eq!(parse_retry(b""), None);
        assert_eq!(parse_retry(b"1a"), None);
        assert_eq!(parse_retry(b" 1"), None);
        assert_eq!(parse_retry(b"99999999999999999999999"), None);
    }

    #[test]
    fn single_line_data_is_a_slice_of_the_input() {
        let input = Bytes::from_static(b"data: zero-copy payload\n\n");
        let mut d = Decoder::new();
        d.feed_bytes(input.clone());
        let ev = d.poll_event().unwrap().unwrap();
        let data = ev.data().as_bytes().as_ptr_range();
        let inp = input.as_ptr_range();
        assert!(inp.start <= data.start && data.end <= inp.end);
    }

    #[test]
    fn lone_cr_dispatches_without_waiting() {
        let mut d = Decoder::new();
        d.feed(b"data: a\r\r");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "a");
        // The next LF is the second half of the CRLF? No: the second CR was
        // itself the blank line; an LF now is its CRLF partner and is skipped.
        d.feed(b"\ndata: b\n\n");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "b");
        assert!(d.poll_event().unwrap().is_none());
    }

    #[test]
    fn empty_data_field_dispatches_empty_string() {
        let evs = decode_all(b"data\n\ndata:\n\n");
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| e.data().is_empty()));
    }

    #[test]
    fn overflow_reported_after_earlier_events() {
        let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(10));
        d.feed(b"data: 1\n\n0123456789ab");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "1");
        assert_eq!(d.poll_event(), Err(DecodeError::LineTooLong { len: 12, max: 10 }));
        // Sticky.
        d.feed(b"\n\ndata: 2\n\n");
        assert!(d.poll_event().is_err());
        d.reset();
        d.feed(b"data: 2\n\n");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "2");
    }

    #[test]
    fn data_limit() {
        let mut d = Decoder::with_config(DecoderConfig::default().max_data_len(5));
        d.feed(b"data: 123\ndata: 4\n\ndata: 123\ndata: 45\n\n");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "123\n4");
        assert_eq!(d.poll_event(), Err(DecodeError::DataTooLong { len: 6, max: 5 }));
    }
}
