//! The line copy with AVX-512 (F and BW): 64 bytes a register, and the
//! compares give their bit masks directly, so a block costs about half the
//! instructions of the AVX2 loop in [`super::copy_line_avx2`]. Chosen at run
//! time ([`Avx512::detect`]); the AVX2 loop and the portable one stay for
//! other CPUs.

use core::arch::x86_64::{
    __m512i, _mm_setr_epi8, _mm512_alignr_epi8, _mm512_and_si512, _mm512_broadcast_i32x4,
    _mm512_cmpeq_epi8_mask, _mm512_cmplt_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
    _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_or_si512,
    _mm512_permutex2var_epi64, _mm512_set_epi32, _mm512_set_epi64, _mm512_set1_epi8, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_srli_epi16, _mm512_storeu_si512, _mm512_subs_epu8, _mm512_test_epi8_mask,
    _mm512_xor_si512,
};

use bytes::BytesMut;

use super::{Cursor, LineCopier, incomplete_tail, tail3};

/// [`LineCopier`] with AVX-512. A value exists only where the CPU has
/// AVX-512 F and BW ([`Avx512::detect`]), which is what makes calling the
/// AVX-512 code sound.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// `Some` when this CPU has AVX-512 F and BW (detected once, then cached
    /// by std).
    #[inline]
    pub(crate) fn detect() -> Option<Avx512> {
        (std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw"))
            .then_some(Avx512(()))
    }
}

impl LineCopier for Avx512 {
    #[inline(always)]
    fn copy_line(self, hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
        // SAFETY: an `Avx512` value is only made by `detect`, after AVX-512
        // F and BW were found on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            copy_line_avx512(hay, before, out)
        }
    }
}

/// Loads the 64 bytes of `block`.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn load64(block: &[u8; 64]) -> __m512i {
    // SAFETY: `block` is 64 readable bytes; the load needs no alignment.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_si512(block.as_ptr().cast())
    }
}

/// The first `n` (at most 64) bytes of `bytes`, zero in the other lanes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn load_prefix(bytes: &[u8], n: usize) -> __m512i {
    assert!(n <= 64 && n <= bytes.len());
    let lanes = if n == 64 { u64::MAX } else { !(u64::MAX << n) };
    // SAFETY: the masked load reads only the lanes set in `lanes`, the
    // first `n` bytes, which `bytes` holds; the others are neither read nor
    // able to fault.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_maskz_loadu_epi8(lanes, bytes.as_ptr().cast())
    }
}

/// A 16-byte table, repeated in every 128-bit lane (`vpshufb` looks up
/// within a lane).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn table(t: [u8; 16]) -> __m512i {
    let t = t.map(|b| b as i8);
    _mm512_broadcast_i32x4(_mm_setr_epi8(
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15],
    ))
}

/// UTF-8 error flags of the 64 bytes `input` that follow the 64 bytes
/// `prev`: a lane is non-zero where a byte cannot follow the three before
/// it in valid UTF-8. The same lookup-table method as the AVX2
/// [`super::utf8_errors`] (Keiser and Lemire, 2021), on 64 lanes; the bytes
/// one to three back come from one cross-lane permute and in-lane aligns.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn utf8_errors(prev: __m512i, input: __m512i) -> __m512i {
    const TOO_SHORT: u8 = 1 << 0;
    const TOO_LONG: u8 = 1 << 1;
    const OVERLONG_3: u8 = 1 << 2;
    const TOO_LARGE: u8 = 1 << 3;
    const SURROGATE: u8 = 1 << 4;
    const OVERLONG_2: u8 = 1 << 5;
    const TOO_LARGE_1000: u8 = 1 << 6;
    const OVERLONG_4: u8 = 1 << 6;
    const TWO_CONTS: u8 = 1 << 7;
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;
    const LARGE: u8 = CARRY | TOO_LARGE | TOO_LARGE_1000;
    const CONT: u8 = TOO_LONG | OVERLONG_2 | TWO_CONTS;
    let byte_1_high = table([
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ]);
    let byte_1_low = table([
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE | SURROGATE,
        LARGE,
        LARGE,
    ]);
    let byte_2_high = table([
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        CONT | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        CONT | OVERLONG_3 | TOO_LARGE,
        CONT | SURROGATE | TOO_LARGE,
        CONT | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ]);
    let nibble = _mm512_set1_epi8(0x0F);
    let high = |v: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(v), nibble);
    // `joined` is `input` moved up one 128-bit lane, with the last lane of
    // `prev` in front, so that the in-lane `alignr` of `input` with it
    // reads across lane edges: 64-bit elements 6 and 7 of `prev`, then 0
    // to 5 of `input` (bit 3 of an index picks the second operand).
    let joined = _mm512_permutex2var_epi64(prev, _mm512_set_epi64(13, 12, 11, 10, 9, 8, 7, 6), input);
    let prev1 = _mm512_alignr_epi8::<15>(input, joined);
    let prev2 = _mm512_alignr_epi8::<14>(input, joined);
    let prev3 = _mm512_alignr_epi8::<13>(input, joined);
    let special = _mm512_and_si512(
        _mm512_and_si512(
            _mm512_shuffle_epi8(byte_1_high, high(prev1)),
            _mm512_shuffle_epi8(byte_1_low, _mm512_and_si512(prev1, nibble)),
        ),
        _mm512_shuffle_epi8(byte_2_high, high(input)),
    );
    // A byte two back at 0xE0 or more, or three back at 0xF0 or more, must
    // be followed by a continuation here; `special` has TWO_CONTS exactly
    // where there is one.
    let third = _mm512_subs_epu8(prev2, _mm512_set1_epi8((0xE0u8 - 0x80) as i8));
    let fourth = _mm512_subs_epu8(prev3, _mm512_set1_epi8((0xF0u8 - 0x80) as i8));
    let must23 = _mm512_and_si512(_mm512_or_si512(third, fourth), _mm512_set1_epi8(0x80u8 as i8));
    _mm512_xor_si512(must23, special)
}

/// [`LineCopier::copy_line`] with AVX-512: each 64-byte block is loaded
/// once, stored into the spare capacity of `out`, searched for CR and LF
/// and checked as UTF-8.
///
/// A block with no byte below 0x0E as a signed number (no control character
/// up to CR, nothing non-ASCII) after a block that ended in ASCII is plain
/// text: one compare. Other blocks take the table lookups; at 64 lanes
/// these cost about what the AVX2 loop's plain-text test does, so text
/// with a multi-byte character every few words is not much slower than
/// ASCII.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn copy_line_avx512(hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
    let lf = _mm512_set1_epi8(b'\n' as i8);
    let cr = _mm512_set1_epi8(b'\r' as i8);
    let flag = _mm512_set1_epi8(0x0E);
    let terminators = |v| _mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr);
    // The block before the first: `before` in its last three lanes.
    let mut prev = _mm512_set_epi32(
        i32::from_le_bytes([0, before[0], before[1], before[2]]),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    );
    // Error flags of the blocks before the current one.
    let mut errors = _mm512_setzero_si512();
    // Whether the text is mixed (see `next_mode`): every block then takes
    // the table lookups. While it is not, the last block was ASCII, so the
    // next needs no check when it is ASCII too.
    let mut mixed = !before.is_ascii();
    let mut plain = 0;
    let mut at = 0;
    while hay.len() - at >= 64 {
        // Whole blocks that fit both in what is left of `hay` and in the
        // room left in `out`; the length of `out` stays in a register while
        // they are stored.
        let fit = (out.capacity() - out.len()).min(hay.len() - at) & !63;
        if fit == 0 {
            out.reserve(64);
            continue;
        }
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let src = &hay[at..at + fit];
        for (k, c) in src.chunks_exact(64).enumerate() {
            let k = 64 * k;
            let v = load64(c.try_into().expect("64 bytes"));
            // SAFETY: `k + 64 <= fit`, and `fit` bytes of spare capacity
            // follow `dst`; the store needs no alignment.
            #[allow(unsafe_code)]
            unsafe {
                _mm512_storeu_si512(dst.add(k).cast(), v);
            }
            if !mixed && _mm512_cmplt_epi8_mask(v, flag) == 0 {
                // Plain ASCII text after ASCII: nothing to check.
                prev = v;
                continue;
            }
            let e = utf8_errors(prev, v);
            // Any control character up to CR (unsigned compare): rare
            // inside a line, so the exact test waits for it.
            if _mm512_cmplt_epu8_mask(v, flag) != 0 {
                let mask = terminators(v);
                if mask != 0 {
                    let upto = mask.trailing_zeros() as usize;
                    // SAFETY: the `k + upto` bytes after the old length
                    // were all written above.
                    #[allow(unsafe_code)]
                    unsafe {
                        out.set_len(out.len() + k + upto);
                    }
                    let valid = _mm512_test_epi8_mask(errors, errors) == 0
                        && _mm512_test_epi8_mask(e, e) & (u64::MAX >> (63 - upto)) == 0;
                    return (Some(at + k + upto), valid);
                }
            }
            errors = _mm512_or_si512(errors, e);
            prev = v;
            (mixed, plain) = next_mode(mixed, plain, v);
        }
        // SAFETY: all `fit` bytes after the old length were written above.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(out.len() + fit);
        }
        at += fit;
    }
    let rest = &hay[at..];
    let valid_before = _mm512_test_epi8_mask(errors, errors) == 0;
    if rest.is_empty() {
        return (None, valid_before);
    }
    // The last bytes, fewer than 64, zero-padded by a masked load: zeros
    // are ASCII and no terminator.
    let v = load_prefix(rest, rest.len());
    let mask = terminators(v);
    let n = if mask == 0 { rest.len() } else { mask.trailing_zeros() as usize };
    out.reserve(n);
    // SAFETY: `reserve` left at least `n` bytes of spare capacity; the
    // masked store writes only the first `n` lanes, and `set_len` covers
    // exactly those.
    #[allow(unsafe_code)]
    unsafe {
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        _mm512_mask_storeu_epi8(dst.cast(), !(u64::MAX << n), v);
        out.set_len(out.len() + n);
    }
    // The flags of the lanes that count: up to and including the
    // terminator, or every byte of `rest` (a character it ends inside of
    // flags only the padding).
    let lanes = if mask == 0 { !(u64::MAX << n) } else { u64::MAX >> (63 - n) };
    let valid = valid_before
        && (!mixed && _mm512_movepi8_mask(v) == 0 || {
            let e = utf8_errors(prev, v);
            _mm512_test_epi8_mask(e, e) & lanes == 0
        });
    ((mask != 0).then_some(at + n), valid)
}

/// ASCII blocks in a row after which mixed text is taken to be plain again.
const PLAIN_RUN: u32 = 4;

/// The mode of the UTF-8 check after the block `v` (whether the text is
/// mixed, and how many ASCII blocks in a row have come), which was checked
/// in full. Mixed text (a block with non-ASCII text, until `PLAIN_RUN`
/// ASCII blocks in a row) has every block take the table lookups, with no
/// plain-text test: in text with a multi-byte character every few words,
/// whether the next block is plain is a coin toss, and a branch on it
/// mispredicts often enough to cost more than the lookups it saves (17
/// against 11 GB/s on such a line in L1, measured). Text with a rare
/// accented name goes back to the plain-text test after it.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn next_mode(mixed: bool, plain: u32, v: __m512i) -> (bool, u32) {
    let ascii = _mm512_movepi8_mask(v) == 0;
    let plain = if ascii { plain + 1 } else { 0 };
    (!ascii || mixed && plain < PLAIN_RUN, plain)
}

/// Whether `bytes` is valid UTF-8 (ending on a character boundary), with
/// the lookups of [`utf8_errors`] on 64 bytes a step: plain ASCII blocks
/// are skipped with one test until the first block that is not, and from
/// there every block is checked with no further test.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn valid_utf8_avx512(bytes: &[u8]) -> bool {
    let mut prev = _mm512_setzero_si512();
    let mut errors = _mm512_setzero_si512();
    let mut blocks = bytes.chunks_exact(64);
    for c in blocks.by_ref() {
        let v = load64(c.try_into().expect("64 bytes"));
        if _mm512_movepi8_mask(v) != 0 {
            errors = utf8_errors(prev, v);
            prev = v;
            break;
        }
    }
    for c in blocks.by_ref() {
        let v = load64(c.try_into().expect("64 bytes"));
        errors = _mm512_or_si512(errors, utf8_errors(prev, v));
        prev = v;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let v = load_prefix(rest, rest.len());
        errors = _mm512_or_si512(errors, utf8_errors(prev, v));
        prev = v;
    }
    // A block of zeros after the last: a character the input ends inside
    // of is flagged as too short.
    errors = _mm512_or_si512(errors, utf8_errors(prev, _mm512_setzero_si512()));
    _mm512_test_epi8_mask(errors, errors) == 0
}

/// The three bytes before `pos` in `bytes` as the last lanes of a block
/// (zeros where `pos` is the start), for [`utf8_errors`] from `pos`.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn before_vec(bytes: &[u8], pos: usize) -> __m512i {
    let b = tail3(&bytes[..pos], pos.saturating_sub(3));
    _mm512_set_epi32(i32::from_le_bytes([0, b[0], b[1], b[2]]), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// How many bytes at the end of `bytes`, checked with zeros after them but
/// only in their own lanes, are not known valid: a character the input
/// ends inside of ([`incomplete_tail`]), or a last byte of 0xF8 or more.
/// Every other error is flagged in the lane of the byte that shows it (a
/// byte is judged against the three before it); a byte that can never
/// start a character, at the very end, shows its error only in the lane
/// after it, in the padding.
#[inline]
fn unchecked_tail(bytes: &[u8]) -> usize {
    match (incomplete_tail(bytes), bytes.last()) {
        (0, Some(&b)) if b >= 0xF8 => 1,
        (n, _) => n,
    }
}

/// Bits of the first `n` lanes (`n` at most 64).
#[inline]
fn first_lanes(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { !(u64::MAX << n) }
}

/// Where the UTF-8 check of a search from `pos` starts: the end of the
/// validated prefix when that is at most three bytes short of `pos` (a
/// character the last block ended inside of), or `pos` when the prefix
/// reaches it. `None` when the prefix ends further back: nothing found
/// valid here could be recorded.
///
/// Starting at or before `pos` but never before the end of the validated
/// prefix is what makes the check sound: every byte before the start is
/// valid, so the three bytes of context before it carry no error into the
/// verdicts from the start on, and every byte from the start on is checked.
#[inline]
fn check_from(valid: usize, pos: usize) -> Option<usize> {
    (valid + 3 >= pos).then(|| valid.min(pos))
}

impl Cursor {
    /// [`Cursor::refill`] with AVX-512: the search also validates UTF-8
    /// whatever the text, where the line search only recognised ASCII, so
    /// that multi-byte text found valid here needs no pass of its own when
    /// its fields are taken (see `field_is_valid`). The block searched
    /// starts where the check must ([`check_from`], up to three bytes
    /// before the search position; lanes before it are masked out of the
    /// search).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(crate) fn refill_avx512(&mut self, _: Avx512, bytes: &[u8]) -> Option<usize> {
        let pos = self.scan + self.mask_len;
        self.mask_len = 0;
        if bytes.len() < pos + 8 {
            // Byte-at-a-time feeding lands here: a plain loop is cheapest.
            return self.refill_tail_scalar(bytes, pos);
        }
        let check = check_from(self.valid, pos);
        let start = check.unwrap_or(pos);
        let n = (bytes.len() - start).min(64);
        let block = &bytes[start..start + n];
        let v = load_prefix(block, n);
        let lf = _mm512_set1_epi8(b'\n' as i8);
        let cr = _mm512_set1_epi8(b'\r' as i8);
        let mask =
            (_mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr)) & (u64::MAX << (pos - start));
        if check.is_some() {
            // Zero padding past `n` is ASCII; a character cut at the end is
            // left out by `incomplete_tail`.
            let fine = _mm512_movepi8_mask(v) == 0 || {
                let e = utf8_errors(before_vec(bytes, start), v);
                _mm512_test_epi8_mask(e, e) & first_lanes(n) == 0
            };
            if fine {
                self.valid = self.valid.max(start + n - unchecked_tail(block));
            }
        }
        if mask != 0 {
            self.scan = start;
            self.mask = mask;
            self.mask_len = n;
            return Some(start + mask.trailing_zeros() as usize);
        }
        let from = start + n;
        if from == bytes.len() {
            self.scan = from;
            return None;
        }
        // A long line: searched (and validated) on from the next block.
        let (found, valid) = scan_long_avx512(bytes, from, check_from(self.valid, from));
        self.valid = self.valid.max(valid);
        self.found_or_end(found, bytes.len())
    }
}

/// The first CR or LF in `bytes` from `from` on; and how far from the
/// start `bytes` is then known to be valid UTF-8, on a character boundary
/// (0 if nothing more is known), checking from `check` (see
/// [`check_from`]) when that is given. The search of
/// [`Cursor::refill_avx512`] for long lines: plain ASCII blocks cost one
/// test until the first that is not, then every block takes the table
/// lookups while the text is mixed (see [`next_mode`]); after an invalid
/// sequence, the search alone.
#[target_feature(enable = "avx512f,avx512bw")]
fn scan_long_avx512(bytes: &[u8], from: usize, check: Option<usize>) -> (Option<usize>, usize) {
    let lf = _mm512_set1_epi8(b'\n' as i8);
    let cr = _mm512_set1_epi8(b'\r' as i8);
    let terminators = |v| _mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr);
    let mut validate = check.is_some();
    let mut at = check.unwrap_or(from);
    // Search bits before `from` were reported already.
    let mut skip = u64::MAX << (from - at);
    let mut prev = before_vec(bytes, at);
    let (mut mixed, mut plain) = (false, 0);
    loop {
        let n = (bytes.len() - at).min(64);
        if n == 0 {
            // A character the input ends inside of is left out (the bytes
            // before `from` are valid, so its lead byte is among the last
            // three wherever it is).
            let valid = if validate { bytes.len() - unchecked_tail(bytes) } else { 0 };
            return (None, valid);
        }
        let v = if n == 64 {
            load64(bytes[at..at + 64].try_into().expect("64 bytes"))
        } else {
            load_prefix(&bytes[at..], n)
        };
        let mask = terminators(v) & skip;
        skip = u64::MAX;
        if validate {
            // Lanes up to the terminator, or all `n` (a character the
            // input ends inside of flags only the padding).
            let lanes = if mask != 0 { u64::MAX >> (63 - mask.trailing_zeros()) } else { first_lanes(n) };
            if mixed || _mm512_movepi8_mask(v) != 0 {
                let e = utf8_errors(prev, v);
                if _mm512_test_epi8_mask(e, e) & lanes != 0 {
                    // Invalid text: left to the field checks, which say
                    // where.
                    validate = false;
                }
                (mixed, plain) = next_mode(mixed, plain, v);
            }
            prev = v;
        }
        if mask != 0 {
            let end = at + mask.trailing_zeros() as usize;
            // The terminator is ASCII: the prefix through it is whole.
            return (Some(end), if validate { end + 1 } else { 0 });
        }
        at += n;
    }
}
