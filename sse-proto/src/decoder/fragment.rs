//! Blocks and lines that outlive their chunk: a block's values copied out
//! of a chunk that ends before it does ([`compact`]), and a `data` line
//! continued straight into the data buffer from chunk to chunk
//! ([`start_fragment`], [`continue_fragment`]).

use super::*;

/// Copies the values of the block being built out of `src` and drops its
/// lines, so that the block no longer needs them. Called when a block
/// outgrows [`COMPACT_AT`] or its chunk ends before it does.
pub(super) fn compact<S: Source>(src: &mut S, cur: &mut Cursor, st: &mut State) {
    if st.pos == 0 {
        return;
    }
    let block = src.bytes();
    if let Data::One(Val::Block(s)) = st.data {
        if !st.mirror {
            st.data_buf.clear();
            st.data_buf.extend_from_slice(&block[s.range()]);
        }
        st.data = Data::One(Val::Owned(Span::new(0, s.len())));
    }
    if st.meta_buf.len() < 4096 {
        // Usually: move the type and id over into `meta_buf`, whose memory
        // is kept from event to event.
        for v in [&mut st.event_type, &mut st.pending_id] {
            if let Some(Val::Block(s)) = *v {
                let start = st.meta_buf.len();
                st.meta_buf.extend_from_slice(&block[s.range()]);
                *v = Some(Val::Owned(Span::new(start, s.len())));
            }
        }
        src.skip(st.pos);
        cur.consumed(st.pos);
        st.pos = 0;
        return;
    }
    // Rebuild `meta_buf` with just the live values, so that repeated
    // compactions of one long block cannot make it grow.
    let mut meta = BytesMut::with_capacity(64);
    let mut keep = |v: Option<Val>| {
        v.map(|v| {
            let bytes = match v {
                Val::Block(s) => &block[s.range()],
                Val::Owned(s) => &st.meta_buf[s.range()],
            };
            let start = meta.len();
            meta.extend_from_slice(bytes);
            Val::Owned(Span::new(start, bytes.len()))
        })
    };
    let ty = keep(st.event_type);
    let id = keep(st.pending_id);
    st.event_type = ty;
    st.pending_id = id;
    st.meta_buf = meta;
    src.skip(st.pos);
    cur.consumed(st.pos);
    st.pos = 0;
}

/// At the end of a chunk, after [`compact`]: if the unterminated line left in
/// `src` is a `data` line, moves its value into the data buffer and returns
/// true; the line then continues in [`continue_fragment`]. Otherwise leaves
/// the line to be carried.
pub(super) fn start_fragment<S: Source>(src: &mut S, cur: &mut Cursor, st: &mut State) -> bool {
    if st.frag.is_some() {
        // `gather_data_line` began the fragment, its value copied already:
        // the line is all that is left of the chunk.
        let n = src.bytes().len();
        src.skip(n);
        cur.consumed(n);
        return true;
    }
    let line = src.bytes();
    // The prefix must be whole, including the byte after the colon (is it
    // the one optional space?).
    let value_start = match line {
        [b'd', b'a', b't', b'a', b':', b' ', ..] => 6,
        [b'd', b'a', b't', b'a', b':', _, ..] => 5,
        _ => return false,
    };
    let value = &line[value_start..];
    let first = match st.data {
        Data::Empty => {
            if !st.check_data_len(value.len()) {
                return true;
            }
            st.data_buf.clear();
            true
        }
        Data::One(Val::Owned(_)) | Data::Many => {
            if !st.check_data_len(st.data_buf.len() + 1 + value.len()) {
                return true;
            }
            st.data_buf.extend_from_slice(b"\n");
            false
        }
        // `compact` left no data in the block.
        Data::One(Val::Block(_)) => return false,
    };
    if first {
        // Expect a value as large as the last event's data (within reason),
        // rather than regrow as the pieces arrive.
        st.data_buf.reserve(st.hinted(value.len()));
    }
    // The line search already validated the chunk as far as it could: the
    // value is known valid if that reached the end of the line, or stopped
    // short of a character the chunk ends inside of (its first bytes are
    // checked here, as a start that can still be completed).
    // The value may end inside a character, which the next piece completes
    // and checks (see `continue_fragment`).
    // Otherwise it is validated as it is copied, in one pass.
    let start = st.data_buf.len();
    let known = cur.valid >= line.len()
        || cur.valid >= value_start
            && line.len() - cur.valid <= 3
            && scan::starts_a_character(&line[cur.valid..]);
    let valid = if known {
        st.data_buf.extend_from_slice(value);
        true
    } else {
        scan::copy_line(value, [0; 3], &mut st.data_buf).1
    };
    st.frag = Some(Fragment { start, line_len: line.len(), first, valid });
    let n = line.len();
    src.skip(n);
    cur.consumed(n);
    true
}

/// Continues a `data` line begun by [`start_fragment`] with the bytes at the
/// front of `src`. Returns true when the line ended (the data buffer then
/// holds it, validated), false when `src` ran out first or a limit was hit.
pub(super) fn continue_fragment<S: Source>(src: &mut S, cur: &mut Cursor, st: &mut State) -> bool {
    let Some(mut frag) = st.frag else { return true };
    let bytes = src.bytes();
    // Usually the line ends within the limits: one pass finds the end and
    // copies the piece (see `LineCopier`). Only the bytes the limits allow
    // are looked at, so memory stays within them.
    let held = st.data_buf.len();
    let room =
        st.config.max_line_len.saturating_sub(frag.line_len).min(st.config.max_data_len.saturating_sub(held));
    let window = &bytes[..bytes.len().min(room.saturating_add(1))];
    // The piece is validated as it is copied, after the value so far: a
    // character split by the chunk edge is checked whole.
    let before = scan::tail3(&st.data_buf, frag.start);
    let (mut end, mut valid) = scan::copy_line(window, before, &mut st.data_buf);
    if end.is_none() && window.len() < bytes.len() {
        // A limit is passed: measure the line as far as this input goes,
        // for the error.
        st.data_buf.truncate(held);
        (end, valid) = (scan::scan_long(bytes).0, false);
    }
    let piece = match end {
        Some(e) => &bytes[..e],
        None => bytes,
    };
    frag.valid &= valid;
    frag.line_len += piece.len();
    if frag.line_len > st.config.max_line_len {
        st.fail(DecodeError::LineTooLong { len: frag.line_len, max: st.config.max_line_len });
        return false;
    }
    if !st.check_data_len(held + piece.len()) {
        return false;
    }
    let Some(e) = end else {
        let n = bytes.len();
        src.skip(n);
        cur.consumed(n);
        st.frag = Some(frag);
        return false;
    };
    // The line ended: its terminator, and the LF of a CRLF if it is here.
    let next = after_line_end(bytes, e, st);
    src.skip(next);
    cur.consumed(next);
    st.frag = None;
    // A piece held invalid UTF-8 (or was not checked: a limit was near):
    // validate the value whole now, replacing invalid sequences as the
    // spec's decoder would.
    if !frag.valid && !scan::utf8_valid(&st.data_buf[frag.start..]) {
        let text = String::from_utf8_lossy(&st.data_buf[frag.start..]).into_owned();
        st.data_buf.truncate(frag.start);
        st.data_buf.extend_from_slice(text.as_bytes());
        if !st.check_data_len(st.data_buf.len()) {
            return false;
        }
    }
    st.data = if frag.first { Data::One(Val::Owned(Span::new(0, st.data_buf.len()))) } else { Data::Many };
    true
}
