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
