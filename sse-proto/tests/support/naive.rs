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

/// What the reference's line walk says a decoder with limits must do with a
/// whole input (all fed, `finish` not called): see [`limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRun {
    /// Events that come out before an error, at least and at most: those
    /// dispatched before the first line to pass a limit. Data is counted
    /// in raw bytes, or after replacing invalid UTF-8 (three bytes for
    /// each invalid sequence, never fewer than it stood for); the two
    /// counts only differ on invalid input.
    pub events: (usize, usize),
    /// Some line passes a limit however the data is counted: an error must
    /// be reported.
    pub must_fail: bool,
    /// `LineTooLong` may be reported: the first line to pass a limit is
    /// longer than the line limit.
    pub line_may: bool,
    /// `DataTooLong` may be reported: that line takes its event's data
    /// past the data limit (a `data` line the input ends inside counts
    /// once its value so far does: its pieces are checked as they come).
    pub data_may: bool,
    /// The input starts with a BOM and its first line is within the line
    /// limit only without it: `LineTooLong` before any event is also right.
    pub bom_ambiguous: bool,
}

/// Where a walk of the lines stopped: the events dispatched before, and
/// the kinds of limit the line there passes (`required` unless it is only
/// the data of a `data` line the input ends inside).
struct Walk {
    events: usize,
    line: bool,
    data: bool,
    required: bool,
}

/// The first line of `input` to pass a limit (`None`: none does), counting
/// data values in raw bytes or, when `replaced`, as the UTF-8 decode
/// replaces invalid sequences. Lines are split on raw CR, LF and CRLF (no
/// UTF-8 sequence holds those bytes) and measured in raw bytes without
/// their terminator, as the limit is documented.
fn walk(input: &[u8], max_line: usize, max_data: usize, replaced: bool) -> (Option<Walk>, usize) {
    let value_len = |v: &[u8]| if replaced { String::from_utf8_lossy(v).len() } else { v.len() };
    let (mut events, mut data_len, mut started) = (0, 0, false);
    let mut pos = 0;
    while pos < input.len() {
        let end = input[pos..].iter().position(|&b| b == b'\n' || b == b'\r').map(|i| pos + i);
        let line = &input[pos..end.unwrap_or(input.len())];
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], line[i + 1..].strip_prefix(b" ").unwrap_or(&line[i + 1..])),
            None => (line, &b""[..]),
        };
        // The data this line brings its event to, if it is a `data` line
        // (a line the input ends inside only once its colon is in).
        let is_data = field == b"data" && (end.is_some() || line.len() > 4);
        let joined = |v: usize| if started { data_len + 1 + v } else { v };
        let data = is_data.then(|| joined(value_len(value)));
        let line_over = line.len() > max_line;
        let data_over = data.is_some_and(|d| d > max_data);
        if line_over || data_over {
            let required = line_over || end.is_some();
            return (Some(Walk { events, line: line_over, data: data_over, required }), events);
        }
        let Some(end) = end else { break };
        if line.is_empty() {
            if started {
                events += 1;
            }
            (data_len, started) = (0, false);
        } else if let Some(d) = data {
            (data_len, started) = (d, true);
        }
        pos = end + 1;
        if input[end] == b'\r' && input.get(pos) == Some(&b'\n') {
            pos += 1;
        }
    }
    (None, events)
}

/// What a decoder with the limits `max_line` and `max_data` may and must
/// do with all of `input` (see [`LimitRun`]).
pub fn limits(input: &[u8], max_line: usize, max_data: usize) -> LimitRun {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let body = input.strip_prefix(BOM).unwrap_or(input);
    let first_line = body.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(body.len());
    let bom_ambiguous =
        body.len() < input.len() && first_line <= max_line && first_line + BOM.len() > max_line;
    // The line walk after the BOM (the decoder drops one leading BOM
    // before it reads lines).
    let (raw, raw_events) = walk(body, max_line, max_data, false);
    let (rep, rep_events) = walk(body, max_line, max_data, true);
    let kinds = |w: &Option<Walk>| w.as_ref().map_or((false, false), |w| (w.line, w.data));
    let (raw_line, raw_data) = kinds(&raw);
    let (rep_line, rep_data) = kinds(&rep);
    LimitRun {
        events: (
            rep.as_ref().map_or(rep_events, |w| w.events),
            raw.as_ref().map_or(raw_events, |w| w.events),
        ),
        must_fail: raw.as_ref().is_some_and(|w| w.required) || rep.as_ref().is_some_and(|w| w.line),
        line_may: raw_line || rep_line,
        data_may: raw_data || rep_data,
        bom_ambiguous,
    }
}

/// Feeds `data` to a decoder with the limits `max_line` and `max_data` in
/// the pieces that the sorted offsets `cuts` make, draining after each, and
/// checks what came out against [`limits`]: the events before an error are
/// the reference's, an error is of a kind the first offending line allows
/// and carries the limit and a length past it, and there is an error
/// exactly when the input calls for one. Returns what differed.
pub fn check_limited(
    data: &[u8],
    cuts: &[usize],
    zero_copy: bool,
    lend: bool,
    max_line: usize,
    max_data: usize,
) -> Result<(), String> {
    use sse_proto::DecodeError;
    let config = sse_proto::DecoderConfig::default().max_line_len(max_line).max_data_len(max_data);
    let mut d = sse_proto::Decoder::with_config(config);
    let mut events: Vec<RefEvent> = Vec::new();
    let mut error = None;
    let mut start = 0;
    'feed: for &end in cuts.iter().chain([&data.len()]) {
        feed(&mut d, &data[start..end], zero_copy);
        start = end;
        loop {
            let next = if lend {
                d.poll_event_ref().map(|e| {
                    e.map(|e| (e.event_type.to_owned(), e.data.to_owned(), e.last_event_id.to_owned()))
                })
            } else {
                d.poll_event().map(|e| {
                    e.map(|e| (e.event_type().to_owned(), e.data().to_owned(), e.last_event_id().to_owned()))
                })
            };
            match next {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let want = decode(data).events;
    let run = limits(data, max_line, max_data);
    let n = events.len();
    if n > want.len() || events[..] != want[..n] {
        return Err(format!("events differ from the reference's: {events:?} against {want:?}"));
    }
    match error {
        None if run.must_fail => Err(format!("no error, but a line passes a limit ({run:?})")),
        None if n != want.len() => Err(format!("{n} events of {} and no error", want.len())),
        None => Ok(()),
        Some(e) => {
            let (kind_ok, len, max, limit) = match e {
                DecodeError::LineTooLong { len, max } => {
                    (run.line_may || run.bom_ambiguous && n == 0, len, max, max_line)
                }
                DecodeError::DataTooLong { len, max } => (run.data_may, len, max, max_data),
                _ => (false, 0, 0, 0),
            };
            if !kind_ok || max != limit || len <= max {
                return Err(format!("{e:?} after {n} events, but the input calls for {run:?}"));
            }
            if (run.events.0..=run.events.1).contains(&n) || run.bom_ambiguous && n == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{e:?} after {n} events; the reference has {:?} before the first line past a limit",
                    run.events
                ))
            }
        }
    }
}
