//! The table cache: one per process, shared by every session of every
//! transport.
//!
//! [`TableCache::open`] gives a dataset's table at the version the catalog
//! records as committed (a writer's uncommitted or rolled-back commits are
//! never visible):
//!
//! * **in memory** ([`Opened::Memory`]) when its decoded batches fit in what
//!   the cache has left ([`crate::Limits::table_cache_bytes`] minus the other
//!   tables): read from its Parquet files once, by its first query, then
//!   scanned from memory, in the plain types results travel in
//!   ([`crate::plain`]);
//! * **from storage** ([`Opened::Storage`]) otherwise, through delta-rs's
//!   table provider, opened once per version.
//!
//! First come, first kept: nothing is evicted, so two large tables scanned in
//! turn never push each other out and reload on every query. A new version
//! replaces the old one's entry (queries still running on the old one keep
//! it until they finish).
//!
//! **Single flight.** Concurrent first queries of a table wait for one load.
//! A load abandoned by its query (time limit, client gone) is taken over by
//! the next waiter.
//!
//! **Masked columns once per version.** A cached table also keeps, per set
//! of masks a policy applies to it, the masked values of those columns
//! ([`CachedTable::masked_view`]), computed once under the deployment key
//! and held only in memory: a masked scan then costs what a clear one does,
//! and a join on pseudonyms what a join on clear keys does.
//!
//! **Transports' own encodings.** A transport may keep each cached batch in
//! the form it sends it in (Flight keeps the IPC message): it plugs in a
//! [`BatchKeeper`]. The cache itself knows no wire format.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use civlink_catalog::metrics::TABLE_CACHE;
use civlink_catalog::model::DatasetRecord;
use civlink_catalog::table::{TableStore, TimeTravel};
use civlink_standards::mask::{MaskKey, MaskStrategy};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::ExecutionPlanProperties;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// How a transport keeps cached batches (see the module docs).
pub trait BatchKeeper: Send + Sync + fmt::Debug {
    /// The batches to hold in the cache in place of `batch` (the same rows in
    /// order, possibly cut into several; their buffers may be slices of the
    /// transport's own encoding), each with the bytes it holds.
    fn keep(&self, batch: &RecordBatch) -> Result<Vec<(RecordBatch, usize)>, ArrowError>;

    /// The cache no longer holds these batches.
    fn release(&self, batches: &[RecordBatch]);
}

/// Keeps batches as they are.
#[derive(Debug, Default)]
pub struct PlainKeeper;

impl BatchKeeper for PlainKeeper {
    fn keep(&self, batch: &RecordBatch) -> Result<Vec<(RecordBatch, usize)>, ArrowError> {
        Ok(vec![(batch.clone(), batch.get_array_memory_size())])
    }

    fn release(&self, _batches: &[RecordBatch]) {}
}

/// A table as [`TableCache::open`] gives it.
#[derive(Debug, Clone)]
pub enum Opened {
    /// Decoded in memory.
    Memory(Arc<CachedTable>),
    /// Read from storage by each scan.
    Storage(Arc<dyn TableProvider>),
}

impl Opened {
    /// The table's schema (as stored: before scoping and masking).
    pub fn schema(&self) -> SchemaRef {
        match self {
            Opened::Memory(table) => table.table.schema(),
            Opened::Storage(provider) => provider.schema(),
        }
    }

    /// The provider that scans it unmasked.
    pub fn provider(&self) -> Arc<dyn TableProvider> {
        match self {
            Opened::Memory(table) => Arc::clone(&table.table) as Arc<dyn TableProvider>,
            Opened::Storage(provider) => Arc::clone(provider),
        }
    }
}

/// Memory the cache's tables hold, against its budget.
#[derive(Debug)]
struct Budget {
    total: usize,
    used: AtomicUsize,
}

impl Budget {
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.total)
            })
            .is_ok()
    }

    fn left(&self) -> usize {
        self.total.saturating_sub(self.used.load(Ordering::Acquire))
    }

    fn give_back(&self, bytes: usize) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes)));
    }
}

/// A table decoded in memory at one version.
pub struct CachedTable {
    /// Its version.
    pub version: i64,
    /// Its batches, in plain types, dealt round-robin into partitions.
    table: Arc<MemTable>,
    /// The same partitions, for building masked views.
    partitions: Vec<Vec<RecordBatch>>,
    /// The batches as kept (for [`BatchKeeper::release`]).
    batches: Vec<RecordBatch>,
    /// Bytes held, views included (given back to the budget on replacement).
    bytes: AtomicUsize,
    budget: Arc<Budget>,
    /// Masked views by the masks they apply.
    views: Mutex<HashMap<Vec<(String, MaskStrategy)>, ViewCell>>,
}

impl fmt::Debug for CachedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedTable")
            .field("version", &self.version)
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A masked view, computed once (`None`: it did not fit in the cache).
type ViewCell = Arc<OnceCell<Option<Arc<MaskedView>>>>;

/// A cached table with some columns' masked values alongside the clear ones.
#[derive(Debug)]
pub struct MaskedView {
    /// The table's columns, then one column per mask.
    pub table: Arc<MemTable>,
    /// Column name → the name of its masked values in [`Self::table`].
    pub masked: HashMap<String, String>,
}

/// The name a masked column's values have in a [`MaskedView`]: not an
/// identifier any standard can have (standards' columns are snake_case).
fn hidden_name(index: usize) -> String {
    format!("__civlink_masked_{index}")
}

impl CachedTable {
    /// The provider scanning it unmasked.
    pub fn table(&self) -> Arc<MemTable> {
        Arc::clone(&self.table)
    }

    /// The view with `masks` applied, computed on first use under `key`
    /// (concurrent first uses wait for one computation); `None` when the
    /// masked values do not fit in what the cache has left (scans then mask
    /// as they read).
    pub async fn masked_view(&self, masks: &[(String, MaskStrategy)], key: &MaskKey) -> Option<Arc<MaskedView>> {
        let mut masks = masks.to_vec();
        masks.sort_by(|a, b| a.0.cmp(&b.0));
        let cell = {
            let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(views.entry(masks.clone()).or_default())
        };
        cell.get_or_init(|| async { self.compute_view(&masks, key) }).await.clone()
    }

    fn compute_view(&self, masks: &[(String, MaskStrategy)], key: &MaskKey) -> Option<Arc<MaskedView>> {
        let schema = self.table.schema();
        let mut indices = Vec::with_capacity(masks.len());
        for (column, _) in masks {
            indices.push(schema.index_of(column).ok()?);
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut masked = HashMap::new();
        for (i, (column, _)) in masks.iter().enumerate() {
            fields.push(Field::new(hidden_name(i), DataType::Utf8, true));
            masked.insert(column.clone(), hidden_name(i));
        }
        let view_schema = Arc::new(Schema::new(fields));
        let mut bytes = 0usize;
        let mut partitions = Vec::new();
        for batches in &self.partitions {
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
                for (&index, (_, strategy)) in indices.iter().zip(masks) {
                    let values = crate::udf::mask_array(batch.column(index), strategy, key).ok()?;
                    bytes += values.get_array_memory_size();
                    columns.push(values);
                }
                out.push(RecordBatch::try_new(Arc::clone(&view_schema), columns).ok()?);
            }
            partitions.push(out);
        }
        if !self.budget.try_take(bytes) {
            tracing::debug!(bytes, "masked columns not cached: larger than what the cache has left");
            return None;
        }
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        let table = MemTable::try_new(view_schema, partitions).ok()?;
        Some(Arc::new(MaskedView { table: Arc::new(table), masked }))
    }
}

/// One table's cache entry: the version and its (once) opened table.
struct Entry {
    version: i64,
    opened: Arc<OnceCell<Opened>>,
}

/// The process's table cache (see the module docs).
pub struct TableCache {
    tables: TableStore,
    /// Object stores shared by every session (a table's store is registered once).
    registry: Arc<DefaultObjectStoreRegistry>,
    budget: Arc<Budget>,
    keeper: Arc<dyn BatchKeeper>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for TableCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableCache")
            .field("tables", &self.tables)
            .field("budget", &self.budget.total)
            .field("used", &self.budget.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TableCache {
    /// A cache over `tables` holding at most `budget` bytes, keeping batches through `keeper`.
    pub fn new(tables: TableStore, budget: usize, keeper: Arc<dyn BatchKeeper>) -> TableCache {
        TableCache {
            tables,
            registry: Arc::new(DefaultObjectStoreRegistry::new()),
            budget: Arc::new(Budget { total: budget, used: AtomicUsize::new(0) }),
            keeper,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The object stores the tables live in, for sessions' runtimes.
    pub fn registry(&self) -> Arc<dyn ObjectStoreRegistry> {
        Arc::clone(&self.registry) as Arc<dyn ObjectStoreRegistry>
    }

    /// The table storage (readiness checks ask it).
    pub fn tables(&self) -> &TableStore {
        &self.tables
    }

    /// Bytes the cached tables hold.
    pub fn bytes_held(&self) -> usize {
        self.budget.used.load(Ordering::Acquire)
    }

    /// The table of `record` at its committed version.
    pub async fn open(&self, record: &DatasetRecord) -> Result<Opened> {
        let uri = &record.table_uri;
        let version = record
            .current_version
            .ok_or_else(|| Error::Engine { message: format!("dataset {} has no committed version", record.spec.id) })?;
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            match entries.get(uri) {
                Some(entry) if entry.version == version => {
                    civlink_catalog::metrics::global().inc(TABLE_CACHE, &[("result", "hit")]);
                    Arc::clone(&entry.opened)
                }
                _ => {
                    civlink_catalog::metrics::global().inc(TABLE_CACHE, &[("result", "miss")]);
                    let opened = Arc::new(OnceCell::new());
                    let replaced = entries.insert(uri.clone(), Entry { version, opened: Arc::clone(&opened) });
                    if let Some(Opened::Memory(old)) = replaced.and_then(|e| e.opened.get().cloned()) {
                        self.budget.give_back(old.bytes.load(Ordering::Acquire));
                        self.keeper.release(&old.batches);
                    }
                    opened
                }
            }
        };
        let opened = cell.get_or_try_init(|| self.load(uri, version)).await?;
        Ok(opened.clone())
    }

    /// The table of `record` at `version`, one of its committed versions:
    /// the cached table when that is the current one; an earlier version is
    /// read from storage by each scan and never cached (time travel is rare,
    /// and must not push the current versions out of the cache).
    pub async fn open_version(&self, record: &DatasetRecord, version: i64) -> Result<Opened> {
        if record.current_version == Some(version) {
            return self.open(record).await;
        }
        let (provider, _) = self.storage_provider(&record.table_uri, version).await?;
        Ok(Opened::Storage(provider))
    }

    /// Delta's table provider of `uri` at `version`, its object store
    /// registered with the shared registry; with the state it was built in.
    async fn storage_provider(
        &self,
        uri: &str,
        version: i64,
    ) -> Result<(Arc<dyn TableProvider>, datafusion::execution::SessionState)> {
        let table = self.tables.open(uri, TimeTravel::Version(version)).await?;
        // Register the table's object store with the shared registry, through a
        // throwaway session over it: deltalake's supported way of doing so.
        let runtime = RuntimeEnvBuilder::new().with_object_store_registry(self.registry()).build_arc()?;
        let state = SessionStateBuilder::new().with_runtime_env(runtime).build();
        table
            .update_datafusion_session(&state)
            .map_err(|e| Error::Engine { message: format!("registering the object store of {uri}: {e}") })?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| Error::Engine { message: format!("building the table provider of {uri}: {e}") })?;
        Ok((provider, state))
    }

    async fn load(&self, uri: &str, version: i64) -> Result<Opened> {
        let (provider, state) = self.storage_provider(uri, version).await?;
        match self.in_memory(uri, version, &provider, &state).await {
            Some(cached) => Ok(Opened::Memory(cached)),
            None => Ok(Opened::Storage(provider)),
        }
    }

    /// The table decoded into memory, when it fits in what the cache has
    /// left: scans then skip Parquet decoding, which dominates a full scan.
    /// `None` when it is too large or cannot be read whole.
    async fn in_memory(
        &self,
        uri: &str,
        version: i64,
        provider: &Arc<dyn TableProvider>,
        state: &datafusion::execution::SessionState,
    ) -> Option<Arc<CachedTable>> {
        let room = self.budget.left();
        if room == 0 {
            return None;
        }
        let mut kept = Vec::new();
        let loaded = async {
            let plan = provider.scan(state, None, &[], None).await?;
            let partitions = plan.output_partitioning().partition_count();
            let task = state.task_ctx();
            let plain = crate::plain::plain_schema(&provider.schema());
            let mut bytes = 0usize;
            for partition in 0..partitions {
                let mut stream = plan.execute(partition, Arc::clone(&task))?;
                while let Some(batch) = futures::StreamExt::next(&mut stream).await {
                    let batch = crate::plain::to_plain(&batch?, &plain)?;
                    for (batch, size) in self.keeper.keep(&batch)? {
                        kept.push(batch);
                        bytes += size;
                        if bytes > room {
                            return Ok::<_, DataFusionError>(None);
                        }
                    }
                }
            }
            Ok(Some((bytes, plain)))
        };
        let outcome = loaded.await;
        let fits = match outcome {
            Ok(Some((bytes, schema))) if self.budget.try_take(bytes) => Some((bytes, schema)),
            Ok(_) => {
                tracing::debug!(table = uri, room, "not cached: larger than what the cache has left");
                None
            }
            Err(e) => {
                tracing::warn!(table = uri, error = %crate::redact::quoted_values(&e.to_string()), "not cached: reading the table failed");
                None
            }
        };
        let Some((bytes, schema)) = fits else {
            self.keeper.release(&kept);
            return None;
        };
        // Two partitions per core's worth of batches, dealt round-robin, so scans stay parallel.
        let lanes = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
        let mut partitions = vec![Vec::new(); lanes];
        for (i, batch) in kept.iter().enumerate() {
            partitions[i % lanes].push(batch.clone());
        }
        match MemTable::try_new(schema, partitions.clone()) {
            Ok(table) => {
                tracing::info!(table = uri, bytes, "table cached in memory");
                Some(Arc::new(CachedTable {
                    version,
                    table: Arc::new(table),
                    partitions,
                    batches: kept,
                    bytes: AtomicUsize::new(bytes),
                    budget: Arc::clone(&self.budget),
                    views: Mutex::new(HashMap::new()),
                }))
            }
            Err(e) => {
                tracing::debug!(table = uri, error = %e, "not cached");
                self.budget.give_back(bytes);
                self.keeper.release(&kept);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn the_plain_keeper_keeps_batches_whole() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
        let kept = PlainKeeper.keep(&batch).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0, batch);
        assert!(kept[0].1 >= 80);
    }
}
