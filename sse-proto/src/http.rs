//! HTTP/1.1 framing, sans-IO: response heads (with `httparse`), the chunked
//! transfer coding, and body framing (RFC 9112 §6, §7.1).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

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

/// How a response body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Transfer-Encoding: chunked`: ends with the last chunk.
    Chunked,
    /// `Content-Length`: ends after this many bytes.
    Length(u64),
    /// Neither: ends when the server closes the connection.
    UntilClose,
}

/// The parts of a response head the EventSource processing model needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// `Location`, as sent (redirects).
    pub location: Option<String>,
    /// How the body is framed.
    pub framing: BodyFraming,
    /// Bytes of the head, including its final blank line.
    pub head_len: usize,
}

impl ResponseHead {
    /// Parses a response head from the front of `buf`.
    ///
    /// `Ok(None)` means the head is not complete yet (incomplete input is
    /// never an error); a head longer than `max_len` is an error.
    ///
    /// # Errors
    ///
    /// [`HttpError::MalformedHead`], [`HttpError::HeadTooLarge`] or
    /// [`HttpError::BadContentLength`].
    pub fn parse(buf: &[u8], max_len: usize) -> Result<Option<ResponseHead>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let head_len = match res.parse(buf)? {
            httparse::Status::Partial if buf.len() > max_len => {
                return Err(HttpError::HeadTooLarge { len: buf.len(), max: max_len });
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) if n > max_len => {
                return Err(HttpError::HeadTooLarge { len: n, max: max_len });
            }
            httparse::Status::Complete(n) => n,
        };
        let status = res.code.ok_or(HttpError::MalformedHead("missing status"))?;
        let mut content_type = None;
        let mut location = None;
        let mut chunked = false;
        let mut length: Option<u64> = None;
        for h in res.headers.iter() {
            let value = || String::from_utf8_lossy(h.value).trim().into();
            if h.name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value());
            } else if h.name.eq_ignore_ascii_case("location") {
                location = Some(value());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // The final coding decides (RFC 9112 §6.3 rule 4).
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                let n = parse_decimal(trim(h.value)).ok_or(HttpError::BadContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HttpError::BadContentLength);
                }
                length = Some(n);
            }
        }
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3 rule 3).
        let framing = if chunked {
            BodyFraming::Chunked
        } else if let Some(n) = length {
            BodyFraming::Length(n)
        } else {
            BodyFraming::UntilClose
        };
        Ok(Some(ResponseHead { status, content_type, location, framing, head_len }))
    }
}

/// Trims optional whitespace (RFC 9110 OWS).
pub(crate) fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn parse_decimal(b: &[u8]) -> Option<u64> {
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

/// The MIME type essence of a `Content-Type` value (type/subtype, lowercase),
/// or `None` when it is not a valid MIME type.
pub fn mime_essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim_matches([' ', '\t']);
    let (ty, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(ty) || !token(sub) {
        return None;
    }
    Some(essence.to_ascii_lowercase())
}

/// Decodes the chunked transfer coding incrementally, without buffering:
/// chunk data is handed out as slices of the input.
///
/// ```
/// use sse_proto::ChunkedDecoder;
/// let mut dec = ChunkedDecoder::new();
/// let mut body = Vec::new();
/// dec.decode(b"5\r\nhello\r\n0\r\n\r\n", |piece| body.extend_from_slice(piece))?;
/// assert_eq!(body, b"hello");
/// assert!(dec.is_done());
/// # Ok::<(), sse_proto::HttpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of the current size, extension or trailer line.
    line_len: usize,
    max_line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size.
    Size { value: u64, digits: usize },
    /// After the size: extensions up to the line end.
    Ext { value: u64 },
    /// `remaining` bytes of chunk data to go.
    Data { remaining: u64 },
    /// After chunk data: expecting CR or LF.
    DataEnd,
    /// Saw CR after chunk data: expecting LF.
    DataLf,
    /// After the last chunk: trailer lines; `empty` when the current line
    /// has no bytes yet.
    Trailer { empty: bool },
    /// The body ended.
    Done,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// Longest size, extension or trailer line accepted by default: 4 KiB.
    pub const DEFAULT_MAX_LINE: usize = 4096;

    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { value: 0, digits: 0 },
            line_len: 0,
            max_line: Self::DEFAULT_MAX_LINE,
        }
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes `input`, calling `body` with each piece of chunk data (slices
    /// of `input`). Returns how many bytes were consumed: all of them, unless
    /// the body ended inside `input` (what follows is not part of it).
    ///
    /// # Errors
    ///
    /// [`HttpError::BadChunkSize`], [`HttpError::BadChunkEnd`] or
    /// [`HttpError::ChunkLineTooLong`]; the decoder must not be used after.
    pub fn decode(&mut self, input: &[u8], mut body: impl FnMut(&[u8])) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Size { value, digits } => {
                    match hex_digit(b) {
                        Some(d) => {
                            // 16 hex digits fill a u64; more would overflow.
                            if digits == 16 {
                                return Err(HttpError::BadChunkSize);
                            }
                            self.state =
                                ChunkState::Size { value: value << 4 | u64::from(d), digits: digits + 1 };
                        }
                        None if digits == 0 => return Err(HttpError::BadChunkSize),
                        None => {
                            self.state = ChunkState::Ext { value };
                            self.line_len = 0;
                            continue;
                        }
                    }
                    i += 1;
                }
                ChunkState::Ext { value } => {
                    if b == b'\n' {
                        self.line_len = 0;
                        self.state = if value == 0 {
                            ChunkState::Trailer { empty: true }
                        } else {
                            ChunkState::Data { remaining: value }
                        };
                    } else {
                        self.bump_line()?;
                    }
                    i += 1;
                }
                ChunkState::Data { remaining } => {
                    let take = (input.len() - i).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    body(&input[i..i + take]);
                    i += take;
                    let remaining = remaining - take as u64;
                    self.state =
                        if remaining == 0 { ChunkState::DataEnd } else { ChunkState::Data { remaining } };
                }
                ChunkState::DataEnd => {
                    self.state = match b {
                        b'\r' => ChunkState::DataLf,
                        b'\n' => ChunkState::Size { value: 0, digits: 0 },
                        _ => return Err(HttpError::BadChunkEnd),
                    };
                    i += 1;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadChunkEnd);
                    }
                    self.state = ChunkState::Size { value: 0, digits: 0 };
                    i += 1;
                }
                ChunkState::Trailer { empty } => {
                    match b {
                        b'\n' if empty => self.state = ChunkState::Done,
                        b'\n' => {
                            self.line_len = 0;
                            self.state = ChunkState::Trailer { empty: true };
                        }
                        // A CR does not make a line non-empty (CRLF ends lines).
                        b'\r' => self.bump_line()?,
                        _ => {
                            self.bump_line()?;
                            self.state = ChunkState::Trailer { empty: false };
                        }
                    }
                    i += 1;
                }
                ChunkState::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn bump_line(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > self.max_line {
            return Err(HttpError::ChunkLineTooLong { max: self.max_line });
        }
        Ok(())
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a response body under any framing, incrementally.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: BodyKind,
}

#[derive(Debug, Clone)]
enum BodyKind {
    Chunked(ChunkedDecoder),
    Length { remaining: u64 },
    UntilClose,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        BodyDecoder {
            kind: match framing {
                BodyFraming::Chunked => BodyKind::Chunked(ChunkedDecoder::new()),
                BodyFraming::Length(n) => BodyKind::Length { remaining: n },
                BodyFraming::UntilClose => BodyKind::UntilClose,
            },
        }
    }

    /// Whether the body is complete (framing said so).
    pub fn is_done(&self) -> bool {
        match &self.kind {
            BodyKind::Chunked(c) => c.is_done(),
            BodyKind::Length { remaining } => *remaining == 0,
            BodyKind::UntilClose => false,
        }
    }

    /// Decodes `input`, handing body bytes to `body`; returns the bytes
    /// consumed (fewer than `input.len()` only when the body ended).
    ///
    /// # Errors
    ///
    /// As [`ChunkedDecoder::decode`].
    pub fn decode(&mut self, input: &[u8], mut body: impl FnMut(&[u8])) -> Result<usize, HttpError> {
        match &mut self.kind {
            BodyKind::Chunked(c) => c.decode(input, body),
            BodyKind::Length { remaining } => {
                let take = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if take > 0 {
                    body(&input[..take]);
                }
                *remaining -= take as u64;
                Ok(take)
            }
            BodyKind::UntilClose => {
                if !input.is_empty() {
                    body(input);
                }
                Ok(input.len())
            }
        }
    }

    /// The connection closed: whether that ends the body cleanly.
    ///
    /// # Errors
    ///
    /// [`HttpError::Truncated`] when the framing expected more.
    pub fn finish(&self) -> Result<(), HttpError> {
        match &self.kind {
            BodyKind::UntilClose => Ok(()),
            _ if self.is_done() => Ok(()),
            _ => Err(HttpError::Truncated),
        }
    }
}

/// Appends `bytes` as one chunk of the chunked transfer coding.
pub fn encode_chunk(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        // An empty chunk would be the last chunk.
        return;
    }
    let mut digits = [0u8; 16];
    let mut n = bytes.len();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.reserve(bytes.len() + 20);
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, ending a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn dechunk(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), HttpError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for p in pieces {
            let n = d.decode(p, |b| out.extend_from_slice(b))?;
            assert!(n == p.len() || d.is_done());
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn chunked_body_split_at_every_byte() {
        let wire = b"4\r\ndata\r\nA;ext=1\r\n: 12345678\r\n0\r\nTrailer: x\r\n\r\n";
        let (whole, done) = dechunk(&[wire]).unwrap();
        assert_eq!(whole, b"data: 12345678");
        assert!(done);
        for i in 0..wire.len() {
            assert_eq!(dechunk(&[&wire[..i], &wire[i..]]).unwrap(), (whole.clone(), true), "split at {i}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(dechunk(&bytes).unwrap(), (whole, true));
    }

    #[test]
    fn chunked_errors() {
        assert_eq!(dechunk(&[b"x\r\n"]), Err(HttpError::BadChunkSize));
        assert_eq!(dechunk(&[b"11111111111111111\r\n"]), Err(HttpError::BadChunkSize));
        assert_eq!(dechunk(&[b"2\r\nabX"]), Err(HttpError::BadChunkEnd));
        let long = [b'1', b';'].iter().copied().chain(core::iter::repeat_n(b'x', 5000)).collect::<Vec<u8>>();
        assert!(matches!(dechunk(&[&long]), Err(HttpError::ChunkLineTooLong { .. })));
    }

    #[test]
    fn response_heads() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: gzip, chunked\r\n\r\nbody";
        let h = ResponseHead::parse(head, 1024).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert_eq!(h.head_len, head.len() - 4);
        assert_eq!(mime_essence(h.content_type.as_deref().unwrap()).as_deref(), Some("text/event-stream"));
        assert_eq!(ResponseHead::parse(&head[..20], 1024), Ok(None));
        assert!(matches!(ResponseHead::parse(&head[..20], 10), Err(HttpError::HeadTooLarge { .. })));
        let cl = b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(ResponseHead::parse(cl, 1024), Err(HttpError::BadContentLength));
        assert!(matches!(ResponseHead::parse(b"HTTP/9 x\r\n\r\n", 1024), Err(HttpError::MalformedHead(_))));
    }

    #[test]
    fn mime_essences() {
        assert_eq!(mime_essence("Text/Event-Stream;").as_deref(), Some("text/event-stream"));
        assert_eq!(mime_essence("x bogus"), None);
        assert_eq!(mime_essence("text/x-bogus").as_deref(), Some("text/x-bogus"));
        assert_eq!(mime_essence(""), None);
    }

    #[test]
    fn chunks_encode_and_decode() {
        let mut out = Vec::new();
        encode_chunk(&[7u8; 300], &mut out);
        encode_chunk(b"", &mut out);
        out.extend_from_slice(LAST_CHUNK);
        assert!(out.starts_with(b"12c\r\n"));
        assert_eq!(dechunk(&[&out]).unwrap(), (vec![7u8; 300], true));
    }
}
