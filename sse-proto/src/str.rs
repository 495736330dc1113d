//! `Str`: an immutable UTF-8 string that is either stored inline or shares a
//! reference-counted [`Bytes`] buffer.

use alloc::string::String;
use bytes::Bytes;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

/// Strings up to this many bytes are stored inline: no allocation and no
/// reference-count traffic. 38 bytes hold a UUID (36) and every event type
/// seen in practice, so ids and types almost never touch the heap.
const INLINE_CAP: usize = 38;

/// An immutable, cheaply clonable UTF-8 string.
///
/// The decoder hands event fields out as `Str`. Short strings (event types,
/// ids) are stored inline; longer ones share the input buffer, so single-line
/// `data` is a zero-copy slice of the bytes that were fed in. Cloning never
/// copies the text of a shared string, only bumps a reference count.
///
/// `Str` dereferences to [`str`], and compares, hashes and orders like one.
///
/// ```
/// use sse_proto::Str;
/// let s = Str::from("hello");
/// assert_eq!(s, "hello");
/// assert_eq!(s.len(), 5);
/// ```
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        buf: [u8; INLINE_CAP],
    },
    /// Invariant: the bytes are valid UTF-8.
    Shared(Bytes),
}

impl Str {
    /// The empty string (no allocation).
    pub const fn new() -> Self {
        Str(Repr::Inline { len: 0, buf: [0; INLINE_CAP] })
    }

    /// Wraps bytes that are valid UTF-8, without copying them.
    ///
    /// # Errors
    ///
    /// Returns the bytes back, with the UTF-8 error, when they are not valid UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, (Bytes, core::str::Utf8Error)> {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Ok(Str(Repr::Shared(bytes))),
            Err(e) => Err((bytes, e)),
        }
    }

    /// Decodes bytes as UTF-8 the way the WHATWG "UTF-8 decode" does: each
    /// maximal invalid subpart becomes one U+FFFD. Valid input is not copied.
    pub fn from_utf8_lossy(bytes: Bytes) -> Self {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Str(Repr::Shared(bytes)),
            Err(_) => Str::from(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// Copies a string inline when it is short, onto the heap otherwise.
    pub(crate) fn from_validated(text: &str) -> Self {
        // SAFETY: the bytes of a `str` are valid UTF-8.
        #[allow(unsafe_code)]
        unsafe {
            Self::from_validated_slice(text.as_bytes())
        }
    }

    /// Copies bytes already known to be valid UTF-8: inline when short, onto
    /// the heap otherwise.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8: [`as_str`](Self::as_str) trusts it.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn from_validated_slice(bytes: &[u8]) -> Self {
        debug_assert!(core::str::from_utf8(bytes).is_ok());
        let len = bytes.len();
        if len > INLINE_CAP {
            return Str(Repr::Shared(Bytes::copy_from_slice(bytes)));
        }
        let mut buf = [0; INLINE_CAP];
        buf[..len].copy_from_slice(bytes);
        // `len <= INLINE_CAP < 256`, so the cast cannot truncate.
        Str(Repr::Inline { len: len as u8, buf })
    }

    /// Wraps bytes already known to be valid UTF-8.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8: [`as_str`](Self::as_str) trusts it.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn from_validated_bytes(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Str(Repr::Shared(bytes))
    }

    fn inline(text: &str) -> Option<Self> {
        let len = text.len();
        if len > INLINE_CAP {
            return None;
        }
        let mut buf = [0; INLINE_CAP];
        buf[..len].copy_from_slice(text.as_bytes());
        // `len <= INLINE_CAP < 256`, so the cast cannot truncate.
        Some(Str(Repr::Inline { len: len as u8, buf }))
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes of a `Str` are valid UTF-8: every constructor
        // validates (`from_utf8`, `from_utf8_lossy`) or starts from a
        // `&str`/`String`, except the crate-private `from_validated_*`, which
        // are `unsafe` with exactly this obligation.
        #[allow(unsafe_code)]
        unsafe {
            utf8_unchecked(self.as_bytes())
        }
    }

    /// The UTF-8 bytes of the string.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Shared(b) => b,
        }
    }

    /// Converts into [`Bytes`]; shared strings are returned without copying.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline { len, buf } => Bytes::copy_from_slice(&buf[..len as usize]),
            Repr::Shared(b) => b,
        }
    }
}

/// Views bytes the crate has already validated as UTF-8 as a `str`: the
/// crate's one unchecked conversion (validating again at every access would
/// make each accessor O(len) instead of O(1)). Debug builds check it again.
///
/// # Safety
///
/// `bytes` must be valid UTF-8: checked (by `core::str::from_utf8`,
/// simdutf8, or the decoder's line copy) or made from a `str`, and not
/// modified since. Each call site says which.
#[inline]
#[allow(unsafe_code)]
pub(crate) unsafe fn utf8_unchecked(bytes: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(bytes).is_ok(), "unvalidated bytes: {bytes:?}");
    // SAFETY: the caller's obligation, above.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

impl Default for Str {
    fn default() -> Self {
        Str::new()
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::from_validated(s)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Self::inline(&s).unwrap_or_else(|| Str(Repr::Shared(Bytes::from(s))))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Bytes {
        s.into_bytes()
    }
}

impl From<Str> for String {
    fn from(s: Str) -> String {
        String::from(s.as_str())
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_inline_long_ones_shared() {
        let s = Str::from("a".repeat(INLINE_CAP).as_str());
        assert!(matches!(s.0, Repr::Inline { .. }));
        let l = Str::from("a".repeat(INLINE_CAP + 1));
        assert!(matches!(l.0, Repr::Shared(_)));
        assert_eq!(l.len(), INLINE_CAP + 1);
    }

    #[test]
    fn lossy_replaces_invalid_sequences() {
        let s = Str::from_utf8_lossy(Bytes::from_static(b"a\xffb\xe2\x82"));
        assert_eq!(s, "a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn from_utf8_rejects_invalid() {
        assert!(Str::from_utf8(Bytes::from_static(b"\xc0")).is_err());
        assert_eq!(Str::from_utf8(Bytes::from_static(b"ok")).unwrap(), "ok");
    }
}
