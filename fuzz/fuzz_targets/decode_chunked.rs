//! Chunk-split invariance: any split of the input gives exactly the events,
//! last event ID and reconnection time of the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{Decoder, bytes::Bytes};

type Outcome = (Vec<(String, String, String)>, String, Option<std::time::Duration>);

fn decode(pieces: &[&[u8]], zero_copy: bool) -> Outcome {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    let mut drain = |d: &mut Decoder| {
        while let Some(ev) = d.poll_event().expect("default limits are far above fuzz input sizes") {
            events.push((ev.event_type().to_owned(), ev.data().to_owned(), ev.last_event_id().to_owned()));
        }
    };
    for p in pieces {
        if zero_copy {
            d.feed_bytes(Bytes::copy_from_slice(p));
        } else {
            d.feed(p);
        }
        drain(&mut d);
    }
    d.finish();
    drain(&mut d);
    (events, d.last_event_id().to_owned(), d.reconnection_time())
}

fuzz_target!(|input: (Vec<u16>, bool, &[u8])| {
    let (cuts, zero_copy, data) = input;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in cuts {
        pieces.push(&data[start..c]);
        start = c;
    }
    pieces.push(&data[start..]);
    let whole = decode(&[data], false);
    assert_eq!(decode(&pieces, zero_copy), whole);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(decode(&bytes, !zero_copy), whole);
});
