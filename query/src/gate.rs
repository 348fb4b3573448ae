//! The plan gate: what a principal's SQL may be, and how it is planned.
//!
//! [`ScopedSession::plan_sql`] parses and plans one statement in the
//! principal's session and refuses, before anything runs:
//!
//! * naming a registered dataset the principal may not read
//!   (`PermissionDenied`: the catalog of datasets is not secret, its
//!   contents are; an unknown name is the engine's ordinary "not found");
//! * anything but a query: DDL, DML, `COPY`, `SET` (this layer only reads);
//! * `EXPLAIN ANALYZE`: it runs the query and reports metrics, and a
//!   principal's query must not learn run-time figures of anything below
//!   its scope boundary;
//! * `EXPLAIN VERBOSE`: it prints every optimizer pass and statistics.
//!
//! Plain `EXPLAIN` in every format is allowed: below each scoped table it
//! shows only the scope boundary (see [`crate::scope::ScopeExec`]).
//!
//! Parameters: JDBC/ODBC-style `?` are numbered `$1`, `$2`, … before
//! parsing ([`positional_placeholders`]), and [`bind`] binds one row of
//! values to them.

use std::collections::HashSet;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SQLOptions;

use crate::error::{Error, Result};
use crate::plain::plain_type;
use crate::session::{CATALOG, INFORMATION_SCHEMA, ScopedSession};

/// The longest SQL text planned (bytes).
pub const MAX_SQL_BYTES: usize = 1 << 20;

pub use crate::session::Planned;

impl ScopedSession {
    /// Plan one read-only SQL statement (see the module docs). A session
    /// plans each statement once: the plan depends only on the text and on
    /// the session's tables.
    pub async fn plan_sql(&self, sql: &str) -> Result<Planned> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(Error::InvalidRequest {
                message: format!("the SQL text is longer than {MAX_SQL_BYTES} bytes"),
            });
        }
        let kept = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(sql).cloned();
        if let Some(planned) = kept {
            return Ok(planned);
        }
        let planned = self.plan_sql_now(sql).await?;
        let mut all = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.len() < crate::session::MAX_PLANNED_STATEMENTS {
            all.insert(sql.to_owned(), planned.clone());
        }
        Ok(planned)
    }

    async fn plan_sql_now(&self, sql: &str) -> Result<Planned> {
        let sql = &*positional_placeholders(sql);
        let state = &self.state;
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(Error::from_datafusion)?;
        let references = state.resolve_table_references(&statement).map_err(Error::from_datafusion)?;
        let default_schema = state.config().options().catalog.default_schema.clone();
        let readable: HashSet<String> = self.datasets.iter().map(|(r, _)| r.spec.id.to_string()).collect();
        let mut touched = Vec::new();
        let mut unreadable = Vec::new();
        for reference in &references {
            let Some(id) = dataset_of(reference, &default_schema) else { continue };
            if readable.contains(&id) {
                if !touched.contains(&id) {
                    touched.push(id);
                }
            } else {
                unreadable.push(id);
            }
        }
        if !unreadable.is_empty() {
            let registered: HashSet<String> = self
                .store
                .datasets()
                .await
                .map_err(|e| Error::Store { message: e.to_string() })?
                .into_iter()
                .map(|d| d.spec.id.to_string())
                .collect();
            if let Some(id) = unreadable.iter().find(|id| registered.contains(*id)) {
                return Err(Error::PermissionDenied {
                    what: format!("{} may not read dataset {id}", self.principal.name),
                });
            }
        }
        let plan = state.statement_to_plan(statement).await.map_err(Error::from_datafusion)?;
        match &plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_) => {
                return Err(Error::PermissionDenied { what: "this service is read-only (queries only)".into() });
            }
            LogicalPlan::Analyze(_) => {
                return Err(Error::PermissionDenied {
                    what: "EXPLAIN ANALYZE is not allowed: its metrics describe rows outside your scope".into(),
                });
            }
            LogicalPlan::Explain(explain) if explain.verbose => {
                return Err(Error::PermissionDenied {
                    what: "EXPLAIN VERBOSE is not allowed: its statistics describe rows outside your scope".into(),
                });
            }
            _ => {}
        }
        // Belt and braces: DataFusion's own read-only check.
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| Error::PermissionDenied { what: e.message().into_owned() })?;
        Ok(Planned { plan, datasets: touched })
    }
}

/// The dataset id a table reference names, with the session's defaults;
/// `None` for references outside `civlink` datasets (information_schema, CTEs, …).
fn dataset_of(reference: &TableReference, default_schema: &str) -> Option<String> {
    let (catalog, schema) = match reference {
        TableReference::Bare { .. } => (CATALOG, default_schema),
        TableReference::Partial { schema, .. } => (CATALOG, schema.as_ref()),
        TableReference::Full { catalog, schema, .. } => (catalog.as_ref(), schema.as_ref()),
    };
    if catalog != CATALOG || schema == INFORMATION_SCHEMA {
        return None;
    }
    let id = format!("{schema}.{}", reference.table());
    id.parse::<civlink_catalog::model::DatasetId>().ok().map(|id| id.to_string())
}

/// Bind positional parameters (one row) to a plan's placeholders.
pub fn bind(plan: LogicalPlan, params: Option<&RecordBatch>) -> Result<LogicalPlan> {
    let expected = plan.get_parameter_types().map_err(Error::from_datafusion)?;
    let Some(batch) = params.filter(|b| b.num_columns() > 0) else {
        if expected.is_empty() {
            return Ok(plan);
        }
        let mut names: Vec<_> = expected.keys().cloned().collect();
        names.sort();
        return Err(Error::InvalidRequest {
            message: format!("the statement has parameters ({}); bind them first", names.join(", ")),
        });
    };
    if batch.num_rows() != 1 {
        return Err(Error::InvalidRequest {
            message: format!("bind exactly one row of parameters (got {})", batch.num_rows()),
        });
    }
    let mut values = Vec::with_capacity(batch.num_columns());
    for (i, column) in batch.columns().iter().enumerate() {
        let value = ScalarValue::try_from_array(column, 0).map_err(Error::from_datafusion)?;
        // Clients bind plain strings where the plan expects views (and the like): cast to the placeholder's type.
        let value = match expected.get(&format!("${}", i + 1)) {
            Some(Some(t)) if value.data_type() != *t && !value.is_null() => {
                value.cast_to(t).map_err(|e| Error::InvalidRequest {
                    message: format!("parameter ${} cannot be used as {t}: {}", i + 1, e.message()),
                })?
            }
            Some(Some(t)) if value.is_null() => ScalarValue::try_from(t).unwrap_or(value),
            _ => value,
        };
        values.push(value);
    }
    plan.with_param_values(values).map_err(Error::from_datafusion)
}

/// The parameters of a plan as a schema: `$1`, `$2`, … in order, typed when
/// DataFusion could infer the type (`Null` otherwise: bind anything).
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema> {
    let types = plan.get_parameter_types().map_err(Error::from_datafusion)?;
    let mut names: Vec<(u64, String)> = types
        .keys()
        .map(|name| (name.trim_start_matches('$').parse::<u64>().unwrap_or(u64::MAX), name.clone()))
        .collect();
    names.sort();
    let fields: Vec<Field> = names
        .into_iter()
        .map(|(_, name)| {
            let t =
                types.get(&name).cloned().flatten().map(|t| plain_type(&t)).unwrap_or(arrow::datatypes::DataType::Null);
            Field::new(name, t, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// JDBC/ODBC clients write parameters as `?`; DataFusion numbers them `$1`, `$2`, ….
/// Rewrite each `?` outside string literals, quoted identifiers and comments, in order.
pub fn positional_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('?') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A quoted literal or identifier; a doubled quote stays inside it.
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            out.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut previous = ' ';
                for d in chars.by_ref() {
                    out.push(d);
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            '?' => {
                out.push_str(&format!("${next}"));
                next += 1;
            }
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_become_numbered_placeholders_outside_quotes_and_comments() {
        use super::positional_placeholders as p;
        assert_eq!(p("SELECT * FROM t WHERE a = ? AND b = ?"), "SELECT * FROM t WHERE a = $1 AND b = $2");
        assert_eq!(
            p("SELECT '?', \"x?\" FROM t WHERE a = ? -- what?\n AND b = ?"),
            "SELECT '?', \"x?\" FROM t WHERE a = $1 -- what?\n AND b = $2"
        );
        assert_eq!(p("SELECT 'it''s ?' /* ? */, ?"), "SELECT 'it''s ?' /* ? */, $1");
        assert_eq!(p("SELECT $1"), "SELECT $1");
    }

    #[test]
    fn references_resolve_to_dataset_ids() {
        let r = |s: &str| TableReference::from(s);
        assert_eq!(dataset_of(&r("population"), "gongan").as_deref(), Some("gongan.population"));
        assert_eq!(dataset_of(&r("minzheng.dibao"), "gongan").as_deref(), Some("minzheng.dibao"));
        assert_eq!(dataset_of(&r("civlink.minzheng.dibao"), "gongan").as_deref(), Some("minzheng.dibao"));
        assert_eq!(dataset_of(&r("other.minzheng.dibao"), "gongan"), None);
        assert_eq!(dataset_of(&r("information_schema.tables"), "gongan"), None);
        assert_eq!(dataset_of(&r("nowhere.x"), "gongan"), None);
    }

    #[test]
    fn parameters_are_listed_in_order_and_must_be_bound() {
        let ctx = datafusion::prelude::SessionContext::new();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let plan = rt
            .block_on(
                ctx.state().create_logical_plan("SELECT * FROM (VALUES (1, 'a')) t(x, y) WHERE x > $2 AND y = $1"),
            )
            .unwrap();
        let schema = parameter_schema(&plan).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["$1", "$2"]);
        assert!(matches!(bind(plan, None), Err(Error::InvalidRequest { .. })));
    }
}
