//! Message bodies on both sides: the chunked transfer coding (RFC 9112
//! §7.1), response bodies under any framing (§6.3), and request bodies
//! under a size limit.

use alloc::vec::Vec;

use super::request::{Request, RequestError, RequestFraming};
use super::{HttpError, hex_digit};

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
    /// Refuse what RFC 9112 §7.1 does not allow instead of reading past it.
    strict: bool,
    /// The last byte of the current line was a CR (strict mode).
    cr: bool,
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

    /// A decoder at the start of a chunked body, lenient the way clients
    /// are with what servers send: a bare LF ends a line, and anything up to
    /// the line end after a chunk size is taken as extensions.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { value: 0, digits: 0 },
            line_len: 0,
            max_line: Self::DEFAULT_MAX_LINE,
            strict: false,
            cr: false,
        }
    }

    /// A decoder for request bodies, where a server must not read a message
    /// two ways (request smuggling): lines end with CRLF only (RFC 9112
    /// §7.1: `chunk-size [ chunk-ext ] CRLF`), extensions start with `;`
    /// (after optional whitespace), and no control character but HTAB
    /// appears in an extension or trailer line.
    ///
    /// ```
    /// use sse_proto::{ChunkedDecoder, HttpError};
    /// let mut strict = ChunkedDecoder::strict();
    /// assert_eq!(strict.decode(b"5\nhello", |_| {}), Err(HttpError::BadChunkSize));
    /// let mut lenient = ChunkedDecoder::new();
    /// assert!(lenient.decode(b"5\nhello", |_| {}).is_ok());
    /// ```
    pub fn strict() -> Self {
        ChunkedDecoder { strict: true, ..Self::new() }
    }

    /// Bytes of chunk data the current chunk still announces (0 between
    /// chunks): a reader with a size limit refuses a chunk as soon as its
    /// size line is read.
    pub fn remaining_in_chunk(&self) -> u64 {
        match self.state {
            ChunkState::Data { remaining } => remaining,
            _ => 0,
        }
    }

    /// Strict mode: checks one byte of an extension or trailer line (not
    /// its final LF) and notes a CR, which must be followed by the LF.
    fn check_line_byte(&mut self, b: u8, first_of_ext: bool) -> Result<(), HttpError> {
        if !self.strict {
            return Ok(());
        }
        let bad = self.cr
            || (b.is_ascii_control() && b != b'\t' && b != b'\r')
            || (first_of_ext && !matches!(b, b';' | b' ' | b'\t' | b'\r'));
        if bad {
            return Err(HttpError::BadChunkSize);
        }
        self.cr = b == b'\r';
        Ok(())
    }

    /// Strict mode: a line may end only with CRLF.
    fn check_line_end(&mut self) -> Result<(), HttpError> {
        let bare_lf = self.strict && !self.cr;
        self.cr = false;
        if bare_lf { Err(HttpError::BadChunkSize) } else { Ok(()) }
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
                        self.check_line_end()?;
                        self.line_len = 0;
                        self.state = if value == 0 {
                            ChunkState::Trailer { empty: true }
                        } else {
                            ChunkState::Data { remaining: value }
                        };
                    } else {
                        self.check_line_byte(b, self.line_len == 0)?;
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
                        b'\n' if !self.strict => ChunkState::Size { value: 0, digits: 0 },
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
                        b'\n' if empty => {
                            self.check_line_end()?;
                            self.state = ChunkState::Done;
                        }
                        b'\n' => {
                            self.check_line_end()?;
                            self.line_len = 0;
                            self.state = ChunkState::Trailer { empty: true };
                        }
                        // A CR does not make a line non-empty (CRLF ends lines).
                        b'\r' => {
                            self.check_line_byte(b, false)?;
                            self.bump_line()?;
                        }
                        _ => {
                            self.check_line_byte(b, false)?;
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
    /// A decoder for a request body: chunked coding read strictly
    /// ([`ChunkedDecoder::strict`]).
    fn for_request(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Chunked => BodyDecoder { kind: BodyKind::Chunked(ChunkedDecoder::strict()) },
            other => BodyDecoder::new(other),
        }
    }

    /// Chunk data the current chunk still announces (0 unless chunked).
    fn announced(&self) -> u64 {
        match &self.kind {
            BodyKind::Chunked(c) => c.remaining_in_chunk(),
            _ => 0,
        }
    }

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

/// Reads one request body per its framing (RFC 9112 §6.3), up to a limit,
/// sans-IO: hand it bytes as they arrive until [`is_done`](Self::is_done).
///
/// Memory is bounded by the limit: a `Content-Length` above it is refused
/// before any byte is read, and a chunked body is refused as soon as its
/// decoded length would pass it, without buffering the excess. Chunk
/// extensions and trailers are read and discarded. An error stays set:
/// later calls return it again.
///
/// ```
/// use sse_proto::{BodyReader, Request};
///
/// let wire = b"POST /send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next";
/// let req = Request::parse(wire, 8192)?.expect("a complete head");
/// let mut reader = BodyReader::new(&req, 1024)?;
/// let rest = &wire[req.head_len()..];
/// let used = reader.handle_input(rest)?;
/// assert!(reader.is_done());
/// assert_eq!(&rest[used..], b"GET /next"); // the next request
/// assert_eq!(reader.into_body(), b"hello");
/// # Ok::<(), sse_proto::RequestError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BodyReader {
    /// `RequestFraming::None` reads as a body of length 0.
    decoder: BodyDecoder,
    body: Vec<u8>,
    max: usize,
    error: Option<RequestError>,
}

impl BodyReader {
    /// Bytes reserved up front at most, so that a large `Content-Length`
    /// costs memory only as its bytes arrive.
    const INITIAL_CAPACITY: usize = 16 * 1024;

    /// A reader for `request`'s body, refusing bodies longer than `max_len`.
    ///
    /// # Errors
    ///
    /// [`RequestError::BodyTooLarge`] (413) when the `Content-Length` is
    /// larger than `max_len`.
    pub fn new(request: &Request, max_len: usize) -> Result<BodyReader, RequestError> {
        let (framing, capacity) = match request.framing() {
            RequestFraming::None => (BodyFraming::Length(0), 0),
            RequestFraming::Length(n) => {
                if n > max_len as u64 {
                    return Err(RequestError::BodyTooLarge { len: n, max: max_len });
                }
                // n <= max_len, so it fits a usize.
                (BodyFraming::Length(n), (n as usize).min(Self::INITIAL_CAPACITY))
            }
            RequestFraming::Chunked => (BodyFraming::Chunked, 0),
        };
        Ok(BodyReader {
            decoder: BodyDecoder::for_request(framing),
            body: Vec::with_capacity(capacity),
            max: max_len,
            error: None,
        })
    }

    /// Consumes body bytes from the front of `input` and returns how many:
    /// all of them, unless the body ended inside `input` (what follows is
    /// the next request on the connection).
    ///
    /// # Errors
    ///
    /// [`RequestError::BodyTooLarge`] (413) as soon as the decoded body
    /// would pass the limit; [`RequestError::Malformed`] (400) with
    /// [`HttpError::BadChunkSize`], [`HttpError::BadChunkEnd`] or
    /// [`HttpError::ChunkLineTooLong`] for a broken chunked coding.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, RequestError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let (body, max) = (&mut self.body, self.max);
        let mut over = None;
        let result = self.decoder.decode(input, |piece| {
            // Checked before copying: the excess is never buffered.
            let len = body.len() + piece.len();
            if over.is_none() && len > max {
                over = Some(len);
            } else if over.is_none() {
                body.extend_from_slice(piece);
            }
        });
        // A chunk whose size line alone passes the limit is refused at once,
        // without waiting for its data.
        let announced = (body.len() as u64).saturating_add(self.decoder.announced());
        let over = over.map(|len| len as u64).or((announced > max as u64).then_some(announced));
        let error = match (over, result) {
            (Some(len), _) => RequestError::BodyTooLarge { len, max },
            (None, Err(e)) => RequestError::Malformed(e),
            (None, Ok(n)) => return Ok(n),
        };
        self.error = Some(error.clone());
        Err(error)
    }

    /// Whether the whole body has been read. A request without a body is
    /// done at once.
    pub fn is_done(&self) -> bool {
        self.error.is_none() && self.decoder.is_done()
    }

    /// The connection closed: whether the body was complete.
    ///
    /// # Errors
    ///
    /// [`RequestError::Malformed`] with [`HttpError::Truncated`] (400)
    /// unless the body is done (or the error that stopped it).
    pub fn handle_eof(&self) -> Result<(), RequestError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => self.decoder.finish().map_err(RequestError::Malformed),
        }
    }

    /// Bytes of the body read so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether no byte of the body has been read.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The body read so far: all of it once [`is_done`](Self::is_done).
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

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
    fn chunks_encode_and_decode() {
        let mut out = Vec::new();
        encode_chunk(&[7u8; 300], &mut out);
        encode_chunk(b"", &mut out);
        out.extend_from_slice(LAST_CHUNK);
        assert!(out.starts_with(b"12c\r\n"));
        assert_eq!(dechunk(&[&out]).unwrap(), (vec![7u8; 300], true));
    }

    const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

    /// The request head of `wire` and a reader for its body.
    fn reader(wire: &[u8], max: usize) -> (usize, Result<BodyReader, RequestError>) {
        let req = Request::parse(wire, 1024).expect("valid head").expect("complete head");
        (req.head_len(), BodyReader::new(&req, max))
    }

    /// Feeds `pieces`, stopping once done; returns the body and the bytes
    /// consumed in all.
    fn feed(mut r: BodyReader, pieces: &[&[u8]]) -> Result<(Vec<u8>, usize), RequestError> {
        let mut used = 0;
        for p in pieces {
            if r.is_done() {
                break;
            }
            let n = r.handle_input(p)?;
            assert!(n <= p.len());
            assert!(n == p.len() || r.is_done(), "stopped early without being done");
            used += n;
        }
        r.handle_eof()?;
        Ok((r.into_body(), used))
    }

    #[test]
    fn bodies_split_at_every_byte_leave_the_next_request() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b""),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\nT: v\r\n\r\n",
                b"hello",
            ),
        ];
        for (request, body) in cases {
            let wire = [request, NEXT].concat();
            let (head_len, r) = reader(&wire, 64);
            let rest = &wire[head_len..];
            let body_len = rest.len() - NEXT.len();
            for i in 0..=rest.len() {
                let (got, used) = feed(r.clone().unwrap(), &[&rest[..i], &rest[i..]]).unwrap();
                assert_eq!((got.as_slice(), used), (body, body_len), "split at {i}");
            }
            let bytes: Vec<&[u8]> = rest.chunks(1).collect();
            assert_eq!(feed(r.unwrap(), &bytes).unwrap(), (body.to_vec(), body_len));
        }
    }

    #[test]
    fn a_request_without_a_body_is_done_at_once() {
        let (_, r) = reader(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0);
        let mut r = r.unwrap();
        assert!(r.is_done() && r.is_empty());
        assert_eq!(r.handle_input(NEXT), Ok(0));
        assert_eq!(r.handle_eof(), Ok(()));
    }

    #[test]
    fn content_length_over_the_limit_is_refused_before_reading() {
        let (_, r) = reader(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 64);
        assert_eq!(r.unwrap_err(), RequestError::BodyTooLarge { len: 65, max: 64 });
        let (_, r) = reader(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n", 64);
        assert!(r.is_ok());
    }

    #[test]
    fn chunked_over_the_limit_is_refused_without_buffering_the_excess() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, r) = reader(head, 10);
        let mut r = r.unwrap();
        assert_eq!(r.handle_input(b"8\r\n12345678\r\n"), Ok(13));
        assert_eq!(r.len(), 8);
        // A chunk announcing a size past the limit is refused at its size
        // line, before its data arrives.
        let err = r.handle_input(b"3\r\n").unwrap_err();
        assert_eq!(err, RequestError::BodyTooLarge { len: 11, max: 10 });
        assert!(!r.is_done());
        assert_eq!(r.handle_eof(), Err(RequestError::BodyTooLarge { len: 11, max: 10 }));
        assert!(r.len() <= 10);
        assert_eq!(err.status(), 413);
        // A huge one too, whatever arrives with it.
        let (_, r) = reader(head, 10);
        let mut r = r.unwrap();
        let err = r.handle_input(b"ffffffff\r\n12").unwrap_err();
        assert_eq!(err, RequestError::BodyTooLarge { len: 0xffff_ffff, max: 10 });
        assert!(r.len() <= 10);
    }

    #[test]
    fn request_chunks_are_read_strictly() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let bad: [&[u8]; 6] = [
            b"3\nabc\r\n0\r\n\r\n",        // bare LF after the size
            b"3\r\nabc\n0\r\n\r\n",        // bare LF after the data
            b"3x\r\nabc\r\n0\r\n\r\n",     // an extension without `;`
            b"3;a\rb\r\nabc\r\n0\r\n\r\n", // a CR inside the extension
            b"3;\x01\r\nabc\r\n0\r\n\r\n", // a control character
            b"3\r\nabc\r\n0\r\n\n",        // bare LF ending the trailers
        ];
        for body in bad {
            let (_, r) = reader(head, 64);
            let err = r.unwrap().handle_input(body).unwrap_err();
            assert_eq!(err.status(), 400, "{:?}", alloc::string::String::from_utf8_lossy(body));
        }
        let (_, r) = reader(head, 64);
        let mut r = r.unwrap();
        let good = b"3 ;name=\"v\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(r.handle_input(good), Ok(good.len()));
        assert!(r.is_done());
        assert_eq!(r.into_body(), b"abc");
    }

    #[test]
    fn truncated_bodies_and_bad_chunks_are_400() {
        let cl = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
        let (_, r) = reader(cl, 64);
        let truncated = RequestError::Malformed(HttpError::Truncated);
        assert_eq!(feed(r.unwrap(), &[b"hel"]), Err(truncated.clone()));
        let te = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, r) = reader(te, 64);
        assert_eq!(feed(r.clone().unwrap(), &[b"5\r\nhello\r\n"]), Err(truncated.clone()));
        assert_eq!(truncated.status(), 400);
        let bad = feed(r.clone().unwrap(), &[b"5\r\nhelloX"]);
        assert_eq!(bad, Err(RequestError::Malformed(HttpError::BadChunkEnd)));
        let bad = feed(r.unwrap(), &[b"z\r\n"]);
        assert_eq!(bad, Err(RequestError::Malformed(HttpError::BadChunkSize)));
    }
}
