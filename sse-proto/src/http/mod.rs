//! HTTP/1.1, both sides, sans-IO and strict (RFC 9112, RFC 9110).
//!
//! - `request`: reading and validating a request head ([`Request`]), and
//!   the typed refusals with their statuses ([`RequestError`]).
//! - `response`: reading a response head ([`ResponseHead`]) and writing
//!   one ([`write_response_head`], [`error_response`]).
//! - `body`: body framing on both sides: the chunked transfer coding
//!   ([`ChunkedDecoder`], [`encode_chunk`]), response bodies
//!   ([`BodyDecoder`]) and request bodies under a limit ([`BodyReader`]).
//!
//! Heads are parsed by `httparse`; everything it leaves to the recipient
//! (framing, `Host`, `Expect`) is checked here.

use core::fmt;

mod body;
mod request;
mod response;

pub use body::{BodyDecoder, BodyFraming, BodyReader, ChunkedDecoder, LAST_CHUNK, encode_chunk};
pub use request::{Request, RequestError, RequestFraming};
pub use response::{
    CONTINUE, HeaderError, ResponseHead, error_response, mime_essence, reason_phrase, validate_header,
    write_response_head,
};

/// The most header fields a head may carry.
pub(crate) const MAX_HEADERS: usize = 64;

/// Why an HTTP message could not be read. Peer faults, all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not valid HTTP/1.x (the parser's reason).
    MalformedHead(&'static str),
    /// The head grew past the limit before it ended.
    HeadTooLarge {
        /// Bytes seen without the end of the head.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `Content-Length` that is not a number, or several that disagree.
    BadContentLength,
    /// A chunk-size line that is not hexadecimal, overflows, or is too long.
    BadChunkSize,
    /// Chunk data not followed by CRLF.
    BadChunkEnd,
    /// Chunk extensions or trailers past the limit.
    ChunkLineTooLong {
        /// The limit.
        max: usize,
    },
    /// The connection closed before the body's framing said it ends.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::MalformedHead(why) => write!(f, "malformed HTTP head: {why}"),
            HttpError::HeadTooLarge { len, max } => {
                write!(f, "HTTP head of more than {len} bytes exceeds the limit of {max} bytes")
            }
            HttpError::BadContentLength => f.write_str("invalid Content-Length"),
            HttpError::BadChunkSize => f.write_str("invalid chunk size"),
            HttpError::BadChunkEnd => f.write_str("chunk data not followed by CRLF"),
            HttpError::ChunkLineTooLong { max } => {
                write!(f, "chunk extension or trailer line exceeds the limit of {max} bytes")
            }
            HttpError::Truncated => f.write_str("connection closed before the end of the body"),
        }
    }
}

impl core::error::Error for HttpError {}

impl From<httparse::Error> for HttpError {
    fn from(e: httparse::Error) -> Self {
        HttpError::MalformedHead(match e {
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status",
            httparse::Error::Token => "invalid token",
            httparse::Error::TooManyHeaders => "too many headers",
            httparse::Error::Version => "invalid HTTP version",
        })
    }
}

/// The HTTP version of a request (RFC 9112 §2.3). `httparse` reads only
/// HTTP/1.x, so these are the two there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0: no chunked coding, connections close unless the client
    /// asks for `keep-alive`.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2): field names, methods,
/// transfer codings.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Trims optional whitespace (RFC 9110 §5.6.3 OWS).
pub(crate) fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// `1*DIGIT` as a `u64`; `None` for anything else (signs, spaces, an empty
/// value) or on overflow (RFC 9110 §8.6).
pub(crate) fn parse_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// The value of one hexadecimal digit.
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
