//! Running the REST server.
//!
//! [`bind`] opens the listening socket (port 0 picks a free port, which
//! [`ApiServer::local_addr`] reports: what tests use) and builds the router
//! over a [`SessionFactory`] (the same policy, scoped tables and limits as
//! Flight SQL); [`ApiServer::serve`] runs until the `shutdown` future
//! completes, then stops accepting connections and lets the requests in
//! flight finish (graceful shutdown). HTTP/1.1 in clear: bind to loopback,
//! or terminate TLS in front.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_flight::{Limits, SessionFactory};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::standards::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::{datasets, standards};

/// The default listening address: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// How to run the server (the `[api]` section of `civlink.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where to listen (default `127.0.0.1:8080`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// A rows request still running after this many seconds is stopped
    /// (503; default 300, as in Flight SQL).
    pub query_timeout_secs: u64,
    /// Rows requests one principal may run at the same time; more are
    /// refused with 429 rather than queued (default 4).
    pub max_concurrent_per_principal: usize,
    /// Memory one rows request may hold, in MiB, before it spills or fails (default 1024).
    pub memory_per_query_mib: usize,
    /// Where spill files go (default: the operating system's temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// MiB of decoded tables kept in memory between requests (default 2048; 0 = off).
    pub table_cache_mib: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        let limits = Limits::default();
        ApiConfig {
            addr: DEFAULT_ADDR,
            query_timeout_secs: limits.query_timeout.as_secs(),
            max_concurrent_per_principal: limits.max_concurrent_per_principal,
            memory_per_query_mib: limits.memory_per_query >> 20,
            spill_dir: limits.spill_dir,
            table_cache_mib: limits.table_cache_bytes >> 20,
        }
    }
}

impl ApiConfig {
    /// The query limits sessions are built with.
    pub fn limits(&self) -> Limits {
        Limits {
            query_timeout: Duration::from_secs(self.query_timeout_secs),
            max_concurrent_per_principal: self.max_concurrent_per_principal.max(1),
            memory_per_query: self.memory_per_query_mib.saturating_mul(1 << 20),
            spill_dir: self.spill_dir.clone(),
            table_cache_bytes: self.table_cache_mib.saturating_mul(1 << 20),
            ..Limits::default()
        }
    }
}

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct ApiServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

/// Bind the listening socket and build the router (reading the
/// deployment's mask key from the store first).
pub async fn bind(config: ApiConfig, store: MetadataStore, tables: TableStore) -> Result<ApiServer> {
    // The mask key is read (or generated) once, here, as Flight does: every
    // session keys its pseudonyms with it, so REST and Flight show the same
    // pseudonym for the same value, and a store that cannot produce the key
    // fails at start-up rather than on the first request.
    let mask_key = store.mask_key().await?;
    let factory = SessionFactory::new(store, tables, config.limits()).with_mask_key(mask_key);
    let router = router(Arc::new(AppState::new(factory)));
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Config { message: format!("cannot listen on {}: {e}", config.addr) })?;
    let local_addr =
        listener.local_addr().map_err(|e| Error::Config { message: format!("cannot read the bound address: {e}") })?;
    Ok(ApiServer { listener, local_addr, router })
}

/// Every route of the API over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/datasets", get(datasets::list))
        .route("/api/v1/datasets/{department}/{name}", get(datasets::describe))
        .route("/api/v1/datasets/{department}/{name}/rows", get(datasets::rows))
        .route("/api/v1/standards", post(standards::publish))
        .route("/api/v1/standards/{id}", get(standards::versions))
        .route("/api/v1/standards/{id}/{version}", get(standards::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `GET /api/v1/health`: no authentication, no audit.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Any path the API does not have.
async fn not_found() -> Error {
    Error::NotFound { what: "no such resource".into() }
}

/// A path the API has, with another method.
async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

impl ApiServer {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` completes, then let the requests in flight finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        tracing::info!(addr = %self.local_addr, "REST API listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Transport { message: e.to_string() })?;
        tracing::info!(addr = %self.local_addr, "REST API stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_with_flight_limits() {
        let config = ApiConfig::default();
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.limits(), Limits::default());
    }

    #[test]
    fn the_config_section_is_strict() {
        let config: ApiConfig = serde_json::from_str(r#"{"addr": "0.0.0.0:9000", "query_timeout_secs": 5}"#).unwrap();
        assert_eq!(config.addr.port(), 9000);
        assert_eq!(config.limits().query_timeout, Duration::from_secs(5));
        assert_eq!(config.max_concurrent_per_principal, ApiConfig::default().max_concurrent_per_principal);
        assert!(serde_json::from_str::<ApiConfig>(r#"{"adr": "0.0.0.0:9000"}"#).is_err());
    }
}
