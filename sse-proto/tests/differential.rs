//! Differential property tests: the incremental decoder against the naive
//! whole-buffer reference (tests/support/naive.rs), on random streams cut at
//! random points. The streams are built from the bytes that matter to the
//! format (CR, LF, `:`, space, NUL, BOM bytes, field names, invalid UTF-8),
//! so the hard cases come up often instead of once in a billion.

mod support;

use proptest::prelude::*;
use sse_proto::{Decoder, DecoderConfig};
use support::naive;

/// Pieces random streams are made of.
const TOKENS: &[&[u8]] = &[
    b"data",
    b"data:",
    b"data: ",
    b"event",
    b"event:",
    b"id",
    b"id:",
    b"retry:",
    b"retry",
    b":",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\0",
    b"\xEF\xBB\xBF",
    b"\xEF",
    b"\xBB",
    b"\xBF",
    b"\xEF\xBB",
    b"\xFF",
    b"\xC0\x80",
    b"\xE2\x80\xA6",
    b"\xE2\x80",
    b"\xF0\x9F\x98\x80",
    b"\xF0\x9F",
    b"\xED\xA0\x80",
    b"a",
    b"x",
    b"tick",
    b"message",
    b"1",
    b"42",
    b"3000",
    b"{\"k\":[1,2]}",
    b"\xC3\xA9",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|ts| ts.concat())
}

/// A stream and a set of cut points in it.
fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    stream().prop_flat_map(|s| {
        let len = s.len();
        (Just(s), prop::collection::vec(0..=len, 0..12))
    })
}

fn chunks(input: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&input[start..c]);
        start = c;
    }
    out.push(&input[start..]);
    out
}

type Events = Vec<(String, String, String)>;

/// How the test feeds and drains: `feed` or `feed_bytes`, owned or lent events.
#[derive(Debug, Clone, Copy)]
struct Mode {
    zero_copy: bool,
    lend: bool,
}

fn mode() -> impl Strategy<Value = Mode> {
    (any::<bool>(), any::<bool>()).prop_map(|(zero_copy, lend)| Mode { zero_copy, lend })
}

fn run_incremental(pieces: &[&[u8]], mode: Mode) -> (Events, String, Option<u64>) {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    let mut drain = |d: &mut Decoder| naive::drain(d, mode.lend, &mut events);
    for p in pieces {
        naive::feed(&mut d, p, mode.zero_copy);
        drain(&mut d);
    }
    d.finish();
    drain(&mut d);
    let rt = d.reconnection_time().map(|t| t.as_millis() as u64);
    (events, d.last_event_id().to_owned(), rt)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_the_naive_decoder((input, cuts) in stream_and_cuts(), mode in mode()) {
        let want = naive::decode(&input);
        let (events, last_id, rt) = run_incremental(&chunks(&input, cuts), mode);
        prop_assert_eq!(&events, &want.events);
        prop_assert_eq!(&last_id, &want.last_event_id);
        prop_assert_eq!(rt, want.reconnection_time_ms);
    }

    #[test]
    fn byte_by_byte_equals_whole(input in stream()) {
        let whole = run_incremental(&[&input], Mode { zero_copy: false, lend: false });
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        for (zero_copy, lend) in [(false, false), (true, false), (false, true), (true, true)] {
            prop_assert_eq!(run_incremental(&bytes, Mode { zero_copy, lend }), whole.clone());
        }
    }

    #[test]
    fn feeding_without_draining_equals_draining(input in stream(), cuts in prop::collection::vec(0usize..400, 0..8), zero_copy in any::<bool>(), lend in any::<bool>()) {
        // Callers may feed several times before polling; the result must not
        // depend on it.
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        let pieces = chunks(&input, cuts);
        let mut d = Decoder::new();
        for p in &pieces {
            naive::feed(&mut d, p, zero_copy);
        }
        d.finish();
        let mut events = Vec::new();
        naive::drain(&mut d, lend, &mut events);
        prop_assert_eq!(events, naive::decode(&input).events);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(0usize..600, 0..10), max in 1usize..64) {
        // Tiny limits so the error paths run too.
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(max).max_data_len(max));
        let mut errored = None;
        for p in chunks(&input, cuts) {
            d.feed(p);
            loop {
                match d.poll_event() {
                    Ok(Some(ev)) => prop_assert!(ev.data().len() <= max),
                    Ok(None) => break,
                    Err(e) => {
                        // Sticky: the same error again.
                        prop_assert_eq!(d.poll_event(), Err(e));
                        errored = Some(e);
                        break;
                    }
                }
            }
            if errored.is_some() { break; }
            // Lines of an undispatched block are kept (up to 64 KiB, then
            // compacted) plus the unterminated line.
            prop_assert!(d.buffered_len() <= 64 * 1024 + 2 * max + p.len() + 3);
        }
    }
}

/// Blocks long enough to be compacted (64 KiB of comments and unknown fields
/// between their fields), in chunks of many sizes, through every mode.
#[test]
fn long_blocks_are_compacted_without_changing_events() {
    let mut input = Vec::new();
    for i in 0..3 {
        input.extend_from_slice(format!("event: t{i}\nid: {i}\ndata: first {i}\n").as_bytes());
        for k in 0..3000 {
            input.extend_from_slice(format!(": comment {k} padding padding\nunknown: {k}\n").as_bytes());
            if k == 1500 {
                input.extend_from_slice(format!("data: second {i}\r\nevent: late{i}\r").as_bytes());
            }
        }
        input.extend_from_slice(b"\n");
    }
    input.extend_from_slice("data: \u{e9}t\u{e9}\nid: x".as_bytes());
    input.extend_from_slice(b"\xff\n\n");
    let want = naive::decode(&input);
    assert_eq!(want.events.len(), 4);
    for chunk in [1, 7, 100, 4096, 16384, 70_000, input.len()] {
        let pieces: Vec<&[u8]> = input.chunks(chunk).collect();
        for (zero_copy, lend) in [(false, false), (true, false), (false, true), (true, true)] {
            let got = run_incremental(&pieces, Mode { zero_copy, lend });
            assert_eq!(got.0, want.events, "chunk {chunk}, zero_copy {zero_copy}, lend {lend}");
            assert_eq!(got.1, want.last_event_id);
        }
    }
}

/// Pieces of long values: runs of plain ASCII (long enough to take the
/// block-wise search and copy of `data` lines), and the bytes that stop it.
fn value_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (1usize..160, any::<u8>()).prop_map(|(n, seed)| (0..n).map(|i| b'a' + ((i as u8).wrapping_add(seed) % 26)).collect()),
        1 => prop::sample::select(STOPS).prop_map(<[u8]>::to_vec),
    ]
}

/// Bytes that stop a plain ASCII run: non-ASCII, invalid UTF-8, controls.
const STOPS: &[&[u8]] = &[
    b"\xC3\xA9",
    b"\xE2\x80\xA6",
    b"\xFF",
    b"\xE2\x80",
    b"\xF0\x9F\x98\x80",
    b"\0",
    b":",
    b" ",
    b"\t",
    b"\x0B",
];
const EOLS: &[&[u8]] = &[b"\n", b"\r", b"\r\n"];
const LINE_STARTS: &[&[u8]] =
    &[b"data: ", b"data: ", b"data: ", b"data:", b"data:  ", b"event: ", b"id: ", b": "];

fn eol() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(EOLS)
}

/// Events with several long `data` lines (and sometimes `event`, `id` and
/// comment lines among them), each line ended by LF, CR or CRLF.
fn long_events() -> impl Strategy<Value = Vec<u8>> {
    let line = (prop::sample::select(LINE_STARTS), prop::collection::vec(value_piece(), 0..6), eol())
        .prop_map(|(name, pieces, eol)| [name.to_vec(), pieces.concat(), eol.to_vec()].concat());
    let event = (prop::collection::vec(line, 1..6), eol())
        .prop_map(|(lines, eol)| [lines.concat(), eol.to_vec()].concat());
    prop::collection::vec(event, 1..8).prop_map(|events| events.concat())
}

/// Events of many short `data` lines, as pretty-printed JSON is sent (one
/// line of the document per `data:` line), with the bytes that stop a
/// plain run among them, ended by LF, CR or CRLF.
fn short_line_events() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => (1usize..40, any::<u8>()).prop_map(|(n, seed)| (0..n).map(|i| b'a' + ((i as u8).wrapping_add(seed) % 26)).collect::<Vec<u8>>()),
        1 => prop::sample::select(STOPS).prop_map(<[u8]>::to_vec),
    ];
    let line = (prop::sample::select(LINE_STARTS), prop::collection::vec(piece, 0..3), eol())
        .prop_map(|(name, pieces, eol)| [name.to_vec(), pieces.concat(), eol.to_vec()].concat());
    let event = (prop::collection::vec(line, 1..30), eol())
        .prop_map(|(lines, eol)| [lines.concat(), eol.to_vec()].concat());
    prop::collection::vec(event, 1..6).prop_map(|events| events.concat())
}

/// `input` cut at `cuts` and decoded in `mode`: the events and the last
/// event ID are the naive decoder's.
fn agrees_at_cuts(input: &[u8], cuts: &[prop::sample::Index], mode: Mode) -> Result<(), TestCaseError> {
    let cuts = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
    let want = naive::decode(input);
    let (events, last_id, _) = run_incremental(&chunks(input, cuts), mode);
    prop_assert_eq!(&events, &want.events);
    prop_assert_eq!(&last_id, &want.last_event_id);
    Ok(())
}

/// Events of news as one long line of multi-byte text (1 to 3 KiB of Thai,
/// Devanagari or CJK, the bytes that stop a plain run now and then), after
/// a type and an id: in inputs of several KiB, the lines count as long and
/// the search validates each from where the validated prefix stopped, in
/// the event's first lines.
fn long_multi_byte_line_events() -> impl Strategy<Value = Vec<u8>> {
    const TEXT: &[&str] = &["ข่าววันนี้ ", "समाचार आज ", "今日のニュース、", "新闻 ", "word "];
    let piece = prop_oneof![
        12 => prop::sample::select(TEXT).prop_map(|t| t.as_bytes().to_vec()),
        1 => prop::sample::select(STOPS).prop_map(<[u8]>::to_vec),
    ];
    let event = (prop::collection::vec(piece, 60..240), eol(), 0u32..1000).prop_map(|(pieces, eol, n)| {
        [format!("event: ข่าว\nid: {n}\ndata: ").into_bytes(), pieces.concat(), eol.to_vec(), eol.to_vec()]
            .concat()
    });
    prop::collection::vec(event, 3..8).prop_map(|events| events.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn long_multi_byte_lines_agree_with_the_naive_decoder(input in long_multi_byte_line_events(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4), mode in mode()) {
        agrees_at_cuts(&input, &cuts, mode)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn short_line_events_agree_with_the_naive_decoder(input in short_line_events(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6), mode in mode()) {
        agrees_at_cuts(&input, &cuts, mode)?;
    }

    #[test]
    fn long_multi_line_events_agree_with_the_naive_decoder(input in long_events(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6), mode in mode()) {
        agrees_at_cuts(&input, &cuts, mode)?;
    }

    #[test]
    fn long_multi_line_events_within_limits(input in prop_oneof![long_events(), short_line_events()], cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6), max_line in 16usize..400, max_data in prop_oneof![16usize..800, 800usize..6000], mode in mode()) {
        // Limits the lines and events of these streams often reach: the
        // events before the error are the reference's, the error is the one
        // the first line past a limit calls for, with the right numbers, and
        // comes exactly when the input calls for one.
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        if let Err(e) = naive::check_limited(&input, &cuts, mode.zero_copy, mode.lend, max_line, max_data) {
            prop_assert!(false, "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn events_come_out_as_soon_as_their_block_ends(input in prop_oneof![stream(), long_events()], cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10), mode in mode()) {
        // A stream may pause at any byte: every event whose block has ended
        // in the bytes fed so far must be out before more bytes come, in
        // every mode and however the bytes were cut.
        let cuts = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        let mut d = Decoder::new();
        let mut events = Vec::new();
        let mut fed = 0;
        for p in chunks(&input, cuts) {
            naive::feed(&mut d, p, mode.zero_copy);
            fed += p.len();
            naive::drain(&mut d, mode.lend, &mut events);
            prop_assert_eq!(&events, &naive::decode(&input[..fed]).events, "after {} of {} bytes", fed, input.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn byte_runs_between_chunks_agree_with_the_naive_decoder(input in prop_oneof![stream(), long_events()], runs in prop::collection::vec((any::<prop::sample::Index>(), 1usize..48), 0..4), mode in mode()) {
        // Runs of single bytes (the decoder at rest between them takes its
        // byte-at-a-time path) meet larger chunks of either feed, lent
        // events and the end of the stream, and every event comes out as
        // soon as its block ends.
        let mut cuts: Vec<usize> = runs
            .iter()
            .flat_map(|(at, len)| {
                let start = at.index(input.len() + 1);
                start..(start + len).min(input.len() + 1)
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        naive::check_pieces(&input, &cuts, mode.zero_copy, mode.lend, cuts.len() + 1);
    }
}

#[test]
fn a_copied_data_line_ended_by_a_byte_fed_alone() {
    // After an event of several lines, the next `data` line is copied as
    // it is searched; the input ends inside it, and its end (a CRLF here)
    // arrives a byte at a time: the copy must go on from where it stopped.
    let head = b"data: a\ndata: b\n\ndata: ".len();
    let input = [&b"data: a\ndata: b\n\ndata: "[..], &[b'x'; 100], b"yy\r\ndata: z\r\n\r\n"].concat();
    for first in [head + 10, head + 100] {
        let cuts: Vec<usize> = (first..input.len()).collect();
        for (zero_copy, lend) in [(false, false), (true, false), (false, true), (true, true)] {
            naive::check_pieces(&input, &cuts, zero_copy, lend, cuts.len() + 1);
        }
    }
}
