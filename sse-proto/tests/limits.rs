//! Limits: an endless line ends in a typed error with memory near the limit,
//! never near the input size, and a long line fed one byte at a time costs
//! linear time.

#![allow(unsafe_code)]

use sse_proto::{DecodeError, Decoder, DecoderConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak, so a test can assert what the
/// decoder really holds (not what it claims to hold).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    /// Allocations (and reallocations) made by this thread, for tests that
    /// count them: the test harness allocates on other threads meanwhile
    /// (spawning the next tests), which must not count.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

/// Counts an allocation of the calling thread. `try_with`: a thread's
/// last frees run after its locals are gone.
fn count_alloc() {
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Tests in this file run one at a time while they read the counters.
static SERIAL: Mutex<()> = Mutex::new(());

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        count_alloc();
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        count_alloc();
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

const MIB: usize = 1024 * 1024;

#[test]
fn a_64_mib_line_ends_in_the_limit_error_with_bounded_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chunk = vec![b'x'; 16 * 1024];
    let mut d = Decoder::new();
    let base = reset_peak();
    d.feed(b"data: ");
    let mut fed = 6;
    let mut err = None;
    while fed < 64 * MIB {
        d.feed(&chunk);
        fed += chunk.len();
        match d.poll_event() {
            Ok(None) => {}
            Ok(Some(ev)) => panic!("no event can complete: {ev:?}"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let max = DecoderConfig::DEFAULT_MAX_LINE_LEN;
    match err {
        Some(DecodeError::LineTooLong { len, max: m }) => {
            assert_eq!(m, max);
            assert!(len > max && len <= max + chunk.len(), "len {len}");
        }
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    // The limit is 2 MiB; a growing buffer may double once past it.
    assert!(peak <= 2 * max + 64 * 1024, "peak heap {peak} bytes for a {fed}-byte line");
    assert!(fed < 4 * MIB, "the error came after {fed} bytes");
    // Sticky, and the input after it is not buffered.
    d.feed(&chunk);
    assert!(d.poll_event().is_err());
    assert_eq!(d.buffered_len(), 0);
}

#[test]
fn a_huge_line_in_one_feed_is_not_buffered() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let big = vec![b'y'; 64 * MIB];
    let mut d = Decoder::with_config(DecoderConfig::default().max_line_len(MIB));
    d.feed(b"data: ok\n\n");
    let base = reset_peak();
    d.feed(&big);
    assert!(PEAK.load(Ordering::Relaxed) - base < MIB, "the over-long chunk was copied");
    // Events before the over-long line still arrive, then the error.
    assert_eq!(d.poll_event().unwrap().unwrap().data(), "ok");
    assert!(matches!(d.poll_event(), Err(DecodeError::LineTooLong { .. })));
}

#[test]
fn many_data_lines_hit_the_data_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Decoder::with_config(DecoderConfig::default().max_data_len(MIB));
    let line = format!("data: {}\n", "z".repeat(1000));
    let base = reset_peak();
    let mut err = None;
    for _ in 0..10_000 {
        d.feed(line.as_bytes());
        if let Err(e) = d.poll_event() {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(DecodeError::DataTooLong { max, .. }) if max == MIB), "{err:?}");
    assert!(PEAK.load(Ordering::Relaxed) - base < 3 * MIB);
}

/// Decodes `input` in `chunk`-byte pieces through every way of feeding and
/// draining, and returns what each gave: the data of each event, then the
/// error if one came.
fn outcomes(input: &[u8], config: DecoderConfig, chunk: usize) -> Vec<(Vec<usize>, Option<DecodeError>)> {
    outcomes_of_pieces(&input.chunks(chunk).collect::<Vec<_>>(), config)
}

/// [`outcomes`] for input fed in the given pieces.
fn outcomes_of_pieces(pieces: &[&[u8]], config: DecoderConfig) -> Vec<(Vec<usize>, Option<DecodeError>)> {
    let mut all = Vec::new();
    for (zero_copy, lend) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut d = Decoder::with_config(config);
        let mut sizes = Vec::new();
        let mut err = None;
        'feed: for &p in pieces {
            if zero_copy {
                d.feed_bytes(bytes::Bytes::copy_from_slice(p));
            } else {
                d.feed(p);
            }
            loop {
                let next = if lend {
                    d.poll_event_ref().map(|e| e.map(|e| e.data.len()))
                } else {
                    d.poll_event().map(|e| e.map(|e| e.data().len()))
                };
                match next {
                    Ok(Some(n)) => sizes.push(n),
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break 'feed;
                    }
                }
            }
        }
        all.push((sizes, err));
    }
    all
}

#[test]
fn a_value_that_passes_a_limit_by_nothing_but_its_line_break_is_caught() {
    // Long lines bring the data to exactly the limit; the next data line,
    // empty, adds the LF that joins it and so one byte too many.
    let input = format!("data: {}\ndata: {}\ndata:\n\n", "x".repeat(150), "y".repeat(149));
    let config = DecoderConfig::default().max_data_len(300);
    for chunk in [input.len(), 100, 7, 1] {
        for (sizes, err) in outcomes(input.as_bytes(), config, chunk) {
            assert_eq!(sizes, [] as [usize; 0], "chunks of {chunk}");
            assert_eq!(err, Some(DecodeError::DataTooLong { len: 301, max: 300 }), "chunks of {chunk}");
        }
    }
    // At the limit exactly, the event goes through.
    let input = format!("data: {}\ndata: {}\n\n", "x".repeat(150), "y".repeat(149));
    for chunk in [input.len(), 100, 7, 1] {
        for (sizes, err) in outcomes(input.as_bytes(), config, chunk) {
            assert_eq!((sizes, err), (vec![300], None), "chunks of {chunk}");
        }
    }
    // A line limit that `data: ` alone passes: an empty value after a
    // space is one byte too long.
    let input = b"data\ndata: \n\n";
    let config = DecoderConfig::default().max_line_len(5);
    for chunk in [input.len(), 5, 1] {
        for (sizes, err) in outcomes(input, config, chunk) {
            assert_eq!(sizes, [] as [usize; 0], "chunks of {chunk}");
            assert_eq!(err, Some(DecodeError::LineTooLong { len: 6, max: 5 }), "chunks of {chunk}");
        }
    }
}

#[test]
fn a_line_ended_by_a_short_piece_does_not_count_toward_the_next() {
    // A piece longer than the line limit (124 bytes) ends inside a line
    // (86 bytes of 100); a short piece ends that line; the next piece starts a line of
    // 40 bytes. The feeds measure the trailing line as the pieces come, to
    // refuse an over-long one before buffering it: the short piece, which
    // is only appended, must not leave the first line's length to be added
    // to the second's (126, refused).
    let head = format!("data: {}\n\ndata: {}", "a".repeat(30), "x".repeat(80));
    let next = format!("data: {}", "z".repeat(34));
    let config = DecoderConfig::default().max_line_len(100);
    let ends: [&[&[u8]]; 3] = [&[b"yy\n"], &[b"y", b"y", b"\n"], &[b"yy\r", b"\n"]];
    for end in ends {
        let mut pieces: Vec<&[u8]> = vec![head.as_bytes()];
        pieces.extend_from_slice(end);
        pieces.push(next.as_bytes());
        pieces.push(b"\n\n");
        for (sizes, err) in outcomes_of_pieces(&pieces, config) {
            assert_eq!((sizes, err), (vec![30, 82 + 1 + 34], None), "line ended by {end:?}");
        }
    }
}

#[test]
fn a_continued_data_line_past_the_limit_fails_at_once() {
    // A chunk ends inside a `data` line (86 bytes of 100), which goes on in
    // the data buffer; short pieces continue it. The poll after the piece
    // that takes the line past the limit reports it: that piece is not
    // just appended to wait for more input.
    let head = format!("data: {}\n\ndata: {}", "a".repeat(30), "x".repeat(80));
    let config = DecoderConfig::default().max_line_len(100);
    for zero_copy in [true, false] {
        for pieces in [&["y", "y", "yyyyyyyyyyyyyyyyy"][..], &["yyyyyyyyyyyyyyyy"], &["y"; 15]] {
            let mut d = Decoder::with_config(config);
            let feed = |d: &mut Decoder, p: &[u8]| {
                if zero_copy { d.feed_bytes(bytes::Bytes::copy_from_slice(p)) } else { d.feed(p) }
            };
            feed(&mut d, head.as_bytes());
            assert_eq!(d.poll_event().map(|e| e.map(|e| e.data().len())), Ok(Some(30)));
            assert_eq!(d.poll_event(), Ok(None));
            let mut len = 86;
            for p in pieces {
                feed(&mut d, p.as_bytes());
                len += p.len();
                let polled = d.poll_event();
                if len > 100 {
                    assert_eq!(
                        polled,
                        Err(DecodeError::LineTooLong { len, max: 100 }),
                        "{pieces:?}, zero copy {zero_copy}"
                    );
                } else {
                    assert_eq!(polled, Ok(None), "{pieces:?}, zero copy {zero_copy}");
                }
            }
        }
    }
}

#[test]
fn kept_events_hold_little_more_memory_than_their_data() {
    // A large event (with a long id) sets the decoder's size hint; smaller
    // events of several lines after it must not each keep a buffer that
    // large, nor one above the data limit.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let max_data = 64 * 1024;
    let mut d = Decoder::with_config(DecoderConfig::default().max_data_len(max_data));
    let big =
        format!("id: {}\ndata: {}\ndata: {}\n\n", "i".repeat(MIB), "a".repeat(30_000), "b".repeat(30_000));
    d.feed(big.as_bytes());
    assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 60_001);
    let small = format!("data: {}\ndata: {}\n\n", "c".repeat(200), "d".repeat(200));
    // The first one after the big event may reserve up to 4 times its data;
    // it also makes the shared copy of the long last event ID, which every
    // later event shares.
    d.feed(small.as_bytes());
    assert_eq!(d.poll_event().unwrap().unwrap().last_event_id().len(), MIB);
    let base = reset_peak();
    let mut kept = Vec::new();
    for _ in 0..1000 {
        d.feed(small.as_bytes());
        kept.push(d.poll_event().unwrap().unwrap());
    }
    let held = LIVE.load(Ordering::Relaxed) - base;
    let data: usize = kept.iter().map(|e| e.data().len()).sum();
    // 401 bytes of data each, held with little slack (the event itself and
    // the vector of kept events are about 130 bytes each).
    assert!(held <= 2 * data + 1000 * 200, "{held} bytes held for {data} bytes of data");
}

#[test]
fn events_dropped_as_they_come_cost_no_allocation_each() {
    // Events of several lines are carved out of one buffer that is taken
    // back once they are dropped.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let block = format!("event: e\nid: 1\ndata: {}\ndata: {}\n\n", "x".repeat(1000), "y".repeat(1000));
    let stream = block.repeat(100);
    let mut d = Decoder::new();
    d.feed(stream.as_bytes());
    // The first events size the buffers.
    for _ in 0..10 {
        assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 2001);
    }
    let before = allocs();
    for _ in 0..90 {
        assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 2001);
    }
    let made = allocs() - before;
    assert!(made <= 2, "{made} allocations for 90 events");
}

#[test]
fn a_few_kept_events_pin_little_memory() {
    // Keeping one event in 50 must not keep the buffers of the others, nor
    // one large buffer for a few small events.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = reset_peak();
    let mut d = Decoder::new();
    // A large event first: its buffer must not be shared by later ones.
    d.feed(format!("data: {}\ndata: {}\n\n", "a".repeat(MIB), "b".repeat(MIB)).as_bytes());
    assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 2 * MIB + 1);
    let block = format!("data: {}\ndata: {}\n\n", "c".repeat(300), "d".repeat(300));
    let mut kept = Vec::new();
    for i in 0..5000 {
        d.feed(block.as_bytes());
        let event = d.poll_event().unwrap().unwrap();
        if i % 50 == 0 {
            kept.push(event);
        }
    }
    // What the kept events hold once the decoder is gone.
    drop(d);
    let held = LIVE.load(Ordering::Relaxed) - base;
    // 100 events of 601 bytes: each may pin one buffer of a few events.
    assert!(held <= 100 * 8 * 1024, "{held} bytes held by {} kept events", kept.len());
}

#[test]
fn small_kept_events_never_pin_a_large_events_buffer() {
    // Large events are dropped, the small ones between them kept: a small
    // event must not be carved from the allocation a large one left behind.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = reset_peak();
    let mut d = Decoder::new();
    let large = format!("data: {}\ndata: {}\n\n", "x".repeat(8000), "y".repeat(8000));
    let small = format!("data: {}\ndata: {}\n\n", "a".repeat(40), "b".repeat(40));
    let mut kept = Vec::new();
    for _ in 0..200 {
        d.feed(large.as_bytes());
        assert_eq!(d.poll_event().unwrap().unwrap().data().len(), 16_001);
        d.feed(small.as_bytes());
        kept.push(d.poll_event().unwrap().unwrap());
    }
    drop(d);
    let held = LIVE.load(Ordering::Relaxed) - base;
    // 81 bytes of data each; the event and the vector of kept events are
    // about 130 bytes more.
    assert!(held <= 200 * 1024, "{held} bytes held by {} kept events", kept.len());
}

#[test]
fn kept_events_pin_little_after_a_larger_one() {
    // One-line events continued across 16 KiB chunks reserve, up front,
    // as much as the last one held (and an eighth more), so that a line
    // like the last is not regrown and copied on the way. A smaller event
    // after a larger one must not keep that room: 1 MiB events are
    // dropped, the 40 KiB ones between them kept.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = reset_peak();
    let mut d = Decoder::new();
    let large = bytes::Bytes::from(format!("data: {}\n\n", "x".repeat(1 << 20)));
    let small = bytes::Bytes::from(format!("data: {}\n\n", "y".repeat(40 << 10)));
    let mut kept = Vec::new();
    for _ in 0..20 {
        for input in [&large, &small] {
            for chunk in input.chunks(16 << 10) {
                d.feed_bytes(input.slice_ref(chunk));
                while let Some(ev) = d.poll_event().unwrap() {
                    if ev.data().len() == 40 << 10 {
                        kept.push(ev);
                    }
                }
            }
        }
    }
    assert_eq!(kept.len(), 20);
    drop((d, large, small));
    let held = LIVE.load(Ordering::Relaxed) - base;
    assert!(held <= 20 * (80 << 10), "{held} bytes held by {} kept events of 40 KiB", kept.len());
}

#[test]
fn events_a_little_larger_than_the_last_are_not_regrown() {
    // Events of several `data` lines, each a few percent larger than the
    // last, in 16 KiB chunks: the data buffer is reserved, when the first
    // line comes, as large as the last event and an eighth more, so no
    // event grows it (growing copies all of it, and past 128 KiB the
    // allocator maps fresh pages for each copy).
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let line = format!("data: {}\n", "z".repeat(3000));
    let events: Vec<String> = (20..40).map(|n| format!("event: e\n{}\n", line.repeat(n))).collect();
    let input = bytes::Bytes::from(events.concat());
    let mut d = Decoder::new();
    let mut per_event = Vec::new();
    let mut before = allocs();
    for chunk in input.chunks(16 << 10) {
        d.feed_bytes(input.slice_ref(chunk));
        while let Some(ev) = d.poll_event().unwrap() {
            assert_eq!(ev.data().len() % 3001, 3000);
            drop(ev);
            per_event.push(allocs() - before);
            before = allocs();
        }
    }
    assert_eq!(per_event.len(), 20);
    // The first two events learn the size; after them, the buffer and the
    // event's share of it, no regrowing.
    assert!(per_event[2..].iter().all(|&n| n <= 2), "allocations an event: {per_event:?}");
}

fn time_byte_by_byte(len: usize) -> Duration {
    let mut input = b"data: ".to_vec();
    input.resize(len, b'q');
    input.extend_from_slice(b"\n\n");
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let mut d = Decoder::new();
        let start = Instant::now();
        let mut n = 0;
        for b in input.chunks(1) {
            d.feed(b);
            while let Some(ev) = d.poll_event().unwrap() {
                assert_eq!(ev.data().len(), len - 6);
                n += 1;
            }
        }
        assert_eq!(n, 1);
        best = best.min(start.elapsed());
    }
    best
}

/// Decodes a long second `data` line (after an event of several lines, so
/// that data lines are copied as they are searched) fed in `piece`-byte
/// pieces, and returns the best time of three.
fn time_second_line(len: usize, piece: usize, zero_copy: bool) -> Duration {
    let mut input = b"data: a\ndata: b\n\ndata: x\ndata: ".to_vec();
    input.resize(input.len() + len, b'q');
    input.extend_from_slice(b"\n\n");
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let mut d = Decoder::new();
        let start = Instant::now();
        let mut sizes = Vec::new();
        for p in input.chunks(piece) {
            if zero_copy {
                d.feed_bytes(bytes::Bytes::copy_from_slice(p));
            } else {
                d.feed(p);
            }
            while let Some(ev) = d.poll_event().unwrap() {
                sizes.push(ev.data().len());
            }
        }
        assert_eq!(sizes, [3, len + 2]);
        best = best.min(start.elapsed());
    }
    best
}

#[test]
fn a_long_second_data_line_fed_in_pieces_is_linear() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (piece, zero_copy) in [(1, false), (1, true), (64, false), (64, true)] {
        let small = time_second_line(48 * 1024, piece, zero_copy);
        let large = time_second_line(384 * 1024, piece, zero_copy);
        // 8x the input: about 8x the time when linear, 64x when quadratic.
        // The larger input leaves the caches, and a busy machine slows one
        // of the two runs more than the other (26x was seen once under a
        // concurrent build): half of quadratic still tells the two apart.
        let ratio = large.as_secs_f64() / small.as_secs_f64();
        assert!(
            ratio < 32.0,
            "{piece}-byte pieces, zero copy {zero_copy}: {small:?}, then {large:?}, ratio {ratio:.1}"
        );
    }
}

#[test]
fn a_768_kib_line_fed_byte_by_byte_is_linear() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let small = time_byte_by_byte(96 * 1024);
    let large = time_byte_by_byte(768 * 1024);
    // 8x the input: about 8x the time when linear, 64x when quadratic.
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    assert!(ratio < 24.0, "96 KiB: {small:?}, 768 KiB: {large:?}, ratio {ratio:.1}");
}
