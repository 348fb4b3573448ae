//! Running the Flight SQL server.
//!
//! [`bind`] opens the listening socket (port 0 picks a free port, which
//! [`FlightServer::local_addr`] reports: what tests use), and
//! [`FlightServer::serve`] runs until the `shutdown` future completes, then
//! stops accepting connections and waits for the open ones to finish
//! (graceful shutdown). [`serve`] does both.
//!
//! TLS: [`FlightConfig::tls`] is accepted but not implemented yet, and a
//! configuration asking for it is refused with [`Error::Config`] rather than
//! served in clear. tonic's rustls support needs a process-wide rustls
//! crypto provider installed first (the dependency graph enables both of
//! rustls' providers, so rustls will not pick one itself), and that needs
//! `rustls` as a direct dependency, which the workspace does not pin yet.
//! Until then, terminate TLS in front of the server (a service mesh or a
//! reverse proxy speaking HTTP/2).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::error::{Error, Result};
use crate::service::CivlinkFlightSql;
use crate::session::{Limits, SessionFactory};

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
    /// TLS (not implemented yet: see the module docs).
    pub tls: Option<TlsConfig>,
    /// Query limits.
    pub limits: Limits,
}

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig { addr: DEFAULT_ADDR, tls: None, limits: Limits::default() }
    }
}

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct FlightServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: CivlinkFlightSql,
}

/// Bind the listening socket and build the service.
pub async fn bind(config: FlightConfig, store: MetadataStore, tables: TableStore) -> Result<FlightServer> {
    if let Some(tls) = &config.tls {
        return Err(Error::Config {
            message: format!(
                "TLS ({} / {}) is not supported yet; terminate TLS in front of the server",
                tls.cert.display(),
                tls.key.display()
            ),
        });
    }
    let service = CivlinkFlightSql::new(SessionFactory::new(store, tables, config.limits))?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Config { message: format!("cannot listen on {}: {e}", config.addr) })?;
    let local_addr =
        listener.local_addr().map_err(|e| Error::Config { message: format!("cannot read the bound address: {e}") })?;
    Ok(FlightServer { listener, local_addr, service })
}

impl FlightServer {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` completes, then drain open connections.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tracing::info!(addr = %self.local_addr, "Flight SQL server listening");
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        Server::builder()
            .add_service(self.service.into_server())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| Error::Transport { message: e.to_string() })?;
        tracing::info!(addr = %self.local_addr, "Flight SQL server stopped");
        Ok(())
    }
}

/// Bind and serve until `shutdown` completes.
pub async fn serve(
    config: FlightConfig,
    store: MetadataStore,
    tables: TableStore,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    bind(config, store, tables).await?.serve(shutdown).await
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
}
