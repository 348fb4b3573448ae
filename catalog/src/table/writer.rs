//! The streaming, single-commit writer of one run.
//!
//! Rows stream through deltalake's `RecordBatchWriter` into parquet files
//! (multipart uploads, so memory holds about one flush window). Every
//! [`FlushThreshold`] the open file is finished and its `Add` action kept;
//! nothing is visible until [`TableWriter::commit`] publishes all the files
//! in one Delta commit:
//!
//! | mode | files go to | the commit |
//! |---|---|---|
//! | new table (any mode) | table root | `CREATE TABLE` with schema and every `Add` |
//! | append | table root | `WRITE` (append): every `Add` |
//! | overwrite | table root | `WRITE` (overwrite): `Remove` of every current file, every `Add`, new metadata if the schema changed |
//! | upsert | `_staging/<write id>/` | `MERGE` by primary key of the staged files; the staging directory is deleted afterwards |
//!
//! A run with zero rows still commits (an empty `WRITE`/`MERGE`, or a `CREATE
//! TABLE` with no files), so the table history shows every run and the version
//! always advances by one commit.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::prelude::ParquetReadOptions;
use deltalake::delta_datafusion::create_session;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, Add, MetadataExt, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use serde_json::Value;
use url::Url;

use super::{
    Error, FlushThreshold, MODE_KEY, ROLLBACK_KEY, ROWS_KEY, RUN_ID_KEY, Result, StoreRef, TableStore, delta_err,
    from_delta_version, log, query_err, store_err, to_delta_version,
};
use crate::model::WriteMode;

/// Directory (under the table root) where an upsert stages its rows before the merge.
const STAGING_DIR: &str = "_staging";

/// A run's rows on their way into one table; see the [module docs](self).
///
/// Dropping it without [`commit`](Self::commit) or [`abort`](Self::abort) leaves
/// the files written so far unreferenced (invisible to readers).
pub struct TableWriter {
    uri: String,
    url: Url,
    store: TableStore,
    /// The table's object store, rooted at the table directory.
    files: StoreRef,
    mode: WriteMode,
    primary_key: Vec<String>,
    /// The table after any rollback; `None` when the commit creates it.
    table: Option<DeltaTable>,
    /// The schema rows are written in (the table's, or the new one).
    schema: SchemaRef,
    /// The same schema in Delta terms.
    delta_schema: StructType,
    /// An overwrite that changes the schema: the commit carries new metadata.
    replace_schema: bool,
    sink: RecordBatchWriter,
    /// Upserts only: where the rows are staged.
    staging: Option<Staging>,
    adds: Vec<Add>,
    rows: u64,
    rows_since_flush: usize,
    flush: FlushThreshold,
    /// The first write failure; the buffered rows are incomplete after it.
    failed: Option<String>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("uri", &self.uri)
            .field("mode", &self.mode)
            .field("rows", &self.rows)
            .field("files", &self.adds.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Staging {
    /// `_staging/<id>` under the table root.
    prefix: Path,
    /// Its URL, ending in `/`.
    url: Url,
}

pub(super) async fn begin(
    store: &TableStore,
    uri: &str,
    schema: SchemaRef,
    mode: WriteMode,
    primary_key: &[String],
    expected_version: Option<i64>,
) -> Result<TableWriter> {
    let url = store.parse_uri(uri)?;
    let (schema, delta_schema) = storable_schema(uri, &schema)?;
    if mode == WriteMode::Upsert {
        let missing: Vec<String> = primary_key.iter().filter(|c| schema.field_with_name(c).is_err()).cloned().collect();
        if primary_key.is_empty() || !missing.is_empty() {
            return Err(Error::MissingPrimaryKey { uri: uri.to_owned(), missing });
        }
    }

    let unloaded = store.unloaded(uri, &url)?;
    let files = unloaded.object_store();
    let head = log::list(uri, files.as_ref()).await?.head();
    let table = match (expected_version, head) {
        (None, None) => None,
        (Some(expected), Some(head)) if head >= expected => {
            let table = load_latest(uri, unloaded).await?;
            if head > expected { Some(restore(uri, table, expected, head).await?) } else { Some(table) }
        }
        (Some(expected), head) => {
            return Err(Error::CatalogAhead { uri: uri.to_owned(), expected, head });
        }
        (None, Some(head)) => {
            let table = load_latest(uri, unloaded).await?;
            Some(empty_out(uri, table, &schema, &delta_schema, head).await?)
        }
    };

    let (schema, delta_schema, replace_schema) = match &table {
        None => (schema, delta_schema, false),
        Some(table) => {
            let existing = table.snapshot().map_err(delta_err(uri, "load"))?.snapshot().arrow_schema();
            if same_columns(&existing, &schema) {
                let existing_delta = table.snapshot().map_err(delta_err(uri, "load"))?.schema().as_ref().clone();
                (existing, existing_delta, false)
            } else if mode == WriteMode::Overwrite {
                (schema, delta_schema, true)
            } else {
                return Err(Error::Schema {
                    uri: uri.to_owned(),
                    message: format!(
                        "a {} must keep the table's columns: table has {}, rows have {}",
                        mode.code(),
                        describe(&existing),
                        describe(&schema)
                    ),
                });
            }
        }
    };

    let flush = store.flush_threshold();
    let staging = (mode == WriteMode::Upsert && table.is_some()).then(|| Staging::new(&url)).transpose()?;
    let sink_url = staging.as_ref().map_or(&url, |s| &s.url);
    let sink = RecordBatchWriter::try_new(sink_url.as_str(), schema.clone(), None, Some(store.options().clone()))
        .map_err(delta_err(uri, "start writing"))?
        .with_target_file_size(flush.bytes as u64);
    let sink_schema = sink.arrow_schema();
    Ok(TableWriter {
        uri: uri.to_owned(),
        url,
        store: store.clone(),
        files,
        mode,
        primary_key: primary_key.to_vec(),
        table,
        // The writer may normalize types further; rows are conformed to exactly what it takes.
        schema: sink_schema,
        delta_schema,
        replace_schema,
        sink,
        staging,
        adds: Vec::new(),
        rows: 0,
        rows_since_flush: 0,
        flush,
        failed: None,
    })
}

impl TableWriter {
    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Parquet files finished so far (more follow at commit).
    pub fn files(&self) -> usize {
        self.adds.len()
    }

    /// The schema rows are stored in (every field nullable).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Add rows. Columns are matched by name and cast to the table's types; a
    /// missing or extra column is an [`Error::Schema`] (and the writer stays usable).
    /// A storage failure poisons the writer: only [`abort`](Self::abort) remains.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(message) = &self.failed {
            return Err(Error::WriterFailed { uri: self.uri.clone(), message: message.clone() });
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = conform(&self.uri, batch, &self.schema)?;
        if self.mode == WriteMode::Upsert {
            for column in &self.primary_key {
                let nulls = batch.column_by_name(column).map_or(0, |a| a.null_count());
                if nulls > 0 {
                    return Err(Error::NullPrimaryKey { uri: self.uri.clone(), column: column.clone(), nulls });
                }
            }
        }
        let rows = batch.num_rows();
        if let Err(e) = self.sink.write(batch).await {
            self.failed = Some(e.to_string());
            return Err(delta_err(&self.uri, "write rows")(e));
        }
        self.rows += rows as u64;
        self.rows_since_flush += rows;
        if self.sink.buffer_len() >= self.flush.bytes || self.rows_since_flush >= self.flush.rows {
            self.flush().await?;
        }
        Ok(())
    }

    /// Finish the open parquet file(s) and keep their `Add` actions.
    async fn flush(&mut self) -> Result<()> {
        match self.sink.flush().await {
            Ok(adds) => {
                self.adds.extend(adds);
                self.rows_since_flush = 0;
                Ok(())
            }
            Err(e) => {
                self.failed.get_or_insert_with(|| e.to_string());
                Err(delta_err(&self.uri, "write rows")(e))
            }
        }
    }

    /// Publish every row in ONE Delta commit recording `run_id` (commit info key
    /// [`RUN_ID_KEY`]); returns the new version. Zero rows still make a commit.
    ///
    /// When the commit fails, the written files are left in place rather than
    /// deleted: a commit that failed only in its reply may still have landed, and
    /// deleting its files would break the table. Unreferenced files are invisible.
    pub async fn commit(mut self, run_id: &str) -> Result<i64> {
        if let Some(message) = self.failed.take() {
            let _ = self.cleanup(true).await;
            return Err(Error::WriterFailed { uri: self.uri.clone(), message });
        }
        if let Err(e) = self.flush().await {
            let _ = self.cleanup(true).await;
            return Err(e);
        }
        let result = self.publish(run_id).await;
        // Staged upsert rows are never referenced by the log: always delete them.
        if let Err(e) = self.cleanup(false).await {
            tracing::warn!(uri = %self.uri, error = %e, "could not delete the staged upsert files");
        }
        result
    }

    /// Give up: nothing is committed, and the files written so far are deleted (best effort).
    pub async fn abort(mut self) -> Result<()> {
        // Finishing the open file (rather than dropping it) reveals the paths of
        // every file the writer produced, so all of them can be deleted.
        if self.failed.is_none()
            && let Ok(adds) = self.sink.flush().await
        {
            self.adds.extend(adds);
        }
        self.sink.reset();
        self.cleanup(true).await
    }

    async fn publish(&mut self, run_id: &str) -> Result<i64> {
        let uri = self.uri.clone();
        let properties = commit_properties([
            (RUN_ID_KEY, Value::from(run_id)),
            (MODE_KEY, Value::from(self.mode.code())),
            (ROWS_KEY, Value::from(self.rows)),
        ]);
        let adds = std::mem::take(&mut self.adds);
        let Some(table) = self.table.take() else {
            let table = DeltaTableBuilder::from_url(self.url.clone())
                .and_then(|b| b.with_storage_options(self.store.options().clone()).build())
                .map_err(delta_err(&uri, "create"))?;
            let created = table
                .create()
                .with_columns(self.delta_schema.fields().cloned())
                .with_actions(adds.into_iter().map(Action::Add))
                .with_commit_properties(properties)
                .with_save_mode(SaveMode::ErrorIfExists)
                .await
                .map_err(delta_err(&uri, "create"))?;
            return version_of(&uri, &created);
        };
        match self.mode {
            WriteMode::Append => {
                let actions = adds.into_iter().map(Action::Add).collect();
                commit_actions(&uri, &table, actions, write_operation(SaveMode::Append), properties).await
            }
            WriteMode::Overwrite => {
                let mut actions = current_files_removed(&uri, &table).await?;
                if self.replace_schema {
                    let metadata = table
                        .snapshot()
                        .map_err(delta_err(&uri, "overwrite"))?
                        .metadata()
                        .clone()
                        .with_schema(&self.delta_schema)
                        .map_err(delta_err(&uri, "overwrite"))?;
                    actions.push(Action::Metadata(metadata));
                }
                actions.extend(adds.into_iter().map(Action::Add));
                commit_actions(&uri, &table, actions, write_operation(SaveMode::Overwrite), properties).await
            }
            WriteMode::Upsert => self.merge(table, properties).await,
        }
    }

    /// MERGE the staged rows into `table`: matching keys updated, new keys inserted.
    async fn merge(&mut self, table: DeltaTable, properties: CommitProperties) -> Result<i64> {
        let uri = self.uri.as_str();
        let before = version_of(uri, &table)?;
        let predicate = self
            .primary_key
            .iter()
            .map(|c| qualified("target", c).eq(qualified("source", c)))
            .reduce(Expr::and)
            .ok_or_else(|| Error::MissingPrimaryKey { uri: uri.to_owned(), missing: Vec::new() })?;
        let Some(staging) = self.staging.as_ref().filter(|_| self.rows > 0) else {
            // Nothing staged (and no files to read): record the run with an empty MERGE commit.
            return commit_actions(uri, &table, Vec::new(), merge_operation(&predicate), properties).await;
        };

        let ctx = create_session().into_inner();
        table.update_datafusion_session(&ctx.state()).map_err(delta_err(uri, "merge"))?;
        let options = ParquetReadOptions { schema: Some(self.schema.as_ref()), ..ParquetReadOptions::default() };
        let source =
            ctx.read_parquet(staging.url.as_str(), options).await.map_err(query_err(uri, "read staged rows"))?;
        let columns: Vec<String> = self.schema.fields().iter().map(|f| f.name().clone()).collect();
        let non_key: Vec<&String> = columns.iter().filter(|c| !self.primary_key.contains(c)).collect();
        let session: Arc<dyn Session> = Arc::new(ctx.state());
        let mut builder = table
            .merge(source, predicate.clone())
            .with_source_alias("source")
            .with_target_alias("target")
            .with_session_state(session)
            .with_commit_properties(properties.clone());
        if !non_key.is_empty() {
            builder = builder
                .when_matched_update(|update| {
                    non_key
                        .iter()
                        .fold(update, |u, c| u.update(Column::new_unqualified(c.as_str()), qualified("source", c)))
                })
                .map_err(delta_err(uri, "merge"))?;
        }
        let builder = builder
            .when_not_matched_insert(|insert| {
                columns.iter().fold(insert, |i, c| i.set(Column::new_unqualified(c.as_str()), qualified("source", c)))
            })
            .map_err(delta_err(uri, "merge"))?;
        let (merged, _metrics) = builder.await.map_err(delta_err(uri, "merge"))?;
        let after = version_of(uri, &merged)?;
        if after > before {
            Ok(after)
        } else {
            // deltalake skips the commit when nothing changed (every key matched, no
            // non-key column): still record the run.
            commit_actions(uri, &merged, Vec::new(), merge_operation(&predicate), properties).await
        }
    }

    /// Delete the staged upsert files and, with `table_files`, the written data files.
    async fn cleanup(&mut self, table_files: bool) -> Result<()> {
        let mut first_error = None;
        if table_files && self.staging.is_none() {
            for add in std::mem::take(&mut self.adds) {
                let path = Path::parse(&add.path).unwrap_or_else(|_| Path::from(add.path.as_str()));
                match self.files.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        first_error.get_or_insert(store_err(&self.uri, "delete uncommitted files")(e));
                    }
                }
            }
        }
        if let Some(staging) = self.staging.take() {
            let listed: Vec<_> = self.files.list(Some(&staging.prefix)).collect().await;
            for entry in listed {
                let result = match entry {
                    Ok(meta) => self.files.delete(&meta.location).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        first_error.get_or_insert(store_err(&self.uri, "delete staged files")(e));
                    }
                }
            }
            if let Some(dir) = self.url.to_file_path().ok().map(|p| p.join(STAGING_DIR)) {
                // The local file system keeps empty directories; remove ours if now empty.
                let _ = std::fs::remove_dir(dir.join(staging.prefix.filename().unwrap_or_default()));
                let _ = std::fs::remove_dir(dir);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Staging {
    fn new(table: &Url) -> Result<Staging> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let url = table.join(&format!("{STAGING_DIR}/{id}/")).map_err(|e| Error::InvalidUri {
            uri: table.to_string(),
            reason: format!("cannot place the staging directory: {e}"),
        })?;
        Ok(Staging { prefix: Path::from_iter([STAGING_DIR, id.as_str()]), url })
    }
}

/// The schema as stored: every field nullable, in the types Delta keeps (arrow →
/// Delta → arrow), so a table read back has exactly the schema it was written in.
fn storable_schema(uri: &str, schema: &Schema) -> Result<(SchemaRef, StructType)> {
    let schema_error = |message: String| Error::Schema { uri: uri.to_owned(), message };
    if schema.fields().is_empty() {
        return Err(schema_error("a table needs at least one column".into()));
    }
    let nullable = Schema::new(
        schema.fields().iter().map(|f| Arc::new(f.as_ref().clone().with_nullable(true))).collect::<Vec<Arc<Field>>>(),
    );
    let delta: StructType =
        (&nullable).try_into_kernel().map_err(|e| schema_error(format!("cannot be stored in Delta Lake: {e}")))?;
    let arrow: Schema =
        (&delta).try_into_arrow().map_err(|e| schema_error(format!("cannot be read back from Delta Lake: {e}")))?;
    Ok((Arc::new(arrow), delta))
}

/// Same column names with the same types (order, nullability and metadata aside).
fn same_columns(table: &Schema, rows: &Schema) -> bool {
    table.fields().len() == rows.fields().len()
        && rows.fields().iter().all(|f| table.field_with_name(f.name()).is_ok_and(|t| t.data_type() == f.data_type()))
}

fn describe(schema: &Schema) -> String {
    let columns: Vec<String> = schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
    format!("({})", columns.join(", "))
}

/// The batch with the schema's columns, by name, cast to its types.
pub(super) fn conform(uri: &str, batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let schema_error = |message: String| Error::Schema { uri: uri.to_owned(), message };
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    if let Some(extra) = batch.schema().fields().iter().find(|f| schema.field_with_name(f.name()).is_err()) {
        return Err(schema_error(format!("column \"{}\" is not in the table {}", extra.name(), describe(schema))));
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| schema_error(format!("column \"{}\" is missing", field.name())))?;
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type()).map_err(|e| {
                    schema_error(format!(
                        "column \"{}\": {} does not cast to {}: {e}",
                        field.name(),
                        column.data_type(),
                        field.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| schema_error(e.to_string()))
}

fn qualified(relation: &str, column: &str) -> Expr {
    Expr::Column(Column::new(Some(relation), column))
}

fn commit_properties<const N: usize>(entries: [(&str, Value); N]) -> CommitProperties {
    CommitProperties::default()
        .with_metadata(entries.into_iter().map(|(k, v)| (k.to_owned(), v)))
        // Old log entries stay: every version the catalog recorded must remain readable.
        .with_cleanup_expired_logs(Some(false))
}

fn write_operation(mode: SaveMode) -> DeltaOperation {
    DeltaOperation::Write { mode, partition_by: None, predicate: None }
}

fn merge_operation(predicate: &Expr) -> DeltaOperation {
    DeltaOperation::Merge {
        predicate: None,
        merge_predicate: Some(predicate.to_string()),
        matched_predicates: Vec::new(),
        not_matched_predicates: Vec::new(),
        not_matched_by_source_predicates: Vec::new(),
    }
}

fn version_of(uri: &str, table: &DeltaTable) -> Result<i64> {
    table.version().map(from_delta_version).ok_or_else(|| Error::Delta {
        uri: uri.to_owned(),
        operation: "commit",
        message: "the table has no version after the commit".into(),
    })
}

async fn load_latest(uri: &str, mut table: DeltaTable) -> Result<DeltaTable> {
    table.load().await.map_err(delta_err(uri, "load"))?;
    Ok(table)
}

/// One commit of `actions` on top of the loaded `table`; returns its version.
async fn commit_actions(
    uri: &str,
    table: &DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    properties: CommitProperties,
) -> Result<i64> {
    let snapshot = table.snapshot().map_err(delta_err(uri, "commit"))?;
    let committed = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(snapshot as &dyn TableReference), table.log_store(), operation)
        .await
        .map_err(delta_err(uri, "commit"))?;
    Ok(from_delta_version(committed.version()))
}

/// `Remove` actions for every file of the loaded `table`.
async fn current_files_removed(uri: &str, table: &DeltaTable) -> Result<Vec<Action>> {
    let log_store = table.log_store();
    let snapshot = table.snapshot().map_err(delta_err(uri, "list files"))?;
    snapshot
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .map_ok(|file| Action::Remove(file.remove_action(true)))
        .try_collect()
        .await
        .map_err(delta_err(uri, "list files"))
}

/// Undo the commits after `expected` (left by a run the catalog never recorded).
async fn restore(uri: &str, table: DeltaTable, expected: i64, head: i64) -> Result<DeltaTable> {
    tracing::warn!(uri, expected, head, "rolling back Delta commits the catalog never recorded");
    let properties =
        commit_properties([(ROLLBACK_KEY, Value::from(format!("orphaned versions {}..={head}", expected + 1)))]);
    let (table, _metrics) = table
        .restore()
        .with_version_to_restore(to_delta_version(expected))
        .with_commit_properties(properties)
        .await
        .map_err(delta_err(uri, "roll back orphaned commits"))?;
    Ok(table)
}

/// Make a table the catalog does not know read as empty, in this run's schema.
async fn empty_out(
    uri: &str,
    mut table: DeltaTable,
    schema: &Schema,
    delta_schema: &StructType,
    head: i64,
) -> Result<DeltaTable> {
    let mut actions = current_files_removed(uri, &table).await?;
    let snapshot = table.snapshot().map_err(delta_err(uri, "load"))?;
    if !same_columns(&snapshot.snapshot().arrow_schema(), schema) {
        let metadata = snapshot
            .metadata()
            .clone()
            .with_schema(delta_schema)
            .map_err(delta_err(uri, "roll back orphaned commits"))?;
        actions.push(Action::Metadata(metadata));
    }
    if actions.is_empty() {
        return Ok(table);
    }
    tracing::warn!(uri, head, "emptying a Delta table the catalog never recorded");
    let properties = commit_properties([(ROLLBACK_KEY, Value::from(format!("orphaned versions 0..={head}")))]);
    commit_actions(uri, &table, actions, write_operation(SaveMode::Overwrite), properties).await?;
    table.update_state().await.map_err(delta_err(uri, "load"))?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]))
    }

    /// Compile-time check: the writer and the store's futures can move between threads (`tokio::spawn`).
    #[test]
    fn writer_and_futures_are_send() {
        fn send<T: Send>(_: T) {}
        fn check(store: TableStore, mut writer: TableWriter, batch: RecordBatch) {
            send(async move {
                let _ = store.begin_write("u", schema(), WriteMode::Upsert, &[], None).await;
                let _ = store.read("u", super::super::TimeTravel::Latest).await;
                let _ = store.count("u", super::super::TimeTravel::Latest).await;
                let _ = store.history("u").await;
                let _ = writer.write(&batch).await;
                let _ = writer.commit("r").await;
            });
        }
        let _ = check;
    }

    #[test]
    fn stored_schemas_are_nullable() {
        let (arrow, delta) = storable_schema("u", &schema()).unwrap();
        assert!(arrow.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(delta.fields().count(), 2);
        assert!(matches!(storable_schema("u", &Schema::empty()), Err(Error::Schema { .. })));
    }

    #[test]
    fn batches_are_conformed_by_name_and_cast() {
        let (target, _) = storable_schema("u", &schema()).unwrap();
        let reordered = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("id", DataType::Int32, false),
            ])),
            vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(Int32Array::from(vec![7]))],
        )
        .unwrap();
        let conformed = conform("u", &reordered, &target).unwrap();
        assert_eq!(conformed.schema(), target);
        assert_eq!(conformed.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 7);

        let missing = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(conform("u", &missing, &target), Err(Error::Schema { .. })));
        let extra = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
                Field::new("x", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(StringArray::from(vec!["b"])),
            ],
        )
        .unwrap();
        assert!(matches!(conform("u", &extra, &target), Err(Error::Schema { .. })));
    }

    #[test]
    fn column_sets_compare_by_name_and_type() {
        let a = schema();
        let b = Schema::new(vec![Field::new("name", DataType::Utf8, false), Field::new("id", DataType::Int64, true)]);
        let c = Schema::new(vec![Field::new("name", DataType::Utf8, false), Field::new("id", DataType::Int32, true)]);
        assert!(same_columns(&a, &b));
        assert!(!same_columns(&a, &c));
        assert!(!same_columns(&a, &Schema::new(vec![Field::new("id", DataType::Int64, true)])));
    }
}
