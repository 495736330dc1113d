//! Encode then decode gives the events back: every field survives, data line
//! breaks come back as LF (the one documented change), and no field value can
//! forge another field.

use proptest::prelude::*;
use sse_proto::{Decoder, EncodeError, Event, encode_comment};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Spec {
    event_type: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

/// Text biased toward what could break framing.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>().prop_map(String::from),
            2 => prop::sample::select(vec!["\r", "\n", "\r\n", ":", " ", "data: x", "id: 9", "\u{feff}", "…", "\0"]).prop_map(String::from),
        ],
        0..20,
    )
    .prop_map(|v| v.concat())
}

fn field() -> impl Strategy<Value = String> {
    text().prop_map(|s| s.replace(['\r', '\n', '\0'], ""))
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(field()),
        prop::option::of(text()),
        prop::option::of(field()),
        prop::option::of(0u64..10_000_000),
        prop::option::of(text()),
    )
        .prop_map(|(event_type, data, id, retry, comment)| Spec { event_type, data, id, retry, comment })
}

fn event(s: &Spec) -> Event<'_> {
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
        ev = ev.retry(Duration::from_millis(r));
    }
    ev
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn events_survive_encode_then_decode(specs in prop::collection::vec(spec(), 1..8), chunk in 1usize..64, bom in any::<bool>()) {
        let mut wire = Vec::new();
        if bom {
            wire.extend_from_slice("\u{feff}".as_bytes());
        }
        for s in &specs {
            if let Some(c) = &s.comment {
                encode_comment(c, &mut wire);
            }
            event(s).encode(&mut wire).expect("valid fields encode");
        }

        let mut d = Decoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            d.feed(piece);
            while let Some(ev) = d.poll_event().unwrap() {
                got.push(ev);
            }
        }
        d.finish();
        prop_assert!(d.poll_event().unwrap().is_none());

        let mut want = Vec::new();
        let mut last_id = String::new();
        let mut retry = None;
        for s in &specs {
            if let Some(id) = &s.id {
                last_id = id.clone();
            }
            if let Some(r) = s.retry {
                retry = Some(r);
            }
            if let Some(data) = &s.data {
                let ty = match s.event_type.as_deref() {
                    None | Some("") => "message".to_owned(),
                    Some(t) => t.to_owned(),
                };
                let data = data.replace("\r\n", "\n").replace('\r', "\n");
                want.push((ty, data, last_id.clone()));
            }
        }
        let got: Vec<_> = got.iter().map(|e| (e.event_type().to_owned(), e.data().to_owned(), e.last_event_id().to_owned())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.last_event_id(), last_id.as_str());
        prop_assert_eq!(d.reconnection_time(), retry.map(Duration::from_millis));
    }

    #[test]
    fn invalid_fields_are_refused_and_write_nothing(s in spec(), bad in prop::sample::select(vec!["\r", "\n", "\0"]), at_type in any::<bool>(), pos in 0usize..8) {
        let mut s = s;
        let field = if at_type { s.event_type.get_or_insert_with(String::new) } else { s.id.get_or_insert_with(String::new) };
        let at = field.char_indices().nth(pos).map_or(field.len(), |(i, _)| i);
        field.insert_str(at, bad);
        let mut out = b"prefix".to_vec();
        let res = event(&s).encode(&mut out);
        if res.is_err() {
            prop_assert_eq!(&out, b"prefix");
        }
        match res {
            Err(EncodeError::LineBreakInEventType { index }) => prop_assert!(at_type && bad != "\0" && index == at),
            Err(EncodeError::LineBreakInId { index }) => prop_assert!(!at_type && bad != "\0" && index == at),
            Err(EncodeError::NulInId { index }) => prop_assert!(!at_type && bad == "\0" && index == at),
            // NUL in an event type is harmless: it cannot end a line.
            Ok(()) => prop_assert!(at_type && bad == "\0"),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[cfg(feature = "json")]
#[test]
fn json_round_trips() {
    let value = serde_json::json!({"text": "line\r\nbreak", "n": [1, 2.5, null], "é": "…"});
    let mut wire = Vec::new();
    Event::default().event("update").id("7").encode_json(&value, &mut wire).unwrap();
    let mut d = Decoder::new();
    d.feed(&wire);
    let ev = d.poll_event().unwrap().unwrap();
    assert_eq!(ev.event_type(), "update");
    assert_eq!(ev.last_event_id(), "7");
    let back: serde_json::Value = serde_json::from_str(ev.data()).unwrap();
    assert_eq!(back, value);
}
