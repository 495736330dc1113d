//! Shared pieces of the `sse-proto` benchmarks.
//!
//! - [`corpus`]: deterministic `text/event-stream` corpora (no RNG crate: a
//!   small [`XorShift64`]) that know how many events they hold, plus
//!   [`chunks`] to split them into `Bytes` the way a network would.
//! - [`mod@reference`]: the two "practical limit" baselines: a memchr line
//!   splitter that only counts events, and a direct `Vec` write encoder.
//! - [`conformance`]: the WPT `parser` cases and a panic-safe runner.
//! - [`encoders`]: every encoder of the encode benchmarks, through its public
//!   API.
//! - [`peers`]: every decoder (sse-proto and the peer crates) driven through its
//!   public API, both as a one-shot counter (for the benchmarks) and as an
//!   incremental feeder (for the `peer_table` example).

use bytes::Bytes;

pub mod conformance;
pub mod corpus;
pub mod encoders;
pub mod peers;
pub mod reference;

pub use corpus::Corpus;

/// Splits `bytes` into zero-copy chunks of `size` bytes (the last one may be
/// shorter), as a network read loop would hand them over.
///
/// # Panics
///
/// Panics if `size` is zero.
pub fn chunks(bytes: &Bytes, size: usize) -> Vec<Bytes> {
    assert!(size > 0, "chunk size must be positive");
    let mut out = Vec::with_capacity(bytes.len().div_ceil(size));
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + size).min(bytes.len());
        out.push(bytes.slice(start..end));
        start = end;
    }
    out
}

/// A 64-bit xorshift generator: deterministic corpora without an RNG crate.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from a seed; a zero seed is replaced by a fixed non-zero one.
    pub fn new(seed: u64) -> Self {
        XorShift64(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (slightly biased, which is fine for test data).
    ///
    /// # Panics
    ///
    /// Panics if `n` is zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// What a decoder produced from a whole stream: the number of events and the
/// total length of their data. Cheap to compute inside a timed loop and enough
/// to catch a decoder that drops, merges or truncates events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events dispatched.
    pub events: usize,
    /// Sum of the byte lengths of their `data`.
    pub data_bytes: usize,
}

impl Tally {
    /// Counts one event with `data_len` bytes of data.
    #[inline]
    pub fn add(&mut self, data_len: usize) {
        self.events += 1;
        self.data_bytes += data_len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_input() {
        let bytes = Bytes::from_static(b"0123456789");
        let parts = chunks(&bytes, 3);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), b"0123456789");
        assert_eq!(parts[3].as_ref(), b"9");
    }

    #[test]
    fn xorshift_is_deterministic() {
        let mut a = XorShift64::new(7);
        let mut b = XorShift64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(XorShift64::new(0).next_u64() != 0);
    }
}
