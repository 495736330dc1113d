//! Differential on multi-byte and invalid UTF-8: streams made of `data:`
//! lines (several per block, so the multi-line copy runs), other fields and
//! text in every UTF-8 length, with invalid sequences (overlong, surrogate,
//! past U+10FFFF, truncated, stray continuation bytes) placed anywhere, fed
//! in pieces cut at and around the 32- and 64-byte block edges of the SIMD
//! search and copy, must decode exactly as the naive whole-buffer reference
//! decoder does (the events, the last event ID, the reconnection time).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../sse-proto/tests/support/naive.rs"]
mod naive;

/// What each input byte's low bits pick.
const PIECES: &[&[u8]] = &[
    b"data: ",
    b"data:",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b"event: ",
    b"id: ",
    b": c\n",
    b"retry: 10\n",
    b"abcdefghijklmnopqrstuvwxyz0123456789",
    "é".as_bytes(),
    "ß".as_bytes(),
    "日本".as_bytes(),
    "語のテキスト".as_bytes(),
    "🦀".as_bytes(),
    "Привет".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\xC0\x80",
    b"\xED\xA0\x80",
    b"\xF4\x90\x80\x80",
    b"\xE0\x9F\xBF",
    b"\xF0\x80\x80\x80",
    b"\xFF",
    b"\x80",
    b"\xC3",
    b"\xE6\x97",
    b"\xF0\x9F\xA6",
    b"\0",
    b" ",
];

fuzz_target!(|input: (u8, Vec<u8>, Vec<(u8, i8)>)| {
    let (mode, picks, cuts) = input;
    let (zero_copy, lend) = (mode & 1 != 0, mode & 2 != 0);
    // Long runs of text make lines that cross several blocks.
    let repeat = 1 + usize::from(mode >> 4);
    let mut data = Vec::new();
    for &p in &picks {
        let piece = PIECES[usize::from(p) % PIECES.len()];
        let times = if p >= 128 { repeat } else { 1 };
        for _ in 0..times {
            data.extend_from_slice(piece);
        }
    }
    // Cuts at block edges (multiples of 32), moved by a few bytes.
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&(block, shift)| {
            let at = usize::from(block) * 32;
            at.saturating_add_signed(isize::from(shift % 4)).min(data.len())
        })
        .collect();
    cuts.sort_unstable();
    naive::check_pieces(&data, &cuts, zero_copy, lend, 0);
});
