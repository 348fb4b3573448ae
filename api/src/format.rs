//! Result formats: chosen by `Accept`, written batch by batch.
//!
//! | `Accept` | [`Format`] | body |
//! |---|---|---|
//! | `application/json` (and `*/*`, none) | [`Format::Json`] | one JSON document (a page object for rows, `{"columns", "rows"}` for SQL) |
//! | `application/x-ndjson`, `application/ndjson` | [`Format::Ndjson`] | one JSON object per line |
//! | `text/csv` | [`Format::Csv`] | RFC 4180 with a header row; `?bom=true` puts a UTF-8 BOM first, so that Excel reads Chinese text as UTF-8 |
//! | `application/vnd.apache.arrow.stream` | [`Format::Arrow`] | an Arrow IPC stream |
//! | `application/vnd.apache.parquet`, `application/x-parquet` | [`Format::Parquet`] | a Parquet file (zstd, row groups of [`PARQUET_ROW_GROUP_ROWS`]) |
//!
//! Anything else is a 406 that lists these. An [`Encoder`] turns batches
//! into body chunks as they come, so a result of any size is written in
//! bounded memory ([`streamed`]): it holds at most one batch (Parquet: one
//! row group) at a time.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

use crate::error::{Error, Result};

/// Rows per Parquet row group: what a Parquet download holds in memory at once.
pub const PARQUET_ROW_GROUP_ROWS: usize = 65_536;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The media types offered, in the order a 406 lists them.
pub const OFFERED: [&str; 5] = [
    "application/json",
    "application/x-ndjson",
    "text/csv",
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.parquet",
];

/// A result format (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// Newline-delimited JSON.
    Ndjson,
    /// CSV with a header row; `bom`: a UTF-8 BOM first.
    Csv {
        /// Whether the body starts with a UTF-8 BOM.
        bom: bool,
    },
    /// Arrow IPC stream.
    Arrow,
    /// Parquet.
    Parquet,
}

impl Format {
    /// The format the `Accept` header asks for (the highest `q` among those
    /// offered; the first listed among equals). `bom` applies to CSV.
    pub fn negotiate(headers: &HeaderMap, bom: bool) -> Result<Format> {
        let Some(accept) = headers.get(header::ACCEPT) else { return Ok(Format::Json) };
        let accept = accept.to_str().map_err(|_| Error::NotAcceptable { offered: OFFERED.to_vec() })?;
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0f32;
            for parameter in parts {
                if let Some(value) = parameter.strip_prefix("q=") {
                    q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
                }
            }
            let format = match media.as_str() {
                "application/json" | "application/*" | "*/*" | "application/problem+json" => Format::Json,
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Format::Ndjson,
                "text/csv" | "text/*" => Format::Csv { bom },
                "application/vnd.apache.arrow.stream" => Format::Arrow,
                "application/vnd.apache.parquet" | "application/x-parquet" => Format::Parquet,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.map(|(_, f)| f).ok_or_else(|| Error::NotAcceptable { offered: OFFERED.to_vec() })
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv { .. } => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// A `Vec` shared between a writer that owns its sink and the code that
/// drains what it wrote.
#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes batches in one [`Format`] as body chunks.
pub struct Encoder {
    kind: Kind,
    /// Whether anything was written yet (a JSON array's comma, CSV's header).
    started: bool,
}

enum Kind {
    /// `head` is written before the first row: `{"columns":[…],"rows":[`.
    Json {
        head: Vec<u8>,
    },
    Ndjson,
    Csv {
        bom: bool,
    },
    Arrow(Box<arrow::ipc::writer::StreamWriter<Shared>>, Shared),
    Parquet(Box<parquet::arrow::ArrowWriter<Shared>>, Shared),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("started", &self.started).finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder of batches of `schema`. JSON writes the SQL result shape
    /// `{"columns": [...], "rows": [...]}`.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Encoder> {
        let kind = match format {
            Format::Json => {
                let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let mut head = b"{\"columns\":".to_vec();
                head.extend(serde_json::to_vec(&columns).map_err(|e| Error::Engine { message: e.to_string() })?);
                head.extend_from_slice(b",\"rows\":[");
                Kind::Json { head }
            }
            Format::Ndjson => Kind::Ndjson,
            Format::Csv { bom } => Kind::Csv { bom },
            Format::Arrow => {
                let sink = Shared::default();
                Kind::Arrow(Box::new(arrow::ipc::writer::StreamWriter::try_new(sink.clone(), schema)?), sink)
            }
            Format::Parquet => {
                let sink = Shared::default();
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
                    .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()))
                    .build();
                let writer = parquet::arrow::ArrowWriter::try_new(sink.clone(), Arc::clone(schema), Some(properties))
                    .map_err(|e| Error::Engine { message: format!("parquet: {e}") })?;
                Kind::Parquet(Box::new(writer), sink)
            }
        };
        Ok(Encoder { kind, started: false })
    }

    /// What goes before the first batch (the Arrow schema message, JSON's head).
    pub fn start(&mut self) -> Result<Bytes> {
        match &mut self.kind {
            Kind::Json { head } => Ok(Bytes::from(std::mem::take(head))),
            Kind::Arrow(_, sink) => Ok(Bytes::from(sink.take())),
            Kind::Csv { bom: true } => Ok(Bytes::from_static(BOM)),
            Kind::Ndjson | Kind::Csv { bom: false } | Kind::Parquet(..) => Ok(Bytes::new()),
        }
    }

    /// The chunk for `batch`.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes> {
        if batch.num_rows() == 0 {
            return Ok(Bytes::new());
        }
        let started = std::mem::replace(&mut self.started, true);
        match &mut self.kind {
            Kind::Json { .. } => {
                let lines = ndjson(batch)?;
                let mut out = Vec::with_capacity(lines.len() + 1);
                // Each object is one line (JSON escapes newlines inside strings).
                for (i, line) in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                    if started || i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                }
                Ok(Bytes::from(out))
            }
            Kind::Ndjson => Ok(Bytes::from(ndjson(batch)?)),
            Kind::Csv { .. } => {
                let mut writer = arrow::csv::WriterBuilder::new().with_header(!started).build(Vec::new());
                writer.write(batch)?;
                Ok(Bytes::from(writer.into_inner()))
            }
            Kind::Arrow(writer, sink) => {
                writer.write(batch)?;
                Ok(Bytes::from(sink.take()))
            }
            Kind::Parquet(writer, sink) => {
                writer.write(batch).map_err(|e| Error::Engine { message: format!("parquet: {e}") })?;
                Ok(Bytes::from(sink.take()))
            }
        }
    }

    /// What ends the body (JSON's closing, Arrow's end of stream, Parquet's footer).
    pub fn finish(self, schema: &SchemaRef) -> Result<Bytes> {
        match self.kind {
            Kind::Json { head } => {
                // A result without rows still has its head (when `start` was not called).
                let mut out = head;
                out.extend_from_slice(b"]}");
                Ok(Bytes::from(out))
            }
            Kind::Ndjson => Ok(Bytes::new()),
            Kind::Csv { .. } if !self.started => {
                // No rows: the header alone.
                let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(Vec::new());
                writer.write(&RecordBatch::new_empty(Arc::clone(schema)))?;
                Ok(Bytes::from(writer.into_inner()))
            }
            Kind::Csv { .. } => Ok(Bytes::new()),
            Kind::Arrow(mut writer, sink) => {
                writer.finish()?;
                Ok(Bytes::from(sink.take()))
            }
            Kind::Parquet(writer, sink) => {
                writer.close().map_err(|e| Error::Engine { message: format!("parquet: {e}") })?;
                Ok(Bytes::from(sink.take()))
            }
        }
    }
}

/// `batch` as newline-delimited JSON objects, nulls written as `null`.
pub fn ndjson(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner())
}

/// `batch` as a JSON array of objects, nulls written as `null`.
pub fn json_array(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner())
}

/// A whole body of `batches` in `format`, built at once: for results already
/// bounded in size (a page).
pub fn encode_all(format: Format, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut encoder = Encoder::new(format, schema)?;
    let mut out = encoder.start()?.to_vec();
    for batch in batches {
        out.extend_from_slice(&encoder.batch(batch)?);
    }
    out.extend_from_slice(&encoder.finish(schema)?);
    Ok(out)
}

/// A response whose body is `batches` in `format`, encoded as they arrive.
///
/// The status and headers are sent before the first batch is computed; a
/// failure after that cannot become a problem document, so it is logged
/// (values redacted) and the body is cut short, which every client sees as
/// an incomplete transfer (no final chunk), never as a complete result.
pub fn streamed<S>(format: Format, schema: SchemaRef, batches: S) -> Result<Response>
where
    S: Stream<Item = Result<RecordBatch>> + Send + 'static,
{
    let mut encoder = Encoder::new(format, &schema)?;
    let head = encoder.start()?;
    let state = (Some(encoder), Box::pin(batches), schema);
    let body = futures::stream::unfold(state, |(encoder, mut batches, schema)| async move {
        let mut encoder = encoder?;
        match batches.next().await {
            Some(Ok(batch)) => {
                let chunk = encoder.batch(&batch);
                Some((chunk.map_err(cut), (Some(encoder), batches, schema)))
            }
            Some(Err(e)) => Some((Err(cut(e)), (None, batches, schema))),
            None => {
                let last = encoder.finish(&schema);
                Some((last.map_err(cut), (None, batches, schema)))
            }
        }
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(body);
    let mut response = Body::from_stream(body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(response)
}

/// A failure in the middle of a streamed body: logged, and the body is cut.
fn cut(error: Error) -> std::io::Error {
    let detail = civlink_query::redact::quoted_values(&error.to_string());
    tracing::warn!(error = %detail, "a streamed REST result failed after its first bytes; the body is cut short");
    std::io::Error::other("the result failed while it was being sent")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("张*"), None, Some("a,\"b\"\nc")])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn accept_picks_the_best_offered_format() {
        assert_eq!(Format::negotiate(&HeaderMap::new(), false).unwrap(), Format::Json);
        assert_eq!(Format::negotiate(&accept("*/*"), false).unwrap(), Format::Json);
        assert_eq!(Format::negotiate(&accept("text/csv"), true).unwrap(), Format::Csv { bom: true });
        assert_eq!(
            Format::negotiate(&accept("application/json;q=0.5, application/vnd.apache.arrow.stream"), false).unwrap(),
            Format::Arrow
        );
        assert_eq!(
            Format::negotiate(&accept("text/html, application/x-parquet;q=0.2"), false).unwrap(),
            Format::Parquet
        );
        assert_eq!(Format::negotiate(&accept("application/x-ndjson"), false).unwrap(), Format::Ndjson);
        for refused in ["text/html", "application/json;q=0", "image/png, text/plain"] {
            assert!(
                matches!(Format::negotiate(&accept(refused), false), Err(Error::NotAcceptable { .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn every_format_round_trips_through_its_reader() {
        let b = batch();
        let schema = b.schema();
        let batches = [b.clone(), b.slice(0, 1)];

        let json: serde_json::Value =
            serde_json::from_slice(&encode_all(Format::Json, &schema, &batches).unwrap()).unwrap();
        assert_eq!(json["columns"], serde_json::json!(["name", "n"]));
        assert_eq!(json["rows"].as_array().map(Vec::len), Some(4));
        assert_eq!(json["rows"][1], serde_json::json!({"name": null, "n": 2}));
        assert_eq!(json["rows"][2]["name"], "a,\"b\"\nc");

        let lines = encode_all(Format::Ndjson, &schema, &batches).unwrap();
        let rows: Vec<serde_json::Value> = lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);

        let csv = encode_all(Format::Csv { bom: true }, &schema, &batches).unwrap();
        assert!(csv.starts_with(BOM));
        let mut reader = csv::Reader::from_reader(&csv[BOM.len()..]);
        assert_eq!(reader.headers().unwrap(), vec!["name", "n"]);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 4, "one header row only");
        assert_eq!(&records[0][0], "张*");
        assert_eq!(&records[2][0], "a,\"b\"\nc");

        let ipc = encode_all(Format::Arrow, &schema, &batches).unwrap();
        let read: Vec<RecordBatch> = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read, batches.to_vec());

        let file = encode_all(Format::Parquet, &schema, &batches).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 4);
    }

    #[test]
    fn empty_results_are_still_well_formed() {
        let schema = batch().schema();
        let json: serde_json::Value = serde_json::from_slice(&encode_all(Format::Json, &schema, &[]).unwrap()).unwrap();
        assert_eq!(json["rows"], serde_json::json!([]));
        let csv = encode_all(Format::Csv { bom: false }, &schema, &[]).unwrap();
        assert_eq!(csv, b"name,n\n");
        let ipc = encode_all(Format::Arrow, &schema, &[]).unwrap();
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
        assert_eq!(reader.schema(), schema);
    }
}
