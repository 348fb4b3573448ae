//! Database sources: a PostgreSQL or MySQL/MariaDB table or query, read
//! as Arrow batches in bounded memory, in full or incrementally by a cursor
//! column.
//!
//! ```toml
//! [source]
//! location = "postgres://renshe@127.0.0.1:5432/renshe"   # or mysql:// (mariadb://); never a password
//!
//! [source.database]
//! table = "public.pension_payments"     # or query = "SELECT … FROM …"
//! password_env = "RENSHE_DB_PASSWORD"   # or password_file = "secrets/renshe.txt" (first line)
//! cursor = "updated_at"                 # incremental: only rows at or past the last committed run's cursor
//! lookback = 300                        # re-read this far behind it (seconds, or units of an integer cursor)
//! connect_retries = 3                   # attempts beyond the first, with backoff
//! read_retries = 2                      # reads again from the start after the connection drops mid-read
//! on_drift = "fail"                     # or "continue": what a change of the source's columns does
//! ```
//!
//! # Schema drift
//!
//! The columns a run reads (`name: type`) are stored when it commits. The
//! next run compares before it reads a row: a column dropped, renamed
//! (dropped and added) or retyped fails the run, naming each change, unless
//! the job says `on_drift = "continue"`; then what no longer maps is
//! quarantined by validation as always. Drift is never written silently
//! wrong.
//!
//! # Types
//!
//! Every column is read as text in SQL (the one form both drivers decode
//! alike) and cast to its Arrow type ([`types::Kind`]); a column of any
//! other type is an error that names it and its type, before a row is read.
//!
//! | source type | PostgreSQL | MySQL / MariaDB | Arrow |
//! |---|---|---|---|
//! | integers | `smallint`, `integer`, `bigint`, serials | `tinyint`, `smallint`, `mediumint`, `int`, `bigint`, `year` | `Int64` |
//! | exact numbers | `numeric(p, s)` | `decimal(p, s)` | `Decimal128(p, s)`; text when the precision is unknown (a query's column) |
//! | floats | `real`, `double precision` | `float`, `double` | `Float64` |
//! | text | `text`, `varchar`, `char`, `uuid`, `time`, `interval` | `char`, `varchar`, `*text`, `enum`, `set`, `time` | `Utf8` |
//! | JSON | `json`, `jsonb` | `json` | `Utf8` (the JSON text) |
//! | dates | `date` | `date`; zero dates (`0000-00-00`, zero month or day) are NULL | `Date32` |
//! | timestamps | `timestamp` | `datetime` | `Timestamp(µs)` |
//! | instants | `timestamptz` (read in UTC) | `timestamp` (the session runs in UTC) | `Timestamp(µs, UTC)` |
//! | booleans | `boolean` | `tinyint(1)`, `boolean` | `Boolean` |
//! | bytes | `bytea` | `binary`, `varbinary`, `*blob` | `Binary` |
//! | NULL | NULL | NULL | null |
//!
//! # Incremental sync
//!
//! With a `cursor`, a run reads the rows whose cursor is at or past the last
//! committed run's largest cursor value (less `lookback`), in cursor order.
//! Rows at the boundary value are read again on purpose: a row inserted with
//! the boundary value after the last run is not lost, and because an
//! incremental job must write in `upsert` mode, the rows read again replace
//! themselves instead of doubling. `lookback` covers transactions that
//! commit late with an earlier cursor value. The cursor advances only when a
//! run commits (the catalog's `job_cursors`).
//!
//! # Credentials
//!
//! The password comes from the environment variable or the file the job
//! names; the location may not carry one (the job check refuses it). Neither
//! appears in logs, run records, errors or the catalog.

pub mod types;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{ArrayRef, BinaryBuilder, RecordBatch, StringArray, StringBuilder};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Column, Connection, Executor, Row, TypeInfo};
use tokio::sync::mpsc;

use super::{CHANNEL_CAPACITY, Source};
use crate::file::PositionedBatch;
use types::{Kind, cursor_condition, kind_of, quote, text_expression};

/// `[source.database]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The table to read, `schema.table` or `table` (the connection's default schema).
    #[serde(default)]
    pub table: Option<String>,
    /// Or a query whose result is read.
    #[serde(default)]
    pub query: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Or a file whose first line is the password (relative to the job file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The cursor column of an incremental job.
    #[serde(default)]
    pub cursor: Option<String>,
    /// How far behind the last cursor value to read again (seconds for
    /// time cursors, units for integer ones; default 0).
    #[serde(default)]
    pub lookback: Option<u64>,
    /// Connection attempts beyond the first (default 3).
    #[serde(default)]
    pub connect_retries: Option<u32>,
    /// Times a run reads the source again from the start after its
    /// connection dropped mid-read, with backoff (default 2): nothing of a
    /// dropped read is kept, so a retried run commits the rows once.
    #[serde(default)]
    pub read_retries: Option<u32>,
    /// Deletions at the source, found by comparing primary keys: a row of
    /// the dataset whose key the source no longer has is marked in a
    /// soft-delete column (upsert jobs only; see [`DeletionSpec`]).
    #[serde(default)]
    pub deletions: Option<DeletionSpec>,
    /// What a change of the source's columns since the last committed run
    /// does: `fail` (default: nothing is read) or `continue` (rows that no
    /// longer map are quarantined by validation, as always).
    #[serde(default)]
    pub on_drift: Option<DriftPolicy>,
}

/// `[source.database.deletions]`: how rows deleted at the source are found
/// and marked. At a run where the comparison is due, every primary key of
/// the source is read (through the job's mapping, as its rows are) and
/// compared with the dataset's; each row whose key is gone gets its
/// `column` set (`true` for a boolean column, the run's time for a
/// timestamp, its date for a date, RFC 3339 text for a string), in the
/// run's one commit. Rows are never removed, and a marked row the source
/// delivers again is updated like any other (the column as delivered).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionSpec {
    /// The standard's column that marks a row deleted at the source.
    pub column: String,
    /// Hours between comparisons: a run compares only when the last
    /// comparison is at least this old (default 0: every run).
    #[serde(default)]
    pub every_hours: Option<u64>,
    /// The largest share of the dataset's rows one comparison may mark, in
    /// percent (default 50): more, and the run fails, since a source that
    /// lost most of its rows is more likely broken than emptied.
    #[serde(default)]
    pub max_share_percent: Option<u8>,
}

/// What schema drift at the source does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftPolicy {
    /// Fail the run before any row is read.
    Fail,
    /// Read on (what no longer maps is quarantined).
    Continue,
}

/// The database engine of a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `postgres://`, `postgresql://`.
    Postgres,
    /// `mysql://`, `mariadb://`.
    MySql,
}

impl Engine {
    /// The engine a location's scheme names, if any.
    pub fn of_location(location: &str) -> Option<Engine> {
        let scheme = location.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Engine::Postgres),
            "mysql" | "mariadb" => Some(Engine::MySql),
            _ => None,
        }
    }
}

/// Why a database source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location is not a database URL civlink can use.
    #[error("{location}: {message}")]
    Location {
        /// The location.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The password could not be read.
    #[error("{location}: credentials: {message}")]
    Credentials {
        /// The location.
        location: String,
        /// What is wrong (never the password).
        message: String,
    },
    /// No connection after every attempt.
    #[error("{location}: cannot connect after {attempts} attempt(s): {message}")]
    Connect {
        /// The location.
        location: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        message: String,
    },
    /// The table does not exist (or has no column the connection can see).
    #[error("{location}: no table {table} (or none of its columns is visible)")]
    NoTable {
        /// The location.
        location: String,
        /// The table.
        table: String,
    },
    /// A column of a type civlink does not read.
    #[error("{location}: column {column:?} has type {type_name}, which civlink cannot read; cast it in a query source")]
    UnsupportedType {
        /// The location.
        location: String,
        /// The column.
        column: String,
        /// Its type, as the engine names it.
        type_name: String,
    },
    /// The cursor column is not among the source's columns.
    #[error("{location}: the cursor column {column:?} is not among the source's columns")]
    NoCursorColumn {
        /// The location.
        location: String,
        /// The column.
        column: String,
    },
    /// Reading failed (the query failed, a row could not be decoded).
    #[error("{location}: reading failed: {message}")]
    Read {
        /// The location.
        location: String,
        /// The driver's message.
        message: String,
    },
    /// The connection dropped while rows were read: a run may read again.
    #[error("{location}: reading failed, the connection was lost: {message}")]
    ConnectionLost {
        /// The location.
        location: String,
        /// The driver's message.
        message: String,
    },
    /// The source's columns changed since the last committed run, and the job says to fail.
    #[error("{location}: the source's columns changed since the last committed run ({}); nothing was read (on_drift = \"continue\" reads on)", changes.join("; "))]
    Drift {
        /// The location.
        location: String,
        /// Each change: a column dropped, added or retyped.
        changes: Vec<String>,
    },
    /// A value could not be converted to its column's Arrow type.
    #[error("{location}: column {column:?}: {message}")]
    Value {
        /// The location.
        location: String,
        /// The column.
        column: String,
        /// What failed.
        message: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a run learns while reading, kept by the pipeline only when the
/// run commits: the largest cursor value read (in its text form) and the
/// source's columns.
#[derive(Debug, Clone, Default)]
pub struct CursorCell(Arc<Mutex<Learned>>);

#[derive(Debug, Default)]
struct Learned {
    cursor: Option<String>,
    columns: Vec<String>,
    drift: Vec<String>,
}

impl CursorCell {
    /// The largest cursor value seen, if any row had one.
    pub fn get(&self) -> Option<String> {
        self.0.lock().map(|v| v.cursor.clone()).unwrap_or_default()
    }

    /// The source's columns, `name: type` each, in order.
    pub fn columns(&self) -> Vec<String> {
        self.0.lock().map(|v| v.columns.clone()).unwrap_or_default()
    }

    /// The changes read on under `on_drift = "continue"`.
    pub fn drift(&self) -> Vec<String> {
        self.0.lock().map(|v| v.drift.clone()).unwrap_or_default()
    }

    fn set(&self, value: String) {
        if let Ok(mut slot) = self.0.lock() {
            slot.cursor = Some(value);
        }
    }

    /// Keep `value` as the largest cursor value read (HTTP sources find it themselves).
    pub(crate) fn set_cursor(&self, value: String) {
        self.set(value);
    }

    fn learned(&self, columns: Vec<String>, drift: Vec<String>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.columns = columns;
            slot.drift = drift;
        }
    }
}

/// How `current` (`name: type` each) differs from `previous`.
pub fn drift(previous: &[String], current: &[String]) -> Vec<String> {
    let split = |c: &String| {
        c.split_once(": ").map(|(n, t)| (n.to_owned(), t.to_owned())).unwrap_or((c.clone(), String::new()))
    };
    let before: Vec<(String, String)> = previous.iter().map(split).collect();
    let after: Vec<(String, String)> = current.iter().map(split).collect();
    let mut changes = Vec::new();
    for (name, kind) in &before {
        match after.iter().find(|(n, _)| n == name) {
            None => changes.push(format!("column {name:?} dropped")),
            Some((_, now)) if now != kind => changes.push(format!("column {name:?} changed from {kind} to {now}")),
            Some(_) => {}
        }
    }
    for (name, kind) in &after {
        if !before.iter().any(|(n, _)| n == name) {
            changes.push(format!("column {name:?} ({kind}) added"));
        }
    }
    changes
}

/// A column as the engine describes it: name, type name, column type
/// (MySQL's `tinyint(1)`), precision and scale.
type Described = (String, String, Option<String>, Option<i64>, Option<i64>);

/// One row of either engine's information_schema query: name, type name,
/// column type, precision, scale (the same five columns on both).
fn described<R: Row>(row: &R) -> std::result::Result<Described, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?))
}

/// One column of the source.
#[derive(Debug, Clone)]
struct SourceColumn {
    name: String,
    kind: Kind,
}

/// The password `spec` names, if any.
fn password(location: &str, spec: &DatabaseSpec, base_dir: &Path) -> Result<Option<String>> {
    super::secret(spec.password_env.as_deref(), spec.password_file.as_deref(), base_dir, "password")
        .map_err(|message| Error::Credentials { location: location.to_owned(), message })
}

enum Conn {
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

async fn connect(location: &str, spec: &DatabaseSpec, base_dir: &Path) -> Result<(Engine, Conn)> {
    let shown = shown_location(location);
    let engine = Engine::of_location(location).ok_or_else(|| Error::Location {
        location: shown.clone(),
        message: "expected a postgres:// or mysql:// (mariadb://) URL".into(),
    })?;
    let password = password(&shown, spec, base_dir)?;
    let bad = |_: sqlx::Error| Error::Location { location: shown.clone(), message: "not a usable database URL".into() };
    let attempts = spec.connect_retries.unwrap_or(3).min(20) + 1;
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
        }
        let connected = match engine {
            Engine::Postgres => {
                let mut options = PgConnectOptions::from_str(location).map_err(bad)?;
                if let Some(password) = &password {
                    options = options.password(password);
                }
                match PgConnection::connect_with(&options).await {
                    // Literals are written with standard escaping (quotes doubled): make the server read them so.
                    Ok(mut conn) => {
                        match conn.execute("SET TIME ZONE 'UTC'; SET standard_conforming_strings = on").await {
                            Ok(_) => Ok(Conn::Postgres(conn)),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Engine::MySql => {
                let url = match location.split_once("://") {
                    Some((_, rest)) => format!("mysql://{rest}"),
                    None => location.to_owned(),
                };
                let mut options = MySqlConnectOptions::from_str(&url).map_err(bad)?;
                if let Some(password) = &password {
                    options = options.password(password);
                }
                match MySqlConnection::connect_with(&options).await {
                    // Literals escape backslashes: the server must read them as escapes.
                    Ok(mut conn) => match conn
                        .execute(
                            "SET time_zone = '+00:00', sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
                        )
                        .await
                    {
                        Ok(_) => Ok(Conn::MySql(conn)),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        match connected {
            Ok(conn) => return Ok((engine, conn)),
            Err(e) => {
                last = e.to_string();
                tracing::warn!(location = %shown, attempt = attempt + 1, error = %last, "database connection failed");
            }
        }
    }
    Err(Error::Connect { location: shown, attempts, message: last })
}

/// A field of COPY's text format as text: `\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v` and octal or
/// hex escapes decoded (COPY writes only the first seven).
fn copy_unescape(field: &[u8]) -> std::result::Result<String, String> {
    if !field.contains(&b'\\') {
        return String::from_utf8(field.to_vec()).map_err(|e| format!("not UTF-8: {e}"));
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'v') => out.push(0x0b),
            Some(b'x') => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match bytes.peek().and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value.wrapping_mul(16).wrapping_add(d as u8);
                            bytes.next();
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            Some(d @ b'0'..=b'7') => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(n @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(n - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            Some(other) => out.push(other),
            None => return Err("a field ends in a lone backslash".into()),
        }
    }
    String::from_utf8(out).map_err(|e| format!("not UTF-8: {e}"))
}

/// A driver error while reading: a lost connection (the socket closed, the
/// stream broke off) can be read again; anything else cannot.
fn read_failure(location: &str, error: sqlx::Error) -> Error {
    // The server ending the session (admin shutdown, a crash: SQLSTATE 57P01–57P03) or a
    // connection exception (class 08) is a lost connection too.
    let ended_by_server = error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code.starts_with("57P") || code.starts_with("08"));
    let lost = ended_by_server
        || matches!(
            error,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
        );
    let (location, message) = (location.to_owned(), error.to_string());
    if lost { Error::ConnectionLost { location, message } } else { Error::Read { location, message } }
}

impl Error {
    /// Whether reading again from the start may succeed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. })
    }
}

/// The columns of the table or query, with their kinds.
async fn columns(location: &str, engine: Engine, conn: &mut Conn, spec: &DatabaseSpec) -> Result<Vec<SourceColumn>> {
    let read = |e: sqlx::Error| Error::Read { location: location.to_owned(), message: e.to_string() };
    let mut found: Vec<Described> = Vec::new();
    match (&spec.table, &spec.query) {
        (Some(table), _) => {
            let (schema, name) = match table.split_once('.') {
                Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
                None => (None, table.clone()),
            };
            match conn {
                Conn::Postgres(conn) => {
                    let rows = sqlx::query(
                        "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT), CAST(NULL AS TEXT), \
                         CAST(numeric_precision AS BIGINT), CAST(numeric_scale AS BIGINT) FROM information_schema.columns \
                         WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 ORDER BY ordinal_position",
                    )
                    .bind(schema)
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(read)?;
                    for row in &rows {
                        found.push(described(row).map_err(read)?);
                    }
                }
                Conn::MySql(conn) => {
                    let rows = sqlx::query(
                        "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(column_type AS CHAR), \
                         CAST(numeric_precision AS SIGNED), CAST(numeric_scale AS SIGNED) FROM information_schema.columns \
                         WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ORDER BY ordinal_position",
                    )
                    .bind(schema)
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(read)?;
                    for row in &rows {
                        found.push(described(row).map_err(read)?);
                    }
                }
            }
            if found.is_empty() {
                return Err(Error::NoTable { location: location.to_owned(), table: table.clone() });
            }
        }
        (None, Some(query)) => {
            let described: Vec<(String, String)> = match conn {
                Conn::Postgres(conn) => {
                    let d = conn.describe(query.as_str()).await.map_err(read)?;
                    d.columns().iter().map(|c| (c.name().to_owned(), c.type_info().name().to_owned())).collect()
                }
                Conn::MySql(conn) => {
                    let d = conn.describe(query.as_str()).await.map_err(read)?;
                    d.columns().iter().map(|c| (c.name().to_owned(), c.type_info().name().to_owned())).collect()
                }
            };
            found.extend(described.into_iter().map(|(name, type_name)| (name, type_name, None, None, None)));
        }
        (None, None) => {
            return Err(Error::Location { location: location.to_owned(), message: "give table or query".into() });
        }
    }
    found
        .into_iter()
        .map(|(name, type_name, column_type, precision, scale)| {
            let kind = kind_of(engine, &type_name, column_type.as_deref(), precision, scale).ok_or_else(|| {
                Error::UnsupportedType {
                    location: location.to_owned(),
                    column: name.clone(),
                    type_name: column_type.clone().unwrap_or(type_name.clone()),
                }
            })?;
            Ok(SourceColumn { name, kind })
        })
        .collect()
}

/// Open the source: connect (with retries), read its columns, and stream
/// its rows (those at or past `since`, for an incremental job) in batches
/// of `batch_size`; `cell` gets the largest cursor value read.
pub async fn open(
    location: &str,
    spec: &DatabaseSpec,
    base_dir: &Path,
    since: Option<&str>,
    batch_size: usize,
    cell: &CursorCell,
    previous: Option<&[String]>,
) -> Result<Box<dyn Source>> {
    let (engine, mut conn) = connect(location, spec, base_dir).await?;
    // Errors and logs name the location without anything secret in it.
    let location_text = shown_location(location);
    let location = location_text.as_str();
    let columns = columns(location, engine, &mut conn, spec).await?;
    // Schema drift, before anything is read: a dropped, renamed or retyped column is never written silently wrong.
    let signature: Vec<String> = columns.iter().map(|c| format!("{}: {}", c.name, c.kind.data_type())).collect();
    let changes = previous.map(|previous| drift(previous, &signature)).unwrap_or_default();
    if !changes.is_empty() {
        if spec.on_drift.unwrap_or(DriftPolicy::Fail) == DriftPolicy::Fail {
            return Err(Error::Drift { location: location.to_owned(), changes });
        }
        tracing::warn!(location, changes = %changes.join("; "), "source columns changed; reading on (on_drift = continue)");
    }
    cell.learned(signature, changes);
    let cursor_index = match &spec.cursor {
        None => None,
        Some(cursor) => Some(
            columns
                .iter()
                .position(|c| &c.name == cursor)
                .ok_or_else(|| Error::NoCursorColumn { location: location.to_owned(), column: cursor.clone() })?,
        ),
    };
    // The source is aliased, so that the cursor's WHERE and ORDER BY name its column and not the
    // text column of the same name the SELECT makes (ordering by that would sort 1000 before 999).
    let from = match (&spec.table, &spec.query) {
        (Some(table), _) => {
            format!(
                "{} AS civlink_source",
                table.split('.').map(|part| quote(engine, part)).collect::<Vec<_>>().join(".")
            )
        }
        (None, Some(query)) => format!("({query}) AS civlink_source"),
        (None, None) => String::new(),
    };
    let source_column = |name: &str| format!("civlink_source.{}", quote(engine, name));
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("{} AS {}", text_expression(engine, c.kind, &source_column(&c.name)), quote(engine, &c.name)))
        .collect();
    let mut sql = format!("SELECT {} FROM {from}", select.join(", "));
    if let Some(index) = cursor_index {
        let column = &columns[index];
        let quoted = source_column(&column.name);
        if let Some(bound) = since {
            let lookback = spec.lookback.unwrap_or(0);
            sql.push_str(&format!(" WHERE {}", cursor_condition(engine, column.kind, &quoted, bound, lookback)));
        }
        sql.push_str(&format!(" ORDER BY {quoted}"));
    }
    let schema: SchemaRef = Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(&c.name, c.kind.data_type(), true)).collect::<Vec<_>>(),
    ));
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let reader = Reader {
        location: location.to_owned(),
        columns,
        schema,
        cursor_index,
        cell: cell.clone(),
        batch_size: batch_size.max(1),
        tx,
    };
    let task = tokio::spawn(reader.run(conn, sql));
    Ok(Box::new(DatabaseSource { uri: location.to_owned(), rx, first_row: 0, task: Some(task) }))
}

/// The task that reads rows and sends batches.
struct Reader {
    location: String,
    columns: Vec<SourceColumn>,
    schema: SchemaRef,
    cursor_index: Option<usize>,
    cell: CursorCell,
    batch_size: usize,
    tx: mpsc::Sender<Result<RecordBatch>>,
}

impl Reader {
    async fn run(self, conn: Conn, sql: String) {
        let outcome = match conn {
            // PostgreSQL streams the rows as COPY text, parsed here: a fraction of decoding them row by row.
            Conn::Postgres(mut conn) => self.drain_copy(&mut conn, &sql).await,
            Conn::MySql(mut conn) => {
                let mut rows = sqlx::query(&sql).fetch(&mut conn);
                self.drain(&mut rows).await
            }
        };
        if let Err(e) = outcome {
            let _ = self.tx.send(Err(e)).await;
        }
    }

    async fn drain<R, S>(&self, rows: &mut S) -> Result<()>
    where
        R: Row,
        S: futures::Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        let read = |e: sqlx::Error| read_failure(&self.location, e);
        let mut builders: Vec<StringBuilder> = self.columns.iter().map(|_| StringBuilder::new()).collect();
        let mut in_batch = 0;
        while let Some(row) = rows.try_next().await.map_err(read)? {
            for (i, builder) in builders.iter_mut().enumerate() {
                let value: Option<String> = row.try_get(i).map_err(read)?;
                if Some(i) == self.cursor_index
                    && let Some(value) = &value
                {
                    // Rows come in cursor order: the last value is the largest.
                    self.cell.set(value.clone());
                }
                builder.append_option(value);
            }
            in_batch += 1;
            if in_batch == self.batch_size {
                in_batch = 0;
                if !self.send(&mut builders).await? {
                    return Ok(());
                }
            }
        }
        if in_batch > 0 {
            self.send(&mut builders).await?;
        }
        Ok(())
    }

    /// Read `sql`'s rows through `COPY (sql) TO STDOUT` (text format: tab-separated, `\N` for NULL,
    /// backslash escapes), into the same builders as [`Reader::drain`].
    async fn drain_copy(&self, conn: &mut PgConnection, sql: &str) -> Result<()> {
        let read = |e: sqlx::Error| read_failure(&self.location, e);
        let statement = format!("COPY ({}) TO STDOUT", sql.trim().trim_end_matches(';'));
        let mut stream = conn.copy_out_raw(&statement).await.map_err(read)?;
        let mut builders: Vec<StringBuilder> = self.columns.iter().map(|_| StringBuilder::new()).collect();
        let mut in_batch = 0;
        let mut carry: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.try_next().await.map_err(read)? {
            carry.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = carry[start..].iter().position(|&b| b == b'\n') {
                self.copy_row(&carry[start..start + end], &mut builders)?;
                start += end + 1;
                in_batch += 1;
                if in_batch == self.batch_size {
                    in_batch = 0;
                    if !self.send(&mut builders).await? {
                        return Ok(());
                    }
                }
            }
            carry.drain(..start);
        }
        if !carry.is_empty() {
            return Err(Error::ConnectionLost {
                location: self.location.clone(),
                message: "the COPY stream ended inside a row".into(),
            });
        }
        if in_batch > 0 {
            self.send(&mut builders).await?;
        }
        Ok(())
    }

    /// One line of COPY text output into the builders.
    fn copy_row(&self, line: &[u8], builders: &mut [StringBuilder]) -> Result<()> {
        let mut fields = 0;
        for (i, field) in line.split(|&b| b == b'\t').enumerate() {
            fields += 1;
            let Some(builder) = builders.get_mut(i) else { continue };
            if field == b"\\N" {
                builder.append_null();
                continue;
            }
            let value = copy_unescape(field).map_err(|message| Error::Value {
                location: self.location.clone(),
                column: self.columns[i].name.clone(),
                message,
            })?;
            if Some(i) == self.cursor_index {
                // Rows come in cursor order: the last value is the largest.
                self.cell.set(value.clone());
            }
            builder.append_value(value);
        }
        if fields != builders.len() {
            return Err(Error::Read {
                location: self.location.clone(),
                message: format!("a COPY row has {fields} fields, the source {} columns", builders.len()),
            });
        }
        Ok(())
    }

    /// Send the rows gathered so far as one batch; `false` when nobody reads any more.
    async fn send(&self, builders: &mut [StringBuilder]) -> Result<bool> {
        let batch = self.batch(builders)?;
        Ok(self.tx.send(Ok(batch)).await.is_ok())
    }

    /// The rows gathered so far as one typed batch.
    fn batch(&self, builders: &mut [StringBuilder]) -> Result<RecordBatch> {
        let options = CastOptions { safe: false, ..Default::default() };
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(builders.len());
        for (column, builder) in self.columns.iter().zip(builders.iter_mut()) {
            let text: StringArray = builder.finish();
            let value_error = |message: String| Error::Value {
                location: self.location.clone(),
                column: column.name.clone(),
                message,
            };
            let array: ArrayRef = match column.kind.data_type() {
                DataType::Utf8 => Arc::new(text),
                DataType::Binary => {
                    let mut binary = BinaryBuilder::new();
                    for value in text.iter() {
                        match value {
                            None => binary.append_null(),
                            Some(hex_text) => {
                                let bytes = hex::decode(hex_text).map_err(|_| {
                                    value_error("a value is not the hexadecimal the source was asked for".into())
                                })?;
                                binary.append_value(bytes);
                            }
                        }
                    }
                    Arc::new(binary.finish())
                }
                // The cast's own message quotes the value: report the type only.
                target => cast_with_options(&text, &target, &options)
                    .map_err(|_| value_error(format!("a value the source holds is not a valid {target}")))?,
            };
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::clone(&self.schema), arrays).map_err(|e| Error::Value {
            location: self.location.clone(),
            column: String::new(),
            message: e.to_string(),
        })
    }
}

/// The receiving end: a [`Source`] of positioned batches.
struct DatabaseSource {
    uri: String,
    rx: mpsc::Receiver<Result<RecordBatch>>,
    first_row: u64,
    /// The reader task: a panic in it is a failed read, not the end of the rows.
    task: Option<tokio::task::JoinHandle<()>>,
}

#[async_trait::async_trait]
impl Source for DatabaseSource {
    fn uri(&self) -> &str {
        &self.uri
    }

    async fn next_batch(&mut self) -> super::Result<Option<PositionedBatch>> {
        match self.rx.recv().await {
            None => match self.task.take() {
                Some(task) => match task.await {
                    Ok(()) => Ok(None),
                    Err(e) => {
                        Err(Error::Read { location: self.uri.clone(), message: format!("the reader stopped: {e}") }
                            .into())
                    }
                },
                None => Ok(None),
            },
            Some(Err(e)) => Err(e.into()),
            Some(Ok(batch)) => {
                let first_row = self.first_row;
                let rows = batch.num_rows() as u64;
                self.first_row += rows;
                Ok(Some(PositionedBatch {
                    lines: (first_row + 1..=first_row + rows).collect(),
                    batch,
                    first_row,
                    rejects: Vec::new(),
                    delivered: None,
                    sheet: None,
                    layout: None,
                    skipped: Vec::new(),
                }))
            }
        }
    }
}

/// Whether `location` may carry a password: one in its user part, a
/// password-like query parameter (`?password=`, which the drivers accept),
/// or a location that does not parse (fail closed).
pub fn location_has_password(location: &str) -> bool {
    match url::Url::parse(location) {
        Err(_) => true,
        Ok(url) => {
            url.password().is_some()
                || url.query_pairs().any(|(key, _)| {
                    let key = key.to_ascii_lowercase();
                    ["password", "passwd", "pwd", "secret", "token"].iter().any(|k| key.contains(k))
                })
        }
    }
}

pub use super::shown_location;

#[cfg(test)]
mod tests {
    use super::copy_unescape;

    #[test]
    fn copy_text_fields_are_unescaped() {
        assert_eq!(copy_unescape("plain 中文".as_bytes()).unwrap(), "plain 中文");
        assert_eq!(copy_unescape(b"a\\tb\\nc\\\\d\\re").unwrap(), "a\tb\nc\\d\re");
        assert_eq!(copy_unescape(b"\\x41\\101\\b\\f\\v").unwrap(), "AA\u{8}\u{c}\u{b}");
        assert_eq!(copy_unescape(b"\\\\N").unwrap(), "\\N", "an escaped backslash before N is text, not NULL");
        assert!(copy_unescape(b"ends\\").is_err());
        assert!(copy_unescape(&[0xff, 0xfe]).is_err());
    }
}
