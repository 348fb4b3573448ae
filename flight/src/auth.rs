//! Credentials and purpose from gRPC metadata, parsed the query layer's one
//! way ([`civlink_query::auth`]).

use tonic::metadata::MetadataMap;

pub use civlink_query::auth::{AUTHORIZATION, Credentials, PURPOSE};

/// The raw `authorization` header value, if any.
pub fn authorization(metadata: &MetadataMap) -> Option<&[u8]> {
    metadata.get(AUTHORIZATION).map(|v| v.as_bytes())
}

/// The purpose the client stated (`x-civlink-purpose`), as given.
pub fn purpose(metadata: &MetadataMap) -> Option<String> {
    civlink_query::auth::purpose(metadata.get(PURPOSE).map(|v| v.as_bytes()))
}

/// The credentials in `metadata`.
pub fn credentials(metadata: &MetadataMap) -> civlink_query::Result<Credentials> {
    civlink_query::auth::credentials(authorization(metadata))
}
