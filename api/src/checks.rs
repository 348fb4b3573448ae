//! `POST /api/v1/checks`: a household economic-status check (核对).
//!
//! The body is a [`CheckRequest`]: `{"members": [ID numbers…],
//! "consent_reference": "授权书编号", "purpose": "…", "household_division":
//! "…", "as_of": "YYYY-MM-DD"?}`. The principal must hold the check duty;
//! a request without a consent reference is refused (403). The answer is
//! the report as JSON, or the printable Chinese page when the request
//! accepts `text/html` (and not JSON). The check audits itself
//! (`household_check`, with its consent reference and purpose), refusals
//! included; a body that is not a request is audited here.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use civlink_catalog::policy::AuditAction;
use civlink_verify::household::{CheckRequest, run_check};

use crate::datasets::request_text;
use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// The largest request body.
pub const MAX_BODY_BYTES: usize = 16 << 10;

/// Whether the client asked for the printable page rather than JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.contains("text/html") && !accept.contains("application/json")
}

#[utoipa::path(post, path = "/api/v1/checks", tag = "checks",
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "members, consent_reference, purpose, household_division, as_of"),
    responses((status = 200, description = "The check's report (JSON), or its printable page (text/html)",
        content((crate::openapi::AnyObject = "application/json"), (String = "text/html")))))]
/// `POST /api/v1/checks`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let principal = state.principal(&headers, AuditAction::HouseholdCheck).await?;
    let sources = state
        .check_sources()
        .ok_or_else(|| Error::Config { message: "household checks are not configured on this server".into() })?;
    let parsed = crate::extract::body(body, MAX_BODY_BYTES).and_then(|bytes| {
        serde_json::from_slice::<CheckRequest>(&bytes)
            .map_err(|e| Error::BadBody { message: format!("not a household check request: {e}") })
    });
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            let audit = Audit::start(&principal, AuditAction::HouseholdCheck, &headers, &request_text("POST", &uri));
            return audit.finish(&state, Err(e), None).await;
        }
    };
    let report = run_check(state.factory(), &sources, &principal, &request).await?;
    // A report is personal data: no cache keeps it.
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    if wants_html(&headers) {
        Ok((no_store, Html(report.to_html(&sources))).into_response())
    } else {
        Ok((no_store, Json(report)).into_response())
    }
}
