//! `GET /api/v1/datasets/{department}/{name}/quarantine`: the rows a
//! dataset's runs quarantined, with their violations, newest first.
//!
//! A quarantined row is one that failed validation, so its division code may
//! be missing or wrong: it cannot be placed in a division, and row scope
//! cannot be applied to it. Quarantine is therefore shown to principals whose
//! scope is the whole dataset (no row prefix); a principal scoped to a
//! division gets a 403 that says so, and a grant that requires a purpose
//! requires it here too. The masks still hold, column by column: in the row
//! as delivered (`raw`) a column the principal reads in clear is shown as is,
//! a masked one masked (keyless: a pseudonym shows as stars), and one it may
//! not read (or the standard does not have) is left out; a violation's
//! message, which may quote the value, is shown only when the principal
//! reads its column in clear (only its column and keyword otherwise).
//!
//! Query: `limit` (1–1000, default 100), `run` (one run's rows), `cursor`
//! (the `next_cursor` of the page before: sealed, bound to the quarantine
//! version the first page read, so pages never skip or repeat rows while
//! new runs quarantine more).

use std::sync::Arc;

use arrow::array::RecordBatch;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use civlink_catalog::policy::{Access, AuditAction};
use civlink_catalog::table::TimeTravel;
use civlink_standards::mask::MaskStrategy;
use datafusion::prelude::{SessionContext, col, lit};
use serde_json::{Map, Value, json};

use crate::datasets::{dataset_id, not_found, request_text};
use crate::error::{Error, Result};
use crate::rows::cursor::{Cursor, Position};
use crate::state::{AppState, Audit};

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;

/// The seal domain's dataset name of quarantine cursors (never a dataset's).
fn cursor_key(dataset: &str) -> String {
    format!("{dataset}#quarantine")
}

/// The query of a quarantine request.
struct QuarantineQuery {
    limit: usize,
    run: Option<String>,
    cursor: Option<String>,
}

fn parse_query(pairs: Vec<(String, String)>) -> Result<QuarantineQuery> {
    let mut q = QuarantineQuery { limit: DEFAULT_LIMIT, run: None, cursor: None };
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                let n = value.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n));
                q.limit = n.ok_or_else(|| Error::BadRequest {
                    message: format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                })?;
            }
            "run" => q.run = Some(value),
            "cursor" => q.cursor = Some(value),
            other => {
                return Err(Error::BadRequest {
                    message: format!("unknown parameter \"{other}\" (limit, run, cursor)"),
                });
            }
        }
    }
    Ok(q)
}

/// What the cursor binds besides the dataset and version: the run filter.
fn binding(run: Option<&str>) -> String {
    crate::rows::cursor::hash_of(&format!("quarantine run={run:?}"))
}

/// One quarantined row as `access` may see it (module docs).
fn shown(mut row: Value, access: &Access) -> Value {
    let clear = |column: &str| access.column(column).is_some_and(|c| c.mask == MaskStrategy::None);
    let raw = row["raw"].as_str().and_then(|r| serde_json::from_str::<Map<String, Value>>(r).ok());
    row["raw"] = match raw {
        Some(object) => Value::Object(
            object
                .into_iter()
                .filter_map(|(column, value)| {
                    let seen = access.column(&column)?;
                    let value = match (&value, seen.mask) {
                        (_, MaskStrategy::None) | (Value::Null, _) => value,
                        (Value::String(v), mask) => mask.apply(v).map(Value::String).unwrap_or(Value::Null),
                        (other, mask) => mask.apply(&other.to_string()).map(Value::String).unwrap_or(Value::Null),
                    };
                    Some((column, value))
                })
                .collect(),
        ),
        None => Value::Null,
    };
    let every_column_clear = access.columns.iter().all(|c| c.mask == MaskStrategy::None);
    let violations = row["violations"].as_str().and_then(|v| serde_json::from_str::<Vec<Value>>(v).ok());
    row["violations"] = Value::Array(
        violations
            .unwrap_or_default()
            .into_iter()
            .map(|mut v| {
                let column = v["column"].as_str().unwrap_or_default().to_owned();
                let readable = if column.is_empty() { every_column_clear } else { clear(&column) };
                if !readable {
                    v["message"] = Value::Null;
                }
                v
            })
            .collect(),
    );
    row
}

/// Rows `skip..skip + limit + 1` of the quarantine table at `version`, in a
/// total order (newest run first, then by source, line and row).
async fn read(
    state: &AppState,
    uri: &str,
    version: i64,
    run: Option<&str>,
    skip: usize,
    limit: usize,
) -> Result<Vec<Value>> {
    let table = state
        .factory()
        .cache()
        .tables()
        .open(uri, TimeTravel::Version(version))
        .await
        .map_err(|e| Error::Engine { message: e.to_string() })?;
    let provider = table.table_provider().await.map_err(|e| Error::Engine { message: e.to_string() })?;
    let ctx = SessionContext::new();
    let mut frame = ctx.read_table(provider)?;
    if let Some(run) = run {
        frame = frame.filter(col("run_id").eq(lit(run.to_owned())))?;
    }
    let order = vec![
        col("quarantined_at").sort(false, false),
        col("run_id").sort(true, false),
        col("source_uri").sort(true, false),
        col("line").sort(true, false),
        col("row_index").sort(true, false),
        col("kind").sort(true, false),
    ];
    let batches: Vec<RecordBatch> = frame.sort(order)?.limit(skip, Some(limit + 1))?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let lines = crate::format::ndjson(batch)?;
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            rows.push(serde_json::from_slice(line).map_err(|e| Error::Engine { message: e.to_string() })?);
        }
    }
    Ok(rows)
}

#[utoipa::path(get, path = "/api/v1/datasets/{department}/{name}/quarantine", tag = "rows",
    params(("department" = String, Path, description = "Department code"), ("name" = String, Path, description = "Dataset name"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Rows per page"),
        ("run" = Option<String>, Query, description = "One run's quarantined rows"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before")),
    responses((status = 200, description = "Quarantined rows with their violations, newest first", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/datasets/{department}/{name}/quarantine`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestQuarantine).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestQuarantine, &headers, &request_text("GET", &uri));
    let mut returned = None;
    let result = async {
        let (id, text) = dataset_id(path)?;
        audit.dataset(text.clone());
        let q = parse_query(crate::extract::query_pairs(query)?)?;
        let snapshot = state.factory().policy().current().await?;
        let now = chrono::Utc::now();
        let found = snapshot.access(&principal, &id, now).ok_or_else(not_found)?;
        if found.access.row_prefix.is_some() {
            return Err(Error::Forbidden {
                what: "quarantined rows cannot be placed in a division, so they are shown only to principals \
                       whose scope is the whole dataset"
                    .into(),
            });
        }
        let purpose = crate::auth::purpose(&headers);
        if let Some(refusal) =
            snapshot.purpose_required(&principal, std::slice::from_ref(&text), purpose.as_deref(), now)
        {
            return Err(civlink_query::Error::from(refusal).into());
        }
        let Some(latest) = found.record.quarantine_version else {
            return Ok(json!({ "dataset": text, "version": null, "rows": [], "next_cursor": null }));
        };
        let binding = binding(q.run.as_deref());
        let (version, skip) = match &q.cursor {
            Some(t) => {
                let c = Cursor::decode(state.factory(), t, &cursor_key(&text), &binding)?;
                match c.position {
                    Position::Skip(n) => (c.version, n),
                    Position::After(_) => return Err(Error::BadCursor { reason: "it is not a quarantine cursor" }),
                }
            }
            None => (latest, 0),
        };
        let skip_rows = usize::try_from(skip).map_err(|_| Error::BadCursor { reason: "it is past any page" })?;
        let mut rows =
            read(&state, &found.record.quarantine_uri, version, q.run.as_deref(), skip_rows, q.limit).await?;
        let more = rows.len() > q.limit;
        rows.truncate(q.limit);
        let rows: Vec<Value> = rows.into_iter().map(|r| shown(r, &found.access)).collect();
        let next_cursor = if more {
            let position = Position::Skip(skip + rows.len() as u64);
            let request = binding.clone();
            Some(Cursor { dataset: cursor_key(&text), version, request, position }.encode(state.factory())?)
        } else {
            None
        };
        returned = Some(rows.len() as u64);
        Ok(json!({ "dataset": text, "version": version, "rows": rows, "next_cursor": next_cursor }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, returned).await?))
}
