//! The runtime seam: everything `sse-io` needs from an async runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What `sse-io` needs from an async runtime: spawning, a clock and timers,
/// and TCP.
///
/// `sse-smol` and `sse-async-std` implement it in a few lines each; the
/// server, broadcast and client are written once against it. Every reading
/// of time in `sse-io` goes through [`now`](Self::now) and every wait through
/// [`sleep_until`](Self::sleep_until), so a runtime with a fake clock tests
/// keep-alives, timeouts and shutdown deadlines without sleeping.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A TCP connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;

    /// Runs a task in the background, detached.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// Marks the task that calls it as background work: a runtime that has
    /// priorities may run other tasks first. The server calls it when a
    /// connection starts streaming, so that requests (a publish, a health
    /// check, a new client's head) are not queued behind a fan-out to
    /// thousands of streams; a publisher that runs ahead of the fan-out also
    /// lets each stream write several events at once. The default does
    /// nothing.
    fn background(&self) {}

    /// The current instant.
    fn now(&self) -> Instant;

    /// Completes at `deadline` (at once if it passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleep_until(self.now() + duration)
    }

    /// Binds a listener.
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>>;

    /// The address a listener is bound to.
    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Accepts the next connection.
    fn accept<'a>(
        &self,
        listener: &'a Self::Listener,
    ) -> BoxFuture<'a, io::Result<(Self::Stream, SocketAddr)>>;

    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Stream>>;

    /// Resolves `host` (a name, not an IP literal) to the addresses of
    /// `port`, without blocking the executor.
    ///
    /// The default runs the system resolver, which blocks, on a thread of
    /// its own: a slow or hung resolver holds neither a task nor an executor
    /// thread, and the caller bounds the wait with [`timeout`] (the
    /// `EventSource` does). A runtime with a resolver or a blocking pool of
    /// its own may override it.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        resolve_on_thread(host.to_owned(), port)
    }
}

/// The system resolver on a short-lived thread; the future completes with
/// its answer (or never, if the resolver hangs: callers time it out).
fn resolve_on_thread(host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
    use std::net::ToSocketAddrs;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    type Slot = Mutex<(Option<io::Result<Vec<SocketAddr>>>, Option<Waker>)>;
    let slot: Arc<Slot> = Arc::default();
    let answer = slot.clone();
    let spawned = std::thread::Builder::new().name("sse-io-resolve".into()).spawn(move || {
        let result = (host.as_str(), port).to_socket_addrs().map(Iterator::collect);
        let mut slot = answer.lock().unwrap_or_else(|e| e.into_inner());
        slot.0 = Some(result);
        if let Some(waker) = slot.1.take() {
            waker.wake();
        }
    });
    if let Err(e) = spawned {
        return Box::pin(async move { Err(e) });
    }
    Box::pin(futures_lite::future::poll_fn(move |cx| {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }))
}

/// Runs `fut` with a deadline: `None` if `duration` passes first.
pub async fn timeout<R: Runtime, T>(rt: &R, duration: Duration, fut: impl Future<Output = T>) -> Option<T> {
    timeout_at(rt, rt.now() + duration, fut).await
}

/// Runs `fut` until `deadline`: `None` if the deadline comes first.
pub async fn timeout_at<R: Runtime, T>(rt: &R, deadline: Instant, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        rt.sleep_until(deadline).await;
        None
    })
    .await
}
