//! Arbitrary bytes: the decoder never panics, and its memory stays within
//! its limits whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{Decoder, DecoderConfig};

fuzz_target!(|data: &[u8]| {
    // Small limits so that inputs of fuzzer size reach the error paths.
    let (max_line, max_data) = (64, 256);
    let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(max_line).max_data_len(max_data));
    // Feed in pieces of a size taken from the input, to vary the chunking.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for piece in data.chunks(step) {
        d.feed(piece);
        // An undispatched block's lines are kept up to 64 KiB (then its values
        // are copied out), plus the unterminated line.
        assert!(d.buffered_len() <= 64 * 1024 + 2 * max_line + piece.len() + 3, "buffer grew past its bound");
        loop {
            match d.poll_event() {
                Ok(Some(ev)) => {
                    assert!(ev.data().len() <= max_data);
                    // U+FFFD (3 bytes) may stand for one invalid byte.
                    assert!(ev.event_type().len() <= 3 * max_line);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(d.poll_event(), Err(e), "errors are sticky");
                    return;
                }
            }
        }
    }
    d.finish();
    while let Ok(Some(_)) = d.poll_event() {}
    assert_eq!(d.buffered_len(), 0);
});
