//! Delta Lake tables of the datasets, on a local file system or S3-compatible
//! object storage.
//!
//! Every dataset `department.name` lives at `<root>/<department>/<name>` and its
//! quarantine at `<root>/<department>/<name>__quarantine`, where `<root>` is the
//! configured storage URL (`file:///…/tables/` by default, or `s3://bucket/prefix`).
//!
//! A run writes through a [`TableWriter`]: rows stream to parquet files in
//! bounded chunks, and [`TableWriter::commit`] publishes all of them in ONE Delta
//! commit whose commit info carries the run id (key [`RUN_ID_KEY`]). Before a
//! writer starts, commits the catalog never recorded (left by a crashed run)
//! are rolled back, so the new commit is based on what readers see.
//!
//! Tables use plain Delta protocol 1/2 (no deletion vectors, no column
//! mapping), so any Delta reader can open them. Old log entries are never
//! cleaned up by our commits, so every version the catalog recorded stays
//! readable by time travel.
//!
//! S3 goes through `object_store`'s own `AmazonS3` client (path-style requests,
//! conditional put with `If-None-Match` for the commit files), registered with
//! deltalake as the `s3://` factory, instead of deltalake's AWS-SDK backend.

mod log;
mod s3;
mod writer;

use std::collections::HashMap;
use std::fmt;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use deltalake::delta_datafusion::create_session;
use deltalake::{DeltaTable, DeltaTableBuilder, ObjectStore};
use serde::Serialize;
use url::Url;

use crate::config::CatalogConfig;
use crate::model::{DatasetId, WriteMode};

pub use writer::TableWriter;

/// Commit-info key holding the id of the run that made a commit.
pub const RUN_ID_KEY: &str = "civlink.run_id";
/// Commit-info key holding the write mode of a run's commit.
pub const MODE_KEY: &str = "civlink.mode";
/// Commit-info key holding the number of rows a run wrote.
pub const ROWS_KEY: &str = "civlink.rows";
/// Commit-info key marking a commit that rolled back orphaned commits.
pub const ROLLBACK_KEY: &str = "civlink.rollback";

/// A table-storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a usable table or storage location.
    #[error("\"{uri}\" is not a usable table location: {reason}")]
    InvalidUri {
        /// The location given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `s3://` storage without resolved S3 settings.
    #[error("storage URL \"{url}\" is s3:// but no S3 settings (endpoint, credentials) were given")]
    MissingS3Config {
        /// The storage URL.
        url: String,
    },
    /// deltalake refused or failed an operation.
    #[error("Delta Lake {operation} on {uri} failed: {message}")]
    Delta {
        /// The table.
        uri: String,
        /// What was being done.
        operation: &'static str,
        /// deltalake's message.
        message: String,
    },
    /// The object store failed.
    #[error("storage {operation} on {uri} failed: {message}")]
    ObjectStore {
        /// The table.
        uri: String,
        /// What was being done.
        operation: &'static str,
        /// The store's message.
        message: String,
    },
    /// DataFusion failed while reading, counting or merging.
    #[error("query ({operation}) on {uri} failed: {message}")]
    Query {
        /// The table.
        uri: String,
        /// What was being done.
        operation: &'static str,
        /// DataFusion's message.
        message: String,
    },
    /// The rows do not fit the table's schema, or the schema cannot be stored in Delta.
    #[error("schema problem on {uri}: {message}")]
    Schema {
        /// The table.
        uri: String,
        /// What does not fit.
        message: String,
    },
    /// An upsert without a usable primary key.
    #[error("upsert into {uri} needs primary-key columns that exist in the schema; missing: {}", missing.join(", "))]
    MissingPrimaryKey {
        /// The table.
        uri: String,
        /// Key columns not in the schema (empty names when no key was given at all).
        missing: Vec<String>,
    },
    /// An upsert row with a NULL key column (it could never match, so re-runs would duplicate it).
    #[error("upsert into {uri}: primary-key column \"{column}\" has {nulls} NULL value(s)")]
    NullPrimaryKey {
        /// The table.
        uri: String,
        /// The key column.
        column: String,
        /// NULLs in the batch.
        nulls: usize,
    },
    /// No Delta table at the location.
    #[error("no Delta table at {uri}")]
    TableNotFound {
        /// The table.
        uri: String,
    },
    /// Time travel to a version the log does not have.
    #[error("table {uri} has no version {version} (latest is {latest})")]
    VersionNotFound {
        /// The table.
        uri: String,
        /// The version asked for.
        version: i64,
        /// The latest version.
        latest: i64,
    },
    /// Time travel to before the first commit.
    #[error("table {uri} has no commit at or before {timestamp}")]
    NoVersionAtTimestamp {
        /// The table.
        uri: String,
        /// The time asked for.
        timestamp: DateTime<Utc>,
    },
    /// The catalog records a version the Delta log does not reach: someone removed commits.
    #[error(
        "the catalog records version {expected} of {uri} but the Delta log ends at {}; refusing to write",
        head.map_or_else(|| "no version (no table)".to_owned(), |h| h.to_string())
    )]
    CatalogAhead {
        /// The table.
        uri: String,
        /// The version the catalog records.
        expected: i64,
        /// The last version in the log.
        head: Option<i64>,
    },
    /// A write failed part-way; the writer holds an incomplete set of rows.
    #[error("the writer for {uri} failed earlier ({message}); it can only be aborted")]
    WriterFailed {
        /// The table.
        uri: String,
        /// The first failure.
        message: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// deltalake reports both its table errors and its kernel errors; both become [`Error::Delta`].
pub(crate) fn delta_err<'a, E: fmt::Display>(uri: &'a str, operation: &'static str) -> impl FnOnce(E) -> Error + 'a {
    move |e| Error::Delta { uri: uri.to_owned(), operation, message: e.to_string() }
}

pub(crate) fn store_err<'a>(uri: &'a str, operation: &'static str) -> impl FnOnce(object_store::Error) -> Error + 'a {
    move |e| Error::ObjectStore { uri: uri.to_owned(), operation, message: e.to_string() }
}

pub(crate) fn query_err<'a>(
    uri: &'a str,
    operation: &'static str,
) -> impl FnOnce(datafusion::error::DataFusionError) -> Error + 'a {
    move |e| Error::Query { uri: uri.to_owned(), operation, message: e.to_string() }
}

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeTravel {
    /// The newest version in the Delta log.
    #[default]
    Latest,
    /// Exactly this version.
    Version(i64),
    /// The newest version committed at or before this time (by the commit's own timestamp).
    Timestamp(DateTime<Utc>),
}

/// One commit in a table's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfoSummary {
    /// Delta version.
    pub version: i64,
    /// When it was committed (commit info timestamp; the log file's time when absent).
    pub timestamp: DateTime<Utc>,
    /// Delta operation name (`WRITE`, `MERGE`, `CREATE TABLE`, `RESTORE`, …; `UNKNOWN` when absent).
    pub operation: String,
    /// The run that made it ([`RUN_ID_KEY`]); `None` for rollbacks and foreign commits.
    pub run_id: Option<String>,
}

/// When a [`TableWriter`] writes its buffered rows out as a parquet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushThreshold {
    /// Encoded bytes buffered since the last flush.
    pub bytes: usize,
    /// Rows buffered since the last flush.
    pub rows: usize,
}

impl Default for FlushThreshold {
    /// 64 MiB or one million rows, whichever comes first.
    fn default() -> Self {
        FlushThreshold { bytes: 64 * 1024 * 1024, rows: 1_000_000 }
    }
}

/// Delta tables under one storage root.
#[derive(Clone)]
pub struct TableStore {
    /// Storage root, always ending in `/`.
    root: Url,
    /// deltalake storage options (the S3 client settings for `s3://`).
    options: HashMap<String, String>,
    flush: FlushThreshold,
}

impl fmt::Debug for TableStore {
    // Hand-written so the S3 secret never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableStore")
            .field("root", &self.root.as_str())
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("flush", &self.flush)
            .finish()
    }
}

impl TableStore {
    /// Tables under `config.storage_url` (`file://` or `s3://` with `config.s3`).
    pub fn new(config: &CatalogConfig) -> Result<TableStore> {
        let mut root = config.storage_url.clone();
        let options = match root.scheme() {
            "file" => {
                root.to_file_path().map_err(|()| Error::InvalidUri {
                    uri: root.to_string(),
                    reason: "not a local absolute path".into(),
                })?;
                HashMap::new()
            }
            "s3" => {
                if root.host_str().is_none_or(str::is_empty) {
                    return Err(Error::InvalidUri {
                        uri: root.to_string(),
                        reason: "an s3:// URL needs a bucket".into(),
                    });
                }
                let s3 = config.s3.as_ref().ok_or_else(|| Error::MissingS3Config { url: root.to_string() })?;
                s3::storage_options(s3)
            }
            other => {
                return Err(Error::InvalidUri {
                    uri: root.to_string(),
                    reason: format!("scheme \"{other}\" is not supported (file://, s3://)"),
                });
            }
        };
        if !root.path().ends_with('/') {
            let path = format!("{}/", root.path());
            root.set_path(&path);
        }
        s3::register();
        Ok(TableStore { root, options, flush: FlushThreshold::default() })
    }

    /// The same store with another flush threshold (tests use tiny ones to force many files).
    pub fn with_flush_threshold(mut self, flush: FlushThreshold) -> TableStore {
        self.flush = flush;
        self
    }

    /// The storage root, ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Location of a dataset's table: `<root>/<department>/<name>`.
    pub fn table_uri(&self, dataset: &DatasetId) -> String {
        format!("{}{}/{}", self.root, dataset.department.code(), dataset.name)
    }

    /// Location of a dataset's quarantine table: `<root>/<department>/<name>__quarantine`.
    pub fn quarantine_uri(&self, dataset: &DatasetId) -> String {
        format!("{}{}/{}", self.root, dataset.department.code(), dataset.quarantine_name())
    }

    /// Start writing a run's rows into the table at `uri`.
    ///
    /// `expected_version` is the version the catalog records as current (`None`: the
    /// catalog knows no version, so the table must read as empty). Commits in the
    /// Delta log beyond it were left by a crashed run and are rolled back first: a
    /// `RESTORE` to `expected_version`, or for `None` one commit removing every file
    /// (and taking this run's schema). If the log ends before `expected_version`,
    /// the write is refused ([`Error::CatalogAhead`]).
    ///
    /// Every field is stored nullable. Appends and upserts need the table's
    /// columns (same names and types, any order); an overwrite may change the schema.
    /// Upserts need `primary_key` columns present in `schema`.
    pub async fn begin_write(
        &self,
        uri: &str,
        schema: SchemaRef,
        mode: WriteMode,
        primary_key: &[String],
        expected_version: Option<i64>,
    ) -> Result<TableWriter> {
        writer::begin(self, uri, schema, mode, primary_key, expected_version).await
    }

    /// The newest version in the table's Delta log; `None` when there is no table.
    pub async fn head_version(&self, uri: &str) -> Result<Option<i64>> {
        let url = self.parse_uri(uri)?;
        let table = self.unloaded(uri, &url)?;
        Ok(log::list(uri, table.object_store().as_ref()).await?.head())
    }

    /// The table at a version, loaded, for reading or registering with DataFusion
    /// (`table.table_provider()`; call `table.update_datafusion_session(&state)` first
    /// so the session can reach the table's object store).
    pub async fn open(&self, uri: &str, at: TimeTravel) -> Result<DeltaTable> {
        let url = self.parse_uri(uri)?;
        let mut table = self.unloaded(uri, &url)?;
        let store = table.object_store();
        let listing = log::list(uri, store.as_ref()).await?;
        let latest = listing.head().ok_or_else(|| Error::TableNotFound { uri: uri.to_owned() })?;
        let version = match at {
            TimeTravel::Latest => latest,
            TimeTravel::Version(version) => {
                if !(0..=latest).contains(&version) {
                    return Err(Error::VersionNotFound { uri: uri.to_owned(), version, latest });
                }
                version
            }
            TimeTravel::Timestamp(timestamp) => log::history(uri, &store, &listing)
                .await?
                .iter()
                .filter(|c| c.timestamp <= timestamp)
                .map(|c| c.version)
                .max()
                .ok_or_else(|| Error::NoVersionAtTimestamp { uri: uri.to_owned(), timestamp })?,
        };
        table.load_version(to_delta_version(version)).await.map_err(delta_err(uri, "load"))?;
        Ok(table)
    }

    /// All rows of the table at a version, in the table's schema.
    pub async fn read(&self, uri: &str, at: TimeTravel) -> Result<Vec<RecordBatch>> {
        let table = self.open(uri, at).await?;
        let schema = table.snapshot().map_err(delta_err(uri, "scan"))?.snapshot().arrow_schema();
        let (_, stream) = table.scan_table().await.map_err(delta_err(uri, "scan"))?;
        let batches = datafusion::physical_plan::common::collect(stream).await.map_err(query_err(uri, "scan"))?;
        // The scan hands strings out as views (`Utf8View`); callers get what was stored.
        batches.iter().map(|batch| writer::conform(uri, batch, &schema)).collect()
    }

    /// The number of rows of the table at a version.
    pub async fn count(&self, uri: &str, at: TimeTravel) -> Result<u64> {
        let table = self.open(uri, at).await?;
        let ctx = create_session().into_inner();
        table.update_datafusion_session(&ctx.state()).map_err(delta_err(uri, "count"))?;
        let provider = table.table_provider().await.map_err(query_err(uri, "count"))?;
        let rows = ctx
            .read_table(provider)
            .map_err(query_err(uri, "count"))?
            .count()
            .await
            .map_err(query_err(uri, "count"))?;
        Ok(rows as u64)
    }

    /// Every commit still in the log, oldest first.
    pub async fn history(&self, uri: &str) -> Result<Vec<CommitInfoSummary>> {
        let url = self.parse_uri(uri)?;
        let table = self.unloaded(uri, &url)?;
        let store = table.object_store();
        let listing = log::list(uri, store.as_ref()).await?;
        if listing.head().is_none() {
            return Err(Error::TableNotFound { uri: uri.to_owned() });
        }
        log::history(uri, &store, &listing).await
    }

    /// The table's directory URL (ending in `/`), checked to be file:// or s3://.
    pub(crate) fn parse_uri(&self, uri: &str) -> Result<Url> {
        let invalid = |reason: String| Error::InvalidUri { uri: uri.to_owned(), reason };
        let mut url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
        match url.scheme() {
            "file" => {
                url.to_file_path().map_err(|()| invalid("not a local absolute path".into()))?;
            }
            "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("an s3:// URL needs a bucket".into()));
                }
                if self.root.scheme() != "s3" {
                    return Err(invalid("this catalog stores tables on the local file system".into()));
                }
            }
            other => return Err(invalid(format!("scheme \"{other}\" is not supported (file://, s3://)"))),
        }
        if url.path().trim_matches('/').is_empty() {
            return Err(invalid("a table needs a directory below the root".into()));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// A not-yet-loaded table handle with this store's storage options.
    pub(crate) fn unloaded(&self, uri: &str, url: &Url) -> Result<DeltaTable> {
        DeltaTableBuilder::from_url(url.clone())
            .and_then(|builder| builder.with_storage_options(self.options.clone()).build())
            .map_err(delta_err(uri, "open"))
    }

    pub(crate) fn options(&self) -> &HashMap<String, String> {
        &self.options
    }

    pub(crate) fn flush_threshold(&self) -> FlushThreshold {
        self.flush
    }
}

/// deltalake's unsigned version from ours (negative versions do not exist: callers check).
pub(crate) fn to_delta_version(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

/// Our signed version from deltalake's.
pub(crate) fn from_delta_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// Used by the writer to list and delete files.
pub(crate) type StoreRef = std::sync::Arc<dyn ObjectStore>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::S3Config;
    use std::path::Path;

    fn local() -> TableStore {
        TableStore::new(&CatalogConfig::local(Path::new("/tmp/civlink-t")).unwrap()).unwrap()
    }

    #[test]
    fn uris_follow_department_and_name() {
        let store = local();
        let id: DatasetId = "gongan.population".parse().unwrap();
        assert_eq!(store.table_uri(&id), "file:///tmp/civlink-t/tables/gongan/population");
        assert_eq!(store.quarantine_uri(&id), "file:///tmp/civlink-t/tables/gongan/population__quarantine");
    }

    #[test]
    fn s3_roots_get_a_trailing_slash_and_hide_the_secret() {
        let config = CatalogConfig {
            data_dir: "/tmp/x".into(),
            metadata_url: "sqlite::memory:".into(),
            storage_url: Url::parse("s3://bucket/tables").unwrap(),
            s3: Some(S3Config {
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "us-east-1".into(),
                access_key_id: "ak".into(),
                secret_access_key: "very-secret".into(),
                allow_http: true,
            }),
        };
        let store = TableStore::new(&config).unwrap();
        let id: DatasetId = "minzheng.dibao".parse().unwrap();
        assert_eq!(store.table_uri(&id), "s3://bucket/tables/minzheng/dibao");
        assert!(!format!("{store:?}").contains("very-secret"));
        let missing = CatalogConfig { s3: None, ..config };
        assert!(matches!(TableStore::new(&missing), Err(Error::MissingS3Config { .. })));
    }

    #[test]
    fn bad_uris_are_errors_not_panics() {
        let store = local();
        for bad in ["", "not a url", "http://x/y", "file:///", "s3://", "s3://bucket/t", "ftp://h/p", "文件:///x"] {
            assert!(matches!(store.parse_uri(bad), Err(Error::InvalidUri { .. })), "{bad}");
        }
        assert_eq!(store.parse_uri("file:///a/b").unwrap().as_str(), "file:///a/b/");
    }
}
