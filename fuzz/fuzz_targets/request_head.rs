//! Arbitrary bytes as a request head: a request, "need more", or a typed
//! error with a status; never a panic, and the accessors hold up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_proto::Request;

fuzz_target!(|data: &[u8]| {
    match Request::parse(data, 4096) {
        Ok(Some(req)) => {
            assert!(req.head_len() <= data.len());
            assert!(req.path().starts_with('/'));
            let _ = (
                req.query(),
                req.last_event_id(),
                req.accepts_event_stream(),
                req.query_param("lastEventId"),
            );
            let _ = req.check_method(&["GET"]);
        }
        Ok(None) => assert!(data.len() <= 4096),
        Err(e) => {
            assert!(matches!(e.status(), 400 | 431));
            assert!(e.response().starts_with(b"HTTP/1.1 4"));
        }
    }
});
