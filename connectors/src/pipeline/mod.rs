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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use chrono::Utc;
use civlink_catalog::config::S3Config;
use civlink_catalog::model::{
    ColumnCompleteness, ColumnNormalisation, DatasetRecord, DatasetSpec, HeaderFound, QualityReport, RuleValidity,
    RunCounts, RunRecord, RunStatus, SheetHeader, SheetLayout, SkippedRow, WriteMode,
};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::{TableStore, TableWriter};
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Validator, Verdict};
use sha2::{Digest, Sha256};

mod deletions;
mod remote;
mod rows;

use crate::gates::{GateReport, RejectKind, RunFigures};
use crate::job::Job;
use crate::source::{SourceFile, list_files, open_source};
use remote::{DatabaseRead, source_identity};
pub use rows::quarantine_schema;
use rows::{KeySet, QuarantineBuilder, key_hash, raw_row, violations_json};

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
    /// What the delivery gates measured (None when skipped).
    pub gates: Option<GateReport>,
}

/// How to run a job.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Commit even when a delivery gate would hold the run (the caller has
    /// checked that its principal may, and audits the override).
    pub force: bool,
    /// The run's id (default: a new one). The scheduler names it before the
    /// run starts, so that the job's lease says which run it covers.
    pub run_id: Option<String>,
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
    run_with(job, catalog, progress, &RunOptions::default()).await
}

/// [`run`] with options: a forced run commits whatever the gates say (and
/// its report says which gates it overrode).
pub async fn run_with(
    job: &Job,
    catalog: &Catalog<'_>,
    progress: &dyn Progress,
    options: &RunOptions,
) -> Result<RunOutcome> {
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

    let run_id = options.run_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // A database changes without its job changing: its runs are never skipped as already ingested.
    let remote = job.spec.source.database.is_some() || job.spec.source.http.is_some();
    let database = remote.then(|| DatabaseRead {
        since: None,
        previous: None,
        cell: crate::source::database::CursorCell::default(),
    });
    let (files, fingerprint) = match &database {
        Some(_) => {
            // Runs and lineage name the location without anything secret in it.
            let uri = crate::source::database::shown_location(&job.spec.source.location);
            let file = SourceFile { uri, size: 0, modified: None, etag: None };
            (vec![file], format!("database:{run_id}"))
        }
        None => match list_files(&job.spec.source.location, &job.base_dir, catalog.s3).await {
            Ok(files) => {
                let fingerprint = fingerprint(&job.text, &standard_text, &files);
                (files, fingerprint)
            }
            Err(error) => {
                // Nothing to read (the export is missing, the store unreachable): still a run, recorded
                // as failed with its cause, so that a job's history shows it.
                let now = Utc::now();
                let record = RunRecord {
                    run_id: run_id.clone(),
                    dataset: spec.id.clone(),
                    job: job.spec.name.clone(),
                    mode: job.spec.mode,
                    status: RunStatus::Running,
                    started_at: now,
                    finished_at: None,
                    counts: RunCounts::default(),
                    data_version: dataset.current_version,
                    quarantine_version: dataset.quarantine_version,
                    fingerprint: format!("unlisted:{run_id}"),
                    error: None,
                };
                let error = Error::from(error);
                if catalog.store.start_run(&record).await.is_ok() {
                    let _ = catalog
                        .store
                        .finish_run(&run_id, RunStatus::Failed, Some(&error.to_string()), &RunCounts::default())
                        .await;
                }
                tracing::warn!(run_id = %run_id, dataset = %spec.id, %error, "no sources to read; run failed");
                return Err(error);
            }
        },
    };
    let cursor_column = match (&job.spec.source.database, &job.spec.source.http) {
        (Some(database), _) => database.cursor.clone(),
        (None, Some(http)) => http.cursor_field.clone(),
        (None, None) => None,
    };
    let database = match database {
        Some(mut read) => {
            read.previous = catalog.store.job_source_columns(&job.spec.name, &source_identity(job)).await?;
            Some(read)
        }
        None => None,
    };
    let database = match (database, &cursor_column) {
        (Some(mut read), Some(column)) => {
            // A stored cursor of another column (the job changed) does not apply.
            read.since = catalog
                .store
                .job_cursor(&job.spec.name)
                .await?
                .filter(|c| &c.column == column && c.source == source_identity(job))
                .map(|c| c.value);
            Some(read)
        }
        (read, _) => read,
    };
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
            gates: None,
        });
    }

    let base_version = dataset.current_version;
    // A database connection that drops mid-read is read again from the start: nothing of the dropped
    // read was committed, so the rows land once.
    let read_retries = job.spec.source.database.as_ref().map_or(0, |d| d.read_retries.unwrap_or(2).min(10));
    let mut database = database;
    let mut attempt = 0;
    let ingested = loop {
        let result =
            ingest(job, catalog, &validator, &dataset, &files, &run_id, progress, options, database.as_ref()).await;
        match result {
            Err(Error::Source(crate::source::Error::Database(lost)))
                if lost.is_connection_lost() && attempt < read_retries =>
            {
                attempt += 1;
                tracing::warn!(run_id = %run_id, dataset = %spec.id, attempt, error = %lost,
                    "the source's connection dropped mid-read; reading again from the start");
                tokio::time::sleep(std::time::Duration::from_millis(500 << (attempt - 1).min(5))).await;
                if let Some(read) = database.as_mut() {
                    read.cell = crate::source::database::CursorCell::default();
                }
            }
            other => break other,
        }
    };
    match ingested {
        Ok(Ingested { counts, data_version, quarantine_version, quality, gates, held }) => {
            record.finished_at = Some(Utc::now());
            record.counts = counts;
            record.data_version = data_version;
            record.quarantine_version = quarantine_version;
            if held {
                record.status = RunStatus::Held;
                let report = serde_json::to_string(&gates).map_err(|e| Error::Arrow { message: e.to_string() })?;
                let uris: Vec<String> = files.iter().map(|f| f.uri.clone()).collect();
                catalog.store.hold_run(&record, quality.as_ref(), base_version, &report, &uris).await?;
                tracing::warn!(run_id = %run_id, dataset = %spec.id, read = counts.read,
                    gates = %gates.failed().map(|g| g.to_string()).collect::<Vec<_>>().join("; "),
                    "run held by a delivery gate; dataset unchanged");
                return Ok(RunOutcome {
                    run: record,
                    quality,
                    skipped_because_of: None,
                    sources: files,
                    gates: Some(gates),
                });
            }
            record.status = RunStatus::Committed;
            let quality =
                quality.ok_or_else(|| Error::Arrow { message: "a committed run has a quality report".into() })?;
            let uris: Vec<String> = files.iter().map(|f| f.uri.clone()).collect();
            catalog.store.commit_run(&record, &quality, &uris).await?;
            civlink_catalog::metrics::count_ingested(&counts);
            remote::record_after_commit(
                job,
                catalog,
                &spec.id,
                &run_id,
                database.as_ref(),
                cursor_column.as_ref(),
                &quality,
            )
            .await;
            tracing::info!(run_id = %run_id, dataset = %spec.id, read = counts.read, written = counts.written,
                quarantined = counts.quarantined, duplicate = counts.duplicate, "run committed");
            Ok(RunOutcome {
                run: record,
                quality: Some(quality),
                skipped_because_of: None,
                sources: files,
                gates: Some(gates),
            })
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

/// What a run's read and write came to.
struct Ingested {
    counts: RunCounts,
    data_version: Option<i64>,
    quarantine_version: Option<i64>,
    /// None when the run stopped at a file's header.
    quality: Option<QualityReport>,
    gates: GateReport,
    /// A gate stopped it: the Delta versions (if any) are not the dataset's.
    held: bool,
}

#[allow(clippy::too_many_arguments)]
async fn ingest(
    job: &Job,
    catalog: &Catalog<'_>,
    validator: &Validator,
    dataset: &DatasetRecord,
    files: &[SourceFile],
    run_id: &str,
    progress: &dyn Progress,
    options: &RunOptions,
    database: Option<&DatabaseRead>,
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
    let result = ingest_files(
        job,
        catalog,
        validator,
        files,
        run_id,
        progress,
        &table_schema,
        &mut data,
        &mut quarantine,
        options.force,
        database,
    )
    .await;
    let read = match result {
        Ok(read) => read,
        Err(e) => {
            let _ = data.abort().await;
            let _ = quarantine.abort().await;
            return Err(e);
        }
    };
    let (counts, quality, mut gates, written_keys) = match read {
        FilesRead::StoppedAtHeader { gates } => {
            // Nothing of this run is kept: there is nothing to accept, only to run again.
            let _ = data.abort().await;
            let _ = quarantine.abort().await;
            return Ok(Ingested {
                counts: RunCounts::default(),
                data_version: None,
                quarantine_version: None,
                quality: None,
                gates,
                held: true,
            });
        }
        FilesRead::Done { counts, quality, gates, keys } => (counts, quality, gates, keys),
    };
    let mut quality = quality;
    // Rows deleted at a database source, marked in this same commit when the comparison is due.
    if let (Some(spec), Some(_)) = (job.spec.source.database.as_ref().and_then(|d| d.deletions.as_ref()), database)
        && job.spec.mode == WriteMode::Upsert
    {
        let now = Utc::now();
        let marked = match deletions::due(job, catalog, spec, now).await {
            Ok(true) => {
                deletions::mark(job, catalog, dataset, &primary_key, spec, &mut data, &written_keys).await.map(Some)
            }
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        match marked {
            Ok(check) => quality.source_deletions = check,
            Err(e) => {
                let _ = data.abort().await;
                let _ = quarantine.abort().await;
                return Err(e);
            }
        }
    }
    let current_rows = match (job.spec.mode, dataset.current_version) {
        (WriteMode::Overwrite, Some(version)) => {
            Some(catalog.tables.count(&dataset.table_uri, civlink_catalog::table::TimeTravel::Version(version)).await?)
        }
        _ => None,
    };
    let mut figures = gates.figures.take().unwrap_or_default();
    figures.current_rows = current_rows;
    figures.written = counts.written;
    gates.report.outcomes.extend(job.gates.evaluate(&figures));
    let mut report = gates.report;
    if !report.passed() && figures.rejected.iter().any(|(kind, _)| *kind == RejectKind::Encoding) {
        report.encoding_hint = crate::gates::encoding_hint(files, job.read_options().csv.encoding);
    }
    let held = !report.passed() && !options.force;
    // Quarantine first: a crash between the two commits leaves only orphans the next run rolls back.
    // A held run commits too, past the dataset's version: readers never see it, and
    // accepting it later moves the pointer to it.
    let quarantine_version = match quarantine.commit(run_id).await {
        Ok(v) => v,
        Err(e) => {
            let _ = data.abort().await;
            return Err(e.into());
        }
    };
    let data_version = data.commit(run_id).await?;
    Ok(Ingested {
        counts,
        data_version: Some(data_version),
        quarantine_version: Some(quarantine_version),
        quality: Some(*quality),
        gates: report,
        held,
    })
}

/// How reading the files ended.
enum FilesRead {
    /// Every file read.
    Done { counts: RunCounts, quality: Box<QualityReport>, gates: GateInputs, keys: Box<KeySet> },
    /// A file's header lacked the standard's required columns.
    StoppedAtHeader { gates: GateReport },
}

/// What the read gathered for the gates.
#[derive(Default)]
struct GateInputs {
    report: GateReport,
    figures: Option<RunFigures>,
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
    force: bool,
    database: Option<&DatabaseRead>,
) -> Result<FilesRead> {
    let standard = validator.standard();
    let standard_columns: BTreeSet<&str> = standard.properties.iter().map(|p| p.name.as_str()).collect();
    let required: Vec<&str> = standard.properties.iter().filter(|p| p.required).map(|p| p.name.as_str()).collect();
    let mut report = GateReport::default();
    let mut rejected: BTreeMap<RejectKind, u64> = BTreeMap::new();
    let mut unused: BTreeSet<String> = BTreeSet::new();
    let mut header_outcome: Option<crate::gates::GateOutcome> = None;
    let mut sheets: Vec<SheetLayout> = Vec::new();
    let mut counts = RunCounts::default();
    let mut tally = QualityTally { present: vec![0; standard.properties.len()], ..QualityTally::default() };
    let mut seen_keys = KeySet::new();
    let now = Utc::now();
    let mut q = QuarantineBuilder::new(run_id, now);
    let options = job.read_options();

    for file in files {
        progress.source_started(file);
        // A header in the wrong encoding: every row would be rejected; hold the run with the hint.
        let header_in_wrong_encoding =
            |encoding: crate::file::Encoding, mut report: GateReport, unused: BTreeSet<String>| {
                report.outcomes.push(crate::gates::GateOutcome {
                    gate: crate::gates::Gate::SourceReason { reason: RejectKind::Encoding },
                    figure: 1.0,
                    threshold: job.gates.max_source_reason,
                    passed: false,
                    detail: format!("{}: the header is not valid {}", file.uri, encoding.name()),
                });
                report.encoding_hint = crate::gates::encoding_hint(std::slice::from_ref(file), options.csv.encoding);
                report.unused_columns = unused.into_iter().collect();
                Ok(FilesRead::StoppedAtHeader { gates: report })
            };
        let opened = match (&job.spec.source.database, database) {
            (Some(spec), Some(read)) => crate::source::database::open(
                &job.spec.source.location,
                spec,
                &job.base_dir,
                read.since.as_deref(),
                options.batch_size,
                &read.cell,
                read.previous.as_deref(),
            )
            .await
            .map_err(crate::source::Error::from),
            (None, Some(read)) if job.spec.source.http.is_some() => {
                let spec =
                    job.spec.source.http.as_ref().ok_or_else(|| Error::Arrow { message: "no [source.http]".into() })?;
                crate::source::http::open(
                    &job.spec.source.location,
                    spec,
                    &job.base_dir,
                    read.since.as_deref(),
                    &options,
                    &read.cell,
                )
                .await
            }
            _ => open_source(file, job.spec.source.format, &options, catalog.s3).await,
        };
        let mut source = match opened {
            Ok(source) => source,
            Err(crate::source::Error::File(crate::file::Error::HeaderEncoding { encoding, .. })) if !force => {
                return header_in_wrong_encoding(encoding, report, unused);
            }
            Err(e) => return Err(e.into()),
        };
        let mut at_header = true;
        let mut current_sheet: Option<Arc<str>> = None;
        loop {
            let mut positioned = match source.next_batch().await {
                Ok(Some(positioned)) => positioned,
                Ok(None) => break,
                Err(crate::source::Error::File(crate::file::Error::HeaderEncoding { encoding, .. })) if !force => {
                    return header_in_wrong_encoding(encoding, report, unused);
                }
                Err(e) => return Err(e.into()),
            };
            // Each sheet of a workbook has its own header.
            let new_sheet = positioned.sheet != current_sheet;
            if new_sheet {
                current_sheet.clone_from(&positioned.sheet);
            }
            // Positions name the sheet: `file:///…/台账.xlsx#低保户`.
            let source_name = match &positioned.sheet {
                Some(sheet) => format!("{}#{sheet}", file.uri),
                None => file.uri.clone(),
            };
            if let Some(sheet) = &positioned.sheet {
                record_layout(
                    &mut sheets,
                    &file.uri,
                    sheet,
                    positioned.layout.take(),
                    std::mem::take(&mut positioned.skipped),
                );
            }
            if std::mem::take(&mut at_header) || new_sheet {
                // The header, before any row of this file counts: does it carry the standard's required columns?
                let mapped = job.mapping.apply(&positioned.batch.slice(0, 0))?;
                let missing: Vec<String> = required
                    .iter()
                    .filter(|c| mapped.schema().column_with_name(c).is_none())
                    .map(|c| (*c).to_owned())
                    .collect();
                let outcome = job.gates.required_columns(required.len() - missing.len(), required.len(), &missing);
                for field in positioned.batch.schema().fields() {
                    if !job.mapping.uses(field.name(), &standard_columns) {
                        unused.insert(field.name().clone());
                    }
                }
                if !outcome.passed && !force {
                    let mut outcome = outcome;
                    outcome.detail = format!("{source_name}: {}", outcome.detail);
                    report.outcomes.push(outcome);
                    report.unused_columns = unused.into_iter().collect();
                    return Ok(FilesRead::StoppedAtHeader { gates: report });
                }
                // The weakest file speaks for the run.
                if header_outcome.as_ref().is_none_or(|h| outcome.figure < h.figure) {
                    header_outcome = Some(outcome);
                }
            }
            let rows_here = positioned.batch.num_rows() as u64 + positioned.rejects.len() as u64;
            counts.read += rows_here;
            let indices = positioned.row_indices();
            for reject in &positioned.rejects {
                *rejected.entry(reject.kind).or_default() += 1;
                q.push(
                    "invalid",
                    &source_name,
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
                    &source_name,
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
    report.outcomes.extend(header_outcome);
    report.unused_columns = unused.into_iter().collect();
    let figures = RunFigures {
        read: counts.read,
        set_aside: counts.quarantined + counts.duplicate,
        rejected: rejected.into_iter().collect(),
        ..RunFigures::default()
    };
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
        unused_source_columns: report.unused_columns.clone(),
        source_drift: database.map(|read| read.cell.drift()).unwrap_or_default(),
        source_deletions: None,
        sheets,
        primary_key_uniqueness: if tally.keyed_rows == 0 {
            1.0
        } else {
            1.0 - counts.duplicate as f64 / tally.keyed_rows as f64
        },
        source_modified: files.iter().filter_map(|f| f.modified).max(),
        ingested_at: Utc::now(),
    };
    Ok(FilesRead::Done {
        counts,
        quality: Box::new(quality),
        gates: GateInputs { report, figures: Some(figures) },
        keys: Box::new(seen_keys),
    })
}

/// Adds a batch's header and skipped rows to its sheet's layout.
fn record_layout(
    sheets: &mut Vec<SheetLayout>,
    uri: &str,
    sheet: &str,
    header: Option<SheetHeader>,
    skipped: Vec<SkippedRow>,
) {
    let at = match sheets.iter().position(|l| l.source == uri && l.sheet == sheet) {
        Some(at) => at,
        None => {
            // The reader sends the header with a sheet's first batch; this default is never kept.
            let header = SheetHeader { rows: Vec::new(), found: HeaderFound::FirstRow };
            sheets.push(SheetLayout { source: uri.to_owned(), sheet: sheet.to_owned(), header, skipped: Vec::new() });
            sheets.len() - 1
        }
    };
    if let Some(header) = header {
        sheets[at].header = header;
    }
    sheets[at].skipped.extend(skipped);
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
