//! [`ScopedTable`]: a dataset as ONE principal may see it.
//!
//! A `ScopedTable` is a DataFusion [`TableProvider`] over the dataset's
//! table (decoded in memory or read from its Delta files, see
//! [`crate::cache`]), built from the [`Access`] the policy decided:
//!
//! * its schema has exactly `Access.columns`, in that order (a column the
//!   principal may not read does not exist for it);
//! * its rows are those whose division column starts with `Access.row_prefix`
//!   (rows with a NULL division code are excluded whenever there is a row
//!   filter: they cannot be placed inside anyone's division);
//! * masked columns hold the masked value (`civlink_mask(column, strategy)`),
//!   through a `civlink_mask` holding the deployment's [`MaskKey`], so that
//!   `pseudonym` columns hold keyed pseudonyms (`ps_…`): equal values in any
//!   two scoped tables get equal pseudonyms, and a join on them matches. The
//!   keyed function exists only inside this plan (see [`crate::udf`]).
//!
//! # Masks apply below every user expression
//!
//! `scan()` plans `Projection(masks) ← Filter(row scope) ← table scan` as one
//! logical plan, turns it into a physical plan, and puts a [`ScopeExec`] on
//! top. For a table held in memory the masks are not computed by the scan:
//! the cache keeps the masked values of the policy's masked columns once per
//! table version ([`crate::cache::CachedTable::masked_view`]), and the
//! projection reads those. The user's query only ever sees the output of that node, so
//! `WHERE name = '张三'` on a masked `name` compares the *masked* value and
//! matches nothing: a filter cannot be used as a lookup oracle for the values
//! behind a mask, nor (see below) for rows outside the principal's division.
//!
//! User filters are never pushed into the scan
//! ([`TableProviderFilterPushDown::Unsupported`]), and [`ScopeExec`] hides
//! its input from the optimizer, so no physical filter pushdown (nor dynamic
//! filter) goes through it; nor does EXPLAIN show anything below it.
//! Both matter even though pushing a predicate through the mask projection
//! would be semantics-preserving: a user expression evaluated *below* the row
//! filter could see out-of-scope rows, and one that fails (a cast of a bad
//! value, say) would echo such a row's value in its error message. The cost
//! is that user predicates do not prune Delta files; the row scope itself
//! does (it is pushed into the Delta scan inside the inner plan).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use civlink_catalog::model::DatasetId;
use civlink_catalog::policy::Access;
use civlink_standards::mask::{MaskKey, MaskStrategy};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, ScalarUDF, TableProviderFilterPushDown, TableType, cast,
};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::{ident, lit};

use crate::cache::Opened;
use crate::udf;

/// Why a dataset cannot be scoped for a principal (fail closed: it is then
/// not offered to the principal at all).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A readable column the table does not have.
    #[error("dataset {dataset}: column \"{column}\" of the access policy is not in the table")]
    MissingColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
    },
    /// The division column the rows are scoped by is not in the table.
    #[error("dataset {dataset}: division column \"{column}\" is not in the table")]
    MissingDivisionColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
    },
    /// A mask strategy that cannot be written as JSON.
    #[error("dataset {dataset}: the mask of column \"{column}\" cannot be encoded: {message}")]
    Mask {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// serde's message.
        message: String,
    },
    /// Planning the scoped projection failed.
    #[error("dataset {dataset}: cannot plan the scoped view: {message}")]
    Plan {
        /// The dataset.
        dataset: String,
        /// DataFusion's message.
        message: String,
    },
}

/// A dataset's table as one principal may read it.
pub struct ScopedTable {
    dataset: DatasetId,
    source: Opened,
    /// The row scope, on the stored table's columns.
    row_filter: Option<Expr>,
    /// The readable columns in policy order, each with its mask.
    columns: Vec<(String, MaskStrategy)>,
    /// The keyed `civlink_mask`, for scans that mask as they read.
    mask: Arc<ScalarUDF>,
    mask_key: Arc<MaskKey>,
    schema: SchemaRef,
    /// `col LIKE 'prefix%'`, for EXPLAIN.
    scope_text: String,
    /// Physical scans of a table in memory (below the [`ScopeExec`]),
    /// planned once per (projection, limit) and used as fresh copies
    /// ([`fresh_copy`]): the scoped table lives as long as its session,
    /// which serves many queries.
    planned: std::sync::Mutex<HashMap<ScanKey, Arc<dyn ExecutionPlan>>>,
}

/// What a scan's plan depends on besides the table.
type ScanKey = (Option<Vec<usize>>, Option<usize>);

/// Scans planned per scoped table, at most.
const MAX_PLANNED_SCANS: usize = 64;

impl fmt::Debug for ScopedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedTable")
            .field("dataset", &self.dataset)
            .field("scope", &self.scope_text)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl ScopedTable {
    /// Scope `source` (the dataset's table, in memory or in storage) by
    /// `access`; `pseudonym` masks are keyed with `mask_key`.
    pub fn try_new(source: Opened, access: &Access, mask_key: &Arc<MaskKey>) -> Result<ScopedTable, Error> {
        let dataset = access.dataset.clone();
        let stored = source.schema();
        let row_filter = match access.row_filter() {
            None => None,
            Some((column, prefix)) => {
                let field = stored.field_with_name(column).map_err(|_| Error::MissingDivisionColumn {
                    dataset: dataset.to_string(),
                    column: column.to_owned(),
                })?;
                let value = match field.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ident(column),
                    // Codes stored as numbers are compared as their digits.
                    _ => cast(ident(column), DataType::Utf8),
                };
                // `LIKE 'prefix%'` rather than starts_with(): DataFusion turns a
                // literal-prefix LIKE into a range for Parquet statistics pruning
                // and evaluates it with its fastest kernel, so a scoped scan costs
                // what the same filter written by hand costs. The prefix is digits
                // only (a division code's), so it holds no LIKE wildcard. NULL LIKE
                // … is NULL, which a filter drops: rows without a code stay out.
                if !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::Plan {
                        dataset: dataset.to_string(),
                        message: "the row scope prefix is not a division code prefix".into(),
                    });
                }
                Some(value.like(lit(format!("{prefix}%"))))
            }
        };
        let scope_text = match access.row_filter() {
            None => "all rows".to_owned(),
            Some((column, prefix)) => format!("{column} LIKE '{prefix}%'"),
        };
        let mut columns = Vec::with_capacity(access.columns.len());
        for column in &access.columns {
            if stored.field_with_name(&column.name).is_err() {
                return Err(Error::MissingColumn { dataset: dataset.to_string(), column: column.name.clone() });
            }
            columns.push((column.name.clone(), column.mask));
        }
        let mut table = ScopedTable {
            dataset,
            source,
            row_filter,
            columns,
            mask: Arc::new(udf::keyed_mask_udf(mask_key)),
            mask_key: Arc::clone(mask_key),
            schema: Arc::new(arrow::datatypes::Schema::empty()),
            scope_text,
            planned: std::sync::Mutex::default(),
        };
        let plan_error = |e: datafusion::error::DataFusionError| Error::Plan {
            dataset: table.dataset.to_string(),
            message: e.to_string(),
        };
        let outputs = table.masking_outputs().map_err(|e| Error::Mask {
            dataset: table.dataset.to_string(),
            column: e.0,
            message: e.1,
        })?;
        let plan = table.plan(table.source.provider(), outputs, None, None).map_err(plan_error)?;
        table.schema = Arc::new(plan.schema().as_arrow().clone());
        Ok(table)
    }

    /// The dataset.
    pub fn dataset(&self) -> &DatasetId {
        &self.dataset
    }

    /// The masked columns and their masks.
    fn masks(&self) -> Vec<(String, MaskStrategy)> {
        self.columns.iter().filter(|(_, mask)| !mask.is_none()).cloned().collect()
    }

    /// One output per readable column: the column, or `civlink_mask` over it
    /// (masking as the scan reads). `Err((column, message))` for a mask that
    /// cannot be written as JSON.
    fn masking_outputs(&self) -> Result<Vec<Expr>, (String, String)> {
        let stored = self.source.schema();
        self.columns
            .iter()
            .map(|(name, mask)| match mask {
                // In the plain types whatever the storage holds, so that the
                // schema (which EXPLAIN shows) does not tell a table in the
                // cache from one read from its files.
                MaskStrategy::None => Ok(match stored.field_with_name(name).map(|f| f.data_type().clone()) {
                    Ok(t) if crate::plain::plain_type(&t) != t => {
                        cast(ident(name), crate::plain::plain_type(&t)).alias(name)
                    }
                    _ => ident(name),
                }),
                strategy => {
                    let json = serde_json::to_string(strategy).map_err(|e| (name.clone(), e.to_string()))?;
                    Ok(self.mask.call(vec![ident(name), lit(json)]).alias(name))
                }
            })
            .collect()
    }

    /// `Projection(outputs) ← Limit ← Filter(scope) ← scan of inner`, for the
    /// chosen outputs.
    fn plan(
        &self,
        inner: Arc<dyn TableProvider>,
        outputs: Vec<Expr>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> DfResult<LogicalPlan> {
        let outputs = match projection {
            None => outputs,
            Some(indices) => indices
                .iter()
                .map(|&i| {
                    outputs.get(i).cloned().ok_or_else(|| {
                        datafusion::error::DataFusionError::Internal(format!(
                            "projection index {i} out of range for {}",
                            self.dataset
                        ))
                    })
                })
                .collect::<DfResult<Vec<_>>>()?,
        };
        let name = TableReference::partial(self.dataset.department.code(), self.dataset.name.as_str());
        let mut builder = LogicalPlanBuilder::scan(name, provider_as_source(inner), None)?;
        if let Some(filter) = &self.row_filter {
            builder = builder.filter(filter.clone())?;
        }
        if let Some(limit) = limit {
            builder = builder.limit(0, Some(limit))?;
        }
        builder.project(outputs)?.build()
    }

    /// The inner table and the outputs over it: a cached table's masked view
    /// when it has one (masked values computed once per version), else the
    /// table itself with masks applied as it is read.
    async fn inner(&self) -> DfResult<(Arc<dyn TableProvider>, Vec<Expr>)> {
        let masking = |this: &Self| {
            this.masking_outputs().map_err(|(column, message)| {
                datafusion::error::DataFusionError::Plan(format!("mask of {column}: {message}"))
            })
        };
        let masks = self.masks();
        if let Opened::Memory(cached) = &self.source
            && !masks.is_empty()
            && let Some(view) = cached.masked_view(&masks, &self.mask_key).await
        {
            let outputs = self
                .columns
                .iter()
                .map(|(name, _)| match view.masked.get(name) {
                    Some(hidden) => ident(hidden).alias(name),
                    None => ident(name),
                })
                .collect();
            return Ok((Arc::clone(&view.table) as Arc<dyn TableProvider>, outputs));
        }
        Ok((self.source.provider(), masking(self)?))
    }
}

#[async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Never: user predicates run above the masks and the row scope (module docs).
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let key: ScanKey = (projection.cloned(), limit);
        let partitions = state.config().target_partitions().max(1);
        let description = || format!("{}: {}", self.dataset, self.scope_text);
        let planned = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        if let Some(physical) = planned {
            let exec = ScopeExec::try_new(fresh_copy(&physical)?, description(), partitions)?;
            return Ok(Arc::new(exec));
        }
        let (inner, outputs) = self.inner().await?;
        let plan = self.plan(inner, outputs, projection, limit)?;
        let physical = state.create_physical_plan(&plan).await?;
        // Only scans of memory: a table in storage may list other files the next time.
        if matches!(self.source, Opened::Memory(_)) {
            let mut kept = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() < MAX_PLANNED_SCANS {
                kept.insert(key, Arc::clone(&physical));
                drop(kept);
                let exec = ScopeExec::try_new(fresh_copy(&physical)?, description(), partitions)?;
                return Ok(Arc::new(exec));
            }
        }
        Ok(Arc::new(ScopeExec::try_new(physical, description(), partitions)?))
    }
}

/// `plan` with every operator above the leaves built anew from its
/// children, so that no execution state (a `RepartitionExec`'s channels)
/// is shared with another run of the same plan. Leaves (scans of memory)
/// hold no such state and are shared.
fn fresh_copy(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    let children = plan.children();
    if children.is_empty() {
        return Ok(Arc::clone(plan));
    }
    let fresh = children.into_iter().map(fresh_copy).collect::<DfResult<Vec<_>>>()?;
    // Same children, same properties: `Keep` rebuilds the node (fresh state) without recomputing them.
    Arc::clone(plan).replace_children(fresh, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep))
}

/// The boundary of a [`ScopedTable`] in a physical plan.
///
/// It passes its input's rows through unchanged, and hides everything about
/// the input that depends on rows outside the scope or on storage:
///
/// * the input is not one of its children, so no optimizer rule reaches
///   below it (no filter, static or dynamic, is pushed under the masks and
///   the row scope), and no EXPLAIN format, metric or statistic shows the
///   scan (file paths, partition sizes, byte counts, row counts of the
///   whole table);
/// * its partitioning is always the session's target partition count (the
///   input is repartitioned to it inside, when it differs), not the number
///   of files or cached batches of the whole table;
/// * it promises no ordering and no statistics.
#[derive(Debug)]
pub struct ScopeExec {
    input: Arc<dyn ExecutionPlan>,
    description: String,
    properties: Arc<PlanProperties>,
}

impl ScopeExec {
    fn try_new(input: Arc<dyn ExecutionPlan>, description: String, partitions: usize) -> DfResult<ScopeExec> {
        let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() == partitions {
            input
        } else {
            Arc::new(RepartitionExec::try_new(input, Partitioning::RoundRobinBatch(partitions))?)
        };
        // Built afresh rather than copied from the input: nothing the input
        // reports (orderings, its scheduling, which differs between a
        // repartitioned and a plain scan) may show above the boundary.
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(partitions),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Ok(ScopeExec { input, description, properties: Arc::new(properties) })
    }
}

impl DisplayAs for ScopeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CivlinkScopeExec: {}", self.description)
    }
}

impl ExecutionPlan for ScopeExec {
    fn name(&self) -> &'static str {
        "CivlinkScopeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        // The input is deliberately not a child: see the type's docs.
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(datafusion::error::DataFusionError::Internal(format!(
                "CivlinkScopeExec is a leaf, got {} children",
                children.len()
            )))
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use civlink_catalog::policy::ColumnAccess;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn people() -> Arc<dyn TableProvider> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id_number", DataType::Utf8View, true),
            Field::new("name", DataType::Utf8View, true),
            Field::new("division_code", DataType::Utf8View, true),
            Field::new("age", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringViewArray::from(vec![
                    Some("630102199003071234"),
                    Some("630102199104052345"),
                    Some("630103198001013456"),
                    Some("630102200001014567"),
                    Some("630102200001015678"),
                ])),
                Arc::new(StringViewArray::from(vec![Some("张三"), Some("李四"), Some("王五"), Some("赵六"), None])),
                Arc::new(StringViewArray::from(vec![
                    Some("630102001001"),
                    Some("630102002001"),
                    Some("630103001001"),
                    None,
                    Some("630102001002"),
                ])),
                Arc::new(Int64Array::from(vec![34, 33, 44, 24, 24])),
            ],
        )
        .unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    fn key() -> Arc<MaskKey> {
        Arc::new(MaskKey::from_bytes([42; civlink_standards::mask::MASK_KEY_LEN]))
    }

    /// A second dataset sharing two in-scope ID numbers (and one out-of-scope
    /// one) with `people`, stored as `Utf8` rather than views.
    fn members() -> Arc<dyn TableProvider> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id_number", DataType::Utf8, true),
            Field::new("division_code", DataType::Utf8, true),
            Field::new("amount", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("630102199003071234"),
                    Some("630102199104052345"),
                    Some("630102209912319999"),
                    Some("630103198001013456"),
                    None,
                ])),
                Arc::new(StringArray::from(vec![
                    Some("630102001001"),
                    Some("630102002001"),
                    Some("630102001003"),
                    Some("630103001001"),
                    Some("630102001001"),
                ])),
                Arc::new(Int64Array::from(vec![500, 600, 700, 800, 900])),
            ],
        )
        .unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    fn pseudonymised(prefix: &str) -> (Access, Access) {
        let column = |name: &str, mask| ColumnAccess { name: name.to_owned(), mask };
        let people = Access {
            dataset: "gongan.population".parse().unwrap(),
            division_column: Some("division_code".into()),
            row_prefix: Some(prefix.to_owned()),
            columns: vec![
                column("id_number", MaskStrategy::Pseudonym),
                column("name", MaskStrategy::Name),
                column("division_code", MaskStrategy::None),
            ],
        };
        let members = Access {
            dataset: "minzheng.dibao_members".parse().unwrap(),
            division_column: Some("division_code".into()),
            row_prefix: Some(prefix.to_owned()),
            columns: vec![column("id_number", MaskStrategy::Pseudonym), column("amount", MaskStrategy::None)],
        };
        (people, members)
    }

    /// Both datasets scoped and pseudonymised with `key`, in a session that
    /// also has the (keyless) functions users can call.
    fn pseudonym_ctx(prefix: &str, key: &Arc<MaskKey>) -> SessionContext {
        let (p, m) = pseudonymised(prefix);
        let ctx = SessionContext::new();
        udf::register_all(&ctx);
        ctx.register_table("p", Arc::new(ScopedTable::try_new(Opened::Storage(people()), &p, key).unwrap())).unwrap();
        ctx.register_table("m", Arc::new(ScopedTable::try_new(Opened::Storage(members()), &m, key).unwrap())).unwrap();
        ctx
    }

    fn access(prefix: Option<&str>, columns: &[(&str, MaskStrategy)]) -> Access {
        Access {
            dataset: "gongan.population".parse().unwrap(),
            division_column: Some("division_code".into()),
            row_prefix: prefix.map(str::to_owned),
            columns: columns.iter().map(|(n, m)| ColumnAccess { name: (*n).to_owned(), mask: *m }).collect(),
        }
    }

    fn masked() -> Access {
        access(
            Some("630102"),
            &[
                ("name", MaskStrategy::Name),
                ("id_number", MaskStrategy::KeepEnds { first: 6, last: 4 }),
                ("division_code", MaskStrategy::None),
            ],
        )
    }

    async fn ctx_with(access: &Access) -> SessionContext {
        let ctx = SessionContext::new();
        ctx.register_table("p", Arc::new(ScopedTable::try_new(Opened::Storage(people()), access, &key()).unwrap()))
            .unwrap();
        ctx
    }

    async fn strings(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for b in batches {
            let c = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
            out.extend(c.as_string::<i32>().iter().map(|v| v.map(str::to_owned)));
        }
        out
    }

    async fn count(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    }

    #[tokio::test]
    async fn schema_is_the_readable_columns_in_policy_order() {
        let table = ScopedTable::try_new(Opened::Storage(people()), &masked(), &key()).unwrap();
        let names: Vec<_> = table.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["name", "id_number", "division_code"]);
        let ctx = ctx_with(&masked()).await;
        assert!(ctx.sql("SELECT age FROM p").await.is_err(), "an unreadable column does not exist");
    }

    #[tokio::test]
    async fn rows_are_scoped_and_null_divisions_excluded() {
        let ctx = ctx_with(&masked()).await;
        assert_eq!(count(&ctx, "SELECT count(*) FROM p").await, 3);
        assert_eq!(
            strings(&ctx, "SELECT division_code FROM p ORDER BY division_code").await,
            vec![Some("630102001001".into()), Some("630102001002".into()), Some("630102002001".into())]
        );
        let township = access(Some("630102001"), &[("division_code", MaskStrategy::None)]);
        let ctx = ctx_with(&township).await;
        assert_eq!(count(&ctx, "SELECT count(*) FROM p").await, 2);
        // No prefix (Admin): every row, NULL divisions included.
        let all = access(None, &[("division_code", MaskStrategy::None)]);
        let ctx = ctx_with(&all).await;
        assert_eq!(count(&ctx, "SELECT count(*) FROM p").await, 5);
    }

    #[tokio::test]
    async fn masks_apply_before_user_predicates() {
        let ctx = ctx_with(&masked()).await;
        assert_eq!(
            strings(&ctx, "SELECT name FROM p ORDER BY name").await,
            vec![Some("张*".into()), Some("李*".into()), None]
        );
        // A filter on the clear value finds nothing: no lookup oracle.
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE name = '张三'").await, 0);
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE name = '张*'").await, 1);
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE id_number LIKE '6301021990%'").await, 0);
        assert_eq!(
            strings(&ctx, "SELECT id_number FROM p WHERE division_code = '630102001001'").await,
            vec![Some("630102********1234".into())]
        );
        // Nor can a filter reach rows outside the division.
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE division_code LIKE '630103%'").await, 0);
    }

    #[tokio::test]
    async fn errors_never_show_values_from_outside_the_scope_or_behind_a_mask() {
        let ctx = ctx_with(&masked()).await;
        // A failing cast over every row: the error may only quote what the principal sees.
        let err = match ctx.sql("SELECT * FROM p WHERE CAST(name AS BIGINT) > 0").await {
            Err(e) => e.to_string(),
            Ok(df) => df.collect().await.map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
        };
        for secret in ["张三", "李四", "王五", "赵六"] {
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[tokio::test]
    async fn explain_shows_the_scope_boundary() {
        let ctx = ctx_with(&masked()).await;
        let batches = ctx.sql("EXPLAIN SELECT name FROM p WHERE name = 'x'").await.unwrap().collect().await.unwrap();
        let mut text = String::new();
        for b in &batches {
            let plans = arrow::compute::cast(b.column(1), &DataType::Utf8).unwrap();
            text.extend(plans.as_string::<i32>().iter().flatten().map(|p| format!("{p}\n")));
        }
        assert!(text.contains("CivlinkScopeExec: gongan.population: division_code LIKE '630102%'"), "{text}");
        // Nothing below the boundary: not the masks, not the scan and its sizes.
        for hidden in ["civlink_mask", "DataSourceExec", "partition_sizes", "MemoryExec", "FilterExec: division_code"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }

    #[tokio::test]
    async fn projections_and_limits_work_through_the_scope() {
        let ctx = ctx_with(&masked()).await;
        assert_eq!(strings(&ctx, "SELECT division_code FROM p ORDER BY 1 LIMIT 1").await.len(), 1);
        let batches = ctx.sql("SELECT * FROM p LIMIT 2").await.unwrap().collect().await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE division_code IS NULL").await, 0);
        assert_eq!(count(&ctx, "SELECT count(id_number) FROM p").await, 3);
        // Joins of the scoped table with itself see the scoped, masked rows on both sides.
        let joined = "SELECT count(*) FROM p a JOIN p b ON a.name = b.name";
        assert_eq!(count(&ctx, joined).await, 2);
    }

    #[tokio::test]
    async fn pseudonym_columns_hold_keyed_tokens() {
        let ctx = pseudonym_ctx("630102", &key());
        let shown = strings(&ctx, "SELECT id_number FROM p ORDER BY division_code").await;
        let clear = ["630102199003071234", "630102200001015678", "630102199104052345"];
        let expected: Vec<Option<String>> = clear.iter().map(|id| Some(key().pseudonym(id))).collect();
        assert_eq!(shown, expected);
        for value in shown.iter().flatten() {
            assert!(value.starts_with("ps_") && value.len() == 27, "{value}");
            assert!(value[3..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{value}");
        }
        // The result type is text, whatever the stored string type.
        let table = ScopedTable::try_new(Opened::Storage(members()), &pseudonymised("630102").1, &key()).unwrap();
        assert_eq!(table.schema().field_with_name("id_number").unwrap().data_type(), &DataType::Utf8);
        // NULL stays NULL (and the NULL-id row of `m` is in scope).
        assert_eq!(count(&ctx, "SELECT count(*) FROM m WHERE id_number IS NULL").await, 1);
    }

    #[tokio::test]
    async fn pseudonyms_join_across_datasets() {
        let ctx = pseudonym_ctx("630102", &key());
        // Two ID numbers are in both datasets within 630102; the third shared
        // one (630103…) is outside the scope on both sides.
        let joined = "SELECT p.division_code, m.amount FROM p JOIN m ON p.id_number = m.id_number ORDER BY m.amount";
        assert_eq!(strings(&ctx, joined).await, vec![Some("630102001001".into()), Some("630102002001".into())]);
        assert_eq!(count(&ctx, "SELECT count(*) FROM p JOIN m ON p.id_number = m.id_number").await, 2);
        // Province-wide, the out-of-scope one joins as well.
        let province = pseudonym_ctx("63", &key());
        assert_eq!(count(&province, "SELECT count(*) FROM p JOIN m ON p.id_number = m.id_number").await, 3);
        // Another deployment's key gives other pseudonyms: nothing carries over.
        let other = pseudonym_ctx("630102", &Arc::new(MaskKey::from_bytes([7; civlink_standards::mask::MASK_KEY_LEN])));
        let ours = strings(&ctx, "SELECT id_number FROM p ORDER BY division_code").await;
        let theirs = strings(&other, "SELECT id_number FROM p ORDER BY division_code").await;
        assert!(ours.iter().zip(&theirs).all(|(a, b)| a != b), "{ours:?} {theirs:?}");
    }

    #[tokio::test]
    async fn a_clear_id_number_finds_nothing_behind_a_pseudonym() {
        let ctx = pseudonym_ctx("630102", &key());
        let id = "630102199003071234";
        assert_eq!(count(&ctx, &format!("SELECT count(*) FROM p WHERE id_number = '{id}'")).await, 0);
        assert_eq!(count(&ctx, &format!("SELECT count(*) FROM m WHERE id_number = '{id}'")).await, 0);
        assert_eq!(count(&ctx, "SELECT count(*) FROM p WHERE id_number LIKE '630102%'").await, 0);
        // Nor does the session's civlink_mask recompute the pseudonym: it has no key.
        let oracle =
            format!(r#"SELECT count(*) FROM p WHERE id_number = civlink_mask('{id}', '{{"strategy":"pseudonym"}}')"#);
        assert_eq!(count(&ctx, &oracle).await, 0);
        // The shown pseudonym itself is, of course, a usable filter value.
        let shown = key().pseudonym(id);
        assert_eq!(count(&ctx, &format!("SELECT count(*) FROM p WHERE id_number = '{shown}'")).await, 1);
    }

    #[test]
    fn missing_columns_fail_closed() {
        let bad = access(Some("63"), &[("nope", MaskStrategy::None)]);
        assert!(matches!(
            ScopedTable::try_new(Opened::Storage(people()), &bad, &key()),
            Err(Error::MissingColumn { .. })
        ));
        let mut bad = masked();
        bad.division_column = Some("nowhere".into());
        assert!(matches!(
            ScopedTable::try_new(Opened::Storage(people()), &bad, &key()),
            Err(Error::MissingDivisionColumn { .. })
        ));
    }
}
