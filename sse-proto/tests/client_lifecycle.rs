//! The EventSource client connection, scenario by scenario, on a fake clock:
//! nothing sleeps, time jumps to `poll_timeout()`.

use std::time::{Duration, Instant};

use sse_proto::{Backoff, Client, ClientConfig, ClientEvent, Command, ConfigError, ErrorCause, ReadyState};

const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// A client and its fake clock.
struct Harness {
    client: Client,
    now: Instant,
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        let now = Instant::now();
        Harness { client: Client::new(config, now).expect("valid config"), now }
    }

    fn url(url: &str) -> Harness {
        Harness::new(ClientConfig::new(url).expect("valid URL"))
    }

    /// The next `Connect`, skipping `Disconnect`s; panics if none is queued.
    fn connect(&mut self) -> sse_proto::ConnectRequest {
        loop {
            match self.client.poll_command() {
                Some(Command::Connect(r)) => return r,
                Some(Command::Disconnect) => continue,
                None => panic!("expected a connect request"),
            }
        }
    }

    fn commands(&mut self) -> Vec<Command> {
        std::iter::from_fn(|| self.client.poll_command()).collect()
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn messages(&mut self) -> Vec<(String, String, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Message(m) => {
                    Some((m.event_type().to_owned(), m.data().to_owned(), m.last_event_id().to_owned()))
                }
                _ => None,
            })
            .collect()
    }

    fn input(&mut self, bytes: &[u8]) {
        self.client.handle_input(bytes, self.now);
    }

    /// Jumps to the next deadline and handles it; returns how far it jumped.
    fn advance(&mut self) -> Duration {
        let at = self.client.poll_timeout().expect("a timer runs");
        assert!(at >= self.now, "deadline in the past");
        let waited = at - self.now;
        self.now = at;
        self.client.handle_timeout(at);
        waited
    }
}

fn error_cause(events: &[ClientEvent]) -> Option<(ReadyState, ErrorCause)> {
    events.iter().find_map(|e| match e {
        ClientEvent::Error { ready_state, cause } => Some((*ready_state, cause.clone())),
        _ => None,
    })
}

#[test]
fn reconnects_after_the_retry_time_with_last_event_id() {
    let mut h = Harness::url("http://example.test/s");
    let first = h.connect();
    assert_eq!(first.last_event_id(), None);
    assert!(!first.bytes().windows(13).any(|w| w == b"Last-Event-ID"));
    h.input(OK_HEAD);
    h.input("retry: 1500\nid: caf\u{e9}\ndata: one\n\ndata: cut".as_bytes());
    h.client.handle_eof(h.now);
    let events = h.events();
    assert_eq!(events[0], ClientEvent::Open);
    assert_eq!(error_cause(&events), Some((ReadyState::Connecting, ErrorCause::EndOfStream)));
    assert_eq!(h.client.ready_state(), ReadyState::Connecting);
    assert_eq!(h.advance(), Duration::from_millis(1500));
    let again = h.connect();
    assert_eq!(again.last_event_id(), Some("caf\u{e9}"));
    // UTF-8 bytes on the wire.
    let header = "Last-Event-ID: caf\u{e9}\r\n".as_bytes();
    assert!(again.bytes().windows(header.len()).any(|w| w == header));
    h.input(OK_HEAD);
    h.input(b"data: two\n\n");
    // The partial "cut" event was discarded; the id persists.
    assert_eq!(h.messages(), [("message".into(), "two".into(), "caf\u{e9}".into())]);
}

#[test]
fn backoff_grows_and_is_capped_while_attempts_fail() {
    let config = ClientConfig::new("http://example.test/")
        .unwrap()
        .reconnection_time(Duration::from_millis(100))
        .backoff(Backoff { factor: 2, max: Duration::from_millis(700), jitter: 0.0 });
    let mut h = Harness::new(config);
    let mut waits = Vec::new();
    for _ in 0..6 {
        h.connect();
        h.client.handle_error(h.now);
        waits.push(h.advance().as_millis());
    }
    assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
    // A stream that opens resets the backoff.
    h.connect();
    h.input(OK_HEAD);
    h.client.handle_eof(h.now);
    assert_eq!(h.advance().as_millis(), 100);
}

#[test]
fn jitter_shortens_delays_within_its_bound_and_is_seeded() {
    let run = |seed| {
        let config = ClientConfig::new("http://example.test/")
            .unwrap()
            .reconnection_time(Duration::from_secs(1))
            .backoff(Backoff { factor: 1, max: Duration::from_secs(1), jitter: 0.5 })
            .seed(seed);
        let mut h = Harness::new(config);
        (0..20)
            .map(|_| {
                h.connect();
                h.client.handle_error(h.now);
                h.advance()
            })
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert!(a.iter().all(|d| *d > Duration::from_millis(500) && *d <= Duration::from_secs(1)));
    assert!(a.windows(2).any(|w| w[0] != w[1]), "jitter varies");
    assert_eq!(a, run(7), "same seed, same delays");
}

#[test]
fn status_204_stops_the_client_for_good() {
    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 204 No Content\r\n\r\n");
    let events = h.events();
    assert_eq!(error_cause(&events), Some((ReadyState::Closed, ErrorCause::Status(204))));
    assert_eq!(h.commands(), [Command::Disconnect]);
    assert_eq!(h.client.poll_timeout(), None);
    h.client.handle_eof(h.now);
    assert!(h.commands().is_empty() && h.events().is_empty());
}

#[test]
fn wrong_mime_type_fails_and_parameters_are_allowed() {
    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\ndata: x\n\n");
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::ContentType(_)))));

    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=latin1\r\n\r\ndata: \xc3\xa9\n\n");
    assert_eq!(h.messages(), [("message".into(), "\u{e9}".into(), String::new())]);

    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::ContentType(None)))));
}

#[test]
fn redirect_chain_is_followed_and_reconnection_starts_over() {
    let mut h = Harness::url("http://a.test/start");
    h.connect();
    h.input(b"HTTP/1.1 301 Moved\r\nLocation: http://b.test:8080/next\r\n\r\n");
    let second = h.connect();
    assert_eq!((second.url().host(), second.url().port(), second.url().target()), ("b.test", 8080, "/next"));
    h.input(b"HTTP/1.1 307 Temporary\r\nLocation: final?x=1\r\n\r\n");
    let third = h.connect();
    assert_eq!(third.url().to_string(), "http://b.test:8080/final?x=1");
    h.input(OK_HEAD);
    h.input(b"data: hi\n\n");
    h.client.handle_eof(h.now);
    assert_eq!(h.messages().len(), 1);
    h.advance();
    // Reconnection asks the original URL again (spec: the source's URL).
    assert_eq!(h.connect().url().host(), "a.test");
}

#[test]
fn redirect_loops_and_missing_locations_fail() {
    let config = ClientConfig::new("http://a.test/").unwrap().max_redirects(3);
    let mut h = Harness::new(config);
    for _ in 0..3 {
        h.connect();
        h.input(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n");
    }
    h.connect();
    h.input(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n");
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Redirect(_)))));

    for head in [&b"HTTP/1.1 302 Found\r\n\r\n"[..], b"HTTP/1.1 308 P\r\nLocation: \r\n\r\n"] {
        let mut h = Harness::url("http://a.test/");
        h.connect();
        h.input(head);
        assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Redirect(_)))));
    }
}

#[test]
fn see_other_turns_a_post_into_a_get() {
    let config = ClientConfig::new("http://a.test/chat").unwrap().method("POST").body(&b"{\"q\":1}"[..]);
    let mut h = Harness::new(config);
    let post = h.connect();
    assert!(post.bytes().starts_with(b"POST /chat HTTP/1.1\r\n"));
    assert!(post.bytes().ends_with(b"Content-Length: 7\r\n\r\n{\"q\":1}"));
    h.input(b"HTTP/1.1 303 See Other\r\nLocation: /stream\r\n\r\n");
    let get = h.connect();
    assert!(get.bytes().starts_with(b"GET /stream HTTP/1.1\r\n"));
    assert!(!get.bytes().windows(14).any(|w| w == b"Content-Length"));
}

#[test]
fn chunked_body_split_at_every_byte() {
    let body = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
                 7\r\ndata: a\r\n3\r\n\n\ni\r\nc\r\nd: 2\ndata: b\r\n3\r\n\n\n\n\r\n0\r\n\r\n";
    let expected =
        [("message".to_owned(), "a".to_owned(), String::new()), ("message".into(), "b".into(), "2".into())];
    for split in 0..=body.len() {
        let mut h = Harness::url("http://a.test/");
        h.connect();
        h.input(&body[..split]);
        h.input(&body[split..]);
        let events = h.events();
        let messages: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Message(m) => {
                    Some((m.event_type().to_owned(), m.data().to_owned(), m.last_event_id().to_owned()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(messages, expected, "split at {split}");
        // The last chunk ends the stream: disconnect and reconnect.
        assert_eq!(
            error_cause(&events),
            Some((ReadyState::Connecting, ErrorCause::EndOfStream)),
            "split {split}"
        );
        assert_eq!(h.commands(), [Command::Disconnect]);
    }
}

#[test]
fn content_length_body_ends_the_stream() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 12\r\n\r\ndata: 1\n\ndata: 2\n\n");
    // Only the first 12 bytes are the body: "data: 1\n\ndat".
    assert_eq!(h.messages(), [("message".into(), "1".into(), String::new())]);
    assert_eq!(h.client.ready_state(), ReadyState::Connecting);
}

#[test]
fn a_body_cut_short_is_a_network_error_and_reconnects() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\ndata: 1\n\n");
    h.client.handle_eof(h.now);
    assert_eq!(error_cause(&h.events()), Some((ReadyState::Connecting, ErrorCause::Network)));
    h.advance();
    h.connect();
}

#[test]
fn read_timeout_reconnects_a_silent_stream() {
    let config = ClientConfig::new("http://a.test/").unwrap().read_timeout(Duration::from_secs(30));
    let mut h = Harness::new(config);
    h.connect();
    h.input(OK_HEAD);
    h.now += Duration::from_secs(20);
    h.input(b": keep-alive\n");
    // The deadline moved with the bytes.
    assert_eq!(h.client.poll_timeout(), Some(h.now + Duration::from_secs(30)));
    assert_eq!(h.advance(), Duration::from_secs(30));
    assert_eq!(h.commands(), [Command::Disconnect]);
    assert_eq!(error_cause(&h.events()), Some((ReadyState::Connecting, ErrorCause::ReadTimeout)));
    assert_eq!(h.advance(), ClientConfig::DEFAULT_RECONNECTION_TIME);
    h.connect();
}

#[test]
fn close_is_terminal_and_fires_no_error() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(OK_HEAD);
    h.client.close();
    assert_eq!(h.client.ready_state(), ReadyState::Closed);
    assert_eq!(h.commands(), [Command::Disconnect]);
    assert_eq!(h.events(), [ClientEvent::Open]);
    h.input(b"data: late\n\n");
    h.client.handle_eof(h.now);
    h.client.handle_timeout(h.now + Duration::from_secs(3600));
    assert!(h.events().is_empty() && h.commands().is_empty());
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn oversized_events_fail_the_stream() {
    let config = ClientConfig::new("http://a.test/")
        .unwrap()
        .decoder(sse_proto::DecoderConfig::default().max_line_len(16));
    let mut h = Harness::new(config);
    h.connect();
    h.input(OK_HEAD);
    h.input(b"data: 0123456789abcdef0123\n\n");
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Decode(_)))));
}

#[test]
fn requests_carry_the_configured_headers_and_resume_id() {
    let config = ClientConfig::new("http://a.test:81/x?y=1")
        .unwrap()
        .header("Authorization", "Bearer t")
        .last_event_id("41");
    let mut h = Harness::new(config);
    let r = h.connect();
    let text = std::str::from_utf8(r.bytes()).unwrap();
    assert_eq!(
        text,
        "GET /x?y=1 HTTP/1.1\r\nHost: a.test:81\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\
         Last-Event-ID: 41\r\nAuthorization: Bearer t\r\n\r\n"
    );
}

#[test]
fn invalid_configurations_are_refused() {
    let now = Instant::now();
    let bad_header = ClientConfig::new("http://a.test/").unwrap().header("X-A", "1\r\nInjected: yes");
    assert!(matches!(Client::new(bad_header, now), Err(ConfigError::InvalidHeader { .. })));
    let bad_method = ClientConfig::new("http://a.test/").unwrap().method("GET /x");
    assert!(matches!(Client::new(bad_method, now), Err(ConfigError::InvalidMethod)));
    assert!(matches!(ClientConfig::new("ws://a.test/"), Err(ConfigError::Url(_))));
}

#[test]
fn malformed_responses_fail() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(b"HTTP/1.1 2OO OK\r\n\r\n");
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Http(_)))));
    let config = ClientConfig::new("http://a.test/").unwrap().max_head_len(64);
    let mut h = Harness::new(config);
    h.connect();
    h.input(OK_HEAD);
    // The 200 head fits; a second client with an endless head does not.
    let mut h2 = Harness::new(ClientConfig::new("http://a.test/").unwrap().max_head_len(64));
    h2.connect();
    h2.input(&[b'X'; 100]);
    assert!(matches!(error_cause(&h2.events()), Some((ReadyState::Closed, ErrorCause::Http(_)))));
    assert_eq!(h.events(), [ClientEvent::Open]);
}

#[test]
fn connection_errors_before_a_response_reconnect() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.client.handle_error(h.now);
    assert_eq!(error_cause(&h.events()), Some((ReadyState::Connecting, ErrorCause::Network)));
    assert_eq!(h.advance(), ClientConfig::DEFAULT_RECONNECTION_TIME);
    h.connect();
    // Stale reports about the old connection change nothing.
    h.client.handle_error(h.now);
    assert_eq!(h.client.ready_state(), ReadyState::Connecting);
}
