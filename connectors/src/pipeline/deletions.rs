//! Rows deleted at a database source (`[source.database.deletions]`), found
//! by comparing primary keys and marked in the dataset's soft-delete column
//! within the run's one commit.
//!
//! The source's keys are read the way its rows are: the same connection
//! settings, the same mapping (renames and normalisers), so a key compares
//! equal to the key its row was stored under. Keys compare as text (each key
//! column cast to UTF-8, the parts joined by a unit separator). A comparison
//! that would mark more than `max_share_percent` of the dataset fails the
//! run instead: a source that lost most of its rows is more likely broken
//! than emptied, and nothing is marked.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use civlink_catalog::model::{DatasetRecord, DeletionCheck};
use civlink_catalog::table::{TableWriter, TimeTravel};

use super::{Catalog, Error, Result};
use crate::job::Job;
use crate::source::database::{CursorCell, DeletionSpec};

/// Separates the parts of a composite key.
const KEY_SEPARATOR: char = '\u{1f}';

/// Whether job `job`'s comparison is due at `now`.
pub(super) async fn due(job: &Job, catalog: &Catalog<'_>, spec: &DeletionSpec, now: DateTime<Utc>) -> Result<bool> {
    let every = chrono::Duration::hours(i64::try_from(spec.every_hours.unwrap_or(0)).unwrap_or(i64::MAX / 3_600_000));
    Ok(match catalog.store.job_deletion_check(&job.spec.name).await? {
        Some(last) => now - last >= every,
        None => true,
    })
}

/// Compare the dataset's keys with the source's and write, into `data`, each
/// row whose key the source no longer holds with `spec.column` marked.
pub(super) async fn mark(
    job: &Job,
    catalog: &Catalog<'_>,
    dataset: &DatasetRecord,
    primary_key: &[String],
    spec: &DeletionSpec,
    data: &mut TableWriter,
    now: DateTime<Utc>,
) -> Result<DeletionCheck> {
    let invalid = |message: String| Error::Dataset { dataset: dataset.spec.id.to_string(), message };
    if primary_key.is_empty() {
        return Err(invalid("deletions are found by primary key, and the standard has none".into()));
    }
    let column_type = data
        .schema()
        .field_with_name(&spec.column)
        .map(|f| f.data_type().clone())
        .map_err(|_| invalid(format!("deletions.column {:?} is not a column of the standard", spec.column)))?;
    if primary_key.contains(&spec.column) {
        return Err(invalid(format!("deletions.column {:?} is part of the primary key", spec.column)));
    }
    let source_keys = source_keys(job, primary_key).await?;
    let mut check = DeletionCheck { column: spec.column.clone(), source_keys: source_keys.len() as u64, marked: 0 };
    let Some(version) = dataset.current_version else { return Ok(check) };
    let stored = catalog.tables.read(&dataset.table_uri, TimeTravel::Version(version)).await?;
    let stored_rows: usize = stored.iter().map(RecordBatch::num_rows).sum();
    let mut marked = Vec::new();
    for batch in &stored {
        let keys = key_texts(batch, primary_key)?;
        let flag = batch.column_by_name(&spec.column);
        let gone: Vec<u32> = (0..batch.num_rows())
            .filter(|&row| !already_marked(flag, row) && !source_keys.contains(&keys[row]))
            .filter_map(|row| u32::try_from(row).ok())
            .collect();
        if gone.is_empty() {
            continue;
        }
        let taken = take_record_batch(batch, &arrow::array::UInt32Array::from(gone))
            .map_err(|e| Error::Arrow { message: e.to_string() })?;
        marked.push(with_marker(&taken, &spec.column, &column_type, now)?);
    }
    let count: usize = marked.iter().map(RecordBatch::num_rows).sum();
    let max_share = f64::from(spec.max_share_percent.unwrap_or(50).clamp(1, 100)) / 100.0;
    if stored_rows > 0 && count as f64 > max_share * stored_rows as f64 {
        return Err(invalid(format!(
            "the source lacks {count} of the dataset's {stored_rows} keys, more than deletions.max_share_percent \
             ({}%) allows: nothing is marked; check the source, or raise the share if the deletions are real",
            (max_share * 100.0).round()
        )));
    }
    for batch in &marked {
        data.write(batch).await?;
    }
    check.marked = count as u64;
    Ok(check)
}

/// Every primary key the source holds, read through the job's mapping.
async fn source_keys(job: &Job, primary_key: &[String]) -> Result<HashSet<String>> {
    let spec =
        job.spec.source.database.as_ref().ok_or_else(|| Error::Arrow { message: "no [source.database]".into() })?;
    // A full read (no cursor, no drift check): the comparison needs every key.
    let full = crate::source::database::DatabaseSpec { cursor: None, lookback: None, ..spec.clone() };
    let cell = CursorCell::default();
    let batch_size = job.read_options().batch_size;
    let mut source =
        crate::source::database::open(&job.spec.source.location, &full, &job.base_dir, None, batch_size, &cell, None)
            .await
            .map_err(crate::source::Error::from)?;
    let mut keys = HashSet::new();
    while let Some(positioned) = source.next_batch().await? {
        let mapped = job.mapping.apply(&positioned.batch)?;
        keys.extend(key_texts(&mapped, primary_key)?);
    }
    Ok(keys)
}

/// Each row's key as text.
fn key_texts(batch: &RecordBatch, primary_key: &[String]) -> Result<Vec<String>> {
    let mut parts: Vec<StringArray> = Vec::with_capacity(primary_key.len());
    for column in primary_key {
        let array = batch.column_by_name(column).ok_or_else(|| Error::Arrow {
            message: format!("the primary-key column {column:?} is missing from a batch"),
        })?;
        let text = cast(array, &DataType::Utf8).map_err(|e| Error::Arrow { message: e.to_string() })?;
        let text = text.as_any().downcast_ref::<StringArray>().cloned().ok_or_else(|| Error::Arrow {
            message: format!("the primary-key column {column:?} did not cast to text"),
        })?;
        parts.push(text);
    }
    Ok((0..batch.num_rows())
        .map(|row| {
            let mut key = String::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    key.push(KEY_SEPARATOR);
                }
                if part.is_valid(row) {
                    key.push_str(part.value(row));
                }
            }
            key
        })
        .collect())
}

/// Whether the soft-delete column already marks `row` (a non-null value; for a boolean, `true`).
fn already_marked(flag: Option<&ArrayRef>, row: usize) -> bool {
    let Some(flag) = flag else { return false };
    if flag.is_null(row) {
        return false;
    }
    match flag.as_any().downcast_ref::<BooleanArray>() {
        Some(booleans) => booleans.value(row),
        None => true,
    }
}

/// `batch` with `column` set to the marker of its type.
fn with_marker(batch: &RecordBatch, column: &str, data_type: &DataType, now: DateTime<Utc>) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let marker: ArrayRef = match data_type {
        DataType::Boolean => std::sync::Arc::new(BooleanArray::from(vec![true; rows])),
        DataType::Utf8 => {
            std::sync::Arc::new(StringArray::from(vec![now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true); rows]))
        }
        DataType::Date32 => {
            let days = now.date_naive().signed_duration_since(DateTime::<Utc>::UNIX_EPOCH.date_naive()).num_days();
            std::sync::Arc::new(Date32Array::from(vec![i32::try_from(days).unwrap_or(i32::MAX); rows]))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => std::sync::Arc::new(
            TimestampMicrosecondArray::from(vec![now.timestamp_micros(); rows]).with_timezone_opt(zone.clone()),
        ),
        other => {
            return Err(Error::Arrow {
                message: format!(
                    "deletions.column {column:?} has type {other}; a soft-delete column is a boolean, date, \
                     timestamp or string"
                ),
            });
        }
    };
    let index = batch.schema().index_of(column).map_err(|e| Error::Arrow { message: e.to_string() })?;
    let mut columns = batch.columns().to_vec();
    columns[index] = marker;
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| Error::Arrow { message: e.to_string() })
}
