//! Line-terminator search: a bitmap of CR/LF positions per 64-byte block,
//! so finding the next line end costs a trailing-zero count rather than a new
//! search per line, and a cursor that remembers what was searched and
//! validated so no byte is looked at twice however the input is chunked.

use bytes::BytesMut;

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
        let (found, ascii) = scan_long(bytes.get(pos..).unwrap_or_default());
        self.ascii_run(pos, pos + ascii);
        self.found_or_end(found.map(|i| pos + i), bytes.len())
    }

    /// Records that `bytes[from..to]` is ASCII: if the validated prefix
    /// reaches `from`, it now reaches `to`.
    #[inline]
    pub(crate) fn ascii_run(&mut self, from: usize, to: usize) {
        if self.valid >= from && to > self.valid {
            self.valid = to;
        }
    }

    /// [`refill`](Self::refill) for the last, partial block of the input.
    #[inline(never)]
    fn refill_tail(&mut self, bytes: &[u8], pos: usize) -> Option<usize> {
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.len() >= 8 {
            // Zero padding is neither a terminator nor non-ASCII.
            let mut block = [0u8; 64];
            block[..rest.len()].copy_from_slice(rest);
            let (mask, ascii) = scan_block(&block);
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

/// How many 64-byte blocks `refill` masks before handing a long line to
/// [`scan_long`]. One: the mask pays off for lines that end within the
/// block; a line that does not is likely long (4 KiB JSON lines decode 4%
/// faster than with two blocks, and token streams no slower).
const PRESCAN_BLOCKS: usize = 1;

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
/// known to be ASCII (a lower bound, possibly 0).
#[inline]
pub(crate) fn scan_long(hay: &[u8]) -> (Option<usize>, usize) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 support was just detected at run time.
            #[allow(unsafe_code)]
            return unsafe { scan_long_avx2(hay) };
        }
    }
    (memchr::memchr2(b'\n', b'\r', hay), 0)
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
/// is and whether the bytes before it are ASCII. When `hay` holds no
/// terminator, all of it is appended (callers keep it as the start of a
/// line that goes on in the next input) and the result is `None` with
/// whether all of `hay` is ASCII.
///
/// This is the search and the copy of a `data` line that joins earlier ones
/// in one pass over the bytes: each block is stored as soon as it is loaded
/// and tested, so the bytes are read once, not once to search and once to
/// copy. Whole blocks are stored, so up to 63 bytes past the terminator may
/// be written into the spare capacity of `out` (never within its length).
///
/// The decoder calls it through a [`LineCopier`] chosen once per batch of
/// lines, so that the AVX2 loop is inlined into the caller's.
pub(crate) trait LineCopier: Copy {
    /// See the trait.
    fn copy_line(self, hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool);
}

/// [`LineCopier`] for any CPU: a search, then a copy.
#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl LineCopier for Portable {
    #[inline(always)]
    fn copy_line(self, hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool) {
        copy_line_portable(hay, out)
    }
}

/// [`LineCopier`] with AVX2. A value exists only where the CPU has AVX2
/// ([`Avx2::detect`]), which is what makes calling the AVX2 code sound.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl Avx2 {
    /// `Some` when this CPU has AVX2 (detected once, then cached by std).
    #[inline]
    pub(crate) fn detect() -> Option<Avx2> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl LineCopier for Avx2 {
    #[inline(always)]
    fn copy_line(self, hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool) {
        // SAFETY: an `Avx2` value is only made by `detect`, after AVX2 was
        // found on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            copy_line_avx2(hay, out)
        }
    }
}

/// [`LineCopier::copy_line`] with the best implementation for this CPU, for
/// one-off calls.
pub(crate) fn copy_line(hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx2) = Avx2::detect() {
        return avx2.copy_line(hay, out);
    }
    Portable.copy_line(hay, out)
}

/// [`LineCopier::copy_line`] in two passes, and its reference in tests.
fn copy_line_portable(hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool) {
    let found = memchr::memchr2(b'\n', b'\r', hay);
    let line = &hay[..found.unwrap_or(hay.len())];
    out.extend_from_slice(line);
    (found, line.is_ascii())
}

/// [`LineCopier::copy_line`] with AVX2: the search of [`scan_long_avx2`],
/// storing every block it tests into the spare capacity of `out`.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
#[inline]
fn copy_line_avx2(hay: &[u8], out: &mut BytesMut) -> (Option<usize>, bool) {
    use core::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_storeu_si256,
    };
    let lf = _mm256_set1_epi8(b'\n' as i8);
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let flag = _mm256_set1_epi8(0x0E);
    let mut at = 0;
    let mut ascii = true;
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
            let (a, b) = (load32(&c[..32]), load32(&c[32..]));
            // SAFETY: `k + 64 <= fit`, and `fit` bytes of spare capacity
            // follow `dst`; unaligned stores need no alignment.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_storeu_si256(dst.add(k).cast::<__m256i>(), a);
                _mm256_storeu_si256(dst.add(k + 32).cast::<__m256i>(), b);
            }
            let flagged = _mm256_or_si256(_mm256_cmpgt_epi8(flag, a), _mm256_cmpgt_epi8(flag, b));
            if _mm256_movemask_epi8(flagged) != 0 {
                let ea = _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr));
                let eb = _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr));
                let mask = u64::from(_mm256_movemask_epi8(ea) as u32)
                    | u64::from(_mm256_movemask_epi8(eb) as u32) << 32;
                let high = u64::from(_mm256_movemask_epi8(a) as u32)
                    | u64::from(_mm256_movemask_epi8(b) as u32) << 32;
                if mask != 0 {
                    let upto = mask.trailing_zeros() as usize;
                    // SAFETY: the `k + upto` bytes after the old length
                    // were all written above.
                    #[allow(unsafe_code)]
                    unsafe {
                        out.set_len(out.len() + k + upto);
                    }
                    return (Some(at + k + upto), ascii && high & !(u64::MAX << upto) == 0);
                }
                ascii &= high == 0;
            }
        }
        // SAFETY: all `fit` bytes after the old length were written above.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(out.len() + fit);
        }
        at += fit;
    }
    let rest = &hay[at..];
    if rest.is_empty() || hay.len() < 64 {
        let found = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let line = &rest[..found.unwrap_or(rest.len())];
        out.extend_from_slice(line);
        return (found.map(|n| at + n), ascii && line.is_ascii());
    }
    // The last bytes, fewer than 64 (the input usually ends inside a line
    // here): the last 64 bytes of `hay` are tested, and the bits of those
    // already tested shifted out.
    let last = &hay[hay.len() - 64..];
    let (a, b) = (load32(&last[..32]), load32(&last[32..]));
    let skip = 64 - rest.len();
    let ea = _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr));
    let eb = _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr));
    let mask = (u64::from(_mm256_movemask_epi8(ea) as u32)
        | u64::from(_mm256_movemask_epi8(eb) as u32) << 32)
        >> skip;
    let high =
        (u64::from(_mm256_movemask_epi8(a) as u32) | u64::from(_mm256_movemask_epi8(b) as u32) << 32) >> skip;
    let n = if mask == 0 { rest.len() } else { mask.trailing_zeros() as usize };
    out.extend_from_slice(&rest[..n]);
    // `n < 64`, as `rest` is shorter than a block.
    let ascii = ascii && high & !(u64::MAX << n) == 0;
    ((mask != 0).then_some(at + n), ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
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
            for k in 0..4 {
                let b16: &[u8; 16] = block[16 * k..16 * k + 16].try_into().expect("16 bytes");
                for nul in [false, true] {
                    assert_eq!(block16_has_special(b16, nul), block16_scalar(b16, nul));
                }
            }
            // Every start and length through the long scanner too.
            for start in [0, 1, 7, 31, 63] {
                let hay = &block[start..];
                assert_eq!(scan_long(hay).0, scan_long_scalar(hay));
                let ascii = scan_long(hay).1;
                assert!(hay[..ascii].is_ascii());
            }
        }
    }

    #[test]
    fn plain_runs_end_at_the_first_special_byte() {
        // Long plain runs take the one-compare fast path; every byte near
        // its threshold (0x0E, signed) must still be classified exactly.
        let specials = [b'\n', b'\r', 0x00, 0x09, 0x0B, 0x0C, 0x0E, 0x1F, 0x7F, 0x80, 0xC3, 0xFF];
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 200, 257] {
            for at in [0, 1, 31, 32, 63, 64, 100, 128, 199, 256].into_iter().filter(|&a| a < len) {
                for &b in &specials {
                    let mut hay = alloc::vec![b'x'; len];
                    hay[at] = b;
                    let (found, ascii) = scan_long(&hay);
                    assert_eq!(found, scan_long_scalar(&hay), "len {len}, {b:#x} at {at}");
                    assert!(hay[..ascii].is_ascii());
                    #[cfg(all(target_arch = "x86_64", feature = "std"))]
                    if hay.is_ascii() && std::is_x86_feature_detected!("avx2") {
                        // ASCII through the terminator, or to the end.
                        assert_eq!(ascii, found.map_or(len, |p| p + 1), "len {len}, {b:#x} at {at}");
                    }
                    if len >= 64 {
                        let block: &[u8; 64] = hay[len - 64..].try_into().expect("64 bytes");
                        assert_eq!(scan_block(block), scan_block_scalar(block));
                    }
                }
            }
        }
    }

    #[test]
    fn copy_line_matches_its_definition() {
        // Every special byte at every place near the block edges, with the
        // output buffer holding something already and having little or much
        // room left (the copy stores whole blocks and must grow it).
        let specials = [b'\n', b'\r', 0x00, 0x09, 0x0B, 0x0E, 0x7F, 0x80, 0xC3, 0xFF];
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 200, 257] {
            for at in [0, 1, 31, 32, 63, 64, 100, 128, 199, 256].into_iter().filter(|&a| a < len) {
                for &b in &specials {
                    for second in [None, Some(b'\n'), Some(0xE9)] {
                        let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        hay[at] = b;
                        if let Some(c) = second {
                            hay[(at + 70).min(len - 1)] = c;
                        }
                        let found = scan_long_scalar(&hay);
                        let line = &hay[..found.unwrap_or(len)];
                        for (held, room) in [(0, 0), (5, 0), (5, 64), (3, 1000)] {
                            let mut out = BytesMut::with_capacity(held + room);
                            out.extend_from_slice(&b"held!"[..held]);
                            let got = copy_line(&hay, &mut out);
                            assert_eq!(got, (found, line.is_ascii()), "len {len}, {b:#x} at {at}");
                            if found.is_some() {
                                assert_eq!(&out[..held], &b"held!"[..held]);
                                assert_eq!(&out[held..], line, "len {len}, {b:#x} at {at}");
                            }
                            let mut portable = BytesMut::new();
                            assert_eq!(copy_line_portable(&hay, &mut portable), got);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn cursor_finds_every_terminator_once_across_growth() {
        let text = b"ab\r\ncd\n\nlong line without end for a while....................................................x\n";
        for cut in 0..text.len() {
            let mut cur = Cursor::default();
            let mut found = Vec::new();
            let mut pos = 0;
            for upto in [cut, text.len()] {
                while let Some(e) = cur.find_eol(&text[..upto]) {
                    found.push(e);
                    pos = e + 1;
                    cur.skip_to(pos);
                }
            }
            let _ = pos;
            let want: Vec<usize> = text
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n' || **b == b'\r')
                .map(|(i, _)| i)
                .collect();
            assert_eq!(found, want, "cut at {cut}");
        }
    }
}
