//! Server-Sent Events on [async-std](https://docs.rs/async-std): [`sse_io`]
//! bound to the async-std runtime. Everything in `sse-io` is re-exported;
//! [`AsyncStd`] is the runtime to pass to it.
//!
//! ```no_run
//! use sse_async_std::{AsyncStd, Event, Router, Server};
//!
//! async_std::task::block_on(async {
//!     let router = Router::new().sse("/events", |_req, sse| async move {
//!         let _ = sse.send(Event::new("hello").event("greeting")).await;
//!         sse.closed().await;
//!     });
//!     let addr = "127.0.0.1:8080".parse().expect("a socket address");
//!     Server::new(AsyncStd, router).bind(addr).await?.run().await
//! })
//! # .unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

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

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(duration))
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

    fn shutdown(&self, stream: &Self::Stream) {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}
