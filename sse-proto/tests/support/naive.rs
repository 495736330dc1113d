//! A naive, whole-buffer reference decoder: the spec's "Interpreting an event
//! stream" transcribed step by step, with no buffering, no limits and no
//! cleverness. The incremental decoder must agree with it on every input.

#![allow(dead_code, unreachable_pub)]

/// An event as the reference dispatches it: (type, data, lastEventId).
pub type RefEvent = (String, String, String);

/// What the reference decoder produced for a whole stream.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct RefRun {
    pub events: Vec<RefEvent>,
    pub last_event_id: String,
    pub reconnection_time_ms: Option<u64>,
}

/// Decodes a complete stream (the end of `input` is the end of the stream).
pub fn decode(input: &[u8]) -> RefRun {
    // "UTF-8 decode": replacement per maximal subpart, one leading BOM dropped.
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);

    // Split into lines: CRLF, LF or CR. The text after the last terminator is
    // an incomplete line, discarded at end of stream.
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut cur));
            }
            '\n' => lines.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }

    let mut run = RefRun::default();
    let (mut data, mut event_type, mut id_buffer) = (String::new(), String::new(), String::new());
    for line in lines {
        if line.is_empty() {
            // Dispatch.
            run.last_event_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let ty = if event_type.is_empty() { "message".to_owned() } else { event_type.clone() };
            run.events.push((ty, std::mem::take(&mut data), run.last_event_id.clone()));
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => {
                id_buffer = value.to_owned();
            }
            "retry" => {
                if !value.is_empty()
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && let Ok(ms) = value.parse::<u64>()
                {
                    run.reconnection_time_ms = Some(ms);
                }
            }
            _ => {}
        }
    }
    run
}

/// Drains every event the incremental decoder has ready into `out`, in the
/// reference's form: owned events from `poll_event`, or lent ones from
/// `poll_event_ref` when `lend`. Inputs compared with the reference stay
/// far below the default limits, so a decode error is a failure.
pub fn drain(d: &mut sse_proto::Decoder, lend: bool, out: &mut Vec<RefEvent>) {
    if lend {
        while let Some(ev) = d.poll_event_ref().expect("no limit is reached") {
            out.push((ev.event_type.to_owned(), ev.data.to_owned(), ev.last_event_id.to_owned()));
        }
    } else {
        while let Some(ev) = d.poll_event().expect("no limit is reached") {
            out.push((ev.event_type().to_owned(), ev.data().to_owned(), ev.last_event_id().to_owned()));
        }
    }
}

/// Feeds one piece, through `feed_bytes` (a fresh `Bytes`, as a socket read
/// would hand it) when `zero_copy`, else through `feed`.
pub fn feed(d: &mut sse_proto::Decoder, piece: &[u8], zero_copy: bool) {
    if zero_copy {
        d.feed_bytes(sse_proto::bytes::Bytes::copy_from_slice(piece));
    } else {
        d.feed(piece);
    }
}

/// Feeds `data` to a fresh decoder in the pieces that the sorted offsets
/// `cuts` make, drains after each, finishes, and checks everything against
/// the reference: the events, the last event ID and the reconnection time.
/// After each of the first `prompt_checks` pieces, the events out must be
/// exactly those of the bytes fed so far (every complete block dispatched,
/// nothing early).
pub fn check_pieces(data: &[u8], cuts: &[usize], zero_copy: bool, lend: bool, prompt_checks: usize) {
    let mut d = sse_proto::Decoder::new();
    let mut events = Vec::new();
    let mut start = 0;
    for (k, &end) in cuts.iter().chain([&data.len()]).enumerate() {
        feed(&mut d, &data[start..end], zero_copy);
        start = end;
        drain(&mut d, lend, &mut events);
        if k < prompt_checks {
            assert_eq!(events, decode(&data[..end]).events, "after {end} bytes");
        }
    }
    d.finish();
    drain(&mut d, lend, &mut events);
    let want = decode(data);
    assert_eq!(events, want.events);
    assert_eq!(d.last_event_id(), want.last_event_id);
    assert_eq!(d.reconnection_time().map(|t| t.as_millis() as u64), want.reconnection_time_ms);
}
