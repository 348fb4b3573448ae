//! The crate's errors, and the ONE place they become HTTP responses.
//!
//! [`problem`] matches every variant explicitly and decides what a client is
//! told, as an RFC 9457 problem document (`application/problem+json` with
//! `type`, `title`, `status` and `detail`):
//!
//! * authentication failures → 401 with `WWW-Authenticate: Bearer`, saying
//!   which (missing, malformed, invalid, expired, revoked) but never echoing
//!   what was presented;
//! * what the principal may not do → 403;
//! * datasets it may not read, and those that do not exist → the same 404;
//! * the client's own mistakes (a bad `limit`, an unknown column, a body
//!   that is not a standard) → 400 / 413 / 422, describing only its request;
//! * limits → 429 (too many queries at once) and 503 (time or memory);
//! * everything else (the metadata store, Delta storage, the engine) → 500
//!   with a generic detail and a reference id; the real message goes to the
//!   log under that id, never to the client. Engine errors are always
//!   treated as internal here: the REST layer builds every plan itself from
//!   validated parameters, so an engine error is never the client's fault,
//!   and its text could carry SQL or values.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civlink_catalog::policy::{AuditOutcome, OutcomeKind};
use civlink_standards::compat::Mode;
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The challenge sent with every 401 (RFC 6750 §3).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"civlink\"";
/// The challenge sent when a token was presented but is not usable.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"civlink\", error=\"invalid_token\"";
/// Prefix of every problem `type` URI.
const TYPE_PREFIX: &str = "urn:civlink:problem:";

/// Every problem `type` the API answers with (after `urn:civlink:problem:`).
pub const PROBLEM_TYPES: [&str; 25] = [
    "audit-unavailable",
    "bad-body",
    "bad-cursor",
    "bad-request",
    "conflict",
    "forbidden",
    "incompatible-standard",
    "internal",
    "invalid-standard",
    "method-not-allowed",
    "not-acceptable",
    "not-found",
    "not-ready",
    "payload-too-large",
    "purpose-required",
    "query-memory",
    "query-timeout",
    "sql",
    "standard-conflict",
    "too-many-queries",
    "unauthenticated",
    "unknown-column",
    "unknown-dataset",
    "unknown-principal",
    "weakens-protection",
];

/// An RFC 9457 problem document, as the OpenAPI document describes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProblemDoc {
    /// `urn:civlink:problem:<type>`, one per cause (stable).
    #[serde(rename = "type")]
    pub kind: String,
    /// The same for every problem of this type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, without internals.
    pub detail: String,
}

/// One problem with a submitted standard: where in the document, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StandardProblem {
    /// RFC 6901 pointer into the submitted document ("" = the whole document).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `Authorization` header.
    #[error("missing credentials: send \"Authorization: Bearer <token>\" (or Basic user:token)")]
    MissingCredentials,
    /// An `Authorization` header that cannot be read.
    #[error("malformed Authorization header: {reason}")]
    MalformedCredentials {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a valid civlink token, or not a known one.
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
    #[error("forbidden: {what}")]
    Forbidden {
        /// What was refused.
        what: String,
    },
    /// The request stated no purpose, and a grant on the dataset it reads
    /// requires one.
    #[error("reading {dataset} requires a stated purpose under grant {grant}: send the x-civlink-purpose header")]
    PurposeRequired {
        /// The dataset.
        dataset: String,
        /// The grant requiring it.
        grant: String,
    },
    /// An administrative request names a principal that does not exist.
    #[error("unknown principal {name:?}")]
    UnknownPrincipal {
        /// The name given.
        name: String,
    },
    /// An administrative request names a dataset that is not registered.
    #[error("unknown dataset {dataset:?}")]
    UnknownDataset {
        /// The dataset given.
        dataset: String,
    },
    /// A readiness check failed (`GET /readyz`); the causes are logged.
    #[error("not ready: {} not answering", failed.join(", "))]
    NotReady {
        /// The checks that failed (`metadata_store`, `table_storage`).
        failed: Vec<&'static str>,
    },
    /// Nothing here, or nothing the principal may see (the same answer).
    #[error("{what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A malformed parameter (limit, offset, columns, a filter value).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
    },
    /// A column the dataset does not have for this principal (unknown and
    /// unreadable columns are the same to it).
    #[error("unknown column \"{column}\"")]
    UnknownColumn {
        /// The name given.
        column: String,
    },
    /// None of the formats the `Accept` header names is offered.
    #[error("none of the formats asked for in Accept is offered; offered: {}", offered.join(", "))]
    NotAcceptable {
        /// The media types offered.
        offered: Vec<&'static str>,
    },
    /// A `cursor` that this server did not issue for this request.
    #[error("unusable cursor: {reason}")]
    BadCursor {
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// SQL text that does not parse, plan or pass the plan gate (the
    /// engine's message, values redacted).
    #[error("{message}")]
    Sql {
        /// What is wrong with it.
        message: String,
    },
    /// A request body that cannot be read as required (not UTF-8, not JSON).
    #[error("unusable request body: {message}")]
    BadBody {
        /// What is wrong.
        message: String,
    },
    /// A request body over the size limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A submitted standard that is not a valid civlink standard.
    #[error("invalid standard ({} problem(s))", problems.len())]
    InvalidStandard {
        /// Every problem found.
        problems: Vec<StandardProblem>,
    },
    /// A valid standard that breaks compatibility with earlier versions.
    #[error("standard {id} version {version} is not {mode} compatible with the registered versions")]
    IncompatibleStandard {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// The mode checked.
        mode: Mode,
        /// Every incompatibility.
        problems: Vec<StandardProblem>,
    },
    /// The new version protects some columns less than the latest one, and
    /// the publisher did not say that is intended.
    #[error(
        "standard {id} version {version} weakens the protection of {}; publish with allow_weaker_protection=true and a reason (admin only) if that is intended",
        columns.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ")
    )]
    WeakensProtection {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// Every weakened column and how.
        columns: Vec<civlink_catalog::registry::Weakening>,
    },
    /// The id and version are registered with a different document.
    #[error(
        "standard {id} version {version} is already registered with a different document; publish it as a new version"
    )]
    StandardConflict {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
    },
    /// The principal already runs as many queries as it may.
    #[error("too many concurrent queries (limit {limit} per principal)")]
    TooManyQueries {
        /// The limit.
        limit: usize,
    },
    /// The query ran past its time limit.
    #[error("the query exceeded its time limit of {seconds} s")]
    Timeout {
        /// The limit.
        seconds: u64,
    },
    /// The query needed more memory than its cap (after spilling).
    #[error("the query exceeded its memory limit")]
    MemoryExhausted {
        /// The engine's message (logged, not sent).
        detail: String,
    },
    /// The audit log could not be written, so the request was refused.
    #[error("the audit log is unavailable; the request was refused")]
    AuditUnavailable,
    /// The request conflicts with the resource's state (a finding already decided).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
    },
    /// The metadata store or the policy failed.
    #[error("metadata store: {message}")]
    Store {
        /// What failed.
        message: String,
    },
    /// The query engine or table storage failed.
    #[error("query engine: {message}")]
    Engine {
        /// What failed.
        message: String,
    },
    /// The server configuration is unusable (address).
    #[error("configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The HTTP transport failed.
    #[error("transport: {message}")]
    Transport {
        /// What failed.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
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

    /// The audit outcome for this error: short, without internals.
    pub fn outcome(&self) -> AuditOutcome {
        let kind = match self {
            Error::MissingCredentials
            | Error::MalformedCredentials { .. }
            | Error::InvalidToken
            | Error::TokenExpired
            | Error::TokenRevoked
            | Error::UserMismatch => OutcomeKind::Unauthenticated,
            Error::Forbidden { .. } | Error::PurposeRequired { .. } => OutcomeKind::Denied,
            Error::NotFound { .. } => return AuditOutcome::new(OutcomeKind::Error, "not found"),
            Error::MethodNotAllowed
            | Error::BadRequest { .. }
            | Error::UnknownColumn { .. }
            | Error::BadBody { .. }
            | Error::NotAcceptable { .. }
            | Error::BadCursor { .. }
            | Error::Sql { .. }
            | Error::PayloadTooLarge { .. }
            | Error::InvalidStandard { .. }
            | Error::IncompatibleStandard { .. }
            | Error::WeakensProtection { .. }
            | Error::StandardConflict { .. }
            | Error::UnknownPrincipal { .. }
            | Error::UnknownDataset { .. }
            | Error::Conflict { .. } => OutcomeKind::Error,
            Error::TooManyQueries { .. } | Error::Timeout { .. } | Error::MemoryExhausted { .. } => OutcomeKind::Limit,
            Error::AuditUnavailable
            | Error::NotReady { .. }
            | Error::Store { .. }
            | Error::Engine { .. }
            | Error::Config { .. }
            | Error::Transport { .. } => return AuditOutcome { kind: OutcomeKind::Internal, detail: None },
        };
        AuditOutcome::new(kind, civlink_query::redact::quoted_values(&self.to_string()))
    }
}

impl From<civlink_verify::household::Error> for Error {
    /// A household check's refusals and failures.
    fn from(error: civlink_verify::household::Error) -> Error {
        use civlink_verify::household::Error as H;
        match error {
            e @ (H::NotCheckOfficer { .. } | H::NoConsent) => Error::Forbidden { what: e.to_string() },
            H::BadRequest { problems } => Error::BadRequest { message: problems.join("; ") },
            H::Query(e) => Error::from(e),
            H::Store(e) => Error::from(e),
            e @ (H::Sources { .. } | H::Result { .. }) => Error::Config { message: e.to_string() },
        }
    }
}

impl From<civlink_query::Error> for Error {
    /// The query layer's errors as the REST layer reports them. Every plan
    /// here is built by this crate from validated parameters, so the
    /// engine's "client mistakes" are ours (internal); the validation
    /// refusals the plans make (unknown columns, datasets) are the client's.
    fn from(error: civlink_query::Error) -> Error {
        use civlink_query::Error as Q;
        match error {
            Q::MissingCredentials => Error::MissingCredentials,
            Q::MalformedCredentials { reason } => Error::MalformedCredentials { reason },
            Q::InvalidToken => Error::InvalidToken,
            Q::TokenExpired => Error::TokenExpired,
            Q::TokenRevoked => Error::TokenRevoked,
            Q::UserMismatch => Error::UserMismatch,
            Q::PermissionDenied { what } => Error::Forbidden { what },
            Q::PurposeRequired { dataset, grant } => Error::PurposeRequired { dataset, grant },
            Q::InvalidRequest { message } => Error::BadRequest { message },
            Q::UnknownColumn { column } => Error::UnknownColumn { column },
            Q::UnknownDataset { dataset } => Error::NotFound { what: format!("no dataset {dataset}") },
            Q::TooManyQueries { limit } => Error::TooManyQueries { limit },
            Q::MemoryExhausted { detail } => Error::MemoryExhausted { detail },
            Q::Timeout { seconds } => Error::Timeout { seconds },
            Q::AuditUnavailable { .. } => Error::AuditUnavailable,
            Q::Store { message } => Error::Store { message },
            other @ (Q::Query { .. }
            | Q::Unsupported { .. }
            | Q::Cancelled
            | Q::ClientClosed
            | Q::UnknownQuery
            | Q::Table(_)
            | Q::Engine { .. }
            | Q::Arrow { .. }) => Error::Engine { message: other.log_text() },
        }
    }
}

impl Error {
    /// The query layer's errors for SQL the client wrote (`POST /query`):
    /// what the engine and the plan gate refuse is the client's mistake (a
    /// 400 with the engine's message, values redacted), not ours.
    pub fn from_sql(error: civlink_query::Error) -> Error {
        use civlink_query::Error as Q;
        match error {
            e @ (Q::Query { .. } | Q::Unsupported { .. }) => {
                Error::Sql { message: civlink_query::redact::quoted_values(&e.to_string()) }
            }
            other => other.into(),
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(error: datafusion::error::DataFusionError) -> Error {
        civlink_query::Error::from_datafusion(error).into()
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(error: arrow::error::ArrowError) -> Error {
        Error::Engine { message: format!("arrow: {error}") }
    }
}

impl From<civlink_catalog::store::Error> for Error {
    fn from(error: civlink_catalog::store::Error) -> Error {
        Error::Store { message: error.to_string() }
    }
}

/// What a client is told about an error: an RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `type` URI (`urn:civlink:problem:<slug>`).
    pub kind: String,
    /// The `title`: the same for every problem of this type.
    pub title: &'static str,
    /// The `detail`: this occurrence, without internals.
    pub detail: String,
    /// Extension members (`errors`, `reference`, …).
    pub extensions: Map<String, Value>,
    /// The `WWW-Authenticate` challenge, for 401s.
    pub challenge: Option<&'static str>,
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: String) -> Problem {
        Problem { status, kind: format!("{TYPE_PREFIX}{slug}"), title, detail, extensions: Map::new(), challenge: None }
    }

    fn unauthenticated(error: &Error, challenge: &'static str) -> Problem {
        let mut problem =
            Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required", error.to_string());
        problem.challenge = Some(challenge);
        problem
    }

    fn with(mut self, key: &str, value: Value) -> Problem {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// The problem document as JSON.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), Value::String(self.kind.clone()));
        body.insert("title".into(), Value::String(self.title.to_owned()));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail.clone()));
        for (key, value) in &self.extensions {
            body.insert(key.clone(), value.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// The problem document a client sees for `error`. Internal failures are
/// logged here with a fresh reference id, which is all the client gets of them.
pub fn problem(error: &Error) -> Problem {
    let internal = || {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        let detail = civlink_query::redact::quoted_values(&error.to_string());
        tracing::error!(reference = %reference, error = %detail, "internal error serving a REST request");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            format!("internal error (reference {reference})"),
        )
        .with("reference", Value::String(reference))
    };
    let problems = |list: &[StandardProblem]| serde_json::to_value(list).unwrap_or(Value::Array(Vec::new()));
    match error {
        Error::MissingCredentials | Error::MalformedCredentials { .. } => {
            Problem::unauthenticated(error, BEARER_CHALLENGE)
        }
        Error::InvalidToken | Error::TokenExpired | Error::TokenRevoked | Error::UserMismatch => {
            Problem::unauthenticated(error, INVALID_TOKEN_CHALLENGE)
        }
        Error::Forbidden { .. } => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", error.to_string()),
        Error::PurposeRequired { dataset, grant } => {
            Problem::new(StatusCode::FORBIDDEN, "purpose-required", "Purpose required", error.to_string())
                .with("dataset", Value::String(dataset.clone()))
                .with("grant", Value::String(grant.clone()))
                .with("header", Value::String(crate::auth::PURPOSE.to_owned()))
        }
        Error::UnknownPrincipal { name } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-principal", "Unknown principal", error.to_string())
                .with("principal", Value::String(name.clone()))
        }
        Error::UnknownDataset { dataset } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-dataset", "Unknown dataset", error.to_string())
                .with("dataset", Value::String(dataset.clone()))
        }
        Error::NotReady { failed } => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready", error.to_string())
                .with("failed", Value::from(failed.iter().map(|f| Value::String((*f).to_owned())).collect::<Vec<_>>()))
        }
        Error::NotFound { .. } => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", error.to_string()),
        Error::MethodNotAllowed => {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", error.to_string())
        }
        Error::BadRequest { .. } => {
            Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", error.to_string())
        }
        Error::UnknownColumn { column } => {
            Problem::new(StatusCode::BAD_REQUEST, "unknown-column", "Unknown column", error.to_string())
                .with("column", Value::String(column.clone()))
        }
        Error::NotAcceptable { offered } => {
            Problem::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", "Format not offered", error.to_string())
                .with("offered", Value::from(offered.clone()))
        }
        Error::BadCursor { .. } => {
            Problem::new(StatusCode::BAD_REQUEST, "bad-cursor", "Unusable cursor", error.to_string())
        }
        Error::Sql { .. } => Problem::new(StatusCode::BAD_REQUEST, "sql", "Unusable SQL", error.to_string()),
        Error::BadBody { .. } => {
            Problem::new(StatusCode::BAD_REQUEST, "bad-body", "Unusable request body", error.to_string())
        }
        Error::PayloadTooLarge { .. } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            error.to_string(),
        ),
        Error::InvalidStandard { problems: list } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-standard", "Invalid standard", error.to_string())
                .with("errors", problems(list))
        }
        // 409, as schema registries answer it: the document is valid, the registry's state refuses it.
        Error::IncompatibleStandard { mode, problems: list, .. } => Problem::new(
            StatusCode::CONFLICT,
            "incompatible-standard",
            "Incompatible standard version",
            error.to_string(),
        )
        .with("mode", Value::String(mode.as_str().to_owned()))
        .with("errors", problems(list)),
        Error::Conflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "conflict", "Conflicts with the current state", error.to_string())
        }
        Error::StandardConflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "standard-conflict", "Standard version exists", error.to_string())
        }
        Error::WeakensProtection { columns, .. } => {
            Problem::new(StatusCode::CONFLICT, "weakens-protection", "Standard weakens protection", error.to_string())
                .with("columns", serde_json::to_value(columns).unwrap_or(Value::Array(Vec::new())))
        }
        Error::TooManyQueries { .. } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-queries",
            "Too many concurrent queries",
            error.to_string(),
        ),
        Error::Timeout { .. } => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "query-timeout", "Query time limit", error.to_string())
        }
        Error::MemoryExhausted { detail } => {
            tracing::warn!(detail = %civlink_query::redact::quoted_values(detail), "REST query stopped at its memory limit");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "query-memory", "Query memory limit", error.to_string())
        }
        Error::AuditUnavailable => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit-unavailable",
            "Audit log unavailable",
            error.to_string(),
        ),
        Error::Store { .. } | Error::Engine { .. } | Error::Config { .. } | Error::Transport { .. } => internal(),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        problem(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_failures_are_401_with_a_challenge_and_no_echo() {
        for e in [Error::MissingCredentials, Error::InvalidToken, Error::TokenExpired, Error::TokenRevoked] {
            let p = problem(&e);
            assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{e}");
            assert!(p.challenge.is_some_and(|c| c.starts_with("Bearer")));
        }
        let e = Error::from_policy(civlink_catalog::policy::Error::UnknownToken { id: "abc123".into() });
        let p = problem(&e);
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(!p.body().to_string().contains("abc123"));
        let e = Error::from_policy(civlink_catalog::policy::Error::TokenExpired { id: "abc123".into() });
        assert!(!problem(&e).body().to_string().contains("abc123"));
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = Error::Store { message: "connection to postgres://admin:hunter2@db failed".into() };
        let body = problem(&e).body().to_string();
        assert_eq!(problem(&e).status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("hunter2"));
        assert!(body.contains("reference"));
        let e: Error = civlink_query::Error::Query { message: "SELECT secret FROM x WHERE id = '6301'".into() }.into();
        let body = problem(&e).body().to_string();
        assert!(!body.contains("SELECT") && !body.contains("6301"), "{body}");
    }

    #[test]
    fn problem_documents_have_the_rfc_9457_members() {
        let p = problem(&Error::UnknownColumn { column: "salary".into() });
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        let body = p.body();
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "urn:civlink:problem:unknown-column");
        assert!(body["title"].is_string() && body["detail"].as_str().is_some_and(|d| d.contains("salary")));
        let p = problem(&Error::InvalidStandard {
            problems: vec![
                StandardProblem { pointer: "/type".into(), message: "a".into() },
                StandardProblem { pointer: "/properties".into(), message: "b".into() },
            ],
        });
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.body()["errors"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn limits_and_conflicts_have_their_own_statuses() {
        assert_eq!(problem(&Error::TooManyQueries { limit: 2 }).status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(problem(&Error::Timeout { seconds: 3 }).status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            problem(&Error::StandardConflict { id: "a.b".into(), version: "1".into() }).status,
            StatusCode::CONFLICT
        );
        assert_eq!(problem(&Error::Forbidden { what: "x".into() }).status, StatusCode::FORBIDDEN);
        assert_eq!(problem(&Error::NotFound { what: "x".into() }).status, StatusCode::NOT_FOUND);
    }
    #[test]
    fn admin_and_ops_problems_have_their_own_types() {
        let p = problem(&Error::PurposeRequired { dataset: "gongan.population".into(), grant: "g-1".into() });
        assert_eq!((p.status, p.kind.as_str()), (StatusCode::FORBIDDEN, "urn:civlink:problem:purpose-required"));
        assert_eq!(
            (p.body()["dataset"].clone(), p.body()["header"].clone()),
            (Value::from("gongan.population"), Value::from(crate::auth::PURPOSE))
        );
        let p = problem(&Error::UnknownPrincipal { name: "nobody".into() });
        assert_eq!(
            (p.status, p.body()["principal"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, Value::from("nobody"))
        );
        assert_eq!(problem(&Error::UnknownDataset { dataset: "a.b".into() }).status, StatusCode::UNPROCESSABLE_ENTITY);
        let p = problem(&Error::NotReady { failed: vec!["metadata_store"] });
        assert_eq!(
            (p.status, p.body()["failed"].clone()),
            (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!(["metadata_store"]))
        );
        assert_eq!(
            Error::PurposeRequired { dataset: "a.b".into(), grant: "g".into() }.outcome().kind,
            OutcomeKind::Denied
        );
    }
}
