//! # civlink
//!
//! The command-line entry point. It composes the workspace crates:
//!
//! | command | module | crates |
//! |---|---|---|
//! | `civlink demo` | [`demo`] | civlink-standards, civlink-connectors |
//! | `civlink standards check / validate` | [`standards_cmd`] | civlink-standards, civlink-connectors |
//!
//! Exit codes: 0 success; 1 the data or standard was checked and found wanting
//! (invalid rows, incompatible versions); 2 the command could not run (bad
//! arguments, unreadable files, malformed standards).

mod demo;
mod error;
mod standards_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{Error, Result};

/// civlink: the civil-affairs data-integration hub.
#[derive(Debug, Parser)]
#[command(name = "civlink", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate sample department data and validate it end to end, on embedded defaults.
    Demo(demo::DemoArgs),
    /// Data standards: check a standard (and its compatibility), validate data against one.
    #[command(subcommand)]
    Standards(standards_cmd::StandardsCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CIVLINK_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Standards(command) => standards_cmd::run(command),
    };
    match outcome {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// How a command that ran ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Clean,
    /// The command ran and found problems (invalid rows, incompatibilities).
    Findings,
}

impl Outcome {
    fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Findings => ExitCode::from(1),
        }
    }
}
