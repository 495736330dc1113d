//! The loopback integration suite (sse-io/tests-shared/suite.rs) on smol.

#[path = "../../sse-io/tests-shared/suite.rs"]
mod suite;

use sse_smol::Smol;

runtime_suite!(Smol, smol::block_on);
