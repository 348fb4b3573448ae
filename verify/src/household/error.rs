//! Why a household check could not be run: one variant per cause, so that
//! a transport maps each to its status without comparing messages.

/// A household check's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sources file is broken (every problem listed).
    #[error("check sources {origin}: {}", problems.join("; "))]
    Sources {
        /// `shipped` or the file's path.
        origin: String,
        /// Each problem.
        problems: Vec<String>,
    },
    /// The principal has not been given the duty of running checks.
    #[error("{principal} may not run household checks (核对): an administrator gives that duty")]
    NotCheckOfficer {
        /// The principal.
        principal: String,
    },
    /// The request names no signed consent (授权书编号): it is refused.
    #[error("a household check needs the applicant's signed consent: give its reference (授权书编号)")]
    NoConsent,
    /// The request is malformed (every problem listed).
    #[error("{}", problems.join("; "))]
    BadRequest {
        /// Each problem.
        problems: Vec<String>,
    },
    /// A source's query returned something the check cannot read.
    #[error("check source {dataset}: {message}")]
    Result {
        /// The dataset.
        dataset: String,
        /// What was wrong.
        message: String,
    },
    /// The catalog failed.
    #[error(transparent)]
    Store(#[from] civlink_catalog::store::Error),
    /// The query layer failed (other than for one source, which the report notes).
    #[error(transparent)]
    Query(#[from] civlink_query::Error),
}
