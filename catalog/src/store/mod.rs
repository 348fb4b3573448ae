//! The metadata store: departments, standards, datasets, runs, versions,
//! quality reports, lineage and the deployment's mask key
//! ([`MetadataStore::mask_key`]), in SQLite (the default, a file in the data
//! directory) or PostgreSQL (deployments).
//!
//! Both backends are reached through sqlx's `Any` driver and share ONE set of
//! migrations (`catalog/migrations`, embedded at compile time), written in
//! portable SQL: TEXT and BIGINT columns, application-generated ids,
//! timestamps as fixed-width RFC 3339 UTC text and JSON as text. Queries use
//! `$1, $2, …` placeholders, which both backends accept.
//!
//! Ordering by timestamps happens in Rust after parsing rather than in SQL, so
//! that a PostgreSQL database with a locale collation orders exactly like
//! SQLite does.

mod audit_search;
mod checks;
mod codec;
mod cursors;
mod findings;
mod holds;
mod leases;
mod policy;
mod settings;
mod standards;

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor, Row};

use crate::model::{
    DatasetId, DatasetRecord, DatasetSpec, Department, LineageEdge, QualityReport, RunCounts, RunRecord, RunStatus,
    VersionRecord, WriteMode,
};
use codec::{
    count_from_db, count_to_db, parse_sensitivity, parse_timestamp, redact_url, scrub, sensitivity_code, timestamp,
};

/// The embedded migrations (`catalog/migrations/*.sql`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Pragmas every SQLite connection gets: write-ahead logging so readers never
/// block the writer, enforced foreign keys, and a wait (instead of an
/// immediate "database is locked") when another connection holds the write
/// lock. `synchronous = NORMAL` is durable enough under WAL.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA synchronous = NORMAL",
];

pub use crate::error::StoreError as Error;

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The database behind a [`MetadataStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (`sqlite:` URLs).
    Sqlite,
    /// PostgreSQL (`postgres://` or `postgresql://` URLs).
    Postgres,
}

impl Backend {
    /// The backend a URL names, if any.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The catalog's metadata store. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pool: AnyPool,
    backend: Backend,
}

/// The columns of `datasets`, in the order [`dataset_from_row`] reads them.
macro_rules! dataset_columns {
    () => {
        "id, title, owner, description, standard_id, standard_version, classification, sharing, update_cycle, \
         division_column, primary_key, table_uri, quarantine_uri, current_version, quarantine_version, created_at, \
         updated_at"
    };
}

// After the column macros, which it uses.
mod snapshot;

pub use audit_search::{AuditFilter, MAX_AUDIT_PAGE};
pub use cursors::JobCursor;
pub use holds::{Accepted, Hold};
pub use leases::{JobLease, LeaseOutcome};
pub use snapshot::{PolicySnapshot, ReadableDataset};
pub use standards::StandardVersion;

/// The columns of `runs`, in the order [`run_from_row`] reads them.
macro_rules! run_columns {
    () => {
        "run_id, dataset, job, mode, status, started_at, finished_at, rows_read, rows_written, rows_quarantined, \
         rows_duplicate, data_version, quarantine_version, fingerprint, error"
    };
}

/// A `map_err` for statements: the operation and the database's message.
fn db_err(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::Query { operation, message: e.to_string() }
}

/// Whether a statement failed on a foreign key.
fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}

/// Whether a statement failed on a primary key or unique constraint.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

impl MetadataStore {
    /// Connect to `url` and bring the schema up to date.
    ///
    /// `url` is `sqlite://PATH[?mode=…]` (the parent directory is created,
    /// and the database file too unless the URL gives a `mode`) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Migrations already applied
    /// are skipped, so connecting again is harmless.
    pub async fn connect(url: &str) -> Result<MetadataStore> {
        let connect_error =
            |message: String| Error::Connect { url_redacted: redact_url(url), message: scrub(&message, url) };
        let backend = Backend::of_url(url)
            .ok_or_else(|| connect_error("the metadata URL must start with sqlite: or postgres://".to_owned()))?;
        sqlx::any::install_default_drivers();

        let (url_to_open, options) = match backend {
            Backend::Sqlite => {
                let (url_to_open, in_memory) = prepare_sqlite(url).await.map_err(connect_error)?;
                let options = if in_memory {
                    // The Any driver parses the URL for every connection, and each parse of
                    // `:memory:` is a new, empty database: keep exactly one connection, forever.
                    AnyPoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
                } else {
                    AnyPoolOptions::new()
                };
                let options = options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            (&mut *conn).execute(pragma).await?;
                        }
                        Ok(())
                    })
                });
                (url_to_open, options)
            }
            Backend::Postgres => (url.to_owned(), AnyPoolOptions::new()),
        };
        let pool = options.connect(&url_to_open).await.map_err(|e| connect_error(e.to_string()))?;
        tracing::debug!(url = %redact_url(url), %backend, "connected to the metadata store");

        MIGRATOR.run(&pool).await.map_err(|e| Error::Migrate { message: scrub(&e.to_string(), url) })?;
        Ok(MetadataStore { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The departments with their Chinese names, in [`Department::ALL`] order.
    pub async fn departments(&self) -> Result<Vec<(Department, String)>> {
        let rows = sqlx::query("SELECT code, name_zh FROM departments")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list departments"))?;
        let mut departments = rows
            .iter()
            .map(|row| {
                let code: String = get(row, "code", || "departments.code".into())?;
                let department = Department::from_str(&code)
                    .map_err(|e| Error::Corrupt { what: "departments.code".into(), message: e.to_string() })?;
                Ok((department, get(row, "name_zh", || format!("departments.name_zh of {code}"))?))
            })
            .collect::<Result<Vec<_>>>()?;
        departments.sort_by_key(|(d, _)| *d);
        Ok(departments)
    }

    /// Register a dataset, or update the governance attributes of a registered
    /// one (title, owner, description, standard, classification, sharing,
    /// update cycle, division column, primary key).
    ///
    /// The table locations, versions and creation time of a registered dataset
    /// are kept: its versions live at the locations it was created with.
    pub async fn upsert_dataset(
        &self,
        spec: &DatasetSpec,
        table_uri: &str,
        quarantine_uri: &str,
    ) -> Result<DatasetRecord> {
        let primary_key = serde_json::to_string(&spec.primary_key)
            .map_err(|e| Error::Invalid { what: "primary key", message: e.to_string() })?;
        let id = spec.id.to_string();
        let mut tx = self.pool.begin().await.map_err(db_err("register dataset"))?;
        sqlx::query(
            "INSERT INTO datasets (id, department, name, title, owner, description, standard_id, standard_version, \
             classification, sharing, update_cycle, division_column, primary_key, table_uri, quarantine_uri, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, owner = excluded.owner, \
             description = excluded.description, standard_id = excluded.standard_id, \
             standard_version = excluded.standard_version, classification = excluded.classification, \
             sharing = excluded.sharing, update_cycle = excluded.update_cycle, \
             division_column = excluded.division_column, primary_key = excluded.primary_key",
        )
        .bind(&id)
        .bind(spec.id.department.code())
        .bind(&spec.id.name)
        .bind(&spec.title)
        .bind(&spec.owner)
        .bind(&spec.description)
        .bind(&spec.standard_id)
        .bind(&spec.standard_version)
        .bind(sensitivity_code(spec.classification))
        .bind(spec.sharing.code())
        .bind(spec.update_cycle.code())
        .bind(spec.division_column.as_deref())
        .bind(primary_key)
        .bind(table_uri)
        .bind(quarantine_uri)
        .bind(timestamp(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(db_err("register dataset"))?;
        announce_change(&mut tx).await?;
        tx.commit().await.map_err(db_err("register dataset"))?;
        let record = self.require_dataset(&spec.id).await?;
        if record.table_uri != table_uri || record.quarantine_uri != quarantine_uri {
            tracing::warn!(
                dataset = %id,
                registered = %record.table_uri,
                given = %table_uri,
                "dataset already registered at another location; keeping the registered one"
            );
        }
        Ok(record)
    }

    /// A registered dataset.
    pub async fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetRecord>> {
        let row = sqlx::query(concat!("SELECT ", dataset_columns!(), " FROM datasets WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read dataset"))?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    /// A registered dataset, or [`Error::UnknownDataset`].
    pub async fn require_dataset(&self, id: &DatasetId) -> Result<DatasetRecord> {
        self.dataset(id).await?.ok_or_else(|| Error::UnknownDataset { dataset: id.to_string() })
    }

    /// Every registered dataset, ordered by id (byte order of `department.name`).
    pub async fn datasets(&self) -> Result<Vec<DatasetRecord>> {
        let rows = sqlx::query(concat!("SELECT ", dataset_columns!(), " FROM datasets"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list datasets"))?;
        let mut datasets = rows.iter().map(dataset_from_row).collect::<Result<Vec<_>>>()?;
        // In Rust, not SQL: a PostgreSQL locale collation would order "." and "_" differently.
        datasets.sort_by_cached_key(|d| d.spec.id.to_string());
        Ok(datasets)
    }

    /// Record that a run started: it is stored as [`RunStatus::Running`] with
    /// its id, dataset, job, mode, start time, counts and fingerprint (its
    /// status, finish time, versions and error are not taken from `run`).
    pub async fn start_run(&self, run: &RunRecord) -> Result<()> {
        let counts = DbCounts::of(&run.counts)?;
        let inserted = sqlx::query(
            "INSERT INTO runs (run_id, dataset, job, mode, status, started_at, rows_read, rows_written, \
             rows_quarantined, rows_duplicate, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&run.run_id)
        .bind(run.dataset.to_string())
        .bind(&run.job)
        .bind(run.mode.code())
        .bind(RunStatus::Running.code())
        .bind(timestamp(run.started_at))
        .bind(counts.read)
        .bind(counts.written)
        .bind(counts.quarantined)
        .bind(counts.duplicate)
        .bind(&run.fingerprint)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(Error::UnknownDataset { dataset: run.dataset.to_string() }),
            Err(e) if is_unique_violation(&e) => Err(Error::Invalid {
                what: "run",
                message: format!("a run with id {} was already started", run.run_id),
            }),
            Err(e) => Err(db_err("start run")(e)),
        }
    }

    /// Commit a running run, in ONE database transaction: the run becomes
    /// [`RunStatus::Committed`] with its counts, versions and fingerprint; the
    /// dataset's current and quarantine versions move to the run's (where the
    /// run has one) and its `updated_at` to the commit time; the data version
    /// is recorded (when `run.data_version` is `Some`), with one lineage edge
    /// per distinct source; and the quality report is stored. Either all of it
    /// becomes visible or none of it.
    ///
    /// The commit time is `run.finished_at`, or now. Lineage edges need a
    /// dataset version, so a run without `data_version` records none.
    pub async fn commit_run(&self, run: &RunRecord, quality: &QualityReport, sources: &[String]) -> Result<()> {
        if quality.run_id != run.run_id {
            return Err(Error::Invalid {
                what: "quality report",
                message: format!("the report is for run {}, not run {}", quality.run_id, run.run_id),
            });
        }
        if !quality.primary_key_uniqueness.is_finite() {
            // JSON has no NaN or infinity: the report would not read back.
            return Err(Error::Invalid {
                what: "quality report",
                message: format!("primary key uniqueness {} is not a number", quality.primary_key_uniqueness),
            });
        }
        let report = quality_json(quality)?;
        let counts = DbCounts::of(&run.counts)?;
        let rows_written = counts.written;
        let committed_at = timestamp(run.finished_at.unwrap_or_else(Utc::now));
        let dataset = run.dataset.to_string();

        let mut tx = self.pool.begin().await.map_err(db_err("begin commit"))?;
        let updated = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2, rows_read = $3, rows_written = $4, rows_quarantined = $5, \
             rows_duplicate = $6, data_version = $7, quarantine_version = $8, fingerprint = $9, error = NULL \
             WHERE run_id = $10 AND dataset = $11 AND status = $12",
        )
        .bind(RunStatus::Committed.code())
        .bind(&committed_at)
        .bind(counts.read)
        .bind(counts.written)
        .bind(counts.quarantined)
        .bind(counts.duplicate)
        .bind(run.data_version)
        .bind(run.quarantine_version)
        .bind(&run.fingerprint)
        .bind(&run.run_id)
        .bind(&dataset)
        .bind(RunStatus::Running.code())
        .execute(&mut *tx)
        .await
        .map_err(db_err("commit run"))?;
        if updated.rows_affected() == 0 {
            return Err(explain_not_running(&mut tx, &run.run_id, Some(&run.dataset)).await);
        }

        publish_version(&mut tx, run, rows_written, &committed_at, sources).await?;

        store_quality(&mut tx, &run.run_id, &report).await?;

        tx.commit().await.map_err(db_err("commit run: commit the transaction"))
    }

    /// Finish a running run without committing data: `status` is
    /// [`RunStatus::Failed`] (with the error) or [`RunStatus::Skipped`].
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
        counts: &RunCounts,
    ) -> Result<()> {
        if !matches!(status, RunStatus::Failed | RunStatus::Skipped) {
            return Err(Error::Invalid {
                what: "run status",
                message: format!("a run is finished as failed or skipped, not {} (commit_run commits)", status.code()),
            });
        }
        let counts = DbCounts::of(counts)?;
        let mut tx = self.pool.begin().await.map_err(db_err("begin finishing run"))?;
        let updated = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2, error = $3, rows_read = $4, rows_written = $5, \
             rows_quarantined = $6, rows_duplicate = $7 WHERE run_id = $8 AND status = $9",
        )
        .bind(status.code())
        .bind(timestamp(Utc::now()))
        .bind(error)
        .bind(counts.read)
        .bind(counts.written)
        .bind(counts.quarantined)
        .bind(counts.duplicate)
        .bind(run_id)
        .bind(RunStatus::Running.code())
        .execute(&mut *tx)
        .await
        .map_err(db_err("finish run"))?;
        if updated.rows_affected() == 0 {
            return Err(explain_not_running(&mut tx, run_id, None).await);
        }
        tx.commit().await.map_err(db_err("finish run: commit the transaction"))
    }

    /// A run.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read run"))?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The runs of a dataset, newest first (by start time, then run id).
    pub async fn runs(&self, dataset: &DatasetId) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE dataset = $1"))
            .bind(dataset.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list runs"))?;
        let mut runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        runs.sort_by(|a, b| (b.started_at, &b.run_id).cmp(&(a.started_at, &a.run_id)));
        Ok(runs)
    }

    /// The latest committed run of `dataset` with this fingerprint: the
    /// sources were already ingested, a re-run can be skipped.
    pub async fn committed_run_with_fingerprint(
        &self,
        dataset: &DatasetId,
        fingerprint: &str,
    ) -> Result<Option<RunRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE dataset = $1 AND fingerprint = $2 AND status = $3"
        ))
        .bind(dataset.to_string())
        .bind(fingerprint)
        .bind(RunStatus::Committed.code())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("find run by fingerprint"))?;
        let runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        Ok(runs.into_iter().max_by(|a, b| (a.finished_at, &a.run_id).cmp(&(b.finished_at, &b.run_id))))
    }

    /// The committed versions of a dataset, oldest first.
    pub async fn versions(&self, dataset: &DatasetId) -> Result<Vec<VersionRecord>> {
        let rows = sqlx::query(
            "SELECT version, run_id, mode, rows_written, committed_at FROM dataset_versions WHERE dataset = $1 \
             ORDER BY version",
        )
        .bind(dataset.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list versions"))?;
        rows.iter()
            .map(|row| {
                let version: i64 = get(row, "version", || format!("dataset_versions.version of {dataset}"))?;
                let what = |column: &str| format!("dataset_versions.{column} of {dataset} version {version}");
                let mode: String = get(row, "mode", || what("mode"))?;
                Ok(VersionRecord {
                    version,
                    run_id: get(row, "run_id", || what("run_id"))?,
                    mode: WriteMode::from_str(&mode)
                        .map_err(|e| Error::Corrupt { what: what("mode"), message: e.to_string() })?,
                    rows_written: count_from_db(
                        || what("rows_written"),
                        get(row, "rows_written", || what("rows_written"))?,
                    )?,
                    committed_at: parse_timestamp(
                        || what("committed_at"),
                        &get::<String>(row, "committed_at", || what("committed_at"))?,
                    )?,
                })
            })
            .collect()
    }

    /// The quality report of a committed run.
    pub async fn quality(&self, run_id: &str) -> Result<Option<QualityReport>> {
        let row = sqlx::query("SELECT report FROM quality_reports WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read quality report"))?;
        row.map(|row| parse_report(&row, run_id)).transpose()
    }

    /// The quality report of the dataset's most recently committed run (a
    /// held run's report counts once the run is accepted).
    pub async fn latest_quality(&self, dataset: &DatasetId) -> Result<Option<QualityReport>> {
        // Only the run ids and commit times: reports can be large.
        let rows = sqlx::query(
            "SELECT r.run_id, r.finished_at FROM runs r JOIN quality_reports q ON q.run_id = r.run_id \
             WHERE r.dataset = $1 AND r.status = $2",
        )
        .bind(dataset.to_string())
        // A held run's report describes data nobody reads (until it is accepted).
        .bind(RunStatus::Committed.code())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("find the latest quality report"))?;
        let mut latest: Option<(DateTime<Utc>, String)> = None;
        for row in &rows {
            let run_id: String = get(row, "run_id", || "runs.run_id".into())?;
            let what = || format!("runs.finished_at of run {run_id}");
            let Some(finished_at) = get::<Option<String>>(row, "finished_at", what)? else {
                continue;
            };
            let candidate = (parse_timestamp(what, &finished_at)?, run_id);
            if latest.as_ref().is_none_or(|l| candidate > *l) {
                latest = Some(candidate);
            }
        }
        match latest {
            Some((_, run_id)) => self.quality(&run_id).await,
            None => Ok(None),
        }
    }

    /// The lineage of a dataset: one edge per source of each committed
    /// version, by version and then in the order the run read its sources.
    pub async fn lineage(&self, dataset: &DatasetId) -> Result<Vec<LineageEdge>> {
        let rows =
            sqlx::query("SELECT source_uri, run_id, version FROM lineage WHERE dataset = $1 ORDER BY version, ordinal")
                .bind(dataset.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err("read lineage"))?;
        rows.iter()
            .map(|row| {
                let what = |column: &str| format!("lineage.{column} of {dataset}");
                Ok(LineageEdge {
                    source_uri: get(row, "source_uri", || what("source_uri"))?,
                    run_id: get(row, "run_id", || what("run_id"))?,
                    dataset: dataset.clone(),
                    version: get(row, "version", || what("version"))?,
                })
            })
            .collect()
    }

    /// Close every connection (waits for those in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Run counts as BIGINTs.
struct DbCounts {
    read: i64,
    written: i64,
    quarantined: i64,
    duplicate: i64,
}

impl DbCounts {
    fn of(counts: &RunCounts) -> Result<DbCounts> {
        Ok(DbCounts {
            read: count_to_db("rows read", counts.read)?,
            written: count_to_db("rows written", counts.written)?,
            quarantined: count_to_db("rows quarantined", counts.quarantined)?,
            duplicate: count_to_db("duplicate rows", counts.duplicate)?,
        })
    }
}

/// Why a run could not be moved out of `running` (inside the transaction
/// that tried): it does not exist, it belongs to another dataset, or it
/// already finished.
async fn explain_not_running(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    dataset: Option<&DatasetId>,
) -> Error {
    let row = match sqlx::query("SELECT dataset, status FROM runs WHERE run_id = $1")
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await
    {
        Ok(row) => row,
        Err(e) => return db_err("read run")(e),
    };
    let Some(row) = row else {
        return Error::UnknownRun { run_id: run_id.to_owned() };
    };
    let what = |column: &str| format!("runs.{column} of run {run_id}");
    let stored_dataset = match get::<String>(&row, "dataset", || what("dataset")) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if let Some(dataset) = dataset
        && stored_dataset != dataset.to_string()
    {
        return Error::Invalid {
            what: "run",
            message: format!("run {run_id} belongs to dataset {stored_dataset}, not {dataset}"),
        };
    }
    match get::<String>(&row, "status", || what("status")).and_then(|s| {
        RunStatus::from_str(&s).map_err(|e| Error::Corrupt { what: what("status"), message: e.to_string() })
    }) {
        Ok(status) => Error::RunNotRunning { run_id: run_id.to_owned(), status },
        Err(e) => e,
    }
}

/// A column of a row, or [`Error::Corrupt`] naming it.
fn get<T>(row: &AnyRow, column: &str, what: impl FnOnce() -> String) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(column).map_err(|e| Error::Corrupt { what: what(), message: e.to_string() })
}

/// A `datasets` row (columns of [`dataset_columns!`]).
fn dataset_from_row(row: &AnyRow) -> Result<DatasetRecord> {
    let id_text: String = get(row, "id", || "datasets.id".into())?;
    let what = |column: &str| format!("datasets.{column} of {id_text}");
    let corrupt = |column: &str, message: String| Error::Corrupt { what: what(column), message };
    let text = |column: &str| get::<String>(row, column, || what(column));
    let id = DatasetId::from_str(&id_text).map_err(|e| corrupt("id", e.to_string()))?;
    let classification = text("classification")?;
    let primary_key = text("primary_key")?;
    let created_at = text("created_at")?;
    let updated_at: Option<String> = get(row, "updated_at", || what("updated_at"))?;
    let spec = DatasetSpec {
        id,
        title: text("title")?,
        owner: text("owner")?,
        description: text("description")?,
        standard_id: text("standard_id")?,
        standard_version: text("standard_version")?,
        classification: parse_sensitivity(&classification)
            .ok_or_else(|| corrupt("classification", format!("unknown classification \"{classification}\"")))?,
        sharing: text("sharing")?.parse().map_err(|e: crate::model::ParseError| corrupt("sharing", e.to_string()))?,
        update_cycle: text("update_cycle")?
            .parse()
            .map_err(|e: crate::model::ParseError| corrupt("update_cycle", e.to_string()))?,
        division_column: get(row, "division_column", || what("division_column"))?,
        primary_key: serde_json::from_str(&primary_key).map_err(|e| corrupt("primary_key", e.to_string()))?,
    };
    Ok(DatasetRecord {
        spec,
        table_uri: text("table_uri")?,
        quarantine_uri: text("quarantine_uri")?,
        current_version: get(row, "current_version", || what("current_version"))?,
        quarantine_version: get(row, "quarantine_version", || what("quarantine_version"))?,
        created_at: parse_timestamp(|| what("created_at"), &created_at)?,
        updated_at: updated_at.map(|t| parse_timestamp(|| what("updated_at"), &t)).transpose()?,
    })
}

/// A `runs` row (columns of [`run_columns!`]).
fn run_from_row(row: &AnyRow) -> Result<RunRecord> {
    let run_id: String = get(row, "run_id", || "runs.run_id".into())?;
    let what = |column: &str| format!("runs.{column} of run {run_id}");
    let corrupt = |column: &str, message: String| Error::Corrupt { what: what(column), message };
    let text = |column: &str| get::<String>(row, column, || what(column));
    let count = |column: &str| count_from_db(|| what(column), get(row, column, || what(column))?);
    let started_at = text("started_at")?;
    let finished_at: Option<String> = get(row, "finished_at", || what("finished_at"))?;
    Ok(RunRecord {
        dataset: DatasetId::from_str(&text("dataset")?).map_err(|e| corrupt("dataset", e.to_string()))?,
        job: text("job")?,
        mode: WriteMode::from_str(&text("mode")?).map_err(|e| corrupt("mode", e.to_string()))?,
        status: RunStatus::from_str(&text("status")?).map_err(|e| corrupt("status", e.to_string()))?,
        started_at: parse_timestamp(|| what("started_at"), &started_at)?,
        finished_at: finished_at.map(|t| parse_timestamp(|| what("finished_at"), &t)).transpose()?,
        counts: RunCounts {
            read: count("rows_read")?,
            written: count("rows_written")?,
            quarantined: count("rows_quarantined")?,
            duplicate: count("rows_duplicate")?,
        },
        data_version: get(row, "data_version", || what("data_version"))?,
        quarantine_version: get(row, "quarantine_version", || what("quarantine_version"))?,
        fingerprint: text("fingerprint")?,
        error: get(row, "error", || what("error"))?,
        run_id,
    })
}

/// A stored quality report.
fn parse_report(row: &AnyRow, run_id: &str) -> Result<QualityReport> {
    let what = || format!("quality_reports.report of run {run_id}");
    let report: String = get(row, "report", what)?;
    serde_json::from_str(&report).map_err(|e| Error::Corrupt { what: what(), message: e.to_string() })
}

/// Make a SQLite URL ready to open: create the database file's parent
/// directory, and ask for the file to be created (`mode=rwc`) when the URL
/// does not choose a mode. In-memory databases are left alone.
///
/// Returns the URL to open and whether the database is in memory.
async fn prepare_sqlite(url: &str) -> Result<(String, bool), String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (database, params) = match rest.split_once('?') {
        Some((database, params)) => (database, Some(params)),
        None => (rest, None),
    };
    let mode = params.and_then(|p| {
        url::form_urlencoded::parse(p.as_bytes()).find(|(k, _)| k == "mode").map(|(_, v)| v.into_owned())
    });
    if database == ":memory:" || mode.as_deref() == Some("memory") {
        return Ok((url.to_owned(), true));
    }
    if database.is_empty() {
        return Err("the SQLite URL names no database file".to_owned());
    }
    // sqlx's own parser, so that the directory is the one sqlx will open (percent-decoding included).
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create the directory {}: {e}", parent.display()))?;
    }
    let url = match (mode, params) {
        (Some(_), _) => url.to_owned(),
        (None, Some(params)) if !params.is_empty() => format!("{url}&mode=rwc"),
        (None, Some(_)) => format!("{url}mode=rwc"),
        (None, None) => format!("{url}?mode=rwc"),
    };
    Ok((url, false))
}

/// A quality report as stored.
pub(super) fn quality_json(quality: &QualityReport) -> Result<String> {
    serde_json::to_string(quality).map_err(|e| Error::Invalid { what: "quality report", message: e.to_string() })
}

/// Store a run's quality report (JSON), inside the transaction recording the run.
pub(super) async fn store_quality(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_id: &str, report: &str) -> Result<()> {
    sqlx::query("INSERT INTO quality_reports (run_id, report) VALUES ($1, $2)")
        .bind(run_id)
        .bind(report)
        .execute(&mut **tx)
        .await
        .map_err(db_err("store the quality report"))?;
    Ok(())
}

/// Make a run's versions the dataset's current ones, inside the commit's
/// transaction: the dataset's pointers, the version record and its lineage
/// (see [`MetadataStore::commit_run`]).
pub(super) async fn publish_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: &RunRecord,
    rows_written: i64,
    committed_at: &str,
    sources: &[String],
) -> Result<()> {
    let dataset = run.dataset.to_string();
    let updated = sqlx::query(
        "UPDATE datasets SET current_version = COALESCE($1, current_version), \
         quarantine_version = COALESCE($2, quarantine_version), updated_at = $3 WHERE id = $4",
    )
    .bind(run.data_version)
    .bind(run.quarantine_version)
    .bind(committed_at)
    .bind(&dataset)
    .execute(&mut **tx)
    .await
    .map_err(db_err("commit run: move the dataset's versions"))?;
    if updated.rows_affected() == 0 {
        return Err(Error::UnknownDataset { dataset });
    }
    // Readers see the new version from the next request on.
    announce_change(tx).await?;

    if let Some(version) = run.data_version {
        sqlx::query(
            "INSERT INTO dataset_versions (dataset, version, run_id, mode, rows_written, committed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&dataset)
        .bind(version)
        .bind(&run.run_id)
        .bind(run.mode.code())
        .bind(rows_written)
        .bind(committed_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err("commit run: record the dataset version"))?;

        let mut seen = HashSet::new();
        let distinct = sources.iter().filter(|s| seen.insert(s.as_str()));
        for (ordinal, source) in (0_i64..).zip(distinct) {
            sqlx::query(
                "INSERT INTO lineage (dataset, version, run_id, source_uri, ordinal) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&dataset)
            .bind(version)
            .bind(&run.run_id)
            .bind(source)
            .bind(ordinal)
            .execute(&mut **tx)
            .await
            .map_err(db_err("commit run: record lineage"))?;
        }
    }
    Ok(())
}

/// Move the catalog's change counter, inside the transaction of the change it announces.
pub(super) async fn announce_change(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), Error> {
    sqlx::query("UPDATE catalog_epoch SET epoch = epoch + 1 WHERE id = 1")
        .execute(conn)
        .await
        .map_err(db_err("move the catalog's change counter"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_follow_the_url_scheme() {
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("sqlite:///a/b.db?mode=rwc"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("postgresql://u@h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("mysql://u@h/db"), None);
        assert_eq!(Backend::of_url(""), None);
    }

    #[tokio::test]
    async fn sqlite_urls_get_a_directory_and_a_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/catalog.db");
        let url = format!("sqlite://{}", file.display());
        assert_eq!(prepare_sqlite(&url).await.unwrap(), (format!("{url}?mode=rwc"), false));
        assert!(dir.path().join("a/b").is_dir());
        let with_mode = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite(&with_mode).await.unwrap(), (with_mode, false));
        let with_other = format!("{url}?cache=private");
        assert_eq!(prepare_sqlite(&with_other).await.unwrap(), (format!("{with_other}&mode=rwc"), false));
        let empty_query = format!("{url}?");
        assert_eq!(prepare_sqlite(&empty_query).await.unwrap(), (format!("{url}?mode=rwc"), false));
        assert_eq!(prepare_sqlite("sqlite::memory:").await.unwrap(), ("sqlite::memory:".to_owned(), true));
        assert_eq!(prepare_sqlite("sqlite://?mode=memory").await.unwrap(), ("sqlite://?mode=memory".to_owned(), true));
        assert!(prepare_sqlite("sqlite://").await.is_err());
    }

    #[tokio::test]
    async fn unsupported_urls_fail_without_leaking_passwords() {
        let err = MetadataStore::connect("mysql://root:hunter22@localhost/civlink").await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(!err.to_string().contains("hunter22"), "{err}");
    }

    #[tokio::test]
    async fn an_in_memory_store_migrates_and_answers() {
        let store = MetadataStore::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        let departments = store.departments().await.unwrap();
        assert_eq!(departments.len(), 6);
        assert_eq!(departments[0], (Department::Minzheng, "民政".to_owned()));
        assert!(store.datasets().await.unwrap().is_empty());
        assert!(store.run("nope").await.unwrap().is_none());
        let err = store.finish_run("nope", RunStatus::Failed, Some("x"), &RunCounts::default()).await.unwrap_err();
        assert_eq!(err, Error::UnknownRun { run_id: "nope".into() });
        let err = store.finish_run("nope", RunStatus::Committed, None, &RunCounts::default()).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "run status", .. }), "{err}");
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_connections_get_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let store = MetadataStore::connect(&url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&store.pool).await.unwrap();
        assert_eq!(fk, 1);
        store.close().await;
    }
}
