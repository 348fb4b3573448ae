//! The query layer's one error type.
//!
//! Every way a governed request can fail is a variant here, with what the
//! caller may be told in its `Display` and the rest in fields that are only
//! logged. Transports map it in one place each: Flight SQL to a gRPC status
//! (`civlink_flight::error::to_status`), REST to a problem document
//! (`civlink_api::error`). [`Error::kind`] is the typed classification both
//! of them, the audit log ([`Error::outcome`]) and the tests match on.
//!
//! * authentication failures say which (missing, malformed, invalid,
//!   expired, revoked, wrong user) but never echo what was presented;
//! * the client's own mistakes (SQL that does not plan, a malformed request)
//!   carry the engine's message, which only ever describes the client's own
//!   request: tables it may not read do not exist in its session;
//! * limits have their own variants;
//! * everything else (the metadata store, storage, the engine's own
//!   failures) is internal: its detail goes to the log, never to a client.

use civlink_catalog::policy::{AuditOutcome, OutcomeKind};
use datafusion::error::DataFusionError;

/// Why a governed request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credentials.
    #[error("missing credentials: send \"authorization: Bearer <token>\" (Basic user:token in the handshake)")]
    MissingCredentials,
    /// Credentials that cannot be read.
    #[error("malformed authorization header: {reason}")]
    MalformedCredentials {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token is not a valid civlink token, or not a known one.
    #[error("invalid token")]
    InvalidToken,
    /// The token has expired.
    #[error("the token has expired")]
    TokenExpired,
    /// The token was revoked.
    #[error("the token has been revoked")]
    TokenRevoked,
    /// The Basic user name is not the token's principal.
    #[error("the user name does not match the token")]
    UserMismatch,
    /// The principal may not do this.
    #[error("permission denied: {what}")]
    PermissionDenied {
        /// What was refused.
        what: String,
    },
    /// The request stated no purpose, and a grant on a dataset it reads
    /// requires one (`civlink_catalog::policy::purpose_required`).
    #[error("reading {dataset} requires a stated purpose under grant {grant}: send the x-civlink-purpose header")]
    PurposeRequired {
        /// The dataset.
        dataset: String,
        /// The grant requiring it.
        grant: String,
    },
    /// A request that is malformed (bad handle, bad parameters, …).
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// The client's SQL does not parse, plan or evaluate (its own mistake).
    #[error("{message}")]
    Query {
        /// The engine's description of the problem.
        message: String,
    },
    /// A column the dataset does not have for this principal (unknown and
    /// unreadable columns are the same to it).
    #[error("unknown column \"{column}\"")]
    UnknownColumn {
        /// The name given.
        column: String,
    },
    /// A dataset the principal may not read, or that does not exist (the
    /// same answer, so a refusal does not reveal which datasets exist).
    #[error("no dataset {dataset}")]
    UnknownDataset {
        /// The dataset named.
        dataset: String,
    },
    /// Something this read-only layer does not do.
    #[error("not supported: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// The principal already runs as many queries as it may.
    #[error("too many concurrent queries (limit {limit} per principal)")]
    TooManyQueries {
        /// The limit.
        limit: usize,
    },
    /// The query needed more memory than it may have (its own cap, or what
    /// the whole server has left), after spilling.
    #[error("the query exceeded its memory limit")]
    MemoryExhausted {
        /// The engine's message (logged, not sent: it can name operators and sizes).
        detail: String,
    },
    /// The query ran past its time limit.
    #[error("the query exceeded its time limit of {seconds} s")]
    Timeout {
        /// The limit.
        seconds: u64,
    },
    /// The query was cancelled by its principal.
    #[error("the query was cancelled")]
    Cancelled,
    /// The client went away before the results were sent.
    #[error("the client closed the stream")]
    ClientClosed,
    /// A request to cancel a query that is not running (finished, never
    /// started, or another principal's).
    #[error("no such running query")]
    UnknownQuery,
    /// The audit log could not be written, so the request was refused
    /// (fail closed: nothing leaves without its audit entry).
    #[error("the audit log is unavailable; the request was refused")]
    AuditUnavailable {
        /// What failed (logged).
        detail: String,
    },
    /// The metadata store or policy failed (not an authentication failure).
    #[error("metadata store: {message}")]
    Store {
        /// What failed.
        message: String,
    },
    /// A Delta table could not be opened.
    #[error("table storage: {0}")]
    Table(#[from] civlink_catalog::table::Error),
    /// The engine failed for a reason that is not the client's.
    #[error("query engine: {message}")]
    Engine {
        /// The engine's message.
        message: String,
    },
    /// Encoding or decoding Arrow data failed on our side.
    #[error("arrow: {message}")]
    Arrow {
        /// What failed.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: what transports map to their codes
/// and tests match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Missing, malformed, invalid, expired or revoked credentials.
    Unauthenticated,
    /// Not allowed.
    PermissionDenied,
    /// The client's request is wrong.
    InvalidRequest,
    /// Not supported.
    Unsupported,
    /// A concurrency, memory or size limit.
    ResourceExhausted,
    /// The time limit.
    Timeout,
    /// Cancelled by the principal.
    Cancelled,
    /// The client went away.
    ClientClosed,
    /// Nothing by that name (a dataset it may not read, a query not running).
    NotFound,
    /// The audit log could not be written.
    AuditUnavailable,
    /// civlink's own failure.
    Internal,
}

impl Error {
    /// Classify an engine error: the client's mistakes (planning, SQL,
    /// schema, casts of its own values) versus limits versus our failures.
    pub fn from_datafusion(error: DataFusionError) -> Error {
        let root = error.find_root();
        match root {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => Error::Query { message: root.message().into_owned() },
            DataFusionError::ResourcesExhausted(detail) => Error::MemoryExhausted { detail: detail.clone() },
            DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
                // A table provider's own failure (a table that cannot be opened
                // or scoped) travels through DataFusion boxed; unbox a copy.
                Some(inner) => inner.duplicate(),
                None => Error::Engine { message: error.to_string() },
            },
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                arrow::error::ArrowError::CastError(m)
                | arrow::error::ArrowError::ComputeError(m)
                | arrow::error::ArrowError::InvalidArgumentError(m)
                | arrow::error::ArrowError::ParseError(m)
                | arrow::error::ArrowError::ArithmeticOverflow(m) => Error::Query { message: m.clone() },
                arrow::error::ArrowError::DivideByZero => Error::Query { message: "division by zero".into() },
                arrow::error::ArrowError::MemoryError(m) => Error::MemoryExhausted { detail: m.clone() },
                arrow::error::ArrowError::IoError(m, io) if spill_budget_exceeded(io) => {
                    Error::MemoryExhausted { detail: m.clone() }
                }
                _ => Error::Engine { message: error.to_string() },
            },
            DataFusionError::IoError(io) if spill_budget_exceeded(io) => {
                Error::MemoryExhausted { detail: io.to_string() }
            }
            _ => Error::Engine { message: error.to_string() },
        }
    }

    /// An authentication or policy failure from the metadata store.
    pub fn from_policy(error: civlink_catalog::policy::Error) -> Error {
        use civlink_catalog::policy::Error as P;
        match error {
            P::BadToken | P::UnknownToken { .. } | P::UnknownPrincipal { .. } => Error::InvalidToken,
            P::TokenExpired { .. } => Error::TokenExpired,
            P::TokenRevoked { .. } => Error::TokenRevoked,
            other @ (P::Store(_)
            | P::Invalid { .. }
            | P::UnknownGrant { .. }
            | P::GrantExists { .. }
            | P::MissingStandard { .. }
            | P::BadStandard { .. }) => Error::Store { message: other.to_string() },
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingCredentials
            | Error::MalformedCredentials { .. }
            | Error::InvalidToken
            | Error::TokenExpired
            | Error::TokenRevoked
            | Error::UserMismatch => ErrorKind::Unauthenticated,
            Error::PermissionDenied { .. } | Error::PurposeRequired { .. } => ErrorKind::PermissionDenied,
            Error::InvalidRequest { .. } | Error::Query { .. } | Error::UnknownColumn { .. } => {
                ErrorKind::InvalidRequest
            }
            Error::UnknownDataset { .. } => ErrorKind::NotFound,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::TooManyQueries { .. } | Error::MemoryExhausted { .. } => ErrorKind::ResourceExhausted,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::ClientClosed => ErrorKind::ClientClosed,
            Error::UnknownQuery => ErrorKind::NotFound,
            Error::AuditUnavailable { .. } => ErrorKind::AuditUnavailable,
            Error::Store { .. } | Error::Table(_) | Error::Engine { .. } | Error::Arrow { .. } => ErrorKind::Internal,
        }
    }

    /// The audit outcome for this error: short, without internals.
    pub fn outcome(&self) -> AuditOutcome {
        let kind = match self.kind() {
            ErrorKind::Unauthenticated => OutcomeKind::Unauthenticated,
            ErrorKind::PermissionDenied => OutcomeKind::Denied,
            ErrorKind::InvalidRequest | ErrorKind::Unsupported | ErrorKind::NotFound => OutcomeKind::Error,
            ErrorKind::ResourceExhausted | ErrorKind::Timeout => OutcomeKind::Limit,
            ErrorKind::Cancelled | ErrorKind::ClientClosed => OutcomeKind::Cancelled,
            ErrorKind::AuditUnavailable | ErrorKind::Internal => {
                return AuditOutcome { kind: OutcomeKind::Internal, detail: None };
            }
        };
        // The engine's messages can quote values (`Cannot cast string '张三'`):
        // what the principal itself may see, but the log keeps no personal data.
        AuditOutcome::new(kind, crate::redact::quoted_values(&self.to_string()))
    }

    /// What this error says about itself in a log line: the message with
    /// quoted values redacted, and internal detail (never sent to clients).
    pub fn log_text(&self) -> String {
        let text = match self {
            Error::MemoryExhausted { detail } | Error::AuditUnavailable { detail } => format!("{self}: {detail}"),
            _ => self.to_string(),
        };
        crate::redact::quoted_values(&text)
    }

    /// A copy (errors hold no handles; the table error is flattened to its message).
    fn duplicate(&self) -> Error {
        match self {
            Error::MissingCredentials => Error::MissingCredentials,
            Error::MalformedCredentials { reason } => Error::MalformedCredentials { reason },
            Error::InvalidToken => Error::InvalidToken,
            Error::TokenExpired => Error::TokenExpired,
            Error::TokenRevoked => Error::TokenRevoked,
            Error::UserMismatch => Error::UserMismatch,
            Error::PermissionDenied { what } => Error::PermissionDenied { what: what.clone() },
            Error::PurposeRequired { dataset, grant } => {
                Error::PurposeRequired { dataset: dataset.clone(), grant: grant.clone() }
            }
            Error::InvalidRequest { message } => Error::InvalidRequest { message: message.clone() },
            Error::Query { message } => Error::Query { message: message.clone() },
            Error::UnknownColumn { column } => Error::UnknownColumn { column: column.clone() },
            Error::UnknownDataset { dataset } => Error::UnknownDataset { dataset: dataset.clone() },
            Error::Unsupported { what } => Error::Unsupported { what: what.clone() },
            Error::TooManyQueries { limit } => Error::TooManyQueries { limit: *limit },
            Error::MemoryExhausted { detail } => Error::MemoryExhausted { detail: detail.clone() },
            Error::Timeout { seconds } => Error::Timeout { seconds: *seconds },
            Error::Cancelled => Error::Cancelled,
            Error::ClientClosed => Error::ClientClosed,
            Error::UnknownQuery => Error::UnknownQuery,
            Error::AuditUnavailable { detail } => Error::AuditUnavailable { detail: detail.clone() },
            Error::Store { message } => Error::Store { message: message.clone() },
            Error::Table(e) => Error::Engine { message: format!("table storage: {e}") },
            Error::Engine { message } => Error::Engine { message: message.clone() },
            Error::Arrow { message } => Error::Arrow { message: message.clone() },
        }
    }
}

/// Whether an I/O error is DataFusion's disk manager refusing to spill past
/// its budget. DataFusion reports that as a plain `io::Error` with only a
/// message (no type to match), so this is the one place its text is read,
/// to turn it into the typed resource error it is.
fn spill_budget_exceeded(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other && error.to_string().contains("exceeded the allowable limit")
}

impl From<civlink_catalog::policy::PurposeRequired> for Error {
    fn from(refusal: civlink_catalog::policy::PurposeRequired) -> Error {
        Error::PurposeRequired { dataset: refusal.dataset.to_string(), grant: refusal.grant }
    }
}

impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Error {
        Error::from_datafusion(error)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(error: arrow::error::ArrowError) -> Error {
        Error::Arrow { message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_failures_are_classified_without_echo() {
        for e in [Error::MissingCredentials, Error::InvalidToken, Error::TokenExpired, Error::TokenRevoked] {
            assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
            assert_eq!(e.outcome().kind, OutcomeKind::Unauthenticated);
        }
        let e = Error::from_policy(civlink_catalog::policy::Error::UnknownToken { id: "abc".into() });
        assert!(matches!(e, Error::InvalidToken));
        assert!(!e.to_string().contains("abc"));
    }

    #[test]
    fn client_mistakes_and_limits_are_classified() {
        let e = Error::from_datafusion(DataFusionError::Plan("table 'x' not found".into()));
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(e.to_string().contains("table 'x' not found"));
        let wrapped =
            DataFusionError::Context("while planning".into(), Box::new(DataFusionError::Plan("no column y".into())));
        assert_eq!(Error::from_datafusion(wrapped).kind(), ErrorKind::InvalidRequest);
        let e = Error::from_datafusion(DataFusionError::ResourcesExhausted("pool full".into()));
        assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
        assert!(!e.to_string().contains("pool full"));
        assert_eq!(Error::Timeout { seconds: 3 }.kind(), ErrorKind::Timeout);
        assert_eq!(Error::TooManyQueries { limit: 2 }.outcome().kind, OutcomeKind::Limit);
        assert_eq!(Error::ClientClosed.outcome().kind, OutcomeKind::Cancelled);
    }

    #[test]
    fn a_boxed_query_error_comes_back_as_itself() {
        let boxed = DataFusionError::External(Box::new(Error::PermissionDenied { what: "x".into() }));
        assert_eq!(Error::from_datafusion(boxed).kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn internal_errors_say_nothing_in_the_audit() {
        let e = Error::Store { message: "connection to postgres://admin:hunter2@db failed".into() };
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(e.outcome().to_string(), "internal");
        let e = Error::from_datafusion(DataFusionError::IoError(std::io::Error::other("/secret/path missing")));
        assert_eq!(e.kind(), ErrorKind::Internal);
    }

    #[test]
    fn quoted_values_stay_out_of_audit_and_logs() {
        let e = Error::from_datafusion(DataFusionError::ArrowError(
            Box::new(arrow::error::ArrowError::CastError("Cannot cast string '张三' to value of Int32 type".into())),
            None,
        ));
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(!e.outcome().to_string().contains("张三"));
        assert!(!e.log_text().contains("张三"));
    }
}
