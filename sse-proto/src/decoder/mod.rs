//! The incremental `text/event-stream` decoder (WHATWG HTML §9.2.6,
//! "Interpreting an event stream").
//!
//! # Where things are
//!
//! - [`steps`]: the spec's steps top to bottom (lines, fields, dispatch).
//!   The reference for every path below.
//! - this module: the public API, the input buffers (`buf`, the carry
//!   buffer, and `ext`, a chunk of `feed_bytes` parsed in place), the
//!   limits, the BOM and end of stream, and the loop that picks a path.
//! - [`gather`]: multi-line data searched, validated and copied in one pass.
//! - [`fragment`]: blocks and `data` lines that outlive their chunk.
//! - [`build`]: owned events and lent fields.
//! - `crate::scan`: the SIMD search (line ends, UTF-8, the copy) and the
//!   [`Cursor`] that remembers what was searched and validated.
//!
//! # Lifecycle
//!
//! One state, [`Life`], says whether input is taken (`Open`), the stream
//! was finished (`Finished`), an unterminated line went past the limit
//! while being fed (`Overflow`, reported once the lines before it are
//! decoded) or failed (`Failed`, sticky until `reset`); and, while the
//! stream is decoded, what the next input starts with ([`Edge`]: the BOM
//! the stream may begin with, plain lines, or the LF of a CRLF whose CR
//! ended the last input). The fast paths below test it with one compare.
//!
//! # Fast paths
//!
//! Each does, for one shape of input, exactly what [`steps`] would do; the
//! naive decoder of the tests (`tests/support/naive.rs`) is the spec's
//! steps transcribed, and the differential property tests
//! (`tests/differential.rs`) and fuzz targets (`differential`,
//! `differential_utf8`) compare every path against it, under random splits;
//! under small limits, `long_multi_line_events_within_limits` and
//! `differential_limits` check the events before the first line past a
//! limit and the error it calls for (`naive::limits`).
//!
//! | path | fires when | assumes | guarded by |
//! |---|---|---|---|
//! | `Decoder::feed` / `feed_bytes`, few bytes | at most 4 bytes fed, no chunk held, `Life::Open`, less than a line limit buffered | appending cannot pass the line limit | `limits.rs` (`a_768_kib_line_fed_byte_by_byte_is_linear`), conformance byte by byte, `differential` |
//! | `Decoder::feed` / `feed_bytes`, one byte, `quiet` | one byte fed while `quiet` (the last poll searched the whole input and found nothing, `Life::Open(Edge::Lines)`, no chunk held, no event lent), `buf` shorter than `quiet_room` (the line limit less what of the line a fragment holds) | a byte that is not a line end cannot end a line: it is only appended (with `feed_bytes`, after its chunk is let go), and the next poll returns at once; a line end clears `quiet`, the search resuming at it (`Cursor::resume_at`), and is left to the search; other feeds and `finish` catch up in `wake`. Entering `quiet` forgets the trailing line's length (`tail_known`), which these appends do not keep | `byte_runs_between_chunks_agree_with_the_naive_decoder`, `a_copied_data_line_ended_by_a_byte_fed_alone`, `events_come_out_as_soon_as_their_block_ends`, `a_line_ended_by_a_short_piece_does_not_count_toward_the_next`, `a_continued_data_line_past_the_limit_fails_at_once`, `differential`, `differential_limits` |
//! | `Decoder::feed` / `feed_bytes`, a few bytes, `quiet` | 2 to 31 bytes fed while `quiet`, `buf` within `quiet_room` after them | as for one byte: bytes that hold no line end are only appended and the next poll returns at once; a line end clears `quiet`, the search resuming at the first new byte | `short_pieces_between_line_ends_are_only_appended`, `a_line_ended_by_a_short_piece_does_not_count_toward_the_next`, `a_continued_data_line_past_the_limit_fails_at_once`, `differential`, `differential_limits` |
//! | `Decoder::feed` / `feed_bytes`, LF after CR | one LF fed while `Life::Open(Edge::Cr)` and no chunk held | the CR ended the input and its line, and everything before it was decoded: the LF is dropped, and `quiet` is recomputed (`at_rest`) | `byte_by_byte_equals_whole`, `events_come_out_as_soon_as_their_block_ends`, conformance byte by byte, `differential` |
//! | `Decoder::took_chunk`, short chunk copied | a chunk that ends inside a line, the carry buffer holding at most `CARRY_MAX` (768) bytes with it, no `data` line continued (`frag`, `resume`) | none: the chunk takes `feed`'s path, as if fed by copy | `short_chunks_that_end_inside_a_line_are_copied`, `byte_runs_between_chunks_agree_with_the_naive_decoder`, `differential` (`feed_bytes` mode, random cuts) |
//! | `Decoder::nothing_new` | fewer than 8 new bytes in `buf`, none CR or LF, no mask pending, `Life::Open(Edge::Lines)` (or `Open(Edge::Cr)` and the next byte, settled, leaves it so), a fragment's line within the line limit with `buf` | no line can have ended, and none passed its limit | `events_come_out_as_soon_as_their_block_ends`, `lone_cr_dispatches_without_waiting`, `a_continued_data_line_past_the_limit_fails_at_once` |
//! | blank line after a field (`parse_lines`) | the byte after a field line's end is CR or LF | a line that starts with its terminator is blank: the block is dispatched at once, its end found by `after_line_end` as for any line (a CR that ends the input sets `Edge::Cr`); the blank line's terminators, read directly, are skipped by the cursor and, being ASCII, extend the validated prefix | `a_blank_line_right_after_a_field_ends_its_block`, `differential` |
//! | `Decoder::rest_if_drained` | an event handed out by `poll_event` was the last of the input (no chunk, no carry buffer left) | as when a poll finds nothing (`at_rest`): the next poll returns at once, without its out-of-line call | `the_last_event_of_the_input_leaves_the_decoder_at_rest`, `differential` |
//! | `Cursor::find_eol` mask | a 64-byte block was searched and has line ends left | the mask covers `scan..scan + mask_len` exactly | `scan` unit tests (`cursor_finds_every_terminator_once_across_growth`), `differential` |
//! | validated prefix (`Cursor::valid`) | a field lies before `valid` | the prefix is valid UTF-8 ending on a character boundary (ASCII runs, whole validated runs up to a character the input ends inside, `scan::incomplete_tail`; lines the copy checked; with AVX-512, in an input of 4 KiB or more, long lines the search checked as it went, `scan::scan_long_valid`, from where the prefix reached: the line's start, a block before it, or, after a line of 1 KiB or more (`Cursor::long_lines`), two blocks before it, the line ends there passed over) | `field_is_valid`; `searches_find_every_terminator_and_validate_soundly` (every cut, invalid bytes); `scan_long_valid_matches_its_definition`, `scan_long_valid_passes_over_the_line_ends_before_skip`, `long_lines_are_validated_as_they_are_searched`, `long_lines_are_validated_from_where_the_prefix_stopped`; `differential_utf8` (invalid UTF-8 at every block edge) |
//! | short field on its own | a field of at most 48 bytes past `valid` | none: checked whole | `differential`, `differential_utf8` |
//! | `gather` | a `data:` line with the block's data non-empty (or the last event had several lines), no mask pending | the copy's UTF-8 verdict covers the whole value (after `before`); invalid text goes back to the steps. With AVX-512 the block where an ASCII line ends, ASCII up to the end, after ASCII blocks and an ASCII `before`, is valid without the lookups. The first line reserves as much as the last event and an eighth more (`State::hinted`) | `copy_line_*` unit tests, `long_multi_line_events_*`, `events_a_little_larger_than_the_last_are_not_regrown`, `differential_utf8` |
//! | `gather`, validated ahead | with AVX-512, a line not resumed whose every reachable byte lies before `Cursor::valid` (a field before it had the rest of the input checked, `field_is_valid`), or all but the valid first bytes of a character the input ends inside of (`validated_through`, `scan::starts_a_character`) | the validated prefix holds (as for short fields): the copy searches and copies without checking (`LineCopier::copy_valid_line`); the cut character's bytes hold no line end, and the piece that continues the line is checked after them | `lines_validated_ahead_are_copied_without_a_second_check` (every cut, and a cut after `E0 80`), `copy_line_matches_its_definition` (each copier without the check), `differential_utf8` |
//! | `gather`, short line (`short_data_line`) | a `data:` line after a gathered line of at most 64 bytes, the block's data in `data_buf` (`Data::Many`, `Data::One(Val::Owned)`), no line resumed or searched past its start, 64 bytes of input from its value, both limits more than 64 bytes away | the value ends in that block (else the general copy takes the line): one load finds the terminator, checks the value and appends it after an LF (`LineCopier::append_short_line`); invalid text goes to the general copy. The optional space picks one of two copies of the path (a branch, so the next line's load does not wait for a load of that byte) | `append_short_line_matches_its_definition`, `differential`, `differential_utf8` |
//! | `gather`, input ends in the line (`Resume`, `Fragment`) | a chunk or the carry buffer ends inside a gathered line within the limits | the copied prefix is kept; the next piece is checked after its last three bytes | `long_multi_line_events_within_limits`, `differential_utf8` |
//! | `fragment` | a chunk of `feed_bytes` ends inside a `data:` line | the value continues in `data_buf`; the limits are counted across pieces; a value validated up to a character the chunk ends inside of is copied unchecked, that character's start checked on its own (the next piece checks its completion, not the bytes before it) | `limits.rs`, `long_multi_line_events_within_limits`, `a_chunk_that_ends_inside_a_character_of_a_data_line` |
//! | `Decoder::fragment_from_buf` | `buf` ends in an unterminated `data:` line that a chunk continues (a short piece copied into `buf` began it) | as at the end of a chunk: the block's values are copied out and the line goes on in `data_buf`; a line `gather` was copying (`Resume`) becomes the fragment it would have been in a chunk, if it copied all of `buf` | `a_data_line_begun_in_the_carry_buffer_goes_on_as_a_fragment`, `differential` |
//! | `Decoder::continue_in_chunk` | a chunk shorter than 512 bytes taken by `feed_bytes` while a `fragment` goes on, no carry buffer, within the limits | the line continues from the chunk as the poll's first step would; a chunk used up leaves the poll nothing to do (`quiet` if `at_rest`) | `a_data_line_goes_on_as_short_chunks_are_taken`, `events_come_out_as_soon_as_their_block_ends`, `differential` |
//! | `compact` | a block outgrows 64 KiB, or its chunk ends before it | values are copied out, lines dropped; positions rebased | `long_blocks_are_compacted_without_changing_events` |
//! | `build`, inline event | fields fit in 64 bytes | the spans, shifted by the copy, point at validated values; the event is staged in `State::staged` and built by the inlined `poll_event` in its caller (`Staged`). The copy is 64 bytes from the first value; where the source ends sooner (a chunk of one event), the bytes there, zero-padded: one masked load with AVX-512 (`event::short_head`) | `copied_events_are_inline_or_shared_by_size`, `small_events_of_a_kept_chunk_are_inline`, `a_short_head_is_the_block_zero_padded` |
//! | `build`, slice of the chunk | a larger event whole in one chunk | the block is the first `total` bytes of the source; an inherited last event ID of up to 32 bytes is held in the event (`OWN_ID_CAP`), a longer one shared | `single_line_data_is_a_slice_of_the_input`, `slices_of_the_input_carry_an_inherited_id_of_any_length` |
//! | `build`, gathered event | several `data` lines (or data that outlived its chunk) | the event shares `data_buf`'s allocation; one more than 8 times its size and 8 KiB (left by a large event) is first replaced by one of 8 times the event, which the next events share (`PIN_RATIO`, `PIN_FREE`) | `copied_events_are_inline_or_shared_by_size`, `differential` |
//! | `poll_event_ref` | lent events | the block stays at the front until the next `&mut` call (`pending`) | `differential` with `lend` |

use alloc::string::String;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::fmt;
use core::time::Duration;

use crate::event::{INLINE_CAP, InlineBuilder, LastId, MessageEvent, OWN_ID_CAP, Span, Staged};
use crate::scan::{self, Cursor, LineCopier};
use crate::str::utf8_unchecked;

mod build;
mod fragment;
mod gather;
mod steps;

use fragment::{compact, continue_fragment, start_fragment};
use gather::gather_data_lines;
use steps::{after_line_end, parse_lines, settle_cr};

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

    /// The largest value either limit can take: 1 GiB.
    pub const MAX_LIMIT: usize = 1 << 30;

    /// The longest line, in bytes without its terminator, the decoder will
    /// buffer. Comments and unknown fields count too: the decoder has to hold
    /// a line before it can tell what it is. The decoder never holds more than
    /// this plus one fed chunk of an unterminated line. Values above
    /// [`MAX_LIMIT`](Self::MAX_LIMIT) are clamped to it.
    pub const fn max_line_len(mut self, max: usize) -> Self {
        self.max_line_len = if max > Self::MAX_LIMIT { Self::MAX_LIMIT } else { max };
        self
    }

    /// The most `data` one event may accumulate, in bytes, counting the LF
    /// that joins `data:` lines. Values above [`MAX_LIMIT`](Self::MAX_LIMIT)
    /// are clamped to it.
    pub const fn max_data_len(mut self, max: usize) -> Self {
        self.max_data_len = if max > Self::MAX_LIMIT { Self::MAX_LIMIT } else { max };
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

/// Where the bytes of the current block come from: the decoder's own buffer,
/// or a [`Bytes`] chunk the caller handed over. Both can give a range away as
/// [`Bytes`] without copying, which is how a whole event becomes one slice of
/// the input.
trait Source {
    /// Whether this is a chunk given to `feed_bytes`, which is not kept
    /// once its lines are decoded (a `data` line it ends inside goes on as
    /// a [`Fragment`]), rather than the decoder's carry buffer.
    const CHUNK: bool;
    fn bytes(&self) -> &[u8];
    fn skip(&mut self, n: usize);
    fn take(&mut self, n: usize) -> Bytes;
}

impl Source for BytesMut {
    const CHUNK: bool = false;
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
    const CHUNK: bool = true;
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
        if n == self.len() {
            // The whole chunk: moved out, no reference count taken.
            return core::mem::take(self);
        }
        // `slice` is generic, so it is compiled here and builds the slice
        // where the caller wants it; `split_to` is compiled in `bytes` and
        // returns it through a temporary, which the caller copies with wider
        // loads than the stores that wrote it (a store-forwarding stall).
        let front = self.slice(..n);
        self.advance(n);
        front
    }
}

/// Where a field value of the block being built lives.
///
/// Invariant: the bytes a `Val` points at are valid UTF-8. A `Block` value
/// is made only after [`steps::field_is_valid`] or the line copy's check
/// ([`LineCopier::copy_line`]) passed it; an `Owned` one is text decoded
/// with replacement. `State::data_buf` likewise holds, outside a line being
/// continued (`frag`, `resume`), only such values joined with LF; the
/// unsafe blocks that view them as `str` rely on this.
#[derive(Debug, Clone, Copy)]
enum Val {
    /// In the input, relative to the start of the block (the front of the
    /// source: a block's lines stay there until it is dispatched).
    Block(Span),
    /// In `State::data_buf` (data) or `State::meta_buf` (type, id): the value
    /// had to be copied (replaced invalid UTF-8, several `data` lines, or a
    /// block that outgrew its source).
    Owned(Span),
}

/// The spec's data buffer.
#[derive(Debug, Clone, Copy)]
enum Data {
    /// No `data` field yet: the block dispatches nothing.
    Empty,
    /// One `data` field. The spec's buffer holds it plus an LF, which
    /// dispatch removes again, so neither is stored.
    One(Val),
    /// Several fields, joined with LF in `State::data_buf` (again without
    /// the final LF).
    Many,
}

/// A dispatched event, before it is handed out: where its fields are. Its
/// block is still the first `total` bytes of the source it came from.
#[derive(Debug, Clone, Copy)]
struct Fields {
    total: usize,
    data: Data,
    event_type: Option<Val>,
    /// The block's own `id` field, if it had one (already the last event ID).
    id: Option<Val>,
}

/// A `data` line being continued across chunks (see [`start_fragment`]).
#[derive(Debug, Clone, Copy)]
struct Fragment {
    /// Where this line's value starts in `data_buf`.
    start: usize,
    /// Bytes of the line so far, for the line limit.
    line_len: usize,
    /// Whether the block had no data before this line.
    first: bool,
    /// No piece so far held invalid UTF-8, each checked after the bytes
    /// before it (the value so far may end inside a character, which the
    /// next piece completes): no need to validate the whole line again when
    /// it ends.
    valid: bool,
}

/// A `data` line in the carry buffer (`feed`, or `feed_bytes` chunks too
/// short to keep) that `gather_data_line` was copying when the input ended.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// Length of `data_buf` before this line.
    held: usize,
    /// 1 when an LF was written after `held` (not the block's first value).
    sep: usize,
    /// Bytes of the value copied so far.
    copied: usize,
    /// Whether they hold no invalid UTF-8 (they may end inside a
    /// character).
    valid: bool,
}

/// Events up to this size that are gathered in `data_buf` share its
/// allocation with the events before and after them (see
/// `State::owned_event`); a larger one takes the allocation for itself.
const SHARED_EVENT_MAX: usize = 16 * 1024;

/// An event gathered in `data_buf` shares its allocation unless that is
/// more than this many times the event's size and more than [`PIN_FREE`]:
/// then the allocation is replaced by one of `PIN_RATIO` times the event
/// (see `State::owned_event`), so that a kept event never pins much more
/// memory than it holds.
const PIN_RATIO: usize = 8;

/// Allocations up to this size are shared by the events gathered in them
/// whatever their size: less than a chunk, which a single-line event that
/// is a slice of it pins.
const PIN_FREE: usize = 8 * 1024;

/// A block longer than this (comments, unknown fields) is compacted: its
/// values are copied out and its lines dropped, so the decoder's memory does
/// not grow with lines it ignores.
const COMPACT_AT: usize = 64 * 1024;

/// Everything but the input buffers, so the line parser can borrow it while
/// it reads one of them.
struct State {
    config: DecoderConfig,
    /// Where the stream is in its life: open, finished, failed, and what
    /// the next input starts with (see [`Life`]).
    life: Life,
    /// Length of the block being built: its lines are the first `pos` bytes
    /// of the source, and the next line starts here.
    pos: usize,
    data: Data,
    /// The event type buffer (`None` = empty = `message`).
    event_type: Option<Val>,
    /// An `id` field of this block: the spec's last event ID buffer, which
    /// becomes the last event ID at dispatch.
    pending_id: Option<Val>,
    data_buf: BytesMut,
    meta_buf: BytesMut,
    /// The last event ID (validated UTF-8).
    last_id: LastId,
    /// `last_id` as shared bytes, made on first need and kept until the id
    /// changes, for events that carry an id set by an earlier block.
    last_id_shared: Option<Bytes>,
    reconnection_time: Option<Duration>,
    /// The fields of the event the last dispatch produced.
    ready: Fields,
    /// Size of the last event gathered in `data_buf`.
    data_hint: usize,
    /// While `data` is `Data::One(Val::Block(s))`: `data_buf` holds a copy
    /// of `block[s]`, made while the line was searched (see
    /// `gather_data_line`), so a second line need not copy the first.
    mirror: bool,
    /// The last event dispatched had several `data` lines: the next one
    /// likely has too, so its first line is copied while it is searched.
    last_many: bool,
    /// A `data` line in the carry buffer that the input ended inside, after
    /// `gather_data_line` had copied its value so far into `data_buf`.
    resume: Option<Resume>,
    /// A `data` line that began in an earlier chunk and goes on into
    /// `data_buf`: where its value starts there, and the line's length so far.
    frag: Option<Fragment>,
    /// The inline event the last poll dispatched, for `poll_event` to hand
    /// out (see [`Staged`]).
    staged: Staged,
}

/// What the next input starts with, as far as the stream's edges go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// The start of the stream, where one BOM is to be dropped (spec:
    /// "UTF-8 decode").
    Bom,
    /// Nothing pending: lines, and the cursor says how far they were
    /// searched.
    Lines,
    /// The last input ended in a CR that ended a line: an LF that starts
    /// the next input belongs to that line ending (CRLF).
    Cr,
}

/// The decoder's lifecycle, one state for what were separate flags (the
/// BOM still pending, a CR at the end of the input, `finish` called, a
/// line over the limit while feeding, a failed stream), so that no
/// impossible combination can be written down.
///
/// ```text
///            finish              need_more (no line left)
///   Open ───────────▶ Finished ─────────▶ (block discarded)
///    │ admit: a line past the limit
///    ▼                 need_more               reset
///   Overflow ─────────────────────▶ Failed ──────────▶ Open(Bom)
/// ```
///
/// Any state but `Failed` goes to `Failed` when a limit is passed while
/// decoding ([`State::fail`]); `reset` goes back to `Open(Edge::Bom)` from
/// any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Input is accepted and decoded.
    Open(Edge),
    /// `finish` was called: no more input comes; what is buffered is
    /// decoded, then the unfinished block is discarded.
    Finished(Edge),
    /// An unterminated line passed the line limit while being fed: its
    /// bytes were not buffered, input is no longer accepted, the complete
    /// lines before it are decoded and then `err` is reported.
    /// `finished` records a later `finish` (for `is_finished`).
    Overflow { edge: Edge, err: DecodeError, finished: bool },
    /// The stream failed: `err` is returned by every poll until `reset`.
    Failed { err: DecodeError, finished: bool },
}

impl Life {
    /// What the next input starts with (`Lines` once failed: nothing is
    /// decoded any more).
    #[inline(always)]
    fn edge(self) -> Edge {
        match self {
            Life::Open(e) | Life::Finished(e) | Life::Overflow { edge: e, .. } => e,
            Life::Failed { .. } => Edge::Lines,
        }
    }

    /// Records what the next input starts with.
    #[inline(always)]
    fn set_edge(&mut self, to: Edge) {
        match self {
            Life::Open(e) | Life::Finished(e) | Life::Overflow { edge: e, .. } => *e = to,
            Life::Failed { .. } => {}
        }
    }

    /// The error, once the stream failed.
    #[inline(always)]
    fn failed(self) -> Option<DecodeError> {
        match self {
            Life::Failed { err, .. } => Some(err),
            _ => None,
        }
    }

    /// Whether `finish` was called.
    fn is_finished(self) -> bool {
        match self {
            Life::Open(_) => false,
            Life::Finished(_) => true,
            Life::Overflow { finished, .. } | Life::Failed { finished, .. } => finished,
        }
    }

    /// `finish` was called.
    fn finish(&mut self) {
        match self {
            Life::Open(e) => *self = Life::Finished(*e),
            Life::Finished(_) => {}
            Life::Overflow { finished, .. } | Life::Failed { finished, .. } => *finished = true,
        }
    }
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
/// - **Prompt**: after each feed, every event whose block has ended in the
///   bytes fed so far comes out of `poll_event`; none waits for more input.
/// - **Linear**: each byte is scanned a bounded number of times, however the
///   input is chunked (the search position is remembered across feeds).
/// - **Bounded**: memory stays within the [`DecoderConfig`] limits (a line
///   and the data gathered from it, together) plus one fed chunk; going past
///   a limit is a sticky [`DecodeError`].
/// - **Zero-copy**: single-line `data` fed with [`feed_bytes`](Self::feed_bytes)
///   is a slice of the fed chunk, unless the event is small enough (64 bytes
///   of fields) to be held inline in the event, which is cheaper still, or
///   the chunk is a short one (at most 768 bytes with what is carried) that
///   ends inside a line, which is copied like [`feed`](Self::feed)'s.
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
    buf_cur: Cursor,
    /// A chunk from `feed_bytes`, parsed in place. The logical input is
    /// `buf` followed by `ext`.
    ext: Bytes,
    ext_cur: Cursor,
    /// Length of the unterminated line at the end of the logical input, kept
    /// up to date by the feeds so an over-long line is refused before it is
    /// buffered.
    tail_len: usize,
    /// Whether `tail_len` is up to date (it is only kept while more than a
    /// line's worth of input is buffered). Never while `quiet`: the bytes
    /// fed then skip `admit` (see [`set_quiet`](Self::set_quiet)).
    tail_known: bool,
    /// An event lent by `poll_event_ref` whose block is still at the front
    /// of this input, to be consumed by the next call.
    pending: Option<(Input, usize)>,
    /// `poll_event` has nothing to do: the last poll found no line end left
    /// in the input it searched to its end, in `Life::Open(Edge::Lines)`,
    /// with no chunk held and no event lent, and only bytes that are not
    /// line ends were fed since (see [`feed`](Self::feed)). Any other feed,
    /// `finish` and `reset` clear it.
    quiet: bool,
    /// While `quiet`: how long `buf` may grow by appends alone, the line
    /// limit less the bytes of the line a fragment holds (`st.frag`: the
    /// line goes on in `buf`). Past it, a feed takes the full path and the
    /// poll that follows checks the whole line.
    quiet_room: usize,
    st: State,
}

/// Which input buffer a block is in.
#[derive(Debug, Clone, Copy)]
enum Input {
    Buf,
    Ext,
}

/// What the out-of-line part of [`Decoder::poll_event`] found: one byte,
/// returned in a register.
#[derive(Debug, Clone, Copy)]
enum Polled {
    /// Nothing to hand out (more input is needed, or the stream is over).
    Nothing,
    /// An inline event, in `State::staged`.
    Staged,
    /// An event whose block is at the front of this input.
    Event(Input),
    /// The stream failed (`Life::Failed`).
    Failed,
}

/// An event lent by [`Decoder::poll_event_ref`]: its fields, borrowed from
/// the decoder until its next `&mut` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type (`message` unless an `event` field set another).
    pub event_type: &'a str,
    /// The data: every `data` field of the block joined with LF.
    pub data: &'a str,
    /// The last event ID when the event fired.
    pub last_event_id: &'a str,
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> MessageEvent {
        MessageEvent::new(self.event_type, self.data, self.last_event_id)
    }
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
            .field("last_event_id", &self.last_event_id())
            .field("reconnection_time", &self.st.reconnection_time)
            .field("error", &self.st.life.failed())
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
            buf_cur: Cursor::default(),
            ext: Bytes::new(),
            ext_cur: Cursor::default(),
            tail_len: 0,
            tail_known: false,
            pending: None,
            quiet: false,
            quiet_room: 0,
            st: State {
                config,
                life: Life::Open(Edge::Bom),
                pos: 0,
                data: Data::Empty,
                event_type: None,
                pending_id: None,
                data_buf: BytesMut::new(),
                meta_buf: BytesMut::new(),
                last_id: LastId::new(),
                last_id_shared: None,
                reconnection_time: None,
                ready: Fields { total: 0, data: Data::Empty, event_type: None, id: None },
                data_hint: 0,
                mirror: false,
                last_many: false,
                resume: None,
                frag: None,
                staged: Staged::default(),
            },
        }
    }

    /// A decoder for a stream that resumes after `last_event_id`: events
    /// without an `id` field carry it, as they do in a reconnected
    /// `EventSource`.
    pub fn with_last_event_id(config: DecoderConfig, last_event_id: &str) -> Self {
        let mut d = Self::with_config(config);
        d.st.last_id.set(last_event_id);
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
        self.st.last_id.as_str()
    }

    /// The latest reconnection time a `retry` field set, if any. `retry`
    /// takes effect as soon as its line is parsed, even in a block that never
    /// dispatches.
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.st.reconnection_time
    }

    /// Bytes fed but not yet consumed by [`poll_event`](Self::poll_event).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() + self.ext.len() - self.pending.map_or(0, |(_, n)| n)
    }

    /// Appends bytes to the stream. Nothing is parsed until
    /// [`poll_event`](Self::poll_event).
    ///
    /// If the unterminated line at the end of the input would grow past
    /// [`DecoderConfig::max_line_len`], the excess is not buffered and the
    /// next `poll_event`, after the events before it, reports
    /// [`DecodeError::LineTooLong`]. Bytes fed after [`finish`](Self::finish)
    /// or after an error are ignored.
    #[inline(always)]
    pub fn feed(&mut self, bytes: &[u8]) {
        if let [b] = *bytes
            && self.feed_quiet_byte(b)
        {
            return;
        }
        if self.feeds_quietly(bytes.len()) {
            return self.append_quiet(bytes);
        }
        self.feed_more(bytes)
    }

    /// Whether `n` bytes (2 to `ZERO_COPY_MIN - 1`) fed now only need
    /// appending ([`append_quiet`](Self::append_quiet)): `quiet`, and the
    /// line within its limit after them.
    #[inline(always)]
    fn feeds_quietly(&self, n: usize) -> bool {
        self.quiet && n < ZERO_COPY_MIN && self.buf.len() + n <= self.quiet_room
    }

    /// [`append_quiet_byte`](Self::append_quiet_byte) for a few bytes: input
    /// that comes in pieces shorter than its lines (a slow connection, or a
    /// proxy's small writes) is appended, and while the pieces hold no line
    /// end the poll after each returns at once. Before, each piece took the
    /// poll's full round (0.63x sse-stream on 4 KiB JSON events in 16-byte
    /// chunks).
    #[inline(never)]
    fn append_quiet(&mut self, bytes: &[u8]) {
        debug_assert!(!self.tail_known, "the trailing line's length is not kept while quiet");
        let old = self.buf.len();
        self.buf.extend_from_slice(bytes);
        if scan::has_line_end(bytes) {
            // As for one byte: the search resumes at the first new byte.
            self.quiet = false;
            self.buf_cur.resume_at(old);
        }
    }

    /// Fast path for input that comes a byte at a time, between line ends:
    /// while `quiet`, the byte is appended and, unless it ends a line,
    /// marked searched, and the poll that follows returns at once. Inlined
    /// into the caller's loop, and small, so that it stays cheap whatever
    /// that loop looks like. Returns false when it does not apply.
    #[inline(always)]
    fn feed_quiet_byte(&mut self, b: u8) -> bool {
        if !self.quiet {
            return b == b'\n' && self.skip_lf_after_cr();
        }
        if self.buf.len() >= self.quiet_room {
            return false;
        }
        self.append_quiet_byte(b);
        true
    }

    /// The append of [`feed_quiet_byte`](Self::feed_quiet_byte), once it
    /// applies (`quiet`, and the line is within its limit).
    #[inline(always)]
    fn append_quiet_byte(&mut self, b: u8) {
        debug_assert!(!self.tail_known, "the trailing line's length is not kept while quiet");
        let old = self.buf.len();
        self.buf.put_u8(b);
        if b == b'\n' || b == b'\r' {
            // The bytes fed while quiet are not line ends (and those before
            // were searched): the search resumes at this one. (Nothing is
            // recorded per byte: the cursor catches up here, or in `wake`.)
            self.quiet = false;
            self.buf_cur.resume_at(old);
        }
    }

    /// Leaves `quiet`: the bytes fed while quiet hold no line end, so the
    /// search of `buf` catches up to its end. (Their UTF-8 check is left to
    /// the fields they belong to.)
    #[inline]
    fn wake(&mut self) {
        if self.quiet {
            self.quiet = false;
            self.buf_cur.searched_to(self.buf.len());
        }
    }

    /// An LF fed on its own right after a CR that ended the input (a CRLF
    /// cut between its bytes, as byte-at-a-time input always is): that CR
    /// ended its line, and everything before it was decoded, so the LF is
    /// only dropped (spec: a CRLF pair is one line ending) and the decoder
    /// is at rest again, without the poll that would otherwise settle it.
    /// Returns false when it does not apply. (With a chunk held, the CR
    /// may not be the last byte fed: the chunk's bytes come after it.)
    #[inline(never)]
    fn skip_lf_after_cr(&mut self) -> bool {
        if self.st.life != Life::Open(Edge::Cr) || !self.ext.is_empty() {
            return false;
        }
        self.st.life.set_edge(Edge::Lines);
        self.set_quiet(self.at_rest());
        true
    }

    /// A `data` line that went on past the last chunk goes on into the
    /// data buffer straight from the chunk just taken (shorter than
    /// `CONTINUE_IN_CHUNK_MAX`), as the poll's first step would. A chunk the
    /// line does not end in is then used up, and the poll has nothing left
    /// to do (`quiet`): with chunks much shorter than the line, the poll's
    /// bookkeeping cost more than the copy (1.04x to 1.10x on 4 KiB JSON
    /// events and long JSON lines at 64- and 256-byte chunks). At 1 KiB
    /// chunks, which lines end in more often, it measured 0.94x to 0.97x.
    #[inline(never)]
    fn continue_in_chunk(&mut self) {
        let done = continue_fragment(&mut self.ext, &mut self.ext_cur, &mut self.st);
        if !done && self.ext.is_empty() && !self.st.failed() {
            self.set_quiet(self.at_rest());
        }
    }

    /// When `buf` ends in an unterminated `data` line that goes on in a
    /// chunk, makes it a fragment, as at the end of a chunk: the values of
    /// the block's complete lines are copied out and the line's value goes
    /// on in the data buffer, from `buf` now and from the chunk next. Joined
    /// with the chunk in `buf` instead, the line, and each line after it,
    /// would be copied twice and carried from chunk to chunk (a short chunk
    /// copied into `buf` started that). Returns false, with nothing done,
    /// for other lines.
    #[inline(never)]
    fn fragment_from_buf(&mut self) -> bool {
        let start = self.st.pos;
        let line = &self.buf[start..];
        if !line.starts_with(b"data:") || line.len() < 6 {
            return false;
        }
        if let Some(r) = self.st.resume {
            let value_start = start + 6 - usize::from(line[5] != b' ');
            if value_start + r.copied != self.buf.len() {
                return false;
            }
            self.st.resume = None;
            self.st.frag = Some(Fragment {
                start: r.held + r.sep,
                line_len: self.buf.len() - start,
                first: r.sep == 0,
                valid: r.valid,
            });
        }
        compact(&mut self.buf, &mut self.buf_cur, &mut self.st);
        if start_fragment(&mut self.buf, &mut self.buf_cur, &mut self.st) {
            return true;
        }
        // Not taken: the line stays in `buf`, now at its start, and is
        // joined as before.
        false
    }

    /// [`feed`](Self::feed) but for a byte while `quiet`.
    #[inline(never)]
    fn feed_more(&mut self, bytes: &[u8]) {
        self.wake();
        self.settle();
        // Fast path for the few bytes a slow connection delivers at a time,
        // while less than a line's worth is buffered.
        if bytes.len() <= 4
            && self.ext.is_empty()
            && self.st.accepts_input()
            && self.buf.len() + bytes.len() <= self.st.config.max_line_len
        {
            self.tail_known = false;
            for &b in bytes {
                self.buf.put_u8(b);
            }
            return;
        }
        self.feed_slow(bytes)
    }

    #[inline(never)]
    fn feed_slow(&mut self, bytes: &[u8]) {
        let Some(keep) = self.admit(bytes) else { return };
        self.ext_into_buf();
        self.buf.extend_from_slice(&bytes[..keep]);
    }

    /// Appends a chunk to the stream, without copying it when the decoder
    /// holds no other unparsed chunk (the usual case when every feed is
    /// followed by draining [`poll_event`](Self::poll_event)). Events that
    /// arrive whole in one chunk are then slices of it. Otherwise, and for
    /// chunks of a few hundred bytes, which usually end inside a block and
    /// are cheaper to copy than to keep, as [`feed`](Self::feed).
    #[inline(always)]
    pub fn feed_bytes(&mut self, bytes: Bytes) {
        if let [b] = *bytes {
            if self.quiet && self.buf.len() < self.quiet_room {
                // The chunk is let go before the byte is stored: its
                // reference count is an atomic update, which waits for the
                // stores before it to complete; after the last byte's
                // stores, those of this one would add to that wait.
                drop(bytes);
                self.append_quiet_byte(b);
                return;
            }
            if self.feed_quiet_byte(b) {
                return;
            }
        }
        if self.feeds_quietly(bytes.len()) {
            return self.append_quiet(&bytes);
        }
        if bytes.len() >= ZERO_COPY_MIN && self.ext.is_empty() {
            // The usual chunk, moved into place here in the caller's loop
            // rather than passed on: a call taking it by value copied it
            // with wider loads than the stores that had just written it,
            // which waited for them.
            self.ext = bytes;
            return self.took_chunk();
        }
        self.feed_bytes_more(bytes)
    }

    /// The bookkeeping of [`feed_bytes`](Self::feed_bytes) for a chunk just
    /// moved into `ext` (no chunk was held, so a lent event's block, if
    /// any, is in `buf`).
    #[inline(never)]
    fn took_chunk(&mut self) {
        self.wake();
        self.settle();
        self.ext_cur.reset();
        // As in `admit`: while less than a line's worth is buffered, no
        // line can be too long. (`ext` is left in place: moved out, it would
        // be loaded at other widths than it was just stored.)
        if self.st.accepts_input() && self.buf.len() + self.ext.len() <= self.st.config.max_line_len {
            self.tail_known = false;
            if self.st.frag.is_some() && self.buf.is_empty() && self.ext.len() < CONTINUE_IN_CHUNK_MAX {
                self.continue_in_chunk();
            } else if self.buf.len() + self.ext.len() <= CARRY_MAX
                && !matches!(self.ext.last(), Some(b'\n' | b'\r'))
                && self.st.frag.is_none()
                && self.st.resume.is_none()
            {
                // A short chunk that ends inside a line, with little
                // carried: copied, as `feed` does (see `CARRY_MAX`).
                let chunk = core::mem::take(&mut self.ext);
                self.buf.extend_from_slice(&chunk);
            }
            return;
        }
        let mut chunk = core::mem::take(&mut self.ext);
        let Some(keep) = self.admit(&chunk) else { return };
        chunk.truncate(keep);
        if chunk.len() >= ZERO_COPY_MIN {
            // `buf` may still hold an unterminated line: `poll_event` joins
            // it with the start of this chunk, and parses the rest in place.
            self.ext = chunk;
        } else {
            // A few bytes are cheaper to copy than to keep.
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// [`feed_bytes`](Self::feed_bytes) but for a byte while `quiet`.
    ///
    /// One call, not two: the caller has just stored the chunk's fields one
    /// word at a time, and passing it on to another call meant copying it
    /// at once with wider loads, which waited for those stores. Here it is
    /// only moved into `ext` after the bookkeeping, by when they are done.
    #[inline(never)]
    fn feed_bytes_more(&mut self, mut bytes: Bytes) {
        if bytes.len() <= 4 {
            // A few bytes are cheaper to copy than to keep (the fast path of
            // a slow connection, as in `feed`).
            return self.feed(&bytes);
        }
        self.wake();
        self.settle();
        let Some(keep) = self.admit(&bytes) else { return };
        bytes.truncate(keep);
        if self.ext.is_empty() && bytes.len() >= ZERO_COPY_MIN {
            // `buf` may still hold an unterminated line: `poll_event` joins
            // it with the start of this chunk, and parses the rest in place.
            self.ext = bytes;
            self.ext_cur.reset();
        } else if self.ext.is_empty() {
            // A few bytes are cheaper to copy than to keep.
            self.buf.extend_from_slice(&bytes);
        } else {
            self.ext_into_buf();
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Moves the unparsed rest of `ext` to the end of `buf` (which keeps the
    /// logical order, `buf` then `ext`). A block never spans the two: `ext`
    /// only holds one while `buf` is empty.
    fn ext_into_buf(&mut self) {
        if self.ext.is_empty() {
            return;
        }
        if self.buf.is_empty() {
            // The bytes keep their position, and so does what is known of them.
            self.buf_cur = self.ext_cur;
        }
        self.buf.extend_from_slice(&self.ext);
        self.ext = Bytes::new();
        self.ext_cur.reset();
    }

    /// Bookkeeping shared by the feeds: updates the length of the trailing
    /// unterminated line and returns how many bytes of `bytes` to keep, or
    /// `None` to drop them all.
    fn admit(&mut self, bytes: &[u8]) -> Option<usize> {
        if !self.st.accepts_input() {
            return None;
        }
        let max = self.st.config.max_line_len;
        // While less than a line's worth is buffered, no line can be too
        // long: skip the bookkeeping (a backward search over every chunk).
        if self.buf.len() + self.ext.len() + bytes.len() <= max {
            self.tail_known = false;
            return Some(bytes.len());
        }
        if !self.tail_known {
            self.tail_len = self.buffered_tail(max);
            self.tail_known = true;
        }
        let last_eol = if bytes.len() < 8 {
            bytes.iter().rposition(|&b| b == b'\n' || b == b'\r')
        } else {
            memchr::memrchr2(b'\n', b'\r', bytes)
        };
        match last_eol {
            Some(pos) => {
                let tail = bytes.len() - pos - 1;
                if tail > max {
                    // The chunk ends in an over-long line: keep what precedes
                    // it so the events there are still delivered.
                    self.st.overflow(DecodeError::LineTooLong { len: tail, max });
                    self.tail_len = 0;
                    return Some(pos + 1);
                }
                self.tail_len = tail;
            }
            None => {
                let tail = self.tail_len.saturating_add(bytes.len());
                if tail > max {
                    self.st.overflow(DecodeError::LineTooLong { len: tail, max });
                    return None;
                }
                self.tail_len = tail;
            }
        }
        Some(bytes.len())
    }

    /// Length of the unterminated line at the end of what is buffered,
    /// searching back at most `limit + 1` bytes (all that matters is whether
    /// it exceeds `limit`).
    fn buffered_tail(&self, limit: usize) -> usize {
        let mut tail = 0;
        for part in [&self.ext[..], &self.buf[..]] {
            let window = &part[part.len().saturating_sub(limit + 1 - tail.min(limit + 1))..];
            if let Some(p) = memchr::memrchr2(b'\n', b'\r', window) {
                return tail + window.len() - p - 1;
            }
            tail += window.len();
            if window.len() < part.len() || tail > limit {
                return tail;
            }
        }
        tail
    }

    /// Marks the end of the stream. Events already complete are still
    /// returned by [`poll_event`](Self::poll_event); an unterminated line and
    /// an undispatched block are discarded (spec: "Once the end of the file is
    /// reached, any pending data must be discarded"), so an `id` in them never
    /// becomes the last event ID.
    pub fn finish(&mut self) {
        self.wake();
        self.st.life.finish();
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.st.life.is_finished()
    }

    /// Starts a new stream, for example the body of a reconnection: drops
    /// buffered input, the block being built, the end-of-stream mark and any
    /// error, and expects a BOM again. Keeps the last event ID (events of the
    /// new stream carry it until an `id` field changes it) and the
    /// reconnection time.
    pub fn reset(&mut self) {
        self.clear_input();
        let st = &mut self.st;
        st.life = Life::Open(Edge::Bom);
        st.data_hint = 0;
        st.discard_block();
    }

    fn clear_input(&mut self) {
        self.quiet = false;
        self.pending = None;
        self.buf.clear();
        self.buf_cur.reset();
        self.ext = Bytes::new();
        self.ext_cur.reset();
        self.tail_len = 0;
        self.tail_known = false;
    }

    /// Parses buffered input and returns the next dispatched event.
    ///
    /// `Ok(None)` means more input is needed (or, after
    /// [`finish`](Self::finish), that the stream is over); incomplete input is
    /// never an error. Errors are sticky.
    #[inline(always)]
    pub fn poll_event(&mut self) -> Result<Option<MessageEvent>, DecodeError> {
        if self.quiet {
            return Ok(None);
        }
        // Inline events, the most common, are built here, in the caller's
        // code, from what the poll staged (see `Staged`); the others come
        // out of a function of their own.
        match self.poll_event_more() {
            Polled::Staged => Ok(Some(MessageEvent::from_staged(&self.st.staged))),
            Polled::Event(input) => {
                let event = self.finish_event(input);
                self.rest_if_drained();
                Ok(Some(event))
            }
            Polled::Nothing => Ok(None),
            Polled::Failed => Err(self.failure()),
        }
    }

    /// [`poll_event`](Self::poll_event) when not `quiet`.
    #[inline(never)]
    fn poll_event_more(&mut self) -> Polled {
        self.settle();
        if self.nothing_new() {
            return Polled::Nothing;
        }
        match self.poll_fields() {
            Some(Input::Buf) if self.st.stage_inline(&mut self.buf, &mut self.buf_cur) => {
                self.rest_if_drained();
                Polled::Staged
            }
            Some(Input::Ext) if self.st.stage_inline(&mut self.ext, &mut self.ext_cur) => {
                self.rest_if_drained();
                Polled::Staged
            }
            Some(input) => Polled::Event(input),
            None if self.st.life.failed().is_some() => Polled::Failed,
            None => {
                self.set_quiet(self.at_rest());
                Polled::Nothing
            }
        }
    }

    /// Hands out the event the last poll dispatched and did not stage.
    #[inline(never)]
    fn finish_event(&mut self, input: Input) -> MessageEvent {
        match input {
            Input::Buf => self.st.finish_owned(&mut self.buf, &mut self.buf_cur),
            Input::Ext => self.st.finish_owned(&mut self.ext, &mut self.ext_cur),
        }
    }

    /// After an event is handed out: when it was the last of the input
    /// (a chunk that held one block, as a server that flushes each event
    /// sends them), the decoder is at rest at once, and the poll that
    /// follows returns without a call of its own (see `quiet`).
    #[inline(always)]
    fn rest_if_drained(&mut self) {
        if self.ext.is_empty() && self.buf.is_empty() {
            self.set_quiet(self.at_rest());
        }
    }

    /// The error the stream failed with, once its input is let go.
    #[cold]
    #[inline(never)]
    fn failure(&mut self) -> DecodeError {
        let err = self.st.life.failed().expect("a failed stream");
        self.release(err)
    }

    /// Like [`poll_event`](Self::poll_event), but lends the event's fields
    /// instead of handing out an owned event: no reference count is touched
    /// and nothing is copied or allocated, even for events that span chunks
    /// or have several `data` lines. The fields stay valid until the next
    /// call that takes `&mut self`. The fastest way to decode when events
    /// are processed on the spot.
    ///
    /// ```
    /// let mut decoder = sse_proto::Decoder::new();
    /// decoder.feed(b"event: tick\ndata: 1\ndata: 2\n\n");
    /// let event = decoder.poll_event_ref()?.expect("an event");
    /// assert_eq!((event.event_type, event.data, event.last_event_id), ("tick", "1\n2", ""));
    /// # Ok::<(), sse_proto::DecodeError>(())
    /// ```
    #[inline(always)]
    pub fn poll_event_ref(&mut self) -> Result<Option<EventRef<'_>>, DecodeError> {
        if self.quiet {
            return Ok(None);
        }
        self.poll_event_ref_more()
    }

    /// [`poll_event_ref`](Self::poll_event_ref) when not `quiet`.
    #[inline(never)]
    fn poll_event_ref_more(&mut self) -> Result<Option<EventRef<'_>>, DecodeError> {
        self.settle();
        if self.nothing_new() {
            return Ok(None);
        }
        self.poll_lent()
    }

    #[inline(always)]
    fn poll_lent(&mut self) -> Result<Option<EventRef<'_>>, DecodeError> {
        let Some(input) = self.poll_fields() else {
            return match self.st.life.failed() {
                Some(e) => Err(self.release(e)),
                None => {
                    self.set_quiet(self.at_rest());
                    Ok(None)
                }
            };
        };
        let f = self.st.ready;
        // The block is consumed by the next `settle`, once the borrow ends.
        self.pending = Some((input, f.total));
        let block: &[u8] = match input {
            Input::Buf => &self.buf,
            Input::Ext => &self.ext,
        };
        let st = &self.st;
        let data = match f.data {
            Data::One(v) => st.lend(block, v, true),
            // SAFETY: at dispatch `data_buf` holds validated values joined
            // with LF (see `Val`).
            #[allow(unsafe_code)]
            Data::Many => unsafe { utf8_unchecked(&st.data_buf) },
            Data::Empty => "",
        };
        let event_type = match f.event_type {
            Some(v) if !matches!(v, Val::Block(s) | Val::Owned(s) if s.len() == 0) => {
                st.lend(block, v, false)
            }
            _ => "message",
        };
        // An id this block set is the last event ID now: it is lent from the
        // block, which was just read, rather than from the copy `dispatch`
        // just wrote (loading that pointer and length back at once waits for
        // the narrower stores that wrote them).
        let last_event_id = match f.id {
            Some(v) => st.lend(block, v, false),
            None => st.last_id.as_str(),
        };
        Ok(Some(EventRef { event_type, data, last_event_id }))
    }

    /// The stream failed: drops all buffered input and its memory.
    #[cold]
    fn release(&mut self, err: DecodeError) -> DecodeError {
        self.clear_input();
        self.buf = BytesMut::new();
        err
    }

    /// Consumes the block of an event lent by `poll_event_ref`.
    #[inline(always)]
    fn settle(&mut self) {
        if self.pending.is_some() {
            self.settle_pending();
        }
    }

    // Out of line: `feed` and `poll_event` check for a lent event on every
    // call, and a byte-at-a-time caller should not pay for the code.
    #[inline(never)]
    fn settle_pending(&mut self) {
        if let Some((input, total)) = self.pending.take() {
            match input {
                Input::Buf => {
                    self.buf.advance(total);
                    self.buf_cur.consumed(total);
                }
                Input::Ext => {
                    self.ext.advance(total);
                    self.ext_cur.consumed(total);
                }
            }
            self.st.data_buf.clear();
            self.st.meta_buf.clear();
        }
    }

    /// Fast path for input arriving a few bytes at a time: true when only a
    /// few unsearched bytes were added and none ends a line, so there is
    /// nothing to do.
    #[inline]
    fn nothing_new(&mut self) -> bool {
        if self.ext.is_empty()
            && self.buf_cur.mask == 0
            && (self.st.is_plain() || self.lf_after_cr())
            && self.st.frag.is_none_or(|f| f.line_len + self.buf.len() <= self.st.config.max_line_len)
        {
            let from = self.buf_cur.scan + self.buf_cur.mask_len;
            if let Some(new) = self.buf.get(from..)
                && new.len() < 8
                && !new.iter().any(|&b| b == b'\n' || b == b'\r')
            {
                self.buf_cur.scan = self.buf.len();
                self.buf_cur.mask_len = 0;
                self.set_quiet(self.st.is_plain());
                return true;
            }
        }
        false
    }

    /// Enters `quiet` when `rest`, else leaves it. Bytes fed while quiet
    /// are appended without `admit`, so entering it forgets the length of
    /// the trailing line: kept, it went stale (a line end fed while quiet
    /// ended that line) and was added to the next chunk's, refusing a line
    /// within the limit. It also sets how far appends may go (`quiet_room`).
    #[inline(always)]
    fn set_quiet(&mut self, rest: bool) {
        self.quiet = rest;
        self.tail_known &= !rest;
        self.quiet_room = self.line_room();
    }

    /// How long `buf` may be with its last line within the line limit, as
    /// far as the parts of that line outside `buf` go: a `data` line
    /// continued as a fragment holds its first bytes in the data buffer
    /// (`st.frag`). Measured against `buf` alone, such a line took appends
    /// past the limit, and its error waited for the next feed (as it did
    /// when [`nothing_new`](Self::nothing_new) let the poll skip it).
    #[inline(always)]
    fn line_room(&self) -> usize {
        self.st.config.max_line_len.saturating_sub(self.st.frag.map_or(0, |f| f.line_len))
    }

    /// Whether a poll that found nothing left the decoder so that the next
    /// can return at once until more than a byte that is not a line end is
    /// fed (see `quiet`).
    #[inline]
    fn at_rest(&self) -> bool {
        self.st.is_plain()
            && self.ext.is_empty()
            && self.pending.is_none()
            && self.buf_cur.mask == 0
            && self.buf_cur.scan + self.buf_cur.mask_len >= self.buf.len()
    }

    /// For [`nothing_new`](Self::nothing_new): the byte after a CR that
    /// ended the input, fed on its own, is usually the LF of a CRLF, which
    /// needs no parsing. Settles it; returns whether the decoder is then
    /// plain again.
    #[cold]
    fn lf_after_cr(&mut self) -> bool {
        self.st.life == Life::Open(Edge::Cr)
            && settle_cr(&self.buf, &mut self.buf_cur, &mut self.st)
            && self.buf_cur.mask == 0
    }

    /// Parses until an event is dispatched: returns the input its block is
    /// at the front of (its fields are in `st.ready`), or `None` when more
    /// input is needed or the stream failed (then `st.life` is `Failed`).
    #[inline(always)]
    fn poll_fields(&mut self) -> Option<Input> {
        if self.st.failed() {
            return None;
        }
        if self.st.life.edge() == Edge::Bom && !self.strip_bom() {
            self.need_more();
            return None;
        }
        loop {
            // A `data` line that began in an earlier chunk is continued
            // straight into the data buffer.
            if self.st.frag.is_some() {
                // The line goes on in `buf` first, then in `ext`: when `buf`
                // runs out first (a short chunk was copied there), `ext` may
                // hold the rest of the line and more complete lines.
                let mut done = false;
                if !self.buf.is_empty() {
                    done = continue_fragment(&mut self.buf, &mut self.buf_cur, &mut self.st);
                }
                if !done && !self.st.failed() && self.buf.is_empty() {
                    done = continue_fragment(&mut self.ext, &mut self.ext_cur, &mut self.st);
                }
                if !done {
                    if !self.st.failed() && self.buf.is_empty() && self.ext.is_empty() {
                        self.need_more();
                    }
                    return None;
                }
            }
            // Lines wholly inside `buf` first (usually empty when chunks
            // come with `feed_bytes`: then there is nothing to search).
            if !self.buf.is_empty() && parse_lines(&mut self.buf, &mut self.buf_cur, &mut self.st) {
                return Some(Input::Buf);
            }
            if self.st.failed() {
                return None;
            }
            if self.ext.is_empty() {
                self.need_more();
                return None;
            }
            if !self.buf.is_empty() {
                if self.st.pos == self.buf.len() {
                    // `buf` holds only complete lines of the block being
                    // built: copy their values out, so that the block can go
                    // on in `ext` without copying its lines there.
                    compact(&mut self.buf, &mut self.buf_cur, &mut self.st);
                } else {
                    if self.fragment_from_buf() {
                        // A `data` line: it goes on in the data buffer.
                        continue;
                    }
                    // `buf` ends in an unterminated line that continues in
                    // `ext`: move the rest of that line, with its terminator,
                    // over so the line is contiguous, and parse it next turn.
                    match find_eol(&self.ext) {
                        Some(j) => {
                            self.buf.extend_from_slice(&self.ext[..=j]);
                            self.ext.advance(j + 1);
                            self.ext_cur.consumed(j + 1);
                        }
                        None => {
                            self.buf.extend_from_slice(&self.ext);
                            self.ext = Bytes::new();
                            self.ext_cur.reset();
                        }
                    }
                    continue;
                }
            }
            // `buf` is empty: parse the chunk in place.
            if parse_lines(&mut self.ext, &mut self.ext_cur, &mut self.st) {
                return Some(Input::Ext);
            }
            if self.st.failed() {
                return None;
            }
            // The chunk ends inside a block: copy the block's values out and
            // carry only the unterminated line (the chunk itself is not kept).
            // A `data` line goes on in the data buffer rather than being
            // carried, so its bytes are copied once, not twice.
            compact(&mut self.ext, &mut self.ext_cur, &mut self.st);
            if !start_fragment(&mut self.ext, &mut self.ext_cur, &mut self.st) {
                self.ext_into_buf();
            }
            self.need_more();
            return None;
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
            self.st.life.set_edge(Edge::Lines);
        } else if n == BOM.len() {
            let from_buf = self.buf.len().min(BOM.len());
            self.buf.advance(from_buf);
            self.buf_cur.reset();
            self.ext.advance(BOM.len() - from_buf);
            self.ext_cur.reset();
            self.st.life.set_edge(Edge::Lines);
        }
        self.st.life.edge() != Edge::Bom
    }

    /// Called when no complete line is left: ends the stream if it is
    /// finished, reports a deferred overflow, or asks for more bytes.
    fn need_more(&mut self) {
        if let Life::Overflow { err, .. } = self.st.life {
            // The stream is over: give the memory back, not just the bytes.
            self.clear_input();
            self.buf = BytesMut::new();
            self.st.fail(err);
            return;
        }
        if let Life::Finished(_) = self.st.life {
            // Spec: at end of file, pending data is discarded.
            self.clear_input();
            self.st.discard_block();
        }
    }
}

impl State {
    /// No error, end of stream, pending BOM or pending CRLF half: nothing
    /// but lines to look for.
    #[inline]
    fn is_plain(&self) -> bool {
        self.life == Life::Open(Edge::Lines)
    }

    /// Input is still buffered: no error, no line past the limit and no end
    /// of stream.
    #[inline]
    fn accepts_input(&self) -> bool {
        matches!(self.life, Life::Open(_))
    }

    /// Whether the stream failed (the error is sticky).
    #[inline(always)]
    fn failed(&self) -> bool {
        matches!(self.life, Life::Failed { .. })
    }

    /// An unterminated line passed the limit while being fed: no more input
    /// is taken, and the error is reported after the lines before it.
    fn overflow(&mut self, err: DecodeError) {
        if let Life::Open(edge) = self.life {
            self.life = Life::Overflow { edge, err, finished: false };
        }
    }

    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.life = Life::Failed { err, finished: self.life.is_finished() };
        self.discard_block();
        self.data_hint = 0;
        // The stream is over: give the memory back, not just the bytes.
        self.data_buf = BytesMut::new();
        self.meta_buf = BytesMut::new();
        err
    }

    /// Forgets the block being built (the caller drops its bytes); its `id`
    /// never reaches the last event ID.
    fn discard_block(&mut self) {
        self.frag = None;
        self.resume = None;
        self.last_many = false;
        self.pos = 0;
        self.data = Data::Empty;
        self.event_type = None;
        self.pending_id = None;
        self.data_buf.clear();
        self.meta_buf.clear();
    }

    /// How much room to reserve for data known to need `need` bytes: as
    /// much as the last event gathered and an eighth more (events of a
    /// stream tend to be alike, and one a little larger than the last
    /// would regrow the buffer, copying all of it), within the data limit.
    /// Capped at 4 times `need` before, a line of 800 KB continued from
    /// 16 KiB chunks grew from 64 KiB by doubling, each step a copy: 1.5x
    /// to 1.9x on such events (0.94x sse-stream at 1 KiB chunks before).
    /// An event still never holds much more memory than it uses: one whose
    /// buffer is over `PIN_RATIO` times its size is moved into a buffer of
    /// its own when dispatched (`State::owned_event`;
    /// `kept_events_pin_little_after_a_larger_one`).
    #[inline]
    fn hinted(&self, need: usize) -> usize {
        need.max(self.data_hint.saturating_add(self.data_hint / 8).min(self.config.max_data_len))
    }

    /// Checks the data limit for a buffer that would hold `len` bytes.
    #[inline]
    fn check_data_len(&mut self, len: usize) -> bool {
        let max = self.config.max_data_len;
        if len > max {
            self.fail(DecodeError::DataTooLong { len, max });
            return false;
        }
        true
    }
}

/// `feed_bytes` chunks shorter than this are copied: keeping them would cost
/// more (a reference count, a join with the carried line) than copying.
const ZERO_COPY_MIN: usize = 32;

/// A `feed_bytes` chunk that ends inside a line is copied into the carry
/// buffer, as `feed` does, when that buffer then holds at most this many
/// bytes and no `data` line is being continued (`frag`, `resume`). (A chunk
/// that ends with a line end, as one per event from a server that flushes
/// each, is kept: its events are slices of it.) Kept instead, such a chunk
/// ends inside a block that the next one finishes: the block's values are
/// copied out, its unterminated line is carried and joined with the next
/// chunk, which costs more than copying the chunk.
/// Copied, at 64- and 256-byte chunks: 1.13x to 1.81x on small events
/// (`hub`, `anthropic`, `llm-intl`, `small`, `openai`, `llm`), 1.05x to
/// 1.12x on `crlf` and `emoji`; 0.94x to 1.0x on events of long lines,
/// which are continued from the chunk as before. Longer chunks (1 KiB
/// and up) are always kept.
const CARRY_MAX: usize = 768;

/// Chunks shorter than this continue a `data` line as they are taken (see
/// `Decoder::continue_in_chunk`).
const CONTINUE_IN_CHUNK_MAX: usize = 512;

/// Position of the first CR or LF (for the one-off search that joins a
/// carried line with the next chunk).
#[inline]
fn find_eol(hay: &[u8]) -> Option<usize> {
    if hay.len() < 8 {
        return hay.iter().position(|&b| b == b'\n' || b == b'\r');
    }
    memchr::memchr2(b'\n', b'\r', hay)
}

#[cfg(test)]
mod tests {
    use super::steps::{has_nul, parse_retry};
    use super::*;
    use alloc::borrow::ToOwned;
    use alloc::format;
    use alloc::vec::Vec;

    #[test]
    fn has_nul_matches_its_definition() {
        // A NUL at every place of ids up to 80 bytes, among bytes that a
        // word-at-a-time test could mistake for it (0x01, 0x80, 0xFF), and
        // none; followed by input that holds a NUL right after the id, or
        // by too little input for a whole word.
        for len in 0..80 {
            for fill in [b'a', 0x01, 0x80, 0xFF, 0x81] {
                for after in [&b"\n\0\0\0\0\0\0\0\0"[..], b"\0", b""] {
                    let mut input = alloc::vec![b'x'; 3];
                    input.resize(3 + len, fill);
                    input.extend_from_slice(after);
                    assert!(!has_nul(&input, 3, 3 + len), "{len} {fill:#x} {after:?}");
                    for at in 3..3 + len {
                        input[at] = 0;
                        assert!(has_nul(&input, 3, 3 + len), "{len} {fill:#x} at {at} {after:?}");
                        input[at] = fill;
                    }
                }
            }
        }
    }

    #[test]
    fn short_pieces_between_line_ends_are_only_appended() {
        // Pieces of 2 to 31 bytes (the quiet append), through `feed` and
        // `feed_bytes` in turn, with CR, LF and CRLF endings cut anywhere:
        // the events of the whole input, each as soon as its block ends.
        let value = "ß日本 JSON-ish text, ".repeat(40);
        let input =
            format!("data: {value}\r\ndata: b\r\n\r\n: c\revent: e\rdata: {value}\r\rid: 3\ndata: z\n\n");
        let whole = {
            let mut d = Decoder::new();
            d.feed(input.as_bytes());
            d.finish();
            let mut v = Vec::new();
            while let Some(ev) = d.poll_event().unwrap() {
                v.push(ev);
            }
            v
        };
        assert_eq!(whole.len(), 3);
        for size in [2, 3, 7, 16, 17, 31] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for (k, c) in input.as_bytes().chunks(size).enumerate() {
                if k % 2 == 0 {
                    d.feed(c);
                } else {
                    d.feed_bytes(Bytes::copy_from_slice(c));
                }
                while let Some(ev) = d.poll_event().unwrap() {
                    got.push(ev);
                }
            }
            // Each block ends with its last byte fed: nothing waits for
            // `finish`.
            assert_eq!(got, whole, "{size}");
        }
    }

    #[test]
    fn a_data_line_begun_in_the_carry_buffer_goes_on_as_a_fragment() {
        // Pieces too short to keep (copied into `buf`) start data lines,
        // first and later ones of a block, that kept chunks continue:
        // `fragment_from_buf` makes them fragments. The events are those of
        // the whole input, and the line limit holds across the two.
        let long = "é日本 {\"k\": 12} ".repeat(60);
        let input = format!(
            "data: {long}\ndata: {long}\r\nevent: e\ndata: {long}\n\n: c\ndata: x\ndata: {long}\n\nid: 5\ndata: {long}\n\n"
        );
        let whole = {
            let mut d = Decoder::new();
            d.feed(input.as_bytes());
            let mut v = Vec::new();
            while let Some(ev) = d.poll_event().unwrap() {
                v.push(ev);
            }
            v
        };
        assert_eq!(whole.len(), 3);
        for pattern in [&[5usize, 20, 100, 7, 300][..], &[31, 33], &[2, 64, 3, 1000], &[17, 250]] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            let mut rest = input.as_bytes();
            for &n in pattern.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(n.min(rest.len()));
                rest = tail;
                d.feed_bytes(Bytes::copy_from_slice(piece));
                while let Some(ev) = d.poll_event().unwrap() {
                    got.push(ev);
                }
            }
            assert_eq!(got, whole, "{pattern:?}");
        }
        // A second line that `gather` began copying in `buf` (its piece
        // ended the first line), then continued by a kept chunk: the copy
        // so far becomes the fragment.
        let mut d = Decoder::new();
        d.feed_bytes(Bytes::from(format!("data: {}", "a".repeat(40))));
        assert!(d.poll_event().unwrap().is_none());
        d.feed_bytes(Bytes::from_static("aa\ndata: bé".as_bytes()));
        assert!(d.poll_event().unwrap().is_none());
        d.feed_bytes(Bytes::from(format!("{}\n\n", "b".repeat(40))));
        let ev = d.poll_event().unwrap().unwrap();
        assert_eq!(ev.data(), format!("{}\nbé{}", "a".repeat(42), "b".repeat(40)));
        let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(500));
        let over = format!("data: {}\n\n", "y".repeat(2000));
        let mut failed = false;
        for (k, piece) in over.as_bytes().chunks(100).enumerate() {
            let piece = if k % 2 == 0 { &piece[..piece.len().min(10)] } else { piece };
            d.feed_bytes(Bytes::copy_from_slice(piece));
            failed |= matches!(d.poll_event(), Err(DecodeError::LineTooLong { max: 500, .. }));
        }
        assert!(failed);
    }

    #[test]
    fn a_data_line_goes_on_as_short_chunks_are_taken() {
        // Chunks shorter than `CONTINUE_IN_CHUNK_MAX`, cut inside characters
        // too, continue the line as they are taken: the same event as fed
        // whole, and none before its block ends.
        let value = "日本語のテキスト, ASCII too. ".repeat(150);
        let input = format!("event: t\ndata: {value}\ndata: second\n\nid: 9\ndata: x\n\n");
        for size in [33, 100, 257, CONTINUE_IN_CHUNK_MAX - 1] {
            let mut d = Decoder::new();
            let mut events = Vec::new();
            let mut fed = 0;
            for c in input.as_bytes().chunks(size) {
                d.feed_bytes(Bytes::copy_from_slice(c));
                fed += c.len();
                while let Some(ev) = d.poll_event().unwrap() {
                    events.push((fed, ev));
                }
            }
            let end = input.find("\n\n").unwrap() + 2;
            assert_eq!(events.len(), 2, "{size}");
            let chunk_end = (end.div_ceil(size) * size).min(input.len());
            assert_eq!(events[0].0, chunk_end, "{size}: the event as soon as its block ends");
            assert_eq!(events[0].1.data(), format!("{value}\nsecond"));
            assert_eq!(events[0].1.event_type(), "t");
            assert_eq!((events[1].1.data(), events[1].1.last_event_id()), ("x", "9"));
        }
        // The line limit still holds, and the error comes once.
        let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(1000));
        let long = format!("data: {}\n\n", "x".repeat(3000));
        let mut errors = 0;
        for c in long.as_bytes().chunks(100) {
            d.feed_bytes(Bytes::copy_from_slice(c));
            match d.poll_event() {
                Err(DecodeError::LineTooLong { max: 1000, .. }) => errors += 1,
                Err(e) => panic!("{e}"),
                Ok(ev) => assert!(ev.is_none()),
            }
        }
        assert!(errors >= 1);
    }

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
    fn a_chunk_that_ends_inside_a_character_of_a_data_line() {
        // The chunk was validated up to the character it ends inside of:
        // the start of that character is checked on its own, and the next
        // chunk completes it, or shows it invalid.
        let long = "x".repeat(60);
        let accents = "é".repeat(30);
        let tails: [(&[u8], &[u8]); 6] = [
            (b"\xF0\x9F", b"\x98\x80"),
            (b"\xF0\x9F", b"A"),
            (b"\xE2", b"\x80\xA6"),
            (b"\xE0\x80", b"\x80"),
            (b"\xED\xA0", b"\x80"),
            (b"\xC3", b"\xC3\xA9"),
        ];
        for (end, start) in tails {
            // A first event of multi-byte text validates the chunk ahead, up
            // to its end.
            let first = [format!("data: {accents}\n\ndata: {long}").as_bytes(), end].concat();
            let second = [start, b" y\n\n"].concat();
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in [first, second] {
                d.feed_bytes(Bytes::from(piece));
                while let Some(ev) = d.poll_event().unwrap() {
                    got.push(ev.data().to_owned());
                }
            }
            let value = [long.as_bytes(), end, start, b" y"].concat();
            assert_eq!(
                got,
                [accents.clone(), String::from_utf8_lossy(&value).into_owned()],
                "{end:x?} then {start:x?}"
            );
        }
    }

    #[test]
    fn lines_validated_ahead_are_copied_without_a_second_check() {
        // The first event's long value has the rest of its chunk validated
        // in one pass, up to the first invalid byte (in the third event):
        // the data lines of the second are copied without being checked
        // again; those after the invalid byte are checked as they are
        // copied. A piece that ends inside a character leaves it out of the
        // validated prefix, and lines still skip the check; one that ends
        // in bytes that start no character (`E0 80`) does not.
        let mut input =
            format!("data: {}\n\ndata: ж\ndata: {}\ndata: 日本\n\n", "é".repeat(40), "ж".repeat(100))
                .into_bytes();
        // Cut after `E0 80` (the start of no character: E0 takes A0 to BF
        // next), the piece must not pass for one that ends inside a
        // character.
        let overlong =
            [format!("data: b\ndata: {}", "ж".repeat(100)).as_bytes(), b"\xE0\x80\x80ok\n\n"].concat();
        input.extend_from_slice(&overlong);
        input.extend_from_slice(format!("data: a\ndata: {}", "ж".repeat(50)).as_bytes());
        input.push(0xFF);
        input.extend_from_slice(format!("{}\n\n", "ж".repeat(50)).as_bytes());
        input.extend_from_slice(b"data: a\ndata: ok \xFF bad\n\n");
        input.extend_from_slice(format!("data: x\ndata: {}\n\n", "é".repeat(30)).as_bytes());
        let want = [
            "é".repeat(40),
            format!("ж\n{}\n日本", "ж".repeat(100)),
            format!("b\n{}\u{FFFD}\u{FFFD}\u{FFFD}ok", "ж".repeat(100)),
            format!("a\n{}\u{FFFD}{}", "ж".repeat(50), "ж".repeat(50)),
            "a\nok \u{FFFD} bad".to_owned(),
            format!("x\n{}", "é".repeat(30)),
        ];
        // Whole, and cut in two at every byte (a chunk that ends inside a
        // character or a line leaves less validated).
        for cut in 0..=input.len() {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in [&input[..cut], &input[cut..]] {
                d.feed_bytes(Bytes::copy_from_slice(piece));
                while let Some(ev) = d.poll_event().unwrap() {
                    got.push(ev.data().to_owned());
                }
            }
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn the_last_event_of_the_input_leaves_the_decoder_at_rest() {
        // A chunk that holds one block, as a server that flushes each event
        // sends them: once its event is handed out (inline, from the carry
        // buffer; a slice of a kept chunk; gathered from several lines), the
        // next poll needs no call of its own.
        let long = "a value too long to be held inline in the event: a slice of its chunk";
        let chunks = [
            "data: one\n\n".to_owned(),
            format!("event: t\nid: 7\ndata: {long}\n\n"),
            "data: a\ndata: b\n\n".to_owned(),
            format!("data: {long}\r\ndata: {long}\r\n\r\n"),
        ];
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in chunks {
            d.feed_bytes(Bytes::from(chunk.into_bytes()));
            got.push(d.poll_event().unwrap().expect("the chunk's event").data().to_owned());
            assert!(d.quiet, "at rest after {:?}", got.last());
            assert!(d.poll_event().unwrap().is_none());
        }
        assert_eq!(got, ["one".to_owned(), long.to_owned(), "a\nb".to_owned(), format!("{long}\n{long}")]);
        // Input fed at rest is decoded as ever, a byte at a time too.
        for &b in b"data: x\r\n\r\n" {
            d.feed(&[b]);
            if let Some(ev) = d.poll_event().unwrap() {
                got.push(ev.data().to_owned());
            }
        }
        assert_eq!(got.last().map(String::as_str), Some("x"));
        assert_eq!(d.last_event_id(), "7");
    }

    #[test]
    fn a_blank_line_right_after_a_field_ends_its_block() {
        // Every ending of the field line and of the blank line; a block
        // that fires nothing but sets the id; a blank line whose CR ends the
        // input, with its LF in the next chunk.
        let long = "x".repeat(200);
        let input = format!(
            "data: a\n\ndata: b\r\n\r\ndata: c\r\rid: 7\n\nevent: t\ndata: {long}\n\r\n: only a comment\n\nretry: 5\ndata: d\r\n\r"
        );
        let mut d = Decoder::new();
        d.feed_bytes(Bytes::from(input.into_bytes()));
        let mut got = Vec::new();
        while let Some(ev) = d.poll_event().unwrap() {
            got.push((ev.event_type().to_owned(), ev.data().to_owned(), ev.last_event_id().to_owned()));
        }
        // The last blank line is a CR that ends the input: its block fires
        // at once, and an LF that comes next is the end of that line.
        assert_eq!(got.last().map(|ev| ev.1.as_str()), Some("d"));
        d.feed_bytes(Bytes::from_static(b"\ndata: e\n\n"));
        while let Some(ev) = d.poll_event().unwrap() {
            got.push((ev.event_type().to_owned(), ev.data().to_owned(), ev.last_event_id().to_owned()));
        }
        let e = |t: &str, data: &str, id: &str| (t.to_owned(), data.to_owned(), id.to_owned());
        assert_eq!(
            got,
            [
                e("message", "a", ""),
                e("message", "b", ""),
                e("message", "c", ""),
                e("t", &long, "7"),
                e("message", "d", "7"),
                e("message", "e", "7"),
            ]
        );
        assert_eq!(d.reconnection_time(), Some(Duration::from_millis(5)));
        assert_eq!(d.buffered_len(), 0);
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
        let input = Bytes::from_static(
            b"data: a zero-copy payload, long enough to be kept rather than copied inline\n\n",
        );
        let mut d = Decoder::new();
        d.feed_bytes(input.clone());
        let ev = d.poll_event().unwrap().unwrap();
        assert!(!ev.is_inline());
        let data = ev.data().as_bytes().as_ptr_range();
        let inp = input.as_ptr_range();
        assert!(inp.start <= data.start && data.end <= inp.end);
    }

    #[test]
    fn short_chunks_that_end_inside_a_line_are_copied() {
        // Small events in chunks of a few hundred bytes: a chunk that ends
        // inside a line is copied into the carry buffer, as `feed` would,
        // and the next goes on after it there; one that ends with a line
        // end is kept, its events slices of it.
        let big = "x".repeat(100);
        let input = format!("event: a\ndata: {big}\n\nevent: b\ndata: {big}\n\n");
        let cut = input.find("event: b").unwrap() + 10;
        let mut d = Decoder::new();
        let first = Bytes::from(input[..cut].to_owned());
        d.feed_bytes(first.clone());
        let ev = d.poll_event().unwrap().unwrap();
        assert_eq!((ev.event_type(), ev.data()), ("a", &*big));
        assert!(!first.as_ptr_range().contains(&ev.data().as_ptr()), "copied, not a slice");
        assert!(d.poll_event().unwrap().is_none());
        assert!(d.ext.is_empty() && d.buf.len() == 10, "the unterminated line is carried");
        d.feed_bytes(Bytes::from(input[cut..].to_owned()));
        let ev = d.poll_event().unwrap().unwrap();
        assert_eq!((ev.event_type(), ev.data()), ("b", &*big));
        assert!(d.poll_event().unwrap().is_none());

        // Ending with a line end: kept.
        let whole = Bytes::from(input[..cut - 10].to_owned());
        let mut d = Decoder::new();
        d.feed_bytes(whole.clone());
        let ev = d.poll_event().unwrap().unwrap();
        assert!(whole.as_ptr_range().contains(&ev.data().as_ptr()), "a slice of the chunk");

        // A `data` line continued from an earlier chunk: a chunk too long
        // to be continued as it is taken (`CONTINUE_IN_CHUNK_MAX`) but short
        // enough to be copied is kept, and the line goes on from it into the
        // data buffer, copied once.
        let mut d = Decoder::new();
        d.feed_bytes(Bytes::from(format!("data: {big}{big}{big}{big}{big}{big}{big}{big}")));
        assert!(d.poll_event().unwrap().is_none());
        assert!(d.st.frag.is_some());
        d.feed_bytes(Bytes::from("z".repeat(600)));
        assert!(d.buf.is_empty() && d.ext.len() == 600, "kept, not copied");
        assert!(d.poll_event().unwrap().is_none());
        assert!(d.st.frag.is_some() && d.ext.is_empty());
        d.feed_bytes(Bytes::from_static(b"\n\n"));
        assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 800 + 600);
    }

    #[test]
    fn small_events_of_a_kept_chunk_are_inline() {
        // Copying a few bytes costs less than a reference count on the
        // chunk, taken when the event is made and dropped with it.
        let input = Bytes::from_static(b"event: tick\nid: 1\ndata: {\"seq\":1}\n\ndata: ok\n\n");
        let mut d = Decoder::new();
        d.feed_bytes(input);
        let ev = d.poll_event().unwrap().unwrap();
        assert!(ev.is_inline());
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("tick", "{\"seq\":1}", "1"));
        let ev = d.poll_event().unwrap().unwrap();
        assert!(ev.is_inline());
        assert_eq!((ev.event_type(), ev.data(), ev.last_event_id()), ("message", "ok", "1"));
    }

    #[test]
    fn copied_events_are_inline_or_shared_by_size() {
        // Through `feed` (copied in), small and large events, with the id set
        // by the block or by an earlier one, single- and multi-line, read
        // back the same whichever way they are stored.
        let big = "x".repeat(300);
        let long_id = "i".repeat(INLINE_CAP);
        let input = format!(
            "id: 7\ndata: small\n\nevent: t\ndata: {big}\n\ndata: a\ndata: b\n\n\
             id: {long_id}\ndata: c\n\ndata: {big}\ndata: {big}\n\nid\ndata: d\n\n{}",
            " ".repeat(INLINE_CAP)
        );
        let want = [
            ("message", "small", "7"),
            ("t", &*big, "7"),
            ("message", "a\nb", "7"),
            ("message", "c", &*long_id),
            ("message", &*format!("{big}\n{big}"), &*long_id),
            ("message", "d", ""),
        ];
        for chunk in [input.len(), 1, 7] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for part in input.as_bytes().chunks(chunk) {
                d.feed(part);
                while let Some(ev) = d.poll_event().unwrap() {
                    assert_eq!(&*ev.clone().into_data(), ev.data());
                    assert_eq!(ev.data_bytes(), ev.data().as_bytes());
                    got.push(ev);
                }
            }
            let stored: Vec<_> = got.iter().map(MessageEvent::is_inline).collect();
            assert_eq!(stored, [true, false, true, false, false, true], "chunks of {chunk}");
            let got: Vec<_> = got.iter().map(|e| (e.event_type(), e.data(), e.last_event_id())).collect();
            assert_eq!(got, want, "chunks of {chunk}");
        }
    }

    #[test]
    fn slices_of_the_input_carry_an_inherited_id_of_any_length() {
        // Events too large to be inline, each a slice of the fed chunk,
        // after blocks that set a short id (held in the event) and a long
        // one (shared).
        let big = "x".repeat(100);
        for id in ["7", &"i".repeat(OWN_ID_CAP), &"j".repeat(OWN_ID_CAP + 1), "日本"] {
            let input = format!("id: {id}\ndata: a\n\ndata: {big}\n\nevent: t\ndata: {big}\n\n");
            let mut d = Decoder::new();
            d.feed_bytes(Bytes::from(input));
            let first = d.poll_event().unwrap().unwrap();
            assert_eq!(first.last_event_id(), id);
            for ty in ["message", "t"] {
                let ev = d.poll_event().unwrap().unwrap();
                assert!(!ev.is_inline());
                let copy = ev.clone();
                drop(ev);
                assert_eq!((copy.event_type(), copy.data(), copy.last_event_id()), (ty, &*big, id));
                assert_eq!(&*copy.clone().into_data(), big);
            }
        }
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
    fn lifecycle_through_overflow_finish_and_reset() {
        // A line past the limit while feeding: the event before it still
        // comes out, the error after it; `finish` in between is recorded.
        let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(8));
        d.feed(b"\xEF\xBB\xBFdata: 1\r");
        assert_eq!(d.st.life, Life::Open(Edge::Bom));
        assert!(d.poll_event().unwrap().is_none());
        assert_eq!(d.st.life, Life::Open(Edge::Cr));
        d.feed(b"\n\n0123456789");
        assert!(matches!(d.st.life, Life::Overflow { edge: Edge::Cr, finished: false, .. }));
        d.finish();
        assert!(d.is_finished());
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "1");
        assert_eq!(d.poll_event(), Err(DecodeError::LineTooLong { len: 10, max: 8 }));
        assert!(d.is_finished());
        d.feed(b"data: 2\n\n");
        assert!(d.poll_event().is_err());
        d.reset();
        assert!(!d.is_finished());
        assert_eq!(d.st.life, Life::Open(Edge::Bom));
        // After `finish`, the unfinished block is discarded and nothing more
        // is taken.
        d.feed(b"data: 3\n\ndata: 4\n");
        d.finish();
        d.feed(b"\n");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "3");
        assert!(d.poll_event().unwrap().is_none());
        assert_eq!(d.st.life, Life::Finished(Edge::Lines));
    }

    #[test]
    fn data_limit() {
        let mut d = Decoder::with_config(DecoderConfig::default().max_data_len(5));
        d.feed(b"data: 123\ndata: 4\n\ndata: 123\ndata: 45\n\n");
        assert_eq!(d.poll_event().unwrap().unwrap().data(), "123\n4");
        assert_eq!(d.poll_event(), Err(DecodeError::DataTooLong { len: 6, max: 5 }));
    }
}
