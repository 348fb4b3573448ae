//! What handlers take from a request, with the one answer each failure
//! gets: the query string's pairs (400) and a bounded body (413, or 400).

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;

use crate::error::{Error, Result};

/// The query string as `(key, value)` pairs, in order.
pub fn query_pairs(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Vec<(String, String)>> {
    let Query(pairs) = query.map_err(|e| Error::BadRequest { message: format!("bad query string: {e}") })?;
    Ok(pairs)
}

/// The request body, if it is at most `limit` bytes.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge { limit }
        } else {
            Error::BadBody { message: e.body_text() }
        }
    })?;
    if body.len() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    Ok(body)
}
