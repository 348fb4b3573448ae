//! Rows deleted at a database source (`[source.database.deletions]`), found
//! by comparing primary keys and marked in the dataset's soft-delete column
//! within the run's one commit.
//!
//! The source's keys are read the way its rows are: the same connection
//! settings, the same mapping (renames and normalisers), then cast to the
//! table's key types, so a key compares equal to the key its row was stored
//! under (`"0042"` read as the integer 42, a timestamp in UTC). Keys compare
//! by the hash the run's duplicate check uses. A stored row whose key this
//! run wrote is never marked: the run's own read says it is there (and a
//! marked copy beside the fresh row would give the merge two rows for one
//! key). A comparison
//! that would mark more than `max_share_percent` of the dataset fails the
//! run instead: a source that lost most of its rows is more likely broken
//! than emptied, and nothing is marked.

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use civlink_catalog::model::{DatasetRecord, DeletionCheck};
use civlink_catalog::table::{TableWriter, TimeTravel};

use super::rows::{KeySet, key_hash};
use super::{Catalog, Error, Result};
use crate::job::Job;
use crate::source::database::{CursorCell, DeletionSpec};

/// Whether job `job`'s comparison is due at `now`.
pub(super) async fn due(job: &Job, catalog: &Catalog<'_>, spec: &DeletionSpec, now: DateTime<Utc>) -> Result<bool> {
    // Capped at ten years (the job check refuses more), so the duration never overflows.
    let every = chrono::Duration::hours(i64::try_from(spec.every_hours.unwrap_or(0).min(87_600)).unwrap_or(87_600));
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
    written: &KeySet,
) -> Result<DeletionCheck> {
    let now = Utc::now();
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
    let table_schema = std::sync::Arc::clone(data.schema());
    let (source_keys, source_count) = source_keys(job, primary_key, &table_schema).await?;
    let mut check = DeletionCheck { column: spec.column.clone(), source_keys: source_count, marked: 0 };
    let Some(version) = dataset.current_version else { return Ok(check) };
    let stored = catalog.tables.read(&dataset.table_uri, TimeTravel::Version(version)).await?;
    let stored_rows: usize = stored.iter().map(RecordBatch::num_rows).sum();
    let mut marked = Vec::new();
    for batch in &stored {
        let keys = key_columns(batch, primary_key, &table_schema)?;
        let keys: Vec<&ArrayRef> = keys.iter().collect();
        let flag = batch.column_by_name(&spec.column);
        let gone: Vec<u32> = (0..batch.num_rows())
            .filter(|&row| {
                !already_marked(flag, row)
                    && key_hash(&keys, row).is_some_and(|hash| !source_keys.contains(hash) && !written.contains(hash))
            })
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

/// Every primary key the source holds, read through the job's mapping and
/// cast to the table's key types: their hashes, and how many there are.
async fn source_keys(job: &Job, primary_key: &[String], table: &SchemaRef) -> Result<(KeySet, u64)> {
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
    let mut keys = KeySet::new();
    let mut count = 0;
    while let Some(positioned) = source.next_batch().await? {
        let mapped = job.mapping.apply(&positioned.batch)?;
        let columns = key_columns(&mapped, primary_key, table)?;
        let columns: Vec<&ArrayRef> = columns.iter().collect();
        for row in 0..mapped.num_rows() {
            // A key that does not cast (NULL after the cast) matches no stored row.
            if let Some(hash) = key_hash(&columns, row)
                && keys.insert(hash)
            {
                count += 1;
            }
        }
    }
    Ok((keys, count))
}

/// The primary-key columns of `batch`, cast to the table's types.
fn key_columns(batch: &RecordBatch, primary_key: &[String], table: &SchemaRef) -> Result<Vec<ArrayRef>> {
    primary_key
        .iter()
        .map(|column| {
            let array = batch.column_by_name(column).ok_or_else(|| Error::Arrow {
                message: format!("the primary-key column {column:?} is missing from a batch"),
            })?;
            let target = table.field_with_name(column).map_err(|e| Error::Arrow { message: e.to_string() })?;
            cast(array, target.data_type()).map_err(|e| Error::Arrow { message: e.to_string() })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn source_keys_compare_in_the_tables_types() {
        let table: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let source = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["0042", "7", "x"]))],
        )
        .unwrap();
        let stored = RecordBatch::try_new(Arc::clone(&table), vec![Arc::new(Int64Array::from(vec![42, 8]))]).unwrap();
        let key = vec!["n".to_owned()];
        let from_source = key_columns(&source, &key, &table).unwrap();
        let from_table = key_columns(&stored, &key, &table).unwrap();
        let hash = |columns: &[ArrayRef], row| key_hash(&columns.iter().collect::<Vec<_>>(), row);
        assert_eq!(hash(&from_source, 0), hash(&from_table, 0), "\"0042\" is the stored 42");
        assert_ne!(hash(&from_source, 1), hash(&from_table, 1));
        assert_eq!(hash(&from_source, 2), None, "a key that does not cast matches nothing");
    }

    #[test]
    fn a_marker_fits_the_columns_type() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("gone", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(vec!["a", "b"])), Arc::new(BooleanArray::from(vec![None, Some(false)]))],
        )
        .unwrap();
        let marked = with_marker(&batch, "gone", &DataType::Boolean, Utc::now()).unwrap();
        let gone = marked.column(1).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(gone.value(0) && gone.value(1));
        assert!(!already_marked(batch.column_by_name("gone"), 0) && !already_marked(batch.column_by_name("gone"), 1));
        assert!(already_marked(marked.column_by_name("gone"), 0));
        assert!(with_marker(&batch, "gone", &DataType::Float64, Utc::now()).is_err());
    }
}
