//! The metadata store's failures ([`StoreError`], re-exported as
//! `store::Error`), in a module of their own because both the store and the
//! policy's error (which wraps them) name them.

use crate::model::RunStatus;

/// A metadata store failure.
///
/// Messages never contain passwords from database URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the metadata store at {url_redacted}: {message}")]
    Connect {
        /// The URL with its password replaced by `***`.
        url_redacted: String,
        /// What went wrong.
        message: String,
    },
    /// The migrations could not be applied.
    #[error("cannot migrate the metadata store: {message}")]
    Migrate {
        /// What went wrong.
        message: String,
    },
    /// A statement failed.
    #[error("metadata store: cannot {operation}: {message}")]
    Query {
        /// What the store was doing, e.g. "register standard".
        operation: &'static str,
        /// The database's message.
        message: String,
    },
    /// No dataset with this id is registered.
    #[error("unknown dataset {dataset}")]
    UnknownDataset {
        /// The dataset id.
        dataset: String,
    },
    /// No run with this id was started.
    #[error("unknown run {run_id}")]
    UnknownRun {
        /// The run id.
        run_id: String,
    },
    /// The same standard id and version is already registered with a different document.
    #[error(
        "standard {id} version {version} is already registered with a different document; register it as a new version"
    )]
    StandardConflict {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
    },
    /// A stored value does not parse.
    #[error("corrupt metadata in {what}: {message}")]
    Corrupt {
        /// Which value, e.g. `runs.status of run 42`.
        what: String,
        /// Why it does not parse.
        message: String,
    },
    /// The run cannot be committed or finished because it is no longer running.
    #[error("run {run_id} is already {}; only a running run can be committed or finished", status.code())]
    RunNotRunning {
        /// The run id.
        run_id: String,
        /// Its recorded status.
        status: RunStatus,
    },
    /// Only a held run can be accepted, once.
    #[error("run {run_id} is {}, not held; only a held run can be accepted", if *accepted { "held and already accepted" } else { status.code() })]
    RunNotHeld {
        /// The run id.
        run_id: String,
        /// Its recorded status.
        status: RunStatus,
        /// Whether it was held and someone accepted it already.
        accepted: bool,
    },
    /// A held run whose dataset has moved on: accepting it would replace newer data.
    #[error(
        "run {run_id} was held against version {} of its dataset, which is now at version {}: accepting it would replace newer data; run the job again with --force instead",
        held_against.map_or_else(|| "none".to_owned(), |v| v.to_string()),
        current.map_or_else(|| "none".to_owned(), |v| v.to_string())
    )]
    HoldSuperseded {
        /// The run id.
        run_id: String,
        /// The dataset's version when the run was held.
        held_against: Option<i64>,
        /// The dataset's version now.
        current: Option<i64>,
    },
    /// No finding with this id (or none the caller's scope holds).
    #[error("unknown finding {finding_id}")]
    UnknownFinding {
        /// The id given.
        finding_id: String,
    },
    /// The finding's status does not allow this decision.
    #[error("finding {finding_id} is {from}; it cannot become {to} (only open or under_review findings are decided)")]
    FindingTransition {
        /// The finding.
        finding_id: String,
        /// Its status.
        from: crate::findings::FindingStatus,
        /// The status asked for.
        to: crate::findings::FindingStatus,
    },
    /// An argument the store cannot record as given.
    #[error("cannot record {what}: {message}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why.
        message: String,
    },
}
