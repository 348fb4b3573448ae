//! Credentials and purpose from HTTP headers, parsed the query layer's one
//! way ([`civlink_query::auth`]): `Authorization: Bearer <token>`, or
//! `Basic base64(user:token)` as in the Flight handshake, and
//! `x-civlink-purpose`. Every request authenticates the token again: there
//! are no sessions, so an expiry or a revocation applies from the next
//! request on.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

pub use civlink_query::auth::PURPOSE;

/// The raw `Authorization` header value, if any.
pub fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(AUTHORIZATION).map(|v| v.as_bytes())
}

/// The purpose the client stated, as given (cut to a sane length).
pub fn purpose(headers: &HeaderMap) -> Option<String> {
    civlink_query::auth::purpose(headers.get(PURPOSE).map(|v| v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn headers_are_read_raw_and_purposes_cut() {
        let mut headers = HeaderMap::new();
        assert_eq!(authorization(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer clk_x"));
        assert_eq!(authorization(&headers), Some(&b"Bearer clk_x"[..]));
        assert_eq!(purpose(&headers), None);
        headers.insert(PURPOSE, HeaderValue::from_bytes("低保复核".as_bytes()).unwrap());
        assert_eq!(purpose(&headers).as_deref(), Some("低保复核"));
        headers.insert(PURPOSE, HeaderValue::from_str(&"x".repeat(2000)).unwrap());
        assert_eq!(purpose(&headers).map(|p| p.chars().count()), Some(500));
    }
}
