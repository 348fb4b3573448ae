//! `POST /api/v1/query`: SQL over REST.
//!
//! The body is `{"sql": "SELECT …", "params": [value, …]}`: the text goes
//! through the query layer's plan gate exactly as a Flight SQL statement
//! does (read-only, the same functions and limits, the same scoped and
//! masked tables), and `params` bind `$1`, `$2`, … (JSON strings, integers,
//! numbers, booleans and nulls). The answer is the result in the format the
//! `Accept` header asks for ([`crate::format`]), streamed as it is computed;
//! JSON is `{"columns": [...], "rows": [...]}`.
//!
//! SQL is for the roles that analyse: analysts and admins. Department
//! service accounts and the standards team read rows through the typed
//! rows endpoint, and get a 403 here that says so.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use civlink_catalog::policy::{AuditAction, Role};
use civlink_query::{QueryRequest, Statement};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::datasets::request_text;
use crate::error::{Error, Result};
use crate::format::{self, Format};
use crate::state::{AppState, Audit};

/// The largest request body: SQL text and its parameters.
pub const MAX_BODY_BYTES: usize = 256 << 10;
/// The most bound parameters.
pub const MAX_PARAMS: usize = 1_000;

/// The body of `POST /api/v1/query`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// The SQL text (one read-only statement).
    pub sql: String,
    /// Values bound to `$1`, `$2`, …
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Value>,
    /// CSV only: a UTF-8 BOM first.
    #[serde(default)]
    pub bom: bool,
}

/// The parameters as the one row the query layer binds (`$1` = column 0).
fn bound(params: &[Value]) -> Result<Option<RecordBatch>> {
    if params.is_empty() {
        return Ok(None);
    }
    if params.len() > MAX_PARAMS {
        return Err(Error::BadRequest { message: format!("at most {MAX_PARAMS} parameters") });
    }
    let mut fields = Vec::with_capacity(params.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(params.len());
    for (i, value) in params.iter().enumerate() {
        let column: ArrayRef = match value {
            Value::Null => Arc::new(NullArray::new(1)),
            Value::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Arc::new(Int64Array::from(vec![i])),
                (None, Some(f)) => Arc::new(Float64Array::from(vec![f])),
                (None, None) => {
                    return Err(Error::BadRequest { message: format!("parameter ${} is out of range", i + 1) });
                }
            },
            Value::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
            Value::Array(_) | Value::Object(_) => {
                return Err(Error::BadRequest {
                    message: format!("parameter ${} must be a string, number, boolean or null", i + 1),
                });
            }
        };
        fields.push(Field::new(format!("${}", i + 1), column.data_type().clone(), true));
        columns.push(column);
    }
    Ok(Some(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?))
}

#[utoipa::path(post, path = "/api/v1/query", tag = "rows",
    request_body(content = QueryBody, content_type = "application/json"),
    responses((status = 200, description = "The result, streamed",
        content(
            (crate::openapi::SqlResult = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
            (Vec<u8> = "application/vnd.apache.parquet")
        ))))]
/// `POST /api/v1/query`.
pub async fn run(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let principal = state.principal(&headers, AuditAction::RestQuery).await?;
    let parsed = (|| {
        if !matches!(principal.role, Role::Analyst | Role::Admin) {
            return Err(Error::Forbidden {
                what: format!(
                    "SQL is for analysts and admins, and {} is a {}; read rows at /api/v1/datasets/{{department}}/{{name}}/rows",
                    principal.name,
                    principal.role.code()
                ),
            });
        }
        let body = crate::extract::body(body, MAX_BODY_BYTES)?;
        let body: QueryBody =
            serde_json::from_slice(&body).map_err(|e| Error::BadBody { message: format!("not a query: {e}") })?;
        if body.sql.trim().is_empty() {
            return Err(Error::BadRequest { message: "sql is empty".into() });
        }
        let format = Format::negotiate(&headers, body.bom)?;
        let params = bound(&body.params)?;
        Ok::<_, Error>((body.sql, params, format))
    })();
    let (sql, params, format) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let audit = Audit::start(&principal, AuditAction::RestQuery, &headers, &request_text("POST", &uri));
            return audit.finish(&state, Err::<Response, _>(e), None).await;
        }
    };
    let request = QueryRequest {
        principal,
        purpose: crate::auth::purpose(&headers),
        action: AuditAction::RestQuery,
        text: sql.clone(),
        query_id: None,
    };
    let stream = state.factory().run(request, Statement::Sql { sql, params }).await.map_err(Error::from_sql)?;
    let schema = stream.schema();
    format::streamed(format, schema, stream.map(|batch| batch.map_err(Error::from_sql)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_bind_as_one_typed_row() {
        let batch =
            bound(&serde_json::from_str::<Vec<Value>>(r#"["630102", 3, 1.5, true, null]"#).unwrap()).unwrap().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let types: Vec<String> = batch.schema().fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Utf8", "Int64", "Float64", "Boolean", "Null"]);
        assert!(bound(&[]).unwrap().is_none());
        assert!(bound(&[serde_json::json!([1])]).is_err());
        assert!(bound(&[serde_json::json!({"a": 1})]).is_err());
        assert!(bound(&vec![Value::Null; MAX_PARAMS + 1]).is_err());
    }
}
