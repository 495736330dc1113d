//! A request head from the input, then its body fed to a `BodyReader` in
//! pieces whose sizes come from the input: never a panic, never more than
//! the limit buffered, never more consumed than given, and the same outcome
//! whether the body arrives whole or split.
//!
//! Input layout: one byte `n`, then `n % 16` piece sizes, then the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{BodyReader, HttpError, Request, RequestError};

/// Small, so that chunked bodies pass it often.
const MAX: usize = 64;

/// What feeding a body came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body, the bytes consumed, and whether it was complete.
    Read(Vec<u8>, usize, bool),
    /// The refusal's status and, for a malformed body, the reason.
    Refused(u16, Option<HttpError>),
}

/// Feeds `input` in pieces of `sizes` (cycled; one piece when empty),
/// until the body ends or the input does.
fn feed(request: &Request, input: &[u8], sizes: &[u8]) -> Outcome {
    let mut reader = match BodyReader::new(request, MAX) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    assert_eq!(reader.handle_input(&[]), Ok(0));
    let mut pos = 0;
    let mut sizes = sizes.iter().cycle();
    while pos < input.len() && !reader.is_done() {
        // At least a byte per piece, so that the loop ends.
        let size = sizes.next().map_or(input.len(), |&s| usize::from(s).max(1));
        let piece = &input[pos..(pos + size).min(input.len())];
        match reader.handle_input(piece) {
            Ok(used) => {
                assert!(used <= piece.len());
                assert!(used == piece.len() || reader.is_done(), "stopped early without being done");
                pos += used;
            }
            Err(e) => {
                assert!(reader.len() <= MAX);
                // The error stays set.
                assert_eq!(reader.handle_input(b"0\r\n\r\n").unwrap_err(), e);
                assert_eq!(reader.handle_eof().unwrap_err(), e);
                return refused(&e);
            }
        }
        assert!(reader.len() <= MAX);
    }
    let done = reader.is_done();
    assert_eq!(reader.handle_eof().is_ok(), done);
    Outcome::Read(reader.into_body(), pos, done)
}

fn refused(e: &RequestError) -> Outcome {
    let status = e.status();
    assert!(matches!(status, 400 | 413), "{e}");
    match e {
        RequestError::Malformed(why) => Outcome::Refused(status, Some(why.clone())),
        _ => Outcome::Refused(status, None),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let (sizes, wire) = rest.split_at(usize::from(n % 16).min(rest.len()));
    let Ok(Some(request)) = Request::parse(wire, 1024) else { return };
    let body = &wire[request.head_len()..];
    let whole = feed(&request, body, &[]);
    let split = feed(&request, body, sizes);
    assert_eq!(whole, split);
    let bytes = feed(&request, body, &[1]);
    assert_eq!(whole, bytes);
});
