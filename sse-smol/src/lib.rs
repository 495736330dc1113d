//! Server-Sent Events on [smol](https://docs.rs/smol): [`sse_io`] bound to
//! the smol runtime. Everything in `sse-io` is re-exported; [`Smol`] is the
//! runtime to pass to it, and [`serve`] runs a router in one call.
//!
//! ```no_run
//! use std::time::Duration;
//! use sse_smol::{Ctx, Event, Router};
//!
//! let router = Router::new().get("/events", |ctx: Ctx| async move {
//!     let sse = ctx.sse();
//!     for n in 0u64.. {
//!         sse.send(Event::new(n.to_string()).event("tick").id(n)).await?;
//!         smol::Timer::after(Duration::from_secs(1)).await;
//!     }
//!     Ok::<(), sse_smol::SendError>(())
//! });
//! smol::block_on(sse_smol::serve("127.0.0.1:8080", router))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Connections run on one executor thread per available core, each
//! connection staying on the thread it was given (set `SMOL_THREADS` to
//! choose another number of threads); the future given to `smol::block_on`
//! (the accept loop) runs on the calling thread. Each thread runs requests
//! before streams' deliveries, so that a publish, a health check or a new
//! client is not queued behind a fan-out to thousands of streams.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

pub use sse_io::*;

mod executor;

/// The smol runtime: tasks on an executor thread per core,
/// `smol::Timer`, `smol::net` TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Stream = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        executor::spawn(task);
    }

    fn background(&self) {
        executor::background();
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::Listener>> {
        Box::pin(smol::net::TcpListener::bind(addr))
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
        Box::pin(smol::net::TcpStream::connect(addr))
    }
}

/// Serves `router` on `addr` with the default limits until the process
/// ends. For limits, shutdown or the bound address, use
/// [`Server::builder`] with [`Smol`].
///
/// # Errors
///
/// A router mistake ([`RouterError`], as `InvalidInput`), an address that
/// does not resolve, or the bind error.
pub async fn serve<S: Send + Sync + 'static>(addr: impl ToSocketAddrs, router: Router<S>) -> io::Result<()> {
    sse_io::serve(Smol, addr, router).await
}
