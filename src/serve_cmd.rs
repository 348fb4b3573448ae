//! `civlink serve`: Flight SQL for analysts at every level and the REST API for
//! departmental systems, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use civlink_api::ApiConfig;
use civlink_flight::{FlightConfig, Limits, TlsConfig};
use serde::Deserialize;

use crate::ingest_cmd::OpenCatalog;
use crate::{Error, Outcome, Result};

/// The `[serve]` section of `civlink.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Flight SQL listen address (default `127.0.0.1:50051`; `CIVLINK_FLIGHT_ADDR` overrides).
    pub flight_addr: Option<SocketAddr>,
    /// REST API listen address (default `127.0.0.1:8080`; `CIVLINK_API_ADDR` overrides).
    pub api_addr: Option<SocketAddr>,
    /// A query still running after this many seconds is stopped (default 300).
    pub query_timeout_secs: Option<u64>,
    /// Queries one principal may run at once (default 4).
    pub max_concurrent_per_principal: Option<usize>,
    /// Memory one query may hold, in MiB, before it spills or fails (default 1024).
    pub memory_per_query_mib: Option<usize>,
    /// Where spill files go (default: the system temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// MiB of decoded tables Flight SQL and REST each keep in memory between queries (default 2048; 0 = off).
    pub table_cache_mib: Option<usize>,
    /// TLS certificate chain (PEM, server certificate first); with `tls_key`,
    /// serves Flight SQL only over TLS (clients use `grpc+tls://`). A missing
    /// or unusable file stops `civlink serve` at startup, naming the file.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1), matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl ServeSection {
    /// The Flight server configuration, with `--addr` and the environment applied.
    pub fn flight_config(&self, addr_flag: Option<SocketAddr>) -> Result<FlightConfig> {
        let mut problems = Vec::new();
        let env_addr = match std::env::var("CIVLINK_FLIGHT_ADDR") {
            Ok(text) if !text.is_empty() => match text.parse() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    problems.push(format!("CIVLINK_FLIGHT_ADDR: \"{text}\" is not an address: {e}"));
                    None
                }
            },
            _ => None,
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert: cert.clone(), key: key.clone() }),
            (None, None) => None,
            _ => {
                problems.push("serve.tls_cert and serve.tls_key go together".into());
                None
            }
        };
        if !problems.is_empty() {
            return Err(Error::Config { problems });
        }
        let defaults = Limits::default();
        Ok(FlightConfig {
            addr: addr_flag.or(env_addr).or(self.flight_addr).unwrap_or(FlightConfig::default().addr),
            tls,
            limits: Limits {
                query_timeout: self.query_timeout_secs.map(Duration::from_secs).unwrap_or(defaults.query_timeout),
                max_concurrent_per_principal: self
                    .max_concurrent_per_principal
                    .unwrap_or(defaults.max_concurrent_per_principal),
                memory_per_query: self.memory_per_query_mib.map(|m| m << 20).unwrap_or(defaults.memory_per_query),
                spill_dir: self.spill_dir.clone().or(defaults.spill_dir),
                table_cache_bytes: self.table_cache_mib.map(|m| m << 20).unwrap_or(defaults.table_cache_bytes),
                ..defaults
            },
        })
    }
}

impl ServeSection {
    /// The REST API configuration, with `--api-addr` and the environment
    /// applied; it shares the Flight limits.
    pub fn api_config(&self, addr_flag: Option<SocketAddr>) -> Result<ApiConfig> {
        let env_addr = match std::env::var("CIVLINK_API_ADDR") {
            Ok(text) if !text.is_empty() => Some(text.parse().map_err(|e| Error::Config {
                problems: vec![format!("CIVLINK_API_ADDR: \"{text}\" is not an address: {e}")],
            })?),
            _ => None,
        };
        let defaults = ApiConfig::default();
        Ok(ApiConfig {
            addr: addr_flag.or(env_addr).or(self.api_addr).unwrap_or(defaults.addr),
            query_timeout_secs: self.query_timeout_secs.unwrap_or(defaults.query_timeout_secs),
            max_concurrent_per_principal: self
                .max_concurrent_per_principal
                .unwrap_or(defaults.max_concurrent_per_principal),
            memory_per_query_mib: self.memory_per_query_mib.unwrap_or(defaults.memory_per_query_mib),
            spill_dir: self.spill_dir.clone().or(defaults.spill_dir),
            table_cache_mib: self.table_cache_mib.unwrap_or(defaults.table_cache_mib),
        })
    }
}

/// Arguments of `civlink serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Flight SQL listen address (overrides the file and CIVLINK_FLIGHT_ADDR).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// REST API listen address (overrides the file and CIVLINK_API_ADDR).
    #[arg(long)]
    pub api_addr: Option<SocketAddr>,
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight queries");
}

/// Serve Flight SQL and REST until a shutdown signal; in-flight queries finish or are cancelled.
pub async fn run(flight: FlightConfig, api: ApiConfig, catalog: OpenCatalog) -> Result<Outcome> {
    let flight = civlink_flight::bind(flight, catalog.store.clone(), catalog.tables.clone())
        .await
        .map_err(|e| Error::Serve { message: format!("Flight SQL: {e}") })?;
    let api = civlink_api::bind(api, catalog.store.clone(), catalog.tables.clone())
        .await
        .map_err(|e| Error::Serve { message: format!("REST API: {e}") })?;
    // The addresses on stdout, for scripts and tests that started us on port 0.
    println!("Flight SQL listening on {}", flight.local_addr());
    println!("REST API listening on http://{}", api.local_addr());
    serve_both(flight, api, shutdown_signal()).await?;
    println!("Flight SQL stopped");
    println!("REST API stopped");
    Ok(Outcome::Clean)
}

/// Serve both servers until `shutdown` resolves, then stop both and wait for them.
pub async fn serve_both(
    flight: civlink_flight::FlightServer,
    api: civlink_api::ApiServer,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut api_stopped = stopped.clone();
    let api_task = tokio::spawn(api.serve(async move {
        let _ = api_stopped.wait_for(|stop| *stop).await;
    }));
    let mut flight_stopped = stopped;
    let flight_task = tokio::spawn(flight.serve(async move {
        let _ = flight_stopped.wait_for(|stop| *stop).await;
    }));
    shutdown.await;
    let _ = stop.send(true);
    let flight_result = flight_task.await;
    let api_result = api_task.await;
    match flight_result {
        Ok(result) => result.map_err(|e| Error::Serve { message: format!("Flight SQL: {e}") })?,
        Err(e) => return Err(Error::Serve { message: format!("Flight SQL task: {e}") }),
    }
    match api_result {
        Ok(result) => result.map_err(|e| Error::Serve { message: format!("REST API: {e}") }),
        Err(e) => Err(Error::Serve { message: format!("REST API task: {e}") }),
    }
}
