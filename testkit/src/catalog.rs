//! Temporary catalogs, and datasets committed as a run would commit them.

use arrow::array::RecordBatch;
use chrono::Utc;
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetSpec, QualityReport, RunCounts, RunRecord, RunStatus, WriteMode};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_standards::standard::Standard;

/// A local catalog (SQLite and Delta tables) in a temporary directory,
/// removed on drop.
#[derive(Debug)]
pub struct TempCatalog {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// Its metadata store.
    pub store: MetadataStore,
    /// Its tables.
    pub tables: TableStore,
}

impl TempCatalog {
    /// A fresh, empty one.
    pub async fn new() -> TempCatalog {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = CatalogConfig::local(dir.path()).expect("local catalog config");
        let store = MetadataStore::connect(&config.metadata_url).await.expect("metadata store");
        let tables = TableStore::new(&config).expect("table store");
        TempCatalog { dir, store, tables }
    }

    /// Register a standard document.
    pub async fn register_standard(&self, document: &str) -> Standard {
        let standard = Standard::from_json_str(document).expect("standard");
        self.store.register_standard(&standard.id, &standard.version, document).await.expect("register standard");
        standard
    }

    /// Register the shipped standard `id`.
    pub async fn register_shipped(&self, id: &str) -> Standard {
        let (_, document) = civlink_standards::shipped::SHIPPED
            .iter()
            .find(|(shipped, _)| *shipped == id)
            .unwrap_or_else(|| panic!("no shipped standard {id}"));
        self.register_standard(document).await
    }

    /// Commit `batch` as a new version of `spec`'s dataset.
    pub async fn commit(&self, spec: &DatasetSpec, batch: &RecordBatch) -> i64 {
        commit_dataset(&self.store, &self.tables, spec, batch).await
    }
}

/// Write `batch` as the committed version of the dataset `spec`, like a run
/// does (one Delta commit, a committed run with its quality report); returns
/// the version.
pub async fn commit_dataset(
    store: &MetadataStore,
    tables: &TableStore,
    spec: &DatasetSpec,
    batch: &RecordBatch,
) -> i64 {
    let dataset = store
        .upsert_dataset(spec, &tables.table_uri(&spec.id), &tables.quarantine_uri(&spec.id))
        .await
        .expect("register the dataset");
    let mut writer = tables
        .begin_write(&dataset.table_uri, batch.schema(), WriteMode::Append, &spec.primary_key, None)
        .await
        .expect("begin the write");
    writer.write(batch).await.expect("write the batch");
    let run_id = uuid::Uuid::new_v4().to_string();
    let version = writer.commit(&run_id).await.expect("commit");
    let n = batch.num_rows() as u64;
    let counts = RunCounts { read: n, written: n, quarantined: 0, duplicate: 0 };
    let mut run = RunRecord {
        run_id: run_id.clone(),
        dataset: spec.id.clone(),
        job: "test".into(),
        mode: WriteMode::Append,
        status: RunStatus::Running,
        started_at: Utc::now(),
        finished_at: None,
        counts: RunCounts::default(),
        data_version: None,
        quarantine_version: None,
        fingerprint: "test".into(),
        error: None,
    };
    store.start_run(&run).await.expect("start the run");
    run.status = RunStatus::Committed;
    run.finished_at = Some(Utc::now());
    run.counts = counts;
    run.data_version = Some(version);
    let quality = QualityReport {
        run_id,
        counts,
        completeness: vec![],
        rules: vec![],
        primary_key_uniqueness: 1.0,
        normalised: Vec::new(),
        unused_source_columns: Vec::new(),
        source_drift: Vec::new(),
        source_deletions: None,
        sheets: Vec::new(),
        source_modified: None,
        ingested_at: Utc::now(),
    };
    store.commit_run(&run, &quality, &[]).await.expect("commit the run");
    version
}
