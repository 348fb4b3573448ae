//! The findings endpoints (比对, issue 10). A principal sees a finding iff
//! its responsible division lies within the principal's own; outside it a
//! finding does not exist (404, as for an unknown id). Every request is
//! audited.
//!
//! * `GET /api/v1/findings?rule=&status=&division=&limit=&cursor=`: by id,
//!   in pages (`limit` default 100, at most 1000); `next_cursor` continues.
//! * `GET /api/v1/findings/summary?level=`: by rule (with the measured
//!   precision) and rolled up one level below the caller's division.
//! * `GET /api/v1/findings/{id}`: the finding, its evidence and history,
//!   and `subject_as_seen`: the subject's ID number and name as the
//!   reader's own access shows them (`null` when no row it rests on is
//!   readable to the reader).
//! * `POST /api/v1/findings/{id}/outcome` with `{"outcome": "confirmed" |
//!   "dismissed" | "under_review", "reason": …, "note": …}`: an officer's
//!   decision (a dismissal needs a reason); 409 when the finding is no
//!   longer open to one.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use civlink_catalog::findings::{DismissReason, FindingFilter, FindingStatus, Outcome, summarize};
use civlink_catalog::policy::{AuditAction, Principal, may_decide};
use civlink_catalog::store::Error as StoreError;
use civlink_standards::division::{DivisionCode, Level};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::datasets::request_text;
use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// Page size when the request names none.
pub const DEFAULT_LIMIT: u64 = 100;
/// The largest page.
pub const MAX_LIMIT: u64 = 1000;
/// The largest outcome body.
pub const MAX_BODY_BYTES: usize = 64 << 10;

fn not_found() -> Error {
    Error::NotFound { what: "no such finding, or not one in your division".into() }
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::UnknownFinding { .. } => not_found(),
        StoreError::FindingTransition { from, to, .. } => Error::Conflict {
            message: format!(
                "the finding is {from}: it cannot become {to} (only open or under_review findings are decided)"
            ),
        },
        StoreError::Invalid { message, .. } => Error::BadRequest { message },
        other => Error::Store { message: other.to_string() },
    }
}

/// The filters of a list request.
fn list_filter(principal: &Principal, pairs: &[(String, String)]) -> Result<FindingFilter> {
    let bad = |message: String| Error::BadRequest { message };
    let mut filter =
        FindingFilter { within: Some(principal.division), limit: Some(DEFAULT_LIMIT), ..FindingFilter::default() };
    for (key, value) in pairs {
        match key.as_str() {
            "rule" => filter.rule = Some(value.clone()),
            "status" => {
                filter.status =
                    Some(FindingStatus::parse(value).ok_or_else(|| bad(format!("unknown status {value:?}")))?)
            }
            "division" => {
                let division = DivisionCode::parse(value).map_err(|e| bad(format!("division {value:?}: {e}")))?;
                if !principal.division.contains(&division) {
                    return Err(Error::Forbidden { what: format!("division {division} lies outside yours") });
                }
                filter.within = Some(division);
            }
            "limit" => {
                let limit: u64 = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit {value:?} must be a whole number from 1 to {MAX_LIMIT}")))?;
                filter.limit = Some(limit);
            }
            "cursor" => filter.after = Some(value.clone()),
            other => return Err(bad(format!("unknown parameter {other:?} (rule, status, division, limit, cursor)"))),
        }
    }
    Ok(filter)
}

#[utoipa::path(get, path = "/api/v1/findings", tag = "findings",
    params(("rule" = Option<String>, Query, description = "Rule id"), ("status" = Option<String>, Query, description = "open, under_review, confirmed, dismissed"),
        ("division" = Option<String>, Query, description = "Responsible division prefix"), ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before")),
    responses((status = 200, description = "Findings in the principal's division", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/findings`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::FindingRead).await?;
    let audit = Audit::start(&principal, AuditAction::FindingRead, &headers, &request);
    let result = async {
        let pairs = crate::extract::query_pairs(query)?;
        let filter = list_filter(&principal, &pairs)?;
        let page = state.store().findings(&filter).await.map_err(store_error)?;
        let full = filter.limit.is_some_and(|limit| page.len() as u64 == limit);
        let next = if full { page.last().map(|f| f.finding_id.clone()) } else { None };
        Ok((page, next))
    }
    .await;
    let rows = result.as_ref().ok().map(|(page, _)| page.len() as u64);
    let (page, next) = audit.finish(&state, result, rows).await?;
    Ok(Json(json!({ "findings": page, "next_cursor": next })))
}

#[utoipa::path(get, path = "/api/v1/findings/summary", tag = "findings",
    params(("level" = Option<String>, Query, description = "The level to roll up to")),
    responses((status = 200, description = "Counts by rule and status, rolled up", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/findings/summary`.
pub async fn summary(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::FindingRead).await?;
    let audit = Audit::start(&principal, AuditAction::FindingRead, &headers, &request);
    let result = async {
        let pairs = crate::extract::query_pairs(query)?;
        let mut level = None;
        for (key, value) in &pairs {
            match key.as_str() {
                "level" => {
                    let parsed: Level = value.parse().map_err(|_| Error::BadRequest {
                        message: format!("level {value:?} is not one of province, city, county, township, village"),
                    })?;
                    if parsed < principal.division.level() {
                        return Err(Error::BadRequest {
                            message: format!("level {value} lies above your division ({})", principal.division.level()),
                        });
                    }
                    level = Some(parsed);
                }
                other => return Err(Error::BadRequest { message: format!("unknown parameter {other:?} (level)") }),
            }
        }
        let counts = state.store().finding_counts(Some(&principal.division)).await.map_err(store_error)?;
        let summary = summarize(&principal.division, level, &counts);
        let by_rule: Vec<Value> = summary
            .by_rule
            .iter()
            .map(|t| {
                json!({
                    "rule": t.rule_id, "by_status": t.by_status, "total": t.total(),
                    "confirmed": t.confirmed, "dismissed": t.dismissed, "precision": t.precision(),
                })
            })
            .collect();
        Ok(json!({
            "scope": summary.scope, "level": summary.level, "by_rule": by_rule, "by_division": summary.by_division,
        }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "findings",
    params(("id" = String, Path, description = "Finding id")),
    responses((status = 200, description = "The finding, its evidence and history", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/findings/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::FindingRead).await?;
    let audit = Audit::start(&principal, AuditAction::FindingRead, &headers, &request);
    let result = async {
        let Path(id) = path.map_err(|_| not_found())?;
        let found = state.store().finding(&id, Some(&principal.division)).await.map_err(store_error)?;
        let (finding, history) = found.ok_or_else(not_found)?;
        // The subject as this reader's own access shows it (clear only under an unmasking grant).
        let seen = civlink_verify::reveal::subject_as_seen(state.factory(), &principal, &finding).await?;
        Ok(json!({ "finding": finding, "history": history, "subject_as_seen": seen }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, Some(1)).await?))
}

/// The body of an outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    /// `under_review`, `confirmed` or `dismissed`.
    outcome: String,
    /// `source_data_error`, `legitimate` or `other` (required to dismiss).
    #[serde(default)]
    reason: Option<String>,
    /// The officer's note.
    #[serde(default)]
    note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/findings/{id}/outcome", tag = "findings",
    params(("id" = String, Path, description = "Finding id")),
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "outcome (under_review, confirmed, dismissed), reason, note"),
    responses((status = 200, description = "The finding after the decision", body = crate::openapi::AnyObject),
        (status = 201, description = "The decision recorded", body = crate::openapi::AnyObject)))]
/// `POST /api/v1/findings/{id}/outcome`.
pub async fn outcome(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let request = request_text("POST", &uri);
    let principal = state.principal(&headers, AuditAction::FindingDecide).await?;
    let mut audit = Audit::start(&principal, AuditAction::FindingDecide, &headers, &request);
    let result = async {
        let Path(id) = path.map_err(|_| not_found())?;
        let body = crate::extract::body(body, MAX_BODY_BYTES)?;
        let body: OutcomeBody =
            serde_json::from_slice(&body).map_err(|e| Error::BadBody { message: format!("not an outcome: {e}") })?;
        let status = FindingStatus::parse(&body.outcome)
            .filter(|s| matches!(s, FindingStatus::UnderReview | FindingStatus::Confirmed | FindingStatus::Dismissed))
            .ok_or_else(|| Error::BadRequest {
                message: format!("outcome {:?} is not one of under_review, confirmed, dismissed", body.outcome),
            })?;
        let reason = match body.reason.as_deref() {
            None => None,
            Some(code) => Some(DismissReason::parse(code).ok_or_else(|| Error::BadRequest {
                message: format!("reason {code:?} is not one of source_data_error, legitimate, other"),
            })?),
        };
        // The note stays with the finding; the audit chain records the decision, not free text.
        audit.dataset(format!("finding {id}: {status}{}", reason.map(|r| format!(" ({r})")).unwrap_or_default()));
        let decision = Outcome {
            status,
            reason,
            note: body.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            by: principal.name.clone(),
            at: chrono::Utc::now(),
        };
        let (finding, _) =
            state.store().finding(&id, Some(&principal.division)).await.map_err(store_error)?.ok_or_else(not_found)?;
        // The department is part of the finding's identity: this check cannot go stale.
        if !may_decide(&principal, &finding) {
            return Err(Error::Forbidden {
                what: format!("this finding is for the {} office to decide", finding.department.name_zh()),
            });
        }
        let decided =
            state.store().decide_finding(&id, Some(&principal.division), &decision).await.map_err(store_error)?;
        Ok(json!({ "finding": decided }))
    }
    .await;
    Ok((StatusCode::OK, Json(audit.finish(&state, result, None).await?)))
}
