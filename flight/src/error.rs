//! The crate's errors, and the ONE place they become gRPC statuses.
//!
//! [`to_status`] matches every variant explicitly. What a client is told is
//! decided there and nowhere else:
//!
//! * authentication failures → `UNAUTHENTICATED`, saying which (a missing
//!   header, a malformed one, an invalid, expired or revoked token) but never
//!   echoing what was presented;
//! * what the principal may not do → `PERMISSION_DENIED`;
//! * the client's own mistakes (SQL that does not plan, a malformed handle,
//!   a parameter of the wrong shape) → `INVALID_ARGUMENT` with the message,
//!   which only ever describes the client's own request: tables it may not
//!   read do not exist in its session, so "table not found" reveals nothing;
//! * limits → `RESOURCE_EXHAUSTED` / `DEADLINE_EXCEEDED` / `CANCELLED`;
//! * everything else (the metadata store, Delta storage, the engine's own
//!   failures, I/O) → `INTERNAL` with a generic message and a reference id;
//!   the detail goes to the log under the same id, never to the client.

use datafusion::error::DataFusionError;
use tonic::{Code, Status};

/// Why a Flight SQL request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `authorization` header.
    #[error("missing credentials: send \"authorization: Bearer <token>\" (Basic user:token in the handshake)")]
    MissingCredentials,
    /// An `authorization` header that cannot be read.
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
    /// A request that is malformed (bad handle, bad ticket, bad parameters).
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
    /// DDL, DML, `SET` or anything else this read-only service does not run.
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
    /// The query needed more memory than its cap (after spilling).
    #[error("the query exceeded its memory limit")]
    MemoryExhausted {
        /// The engine's message (logged, not sent).
        detail: String,
    },
    /// The query ran past its time limit.
    #[error("the query exceeded its time limit of {seconds} s")]
    Timeout {
        /// The limit.
        seconds: u64,
    },
    /// The query was cancelled (CancelFlightInfo).
    #[error("the query was cancelled")]
    Cancelled,
    /// CancelFlightInfo for a query that is not running (finished, never
    /// started, or another principal's).
    #[error("no such running query")]
    UnknownQuery,
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
    /// The server configuration is unusable (TLS files, address).
    #[error("configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The gRPC transport failed.
    #[error("transport: {message}")]
    Transport {
        /// What failed.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                arrow::error::ArrowError::CastError(m)
                | arrow::error::ArrowError::ComputeError(m)
                | arrow::error::ArrowError::InvalidArgumentError(m)
                | arrow::error::ArrowError::ParseError(m)
                | arrow::error::ArrowError::ArithmeticOverflow(m) => Error::Query { message: m.clone() },
                arrow::error::ArrowError::DivideByZero => Error::Query { message: "division by zero".into() },
                _ => Error::Engine { message: error.to_string() },
            },
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
            other @ (P::Store(_) | P::Invalid { .. } | P::MissingStandard { .. } | P::BadStandard { .. }) => {
                Error::Store { message: other.to_string() }
            }
        }
    }

    /// The audit outcome for this error: short, without internals.
    pub fn outcome(&self) -> String {
        match self {
            Error::MissingCredentials
            | Error::MalformedCredentials { .. }
            | Error::InvalidToken
            | Error::TokenExpired
            | Error::TokenRevoked
            | Error::UserMismatch => format!("unauthenticated: {self}"),
            Error::PermissionDenied { .. } => format!("denied: {self}"),
            Error::InvalidRequest { .. } | Error::Query { .. } | Error::Unsupported { .. } => {
                format!("error: {self}")
            }
            Error::TooManyQueries { .. } | Error::MemoryExhausted { .. } | Error::Timeout { .. } => {
                format!("limit: {self}")
            }
            Error::Cancelled => "cancelled".to_owned(),
            Error::UnknownQuery => format!("error: {self}"),
            Error::Store { .. }
            | Error::Table(_)
            | Error::Engine { .. }
            | Error::Arrow { .. }
            | Error::Config { .. }
            | Error::Transport { .. } => "error: internal".to_owned(),
        }
    }
}

impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Error {
        Error::from_datafusion(error)
    }
}

impl From<arrow_flight::error::FlightError> for Error {
    fn from(error: arrow_flight::error::FlightError) -> Error {
        Error::Arrow { message: error.to_string() }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(error: arrow::error::ArrowError) -> Error {
        Error::Arrow { message: error.to_string() }
    }
}

/// The gRPC status a client sees for `error`. Internal failures are logged
/// here with a fresh reference id, which is all the client gets of them.
pub fn to_status(error: &Error) -> Status {
    let internal = || {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(reference = %reference, error = %error, "internal error serving a Flight SQL request");
        Status::new(Code::Internal, format!("internal error (reference {reference})"))
    };
    match error {
        Error::MissingCredentials
        | Error::MalformedCredentials { .. }
        | Error::InvalidToken
        | Error::TokenExpired
        | Error::TokenRevoked
        | Error::UserMismatch => Status::unauthenticated(error.to_string()),
        Error::PermissionDenied { .. } => Status::permission_denied(error.to_string()),
        Error::InvalidRequest { .. } | Error::Query { .. } => Status::invalid_argument(error.to_string()),
        Error::Unsupported { .. } => Status::unimplemented(error.to_string()),
        Error::TooManyQueries { .. } => Status::resource_exhausted(error.to_string()),
        Error::MemoryExhausted { detail } => {
            tracing::warn!(detail = %detail, "query stopped at its memory limit");
            Status::resource_exhausted(error.to_string())
        }
        Error::Timeout { .. } => Status::deadline_exceeded(error.to_string()),
        Error::Cancelled => Status::cancelled(error.to_string()),
        Error::UnknownQuery => Status::not_found(error.to_string()),
        Error::Store { .. }
        | Error::Table(_)
        | Error::Engine { .. }
        | Error::Arrow { .. }
        | Error::Config { .. }
        | Error::Transport { .. } => internal(),
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        to_status(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_failures_are_unauthenticated_without_echo() {
        for e in [Error::MissingCredentials, Error::InvalidToken, Error::TokenExpired, Error::TokenRevoked] {
            assert_eq!(to_status(&e).code(), Code::Unauthenticated, "{e}");
        }
        let s = to_status(&Error::from_policy(civlink_catalog::policy::Error::UnknownToken { id: "abc".into() }));
        assert_eq!(s.code(), Code::Unauthenticated);
        assert!(!s.message().contains("abc"));
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = Error::Store { message: "connection to postgres://admin:hunter2@db failed".into() };
        let s = to_status(&e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("hunter2"));
        assert!(s.message().contains("reference"));
        let e = Error::from_datafusion(DataFusionError::IoError(std::io::Error::other("/secret/path missing")));
        let s = to_status(&e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("/secret/path"));
    }

    #[test]
    fn client_mistakes_are_invalid_arguments() {
        let e = Error::from_datafusion(DataFusionError::Plan("table 'x' not found".into()));
        let s = to_status(&e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("table 'x' not found"));
        let wrapped =
            DataFusionError::Context("while planning".into(), Box::new(DataFusionError::Plan("no column y".into())));
        assert_eq!(to_status(&Error::from_datafusion(wrapped)).code(), Code::InvalidArgument);
        let e = Error::from_datafusion(DataFusionError::ResourcesExhausted("pool full".into()));
        let s = to_status(&e);
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(!s.message().contains("pool full"));
    }

    #[test]
    fn limits_have_their_own_codes() {
        assert_eq!(to_status(&Error::Timeout { seconds: 3 }).code(), Code::DeadlineExceeded);
        assert_eq!(to_status(&Error::Cancelled).code(), Code::Cancelled);
        assert_eq!(to_status(&Error::TooManyQueries { limit: 2 }).code(), Code::ResourceExhausted);
        assert_eq!(to_status(&Error::PermissionDenied { what: "x".into() }).code(), Code::PermissionDenied);
        assert_eq!(to_status(&Error::Unsupported { what: "DDL".into() }).code(), Code::Unimplemented);
    }
}
