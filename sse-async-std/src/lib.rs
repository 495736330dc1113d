//! Server-Sent Events on [async-std](https://docs.rs/async-std): [`sse_io`]
//! bound to the async-std runtime. Everything in `sse-io` is re-exported;
//! [`AsyncStd`] is the runtime to pass to it, and [`serve`] runs a router in
//! one call.
//!
//! ```no_run
//! use sse_async_std::{Ctx, Event, Router};
//!
//! let router = Router::new().get("/events", |ctx: Ctx| async move {
//!     let sse = ctx.sse();
//!     sse.send(Event::new("hello").event("greeting")).await
//! });
//! async_std::task::block_on(sse_async_std::serve("127.0.0.1:8080", router))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! async-std's executor already runs a thread per core (`ASYNC_STD_THREAD_COUNT`
//! chooses another number).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

pub use sse_io::*;

/// The async-std runtime: `async_std::task`, its timer and `async_std::net`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    type Stream = async_std::net::TcpStream;
    type Listener = async_std::net::TcpListener;

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(task));
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(deadline.saturating_duration_since(Instant::now())))
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        Box::pin(async_std::net::TcpListener::bind(addr))
    }

    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept<'a>(
        &self,
        listener: &'a Self::Listener,
    ) -> BoxFuture<'a, io::Result<(Self::Stream, SocketAddr)>> {
        Box::pin(listener.accept())
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Stream>> {
        Box::pin(async_std::net::TcpStream::connect(addr))
    }
}

/// Serves `router` on `addr` with the default limits until the process
/// ends. For limits, shutdown or the bound address, use
/// [`Server::builder`] with [`AsyncStd`].
///
/// # Errors
///
/// A router mistake ([`RouterError`], as `InvalidInput`), an address that
/// does not resolve, or the bind error.
pub async fn serve<S: Send + Sync + 'static>(addr: impl ToSocketAddrs, router: Router<S>) -> io::Result<()> {
    sse_io::serve(AsyncStd, addr, router).await
}
