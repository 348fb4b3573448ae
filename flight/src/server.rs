//! Running the Flight SQL server.
//!
//! [`bind`] opens the listening socket (port 0 picks a free port, which
//! [`FlightServer::local_addr`] reports: what tests use), and
//! [`FlightServer::serve`] runs until the `shutdown` future completes, then
//! stops accepting connections and waits for the open ones to finish
//! (graceful shutdown). [`serve`] does both.
//!
//! TLS: with [`FlightConfig::tls`] set, the server speaks only TLS (gRPC over
//! HTTP/2 over TLS 1.2/1.3, rustls with the ring provider); clients connect
//! to `grpc+tls://host:port` and must trust the certificate. The certificate
//! chain and the private key are PEM files, read and checked by [`bind`]
//! before the socket is opened, so a missing, unreadable, non-PEM or
//! mismatched file is an [`Error::Config`] naming the file, never a server
//! that starts in clear or a panic. Client certificates are not asked for:
//! clients authenticate with their token (see [`crate::auth`]).
//!
//! tonic builds its rustls server configuration from rustls' process-wide
//! crypto provider, and rustls will not choose one itself when both of its
//! providers are compiled in (object_store's HTTP client enables both). So
//! [`bind`] installs ring as the process default first, unless the host
//! process has already installed one, which is then used as it is.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use civlink_query::SessionFactory;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::encoded::PreEncoded;
use crate::error::{Error, Result};
use crate::service::CivlinkFlightSql;

/// How long a client may take over the TLS handshake: a connection that
/// never finishes it would otherwise hold its slot (and delay a graceful
/// shutdown) indefinitely.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default listening address: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50051);

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// How to run the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlightConfig {
    /// Where to listen (default `127.0.0.1:50051`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// Serve over TLS with this certificate and key (see the module docs);
    /// `None` serves in clear (loopback, or TLS terminated in front).
    pub tls: Option<TlsConfig>,
}

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig { addr: DEFAULT_ADDR, tls: None }
    }
}

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct FlightServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: CivlinkFlightSql,
    /// tonic's server builder, holding the TLS acceptor when TLS is on.
    server: Server,
    tls: bool,
    /// The process's connection counts.
    connections: civlink_query::connections::ConnectionLimiter,
    /// Requests one connection may have in flight.
    max_streams: u32,
}

/// Bind the listening socket and build the service over `factory` (the
/// process's one; `pre_encoded` is the keeper its table cache was built with,
/// see [`crate::wire`]).
///
/// With [`FlightConfig::tls`] set, the certificate and key are loaded and
/// checked first; any problem with them is an [`Error::Config`] naming the
/// file.
pub async fn bind(config: FlightConfig, factory: Arc<SessionFactory>, pre_encoded: PreEncoded) -> Result<FlightServer> {
    let server = server_builder(config.tls.as_ref()).await?;
    let service = CivlinkFlightSql::new(Arc::clone(&factory), pre_encoded)
        .map_err(|e| Error::Config { message: format!("building the Flight SQL service: {e}") })?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Config { message: format!("cannot listen on {}: {e}", config.addr) })?;
    let local_addr =
        listener.local_addr().map_err(|e| Error::Config { message: format!("cannot read the bound address: {e}") })?;
    let connections = factory.connections().clone();
    let max_streams = factory.limits().max_streams_per_connection;
    Ok(FlightServer { listener, local_addr, service, server, tls: config.tls.is_some(), connections, max_streams })
}

/// tonic's server builder, with a TLS acceptor for `tls`.
async fn server_builder(tls: Option<&TlsConfig>) -> Result<Server> {
    let Some(tls) = tls else {
        return Ok(Server::builder());
    };
    let cert = read_file(&tls.cert, "certificate").await?;
    let key = read_file(&tls.key, "private key").await?;
    // tonic parses the PEM too, but only says "invalid certificate" / "invalid
    // key"; checking here first names the file and the problem.
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(&tls.cert, &format!("is not a valid PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(config_error(&tls.cert, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    match PrivateKeyDer::from_pem_slice(&key) {
        Ok(_) => {}
        Err(pem::Error::NoItemsFound) => {
            return Err(config_error(
                &tls.key,
                "holds no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1; encrypted keys are not supported)",
            ));
        }
        Err(e) => return Err(config_error(&tls.key, &format!("is not a valid PEM private key: {e}"))),
    }
    install_crypto_provider();
    let config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key)).timeout(TLS_HANDSHAKE_TIMEOUT);
    // What is left for rustls to refuse: a key it cannot use, or one that
    // does not belong to the certificate.
    Server::builder().tls_config(config).map_err(|e| Error::Config {
        message: format!(
            "TLS certificate {} and private key {} are unusable together: {}",
            tls.cert.display(),
            tls.key.display(),
            error_chain(&e)
        ),
    })
}

/// Install ring as rustls' process-wide crypto provider (see the module docs).
fn install_crypto_provider() {
    // An error means a provider is already installed (by the host process or
    // an earlier `bind`); that one is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The contents of a TLS file, or a configuration error naming it.
async fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .map_err(|e| Error::Config { message: format!("cannot read the TLS {what} file {}: {e}", path.display()) })
}

/// A configuration error about a TLS file.
fn config_error(path: &Path, problem: &str) -> Error {
    Error::Config { message: format!("TLS file {} {problem}", path.display()) }
}

/// An error and its sources, `: `-separated (tonic's own message is just
/// "transport error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl FlightServer {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Serve until `shutdown` completes, then drain open connections.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tracing::info!(addr = %self.local_addr, tls = self.tls, "Flight SQL server listening");
        let incoming = crate::incoming::admitted(self.listener, self.connections);
        let mut server = self.server.max_concurrent_streams(self.max_streams);
        server
            .add_service(crate::wire::FastDoGet::new(self.service))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| Error::Transport { message: error_chain(&e) })?;
        tracing::info!(addr = %self.local_addr, "Flight SQL server stopped");
        Ok(())
    }
}

/// Bind and serve until `shutdown` completes.
pub async fn serve(
    config: FlightConfig,
    factory: Arc<SessionFactory>,
    pre_encoded: PreEncoded,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    bind(config, factory, pre_encoded).await?.serve(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback() {
        let config = FlightConfig::default();
        assert_eq!(config.addr.to_string(), "127.0.0.1:50051");
        assert!(config.tls.is_none());
    }

    async fn tls_error(cert: &Path, key: &Path) -> String {
        let tls = TlsConfig { cert: cert.to_owned(), key: key.to_owned() };
        match server_builder(Some(&tls)).await {
            Err(Error::Config { message }) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_certificate_file_is_a_configuration_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("missing-cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not read").unwrap();
        let message = tls_error(&cert, &key).await;
        assert!(message.contains("certificate"), "{message}");
        assert!(message.contains(&cert.display().to_string()), "{message}");
    }

    #[tokio::test]
    async fn a_missing_key_file_is_a_configuration_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n").unwrap();
        let key = dir.path().join("missing-key.pem");
        let message = tls_error(&cert, &key).await;
        assert!(message.contains("private key"), "{message}");
        assert!(message.contains(&key.display().to_string()), "{message}");
    }

    #[tokio::test]
    async fn files_that_are_not_pem_are_configuration_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "证书 \u{0}\u{feff} not PEM at all\n-----BEGIN").unwrap();
        let message = tls_error(&garbage, &garbage).await;
        assert!(message.contains(&garbage.display().to_string()), "{message}");
        assert!(message.contains("certificate"), "{message}");

        // A certificate block but a key file with no key in it.
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n").unwrap();
        let empty = dir.path().join("empty-key.pem");
        std::fs::write(&empty, "").unwrap();
        let message = tls_error(&cert, &empty).await;
        assert!(message.contains(&empty.display().to_string()), "{message}");
        assert!(message.contains("no unencrypted PEM private key"), "{message}");
    }
}
