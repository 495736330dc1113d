//! The multi-line data fast path: `data:` lines that join earlier ones are
//! searched for their end, validated as UTF-8 and copied into the data
//! buffer in one pass ([`LineCopier::copy_line`]).

use super::*;

/// `data:` lines that join earlier ones of their block (or the first, when
/// the last event had several: `last_many`), from `st.pos`, when no line
/// end ahead is known yet (`cur.mask` is used up): each value is searched
/// for the line end and copied into `data_buf` in one pass
/// ([`LineCopier::copy_line`]) instead of searched, then copied, which reads
/// every byte of a multi-line event once. Returns whether the lines up to
/// `st.pos` were decoded and the next is to be looked at; if not, the
/// general path takes the line at `st.pos`, and the cursor tells it what
/// was searched.
///
/// A line that the input ends inside, within the limits, keeps what was
/// copied: as the [`Fragment`] that the next chunks of `feed_bytes`
/// continue, or as a [`Resume`] for the next call when the line is in the
/// carry buffer (`feed`, and short `feed_bytes` chunks). A line past a limit
/// (even with an empty value: the limit may be used up already), or holding
/// invalid UTF-8, is left to the general path, which reports the error or
/// replaces the bytes.
#[inline(never)]
pub(super) fn gather_data_lines(bytes: &[u8], chunk: bool, cur: &mut Cursor, st: &mut State) -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(vbmi) = scan::Avx512Vbmi::detect() {
        // SAFETY: `vbmi` proves that this CPU has AVX-512 F, BW and VBMI.
        #[allow(unsafe_code)]
        return unsafe { gather_data_lines_vbmi(vbmi, bytes, chunk, cur, st) };
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx512) = scan::Avx512::detect() {
        // SAFETY: `avx512` proves that this CPU has AVX-512 F and BW.
        #[allow(unsafe_code)]
        return unsafe { gather_data_lines_avx512(avx512, bytes, chunk, cur, st) };
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx2) = scan::Avx2::detect() {
        // SAFETY: `avx2` proves that this CPU has AVX2.
        #[allow(unsafe_code)]
        return unsafe { gather_data_lines_avx2(avx2, bytes, chunk, cur, st) };
    }
    gather_lines_with(scan::Portable, bytes, chunk, cur, st)
}

/// [`gather_data_lines`] compiled for AVX2, so that the copy loop is
/// inlined into it.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
pub(super) fn gather_data_lines_avx2(
    avx2: scan::Avx2,
    bytes: &[u8],
    chunk: bool,
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    gather_lines_with(avx2, bytes, chunk, cur, st)
}

/// [`gather_data_lines`] compiled for AVX-512, so that the copy loop is
/// inlined into it.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn gather_data_lines_avx512(
    avx512: scan::Avx512,
    bytes: &[u8],
    chunk: bool,
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    gather_lines_with(avx512, bytes, chunk, cur, st)
}

/// [`gather_data_lines`] compiled for AVX-512 with VBMI, so that the copy
/// loop is inlined into it.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) fn gather_data_lines_vbmi(
    vbmi: scan::Avx512Vbmi,
    bytes: &[u8],
    chunk: bool,
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    gather_lines_with(vbmi, bytes, chunk, cur, st)
}

/// The loop of [`gather_data_lines`].
#[inline(always)]
pub(super) fn gather_lines_with<C: LineCopier>(
    copier: C,
    bytes: &[u8],
    chunk: bool,
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    loop {
        let start = st.pos;
        if !gather_data_line(copier, bytes, chunk, cur, st) {
            return false;
        }
        // The next line, if it is `data` too, while the block is short
        // enough not to need compacting: after a short line, likely short
        // too, on its own path (a long line would only be looked at twice).
        let short = C::SHORT_LINES && st.pos - start <= 64;
        loop {
            if st.pos > COMPACT_AT || bytes.get(st.pos..st.pos + 5) != Some(b"data:") {
                return true;
            }
            if !short {
                break;
            }
            // Where the value starts is a branch, not arithmetic on the
            // byte after the colon: the next line's load then waits only
            // for this line's end, not for a load of that byte too.
            let taken = match bytes.get(st.pos + 5) {
                Some(b' ') => short_data_line::<C, 6>(copier, bytes, cur, st),
                Some(_) => short_data_line::<C, 5>(copier, bytes, cur, st),
                None => false,
            };
            if !taken {
                break;
            }
        }
    }
}

/// A `data` line after the first of its block whose value ends within the
/// 64 bytes from its start, appended to `data_buf` by
/// [`LineCopier::append_short_line`]: what [`gather_data_line`] would do,
/// without its setup. Returns false, having changed nothing, when the line
/// is not such a line (or the limits are near, or the bytes are not valid
/// UTF-8): [`gather_data_line`] takes it then. `PREFIX` is the length of
/// `data:` and its optional space, which the caller looked at.
#[inline(always)]
fn short_data_line<C: LineCopier, const PREFIX: usize>(
    copier: C,
    bytes: &[u8],
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    let start = st.pos;
    // `data_buf` holds the block's data so far (see `gather_setup`), and no
    // line is being resumed or was searched already (the general path
    // searches on from where that stopped).
    if !matches!(st.data, Data::Many | Data::One(Val::Owned(_)))
        || st.resume.is_some()
        || cur.scan + cur.mask_len > start
    {
        return false;
    }
    let value_start = start + PREFIX;
    let Some(block) = bytes.get(value_start..value_start + 64) else {
        return false;
    };
    // Within both limits, wherever the line ends in the block.
    if st.data_buf.len() + 65 > st.config.max_data_len || value_start - start + 64 > st.config.max_line_len {
        return false;
    }
    let Some(upto) = copier.append_short_line(block.try_into().expect("64 bytes"), &mut st.data_buf) else {
        return false;
    };
    let end = value_start + upto;
    st.data = Data::Many;
    // The line and its (ASCII) terminator are valid.
    cur.ascii_run(start, end + 1);
    let next = after_line_end(bytes, end, st);
    cur.searched_to(next);
    st.pos = next;
    true
}

/// One line of [`gather_data_lines`].
#[inline(always)]
pub(super) fn gather_data_line<C: LineCopier>(
    copier: C,
    bytes: &[u8],
    chunk: bool,
    cur: &mut Cursor,
    st: &mut State,
) -> bool {
    let start = st.pos;
    // The byte after "data:" says whether a space goes.
    let Some(&first) = bytes.get(start + 5) else {
        return false;
    };
    let value_start = start + 6 - usize::from(first != b' ');
    let resume = st.resume.take();
    let searched = cur.scan + cur.mask_len;
    if resume.is_none() && searched > start && (searched > start + 64 || bytes.len() - searched < 64) {
        // The line was searched before, by the general path (or by
        // `nothing_new`, or a copy given up on), past its first block or
        // with less than a block left to search: the general path searches
        // on from where that stopped. So a long line arriving in small
        // pieces is never copied again from its start, and a line whose end
        // is the byte just fed costs no copy of a block.
        return false;
    }
    let resumed = resume.is_some();
    let (held, sep, copied, valid_before) = match resume {
        // The copy goes on where the last input ended.
        Some(r) => (r.held, r.sep, r.copied, r.valid),
        None => {
            let (held, sep) = gather_setup(bytes, st);
            (held, sep, 0, true)
        }
    };
    // The longest value within both limits; a line end right after it is
    // still in bounds. When even an empty value would pass one, the general
    // path reports it.
    let (Some(room_data), Some(room_line)) = (
        st.config.max_data_len.checked_sub(held + sep),
        st.config.max_line_len.checked_sub(value_start - start),
    ) else {
        // (A resumed line was within both when it began.)
        debug_assert!(!resumed);
        return false;
    };
    let room = room_data.min(room_line);
    let limit = value_start.saturating_add(room).saturating_add(1).min(bytes.len());
    if sep == 1 && !resumed {
        st.data_buf.extend_from_slice(b"\n");
    }
    // Searched, validated (after what was copied before, which may end
    // inside a character) and copied in one pass.
    let hay = &bytes[value_start + copied..limit];
    let (found, valid) = if C::SKIPS_CHECK && !resumed && validated_through(bytes, cur.valid, limit) {
        // Every byte the copy could reach was validated already (a field
        // before it had the rest of the input checked in one pass, see
        // `field_is_valid`), or all but a character the input ends inside
        // of: a search and a plain copy, without checking the text again.
        (copier.copy_valid_line(hay, &mut st.data_buf), true)
    } else {
        let before = if resumed { scan::tail3(&st.data_buf, held + sep) } else { [0; 3] };
        copier.copy_line(hay, before, &mut st.data_buf)
    };
    let valid = valid && valid_before;
    let Some(len) = found.map(|n| copied + n) else {
        let within = limit == bytes.len() && limit - value_start <= room;
        if chunk && within {
            // A chunk of `feed_bytes` ends inside this line, within the
            // limits: the value copied so far starts the fragment that the
            // next chunks continue (see `start_fragment`).
            st.frag =
                Some(Fragment { start: held + sep, line_len: bytes.len() - start, first: sep == 0, valid });
            cur.searched_to(limit);
            return false;
        }
        if within {
            // The input (of `feed`) ends inside this line: the copy goes on
            // from here when more comes, rather than starting over.
            st.resume = Some(Resume { held, sep, copied: limit - value_start, valid });
            cur.searched_to(limit);
            return false;
        }
        st.data_buf.truncate(held);
        // Nothing before `limit` ends a line (a limit is passed); the
        // general path searches on from there.
        cur.searched_to(limit);
        return false;
    };
    let end = value_start + len;
    if valid {
        // The line and its (ASCII) terminator are valid: the next line
        // starts known valid.
        cur.ascii_run(start, end + 1);
    } else {
        // Invalid UTF-8, replaced by the general path.
        st.data_buf.truncate(held);
        cur.found_at(end);
        return false;
    }
    st.data = if sep == 0 {
        st.mirror = true;
        Data::One(Val::Block(Span::new(value_start, len)))
    } else {
        Data::Many
    };
    let next = after_line_end(bytes, end, st);
    cur.searched_to(next);
    st.pos = next;
    true
}

/// Whether the bytes of `bytes` up to `limit` need no UTF-8 check in a
/// copy of a line: the validated prefix (`valid`) reaches `limit`, or
/// `limit` is the end of the input and the prefix stops only before the
/// first bytes of a character the input ends inside of, valid so far
/// (`field_is_valid` leaves those out; about every other chunk of
/// Cyrillic or CJK text ends so). Those bytes hold no line end, so a line
/// that ends ends inside the prefix; a line that runs into them is carried
/// on (`Fragment`, `Resume`), and the piece that goes on with it is checked
/// after them (`before`), which completes the character's check. Before,
/// every line of such a chunk took the check: 1.07x on Cyrillic and 1.06x
/// on CJK at 16 KiB chunks (five alternating pairs).
#[inline(always)]
fn validated_through(bytes: &[u8], valid: usize, limit: usize) -> bool {
    valid >= limit || limit == bytes.len() && limit - valid <= 3 && scan::starts_a_character(&bytes[valid..])
}

/// The first steps of [`gather_data_line`] for a line not begun before:
/// `data_buf` made to hold the data so far; returns its length and whether
/// an LF goes before the new value (not for the first).
#[inline(always)]
pub(super) fn gather_setup(bytes: &[u8], st: &mut State) -> (usize, usize) {
    match st.data {
        // The first line of a block that likely has more (`last_many`):
        // copied as it is searched, which costs little more than the search,
        // and the data stays a slice of the block unless a second line comes.
        // Room as in `hinted`: with only the last event's size, one a little
        // larger regrew the buffer, copying it, and past 128 KiB the
        // allocator mapped fresh pages for each copy (1.27x on 64 KiB
        // events of 2 KB lines; `events_a_little_larger_than_the_last_are_not_regrown`).
        Data::Empty => {
            st.data_buf.clear();
            st.data_buf.reserve(st.hinted(0) + 64);
            (0, 0)
        }
        // The first value joins `data_buf` now (unless it is there already),
        // so that this one can be copied straight after it.
        Data::One(Val::Block(s)) => {
            if !st.mirror {
                st.data_buf.clear();
                // As in `second_data_line`: expect an event like the last
                // one, with room for the block stores that pass the line end.
                st.data_buf.reserve(st.hinted(s.len() + 1) + 64);
                st.data_buf.extend_from_slice(&bytes[s.range()]);
            }
            st.data = Data::One(Val::Owned(Span::new(0, s.len())));
            (s.len(), 1)
        }
        // An owned first value is all of `data_buf` already.
        Data::One(Val::Owned(_)) | Data::Many => (st.data_buf.len(), 1),
    }
}
