//! Cross-origin resource sharing (the Fetch standard's CORS protocol):
//! grants for allowed origins, preflight answers, `Vary: Origin`.

use std::time::Duration;

use sse_proto::Request;

use crate::response::Response;

/// Request headers a browser may send cross-origin to an event stream or a
/// publish endpoint without listing them: `Last-Event-ID` is what an
/// `EventSource` sends when it reconnects.
const DEFAULT_ALLOWED_HEADERS: [&str; 5] =
    ["last-event-id", "authorization", "content-type", "cache-control", "accept"];

/// A CORS policy: which origins get a grant, with or without credentials.
///
/// An origin on the list gets `Access-Control-Allow-Origin` with its own
/// value on every response and stream (plus `Access-Control-Allow-Credentials:
/// true` when credentials are allowed), and its preflight `OPTIONS` requests
/// are answered with the route's methods, the requested headers (when
/// allowed: `Last-Event-ID`, `Authorization`, `Content-Type`,
/// `Cache-Control`, `Accept` and those added) and a max-age. Any other
/// origin gets no grant, and its preflight a `403`. Responses carry `Vary:
/// Origin` so that caches keep one answer per origin.
///
/// ```
/// use std::time::Duration;
/// let cors = sse_io::Cors::new()
///     .allow_origin("https://app.example")
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(600));
/// # let _ = cors;
/// ```
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
    any_origin: bool,
    credentials: bool,
    max_age: Duration,
    headers: Vec<String>,
    expose: Vec<String>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors::new()
    }
}

impl Cors {
    /// A policy that grants nothing yet; add origins.
    pub fn new() -> Self {
        Cors {
            origins: Vec::new(),
            any_origin: false,
            credentials: false,
            max_age: Duration::from_secs(600),
            headers: Vec::new(),
            expose: Vec::new(),
        }
    }

    /// Grants `origin` (`scheme://host[:port]`, compared exactly, as
    /// browsers send it).
    pub fn allow_origin(mut self, origin: &str) -> Self {
        self.origins.push(origin.trim_end_matches('/').to_owned());
        self
    }

    /// Grants every origin (`Access-Control-Allow-Origin: *`). Cannot be
    /// combined with credentials: the router reports that when built.
    pub fn allow_any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// Lets the allowed origins send credentials (cookies, `withCredentials`
    /// event sources).
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// Another request header the allowed origins may send.
    pub fn allow_header(mut self, name: &str) -> Self {
        self.headers.push(name.to_ascii_lowercase());
        self
    }

    /// A response header scripts of the allowed origins may read.
    pub fn expose_header(mut self, name: &str) -> Self {
        self.expose.push(name.to_owned());
        self
    }

    /// How long a browser may cache a preflight answer (default 10 min).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.any_origin && self.credentials {
            return Err("credentials cannot be granted to any origin; list the origins".into());
        }
        for name in self.headers.iter().chain(&self.expose) {
            sse_proto::validate_header(name, "").map_err(|e| e.to_string())?;
        }
        for origin in &self.origins {
            sse_proto::validate_header("Origin", origin).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn allows(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    /// The headers to add to a response or stream head for `request`.
    pub(crate) fn grant(&self, request: &Request, out: &mut Vec<(String, String)>) {
        if !self.any_origin {
            out.push(("Vary".into(), "Origin".into()));
        }
        let Some(origin) = request.header("origin") else { return };
        if !self.allows(origin) {
            return;
        }
        let value = if self.any_origin { "*" } else { origin };
        out.push(("Access-Control-Allow-Origin".into(), value.into()));
        if self.credentials {
            out.push(("Access-Control-Allow-Credentials".into(), "true".into()));
        }
        if !self.expose.is_empty() {
            out.push(("Access-Control-Expose-Headers".into(), self.expose.join(", ")));
        }
    }

    /// Whether `request` is a CORS preflight (RFC: the Fetch standard's
    /// "CORS-preflight request": `OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`).
    pub(crate) fn is_preflight(request: &Request) -> bool {
        request.method() == "OPTIONS"
            && request.header("origin").is_some()
            && request.header("access-control-request-method").is_some()
    }

    /// The answer to a preflight for a path that takes `allow` (the `Allow`
    /// list of the route).
    pub(crate) fn preflight(&self, request: &Request, allow: &str) -> Response {
        let vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
        let denied = Response::new(403).header("Vary", vary).text("cross-origin request not allowed\n");
        let origin = request.header("origin").unwrap_or_default();
        let method = request.header("access-control-request-method").unwrap_or_default().trim();
        if !self.allows(origin) || !allow.split(", ").any(|m| m == method) {
            return denied;
        }
        let requested = request.header("access-control-request-headers").unwrap_or_default();
        let names = requested.split(',').map(|h| h.trim()).filter(|h| !h.is_empty());
        let mut granted = Vec::new();
        for name in names {
            let lower = name.to_ascii_lowercase();
            if !DEFAULT_ALLOWED_HEADERS.contains(&lower.as_str()) && !self.headers.contains(&lower) {
                return denied;
            }
            granted.push(lower);
        }
        let value = if self.any_origin { "*" } else { origin };
        let mut response = Response::new(204)
            .header("Vary", vary)
            .header("Access-Control-Allow-Origin", value)
            .header("Access-Control-Allow-Methods", allow)
            .header("Access-Control-Max-Age", &self.max_age.as_secs().to_string());
        if !granted.is_empty() {
            response = response.header("Access-Control-Allow-Headers", &granted.join(", "));
        }
        if self.credentials {
            response = response.header("Access-Control-Allow-Credentials", "true");
        }
        response
    }
}
