//! A whole connection of arbitrary bytes through the server's driver:
//! requests (pipelined, chunked, refused...), then the end of input. The
//! driver never panics, always finishes, and writes only whole responses,
//! nothing after one that closes the connection.
#![no_main]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use libfuzzer_sys::fuzz_target;
use sse_io::proto::ResponseHead;
use sse_io::{BoxFuture, Cors, Ctx, Event, Response, Router, Runtime, Server, StreamConfig};

/// A runtime whose clock stands still: no timer ever fires, so the input
/// alone decides what happens.
#[derive(Clone)]
struct Still(Instant);

impl Runtime for Still {
    type Stream = Conn;
    type Listener = ();

    fn spawn(&self, _task: BoxFuture<'static, ()>) {
        unreachable!("serving one connection spawns nothing")
    }
    fn now(&self) -> Instant {
        self.0
    }
    fn sleep_until(&self, _deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(futures_lite::future::pending())
    }
    fn bind(&self, _addr: SocketAddr) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async { Err(io::ErrorKind::Unsupported.into()) })
    }
    fn local_addr(&self, _listener: &()) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn accept<'a>(&self, _listener: &'a ()) -> BoxFuture<'a, io::Result<(Conn, SocketAddr)>> {
        Box::pin(async { Err(io::ErrorKind::Unsupported.into()) })
    }
    fn connect(&self, _addr: SocketAddr) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async { Err(io::ErrorKind::Unsupported.into()) })
    }
}

/// The client side: the input in pieces of varying size, then the end;
/// everything written is kept.
struct Conn {
    input: Vec<u8>,
    at: usize,
    piece: usize,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = self.piece.min(buf.len()).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        self.piece = self.piece % 97 + 1;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.output.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn server() -> Server<Still> {
    let router = Router::new()
        .get("/s", |ctx: Ctx| async move {
            let sse = ctx.sse();
            sse.send(Event::new("a\nb").id(1u64)).await?;
            sse.comment("c").await
        })
        .get("/p/{x}", |ctx: Ctx| async move { Response::ok_text(ctx.param("x").unwrap_or("").to_owned()) })
        .post("/echo", |ctx: Ctx| async move { Response::ok_text(ctx.body().clone()) })
        .stream_config(StreamConfig::default().retry(Duration::from_secs(1)))
        .cors(Cors::new().allow_origin("https://a.example"));
    Server::builder(Still(Instant::now()))
        .router(router)
        .max_head_len(1024)
        .max_body_len(256)
        .build()
        .expect("a valid router")
}

fuzz_target!(|data: &[u8]| {
    let (piece, input) = match data.split_first() {
        Some((&p, rest)) => (usize::from(p % 64) + 1, rest.to_vec()),
        None => return,
    };
    let output = std::sync::Arc::default();
    let conn = Conn { input, at: 0, piece, output: std::sync::Arc::clone(&output) };
    futures_lite::future::block_on(server().serve_connection(conn));
    let out = output.lock().unwrap();
    // Every answer is a whole HTTP/1.1 response head; after one that says
    // `Connection: close` nothing follows but its body.
    let mut rest: &[u8] = &out;
    while !rest.is_empty() {
        let head = ResponseHead::parse(rest, 64 * 1024)
            .expect("a valid response head")
            .expect("a complete response head");
        let text = String::from_utf8_lossy(&rest[..head.head_len]).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 "), "{text}");
        if head.status == 100 {
            rest = &rest[head.head_len..];
            continue;
        }
        match head.framing {
            sse_io::proto::BodyFraming::Length(n) if !text.contains("connection: close") => {
                // A kept-alive answer: the next one follows its body, or
                // its head when it answered a HEAD.
                let after_body = &rest[(head.head_len + n as usize).min(rest.len())..];
                let after_head = &rest[head.head_len..];
                rest = if after_body.is_empty() || after_body.starts_with(b"HTTP/1.1 ") {
                    after_body
                } else {
                    assert!(after_head.starts_with(b"HTTP/1.1 "), "bytes after a response: {after_head:?}");
                    after_head
                };
            }
            _ => break,
        }
    }
});
