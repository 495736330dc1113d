//! The replay log and the server session, scenario by scenario, on a fake
//! clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_proto::{
    Decoder, Event, Replay, ReplayConfig, ReplayLog, Request, ServerConfig, ServerSession, error_response,
};

fn frame(id: &str, data: &str) -> Bytes {
    Event::new(data).id(id).to_bytes().expect("valid event")
}

fn ids(replay: Replay<'_>) -> Result<Vec<String>, &'static str> {
    match replay {
        Replay::Frames(frames) => Ok(frames.map(|(id, _)| id.to_owned()).collect()),
        Replay::UpToDate => Err("up to date"),
        Replay::Gap => Err("gap"),
    }
}

fn log_with(config: ReplayConfig, n: usize, now: Instant) -> ReplayLog {
    let mut log = ReplayLog::new(config);
    for i in 0..n {
        let id = log.next_id();
        log.push(&id, frame(&id, &format!("event {i}")), now);
    }
    log
}

#[test]
fn replay_hit_returns_exactly_the_missed_frames_in_order() {
    let now = Instant::now();
    let mut log = log_with(ReplayConfig::default(), 10, now);
    assert_eq!(ids(log.since("6", now)), Ok(vec!["7".into(), "8".into(), "9".into(), "10".into()]));
    // The frames decode to the events.
    let Replay::Frames(frames) = log.since("8", now) else { panic!("frames") };
    let mut d = Decoder::new();
    for (_, f) in frames {
        d.feed(f);
    }
    let got: Vec<_> = std::iter::from_fn(|| d.poll_event().unwrap()).map(|e| e.data().to_owned()).collect();
    assert_eq!(got, ["event 8", "event 9"]);
}

#[test]
fn replay_up_to_date() {
    let now = Instant::now();
    let mut log = log_with(ReplayConfig::default(), 3, now);
    assert_eq!(ids(log.since("3", now)), Err("up to date"));
    // Even when the newest event was evicted by age.
    let mut aged =
        log_with(ReplayConfig { max_age: Some(Duration::from_secs(1)), ..Default::default() }, 3, now);
    assert_eq!(ids(aged.since("3", now + Duration::from_secs(5))), Err("up to date"));
}

#[test]
fn replay_gap_after_eviction_by_count() {
    let now = Instant::now();
    let mut log = log_with(ReplayConfig { max_events: 4, ..Default::default() }, 10, now);
    assert_eq!(log.len(), 4);
    assert_eq!(ids(log.since("6", now)), Err("gap"));
    assert_eq!(ids(log.since("7", now)), Ok(vec!["8".into(), "9".into(), "10".into()]));
    assert_eq!(ids(log.since("unknown", now)), Err("gap"));
}

#[test]
fn replay_gap_after_eviction_by_bytes() {
    let now = Instant::now();
    let one = frame("1", "event 0").len();
    let mut log = log_with(ReplayConfig { max_bytes: 3 * one, ..Default::default() }, 6, now);
    assert!(log.bytes() <= 3 * one);
    assert_eq!(ids(log.since("2", now)), Err("gap"));
    assert_eq!(ids(log.since("4", now)), Ok(vec!["5".into(), "6".into()]));
    // A frame too large to keep makes everything before it unreachable.
    log.push("7", Bytes::from(vec![b'x'; 4 * one]), now);
    assert_eq!(log.len(), 0);
    assert_eq!(ids(log.since("5", now)), Err("gap"));
    assert_eq!(ids(log.since("7", now)), Err("up to date"));
}

#[test]
fn replay_gap_after_eviction_by_age() {
    let t0 = Instant::now();
    let mut log =
        ReplayLog::new(ReplayConfig { max_age: Some(Duration::from_secs(10)), ..Default::default() });
    for (i, at) in [0u64, 5, 12].iter().enumerate() {
        let id = (i + 1).to_string();
        log.push(&id, frame(&id, "x"), t0 + Duration::from_secs(*at));
    }
    let now = t0 + Duration::from_secs(14);
    // Event 1 (t=0) and 2 (t=5)... 2 is 9 s old: kept; 1 is gone.
    assert_eq!(ids(log.since("1", now)), Err("gap"));
    assert_eq!(ids(log.since("2", now)), Ok(vec!["3".into()]));
    assert_eq!(ids(log.since("2", t0 + Duration::from_secs(16))), Err("gap"));
}

#[test]
fn duplicate_ids_resume_after_the_latest() {
    let now = Instant::now();
    let mut log = ReplayLog::new(ReplayConfig { max_events: 3, ..Default::default() });
    for id in ["a", "b", "a", "c"] {
        log.push(id, frame(id, id), now);
    }
    assert_eq!(ids(log.since("a", now)), Ok(vec!["c".into()]));
    // The first "a" is evicted; the index still points at the second.
    log.push("d", frame("d", "d"), now);
    assert_eq!(ids(log.since("a", now)), Ok(vec!["c".into(), "d".into()]));
}

#[test]
fn a_resume_storm_does_not_scan_the_log() {
    let now = Instant::now();
    let mut log =
        log_with(ReplayConfig { max_events: 100_000, max_bytes: usize::MAX, max_age: None }, 100_000, now);
    let start = Instant::now();
    let mut frames = 0;
    for client in 0..10_000u32 {
        let id = (99_990 + client % 10).to_string();
        if let Replay::Frames(f) = log.since(&id, now) {
            frames += f.len();
        }
    }
    // Client k resumes after 99_990 + k and misses 10 - k events.
    assert_eq!(frames, 1000 * (1..=10).sum::<usize>());
    // 10,000 resumes against a 100,000-entry log: a scan per resume would be
    // 10^9 steps; lookups take milliseconds even in a debug build.
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn server_answers_bad_requests_with_their_status() {
    let huge_cookie = [b"GET /x HTTP/1.1\r\nCookie: ".as_slice(), &[b'a'; 128]].concat();
    let cases: [(&[u8], u16); 7] = [
        (b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (&huge_cookie, 431),
        (b"\x16\x03\x01\x02\x00", 400),
        (b"GET /x HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n", 417),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
    ];
    for (input, status) in cases {
        let err = Request::parse(input, 128).expect_err("refused");
        assert_eq!(err.status(), status, "{input:?}");
        assert!(err.response().starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
    }
    let post = Request::parse(b"POST /events HTTP/1.1\r\nHost: h\r\n\r\n", 1024).unwrap().unwrap();
    assert_eq!(post.check_method(&["GET"]).unwrap_err().status(), 405);
    for status in [404, 503] {
        // A header that could forge another is not sent at all.
        let res = error_response(status, &[("Retry-After", "1\r\nX: injected"), ("Retry-After", "2")]);
        let text = String::from_utf8(res).unwrap();
        assert!(!text.contains("injected"), "{text}");
        assert!(text.contains("\r\nRetry-After: 2\r\n"), "{text}");
        assert!(text.contains("Content-Length: "));
    }
}

#[test]
fn server_session_frames_events_and_ends_cleanly() {
    let t0 = Instant::now();
    let config = ServerConfig::default().header("Access-Control-Allow-Origin", "*");
    let mut s = ServerSession::new(config, t0).unwrap();
    let mut out = Vec::new();
    s.send(&Event::new("a\nb").event("tick").id("1"), t0, &mut out).unwrap();
    s.close(&mut out);
    let text = String::from_utf8(out.clone()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\
         X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\nAccess-Control-Allow-Origin: *"
    );
    // The body dechunks to the frame, and the stream ends with the last chunk.
    let mut dechunk = sse_proto::ChunkedDecoder::new();
    let mut frames = Vec::new();
    dechunk.decode(body.as_bytes(), |p| frames.extend_from_slice(p)).unwrap();
    assert!(dechunk.is_done());
    assert_eq!(frames, b"event: tick\nid: 1\ndata: a\ndata: b\n\n");
}

#[test]
fn keep_alive_fires_only_when_idle_and_can_be_off() {
    let t0 = Instant::now();
    let k = Duration::from_secs(15);
    let mut s = ServerSession::new(ServerConfig::default(), t0).unwrap();
    let mut out = Vec::new();
    s.start(&mut out);
    let mut comments = 0;
    let mut now = t0;
    // Events every 10 s for a minute: never idle for 15 s.
    for _ in 0..6 {
        now += Duration::from_secs(10);
        if let Some(at) = s.poll_timeout().filter(|at| *at <= now) {
            out.clear();
            s.handle_timeout(at, &mut out);
            comments += out.windows(10).filter(|w| w == b"keep-alive").count();
        }
        s.send(&Event::new("tick"), now, &mut out).unwrap();
    }
    assert_eq!(comments, 0);
    // Then silence: one comment per interval.
    for _ in 0..3 {
        let at = s.poll_timeout().unwrap();
        assert_eq!(at, now + k);
        now = at;
        out.clear();
        s.handle_timeout(now, &mut out);
        assert_eq!(out, b"d\r\n: keep-alive\n\r\n");
    }
    let off = ServerSession::new(ServerConfig::default().keep_alive(None), t0).unwrap();
    assert_eq!(off.poll_timeout(), None);
}
