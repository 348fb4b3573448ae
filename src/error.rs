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
    #[error("{path}: {source}")]
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
    /// Output could not be rendered.
    #[error("cannot render output: {message}")]
    Output {
        /// Why.
        message: String,
    },
}

/// Result with the binary's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
