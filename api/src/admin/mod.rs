//! The administrative endpoints, under `/api/v1/admin/`: tokens, grants and
//! the audit log, for principals with the `admin` role only (anyone else:
//! 403). Every request is audited like any other (fail closed), under the
//! action of what it does; a refused one under the same action, `denied`.
//!
//! | endpoint | action |
//! |---|---|
//! | `POST /api/v1/admin/tokens` `{"principal", "expires_at"?}` → 201, the secret once | `token_create` |
//! | `GET /api/v1/admin/tokens?principal=` (never a secret) | `token_list` |
//! | `DELETE /api/v1/admin/tokens/{id}` | `token_revoke` |
//! | `POST /api/v1/admin/grants` (see [`grants::GrantBody`]) → 201 | `grant` |
//! | `GET /api/v1/admin/grants?dataset=&principal=` | `grant_list` |
//! | `DELETE /api/v1/admin/grants/{id}` | `grant_revoke` |
//! | `GET /api/v1/admin/audit?limit=&principal=&action=&since=&before=` newest first | `audit_read` |
//! | `GET /api/v1/admin/audit/verify` the chain verification report | `audit_verify` |
//!
//! Token secrets never reach the audit log or a log line: the entry records
//! the request line (method and path), the token id and its principal. The
//! grant model has no row scope of its own: a grantee's rows are always
//! confined to its division (see `civlink_catalog::policy`).

pub mod audit;
pub mod grants;
pub mod tokens;

use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDate, Utc};
use civlink_catalog::policy::{AuditAction, Principal, Role};

use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// The largest body an admin request may have.
pub const MAX_BODY_BYTES: usize = 16 << 10;

pub(crate) use crate::datasets::request_text;

/// A recorded request as the audit listing shows it. The log keeps what was
/// asked (it is the evidence), but an admin reading it over REST may see
/// every column masked: so every query-string value but the paging and
/// format ones is masked, and the rest goes through the query layer's
/// redaction (quoted literals of SQL, long digit runs).
pub(crate) fn shown_request(text: &str) -> String {
    const KEPT: [&str; 6] = ["limit", "version", "as_of", "bom", "columns", "sort"];
    let (head, query) = match text.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (text, None),
    };
    let mut out = head.to_owned();
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if KEPT.contains(&key) => format!("{key}={value}"),
                Some((key, _)) => format!("{key}=…"),
                None => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    civlink_query::redact::quoted_values(&out)
}

/// Authenticate, start the audit entry, and refuse principals that are not admins.
pub(crate) async fn admitted(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    action: AuditAction,
    request: &str,
) -> Result<(Principal, Audit, Result<()>)> {
    let principal = state.principal(headers, action).await?;
    let audit = Audit::start(&principal, action, headers, request);
    let admitted = if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden { what: "the admin endpoints are for principals with the admin role".into() })
    };
    Ok((principal, audit, admitted))
}

/// An instant in a request: RFC 3339 (`2026-12-31T00:00:00Z`), or a date
/// (`2026-12-31`, midnight UTC).
pub(crate) fn parse_instant(field: &str, text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    Err(Error::BadRequest {
        message: format!("{field} {text:?} is not an RFC 3339 time (2026-12-31T08:00:00Z) or a date (2026-12-31)"),
    })
}

/// A body as JSON of type `T`, or the 400 saying why not.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    what: &str,
) -> Result<T> {
    let body = crate::extract::body(body, MAX_BODY_BYTES)?;
    serde_json::from_slice(&body).map_err(|e| Error::BadBody { message: format!("not {what}: {e}") })
}

/// Policy errors of the admin operations, as the client is told them.
pub(crate) fn policy_error(error: civlink_catalog::policy::Error) -> Error {
    use civlink_catalog::policy::Error as P;
    use civlink_catalog::store::Error as S;
    match error {
        P::UnknownPrincipal { name } => Error::UnknownPrincipal { name },
        P::UnknownToken { id } => Error::NotFound { what: format!("no token {id}") },
        P::UnknownGrant { id } => Error::NotFound { what: format!("no grant {id}") },
        e @ P::GrantExists { .. } => Error::Conflict { message: e.to_string() },
        P::Store(S::UnknownDataset { dataset }) => Error::UnknownDataset { dataset },
        P::Invalid { what, message } => Error::BadRequest { message: format!("invalid {what}: {message}") },
        other => Error::from_policy(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc_3339_or_dates() {
        assert_eq!(parse_instant("since", "2026-12-31").unwrap().to_rfc3339(), "2026-12-31T00:00:00+00:00");
        assert_eq!(
            parse_instant("since", "2026-12-31T08:00:00+08:00").unwrap().to_rfc3339(),
            "2026-12-31T00:00:00+00:00"
        );
        for bad in ["", "yesterday", "2026-13-01", "2026-12-31 08:00", "1700000000"] {
            assert!(matches!(parse_instant("since", bad), Err(Error::BadRequest { .. })), "{bad:?}");
        }
    }
}
