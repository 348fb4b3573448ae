//! `civlink serve`: Flight SQL for analysts at every level and the REST API
//! for departmental systems, until SIGTERM or Ctrl-C.
//!
//! Both transports run over ONE [`SessionFactory`]: one table cache, one
//! slot table (a principal's concurrency limit counts its Flight and REST
//! queries together), one memory budget, one mask key, one auditor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use civlink_api::ApiConfig;
use civlink_flight::{FlightConfig, PreEncoded, TlsConfig};
use civlink_query::{Limits, SessionFactory};
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
    /// TLS certificate chain (PEM, server certificate first); with `tls_key`,
    /// serves Flight SQL only over TLS (clients use `grpc+tls://`). A missing
    /// or unusable file stops `civlink serve` at startup, naming the file.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1), matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A file the audit chain's head (`SEQ:HASH`) is written to periodically,
    /// outside the database, for `civlink audit verify --expect-head`
    /// (`CIVLINK_AUDIT_CHECKPOINT` overrides; default: none).
    pub audit_checkpoint: Option<PathBuf>,
    /// Seconds between audit checkpoints (default 60; `CIVLINK_AUDIT_CHECKPOINT_SECS` overrides it).
    pub audit_checkpoint_secs: Option<u64>,
    /// Which datasets a household check (核对) consults: a sources file like
    /// the shipped `checks/household.toml` (default: that one;
    /// `CIVLINK_CHECK_SOURCES` overrides). Checked against the catalog at startup.
    pub check_sources: Option<PathBuf>,
    /// Limits of every query, whichever transport it arrives by.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// The `[serve.limits]` section: what [`Limits`] is built from. Each key
/// has an environment override, `CIVLINK_LIMITS_<KEY>` in capitals.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// A request (planning, opening tables and running) still going after
    /// this many seconds is stopped (default 300).
    pub query_timeout_secs: Option<u64>,
    /// Queries one principal may run at once, over Flight SQL and REST together (default 4).
    pub max_concurrent_per_principal: Option<usize>,
    /// Memory one query may hold, in MiB, before it spills or fails (default 1024).
    pub memory_per_query_mib: Option<usize>,
    /// Memory all queries together may hold, in MiB (default 4096).
    pub memory_total_mib: Option<usize>,
    /// Disk all queries together may spill to, in MiB (default 16384).
    pub spill_mib: Option<u64>,
    /// Where spill files go (default: the system temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// MiB of decoded tables kept in memory between queries, for both
    /// transports (default 2048; 0 = off).
    pub table_cache_mib: Option<usize>,
    /// Connections one client address may hold open, over both transports (default 64).
    pub max_connections_per_client: Option<usize>,
    /// Connections all clients together may hold open (default 1024).
    pub max_connections: Option<usize>,
    /// Requests one HTTP/2 (Flight SQL) connection may have in flight (default 64).
    pub max_streams_per_connection: Option<u32>,
}

/// Everything `civlink serve` runs with, resolved.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The Flight SQL server.
    pub flight: FlightConfig,
    /// The REST server.
    pub api: ApiConfig,
    /// Query limits.
    pub limits: Limits,
    /// Where and how often the audit head is checkpointed.
    pub checkpoint: Option<(PathBuf, Duration)>,
}

/// An environment value parsed, or a problem recorded.
fn env_value<T: std::str::FromStr>(name: &str, problems: &mut Vec<String>) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => match text.trim().parse() {
            Ok(value) => Some(value),
            Err(e) => {
                problems.push(format!("{name}: \"{text}\" is not valid: {e}"));
                None
            }
        },
        _ => None,
    }
}

impl LimitsSection {
    /// The limits, with the environment applied; every problem is recorded.
    fn limits(&self, problems: &mut Vec<String>) -> Limits {
        let defaults = Limits::default();
        let timeout = env_value("CIVLINK_LIMITS_QUERY_TIMEOUT_SECS", problems).or(self.query_timeout_secs);
        let concurrent =
            env_value("CIVLINK_LIMITS_MAX_CONCURRENT_PER_PRINCIPAL", problems).or(self.max_concurrent_per_principal);
        let per_query: Option<usize> =
            env_value("CIVLINK_LIMITS_MEMORY_PER_QUERY_MIB", problems).or(self.memory_per_query_mib);
        let total: Option<usize> = env_value("CIVLINK_LIMITS_MEMORY_TOTAL_MIB", problems).or(self.memory_total_mib);
        let spill: Option<u64> = env_value("CIVLINK_LIMITS_SPILL_MIB", problems).or(self.spill_mib);
        let spill_dir: Option<PathBuf> = env_value("CIVLINK_LIMITS_SPILL_DIR", problems).or(self.spill_dir.clone());
        let cache: Option<usize> = env_value("CIVLINK_LIMITS_TABLE_CACHE_MIB", problems).or(self.table_cache_mib);
        let per_client: Option<usize> =
            env_value("CIVLINK_LIMITS_MAX_CONNECTIONS_PER_CLIENT", problems).or(self.max_connections_per_client);
        let connections: Option<usize> = env_value("CIVLINK_LIMITS_MAX_CONNECTIONS", problems).or(self.max_connections);
        let streams: Option<u32> =
            env_value("CIVLINK_LIMITS_MAX_STREAMS_PER_CONNECTION", problems).or(self.max_streams_per_connection);
        let limits = Limits {
            query_timeout: timeout.map(Duration::from_secs).unwrap_or(defaults.query_timeout),
            max_concurrent_per_principal: concurrent.unwrap_or(defaults.max_concurrent_per_principal),
            memory_per_query: per_query.map(|m| m.saturating_mul(1 << 20)).unwrap_or(defaults.memory_per_query),
            memory_total: total.map(|m| m.saturating_mul(1 << 20)).unwrap_or(defaults.memory_total),
            max_spill_bytes: spill.map(|m| m.saturating_mul(1 << 20)).unwrap_or(defaults.max_spill_bytes),
            spill_dir: spill_dir.or(defaults.spill_dir),
            table_cache_bytes: cache.map(|m| m.saturating_mul(1 << 20)).unwrap_or(defaults.table_cache_bytes),
            connections: civlink_query::connections::ConnectionLimits {
                per_client: per_client.unwrap_or(defaults.connections.per_client),
                total: connections.unwrap_or(defaults.connections.total),
            },
            max_streams_per_connection: streams.unwrap_or(defaults.max_streams_per_connection),
        };
        problems.extend(limits.problems().into_iter().map(|p| format!("serve.limits: {p}")));
        limits
    }
}

impl ServeSection {
    /// Everything `civlink serve` needs, with the flags and the environment
    /// applied; every problem is reported at once.
    pub fn resolve(&self, flight_flag: Option<SocketAddr>, api_flag: Option<SocketAddr>) -> Result<Serving> {
        let mut problems = Vec::new();
        let env_flight: Option<SocketAddr> = env_value("CIVLINK_FLIGHT_ADDR", &mut problems);
        let env_api: Option<SocketAddr> = env_value("CIVLINK_API_ADDR", &mut problems);
        let env_checkpoint: Option<PathBuf> = env_value("CIVLINK_AUDIT_CHECKPOINT", &mut problems);
        let env_checkpoint_secs: Option<u64> = env_value("CIVLINK_AUDIT_CHECKPOINT_SECS", &mut problems);
        let env_check_sources: Option<PathBuf> = env_value("CIVLINK_CHECK_SOURCES", &mut problems);
        let checkpoint_secs = env_checkpoint_secs.or(self.audit_checkpoint_secs);
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert: cert.clone(), key: key.clone() }),
            (None, None) => None,
            _ => {
                problems.push("serve.tls_cert and serve.tls_key go together".into());
                None
            }
        };
        if checkpoint_secs == Some(0) {
            problems.push("serve.audit_checkpoint_secs (CIVLINK_AUDIT_CHECKPOINT_SECS) must be at least 1".into());
        }
        let limits = self.limits.limits(&mut problems);
        if !problems.is_empty() {
            return Err(Error::Config { problems });
        }
        let checkpoint = env_checkpoint
            .or(self.audit_checkpoint.clone())
            .map(|path| (path, Duration::from_secs(checkpoint_secs.unwrap_or(60))));
        Ok(Serving {
            flight: FlightConfig {
                addr: flight_flag.or(env_flight).or(self.flight_addr).unwrap_or(FlightConfig::default().addr),
                tls,
            },
            api: ApiConfig {
                addr: api_flag.or(env_api).or(self.api_addr).unwrap_or(ApiConfig::default().addr),
                check_sources: env_check_sources.or(self.check_sources.clone()),
            },
            limits,
            checkpoint,
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

/// Both servers bound over one factory, not yet serving.
pub struct Bound {
    /// Flight SQL.
    pub flight: civlink_flight::FlightServer,
    /// REST.
    pub api: civlink_api::ApiServer,
    /// What both share.
    pub factory: Arc<SessionFactory>,
}

/// Build the one factory and bind both servers over it.
pub async fn bind(serving: Serving, catalog: &OpenCatalog) -> Result<Bound> {
    let pre_encoded = PreEncoded::default();
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone())
        .limits(serving.limits)
        .keeper(Arc::new(pre_encoded.clone()))
        .build()
        .await
        .map_err(|e| Error::Serve { message: format!("query layer: {e}") })?;
    if let Some((path, every)) = serving.checkpoint {
        factory.auditor().checkpoint_to(path, every);
    }
    let addr = serving.flight.addr;
    let flight = civlink_flight::bind(serving.flight, Arc::clone(&factory), pre_encoded)
        .await
        .map_err(|e| Error::Serve { message: format!("Flight SQL on {addr}: {e}") })?;
    let addr = serving.api.addr;
    let api = civlink_api::bind(serving.api, Arc::clone(&factory))
        .await
        .map_err(|e| Error::Serve { message: format!("REST API on {addr}: {e}") })?;
    Ok(Bound { flight, api, factory })
}

/// Serve Flight SQL and REST until a shutdown signal; in-flight queries finish or are cancelled.
pub async fn run(serving: Serving, catalog: OpenCatalog) -> Result<Outcome> {
    let bound = bind(serving, &catalog).await?;
    // The addresses on stdout, for scripts and tests that started us on port 0.
    println!("Flight SQL listening on {}", bound.flight.local_addr());
    println!("REST API listening on http://{}", bound.api.local_addr());
    serve_both(bound, shutdown_signal()).await?;
    println!("Flight SQL stopped");
    println!("REST API stopped");
    Ok(Outcome::Clean)
}

/// Serve both servers until `shutdown` resolves, then stop both and wait
/// for them, and write what the auditor still counts.
pub async fn serve_both(bound: Bound, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let Bound { flight, api, factory } = bound;
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
    factory.auditor().flush_all().await;
    match flight_result {
        Ok(result) => result.map_err(|e| Error::Serve { message: format!("Flight SQL: {e}") })?,
        Err(e) => return Err(Error::Serve { message: format!("Flight SQL task: {e}") }),
    }
    match api_result {
        Ok(result) => result.map_err(|e| Error::Serve { message: format!("REST API: {e}") }),
        Err(e) => Err(Error::Serve { message: format!("REST API task: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_one_section_and_bad_ones_are_all_reported() {
        let section: ServeSection = toml::from_str(
            "[limits]\nquery_timeout_secs = 7\nmax_concurrent_per_principal = 2\nmemory_per_query_mib = 64\nmemory_total_mib = 128\ntable_cache_mib = 0\n",
        )
        .unwrap();
        let serving = section.resolve(None, None).unwrap();
        assert_eq!(serving.limits.query_timeout, Duration::from_secs(7));
        assert_eq!(serving.limits.max_concurrent_per_principal, 2);
        assert_eq!(serving.limits.memory_total, 128 << 20);
        assert_eq!(serving.limits.table_cache_bytes, 0);
        let bad: ServeSection = toml::from_str(
            "tls_cert = 'x.pem'\naudit_checkpoint_secs = 0\n[limits]\nquery_timeout_secs = 0\nmemory_per_query_mib = 2048\nmemory_total_mib = 1024\n",
        )
        .unwrap();
        let Err(Error::Config { problems }) = bad.resolve(None, None) else { panic!("bad limits accepted") };
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(toml::from_str::<ServeSection>("[limits]\nquery_timeout = 1\n").is_err());
    }
}
