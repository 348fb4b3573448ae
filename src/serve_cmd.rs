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
use civlink_connectors::job::Job;
use civlink_connectors::pipeline::RunOutcome;
use civlink_connectors::schedule::{AfterRun, Scheduler, SchedulerCatalog, SchedulerConfig};
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
    /// The ingestion jobs run on their schedules.
    #[serde(default)]
    pub scheduler: SchedulerSection,
}

/// The `[serve.scheduler]` section: which job directory `civlink serve`
/// schedules, and how. Without a `jobs_dir` no scheduler runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    /// The job files (`*.toml`) whose `schedule` and `after` are run; read
    /// again every `rescan_secs`, so jobs are added or changed without a
    /// restart (`CIVLINK_JOBS_DIR` overrides; default: no scheduler).
    pub jobs_dir: Option<PathBuf>,
    /// Seconds a job's lease lasts unless renewed: how long another process
    /// sharing the catalog waits before taking over a job whose process died
    /// (default 60; `CIVLINK_SCHEDULER_LEASE_SECS` overrides).
    pub lease_secs: Option<u64>,
    /// Seconds between reads of the job directory (default 10; `CIVLINK_SCHEDULER_RESCAN_SECS` overrides).
    pub rescan_secs: Option<u64>,
    /// Seconds a run in progress at shutdown may take to finish before it is
    /// stopped with its dataset untouched (default 30; `CIVLINK_SCHEDULER_GRACE_SECS` overrides).
    pub shutdown_grace_secs: Option<u64>,
    /// Rule directories whose rules with `[schedule] after_ingest` run after
    /// a scheduled run commits (`CIVLINK_RULES_DIR` overrides with one directory).
    #[serde(default)]
    pub rules_dirs: Vec<PathBuf>,
}

impl SchedulerSection {
    /// The scheduler's settings, with the environment applied (`None`: no
    /// job directory given); every problem is recorded.
    fn resolve(&self, problems: &mut Vec<String>) -> (Option<SchedulerConfig>, Vec<PathBuf>) {
        let dir: Option<PathBuf> = env_value("CIVLINK_JOBS_DIR", problems).or(self.jobs_dir.clone());
        let mut seconds = |name: &str, key: &str, given: Option<u64>, least: u64| -> Option<Duration> {
            let value: Option<u64> = env_value(name, problems).or(given);
            if value.is_some_and(|v| v < least || v > 86_400) {
                problems.push(format!("serve.scheduler.{key} ({name}) must be {least} to 86400 seconds"));
            }
            value.map(Duration::from_secs)
        };
        let lease = seconds("CIVLINK_SCHEDULER_LEASE_SECS", "lease_secs", self.lease_secs, 1);
        let rescan = seconds("CIVLINK_SCHEDULER_RESCAN_SECS", "rescan_secs", self.rescan_secs, 1);
        let grace = seconds("CIVLINK_SCHEDULER_GRACE_SECS", "shutdown_grace_secs", self.shutdown_grace_secs, 0);
        let rules_dirs = match env_value::<PathBuf>("CIVLINK_RULES_DIR", problems) {
            Some(dir) => vec![dir],
            None => self.rules_dirs.clone(),
        };
        let config = dir.map(|dir| {
            let defaults = SchedulerConfig::new(dir);
            SchedulerConfig {
                lease: lease.unwrap_or(defaults.lease),
                rescan: rescan.unwrap_or(defaults.rescan),
                grace: grace.unwrap_or(defaults.grace),
                ..defaults
            }
        });
        (config, rules_dirs)
    }
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
    /// The scheduler, when a job directory is given.
    pub scheduler: Option<SchedulerConfig>,
    /// Rule directories for the rules scheduled after ingestion.
    pub rules_dirs: Vec<PathBuf>,
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
        let (scheduler, rules_dirs) = self.scheduler.resolve(&mut problems);
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
            scheduler,
            rules_dirs,
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
    // The scheduler's job directory is also operated over REST.
    let jobs = serving.scheduler.as_ref().map(|config| {
        let owned = OpenCatalog {
            config: catalog.config.clone(),
            store: catalog.store.clone(),
            tables: catalog.tables.clone(),
        };
        Arc::new(crate::serve_jobs::ServeJobs { dir: config.jobs_dir.clone(), catalog: Arc::new(owned) })
            as Arc<dyn civlink_api::jobs::JobControl>
    });
    let api = civlink_api::bind_with_jobs(serving.api, Arc::clone(&factory), jobs)
        .await
        .map_err(|e| Error::Serve { message: format!("REST API on {addr}: {e}") })?;
    Ok(Bound { flight, api, factory })
}

/// Serve Flight SQL and REST until a shutdown signal; in-flight queries finish or are cancelled.
pub async fn run(serving: Serving, catalog: OpenCatalog) -> Result<Outcome> {
    let scheduler_config = serving.scheduler.clone();
    let rules_dirs = serving.rules_dirs.clone();
    if let Some(config) = &scheduler_config
        && let Err(e) = std::fs::read_dir(&config.jobs_dir)
    {
        return Err(Error::Config {
            problems: vec![format!("serve.scheduler.jobs_dir: cannot read {}: {e}", config.jobs_dir.display())],
        });
    }
    let bound = bind(serving, &catalog).await?;
    let catalog = Arc::new(catalog);
    let scheduler = scheduler_config.map(|config| {
        let owned = SchedulerCatalog {
            store: catalog.store.clone(),
            tables: catalog.tables.clone(),
            s3: catalog.config.s3.clone(),
        };
        let mut scheduler = Scheduler::new(config, Arc::new(owned));
        if !rules_dirs.is_empty() {
            scheduler =
                scheduler.after_run(Arc::new(RulesAfterIngest { catalog: Arc::clone(&catalog), dirs: rules_dirs }));
        }
        scheduler
    });
    // The addresses on stdout, for scripts and tests that started us on port 0.
    println!("Flight SQL listening on {}", bound.flight.local_addr());
    println!("REST API listening on http://{}", bound.api.local_addr());
    if let Some(scheduler) = &scheduler {
        println!("scheduler running as {}", scheduler.holder());
    }
    serve_both(bound, scheduler, shutdown_signal()).await?;
    println!("Flight SQL stopped");
    println!("REST API stopped");
    Ok(Outcome::Clean)
}

/// After a scheduled run commits (or is held): the rules scheduled after
/// ingestion of its dataset, as `civlink ingest --rules-dir` runs them.
struct RulesAfterIngest {
    catalog: Arc<OpenCatalog>,
    dirs: Vec<PathBuf>,
}

impl AfterRun for RulesAfterIngest {
    fn after_run<'a>(&'a self, job: &'a Job, outcome: &'a RunOutcome) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let run = &outcome.run;
            match crate::verify_cmd::after_ingest(&self.catalog, &run.dataset, run.status, &self.dirs).await {
                Ok(Some(table)) => {
                    tracing::info!(job = %job.spec.name, dataset = %run.dataset, "rules after ingest:\n{table}")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(job = %job.spec.name, dataset = %run.dataset, %error,
                    "the rules scheduled after this ingestion did not run"),
            }
        })
    }
}

/// Serve both servers (and the scheduler, if any) until `shutdown`
/// resolves, then stop them all and wait for them (the scheduler gives its
/// runs in progress their grace period), and write what the auditor still counts.
pub async fn serve_both(
    bound: Bound,
    scheduler: Option<Scheduler>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let Bound { flight, api, factory } = bound;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler_task = scheduler.map(|scheduler| {
        let mut scheduler_stopped = stopped.clone();
        tokio::spawn(scheduler.run(async move {
            let _ = scheduler_stopped.wait_for(|stop| *stop).await;
        }))
    });
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
    let scheduler_result = match scheduler_task {
        Some(task) => match task.await {
            Ok(Ok(())) => {
                println!("scheduler stopped");
                Ok(())
            }
            Ok(Err(e)) => Err(Error::Serve { message: format!("scheduler: {e}") }),
            Err(e) => Err(Error::Serve { message: format!("scheduler task: {e}") }),
        },
        None => Ok(()),
    };
    // What the auditor holds is written whatever else failed.
    factory.auditor().flush_all().await;
    scheduler_result?;
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
