//! The "practical limit" baselines: what a benchmark cannot beat without
//! skipping work.
//!
//! - [`Lines`] / [`count_events`]: walk a contiguous buffer line by line with
//!   `memchr2`, split each line at its first `:`, and count the blank lines
//!   that end a block holding data. No allocation, no copying, no UTF-8
//!   check, no event values: the floor under any decoder's cost.
//! - [`write_event`]: the framing written straight into a `Vec` with
//!   `extend_from_slice`, with no validation: the floor under any encoder.
//! - [`events`]: the naive whole-buffer decoder of sse-proto's tests (the
//!   spec's steps one by one), the reference every decoder's output is
//!   checked against before it is timed.

use crate::peers::Ev;

/// The spec's steps transcribed, shared with sse-proto's property tests and
/// fuzz targets.
#[path = "../../sse-proto/tests/support/naive.rs"]
mod naive;

/// Every event the naive reference decoder dispatches from `buf`, read as a
/// whole stream.
pub fn events(buf: &[u8]) -> Vec<Ev> {
    naive::decode(buf)
        .events
        .into_iter()
        .map(|(event_type, data, last_event_id)| Ev { event_type, data, last_event_id })
        .collect()
}

/// One line of an event stream, as [`Lines`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine<'a> {
    /// An empty line: dispatch.
    Blank,
    /// A field: the bytes before the first `:` (the whole line if it has none)
    /// and the bytes after it, minus one leading space. A comment is a field
    /// with an empty name.
    Field {
        /// The field name.
        name: &'a [u8],
        /// The field value.
        value: &'a [u8],
    },
}

/// Iterator over the complete lines of a buffer (CRLF, LF or lone CR
/// terminated). A final line without a terminator is not yielded: the stream
/// would discard it.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// Lines of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Lines { rest: buf }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = RawLine<'a>;

    #[inline]
    fn next(&mut self) -> Option<RawLine<'a>> {
        let rest = self.rest;
        let end = memchr::memchr2(b'\r', b'\n', rest)?;
        let line = &rest[..end];
        let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
        self.rest = &rest[end + skip..];
        if line.is_empty() {
            return Some(RawLine::Blank);
        }
        Some(match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                RawLine::Field { name: &line[..colon], value: value.strip_prefix(b" ").unwrap_or(value) }
            }
            None => RawLine::Field { name: line, value: &[] },
        })
    }
}

/// Number of events a conforming decoder dispatches from `buf` (read as a
/// whole stream): blank lines that end a block with at least one `data`
/// field.
pub fn count_events(buf: &[u8]) -> usize {
    let mut events = 0;
    let mut has_data = false;
    for line in Lines::new(buf) {
        match line {
            RawLine::Blank => {
                events += usize::from(has_data);
                has_data = false;
            }
            RawLine::Field { name, .. } => has_data |= name == b"data",
        }
    }
    events
}

/// Appends `event: <event>\nid: <id>\ndata: <data>\n\n` to `out` with
/// `extend_from_slice`. No validation: `event`, `id` and `data` must not
/// contain CR or LF.
#[inline]
pub fn write_event(out: &mut Vec<u8>, event: &str, id: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\nid: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_all_line_endings() {
        let lines: Vec<_> = Lines::new(b"data: a\r\nid:1\rx\n\n:c\r\ntail").collect();
        assert_eq!(
            lines,
            [
                RawLine::Field { name: b"data", value: b"a" },
                RawLine::Field { name: b"id", value: b"1" },
                RawLine::Field { name: b"x", value: b"" },
                RawLine::Blank,
                RawLine::Field { name: b"", value: b"c" },
            ]
        );
    }

    #[test]
    fn counts_only_blocks_with_data() {
        assert_eq!(count_events(b"data\n\nid: 1\n\n: c\n\ndata: x\r\rdata: y\n"), 2);
    }

    #[test]
    fn writes_the_frame() {
        let mut out = Vec::new();
        write_event(&mut out, "tick", "42", "{}");
        assert_eq!(out, b"event: tick\nid: 42\ndata: {}\n\n");
    }
}
