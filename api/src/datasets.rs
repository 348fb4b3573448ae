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
use serde_json::Value;

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

/// What `GET /api/v1/datasets` may be narrowed by.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetSearch {
    /// Department code (gongan, minzheng, …).
    pub department: Option<String>,
    /// Classification (public, internal, sensitive, …).
    pub classification: Option<String>,
    /// GB/T 21063 sharing type (unconditional, conditional, not_shared).
    pub sharing: Option<String>,
    /// Text in the id, title or description (case-insensitive).
    pub q: Option<String>,
}

/// The code a governance attribute serializes as (`sensitive`, `conditional`, …).
fn code<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned))
}

impl DatasetSearch {
    fn matches(&self, v: &DatasetView) -> bool {
        self.department.as_deref().is_none_or(|d| d == v.department)
            && self.classification.as_deref().is_none_or(|c| code(&v.classification).as_deref() == Some(c))
            && self.sharing.as_deref().is_none_or(|s| code(&v.sharing).as_deref() == Some(s))
            && self.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                [&v.id, &v.title, &v.description].iter().any(|t| t.to_lowercase().contains(&q))
            })
    }
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalog", params(DatasetSearch),
    responses((status = 200, description = "Every dataset the principal may read, with its access", body = DatasetList)))]
/// `GET /api/v1/datasets`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    search: Result<axum::extract::Query<DatasetSearch>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DatasetList>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestList).await?;
    let audit = Audit::start(&principal, AuditAction::RestList, &headers, &request);
    let result = async {
        let axum::extract::Query(search) = search.map_err(|e| Error::BadRequest {
            message: format!("search by department, classification, sharing and q: {}", e.body_text()),
        })?;
        let snapshot = state.factory().policy().current().await?;
        let readable = snapshot.readable(&principal, chrono::Utc::now());
        Ok(readable
            .iter()
            .map(|r| view(&r.record, &r.access, &r.standard))
            .filter(|v| search.matches(v))
            .collect::<Vec<_>>())
    }
    .await;
    let count = result.as_ref().ok().map(|d| d.len() as u64);
    let datasets = audit.finish(&state, result, count).await?;
    Ok(Json(DatasetList { datasets }))
}

/// A dataset's full record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetRecordView {
    /// The dataset as the principal sees it.
    #[serde(flatten)]
    pub dataset: DatasetView,
    /// The bound standard's document (JSON Schema 2020-12).
    #[schema(value_type = Object)]
    pub json_schema: Value,
    /// The Arrow schema of the stored table.
    #[schema(value_type = Vec<Object>)]
    pub arrow_schema: Vec<Value>,
    /// The committed versions, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<Value>,
    /// The quality report of the newest committed run (examples redacted).
    #[schema(value_type = Option<Object>)]
    pub latest_quality: Option<Value>,
    /// Where it comes from and what reads it: sources per version, and the verification rules over it.
    #[schema(value_type = Object)]
    pub lineage: Value,
}

#[utoipa::path(get, path = "/api/v1/datasets/{department}/{name}", tag = "catalog",
    params(("department" = String, Path, description = "Department code (gongan, minzheng, …)"), ("name" = String, Path, description = "Dataset name")),
    responses((status = 200, description = "The dataset as the principal sees it, with its standard's JSON and Arrow schemas, versions, latest quality report and lineage", body = DatasetRecordView)))]
/// `GET /api/v1/datasets/{department}/{name}`.
pub async fn describe(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<DatasetRecordView>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestDescribe).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestDescribe, &headers, &request);
    let result = async {
        let (id, text) = dataset_id(path)?;
        audit.dataset(text.clone());
        let snapshot = state.factory().policy().current().await?;
        let found = snapshot.access(&principal, &id, chrono::Utc::now()).ok_or_else(not_found)?;
        let dataset = view(&found.record, &found.access, &found.standard);
        let store = state.store();
        let json_schema = match store.standard(&dataset.standard.id, &dataset.standard.version).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            None => Value::Null,
        };
        let arrow_schema = found
            .standard
            .arrow_schema()
            .fields()
            .iter()
            .map(|f| serde_json::json!({ "name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable() }))
            .collect();
        let versions: Vec<Value> = store
            .versions(&id)
            .await?
            .into_iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version, "run_id": v.run_id, "mode": v.mode.code(),
                    "rows_written": v.rows_written, "committed_at": v.committed_at,
                })
            })
            .collect();
        let latest_quality = match versions.last().and_then(|v| v["run_id"].as_str()) {
            Some(run) => store.quality(run).await?.map(|r| crate::quality::view(&r)),
            None => None,
        };
        let sources: Vec<Value> = store
            .lineage(&id)
            .await?
            .into_iter()
            .map(|e| serde_json::json!({ "source": e.source_uri, "run_id": e.run_id, "version": e.version }))
            .collect();
        let rules: Vec<Value> = civlink_verify::shipped::SHIPPED
            .iter()
            .filter_map(|(stem, text)| civlink_verify::rule::Rule::parse(text, Some(stem)).ok())
            .filter(|rule| rule.rests_on.iter().any(|r| r.dataset == id) || rule.sql.contains(text.as_str()))
            .map(|rule| serde_json::json!({ "id": rule.id, "version": rule.version, "title_zh": rule.title_zh, "title_en": rule.title_en }))
            .collect();
        Ok(DatasetRecordView {
            dataset,
            json_schema,
            arrow_schema,
            versions,
            latest_quality,
            lineage: serde_json::json!({ "sources": sources, "rules": rules }),
        })
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}
