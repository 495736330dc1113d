//! The `kind: "parser"` cases of the WPT conformance file (`wpt_cases.json`,
//! schema in `shared/conformance/README.md`), and a runner that feeds one
//! case to any [`DecoderImpl`], counting a panic as a failure.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use serde::Deserialize;

use crate::peers::{DecoderImpl, Ev};

/// A parser conformance case: the body as the network split it and the
/// events a conforming decoder dispatches.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique case name.
    pub name: String,
    /// The body, chunked as in the file.
    pub chunks: Vec<Bytes>,
    /// Expected events, in order.
    pub expected: Vec<Ev>,
}

#[derive(Deserialize)]
struct RawCase {
    name: String,
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    chunks: Vec<String>,
    expected: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    #[serde(rename = "lastEventId")]
    last_event_id: String,
}

/// Parses the conformance file and keeps the `parser` cases.
///
/// # Errors
///
/// Malformed JSON, an unknown `encoding` or invalid base64.
pub fn load_parser_cases(json: &str) -> Result<Vec<Case>, String> {
    let raw: Vec<RawCase> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    raw.into_iter()
        .filter(|c| c.kind == "parser")
        .map(|c| {
            let chunks = c
                .chunks
                .iter()
                .map(|chunk| match c.encoding.as_deref() {
                    None | Some("utf8") => Ok(Bytes::from(chunk.clone())),
                    Some("base64") => base64_decode(chunk).map(Bytes::from),
                    Some(other) => Err(format!("{}: unknown encoding {other:?}", c.name)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let expected = c
                .expected
                .into_iter()
                .map(|e| Ev { event_type: e.event_type, data: e.data, last_event_id: e.last_event_id })
                .collect();
            Ok(Case { name: c.name, chunks, expected })
        })
        .collect()
}

/// Decodes standard base64 (`A-Z a-z 0-9 + /`, `=` padding). A dozen lines
/// for a handful of short test chunks: not worth a dependency.
///
/// # Errors
///
/// A byte outside the alphabet.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("invalid base64 byte {c:#04x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Feeds `chunks` to a fresh decoder of `imp`, ends the stream, and returns
/// the events. A decoder error or a panic is an `Err`.
///
/// # Errors
///
/// The decoder's error, or the panic message.
pub fn run(imp: DecoderImpl, chunks: &[Bytes]) -> Result<Vec<Ev>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut feeder = imp.feeder();
        let mut out = Vec::new();
        for chunk in chunks {
            feeder.push(chunk.clone(), &mut out)?;
        }
        feeder.end(&mut out)?;
        Ok(out)
    }))
    .unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("panic: {msg}"))
    })
}

/// The same body re-split into 1-byte chunks.
pub fn one_byte_chunks(chunks: &[Bytes]) -> Vec<Bytes> {
    chunks.iter().flat_map(|c| (0..c.len()).map(move |i| c.slice(i..i + 1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("ZGF0YTog/w0KDQo=").unwrap(), b"data: \xff\r\n\r\n");
        assert!(base64_decode("a b").is_err());
    }

    #[test]
    fn loads_parser_cases_only() {
        let json = r#"[
            {"name":"p","kind":"parser","encoding":"base64","chunks":["ZGF0YTogeAoK"],
             "expected":[{"type":"message","data":"x","lastEventId":""}]},
            {"name":"c","kind":"client","chunks":[],"expected":[]}
        ]"#;
        let cases = load_parser_cases(json).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].chunks[0].as_ref(), b"data: x\n\n");
        for imp in DecoderImpl::ALL {
            assert_eq!(run(imp, &cases[0].chunks).unwrap(), cases[0].expected);
            let split = one_byte_chunks(&cases[0].chunks);
            assert_eq!(split.len(), 9);
            assert_eq!(run(imp, &split).unwrap(), cases[0].expected);
        }
    }
}
