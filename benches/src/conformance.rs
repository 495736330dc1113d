//! The `kind: "parser"` cases of the WPT conformance file (`wpt_cases.json`,
//! schema in `shared/conformance/README.md`), and a runner that feeds one
//! case to any [`DecoderImpl`], counting a panic as a failure.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;

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

/// The case-file reader of sse-proto's conformance runner: one parser of
/// the schema for the tests, the `conformance` example and this table.
#[path = "../../sse-proto/tests/support/conformance.rs"]
mod shared;

/// Parses the conformance file and keeps the `parser` cases.
///
/// # Errors
///
/// Malformed JSON, an unknown `encoding` or invalid base64.
pub fn load_parser_cases(json: &str) -> Result<Vec<Case>, String> {
    Ok(shared::parse_cases(json)?
        .into_iter()
        .filter(|c| c.kind == "parser")
        .map(|c| Case {
            name: c.name,
            chunks: c.chunks.into_iter().map(Bytes::from).collect(),
            expected: c
                .expected
                .into_iter()
                .map(|e| Ev { event_type: e.event_type, data: e.data, last_event_id: e.last_event_id })
                .collect(),
        })
        .collect())
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
