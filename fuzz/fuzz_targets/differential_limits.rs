//! Differential under limits: the decoder with small line and data limits,
//! fed in arbitrary pieces through `feed` or `feed_bytes` and drained with
//! `poll_event` or `poll_event_ref`, must give the naive reference's events
//! up to the first line past a limit, then the error that line calls for
//! (see `naive::limits`): never an error on input within the limits, never
//! one of the wrong kind, never events past it.
//!
//! The input is read as: a mode byte (bit 0: `feed_bytes`, bit 1: lent
//! events), the line limit and the data limit (two little-endian `u16`s,
//! taken modulo 1024 and 4096, so that inputs of fuzzer size reach them),
//! a count of cuts (modulo 9) and as many `u16` offsets, then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../sse-proto/tests/support/naive.rs"]
mod naive;

fuzz_target!(|input: &[u8]| {
    let Some((head, rest)) = input.split_first_chunk::<6>() else { return };
    let mode = head[0];
    let max_line = usize::from(u16::from_le_bytes([head[1], head[2]])) % 1024;
    let max_data = usize::from(u16::from_le_bytes([head[3], head[4]])) % 4096;
    let ncuts = usize::from(head[5] % 9).min(rest.len() / 2);
    let (cuts, data) = rest.split_at(2 * ncuts);
    let mut cuts: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (data.len() + 1))
        .collect();
    cuts.sort_unstable();
    if let Err(e) = naive::check_limited(data, &cuts, mode & 1 != 0, mode & 2 != 0, max_line, max_data) {
        panic!("{e}");
    }
});
