//! The types results travel in: string and binary views as their plain
//! forms (every client and driver reads those), and dictionaries as their
//! values, recursively. Both transports send results in these types, and the
//! table cache keeps tables in them, so a scan of a cached table hands out
//! its buffers as they are instead of converting every batch of every query.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The plain type of `t`.
pub fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::List(f) => DataType::List(Arc::new(plain_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(plain_field(f))),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(Arc::new(plain_field(f)), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| plain_field(f)).collect::<Fields>()),
        other => other.clone(),
    }
}

fn plain_field(field: &Field) -> Field {
    field.clone().with_data_type(plain_type(field.data_type()))
}

/// The schema results travel with.
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(|f| plain_field(f)).collect::<Fields>(),
        schema.metadata().clone(),
    ))
}

/// A batch in the plain schema `plain` (a no-op but for the schema when the
/// types already match, as they do for tables served from the cache).
pub fn to_plain(batch: &RecordBatch, plain: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields().iter().zip(plain.fields()).all(|(a, b)| a.data_type() == b.data_type()) {
        return RecordBatch::try_new(Arc::clone(plain), batch.columns().to_vec());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(plain.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(Arc::clone(plain), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, StringViewArray};

    #[test]
    fn views_travel_as_plain_strings() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new("b", DataType::Int64, false),
            Field::new("c", DataType::List(Arc::new(Field::new("item", DataType::Utf8View, true))), true),
        ]);
        let plain = plain_schema(&schema);
        assert_eq!(plain.field(0).data_type(), &DataType::Utf8);
        assert_eq!(plain.field(1).data_type(), &DataType::Int64);
        assert_eq!(plain.field(2).data_type(), &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))));
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8View, true)]));
        let batch =
            RecordBatch::try_new(one.clone(), vec![Arc::new(StringViewArray::from(vec!["青海", "x"]))]).unwrap();
        let out = to_plain(&batch, &plain_schema(&one)).unwrap();
        assert_eq!(out.column(0).as_string::<i32>().value(0), "青海");
    }

    #[test]
    fn dictionaries_travel_as_their_values() {
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8View));
        let schema = Arc::new(Schema::new(vec![Field::new("code", dictionary, true)]));
        let plain = plain_schema(&schema);
        assert_eq!(plain.field(0).data_type(), &DataType::Utf8, "the dictionary's values, views as plain strings");
        let values: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
            vec![Some("男"), None, Some("女"), Some("男")].into_iter().collect();
        let values = arrow::compute::cast(&values, schema.field(0).data_type()).unwrap();
        let out = to_plain(&RecordBatch::try_new(schema, vec![values]).unwrap(), &plain).unwrap();
        let strings = out.column(0).as_string::<i32>();
        assert_eq!(strings.iter().collect::<Vec<_>>(), [Some("男"), None, Some("女"), Some("男")]);
    }
}
