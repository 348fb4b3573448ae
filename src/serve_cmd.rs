//! `civlink serve`: Flight SQL for analysts at every level, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// A query still running after this many seconds is stopped (default 300).
    pub query_timeout_secs: Option<u64>,
    /// Queries one principal may run at once (default 4).
    pub max_concurrent_per_principal: Option<usize>,
    /// Memory one query may hold, in MiB, before it spills or fails (default 1024).
    pub memory_per_query_mib: Option<usize>,
    /// Where spill files go (default: the system temporary directory).
    pub spill_dir: Option<PathBuf>,
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
                ..defaults
            },
        })
    }
}

/// Arguments of `civlink serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Flight SQL listen address (overrides the file and CIVLINK_FLIGHT_ADDR).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
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

/// Serve until a shutdown signal; in-flight queries finish or are cancelled.
pub async fn run(config: FlightConfig, catalog: OpenCatalog) -> Result<Outcome> {
    let server = civlink_flight::bind(config, catalog.store.clone(), catalog.tables.clone())
        .await
        .map_err(|e| Error::Serve { message: e.to_string() })?;
    // The address on stdout, for scripts and tests that started us on port 0.
    println!("Flight SQL listening on {}", server.local_addr());
    server.serve(shutdown_signal()).await.map_err(|e| Error::Serve { message: e.to_string() })?;
    println!("Flight SQL stopped");
    Ok(Outcome::Clean)
}
