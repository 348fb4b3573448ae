//! Statement handles and tickets: stateless, self-describing bytes.
//!
//! The server keeps no statement state between calls: a prepared statement
//! handle and a `DoGet` ticket both carry the SQL text (and the bound
//! parameters, and for tickets the id under which the running query can be
//! cancelled). Every use re-plans the SQL **under the caller's own
//! principal**, so a handle or ticket grants nothing by itself: editing one
//! is no different from sending other SQL, and a ticket passed to someone
//! else runs with that someone's scope. Handles are therefore not signed.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! "CLH1" | u32 query-id length | query id | u32 SQL length | SQL (UTF-8) | parameters (Arrow IPC stream, may be empty)
//! ```
//!
//! Binding parameters to a prepared statement (`DoPut`) returns a new
//! handle with the parameters inside, as the Flight SQL spec allows; the
//! old handle stays valid, unbound.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use civlink_query::{Error, Result};

const MAGIC: &[u8; 4] = b"CLH1";
/// Longest SQL text a handle may carry (bytes).
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// A statement, with its parameters and, in tickets, its query id.
#[derive(Debug, Clone, PartialEq)]
pub struct Handle {
    /// Id of one execution (tickets), for CancelFlightInfo; empty in prepared-statement handles.
    pub query_id: String,
    /// The SQL text.
    pub sql: String,
    /// Bound parameters: one row, one column per placeholder `$1`, `$2`, …
    pub params: Option<RecordBatch>,
}

impl Handle {
    /// A handle for `sql` without parameters or query id.
    pub fn new(sql: impl Into<String>) -> Handle {
        Handle { query_id: String::new(), sql: sql.into(), params: None }
    }

    /// The same statement as a ticket for one execution with a fresh query id.
    pub fn for_execution(&self) -> Handle {
        Handle { query_id: uuid::Uuid::new_v4().simple().to_string(), ..self.clone() }
    }

    /// The handle's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + self.query_id.len() + self.sql.len());
        out.extend_from_slice(MAGIC);
        for part in [self.query_id.as_bytes(), self.sql.as_bytes()] {
            let len = u32::try_from(part.len())
                .map_err(|_| Error::InvalidRequest { message: "statement too long".into() })?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
        if let Some(params) = &self.params {
            let mut writer = StreamWriter::try_new(&mut out, &params.schema())?;
            writer.write(params)?;
            writer.finish()?;
        }
        Ok(out)
    }

    /// Read a handle; anything malformed is an `InvalidRequest`, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Handle> {
        let bad = |what: &str| Error::InvalidRequest { message: format!("malformed statement handle: {what}") };
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("not a civlink handle"))?;
        let (query_id, rest) = take(rest).ok_or_else(|| bad("truncated query id"))?;
        let (sql, rest) = take(rest).ok_or_else(|| bad("truncated SQL"))?;
        if sql.len() > MAX_SQL_BYTES {
            return Err(bad("SQL too long"));
        }
        let query_id = String::from_utf8(query_id.to_vec()).map_err(|_| bad("query id is not UTF-8"))?;
        let sql = String::from_utf8(sql.to_vec()).map_err(|_| bad("SQL is not UTF-8"))?;
        let params = if rest.is_empty() {
            None
        } else {
            let reader = StreamReader::try_new(Cursor::new(rest), None).map_err(|_| bad("parameters"))?;
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|_| bad("parameters"))?;
            match <[RecordBatch; 1]>::try_from(batches) {
                Ok([batch]) => Some(batch),
                Err(_) => return Err(bad("parameters are not one batch")),
            }
        };
        Ok(Handle { query_id, sql, params })
    }
}

/// A length-prefixed part and what follows it.
fn take(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len_bytes: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_le_bytes(len_bytes)).ok()?;
    let rest = bytes.get(4..)?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn params() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Utf8, true),
            Field::new("$2", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["630102"])), Arc::new(Int64Array::from(vec![42]))],
        )
        .unwrap()
    }

    #[test]
    fn handles_round_trip() {
        let plain = Handle::new("SELECT 1 -- 中文");
        assert_eq!(Handle::decode(&plain.encode().unwrap()).unwrap(), plain);
        let bound = Handle { params: Some(params()), ..Handle::new("SELECT $1, $2") }.for_execution();
        assert_eq!(bound.query_id.len(), 32);
        assert_eq!(Handle::decode(&bound.encode().unwrap()).unwrap(), bound);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = Handle { params: Some(params()), ..Handle::new("SELECT $1") }.encode().unwrap();
        for cut in 0..good.len() {
            let _ = Handle::decode(&good[..cut]);
        }
        for bad in [&b""[..], b"CLH1", b"XXXX\0\0\0\0", b"CLH1\xff\xff\xff\xff", b"CLH1\0\0\0\0\x02\0\0\0\xff\xfe"] {
            assert!(matches!(Handle::decode(bad), Err(Error::InvalidRequest { .. })), "{bad:?}");
        }
        let mut trailing = Handle::new("x").encode().unwrap();
        trailing.extend_from_slice(b"not ipc");
        assert!(Handle::decode(&trailing).is_err());
    }
}
