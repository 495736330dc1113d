//! The line copy with AVX-512 (F and BW): 64 bytes a register, and the
//! compares give their bit masks directly, so a block costs about half the
//! instructions of the AVX2 loop in [`super::copy_line_avx2`]. Chosen at run
//! time ([`Avx512::detect`]); the AVX2 loop and the portable one stay for
//! other CPUs. Where the CPU also has VBMI ([`Avx512Vbmi::detect`]), the
//! copy and the UTF-8 check are compiled a second time with byte permutes
//! for the check's lookups ([`utf8_errors_vbmi`]): 1.1x on text with
//! multi-byte characters.

use core::arch::x86_64::{
    __m512i, _MM_HINT_T0, _mm_prefetch, _mm_setr_epi8, _mm512_alignr_epi8, _mm512_and_si512,
    _mm512_broadcast_i32x4, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epi8_mask, _mm512_cmplt_epu8_mask,
    _mm512_loadu_si512, _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_min_epu8,
    _mm512_movepi8_mask, _mm512_or_si512, _mm512_permutex2var_epi64, _mm512_permutexvar_epi8,
    _mm512_set_epi32, _mm512_set_epi64, _mm512_set1_epi8, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_srli_epi16, _mm512_storeu_si512, _mm512_subs_epu8, _mm512_test_epi8_mask, _mm512_xor_si512,
};

use bytes::BytesMut;

use super::{Level, LineCopier, utf8_tables};

/// [`LineCopier`] with AVX-512. A value exists only where the CPU has
/// AVX-512 F and BW ([`Avx512::detect`]), which is what makes calling the
/// AVX-512 code sound.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// `Some` when this CPU has AVX-512 F and BW ([`super::level`]).
    #[inline]
    pub(crate) fn detect() -> Option<Avx512> {
        (super::level() >= Level::Avx512).then_some(Avx512(()))
    }

    /// The first 64 bytes of `bytes`, zero-padded when it is shorter: one
    /// masked load, stored whole (see `event::short_head`).
    #[inline(always)]
    pub(crate) fn head(self, bytes: &[u8]) -> [u8; 64] {
        // SAFETY: a value of this type is only made by `detect`, after
        // AVX-512 F and BW were found on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            head_avx512(bytes)
        }
    }
}

/// [`Avx512::head`].
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn head_avx512(bytes: &[u8]) -> [u8; 64] {
    let v = load_prefix(bytes, bytes.len().min(64));
    let mut head = [0u8; 64];
    // SAFETY: `head` is 64 writable bytes; the store needs no alignment.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_storeu_si512(head.as_mut_ptr().cast(), v);
    }
    head
}

/// [`LineCopier`] with AVX-512 and VBMI (Ice Lake and later, Zen 4): the
/// UTF-8 check of the copy with byte permutes ([`utf8_errors_vbmi`]). A
/// value exists only where the CPU has AVX-512 F, BW and VBMI.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Vbmi(());

impl Avx512Vbmi {
    /// `Some` when this CPU has AVX-512 F, BW and VBMI ([`super::level`]).
    #[inline]
    pub(crate) fn detect() -> Option<Avx512Vbmi> {
        (super::level() >= Level::Avx512Vbmi).then_some(Avx512Vbmi(()))
    }
}

/// The [`LineCopier`] of a CPU type: its kernels, which a value of the
/// type proves the CPU can run (the type is only made by its `detect`,
/// after the features the kernels are compiled for were found).
macro_rules! line_copier {
    ($ty:ty, $copy_line:ident, $copy_valid:ident, $short:ident) => {
        impl LineCopier for $ty {
            const SKIPS_CHECK: bool = true;
            const SHORT_LINES: bool = true;

            #[inline(always)]
            fn append_short_line(self, block: &[u8; 64], out: &mut BytesMut) -> Option<usize> {
                // SAFETY: a value of this type is only made by `detect`, after
                // the features the kernel is compiled for were found on this CPU.
                #[allow(unsafe_code)]
                unsafe {
                    $short(block, out)
                }
            }

            #[inline(always)]
            fn copy_line(self, hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
                // SAFETY: as for `append_short_line`.
                #[allow(unsafe_code)]
                unsafe {
                    $copy_line(hay, before, out)
                }
            }

            #[inline(always)]
            fn copy_valid_line(self, hay: &[u8], out: &mut BytesMut) -> Option<usize> {
                // SAFETY: as for `append_short_line`.
                #[allow(unsafe_code)]
                unsafe {
                    $copy_valid(hay, out)
                }
            }
        }
    };
}

line_copier!(Avx512Vbmi, copy_line_vbmi, copy_valid_vbmi, short_line_vbmi);
line_copier!(Avx512, copy_line_avx512, copy_valid_avx512, short_line_avx512);

/// How far ahead of the block being copied the copy asks for input. From a
/// 16 MiB stream of 4 KiB JSON events, 1 KiB ahead decodes 8–10% faster
/// than 512 bytes (CJK text no slower); 2 KiB gained no more and lost on
/// multi-byte text.
const PREFETCH: usize = 1024;

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
/// (Unaligned loads of the bytes before the block instead measured slower:
/// a block takes about 17 vector operations, and only two ports run 512-bit
/// ones; the loads cross cache lines.)
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn utf8_errors(prev: __m512i, input: __m512i) -> __m512i {
    let byte_1_high = table(utf8_tables::BYTE_1_HIGH);
    let byte_1_low = table(utf8_tables::BYTE_1_LOW);
    let byte_2_high = table(utf8_tables::BYTE_2_HIGH);
    let nibble = _mm512_set1_epi8(0x0F);
    let high = |v: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(v), nibble);
    let (prev1, prev2, prev3) = bytes_back(prev, input);
    let special = _mm512_and_si512(
        _mm512_and_si512(
            _mm512_shuffle_epi8(byte_1_high, high(prev1)),
            _mm512_shuffle_epi8(byte_1_low, _mm512_and_si512(prev1, nibble)),
        ),
        _mm512_shuffle_epi8(byte_2_high, high(input)),
    );
    continuation_errors(special, prev2, prev3)
}

/// The bytes one, two and three back from each lane of `input`, which
/// follows `prev`. `joined` is `input` moved up one 128-bit lane, with the
/// last lane of `prev` in front, so that the in-lane `alignr` of `input`
/// with it reads across lane edges: 64-bit elements 6 and 7 of `prev`,
/// then 0 to 5 of `input` (bit 3 of an index picks the second operand).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn bytes_back(prev: __m512i, input: __m512i) -> (__m512i, __m512i, __m512i) {
    let joined = _mm512_permutex2var_epi64(prev, _mm512_set_epi64(13, 12, 11, 10, 9, 8, 7, 6), input);
    (
        _mm512_alignr_epi8::<15>(input, joined),
        _mm512_alignr_epi8::<14>(input, joined),
        _mm512_alignr_epi8::<13>(input, joined),
    )
}

/// The error flags from the lookups' verdict `special` and the bytes two
/// and three back: a byte two back at 0xE0 or more, or three back at 0xF0
/// or more, must be followed by a continuation here, and `special` has
/// TWO_CONTS exactly where there is one.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn continuation_errors(special: __m512i, prev2: __m512i, prev3: __m512i) -> __m512i {
    let third = _mm512_subs_epu8(prev2, _mm512_set1_epi8((0xE0u8 - 0x80) as i8));
    let fourth = _mm512_subs_epu8(prev3, _mm512_set1_epi8((0xF0u8 - 0x80) as i8));
    let must23 = _mm512_and_si512(_mm512_or_si512(third, fourth), _mm512_set1_epi8(0x80u8 as i8));
    _mm512_xor_si512(must23, special)
}

/// 64 bytes: `t` four times over, for `vpermb`, which looks up with the
/// low six bits of each index.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn table64(t: [u8; 16]) -> __m512i {
    table(t)
}

/// [`utf8_errors`] with VBMI byte permutes for the lookups: `vpermb` reads
/// six bits of each index, so the tables repeated four times
/// ([`table64`]) make the nibble masks of `vpshufb` unneeded, three
/// operations fewer a block of about seventeen. Every operation counts: a
/// block's check is bound by the two ports that run 512-bit operations.
/// From 2 MiB corpora at 16 KiB chunks, best of 7: 1.10x on one-line JSON
/// with accented words, 1.08x on Cyrillic, 1.06x on CJK, 1.12x on JSON with
/// non-Latin values. (The bytes one to three back are still built with
/// aligns: two-source byte permutes for them compile to the same
/// instructions.)
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn utf8_errors_vbmi(prev: __m512i, input: __m512i) -> __m512i {
    let byte_1_high = table64(utf8_tables::BYTE_1_HIGH);
    let byte_1_low = table64(utf8_tables::BYTE_1_LOW);
    let byte_2_high = table64(utf8_tables::BYTE_2_HIGH);
    let (prev1, prev2, prev3) = bytes_back(prev, input);
    // A 16-bit shift by four leaves each byte's high nibble in its low four
    // bits, and bits of the next byte in bits 4 to 7, which the repeated
    // table ignores (bits 4 and 5) or `vpermb` does (6 and 7).
    let special = _mm512_and_si512(
        _mm512_and_si512(
            _mm512_permutexvar_epi8(_mm512_srli_epi16::<4>(prev1), byte_1_high),
            _mm512_permutexvar_epi8(prev1, byte_1_low),
        ),
        _mm512_permutexvar_epi8(_mm512_srli_epi16::<4>(input), byte_2_high),
    );
    continuation_errors(special, prev2, prev3)
}

/// The line copy and the UTF-8 check, stamped out once per set of target
/// features: the lookups of the check are the only difference, and they
/// must be compiled into the loops, not called from them.
macro_rules! utf8_kernels {
    (
        $features:literal,
        $errors:ident,
        $copy_line:ident,
        $copy_valid:ident,
        $copy_impl:ident,
        $valid:ident,
        $scan_valid:ident,
        $short:ident
    ) => {
        /// [`LineCopier::copy_line`] with AVX-512: the copy below, with the check.
        #[target_feature(enable = $features)]
        #[inline]
        fn $copy_line(hay: &[u8], before: [u8; 3], out: &mut BytesMut) -> (Option<usize>, bool) {
            $copy_impl::<true>(hay, before, out)
        }

        /// [`LineCopier::copy_valid_line`] with AVX-512: the copy below,
        /// without the check. Not inlined: it is called once a line, and the
        /// decoder's line loop, which inlines the checking copy, stays as it
        /// was compiled without it (see [`LineCopier::SKIPS_CHECK`]).
        #[target_feature(enable = $features)]
        #[inline(never)]
        fn $copy_valid(hay: &[u8], out: &mut BytesMut) -> Option<usize> {
            $copy_impl::<false>(hay, [0; 3], out).0
        }

        /// [`LineCopier::copy_line`] with AVX-512: each 64-byte block is loaded
        /// once, stored into the spare capacity of `out`, searched for CR and LF
        /// and checked as UTF-8.
        ///
        /// A block with no byte below 0x0E as a signed number (no control character
        /// up to CR, nothing non-ASCII) after a block that ended in ASCII is plain
        /// text: one compare. So is the block where an ASCII line ends, when it
        /// is ASCII up to the line end (what follows is the next line's): the
        /// lookups there, once a line, cost 1.07x on 4 KiB JSON events and
        /// 1.14x on 600-byte log lines (median of five alternating runs at
        /// 16 KiB chunks). Other blocks take the table lookups; at 64 lanes
        /// these cost about what the AVX2 loop's plain-text test does, so text
        /// with a multi-byte character every few words is not much slower than
        /// ASCII.
        ///
        /// Without `CHECK`, the caller knows the bytes to be valid UTF-8
        /// (see [`LineCopier::copy_valid_line`]): no block takes the
        /// lookups, and the verdict is true.
        #[target_feature(enable = $features)]
        #[inline]
        fn $copy_impl<const CHECK: bool>(
            hay: &[u8],
            before: [u8; 3],
            out: &mut BytesMut,
        ) -> (Option<usize>, bool) {
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
            // Whether this line (or `before`) held non-ASCII text: then every block
            // after it takes the table lookups, with no plain-text test. In text
            // with a multi-byte character every few words, whether the next block
            // is plain is a coin toss, and a branch on it mispredicts often enough
            // to cost more than the lookups it saves (17 against 11 GB/s on such a
            // line in L1, measured). While it is false, every block so far was
            // ASCII, so the next needs no check when it is ASCII too. (Going back
            // to the plain-text test after four ASCII blocks in a row was measured
            // slower, by 10 to 25%, even on JSON with a multi-byte word in sixty:
            // the bookkeeping costs every block more than the plain runs save.)
            let mut mixed = !before.is_ascii();
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
                    // Input the size of a chunk comes from memory, not from a
                    // cache: ask for it some blocks ahead.
                    _mm_prefetch::<_MM_HINT_T0>(c.as_ptr().wrapping_add(PREFETCH).cast());
                    let v = load64(c.try_into().expect("64 bytes"));
                    // SAFETY: `k + 64 <= fit`, and `fit` bytes of spare capacity
                    // follow `dst`; the store needs no alignment.
                    #[allow(unsafe_code)]
                    unsafe {
                        _mm512_storeu_si512(dst.add(k).cast(), v);
                    }
                    if CHECK && !mixed {
                        if _mm512_cmplt_epi8_mask(v, flag) == 0 {
                            // Plain ASCII text after ASCII: nothing to check.
                            prev = v;
                            continue;
                        }
                        let high = _mm512_movepi8_mask(v);
                        let mask = terminators(v);
                        if mask != 0 && high & !(u64::MAX << mask.trailing_zeros()) == 0 {
                            // The line ends in this block, ASCII up to its
                            // end, after ASCII blocks and an ASCII `before`:
                            // valid, with no lookups (they would flag
                            // nothing; the bytes after the end are not the
                            // line's).
                            let upto = mask.trailing_zeros() as usize;
                            // SAFETY: the `k + upto` bytes after the old length
                            // were all written above.
                            #[allow(unsafe_code)]
                            unsafe {
                                out.set_len(out.len() + k + upto);
                            }
                            return (Some(at + k + upto), true);
                        }
                        mixed = high != 0;
                    }
                    // (Without the check, no flags: the compiler drops them.)
                    let e = if CHECK { $errors(prev, v) } else { _mm512_setzero_si512() };
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
            let valid = !CHECK
                || valid_before
                    && (!mixed && _mm512_movepi8_mask(v) == 0 || {
                        let e = $errors(prev, v);
                        _mm512_test_epi8_mask(e, e) & lanes == 0
                    });
            ((mask != 0).then_some(at + n), valid)
        }

        /// Whether `bytes` is valid UTF-8 (ending on a character boundary), with
        /// the lookups of [`utf8_errors`] on 64 bytes a step: plain ASCII blocks
        /// are skipped with one test until the first block that is not. From
        /// there the blocks go four at a time: four that are all ASCII (one
        /// test) need no lookups, only the check that the block before them
        /// did not end inside a character; other groups take the lookups with
        /// no further test. Text with a multi-byte word in a few hundred bytes
        /// (a token stream) skips most of its lookups, and a branch on a run
        /// that long is seldom mispredicted; text with a multi-byte character
        /// every few words has one in almost every group.
        #[target_feature(enable = $features)]
        pub(crate) fn $valid(bytes: &[u8]) -> bool {
            let mut prev = _mm512_setzero_si512();
            let mut errors = _mm512_setzero_si512();
            let mut at = 0;
            while let Some(c) = bytes.get(at..at + 64) {
                at += 64;
                let v = load64(c.try_into().expect("64 bytes"));
                if _mm512_movepi8_mask(v) != 0 {
                    errors = $errors(prev, v);
                    prev = v;
                    break;
                }
            }
            // Lanes above which a byte at the end of a block starts a
            // character that goes on past it (simdjson's `is_incomplete`):
            // 0xC0 and up last, 0xE0 and up second to last, 0xF0 and up third
            // to last.
            let incomplete = _mm512_set_epi64(0xBFDF_EFFF_FFFF_FFFFu64 as i64, -1, -1, -1, -1, -1, -1, -1);
            let mut groups = bytes[at..].chunks_exact(256);
            for g in groups.by_ref() {
                for k in 0..4 {
                    _mm_prefetch::<_MM_HINT_T0>(g.as_ptr().wrapping_add(64 * k + PREFETCH).cast());
                }
                let v: [__m512i; 4] =
                    core::array::from_fn(|k| load64(g[64 * k..64 * k + 64].try_into().expect("64 bytes")));
                let any = _mm512_or_si512(_mm512_or_si512(v[0], v[1]), _mm512_or_si512(v[2], v[3]));
                if _mm512_movepi8_mask(any) == 0 {
                    errors = _mm512_or_si512(errors, _mm512_subs_epu8(prev, incomplete));
                    prev = v[3];
                    continue;
                }
                for v in v {
                    errors = _mm512_or_si512(errors, $errors(prev, v));
                    prev = v;
                }
            }
            let mut blocks = groups.remainder().chunks_exact(64);
            for c in blocks.by_ref() {
                let v = load64(c.try_into().expect("64 bytes"));
                errors = _mm512_or_si512(errors, $errors(prev, v));
                prev = v;
            }
            let rest = blocks.remainder();
            if !rest.is_empty() {
                let v = load_prefix(rest, rest.len());
                errors = _mm512_or_si512(errors, $errors(prev, v));
                prev = v;
            }
            // A block of zeros after the last: a character the input ends inside
            // of is flagged as too short.
            errors = _mm512_or_si512(errors, $errors(prev, _mm512_setzero_si512()));
            _mm512_test_epi8_mask(errors, errors) == 0
        }
        /// [`LineCopier::append_short_line`] with AVX-512: one load, two
        /// compares for the terminator, one test for ASCII (the lookups only
        /// when the value is not), one masked byte store of the LF and one
        /// store of the block.
        #[target_feature(enable = $features)]
        #[inline]
        fn $short(block: &[u8; 64], out: &mut BytesMut) -> Option<usize> {
            let v = load64(block);
            let mask = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\n' as i8))
                | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\r' as i8));
            if mask == 0 {
                return None;
            }
            let upto = mask.trailing_zeros() as usize;
            if _mm512_movepi8_mask(v) & !(u64::MAX << upto) != 0 {
                // The flags up to the terminator count: a character it
                // cuts is flagged at the terminator.
                let e = $errors(_mm512_setzero_si512(), v);
                if _mm512_test_epi8_mask(e, e) & (u64::MAX >> (63 - upto)) != 0 {
                    return None;
                }
            }
            out.reserve(65);
            // SAFETY: `reserve` left at least 65 bytes of spare capacity:
            // the LF and the 64 bytes of the block after it are written
            // there, and `set_len` covers the LF and the `upto` bytes of
            // the value.
            #[allow(unsafe_code)]
            unsafe {
                let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
                dst.write(b'\n');
                _mm512_storeu_si512(dst.add(1).cast(), v);
                out.set_len(out.len() + 1 + upto);
            }
            Some(upto)
        }

        /// [`super::scan_long_valid`] with AVX-512: the first CR or LF of
        /// `hay` from `skip` on (those before are checked as text), and how
        /// many leading bytes of `hay` are known to be valid
        /// UTF-8 ending on a character boundary. While the line is ASCII, a
        /// block is one compare, as in [`scan_long_avx512`]; from the first
        /// block that is not, each block also takes the lookups of the
        /// check, so that a line of multi-byte text is read once, not
        /// searched and then validated (which, from a 2 MiB stream of
        /// one-line JSON, took 17% and 26% of the decoder's time).
        ///
        /// The count is through the terminator when every byte before it is
        /// valid; with no terminator, to the end of `hay` but for a
        /// character it ends inside of, when the bytes before that are
        /// valid; otherwise the ASCII prefix.
        #[target_feature(enable = $features)]
        pub(crate) fn $scan_valid(hay: &[u8], skip: usize) -> (Option<usize>, usize) {
            let lf = _mm512_set1_epi8(b'\n' as i8);
            let cr = _mm512_set1_epi8(b'\r' as i8);
            let flag = _mm512_set1_epi8(0x0E);
            // The line ends of the block at `at`, but for those before
            // `skip` (the caller reported them).
            let terminators = |v, at: usize| {
                let keep = match skip.checked_sub(at) {
                    None | Some(0) => u64::MAX,
                    Some(n) if n < 64 => u64::MAX << n,
                    Some(_) => 0,
                };
                (_mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr)) & keep
            };
            let mut at = 0;
            // The ASCII prefix: one signed compare a block flags a control
            // character up to CR or a byte that is not ASCII.
            while let Some(c) = hay.get(at..at + 64) {
                let v = load64(c.try_into().expect("64 bytes"));
                if _mm512_cmplt_epi8_mask(v, flag) != 0 {
                    if _mm512_movepi8_mask(v) != 0 {
                        // Checked from this block on.
                        break;
                    }
                    let mask = terminators(v, at);
                    if mask != 0 {
                        let upto = mask.trailing_zeros() as usize;
                        return (Some(at + upto), at + upto + 1);
                    }
                }
                at += 64;
            }
            let ascii = at;
            // The block before the first checked one is ASCII, which the
            // check treats as it does zeros.
            let mut prev = _mm512_setzero_si512();
            let mut errors = _mm512_setzero_si512();
            // One block, checked and searched: where the line ends in it, if
            // it does, and whether the line is valid (the flags of the lanes
            // up to the terminator count: a character it cuts is flagged at
            // the terminator).
            let step = |v: __m512i, at: usize, prev: &mut __m512i, errors: &mut __m512i| {
                let e = $errors(*prev, v);
                if _mm512_cmplt_epu8_mask(v, flag) != 0 {
                    let mask = terminators(v, at);
                    if mask != 0 {
                        let upto = mask.trailing_zeros() as usize;
                        let valid = _mm512_test_epi8_mask(*errors, *errors) == 0
                            && _mm512_test_epi8_mask(e, e) & (u64::MAX >> (63 - upto)) == 0;
                        return Some((upto, valid));
                    }
                }
                *errors = _mm512_or_si512(*errors, e);
                *prev = v;
                None
            };
            // Four blocks a step, as in the check above: four that are ASCII
            // with no control character up to CR (one test of their OR and
            // one of their minimum) need no lookups and no search, only the
            // check that the block before them did not end inside a
            // character. Mostly ASCII text with a multi-byte word now and
            // then (one-line JSON) would otherwise take the lookups on every
            // block, and be slower than a search and the check apart.
            let incomplete = _mm512_set_epi64(0xBFDF_EFFF_FFFF_FFFFu64 as i64, -1, -1, -1, -1, -1, -1, -1);
            // The line likely ends soon (a token event with a multi-byte
            // word): the first blocks one at a time.
            for _ in 0..2 {
                let Some(c) = hay.get(at..at + 64) else { break };
                let v = load64(c.try_into().expect("64 bytes"));
                if let Some((upto, valid)) = step(v, at, &mut prev, &mut errors) {
                    let end = at + upto;
                    return (Some(end), if valid { end + 1 } else { ascii });
                }
                at += 64;
            }
            while let Some(g) = hay.get(at..at + 256) {
                for k in 0..4 {
                    _mm_prefetch::<_MM_HINT_T0>(g.as_ptr().wrapping_add(64 * k + PREFETCH).cast());
                }
                let v: [__m512i; 4] =
                    core::array::from_fn(|k| load64(g[64 * k..64 * k + 64].try_into().expect("64 bytes")));
                let any = _mm512_or_si512(_mm512_or_si512(v[0], v[1]), _mm512_or_si512(v[2], v[3]));
                let low = _mm512_min_epu8(_mm512_min_epu8(v[0], v[1]), _mm512_min_epu8(v[2], v[3]));
                let control = _mm512_cmplt_epu8_mask(low, flag);
                if _mm512_movepi8_mask(any) | control == 0 {
                    errors = _mm512_or_si512(errors, _mm512_subs_epu8(prev, incomplete));
                    prev = v[3];
                    at += 256;
                    continue;
                }
                if control == 0 {
                    // No line end among them: the lookups alone.
                    for v in v {
                        errors = _mm512_or_si512(errors, $errors(prev, v));
                        prev = v;
                    }
                    at += 256;
                    continue;
                }
                for (k, v) in v.into_iter().enumerate() {
                    if let Some((upto, valid)) = step(v, at + 64 * k, &mut prev, &mut errors) {
                        let end = at + 64 * k + upto;
                        return (Some(end), if valid { end + 1 } else { ascii });
                    }
                }
                at += 256;
            }
            while let Some(c) = hay.get(at..at + 64) {
                let v = load64(c.try_into().expect("64 bytes"));
                if let Some((upto, valid)) = step(v, at, &mut prev, &mut errors) {
                    let end = at + upto;
                    return (Some(end), if valid { end + 1 } else { ascii });
                }
                at += 64;
            }
            // Fewer than 64 bytes left, zero-padded by a masked load: zeros
            // are ASCII and no terminator.
            let rest = &hay[at..];
            let v = load_prefix(rest, rest.len());
            let mask = terminators(v, at);
            let valid_before = _mm512_test_epi8_mask(errors, errors) == 0;
            if mask != 0 {
                let upto = mask.trailing_zeros() as usize;
                let e = $errors(prev, v);
                let valid = valid_before && _mm512_test_epi8_mask(e, e) & (u64::MAX >> (63 - upto)) == 0;
                return (Some(at + upto), if valid { at + upto + 1 } else { ascii });
            }
            // No terminator: valid up to a character that `hay` ends inside
            // of, checked strictly (the lane after the last byte counted is
            // zero, so a sequence cut before it, or a byte of 0xF8 or more
            // last, is flagged). A cut character that begins in the last
            // whole block is left to the caller's check.
            let end = hay.len() - super::incomplete_tail(hay);
            let Some(n) = end.checked_sub(at).filter(|_| valid_before) else {
                return (None, ascii);
            };
            let e = $errors(prev, load_prefix(rest, n));
            let valid = _mm512_test_epi8_mask(e, e) & (u64::MAX >> (63 - n)) == 0;
            (None, if valid { end } else { ascii })
        }
    };
}

utf8_kernels!(
    "avx512f,avx512bw",
    utf8_errors,
    copy_line_avx512,
    copy_valid_avx512,
    copy_avx512,
    valid_utf8_avx512,
    scan_valid_avx512,
    short_line_avx512
);
utf8_kernels!(
    "avx512f,avx512bw,avx512vbmi",
    utf8_errors_vbmi,
    copy_line_vbmi,
    copy_valid_vbmi,
    copy_vbmi,
    valid_utf8_vbmi,
    scan_valid_vbmi,
    short_line_vbmi
);

/// [`super::scan_long`] with AVX-512: a block of 64 bytes is one load and
/// one signed compare while the line is ASCII text, a byte below 0x0E as a
/// signed number being a control character up to CR or not ASCII (see
/// [`super::scan_long_avx2`], which needs two loads and two compares for
/// the same). Past the ASCII prefix, one unsigned compare flags the blocks
/// with a control character, and only those take the exact test.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn scan_long_avx512(hay: &[u8]) -> (Option<usize>, usize) {
    let lf = _mm512_set1_epi8(b'\n' as i8);
    let cr = _mm512_set1_epi8(b'\r' as i8);
    let flag = _mm512_set1_epi8(0x0E);
    let terminators = |v| _mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr);
    let mut blocks = hay.chunks_exact(64);
    let mut at = 0;
    // The ASCII prefix: every block before `at` is ASCII.
    let mut all_ascii = true;
    for c in blocks.by_ref() {
        let v = load64(c.try_into().expect("64 bytes"));
        if _mm512_cmplt_epi8_mask(v, flag) != 0 {
            let mask = terminators(v);
            let high = _mm512_movepi8_mask(v);
            if mask != 0 {
                // The bytes before the terminator may still be ASCII, and
                // the terminator is: the next line starts known valid.
                let upto = mask.trailing_zeros() as usize;
                let ascii = if high & !(u64::MAX << upto) == 0 { at + upto + 1 } else { at };
                return (Some(at + upto), ascii);
            }
            if high != 0 {
                all_ascii = false;
                break;
            }
        }
        at += 64;
    }
    let ascii = at;
    if !all_ascii {
        // Not ASCII: search on for a terminator alone, from this block.
        let rest = hay.get(at..).unwrap_or_default();
        for c in rest.chunks_exact(64) {
            let v = load64(c.try_into().expect("64 bytes"));
            if _mm512_cmplt_epu8_mask(v, flag) != 0 {
                let mask = terminators(v);
                if mask != 0 {
                    return (Some(at + mask.trailing_zeros() as usize), ascii);
                }
            }
            at += 64;
        }
    }
    // Fewer than 64 bytes left, zero-padded by a masked load: zeros are
    // ASCII and no terminator.
    let rest = hay.get(at..).unwrap_or_default();
    let v = load_prefix(rest, rest.len());
    let mask = terminators(v);
    let found = (mask != 0).then(|| mask.trailing_zeros() as usize);
    let upto = found.unwrap_or(rest.len());
    let rest_ascii = _mm512_movepi8_mask(v) & !(u64::MAX << upto) == 0;
    // The ASCII prefix may reach into the last, partial block: without
    // this, a line that ends a chunk would never be known valid.
    let ascii = if ascii == at && rest_ascii { at + found.map_or(upto, |p| p + 1) } else { ascii };
    (found.map(|p| at + p), ascii)
}

/// [`super::scan_partial`] with AVX-512: the fewer than 64 bytes of `rest`
/// in one masked load (zeros in the other lanes, which are ASCII and no
/// terminator), two compares and the high bits. The SSE2 version takes up
/// to four overlapping loads and twice the compares; a block that is the
/// whole chunk (a server that flushes each event) is searched here.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn scan_partial_avx512(rest: &[u8]) -> (u64, bool) {
    // At most 64 bytes: `load_prefix` asserts it, rather than leave the
    // bytes after the first 64 unsearched.
    let v = load_prefix(rest, rest.len());
    let mask = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\n' as i8))
        | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\r' as i8));
    (mask, _mm512_movepi8_mask(v) == 0)
}
