//! The EventSource client connection, scenario by scenario, on a fake clock:
//! nothing sleeps, time jumps to `poll_timeout()`.

use std::time::{Duration, Instant};

use sse_proto::{
    Backoff, Client, ClientConfig, ClientEvent, Command, ConfigError, ConnectError, DecoderConfig,
    ErrorCause, ReadyState,
};

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
    assert_eq!(events.last(), Some(&ClientEvent::Ended { reconnect_in: Duration::from_millis(1500) }));
    assert_eq!(error_cause(&events), None, "a clean end is not an error");
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
    assert_eq!(
        error_cause(&events),
        Some((
            ReadyState::Closed,
            ErrorCause::Status { status: 204, content_type: None, body: String::new() }
        ))
    );
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
    h.client.handle_eof(h.now);
    assert_eq!(
        error_cause(&h.events()),
        Some((
            ReadyState::Closed,
            ErrorCause::ContentType { content_type: Some("text/plain".into()), body: "data: x\n\n".into() }
        ))
    );

    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=latin1\r\n\r\ndata: \xc3\xa9\n\n");
    assert_eq!(h.messages(), [("message".into(), "\u{e9}".into(), String::new())]);

    let mut h = Harness::url("http://example.test/");
    h.connect();
    h.input(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(
        error_cause(&h.events()),
        Some((ReadyState::Closed, ErrorCause::ContentType { content_type: None, .. }))
    ));
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
        assert!(matches!(events.last(), Some(ClientEvent::Ended { .. })), "split {split}");
        assert_eq!(error_cause(&events), None, "split {split}");
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

#[test]
fn the_clean_end_of_a_stream_is_not_an_error() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(OK_HEAD);
    h.input(b"data: last\n\n");
    h.client.handle_eof(h.now);
    let events = h.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(&events[1], ClientEvent::Message(m) if m.data() == "last"));
    assert_eq!(events[2], ClientEvent::Ended { reconnect_in: ClientConfig::DEFAULT_RECONNECTION_TIME });
    assert_eq!(h.client.ready_state(), ReadyState::Connecting);
    assert_eq!(h.advance(), ClientConfig::DEFAULT_RECONNECTION_TIME);
    h.connect();
}

#[test]
fn an_event_named_error_is_an_ordinary_message() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(OK_HEAD);
    h.input(b"event: error\ndata: {\"code\":\"overloaded\"}\n\ndata: after\n\n");
    assert_eq!(
        h.messages(),
        [
            ("error".into(), "{\"code\":\"overloaded\"}".into(), String::new()),
            ("message".into(), "after".into(), String::new())
        ]
    );
    assert_eq!(h.client.ready_state(), ReadyState::Open);
}

#[test]
fn comments_are_reported_in_stream_order_when_asked_for() {
    let stream: &[u8] = b"\xEF\xBB\xBF:first\r\ndata: a\r\n\r\n: second\rdata: b\n:\n\n:third";
    let expected = ["C:first", "M:a", "C:second", "C:", "M:b"];
    // Whole, and split at every point (a CRLF and the BOM cut in two).
    for split in 0..=stream.len() {
        let mut h = Harness::new(ClientConfig::new("http://a.test/").unwrap().comments(true));
        h.connect();
        h.input(OK_HEAD);
        h.input(&stream[..split]);
        h.input(&stream[split..]);
        let seen: Vec<String> = h
            .events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Comment(c) => Some(format!("C:{c}")),
                ClientEvent::Message(m) => Some(format!("M:{}", m.data())),
                _ => None,
            })
            .collect();
        // ":third" has no line end yet: not reported.
        assert_eq!(seen, expected, "split at {split}");
    }
    // Not asked for: none (as in browsers).
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(OK_HEAD);
    h.input(b":hello\ndata: x\n\n");
    assert!(!h.events().iter().any(|e| matches!(e, ClientEvent::Comment(_))));
}

#[test]
fn a_comment_after_a_cut_bom_is_text_not_a_comment() {
    let mut h = Harness::new(ClientConfig::new("http://a.test/").unwrap().comments(true));
    h.connect();
    h.input(OK_HEAD);
    h.input(b"\xEF\xBB:not a comment\n:yes\n");
    let comments: Vec<_> = h.events().into_iter().filter(|e| matches!(e, ClientEvent::Comment(_))).collect();
    assert_eq!(comments, [ClientEvent::Comment("yes".into())]);
}

#[test]
fn restart_reconnects_now_with_the_last_event_id() {
    let mut h = Harness::url("http://a.test/s");
    h.connect();
    h.input(OK_HEAD);
    h.input(b"id: 7\ndata: seen\n\nid: 8\ndata: half");
    h.events();
    h.client.restart(h.now);
    assert_eq!(h.client.ready_state(), ReadyState::Connecting);
    let commands = h.commands();
    assert_eq!(commands[0], Command::Disconnect);
    let Command::Connect(again) = &commands[1] else { panic!("connects at once: {commands:?}") };
    assert_eq!(again.last_event_id(), Some("7"), "the unfinished event's id is discarded");
    assert!(h.events().is_empty(), "a restart fires no event of its own");
    // Bytes of the old connection no longer count.
    h.input(OK_HEAD);
    h.input(b"data: new\n\n");
    assert_eq!(h.messages(), [("message".into(), "new".into(), "7".into())]);
}

#[test]
fn restart_while_waiting_skips_the_wait_and_close_stays_final() {
    let config = ClientConfig::new("http://a.test/").unwrap().reconnection_time(Duration::from_secs(60));
    let mut h = Harness::new(config);
    h.connect();
    h.client.handle_error(h.now);
    h.events();
    assert!(h.client.poll_timeout().is_some());
    h.client.restart(h.now);
    h.connect();
    h.client.close();
    h.commands();
    h.client.restart(h.now);
    assert!(h.commands().is_empty(), "close is final");
    assert_eq!(h.client.ready_state(), ReadyState::Closed);
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn a_refused_response_reports_its_status_and_the_start_of_its_body() {
    // Chunked: complete when the last chunk comes.
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(h.events().is_empty(), "waits for the body");
    h.input(b"14\r\n{\"error\":\"bad key\"}\n\r\n0\r\n\r\n");
    let cause = error_cause(&h.events()).expect("fails");
    assert_eq!(
        cause,
        (
            ReadyState::Closed,
            ErrorCause::Status {
                status: 401,
                content_type: Some("application/json".into()),
                body: "{\"error\":\"bad key\"}\n".into()
            }
        )
    );
    assert!(cause.1.is_fatal());
    assert_eq!(cause.1.to_string(), "response status 401 Unauthorized: {\"error\":\"bad key\"}");

    // A long body: only the configured start is kept, and no more is waited for.
    let mut h = Harness::new(ClientConfig::new("http://a.test/").unwrap().max_error_body(8));
    h.connect();
    h.input(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n0123456789");
    assert!(
        matches!(error_cause(&h.events()), Some((_, ErrorCause::Status { status: 500, body, .. })) if body == "01234567")
    );

    // A body that never ends: reported after ERROR_BODY_TIMEOUT with what came.
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(b"HTTP/1.1 503 Busy\r\n\r\nretry la");
    assert!(h.events().is_empty());
    assert_eq!(h.advance(), ClientConfig::ERROR_BODY_TIMEOUT);
    assert!(
        matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Status { status: 503, body, .. })) if body == "retry la")
    );
    assert_eq!(h.commands(), [Command::Disconnect]);
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn interim_responses_are_skipped() {
    let mut h = Harness::url("http://a.test/");
    h.connect();
    h.input(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n");
    h.input(OK_HEAD);
    h.input(b"data: x\n\n");
    assert_eq!(h.messages(), [("message".into(), "x".into(), String::new())]);
}

#[test]
fn https_never_redirects_to_http() {
    let mut h = Harness::url("https://a.test/s");
    h.connect();
    h.input(b"HTTP/1.1 302 Found\r\nLocation: http://a.test/s\r\n\r\n");
    let cause = error_cause(&h.events());
    assert!(
        matches!(&cause, Some((ReadyState::Closed, ErrorCause::Redirect(why))) if why.contains("https")),
        "{cause:?}"
    );
    // The other way is fine.
    let mut h = Harness::url("http://a.test/s");
    h.connect();
    h.input(b"HTTP/1.1 301 Moved\r\nLocation: https://a.test/s\r\n\r\n");
    let next = h.connect();
    assert!(next.url().is_secure() && next.url().port() == 443);
}

#[test]
fn credentials_stay_on_their_origin_across_redirects() {
    let config = ClientConfig::new("https://api.test/s")
        .unwrap()
        .header("Authorization", "Bearer secret")
        .header("X-Trace", "1");
    let mut h = Harness::new(config);
    let has = |r: &sse_proto::ConnectRequest, what: &[u8]| r.bytes().windows(what.len()).any(|w| w == what);
    let first = h.connect();
    assert!(has(&first, b"Authorization: Bearer secret\r\n"));
    h.input(b"HTTP/1.1 307 T\r\nLocation: /moved\r\n\r\n");
    let same_origin = h.connect();
    assert!(has(&same_origin, b"Authorization: Bearer secret\r\n"));
    h.input(b"HTTP/1.1 307 T\r\nLocation: https://cdn.test/s\r\n\r\n");
    let other = h.connect();
    assert!(!has(&other, b"Authorization"), "not sent to another origin");
    assert!(has(&other, b"X-Trace: 1\r\n"));
    // Reconnection starts over at the configured URL, with credentials.
    h.input(OK_HEAD);
    h.client.handle_eof(h.now);
    h.advance();
    assert!(has(&h.connect(), b"Authorization: Bearer secret\r\n"));
}

#[test]
fn certificate_errors_stop_the_client_and_other_connect_errors_retry() {
    let mut h = Harness::url("https://a.test/");
    h.connect();
    h.client.handle_connect_error(ConnectError::Connect { reason: "refused".into() }, h.now);
    let (state, cause) = error_cause(&h.events()).unwrap();
    assert_eq!(state, ReadyState::Connecting);
    assert!(!cause.is_fatal());
    h.advance();
    h.connect();
    h.client.handle_connect_error(
        ConnectError::Tls { reason: "invalid peer certificate: UnknownIssuer".into() },
        h.now,
    );
    let (state, cause) = error_cause(&h.events()).unwrap();
    assert_eq!(state, ReadyState::Closed);
    assert!(cause.is_fatal());
    assert!(cause.to_string().contains("UnknownIssuer"), "{cause}");
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn a_post_body_is_resent_on_every_reconnection() {
    let body = r#"{"model":"m","stream":true}"#;
    let config = ClientConfig::new("http://a.test/v1/chat")
        .unwrap()
        .method("POST")
        .header("Content-Type", "application/json")
        .body(body);
    let mut h = Harness::new(config);
    for attempt in 0..3 {
        let request = h.connect();
        let text = String::from_utf8_lossy(request.bytes()).into_owned();
        assert!(text.starts_with("POST /v1/chat HTTP/1.1\r\n"), "attempt {attempt}: {text}");
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())), "{text}");
        assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{text}");
        h.input(OK_HEAD);
        h.input(b"id: 1\ndata: token\n\n");
        h.client.handle_eof(h.now);
        h.advance();
    }
}

#[test]
fn default_limits_take_a_single_event_of_32_mib_in_pieces() {
    let config = ClientConfig::new("http://a.test/").unwrap();
    let mut h = Harness::new(config);
    h.connect();
    h.input(OK_HEAD);
    let size = 32 * 1024 * 1024 + 5;
    let mut line = Vec::with_capacity(size + 10);
    line.extend_from_slice(b"data: ");
    line.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    line.extend_from_slice(b"\n\n");
    for piece in line.chunks(1 << 20) {
        h.input(piece);
    }
    let events = h.events();
    let Some(ClientEvent::Message(m)) = events.get(1) else { panic!("one event: {:?}", events.len()) };
    assert_eq!(m.data().len(), size);
    assert_eq!(h.client.ready_state(), ReadyState::Open);
    // The limits are the client's, documented, and can be lowered.
    let small = ClientConfig::new("http://a.test/")
        .unwrap()
        .decoder(DecoderConfig::new().max_line_len(1024).max_data_len(1024));
    let mut h = Harness::new(small);
    h.connect();
    h.input(OK_HEAD);
    h.input(&line[..4096]);
    assert!(matches!(error_cause(&h.events()), Some((ReadyState::Closed, ErrorCause::Decode(_)))));
}
