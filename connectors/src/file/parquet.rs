//! Streaming Parquet reader. Parquet is already typed and columnar, so
//! batches are passed through as stored (no `Utf8` conversion); positions are
//! 1-based row ordinals, since Parquet has no lines. Snappy-compressed files
//! (the default of most writers) are supported.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::{Error, PositionedBatch, Result, check_batch_size};

/// Streams a Parquet file as [`PositionedBatch`]es of its stored types.
///
/// Rows are never rejected (a decoding failure affects a whole page, so it
/// is yielded as `Err` and the iterator ends).
pub struct ParquetReader {
    path: String,
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    next_row: u64,
    finished: bool,
}

impl ParquetReader {
    /// Opens the Parquet file at `path`, reading `batch_size` rows at a time.
    pub fn open(path: &Path, batch_size: usize) -> Result<ParquetReader> {
        check_batch_size(batch_size)?;
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        let parquet_error =
            |e: parquet::errors::ParquetError| Error::Parquet { path: name.clone(), message: e.to_string() };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let schema = builder.schema().clone();
        let reader = builder.with_batch_size(batch_size).build().map_err(parquet_error)?;
        Ok(ParquetReader { path: name, reader, schema, next_row: 0, finished: false })
    }

    /// The Arrow schema of the file.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for ParquetReader {
    type Item = Result<PositionedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.reader.next()? {
            Ok(batch) => {
                let first_row = self.next_row;
                let rows = batch.num_rows() as u64;
                self.next_row += rows;
                Some(Ok(PositionedBatch {
                    batch,
                    first_row,
                    lines: (first_row + 1..=first_row + rows).collect(),
                    rejects: Vec::new(),
                    delivered: None,
                    sheet: None,
                    layout: None,
                    skipped: Vec::new(),
                }))
            }
            Err(source) => {
                self.finished = true;
                Some(Err(Error::Arrow { path: self.path.clone(), source }))
            }
        }
    }
}
