//! Arbitrary sequences of inputs and time steps drive the EventSource client:
//! it never panics, CLOSED is terminal, and its deadlines are never in the
//! past once it has handled the present. Comments are reported, restarts
//! and connection failures (fatal or not) come at any point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{Backoff, Client, ClientConfig, Command, ConnectError, ReadyState};
use std::time::{Duration, Instant};

#[derive(Debug, arbitrary::Arbitrary)]
enum Op {
    Input(Vec<u8>),
    OkHead,
    Redirect(bool),
    Eof,
    Error,
    Advance(u16),
    AdvanceToTimeout,
    Close,
    Restart,
    ConnectFailed(bool),
    ErrorHead,
}

fuzz_target!(|input: (bool, u64, Vec<Op>)| {
    let (backoff, seed, ops) = input;
    let mut config = ClientConfig::new("http://127.0.0.1:8080/s")
        .expect("valid URL")
        .seed(seed)
        .read_timeout(Duration::from_millis(700))
        .max_redirects(3)
        .comments(seed & 2 == 0)
        .max_error_body(64)
        .decoder(sse_proto::DecoderConfig::default().max_line_len(256).max_data_len(1024));
    if backoff {
        config = config.backoff(Backoff::default());
    }
    let mut now = Instant::now();
    let mut client = Client::new(config, now).expect("valid config");
    let mut closed = false;
    for op in ops {
        match op {
            Op::Input(bytes) => client.handle_input(&bytes, now),
            Op::OkHead => {
                client.handle_input(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", now)
            }
            Op::Redirect(good) => {
                let head: &[u8] =
                    if good { b"HTTP/1.1 307 T\r\nLocation: /x\r\n\r\n" } else { b"HTTP/1.1 302 F\r\n\r\n" };
                client.handle_input(head, now);
            }
            Op::Eof => client.handle_eof(now),
            Op::Error => client.handle_error(now),
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                client.handle_timeout(now);
            }
            Op::AdvanceToTimeout => {
                if let Some(at) = client.poll_timeout() {
                    now = now.max(at);
                    client.handle_timeout(now);
                }
            }
            Op::Close => client.close(),
            Op::Restart => client.restart(now),
            Op::ConnectFailed(tls) => {
                let error = if tls {
                    ConnectError::Tls { reason: "bad certificate".into() }
                } else {
                    ConnectError::Connect { reason: "refused".into() }
                };
                client.handle_connect_error(error, now);
            }
            Op::ErrorHead => client.handle_input(b"HTTP/1.1 500 E\r\nContent-Length: 5\r\n\r\nno", now),
        }
        while let Some(cmd) = client.poll_command() {
            if let Command::Connect(req) = cmd {
                assert!(!closed, "a closed client connected");
                assert!(req.bytes().starts_with(b"GET "));
            }
        }
        while client.poll_event().is_some() {}
        if closed {
            assert_eq!(client.ready_state(), ReadyState::Closed, "CLOSED is terminal");
        }
        closed = client.ready_state() == ReadyState::Closed;
        if let Some(at) = client.poll_timeout() {
            // Handling `now` fired everything due by then.
            assert!(at > now || matches!(client.ready_state(), ReadyState::Closed), "deadline in the past");
        }
        if closed {
            assert_eq!(client.poll_timeout(), None);
        }
    }
});
