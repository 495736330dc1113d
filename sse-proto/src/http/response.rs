//! Responses: reading a head (the client side) and writing one (the
//! server side), with the reason phrases of RFC 9110 §15.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::body::BodyFraming;
use super::{HttpError, MAX_HEADERS, Version, is_token, parse_decimal, trim};

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

/// The MIME type essence of a `Content-Type` value (type/subtype, lowercase),
/// or `None` when it is not a valid MIME type.
pub fn mime_essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim_matches([' ', '\t']);
    let (ty, sub) = essence.split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    Some(essence.to_ascii_lowercase())
}

/// The reason phrase of a status code (RFC 9110 §15 and the IANA registry),
/// or `""` for a code without one (a reason phrase may be empty, RFC 9112
/// §4).
///
/// ```
/// assert_eq!(sse_proto::reason_phrase(413), "Content Too Large");
/// assert_eq!(sse_proto::reason_phrase(299), "");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        // 306 is "(Unused)" (RFC 9110 §15.4.7): no phrase.
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        // 418 is "(Unused)" (RFC 9110 §15.5.19), reserved after RFC 2324.
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Why a header cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The name is not a token (RFC 9110 §5.1).
    InvalidName {
        /// The name.
        name: String,
    },
    /// The value holds a control character other than horizontal tab
    /// (CR, LF and NUL among them; RFC 9110 §5.5).
    InvalidValue {
        /// The header's name.
        name: String,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::InvalidName { name } => write!(f, "invalid header name {name:?}"),
            HeaderError::InvalidValue { name } => write!(f, "invalid value for header {name:?}"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Checks a header before it is sent: the name must be a token (RFC 9110
/// §5.1) and the value free of control characters but horizontal tab
/// (RFC 9110 §5.5: `field-vchar` and SP/HTAB), so that no CR, LF or NUL can
/// end the field early and forge another. Surrounding whitespace is allowed
/// (the recipient strips it).
///
/// ```
/// use sse_proto::{HeaderError, validate_header};
/// assert_eq!(validate_header("Retry-After", "1"), Ok(()));
/// assert!(matches!(validate_header("X", "1\r\nSet-Cookie: a=b"), Err(HeaderError::InvalidValue { .. })));
/// ```
///
/// # Errors
///
/// [`HeaderError::InvalidName`] or [`HeaderError::InvalidValue`].
pub fn validate_header(name: &str, value: &str) -> Result<(), HeaderError> {
    if !is_token(name) {
        return Err(HeaderError::InvalidName { name: name.into() });
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HeaderError::InvalidValue { name: name.into() });
    }
    Ok(())
}

/// The interim `100 Continue` response, for a request that
/// [expects it](super::Request::expects_continue) (RFC 9110 §10.1.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Whether a response with this status never has content (RFC 9110 §6.4.1:
/// 1xx, 204 and 304), and so never a `Content-Length` from us (§8.6).
fn has_no_content(status: u16) -> bool {
    matches!(status, 100..=199 | 204 | 304)
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes a response head: the status line, `headers`, then the framing and
/// connection headers this function owns, then the blank line.
///
/// - The status line always says `HTTP/1.1`, also to HTTP/1.0 clients: a
///   server sends its own highest version (RFC 9110 §6.2). A status outside
///   100–999 cannot be written (RFC 9112 §4: three digits) and becomes 500.
/// - `headers` are written in order; any that fails [`validate_header`] is
///   skipped (callers validate earlier, see `ServerConfig::validate`).
///   `Content-Length` and `Connection` belong in the arguments, not in
///   `headers`; `Transfer-Encoding` must not be sent to an HTTP/1.0 client
///   (RFC 9112 §6.1).
/// - `Content-Length: n` is written when `content_length` is `Some`, except
///   for 1xx, 204 and 304, which have no content (RFC 9110 §8.6).
/// - `Connection: close` is written when `close`; otherwise nothing for
///   HTTP/1.1 (persistence is its default, RFC 9112 §9.3) and
///   `Connection: keep-alive` for HTTP/1.0 (whose default is to close).
///
/// ```
/// use sse_proto::{Version, write_response_head};
/// let mut out = Vec::new();
/// write_response_head(&mut out, 200, Version::Http10, &[("Content-Type", "text/plain")], Some(2), false);
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
/// ```
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    version: Version,
    headers: &[(&str, &str)],
    content_length: Option<u64>,
    close: bool,
) {
    let status = if (100..=999).contains(&status) { status } else { 500 };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if validate_header(name, value).is_ok() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(n) = content_length.filter(|_| !has_no_content(status)) {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A complete, short error response that closes the connection: the status
/// line, `Content-Type: text/plain; charset=utf-8`, the `extra` headers
/// (those failing [`validate_header`] are skipped), a `Content-Length`,
/// `Connection: close`, and `"<status> <reason>\n"` as the body. A 1xx, 204
/// or 304 response gets neither body nor `Content-Type` (RFC 9110 §6.4.1).
///
/// ```
/// let res = sse_proto::error_response(404, &[]);
/// assert!(res.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
/// assert!(res.ends_with(b"\r\nConnection: close\r\n\r\n404 Not Found\n"));
/// ```
pub fn error_response(status: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let reason = reason_phrase(status);
    let body = if has_no_content(status) {
        String::new()
    } else if reason.is_empty() {
        format!("{status}\n")
    } else {
        format!("{status} {reason}\n")
    };
    let mut headers = Vec::with_capacity(extra.len() + 1);
    if !body.is_empty() {
        headers.push(("Content-Type", "text/plain; charset=utf-8"));
    }
    headers.extend_from_slice(extra);
    let mut out = Vec::with_capacity(128 + body.len());
    let length = (!body.is_empty()).then_some(body.len() as u64);
    write_response_head(&mut out, status, Version::Http11, &headers, length, true);
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_listed_status_has_a_phrase_and_others_none() {
        let listed = [100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308]
            .into_iter()
            .chain((400..=418).chain([421, 422, 425, 426, 428, 429, 431, 451]))
            .chain((500..=508).chain([510, 511]));
        for status in listed {
            assert!(!reason_phrase(status).is_empty(), "{status}");
        }
        for status in [0, 102, 207, 299, 306, 419, 420, 432, 509, 599, 999] {
            assert_eq!(reason_phrase(status), "", "{status}");
        }
    }

    #[test]
    fn headers_are_validated() {
        let cases: [(&str, &str, Option<bool>); 8] = [
            ("X-A", " a\tb ", None),
            ("X-A", "caf\u{e9}", None),
            ("", "v", Some(true)),
            ("X A", "v", Some(true)),
            ("X:A", "v", Some(true)),
            ("X-A", "a\rb", Some(false)),
            ("X-A", "a\nb", Some(false)),
            ("X-A", "a\0b", Some(false)),
        ];
        for (name, value, bad_name) in cases {
            let got = validate_header(name, value);
            match bad_name {
                None => assert_eq!(got, Ok(()), "{name:?}: {value:?}"),
                Some(true) => assert_eq!(got, Err(HeaderError::InvalidName { name: name.into() })),
                Some(false) => assert_eq!(got, Err(HeaderError::InvalidValue { name: name.into() })),
            }
        }
    }

    fn head(status: u16, version: Version, length: Option<u64>, close: bool) -> String {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            status,
            version,
            &[("A", "1"), ("B", "x\r\nC: 2"), ("D", "3")],
            length,
            close,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn response_heads_are_written_per_version_and_status() {
        use Version::{Http10, Http11};
        let cases: [(u16, Version, Option<u64>, bool, &str); 7] = [
            (200, Http11, Some(5), false, "200 OK\r\nA: 1\r\nD: 3\r\nContent-Length: 5\r\n"),
            (200, Http11, None, true, "200 OK\r\nA: 1\r\nD: 3\r\nConnection: close\r\n"),
            (
                200,
                Http10,
                Some(0),
                false,
                "200 OK\r\nA: 1\r\nD: 3\r\nContent-Length: 0\r\nConnection: keep-alive\r\n",
            ),
            (200, Http10, None, true, "200 OK\r\nA: 1\r\nD: 3\r\nConnection: close\r\n"),
            (204, Http11, Some(5), false, "204 No Content\r\nA: 1\r\nD: 3\r\n"),
            (304, Http11, Some(5), true, "304 Not Modified\r\nA: 1\r\nD: 3\r\nConnection: close\r\n"),
            (
                299,
                Http11,
                Some(18_446_744_073_709_551_615),
                false,
                "299 \r\nA: 1\r\nD: 3\r\nContent-Length: 18446744073709551615\r\n",
            ),
        ];
        for (status, version, length, close, want) in cases {
            assert_eq!(head(status, version, length, close), format!("HTTP/1.1 {want}\r\n"));
        }
        assert!(
            head(1000, Version::Http11, None, false).starts_with("HTTP/1.1 500 Internal Server Error\r\n")
        );
    }

    #[test]
    fn error_responses_have_a_body_unless_the_status_forbids_one() {
        let res = String::from_utf8(error_response(503, &[("Retry-After", "1"), ("X", "a\nb")])).unwrap();
        assert_eq!(
            res,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n\
             Content-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n"
        );
        for status in [204, 304] {
            let res = String::from_utf8(error_response(status, &[])).unwrap();
            assert!(res.ends_with("\r\nConnection: close\r\n\r\n"), "{res}");
            assert!(!res.contains("Content-"), "{res}");
        }
        assert!(error_response(299, &[]).ends_with(b"Content-Length: 4\r\nConnection: close\r\n\r\n299\n"));
    }
}
