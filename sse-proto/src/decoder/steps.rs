//! The WHATWG steps, top to bottom (HTML §9.2.6, "Interpreting an event
//! stream"): split the stream into lines, take each line as a blank line
//! (dispatch), a comment or a field, process the four field names, and
//! dispatch. Every fast path elsewhere in the decoder ends in these steps or
//! does what they do for one shape of line (see the map in the module docs
//! of [`super`]); a rule change starts here.

use super::*;

impl State {
    /// Spec: "If the field name is "data": Append the field value to the
    /// data buffer, then append a single U+000A LINE FEED (LF) character".
    /// The LF is written when the next value arrives, so that dispatch need
    /// not remove it.
    #[inline(always)]
    pub(super) fn append_data(&mut self, block: &[u8], value: Val, value_len: usize) -> bool {
        match self.data {
            Data::Empty => {
                if !self.check_data_len(value_len) {
                    return false;
                }
                self.data = Data::One(value);
                self.mirror = false;
            }
            Data::One(first) => return self.second_data_line(block, first, value, value_len),
            Data::Many => {
                if !self.check_data_len(self.data_buf.len() + 1 + value_len) {
                    return false;
                }
                self.data_buf.extend_from_slice(b"\n");
                self.extend_data(block, value);
            }
        }
        true
    }

    /// The second `data` line of a block: the data moves to `data_buf`.
    #[inline(never)]
    pub(super) fn second_data_line(
        &mut self,
        block: &[u8],
        first: Val,
        value: Val,
        value_len: usize,
    ) -> bool {
        let first_len = match first {
            Val::Block(s) | Val::Owned(s) => s.len(),
        };
        let len = first_len + 1 + value_len;
        if !self.check_data_len(len) {
            return false;
        }
        if let Val::Block(s) = first
            && !self.mirror
        {
            self.data_buf.clear();
            // Events of a stream tend to be alike: expect this one to be as
            // large as the last (within reason), rather than regrow and copy
            // line by line.
            self.data_buf.reserve(self.hinted(len));
            self.data_buf.extend_from_slice(&block[s.range()]);
        }
        // An owned first value is already all of `data_buf`.
        self.data_buf.extend_from_slice(b"\n");
        self.extend_data(block, value);
        self.data = Data::Many;
        true
    }

    /// Appends a value to `data_buf`. An owned data value was staged at the
    /// end of `meta_buf` by the caller.
    pub(super) fn extend_data(&mut self, block: &[u8], value: Val) {
        match value {
            Val::Block(s) => self.data_buf.extend_from_slice(&block[s.range()]),
            Val::Owned(s) => {
                self.data_buf.extend_from_slice(&self.meta_buf[s.range()]);
                self.meta_buf.truncate(s.range().start);
            }
        }
    }

    /// Decodes a value holding invalid UTF-8 with replacement into
    /// `meta_buf`; returns where, and its length.
    #[cold]
    #[inline(never)]
    pub(super) fn own_replaced(&mut self, raw: &[u8]) -> (Val, usize) {
        let text = String::from_utf8_lossy(raw);
        (self.own_meta(text.as_bytes()), text.len())
    }

    /// Stores replaced text in `meta_buf` and returns where.
    pub(super) fn own_meta(&mut self, text: &[u8]) -> Val {
        let start = self.meta_buf.len();
        self.meta_buf.extend_from_slice(text);
        Val::Owned(Span::new(start, text.len()))
    }

    /// Spec: "If the line is empty (a blank line): Dispatch the event". The
    /// block is the first `total` bytes of the source, through the blank
    /// line's terminator. Updates the last event ID and resets the block
    /// state; returns where the event's fields are, or `None` when the data
    /// buffer was empty and nothing fires. Consumes nothing: the caller
    /// either builds an owned event or lends the fields out.
    #[inline(always)]
    pub(super) fn dispatch(&mut self, block: &[u8], total: usize) -> bool {
        self.pos = 0;
        // Step 1: the last event ID buffer becomes the last event ID, even if
        // no event fires.
        let id = self.pending_id.take();
        if let Some(v) = id {
            let bytes = match v {
                Val::Block(s) => &block[s.range()],
                Val::Owned(s) => &self.meta_buf[s.range()],
            };
            // SAFETY: a `Val` points at valid UTF-8 (see its invariant).
            #[allow(unsafe_code)]
            self.last_id.set(unsafe { utf8_unchecked(bytes) });
            self.last_id_shared = None;
        }
        // Step 2: an empty data buffer fires nothing (and the type buffer is
        // cleared).
        let event_type = self.event_type.take();
        match core::mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => false,
            data => {
                self.last_many = matches!(data, Data::Many);
                self.ready = Fields { total, data, event_type, id };
                true
            }
        }
    }
}

/// Parses complete lines from `src`, from the end of the block being built,
/// until an event is dispatched (its fields, its block still in `src`) or no
/// line terminator is left (`Ok(None)`).
#[inline(always)]
pub(super) fn parse_lines<S: Source>(src: &mut S, cur: &mut Cursor, st: &mut State) -> bool {
    if st.life.edge() == Edge::Cr && !settle_cr(src.bytes(), cur, st) {
        return false;
    }
    loop {
        let bytes = src.bytes();
        // A `data` line that joins earlier ones (or may: see `last_many`),
        // with its end not yet known (the line is likely long): search and
        // copy it in one pass.
        if cur.mask == 0
            && (st.last_many || !matches!(st.data, Data::Empty))
            && bytes.get(st.pos..st.pos + 5) == Some(b"data:")
            && gather_data_lines(bytes, S::CHUNK, cur, st)
        {
            if st.pos > COMPACT_AT {
                compact(src, cur, st);
            }
            continue;
        }
        let Some(end) = cur.find_eol(bytes) else {
            return false;
        };
        let start = st.pos;
        if end - start > st.config.max_line_len {
            st.fail(DecodeError::LineTooLong { len: end - start, max: st.config.max_line_len });
            return false;
        }
        let next = after_line_end(bytes, end, st);
        cur.skip_to(next);
        // Where the block ends, if this line or the next is blank.
        let block_end = if end == start {
            Some(next)
        } else {
            st.pos = next;
            if !parse_field(bytes, start, end, cur, st) {
                return false;
            }
            match bytes.get(next) {
                Some(b'\n' | b'\r') => {
                    // The next line is blank (it starts with its terminator),
                    // and is taken now rather than in another turn of the
                    // loop, which after a long line was a search of its own
                    // (the line's end was found without a mask around it).
                    let total = after_line_end(bytes, next, st);
                    cur.skip_to(total);
                    cur.ascii_run(next, total);
                    Some(total)
                }
                _ => None,
            }
        };
        if let Some(total) = block_end {
            // "If the line is empty (a blank line): Dispatch the event."
            if st.dispatch(bytes, total) {
                return true;
            }
            src.skip(total);
            cur.consumed(total);
            st.meta_buf.clear();
            continue;
        }
        if st.pos > COMPACT_AT {
            compact(src, cur, st);
        }
    }
}

/// Processes the field line `bytes[start..end]` of the block (spec:
/// "Interpreting an event stream", the per-line steps).
#[inline(always)]
pub(super) fn parse_field(bytes: &[u8], start: usize, end: usize, cur: &mut Cursor, st: &mut State) -> bool {
    let line = &bytes[start..end];
    // "If the line starts with a U+003A COLON character (:): Ignore the line."
    //
    // "If the line contains a U+003A COLON character: collect the characters
    // on the line before the first colon, and call that string field. Collect
    // the characters on the line after the first colon, and call that string
    // value. If value starts with a U+0020 SPACE character, remove it."
    // "Otherwise, the string is not empty but does not contain a colon: use
    // the whole line as the field name, and the empty string as the field
    // value." Only four names mean anything, so instead of searching for the
    // colon, match the four names and look at the byte after the name: a
    // colon, the end of the line, or anything else (a longer, unknown name).
    // A comment (leading colon) matches no name. Names are compared as bytes:
    // a name that decodes to one of these ASCII words can only be made of
    // exactly these bytes.
    let (field, name_len) = match line {
        [b'd', b'a', b't', b'a', ..] => (Field::Data, 4),
        [b'i', b'd', ..] => (Field::Id, 2),
        [b'e', b'v', b'e', b'n', b't', ..] => (Field::Event, 5),
        [b'r', b'e', b't', b'r', b'y', ..] => (Field::Retry, 5),
        _ => return true,
    };
    let value_start = match line.get(name_len) {
        None => end,
        Some(b':') => start + name_len + if line.get(name_len + 1) == Some(&b' ') { 2 } else { 1 },
        Some(_) => return true,
    };
    let value_len = end - value_start;
    // Values are kept as positions in the block; only text with invalid
    // UTF-8 is copied, with each maximal invalid subpart replaced by U+FFFD.
    let (value, value_len) = if field_is_valid(bytes, value_start, end, &mut cur.valid) {
        (Val::Block(Span::new(value_start, value_len)), value_len)
    } else {
        st.own_replaced(&bytes[value_start..end])
    };
    match field {
        Field::Data => {
            if !st.append_data(bytes, value, value_len) {
                return false;
            }
            if let (Data::One(Val::Owned(s)), Val::Owned(_)) = (st.data, value) {
                // A replaced single value moves to `data_buf`, where owned
                // data lives.
                st.data_buf.clear();
                st.data_buf.extend_from_slice(&st.meta_buf[s.range()]);
                st.meta_buf.truncate(s.range().start);
                st.data = Data::One(Val::Owned(Span::new(0, s.len())));
            }
        }
        // "Set the event type buffer to the field value."
        Field::Event => st.event_type = Some(value),
        Field::Id => {
            // "If the field value does not contain U+0000 NULL, then set the
            // last event ID buffer to the field value. Otherwise, ignore the
            // field."
            if !has_nul(bytes, value_start, end) {
                st.pending_id = Some(value);
            }
        }
        Field::Retry => {
            // "If the field value consists of only ASCII digits, then interpret
            // the field value as an integer in base ten, and set the event
            // stream's reconnection time to that integer. Otherwise, ignore
            // the field." An empty value is ignored as browsers do; a value
            // too large for u64 milliseconds is ignored as Chromium does.
            if let Some(ms) = parse_retry(&bytes[value_start..end]) {
                st.reconnection_time = Some(Duration::from_millis(ms));
            }
        }
    }
    true
}

/// Whether `bytes[start..end]` holds a NUL byte (an `id` that holds one is
/// ignored). A word at a time, without a call: ids are often UUIDs or URNs
/// of 36 to 45 bytes, which a loop over bytes took as long as the rest of
/// the event (a third of the decoder's time on a stream of such ids and
/// 150-byte data, by `perf`), and `contains` is a call for a few words. An
/// id of up to 8 bytes (a counter) with 8 bytes of input from its start
/// (its terminator follows it) is one load, the bytes past it masked.
#[inline(always)]
pub(super) fn has_nul(bytes: &[u8], start: usize, end: usize) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Non-zero exactly when a byte of the word is zero: the lowest zero
    // byte turns to 0xFF and keeps its high bit; below it no byte borrows,
    // so each loses its high bit to the subtraction or to `!w`.
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let len = end - start;
    if len <= 8
        && let Some(word) = bytes.get(start..start + 8)
    {
        // Byte `i` of the word is `bytes[start + i]`; those at `len` and
        // beyond are set to 0xFF, which is not NUL.
        let past = u64::MAX.checked_shl(8 * len as u32).unwrap_or(0);
        return zero(u64::from_le_bytes(word.try_into().expect("8 bytes")) | past);
    }
    let value = &bytes[start..end];
    if len < 8 {
        // Fewer than 8 bytes of input left: byte by byte.
        #[allow(clippy::manual_contains)]
        return value.iter().any(|&b| b == 0);
    }
    let word = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    // Whole words, the last one ending at the end of the id (it may
    // overlap the one before it).
    let mut at = 0;
    while at + 8 < len {
        if zero(word(at)) {
            return true;
        }
        at += 8;
    }
    zero(word(len - 8))
}

/// The `retry` value: non-empty ASCII digits that fit in a u64.
pub(super) fn parse_retry(value: &[u8]) -> Option<u64> {
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

/// Where the next line starts, for a line whose terminator is at `end`.
/// A lone CR ends the line at once; an LF right after it is part of the
/// same line ending. If the input ends at the CR, the next input decides
/// (`Edge::Cr`).
#[inline(always)]
pub(super) fn after_line_end(bytes: &[u8], end: usize, st: &mut State) -> usize {
    let next = end + 1;
    if bytes[end] != b'\r' {
        return next;
    }
    match bytes.get(next) {
        Some(b'\n') => next + 1,
        Some(_) => next,
        None => {
            st.life.set_edge(Edge::Cr);
            next
        }
    }
}

/// The second half of a CRLF whose CR ended the previous input: an LF at
/// `st.pos` is skipped, any other byte is the next line. Returns false when
/// the input holds no byte there yet.
#[inline]
pub(super) fn settle_cr(bytes: &[u8], cur: &mut Cursor, st: &mut State) -> bool {
    match bytes.get(st.pos) {
        None => false,
        Some(&b) => {
            if b == b'\n' {
                st.pos += 1;
                cur.skip_to(st.pos);
            }
            st.life.set_edge(Edge::Lines);
            true
        }
    }
}

/// Validates `bytes[start..end]` for use as a field value, where `*valid`
/// leading bytes of `bytes` are known to be valid UTF-8. The first field that
/// reaches past that prefix validates everything buffered after it in one
/// pass, so a chunk is validated once, not field by field. Returns `None`
/// when the field holds invalid UTF-8.
///
/// Splitting the raw bytes at CR, LF and `:` before decoding is equivalent to
/// decoding first (spec: the stream is decoded with "UTF-8 decode"), because
/// ASCII bytes never belong to an invalid subpart.
#[inline(always)]
pub(super) fn field_is_valid(bytes: &[u8], start: usize, end: usize, valid: &mut usize) -> bool {
    if end > *valid && end - start <= SHORT_FIELD {
        // A type, an id, a short value: checked on its own, as the lines
        // after it are likely checked as they are copied (multi-line data)
        // and need no pass of their own.
        let value = &bytes[start..end];
        return value.is_ascii() || scan::utf8_valid(value);
    }
    if end > *valid {
        // The input often ends inside a character (a chunk cut it): that
        // character is left out, so the fast check passes and the slow one,
        // which says where an error is, is only for invalid text.
        let upto = bytes.len() - scan::incomplete_tail(&bytes[*valid..]);
        if scan::utf8_valid(&bytes[*valid..upto]) {
            *valid = upto;
        } else if let Err(e) = simdutf8::compat::from_utf8(&bytes[*valid..upto]) {
            *valid += e.valid_up_to();
        }
        if end > *valid {
            // An invalid sequence (or the end of the validated prefix) lies
            // before `end`: judge this field on its own.
            return core::str::from_utf8(&bytes[start..end]).is_ok();
        }
    }
    true
}

/// Fields up to this long are validated on their own by [`field_is_valid`].
pub(super) const SHORT_FIELD: usize = 48;

/// The field names the spec gives a meaning to.
#[derive(Clone, Copy)]
pub(super) enum Field {
    Data,
    Event,
    Id,
    Retry,
}
