//! The dataset endpoints: what a principal may read, and the rows.
//!
//! * `GET /api/v1/datasets`: every dataset the principal may read, with its
//!   governance attributes and the principal's access (row scope, columns
//!   and their masks).
//! * `GET /api/v1/datasets/{department}/{name}`: one of them. A dataset the
//!   principal may not read gets exactly the 404 of one that does not exist,
//!   so the API does not reveal which datasets exist.
//! * `GET /api/v1/datasets/{department}/{name}/rows`: rows as JSON objects,
//!   scoped and masked, in a stable order for paging.
//!
//! # Rows
//!
//! Rows are read through the query layer's governed run
//! ([`civlink_query::SessionFactory::run`]): the table is the same
//! [`civlink_query::scope::ScopedTable`] a Flight SQL query reads, so the row
//! scope and the masks are applied below everything this module adds. The
//! query is built with DataFusion's DataFrame API from validated parameters
//! (column names checked against the scoped schema, filter values parsed
//! into typed literals); no user text ever becomes SQL.
//!
//! Query parameters: `limit` (1–[`MAX_LIMIT`], default [`DEFAULT_LIMIT`]),
//! `offset` (default 0), `columns=a,b` (default all readable), and any other
//! `column=value` is an equality filter on a readable column. Filters apply
//! to what the principal sees: on a masked column they compare the *masked*
//! value, so a filter cannot be used to look up the value behind a mask.
//! Columns named `limit`, `offset` or `columns` cannot be filtered on.
//! A `pseudonym` mask is keyed with the deployment's key (the same as
//! Flight's), so a pseudonym works as a join key across datasets, requests
//! and the two services, and filtering by it finds its rows in scope.
//!
//! The order is the primary key (as the principal sees it), then every other
//! readable column: a total order on what the principal can see, so pages
//! of one dataset version never overlap or skip rows (rows equal in every
//! visible column are indistinguishable, whatever their order).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use civlink_catalog::model::{DatasetId, DatasetRecord, SharingType, UpdateCycle};
use civlink_catalog::policy::Access;
use civlink_standards::mask::MaskStrategy;
use civlink_standards::standard::{Sensitivity, Standard};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{ident, lit};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use civlink_query::{Error as QueryError, QueryRequest, ScopedSession, Statement};
use futures::TryStreamExt;

use crate::state::{AppState, Audit};
use civlink_catalog::policy::AuditAction;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;
/// The largest `offset` (deeper pages cost a sort of that many rows).
pub const MAX_OFFSET: usize = 1_000_000_000;

/// One column as the principal sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnView {
    /// Column name.
    pub name: String,
    /// Chinese title from the standard.
    pub title: String,
    /// JSON type from the standard (`string`, `integer`, …); masked values are strings.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Sensitivity from the standard.
    pub sensitivity: Sensitivity,
    /// The mask applied for this principal (`{"strategy": "none"}` = in clear).
    pub mask: MaskStrategy,
}

/// The principal's row scope on a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeView {
    /// The column rows are scoped by.
    pub division_column: Option<String>,
    /// Rows whose division code starts with this; `null` = every row.
    pub row_prefix: Option<String>,
}

/// The standard a dataset follows.
#[derive(Debug, Clone, Serialize)]
pub struct StandardRef {
    /// Standard id.
    pub id: String,
    /// Standard version.
    pub version: String,
}

/// A dataset as listed and described.
#[derive(Debug, Clone, Serialize)]
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
    pub classification: Sensitivity,
    /// GB/T 21063 sharing type.
    pub sharing: SharingType,
    /// Update cycle.
    pub update_cycle: UpdateCycle,
    /// The bound standard.
    pub standard: StandardRef,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// The committed version readers see; `null` before the first run.
    pub latest_version: Option<i64>,
    /// When a run last committed.
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
fn not_found() -> Error {
    Error::NotFound { what: "no such dataset, or not one you may read".into() }
}

/// The dataset id in a path, or the 404.
fn dataset_id(path: Result<Path<(String, String)>, PathRejection>) -> Result<(DatasetId, String)> {
    let Path((department, name)) = path.map_err(|_| not_found())?;
    let text = format!("{department}.{name}");
    // Only canonical ids: `民政/x` or `MINZHENG/x` would name the same dataset
    // under another spelling, and audit entries should name one.
    match text.parse::<DatasetId>() {
        Ok(id) if id.to_string() == text => Ok((id, text)),
        _ => Err(not_found()),
    }
}

/// `GET /api/v1/datasets`.
pub async fn list(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<Value>> {
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
    Ok(Json(serde_json::json!({ "datasets": datasets })))
}

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

/// The parameters of a rows request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowParams {
    /// Rows per page.
    pub limit: usize,
    /// Rows skipped.
    pub offset: usize,
    /// The columns to return, in this order; `None` = every readable column.
    pub columns: Option<Vec<String>>,
    /// Equality filters, `(column, value)`, in the order given.
    pub filters: Vec<(String, String)>,
}

impl RowParams {
    /// Parse the query string's pairs.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<RowParams> {
        let bad = |message: String| Error::BadRequest { message };
        let mut limit = None;
        let mut offset = None;
        let mut columns: Option<Vec<String>> = None;
        let mut filters: Vec<(String, String)> = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    if limit.is_some() {
                        return Err(bad("limit is given more than once".into()));
                    }
                    let n = value.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n));
                    limit = Some(n.ok_or_else(|| bad(format!("limit must be a whole number from 1 to {MAX_LIMIT}")))?);
                }
                "offset" => {
                    if offset.is_some() {
                        return Err(bad("offset is given more than once".into()));
                    }
                    let n = value.trim().parse::<usize>().ok().filter(|n| *n <= MAX_OFFSET);
                    offset =
                        Some(n.ok_or_else(|| bad(format!("offset must be a whole number from 0 to {MAX_OFFSET}")))?);
                }
                "columns" => {
                    if columns.is_some() {
                        return Err(bad("columns is given more than once; list them comma-separated".into()));
                    }
                    let mut list: Vec<String> = Vec::new();
                    for name in value.split(',').map(str::trim) {
                        if name.is_empty() {
                            return Err(bad("columns must be a comma-separated list of column names".into()));
                        }
                        if list.iter().any(|c| c == name) {
                            return Err(bad(format!("column \"{name}\" is listed twice in columns")));
                        }
                        list.push(name.to_owned());
                    }
                    columns = Some(list);
                }
                "" => return Err(bad("a query parameter without a name".into())),
                _ => {
                    if filters.iter().any(|(c, _)| *c == key) {
                        return Err(bad(format!("the filter on column \"{key}\" is given more than once")));
                    }
                    filters.push((key, value));
                }
            }
        }
        Ok(RowParams { limit: limit.unwrap_or(DEFAULT_LIMIT), offset: offset.unwrap_or(0), columns, filters })
    }

    /// Check every named column against the readable ones.
    fn check_columns<'a>(&self, readable: impl Fn(&str) -> bool + 'a) -> Result<()> {
        let named = self.columns.iter().flatten().chain(self.filters.iter().map(|(c, _)| c));
        for column in named {
            if !readable(column) {
                return Err(Error::UnknownColumn { column: column.clone() });
            }
        }
        Ok(())
    }
}

/// One page of rows.
struct Page {
    dataset: String,
    version: Option<i64>,
    columns: Vec<String>,
    limit: usize,
    offset: usize,
    next_offset: Option<usize>,
    /// The rows as a JSON array (arrow-json's output, spliced in as is).
    rows_json: Vec<u8>,
    rows: usize,
}

impl Page {
    fn into_response(self) -> Result<Response> {
        #[derive(Serialize)]
        struct Head<'a> {
            dataset: &'a str,
            version: Option<i64>,
            columns: &'a [String],
            limit: usize,
            offset: usize,
            next_offset: Option<usize>,
            returned: usize,
        }
        let head = serde_json::to_vec(&Head {
            dataset: &self.dataset,
            version: self.version,
            columns: &self.columns,
            limit: self.limit,
            offset: self.offset,
            next_offset: self.next_offset,
            returned: self.rows,
        })
        .map_err(|e| Error::Engine { message: format!("encoding the page head: {e}") })?;
        // `{…head…, "rows": […]}`: the head object without its closing brace.
        let mut body = Vec::with_capacity(head.len() + self.rows_json.len() + 16);
        body.extend_from_slice(&head[..head.len().saturating_sub(1)]);
        body.extend_from_slice(b",\"rows\":");
        body.extend_from_slice(&self.rows_json);
        body.push(b'}');
        let mut response = Body::from(body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

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
        let pairs = crate::extract::query_pairs(query)?;
        Ok::<_, Error>((id, text, RowParams::parse(pairs)?))
    })();
    let (id, params) = match parsed {
        Ok((id, _, params)) => (id, params),
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
    page(&state, query, &id, params).await?.into_response()
}

/// Read one page of `id` for the request's principal, through the query
/// layer's governed run.
async fn page(state: &AppState, query: QueryRequest, id: &DatasetId, params: RowParams) -> Result<Page> {
    let principal = query.principal.clone();
    let plan_id = id.clone();
    let plan_params = params.clone();
    let columns_out: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let version_out: Arc<std::sync::Mutex<Option<i64>>> = Arc::default();
    let (columns_in, version_in) = (Arc::clone(&columns_out), Arc::clone(&version_out));
    let statement = Statement::Plan(Box::new(move |session: ScopedSession| {
        Box::pin(async move {
            let Some(record) = session.datasets.iter().find(|(r, _)| r.spec.id == plan_id).map(|(r, _)| r.clone())
            else {
                return Err(QueryError::UnknownDataset { dataset: plan_id.to_string() });
            };
            let table = session
                .table(&plan_id)
                .await?
                .ok_or_else(|| QueryError::UnknownDataset { dataset: plan_id.to_string() })?;
            let (plan, columns) = rows_plan(table, &record, &plan_params)?;
            *columns_in.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = columns;
            *version_in.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = record.current_version;
            Ok((plan, vec![plan_id.to_string()]))
        })
    }));
    let stream = match state.factory().run(query, statement).await {
        Ok(stream) => stream,
        // Not in the session: unreadable or unknown (404), or readable but
        // never ingested (no table yet: an empty page).
        Err(QueryError::UnknownDataset { .. }) => {
            let snapshot = state.factory().policy().current().await?;
            let found = snapshot.access(&principal, id, chrono::Utc::now()).ok_or_else(not_found)?;
            let (record, access) = (found.record, found.access);
            params.check_columns(|c| access.column(c).is_some())?;
            let columns =
                params.columns.clone().unwrap_or_else(|| access.columns.iter().map(|c| c.name.clone()).collect());
            return Ok(Page {
                dataset: id.to_string(),
                version: record.current_version,
                columns,
                limit: params.limit,
                offset: params.offset,
                next_offset: None,
                rows_json: b"[]".to_vec(),
                rows: 0,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let (rows_json, rows) = to_json(&batches, params.limit)?;
    let columns = std::mem::take(&mut *columns_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let version = *version_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(Page {
        dataset: id.to_string(),
        version,
        columns,
        limit: params.limit,
        offset: params.offset,
        next_offset: (total > params.limit).then(|| params.offset + params.limit),
        rows_json,
        rows,
    })
}

/// The plan of one page: the scoped table, the typed filters, a total order,
/// the page's rows (one more, to know whether there is a next page), and
/// the selected columns.
fn rows_plan(
    table: Arc<dyn datafusion::catalog::TableProvider>,
    record: &DatasetRecord,
    params: &RowParams,
) -> civlink_query::Result<(datafusion::logical_expr::LogicalPlan, Vec<String>)> {
    // The scoped table's schema: exactly the readable columns, masked ones as strings.
    let schema: SchemaRef = table.schema();
    let has = |c: &str| schema.field_with_name(c).is_ok();
    for column in params.columns.iter().flatten().chain(params.filters.iter().map(|(c, _)| c)) {
        if !has(column) {
            return Err(QueryError::UnknownColumn { column: column.clone() });
        }
    }
    let columns: Vec<String> = match &params.columns {
        Some(list) => list.clone(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    // A plan built directly, not a DataFrame: `read_table` copies the whole session state.
    let name = TableReference::partial(record.spec.id.department.code(), record.spec.id.name.as_str());
    let mut builder = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?;
    for (column, value) in &params.filters {
        let field = schema.field_with_name(column).map_err(|_| QueryError::UnknownColumn { column: column.clone() })?;
        let literal =
            ScalarValue::try_from_string(value.clone(), field.data_type()).map_err(|_| QueryError::InvalidRequest {
                message: format!("the filter value for column \"{column}\" is not {}", type_noun(field.data_type())),
            })?;
        builder = builder.filter(ident(column).eq(lit(literal)))?;
    }
    let mut order: Vec<&str> = record.spec.primary_key.iter().map(String::as_str).filter(|c| has(c)).collect();
    for field in schema.fields() {
        if !order.contains(&field.name().as_str()) {
            order.push(field.name());
        }
    }
    let sort: Vec<datafusion::logical_expr::SortExpr> = order.iter().map(|c| ident(*c).sort(true, true)).collect();
    let fetch = params.limit.saturating_add(1);
    let plan = builder
        .sort(sort)?
        .limit(params.offset, Some(fetch))?
        .project(columns.iter().map(ident).collect::<Vec<_>>())?
        .build()?;
    Ok((plan, columns))
}

/// What a filter value must be for a column of type `t`, for the error message.
fn type_noun(t: &DataType) -> &'static str {
    match t {
        t if t.is_integer() => "an integer",
        t if t.is_floating() || t.is_numeric() => "a number",
        DataType::Boolean => "true or false",
        DataType::Date32 | DataType::Date64 => "a date (YYYY-MM-DD)",
        DataType::Timestamp(..) => "a date-time (RFC 3339)",
        _ => "a valid value for the column",
    }
}

/// The first `limit` rows of `batches` as a JSON array of objects (nulls
/// written as `null`, columns in order); with the number of rows written.
fn to_json(batches: &[RecordBatch], limit: usize) -> Result<(Vec<u8>, usize)> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    let mut left = limit;
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        writer.write(&batch.slice(0, take))?;
        left -= take;
    }
    writer.finish()?;
    Ok((writer.into_inner(), limit - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn row_parameters_parse_with_defaults() {
        let p = RowParams::parse(vec![]).unwrap();
        assert_eq!((p.limit, p.offset, p.columns, p.filters.len()), (DEFAULT_LIMIT, 0, None, 0));
        let p =
            RowParams::parse(pairs(&[("limit", "5"), ("offset", "10"), ("columns", "a, b"), ("sex", "1")])).unwrap();
        assert_eq!(p.limit, 5);
        assert_eq!(p.offset, 10);
        assert_eq!(p.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.filters, vec![("sex".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn bad_row_parameters_are_refused() {
        for bad in [
            vec![("limit", "0")],
            vec![("limit", "10001")],
            vec![("limit", "-1")],
            vec![("limit", "ten")],
            vec![("offset", "-3")],
            vec![("offset", "99999999999999999999999")],
            vec![("limit", "1"), ("limit", "2")],
            vec![("columns", "a,,b")],
            vec![("columns", "a,a")],
            vec![("sex", "1"), ("sex", "2")],
            vec![("", "x")],
        ] {
            assert!(matches!(RowParams::parse(pairs(&bad)), Err(Error::BadRequest { .. })), "{bad:?}");
        }
    }

    #[test]
    fn json_pages_stop_at_the_limit_and_write_nulls() {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            ],
        )
        .unwrap();
        let (json, n) = to_json(&[batch.clone(), batch.clone()], 4).unwrap();
        assert_eq!(n, 4);
        let rows: Vec<Value> = serde_json::from_slice(&json).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], serde_json::json!({"a": null, "n": 2}));
        assert_eq!(rows[3], serde_json::json!({"a": "x", "n": 1}));
        let (json, n) = to_json(&[], 4).unwrap();
        assert_eq!((json.as_slice(), n), (&b"[]"[..], 0));
    }
}
