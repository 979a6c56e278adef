//! TLS and mutual TLS for erpc connections, with rustls (feature `tls`).
//!
//! A provider built with [`ServerBuilder::tls`](crate::ServerBuilder::tls) accepts only
//! TLS: it registers its address as `tls://host:port` (and the metadata
//! `transport=tls`), so consumers that discover it through a registry know to connect
//! with TLS. A consumer built with [`ClientBuilder::tls`](crate::ClientBuilder::tls)
//! speaks TLS to every provider; one without it refuses `tls://` providers at once with
//! [`Error::Connect`] instead of sending them plaintext.
//!
//! Mismatches fail fast with a message that names the cause: a plaintext erpc client on
//! a TLS port gets its first call answered (in plaintext) with "this provider only
//! accepts TLS"; a TLS client whose provider closes the handshake is told the provider
//! likely does not speak TLS. A handshake that does not finish within
//! [`TlsServerConfig::handshake_timeout`] is dropped, off the accept loop.
//!
//! The example is on [`TlsServerConfig`].

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::{Stream, TlsStream};
use crate::message::error_response;
use crate::protocol::{FrameHeader, MessageType, Status, HEADER_LEN, MAGIC};
use crate::Error;

/// How long a server waits for a TLS handshake unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a plaintext erpc client is told when it calls a TLS-only provider.
const PLAINTEXT_REFUSAL: &str =
    "this provider only accepts TLS: configure the client with ClientBuilder::tls";

/// The cryptography every erpc TLS config uses (ring), fixed so that erpc never depends
/// on a process-wide default provider being installed.
fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Config(format!("TLS: {what}: {e}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Every certificate in `pem`; fails when there is none.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(what, e))?;
    if certs.is_empty() {
        return Err(config_error(what, "no CERTIFICATE block in the PEM text"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| config_error(what, e))
}

/// A root store holding every certificate in `pem`.
fn root_store(pem: &[u8], what: &str) -> Result<Arc<RootCertStore>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, what)? {
        roots.add(cert).map_err(|e| config_error(what, e))?;
    }
    Ok(Arc::new(roots))
}

/// A certificate chain and its private key.
#[derive(Clone)]
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl Identity {
    fn from_pem(chain_pem: &[u8], key_pem: &[u8], whose: &str) -> Result<Self, Error> {
        Ok(Self {
            chain: certificates(chain_pem, &format!("{whose} certificate chain"))?,
            key: Arc::new(private_key(key_pem, &format!("{whose} private key"))?),
        })
    }
}

/// The TLS side of a provider: its certificate and key, and optionally the CAs whose
/// client certificates it accepts (mutual TLS).
///
/// Always usable: every method checks what it is given and builds the rustls
/// configuration at once, so [`ServerBuilder::tls`](crate::ServerBuilder::tls) cannot
/// fail later. `Debug` never shows the key.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use erpc_core::{Client, Server, TlsClientConfig, TlsServerConfig};
///
/// // In production the PEM text comes from files (`from_pem_files`).
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
/// let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
///
/// let server = Server::builder()
///     .bind("127.0.0.1:0")
///     .tls(TlsServerConfig::from_pem(&cert_pem, &key_pem)?);
/// let client = Client::builder()
///     .direct(["127.0.0.1:9000"])
///     .tls(TlsClientConfig::from_ca_pem(&cert_pem)?.server_name("localhost")?)
///     .build()?;
/// # let _ = (server, client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsServerConfig {
    identity: Identity,
    client_roots: Option<Arc<RootCertStore>>,
    handshake_timeout: Duration,
    rustls: Arc<rustls::ServerConfig>,
}

impl TlsServerConfig {
    /// A server presenting `cert_chain_pem` (leaf first, then intermediates) with the
    /// private key in `key_pem`; clients are not asked for certificates.
    pub fn from_pem(
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        let identity = Identity::from_pem(cert_chain_pem.as_ref(), key_pem.as_ref(), "server")?;
        Self::build(identity, None, DEFAULT_HANDSHAKE_TIMEOUT)
    }

    /// [`TlsServerConfig::from_pem`] with the PEM text read from files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        Self::from_pem(read_file(cert_chain.as_ref())?, read_file(key.as_ref())?)
    }

    /// Mutual TLS: every client must present a certificate issued by one of the CAs in
    /// `ca_pem`; others are refused during the handshake.
    pub fn client_ca_pem(self, ca_pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let roots = root_store(ca_pem.as_ref(), "client CA certificates")?;
        Self::build(self.identity, Some(roots), self.handshake_timeout)
    }

    /// [`TlsServerConfig::client_ca_pem`] with the PEM text read from a file.
    pub fn client_ca_pem_file(self, ca: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = read_file(ca.as_ref())?;
        self.client_ca_pem(pem)
    }

    /// Longest time a connection may take to complete its handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]); slower ones are closed.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// True when clients must present a certificate (mutual TLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.client_roots.is_some()
    }

    fn build(
        identity: Identity,
        client_roots: Option<Arc<RootCertStore>>,
        handshake_timeout: Duration,
    ) -> Result<Self, Error> {
        let provider = crypto();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("protocol versions", e))?;
        let builder = match &client_roots {
            Some(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                    .build()
                    .map_err(|e| config_error("client certificate verifier", e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let rustls = builder
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|e| config_error("server certificate and key", e))?;
        Ok(Self {
            identity,
            client_roots,
            handshake_timeout,
            rustls: Arc::new(rustls),
        })
    }

    /// Completes the server side of the handshake on an accepted connection, within the
    /// handshake timeout; `None` (after logging why) when the connection must close.
    pub(crate) async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
        match tokio::time::timeout(self.handshake_timeout, self.handshake(tcp, peer)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(reason)) => {
                tracing::info!(%peer, %reason, "TLS handshake failed; connection closed");
                None
            }
            Err(_) => {
                tracing::info!(%peer, timeout = ?self.handshake_timeout, "TLS handshake timed out; connection closed");
                None
            }
        }
    }

    async fn handshake(&self, mut tcp: TcpStream, peer: SocketAddr) -> Result<Stream, String> {
        let mut first = [0u8; 1];
        let seen = tcp
            .peek(&mut first)
            .await
            .map_err(|e| format!("reading the first byte: {e}"))?;
        if seen == 0 {
            return Err("closed before the handshake".into());
        }
        if first[0] == MAGIC.to_be_bytes()[0] {
            refuse_plaintext(&mut tcp, peer).await;
            return Err("a plaintext erpc client connected to this TLS-only port; \
                        it was told to configure ClientBuilder::tls"
                .into());
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(self.rustls.clone());
        let stream = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        Ok(Stream::Tls(Box::new(TlsStream::Server(stream))))
    }
}

/// Answers a plaintext erpc client's first request with an error it can show its
/// caller, then closes. The rest of what it sent is read and dropped first: closing a
/// socket with unread input resets it, and the reset can destroy the answer in flight.
async fn refuse_plaintext(tcp: &mut TcpStream, peer: SocketAddr) {
    let mut header = [0u8; HEADER_LEN];
    if tcp.read_exact(&mut header).await.is_err() {
        return;
    }
    if let Some((MAGIC, head)) = FrameHeader::read_from(&header) {
        if head.message_type() == Some(MessageType::Request) {
            tracing::warn!(%peer, "plaintext erpc request on a TLS-only port; refused");
            let answer = error_response(head.request_id, Status::BadRequest, PLAINTEXT_REFUSAL);
            if tcp.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
    let _ = tcp.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("certificates", &self.identity.chain.len())
            .field("private_key", &"<redacted>")
            .field("mutual_tls", &self.requires_client_certificate())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// The TLS side of a consumer: the CAs it trusts for provider certificates, optionally
/// its own certificate (for providers that require mutual TLS), and the name to check
/// providers' certificates against.
///
/// Without [`TlsClientConfig::server_name`], a provider's certificate must be valid for
/// the host of its address (an IP address needs an IP subject alternative name).
/// Always usable once built; `Debug` never shows the key.
#[derive(Clone)]
pub struct TlsClientConfig {
    roots: Arc<RootCertStore>,
    identity: Option<Identity>,
    server_name: Option<ServerName<'static>>,
    rustls: Arc<rustls::ClientConfig>,
}

impl TlsClientConfig {
    /// A client trusting the CA certificates in `ca_pem`, without a certificate of its
    /// own.
    pub fn from_ca_pem(ca_pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let roots = root_store(ca_pem.as_ref(), "CA certificates")?;
        Self::build(roots, None, None)
    }

    /// [`TlsClientConfig::from_ca_pem`] with the PEM text read from a file.
    pub fn from_ca_pem_file(ca: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_ca_pem(read_file(ca.as_ref())?)
    }

    /// Presents `cert_chain_pem` with the key in `key_pem` to providers that ask for a
    /// client certificate (mutual TLS).
    pub fn client_cert_pem(
        self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        let identity = Identity::from_pem(cert_chain_pem.as_ref(), key_pem.as_ref(), "client")?;
        Self::build(self.roots, Some(identity), self.server_name)
    }

    /// [`TlsClientConfig::client_cert_pem`] with the PEM text read from files.
    pub fn client_cert_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let (chain, key) = (read_file(cert_chain.as_ref())?, read_file(key.as_ref())?);
        self.client_cert_pem(chain, key)
    }

    /// Checks every provider's certificate against `name` (a DNS name or an IP address)
    /// instead of the host in the provider's address.
    pub fn server_name(mut self, name: &str) -> Result<Self, Error> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| config_error(&format!("server name {name:?}"), e))?;
        self.server_name = Some(name);
        Ok(self)
    }

    fn build(
        roots: Arc<RootCertStore>,
        identity: Option<Identity>,
        server_name: Option<ServerName<'static>>,
    ) -> Result<Self, Error> {
        let builder = rustls::ClientConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("protocol versions", e))?
            .with_root_certificates(roots.clone());
        let rustls = match &identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| config_error("client certificate and key", e))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            roots,
            identity,
            server_name,
            rustls: Arc::new(rustls),
        })
    }

    /// The client side of the handshake with the provider at `host_port`.
    pub(crate) async fn connect(&self, host_port: &str, tcp: TcpStream) -> Result<Stream, String> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => server_name_of(host_port)?,
        };
        let connector = tokio_rustls::TlsConnector::from(self.rustls.clone());
        match connector.connect(name, tcp).await {
            Ok(stream) => Ok(Stream::Tls(Box::new(TlsStream::Client(stream)))),
            Err(e) => Err(describe_handshake_error(&e)),
        }
    }
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("trusted_cas", &self.roots.len())
            .field(
                "client_certificates",
                &self.identity.as_ref().map_or(0, |i| i.chain.len()),
            )
            .field("private_key", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// The name a provider's certificate must carry: the host of `host:port`.
fn server_name_of(host_port: &str) -> Result<ServerName<'static>, String> {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        format!("{host:?} is not a valid TLS server name ({e}); set TlsClientConfig::server_name")
    })
}

/// A handshake failure, worded for the person who has to fix it.
fn describe_handshake_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let not_tls = matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(_))
    );
    if not_tls {
        format!("TLS handshake failed ({e}): the provider's answer is not TLS; it likely speaks plaintext erpc")
    } else if matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    ) {
        format!(
            "TLS handshake failed ({e}): the provider closed the connection; it likely does not speak TLS (a plaintext erpc provider?)"
        )
    } else {
        format!("TLS handshake failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (cert, key) = self_signed();
        let server = TlsServerConfig::from_pem(&cert, &key)
            .and_then(|c| c.client_ca_pem(&cert))
            .expect("server config");
        let client = TlsClientConfig::from_ca_pem(&cert)
            .and_then(|c| c.client_cert_pem(&cert, &key))
            .expect("client config");
        let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for shown in [format!("{server:?}"), format!("{client:?}")] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains(&key_body[..16]), "{shown}");
        }
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let (cert, key) = self_signed();
        assert!(matches!(
            TlsServerConfig::from_pem("not pem", &key),
            Err(Error::Config(m)) if m.contains("server certificate chain")
        ));
        assert!(matches!(
            TlsServerConfig::from_pem(&cert, "not pem"),
            Err(Error::Config(m)) if m.contains("server private key")
        ));
        let other = self_signed();
        assert!(matches!(
            TlsServerConfig::from_pem(&cert, &other.1),
            Err(Error::Config(m)) if m.contains("certificate and key")
        ));
        assert!(matches!(
            TlsClientConfig::from_ca_pem(""),
            Err(Error::Config(m)) if m.contains("no CERTIFICATE")
        ));
    }

    #[test]
    fn server_names_come_from_the_address_host() {
        assert_eq!(
            server_name_of("localhost:9000").unwrap().to_str(),
            "localhost"
        );
        assert_eq!(
            server_name_of("127.0.0.1:9000").unwrap().to_str(),
            "127.0.0.1"
        );
        assert_eq!(server_name_of("[::1]:9000").unwrap().to_str(), "::1");
        assert!(server_name_of("bad host:1").is_err());
    }
}
