//! # civlink
//!
//! The command-line entry point. It composes the workspace crates:
//!
//! | command | module | crates |
//! |---|---|---|
//! | `civlink demo [generate]` | [`demo`] | every crate: civlink-synth generates, the rest ingest and serve |
//! | `civlink ingest JOB.toml` | [`ingest_cmd`] | civlink-connectors, civlink-catalog |
//! | `civlink catalog list / show / quarantine / history / read` | [`catalog_cmd`] | civlink-catalog |
//! | `civlink token create / list / revoke` | [`token_cmd`] | civlink-catalog (policy) |
//! | `civlink audit verify / log` | [`audit_cmd`] | civlink-catalog (policy) |
//! | `civlink serve` | [`serve_cmd`] | civlink-flight, civlink-api |
//! | `civlink standards check / validate` | [`standards_cmd`] | civlink-standards, civlink-connectors |
//! | `civlink token create / list / revoke` | [`token_cmd`] | civlink-catalog, civlink-standards |
//! | `civlink audit verify / log` | [`audit_cmd`] | civlink-catalog |
//!
//! Exit codes: 0 success; 1 the data or standard was checked and found wanting
//! (invalid rows, incompatible versions); 2 the command could not run (bad
//! arguments, unreadable files, malformed standards).

mod audit_cmd;
mod catalog_cmd;
mod check_cmd;
mod config;
mod demo;
mod error;
mod grant_cmd;
mod ingest_cmd;
mod jobs_cmd;
mod serve_cmd;
mod serve_jobs;
mod standards_cmd;
mod token_cmd;
mod verify_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{Error, Result};

/// civlink: the civil-affairs data-integration hub.
#[derive(Debug, Parser)]
#[command(name = "civlink", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, global = true, env = "CIVLINK_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Data directory (catalog, local tables); outranks CIVLINK_DATA_DIR and the file.
    #[arg(long, global = true)]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate sample department data and validate it end to end, on embedded defaults.
    Demo(demo::DemoArgs),
    /// Run an ingestion job: read, map, validate, write to the catalog.
    Ingest(ingest_cmd::IngestArgs),
    /// The governed catalog: datasets, quality, quarantine, history.
    #[command(subcommand)]
    Catalog(catalog_cmd::CatalogCommand),
    /// Data standards: check a standard (and its compatibility), validate data against one.
    #[command(subcommand)]
    Standards(standards_cmd::StandardsCommand),
    /// API tokens: issue (printed once), list, revoke.
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
    /// Grants on datasets: make (columns, unmasking, purpose, expiry), list, revoke.
    #[command(subcommand)]
    Grant(grant_cmd::GrantCommand),
    /// The tamper-evident audit log: verify the hash chain, show entries.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Verification rules (比对): list them, run them and record their findings.
    #[command(subcommand)]
    Verify(verify_cmd::VerifyCommand),
    /// Findings of the verification rules in your division: list, show, decide, summary.
    #[command(subcommand)]
    Findings(verify_cmd::FindingsCommand),
    /// Ingestion jobs of a job directory: list (schedule, next run, last run), run one now, history.
    #[command(subcommand)]
    Jobs(jobs_cmd::JobsCommand),
    /// Household economic-status checks (核对), under the applicant's signed consent.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Serve Flight SQL (default 127.0.0.1:50051) and REST (127.0.0.1:8080) until SIGTERM.
    Serve(serve_cmd::ServeArgs),
}

/// `civlink check` subcommands.
#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// What every department holds about an applicant household's members.
    Household(check_cmd::HouseholdArgs),
}

fn main() -> ExitCode {
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let asked = tracing_subscriber::EnvFilter::try_from_env("CIVLINK_LOG").unwrap_or_else(|_| "warn".into());
        tracing_subscriber::registry()
            .with(asked)
            .with(tracing_subscriber::filter::filter_fn(civlink_query::redact::may_log))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init();
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(demo::DemoArgs { command: Some(demo::DemoCommand::Generate(args)), .. }) => demo::generate(args),
        Command::Demo(demo::DemoArgs { command: None, run }) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { demo::run(run, catalog).await })
        }
        Command::Standards(command) => standards_cmd::run(command),
        Command::Ingest(args) => with_catalog(&cli.config, &cli.data_dir, |catalog| async move {
            let (outcome, ran) = ingest_cmd::run(&args, &catalog).await?;
            // Rules scheduled after this ingestion (`[schedule] after_ingest`), unless the run was held.
            if let Some(ran) = ran
                && let Some(rules) =
                    verify_cmd::after_ingest(&catalog, &ran.dataset, ran.status, &args.rules_dirs).await?
            {
                print!("{rules}");
            }
            Ok(outcome)
        }),
        Command::Catalog(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { catalog_cmd::run(command, &catalog).await })
        }
        Command::Token(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { token_cmd::run(command, &catalog).await })
        }
        Command::Grant(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { grant_cmd::run(command, &catalog).await })
        }
        Command::Audit(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { audit_cmd::run(command, &catalog).await })
        }
        Command::Verify(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { verify_cmd::run(command, &catalog).await })
        }
        Command::Findings(command) => {
            with_catalog(
                &cli.config,
                &cli.data_dir,
                |catalog| async move { verify_cmd::findings(command, &catalog).await },
            )
        }
        Command::Jobs(command) => {
            with_catalog(&cli.config, &cli.data_dir, |catalog| async move { jobs_cmd::run(command, &catalog).await })
        }
        Command::Check(CheckCommand::Household(args)) => with_catalog(
            &cli.config,
            &cli.data_dir,
            |catalog| async move { check_cmd::household(args, &catalog).await },
        ),
        Command::Serve(args) => {
            let serving = config::load_serve(cli.config.as_deref()).and_then(|s| s.resolve(args.addr, args.api_addr));
            match serving {
                Ok(serving) => {
                    with_catalog(
                        &cli.config,
                        &cli.data_dir,
                        |catalog| async move { serve_cmd::run(serving, catalog).await },
                    )
                }
                Err(e) => Err(e),
            }
        }
    };
    match outcome {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Run an async command against the configured catalog.
fn with_catalog<F, Fut>(
    config: &Option<std::path::PathBuf>,
    data_dir: &Option<std::path::PathBuf>,
    command: F,
) -> Result<Outcome>
where
    F: FnOnce(ingest_cmd::OpenCatalog) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let config = config::load(config.as_deref(), data_dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Error::Runtime)?;
    runtime.block_on(async move {
        let catalog = ingest_cmd::OpenCatalog::open(config).await?;
        command(catalog).await
    })
}

/// How a command that ran ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Clean,
    /// The command ran and found problems (invalid rows, incompatibilities).
    Findings,
    /// An ingest run a delivery gate held: the dataset kept its version.
    Held,
}

impl Outcome {
    fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Findings => ExitCode::from(1),
            Outcome::Held => ExitCode::from(3),
        }
    }
}
