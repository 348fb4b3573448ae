//! What the standards team and departmental systems read of the standards
//! beyond one document ([`crate::standards`]): the registry, the Arrow schema
//! a version derives, the differences between two versions, deprecation,
//! and the code tables the standards carry.
//!
//! * `GET /api/v1/standards`: every standard with its versions (and which are deprecated);
//! * `GET /api/v1/standards/{id}/{version}/arrow`: the Arrow schema of the version;
//! * `GET /api/v1/standards/{id}/diff?from=A&to=B`: columns added, removed and
//!   changed, with the compatibility report in both directions;
//! * `POST /api/v1/standards/{id}/{version}/deprecate` (`standards_admin`,
//!   `admin`): `{"reason": "…"}`;
//! * `GET /api/v1/code-tables`, `GET /api/v1/code-tables/{name}`: the code
//!   tables (GB/T 2261.1, GB 3304, …) and their entries.
//!
//! Standards are not secret: any authenticated principal reads them. Every
//! request is audited.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use civlink_catalog::policy::{AuditAction, Role};
use civlink_standards::code_table::CodeTableRegistry;
use civlink_standards::compat::{self, Mode};
use civlink_standards::standard::Standard;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::datasets::request_text;
use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// The largest deprecation body.
pub const MAX_BODY_BYTES: usize = 8 << 10;

fn no_standard(id: &str, version: &str) -> Error {
    Error::NotFound { what: format!("no standard {id} version {version}") }
}

/// The registered document of `id` `version`, or the 404.
async fn document(state: &AppState, id: &str, version: &str) -> Result<String> {
    state.store().standard(id, version).await?.ok_or_else(|| no_standard(id, version))
}

#[utoipa::path(get, path = "/api/v1/standards", tag = "standards",
    responses((status = 200, description = "Every standard with its versions", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/standards`.
pub async fn list(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request_text("GET", &uri));
    let result = async {
        let mut by_id: Vec<(String, Vec<Value>)> = Vec::new();
        for v in state.store().standards().await? {
            let entry = json!({
                "version": v.version,
                "registered_at": v.registered_at,
                "deprecated_at": v.deprecated.as_ref().map(|(at, _)| at),
                "deprecation_reason": v.deprecated.as_ref().map(|(_, why)| why),
            });
            match by_id.last_mut() {
                Some((id, versions)) if *id == v.id => versions.push(entry),
                _ => by_id.push((v.id, vec![entry])),
            }
        }
        let standards: Vec<Value> = by_id
            .into_iter()
            .map(|(id, versions)| {
                let latest = versions.last().and_then(|v| v["version"].as_str()).map(str::to_owned);
                json!({ "id": id, "latest": latest, "versions": versions })
            })
            .collect();
        Ok(json!({ "standards": standards }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/standards/{id}/{version}/arrow", tag = "standards",
    params(("id" = String, Path, description = "Standard id"), ("version" = String, Path, description = "Version")),
    responses((status = 200, description = "The Arrow schema the version derives: the columns of a dataset bound to it", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/standards/{id}/{version}/arrow`.
pub async fn arrow_schema(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request_text("GET", &uri));
    let result = async {
        let Path((id, version)) = path.map_err(|_| no_standard("", ""))?;
        let text = document(&state, &id, &version).await?;
        let standard = Standard::from_json_str(&text).map_err(|e| Error::Store { message: e.to_string() })?;
        let fields: Vec<Value> = standard
            .arrow_schema()
            .fields()
            .iter()
            .map(|f| {
                let property = standard.property(f.name());
                json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                    "title": property.map(|p| p.title.clone()),
                })
            })
            .collect();
        Ok(json!({ "id": id, "version": version, "fields": fields }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

/// `from` and `to` of a diff.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The earlier version.
    pub from: String,
    /// The later version.
    pub to: String,
}

#[utoipa::path(get, path = "/api/v1/standards/{id}/diff", tag = "standards",
    params(("id" = String, Path, description = "Standard id"), ("from" = String, Query, description = "The earlier version"), ("to" = String, Query, description = "The later version")),
    responses((status = 200, description = "Columns added, removed and changed, and the compatibility report (full mode)", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/standards/{id}/diff?from=A&to=B`.
pub async fn diff(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request_text("GET", &uri));
    let result = async {
        let Path(id) = path.map_err(|_| no_standard("", ""))?;
        let Query(q) =
            query.map_err(|e| Error::BadRequest { message: format!("diff takes from and to (versions): {e}") })?;
        let parse =
            |text: &str| serde_json::from_str::<Value>(text).map_err(|e| Error::Store { message: e.to_string() });
        let from = parse(&document(&state, &id, &q.from).await?)?;
        let to = parse(&document(&state, &id, &q.to).await?)?;
        let report = compat::check(&to, std::slice::from_ref(&from), Mode::Full)
            .map_err(|e| Error::Store { message: e.to_string() })?;
        let properties = |doc: &Value| doc["properties"].as_object().cloned().unwrap_or_default();
        let (before, after): (Map<String, Value>, Map<String, Value>) = (properties(&from), properties(&to));
        let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        let changed: Vec<Value> = after
            .iter()
            .filter_map(|(name, now)| {
                let was = before.get(name)?;
                (was != now).then(|| json!({ "column": name, "from": was, "to": now }))
            })
            .collect();
        let required = |doc: &Value| doc["required"].clone();
        Ok(json!({
            "id": id, "from": q.from, "to": q.to,
            "added": added, "removed": removed, "changed": changed,
            "required": { "from": required(&from), "to": required(&to) },
            "compatible": report.is_compatible(),
            "incompatibilities": report.incompatibilities,
        }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

/// The body of a deprecation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deprecation {
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/standards/{id}/{version}/deprecate", tag = "standards",
    params(("id" = String, Path, description = "Standard id"), ("version" = String, Path, description = "Version")),
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "reason"),
    responses((status = 200, description = "Deprecated (a second deprecation keeps the first)", body = crate::openapi::AnyObject)))]
/// `POST /api/v1/standards/{id}/{version}/deprecate`.
pub async fn deprecate(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestPublishStandard).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestPublishStandard, &headers, &request_text("POST", &uri));
    let result = async {
        if !matches!(principal.role, Role::StandardsAdmin | Role::Admin) {
            return Err(Error::Forbidden { what: "only standards admins and admins deprecate standards".into() });
        }
        let Path((id, version)) = path.map_err(|_| no_standard("", ""))?;
        audit.dataset(format!("standard:{id}@{version}"));
        let body = crate::extract::body(body, MAX_BODY_BYTES)?;
        let Deprecation { reason } = serde_json::from_slice(&body)
            .map_err(|e| Error::BadBody { message: format!("a deprecation is {{\"reason\": \"…\"}}: {e}") })?;
        if reason.trim().is_empty() {
            return Err(Error::BadRequest { message: "a deprecation needs a reason".into() });
        }
        if state.store().standard(&id, &version).await?.is_none() {
            return Err(no_standard(&id, &version));
        }
        audit.started(&state).await?;
        if !state.store().deprecate_standard(&id, &version, &reason).await? {
            return Err(no_standard(&id, &version));
        }
        let versions = state.store().standards().await?;
        let record = versions.iter().find(|v| v.id == id && v.version == version).and_then(|v| v.deprecated.clone());
        Ok(json!({
            "id": id, "version": version,
            "deprecated_at": record.as_ref().map(|(at, _)| at),
            "deprecation_reason": record.as_ref().map(|(_, why)| why),
        }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/code-tables", tag = "standards",
    responses((status = 200, description = "The code tables, without their entries", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/code-tables`.
pub async fn code_tables(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request_text("GET", &uri));
    let tables: Vec<Value> = CodeTableRegistry::builtin()
        .iter()
        .map(|t| json!({ "name": t.name, "title": t.title, "standard": t.standard, "entries": t.len() }))
        .collect();
    let result = Ok(json!({ "code_tables": tables }));
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/code-tables/{name}", tag = "standards",
    params(("name" = String, Path, description = "Code table name (sex, ethnic_group, …)")),
    responses((status = 200, description = "The table and its entries, in the standard's order", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/code-tables/{name}`.
pub async fn code_table(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request_text("GET", &uri));
    let result = (|| {
        let Path(name) = path.map_err(|_| Error::NotFound { what: "no such code table".into() })?;
        let table = CodeTableRegistry::builtin()
            .get(&name)
            .ok_or_else(|| Error::NotFound { what: format!("no code table {name}") })?;
        Ok(json!({ "name": table.name, "title": table.title, "standard": table.standard, "entries": table.entries }))
    })();
    Ok(Json(audit.finish(&state, result, None).await?))
}
