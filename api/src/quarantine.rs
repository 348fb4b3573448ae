//! `GET /api/v1/datasets/{department}/{name}/quarantine`: the rows a
//! dataset's runs quarantined, with their violations, newest first.
//!
//! A quarantined row is one that failed validation, so its division code may
//! be missing or wrong: it cannot be placed in a division, and row scope
//! cannot be applied to it. Quarantine is therefore shown to principals whose
//! scope is the whole dataset (no row prefix); a principal scoped to a
//! division gets a 403 that says so. The masks still hold: the row as
//! delivered (`raw`) is shown only to a principal who reads every column of
//! the standard in clear; anyone else gets `raw: null` and the violations
//! with every quoted value and long digit run masked.
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
use civlink_catalog::policy::AuditAction;
use civlink_catalog::table::TimeTravel;
use civlink_standards::mask::MaskStrategy;
use datafusion::prelude::{SessionContext, col, lit};
use serde_json::{Value, json};

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
    let principal = state.principal(&headers, AuditAction::RestRows).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestRows, &headers, &request_text("GET", &uri));
    let mut returned = None;
    let result = async {
        let (id, text) = dataset_id(path)?;
        audit.dataset(text.clone());
        let mut limit = DEFAULT_LIMIT;
        let mut run: Option<String> = None;
        let mut cursor_text: Option<String> = None;
        for (key, value) in crate::extract::query_pairs(query)? {
            match key.as_str() {
                "limit" => {
                    limit = value.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(
                        || Error::BadRequest { message: format!("limit must be a whole number from 1 to {MAX_LIMIT}") },
                    )?;
                }
                "run" => run = Some(value),
                "cursor" => cursor_text = Some(value),
                other => return Err(Error::BadRequest { message: format!("unknown parameter \"{other}\" (limit, run, cursor)") }),
            }
        }
        let snapshot = state.factory().policy().current().await?;
        let found = snapshot.access(&principal, &id, chrono::Utc::now()).ok_or_else(not_found)?;
        if found.access.row_prefix.is_some() {
            return Err(Error::Forbidden {
                what: "quarantined rows cannot be placed in a division, so they are shown only to principals whose scope is the whole dataset".into(),
            });
        }
        // The row as delivered, only to whoever reads every column in clear.
        let clear = found.standard.arrow_schema().fields().iter().all(|f| {
            found.access.column(f.name()).is_some_and(|c| c.mask == MaskStrategy::None)
        });
        let Some(version) = found.record.quarantine_version else {
            return Ok(json!({ "dataset": text, "version": null, "rows": [], "next_cursor": null }));
        };
        // The cursor binds the quarantine version and the run filter.
        let binding = crate::rows::params::RowParams {
            filters: run.iter().map(|r| crate::rows::params::Filter { column: "run_id".into(), op: crate::rows::params::FilterOp::Eq(r.clone()) }).collect(),
            ..Default::default()
        };
        let (version, skip) = match &cursor_text {
            Some(t) => {
                let c = Cursor::decode(state.factory(), t, &cursor_key(&text), &binding)?;
                match c.position {
                    Position::Skip(n) => (c.version, n),
                    Position::After(_) => return Err(Error::BadCursor { reason: "it is not a quarantine cursor" }),
                }
            }
            None => (version, 0),
        };
        let table = state
            .factory()
            .cache()
            .tables()
            .open(&found.record.quarantine_uri, TimeTravel::Version(version))
            .await
            .map_err(|e| Error::Engine { message: e.to_string() })?;
        let provider = table.table_provider().await.map_err(|e| Error::Engine { message: e.to_string() })?;
        let ctx = SessionContext::new();
        let mut frame = ctx.read_table(provider)?;
        if let Some(run) = &run {
            frame = frame.filter(col("run_id").eq(lit(run.clone())))?;
        }
        let skip_rows = usize::try_from(skip).map_err(|_| Error::BadCursor { reason: "it is past any page" })?;
        let frame = frame
            .sort(vec![col("quarantined_at").sort(false, false), col("run_id").sort(true, false), col("row_index").sort(true, false)])?
            .limit(skip_rows, Some(limit + 1))?;
        let batches: Vec<RecordBatch> = frame.collect().await?;
        let lines = batches.iter().map(crate::format::ndjson).collect::<Result<Vec<_>>>()?;
        let mut rows: Vec<Value> = Vec::new();
        for line in lines.iter().flat_map(|l| l.split(|b| *b == b'\n')).filter(|l| !l.is_empty()) {
            let mut row: Value = serde_json::from_slice(line).map_err(|e| Error::Engine { message: e.to_string() })?;
            if !clear {
                row["raw"] = Value::Null;
                if let Some(v) = row["violations"].as_str() {
                    row["violations"] = Value::String(civlink_query::redact::quoted_values(v));
                }
            }
            rows.push(row);
        }
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            let cursor = Cursor {
                dataset: cursor_key(&text),
                version,
                request: crate::rows::cursor::request_hash(&binding),
                position: Position::Skip(skip + rows.len() as u64),
            };
            Some(cursor.encode(state.factory())?)
        } else {
            None
        };
        returned = Some(rows.len() as u64);
        Ok(json!({ "dataset": text, "version": version, "raw_shown": clear, "rows": rows, "next_cursor": next_cursor }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, returned).await?))
}
