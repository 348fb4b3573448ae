//! `GET /api/v1/datasets/{department}/{name}/rows`: a dataset's rows,
//! scoped and masked, filtered, ordered, paged by cursor, in the format the
//! `Accept` header asks for ([`crate::format`]).
//!
//! Rows are read through the query layer's governed run
//! ([`civlink_query::SessionFactory::run`]): the table is the same
//! [`civlink_query::scope::ScopedTable`] a Flight SQL query reads (at the
//! version the walk started on), so the row scope and the masks are applied
//! below everything this module adds, and the run is audited before its
//! first row leaves.
//!
//! * **JSON** answers one page (`limit`, default [`params::DEFAULT_LIMIT`]):
//!   `{"dataset", "version", "columns", "limit", "returned", "next_cursor",
//!   "rows": [...]}`; `next_cursor` is `null` on the last page.
//! * **NDJSON, CSV, Arrow IPC, Parquet** answer one page too when `limit` is
//!   given (the next cursor in the `x-civlink-next-cursor` header); without
//!   it they stream every row in bounded memory.
//!
//! | module | what lives there |
//! |---|---|
//! | [`params`] | the query string: selection, typed filters, order, time travel |
//! | [`cursor`] | opaque cursors, sealed and bound to the dataset, version and request |
//! | [`plan`] | the plan: filters, keyset or counted position, total order, page |

pub mod cursor;
pub mod params;
pub mod plan;

use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use civlink_catalog::model::{DatasetId, DatasetRecord};
use civlink_catalog::policy::AuditAction;
use civlink_catalog::store::MetadataStore;
use civlink_query::{Error as QueryError, QueryRequest, ScopedSession, Statement};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::datasets::{dataset_id, not_found, request_text};
use crate::error::{Error, Result};
use crate::format::{self, Format};
use crate::state::{AppState, Audit};
use cursor::{Cursor, Position};
use params::{At, RowParams};

/// The header that carries the next page's cursor of a non-JSON page.
pub const NEXT_CURSOR_HEADER: &str = "x-civlink-next-cursor";

/// What the plan reported back from inside the run.
#[derive(Debug, Default)]
struct Planned {
    columns: Vec<String>,
    version: Option<i64>,
    keyset: bool,
    key_indices: Vec<usize>,
}

#[utoipa::path(get, path = "/api/v1/datasets/{department}/{name}/rows", tag = "rows",
    description = "Rows, scoped and masked. Filters are further query parameters: `c=v` or `c.eq=v`, `c.in=v1,v2`, `c.gt|gte|lt|lte=v`, `c.prefix=digits` (the division column), `c.is_null=true|false`.",
    params(("department" = String, Path, description = "Department code"), ("name" = String, Path, description = "Dataset name"), crate::openapi::RowsQuery),
    responses((status = 200, description = "A page (JSON, or any format with `limit`), or every row streamed",
        content(
            (crate::openapi::RowsPage = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
            (Vec<u8> = "application/vnd.apache.parquet")
        ),
        headers(("x-civlink-next-cursor" = String, description = "The next page's cursor (non-JSON pages)")))))]
/// `GET /api/v1/datasets/{department}/{name}/rows`.
pub async fn rows(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestRows).await?;
    // A request that cannot even be read is audited here; one that runs is
    // audited by the query layer (before its first row, and when it ends).
    let parsed = (|| {
        let (id, text) = dataset_id(path)?;
        let params = RowParams::parse(crate::extract::query_pairs(query)?)?;
        let format = Format::negotiate(&headers, params.bom)?;
        let cursor = match &params.cursor {
            Some(text_cursor) => {
                if params.at.is_some() {
                    return Err(Error::BadRequest {
                        message: "a cursor already fixes the version: drop version and as_of".into(),
                    });
                }
                Some(Cursor::decode(state.factory(), text_cursor, &text, &cursor::request_hash(&params))?)
            }
            None => None,
        };
        Ok::<_, Error>((id, params, format, cursor))
    })();
    let (id, params, format, cursor) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let audit = Audit::start(&principal, AuditAction::RestRows, &headers, &request);
            return audit.finish(&state, Err::<Response, _>(e), None).await;
        }
    };
    let query = QueryRequest {
        principal: principal.clone(),
        purpose: crate::auth::purpose(&headers),
        action: AuditAction::RestRows,
        text: request,
        query_id: None,
    };
    // JSON always answers a page; the other formats do when a limit is given.
    let limit = match (format, params.limit) {
        (Format::Json, None) => Some(params::DEFAULT_LIMIT),
        (_, limit) => limit,
    };
    // Rows a counted cursor skipped: the next one skips this page's as well.
    let skipped = match cursor.as_ref().map(|c| &c.position) {
        Some(Position::Skip(n)) => *n,
        _ => 0,
    };
    let planned: Arc<Mutex<Planned>> = Arc::default();
    let statement = statement(state.store().clone(), id.clone(), params.clone(), cursor, limit, Arc::clone(&planned));
    let stream = match state.factory().run(query, statement).await {
        Ok(stream) => stream,
        // Not in the session: unreadable or unknown (404), or readable but
        // never ingested (no table yet: no rows).
        Err(QueryError::UnknownDataset { .. }) => {
            return never_ingested(&state, &principal, &id, &params, format).await;
        }
        Err(e) => return Err(e.into()),
    };
    let taken = |planned: &Mutex<Planned>| std::mem::take(&mut *planned.lock().unwrap_or_else(PoisonError::into_inner));
    match limit {
        None => {
            let Planned { columns, .. } = taken(&planned);
            let schema = stream.schema();
            let selected = select(&schema, columns.len());
            let rows = stream.map(move |batch| batch.map_err(Error::from).and_then(|b| cut_to(&b, columns.len())));
            format::streamed(format, selected, rows)
        }
        Some(limit) => {
            let batches: Vec<RecordBatch> = stream.try_collect().await?;
            let planned = taken(&planned);
            let page = Page::assemble(&state, &id, &params, &planned, skipped, batches, limit)?;
            page.into_response(format)
        }
    }
}

/// The statement the governed run plans in the principal's session.
fn statement(
    store: MetadataStore,
    id: DatasetId,
    params: RowParams,
    cursor: Option<Cursor>,
    limit: Option<usize>,
    planned: Arc<Mutex<Planned>>,
) -> Statement {
    Statement::Plan(Box::new(move |session: ScopedSession| {
        Box::pin(async move {
            let Some((record, access)) = session.datasets.iter().find(|(r, _)| r.spec.id == id).cloned() else {
                return Err(QueryError::UnknownDataset { dataset: id.to_string() });
            };
            let version = match (&cursor, params.at) {
                (Some(cursor), _) => committed(&store, &record, At::Version(cursor.version)).await?,
                (None, Some(at)) => committed(&store, &record, at).await?,
                (None, None) => {
                    record.current_version.ok_or_else(|| QueryError::UnknownDataset { dataset: id.to_string() })?
                }
            };
            let table = session
                .table_at(&id, version)
                .await?
                .ok_or_else(|| QueryError::UnknownDataset { dataset: id.to_string() })?;
            let window = plan::Window { limit, position: cursor.as_ref().map(|c| &c.position) };
            let built = plan::build(table, &record, &access, &params, window)?;
            *planned.lock().unwrap_or_else(PoisonError::into_inner) = Planned {
                columns: built.columns,
                version: Some(version),
                keyset: built.keyset,
                key_indices: built.key_indices,
            };
            Ok((built.plan, vec![id.to_string()]))
        })
    }))
}

/// The committed version `at` names, or the refusal that says why there is none.
async fn committed(store: &MetadataStore, record: &DatasetRecord, at: At) -> civlink_query::Result<i64> {
    let id = &record.spec.id;
    let versions = store.versions(id).await.map_err(|e| QueryError::Store { message: e.to_string() })?;
    let current = record.current_version.unwrap_or(-1);
    let committed = versions.iter().filter(|v| v.version <= current);
    let found = match at {
        At::Version(n) => committed.map(|v| v.version).find(|v| *v == n),
        At::AsOf(t) => committed.filter(|v| v.committed_at <= t).map(|v| v.version).max(),
    };
    found.ok_or_else(|| QueryError::InvalidRequest {
        message: match at {
            At::Version(n) => format!("dataset {id} has no committed version {n}"),
            At::AsOf(t) => format!("dataset {id} had no committed version at {}", t.to_rfc3339()),
        },
    })
}

/// The first `n` fields of `schema`: the selected columns.
fn select(schema: &SchemaRef, n: usize) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().take(n).cloned().collect::<Vec<_>>()))
}

/// `batch` without the key columns that ride after the selected ones.
fn cut_to(batch: &RecordBatch, n: usize) -> Result<RecordBatch> {
    if batch.num_columns() == n {
        return Ok(batch.clone());
    }
    Ok(batch.project(&(0..n).collect::<Vec<_>>())?)
}

/// A readable dataset without a committed version: no rows, in the format asked for.
async fn never_ingested(
    state: &AppState,
    principal: &civlink_catalog::policy::Principal,
    id: &DatasetId,
    params: &RowParams,
    format: Format,
) -> Result<Response> {
    let snapshot = state.factory().policy().current().await?;
    let found = snapshot.access(principal, id, chrono::Utc::now()).ok_or_else(not_found)?;
    for column in params.named_columns() {
        if found.access.column(column).is_none() {
            return Err(Error::UnknownColumn { column: column.clone() });
        }
    }
    let columns =
        params.columns.clone().unwrap_or_else(|| found.access.columns.iter().map(|c| c.name.clone()).collect());
    let schema = Arc::new(Schema::new(columns.iter().map(|c| Field::new(c, DataType::Utf8, true)).collect::<Vec<_>>()));
    let page = Page {
        dataset: id.to_string(),
        version: found.record.current_version,
        columns,
        limit: params.limit.unwrap_or(params::DEFAULT_LIMIT),
        next_cursor: None,
        schema,
        batches: Vec::new(),
    };
    page.into_response(format)
}

/// One page of rows.
struct Page {
    dataset: String,
    version: Option<i64>,
    columns: Vec<String>,
    limit: usize,
    next_cursor: Option<String>,
    /// The selected columns' schema.
    schema: SchemaRef,
    /// The page's rows (at most `limit`), selected columns only.
    batches: Vec<RecordBatch>,
}

impl Page {
    /// The page of `batches` (up to `limit + 1` rows, with the key columns),
    /// and the cursor of the next one when there is a next one.
    fn assemble(
        state: &AppState,
        id: &DatasetId,
        params: &RowParams,
        planned: &Planned,
        skipped: u64,
        batches: Vec<RecordBatch>,
        limit: usize,
    ) -> Result<Page> {
        let n = planned.columns.len();
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut kept = Vec::new();
        let mut left = limit;
        let mut last: Option<(RecordBatch, usize)> = None;
        for batch in &batches {
            if left == 0 {
                break;
            }
            let take = batch.num_rows().min(left);
            if take == 0 {
                continue;
            }
            let slice = batch.slice(0, take);
            last = Some((slice.clone(), take - 1));
            kept.push(cut_to(&slice, n)?);
            left -= take;
        }
        let returned = limit - left;
        let schema = match batches.first() {
            Some(b) => select(&b.schema(), n),
            None => Arc::new(Schema::new(
                planned.columns.iter().map(|c| Field::new(c, DataType::Utf8, true)).collect::<Vec<_>>(),
            )),
        };
        let version = planned.version;
        let next_cursor = match (total > limit, version, last) {
            (true, Some(version), Some((batch, row))) => {
                let position = if planned.keyset {
                    Position::After(plan::key_of(&batch, row, &planned.key_indices)?)
                } else {
                    Position::Skip(skipped + returned as u64)
                };
                let cursor =
                    Cursor { dataset: id.to_string(), version, request: cursor::request_hash(params), position };
                Some(cursor.encode(state.factory())?)
            }
            _ => None,
        };
        Ok(Page {
            dataset: id.to_string(),
            version,
            columns: planned.columns.clone(),
            limit,
            next_cursor,
            schema,
            batches: kept,
        })
    }

    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn into_response(self, format: Format) -> Result<Response> {
        let mut response = match format {
            Format::Json => {
                #[derive(Serialize)]
                struct Head<'a> {
                    dataset: &'a str,
                    version: Option<i64>,
                    columns: &'a [String],
                    limit: usize,
                    returned: usize,
                    next_cursor: Option<&'a str>,
                }
                let head = serde_json::to_vec(&Head {
                    dataset: &self.dataset,
                    version: self.version,
                    columns: &self.columns,
                    limit: self.limit,
                    returned: self.rows(),
                    next_cursor: self.next_cursor.as_deref(),
                })
                .map_err(|e| Error::Engine { message: format!("encoding the page head: {e}") })?;
                let rows = format::json_array(&self.batches)?;
                // `{…head…, "rows": […]}`: the head object without its closing brace.
                let mut body = Vec::with_capacity(head.len() + rows.len() + 16);
                body.extend_from_slice(&head[..head.len().saturating_sub(1)]);
                body.extend_from_slice(b",\"rows\":");
                body.extend_from_slice(&rows);
                body.push(b'}');
                Body::from(body).into_response()
            }
            other => Body::from(format::encode_all(other, &self.schema, &self.batches)?).into_response(),
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
        if let Some(cursor) = &self.next_cursor
            && let Ok(value) = HeaderValue::from_str(cursor)
        {
            headers.insert(NEXT_CURSOR_HEADER, value);
        }
        Ok(response)
    }
}
