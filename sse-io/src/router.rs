//! Routing: paths with parameters (through `matchit`), methods, shared
//! state, per-route stream settings, and the context a handler gets.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use sse_proto::{Request, ServerConfig};

use crate::cors::Cors;
use crate::metrics::Metrics;
use crate::response::{IntoResponse, Response};
use crate::runtime::BoxFuture;
use crate::stream::{Sse, StreamShared};

/// How an event stream of a route behaves: keep-alive interval (default
/// 15 s, or off), a `retry` hint sent first, extra headers.
///
/// ```
/// use std::time::Duration;
/// let config = sse_io::StreamConfig::default()
///     .keep_alive(Some(Duration::from_secs(10)))
///     .retry(Duration::from_secs(2))
///     .header("X-Stream", "ticks");
/// # let _ = config;
/// ```
pub use sse_proto::ServerConfig as StreamConfig;

/// What a handler is called with: the request, its path parameters and
/// body, the application state, and the way to start an event stream.
///
/// A handler decides, then streams: it may answer any [`Response`] (401 to a
/// missing token, 404 to an unknown topic, 204 to stop an `EventSource` for
/// good), or call [`sse`](Self::sse) and stream until it returns.
pub struct Ctx<S = ()> {
    parts: Parts,
    state: Arc<S>,
}

/// The request side of an exchange, without the state.
pub(crate) struct Parts {
    pub(crate) request: Request,
    pub(crate) params: Vec<(Box<str>, Box<str>)>,
    pub(crate) body: Bytes,
    pub(crate) stream: Arc<StreamShared>,
    pub(crate) metrics: Arc<Metrics>,
}

impl<S> fmt::Debug for Ctx<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("request", &self.parts.request)
            .field("params", &self.parts.params)
            .field("body_len", &self.parts.body.len())
            .finish()
    }
}

impl<S> Ctx<S> {
    /// The request head.
    pub fn request(&self) -> &Request {
        &self.parts.request
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.parts.request.method()
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.parts.request.path()
    }

    /// A path parameter of the route (`/events/{topic}` → `param("topic")`),
    /// percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.parts.params.iter().find(|(n, _)| &**n == name).map(|(_, v)| &**v)
    }

    /// A query parameter, percent-decoded (`+` as space), first occurrence.
    pub fn query(&self, name: &str) -> Option<String> {
        self.parts.request.query_param(name)
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.request.header(name)
    }

    /// The id the client resumes after: the `Last-Event-ID` header, or for
    /// clients that cannot set headers, the `lastEventId` query parameter.
    pub fn last_event_id(&self) -> Option<&str> {
        self.parts.request.last_event_id()
    }

    /// The request body, read whole (within the server's body limit) before
    /// the handler runs; empty for requests without one.
    pub fn body(&self) -> &Bytes {
        &self.parts.body
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// A `400` response saying the body is not UTF-8.
    pub fn body_text(&self) -> Result<&str, Response> {
        std::str::from_utf8(&self.parts.body)
            .map_err(|_| Response::new(400).text("the request body must be UTF-8 text\n"))
    }

    /// The application state given to [`Router::with_state`].
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state, shared (to move into another task).
    pub fn state_arc(&self) -> Arc<S> {
        self.state.clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.parts.metrics
    }

    /// Turns the exchange into an event stream: the response head goes out
    /// now, and the handler streams through the returned [`Sse`] until it
    /// returns (or the client leaves). Calling it again returns another
    /// handle to the same stream.
    pub fn sse(&self) -> Sse {
        self.parts.stream.start()
    }
}

/// A handler after type erasure: what the connection driver calls.
pub(crate) type ErasedHandler = Arc<dyn Fn(Parts) -> BoxFuture<'static, Response> + Send + Sync>;

/// The methods of one path, and its stream settings.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) methods: Vec<(Box<str>, ErasedHandler)>,
    pub(crate) config: Option<Arc<ServerConfig>>,
}

impl Endpoint {
    /// The methods it answers, for `Allow`: `HEAD` with `GET`, and `OPTIONS`.
    pub(crate) fn allow(&self) -> String {
        let mut allow: Vec<&str> = self.methods.iter().map(|(m, _)| &**m).collect();
        if allow.contains(&"GET") && !allow.contains(&"HEAD") {
            allow.push("HEAD");
        }
        if !allow.contains(&"OPTIONS") {
            allow.push("OPTIONS");
        }
        allow.join(", ")
    }

    pub(crate) fn find(&self, method: &str) -> Option<&ErasedHandler> {
        let found = self.methods.iter().find(|(m, _)| &**m == method);
        // HEAD is GET without the body (RFC 9110 §9.3.2).
        let found = found.or_else(|| {
            (method == "HEAD").then(|| self.methods.iter().find(|(m, _)| &**m == "GET")).flatten()
        });
        found.map(|(_, h)| h)
    }
}

/// Why a router cannot be built: reported by
/// [`ServerBuilder::build`](crate::ServerBuilder::build), before any request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterError {
    /// A path the router cannot take (bad syntax, or a conflict with
    /// another route).
    Path {
        /// The path.
        path: String,
        /// The router's reason.
        reason: String,
    },
    /// The same method twice on one path.
    DuplicateRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// A method that is not an HTTP token.
    InvalidMethod {
        /// The method.
        method: String,
    },
    /// Stream settings that cannot be sent (an invalid extra header).
    StreamConfig {
        /// The path (`*` for the router's default).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A CORS policy that cannot be honoured.
    Cors {
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::Path { path, reason } => write!(f, "invalid route {path:?}: {reason}"),
            RouterError::DuplicateRoute { method, path } => write!(f, "{method} {path} is routed twice"),
            RouterError::InvalidMethod { method } => write!(f, "{method:?} is not an HTTP method"),
            RouterError::StreamConfig { path, reason } => {
                write!(f, "invalid stream settings for {path}: {reason}")
            }
            RouterError::Cors { reason } => write!(f, "invalid CORS policy: {reason}"),
        }
    }
}

impl std::error::Error for RouterError {}

/// For `main` functions that return `io::Result`: an `InvalidInput` error.
impl From<RouterError> for std::io::Error {
    fn from(e: RouterError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Routes requests by path (with parameters) and method to handlers.
///
/// Paths use `matchit`'s syntax: `/events/{topic}` binds a segment,
/// `/files/{*rest}` the remainder. A path with some methods answers the
/// others with `405` and `Allow`; `HEAD` is served by the `GET` handler
/// without a body; `OPTIONS` is answered from the route table (and as a CORS
/// preflight when a [`Cors`] policy is set). Mistakes (bad paths, the same
/// route twice, invalid stream settings) are reported when the server is
/// built, not per request.
///
/// ```
/// use sse_io::{Ctx, Event, Response, Router};
///
/// struct App { token: String }
///
/// let router = Router::with_state(App { token: "s3cret".into() })
///     .get("/events/{topic}", |ctx: Ctx<App>| async move {
///         if ctx.query("access_token").as_deref() != Some(ctx.state().token.as_str()) {
///             return Err(Response::new(401).header("WWW-Authenticate", "Bearer"));
///         }
///         let topic = ctx.param("topic").unwrap_or_default().to_owned();
///         let sse = ctx.sse();
///         sse.send(Event::new(topic).event("hello")).await?;
///         Ok(())
///     });
/// # let _ = router;
/// ```
pub struct Router<S = ()> {
    state: Arc<S>,
    table: RouteTable,
}

/// A router with its state erased: what the server runs.
#[derive(Clone, Default)]
pub(crate) struct RouteTable {
    pub(crate) paths: Vec<(String, Endpoint)>,
    pub(crate) default_config: Arc<ServerConfig>,
    pub(crate) cors: Option<Arc<Cors>>,
    pub(crate) errors: Vec<RouterError>,
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .table
            .paths
            .iter()
            .flat_map(|(p, e)| e.methods.iter().map(move |(m, _)| format!("{m} {p}")))
            .collect();
        f.debug_struct("Router").field("routes", &routes).finish()
    }
}

impl Default for Router<()> {
    fn default() -> Self {
        Router::new()
    }
}

impl Router<()> {
    /// A router without state.
    pub fn new() -> Self {
        Router::with_state(())
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// A router whose handlers share `state` (`ctx.state()`), without
    /// cloning it per request.
    pub fn with_state(state: S) -> Self {
        Router { state: Arc::new(state), table: RouteTable::default() }
    }

    /// A `GET` route (which also answers `HEAD`). Event streams are `GET`
    /// routes whose handler calls `ctx.sse()`.
    pub fn get<F, Fut, T>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Ctx<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: IntoResponse,
    {
        self.route("GET", path, handler)
    }

    /// A `POST` route; `ctx.body()` holds the body.
    pub fn post<F, Fut, T>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Ctx<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: IntoResponse,
    {
        self.route("POST", path, handler)
    }

    /// A route for any method.
    pub fn route<F, Fut, T>(mut self, method: &str, path: &str, handler: F) -> Self
    where
        F: Fn(Ctx<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: IntoResponse,
    {
        if !is_token(method) {
            self.table.errors.push(RouterError::InvalidMethod { method: method.into() });
            return self;
        }
        let state = self.state.clone();
        let erased: ErasedHandler = Arc::new(move |parts: Parts| {
            let fut = handler(Ctx { parts, state: state.clone() });
            Box::pin(async move { fut.await.into_response() })
        });
        let endpoint = self.endpoint(path);
        if endpoint.methods.iter().any(|(m, _)| &**m == method) {
            let error = RouterError::DuplicateRoute { method: method.into(), path: path.into() };
            self.table.errors.push(error);
            return self;
        }
        endpoint.methods.push((method.into(), erased));
        self
    }

    fn endpoint(&mut self, path: &str) -> &mut Endpoint {
        let index = match self.table.paths.iter().position(|(p, _)| p == path) {
            Some(i) => i,
            None => {
                self.table.paths.push((path.to_owned(), Endpoint { methods: Vec::new(), config: None }));
                self.table.paths.len() - 1
            }
        };
        &mut self.table.paths[index].1
    }

    /// Stream settings for every route without its own.
    pub fn stream_config(mut self, config: StreamConfig) -> Self {
        if let Err(e) = config.validate() {
            self.table.errors.push(RouterError::StreamConfig { path: "*".into(), reason: e.to_string() });
        }
        self.table.default_config = Arc::new(config);
        self
    }

    /// Stream settings for the streams of one path (any method there).
    pub fn route_stream_config(mut self, path: &str, config: StreamConfig) -> Self {
        if let Err(e) = config.validate() {
            self.table.errors.push(RouterError::StreamConfig { path: path.into(), reason: e.to_string() });
        }
        self.endpoint(path).config = Some(Arc::new(config));
        self
    }

    /// A CORS policy for every route: grants on responses and streams to
    /// the allowed origins, and preflight answers.
    pub fn cors(mut self, cors: Cors) -> Self {
        if let Err(reason) = cors.validate() {
            self.table.errors.push(RouterError::Cors { reason });
        }
        self.table.cors = Some(Arc::new(cors));
        self
    }

    /// `GET /health` (`ok`) and `GET /metrics` (the server's counters in
    /// Prometheus text), the two routes every deployment wants.
    pub fn observability(self) -> Self {
        self.get("/health", |_ctx: Ctx<S>| async { Response::ok_text("ok\n") }).get(
            "/metrics",
            |ctx: Ctx<S>| {
                let body = ctx.metrics().render();
                async move { Response::new(200).with_body("text/plain; version=0.0.4", body) }
            },
        )
    }

    pub(crate) fn into_table(self) -> RouteTable {
        self.table
    }
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2).
fn is_token(s: &str) -> bool {
    sse_proto::validate_header(s, "").is_ok()
}

/// A route table ready to match, built once.
pub(crate) struct Routes {
    matcher: matchit::Router<usize>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) default_config: Arc<ServerConfig>,
    pub(crate) cors: Option<Arc<Cors>>,
}

/// What a request's path matched.
pub(crate) struct Matched<'a> {
    pub(crate) endpoint: &'a Endpoint,
    pub(crate) params: Vec<(Box<str>, Box<str>)>,
}

impl Routes {
    pub(crate) fn build(table: RouteTable) -> Result<Routes, RouterError> {
        if let Some(e) = table.errors.into_iter().next() {
            return Err(e);
        }
        let mut matcher = matchit::Router::new();
        let mut endpoints = Vec::with_capacity(table.paths.len());
        for (path, endpoint) in table.paths {
            if let Err(e) = matcher.insert(path.as_str(), endpoints.len()) {
                return Err(RouterError::Path { path, reason: e.to_string() });
            }
            endpoints.push(endpoint);
        }
        Ok(Routes { matcher, endpoints, default_config: table.default_config, cors: table.cors })
    }

    /// The endpoint of a path, with its parameters percent-decoded.
    pub(crate) fn find(&self, path: &str) -> Option<Matched<'_>> {
        let matched = self.matcher.at(path).ok()?;
        let params = matched
            .params
            .iter()
            .map(|(k, v)| (k.into(), sse_proto::percent_decode_path(v).into()))
            .collect();
        Some(Matched { endpoint: &self.endpoints[*matched.value], params })
    }

    /// The stream settings of an endpoint.
    pub(crate) fn config_of(&self, endpoint: &Endpoint) -> Arc<ServerConfig> {
        endpoint.config.clone().unwrap_or_else(|| self.default_config.clone())
    }
}

pub(crate) fn parts(
    request: Request,
    params: Vec<(Box<str>, Box<str>)>,
    body: Bytes,
    stream: Arc<StreamShared>,
    metrics: Arc<Metrics>,
) -> Parts {
    Parts { request, params, body, stream, metrics }
}
