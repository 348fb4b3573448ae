//! The binary's error type: one variant per cause a command can fail for.

use std::path::PathBuf;

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A standard document is malformed.
    #[error("{}: {source}", path.display())]
    Standard {
        /// The standard's file.
        path: PathBuf,
        /// What is wrong, with its JSON pointer.
        #[source]
        source: civlink_standards::standard::Error,
    },
    /// A standard could not be compiled into a validator.
    #[error("{path}: {source}")]
    Compile {
        /// The standard's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: civlink_standards::validate::Error,
    },
    /// The compatibility check could not run.
    #[error("{path}: {source}")]
    Compat {
        /// The standard's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: civlink_standards::compat::Error,
    },
    /// A data file could not be read.
    #[error(transparent)]
    Source(#[from] civlink_connectors::file::Error),
    /// The configuration is invalid (every problem listed).
    #[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
    Config {
        /// One line per problem.
        problems: Vec<String>,
    },
    /// The catalog's metadata store failed.
    #[error("catalog: {0}")]
    Store(#[source] civlink_catalog::store::Error),
    /// Table storage failed.
    #[error("tables: {0}")]
    Table(#[source] civlink_catalog::table::Error),
    /// The access policy (principals, tokens, grants, audit log) failed.
    #[error("policy: {0}")]
    Policy(#[source] civlink_catalog::policy::Error),
    /// `token create` refused its arguments.
    #[error(transparent)]
    Token(#[from] crate::token_cmd::TokenError),
    /// A delivery-gate override was refused.
    #[error(transparent)]
    Override(#[from] crate::ingest_cmd::OverrideError),
    /// `catalog read` refused a version or time, or could not mask.
    #[error(transparent)]
    CatalogRead(#[from] crate::catalog_cmd::ReadError),
    /// A verification command failed or refused its arguments.
    #[error(transparent)]
    Verify(#[from] crate::verify_cmd::VerifyError),
    /// The demo could not go on.
    #[error("demo: {message}")]
    Demo {
        /// What went wrong.
        message: String,
    },
    /// A job file is invalid.
    #[error("{path}: {message}")]
    Job {
        /// The job file.
        path: PathBuf,
        /// Every problem found.
        message: String,
    },
    /// An ingestion run failed; the dataset is unchanged.
    #[error("ingest {job} failed (dataset unchanged): {message}")]
    Ingest {
        /// The job file.
        job: PathBuf,
        /// Why.
        message: String,
    },
    /// The Flight SQL server failed to start or stopped with an error.
    #[error("serve: {message}")]
    Serve {
        /// Why.
        message: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Output could not be rendered.
    #[error("cannot render output: {message}")]
    Output {
        /// Why.
        message: String,
    },
}

/// Result with the binary's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
