//! [`FastDoGet`]: `DoGet` answered without copying the result's buffers.
//!
//! Through tonic's generated service a result batch is copied twice before
//! the kernel copies it into the socket: arrow-flight's `FlightDataEncoder`
//! copies every column buffer into one IPC body, then tonic's codec copies
//! the whole `FlightData` message into its own send buffer. In a full scan
//! those copies (and the reallocations of the growing body) are most of the
//! server's CPU.
//!
//! `FastDoGet` sits in front of arrow-flight's `FlightServiceServer` and
//! answers `DoGet` itself; every other method goes to the generated server.
//! For a statement ticket it takes the record batches from
//! [`CivlinkFlightSql`] (the same authentication, scoping, limits and audit
//! as the tonic path), encodes them with arrow-ipc's [`StreamEncoder`], which
//! hands out the column buffers themselves instead of a copy, and writes each
//! IPC message as one gRPC message (`FlightData { data_header, data_body }`)
//! whose body is a list of `Bytes` that point into the batch's buffers.
//! hyper sends those with vectored writes. Small pieces (prefixes, padding,
//! validity bitmaps) are gathered into one buffer, so the response is not
//! cut into tiny HTTP/2 frames. Other tickets (metadata commands) take
//! arrow-flight's encoded messages and frame them as tonic would.
//!
//! Tables held in the server's cache go further: each cached batch is kept
//! as the IPC message it travels as ([`crate::encoded::PreEncoded`]), its columns slices of
//! that one body, so when a scan passes a cached batch through unchanged
//! (`SELECT *` of a cached table, unscoped and unmasked) the message goes out
//! as it is: one header and one contiguous body, nothing encoded or copied.
//!
//! The response is an ordinary gRPC response: `content-type:
//! application/grpc`, length-prefixed messages, and `grpc-status` in the
//! trailers (an error before the first message is a trailers-only response).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::MessageHeader;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamEncoder};
use arrow::record_batch::RecordBatch;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::{FlightData, Ticket};
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderMap, HeaderValue};
use tonic::server::NamedService;

use civlink_query::Error;

use crate::encoded::{EncodedBatch, PreEncoded, split_for_grpc};
use crate::error::to_status;
use crate::service::{CivlinkFlightSql, DoGetResults};

/// The gRPC path of `DoGet`.
pub const DO_GET_PATH: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// The largest `DoGet` request read: a ticket is a statement handle (the SQL
/// and its bound parameters), far below this.
const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Pieces at least this large go out as they are; smaller ones are copied
/// into the buffer that gathers a message's prefix and padding. hyper writes
/// each chunk as its own HTTP/2 frame with its own `writev`, and on loopback
/// a write and the reader's wake-up cost more than copying a few hundred KiB,
/// so only really large buffers are worth sending in place.
const ZERO_COPY_MIN_BYTES: usize = 64 << 10;

/// `FlightData.data_header` and `FlightData.data_body` (Flight.proto).
const DATA_HEADER_FIELD: u32 = 2;
const DATA_BODY_FIELD: u32 = 1000;

/// The civlink Flight SQL service with the zero-copy `DoGet` (see the module
/// docs). Mount it where the generated server would go.
#[derive(Clone)]
pub struct FastDoGet {
    service: CivlinkFlightSql,
    generated: FlightServiceServer<CivlinkFlightSql>,
}

impl FastDoGet {
    /// `service`, with `DoGet` answered here and the rest by arrow-flight's
    /// generated server.
    pub fn new(service: CivlinkFlightSql) -> FastDoGet {
        FastDoGet { generated: FlightServiceServer::new(service.clone()), service }
    }
}

impl std::fmt::Debug for FastDoGet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastDoGet").field("service", &self.service).finish_non_exhaustive()
    }
}

impl NamedService for FastDoGet {
    const NAME: &'static str = <FlightServiceServer<CivlinkFlightSql> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for FastDoGet {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<Body>>::poll_ready(&mut self.generated, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != DO_GET_PATH {
            return Box::pin(Service::<http::Request<Body>>::call(&mut self.generated, request));
        }
        let service = self.service.clone();
        Box::pin(async move {
            Ok(match do_get(&service, request).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

/// Read the ticket, ask the service for the results, and stream them.
async fn do_get(service: &CivlinkFlightSql, request: http::Request<Body>) -> Result<http::Response<Body>, Status> {
    let (parts, body) = request.into_parts();
    let ticket = read_ticket(body).await?;
    let request = tonic::Request::from_http(http::Request::from_parts(parts, ticket));
    let mut framer = Framer::default();
    let source = match service.do_get_results(request).await? {
        DoGetResults::Batches { schema, batches, pre_encoded } => {
            framer.schema(&schema)?;
            Source::Batches { encoder: encoder(&schema)?, batches, pre_encoded }
        }
        DoGetResults::Encoded(messages) => Source::Encoded(messages),
    };
    let body = DoGetBody { source: Some(source), framer, trailers: None };
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    Ok(response)
}

fn encoder(schema: &SchemaRef) -> Result<Box<StreamEncoder>, Status> {
    StreamEncoder::try_new(schema).map(Box::new).map_err(|e| encode_failed(&e))
}

/// Every failure here maps to a status through the crate's one mapping
/// ([`to_status`]): encoding failures are internal (logged, not shown).
fn encode_failed(error: &ArrowError) -> Status {
    arrow_failure(format!("encoding a DoGet result: {error}"))
}

fn arrow_failure(message: String) -> Status {
    to_status(&Error::Arrow { message })
}

fn bad_request(message: impl Into<String>) -> Status {
    to_status(&Error::InvalidRequest { message: message.into() })
}

/// The one length-prefixed `Ticket` message of a `DoGet` request.
async fn read_ticket(body: Body) -> Result<Ticket, Status> {
    let bytes = http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| bad_request(format!("the DoGet request was cut off or is larger than {MAX_REQUEST_BYTES} bytes")))?
        .to_bytes();
    let Some((&compressed, rest)) = bytes.split_first() else {
        return Err(bad_request("the DoGet request holds no message"));
    };
    if compressed != 0 {
        return Err(to_status(&Error::Unsupported { what: "compressed requests".into() }));
    }
    let (length, message) = rest.split_at_checked(4).ok_or_else(|| bad_request("truncated gRPC frame"))?;
    let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    if message.len() != length {
        return Err(bad_request("the DoGet request must hold exactly one message"));
    }
    Ticket::decode(message).map_err(|e| bad_request(format!("not a Flight ticket: {e}")))
}

/// Where a response's messages come from.
enum Source {
    /// A statement's batches; the schema message is already framed.
    Batches {
        encoder: Box<StreamEncoder>,
        batches: futures::stream::BoxStream<'static, Result<RecordBatch, Status>>,
        pre_encoded: PreEncoded,
    },
    Encoded(futures::stream::BoxStream<'static, Result<FlightData, Status>>),
}

/// The response body: framed messages, then the `grpc-status` trailers.
struct DoGetBody {
    /// `None` once the results ended (or failed).
    source: Option<Source>,
    framer: Framer,
    trailers: Option<HeaderMap>,
}

impl DoGetBody {
    /// Stop reading the results and end with `status` (dropping the query's
    /// stream stops the query).
    fn end(&mut self, status: &Status) {
        self.source = None;
        let mut trailers = HeaderMap::new();
        if let Err(e) = status.add_header(&mut trailers) {
            tracing::error!(error = %e, "cannot write the grpc-status trailers");
        }
        self.trailers = Some(trailers);
    }

    /// Frame the source's next item; `Ready` once something changed.
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(source) = self.source.as_mut() else { return Poll::Ready(()) };
        let framer = &mut self.framer;
        let step = match source {
            Source::Batches { encoder, batches, pre_encoded } => match ready!(batches.poll_next_unpin(cx)) {
                Some(Ok(batch)) => match pre_encoded.find(&batch) {
                    Some(encoded) => framer.pre_encoded(&encoded),
                    None => split_for_grpc(&batch).iter().try_fold(Step::More, |_, part| {
                        encoder.encode(part).map_err(|e| encode_failed(&e)).and_then(|b| framer.ipc_messages(b))
                    }),
                },
                Some(Err(status)) => Err(status),
                None => Ok(Step::Ended),
            },
            Source::Encoded(messages) => match ready!(messages.poll_next_unpin(cx)) {
                Some(Ok(message)) => framer.flight_data(&message),
                Some(Err(status)) => Err(status),
                None => Ok(Step::Ended),
            },
        };
        match step {
            Ok(Step::More) => {}
            Ok(Step::Ended) => self.end(&Status::ok("")),
            Err(status) => self.end(&status),
        }
        Poll::Ready(())
    }
}

/// What framing a source item left to do.
enum Step {
    More,
    Ended,
}

impl http_body::Body for DoGetBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.framer.chunks.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if this.source.is_none() {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            ready!(this.poll_source(cx));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.source.is_none() && self.framer.chunks.is_empty() && self.trailers.is_none()
    }
}

/// Turns messages into gRPC frames: a list of `Bytes`, small pieces gathered
/// into one buffer, large ones pointing into the batches' buffers.
#[derive(Default)]
struct Framer {
    /// Framed and ready to send, in order.
    chunks: VecDeque<Bytes>,
    /// Small pieces not yet sent.
    gather: BytesMut,
}

impl Framer {
    /// Frame the IPC stream messages in `buffers`, laid out as
    /// [`StreamEncoder`] writes them (continuation marker, metadata length,
    /// flatbuffer metadata, body), one `FlightData` per message.
    fn ipc_messages(&mut self, buffers: Vec<Buffer>) -> Result<Step, Status> {
        let mut stream = Pieces { buffers: buffers.into() };
        while !stream.is_empty() {
            let mut word = stream.read_word()?;
            if word == [0xFF; 4] {
                word = stream.read_word()?;
            }
            let metadata_len = usize::try_from(i32::from_le_bytes(word)).map_err(|_| malformed("negative length"))?;
            if metadata_len == 0 {
                // The end-of-stream marker.
                continue;
            }
            let metadata = stream.read_vec(metadata_len)?;
            let message = arrow::ipc::root_as_message(&metadata).map_err(|e| malformed(&e.to_string()))?;
            let body_len = usize::try_from(message.bodyLength()).map_err(|_| malformed("negative body length"))?;
            let body = stream.take(body_len)?;
            if message.header_type() == MessageHeader::Schema {
                // Sent once, first, by `Framer::schema`; the encoder repeats it.
                continue;
            }
            self.message(&metadata, body_len, body)?;
        }
        self.flush();
        Ok(Step::More)
    }

    /// The schema message that opens a statement's results.
    fn schema(&mut self, schema: &Schema) -> Result<(), Status> {
        let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut DictionaryTracker::new(false),
            &IpcWriteOptions::default(),
        );
        self.message(&encoded.ipc_message, 0, Vec::new())?;
        self.flush();
        Ok(())
    }

    /// A cached batch's message, as it was encoded when it was cached.
    fn pre_encoded(&mut self, encoded: &EncodedBatch) -> Result<Step, Status> {
        self.message(&encoded.header, encoded.body.len(), vec![encoded.body.clone()])?;
        self.flush();
        Ok(Step::More)
    }

    /// One `FlightData { data_header, data_body }`, length-prefixed.
    fn message(&mut self, header: &[u8], body_len: usize, body: Vec<Buffer>) -> Result<(), Status> {
        let field_len = |field: u32, len: usize| key_len(field) + encoded_len_varint(len as u64) + len;
        let mut len = 0;
        if !header.is_empty() {
            len += field_len(DATA_HEADER_FIELD, header.len());
        }
        if body_len > 0 {
            len += field_len(DATA_BODY_FIELD, body_len);
        }
        let len = u32::try_from(len).map_err(|_| arrow_failure(format!("a result message of {len} bytes")))?;
        self.gather.put_u8(0);
        self.gather.put_u32(len);
        if !header.is_empty() {
            encode_key(DATA_HEADER_FIELD, WireType::LengthDelimited, &mut self.gather);
            encode_varint(header.len() as u64, &mut self.gather);
            self.gather.put_slice(header);
        }
        if body_len > 0 {
            encode_key(DATA_BODY_FIELD, WireType::LengthDelimited, &mut self.gather);
            encode_varint(body_len as u64, &mut self.gather);
        }
        let gathered: usize = body.iter().map(Buffer::len).filter(|&n| n < ZERO_COPY_MIN_BYTES).sum();
        self.gather.reserve(gathered);
        for piece in body {
            if piece.len() < ZERO_COPY_MIN_BYTES {
                self.gather.put_slice(piece.as_slice());
            } else {
                self.flush();
                self.chunks.push_back(Bytes::from_owner(SharedBuffer(piece)));
            }
        }
        Ok(())
    }

    /// One already-built `FlightData` (metadata results), length-prefixed.
    fn flight_data(&mut self, message: &FlightData) -> Result<Step, Status> {
        let len = message.encoded_len();
        let prefix = u32::try_from(len).map_err(|_| arrow_failure(format!("a result message of {len} bytes")))?;
        self.gather.reserve(5 + len);
        self.gather.put_u8(0);
        self.gather.put_u32(prefix);
        message.encode(&mut self.gather).map_err(|e| arrow_failure(format!("encoding a message: {e}")))?;
        self.flush();
        Ok(Step::More)
    }

    /// Hand the gathered small pieces on as one chunk.
    fn flush(&mut self) {
        if !self.gather.is_empty() {
            self.chunks.push_back(self.gather.split().freeze());
        }
    }
}

fn malformed(what: &str) -> Status {
    arrow_failure(format!("the IPC encoder wrote a malformed stream: {what}"))
}

/// An Arrow buffer lent to `Bytes` (it keeps the allocation alive).
struct SharedBuffer(Buffer);

impl AsRef<[u8]> for SharedBuffer {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// The IPC stream as the encoder's list of buffers, read front to back
/// without copying (but for the small reads).
struct Pieces {
    buffers: VecDeque<Buffer>,
}

impl Pieces {
    fn is_empty(&self) -> bool {
        self.buffers.iter().all(Buffer::is_empty)
    }

    /// The next `len` bytes, as slices of the buffers.
    fn take(&mut self, mut len: usize) -> Result<Vec<Buffer>, Status> {
        let mut out = Vec::new();
        while len > 0 {
            let front = self.buffers.pop_front().ok_or_else(|| malformed("stream shorter than its lengths"))?;
            if front.len() <= len {
                len -= front.len();
                if !front.is_empty() {
                    out.push(front);
                }
            } else {
                out.push(front.slice_with_length(0, len));
                self.buffers.push_front(front.slice(len));
                len = 0;
            }
        }
        Ok(out)
    }

    fn read_vec(&mut self, len: usize) -> Result<Vec<u8>, Status> {
        let mut bytes = Vec::with_capacity(len);
        for piece in self.take(len)? {
            bytes.extend_from_slice(piece.as_slice());
        }
        Ok(bytes)
    }

    fn read_word(&mut self) -> Result<[u8; 4], Status> {
        let bytes = self.read_vec(4)?;
        <[u8; 4]>::try_from(bytes.as_slice()).map_err(|_| malformed("short word"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder, StructArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use tonic::Code;

    use super::*;
    use crate::encoded::MAX_MESSAGE_BYTES;

    /// The body's frames, decoded the way a client does: gRPC messages, then
    /// `FlightData`, then record batches. Also the final status.
    async fn received((source, schema): (Source, Option<SchemaRef>)) -> (Vec<FlightData>, Status) {
        let mut framer = Framer::default();
        if let Some(schema) = schema {
            framer.schema(&schema).unwrap();
        }
        let body = DoGetBody { source: Some(source), framer, trailers: None };
        let collected = BodyExt::collect(body).await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        let status = Status::from_header_map(&trailers).unwrap();
        let mut bytes = collected.to_bytes();
        let mut messages = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0], 0, "uncompressed");
            let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
            let message = bytes.split_to(5 + len).split_off(5);
            messages.push(FlightData::decode(message).unwrap());
        }
        (messages, status)
    }

    fn batches_source(schema: &SchemaRef, batches: Vec<Result<RecordBatch, Status>>) -> (Source, Option<SchemaRef>) {
        cached_source(schema, batches, PreEncoded::default())
    }

    fn cached_source(
        schema: &SchemaRef,
        batches: Vec<Result<RecordBatch, Status>>,
        pre_encoded: PreEncoded,
    ) -> (Source, Option<SchemaRef>) {
        let source = Source::Batches {
            encoder: encoder(schema).unwrap(),
            batches: futures::stream::iter(batches).boxed(),
            pre_encoded,
        };
        (source, Some(Arc::clone(schema)))
    }

    fn sample(rows: usize) -> RecordBatch {
        let ids: Vec<Option<i64>> = (0..rows as i64).map(|i| (i % 7 != 3).then_some(i)).collect();
        let names: Vec<Option<String>> =
            (0..rows).map(|i| (i % 5 != 0).then(|| format!("张{i}-{}", "x".repeat(i % 13)))).collect();
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            for j in 0..i % 3 {
                lists.values().append_value(format!("{i}.{j}"));
            }
            lists.append(i % 11 != 0);
        }
        let lists = lists.finish();
        let codes: ArrayRef = Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("6301{i:08}"))));
        let point = StructArray::from(vec![
            (Arc::new(Field::new("code", DataType::Utf8, false)), Arc::clone(&codes)),
            (Arc::new(Field::new("n", DataType::Int64, true)), Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        ]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("tags", lists.data_type().clone(), true),
            Field::new("point", point.data_type().clone(), false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names)), Arc::new(lists), Arc::new(point)],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn batches_arrive_as_sent_small_large_and_sliced() {
        // 20,000 rows make buffers above the zero-copy threshold; the slice
        // starts mid-buffer (offsets and bitmaps must be re-based).
        let big = sample(20_000);
        let small = sample(9);
        let sliced = big.slice(4_321, 777);
        let schema = big.schema();
        let sent = vec![small, big, sliced, sample(0)];
        let (messages, status) = received(batches_source(&schema, sent.iter().cloned().map(Ok).collect())).await;
        assert_eq!(status.code(), Code::Ok, "{status:?}");
        assert_eq!(messages.len(), 1 + sent.len(), "the schema, then one message per batch");
        assert!(messages[0].data_body.is_empty());
        let got = arrow_flight::utils::flight_data_to_batches(&messages).unwrap();
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn a_large_batch_goes_out_in_messages_under_the_grpc_limit() {
        let batch = sample(200_000);
        assert!(batch.get_array_memory_size() > 3 * MAX_MESSAGE_BYTES, "{}", batch.get_array_memory_size());
        let (messages, status) = received(batches_source(&batch.schema(), vec![Ok(batch.clone())])).await;
        assert_eq!(status.code(), Code::Ok);
        assert!(messages.len() > 3, "{} messages", messages.len());
        assert!(messages.iter().all(|m| m.encoded_len() < 2 * MAX_MESSAGE_BYTES));
        // Columns sliced from one larger body (as cached ones are) count their rows only.
        let (kept, _, _) = PreEncoded::default().encode(&sample(20_000)).unwrap();
        assert_eq!(split_for_grpc(&kept).len(), 1);
        assert_eq!(split_for_grpc(&kept.slice(0, 10)).len(), 1);
        let got = arrow_flight::utils::flight_data_to_batches(&messages).unwrap();
        assert_eq!(arrow::compute::concat_batches(&batch.schema(), &got).unwrap(), batch);
    }

    #[tokio::test]
    async fn the_same_messages_as_arrow_flights_encoder() {
        let batch = sample(3_000);
        let schema = batch.schema();
        let (ours, _) = received(batches_source(&schema, vec![Ok(batch.clone())])).await;
        let theirs: Vec<FlightData> = arrow_flight::encode::FlightDataEncoderBuilder::new()
            .build(futures::stream::iter([Ok(batch)]))
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a.data_body, b.data_body, "the same IPC body");
            let header = |m: &FlightData| arrow::ipc::root_as_message(&m.data_header).unwrap().header_type();
            assert_eq!(header(a), header(b));
        }
    }

    #[tokio::test]
    async fn cached_batches_go_out_as_their_pre_encoded_message() {
        let cache = PreEncoded::default();
        let original = sample(5_000);
        let (kept, key, bytes) = cache.encode(&original).unwrap();
        assert_eq!(kept, original, "the kept batch holds the same values");
        assert!(bytes >= original.get_array_memory_size() / 4, "{bytes}");
        let key = key.unwrap();
        assert!(cache.find(&kept).is_some());
        // The same values in other arrays are not the cached batch.
        assert!(cache.find(&original).is_none());
        // A projection of it is not either.
        assert!(cache.find(&kept.project(&[1, 0, 2, 3]).unwrap()).is_none());

        let schema = kept.schema();
        let other = sample(10);
        let sent = vec![Ok(kept.clone()), Ok(other.clone()), Ok(kept.clone())];
        let (messages, status) = received(cached_source(&schema, sent, cache.clone())).await;
        assert_eq!(status.code(), Code::Ok);
        assert_eq!(messages.len(), 4);
        let encoded = cache.find(&kept).unwrap();
        assert_eq!(messages[1].data_body.as_ref(), encoded.body.as_slice(), "sent as it was encoded");
        let got = arrow_flight::utils::flight_data_to_batches(&messages).unwrap();
        assert_eq!(got, vec![original.clone(), other, original]);

        cache.forget([key]);
        assert!(cache.find(&kept).is_none());
    }

    #[tokio::test]
    async fn an_empty_result_still_sends_its_schema() {
        let schema = sample(0).schema();
        let (messages, status) = received(batches_source(&schema, vec![])).await;
        assert_eq!(status.code(), Code::Ok);
        assert_eq!(messages.len(), 1);
        let message = arrow::ipc::root_as_message(&messages[0].data_header).unwrap();
        let sent = arrow::ipc::convert::fb_to_schema(message.header_as_schema().unwrap());
        assert_eq!(&sent, schema.as_ref());
    }

    #[tokio::test]
    async fn an_error_mid_stream_ends_with_its_status_after_the_rows_sent() {
        let batch = sample(100);
        let schema = batch.schema();
        let items = vec![Ok(batch.clone()), Err(Status::deadline_exceeded("query time limit (1 s) reached"))];
        let (messages, status) = received(batches_source(&schema, items)).await;
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(status.message(), "query time limit (1 s) reached");
        assert_eq!(arrow_flight::utils::flight_data_to_batches(&messages).unwrap(), vec![batch]);
    }

    #[tokio::test]
    async fn encoded_messages_are_framed_as_tonic_would() {
        let messages: Vec<FlightData> = arrow_flight::encode::FlightDataEncoderBuilder::new()
            .build(futures::stream::iter([Ok(sample(50))]))
            .map(Result::unwrap)
            .collect()
            .await;
        let source = Source::Encoded(futures::stream::iter(messages.clone().into_iter().map(Ok)).boxed());
        let (got, status) = received((source, None)).await;
        assert_eq!(status.code(), Code::Ok);
        assert_eq!(got, messages);
    }

    fn request(frame: Vec<u8>) -> Body {
        Body::new(http_body_util::Full::new(Bytes::from(frame)))
    }

    fn framed(payload: &[u8], compressed: u8) -> Vec<u8> {
        let mut frame = vec![compressed];
        frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    #[tokio::test]
    async fn tickets_are_read_and_bad_requests_refused() {
        let ticket = Ticket::new("abc");
        let read = read_ticket(request(framed(&ticket.encode_to_vec(), 0))).await.unwrap();
        assert_eq!(read, ticket);

        let code = |r: Result<Ticket, Status>| r.unwrap_err().code();
        assert_eq!(code(read_ticket(request(vec![])).await), Code::InvalidArgument);
        assert_eq!(code(read_ticket(request(vec![0, 0, 0])).await), Code::InvalidArgument);
        assert_eq!(code(read_ticket(request(framed(b"x", 1))).await), Code::Unimplemented);
        let mut two = framed(&ticket.encode_to_vec(), 0);
        two.extend(framed(&ticket.encode_to_vec(), 0));
        assert_eq!(code(read_ticket(request(two)).await), Code::InvalidArgument);
        assert_eq!(code(read_ticket(request(framed(&[0xff, 0xff], 0))).await), Code::InvalidArgument);
        let huge = vec![0u8; MAX_REQUEST_BYTES + 10];
        assert_eq!(code(read_ticket(request(huge)).await), Code::InvalidArgument);
    }
}
