//! `GET /api/v1/admin/audit` (entries, newest first) and
//! `GET /api/v1/admin/audit/verify` (the chain verification report).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use civlink_catalog::policy::{AuditAction, AuditRecord};
use civlink_catalog::store::{AuditFilter, MAX_AUDIT_PAGE};
use serde_json::{Value, json};

use super::{admitted, parse_instant, policy_error, request_text};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Entries when the request names no limit.
pub const DEFAULT_LIMIT: u64 = 100;

/// The filter of an audit request.
fn filter(pairs: &[(String, String)]) -> Result<AuditFilter> {
    let bad = |message: String| Error::BadRequest { message };
    let mut filter = AuditFilter { limit: DEFAULT_LIMIT, ..AuditFilter::default() };
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                filter.limit =
                    value.parse().ok().filter(|n| (1..=MAX_AUDIT_PAGE).contains(n)).ok_or_else(|| {
                        bad(format!("limit {value:?} must be a whole number from 1 to {MAX_AUDIT_PAGE}"))
                    })?;
            }
            "principal" => filter.principal = Some(value.clone()),
            "action" => {
                let action: AuditAction = value.parse().map_err(|_| {
                    let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.code()).collect();
                    bad(format!("action {value:?} is not one of {}", known.join(", ")))
                })?;
                filter.action = Some(action);
            }
            "since" => filter.since = Some(parse_instant("since", value)?),
            "before" => {
                filter.before = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n: &i64| *n >= 1)
                        .ok_or_else(|| bad(format!("before {value:?} must be an entry number (1, 2, …)")))?,
                );
            }
            other => {
                return Err(bad(format!("unknown parameter {other:?} (limit, principal, action, since, before)")));
            }
        }
    }
    Ok(filter)
}

/// An entry as listed.
fn listed(record: &AuditRecord) -> Value {
    let e = &record.entry;
    json!({
        "seq": record.seq, "at": e.at, "principal": e.principal, "purpose": e.purpose, "action": e.action,
        "request": e.sql_text.as_deref().map(super::shown_request), "datasets": e.datasets, "rows": e.rows, "duration_ms": e.duration_ms,
        "outcome": e.outcome, "hash": record.hash,
    })
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Entries (newest first)"),
        ("principal" = Option<String>, Query, description = "Whose"), ("action" = Option<String>, Query, description = "Action code"),
        ("since" = Option<String>, Query, description = "RFC 3339 or a date"), ("before" = Option<i64>, Query, description = "Entries before this sequence number (paging)")),
    responses((status = 200, description = "Audit entries", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/admin/audit?limit=&principal=&action=&since=&before=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let (_, audit, admitted) = admitted(&state, &headers, AuditAction::AuditRead, &request_text("GET", &uri)).await?;
    let result = async {
        admitted?;
        let filter = filter(&crate::extract::query_pairs(query)?)?;
        let records = state.store().audit_search(&filter).await.map_err(policy_error)?;
        let full = records.len() as u64 == filter.limit;
        let next = if full { records.last().map(|r| r.seq) } else { None };
        Ok((records.iter().map(listed).collect::<Vec<_>>(), next))
    }
    .await;
    let rows = result.as_ref().ok().map(|(e, _)| e.len() as u64);
    let (entries, next) = audit.finish(&state, result, rows).await?;
    Ok(Json(json!({ "entries": entries, "next_before": next })))
}

#[utoipa::path(get, path = "/api/v1/admin/audit/verify", tag = "admin",
    responses((status = 200, description = "The hash chain's verification report", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/admin/audit/verify`.
pub async fn verify(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<Value>> {
    let (_, audit, admitted) = admitted(&state, &headers, AuditAction::AuditVerify, &request_text("GET", &uri)).await?;
    let result = async {
        admitted?;
        let report = state.store().verify_audit().await.map_err(policy_error)?;
        Ok(json!({
            "intact": report.intact(), "entries": report.entries, "head": report.head, "problems": report.problems,
        }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn filters_parse_and_refuse() {
        let f = filter(&pairs(&[("limit", "5"), ("action", "token_create"), ("principal", "admin")])).unwrap();
        assert_eq!((f.limit, f.action, f.principal.as_deref()), (5, Some(AuditAction::TokenCreate), Some("admin")));
        assert_eq!(filter(&[]).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "99999999999999999999999"),
            ("limit", "-1"),
            ("action", "nope"),
            ("since", "yesterday"),
            ("before", "x"),
            ("colour", "red"),
        ] {
            assert!(matches!(filter(&pairs(&[bad])), Err(Error::BadRequest { .. })), "{bad:?}");
        }
    }
}
