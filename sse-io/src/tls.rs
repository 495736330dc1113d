//! TLS with rustls over futures-io, both sides: [`ClientTls`] builds the
//! configuration an [`EventSource`](crate::EventSource) uses for `https://`
//! URLs, [`ServerTls`] the one a server terminates TLS with
//! ([`ServerBuilder::tls`](crate::ServerBuilder::tls),
//! [`Server::serve_tls_connection`](crate::Server::serve_tls_connection)).
//!
//! The crypto provider is rustls' `ring` (feature `tls`) or `aws-lc-rs`
//! (feature `aws-lc-rs`, preferred when both are on). Both sides offer
//! ALPN `http/1.1` (RFC 7301), the only protocol spoken here.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(not(any(feature = "tls", feature = "aws-lc-rs")))]
compile_error!("sse-io: TLS needs a crypto provider: enable the `tls` (ring) or `aws-lc-rs` feature");

/// The ALPN protocol both sides offer (RFC 7301 §3.1; the IANA registry's
/// id for HTTP/1.1).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The crypto provider of this build: aws-lc-rs when its feature is on,
/// else ring.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    // rustls 0.23.48 deprecates ring's provider for its lack of
    // post-quantum key exchange; ring stays the default here because it
    // builds with no C toolchain beyond its own small one. The `aws-lc-rs`
    // feature brings X25519MLKEM768.
    #[cfg(not(feature = "aws-lc-rs"))]
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Why a TLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input holds no certificate.
    NoCertificates {
        /// Which input (`"CA certificates"`, `"certificate chain"`).
        what: &'static str,
    },
    /// A PEM input holds no private key (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey,
    /// A PEM input could not be read.
    Pem {
        /// Which input.
        what: &'static str,
        /// What the PEM reader said.
        reason: String,
    },
    /// A certificate authority was refused (not a valid CA certificate).
    BadRoot {
        /// What the verifier said.
        reason: String,
    },
    /// rustls refused the configuration: a key that does not match its
    /// certificate, a key type the provider does not support.
    Config(rustls::Error),
    /// The platform's verifier could not be set up.
    Verifier(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoCertificates { what } => write!(f, "no certificate in the {what} PEM"),
            TlsError::NoPrivateKey => f.write_str("no private key in the key PEM"),
            TlsError::Pem { what, reason } => write!(f, "unreadable {what} PEM: {reason}"),
            TlsError::BadRoot { reason } => write!(f, "unusable CA certificate: {reason}"),
            TlsError::Config(e) => write!(f, "TLS configuration refused: {e}"),
            TlsError::Verifier(e) => write!(f, "platform certificate verifier: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Every certificate in a PEM input.
fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { what, reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { what });
    }
    Ok(certs)
}

/// The first private key in a PEM input.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        e => TlsError::Pem { what: "private key", reason: e.to_string() },
    })
}

/// Which certificate authorities a client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Mozilla's roots, compiled in (`webpki-roots`).
    BuiltIn,
    /// The operating system's verifier and store.
    #[cfg(feature = "platform-verifier")]
    Platform,
    /// Only the certificates added.
    OnlyAdded,
}

/// How an [`EventSource`](crate::EventSource) checks servers and presents
/// itself over TLS: server name indication and checking for the URL's host
/// (names and IP addresses), ALPN `http/1.1`, TLS 1.2 and 1.3.
///
/// By default it trusts Mozilla's root certificates, compiled in, so
/// `https://` works the same in a container with no certificate store.
///
/// ```no_run
/// use sse_io::ClientTls;
/// // The public roots, plus a private CA (a staging server's):
/// let ca = std::fs::read("staging-ca.pem")?;
/// let config = ClientTls::new().add_root_certificates_pem(&ca)?.build()?;
/// # let _ = config;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClientTls {
    trust: Trust,
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl Clone for ClientTls {
    fn clone(&self) -> Self {
        ClientTls {
            trust: self.trust,
            roots: self.roots.clone(),
            identity: self.identity.as_ref().map(|(chain, key)| (chain.clone(), key.clone_key())),
        }
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ClientTls")
            .field("trust", &self.trust)
            .field("added_roots", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl Default for ClientTls {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTls {
    /// Trusts Mozilla's root certificates (compiled in).
    pub fn new() -> Self {
        ClientTls { trust: Trust::BuiltIn, roots: Vec::new(), identity: None }
    }

    /// Also trusts the CA certificates in `pem` (one or more `CERTIFICATE`
    /// blocks): a private CA, a test server's.
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] or [`TlsError::NoCertificates`].
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, TlsError> {
        self.roots.extend(certificates(pem, "CA certificates")?);
        Ok(self)
    }

    /// Trusts only the certificates added with
    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem), not
    /// the built-in roots (nor the platform's).
    pub fn only_added_roots(mut self) -> Self {
        self.trust = Trust::OnlyAdded;
        self
    }

    /// Checks certificates with the operating system's verifier and trust
    /// store (`rustls-platform-verifier`: the system store on Linux, the
    /// platform's own verifier elsewhere), plus any added roots.
    #[cfg(feature = "platform-verifier")]
    pub fn platform_verifier(mut self) -> Self {
        self.trust = Trust::Platform;
        self
    }

    /// Presents a client certificate (mutual TLS): the chain, leaf first,
    /// and its private key, both PEM.
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`], [`TlsError::NoCertificates`] or
    /// [`TlsError::NoPrivateKey`].
    pub fn client_certificate_pem(mut self, chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        self.identity = Some((certificates(chain, "certificate chain")?, private_key(key)?));
        Ok(self)
    }

    /// The rustls configuration, for
    /// [`Connector::tls`](crate::Connector::tls).
    ///
    /// # Errors
    ///
    /// A root or key that rustls refuses.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let builder = match self.trust {
            #[cfg(feature = "platform-verifier")]
            Trust::Platform => {
                let verifier = if self.roots.is_empty() {
                    rustls_platform_verifier::Verifier::new(provider)
                } else {
                    rustls_platform_verifier::Verifier::new_with_extra_roots(
                        self.roots.iter().cloned(),
                        provider,
                    )
                }
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
            }
            Trust::BuiltIn | Trust::OnlyAdded => {
                let mut store = rustls::RootCertStore::empty();
                if self.trust == Trust::BuiltIn {
                    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                for root in &self.roots {
                    store.add(root.clone()).map_err(|e| TlsError::BadRoot { reason: e.to_string() })?;
                }
                builder.with_root_certificates(store)
            }
        };
        let mut config = match &self.identity {
            Some((chain, key)) => {
                builder.with_client_auth_cert(chain.clone(), key.clone_key()).map_err(TlsError::Config)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Arc::new(config))
    }

    /// The default client configuration (Mozilla's roots), built once.
    pub(crate) fn shared_default() -> Result<Arc<rustls::ClientConfig>, String> {
        static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
        DEFAULT.get_or_init(|| ClientTls::new().build().map_err(|e| e.to_string())).clone()
    }
}

/// A server's TLS: its certificate chain and key, ALPN `http/1.1`, TLS 1.2
/// and 1.3. Give it to [`ServerBuilder::tls`](crate::ServerBuilder::tls),
/// or to [`Server::serve_tls_connection`](crate::Server::serve_tls_connection)
/// for connections accepted by hand.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: futures_rustls::TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM: the certificate chain (leaf first) and its private key.
    ///
    /// # Errors
    ///
    /// [`TlsError`]: unreadable PEM, no certificate or key, or a key that
    /// does not match the certificate.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = certificates(chain, "certificate chain")?;
        let key = private_key(key)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Config)?;
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(ServerTls::from_rustls(Arc::new(config)))
    }

    /// From a rustls configuration made by hand (client authentication,
    /// several certificates by name...). Set its ALPN protocols to
    /// `http/1.1` (or none): this server speaks nothing else.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        ServerTls { acceptor: futures_rustls::TlsAcceptor::from(config) }
    }

    pub(crate) fn acceptor(&self) -> &futures_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// What went wrong in a client's TLS handshake, in words: the rustls error
/// when there is one (then retrying cannot help), else the I/O error.
pub(crate) fn handshake_error(e: &std::io::Error) -> (bool, String) {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(cert)) => (true, format!("invalid peer certificate: {cert}")),
        Some(tls) => (true, tls.to_string()),
        None => (false, e.to_string()),
    }
}
