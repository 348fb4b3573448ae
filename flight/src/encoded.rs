//! Cached batches kept as the Flight messages they travel as.
//!
//! [`PreEncoded`] is the table cache's [`BatchKeeper`] in `civlink serve`:
//! each batch a cached table holds is cut under gRPC's message size
//! ([`split_for_grpc`]) and encoded once as its IPC message; the batch kept
//! in the cache is read back from that message, so its columns are slices
//! of the one body. When a scan passes such a batch through unchanged,
//! [`crate::wire::FastDoGet`] finds its message here by the identity of its
//! columns and sends it as it is.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::array::ArrayRef;
use arrow::buffer::Buffer;
use arrow::error::ArrowError;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow::record_batch::RecordBatch;
use civlink_query::cache::BatchKeeper;

/// The size a result message aims to stay under (arrow-flight's default).
pub(crate) const MAX_MESSAGE_BYTES: usize = 2 << 20;

/// A cached batch kept as the IPC message it travels as.
#[derive(Debug)]
pub(crate) struct EncodedBatch {
    /// The batch's columns (slices of `body`), to recognise it by.
    columns: Vec<ArrayRef>,
    /// `FlightData.data_header`: the record batch message.
    pub(crate) header: Vec<u8>,
    /// `FlightData.data_body`.
    pub(crate) body: Buffer,
}

/// The batches of cached tables that can go out as their pre-encoded
/// messages, found by their columns' identity. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct PreEncoded {
    /// By the address of the batch's first column (kept alive here, so no
    /// other array can take its address while the entry exists).
    batches: Arc<RwLock<HashMap<usize, Arc<EncodedBatch>>>>,
}

impl PreEncoded {
    /// Encode `batch` (in wire types, so without dictionaries) as a Flight
    /// message and remember it. Returns the batch to keep in its place (the
    /// same values, its buffers slices of the message body), the key to
    /// [`Self::forget`] it by, and the bytes it holds.
    pub fn encode(&self, batch: &RecordBatch) -> Result<(RecordBatch, Option<usize>, usize), ArrowError> {
        let mut context = IpcWriteContext::default();
        let (dictionaries, encoded) = IpcDataGenerator::default().encode(
            batch,
            &mut DictionaryTracker::new(false),
            &IpcWriteOptions::default(),
            &mut context,
        )?;
        if !dictionaries.is_empty() {
            return Err(ArrowError::InvalidArgumentError("dictionary columns are not pre-encoded".into()));
        }
        let body = Buffer::from(encoded.arrow_data);
        let message =
            arrow::ipc::root_as_message(&encoded.ipc_message).map_err(|e| ArrowError::IpcError(e.to_string()))?;
        let header = message
            .header_as_record_batch()
            .ok_or_else(|| ArrowError::IpcError("the encoder wrote no record batch message".into()))?;
        let kept = arrow::ipc::reader::read_record_batch(
            &body,
            header,
            batch.schema(),
            &HashMap::new(),
            None,
            &message.version(),
        )?;
        let bytes = body.len() + encoded.ipc_message.len();
        let Some(key) = key(&kept) else { return Ok((kept, None, bytes)) };
        let entry = EncodedBatch { columns: kept.columns().to_vec(), header: encoded.ipc_message, body };
        if let Ok(mut batches) = self.batches.write() {
            batches.insert(key, Arc::new(entry));
        }
        Ok((kept, Some(key), bytes))
    }

    /// Drop the messages of batches no longer cached.
    pub fn forget(&self, keys: impl IntoIterator<Item = usize>) {
        if let Ok(mut batches) = self.batches.write() {
            for key in keys {
                batches.remove(&key);
            }
        }
    }

    /// The message of `batch`, if it is exactly a cached batch.
    pub(crate) fn find(&self, batch: &RecordBatch) -> Option<Arc<EncodedBatch>> {
        let key = key(batch)?;
        let encoded = self.batches.read().ok()?.get(&key).cloned()?;
        let same = encoded.columns.len() == batch.num_columns()
            && encoded.columns.iter().zip(batch.columns()).all(|(a, b)| Arc::ptr_eq(a, b));
        same.then_some(encoded)
    }
}

impl BatchKeeper for PreEncoded {
    /// Cut to gRPC's message size, then each part kept as its Flight message.
    fn keep(&self, batch: &RecordBatch) -> Result<Vec<(RecordBatch, usize)>, ArrowError> {
        split_for_grpc(batch).iter().map(|part| self.encode(part).map(|(kept, _, bytes)| (kept, bytes))).collect()
    }

    fn release(&self, batches: &[RecordBatch]) {
        self.forget(batches.iter().filter_map(key));
    }
}

fn key(batch: &RecordBatch) -> Option<usize> {
    batch.columns().first().map(|column| Arc::as_ptr(column).cast::<()>() as usize)
}

/// `batch` cut (zero-copy) into slices of about [`MAX_MESSAGE_BYTES`] each,
/// as arrow-flight's encoder does: gRPC clients refuse messages above a limit
/// (often 4 MiB by default).
pub(crate) fn split_for_grpc(batch: &RecordBatch) -> Vec<RecordBatch> {
    // The bytes of the rows themselves: a column sliced from a larger buffer
    // (every cached column is a slice of its message body) would count the
    // whole buffer with `get_buffer_memory_size`.
    let bytes: usize = batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_buffer_memory_size()))
        .sum();
    let parts = bytes.div_ceil(MAX_MESSAGE_BYTES).max(1);
    if parts == 1 {
        return vec![batch.clone()];
    }
    let rows_per_part = batch.num_rows().div_ceil(parts).max(1);
    (0..batch.num_rows())
        .step_by(rows_per_part)
        .map(|offset| batch.slice(offset, rows_per_part.min(batch.num_rows() - offset)))
        .collect()
}
