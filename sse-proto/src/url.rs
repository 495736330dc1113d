//! The small part of URLs an HTTP/1.1 client needs: `http(s)://host[:port]/path?query`,
//! and resolving a redirect's `Location` against it.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

/// An absolute `http` or `https` URL, split for building a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    secure: bool,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `http://` or `https://`.
    UnsupportedScheme,
    /// No host, or a host with characters that cannot be sent in `Host`.
    InvalidHost,
    /// A port that is not a number from 1 to 65535.
    InvalidPort,
    /// Whitespace or control characters (they could split the request line).
    InvalidCharacter,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::UnsupportedScheme => "URL scheme is not http or https",
            UrlError::InvalidHost => "URL has no valid host",
            UrlError::InvalidPort => "URL port is not a number from 1 to 65535",
            UrlError::InvalidCharacter => "URL contains whitespace or a control character",
        })
    }
}

impl core::error::Error for UrlError {}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. Userinfo is refused
    /// with the host; a fragment is dropped (it is never sent).
    ///
    /// # Errors
    ///
    /// A [`UrlError`] saying what is wrong.
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::InvalidCharacter);
        }
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(s, "https://") {
            (true, r)
        } else {
            return Err(UrlError::UnsupportedScheme);
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal has colons of its own: the port follows `]`.
            Some((h, p)) if !p.contains(']') => {
                let port = p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UrlError::InvalidPort)?;
                (h, port)
            }
            _ => (authority, if secure { 443 } else { 80 }),
        };
        let valid_host = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~[]:%!$&'()*+,;=".contains(&b));
        if !valid_host || host.contains('@') {
            return Err(UrlError::InvalidHost);
        }
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        Ok(Url { secure, host: host.to_ascii_lowercase(), port, target })
    }

    /// Resolves a `Location` value (absolute, scheme-relative, absolute-path
    /// or relative-path reference) against this URL.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse) for the resulting URL.
    pub fn join(&self, location: &str) -> Result<Url, UrlError> {
        let location = location.trim_matches([' ', '\t']);
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", if self.secure { "https" } else { "http" }));
        }
        let target = if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path())
        } else {
            // Replace the last path segment.
            let path = self.path();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Url::parse(&format!(
            "{}://{}{}",
            if self.secure { "https" } else { "http" },
            self.authority(),
            target
        ))
    }

    /// Whether the scheme is `https` (the transport must use TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host, lowercase (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// `host` or `host:port` when the port is not the scheme's default: the
    /// value of the `Host` header.
    pub fn authority(&self) -> String {
        if self.port == if self.secure { 443 } else { 80 } {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", if self.secure { "https" } else { "http" }, self.authority(), self.target)
    }
}

/// Percent-decodes one path segment (RFC 3986 §2.1): `%XX` becomes that
/// byte; `+` stays `+` (it means a space only in form-encoded queries); a
/// `%` not followed by two hex digits stays as it is; bytes that are not
/// UTF-8 after decoding become U+FFFD.
///
/// ```
/// assert_eq!(sse_proto::percent_decode_path("caf%C3%A9+1%2"), "café+1%2");
/// ```
pub fn percent_decode_path(segment: &str) -> alloc::borrow::Cow<'_, str> {
    if !segment.contains('%') {
        return alloc::borrow::Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = alloc::vec::Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex_value(*h).zip(hex_value(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    alloc::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let u = Url::parse("HTTP://Example.com:8080/a/b?x=1#frag").unwrap();
        assert_eq!((u.host(), u.port(), u.target(), u.is_secure()), ("example.com", 8080, "/a/b?x=1", false));
        assert_eq!(u.authority(), "example.com:8080");
        assert_eq!(u.join("/c").unwrap().to_string(), "http://example.com:8080/c");
        assert_eq!(u.join("d?y").unwrap().target(), "/a/d?y");
        assert_eq!(u.join("?z").unwrap().target(), "/a/b?z");
        assert_eq!(u.join("//other/e").unwrap().to_string(), "http://other/e");
        assert_eq!(u.join("https://s/").unwrap().port(), 443);
        assert_eq!(Url::parse("http://h").unwrap().target(), "/");
        assert_eq!(Url::parse("http://[::1]:9/x").unwrap().host(), "[::1]");
        assert_eq!(Url::parse("ftp://h/"), Err(UrlError::UnsupportedScheme));
        assert_eq!(Url::parse("http://h:0/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://u@h/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://h/a b"), Err(UrlError::InvalidCharacter));
        assert_eq!(Url::parse("http:///x"), Err(UrlError::InvalidHost));
    }
}
