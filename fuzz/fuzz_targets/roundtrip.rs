//! Arbitrary events survive encode then decode: what the encoder accepts
//! decodes to the same type, data (line breaks as LF) and id, and what it
//! refuses writes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{Decoder, Event, encode_comment};
use std::time::Duration;

#[derive(Debug, arbitrary::Arbitrary)]
struct Spec {
    event_type: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u32>,
    comment: Option<String>,
}

fuzz_target!(|input: (Vec<Spec>, u8)| {
    let (specs, chunk) = input;
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut last_id = String::new();
    for s in &specs {
        let mut ev = Event::default();
        if let Some(t) = &s.event_type {
            ev = ev.event(t.as_str());
        }
        if let Some(d) = &s.data {
            ev = ev.data(d.as_str());
        }
        if let Some(id) = &s.id {
            ev = ev.id(id.as_str());
        }
        if let Some(r) = s.retry {
            ev = ev.retry(Duration::from_millis(u64::from(r)));
        }
        let before = wire.len();
        let bad_type = s.event_type.as_deref().is_some_and(|t| t.contains(['\r', '\n']));
        let bad_id = s.id.as_deref().is_some_and(|t| t.contains(['\r', '\n', '\0']));
        match ev.encode(&mut wire) {
            Ok(()) => assert!(!bad_type && !bad_id),
            Err(_) => {
                assert!(bad_type || bad_id);
                assert_eq!(wire.len(), before, "a refused event wrote bytes");
                continue;
            }
        }
        if let Some(c) = &s.comment {
            encode_comment(c, &mut wire);
        }
        if let Some(id) = &s.id {
            last_id = id.clone();
        }
        if let Some(d) = &s.data {
            let ty = match s.event_type.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(t) => t.to_owned(),
            };
            want.push((ty, d.replace("\r\n", "\n").replace('\r', "\n"), last_id.clone()));
        }
    }
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for piece in wire.chunks(usize::from(chunk).max(1)) {
        d.feed(piece);
        while let Some(ev) = d.poll_event().expect("fuzz-sized events stay under the limits") {
            got.push((ev.event_type().to_owned(), ev.data().to_owned(), ev.last_event_id().to_owned()));
        }
    }
    d.finish();
    assert!(d.poll_event().unwrap().is_none());
    assert_eq!(got, want);
    assert_eq!(d.last_event_id(), last_id);
});
