//! Arbitrary bytes as a request head: a request, "need more", or a typed
//! error with a status; never a panic, and what is accepted holds the
//! promises of `Request::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::{Request, RequestFraming, Version};

fuzz_target!(|data: &[u8]| {
    match Request::parse(data, 4096) {
        Ok(Some(req)) => {
            assert!(req.head_len() <= data.len());
            // Origin-form, or asterisk-form for OPTIONS (RFC 9112 §3.2).
            assert!(req.target().starts_with('/') || (req.method() == "OPTIONS" && req.target() == "*"));
            // HTTP/1.1 carries exactly one Host (RFC 9112 §3.2).
            let hosts = req.headers().filter(|(n, _)| n.eq_ignore_ascii_case("host")).count();
            assert!(hosts <= 1 && (hosts == 1 || req.version() == Version::Http10));
            // Chunked framing only on 1.1; never alongside Content-Length.
            let has = |name: &str| req.headers().any(|(n, _)| n.eq_ignore_ascii_case(name));
            match req.framing() {
                RequestFraming::Chunked => {
                    assert_eq!(req.version(), Version::Http11);
                    assert!(!has("content-length"));
                }
                RequestFraming::Length(_) => assert!(has("content-length") && !has("transfer-encoding")),
                RequestFraming::None => assert!(!has("content-length") && !has("transfer-encoding")),
            }
            if req.expects_continue() {
                assert_eq!(req.version(), Version::Http11);
                assert!(!matches!(req.framing(), RequestFraming::None | RequestFraming::Length(0)));
            }
            assert!(req.last_event_id().is_none_or(|id| !id.is_empty()));
            let _ = (req.path(), req.query(), req.keep_alive(), req.accepts_event_stream());
            let _ = req.query_param("lastEventId");
            let _ = req.check_method(&["GET"]);
        }
        Ok(None) => assert!(data.len() <= 4096),
        Err(e) => {
            let status = e.status();
            assert!(matches!(status, 400 | 417 | 431 | 501), "{e}: {status}");
            assert!(e.response().starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
        }
    }
});
