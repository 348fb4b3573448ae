//! `POST|GET /api/v1/admin/tokens`, `DELETE /api/v1/admin/tokens/{id}`.
//!
//! A token's secret is in the creation response, once, and nowhere else:
//! the catalog keeps its hash, the audit entry its id. A token whose issue
//! could not be audited is revoked before the refusal is answered.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::Utc;
use civlink_catalog::policy::{AuditAction, TokenInfo};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{admitted, json_body, parse_instant, policy_error, request_text};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The body of a token request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    /// Whose token: an existing principal.
    principal: String,
    /// When it expires (RFC 3339 or a date); none: never.
    #[serde(default)]
    expires_at: Option<String>,
}

/// A token as listed.
fn listed(token: &TokenInfo) -> Value {
    json!({
        "id": token.id, "principal": token.principal, "created_at": token.created_at,
        "expires_at": token.expires_at, "revoked_at": token.revoked_at, "status": token.status(Utc::now()),
    })
}

#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "admin",
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "principal, expires_at (RFC 3339 or a date)"),
    responses((status = 201, description = "The token, its secret shown this once", body = crate::openapi::AnyObject)))]
/// `POST /api/v1/admin/tokens`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let (_, mut audit, admitted) =
        admitted(&state, &headers, AuditAction::TokenCreate, &request_text("POST", &uri)).await?;
    let result = async {
        admitted?;
        let body: TokenBody = json_body(body, "a token request")?;
        let expires_at = body.expires_at.as_deref().map(|t| parse_instant("expires_at", t)).transpose()?;
        if expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::BadRequest { message: "expires_at must lie in the future".into() });
        }
        let token = state.store().create_token(&body.principal, expires_at).await.map_err(policy_error)?;
        Ok((body.principal, token))
    }
    .await;
    let issued = result.as_ref().ok().map(|(principal, token)| (principal.clone(), token.id.clone()));
    if let Some((principal, id)) = &issued {
        audit.dataset(format!("token {id} for {principal}"));
    }
    match audit.finish(&state, result, None).await {
        Ok((principal, token)) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": token.id, "principal": principal, "expires_at": token.expires_at, "token": token.secret,
                "note": "the token is shown only once: the catalog keeps only its hash",
            })),
        )),
        Err(e) => {
            // An unaudited token must not stay usable.
            if let Some((_, id)) = issued
                && let Err(revoke) = state.store().revoke_token(&id).await
            {
                tracing::error!(token = %id, error = %revoke, "could not revoke an unaudited token");
            }
            Err(e)
        }
    }
}

#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin",
    responses((status = 200, description = "Every token, without secrets", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/admin/tokens?principal=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let (_, audit, admitted) = admitted(&state, &headers, AuditAction::TokenList, &request_text("GET", &uri)).await?;
    let result = async {
        admitted?;
        let mut principal = None;
        for (key, value) in crate::extract::query_pairs(query)? {
            match key.as_str() {
                "principal" => principal = Some(value),
                other => return Err(Error::BadRequest { message: format!("unknown parameter {other:?} (principal)") }),
            }
        }
        let tokens = state.store().tokens().await.map_err(policy_error)?;
        Ok(tokens
            .iter()
            .filter(|t| principal.as_ref().is_none_or(|p| *p == t.principal))
            .map(listed)
            .collect::<Vec<_>>())
    }
    .await;
    let rows = result.as_ref().ok().map(|t| t.len() as u64);
    let tokens = audit.finish(&state, result, rows).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "Revoked (or already revoked)", body = crate::openapi::AnyObject)))]
/// `DELETE /api/v1/admin/tokens/{id}`: revoke (again: no change).
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let (_, mut audit, admitted) =
        admitted(&state, &headers, AuditAction::TokenRevoke, &request_text("DELETE", &uri)).await?;
    let result = async {
        admitted?;
        let Path(id) = path.map_err(|_| Error::NotFound { what: "no such token".into() })?;
        let before = state.store().token(&id).await.map_err(policy_error)?;
        let before = before.ok_or_else(|| Error::NotFound { what: format!("no token {id}") })?;
        state.store().revoke_token(&id).await.map_err(policy_error)?;
        let after = state.store().token(&id).await.map_err(policy_error)?.unwrap_or(before.clone());
        Ok((before.revoked_at.is_some(), after))
    }
    .await;
    if let Ok((_, token)) = &result {
        audit.dataset(format!("token {} of {}", token.id, token.principal));
    }
    let (already, token) = audit.finish(&state, result, None).await?;
    let mut body = listed(&token);
    body["already_revoked"] = Value::Bool(already);
    Ok(Json(body))
}
