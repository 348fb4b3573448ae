//! Credentials and purpose from HTTP headers.
//!
//! The same tokens as Flight SQL, read the same way
//! ([`civlink_flight::auth::parse`]): `Authorization: Bearer <token>`, or
//! `Basic base64(user:token)` as in the Flight handshake (the user name, when
//! given, must be the token's principal). Every request authenticates the
//! token against the metadata store again: there are no sessions, so an
//! expiry or a revocation applies from the next request on.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use civlink_catalog::policy::Principal;
use civlink_catalog::store::MetadataStore;
use civlink_flight::auth::Credentials;

use crate::error::{Error, Result};

/// The header carrying the stated purpose of a request (recorded in the audit log as given).
pub const PURPOSE: &str = civlink_flight::auth::PURPOSE;
/// Longest purpose kept (characters); longer ones are cut, as in Flight.
const MAX_PURPOSE_CHARS: usize = 500;

/// The credentials in `headers`.
pub fn credentials(headers: &HeaderMap) -> Result<Credentials> {
    let value = headers.get(AUTHORIZATION).ok_or(Error::MissingCredentials)?;
    let value = value.to_str().map_err(|_| Error::MalformedCredentials { reason: "not ASCII" })?;
    civlink_flight::auth::parse(value).map_err(Error::from)
}

/// The principal behind the request's credentials.
pub async fn authenticate(store: &MetadataStore, headers: &HeaderMap) -> Result<Principal> {
    let credentials = credentials(headers)?;
    let principal = store.authenticate(credentials.token()).await.map_err(Error::from_policy)?;
    match credentials.user() {
        Some(user) if !user.is_empty() && user != principal.name => Err(Error::UserMismatch),
        _ => Ok(principal),
    }
}

/// The user name a request claimed (Basic credentials), for auditing a failure.
pub fn claimed_user(headers: &HeaderMap) -> Option<String> {
    credentials(headers).ok().and_then(|c| c.user().filter(|u| !u.is_empty()).map(str::to_owned))
}

/// The purpose the client stated, as given (cut to a sane length).
pub fn purpose(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(PURPOSE)?;
    // Header values are nominally ASCII, but clients do send raw UTF-8 (中文 purposes).
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_PURPOSE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_and_basic_credentials_are_read() {
        let mut headers = HeaderMap::new();
        assert!(matches!(credentials(&headers), Err(Error::MissingCredentials)));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer clk_x"));
        assert_eq!(credentials(&headers).unwrap().token(), "clk_x");
        // "analyst:clk_tok"
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic YW5hbHlzdDpjbGtfdG9r"));
        assert_eq!(claimed_user(&headers).as_deref(), Some("analyst"));
        assert_eq!(credentials(&headers).unwrap().token(), "clk_tok");
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Token x"));
        assert!(matches!(credentials(&headers), Err(Error::MalformedCredentials { .. })));
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes("Bearer 令牌".as_bytes()).unwrap());
        assert!(matches!(credentials(&headers), Err(Error::MalformedCredentials { .. })));
    }

    #[test]
    fn purposes_are_kept_as_given_and_cut() {
        let mut headers = HeaderMap::new();
        assert_eq!(purpose(&headers), None);
        headers.insert(PURPOSE, HeaderValue::from_bytes("低保复核".as_bytes()).unwrap());
        assert_eq!(purpose(&headers).as_deref(), Some("低保复核"));
        headers.insert(PURPOSE, HeaderValue::from_str(&"x".repeat(2000)).unwrap());
        assert_eq!(purpose(&headers).map(|p| p.len()), Some(MAX_PURPOSE_CHARS));
        headers.insert(PURPOSE, HeaderValue::from_static("   "));
        assert_eq!(purpose(&headers), None);
    }
}
