//! Parquet reading.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use civlink_connectors::file::{self, CsvOptions, Error, ParquetReader};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

fn write_parquet(path: &std::path::Path, compression: Compression) -> Arc<Schema> {
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("姓名", DataType::Utf8, true)]));
    let file = std::fs::File::create(path).unwrap();
    let props = WriterProperties::builder().set_compression(compression).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    for chunk in 0..2i64 {
        let ids: Vec<i64> = (chunk * 3..chunk * 3 + 3).collect();
        let names: Vec<Option<String>> = ids.iter().map(|i| (i % 2 == 0).then(|| format!("名{i}"))).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
        )
        .unwrap();
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
    schema
}

#[test]
fn round_trip_keeps_types_and_counts_rows() {
    for compression in [Compression::UNCOMPRESSED, Compression::SNAPPY] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let schema = write_parquet(&path, compression);
        let reader = ParquetReader::open(&path, 4).unwrap();
        assert_eq!(reader.schema().fields(), schema.fields());
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        let shape: Vec<(u64, Vec<u64>)> = batches.iter().map(|b| (b.first_row, b.lines.clone())).collect();
        assert_eq!(shape, [(0, vec![1, 2, 3, 4]), (4, vec![5, 6])]);
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for b in &batches {
            assert!(b.rejects.is_empty());
            let id = b.batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let name = b.batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend(id.values().iter().copied());
            names.extend((0..name.len()).map(|i| (!name.is_null(i)).then(|| name.value(i).to_owned())));
        }
        assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
        assert_eq!(names[2].as_deref(), Some("名2"));
        assert_eq!(names[3], None);
    }
}

#[test]
fn open_dispatches_to_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.parquet");
    write_parquet(&path, Compression::SNAPPY);
    let rows: usize =
        file::open(&path, None, CsvOptions::default(), 100).unwrap().map(|b| b.unwrap().batch.num_rows()).sum();
    assert_eq!(rows, 6);
}

#[test]
fn not_a_parquet_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.parquet");
    std::fs::write(&path, b"id,name\n1,x\n").unwrap();
    assert!(matches!(ParquetReader::open(&path, 10), Err(Error::Parquet { .. })));
}
