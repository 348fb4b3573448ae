//! `POST|GET /api/v1/admin/grants`, `DELETE /api/v1/admin/grants/{id}`.
//!
//! The same catalog calls as `civlink grant` ([`MetadataStore::grant`],
//! [`MetadataStore::revoke_grant`]): the dataset must be registered, a
//! principal subject must exist, listed columns must be the standard's.
//!
//! [`MetadataStore::grant`]: civlink_catalog::store::MetadataStore::grant
//! [`MetadataStore::revoke_grant`]: civlink_catalog::store::MetadataStore::revoke_grant

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::Utc;
use civlink_catalog::model::{DatasetId, Department};
use civlink_catalog::policy::{AuditAction, Grant, GrantSubject};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{admitted, json_body, parse_instant, policy_error, request_text};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The body of a grant request: exactly one of `principal` and `department`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// The grant's id (default: `g-` and a fresh UUID); an existing id is a 409.
    #[serde(default)]
    pub id: Option<String>,
    /// To one principal, by name.
    #[serde(default)]
    pub principal: Option<String>,
    /// To every principal of a department (`minzheng`, `gongan`, …).
    #[serde(default)]
    pub department: Option<String>,
    /// The dataset, `department.name`.
    pub dataset: String,
    /// Which columns (default: every column).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Whether the covered columns are shown in clear.
    #[serde(default)]
    pub unmasked: bool,
    /// The legal basis, recorded and audited.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Whether grantees must state a purpose (`x-civlink-purpose`) to read.
    #[serde(default)]
    pub purpose_required: bool,
    /// When it lapses (RFC 3339 or a date); none: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A grant as listed.
pub fn listed(grant: &Grant) -> Value {
    let mut value = serde_json::to_value(grant).unwrap_or(Value::Null);
    value["live"] = Value::Bool(grant.is_live(Utc::now()));
    value
}

fn bad(message: String) -> Error {
    Error::BadRequest { message }
}

/// The dataset id in a request, or the 400.
fn dataset_id(text: &str) -> Result<DatasetId> {
    text.parse().map_err(|e| bad(format!("dataset {text:?} is not department.name: {e}")))
}

impl GrantBody {
    /// The grant this body asks for (not yet checked against the catalog).
    fn grant(self) -> Result<Grant> {
        let subject = match (self.principal, self.department) {
            (Some(name), None) => GrantSubject::Principal(name),
            (None, Some(code)) => GrantSubject::Department(
                code.parse::<Department>().map_err(|e| bad(format!("department {code:?}: {e}")))?,
            ),
            _ => return Err(bad("name exactly one of principal and department".into())),
        };
        let expires_at = self.expires_at.as_deref().map(|t| parse_instant("expires_at", t)).transpose()?;
        if expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(bad("expires_at must lie in the future".into()));
        }
        let purpose = self.purpose.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
        if self.purpose_required && purpose.is_none() {
            return Err(bad("a grant that requires a stated purpose records its own purpose (legal basis)".into()));
        }
        Ok(Grant {
            id: self.id.unwrap_or_else(|| format!("g-{}", uuid::Uuid::new_v4().simple())),
            subject,
            dataset: dataset_id(&self.dataset)?,
            columns: self.columns,
            unmasked: self.unmasked,
            purpose,
            purpose_required: self.purpose_required,
            expires_at,
        })
    }
}

#[utoipa::path(post, path = "/api/v1/admin/grants", tag = "admin",
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "id, principal or department, dataset, columns, unmasked, purpose, purpose_required, expires_at"),
    responses((status = 201, description = "The grant", body = crate::openapi::AnyObject)))]
/// `POST /api/v1/admin/grants`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let (_, mut audit, admitted) = admitted(&state, &headers, AuditAction::Grant, &request_text("POST", &uri)).await?;
    let result = async {
        admitted?;
        let body: GrantBody = json_body(body, "a grant request")?;
        let grant = body.grant()?;
        state.store().create_grant(&grant).await.map_err(policy_error)?;
        Ok(grant)
    }
    .await;
    let made = result.as_ref().ok().map(|g| g.id.clone());
    if let Ok(grant) = &result {
        audit.dataset(grant.dataset.to_string());
    }
    match audit.finish(&state, result, None).await {
        Ok(grant) => Ok((StatusCode::CREATED, Json(listed(&grant)))),
        Err(e) => {
            // Nothing unaudited stays in force: a grant whose entry could not be written is withdrawn.
            if let Some(id) = made
                && let Err(revoke) = state.store().revoke_grant(&id).await
            {
                tracing::error!(grant = %id, error = %revoke, "an unaudited grant could not be withdrawn");
            }
            Err(e)
        }
    }
}

#[utoipa::path(get, path = "/api/v1/admin/grants", tag = "admin",
    params(("dataset" = Option<String>, Query, description = "department.name"), ("principal" = Option<String>, Query, description = "Grants that apply to this principal")),
    responses((status = 200, description = "The grants", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/admin/grants?dataset=&principal=`: the grants on the
/// dataset, and those that apply to the principal (to it, or to its department).
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let (_, audit, admitted) = admitted(&state, &headers, AuditAction::GrantList, &request_text("GET", &uri)).await?;
    let result = async {
        admitted?;
        let (mut dataset, mut principal) = (None, None);
        for (key, value) in crate::extract::query_pairs(query)? {
            match key.as_str() {
                "dataset" => dataset = Some(dataset_id(&value)?),
                "principal" => {
                    let found = state.store().principal(&value).await.map_err(policy_error)?;
                    principal = Some(found.ok_or(Error::UnknownPrincipal { name: value })?);
                }
                other => return Err(bad(format!("unknown parameter {other:?} (dataset, principal)"))),
            }
        }
        let grants = state.store().grants().await.map_err(policy_error)?;
        Ok(grants
            .iter()
            .filter(|g| dataset.as_ref().is_none_or(|d| g.dataset == *d))
            .filter(|g| principal.as_ref().is_none_or(|p| g.subject.includes(p)))
            .map(listed)
            .collect::<Vec<_>>())
    }
    .await;
    let rows = result.as_ref().ok().map(|g| g.len() as u64);
    let grants = audit.finish(&state, result, rows).await?;
    Ok(Json(json!({ "grants": grants })))
}

#[utoipa::path(delete, path = "/api/v1/admin/grants/{id}", tag = "admin",
    params(("id" = String, Path, description = "Grant id")),
    responses((status = 200, description = "Revoked", body = crate::openapi::AnyObject)))]
/// `DELETE /api/v1/admin/grants/{id}`.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let (_, mut audit, admitted) =
        admitted(&state, &headers, AuditAction::GrantRevoke, &request_text("DELETE", &uri)).await?;
    let result = async {
        admitted?;
        let Path(id) = path.map_err(|_| Error::NotFound { what: "no such grant".into() })?;
        let grants = state.store().grants().await.map_err(policy_error)?;
        let grant = grants
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| Error::NotFound { what: format!("no grant {id}") })?;
        state.store().revoke_grant(&id).await.map_err(policy_error)?;
        Ok(grant)
    }
    .await;
    if let Ok(grant) = &result {
        audit.dataset(grant.dataset.to_string());
    }
    let grant = audit.finish(&state, result, None).await?;
    Ok(Json(json!({ "revoked": listed(&grant) })))
}
