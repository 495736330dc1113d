//! TLS on loopback on async-std: the shared TLS suite
//! (sse-io/tests-shared/tls.rs). Certificates are made by the test.

#[path = "../../sse-io/tests-shared/tls.rs"]
mod tls;

use sse_async_std::AsyncStd;

tls_suite!(AsyncStd, async_std::task::block_on);
