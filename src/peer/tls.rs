//! TLS with rustls and its `ring` provider (DESIGN §11): the listener's certificate
//! ([`ServerTls`]), what dialled peers and `https://` sources are verified against
//! ([`ClientTls`]), and the channel binding both ends of a TLS connection derive
//! ([`ChannelBinding`]).
//!
//! Keys and certificates are read as OpenSSL and Let's Encrypt write them: PEM certificate
//! chains (leaf first, e.g. `fullchain.pem`) and PKCS#8 (`BEGIN PRIVATE KEY`), RSA PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) or EC SEC1 (`BEGIN EC PRIVATE KEY`) keys. Verification is never
//! skipped: the roots are the system's (read by `rustls-native-certs` from the OS trust store,
//! so an administrator's own CAs count too) plus every `--ca`.
//!
//! ALPN is `http/1.1` only (websocket upgrades need HTTP/1.1): clients offer just that, and
//! the listener selects just that (see `listener::serve_tls`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The exporter label of the TLS channel binding (RFC 9266, `tls-exporter`).
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// Why a TLS file or configuration is not usable. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read, or is not PEM.
    #[error("cannot read the {what} file {}", path.display())]
    Read {
        /// Which file: "TLS certificate", "TLS key" or "CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate or CA file holds no certificate.
    #[error(
        "the {what} file {} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
        path.display()
    )]
    NoCertificate {
        /// "TLS certificate" or "CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key this reader knows.
    #[error("the TLS key file {} holds no private key ({hint})", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What was expected, or what to do with what was found.
        hint: &'static str,
    },
    /// rustls refused the key, or the key does not belong to the certificate.
    #[error("the TLS key {} cannot serve the certificate {}", key.display(), cert.display())]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// A CA certificate is not usable as a trust anchor.
    #[error("the CA certificate in {} is not usable", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The rustls configuration could not be made.
    #[error("the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The crypto provider: rustls's `ring` backend (no cmake, no C beyond ring's own).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file (a chain: leaf first).
fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file: PKCS#8, RSA (PKCS#1) or EC (SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Read {
        what: "TLS key",
        path: path.to_path_buf(),
        source: rustls_pki_types::pem::Error::Io(e),
    })?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            let text = String::from_utf8_lossy(&bytes);
            let hint = if text.contains("ENCRYPTED PRIVATE KEY") {
                "it is encrypted; write it decrypted with `openssl pkey -in KEY -out PLAIN.key`"
            } else if text.contains("BEGIN CERTIFICATE") {
                "it holds a certificate; give the key file to --tls-key"
            } else {
                "expected PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`"
            };
            Err(TlsError::NoKey {
                path: path.to_path_buf(),
                hint,
            })
        }
        Err(source) => Err(TlsError::Read {
            what: "TLS key",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Loads a certificate chain and its key, checking that they belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certs("TLS certificate", cert)?;
    let der = read_key(key)?;
    CertifiedKey::from_der(chain, der, &provider())
        .map(Arc::new)
        .map_err(|source| TlsError::Key {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })
}

/// The listener's certificate chain and key, re-readable while the node runs
/// ([`ServerTls::reload`], e.g. on SIGHUP after a renewal): new handshakes use the new pair.
#[derive(Clone, Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<CurrentCert>,
}

/// The pair new handshakes are served with.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.0.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

impl ServerTls {
    /// Reads the certificate chain `cert` and the private key `key` (PEM files).
    pub fn load(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Result<ServerTls, TlsError> {
        let (cert, key) = (cert.into(), key.into());
        let pair = certified_key(&cert, &key)?;
        Ok(ServerTls {
            cert,
            key,
            current: Arc::new(CurrentCert(RwLock::new(pair))),
        })
    }

    /// Reads both files again; on success new handshakes use them, on failure the pair in
    /// use stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = certified_key(&self.cert, &self.key)?;
        match self.current.0.write() {
            Ok(mut k) => *k = pair,
            Err(poisoned) => *poisoned.into_inner() = pair,
        }
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// A rustls server configuration serving the current pair: TLS 1.3 and 1.2, no client
    /// certificates, no ALPN yet (the listener sets `http/1.1`).
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        Ok(ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone()))
    }
}

/// What a client verifies servers against: the system's roots (read once, on first use) and
/// extra CA certificates (`--ca`, read at once so a bad file fails at start).
#[derive(Clone, Default)]
pub struct ClientTls {
    extra: Arc<Vec<CertificateDer<'static>>>,
    configs: Arc<OnceLock<Configs>>,
}

/// The two client configurations, made on first use.
struct Configs {
    peers: Arc<ClientConfig>,
    http: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("extra_cas", &self.extra.len())
            .finish()
    }
}

impl ClientTls {
    /// The system roots plus the CA certificates in `cas` (PEM files, each may hold several).
    pub fn with_cas<P: AsRef<Path>>(cas: &[P]) -> Result<ClientTls, TlsError> {
        let mut extra = Vec::new();
        for path in cas {
            let path = path.as_ref();
            for cert in read_certs("CA", path)? {
                // Check now that it is a usable trust anchor, naming the file.
                RootCertStore::empty()
                    .add(cert.clone())
                    .map_err(|source| TlsError::Ca {
                        path: path.to_path_buf(),
                        source,
                    })?;
                extra.push(cert);
            }
        }
        Ok(ClientTls {
            extra: Arc::new(extra),
            configs: Arc::new(OnceLock::new()),
        })
    }

    fn configs(&self) -> &Configs {
        self.configs.get_or_init(|| {
            let mut roots = system_roots();
            for cert in self.extra.iter() {
                // Checked when read.
                let _ = roots.add(cert.clone());
            }
            let roots = Arc::new(roots);
            Configs {
                peers: Arc::new(client_config(roots.clone(), &[&rustls::version::TLS13])),
                http: Arc::new(client_config(
                    roots,
                    &[&rustls::version::TLS13, &rustls::version::TLS12],
                )),
            }
        })
    }

    /// For dialling peers (`wss://`): TLS 1.3 only, so both ends always have a channel
    /// binding and a man in the middle cannot strip it by choosing TLS 1.2.
    pub fn peers(&self) -> Arc<ClientConfig> {
        self.configs().peers.clone()
    }

    /// For `https://` sources: TLS 1.3 or 1.2.
    pub fn http(&self) -> Arc<ClientConfig> {
        self.configs().http.clone()
    }
}

fn client_config(
    roots: Arc<RootCertStore>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("the ring provider supports TLS 1.2 and 1.3");
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The OS trust store (empty, with a warning, where it cannot be read).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("reading the system's CA certificates: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system CA certificates");
    if added == 0 {
        tracing::warn!("no system CA certificates found: only --ca certificates are trusted");
    }
    roots
}

/// A node's TLS: the listener's certificate (none: it serves plain `ws://`) and what the
/// servers it dials are verified against.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// Serve `wss://` (and HTTPS) with this certificate.
    pub server: Option<ServerTls>,
    /// Verify `wss://` peers against these roots.
    pub client: ClientTls,
}

/// The TLS channel binding of one connection (RFC 9266 `tls-exporter`: 32 bytes exported
/// with [`CHANNEL_BINDING_LABEL`] and no context). Both ends of the same TLS 1.3 connection
/// derive the same value; a man in the middle terminating TLS has two different ones.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChannelBinding(pub [u8; 32]);

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelBinding({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl ChannelBinding {
    /// The binding of an established connection; `None` before the handshake completed and
    /// for TLS 1.2 (whose exporter is only safe with extended master secret, which rustls
    /// does not report).
    pub fn of<D>(conn: &rustls::ConnectionCommon<D>) -> Option<ChannelBinding> {
        if conn.is_handshaking()
            || conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
        {
            return None;
        }
        conn.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None)
            .ok()
            .map(ChannelBinding)
    }
}

/// A sentence for a failed TLS handshake as a person can act on it; `host` is the name
/// dialled.
pub fn describe(e: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "the TLS certificate of {host} is not signed by a trusted CA ({e}); trust its CA with --ca FILE"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "the TLS certificate of {host} is not made out to that name ({e}); connect with a name the certificate lists"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("the TLS certificate of {host} has expired ({e})")
        }
        rustls::Error::InvalidCertificate(_) => {
            format!("the TLS certificate of {host} is not acceptable ({e})")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("{host} does not speak TLS ({e}); is it a plain ws:// or http:// listener?")
        }
        _ => format!("TLS with {host} failed: {e}"),
    }
}

/// The first rustls error in `e`'s source chain, if any (TLS failures reach callers wrapped in
/// I/O and client errors).
pub fn find_rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
