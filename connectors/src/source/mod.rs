//! Where export files come from, and reading them asynchronously.
//!
//! An ingestion job names a *location*: a local path (relative paths are
//! resolved against the job file's directory), a `file://` URL, or an
//! `s3://bucket/key` URL, each possibly with glob characters (`*`, `?`,
//! `[..]`, and `**` for any number of directories). [`list_files`] expands
//! it into [`SourceFile`]s sorted by URI; [`open_source`] opens one as a
//! [`Source`], an async stream of [`PositionedBatch`]es.
//!
//! | location | expands to |
//! |---|---|
//! | `exports/population_*.csv` | matching files (relative to the job's directory) |
//! | `/data/exports/**/*.csv` | matching files in any subdirectory |
//! | `exports/` (a directory, no glob) | every file beneath it, hidden ones (`.name`) left out |
//! | `file:///data/%E4%BA%BA%E5%8F%A3.csv` | that file (URL percent-decoding applies) |
//! | `s3://bucket/exports/*.csv` | matching objects, listed from the literal prefix `exports/` |
//! | `s3://bucket/exports` (no glob) | that object if it exists, else every object under `exports/` |
//!
//! Globs match like a shell's: `*` does not cross `/` and does not match a
//! leading `.`; a file name that is not valid UTF-8 matches no glob (a
//! directory listing still includes it). Office lock files (`~$name.xlsx`)
//! are never listed.
//!
//! URIs identify files in positions and lineage: `file:///abs/path.csv`
//! (an RFC 8089 URL, so non-ASCII names are percent-encoded) and
//! `s3://bucket/key` (the key as stored, not encoded).
//!
//! Reading never blocks the async runtime, and memory stays bounded:
//!
//! * The synchronous readers of [`crate::file`] run on a blocking thread
//!   ([`tokio::task::spawn_blocking`]) that feeds a channel of capacity
//!   [`CHANNEL_CAPACITY`], so parsing the next batches overlaps with the
//!   consumer's work on the current one, and a slow consumer holds the
//!   reader back instead of letting batches pile up.
//! * CSV and JSON objects are streamed from the object store straight into
//!   the readers (the HTTP body is bridged to a blocking `std::io::Read`);
//!   they are never downloaded whole.
//! * Parquet and `.xlsx` objects need random access (their index is at the
//!   end of the file), so they are first downloaded, chunk by chunk, to a
//!   temporary file in [`std::env::temp_dir`], which is deleted when the
//!   [`Source`] is dropped.

pub mod database;
pub mod http;

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use civlink_catalog::config::S3Config;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectMeta, ObjectStore};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::file::{self, BatchIter, CsvOptions, CsvReader, FileFormat, JsonReader, PositionedBatch, ReadOptions};

/// Batches buffered between a reader thread and the consumer: one being
/// parsed, up to this many waiting.
pub const CHANNEL_CAPACITY: usize = 2;

/// Bytes read from the start of a `.json` object to tell NDJSON (`{` first)
/// from a JSON array.
const SNIFF_BYTES: u64 = 4096;

/// A secret (password, token) a job names by environment variable or by
/// file (its first line, relative to `base_dir`); `None` when it names
/// neither. The message on failure names the variable or the file, never a
/// value. `what` is the kind of secret ("password", "token").
pub(crate) fn secret(
    env: Option<&str>,
    file: Option<&Path>,
    base_dir: &Path,
    what: &str,
) -> std::result::Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Err(format!("environment variable {var} is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("environment variable {var} is not valid Unicode")),
        };
    }
    if let Some(file) = file {
        let path = if file.is_absolute() { file.to_path_buf() } else { base_dir.join(file) };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {what} file {}: {}", path.display(), e.kind()))?;
        return Ok(Some(text.lines().next().unwrap_or_default().trim_end_matches('\r').to_owned()));
    }
    Ok(None)
}

/// A remote location as errors, logs, runs and lineage show it:
/// `scheme://user@host:port/path`, without a password, parameters or fragment.
pub fn shown_location(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(an unparsable location)".to_owned(),
    }
}

/// Errors from finding and opening sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the file failed (the file error names the file).
    #[error(transparent)]
    File(#[from] file::Error),
    /// Reading a database source failed (the error names the location, never a password).
    #[error(transparent)]
    Database(#[from] database::Error),
    /// The location is not a usable path or URL.
    #[error("invalid location {location:?}: {message}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// A URL scheme other than `file://` and `s3://`.
    #[error("location {location:?}: unsupported scheme {scheme:?}; expected a path, file:// or s3://")]
    UnsupportedScheme {
        /// The location as given.
        location: String,
        /// Its scheme.
        scheme: String,
    },
    /// Nothing matched the location.
    #[error("no file matches {pattern:?} (looked for {resolved})")]
    NoMatch {
        /// The location as given.
        pattern: String,
        /// What was searched: the absolute pattern, or the bucket and key pattern.
        resolved: String,
    },
    /// An `s3://` location, but no S3 settings.
    #[error("{location}: s3:// sources need S3 settings ([storage.s3] in civlink.toml or CIVLINK_S3_* variables)")]
    S3NotConfigured {
        /// The location or URI.
        location: String,
    },
    /// The object store refused a request (listing, reading, building the client).
    #[error("{uri}: object store error: {source}")]
    ObjectStore {
        /// What was being accessed.
        uri: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A local file-system operation failed (listing, temporary files).
    #[error("{path}: I/O error: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A reader thread panicked or was cancelled.
    #[error("{uri}: reader failed: {message}")]
    Task {
        /// The source being read.
        uri: String,
        /// The panic message or cancellation.
        message: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One file to ingest, as found by [`list_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// `file:///abs/path.csv` or `s3://bucket/key`.
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the file system or store reports one.
    pub modified: Option<DateTime<Utc>>,
    /// The object store's entity tag (S3 only).
    pub etag: Option<String>,
}

/// An async stream of positioned batches from one file.
#[async_trait::async_trait]
pub trait Source: Send {
    /// URI of what is being read (for positions and lineage): "file:///abs/path.csv" or "s3://bucket/key".
    fn uri(&self) -> &str;
    /// The next batch with positions, or None at the end.
    async fn next_batch(&mut self) -> Result<Option<PositionedBatch>>;
}

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// An absolute local path or glob pattern. `pattern` is what `glob`
    /// matches (the base directory's own glob characters escaped).
    Local { path: PathBuf, pattern: String, has_glob: bool },
    /// A bucket and a key or key pattern.
    S3 { bucket: String, key: String },
}

/// How globs match, locally and in object stores: like a shell, `*` and
/// `?` stay within one directory (`**` crosses directories) and do not
/// match a leading `.` (hidden files) unless the pattern has it.
const MATCH_OPTIONS: glob::MatchOptions =
    glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };

/// Office's lock files (`~$population.xlsx`, created while a workbook is
/// open in Excel or WPS): never data, and not readable as a workbook. They
/// are left out of every listing, so a glob over a shared folder does not
/// fail while someone has the export open.
fn is_lock_file(name: &str) -> bool {
    // An object store may keep the `~` percent-encoded in its keys.
    name.starts_with("~$") || name.starts_with("%7E$") || name.starts_with("%7e$")
}

/// Whether `s` contains glob syntax.
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The scheme of `s` if it looks like `scheme://…`.
fn scheme_of(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn parse_location(location: &str, base_dir: &Path) -> Result<Location> {
    let trimmed = location.trim();
    let invalid = |message: &str| Error::InvalidLocation { location: location.to_owned(), message: message.to_owned() };
    if trimmed.is_empty() {
        return Err(invalid("empty location"));
    }
    match scheme_of(trimmed).map(str::to_ascii_lowercase).as_deref() {
        Some("s3") => {
            let rest = &trimmed["s3://".len()..];
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || has_glob(bucket) {
                return Err(invalid("an s3:// URL needs a bucket name (without glob characters): s3://bucket/key"));
            }
            Ok(Location::S3 { bucket: bucket.to_owned(), key: key.to_owned() })
        }
        Some("file") => {
            let escaped = escape_for_file_url(trimmed);
            let url = url::Url::parse(&escaped).map_err(|e| invalid(&format!("not a file URL: {e}")))?;
            let path = url
                .to_file_path()
                .map_err(|()| invalid("a file:// URL needs an absolute path, e.g. file:///data/a.csv"))?;
            let text = path.to_str().ok_or_else(|| invalid("the path is not valid UTF-8"))?.to_owned();
            Ok(Location::Local { has_glob: has_glob(&text), pattern: text, path })
        }
        Some(scheme) => Err(Error::UnsupportedScheme { location: location.to_owned(), scheme: scheme.to_owned() }),
        None => {
            let relative = Path::new(trimmed);
            let base = std::path::absolute(base_dir)
                .map_err(|source| Error::Io { path: base_dir.display().to_string(), source })?;
            let glob = has_glob(trimmed);
            if relative.is_absolute() {
                return Ok(Location::Local {
                    path: relative.to_path_buf(),
                    pattern: trimmed.to_owned(),
                    has_glob: glob,
                });
            }
            let base_text = base.to_str().ok_or_else(|| invalid("the base directory is not valid UTF-8"))?;
            let separator = if base_text.ends_with(std::path::MAIN_SEPARATOR) { "" } else { "/" };
            // The base directory is literal even if its name has `[` or `*`.
            let pattern = format!("{}{separator}{trimmed}", glob::Pattern::escape(base_text));
            Ok(Location::Local { path: base.join(relative), pattern, has_glob: glob })
        }
    }
}

/// Checks that `location` is a usable path or `file://` / `s3://` URL,
/// without touching the file system or the network (a job file is checked
/// before its files exist).
pub fn check_location(location: &str) -> Result<()> {
    parse_location(location, Path::new("/")).map(|_| ())
}

/// Prepares a `file://` location for the URL parser: `?` and `#` are
/// glob / file-name characters here, not a query or fragment, so they are
/// percent-escaped, and so is a `%` that does not start an escape
/// (`100%.csv`); real escapes (`%20`, `%E4`) are kept and decoded later.
fn escape_for_file_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            '%' => {
                let next = s.as_bytes().get(i + 1..i + 3);
                let is_escape = next.is_some_and(|b| b.iter().all(u8::is_ascii_hexdigit));
                out.push_str(if is_escape { "%" } else { "%25" });
            }
            other => out.push(other),
        }
    }
    out
}

/// Removes `.` and resolves `..` components lexically, so URIs do not carry
/// `exports/../a.csv`.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The `file://` URI of an absolute local path.
pub fn file_uri(path: &Path) -> Result<String> {
    url::Url::from_file_path(lexically_normal(path)).map(String::from).map_err(|()| Error::InvalidLocation {
        location: path.display().to_string(),
        message: "not an absolute path".to_owned(),
    })
}

/// Expand a location into files: a local path (relative paths resolved against `base_dir`), `file://` URL, or `s3://bucket/prefix` URL, each possibly with glob characters (*, ?, [..], **) — sorted by uri; an error if nothing matches (naming the pattern).
///
/// `s3` is needed only for `s3://` locations. See the module docs for how a
/// location without glob characters is expanded.
pub async fn list_files(location: &str, base_dir: &Path, s3: Option<&S3Config>) -> Result<Vec<SourceFile>> {
    match parse_location(location, base_dir)? {
        Location::Local { path, pattern, has_glob } => {
            let owned = location.to_owned();
            tokio::task::spawn_blocking(move || list_local(&owned, &path, &pattern, has_glob))
                .await
                .map_err(|e| Error::Task { uri: location.to_owned(), message: e.to_string() })?
        }
        Location::S3 { bucket, key } => {
            let config = s3.ok_or_else(|| Error::S3NotConfigured { location: location.to_owned() })?;
            let store = s3_store(config, &bucket)?;
            let mut files = list_objects(store.as_ref(), &format!("s3://{bucket}"), &key).await?;
            if files.is_empty() {
                return Err(Error::NoMatch {
                    pattern: location.to_owned(),
                    resolved: format!("bucket {bucket:?}, key {key:?}"),
                });
            }
            files.sort_by(|a, b| a.uri.cmp(&b.uri));
            Ok(files)
        }
    }
}

fn list_local(location: &str, path: &Path, pattern: &str, has_glob: bool) -> Result<Vec<SourceFile>> {
    let mut paths = Vec::new();
    if has_glob {
        let bad_pattern = |e: glob::PatternError| Error::InvalidLocation {
            location: location.to_owned(),
            message: format!("bad glob pattern: {e}"),
        };
        let matcher = glob::Pattern::new(pattern).map_err(bad_pattern)?;
        // The directory walk runs without the leading-dot rule: glob's walker
        // would drop every hidden entry, even one the pattern names, and
        // panics on non-UTF-8 names under that rule. The rule is applied to
        // each match instead.
        let walk = glob::MatchOptions { require_literal_leading_dot: false, ..MATCH_OPTIONS };
        for entry in glob::glob_with(pattern, walk).map_err(bad_pattern)? {
            let found = entry.map_err(|e| Error::Io { path: e.path().display().to_string(), source: e.into() })?;
            let visible = matcher.matches_with(&found.to_string_lossy(), MATCH_OPTIONS);
            let lock = found.file_name().is_some_and(|n| is_lock_file(&n.to_string_lossy()));
            if visible && !lock && found.is_file() {
                paths.push(found);
            }
        }
    } else if path.is_dir() {
        walk_dir(path, &mut paths)?;
    } else if path.is_file() {
        paths.push(path.to_path_buf());
    }
    if paths.is_empty() {
        return Err(Error::NoMatch { pattern: location.to_owned(), resolved: path.display().to_string() });
    }
    let mut files = paths.iter().map(|p| local_file(p)).collect::<Result<Vec<_>>>()?;
    files.sort_by(|a, b| a.uri.cmp(&b.uri));
    files.dedup_by(|a, b| a.uri == b.uri);
    Ok(files)
}

/// Every regular file beneath `dir`, skipping hidden files and directories.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io_error = |source| Error::Io { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || is_lock_file(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk_dir(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn local_file(path: &Path) -> Result<SourceFile> {
    let metadata = std::fs::metadata(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    Ok(SourceFile {
        uri: file_uri(path)?,
        size: metadata.len(),
        modified: metadata.modified().ok().map(DateTime::<Utc>::from),
        etag: None,
    })
}

/// The builder of an S3 client for `bucket` from the catalog's S3 settings:
/// explicit endpoint, region and keys (nothing is read from `AWS_*`
/// variables), plain HTTP only when allowed, and path-style requests
/// (`endpoint/bucket/key`), which every S3-compatible server accepts.
pub fn s3_builder(config: &S3Config, bucket: &str) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_allow_http(config.allow_http)
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder
}

/// An S3 client for `bucket` (see [`s3_builder`]).
pub fn s3_store(config: &S3Config, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    let store: AmazonS3 = s3_builder(config, bucket)
        .build()
        .map_err(|source| Error::ObjectStore { uri: format!("s3://{bucket}"), source })?;
    Ok(Arc::new(store))
}

/// Lists the objects of `store` matching `key` (a key, a directory-like
/// prefix, or a glob pattern; see the module docs), with URIs
/// `{uri_prefix}/{key}` (e.g. `uri_prefix = "s3://bucket"`), sorted by URI.
/// An empty list is not an error here.
///
/// This is the store-independent half of [`list_files`], usable with any
/// [`ObjectStore`] (tests use the in-memory one).
pub async fn list_objects(store: &dyn ObjectStore, uri_prefix: &str, key: &str) -> Result<Vec<SourceFile>> {
    let object_error = |source| Error::ObjectStore { uri: format!("{uri_prefix}/{key}"), source };
    let to_file = |meta: ObjectMeta| SourceFile {
        uri: format!("{uri_prefix}/{}", meta.location),
        size: meta.size,
        modified: Some(meta.last_modified),
        etag: meta.e_tag,
    };
    let mut files = Vec::new();
    if has_glob(key) {
        let matcher = glob::Pattern::new(key).map_err(|e| Error::InvalidLocation {
            location: format!("{uri_prefix}/{key}"),
            message: format!("bad glob pattern: {e}"),
        })?;
        // List only below the literal directory part of the pattern.
        let first_glob = key.find(['*', '?', '[']).unwrap_or(key.len());
        let prefix = key[..first_glob].rfind('/').map(|slash| &key[..slash]).unwrap_or("");
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let mut listing = store.list(prefix.as_ref());
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(object_error)?;
            let lock = meta.location.filename().is_some_and(is_lock_file);
            if matcher.matches_with(meta.location.as_ref(), MATCH_OPTIONS) && !lock {
                files.push(to_file(meta));
            }
        }
    } else {
        let trimmed = key.trim_end_matches('/');
        if !trimmed.is_empty() && !key.ends_with('/') {
            let path = ObjectPath::parse(trimmed).map_err(|source| Error::InvalidLocation {
                location: format!("{uri_prefix}/{key}"),
                message: source.to_string(),
            })?;
            match store.get_opts(&path, GetOptions { head: true, ..GetOptions::default() }).await {
                Ok(found) => return Ok(vec![to_file(found.meta)]),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(object_error(source)),
            }
        }
        let prefix = (!trimmed.is_empty()).then(|| ObjectPath::from(trimmed));
        let mut listing = store.list(prefix.as_ref());
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(object_error)?;
            let hidden = meta
                .location
                .prefix_match(prefix.as_ref().unwrap_or(&ObjectPath::default()))
                .is_some_and(|mut parts| parts.any(|part| part.as_ref().starts_with('.')));
            let lock = meta.location.filename().is_some_and(is_lock_file);
            if !hidden && !lock {
                files.push(to_file(meta));
            }
        }
    }
    files.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(files)
}

/// Open one file as a Source. Sync readers run on a blocking thread (tokio::task::spawn_blocking) feeding a bounded channel (capacity 2), so parsing overlaps with the consumer's work; object-store files are streamed (object_store GetResult → SyncIoBridge / a channel-backed std::io::Read) into the CSV/JSON readers — never downloaded whole into memory. Parquet and xlsx from S3 may be downloaded to a temp file first (document it).
///
/// `format` overrides the format guessed from the file's extension (a
/// `.json` file is sniffed for NDJSON vs. a JSON array). `s3` is needed
/// only for `s3://` URIs. Must be called within a Tokio runtime.
pub async fn open_source(
    file: &SourceFile,
    format: Option<FileFormat>,
    options: &ReadOptions,
    s3: Option<&S3Config>,
) -> Result<Box<dyn Source>> {
    let uri = file.uri.as_str();
    match scheme_of(uri).map(str::to_ascii_lowercase).as_deref() {
        Some("file") => {
            let path = url::Url::parse(uri).ok().and_then(|u| u.to_file_path().ok()).ok_or_else(|| {
                Error::InvalidLocation {
                    location: uri.to_owned(),
                    message: "not a file:// URL of an absolute path".into(),
                }
            })?;
            let options = options.clone();
            let reader = tokio::task::spawn_blocking(move || file::open_with(&path, format, &options))
                .await
                .map_err(|e| Error::Task { uri: uri.to_owned(), message: e.to_string() })??;
            Ok(spawn_source(uri.to_owned(), reader))
        }
        Some("s3") => {
            let rest = &uri["s3://".len()..];
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let config = s3.ok_or_else(|| Error::S3NotConfigured { location: uri.to_owned() })?;
            let key = ObjectPath::parse(key)
                .map_err(|e| Error::InvalidLocation { location: uri.to_owned(), message: e.to_string() })?;
            open_object(s3_store(config, bucket)?, &key, uri, format, options).await
        }
        Some(scheme) => Err(Error::UnsupportedScheme { location: uri.to_owned(), scheme: scheme.to_owned() }),
        None => Err(Error::InvalidLocation {
            location: uri.to_owned(),
            message: "expected a file:// or s3:// URI from list_files".into(),
        }),
    }
}

/// Opens object `key` of `store` as a [`Source`] named `uri`: CSV and JSON
/// are streamed, Parquet and `.xlsx` are downloaded to a temporary file
/// first (see the module docs). The store-independent half of
/// [`open_source`]; must be called within a Tokio runtime.
pub async fn open_object(
    store: Arc<dyn ObjectStore>,
    key: &ObjectPath,
    uri: &str,
    format: Option<FileFormat>,
    options: &ReadOptions,
) -> Result<Box<dyn Source>> {
    let extension = key.extension().map(str::to_ascii_lowercase);
    // `.json` is decided by sniffing the content, below.
    let sniff_json = format.is_none() && extension.as_deref() == Some("json");
    let format = match format {
        Some(format) => Some(format),
        None if sniff_json => None,
        None => Some(
            key.filename()
                .and_then(|name| FileFormat::from_path(Path::new(name)))
                .ok_or_else(|| file::Error::UnknownFormat { path: uri.to_owned() })?,
        ),
    };
    let object_error = |source| Error::ObjectStore { uri: uri.to_owned(), source };
    let got = store.get_opts(key, GetOptions::default()).await.map_err(object_error)?;
    let stream = got.into_stream();
    match format {
        Some(format @ (FileFormat::Parquet | FileFormat::Xlsx | FileFormat::Xls)) => {
            let (temp, mut out) = TempFile::create(format.name()).await?;
            let mut stream = stream;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(object_error)?;
                out.write_all(&chunk).await.map_err(|source| temp.io_error(source))?;
            }
            out.flush().await.map_err(|source| temp.io_error(source))?;
            drop(out);
            let path = temp.path.clone();
            let options = options.clone();
            let uri_owned = uri.to_owned();
            let reader = tokio::task::spawn_blocking(move || -> file::Result<BatchIter> {
                // Errors name the object, not the temporary file.
                let rename = |e: file::Error| rename_error(e, &uri_owned);
                let reader: BatchIter = match format {
                    FileFormat::Parquet => {
                        Box::new(file::ParquetReader::open(&path, options.batch_size).map_err(rename)?)
                    }
                    _ => Box::new(file::ExcelReader::open(&path, &options.excel, options.batch_size).map_err(rename)?),
                };
                Ok(reader)
            })
            .await
            .map_err(|e| Error::Task { uri: uri.to_owned(), message: e.to_string() })??;
            Ok(Box::new(ChannelSource::spawn(uri.to_owned(), reader, Some(temp))))
        }
        format => {
            let handle = tokio::runtime::Handle::try_current().map_err(|e| Error::Task {
                uri: uri.to_owned(),
                message: format!("open_object must run inside a Tokio runtime: {e}"),
            })?;
            let body = tokio_util::io::StreamReader::new(stream.map_err(io::Error::other));
            let body: Box<dyn Read + Send> = Box::new(tokio_util::io::SyncIoBridge::new_with_handle(body, handle));
            let options = options.clone();
            let name = uri.to_owned();
            let reader = tokio::task::spawn_blocking(move || open_stream(&name, body, format, &options))
                .await
                .map_err(|e| Error::Task { uri: uri.to_owned(), message: e.to_string() })??;
            Ok(spawn_source(uri.to_owned(), reader))
        }
    }
}

/// Opens a CSV or JSON byte stream; `format` `None` means "sniff NDJSON vs
/// JSON array". Runs on a blocking thread (the first reads block on the network).
fn open_stream(
    name: &str,
    mut body: Box<dyn Read + Send>,
    format: Option<FileFormat>,
    options: &ReadOptions,
) -> file::Result<BatchIter> {
    let format = match format {
        Some(format) => format,
        None => {
            let mut head = Vec::new();
            (&mut body)
                .take(SNIFF_BYTES)
                .read_to_end(&mut head)
                .map_err(|source| file::Error::Io { path: name.to_owned(), source })?;
            let content = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            let format = match content.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => FileFormat::Ndjson,
                _ => FileFormat::JsonArray,
            };
            body = Box::new(io::Cursor::new(head).chain(body));
            format
        }
    };
    Ok(match format {
        FileFormat::Csv => {
            let csv = CsvOptions { batch_size: options.batch_size, ..options.csv.clone() };
            Box::new(CsvReader::from_reader(name, body, csv)?)
        }
        FileFormat::Ndjson | FileFormat::JsonArray => {
            Box::new(JsonReader::from_reader(name, body, format, options.batch_size)?)
        }
        // Parquet and workbooks are downloaded first, never streamed.
        other => {
            return Err(file::Error::InvalidOptions { message: format!("{other} files cannot be streamed") });
        }
    })
}

/// Replaces the temporary file's path in an error with the object's URI.
fn rename_error(error: file::Error, uri: &str) -> file::Error {
    use file::Error as E;
    match error {
        E::Io { source, .. } => E::Io { path: uri.to_owned(), source },
        E::Parquet { message, .. } => E::Parquet { path: uri.to_owned(), message },
        E::Arrow { source, .. } => E::Arrow { path: uri.to_owned(), source },
        E::Xlsx { message, .. } => E::Xlsx { path: uri.to_owned(), message },
        E::SheetNotFound { sheet, available, .. } => E::SheetNotFound { path: uri.to_owned(), sheet, available },
        other => other,
    }
}

/// Runs a synchronous batch iterator on a blocking thread and exposes it as
/// a [`Source`] named `uri`, with at most [`CHANNEL_CAPACITY`] batches
/// waiting. Must be called within a Tokio runtime.
pub fn spawn_source(uri: String, reader: BatchIter) -> Box<dyn Source> {
    Box::new(ChannelSource::spawn(uri, reader, None))
}

/// The consumer side of a reader thread.
struct ChannelSource {
    uri: String,
    receiver: mpsc::Receiver<file::Result<PositionedBatch>>,
    task: Option<JoinHandle<()>>,
    finished: bool,
    /// Kept alive (and deleted on drop) while its reader runs.
    _temp: Option<TempFile>,
}

impl ChannelSource {
    fn spawn(uri: String, reader: BatchIter, temp: Option<TempFile>) -> ChannelSource {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::task::spawn_blocking(move || {
            for item in reader {
                let failed = item.is_err();
                // A send fails when the consumer dropped the source: stop reading.
                if sender.blocking_send(item).is_err() || failed {
                    break;
                }
            }
        });
        ChannelSource { uri, receiver, task: Some(task), finished: false, _temp: temp }
    }
}

#[async_trait::async_trait]
impl Source for ChannelSource {
    fn uri(&self) -> &str {
        &self.uri
    }

    async fn next_batch(&mut self) -> Result<Option<PositionedBatch>> {
        if self.finished {
            return Ok(None);
        }
        match self.receiver.recv().await {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(error)) => {
                self.finished = true;
                Err(error.into())
            }
            None => {
                self.finished = true;
                // The reader thread ended; if it panicked, say so rather
                // than passing off a truncated file as complete.
                if let Some(task) = self.task.take()
                    && let Err(e) = task.await
                {
                    return Err(Error::Task { uri: self.uri.clone(), message: e.to_string() });
                }
                Ok(None)
            }
        }
    }
}

/// A temporary file that is deleted when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Creates a new, empty temporary file, open for writing.
    async fn create(extension: &str) -> Result<(TempFile, tokio::fs::File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let name = format!("civlink-{}-{nanos}-{n}.{extension}", std::process::id());
        let path = std::env::temp_dir().join(name);
        // create_new: never reuse (or follow a planted symlink to) an existing file.
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        Ok((TempFile { path }, file))
    }

    fn io_error(&self, source: io::Error) -> Error {
        Error::Io { path: self.path.display().to_string(), source }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover file in the temp directory is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let base = Path::new("/jobs/gongan");
        assert_eq!(
            parse_location("exports/*.csv", base).unwrap(),
            Location::Local {
                path: PathBuf::from("/jobs/gongan/exports/*.csv"),
                pattern: "/jobs/gongan/exports/*.csv".into(),
                has_glob: true
            }
        );
        assert_eq!(
            parse_location("/data/a.csv", base).unwrap(),
            Location::Local { path: PathBuf::from("/data/a.csv"), pattern: "/data/a.csv".into(), has_glob: false }
        );
        assert_eq!(
            parse_location("s3://civlink/exports/2024-*.csv", base).unwrap(),
            Location::S3 { bucket: "civlink".into(), key: "exports/2024-*.csv".into() }
        );
        assert_eq!(parse_location("S3://b", base).unwrap(), Location::S3 { bucket: "b".into(), key: String::new() });
        assert_eq!(
            parse_location("file:///data/%E4%BA%BA%E5%8F%A3?.csv", base).unwrap(),
            Location::Local {
                path: PathBuf::from("/data/人口?.csv"),
                pattern: "/data/人口?.csv".into(),
                has_glob: true
            }
        );
        assert_eq!(
            parse_location("file:///data/100%.csv", base).unwrap(),
            Location::Local {
                path: PathBuf::from("/data/100%.csv"),
                pattern: "/data/100%.csv".into(),
                has_glob: false
            }
        );
        // A base directory with glob characters is taken literally.
        match parse_location("*.csv", Path::new("/data/[2024]")).unwrap() {
            Location::Local { pattern, .. } => assert_eq!(pattern, "/data/[[]2024[]]/*.csv"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_location("  ", base), Err(Error::InvalidLocation { .. })));
        assert!(matches!(parse_location("s3:///key", base), Err(Error::InvalidLocation { .. })));
        assert!(matches!(parse_location("file://relative/a.csv", base), Err(Error::InvalidLocation { .. })));
        assert!(matches!(
            parse_location("https://example.org/a.csv", base),
            Err(Error::UnsupportedScheme { scheme, .. }) if scheme == "https"
        ));
    }

    #[test]
    fn uris_are_normalized_urls() {
        assert_eq!(file_uri(Path::new("/data/x/../a.csv")).unwrap(), "file:///data/a.csv");
        assert_eq!(file_uri(Path::new("/data/人口 1.csv")).unwrap(), "file:///data/%E4%BA%BA%E5%8F%A3%201.csv");
        assert!(file_uri(Path::new("relative.csv")).is_err());
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(escape_for_file_url("file:///a%20b?#"), "file:///a%20b%3F%23");
        assert_eq!(escape_for_file_url("file:///100%.csv"), "file:///100%25.csv");
        assert_eq!(escape_for_file_url("%"), "%25");
        assert_eq!(escape_for_file_url("%e"), "%25e");
        assert_eq!(escape_for_file_url("人%E4"), "人%E4");
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("s3://b/k"), Some("s3"));
        assert_eq!(scheme_of("a/b://c"), None);
        assert_eq!(scheme_of("://x"), None);
        assert_eq!(scheme_of("plain.csv"), None);
    }
}
