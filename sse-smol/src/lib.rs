//! Server-Sent Events on [smol](https://docs.rs/smol): [`sse_io`] bound to
//! the smol runtime. Everything in `sse-io` is re-exported; [`Smol`] is the
//! runtime to pass to it.
//!
//! ```no_run
//! use std::time::Duration;
//! use sse_smol::{Event, Router, Server, Smol};
//!
//! smol::block_on(async {
//!     let router = Router::new().sse("/events", |_req, sse| async move {
//!         let mut n = 0u64;
//!         while sse.send(Event::new(n.to_string()).event("tick")).await.is_ok() {
//!             n += 1;
//!             smol::Timer::after(Duration::from_secs(1)).await;
//!         }
//!     });
//!     let addr = "127.0.0.1:8080".parse().expect("a socket address");
//!     let server = Server::new(Smol, router).bind(addr).await?;
//!     server.run().await
//! })
//! # .unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use sse_io::*;

/// The smol runtime: tasks on smol's global executor, `smol::Timer`,
/// `smol::net` TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Stream = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
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

    fn shutdown(&self, stream: &Self::Stream) {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}
