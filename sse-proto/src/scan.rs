//! Line-terminator search: a bitmap of CR/LF positions per 64-byte block,
//! so finding the next line end costs a trailing-zero count rather than a new
//! search per line, and a cursor that remembers what was searched and
//! validated so no byte is looked at twice however the input is chunked.
//!
//! The SIMD code of the line copy and the UTF-8 check is picked at run
//! time: AVX-512 (F and BW, in `avx512`, with VBMI lookups for the UTF-8
//! check where the CPU has that too) where the CPU has it, then AVX2, then
//! portable code. The line search uses SSE2 (the x86-64 baseline) for
//! a line's first block, then AVX-512 or AVX2 for the rest of a long line
//! ([`scan_long`]), and one AVX-512 masked load for the last partial block
//! of the input where the CPU has it ([`scan_partial`]: a chunk that holds
//! one small event is that block). It recognises ASCII. With AVX-512, a
//! long line that the validated prefix reaches (or, when the lines are
//! long, nearly reaches) is also validated as it is searched
//! ([`scan_long_valid`]), so the line is read once; other text is
//! validated when its fields are taken, a chunk at a time. (The lookups of
//! the check cost the same in either place; what the fused search saves is
//! the second pass over the line, which on one-line JSON with a multi-byte
//! word now and then was a sixth of the decoder's time.)

use bytes::BytesMut;

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod avx512;
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub(crate) use avx512::{Avx512, Avx512Vbmi};

/// The least input (a chunk, or the carry buffer) in which the search of a
/// long line validates it too ([`scan_long_valid`]).
const FUSED_MIN: usize = 4096;

/// What is known about the front of an input buffer, so that no byte is
/// scanned or validated twice however the input is chunked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    /// Where the line search resumes: the bytes before it hold no CR or LF
    /// that is still to be reported, beyond those marked in `mask`.
    pub(crate) scan: usize,
    /// Line terminators among the `mask_len` bytes from `scan` on: bit `i`
    /// is set when byte `scan + i` is CR or LF. Finding the next line end is
    /// then a trailing-zero count, not a new search per line.
    pub(crate) mask: u64,
    pub(crate) mask_len: usize,
    /// This many leading bytes are known to be valid UTF-8, ending on a
    /// character boundary. Validating whole chunks at once is far cheaper
    /// than validating every field on its own.
    pub(crate) valid: usize,
    /// The line the last long search found went on for [`LONG_LINE`] bytes
    /// or more past where that search began: the lines are likely long (see
    /// `refill`). Kept from input to input ([`reset`](Self::reset)).
    pub(crate) long_lines: bool,
}

impl Cursor {
    /// Makes the search resume at `pos` or later: the terminators before it
    /// have been dealt with. `pos` is at most one byte past the terminator
    /// last reported (the LF of a CRLF), so nothing unseen is skipped.
    #[inline]
    pub(crate) fn skip_to(&mut self, pos: usize) {
        let covered = self.scan + self.mask_len;
        if pos >= covered {
            self.scan = pos;
            self.mask = 0;
            self.mask_len = 0;
        } else if pos > self.scan {
            self.mask &= u64::MAX << (pos - self.scan);
        }
    }

    /// Records that no terminator before `pos` is left to report, when the
    /// mask is used up: the search resumes at `pos` if that is further than
    /// what was searched already.
    #[inline]
    pub(crate) fn searched_to(&mut self, pos: usize) {
        debug_assert_eq!(self.mask, 0);
        if pos > self.scan + self.mask_len {
            self.scan = pos;
            self.mask_len = 0;
        }
    }

    /// Makes the search resume exactly at `pos`: the bytes before it hold no
    /// line end still to report, and none is marked (no mask pending).
    #[inline]
    pub(crate) fn resume_at(&mut self, pos: usize) {
        debug_assert_eq!(self.mask, 0);
        self.scan = pos;
        self.mask_len = 0;
    }

    /// Accounts for `n` bytes consumed from the front (always at a line
    /// boundary, so never inside a character).
    #[inline]
    pub(crate) fn consumed(&mut self, n: usize) {
        self.valid = self.valid.saturating_sub(n);
        if n <= self.scan {
            self.scan -= n;
            return;
        }
        let shift = n - self.scan;
        self.scan = 0;
        if shift >= self.mask_len {
            self.mask = 0;
            self.mask_len = 0;
        } else {
            self.mask >>= shift;
            self.mask_len -= shift;
        }
    }

    /// Position of the next CR or LF in `bytes` (the buffer this cursor
    /// describes), at or after `scan`. Returns `None` after recording that
    /// the whole buffer was searched.
    #[inline(always)]
    pub(crate) fn find_eol(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.mask != 0 {
            return Some(self.scan + self.mask.trailing_zeros() as usize);
        }
        if self.scan + self.mask_len >= bytes.len() {
            // Searched to the end already (the usual second look after a
            // line, when input comes a few bytes at a time).
            self.scan = bytes.len();
            self.mask_len = 0;
            return None;
        }
        self.refill(bytes)
    }

    /// The slow half of [`find_eol`](Self::find_eol): the mask is used up,
    /// search on from the end of what it covered. Every block searched is
    /// also checked for being ASCII, which extends the validated prefix for
    /// free (most event streams are ASCII JSON).
    #[inline(never)]
    fn refill(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut pos = self.scan + self.mask_len;
        self.mask_len = 0;
        // Short runs without a terminator (a JSON token event, a 100-byte
        // line) are cheapest block by block; a long run goes to a loop that
        // needs no mask and strides further.
        for _ in 0..PRESCAN_BLOCKS {
            let Some(block) = bytes.get(pos..pos + 64) else {
                return self.refill_tail(bytes, pos);
            };
            let (mask, ascii) = scan_block(block.try_into().expect("a 64-byte range"));
            if ascii {
                self.ascii_run(pos, pos + 64);
            }
            if mask != 0 {
                self.scan = pos;
                self.mask = mask;
                self.mask_len = 64;
                return Some(pos + mask.trailing_zeros() as usize);
            }
            pos += 64;
        }
        // When the validated prefix reaches the line (or the block just
        // searched, which had a byte that is not ASCII), the search
        // validates as it goes: the line is then read once. Further ahead,
        // the bytes were validated already (a field had the rest of the
        // input checked) and only the search is left.
        //
        // When the prefix stops further back, in the blocks the short
        // search passed (the first lines of an event of multi-byte text),
        // the search validates from there, passing over the line ends it
        // reported, if the lines are long (`long_lines`): news in
        // Devanagari and Thai on one line of 1 to 3 KiB, 1.08x to 1.15x at
        // 16 KiB. Lines of a few hundred bytes are cheaper to leave to the
        // check of the input's rest in one pass, which a field of the line
        // then makes and which covers the lines after it too (each line
        // checked from its start cost 0.94x to 0.98x on CJK text, emoji
        // and token streams).
        //
        // Not in an input of a few KiB (a small chunk): the check of the
        // rest of it in one pass, which a field then makes
        // (`field_is_valid`), streams it in from memory, where line after
        // line of fused search waits for each line's loads (0.84x on
        // OpenAI's stream at 1 KiB chunks from 16 MiB).
        let fuse = bytes.len() >= FUSED_MIN
            && self.valid <= pos
            && (pos - self.valid <= 64 || self.long_lines && pos - self.valid <= FUSE_LAG_MAX);
        let (from, known) = if fuse {
            // From where the prefix reaches, passing over the line ends
            // before `pos`, which were reported.
            (self.valid, scan_long_valid(bytes.get(self.valid..).unwrap_or_default(), pos - self.valid))
        } else {
            (pos, scan_long(bytes.get(pos..).unwrap_or_default()))
        };
        let (found, valid) = known;
        self.valid_run(from, from + valid);
        let found = found.map(|i| from + i);
        self.long_lines = found.unwrap_or(bytes.len()) - pos >= LONG_LINE;
        self.found_or_end(found, bytes.len())
    }

    /// A cursor for a new input: nothing searched or validated, but what was
    /// learnt of the lines (`long_lines`) is kept.
    #[inline]
    pub(crate) fn reset(&mut self) {
        *self = Cursor { long_lines: self.long_lines, ..Cursor::default() };
    }

    /// Records that `bytes[from..to]` is ASCII: if the validated prefix
    /// reaches `from`, it now reaches `to`.
    #[inline]
    pub(crate) fn ascii_run(&mut self, from: usize, to: usize) {
        self.valid_run(from, to)
    }

    /// Records that `bytes[from..to]` is valid UTF-8 ending on a character
    /// boundary (`from` being one): if the validated prefix reaches `from`,
    /// it now reaches `to`.
    #[inline]
    pub(crate) fn valid_run(&mut self, from: usize, to: usize) {
        if self.valid >= from && to > self.valid {
            self.valid = to;
        }
    }

    /// [`refill`](Self::refill) for the last, partial block of the input.
    #[inline(never)]
    fn refill_tail(&mut self, bytes: &[u8], pos: usize) -> Option<usize> {
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.len() >= 16 {
            // Searched in place: copied into a zeroed block, the bytes were
            // stored at other widths than the block's loads read them, which
            // waited for the stores (a tenth of the time with chunks of a few
            // dozen bytes).
            let (mask, ascii) = scan_partial(rest);
            if ascii {
                self.ascii_run(pos, bytes.len());
            }
            if mask == 0 {
                self.scan = bytes.len();
                return None;
            }
            self.scan = pos;
            self.mask = mask;
            self.mask_len = rest.len();
            Some(pos + mask.trailing_zeros() as usize)
        } else {
            // Byte-at-a-time feeding lands here: a plain loop is cheapest.
            let found = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let upto = found.unwrap_or(rest.len());
            if rest[..upto].is_ascii() {
                // The terminator is ASCII too.
                self.ascii_run(pos, pos + found.map_or(upto, |p| p + 1));
            }
            self.found_or_end(found.map(|i| pos + i), bytes.len())
        }
    }

    /// Records the outcome of a search without a mask: a terminator at
    /// `found`, or none before `len`.
    #[inline]
    fn found_or_end(&mut self, found: Option<usize>, len: usize) -> Option<usize> {
        match found {
            Some(pos) => self.found_at(pos),
            None => {
                self.scan = len;
                None
            }
        }
    }

    /// Records a terminator found at `pos` without a mask around it.
    #[inline]
    pub(crate) fn found_at(&mut self, pos: usize) -> Option<usize> {
        self.scan = pos;
        self.mask = 1;
        self.mask_len = 1;
        Some(pos)
    }
}

/// Whether `bytes` holds a CR or LF: the check of a short feed while the
/// decoder is quiet.
#[inline]
pub(crate) fn has_line_end(bytes: &[u8]) -> bool {
    match bytes.len() {
        0..16 => bytes.iter().any(|&b| b == b'\n' || b == b'\r'),
        16..64 => scan_partial(bytes).0 != 0,
        _ => memchr::memchr2(b'\n', b'\r', bytes).is_some(),
    }
}

/// [`scan_block`] of the 16 to 63 bytes of `rest`: bit `i` of the mask set
/// when `rest[i]` is CR or LF; and whether `rest` is ASCII. (With AVX-512,
/// one masked load; fewer bytes measured no faster that way than with a
/// loop, on blocks of a chunk each and at 16-byte chunks.)
#[inline]
fn scan_partial(rest: &[u8]) -> (u64, bool) {
    debug_assert!((16..64).contains(&rest.len()));
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if Avx512::detect().is_some() {
        // SAFETY: AVX-512 F and BW were just detected on this CPU.
        #[allow(unsafe_code)]
        return unsafe { avx512::scan_partial_avx512(rest) };
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: the function only needs SSE2, which this cfg guarantees is
        // enabled for the whole build (it is part of the x86_64 baseline).
        #[allow(unsafe_code)]
        unsafe {
            scan_partial_sse2(rest)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        scan_partial_scalar(rest)
    }
}

/// The portable definition of [`scan_partial`], and its reference in tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2", not(test)), allow(dead_code))]
fn scan_partial_scalar(rest: &[u8]) -> (u64, bool) {
    let mask = rest.iter().enumerate().fold(0, |m, (i, &b)| m | (u64::from(b == b'\n' || b == b'\r') << i));
    (mask, rest.is_ascii())
}

/// [`scan_partial`] with SSE2: 16-byte loads from the start, the last one
/// ending at the end of `rest` and overlapping the one before it (a byte
/// seen twice sets the same bit twice).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn scan_partial_sse2(rest: &[u8]) -> (u64, bool) {
    use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let lf = _mm_set1_epi8(b'\n' as i8);
    let cr = _mm_set1_epi8(b'\r' as i8);
    let (mut mask, mut high) = (0u64, 0i32);
    let mut window = |at: usize| {
        let v = load16(rest[at..at + 16].try_into().expect("16 bytes"));
        let hits = _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr));
        // movemask yields 16 bits in an i32; the cast keeps exactly those.
        mask |= u64::from(_mm_movemask_epi8(hits) as u16) << at;
        high |= _mm_movemask_epi8(v);
    };
    let mut at = 0;
    while at + 16 <= rest.len() {
        window(at);
        at += 16;
    }
    if at < rest.len() {
        window(rest.len() - 16);
    }
    (mask, high == 0)
}

/// How many 64-byte blocks `refill` masks before handing a long line to
/// [`scan_long`]. One: the mask pays off for lines that end within the
/// block; a line that does not is likely long (4 KiB JSON lines decode 4%
/// faster than with two blocks, and token streams no slower).
const PRESCAN_BLOCKS: usize = 1;

/// How far behind a long search's start the validated prefix may stop for
/// the search to validate from there, when the lines are long: the block
/// `refill` returned last and the ones it searched since.
const FUSE_LAG_MAX: usize = 64 * (PRESCAN_BLOCKS + 1);

/// A line this long past where its long search began makes the lines
/// after it count as long (`Cursor::long_lines`).
const LONG_LINE: usize = 1024;

/// Bit `i` of the mask set when `block[i]` is CR or LF; and whether the
/// whole block is ASCII.
#[inline]
fn scan_block(block: &[u8; 64]) -> (u64, bool) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: the function only needs SSE2, which this cfg guarantees is
        // enabled for the whole build (it is part of the x86_64 baseline).
        #[allow(unsafe_code)]
        unsafe {
            scan_block_sse2(block)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        scan_block_scalar(block)
    }
}

/// The portable definition of [`scan_block`], and its reference in tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2", not(test)), allow(dead_code))]
fn scan_block_scalar(block: &[u8; 64]) -> (u64, bool) {
    let mask = block.iter().enumerate().fold(0, |m, (i, &b)| m | (u64::from(b == b'\n' || b == b'\r') << i));
    (mask, block.is_ascii())
}

/// Loads 16 bytes. Safe code: the compiler turns the byte-wise
/// `_mm_set_epi8` into one unaligned load.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn load16(b: &[u8; 16]) -> core::arch::x86_64::__m128i {
    use core::arch::x86_64::_mm_set_epi8;
    _mm_set_epi8(
        b[15] as i8,
        b[14] as i8,
        b[13] as i8,
        b[12] as i8,
        b[11] as i8,
        b[10] as i8,
        b[9] as i8,
        b[8] as i8,
        b[7] as i8,
        b[6] as i8,
        b[5] as i8,
        b[4] as i8,
        b[3] as i8,
        b[2] as i8,
        b[1] as i8,
        b[0] as i8,
    )
}

/// [`scan_block`] with SSE2: first one signed compare per 16 bytes, which
/// flags control characters up to CR and non-ASCII bytes (see
/// [`scan_long_avx2`]); a block with neither is ASCII without a terminator,
/// as most blocks of a long line are. Otherwise four 16-byte compares
/// against CR and LF, and the high bits of every byte for the ASCII test.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn scan_block_sse2(block: &[u8; 64]) -> (u64, bool) {
    use core::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let v: [_; 4] =
        core::array::from_fn(|k| load16(block[16 * k..16 * k + 16].try_into().expect("16 bytes")));
    let flag = _mm_set1_epi8(0x0E);
    let flagged = _mm_or_si128(
        _mm_or_si128(_mm_cmplt_epi8(v[0], flag), _mm_cmplt_epi8(v[1], flag)),
        _mm_or_si128(_mm_cmplt_epi8(v[2], flag), _mm_cmplt_epi8(v[3], flag)),
    );
    if _mm_movemask_epi8(flagged) == 0 {
        return (0, true);
    }
    let lf = _mm_set1_epi8(b'\n' as i8);
    let cr = _mm_set1_epi8(b'\r' as i8);
    let mut out = 0u64;
    let mut high = 0i32;
    for (k, &v) in v.iter().enumerate() {
        let hits = _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr));
        // movemask yields 16 bits in an i32; the cast keeps exactly those.
        out |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * k);
        high |= _mm_movemask_epi8(v);
    }
    (out, high == 0)
}

/// Whether any of 16 bytes is CR or LF, or NUL when `nul` (the encoder's
/// check of the values it writes).
#[inline(always)]
pub(crate) fn block16_has_special(block: &[u8; 16], nul: bool) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: the function only needs SSE2, which this cfg guarantees is
        // enabled for the whole build (it is part of the x86_64 baseline).
        #[allow(unsafe_code)]
        unsafe {
            block16_sse2(block, nul)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        block16_scalar(block, nul)
    }
}

/// The portable definition of [`block16_has_special`], and its reference in
/// tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2", not(test)), allow(dead_code))]
fn block16_scalar(block: &[u8; 16], nul: bool) -> bool {
    block.iter().any(|&b| b == b'\n' || b == b'\r' || (nul && b == 0))
}

/// [`block16_has_special`] with SSE2: three compares and one mask.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn block16_sse2(block: &[u8; 16], nul: bool) -> bool {
    use core::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
    };
    let v = load16(block);
    let mut hits = _mm_or_si128(
        _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
        _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
    );
    if nul {
        hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, _mm_setzero_si128()));
    }
    _mm_movemask_epi8(hits) != 0
}

/// The first CR or LF in `hay`, and how many leading bytes of `hay` are
/// known to be ASCII (a lower bound, possibly 0). With AVX-512 where the
/// CPU has it: on a 16 KiB line in L1, 1.3x the AVX2 loop on ASCII text and
/// 1.6x on text with multi-byte characters.
#[inline]
pub(crate) fn scan_long(hay: &[u8]) -> (Option<usize>, usize) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        if Avx512::detect().is_some() {
            // SAFETY: AVX-512 F and BW were just detected on this CPU.
            #[allow(unsafe_code)]
            return unsafe { avx512::scan_long_avx512(hay) };
        }
        if Avx2::detect().is_some() {
            // SAFETY: AVX2 support was just detected at run time.
            #[allow(unsafe_code)]
            return unsafe { scan_long_avx2(hay) };
        }
    }
    (memchr::memchr2(b'\n', b'\r', hay), 0)
}

/// [`scan_long`] that also validates: the first CR or LF in `hay` from
/// `skip` on, and how many leading bytes of `hay` are known to be valid
/// UTF-8 ending on a character boundary (through the terminator when the
/// bytes before it are valid; with no terminator, up to a character `hay`
/// ends inside of). For a line whose start the validated prefix reaches,
/// or nearly: `hay` starts where the prefix ends, and the line ends before
/// `skip`, reported already, are checked as text and not found again. The
/// prefix then grows with the search instead of by a second pass. With
/// AVX-512; elsewhere the ASCII prefix of [`scan_long`] (none past a
/// `skip`). Not inlined: in the line
/// search's refill, whose other paths are hot for lines of a few hundred
/// bytes, the inlined dispatch cost those paths 6% (OpenAI's stream at
/// 1 KiB chunks).
#[inline(never)]
pub(crate) fn scan_long_valid(hay: &[u8], skip: usize) -> (Option<usize>, usize) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        if Avx512Vbmi::detect().is_some() {
            // SAFETY: AVX-512 F, BW and VBMI were just detected on this CPU.
            #[allow(unsafe_code)]
            return unsafe { avx512::scan_valid_vbmi(hay, skip) };
        }
        if Avx512::detect().is_some() {
            // SAFETY: AVX-512 F and BW were just detected on this CPU.
            #[allow(unsafe_code)]
            return unsafe { avx512::scan_valid_avx512(hay, skip) };
        }
    }
    let skip = skip.min(hay.len());
    let (found, ascii) = scan_long(&hay[skip..]);
    (found.map(|p| skip + p), if skip == 0 { ascii } else { 0 })
}

/// The portable definition of [`scan_long`], the reference in tests.
#[cfg(test)]
fn scan_long_scalar(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n' || b == b'\r')
}

/// Loads 32 bytes (two safe 16-byte loads, joined).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
#[inline]
fn load32(b: &[u8]) -> core::arch::x86_64::__m256i {
    let lo = load16(b[..16].try_into().expect("16 bytes"));
    let hi = load16(b[16..32].try_into().expect("16 bytes"));
    core::arch::x86_64::_mm256_set_m128i(hi, lo)
}

/// [`scan_long`] with AVX2: 64 bytes a step, the terminator search and the
/// ASCII test in one pass over the bytes.
///
/// While the bytes are ASCII, one signed compare per 32 bytes does both
/// jobs: a byte is below 0x0E as a signed number exactly when it is a
/// control character up to CR (LF and CR among them) or not ASCII (0x80 and
/// up are negative). A block with none of those holds no terminator and is
/// ASCII; only a flagged block (a terminator, a tab, a non-ASCII character)
/// takes the exact test. Once a block is not ASCII the ASCII prefix has
/// ended and the combined test buys nothing more, so the rest of the line
/// takes the terminator search alone.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
fn scan_long_avx2(hay: &[u8]) -> (Option<usize>, usize) {
    use core::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let lf = _mm256_set1_epi8(b'\n' as i8);
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let flag = _mm256_set1_epi8(0x0E);
    let terminators = |a, b| {
        let ea = _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr));
        let eb = _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr));
        u64::from(_mm256_movemask_epi8(ea) as u32) | u64::from(_mm256_movemask_epi8(eb) as u32) << 32
    };
    let mut at = 0;
    // The ASCII prefix: every block before `at` is ASCII.
    let mut all_ascii = true;
    for c in hay[at..].chunks_exact(64) {
        let a = load32(&c[..32]);
        let b = load32(&c[32..]);
        let flagged = _mm256_or_si256(_mm256_cmpgt_epi8(flag, a), _mm256_cmpgt_epi8(flag, b));
        if _mm256_movemask_epi8(flagged) != 0 {
            let mask = terminators(a, b);
            if mask != 0 {
                // The bytes before the terminator may still be ASCII, and
                // the terminator is: the next line starts known valid.
                let upto = mask.trailing_zeros() as usize;
                let high = u64::from(_mm256_movemask_epi8(a) as u32)
                    | u64::from(_mm256_movemask_epi8(b) as u32) << 32;
                let ascii = if high & !(u64::MAX << upto) == 0 { at + upto + 1 } else { at };
                return (Some(at + upto), ascii);
            }
            if _mm256_movemask_epi8(_mm256_or_si256(a, b)) != 0 {
                all_ascii = false;
                break;
            }
        }
        at += 64;
    }
    let ascii = at;
    if !all_ascii {
        // Not ASCII: search on for a terminator alone, from this block.
        for c in hay[at..].chunks_exact(64) {
            let mask = terminators(load32(&c[..32]), load32(&c[32..]));
            if mask != 0 {
                return (Some(at + mask.trailing_zeros() as usize), ascii);
            }
            at += 64;
        }
    }
    let rest = &hay[at..];
    let (found, rest_ascii) = if rest.is_empty() || hay.len() < 64 {
        let found = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        (found, rest[..found.unwrap_or(rest.len())].is_ascii())
    } else {
        // Fewer than 64 bytes left: the last 64 bytes of `hay` are tested,
        // and the bits of those already tested shifted out.
        let last = &hay[hay.len() - 64..];
        let (a, b) = (load32(&last[..32]), load32(&last[32..]));
        let skip = 64 - rest.len();
        let mask = terminators(a, b) >> skip;
        let high = (u64::from(_mm256_movemask_epi8(a) as u32)
            | u64::from(_mm256_movemask_epi8(b) as u32) << 32)
            >> skip;
        let found = (mask != 0).then(|| mask.trailing_zeros() as usize);
        let upto = found.unwrap_or(rest.len());
        (found, high & !(u64::MAX << upto) == 0)
    };
    // The ASCII prefix may reach into the last, partial block: without
    // this, a line that ends a chunk would never be known valid.
    let upto = found.unwrap_or(rest.len());
    let ascii = if ascii == at && rest_ascii { at + found.map_or(upto, |p| p + 1) } else { ascii };
    (found.map(|p| at + p), ascii)
}

/// Appends `hay` to `out` up to its first CR or LF, and returns where that
/// is and whether the bytes appended are valid UTF-8 there. When `hay`
/// holds no terminator, all of it is appended (callers keep it as the start
/// of a line that goes on in the next input) and the result is `None` with
/// whether the bytes hold no invalid sequence before their last three: those
/// may be the start of a character, which the next input completes and
/// checks (a call with them as its `before`).
///
/// `before` is the three bytes that precede `hay` in its line (zeros where
/// the line starts, since a line follows an ASCII terminator): a character
/// that the last input ended inside is completed, and checked, by the first
/// bytes of `hay`. The bytes before must themselves have held no invalid
/// sequence, which callers know from their own earlier calls.
///
/// This is the search, the UTF-8 validation and the copy of a `data` line in
/// one pass over the bytes: each block is stored as soon as it is loaded
/// and tested, so the bytes are read once, not once to search, once to
/// validate and once to copy. Whole blocks are stored, so up to 63 bytes
/// past the terminator may be written into the spare capacity of `out`
/// (never within its length).
///
/// The decoder calls it through a [`LineCopier`] chosen once per batch of
/// lines, so that the AVX2 loop is inlined into the caller's.
pub(crate) trait LineCopier: Copy {
    /// See the trait.
    fn copy_line(self, hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool);

    /// Whether [`copy_valid_line`](Self::copy_valid_line) is worth a branch
    /// in the caller's loop: with AVX-512. With AVX2, the branch alone made
    /// the compiler reload the check's constants in every block of the
    /// checking copy (16 vector registers are too few for both), which cost
    /// more instructions than skipping the check saved.
    const SKIPS_CHECK: bool = false;

    /// [`copy_line`](Self::copy_line) of bytes the caller knows to be
    /// valid UTF-8 as far as the copy can reach (all of `hay`): the search
    /// and the copy, without the check.
    #[inline(always)]
    fn copy_valid_line(self, hay: &[u8], out: &mut BytesMut) -> Option<usize> {
        let found = scan_long(hay).0;
        out.extend_from_slice(&hay[..found.unwrap_or(hay.len())]);
        found
    }

    /// Whether [`append_short_line`](Self::append_short_line) is worth
    /// trying before the general copy: with AVX-512, where it is one load
    /// and a few compares. (Elsewhere it is the portable loop, which costs
    /// about what the general copy does.)
    const SHORT_LINES: bool = false;

    /// A short line that joins the data in `out`: when `block`, the 64
    /// bytes from the line's value on, holds a CR or LF and the value
    /// before it is valid UTF-8, appends an LF and the value to `out` and
    /// returns the terminator's position in `block`. Otherwise returns
    /// `None` with nothing appended (spare capacity may be written), and the
    /// caller takes the line the general way. Lines of pretty-printed JSON,
    /// one `data:` per line of a document, are a few dozen bytes each: the
    /// general copy's setup and limits cost them more than the copy.
    #[inline(always)]
    fn append_short_line(self, block: &[u8; 64], out: &mut BytesMut) -> Option<usize> {
        append_short_line_portable(block, out)
    }
}

/// [`LineCopier::append_short_line`] for any CPU, and its reference in
/// tests.
#[inline]
fn append_short_line_portable(block: &[u8; 64], out: &mut BytesMut) -> Option<usize> {
    let upto = block.iter().position(|&b| b == b'\n' || b == b'\r')?;
    let value = &block[..upto];
    if !value.is_ascii() && core::str::from_utf8(value).is_err() {
        return None;
    }
    out.reserve(upto + 1);
    out.extend_from_slice(b"\n");
    out.extend_from_slice(value);
    Some(upto)
}

/// [`LineCopier`] for any CPU: a search, then a copy and a validation.
#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl LineCopier for Portable {
    #[inline(always)]
    fn copy_line(self, hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
        copy_line_portable(hay, before, out)
    }
}

/// [`LineCopier`] with AVX2. A value exists only where the CPU has AVX2
/// ([`Avx2::detect`]), which is what makes calling the AVX2 code sound.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl Avx2 {
    /// `Some` when this CPU has AVX2 ([`level`]).
    #[inline]
    pub(crate) fn detect() -> Option<Avx2> {
        (level() >= Level::Avx2).then_some(Avx2(()))
    }
}

/// The SIMD code this CPU can run, each level including the ones below.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Portable = 1,
    /// AVX2.
    Avx2 = 2,
    /// AVX2, and AVX-512 F and BW.
    Avx512 = 3,
    /// All of the above, and AVX-512 VBMI.
    Avx512Vbmi = 4,
}

/// [`Level`] as detected, 0 until it is.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static LEVEL: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// The SIMD level of this CPU: detected once, then one load a dispatch
/// rather than a feature test for each feature (the copy and the check are
/// dispatched once per line piece, a few times per chunk).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline]
pub(crate) fn level() -> Level {
    match LEVEL.load(core::sync::atomic::Ordering::Relaxed) {
        0 => detect_level(),
        1 => Level::Portable,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => Level::Avx512Vbmi,
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[cold]
fn detect_level() -> Level {
    use std::is_x86_feature_detected as has;
    // Each level requires the features of the levels below it, so that a
    // CPU (or a hypervisor's view of one) without them stays below.
    let found = if !has!("avx2") {
        Level::Portable
    } else if !(has!("avx512f") && has!("avx512bw")) {
        Level::Avx2
    } else if !has!("avx512vbmi") {
        Level::Avx512
    } else {
        Level::Avx512Vbmi
    };
    let level = found.min(level_cap(std::env::var("SSE_PROTO_SIMD").ok().as_deref()));
    LEVEL.store(level as u8, core::sync::atomic::Ordering::Relaxed);
    level
}

/// The highest level `SSE_PROTO_SIMD` allows: `portable`, `avx2`,
/// `avx512` or `avx512vbmi` (any other value, or none, allows all). A cap
/// can only lower what the CPU has, never raise it, so it is always sound;
/// it makes the code of another CPU testable and measurable here (the
/// differential tests and fuzz targets run at each level in CI).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn level_cap(var: Option<&str>) -> Level {
    match var {
        Some("portable") => Level::Portable,
        Some("avx2") => Level::Avx2,
        Some("avx512") => Level::Avx512,
        _ => Level::Avx512Vbmi,
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl LineCopier for Avx2 {
    #[inline(always)]
    fn copy_line(self, hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
        // SAFETY: an `Avx2` value is only made by `detect`, after AVX2 was
        // found on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            copy_line_avx2(hay, before, out)
        }
    }
}

/// [`LineCopier::copy_line`] with the best implementation for this CPU, for
/// one-off calls.
pub(crate) fn copy_line(hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(vbmi) = Avx512Vbmi::detect() {
        return vbmi.copy_line(hay, before, out);
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx512) = Avx512::detect() {
        return avx512.copy_line(hay, before, out);
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx2) = Avx2::detect() {
        return avx2.copy_line(hay, before, out);
    }
    Portable.copy_line(hay, before, out)
}

/// Whether `bytes` is valid UTF-8, ending on a character boundary: the
/// AVX-512 check where the CPU has it, simdutf8 otherwise. Not inlined: it
/// runs about once per chunk, and inlined into the decoder's loop it made
/// that loop slower.
#[inline(never)]
pub(crate) fn utf8_valid(bytes: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if Avx512Vbmi::detect().is_some() {
        // SAFETY: AVX-512 F, BW and VBMI were just detected on this CPU.
        #[allow(unsafe_code)]
        return unsafe { avx512::valid_utf8_vbmi(bytes) };
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if Avx512::detect().is_some() {
        // SAFETY: AVX-512 F and BW were just detected on this CPU.
        #[allow(unsafe_code)]
        return unsafe { avx512::valid_utf8_avx512(bytes) };
    }
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// The last three bytes of `bytes[from..]`, zero-padded in front: the
/// `before` of [`LineCopier::copy_line`] for a line whose value so far is
/// `bytes[from..]`.
#[inline]
pub(crate) fn tail3(bytes: &[u8], from: usize) -> [u8; 3] {
    let value = bytes.get(from..).unwrap_or_default();
    // Byte by byte: a copy of a variable length into a stack array, read
    // back as one word, waits for that copy's narrower stores.
    let n = value.len();
    let at = |k: usize| if n >= k { value[n - k] } else { 0 };
    [at(3), at(2), at(1)]
}

/// Whether `bytes` are the first bytes of a character that goes on past
/// them, valid as far as they go (not a lead byte with a continuation it
/// cannot take, as `E0 80`): what a chunk that cuts a character leaves at
/// its end. False for no bytes.
#[inline]
pub(crate) fn starts_a_character(bytes: &[u8]) -> bool {
    matches!(core::str::from_utf8(bytes), Err(e) if e.valid_up_to() == 0 && e.error_len().is_none())
}

/// How many bytes at the end of `bytes` are the start of a character that
/// goes on past them: a lead byte followed by fewer continuation bytes than
/// it calls for (0 when the last character is whole, or when the bytes
/// there are invalid anyway, which validation then reports).
///
/// Without branches on the bytes: a chunk cuts a character at any of its
/// bytes, so a loop over them mispredicts about once a chunk of
/// multi-byte text.
#[inline]
pub(crate) fn incomplete_tail(bytes: &[u8]) -> usize {
    let n = bytes.len();
    // Missing bytes read as ASCII, which starts and continues nothing.
    let at = |k: usize| if n >= k { bytes[n - k] } else { 0 };
    let (b1, b2, b3) = (at(1), at(2), at(3));
    let cont = |b: u8| b & 0xC0 == 0x80;
    // A lead byte last; a lead of three or four bytes before one
    // continuation byte; a lead of four before two (at most one holds).
    let one = usize::from((0xC0..=0xF7).contains(&b1));
    let two = usize::from(cont(b1) & (0xE0..=0xF7).contains(&b2));
    let three = usize::from(cont(b1) & cont(b2) & (0xF0..=0xF7).contains(&b3));
    one + 2 * two + 3 * three
}

/// The definition of [`incomplete_tail`], byte by byte: the reference in
/// tests.
#[cfg(test)]
fn incomplete_tail_scalar(bytes: &[u8]) -> usize {
    for k in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - k];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > k { k } else { 0 };
    }
    0
}

/// [`LineCopier::copy_line`] in separate passes, and its reference in tests.
fn copy_line_portable(hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
    let found = memchr::memchr2(b'\n', b'\r', hay);
    let line = &hay[..found.unwrap_or(hay.len())];
    out.extend_from_slice(line);
    (found, utf8_continues(before, line, found.is_some()))
}

/// Whether `line`, read after `before` (which held no invalid sequence),
/// holds none, and when `complete`, ends on a character boundary.
pub(crate) fn utf8_continues(before: [u8; 3], line: &[u8], complete: bool) -> bool {
    // The character `before` ends inside of, if any: its lead byte and the
    // continuation bytes after it. Not `incomplete_tail`: a byte of 0xF8
    // or more among the last three of a piece that a SIMD copy checked
    // leniently (see `LineCopier`) must stay pending here, so that the
    // check of the head below reports it.
    let mut pending: &[u8] = &[];
    for k in 0..3 {
        let b = before[2 - k];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let len = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xFF => 4,
            _ => 1,
        };
        if len > k + 1 {
            pending = &before[2 - k..];
        }
        break;
    }
    let prefix_valid = |bytes: &[u8], complete: bool| match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    };
    if pending.is_empty() {
        return prefix_valid(line, complete);
    }
    // The pending character, completed by the first bytes of `line`.
    let need = match pending[0] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    } - pending.len();
    let mut head = [0u8; 4];
    let take = need.min(line.len());
    head[..pending.len()].copy_from_slice(pending);
    head[pending.len()..pending.len() + take].copy_from_slice(&line[..take]);
    let head = &head[..pending.len() + take];
    if take < need {
        return prefix_valid(head, complete);
    }
    prefix_valid(head, true) && prefix_valid(&line[need..], complete)
}

/// The lookup tables of the UTF-8 check (Keiser and Lemire, "Validating
/// UTF-8 in less than one instruction per byte", 2021), shared by the AVX2
/// and the AVX-512 code: each classifies one nibble of a byte pair by what
/// the pair can be wrong by.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod utf8_tables {
    // What a byte pair can be wrong by, one bit each; a pair is wrong when
    // the classes of its first byte's high nibble, its first byte's low
    // nibble and its second byte's high nibble share a bit.
    const TOO_SHORT: u8 = 1 << 0; // a lead byte or ASCII after a lead byte
    const TOO_LONG: u8 = 1 << 1; // a continuation byte after ASCII
    const OVERLONG_3: u8 = 1 << 2;
    const TOO_LARGE: u8 = 1 << 3;
    const SURROGATE: u8 = 1 << 4;
    const OVERLONG_2: u8 = 1 << 5;
    const TOO_LARGE_1000: u8 = 1 << 6;
    const OVERLONG_4: u8 = 1 << 6;
    const TWO_CONTS: u8 = 1 << 7; // a continuation byte after a continuation byte
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;
    pub(crate) const BYTE_1_HIGH: [u8; 16] = [
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
    ];
    const LARGE: u8 = CARRY | TOO_LARGE | TOO_LARGE_1000;
    pub(crate) const BYTE_1_LOW: [u8; 16] = [
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
    ];
    pub(crate) const BYTE_2_HIGH: [u8; 16] = [
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ];
}

/// UTF-8 error flags of the 32 bytes `input` that follow the 32 bytes
/// `prev`: a lane is non-zero where a byte cannot follow the three before it
/// in valid UTF-8 (a missing or surplus continuation byte, an overlong
/// form, a surrogate, a code point past U+10FFFF). The lookup-table method
/// of Keiser and Lemire, "Validating UTF-8 in less than one instruction per
/// byte" (2021): three table lookups classify each byte pair, and the bytes
/// two and three back say where a continuation byte must be.
///
/// A line end is ASCII, so a character the line ends inside of flags the
/// lane of its terminator: the flags up to and including a terminator say
/// whether the line before it is valid.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
#[inline]
fn utf8_errors(
    prev: core::arch::x86_64::__m256i,
    input: core::arch::x86_64::__m256i,
) -> core::arch::x86_64::__m256i {
    use core::arch::x86_64::{
        __m256i, _mm256_alignr_epi8, _mm256_and_si256, _mm256_or_si256, _mm256_permute2x128_si256,
        _mm256_set1_epi8, _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_srli_epi16, _mm256_subs_epu8,
        _mm256_xor_si256,
    };
    let table = |t: [u8; 16]| {
        let t = t.map(|b| b as i8);
        _mm256_setr_epi8(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14],
            t[15], t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        )
    };
    let byte_1_high = table(utf8_tables::BYTE_1_HIGH);
    let byte_1_low = table(utf8_tables::BYTE_1_LOW);
    let byte_2_high = table(utf8_tables::BYTE_2_HIGH);
    let nibble = _mm256_set1_epi8(0x0F);
    let high = |v: __m256i| _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
    // The bytes one, two and three places back, across the two lanes and
    // from `prev` into `input`.
    let joined = _mm256_permute2x128_si256::<0x21>(prev, input);
    let prev1 = _mm256_alignr_epi8::<15>(input, joined);
    let prev2 = _mm256_alignr_epi8::<14>(input, joined);
    let prev3 = _mm256_alignr_epi8::<13>(input, joined);
    let special = _mm256_and_si256(
        _mm256_and_si256(
            _mm256_shuffle_epi8(byte_1_high, high(prev1)),
            _mm256_shuffle_epi8(byte_1_low, _mm256_and_si256(prev1, nibble)),
        ),
        _mm256_shuffle_epi8(byte_2_high, high(input)),
    );
    // A byte two back at 0xE0 or more, or three back at 0xF0 or more, must
    // be followed by a continuation here (the high bit after the saturating
    // subtraction); `special` has TWO_CONTS exactly where there is one.
    let third = _mm256_subs_epu8(prev2, _mm256_set1_epi8((0xE0u8 - 0x80) as i8));
    let fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8((0xF0u8 - 0x80) as i8));
    let must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(0x80u8 as i8));
    _mm256_xor_si256(must23, special)
}

/// Bit `i` set where lane `i` of the 64 bytes `a`, `b` is non-zero.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
#[inline]
fn nonzero_mask(a: core::arch::x86_64::__m256i, b: core::arch::x86_64::__m256i) -> u64 {
    use core::arch::x86_64::{_mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_setzero_si256};
    let zero = _mm256_setzero_si256();
    let za = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, zero)) as u32);
    let zb = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero)) as u32);
    !(za | zb << 32)
}

/// Appends `src` to `out`: a value of at most 64 bytes (an event's type or
/// id) with [`append_short`], longer ones with `memcpy`.
#[inline(always)]
pub(crate) fn append(src: &[u8], out: &mut BytesMut) {
    if src.len() <= 64 { append_short(src, out) } else { out.extend_from_slice(src) }
}

/// Appends `src`, at most 64 bytes (the last piece of a line the copy
/// reaches, an event's type or id), to `out` with two overlapping moves of
/// a fixed size rather than a call to `memcpy`, which costs more than the
/// copy at this length.
#[inline(always)]
fn append_short(src: &[u8], out: &mut BytesMut) {
    let n = src.len();
    assert!(n <= 64);
    out.reserve(n);
    let (s, dst) = (src.as_ptr(), out.spare_capacity_mut().as_mut_ptr().cast::<u8>());
    // SAFETY: `reserve` left at least `n` bytes of spare capacity after
    // `dst`, and `src` holds `n` bytes; each move below reads and writes
    // within the first `n` of them (`k <= n` bytes at `0` and at `n - k`),
    // together covering all `n`, so `set_len` only covers written bytes. A
    // `BytesMut` never shares its spare capacity with `src`.
    #[allow(unsafe_code)]
    unsafe {
        let two = |k: usize| {
            core::ptr::copy_nonoverlapping(s, dst, k);
            core::ptr::copy_nonoverlapping(s.add(n - k), dst.add(n - k), k);
        };
        match n {
            32..=64 => two(32),
            16..=31 => two(16),
            8..=15 => two(8),
            4..=7 => two(4),
            2..=3 => two(2),
            1 => two(1),
            _ => {}
        }
        out.set_len(out.len() + n);
    }
}

/// [`LineCopier::copy_line`] with AVX2: the terminator search of
/// [`scan_long_avx2`] and the UTF-8 check of [`utf8_errors`] on each
/// 64-byte block, storing it into the spare capacity of `out` as it goes.
///
/// A block with no byte below 0x0E (signed: no control character up to CR,
/// nothing non-ASCII) after a block that ended in ASCII is plain text with
/// nothing to check: one compare. Any other block (multi-byte text, a
/// terminator) takes the table lookups: 3-byte CJK text costs a few
/// instructions more per 32 bytes than ASCII, never another pass.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
#[inline]
fn copy_line_avx2(hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
    use core::arch::x86_64::{
        __m256i, _MM_HINT_T0, _mm_prefetch, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_setr_epi32, _mm256_setzero_si256, _mm256_storeu_si256,
        _mm256_testz_si256,
    };
    let lf = _mm256_set1_epi8(b'\n' as i8);
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let flag = _mm256_set1_epi8(0x0E);
    let terminators = |a, b| {
        let ea = _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr));
        let eb = _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr));
        u64::from(_mm256_movemask_epi8(ea) as u32) | u64::from(_mm256_movemask_epi8(eb) as u32) << 32
    };
    // The block before the first: `before` in its last three lanes.
    let mut prev =
        _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 0, i32::from_le_bytes([0, before[0], before[1], before[2]]));
    // Whether the last three bytes of `prev` are ASCII (then an ASCII block
    // after it needs no check).
    let mut prev_ascii = before.is_ascii();
    // Error flags of the blocks before the current one.
    let mut errors = _mm256_setzero_si256();
    // Whether a block of this line held non-ASCII text: then every block
    // after it takes the table lookups (see `copy_line_avx512`: in mixed
    // text a branch on whether the next block is plain mispredicts more
    // than the lookups cost).
    let mut mixed = false;
    let mut at = 0;
    while hay.len() - at >= 64 {
        // Whole blocks that fit both in what is left of `hay` and in the
        // room left in `out`. The length of `out` stays in a register while
        // they are stored: kept in `out`, every store would wait for the
        // last one's length update.
        let fit = (out.capacity() - out.len()).min(hay.len() - at) & !63;
        if fit == 0 {
            out.reserve(64);
            continue;
        }
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let src = &hay[at..at + fit];
        for (k, c) in src.chunks_exact(64).enumerate() {
            let k = 64 * k;
            // Input the size of a chunk comes from memory, not from a
            // cache: ask for it some blocks ahead (see `avx512::PREFETCH`).
            _mm_prefetch::<_MM_HINT_T0>(c.as_ptr().wrapping_add(512).cast());
            let (a, b) = (load32(&c[..32]), load32(&c[32..]));
            // SAFETY: `k + 64 <= fit`, and `fit` bytes of spare capacity
            // follow `dst`; unaligned stores need no alignment.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_storeu_si256(dst.add(k).cast::<__m256i>(), a);
                _mm256_storeu_si256(dst.add(k + 32).cast::<__m256i>(), b);
            }
            let flagged = _mm256_or_si256(_mm256_cmpgt_epi8(flag, a), _mm256_cmpgt_epi8(flag, b));
            if mixed || _mm256_movemask_epi8(flagged) != 0 || !prev_ascii {
                let mask = terminators(a, b);
                let (ea, eb) = (utf8_errors(prev, a), utf8_errors(a, b));
                if mask != 0 {
                    let upto = mask.trailing_zeros() as usize;
                    // SAFETY: the `k + upto` bytes after the old length
                    // were all written above.
                    #[allow(unsafe_code)]
                    unsafe {
                        out.set_len(out.len() + k + upto);
                    }
                    let valid = _mm256_testz_si256(errors, errors) != 0
                        && nonzero_mask(ea, eb) & (u64::MAX >> (63 - upto)) == 0;
                    return (Some(at + k + upto), valid);
                }
                errors = _mm256_or_si256(errors, _mm256_or_si256(ea, eb));
                prev_ascii = (_mm256_movemask_epi8(b) as u32) >> 29 == 0;
                mixed |= _mm256_movemask_epi8(_mm256_or_si256(a, b)) != 0;
            } else {
                prev_ascii = true;
            }
            prev = b;
        }
        // SAFETY: all `fit` bytes after the old length were written above.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(out.len() + fit);
        }
        at += fit;
    }
    let rest = &hay[at..];
    if rest.is_empty() {
        return (None, _mm256_testz_si256(errors, errors) != 0);
    }
    if at > 0 && rest.len() <= 61 {
        // The last bytes, fewer than 62, after at least one whole block: the
        // last 64 bytes of `hay` are loaded as they are (the first `shift`
        // of them were searched and checked above), rather than copied into
        // a zeroed block on the stack, whose wide loads would wait for the
        // narrower stores of that copy. A lane's UTF-8 verdict depends on
        // the three bytes before it, all in this block for the lanes from
        // `shift` (at least 3) on; a character the input ends inside is not
        // flagged, as with padding.
        let shift = 64 - rest.len();
        let last = &hay[hay.len() - 64..];
        let (a, b) = (load32(&last[..32]), load32(&last[32..]));
        let mask = terminators(a, b) >> shift;
        let n = if mask == 0 { rest.len() } else { mask.trailing_zeros() as usize };
        append_short(&rest[..n], out);
        let lanes =
            if mask == 0 { u64::MAX << shift } else { (u64::MAX >> (63 - n - shift)) & (u64::MAX << shift) };
        let valid = _mm256_testz_si256(errors, errors) != 0
            && (_mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0
                || nonzero_mask(utf8_errors(prev, a), utf8_errors(a, b)) & lanes == 0);
        return ((mask != 0).then_some(at + n), valid);
    }
    // The last bytes (the input usually ends inside a line here), zero-padded:
    // zeros are ASCII and no terminator.
    let mut block = [0u8; 64];
    block[..rest.len()].copy_from_slice(rest);
    let (a, b) = (load32(&block[..32]), load32(&block[32..]));
    let mask = terminators(a, b);
    let n = if mask == 0 { rest.len() } else { mask.trailing_zeros() as usize };
    append_short(&rest[..n], out);
    // The flags of the lanes that count: up to and including the
    // terminator, or every byte of `rest` (a character it ends inside of
    // flags only the padding).
    let lanes = if mask == 0 { !(u64::MAX << n) } else { u64::MAX >> (63 - n) };
    let valid = _mm256_testz_si256(errors, errors) != 0
        && (prev_ascii && _mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0
            || nonzero_mask(utf8_errors(prev, a), utf8_errors(a, b)) & lanes == 0);
    ((mask != 0).then_some(at + n), valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn simd_scans_match_the_scalar_definitions() {
        let mut block = [b'a'; 64];
        for seed in 0u64..2000 {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = [b'\n', b'\r', b'a', 0, 0x8a, 0x8d, b':', 0xff][(x % 8) as usize];
            }
            assert_eq!(scan_block(&block), scan_block_scalar(&block));
            for n in 16..64 {
                assert_eq!(scan_partial(&block[64 - n..]), scan_partial_scalar(&block[64 - n..]), "{n}");
                assert_eq!(scan_partial(&block[..n]), scan_partial_scalar(&block[..n]), "{n}");
            }
            // Each implementation the CPU has, not only the one picked.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            for n in 16..64 {
                for part in [&block[64 - n..], &block[..n]] {
                    // SAFETY: SSE2 is part of the x86-64 baseline (the cfg).
                    #[allow(unsafe_code)]
                    let sse2 = unsafe { scan_partial_sse2(part) };
                    assert_eq!(sse2, scan_partial_scalar(part), "sse2 {n}");
                }
            }
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            if Avx512::detect().is_some() {
                for n in 0..64 {
                    for part in [&block[64 - n..], &block[..n]] {
                        // SAFETY: AVX-512 F and BW were just detected.
                        #[allow(unsafe_code)]
                        let wide = unsafe { avx512::scan_partial_avx512(part) };
                        assert_eq!(wide, scan_partial_scalar(part), "avx512 {n}");
                    }
                }
            }
            for k in 0..4 {
                let b16: &[u8; 16] = block[16 * k..16 * k + 16].try_into().expect("16 bytes");
                for nul in [false, true] {
                    assert_eq!(block16_has_special(b16, nul), block16_scalar(b16, nul));
                }
            }
            // Every start and length through the long scanner too.
            for start in [0, 1, 7, 31, 63] {
                let hay = &block[start..];
                for (name, (found, ascii)) in every_scan_long(hay) {
                    assert_eq!(found, scan_long_scalar(hay), "{name}");
                    assert!(hay[..ascii].is_ascii(), "{name}");
                }
            }
        }
    }

    #[test]
    fn plain_runs_end_at_the_first_special_byte() {
        // Long plain runs take the one-compare fast path; every byte near
        // its threshold (0x0E, signed) must still be classified exactly.
        let specials = [b'\n', b'\r', 0x00, 0x09, 0x0B, 0x0C, 0x0E, 0x1F, 0x7F, 0x80, 0xC3, 0xFF];
        for len in [0, 1, 63, 64, 65, 120, 125, 126, 127, 128, 129, 200, 257] {
            for at in [0, 1, 31, 32, 63, 64, 66, 67, 100, 124, 128, 199, 256].into_iter().filter(|&a| a < len)
            {
                for &b in &specials {
                    let mut hay = alloc::vec![b'x'; len];
                    hay[at] = b;
                    for (name, (found, ascii)) in every_scan_long(&hay) {
                        assert_eq!(found, scan_long_scalar(&hay), "{name}: len {len}, {b:#x} at {at}");
                        assert!(hay[..ascii].is_ascii(), "{name}");
                        if hay.is_ascii() && name != "memchr" {
                            // ASCII through the terminator, or to the end.
                            assert_eq!(
                                ascii,
                                found.map_or(len, |p| p + 1),
                                "{name}: len {len}, {b:#x} at {at}"
                            );
                        }
                    }
                    if len >= 64 {
                        let block: &[u8; 64] = hay[len - 64..].try_into().expect("64 bytes");
                        assert_eq!(scan_block(block), scan_block_scalar(block));
                    }
                }
            }
        }
    }

    /// [`scan_long`] by every implementation this CPU runs, named.
    fn every_scan_long(hay: &[u8]) -> Vec<(&'static str, (Option<usize>, usize))> {
        #[allow(unused_mut)]
        let mut out = alloc::vec![("memchr", (memchr::memchr2(b'\n', b'\r', hay), 0))];
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if Avx2::detect().is_some() {
                // SAFETY: AVX2 was just detected on this CPU.
                #[allow(unsafe_code)]
                out.push(("avx2", unsafe { scan_long_avx2(hay) }));
            }
            if Avx512::detect().is_some() {
                // SAFETY: AVX-512 F and BW were just detected on this CPU.
                #[allow(unsafe_code)]
                out.push(("avx512", unsafe { avx512::scan_long_avx512(hay) }));
            }
        }
        assert_eq!(out.last().map(|r| r.1), Some(scan_long(hay)), "the dispatch picks the best");
        out
    }

    /// `copy_line` on `hay` after `before`, by every implementation, checked
    /// against `str::from_utf8` on the line and the bytes before it.
    fn check_copy(hay: &[u8], before: [u8; 3], held: usize, room: usize) {
        let found = scan_long_scalar(hay);
        let line = &hay[..found.unwrap_or(hay.len())];
        // The definition: `before` (trimmed to a valid tail) and the line.
        let start = (0..=3).find(|&k| core::str::from_utf8(&before[k..]).is_ok() || {
            matches!(core::str::from_utf8(&before[k..]), Err(e) if e.error_len().is_none() && e.valid_up_to() == 0)
        });
        let joined: Vec<u8> = before[start.unwrap_or(3)..].iter().chain(line).copied().collect();
        let (want, lenient) = match core::str::from_utf8(&joined) {
            Ok(_) => (true, true),
            Err(e) => (
                found.is_none() && e.error_len().is_none(),
                // Without a terminator, an invalid byte in the last three
                // may be taken for the start of a character: the next
                // input's check finds it.
                found.is_none() && e.valid_up_to() + 3 >= joined.len(),
            ),
        };
        let mut out = BytesMut::with_capacity(held + room);
        out.extend_from_slice(&b"held!"[..held]);
        let got = copy_line(hay, before, &mut out);
        assert_eq!(got.0, found, "{hay:x?} after {before:x?}");
        assert!(got.1 == want || got.1 == lenient, "{hay:x?} after {before:x?}: {got:?}");
        assert_eq!(&out[..held], &b"held!"[..held]);
        assert_eq!(&out[held..], line);
        let mut portable = BytesMut::new();
        let p = copy_line_portable(hay, before, &mut portable);
        assert_eq!(p.0, found);
        assert!(p.1 == want || p.1 == lenient, "portable: {hay:x?} after {before:x?}: {p:?}");
        let mut portable = BytesMut::new();
        assert_eq!(Portable.copy_valid_line(hay, &mut portable), found);
        assert_eq!(&portable[..], line);
        // Each SIMD implementation this CPU has, not only the best.
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            check_copier("avx2", Avx2::detect(), hay, before, held, room, (found, want, lenient));
            check_copier("avx512", Avx512::detect(), hay, before, held, room, (found, want, lenient));
            check_copier("avx512vbmi", Avx512Vbmi::detect(), hay, before, held, room, (found, want, lenient));
        }
    }

    /// One [`LineCopier`] in [`check_copy`], when this CPU has it.
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    fn check_copier<C: LineCopier>(
        name: &str,
        copier: Option<C>,
        hay: &[u8],
        before: [u8; 3],
        held: usize,
        room: usize,
        (found, want, lenient): (Option<usize>, bool, bool),
    ) {
        let Some(copier) = copier else { return };
        let mut out = BytesMut::with_capacity(held + room);
        out.extend_from_slice(&b"held!"[..held]);
        let got = copier.copy_line(hay, before, &mut out);
        assert_eq!(got.0, found, "{name}: {hay:x?} after {before:x?}");
        assert!(got.1 == want || got.1 == lenient, "{name}: {hay:x?} after {before:x?}: {got:?}");
        assert_eq!(&out[held..], &hay[..found.unwrap_or(hay.len())], "{name}");
        // Without the check: the same search and copy, whatever the bytes.
        let mut out = BytesMut::with_capacity(held + room);
        out.extend_from_slice(&b"held!"[..held]);
        assert_eq!(copier.copy_valid_line(hay, &mut out), found, "{name} without the check: {hay:x?}");
        assert_eq!(&out[..held], &b"held!"[..held]);
        assert_eq!(&out[held..], &hay[..found.unwrap_or(hay.len())], "{name} without the check");
    }

    /// [`LineCopier::append_short_line`] by `copier` against its
    /// definition: the terminator in `block`, and the value appended after
    /// an LF when it is valid UTF-8; nothing appended otherwise.
    fn check_short<C: LineCopier>(name: &str, copier: Option<C>, block: &[u8; 64], held: usize, room: usize) {
        let Some(copier) = copier else { return };
        let found = block.iter().position(|&b| b == b'\n' || b == b'\r');
        let want = found.filter(|&p| core::str::from_utf8(&block[..p]).is_ok());
        let mut out = BytesMut::with_capacity(held + room);
        out.extend_from_slice(&b"held!"[..held]);
        assert_eq!(copier.append_short_line(block, &mut out), want, "{name}: {block:x?}");
        assert_eq!(&out[..held], &b"held!"[..held], "{name}");
        match want {
            Some(p) => {
                assert_eq!(out[held], b'\n', "{name}");
                assert_eq!(&out[held + 1..], &block[..p], "{name}");
            }
            None => assert_eq!(out.len(), held, "{name}"),
        }
    }

    #[test]
    fn append_short_line_matches_its_definition() {
        // The terminator at every place and none; each valid and invalid
        // sequence at every place before and across it; with and without
        // room in the output.
        let seqs: Vec<&[u8]> = [&b""[..]].into_iter().chain(SEQUENCES.iter().copied()).collect();
        for end in (0..64).map(Some).chain([None]) {
            for seq in &seqs {
                for at in [0, 1, 2, 30, 31, 32, 33, 59, 60, 61, 62, 63] {
                    if at + seq.len() > 64 {
                        continue;
                    }
                    let mut block = [b'a'; 64];
                    if at >= 2 && (at + end.unwrap_or(0)) % 3 == 0 {
                        // A multi-byte character first: the check runs,
                        // and must stop at the terminator.
                        block[..2].copy_from_slice("é".as_bytes());
                    }
                    block[at..at + seq.len()].copy_from_slice(seq);
                    if let Some(e) = end {
                        block[e] = if e % 2 == 0 { b'\n' } else { b'\r' };
                    }
                    let block = &block;
                    for (held, room) in [(0, 0), (5, 100)] {
                        check_short("portable", Some(Portable), block, held, room);
                        #[cfg(all(target_arch = "x86_64", feature = "std"))]
                        {
                            check_short("avx2", Avx2::detect(), block, held, room);
                            check_short("avx512", Avx512::detect(), block, held, room);
                            check_short("vbmi", Avx512Vbmi::detect(), block, held, room);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn incomplete_tail_matches_its_definition() {
        // Every last three bytes (and every shorter input), after one byte
        // that must not matter.
        let interesting: Vec<u8> = (0..=255u8).collect();
        for &a in &interesting {
            for &b in &interesting {
                for &c in &interesting {
                    let bytes = [b'x', a, b, c];
                    assert_eq!(incomplete_tail(&bytes), incomplete_tail_scalar(&bytes), "{bytes:x?}");
                }
                assert_eq!(incomplete_tail(&[a, b]), incomplete_tail_scalar(&[a, b]), "{a:x} {b:x}");
            }
            assert_eq!(incomplete_tail(&[a]), incomplete_tail_scalar(&[a]), "{a:x}");
        }
        assert_eq!(incomplete_tail(&[]), 0);
    }

    #[test]
    fn copy_line_matches_its_definition() {
        // Every special byte at every place near the block edges, with the
        // output buffer holding something already and having little or much
        // room left (the copy stores whole blocks and must grow it).
        let specials = [b'\n', b'\r', 0x00, 0x09, 0x0B, 0x0E, 0x7F, 0x80, 0xC3, 0xFF];
        for len in [0, 1, 63, 64, 65, 120, 125, 126, 127, 128, 129, 200, 257] {
            for at in [0, 1, 31, 32, 63, 64, 66, 67, 100, 124, 128, 199, 256].into_iter().filter(|&a| a < len)
            {
                for &b in &specials {
                    for second in [None, Some(b'\n'), Some(0xE9)] {
                        let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        hay[at] = b;
                        if let Some(c) = second {
                            hay[(at + 70).min(len - 1)] = c;
                        }
                        for (held, room) in [(0, 0), (5, 0), (5, 64), (3, 1000)] {
                            check_copy(&hay, [0; 3], held, room);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn copy_line_validates_every_sequence_at_every_block_edge() {
        // Valid characters of every length, every kind of invalid sequence
        // (overlong, surrogate, past U+10FFFF, truncated, stray
        // continuation), at every place around the 32- and 64-byte edges
        // and the end of the input, after every kind of `before`.
        let seqs: &[&[u8]] = &[
            b"\xC3\xA9",
            b"\xE6\x97\xA5",
            b"\xF0\x9F\xA6\x80",
            b"\xEF\xBB\xBF",
            b"\xF4\x8F\xBF\xBF",
            b"\xC0\x80",
            b"\xC1\xBF",
            b"\xE0\x80\x80",
            b"\xE0\x9F\xBF",
            b"\xED\xA0\x80",
            b"\xED\x9F\xBF",
            b"\xF0\x80\x80\x80",
            b"\xF4\x90\x80\x80",
            b"\xF5\x80\x80\x80",
            b"\xFF",
            b"\x80",
            b"\xBF\x80",
            b"\xE6\x97",
            b"\xF0\x9F\xA6",
            b"\xC3",
            b"\xC3\xA9\xA9",
        ];
        let befores: [[u8; 3]; 7] = [
            [0, 0, 0],
            [b'a', 0xC3, 0xA9],
            [0, 0, 0xC3],
            [0, 0xE6, 0x97],
            [0, 0, 0xE6],
            [0xF0, 0x9F, 0xA6],
            [0, 0xF0, 0x9F],
        ];
        for len in [0, 1, 2, 3, 5, 31, 32, 33, 63, 64, 65, 70, 100, 119, 120, 125, 128, 130] {
            for at in [0, 1, 2, 29, 30, 31, 32, 33, 61, 62, 63, 64, 65, 66, 126, 127] {
                for seq in seqs {
                    if at + seq.len() > len {
                        continue;
                    }
                    for end in [None, Some(b'\n'), Some(b'\r')] {
                        let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        hay[at..at + seq.len()].copy_from_slice(seq);
                        if let Some(e) = end {
                            hay.push(e);
                            hay.extend_from_slice(b"\xFFafter");
                        }
                        for before in befores {
                            check_copy(&hay, before, 0, 0);
                        }
                        if at >= 2 {
                            // After a multi-byte character early in the
                            // line (no plain-text shortcut from there on).
                            hay[..2].copy_from_slice("é".as_bytes());
                            check_copy(&hay, [0; 3], 0, 0);
                        }
                    }
                }
            }
        }
        // After mixed text has turned plain again: a multi-byte character,
        // then more than four blocks of ASCII, then each sequence around
        // the edges of the blocks after that.
        for at in [255, 256, 257, 318, 319, 320, 321, 383, 384, 385] {
            for seq in seqs {
                for end in [None, Some(b'\n')] {
                    let mut hay: Vec<u8> = (0..at + 10).map(|i| b'a' + (i % 26) as u8).collect();
                    hay[..2].copy_from_slice("é".as_bytes());
                    hay[at..at + seq.len()].copy_from_slice(seq);
                    if let Some(e) = end {
                        hay.push(e);
                    }
                    check_copy(&hay, [0; 3], 0, 0);
                    check_copy(&hay, [0; 3], 5, 1000);
                }
            }
        }
        // Lines of several blocks, with room for them in `out` (copied a run
        // of blocks at a time): each sequence, a tab (a control character
        // that ends no line) and the line's end at the edges of the blocks
        // and of groups of four, after each kind of `before` (an incomplete
        // one before plain blocks is too short).
        let edges =
            [0, 1, 62, 63, 64, 127, 128, 190, 191, 192, 254, 255, 256, 257, 319, 320, 447, 448, 510, 511];
        for len in [256, 300, 520] {
            for at in edges.into_iter().filter(|&a| a < len) {
                for seq in seqs.iter().copied().chain([&b"\t"[..]]) {
                    if at + seq.len() > len {
                        continue;
                    }
                    for end in [None, Some(b'\n')] {
                        let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        hay[at..at + seq.len()].copy_from_slice(seq);
                        if let Some(e) = end {
                            hay.push(e);
                        }
                        for before in befores {
                            check_copy(&hay, before, 5, 1000);
                        }
                    }
                }
            }
        }
        // An ASCII line that ends inside a whole block after one or more
        // whole blocks, with input after it, after each kind of `before`
        // (one that is cut short makes the line invalid, however plain the
        // block where it ends).
        for end in [64, 100, 127, 128, 191, 200] {
            let mut hay: Vec<u8> = (0..end).map(|i| b'a' + (i % 26) as u8).collect();
            hay.push(b'\n');
            hay.extend_from_slice(&[b'z'; 70]);
            for before in befores {
                check_copy(&hay, before, 0, 0);
                check_copy(&hay, before, 5, 1000);
            }
        }
        // Dense multi-byte text, valid and then cut at every point.
        let text = "日本語のテキスト、é ß 🦀 Ελληνικά ".repeat(6);
        for cut in 0..text.len() {
            let mut hay = text.as_bytes()[..cut].to_vec();
            check_copy(&hay, [0; 3], 0, 0);
            hay.push(b'\n');
            check_copy(&hay, [0; 3], 5, 100);
            // The second part, continuing a cut character.
            let mut cont = text.as_bytes()[cut..].to_vec();
            cont.push(b'\r');
            let before = tail3(&text.as_bytes()[..cut], 0);
            check_copy(&cont, before, 0, 0);
        }
    }

    /// Valid characters of every length, invalid sequences of each kind
    /// (overlong, surrogate, past U+10FFFF, a byte that is never UTF-8, a
    /// stray continuation), cut characters, and a tab (a control character
    /// that ends no line).
    const SEQUENCES: &[&[u8]] = &[
        b"\xC3\xA9",
        b"\xE6\x97\xA5",
        b"\xF0\x9F\xA6\x80",
        b"\xF4\x8F\xBF\xBF",
        b"\xC0\x80",
        b"\xE0\x80\x80",
        b"\xED\xA0\x80",
        b"\xF4\x90\x80\x80",
        b"\xF8",
        b"\xFF",
        b"\x80",
        b"\xE6\x97",
        b"\xF0\x9F\xA6",
        b"\xC3",
        b"\t",
    ];

    /// What a long search returns: the terminator, and the length of the
    /// prefix known valid.
    type Searched = (Option<usize>, usize);

    /// [`scan_long_valid`] by every implementation this CPU runs, named,
    /// with whether it validates (the others give the ASCII prefix).
    fn every_scan_long_valid(hay: &[u8], skip: usize) -> Vec<(&'static str, bool, Searched)> {
        #[allow(unused_mut)]
        let mut out = alloc::vec![("dispatch", level() >= Level::Avx512, scan_long_valid(hay, skip))];
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if Avx512::detect().is_some() {
                // SAFETY: AVX-512 F and BW were just detected on this CPU.
                #[allow(unsafe_code)]
                out.push(("avx512", true, unsafe { avx512::scan_valid_avx512(hay, skip) }));
            }
            if Avx512Vbmi::detect().is_some() {
                // SAFETY: AVX-512 F, BW and VBMI were just detected.
                #[allow(unsafe_code)]
                out.push(("vbmi", true, unsafe { avx512::scan_valid_vbmi(hay, skip) }));
            }
        }
        out
    }

    /// [`scan_long_valid`] on `hay` against its definition: the terminator
    /// of the scalar search from `skip`; a validated prefix that is valid
    /// UTF-8 and ends on a character boundary; and, from the validating
    /// implementations, exactly the line and its terminator when the bytes
    /// before it are valid, or all of `hay` but a character it ends inside
    /// of (unless that character begins before its last partial block).
    fn check_scan_valid(hay: &[u8], skip: usize) {
        let found = scan_long_scalar(&hay[skip..]).map(|p| skip + p);
        let exact = match found {
            Some(p) => core::str::from_utf8(&hay[..p]).is_ok().then_some(p + 1),
            None => {
                let end = hay.len() - incomplete_tail(hay);
                (core::str::from_utf8(&hay[..end]).is_ok() && end >= hay.len() / 64 * 64).then_some(end)
            }
        };
        for (name, validates, (got, valid)) in every_scan_long_valid(hay, skip) {
            assert_eq!(got, found, "{name} from {skip}: {hay:x?}");
            assert!(valid <= found.map_or(hay.len(), |p| p + 1), "{name} from {skip}: {valid} {hay:x?}");
            assert!(core::str::from_utf8(&hay[..valid]).is_ok(), "{name} from {skip}: {valid} {hay:x?}");
            if validates && let Some(want) = exact {
                assert_eq!(valid, want, "{name} from {skip}: {hay:x?}");
            }
        }
    }

    #[test]
    fn scan_long_valid_matches_its_definition() {
        // Each valid and invalid sequence, a tab (a control character that
        // ends no line) and the line end at the edges of blocks and of
        // groups of four, after ASCII and after a multi-byte character (the
        // check from the first block on), with invalid bytes after the line.
        let seqs = SEQUENCES;
        let edges = [
            0, 1, 2, 61, 62, 63, 64, 65, 127, 128, 191, 192, 254, 255, 256, 257, 319, 320, 383, 447, 510,
            511, 512, 575, 640, 767, 768,
        ];
        for len in
            [0, 1, 2, 3, 5, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300, 511, 512, 513, 700, 1030]
        {
            for lead in [&b""[..], "é".as_bytes()] {
                for at in edges.into_iter().filter(|&a| a < len) {
                    for seq in seqs {
                        if at + seq.len() > len || at < lead.len() && at > 0 {
                            continue;
                        }
                        for end in [None, Some(b'\n'), Some(b'\r')] {
                            let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                            hay[..lead.len().min(len)].copy_from_slice(&lead[..lead.len().min(len)]);
                            hay[at..at + seq.len()].copy_from_slice(seq);
                            if let Some(e) = end {
                                hay.push(e);
                                hay.extend_from_slice(b"\xFFafter");
                            }
                            check_scan_valid(&hay, 0);
                        }
                    }
                }
            }
        }
        // Dense multi-byte text, and mostly ASCII text with a multi-byte
        // word now and then (groups skipped and not), cut at every point,
        // with and without a line end there.
        for text in
            ["日本語のテキスト、é ß 🦀 Ελληνικά ".repeat(12), "plain words and then ünïcode, ".repeat(40)]
        {
            for cut in 0..text.len() {
                let mut hay = text.as_bytes()[..cut].to_vec();
                check_scan_valid(&hay, 0);
                hay.push(b'\n');
                check_scan_valid(&hay, 0);
            }
        }
    }

    #[test]
    fn scan_long_valid_passes_over_the_line_ends_before_skip() {
        // Lines of dense multi-byte text and of ASCII, with CR, LF and
        // CRLF, an invalid byte or a cut character in some; searched from
        // every place, the line ends before it checked as text only.
        let mut text = Vec::new();
        for (k, line) in ["日本語のテキスト", "plain", "Ελληνικά 🦀", "", "ünïcode and more words"]
            .iter()
            .cycle()
            .take(14)
            .enumerate()
        {
            text.extend_from_slice(line.as_bytes());
            match k % 7 {
                3 => text.push(0xFF),
                5 => text.extend_from_slice(&"é".as_bytes()[..1]),
                _ => {}
            }
            text.extend_from_slice([&b"\n"[..], b"\r", b"\r\n"][k % 3]);
        }
        for len in [text.len(), 63, 64, 65, 127, 128, 129, 200] {
            let hay = &text[..len.min(text.len())];
            for skip in 0..=hay.len() {
                check_scan_valid(hay, skip);
            }
        }
        // Valid from the start through the lines skipped, then a long line.
        let mut hay = "第一行\nsecond\r\n".as_bytes().to_vec();
        let skip = hay.len();
        hay.extend("ελληνικά ".repeat(40).as_bytes());
        hay.push(b'\n');
        check_scan_valid(&hay, skip);
        let (found, valid) = scan_long_valid(&hay, skip);
        assert_eq!(found, Some(hay.len() - 1));
        if level() >= Level::Avx512 {
            assert_eq!(valid, hay.len());
        }
    }

    /// [`utf8_valid`] as dispatched, and by every implementation this CPU
    /// has.
    fn every_utf8_valid(hay: &[u8]) -> Vec<(&'static str, bool)> {
        let mut out =
            alloc::vec![("dispatch", utf8_valid(hay)), ("simdutf8", simdutf8::basic::from_utf8(hay).is_ok())];
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if Avx512::detect().is_some() {
                // SAFETY: AVX-512 F and BW were just detected on this CPU.
                #[allow(unsafe_code)]
                out.push(("avx512", unsafe { avx512::valid_utf8_avx512(hay) }));
            }
            if Avx512Vbmi::detect().is_some() {
                // SAFETY: AVX-512 F, BW and VBMI were just detected on this
                // CPU.
                #[allow(unsafe_code)]
                out.push(("avx512vbmi", unsafe { avx512::valid_utf8_vbmi(hay) }));
            }
        }
        out
    }

    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    #[test]
    fn the_level_is_what_the_cpu_has() {
        use std::is_x86_feature_detected as has;
        // Within the cap `SSE_PROTO_SIMD` sets, if any.
        let cap = level_cap(std::env::var("SSE_PROTO_SIMD").ok().as_deref());
        let avx2 = has!("avx2") && cap >= Level::Avx2;
        let avx512 = avx2 && has!("avx512f") && has!("avx512bw") && cap >= Level::Avx512;
        let vbmi = avx512 && has!("avx512vbmi") && cap >= Level::Avx512Vbmi;
        // Twice: detected, then cached.
        for _ in 0..2 {
            assert_eq!(Avx2::detect().is_some(), avx2);
            assert_eq!(Avx512::detect().is_some(), avx512);
            assert_eq!(Avx512Vbmi::detect().is_some(), vbmi);
        }
    }

    #[test]
    fn the_simd_cap_names_each_level() {
        assert_eq!(level_cap(Some("portable")), Level::Portable);
        assert_eq!(level_cap(Some("avx2")), Level::Avx2);
        assert_eq!(level_cap(Some("avx512")), Level::Avx512);
        assert_eq!(level_cap(Some("avx512vbmi")), Level::Avx512Vbmi);
        // Anything else caps nothing.
        assert_eq!(level_cap(Some("AVX2")), Level::Avx512Vbmi);
        assert_eq!(level_cap(None), Level::Avx512Vbmi);
    }

    #[test]
    fn utf8_valid_matches_std() {
        // Every sequence of the copy test at every place around the block
        // edges and the end, in ASCII text and after multi-byte text.
        let seqs: &[&[u8]] = &[
            b"\xC3\xA9",
            b"\xE6\x97\xA5",
            b"\xF0\x9F\xA6\x80",
            b"\xF4\x8F\xBF\xBF",
            b"\xC0\x80",
            b"\xE0\x9F\xBF",
            b"\xED\xA0\x80",
            b"\xF4\x90\x80\x80",
            b"\xFF",
            b"\x80",
            b"\xE6\x97",
            b"\xF0\x9F\xA6",
            b"\xC3",
            // Overlong leads, between ASCII bytes as well as before a
            // continuation.
            b"\xC0",
            b"\xC1\xBF",
        ];
        // 700 bytes: after a first block with multi-byte text, the check
        // takes four blocks at a time, from byte 64 (edges at 320 and 576).
        for len in [0, 1, 3, 31, 63, 64, 65, 100, 127, 128, 129, 200, 700] {
            for at in [
                0, 1, 2, 30, 31, 61, 62, 63, 64, 65, 126, 127, 128, 196, 197, 198, 316, 317, 318, 319, 320,
                321, 383, 384, 573, 574, 575, 576, 639, 640, 696, 697,
            ] {
                for seq in seqs {
                    if at + seq.len() > len {
                        continue;
                    }
                    for lead in [&b""[..], "é".as_bytes(), "日本".as_bytes()] {
                        // ASCII, and Cyrillic (two bytes a letter, so that
                        // whole groups take the two-byte check), which a
                        // sequence put at an odd place cuts inside a letter.
                        for two_byte in [false, true] {
                            let mut hay: Vec<u8> = (0..len)
                                .map(|i| match (two_byte, i % 2) {
                                    (false, _) => b'a' + (i % 26) as u8,
                                    (true, 0) => 0xD0,
                                    (true, _) => 0xB0 + (i / 2 % 16) as u8,
                                })
                                .collect();
                            hay[at..at + seq.len()].copy_from_slice(seq);
                            if at > lead.len() {
                                hay[..lead.len()].copy_from_slice(lead);
                            }
                            let want = core::str::from_utf8(&hay).is_ok();
                            for (name, got) in every_utf8_valid(&hay) {
                                assert_eq!(got, want, "{name}: {hay:x?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The terminators a cursor finds in `text` as it grows to each of
    /// `cuts` and then to its end; checks at every step that the validated
    /// prefix is valid UTF-8.
    fn drive(text: &[u8], cuts: &[usize]) -> Vec<usize> {
        let mut cur = Cursor::default();
        let mut found = Vec::new();
        for &upto in cuts.iter().chain([&text.len()]) {
            let bytes = &text[..upto];
            loop {
                let e = cur.find_eol(bytes);
                assert!(cur.valid <= bytes.len(), "{text:x?}");
                assert!(
                    core::str::from_utf8(&bytes[..cur.valid]).is_ok(),
                    "valid {} of {bytes:x?}",
                    cur.valid
                );
                let Some(e) = e else { break };
                found.push(e);
                cur.skip_to(e + 1);
            }
        }
        found
    }

    #[test]
    fn long_lines_are_validated_as_they_are_searched() {
        // A long line of multi-byte text that the validated prefix reaches:
        // in an input of at least `FUSED_MIN` bytes its search validates it
        // too, with AVX-512; in a smaller one, only its ASCII prefix.
        let line = "日本語のテキスト, é and ß, ".repeat(20);
        for (filler, fused) in [(FUSED_MIN, true), (0, false)] {
            let mut text = line.as_bytes().to_vec();
            text.push(b'\n');
            let end = text.len() - 1;
            text.resize(text.len().max(filler), b'x');
            let mut cur = Cursor::default();
            assert_eq!(cur.find_eol(&text), Some(end));
            let validates = fused && level() >= Level::Avx512;
            assert_eq!(cur.valid, if validates { end + 1 } else { 0 }, "filler {filler}");
        }
    }

    #[test]
    fn long_lines_are_validated_from_where_the_prefix_stopped() {
        // After long lines of multi-byte text (the lines count as long), an
        // event whose first lines and the start of its long `data` line lie
        // in the blocks the short search passed, with multi-byte text in
        // its first block: the long search validates from where the prefix
        // stopped, passing over the line ends before. Every terminator is
        // found once and the prefix stays sound, with an invalid or cut
        // sequence at every place of the first blocks; when there is none,
        // the prefix covers the line (with AVX-512).
        let long = "日本語のテキスト ".repeat(60) + "\n";
        let lead = long.repeat(3);
        assert!(lead.len() >= FUSED_MIN && long.len() > LONG_LINE);
        for seq in [&b""[..], b"\xE6\x97", b"\xFF", b"\x80", b"\xF0\x9F\xA6", b"\xC3", b"\xED\xA0\x80"] {
            for k in 0..200 {
                let mut text = [lead.as_bytes(), "event: ü\nid: 1\ndata: é".as_bytes()].concat();
                text.resize(text.len() + k, b'x');
                text.extend_from_slice(seq);
                text.extend_from_slice("ß".repeat(100).as_bytes());
                text.push(b'\n');
                let want = terminators(&text);
                assert_eq!(drive(&text, &[]), want, "{text:x?}");
                let mut cur = Cursor::default();
                while let Some(e) = cur.find_eol(&text) {
                    cur.skip_to(e + 1);
                }
                if seq.is_empty() && level() >= Level::Avx512 {
                    assert_eq!(cur.valid, text.len(), "{k}");
                }
            }
        }
    }

    #[test]
    fn searches_find_every_terminator_and_validate_soundly() {
        // Text of ASCII words, multi-byte characters, invalid sequences and
        // line ends, in lines of every length up to a few blocks, grown at
        // random points: the search finds every terminator once, and the
        // validated prefix never covers an invalid byte.
        let pieces: &[&[u8]] = &[
            b"word ",
            b"a",
            b"\n",
            b"\r",
            b"\r\n",
            "é".as_bytes(),
            "日本".as_bytes(),
            "🦀".as_bytes(),
            b"\xFF",
            b"\x80",
            b"\xE6\x97",
            b"\xED\xA0\x80",
            b"\xC0\x80",
            b"a long run of plain ascii text, more than a block of it, for the long search...",
            &[b'z'; 300],
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        // Each invalid or cut sequence at every place of a long line, after
        // ASCII and after multi-byte text, so that it meets every block
        // edge of the long search; and after 4 KiB of lines, so that the
        // search validates as it goes (`FUSED_MIN`).
        let lines = "日本語のテキスト, é and ß, in lines\n".repeat(4096 / 40 + 1);
        for lead in [&b""[..], "日本".as_bytes(), lines.as_bytes()] {
            for seq in [&b"\xE6\x97"[..], b"\xFF", b"\x80", b"\xF0\x9F\xA6", b"\xC3", b"\xED\xA0\x80"] {
                for k in 0..200 {
                    let mut text = lead.to_vec();
                    text.resize(lead.len() + k, b'x');
                    text.extend_from_slice(seq);
                    text.resize(text.len() + 200, b'y');
                    text.push(b'\n');
                    let want = [terminators(lead), vec![text.len() - 1]].concat();
                    assert_eq!(drive(&text, &[]), want, "{text:x?}");
                }
            }
        }
        for round in 0..3000 {
            let mut text = Vec::new();
            let len = 1 + next(400);
            // Mostly valid text in some rounds, so the validation is seen
            // to get far; every kind of piece in the others.
            let kinds = if round % 2 == 0 { 8 } else { pieces.len() };
            while text.len() < len {
                text.extend_from_slice(pieces[next(kinds)]);
            }
            let want = terminators(&text);
            let mut cuts: Vec<usize> = (0..next(4)).map(|_| next(text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut cut_sets = vec![cuts];
            if round < 200 {
                // And cut once at every byte.
                cut_sets.extend((0..=text.len()).map(|c| vec![c]));
            }
            for cuts in &cut_sets {
                assert_eq!(drive(&text, cuts), want, "{text:x?} cut at {cuts:?}");
            }
        }
    }

    #[test]
    fn cursor_finds_every_terminator_once_across_growth() {
        let text = b"ab\r\ncd\n\nlong line without end for a while....................................................x\n";
        for cut in 0..text.len() {
            assert_eq!(drive(text, &[cut]), terminators(text), "cut at {cut}");
        }
    }

    /// Where `text`'s CRs and LFs are.
    fn terminators(text: &[u8]) -> Vec<usize> {
        text.iter().enumerate().filter(|(_, b)| **b == b'\n' || **b == b'\r').map(|(i, _)| i).collect()
    }
}
