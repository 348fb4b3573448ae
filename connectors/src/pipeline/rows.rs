//! Rows set aside: the quarantine table's rows (raw source values and
//! violations), and the run-wide set of primary keys that finds duplicates.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use super::{Result, arrow_err};

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
pub(super) struct QuarantineBuilder {
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
    pub(super) fn new(run_id: &str, at: DateTime<Utc>) -> QuarantineBuilder {
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

    pub(super) fn push(&mut self, kind: &str, source: &str, line: u64, row_index: u64, raw: &str, violations: &str) {
        self.kind.append_value(kind);
        self.source.append_value(source);
        self.line.append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.row_index.append_value(i64::try_from(row_index).unwrap_or(i64::MAX));
        self.raw.append_value(raw);
        self.violations.append_value(violations);
        self.rows += 1;
    }

    pub(super) fn finish(&mut self) -> Result<Option<RecordBatch>> {
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

/// Render one source row as a JSON object of its raw text values.
pub(super) fn raw_row(batch: &RecordBatch, row: usize) -> String {
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

pub(super) fn violations_json(items: &[(&str, &str, &str)]) -> String {
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
pub(super) struct KeySet {
    partitions: Vec<HashSet<u64, std::hash::BuildHasherDefault<IdentityHasher>>>,
}

impl KeySet {
    pub(super) fn new() -> KeySet {
        KeySet { partitions: (0..256).map(|_| HashSet::default()).collect() }
    }

    /// Whether the hash is there.
    pub(super) fn contains(&self, hash: u64) -> bool {
        self.partitions[(hash >> 56) as usize].contains(&hash)
    }

    /// Insert; false when the hash was already there.
    pub(super) fn insert(&mut self, hash: u64) -> bool {
        let partition = (hash >> 56) as usize;
        self.partitions[partition].insert(hash)
    }
}

/// The keys are already well-mixed hashes: hashing them again would only cost time.
#[derive(Default)]
pub(super) struct IdentityHasher(u64);

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
pub(super) fn key_hash(columns: &[&ArrayRef], row: usize) -> Option<u64> {
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
