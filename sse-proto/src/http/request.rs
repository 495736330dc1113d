//! Requests: a head read and validated strictly (RFC 9112 §3, §6), and the
//! typed refusals with the status each is answered with.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::response::{error_response, validate_header};
use super::{HttpError, MAX_HEADERS, Version, hex_digit, is_token, parse_decimal, trim};

/// How a request's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// Neither `Content-Length` nor `Transfer-Encoding`: no body (rule 7).
    None,
    /// `Content-Length`: this many bytes (rule 6).
    Length(u64),
    /// `Transfer-Encoding: chunked`: ends with the last chunk (rule 4).
    Chunked,
}

/// Why a request cannot be served, with the status to answer
/// ([`status`](Self::status)) and the response to send
/// ([`response`](Self::response)). After any of them but
/// [`MethodNotAllowed`](Self::MethodNotAllowed) the connection cannot be
/// reused: where the next request starts is unknown (RFC 9112 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a valid HTTP/1.x request, 400: a head `httparse` refuses, a
    /// target that is neither origin-form nor `OPTIONS *`, a NUL in a header
    /// value, or a body that is not valid chunked coding or ends early.
    Malformed(HttpError),
    /// The head is larger than the limit, or has more than 64 fields: 431.
    HeadTooLarge {
        /// Bytes seen (for too many fields: the bytes given).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// HTTP/1.1 without `Host`, several `Host` fields, or one whose value
    /// is not a single `host[:port]`: 400 (RFC 9112 §3.2).
    BadHost {
        /// How many `Host` fields there were.
        count: usize,
    },
    /// A `Content-Length` that is not `1*DIGIT` or overflows, or a second
    /// `Content-Length` field: 400 (RFC 9112 §6.3 rule 5, RFC 9110 §8.6).
    BadContentLength,
    /// Both `Transfer-Encoding` and `Content-Length`: 400. RFC 9112 §6.1
    /// lets a server reject this; we do, as it is how requests are smuggled.
    ConflictingFraming,
    /// `Transfer-Encoding` on an HTTP/1.0 request: 400 (RFC 9112 §6.1,
    /// faulty framing).
    TransferEncodingOnHttp10,
    /// A `Transfer-Encoding` list that is empty, names `chunked` more than
    /// once, or holds something that is not a coding: 400 (RFC 9112 §6.3
    /// rule 4: `chunked` must be the final coding, exactly once).
    BadTransferEncoding,
    /// A transfer coding other than `chunked`, the only one implemented:
    /// 501 (RFC 9112 §6.1).
    UnsupportedTransferCoding {
        /// The coding, lowercase.
        coding: String,
    },
    /// An `Expect` other than `100-continue`: 417 (RFC 9110 §10.1.1).
    ExpectationFailed,
    /// The body is larger than allowed: 413.
    BodyTooLarge {
        /// The `Content-Length`, or the length a chunked body would have
        /// reached (at least).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The method is not one the resource takes: 405.
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header.
        allow: String,
    },
}

impl RequestError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_)
            | RequestError::BadHost { .. }
            | RequestError::BadContentLength
            | RequestError::ConflictingFraming
            | RequestError::TransferEncodingOnHttp10
            | RequestError::BadTransferEncoding => 400,
            RequestError::HeadTooLarge { .. } => 431,
            RequestError::UnsupportedTransferCoding { .. } => 501,
            RequestError::ExpectationFailed => 417,
            RequestError::BodyTooLarge { .. } => 413,
            RequestError::MethodNotAllowed { .. } => 405,
        }
    }

    /// The complete error response, closing the connection (see
    /// [`error_response`]); a 405 lists the allowed methods in `Allow`.
    pub fn response(&self) -> Vec<u8> {
        match self {
            RequestError::MethodNotAllowed { allow } => error_response(405, &[("Allow", allow)]),
            e => error_response(e.status(), &[]),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(e) => write!(f, "bad request: {e}"),
            RequestError::HeadTooLarge { len, max } => {
                write!(f, "request head of more than {len} bytes exceeds the limit of {max} bytes")
            }
            RequestError::BadHost { count: 0 } => f.write_str("missing Host on an HTTP/1.1 request"),
            RequestError::BadHost { count: 1 } => f.write_str("invalid Host"),
            RequestError::BadHost { count } => write!(f, "{count} Host fields"),
            RequestError::BadContentLength => f.write_str("invalid or repeated Content-Length"),
            RequestError::ConflictingFraming => f.write_str("both Transfer-Encoding and Content-Length"),
            RequestError::TransferEncodingOnHttp10 => f.write_str("transfer coding on an HTTP/1.0 request"),
            RequestError::BadTransferEncoding => {
                f.write_str("transfer codings other than exactly one chunked")
            }
            RequestError::UnsupportedTransferCoding { coding } => {
                write!(f, "unsupported transfer coding {coding:?}")
            }
            RequestError::ExpectationFailed => f.write_str("unsupported expectation"),
            RequestError::BodyTooLarge { len, max } => {
                write!(f, "request body of {len} bytes exceeds the limit of {max} bytes")
            }
            RequestError::MethodNotAllowed { allow } => write!(f, "method not allowed (allowed: {allow})"),
        }
    }
}

impl core::error::Error for RequestError {}

/// A request head, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, the target, then each field's name and value, back to
    /// back in one allocation: a request is kept for as long as its handler
    /// runs (a whole event stream), so it stays small.
    text: Box<str>,
    /// Where the method ends and the target starts in `text`.
    method_end: u32,
    /// Where the target ends and the first field starts.
    target_end: u32,
    /// Each field: where its name ends (its value starts) and where its
    /// value ends (the next field starts).
    fields: Box<[(u32, u32)]>,
    version: Version,
    head_len: usize,
    framing: RequestFraming,
    expects_continue: bool,
    keep_alive: bool,
    last_event_id: Option<Box<str>>,
}

impl Request {
    /// Parses and validates a request head from the front of `buf`.
    /// `Ok(None)`: not complete yet (incomplete input is never an error).
    ///
    /// Refused, each with its status (see [`RequestError`]): what
    /// `httparse` refuses; a target that is not origin-form (`/path?query`),
    /// absolute-form (`http://host/path?query`, whose path and query are
    /// then the target, RFC 9112 §3.2.2) or `OPTIONS *` (§3.2.4); HTTP/1.1 without
    /// `Host` or any request with more than one (§3.2); `Content-Length`
    /// that is not exactly `1*DIGIT` or appears twice; `Transfer-Encoding`
    /// with `Content-Length`, on HTTP/1.0, or other than exactly `chunked`;
    /// an `Expect` other than `100-continue`; NUL in a header value.
    /// Header values that are not UTF-8 are converted lossily.
    ///
    /// ```
    /// use sse_proto::{Request, RequestFraming, Version};
    /// let req = Request::parse(b"GET /events?lastEventId=7 HTTP/1.1\r\nHost: x\r\n\r\n", 8192)?
    ///     .expect("a complete head");
    /// assert_eq!((req.method(), req.path(), req.last_event_id()), ("GET", "/events", Some("7")));
    /// assert_eq!((req.version(), req.framing(), req.keep_alive()), (Version::Http11, RequestFraming::None, true));
    ///
    /// let smuggled = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    /// assert_eq!(Request::parse(smuggled, 8192).unwrap_err().status(), 400);
    /// # Ok::<(), sse_proto::RequestError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`RequestError`] with status 400, 417, 431 or 501.
    pub fn parse(buf: &[u8], max_head_len: usize) -> Result<Option<Request>, RequestError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(buf).map_err(|e| match e {
            httparse::Error::TooManyHeaders => {
                RequestError::HeadTooLarge { len: buf.len(), max: max_head_len }
            }
            e => RequestError::Malformed(e.into()),
        })?;
        let head_len = match status {
            httparse::Status::Partial if buf.len() > max_head_len => {
                return Err(RequestError::HeadTooLarge { len: buf.len(), max: max_head_len });
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) if n > max_head_len => {
                return Err(RequestError::HeadTooLarge { len: n, max: max_head_len });
            }
            httparse::Status::Complete(n) => n,
        };
        let version = match req.version {
            Some(0) => Version::Http10,
            Some(1) => Version::Http11,
            _ => return Err(malformed("invalid HTTP version")),
        };
        let method = req.method.ok_or(malformed("missing method"))?;
        let target = req.path.ok_or(malformed("missing target"))?;
        // Origin-form (RFC 9112 §3.2.1), asterisk-form for OPTIONS
        // (§3.2.4), or absolute-form, which a server MUST accept (§3.2.2):
        // its path and query are served. Authority-form is for CONNECT,
        // which is not. A fragment is never part of a target.
        let asterisk = method == "OPTIONS" && target == "*";
        let target = absolute_form_path(target).unwrap_or(target);
        if !(target.starts_with('/') || asterisk) || target.contains('#') {
            return Err(malformed("request target is not in origin or absolute form"));
        }
        let (fields, framing) = Fields::read(req.headers, version)?;
        // RFC 9110 §10.1.1: an HTTP/1.0 client cannot mean 100-continue,
        // and without content to read there is nothing to wait for.
        let has_body = !matches!(framing, RequestFraming::None | RequestFraming::Length(0));
        let expects_continue = fields.expect_continue && version == Version::Http11 && has_body;
        // RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only
        // with `keep-alive` (RFC 9112 Appendix C.2.2).
        let keep_alive = !fields.close && (version == Version::Http11 || fields.keep_alive);
        // The head fits in u32 offsets: it is at most `max_head_len` long,
        // and a longer head than 4 GiB cannot be buffered anyway.
        let offset = |text: &String| u32::try_from(text.len()).map_err(|_| malformed("head too long"));
        let size = method.len()
            + target.len()
            + req.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
        let mut text = String::with_capacity(size);
        text.push_str(method);
        let method_end = offset(&text)?;
        text.push_str(target);
        let target_end = offset(&text)?;
        let mut fields = Vec::with_capacity(req.headers.len());
        for h in req.headers.iter() {
            text.push_str(h.name);
            let name_end = offset(&text)?;
            text.push_str(&String::from_utf8_lossy(h.value));
            fields.push((name_end, offset(&text)?));
        }
        let mut request = Request {
            text: text.into_boxed_str(),
            method_end,
            target_end,
            fields: fields.into_boxed_slice(),
            version,
            head_len,
            framing,
            expects_continue,
            keep_alive,
            last_event_id: None,
        };
        // The header wins; polyfills that cannot set it use the query.
        request.last_event_id = match request.header("last-event-id") {
            Some(v) => Some(v.trim_matches([' ', '\t']).into()),
            None => query_param(request.query(), "lastEventId").map(String::into_boxed_str),
        }
        .filter(|id| !id.is_empty());
        Ok(Some(request))
    }

    /// A request built from parts and validated exactly as [`parse`](Self::parse)
    /// validates the equivalent HTTP/1.1 head; nothing is added (an HTTP/1.1
    /// request needs a `Host`). For tests, and for embedding behind another
    /// HTTP layer. [`head_len`](Self::head_len) is the length of that head.
    ///
    /// ```
    /// use sse_proto::{Request, RequestFraming};
    /// let req = Request::from_parts("POST", "/send", &[("Host", "x"), ("Content-Length", "2")])?;
    /// assert_eq!(req.framing(), RequestFraming::Length(2));
    /// assert_eq!(Request::from_parts("GET", "/", &[]).unwrap_err().status(), 400); // no Host
    /// # Ok::<(), sse_proto::RequestError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse); also [`RequestError::Malformed`] (400) for
    /// a method that is not a token, a target with whitespace or control
    /// characters, or a header failing [`validate_header`].
    pub fn from_parts(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<Request, RequestError> {
        if !is_token(method) {
            return Err(malformed("invalid method"));
        }
        if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(malformed("invalid request target"));
        }
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            // Checked first: a CR or LF in a value would forge another field.
            validate_header(name, value).map_err(|_| malformed("invalid header value"))?;
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        Request::parse(head.as_bytes(), head.len())?.ok_or(malformed("incomplete head"))
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.text[..self.method_end as usize]
    }

    /// The request target: path and query, or `*` for `OPTIONS *`.
    pub fn target(&self) -> &str {
        &self.text[self.method_end as usize..self.target_end as usize]
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target().split('?').next().unwrap_or("/")
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        query_of(self.target())
    }

    /// A query parameter, percent-decoded (`+` as space), first occurrence.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query(), name)
    }

    /// The first header of that name (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = self.target_end as usize;
        self.fields.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let field = (&self.text[start..name_end], &self.text[name_end..value_end]);
            start = value_end;
            field
        })
    }

    /// Bytes of the head (what follows is the body, if any).
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How the body is framed; read it with a
    /// [`BodyReader`](crate::BodyReader).
    pub fn framing(&self) -> RequestFraming {
        self.framing
    }

    /// Whether the client waits for [`CONTINUE`](crate::CONTINUE) before
    /// sending the body: `Expect: 100-continue` on an HTTP/1.1 request with
    /// a body to read (ignored otherwise, RFC 9110 §10.1.1). Send it before
    /// reading the body, or answer with a final status instead.
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }

    /// Whether the client allows the connection to stay open after the
    /// response: HTTP/1.1 unless a `Connection` header lists `close`;
    /// HTTP/1.0 only when one lists `keep-alive` (and none `close`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The id the client resumes after: the `Last-Event-ID` header (OWS
    /// trimmed), or for polyfills that cannot set headers, the
    /// `lastEventId` query parameter (percent-decoded). An empty value
    /// means none.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Whether `Accept` allows `text/event-stream` (or is absent).
    pub fn accepts_event_stream(&self) -> bool {
        self.header("accept").is_none_or(|accept| {
            accept.split(',').any(|range| {
                let essence = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                matches!(essence.as_str(), "text/event-stream" | "text/*" | "*/*")
            })
        })
    }

    /// Checks the method against those a resource takes.
    ///
    /// # Errors
    ///
    /// [`RequestError::MethodNotAllowed`] (405) listing `allowed`.
    pub fn check_method(&self, allowed: &[&str]) -> Result<(), RequestError> {
        if allowed.contains(&self.method()) {
            return Ok(());
        }
        Err(RequestError::MethodNotAllowed { allow: allowed.join(", ") })
    }
}

fn malformed(why: &'static str) -> RequestError {
    RequestError::Malformed(HttpError::MalformedHead(why))
}

/// What the header fields say about framing, `Host`, `Expect` and
/// `Connection`, checked field by field.
#[derive(Default)]
struct Fields {
    hosts: usize,
    host_valid: bool,
    content_length: Option<u64>,
    /// Transfer codings of every `Transfer-Encoding` field, in order
    /// (lowercase); `Some` when there was such a field at all.
    codings: Option<Vec<String>>,
    expect_continue: bool,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    /// The fields and the framing they imply, or the first refusal.
    fn read(
        headers: &[httparse::Header<'_>],
        version: Version,
    ) -> Result<(Fields, RequestFraming), RequestError> {
        let mut f = Fields { host_valid: true, ..Fields::default() };
        let mut expectation_failed = false;
        for h in headers {
            // httparse refuses CR and LF in values but lets NUL through.
            if h.value.contains(&0) {
                return Err(malformed("NUL in a header value"));
            }
            let name = h.name;
            let value = trim(h.value);
            if name.eq_ignore_ascii_case("host") {
                f.hosts += 1;
                f.host_valid &= is_host(value);
            } else if name.eq_ignore_ascii_case("content-length") {
                // RFC 9110 §8.6: a list (even `5, 5`) or a repeated field is
                // refused rather than reconciled.
                if f.content_length.is_some() {
                    return Err(RequestError::BadContentLength);
                }
                f.content_length = Some(parse_decimal(value).ok_or(RequestError::BadContentLength)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let codings = f.codings.get_or_insert_with(Vec::new);
                // `#transfer-coding`: empty elements are ignored (RFC 9110
                // §5.6.1.2); a coding's parameters follow `;`.
                for element in list(value) {
                    codings.push(String::from_utf8_lossy(element).to_ascii_lowercase());
                }
            } else if name.eq_ignore_ascii_case("expect") {
                for element in list(value) {
                    if element.eq_ignore_ascii_case(b"100-continue") {
                        f.expect_continue = true;
                    } else {
                        expectation_failed = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for element in list(value) {
                    f.close |= element.eq_ignore_ascii_case(b"close");
                    f.keep_alive |= element.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        // RFC 9112 §3.2: a 1.1 request without Host, or any with several,
        // or with an invalid value, gets a 400.
        if f.hosts > 1 || !f.host_valid || (f.hosts == 0 && version == Version::Http11) {
            return Err(RequestError::BadHost { count: f.hosts });
        }
        // Framing errors are reported by `framing`, before the expectation:
        // without framing the message cannot be read at all.
        let framing = f.framing(version)?;
        if expectation_failed {
            return Err(RequestError::ExpectationFailed);
        }
        Ok((f, framing))
    }

    /// RFC 9112 §6.3, rules 3 to 7, for requests.
    fn framing(&self, version: Version) -> Result<RequestFraming, RequestError> {
        let Some(codings) = &self.codings else {
            return Ok(self.content_length.map_or(RequestFraming::None, RequestFraming::Length));
        };
        // §6.1: Transfer-Encoding in a 1.0 message is faulty framing.
        if version == Version::Http10 {
            return Err(RequestError::TransferEncodingOnHttp10);
        }
        // §6.1: a server MAY reject both; we do (request smuggling, §11.2).
        if self.content_length.is_some() {
            return Err(RequestError::ConflictingFraming);
        }
        let mut chunked = 0;
        for coding in codings {
            let (name, params) = coding.split_once(';').unwrap_or((coding, ""));
            let name = name.trim_end_matches([' ', '\t']);
            if !is_token(name) {
                return Err(RequestError::BadTransferEncoding);
            }
            if name != "chunked" {
                // §6.1: an unknown coding SHOULD get a 501.
                return Err(RequestError::UnsupportedTransferCoding { coding: name.to_string() });
            }
            // `chunked` takes no parameters (§7.1).
            if !params.is_empty() {
                return Err(RequestError::BadTransferEncoding);
            }
            chunked += 1;
        }
        // §6.3 rule 4 and §7: chunked exactly once, and so last.
        if chunked != 1 {
            return Err(RequestError::BadTransferEncoding);
        }
        Ok(RequestFraming::Chunked)
    }
}

/// The non-empty elements of a comma-separated list, OWS trimmed (RFC 9110
/// §5.6.1.2).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim).filter(|e| !e.is_empty())
}

/// Whether a `Host` value is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC
/// 3986 §3.2.2), checked by character class: an IP literal in brackets, or
/// a name of unreserved, sub-delim and percent characters without a comma
/// (so a list of hosts is refused), then an optional port of digits. Empty
/// is allowed (RFC 9112 §3.2).
fn is_host(value: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else { return false };
        let literal = &rest[..end];
        if literal.is_empty() || !literal.iter().all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b)) {
            return false;
        }
        match &rest[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&b""[..], port),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, &b""[..]),
        }
    };
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=%".contains(b);
    host.iter().all(reg_name) && port.iter().all(u8::is_ascii_digit)
}

/// The path and query of an absolute-form target (`http://host/p?q` →
/// `/p?q`; `http://host?q` → `?q`, refused later for not starting with
/// `/`; `http://host` → `/`), or `None` for any other form.
fn absolute_form_path(target: &str) -> Option<&str> {
    let scheme_len = ["http://", "https://"]
        .iter()
        .find(|s| target.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)))?
        .len();
    let rest = &target[scheme_len..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if authority_end == 0 {
        return None;
    }
    match &rest[authority_end..] {
        "" => Some("/"),
        path => Some(path),
    }
}

fn query_of(target: &str) -> Option<&str> {
    target.split_once('?').map(|(_, q)| q)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestFraming::{Chunked, Length};

    /// `Ok(framing)` or the refusal's status.
    fn outcome(head: &[u8]) -> Result<RequestFraming, u16> {
        match Request::parse(head, 1024) {
            Ok(Some(req)) => Ok(req.framing()),
            Ok(None) => panic!("incomplete: {:?}", String::from_utf8_lossy(head)),
            Err(e) => Err(e.status()),
        }
    }

    #[test]
    fn heads_are_accepted_or_refused_with_their_status() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<RequestFraming, u16>)] = &[
            // Good.
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", Ok(RequestFraming::None)),
            ("GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", Ok(RequestFraming::None)),
            ("GET // HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Ok(RequestFraming::None)),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", Ok(RequestFraming::None)),
            ("GET / HTTP/1.0\r\n\r\n", Ok(RequestFraming::None)),
            ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", Ok(RequestFraming::None)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", Ok(Length(5))),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  0 \r\n\r\n", Ok(Length(0))),
            ("POST / HTTP/1.0\r\nContent-Length: 18446744073709551615\r\n\r\n", Ok(Length(u64::MAX))),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(Chunked)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,CHUNKED ,\r\n\r\n", Ok(Chunked)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(Chunked)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n", Ok(Length(1))),
            ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, foo\r\n\r\n", Ok(RequestFraming::None)),
            // Syntax and target form: 400.
            ("GET / HTTP/1.1\r\nHo st: h\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", Err(400)),
            ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", Err(400)),
            ("GET * HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("OPTIONS /* HTTP/1.1\r\nHost: x\r\n\r\n", Ok(RequestFraming::None)),
            ("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Ok(RequestFraming::None)),
            ("GET HTTPS://x:1 HTTP/1.1\r\nHost: x\r\n\r\n", Ok(RequestFraming::None)),
            ("GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", Err(400)),
            ("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", Err(400)),
            // Host: 400.
            ("GET / HTTP/1.1\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", Err(400)),
            ("GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: u@x\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: x:8o\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Err(400)),
            // Content-Length: 400.
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Err(400)),
            // Transfer-Encoding: 400 and 501.
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , ,\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ch@nked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(501)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(501)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: deflate\r\n\r\n", Err(501)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", Err(501)),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo;q=1\r\n\r\n", Err(501)),
            // Expect: 417.
            ("GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", Err(417)),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue, x\r\n\r\n", Err(417)),
            // Framing is judged before the expectation.
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nExpect: x\r\n\r\n", Err(501)),
        ];
        for (head, want) in cases {
            assert_eq!(outcome(head.as_bytes()), *want, "{head:?}");
        }
    }

    #[test]
    fn absolute_form_serves_its_path_and_query() {
        let parse = |t: &str| {
            let head = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
            Request::parse(head.as_bytes(), 1024).unwrap().unwrap()
        };
        let req = parse("http://example.com:8080/events?lastEventId=4");
        assert_eq!(
            (req.target(), req.path(), req.last_event_id()),
            ("/events?lastEventId=4", "/events", Some("4"))
        );
        assert_eq!(parse("http://example.com").target(), "/");
    }

    #[test]
    fn limits_are_431() {
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nHost:", 1024), Ok(None));
        let err = Request::parse(b"GET / HTTP/1.1\r\nHost: hhhhhhhhhhhh", 16).unwrap_err();
        assert_eq!(err, RequestError::HeadTooLarge { len: 34, max: 16 });
        assert_eq!(err.status(), 431);
        let complete = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(Request::parse(complete, complete.len() - 1).unwrap_err().status(), 431);
        assert!(Request::parse(complete, complete.len()).unwrap().is_some());
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for _ in 0..MAX_HEADERS {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(Request::parse(&many, 8192).unwrap_err().status(), 431);
    }

    #[test]
    fn unsupported_codings_are_named() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: GZip;q=1, chunked\r\n\r\n";
        let err = Request::parse(head, 1024).unwrap_err();
        assert_eq!(err, RequestError::UnsupportedTransferCoding { coding: "gzip".into() });
        assert!(err.response().starts_with(b"HTTP/1.1 501 Not Implemented\r\n"));
    }

    #[test]
    fn keep_alive_truth_table() {
        let cases = [
            ("1.1", "", true),
            ("1.1", "Connection: close\r\n", false),
            ("1.1", "Connection: foo, CLOSE\r\n", false),
            ("1.1", "Connection: keep-alive\r\n", true),
            ("1.1", "Connection: upgrade\r\nConnection: close\r\n", false),
            ("1.0", "", false),
            ("1.0", "Connection: Keep-Alive\r\n", true),
            ("1.0", "Connection: keep-alive, close\r\n", false),
            ("1.0", "Connection: close\r\n", false),
        ];
        for (version, fields, want) in cases {
            let head = format!("GET / HTTP/{version}\r\nHost: x\r\n{fields}\r\n");
            let req = Request::parse(head.as_bytes(), 1024).unwrap().unwrap();
            assert_eq!(req.keep_alive(), want, "{head:?}");
        }
    }

    #[test]
    fn continue_is_expected_only_on_http11_with_a_body() {
        let cases = [
            ("1.1", "Content-Length: 3\r\n", true),
            ("1.1", "Transfer-Encoding: chunked\r\n", true),
            ("1.1", "Content-Length: 0\r\n", false),
            ("1.1", "", false),
            ("1.0", "Content-Length: 3\r\n", false),
        ];
        for (version, framing, want) in cases {
            let head = format!("POST / HTTP/{version}\r\nHost: x\r\n{framing}Expect: 100-continue\r\n\r\n");
            let req = Request::parse(head.as_bytes(), 1024).unwrap().unwrap();
            assert_eq!(req.expects_continue(), want, "{head:?}");
        }
    }

    #[test]
    fn accessors() {
        let req = Request::parse(
            b"GET /s?a=1&lastEventId=x%20y HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\nrest",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (req.method(), req.target(), req.path(), req.query()),
            ("GET", "/s?a=1&lastEventId=x%20y", "/s", Some("a=1&lastEventId=x%20y"))
        );
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.last_event_id(), Some("x y"));
        assert_eq!(req.version(), Version::Http11);
        assert_eq!(req.head_len(), 77);
        assert_eq!(req.header("HOST"), Some("h"));
        assert_eq!(req.headers().count(), 2);
        assert!(req.accepts_event_stream());
        let header_wins =
            Request::parse(b"GET /?lastEventId=q HTTP/1.1\r\nHost: x\r\nLast-Event-ID:  42 \r\n\r\n", 1024)
                .unwrap()
                .unwrap();
        assert_eq!(header_wins.last_event_id(), Some("42"));
        let empty = Request::parse(b"GET /?lastEventId= HTTP/1.1\r\nHost: x\r\n\r\n", 1024).unwrap().unwrap();
        assert_eq!(empty.last_event_id(), None);
        let err = req.check_method(&["POST"]).unwrap_err();
        assert_eq!(err.status(), 405);
        assert!(err.response().windows(12).any(|w| w == b"Allow: POST\r"));
        let html =
            Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n", 1024).unwrap().unwrap();
        assert!(!html.accepts_event_stream());
    }

    #[test]
    fn requests_from_parts_are_validated_like_heads() {
        let req =
            Request::from_parts("GET", "/e?lastEventId=3", &[("Host", "x"), ("Accept", "*/*")]).unwrap();
        let parsed =
            Request::parse(b"GET /e?lastEventId=3 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 1024).unwrap();
        assert_eq!(Some(req), parsed);
        type Parts<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);
        let refused: [Parts<'_>; 6] = [
            ("GET", "/", &[], 400),
            ("G T", "/", &[("Host", "x")], 400),
            ("GET", "/a b", &[("Host", "x")], 400),
            ("GET", "/", &[("Host", "x"), ("X", "1\r\nHost: y")], 400),
            ("GET", "/", &[("Host", "x"), ("Expect", "nope")], 417),
            ("POST", "/", &[("Host", "x"), ("Transfer-Encoding", "br")], 501),
        ];
        for (method, target, headers, status) in refused {
            assert_eq!(
                Request::from_parts(method, target, headers).unwrap_err().status(),
                status,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(percent_decode("%E2%80%A6"), "\u{2026}");
    }

    #[test]
    fn every_error_has_its_status_and_a_response() {
        let errors = [
            (RequestError::Malformed(HttpError::Truncated), 400),
            (RequestError::HeadTooLarge { len: 2, max: 1 }, 431),
            (RequestError::BadHost { count: 2 }, 400),
            (RequestError::BadContentLength, 400),
            (RequestError::ConflictingFraming, 400),
            (RequestError::TransferEncodingOnHttp10, 400),
            (RequestError::BadTransferEncoding, 400),
            (RequestError::UnsupportedTransferCoding { coding: "gzip".into() }, 501),
            (RequestError::ExpectationFailed, 417),
            (RequestError::BodyTooLarge { len: 2, max: 1 }, 413),
            (RequestError::MethodNotAllowed { allow: "GET".into() }, 405),
        ];
        for (e, status) in errors {
            assert_eq!(e.status(), status);
            assert!(e.response().starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
            let text = e.to_string();
            assert!(text.starts_with(|c: char| !c.is_uppercase()), "{text}");
        }
    }
}
