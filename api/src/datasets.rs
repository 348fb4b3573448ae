//! The dataset endpoints: what a principal may read.
//!
//! * `GET /api/v1/datasets`: every dataset the principal may read, with its
//!   governance attributes and the principal's access (row scope, columns
//!   and their masks).
//! * `GET /api/v1/datasets/{department}/{name}`: one of them. A dataset the
//!   principal may not read gets exactly the 404 of one that does not exist,
//!   so the API does not reveal which datasets exist.
//!
//! Its rows are [`crate::rows`].

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use civlink_catalog::model::{DatasetId, DatasetRecord, SharingType, UpdateCycle};
use civlink_catalog::policy::{Access, AuditAction};
use civlink_standards::mask::MaskStrategy;
use civlink_standards::standard::{Sensitivity, Standard};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// The datasets a principal may read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetList {
    /// Each with the principal's access.
    pub datasets: Vec<DatasetView>,
}

/// One column as the principal sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ColumnView {
    /// Column name.
    pub name: String,
    /// Chinese title from the standard.
    pub title: String,
    /// JSON type from the standard (`string`, `integer`, …); masked values are strings.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Sensitivity from the standard.
    #[schema(value_type = String, example = "sensitive")]
    pub sensitivity: Sensitivity,
    /// The mask applied for this principal (`{"strategy": "none"}` = in clear).
    #[schema(value_type = Object)]
    pub mask: MaskStrategy,
}

/// The principal's row scope on a dataset.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeView {
    /// The column rows are scoped by.
    pub division_column: Option<String>,
    /// Rows whose division code starts with this; `null` = every row.
    pub row_prefix: Option<String>,
}

/// The standard a dataset follows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StandardRef {
    /// Standard id.
    pub id: String,
    /// Standard version.
    pub version: String,
}

/// A dataset as listed and described.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetView {
    /// `department.name`.
    pub id: String,
    /// Department code.
    pub department: &'static str,
    /// Department's Chinese name.
    pub department_name: &'static str,
    /// Name within the department.
    pub name: String,
    /// Chinese title.
    pub title: String,
    /// What it holds.
    pub description: String,
    /// The responsible office.
    pub owner: String,
    /// Classification.
    #[schema(value_type = String)]
    pub classification: Sensitivity,
    /// GB/T 21063 sharing type.
    #[schema(value_type = String)]
    pub sharing: SharingType,
    /// Update cycle.
    #[schema(value_type = String)]
    pub update_cycle: UpdateCycle,
    /// The bound standard.
    pub standard: StandardRef,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// The committed version readers see; `null` before the first run.
    pub latest_version: Option<i64>,
    /// When a run last committed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<DateTime<Utc>>,
    /// The principal's row scope.
    pub scope: ScopeView,
    /// The columns the principal may read, with their masks.
    pub columns: Vec<ColumnView>,
    /// Where the rows are.
    pub rows_url: String,
}

/// The view of `record` for a principal with `access`.
fn view(record: &DatasetRecord, access: &Access, standard: &Standard) -> DatasetView {
    let spec = &record.spec;
    let columns = access
        .columns
        .iter()
        .map(|c| {
            let property = standard.property(&c.name);
            ColumnView {
                name: c.name.clone(),
                title: property.map(|p| p.title.clone()).unwrap_or_default(),
                kind: if c.mask.is_none() { property.map(|p| p.kind.noun()).unwrap_or("string") } else { "string" },
                sensitivity: property.map(|p| p.sensitivity).unwrap_or_default(),
                mask: c.mask,
            }
        })
        .collect();
    DatasetView {
        id: spec.id.to_string(),
        department: spec.id.department.code(),
        department_name: spec.id.department.name_zh(),
        name: spec.id.name.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        owner: spec.owner.clone(),
        classification: spec.classification,
        sharing: spec.sharing,
        update_cycle: spec.update_cycle,
        standard: StandardRef { id: spec.standard_id.clone(), version: spec.standard_version.clone() },
        primary_key: spec.primary_key.clone(),
        latest_version: record.current_version,
        updated_at: record.updated_at,
        scope: ScopeView { division_column: access.division_column.clone(), row_prefix: access.row_prefix.clone() },
        columns,
        rows_url: format!("/api/v1/datasets/{}/{}/rows", spec.id.department.code(), spec.id.name),
    }
}

/// The request as audited: path and query, as sent.
pub(crate) fn request_text(method: &str, uri: &Uri) -> String {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path());
    format!("{method} {target}")
}

/// The 404 for a dataset that is unknown or unreadable: the same either way,
/// byte for byte (it does not even repeat the name asked for).
pub(crate) fn not_found() -> Error {
    Error::NotFound { what: "no such dataset, or not one you may read".into() }
}

/// The dataset id in a path, or the 404.
pub(crate) fn dataset_id(path: Result<Path<(String, String)>, PathRejection>) -> Result<(DatasetId, String)> {
    let Path((department, name)) = path.map_err(|_| not_found())?;
    let text = format!("{department}.{name}");
    // Only canonical ids: `民政/x` or `MINZHENG/x` would name the same dataset
    // under another spelling, and audit entries should name one.
    match text.parse::<DatasetId>() {
        Ok(id) if id.to_string() == text => Ok((id, text)),
        _ => Err(not_found()),
    }
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalog",
    responses((status = 200, description = "Every dataset the principal may read, with its access", body = DatasetList)))]
/// `GET /api/v1/datasets`.
pub async fn list(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<DatasetList>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestList).await?;
    let audit = Audit::start(&principal, AuditAction::RestList, &headers, &request);
    let result = async {
        let snapshot = state.factory().policy().current().await?;
        let readable = snapshot.readable(&principal, chrono::Utc::now());
        Ok(readable.iter().map(|r| view(&r.record, &r.access, &r.standard)).collect::<Vec<_>>())
    }
    .await;
    let count = result.as_ref().ok().map(|d| d.len() as u64);
    let datasets = audit.finish(&state, result, count).await?;
    Ok(Json(DatasetList { datasets }))
}

#[utoipa::path(get, path = "/api/v1/datasets/{department}/{name}", tag = "catalog",
    params(("department" = String, Path, description = "Department code (gongan, minzheng, …)"), ("name" = String, Path, description = "Dataset name")),
    responses((status = 200, description = "The dataset as the principal sees it", body = DatasetView)))]
/// `GET /api/v1/datasets/{department}/{name}`.
pub async fn describe(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<DatasetView>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestDescribe).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestDescribe, &headers, &request);
    let result = async {
        let (id, text) = dataset_id(path)?;
        audit.dataset(text);
        let snapshot = state.factory().policy().current().await?;
        let found = snapshot.access(&principal, &id, chrono::Utc::now()).ok_or_else(not_found)?;
        Ok(view(&found.record, &found.access, &found.standard))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}
