//! The logical plan of a rows request, built with DataFusion's plan builder
//! from checked parameters: column names are checked against the scoped
//! schema and values parsed into typed literals, so no client text ever
//! becomes SQL.
//!
//! Plan: the scoped table (at the walk's version) → the filters → the
//! cursor's position (a keyset condition) → the order → the page's rows
//! (one more than asked, to know whether there is a next page) → the
//! selected columns, then the order key's columns that are not selected
//! (the cursor is made from them; they are cut before the rows are written).
//!
//! **The order.** The requested `sort`, then the primary key. When the
//! principal sees every primary-key column in clear or as a pseudonym
//! (injective), that order is total and unique, and the cursor is a keyset.
//! Otherwise every other readable column joins the order, which makes it a
//! total order on what the principal can see, and the cursor counts rows
//! (rows equal in every visible column are indistinguishable, whatever their
//! order). Ascending keys put nulls last, descending ones first (as
//! PostgreSQL does), and the keyset condition follows the same rule.
//!
//! A streamed download without `limit`, `sort` or cursor is not sorted at
//! all: it is read in table order, in bounded memory.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use civlink_catalog::model::DatasetRecord;
use civlink_catalog::policy::Access;
use civlink_query::Error as QueryError;
use civlink_standards::mask::MaskStrategy;
use datafusion::catalog::TableProvider;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SortExpr};
use datafusion::prelude::{ident, lit};

use crate::rows::cursor::Position;
use crate::rows::params::{FilterOp, RowParams};

/// A rows request's plan, and how to read its output.
#[derive(Debug)]
pub struct RowsPlan {
    /// The plan.
    pub plan: LogicalPlan,
    /// The columns returned (the first ones of the output).
    pub columns: Vec<String>,
    /// Whether the cursor is a keyset ([`Position::After`]).
    pub keyset: bool,
    /// The output indices of the order key's columns (keyset only).
    pub key_indices: Vec<usize>,
}

/// How many rows a plan reads, and from where.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The page size; `None`: every row (a streamed download).
    pub limit: Option<usize>,
    /// Where the page starts (a cursor's).
    pub position: Option<&'a Position>,
}

fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest { message }
}

/// What a filter or key value must be for a column of type `t`, for messages.
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

fn literal(schema: &SchemaRef, column: &str, value: &str) -> civlink_query::Result<ScalarValue> {
    let field = schema.field_with_name(column).map_err(|_| QueryError::UnknownColumn { column: column.to_owned() })?;
    ScalarValue::try_from_string(value.to_owned(), field.data_type()).map_err(|_| {
        invalid(format!("the filter value for column \"{column}\" is not {}", type_noun(field.data_type())))
    })
}

/// The order: the requested keys, the primary key, and (when the key is not
/// unique to the principal) every other column; with whether it is unique.
fn order(
    schema: &SchemaRef,
    record: &DatasetRecord,
    access: &Access,
    params: &RowParams,
) -> (Vec<(String, bool)>, bool) {
    let has = |c: &str| schema.field_with_name(c).is_ok();
    let primary_key = &record.spec.primary_key;
    let unique = !primary_key.is_empty()
        && primary_key.iter().all(|c| {
            has(c) && access.column(c).is_some_and(|a| matches!(a.mask, MaskStrategy::None | MaskStrategy::Pseudonym))
        });
    let mut keys: Vec<(String, bool)> = params.sort.iter().map(|k| (k.column.clone(), k.descending)).collect();
    let push = |keys: &mut Vec<(String, bool)>, c: &str| {
        if !keys.iter().any(|(k, _)| k == c) {
            keys.push((c.to_owned(), false));
        }
    };
    for c in primary_key.iter().filter(|c| has(c)) {
        push(&mut keys, c);
    }
    if !unique {
        for field in schema.fields() {
            push(&mut keys, field.name());
        }
    }
    (keys, unique)
}

/// The condition "after the row whose key is `values`" in the order `keys`.
fn after(schema: &SchemaRef, keys: &[(String, bool)], values: &[Option<String>]) -> civlink_query::Result<Expr> {
    if keys.len() != values.len() {
        return Err(invalid("the cursor does not fit this request's order".into()));
    }
    let mut condition: Option<Expr> = None;
    let mut equal_so_far: Option<Expr> = None;
    for ((column, descending), value) in keys.iter().zip(values) {
        let c = ident(column);
        let value = value.as_deref().map(|v| literal(schema, column, v)).transpose()?;
        // Ascending: nulls last; descending: nulls first.
        let (later, same) = match (value, descending) {
            (None, false) => (lit(false), c.clone().is_null()),
            (None, true) => (c.clone().is_not_null(), c.clone().is_null()),
            (Some(v), false) => (c.clone().gt(lit(v.clone())).or(c.clone().is_null()), c.clone().eq(lit(v))),
            (Some(v), true) => (c.clone().lt(lit(v.clone())), c.clone().eq(lit(v))),
        };
        let here = match &equal_so_far {
            Some(eq) => eq.clone().and(later),
            None => later,
        };
        condition = Some(match condition {
            Some(c) => c.or(here),
            None => here,
        });
        equal_so_far = Some(match equal_so_far {
            Some(eq) => eq.and(same),
            None => same,
        });
    }
    Ok(condition.unwrap_or(lit(true)))
}

/// The plan of one rows request over the scoped `table` (module docs).
pub fn build(
    table: Arc<dyn TableProvider>,
    record: &DatasetRecord,
    access: &Access,
    params: &RowParams,
    window: Window<'_>,
) -> civlink_query::Result<RowsPlan> {
    // The scoped table's schema: exactly the readable columns, masked ones as strings.
    let schema: SchemaRef = table.schema();
    for column in params.named_columns() {
        if schema.field_with_name(column).is_err() {
            return Err(QueryError::UnknownColumn { column: column.clone() });
        }
    }
    let columns: Vec<String> = match &params.columns {
        Some(list) => list.clone(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let name = TableReference::partial(record.spec.id.department.code(), record.spec.id.name.as_str());
    let mut builder = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?;
    for filter in &params.filters {
        let c = ident(&filter.column);
        let value = |v: &str| literal(&schema, &filter.column, v).map(lit);
        let predicate = match &filter.op {
            FilterOp::Eq(v) => c.eq(value(v)?),
            FilterOp::In(values) => c.in_list(values.iter().map(|v| value(v)).collect::<Result<Vec<_>, _>>()?, false),
            FilterOp::Gt(v) => c.gt(value(v)?),
            FilterOp::Gte(v) => c.gt_eq(value(v)?),
            FilterOp::Lt(v) => c.lt(value(v)?),
            FilterOp::Lte(v) => c.lt_eq(value(v)?),
            FilterOp::Prefix(digits) => {
                if access.division_column.as_deref() != Some(filter.column.as_str()) {
                    return Err(invalid(format!(
                        "a prefix filter applies to the dataset's division column only, not \"{}\"",
                        filter.column
                    )));
                }
                // Digits only (checked when parsed): nothing to escape.
                c.like(lit(format!("{digits}%")))
            }
            FilterOp::IsNull(true) => c.is_null(),
            FilterOp::IsNull(false) => c.is_not_null(),
        };
        builder = builder.filter(predicate)?;
    }
    let (keys, keyset) = order(&schema, record, access, params);
    if let Some(Position::After(values)) = window.position {
        if !keyset {
            return Err(invalid("the cursor does not fit this request's order".into()));
        }
        builder = builder.filter(after(&schema, &keys, values)?)?;
    }
    let sorted = window.limit.is_some() || !params.sort.is_empty() || window.position.is_some();
    if sorted {
        let sort: Vec<SortExpr> = keys.iter().map(|(c, descending)| ident(c).sort(!descending, *descending)).collect();
        builder = builder.sort(sort)?;
    }
    let skip = match window.position {
        Some(Position::Skip(n)) => usize::try_from(*n).map_err(|_| invalid("the cursor is past any page".into()))?,
        _ => 0,
    };
    if skip > 0 || window.limit.is_some() {
        builder = builder.limit(skip, window.limit.map(|n| n.saturating_add(1)))?;
    }
    // The key's columns ride along after the selected ones (keyset pages only).
    let mut output = columns.clone();
    let mut key_indices = Vec::new();
    if keyset && window.limit.is_some() {
        for (column, _) in &keys {
            let index = match output.iter().position(|c| c == column) {
                Some(i) => i,
                None => {
                    output.push(column.clone());
                    output.len() - 1
                }
            };
            key_indices.push(index);
        }
    }
    let plan = builder.project(output.iter().map(ident).collect::<Vec<_>>())?.build()?;
    Ok(RowsPlan { plan, columns, keyset, key_indices })
}

/// The sort key of row `row` of `batch` (the cursor's [`Position::After`]).
pub fn key_of(batch: &RecordBatch, row: usize, key_indices: &[usize]) -> civlink_query::Result<Vec<Option<String>>> {
    key_indices
        .iter()
        .map(|&i| {
            let column = batch.column(i);
            if column.is_null(row) {
                return Ok(None);
            }
            arrow::util::display::array_value_to_string(column, row)
                .map(Some)
                .map_err(|e| QueryError::Engine { message: format!("reading a sort key: {e}") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn sort_keys_round_trip_through_their_text() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("ps_2de2b91d"), None])),
            Arc::new(Int64Array::from(vec![Some(-42), Some(7)])),
            Arc::new(Float64Array::from(vec![Some(0.1 + 0.2), Some(1e-300)])),
            Arc::new(Date32Array::from(vec![Some(19_000), Some(0)])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_733_000_000_123_456), Some(0)]).with_timezone("+00:00"),
            ),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1_733_000_000_123_456), Some(-1)])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
        ];
        let fields: Vec<Field> =
            columns.iter().enumerate().map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let indices: Vec<usize> = (0..batch.num_columns()).collect();
        for row in 0..batch.num_rows() {
            let key = key_of(&batch, row, &indices).unwrap();
            for (i, value) in key.iter().enumerate() {
                let original = ScalarValue::try_from_array(batch.column(i), row).unwrap();
                match value {
                    None => assert!(original.is_null()),
                    Some(text) => {
                        let parsed = literal(&schema, &format!("c{i}"), text).unwrap();
                        assert_eq!(parsed, original, "column {i} row {row}: {text}");
                    }
                }
            }
        }
    }
}
