//! The runtime seam: everything `sse-io` needs from an async runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What `sse-io` needs from an async runtime: spawning, a timer, and TCP.
///
/// `sse-smol` and `sse-async-std` implement it in a few lines each; the
/// server, broadcast and client are written once against it.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A TCP connection. `Clone` gives independent read and write halves
    /// (both smol's and async-std's streams are reference-counted handles).
    type Stream: AsyncRead + AsyncWrite + Clone + Unpin + Send + Sync + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;

    /// Runs a task in the background, detached.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

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

    /// Shuts a connection down in both directions (best effort).
    fn shutdown(&self, stream: &Self::Stream);
}

/// Runs `fut` with a deadline: `None` if `duration` passes first.
pub async fn timeout<R: Runtime, T>(rt: &R, duration: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        rt.sleep(duration).await;
        None
    })
    .await
}
