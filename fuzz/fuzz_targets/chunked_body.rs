//! The chunked transfer coding: any body, chunked any way and fed split at
//! any points, decodes to itself; arbitrary bytes never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{ChunkedDecoder, LAST_CHUNK, encode_chunk};

fuzz_target!(|input: (Vec<u8>, Vec<u16>, Vec<u16>, bool)| {
    let (body, chunk_sizes, splits, raw) = input;
    if raw {
        // Arbitrary bytes: a body piece, done, or an error; never a panic.
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        if let Ok(n) = d.decode(&body, |p| out.extend_from_slice(p)) {
            assert!(n <= body.len());
            assert!(out.len() <= body.len());
        }
        return;
    }
    let mut wire = Vec::new();
    let mut rest = &body[..];
    for size in chunk_sizes.iter().map(|&s| usize::from(s) % 64 + 1) {
        if rest.is_empty() {
            break;
        }
        let n = size.min(rest.len());
        encode_chunk(&rest[..n], &mut wire);
        rest = &rest[n..];
    }
    encode_chunk(rest, &mut wire);
    wire.extend_from_slice(LAST_CHUNK);
    wire.extend_from_slice(b"trailing bytes are not body");
    let mut cuts: Vec<usize> = splits.iter().map(|&s| usize::from(s) % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([wire.len()]) {
        if d.is_done() {
            break;
        }
        let n = d.decode(&wire[start..cut], |p| out.extend_from_slice(p)).expect("valid chunked body");
        assert!(n == cut - start || d.is_done());
        start = cut;
    }
    assert!(d.is_done());
    assert_eq!(out, body);
});
