//! The ONE place a query-layer error becomes a gRPC status ([`to_status`]),
//! and the server's own errors ([`Error`]: configuration, transport).
//!
//! What a client is told, by [`civlink_query::ErrorKind`]:
//!
//! * authentication failures → `UNAUTHENTICATED`, saying which but never
//!   echoing what was presented;
//! * what the principal may not do → `PERMISSION_DENIED`;
//! * the client's own mistakes → `INVALID_ARGUMENT` with the message, which
//!   only ever describes the client's own request;
//! * limits → `RESOURCE_EXHAUSTED` / `DEADLINE_EXCEEDED` / `CANCELLED`;
//! * an unwritable audit log → `UNAVAILABLE` (the request was refused);
//! * everything else → `INTERNAL` with a generic message and a reference id;
//!   the detail (with quoted values redacted) goes to the log under the same
//!   id, never to the client.

use civlink_query::ErrorKind;
use tonic::{Code, Status};

/// Why the Flight SQL server could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

/// The gRPC status a client sees for `error`. Internal failures are logged
/// here with a fresh reference id, which is all the client gets of them.
pub fn to_status(error: &civlink_query::Error) -> Status {
    let code = match error.kind() {
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::InvalidRequest => Code::InvalidArgument,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::Cancelled | ErrorKind::ClientClosed => Code::Cancelled,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AuditUnavailable => Code::Unavailable,
        ErrorKind::Internal => {
            let reference = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(reference = %reference, error = %error.log_text(), "internal error serving a Flight SQL request");
            return Status::new(Code::Internal, format!("internal error (reference {reference})"));
        }
    };
    if let civlink_query::Error::MemoryExhausted { .. } = error {
        tracing::warn!(detail = %error.log_text(), "query stopped at its memory limit");
    }
    Status::new(code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use civlink_query::Error as Q;
    use datafusion::error::DataFusionError;

    #[test]
    fn authentication_failures_are_unauthenticated_without_echo() {
        for e in [Q::MissingCredentials, Q::InvalidToken, Q::TokenExpired, Q::TokenRevoked] {
            assert_eq!(to_status(&e).code(), Code::Unauthenticated, "{e}");
        }
        let s = to_status(&Q::from_policy(civlink_catalog::policy::Error::UnknownToken { id: "abc".into() }));
        assert_eq!(s.code(), Code::Unauthenticated);
        assert!(!s.message().contains("abc"));
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = Q::Store { message: "connection to postgres://admin:hunter2@db failed".into() };
        let s = to_status(&e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("hunter2"));
        assert!(s.message().contains("reference"));
        let e = Q::from_datafusion(DataFusionError::IoError(std::io::Error::other("/secret/path missing")));
        let s = to_status(&e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("/secret/path"));
    }

    #[test]
    fn client_mistakes_are_invalid_arguments() {
        let s = to_status(&Q::from_datafusion(DataFusionError::Plan("table 'x' not found".into())));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("table 'x' not found"));
        let s = to_status(&Q::from_datafusion(DataFusionError::ResourcesExhausted("pool full".into())));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(!s.message().contains("pool full"));
    }

    #[test]
    fn limits_and_refusals_have_their_own_codes() {
        assert_eq!(to_status(&Q::Timeout { seconds: 3 }).code(), Code::DeadlineExceeded);
        assert_eq!(to_status(&Q::Cancelled).code(), Code::Cancelled);
        assert_eq!(to_status(&Q::TooManyQueries { limit: 2 }).code(), Code::ResourceExhausted);
        assert_eq!(to_status(&Q::PermissionDenied { what: "x".into() }).code(), Code::PermissionDenied);
        assert_eq!(to_status(&Q::Unsupported { what: "DDL".into() }).code(), Code::Unimplemented);
        assert_eq!(to_status(&Q::AuditUnavailable { detail: "x".into() }).code(), Code::Unavailable);
        assert_eq!(to_status(&Q::UnknownQuery).code(), Code::NotFound);
        // A grant requiring a purpose: refused, saying which header to send.
        let s = to_status(&Q::PurposeRequired { dataset: "gongan.population".into(), grant: "g-1".into() });
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(s.message().contains("x-civlink-purpose") && s.message().contains("gongan.population"), "{s:?}");
    }
}
