//! One ingestion run: sources → mapping → validation → Delta write, with
//! quarantine, duplicate detection, quality report and lineage, committed
//! all together or not at all.
//!
//! ## No row is lost
//! Every row read lands in exactly one place, and the run checks it before
//! committing: `read = written + quarantined + duplicate`.
//! - rows the reader could not split (ragged CSV lines, bad bytes) and rows
//!   that break the standard go to `<dataset>__quarantine` (kind `invalid`)
//!   with their raw source values, position, run id and every violation;
//! - a valid row whose primary key already appeared earlier in the run goes
//!   to quarantine too (kind `duplicate`), so nothing collapses silently;
//! - every other row is written to the dataset.
//!
//! ## Atomicity
//! The dataset and its quarantine are written as one Delta commit each, then
//! the catalog records the run, both versions, quality and lineage in one
//! database transaction. Readers go through the catalog's version pointers,
//! so a run killed at any point leaves nothing visible; the next run rolls
//! back orphan Delta commits before writing (see `TableStore::begin_write`).
//!
//! ## Idempotence
//! A run's fingerprint covers the job, the standard and each source file's
//! URI, size, modification time and ETag. Re-running a job whose fingerprint
//! already committed is recorded as `skipped` and changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use civlink_catalog::config::S3Config;
use civlink_catalog::model::{
    ColumnCompleteness, ColumnNormalisation, DatasetRecord, DatasetSpec, QualityReport, RuleValidity, RunCounts,
    RunRecord, RunStatus, WriteMode,
};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::{TableStore, TableWriter};
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Validator, Verdict};
use sha2::{Digest, Sha256};

use crate::job::Job;
use crate::source::{SourceFile, list_files, open_source};

/// Why a run failed. The dataset is left at its previous version in every case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job's standard could not be loaded or compiled.
    #[error("standard {standard}: {message}")]
    Standard {
        /// The standard named by the job.
        standard: String,
        /// Why.
        message: String,
    },
    /// The standard does not fit the dataset's registration.
    #[error("dataset {dataset}: {message}")]
    Dataset {
        /// The dataset.
        dataset: String,
        /// Why.
        message: String,
    },
    /// A source could not be listed, opened or read.
    #[error("source: {0}")]
    Source(#[from] crate::source::Error),
    /// Mapping a batch failed.
    #[error("mapping: {0}")]
    Mapping(#[from] crate::mapping::MappingError),
    /// Validation failed to run (not: rows were invalid).
    #[error("validation: {0}")]
    Validate(#[from] civlink_standards::validate::Error),
    /// The catalog's metadata store failed.
    #[error("catalog: {0}")]
    Store(#[from] civlink_catalog::store::Error),
    /// Writing a Delta table failed.
    #[error("table: {0}")]
    Table(#[from] civlink_catalog::table::Error),
    /// Assembling a batch failed.
    #[error("arrow: {message}")]
    Arrow {
        /// Arrow's message.
        message: String,
    },
    /// Rows were not all accounted for: a bug, and the run is refused.
    #[error(
        "conservation violated: read {read} != written {written} + quarantined {quarantined} + duplicate {duplicate}"
    )]
    Conservation {
        /// Rows read.
        read: u64,
        /// Rows written.
        written: u64,
        /// Rows quarantined.
        quarantined: u64,
        /// Duplicate rows.
        duplicate: u64,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn arrow_err(e: arrow::error::ArrowError) -> Error {
    Error::Arrow { message: e.to_string() }
}

/// Progress callbacks, so the CLI can draw a bar without the pipeline knowing about terminals.
pub trait Progress: Send + Sync {
    /// A source file is about to be read.
    fn source_started(&self, _file: &SourceFile) {}
    /// More rows were read (the running total).
    fn rows(&self, _read: u64) {}
}

/// No progress display.
pub struct Silent;

impl Progress for Silent {}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's record as committed (or skipped).
    pub run: RunRecord,
    /// Its quality report (None when skipped).
    pub quality: Option<QualityReport>,
    /// For a skipped run: the committed run it repeats.
    pub skipped_because_of: Option<String>,
    /// Source files read.
    pub sources: Vec<SourceFile>,
}

/// Where the catalog lives: its metadata store, table storage and S3 credentials for sources.
pub struct Catalog<'a> {
    /// Metadata.
    pub store: &'a MetadataStore,
    /// Delta tables.
    pub tables: &'a TableStore,
    /// Credentials for `s3://` sources.
    pub s3: Option<&'a S3Config>,
}

/// The Arrow schema of every quarantine table.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("source_uri", DataType::Utf8, false),
        Field::new("line", DataType::Int64, true),
        Field::new("row_index", DataType::Int64, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("violations", DataType::Utf8, false),
        Field::new("quarantined_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]))
}

/// Rows bound for quarantine, built up per batch.
struct QuarantineBuilder {
    run_id: String,
    at: i64,
    kind: StringBuilder,
    source: StringBuilder,
    line: Int64Builder,
    row_index: Int64Builder,
    raw: StringBuilder,
    violations: StringBuilder,
    rows: usize,
}

impl QuarantineBuilder {
    fn new(run_id: &str, at: DateTime<Utc>) -> QuarantineBuilder {
        QuarantineBuilder {
            run_id: run_id.to_owned(),
            at: at.timestamp_micros(),
            kind: StringBuilder::new(),
            source: StringBuilder::new(),
            line: Int64Builder::new(),
            row_index: Int64Builder::new(),
            raw: StringBuilder::new(),
            violations: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, kind: &str, source: &str, line: u64, row_index: u64, raw: &str, violations: &str) {
        self.kind.append_value(kind);
        self.source.append_value(source);
        self.line.append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.row_index.append_value(i64::try_from(row_index).unwrap_or(i64::MAX));
        self.raw.append_value(raw);
        self.violations.append_value(violations);
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        let mut run = StringBuilder::with_capacity(rows, rows * self.run_id.len());
        let mut at = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        for _ in 0..rows {
            run.append_value(&self.run_id);
            at.append_value(self.at);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(run.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.row_index.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.violations.finish()),
            Arc::new(at.finish()),
        ];
        RecordBatch::try_new(quarantine_schema(), columns).map(Some).map_err(arrow_err)
    }
}

/// Tallies for the quality report.
#[derive(Default)]
struct QualityTally {
    rows_checked: u64,
    present: Vec<u64>,
    rules: BTreeMap<(String, String), (u64, String)>,
    keyed_rows: u64,
    /// Per column with mapping steps: (as delivered, normalised), in first-seen order.
    normalised: Vec<ColumnNormalisation>,
}

impl QualityTally {
    fn add_normalised(&mut self, counts: &[crate::mapping::Normalised]) {
        for c in counts {
            match self.normalised.iter_mut().find(|n| n.column == c.column) {
                Some(n) => {
                    n.as_delivered += c.as_delivered;
                    n.normalised += c.normalised;
                }
                None => self.normalised.push(ColumnNormalisation {
                    column: c.column.clone(),
                    as_delivered: c.as_delivered,
                    normalised: c.normalised,
                }),
            }
        }
    }
}

/// Render one source row as a JSON object of its raw text values.
fn raw_row(batch: &RecordBatch, row: usize) -> String {
    let mut object = serde_json::Map::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = if column.is_null(row) {
            serde_json::Value::Null
        } else {
            match column.as_string_opt::<i32>() {
                Some(strings) => serde_json::Value::String(strings.value(row).to_owned()),
                None => serde_json::Value::String(
                    arrow::util::display::array_value_to_string(column, row).unwrap_or_default(),
                ),
            }
        };
        object.insert(field.name().clone(), value);
    }
    serde_json::Value::Object(object).to_string()
}

fn violations_json(items: &[(&str, &str, &str)]) -> String {
    let list: Vec<serde_json::Value> = items
        .iter()
        .map(|(column, keyword, message)| serde_json::json!({"column": column, "keyword": keyword, "message": message}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The primary-key hashes seen in a run, for run-level duplicate detection.
///
/// Memory is what bounds a 5 GB ingest: a key costs about 9 bytes here (a 64-bit
/// hash in a table kept at most 7/8 full), and the table is split into 256
/// partitions by the hash's top byte so that growing never holds two copies of
/// the whole table at once. Two different keys with the same 64-bit hash would
/// be reported as a duplicate (and kept in quarantine, not lost); with n keys
/// the chance is about n²/2^65 — 5·10⁻⁵ for 45 million rows.
struct KeySet {
    partitions: Vec<HashSet<u64, std::hash::BuildHasherDefault<IdentityHasher>>>,
}

impl KeySet {
    fn new() -> KeySet {
        KeySet { partitions: (0..256).map(|_| HashSet::default()).collect() }
    }

    /// Insert; false when the hash was already there.
    fn insert(&mut self, hash: u64) -> bool {
        let partition = (hash >> 56) as usize;
        self.partitions[partition].insert(hash)
    }
}

/// The keys are already well-mixed hashes: hashing them again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hash of a row's primary key, or None when part of the key is NULL.
fn key_hash(columns: &[&ArrayRef], row: usize) -> Option<u64> {
    let mut hasher = std::hash::DefaultHasher::new();
    for column in columns {
        if column.is_null(row) {
            return None;
        }
        match column.as_string_opt::<i32>() {
            Some(strings) => strings.value(row).hash(&mut hasher),
            None => arrow::util::display::array_value_to_string(column, row).unwrap_or_default().hash(&mut hasher),
        }
        // A separator keeps ("ab","c") and ("a","bc") apart.
        0xFFu8.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The fingerprint of a run: job, standard and the identity of every source file.
pub fn fingerprint(job_text: &str, standard: &str, files: &[SourceFile]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(job_text.as_bytes());
    hasher.update([0]);
    hasher.update(standard.as_bytes());
    for file in files {
        hasher.update([0]);
        hasher.update(file.uri.as_bytes());
        hasher.update(file.size.to_le_bytes());
        if let Some(modified) = file.modified {
            hasher.update(modified.timestamp_micros().to_le_bytes());
        }
        if let Some(etag) = &file.etag {
            hasher.update(etag.as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// The dataset's registration from the job and its standard.
fn dataset_spec(job: &Job, standard: &Standard) -> DatasetSpec {
    let info = &job.spec.dataset_info;
    DatasetSpec {
        id: job.spec.dataset.clone(),
        title: info.title.clone().unwrap_or_else(|| standard.title.clone()),
        owner: info.owner.clone().unwrap_or_default(),
        description: info.description.clone().or_else(|| standard.description.clone()).unwrap_or_default(),
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        classification: info
            .classification
            .unwrap_or_else(|| standard.properties.iter().map(|p| p.sensitivity).max().unwrap_or_default()),
        sharing: info.sharing,
        update_cycle: info.update_cycle,
        division_column: standard.division_column.clone(),
        primary_key: standard.primary_key.clone(),
    }
}

/// Run one ingestion job to completion.
pub async fn run(job: &Job, catalog: &Catalog<'_>, progress: &dyn Progress) -> Result<RunOutcome> {
    let standard_text = job
        .standard_document()
        .map_err(|e| Error::Standard { standard: job.spec.standard.clone(), message: e.to_string() })?;
    let standard = Standard::from_json_str(&standard_text)
        .map_err(|e| Error::Standard { standard: job.spec.standard.clone(), message: e.to_string() })?;
    // Through the one registry: a new version must be backward compatible
    // with the registered ones and may not weaken any column's protection.
    let publisher = format!("ingest job {}", job.spec.name);
    let publish = civlink_catalog::registry::Publish {
        document: &standard_text,
        mode: civlink_standards::compat::Mode::Backward,
        publisher: &publisher,
        role: civlink_catalog::policy::Role::DepartmentService,
        allow_weaker_protection: false,
        reason: None,
        purpose: None,
    };
    civlink_catalog::registry::StandardsRegistry::new(catalog.store.clone())
        .publish(publish)
        .await
        .map_err(|e| Error::Standard { standard: job.spec.standard.clone(), message: e.to_string() })?;
    let spec = dataset_spec(job, &standard);
    let dataset = catalog
        .store
        .upsert_dataset(&spec, &catalog.tables.table_uri(&spec.id), &catalog.tables.quarantine_uri(&spec.id))
        .await?;
    // Keys are checked over the whole run below (duplicates, not invalid rows), so not per batch.
    let validator = Validator::compile(standard)?.without_batch_key_check();

    let files = list_files(&job.spec.source.location, &job.base_dir, catalog.s3).await?;
    let fingerprint = fingerprint(&job.text, &standard_text, &files);
    let run_id = uuid::Uuid::new_v4().to_string();
    let started_at = Utc::now();
    let mut record = RunRecord {
        run_id: run_id.clone(),
        dataset: spec.id.clone(),
        job: job.spec.name.clone(),
        mode: job.spec.mode,
        status: RunStatus::Running,
        started_at,
        finished_at: None,
        counts: RunCounts::default(),
        data_version: dataset.current_version,
        quarantine_version: dataset.quarantine_version,
        fingerprint: fingerprint.clone(),
        error: None,
    };
    catalog.store.start_run(&record).await?;

    if let Some(previous) = catalog.store.committed_run_with_fingerprint(&spec.id, &fingerprint).await? {
        tracing::info!(run_id = %run_id, previous = %previous.run_id, dataset = %spec.id, "sources already ingested; skipping");
        catalog.store.finish_run(&run_id, RunStatus::Skipped, None, &RunCounts::default()).await?;
        record.status = RunStatus::Skipped;
        record.finished_at = Some(Utc::now());
        return Ok(RunOutcome {
            run: record,
            quality: None,
            skipped_because_of: Some(previous.run_id),
            sources: files,
        });
    }

    match ingest(job, catalog, &validator, &dataset, &files, &run_id, progress).await {
        Ok((counts, data_version, quarantine_version, quality)) => {
            record.status = RunStatus::Committed;
            record.finished_at = Some(Utc::now());
            record.counts = counts;
            record.data_version = data_version;
            record.quarantine_version = quarantine_version;
            let uris: Vec<String> = files.iter().map(|f| f.uri.clone()).collect();
            catalog.store.commit_run(&record, &quality, &uris).await?;
            tracing::info!(run_id = %run_id, dataset = %spec.id, read = counts.read, written = counts.written,
                quarantined = counts.quarantined, duplicate = counts.duplicate, "run committed");
            Ok(RunOutcome { run: record, quality: Some(quality), skipped_because_of: None, sources: files })
        }
        Err(error) => {
            tracing::warn!(run_id = %run_id, dataset = %spec.id, %error, "run failed; dataset unchanged");
            // Best effort: the run is already invisible to readers; recording the failure must not mask it.
            let _ = catalog
                .store
                .finish_run(&run_id, RunStatus::Failed, Some(&error.to_string()), &RunCounts::default())
                .await;
            Err(error)
        }
    }
}

type Ingested = (RunCounts, Option<i64>, Option<i64>, QualityReport);

async fn ingest(
    job: &Job,
    catalog: &Catalog<'_>,
    validator: &Validator,
    dataset: &DatasetRecord,
    files: &[SourceFile],
    run_id: &str,
    progress: &dyn Progress,
) -> Result<Ingested> {
    let table_schema = nullable(validator.schema());
    let primary_key = validator.standard().primary_key.clone();
    let mut data = catalog
        .tables
        .begin_write(
            &dataset.table_uri,
            Arc::clone(&table_schema),
            job.spec.mode,
            &primary_key,
            dataset.current_version,
        )
        .await?;
    let mut quarantine = match catalog
        .tables
        .begin_write(&dataset.quarantine_uri, quarantine_schema(), WriteMode::Append, &[], dataset.quarantine_version)
        .await
    {
        Ok(writer) => writer,
        Err(e) => {
            let _ = data.abort().await;
            return Err(e.into());
        }
    };
    let result =
        ingest_files(job, catalog, validator, files, run_id, progress, &table_schema, &mut data, &mut quarantine).await;
    match result {
        Ok((counts, quality)) => {
            // Quarantine first: a crash between the two commits leaves only orphans the next run rolls back.
            let quarantine_version = match quarantine.commit(run_id).await {
                Ok(v) => v,
                Err(e) => {
                    let _ = data.abort().await;
                    return Err(e.into());
                }
            };
            let data_version = data.commit(run_id).await?;
            Ok((counts, Some(data_version), Some(quarantine_version), quality))
        }
        Err(e) => {
            let _ = data.abort().await;
            let _ = quarantine.abort().await;
            Err(e)
        }
    }
}

fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[allow(clippy::too_many_arguments)]
async fn ingest_files(
    job: &Job,
    catalog: &Catalog<'_>,
    validator: &Validator,
    files: &[SourceFile],
    run_id: &str,
    progress: &dyn Progress,
    table_schema: &SchemaRef,
    data: &mut TableWriter,
    quarantine: &mut TableWriter,
) -> Result<(RunCounts, QualityReport)> {
    let standard = validator.standard();
    let mut counts = RunCounts::default();
    let mut tally = QualityTally { present: vec![0; standard.properties.len()], ..QualityTally::default() };
    let mut seen_keys = KeySet::new();
    let now = Utc::now();
    let mut q = QuarantineBuilder::new(run_id, now);
    let options = job.read_options();

    for file in files {
        progress.source_started(file);
        let mut source = open_source(file, job.spec.source.format, &options, catalog.s3).await?;
        while let Some(positioned) = source.next_batch().await? {
            let rows_here = positioned.batch.num_rows() as u64 + positioned.rejects.len() as u64;
            counts.read += rows_here;
            let indices = positioned.row_indices();
            for reject in &positioned.rejects {
                q.push(
                    "invalid",
                    &file.uri,
                    reject.line,
                    reject.row_index,
                    &serde_json::json!({ "_raw": reject.raw }).to_string(),
                    &violations_json(&[("", "source", &reject.reason)]),
                );
                counts.quarantined += 1;
                *tally_rule(&mut tally, "", "source", &reject.reason) += 1;
            }
            if positioned.batch.num_rows() > 0 {
                let mapped = job.mapping.apply_delivered(&positioned.batch, positioned.delivered.as_ref())?;
                tally.add_normalised(&mapped.normalised);
                let verdict = validator.validate_delivered(&mapped.batch, mapped.delivered.as_ref())?;
                let keep = classify(
                    &verdict,
                    &positioned.batch,
                    &file.uri,
                    &positioned.lines,
                    &indices,
                    &primary_key_columns(&verdict, &standard.primary_key),
                    &mut seen_keys,
                    &mut q,
                    &mut counts,
                    &mut tally,
                );
                let valid = filter_record_batch(&verdict.batch, &keep).map_err(arrow_err)?;
                if valid.num_rows() > 0 {
                    let cast =
                        RecordBatch::try_new(Arc::clone(table_schema), valid.columns().to_vec()).map_err(arrow_err)?;
                    data.write(&cast).await?;
                }
            }
            if let Some(batch) = q.finish()? {
                quarantine.write(&batch).await?;
            }
            progress.rows(counts.read);
        }
    }
    if !counts.conserved() {
        return Err(Error::Conservation {
            read: counts.read,
            written: counts.written,
            quarantined: counts.quarantined,
            duplicate: counts.duplicate,
        });
    }
    let quality = QualityReport {
        run_id: run_id.to_owned(),
        counts,
        completeness: standard
            .properties
            .iter()
            .zip(&tally.present)
            .map(|(p, present)| ColumnCompleteness {
                column: p.name.clone(),
                present: *present,
                rows: tally.rows_checked,
            })
            .collect(),
        rules: {
            let mut rules: Vec<RuleValidity> = tally
                .rules
                .into_iter()
                .map(|((column, keyword), (failed, example))| RuleValidity {
                    column,
                    keyword,
                    failed,
                    rows: counts.read,
                    example,
                })
                .collect();
            rules.sort_by(|a, b| b.failed.cmp(&a.failed).then_with(|| a.column.cmp(&b.column)));
            rules
        },
        normalised: std::mem::take(&mut tally.normalised),
        primary_key_uniqueness: if tally.keyed_rows == 0 {
            1.0
        } else {
            1.0 - counts.duplicate as f64 / tally.keyed_rows as f64
        },
        source_modified: files.iter().filter_map(|f| f.modified).max(),
        ingested_at: Utc::now(),
    };
    Ok((counts, quality))
}

fn tally_rule<'t>(tally: &'t mut QualityTally, column: &str, keyword: &str, example: &str) -> &'t mut u64 {
    &mut tally.rules.entry((column.to_owned(), keyword.to_owned())).or_insert_with(|| (0, example.to_owned())).0
}

fn primary_key_columns<'v>(verdict: &'v Verdict, key: &[String]) -> Vec<&'v ArrayRef> {
    key.iter().filter_map(|c| verdict.batch.column_by_name(c)).collect()
}

/// Sort each row of a validated batch into written, quarantined or duplicate.
/// Returns the mask of rows to write.
#[allow(clippy::too_many_arguments)]
fn classify(
    verdict: &Verdict,
    source: &RecordBatch,
    uri: &str,
    lines: &[u64],
    indices: &[u64],
    key_columns: &[&ArrayRef],
    seen_keys: &mut KeySet,
    q: &mut QuarantineBuilder,
    counts: &mut RunCounts,
    tally: &mut QualityTally,
) -> BooleanArray {
    let rows = verdict.batch.num_rows();
    tally.rows_checked += rows as u64;
    for (i, column) in verdict.batch.columns().iter().enumerate() {
        if let Some(present) = tally.present.get_mut(i) {
            *present += (column.len() - column.null_count()) as u64;
        }
    }
    // Violations per row, without the within-batch key check: duplicates are decided over the whole run below.
    let mut by_row: HashMap<usize, Vec<&civlink_standards::validate::Violation>> = HashMap::new();
    for v in verdict.violations.iter().filter(|v| v.keyword != "x-civlink-primary-key") {
        by_row.entry(v.row).or_default().push(v);
    }
    let mut keep = Vec::with_capacity(rows);
    for row in 0..rows {
        let line = lines.get(row).copied().unwrap_or_default();
        let index = indices.get(row).copied().unwrap_or_default();
        if let Some(violations) = by_row.get(&row) {
            let items: Vec<(&str, &str, &str)> =
                violations.iter().map(|v| (v.column.as_str(), v.keyword.as_str(), v.message.as_str())).collect();
            for v in violations {
                *tally_rule(tally, &v.column, &v.keyword, &v.message) += 1;
            }
            q.push("invalid", uri, line, index, &raw_row(source, row), &violations_json(&items));
            counts.quarantined += 1;
            keep.push(false);
            continue;
        }
        if !key_columns.is_empty()
            && let Some(hash) = key_hash(key_columns, row)
        {
            tally.keyed_rows += 1;
            if !seen_keys.insert(hash) {
                let message = "primary key already seen earlier in this run";
                q.push(
                    "duplicate",
                    uri,
                    line,
                    index,
                    &raw_row(source, row),
                    &violations_json(&[("", "x-civlink-primary-key", message)]),
                );
                *tally_rule(tally, "", "x-civlink-primary-key", message) += 1;
                counts.duplicate += 1;
                keep.push(false);
                continue;
            }
        }
        counts.written += 1;
        keep.push(true);
    }
    BooleanArray::from(keep)
}
