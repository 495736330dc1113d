//! The loopback integration suite (sse-io/tests-shared/suite.rs) on async-std.

#[path = "../../sse-io/tests-shared/suite.rs"]
mod suite;

use sse_async_std::AsyncStd;

runtime_suite!(AsyncStd, async_std::task::block_on);
