//! One DataFusion session per principal and query.
//!
//! [`SessionFactory::session_for`] asks the policy what the principal may
//! read (`MetadataStore::readable`) and builds a [`SessionContext`] holding
//! exactly that:
//!
//! * catalog `civlink` (the only catalog: there is no `datafusion.public`),
//!   one schema per department code (`gongan`, `minzheng`, …) and in it one
//!   table per readable dataset, named by the dataset's name, each a
//!   [`ScopedTable`] (columns, masks and row scope of the principal), its
//!   `pseudonym` masks keyed with the deployment's [`MaskKey`]: the one given
//!   to [`SessionFactory::with_mask_key`], else the metadata store's
//!   (`MetadataStore::mask_key`), read at the factory's first session and
//!   kept for its life;
//! * `information_schema`, which therefore lists only what the principal
//!   may read;
//! * the functions of [`crate::udf`];
//! * its own memory pool: a [`FairSpillPool`] capped at
//!   [`Limits::memory_per_query`], with spilling to disk (sorts,
//!   aggregations, sort-merge joins) up to [`Limits::max_spill_bytes`].
//!
//! A session is cheap to build and never reused across requests, so the
//! memory pool is per query and a revoked grant stops applying at the next
//! request. Delta tables are opened lazily (a query pays only for the
//! tables it names) and their providers are cached per table location and
//! committed version, so a dataset is opened once per version, not once
//! per query. Only the version the catalog records as committed is read:
//! a writer's uncommitted or rolled-back commits are never visible.
//!
//! Datasets without a committed version (registered, never ingested) have
//! no table yet and are not listed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use civlink_catalog::model::{DatasetId, DatasetRecord, Department};
use civlink_catalog::policy::{Access, Principal};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::{TableStore, TimeTravel};
use civlink_standards::mask::MaskKey;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::scope::ScopedTable;
use crate::udf;
use crate::wire::PreEncoded;

/// The one catalog every session has.
pub const CATALOG: &str = "civlink";
/// The schema DataFusion adds to every catalog.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// Per-query and per-principal limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A query still running after this long is stopped (`DEADLINE_EXCEEDED`).
    pub query_timeout: Duration,
    /// Queries one principal may run at the same time; more are refused
    /// (`RESOURCE_EXHAUSTED`) rather than queued.
    pub max_concurrent_per_principal: usize,
    /// Memory one query may hold (bytes) before it spills or fails.
    pub memory_per_query: usize,
    /// Disk one query may spill (bytes).
    pub max_spill_bytes: u64,
    /// Where spill files go; `None` = the operating system's temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// Memory (bytes) for keeping whole tables decoded in memory, shared by
    /// every session: a table whose current version fits in what the cache
    /// has left is read from its Parquet files once (by its first query) and
    /// then scanned from memory; tables that do not fit are read from storage
    /// as usual, and nothing is evicted. 0 turns the cache off.
    pub table_cache_bytes: usize,
}

impl Default for Limits {
    /// Five minutes, four queries per principal, 1 GiB of memory and 16 GiB
    /// of spill per query; 2 GiB of decoded tables kept in memory.
    fn default() -> Self {
        Limits {
            query_timeout: Duration::from_secs(300),
            max_concurrent_per_principal: 4,
            memory_per_query: 1 << 30,
            max_spill_bytes: 16 << 30,
            spill_dir: None,
            table_cache_bytes: 2 << 30,
        }
    }
}

/// Builds [`ScopedSession`]s. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct SessionFactory {
    store: MetadataStore,
    limits: Limits,
    opener: Arc<TableOpener>,
    /// Keys the `pseudonym` masks of every scoped table (its `Debug` shows no
    /// bytes); set once, by [`SessionFactory::with_mask_key`] or from the store.
    mask_key: OnceCell<Arc<MaskKey>>,
}

impl SessionFactory {
    /// A factory reading the catalog `store` and the Delta tables of `tables`.
    ///
    /// `pseudonym` masks are keyed with the deployment's mask key, read from
    /// `store` (`MetadataStore::mask_key`, which generates it on first use)
    /// when the first session is built, unless
    /// [`SessionFactory::with_mask_key`] supplied it.
    pub fn new(store: MetadataStore, tables: TableStore, limits: Limits) -> SessionFactory {
        let opener = TableOpener {
            tables,
            registry: Arc::new(DefaultObjectStoreRegistry::new()),
            cache: Mutex::new(HashMap::new()),
            cache_budget: limits.table_cache_bytes,
            pre_encoded: PreEncoded::default(),
        };
        SessionFactory { store, limits, opener: Arc::new(opener), mask_key: OnceCell::new() }
    }

    /// The cached batches' pre-encoded Flight messages (see [`crate::wire`]).
    pub fn pre_encoded(&self) -> &PreEncoded {
        &self.opener.pre_encoded
    }

    /// Key `pseudonym` masks with `key` instead of reading the store's key
    /// lazily. The Flight server passes the store's key, read once when it
    /// binds (so a store that cannot produce it fails at start-up); tests
    /// may pass a fixed one.
    pub fn with_mask_key(mut self, key: MaskKey) -> SessionFactory {
        self.mask_key = OnceCell::new_with(Some(Arc::new(key)));
        self
    }

    /// The mask key, read from the store on first use (concurrent first
    /// sessions wait for one read).
    async fn mask_key(&self) -> Result<Arc<MaskKey>> {
        let key = self
            .mask_key
            .get_or_try_init(|| async {
                self.store.mask_key().await.map(Arc::new).map_err(|e| Error::Store { message: e.to_string() })
            })
            .await?;
        Ok(Arc::clone(key))
    }

    /// The metadata store.
    pub fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// The limits sessions are built with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh session holding what `principal` may read.
    pub async fn session_for(&self, principal: &Principal) -> Result<ScopedSession> {
        let mask_key = self.mask_key().await?;
        let readable = self.store.readable(principal).await.map_err(Error::from_policy)?;
        let datasets: Vec<(DatasetRecord, Access)> =
            readable.into_iter().filter(|(record, _)| record.current_version.is_some()).collect();

        let mode = match &self.limits.spill_dir {
            Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
            None => DiskManagerMode::OsTmpDirectory,
        };
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(self.limits.memory_per_query)))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(mode).with_max_temp_directory_size(self.limits.max_spill_bytes),
            )
            .with_object_store_registry(Arc::clone(&self.opener.registry) as Arc<dyn ObjectStoreRegistry>)
            .build_arc()
            .map_err(Error::from_datafusion)?;
        let default_schema = principal.department.unwrap_or(Department::Minzheng).code();
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, default_schema);
        // A sort sets aside this much to merge its spill files; DataFusion's 10 MiB
        // default would not fit a small per-query cap, and the sort would fail
        // instead of spilling.
        let execution = &mut config.options_mut().execution;
        execution.sort_spill_reservation_bytes =
            execution.sort_spill_reservation_bytes.min(self.limits.memory_per_query / 8);
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let ctx = SessionContext::new_with_state(state);

        let mut by_department: BTreeMap<Department, BTreeMap<String, (DatasetRecord, Access)>> = BTreeMap::new();
        for (record, access) in &datasets {
            by_department
                .entry(record.spec.id.department)
                .or_default()
                .insert(record.spec.id.name.clone(), (record.clone(), access.clone()));
        }
        let catalog = MemoryCatalogProvider::new();
        for (department, tables) in by_department {
            let schema = DatasetSchema { tables, opener: Arc::clone(&self.opener), mask_key: Arc::clone(&mask_key) };
            catalog.register_schema(department.code(), Arc::new(schema)).map_err(Error::from_datafusion)?;
        }
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        udf::register_all(&ctx);
        Ok(ScopedSession { ctx, principal: principal.clone(), datasets, store: self.store.clone() })
    }
}

/// A principal's session: the context and what it may read.
#[derive(Clone)]
pub struct ScopedSession {
    /// The DataFusion context.
    pub ctx: SessionContext,
    /// Whose session this is.
    pub principal: Principal,
    /// The readable datasets that have a committed version, with their access.
    pub datasets: Vec<(DatasetRecord, Access)>,
    store: MetadataStore,
}

impl std::fmt::Debug for ScopedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedSession")
            .field("principal", &self.principal.name)
            .field("datasets", &self.datasets.iter().map(|(r, _)| r.spec.id.to_string()).collect::<Vec<_>>())
            .finish()
    }
}

/// A statement planned in a session.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The logical plan (placeholders `$1…` unbound).
    pub plan: LogicalPlan,
    /// The datasets the statement names (`department.name`), for the audit log.
    pub datasets: Vec<String>,
}

impl ScopedSession {
    /// Plan one read-only SQL statement.
    ///
    /// Naming a registered dataset the principal may not read is
    /// `PERMISSION_DENIED` (the catalog of datasets is not secret; its
    /// contents are); DDL, DML, `COPY` and `SET` are refused the same way:
    /// this service only reads. `EXPLAIN ANALYZE` and `EXPLAIN VERBOSE` are
    /// refused too: their metrics and statistics describe the whole table
    /// below the scope boundary (plain `EXPLAIN` is allowed).
    pub async fn plan_sql(&self, sql: &str) -> Result<Planned> {
        let sql = &*positional_placeholders(sql);
        let state = self.ctx.state();
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
            // EXPLAIN ANALYZE runs the query and prints every operator's metrics,
            // including those of the Delta scan *below* the scope boundary
            // (`CivlinkScopeExec`): its `output_rows`, `pushdown_rows_pruned` and
            // page-index counts give a village analyst the number of rows in the
            // whole province (and how many lie outside its division). Metrics
            // cannot be cut at the boundary, so the statement is refused.
            LogicalPlan::Analyze(_) => {
                return Err(Error::PermissionDenied {
                    what: "EXPLAIN ANALYZE is not allowed: its metrics describe rows outside your scope".into(),
                });
            }
            // EXPLAIN VERBOSE prints the physical plan with statistics, and those
            // of the Delta scan below the scope boundary are the whole table's:
            // its row count and each column's min/max, i.e. values from outside
            // the principal's division and, for masked columns, in clear.
            // (Plain EXPLAIN shows no statistics, and `SET` cannot turn
            // `datafusion.explain.show_statistics` on: statements are refused.)
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

    /// The scoped table of a readable dataset (opening its Delta table).
    pub async fn table(&self, id: &DatasetId) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(catalog) = self.ctx.catalog(CATALOG) else { return Ok(None) };
        let Some(schema) = catalog.schema(id.department.code()) else { return Ok(None) };
        schema.table(&id.name).await.map_err(Error::from_datafusion)
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
    id.parse::<DatasetId>().ok().map(|id| id.to_string())
}

/// A table in the cache: its provider at one committed version.
struct CachedProvider {
    /// The Delta version it holds.
    version: i64,
    /// The in-memory table, or the storage provider when it did not fit.
    provider: Arc<dyn TableProvider>,
    /// Bytes held in memory (0 for a storage provider).
    bytes: usize,
    /// Its batches' keys in [`PreEncoded`], forgotten when it is replaced.
    pre_encoded: Vec<usize>,
}

/// Opens Delta tables at their committed version, once per version.
struct TableOpener {
    tables: TableStore,
    /// Object stores shared by every session (so a table's store is registered once).
    registry: Arc<DefaultObjectStoreRegistry>,
    /// Table location → (version, provider, bytes in memory).
    cache: Mutex<HashMap<String, CachedProvider>>,
    /// Bytes of decoded tables the cache may hold.
    cache_budget: usize,
    /// The cached batches as the Flight messages they go out as.
    pre_encoded: PreEncoded,
}

impl std::fmt::Debug for TableOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableOpener").field("tables", &self.tables).finish_non_exhaustive()
    }
}

impl TableOpener {
    /// The Delta provider of a dataset at its committed version.
    async fn provider(&self, record: &DatasetRecord) -> Result<Arc<dyn TableProvider>> {
        let uri = &record.table_uri;
        let version = record
            .current_version
            .ok_or_else(|| Error::Engine { message: format!("dataset {} has no committed version", record.spec.id) })?;
        if let Ok(cache) = self.cache.lock()
            && let Some(cached) = cache.get(uri)
            && cached.version == version
        {
            return Ok(Arc::clone(&cached.provider));
        }
        let table = self.tables.open(uri, TimeTravel::Version(version)).await?;
        // Register the table's object store with the shared registry, through a
        // throwaway session over it: deltalake's supported way of doing so.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&self.registry) as Arc<dyn ObjectStoreRegistry>)
            .build_arc()
            .map_err(Error::from_datafusion)?;
        let state = SessionStateBuilder::new().with_runtime_env(runtime).build();
        table
            .update_datafusion_session(&state)
            .map_err(|e| Error::Engine { message: format!("registering the object store of {uri}: {e}") })?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| Error::Engine { message: format!("building the table provider of {uri}: {e}") })?;
        // First come, first kept: a table is decoded into memory only if it fits
        // in what the other cached tables leave, so two large tables scanned in
        // turn never evict each other and reload on every query.
        let room = self.cache.lock().map_or(0, |cache| {
            let held: usize = cache.iter().filter(|(k, _)| *k != uri).map(|(_, cached)| cached.bytes).sum();
            self.cache_budget.saturating_sub(held)
        });
        let (provider, bytes, keys) = self.in_memory(uri, provider, &state, room).await;
        if let Ok(mut cache) = self.cache.lock()
            && let Some(replaced) = cache.insert(
                uri.clone(),
                CachedProvider { version, provider: Arc::clone(&provider), bytes, pre_encoded: keys },
            )
        {
            self.pre_encoded.forget(replaced.pre_encoded);
        }
        Ok(provider)
    }

    /// The table decoded into memory, when it fits in `room` bytes: scans then
    /// skip Parquet decoding, which dominates a full scan. Falls back to the
    /// storage provider (with 0 bytes held) when the table is too large or
    /// cannot be read whole; the query then reads it from storage as before.
    async fn in_memory(
        &self,
        uri: &str,
        provider: Arc<dyn TableProvider>,
        state: &datafusion::execution::SessionState,
        room: usize,
    ) -> (Arc<dyn TableProvider>, usize, Vec<usize>) {
        use datafusion::physical_plan::ExecutionPlanProperties;
        if room == 0 {
            return (provider, 0, Vec::new());
        }
        let mut keys = Vec::new();
        let loaded = async {
            let plan = provider.scan(state, None, &[], None).await?;
            let partitions = plan.output_partitioning().partition_count();
            let task = state.task_ctx();
            // Kept in the types results travel in (string views as plain
            // strings), so a scan streams the cached buffers as they are
            // instead of converting every batch of every query.
            let wire = crate::service::wire_schema(&provider.schema());
            let mut batches = Vec::new();
            let mut bytes = 0usize;
            for partition in 0..partitions {
                let mut stream = plan.execute(partition, Arc::clone(&task))?;
                while let Some(batch) = futures::StreamExt::next(&mut stream).await {
                    let batch = crate::service::to_wire(&batch?, &wire)?;
                    // Each part kept as the Flight message it goes out as
                    // (see `crate::wire`), one message's worth at most.
                    for part in crate::wire::split_for_grpc(&batch) {
                        let (kept, key, size) = self.pre_encoded.encode(&part)?;
                        keys.extend(key);
                        bytes += size;
                        if bytes > room {
                            return Ok::<_, DataFusionError>(None);
                        }
                        batches.push(kept);
                    }
                }
            }
            Ok(Some((batches, bytes, wire)))
        };
        match loaded.await {
            Ok(Some((batches, bytes, schema))) => {
                // Every batch has `schema`: `to_wire` built it so (or failed above).
                // Two partitions per core's worth of batches, dealt round-robin, so scans stay parallel.
                let lanes = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
                let mut partitions = vec![Vec::new(); lanes];
                for (i, batch) in batches.into_iter().enumerate() {
                    partitions[i % lanes].push(batch);
                }
                match datafusion::datasource::MemTable::try_new(schema, partitions) {
                    Ok(table) => {
                        tracing::info!(table = uri, bytes, "table cached in memory");
                        return (Arc::new(table), bytes, keys);
                    }
                    Err(e) => tracing::debug!(table = uri, error = %e, "not cached"),
                }
            }
            Ok(None) => tracing::debug!(table = uri, room, "not cached: larger than what the cache has left"),
            Err(e) => tracing::warn!(table = uri, error = %e, "not cached: reading the table failed"),
        }
        self.pre_encoded.forget(keys);
        (provider, 0, Vec::new())
    }
}

/// One department's readable datasets, opened on first use.
#[derive(Debug)]
struct DatasetSchema {
    tables: BTreeMap<String, (DatasetRecord, Access)>,
    opener: Arc<TableOpener>,
    mask_key: Arc<MaskKey>,
}

#[async_trait]
impl SchemaProvider for DatasetSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let Some((record, access)) = self.tables.get(name) else { return Ok(None) };
        let provider = self.opener.provider(record).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        // A policy naming columns the table lacks fails closed, loudly.
        let scoped = ScopedTable::try_new(provider, access, &self.mask_key)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(Arc::new(scoped)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
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
    use super::*;

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
    fn default_limits_are_sane() {
        let limits = Limits::default();
        assert!(limits.max_concurrent_per_principal >= 1);
        assert!(limits.memory_per_query >= 64 << 20);
    }
}
