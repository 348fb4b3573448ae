//! Integration tests of civlink-connectors (one test binary per crate).

mod csv;
mod database;
mod http;
mod job;
mod json;
mod json_types;
mod parquet;
mod schedule;
mod source;
mod xlsx;

use arrow::array::{Array, StringArray};
use civlink_connectors::file::{PositionedBatch, RawReject};

/// Everything a test needs from a stream of batches, flattened.
#[derive(Debug, Default)]
pub struct Collected {
    /// Per good row: (row index, line, values by column, NULL as None).
    pub rows: Vec<(u64, u64, Vec<Option<String>>)>,
    pub rejects: Vec<RawReject>,
    pub batch_sizes: Vec<(usize, usize)>,
}

impl Collected {
    pub fn from_batches(batches: Vec<PositionedBatch>) -> Collected {
        let mut out = Collected::default();
        let mut expected_first_row = 0;
        for b in batches {
            // Batches cover contiguous, consecutive row ranges.
            assert_eq!(b.first_row, expected_first_row, "gap between batches");
            expected_first_row += b.num_records();
            assert_eq!(b.lines.len(), b.batch.num_rows());
            for r in &b.rejects {
                assert!(r.row_index >= b.first_row && r.row_index < b.first_row + b.num_records());
            }
            out.batch_sizes.push((b.batch.num_rows(), b.rejects.len()));
            let indices = b.row_indices();
            let columns: Vec<&StringArray> = b
                .batch
                .columns()
                .iter()
                .map(|c| c.as_any().downcast_ref::<StringArray>().expect("utf8 column"))
                .collect();
            for (row, (&index, &line)) in indices.iter().zip(&b.lines).enumerate() {
                let values = columns.iter().map(|col| (!col.is_null(row)).then(|| col.value(row).to_owned())).collect();
                out.rows.push((index, line, values));
            }
            out.rejects.extend(b.rejects);
        }
        out
    }

    /// Conservation: every data row is either a good row or a reject, and
    /// their indices are exactly 0..n.
    pub fn assert_conserved(&self, data_rows: u64) {
        assert_eq!(self.rows.len() as u64 + self.rejects.len() as u64, data_rows, "rows lost or invented");
        let mut all: Vec<u64> = self.rows.iter().map(|r| r.0).chain(self.rejects.iter().map(|r| r.row_index)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..data_rows).collect::<Vec<_>>());
    }

    /// Values of one good row as `&str`s ("∅" for NULL), for compact asserts.
    pub fn row(&self, i: usize) -> Vec<&str> {
        self.rows[i].2.iter().map(|v| v.as_deref().unwrap_or("∅")).collect()
    }
}
