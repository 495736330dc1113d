//! Differential: the incremental decoder, fed in arbitrary pieces through
//! `feed` or `feed_bytes` and drained with `poll_event` or `poll_event_ref`,
//! must give exactly what the naive whole-buffer reference decoder (the
//! spec's steps transcribed one by one, shared with the property tests)
//! gives: the events, the last event ID and the reconnection time. Events
//! must also come out promptly: after each piece, all those whose block
//! ended in the bytes fed so far (checked for the first pieces, as each
//! check decodes the prefix again).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../sse-proto/tests/support/naive.rs"]
mod naive;

fuzz_target!(|input: (Vec<u16>, u8, &[u8])| {
    let (cuts, mode, data) = input;
    let (zero_copy, lend) = (mode & 1 != 0, mode & 2 != 0);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (data.len() + 1)).collect();
    cuts.sort_unstable();
    naive::check_pieces(data, &cuts, zero_copy, lend, 32);
});
