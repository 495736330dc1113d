//! Plain responses, and what a handler may return.

use bytes::Bytes;

use crate::stream::SendError;

/// A plain HTTP response: any status, headers and a body.
///
/// A handler returns one to answer without streaming: a page, a `401` to a
/// missing token, a `404` to an unknown topic, or a `204`, the one status
/// that tells a browser's `EventSource` to stop reconnecting.
///
/// ```
/// use sse_io::Response;
/// let denied = Response::new(401).header("WWW-Authenticate", "Bearer").text("a token is required\n");
/// assert_eq!(denied.status(), 401);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a response does nothing until a handler returns it"]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Response {
    /// A response with a status and an empty body.
    ///
    /// # Panics
    ///
    /// When `status` is not a three-digit code from 100 to 999 (RFC 9110
    /// §15): a bug in the caller, not a condition of the request.
    pub fn new(status: u16) -> Self {
        assert!((100..=999).contains(&status), "{status} is not an HTTP status code");
        Response { status, headers: Vec::new(), body: Bytes::new() }
    }

    /// `200 OK` with an HTML body.
    pub fn html(body: impl Into<Bytes>) -> Self {
        Response::new(200).with_body("text/html; charset=utf-8", body)
    }

    /// `200 OK` with a plain text body.
    pub fn ok_text(body: impl Into<Bytes>) -> Self {
        Response::new(200).text(body)
    }

    /// `200 OK` with `value` serialized as a JSON body.
    ///
    /// # Errors
    ///
    /// The serializer's error, when `value` cannot be serialized.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        Ok(Response::new(200).with_body("application/json", body))
    }

    /// Sets a plain text body (`text/plain; charset=utf-8`).
    pub fn text(self, body: impl Into<Bytes>) -> Self {
        self.with_body("text/plain; charset=utf-8", body)
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.header("Content-Type", content_type).body(body)
    }

    /// Adds a header. A header that is not valid HTTP (a name that is not a
    /// token, a CR, LF or NUL in the value) is never written: the response
    /// becomes a `500` instead, so nothing can be injected into the head.
    /// `Content-Length`, `Transfer-Encoding` and `Connection` are the
    /// server's to write; values given here for them are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first header of that name (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The body.
    pub fn body_bytes(&self) -> &Bytes {
        &self.body
    }

    pub(crate) fn into_parts(self) -> (u16, Vec<(String, String)>, Bytes) {
        (self.status, self.headers, self.body)
    }
}

/// What a handler may return: a [`Response`], a status code, text, `()`, or
/// a `Result` of two of those (so `?` works on both sides).
///
/// Once a handler has started an event stream (`ctx.sse()`), what it
/// returns only ends the stream: the head is already out.
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

/// `()` is `200 OK` with an empty body (or, after `ctx.sse()`, the end of
/// the stream).
impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(200)
    }
}

/// A bare status code, with its reason phrase as a plain text body.
impl IntoResponse for u16 {
    fn into_response(self) -> Response {
        status_response(self)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::ok_text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::ok_text(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// A send that failed before a stream started cannot happen (there is no
/// stream to send on); after it started, this only ends the stream. An
/// encoding error before the start is a `500`.
impl IntoResponse for SendError {
    fn into_response(self) -> Response {
        status_response(500)
    }
}

impl From<SendError> for Response {
    fn from(e: SendError) -> Self {
        e.into_response()
    }
}

/// A response with `status` and `"<status> <reason>\n"` as its text body
/// (no body for the statuses that cannot have one).
pub(crate) fn status_response(status: u16) -> Response {
    let response = Response::new(status);
    if matches!(status, 100..=199 | 204 | 304) {
        return response;
    }
    let reason = sse_proto::reason_phrase(status);
    response.text(format!("{status} {reason}\n"))
}
