//! Cursors: where the next page of a rows request starts.
//!
//! A cursor is opaque: its content is sealed under the deployment key
//! ([`civlink_standards::seal`]), so a client can neither read it (it may
//! hold the last row's sort key, say a citizen ID the principal sees in
//! clear: a cursor copied into a log or a URL shows nothing) nor forge it.
//! It is bound to
//!
//! * the dataset, and the **version** the first page read: every page of one
//!   walk reads that version, so paging never skips or repeats rows while
//!   new versions land;
//! * the request's selection, filters and order ([`RowParams::fingerprint`]).
//!
//! It is *not* bound to a principal's scope: whoever presents it reads with
//! their own scope and masks (the scope is never taken from a cursor), so a
//! cursor replayed by another principal can only walk that principal's rows.
//!
//! The position is either the last row's sort key ([`Position::After`], a
//! keyset: the next page starts after it whatever the depth, at the cost of
//! one filtered scan), when the order is a unique key the principal sees
//! (the primary key, in clear or as pseudonyms); or a count of rows to skip
//! ([`Position::Skip`]) when it is not (a masked key makes equal-looking
//! rows, which a keyset would skip over).

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::rows::params::RowParams;

/// The seal domain of REST cursors.
const DOMAIN: &str = "rest-rows-cursor";

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// After the row with this sort key (each value as text, `None` = null).
    After(Vec<Option<String>>),
    /// After this many rows of the order.
    Skip(u64),
}

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `department.name`.
    #[serde(rename = "d")]
    pub dataset: String,
    /// The version every page reads.
    #[serde(rename = "v")]
    pub version: i64,
    /// The request's fingerprint, hashed.
    #[serde(rename = "q")]
    pub request: String,
    /// Where the next page starts.
    #[serde(rename = "p")]
    pub position: Position,
}

/// The hashed fingerprint of `params`.
pub fn request_hash(params: &RowParams) -> String {
    hash_of(&params.fingerprint())
}

/// The hash a cursor carries of the request it belongs to, `request` being
/// any canonical text of what selects the rows.
pub fn hash_of(request: &str) -> String {
    let digest = sha2::Sha256::digest(request.as_bytes());
    hex::encode(&digest[..16])
}

impl Cursor {
    /// The cursor as sent to the client.
    pub fn encode(&self, factory: &civlink_query::SessionFactory) -> Result<String> {
        let plain =
            serde_json::to_vec(self).map_err(|e| Error::Engine { message: format!("encoding a cursor: {e}") })?;
        Ok(hex::encode(factory.seal(DOMAIN, &plain)))
    }

    /// The cursor `text`, checked to belong to this dataset and to the
    /// request whose hash is `request` ([`request_hash`], [`hash_of`]).
    pub fn decode(factory: &civlink_query::SessionFactory, text: &str, dataset: &str, request: &str) -> Result<Cursor> {
        let forged = Error::BadCursor { reason: "it was not issued by this server (or was changed)" };
        let sealed = hex::decode(text.trim()).map_err(|_| Error::BadCursor { reason: "it is not a cursor" })?;
        let plain = factory.open_sealed(DOMAIN, &sealed).ok_or(forged)?;
        let cursor: Cursor =
            serde_json::from_slice(&plain).map_err(|_| Error::BadCursor { reason: "it is not a cursor" })?;
        if cursor.dataset != dataset {
            return Err(Error::BadCursor { reason: "it was issued for another dataset" });
        }
        if cursor.request != request {
            return Err(Error::BadCursor {
                reason: "it was issued for other columns, filters or order; repeat the first request's parameters",
            });
        }
        Ok(cursor)
    }
}
