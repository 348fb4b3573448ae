//! Credentials and the stated purpose, as every transport reads them.
//!
//! Transports hand over the raw header values (gRPC metadata, HTTP
//! headers); this module parses them the one way:
//!
//! * `authorization: Bearer <token>`, on every call;
//! * `authorization: Basic base64(user:token)`, what Flight SQL clients send
//!   for user name and password (the user name, when given, must be the
//!   token's principal);
//! * `x-civlink-purpose: <text>`, recorded in the audit log as given.
//!
//! The bearer token handed back by the Flight handshake is **the civlink
//! token itself**, not a session token: the server keeps no session state,
//! and every call authenticates the token again
//! ([`crate::SessionFactory::authenticate`]), so an expiry or a revocation
//! applies from the next call on.
//!
//! Base64 is decoded here (a few lines) rather than through a dependency.

use crate::error::Error;

/// The header carrying credentials.
pub const AUTHORIZATION: &str = "authorization";
/// The header carrying the stated purpose of a query (recorded in the audit log as given).
pub const PURPOSE: &str = "x-civlink-purpose";
/// Longest purpose kept (characters); longer ones are cut.
const MAX_PURPOSE_CHARS: usize = 500;

/// Credentials presented by a client.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// `Basic base64(user:token)`.
    Basic {
        /// The user name (may be empty).
        user: String,
        /// The token (the "password").
        token: String,
    },
}

impl std::fmt::Debug for Credentials {
    // Hand-written: a token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer { .. } => f.write_str("Bearer(***)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

impl Credentials {
    /// The token, whichever the scheme.
    pub fn token(&self) -> &str {
        match self {
            Credentials::Bearer { token } | Credentials::Basic { token, .. } => token,
        }
    }

    /// The user name claimed (Basic only).
    pub fn user(&self) -> Option<&str> {
        match self {
            Credentials::Bearer { .. } => None,
            Credentials::Basic { user, .. } => Some(user),
        }
    }
}

/// The credentials in an `authorization` header value (`None`: no header).
pub fn credentials(header: Option<&[u8]>) -> Result<Credentials, Error> {
    let value = header.ok_or(Error::MissingCredentials)?;
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|v| v.is_ascii())
        .ok_or(Error::MalformedCredentials { reason: "not ASCII" })?;
    parse(value)
}

/// Parse an `authorization` header value.
pub fn parse(value: &str) -> Result<Credentials, Error> {
    let value = value.trim();
    let (scheme, rest) =
        value.split_once(' ').ok_or(Error::MalformedCredentials { reason: "expected \"<scheme> <credentials>\"" })?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(Error::MalformedCredentials { reason: "empty bearer token" });
        }
        Ok(Credentials::Bearer { token: rest.to_owned() })
    } else if scheme.eq_ignore_ascii_case("basic") {
        let bytes =
            base64_decode(rest).ok_or(Error::MalformedCredentials { reason: "Basic credentials are not base64" })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::MalformedCredentials { reason: "Basic credentials are not UTF-8" })?;
        let (user, token) = text
            .split_once(':')
            .ok_or(Error::MalformedCredentials { reason: "Basic credentials are not user:token" })?;
        if token.is_empty() {
            return Err(Error::MalformedCredentials { reason: "empty token" });
        }
        Ok(Credentials::Basic { user: user.to_owned(), token: token.to_owned() })
    } else {
        Err(Error::MalformedCredentials { reason: "unsupported scheme (Bearer or Basic)" })
    }
}

/// The purpose the client stated in an `x-civlink-purpose` header value, as
/// given (cut to a sane length).
pub fn purpose(header: Option<&[u8]>) -> Option<String> {
    // Header values are nominally ASCII, but clients do send raw UTF-8 (中文 purposes).
    let text = String::from_utf8_lossy(header?);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_PURPOSE_CHARS).collect())
}

/// Standard base64 (RFC 4648 §4) with or without padding; `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 {
        return None;
    }
    let bytes = trimmed.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = acc.to_be_bytes();
        out.push(b0);
        if chunk.len() > 2 {
            out.push(b1);
        }
        if chunk.len() > 3 {
            out.push(b2);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("张三:clk_x", "5byg5LiJOmNsa194"),
        ] {
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()), "{encoded}");
        }
        assert_eq!(base64_decode("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(base64_decode("Zg").as_deref(), Some(&b"f"[..]));
        for bad in ["Z", "Zm9v!", "Zg===", "中文", "Zm9vY"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_parse_into_credentials() {
        assert_eq!(parse("Bearer clk_abc").unwrap(), Credentials::Bearer { token: "clk_abc".into() });
        assert_eq!(parse("bearer   clk_abc ").unwrap().token(), "clk_abc");
        // "analyst:clk_tok"
        let basic = parse("Basic YW5hbHlzdDpjbGtfdG9r").unwrap();
        assert_eq!(basic.user(), Some("analyst"));
        assert_eq!(basic.token(), "clk_tok");
        // ":clk_tok" (no user name) is fine; the token may contain ':'.
        assert_eq!(parse("Basic OmNsa190b2s=").unwrap().user(), Some(""));
        assert_eq!(parse("Basic YTpiOmM=").unwrap().token(), "b:c");
        for bad in ["", "Bearer", "Bearer ", "Token x", "Basic !!!", "Basic YW5hbHlzdA==", "Basic YTo="] {
            assert!(matches!(parse(bad), Err(Error::MalformedCredentials { .. })), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_tokens() {
        let c = Credentials::Basic { user: "u".into(), token: "clk_secret".into() };
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{:?}", Credentials::Bearer { token: "clk_secret".into() }).contains("secret"));
    }

    #[test]
    fn purposes_are_kept_as_given_and_cut() {
        assert_eq!(purpose(None), None);
        assert_eq!(purpose(Some(b"annual report")).as_deref(), Some("annual report"));
        assert_eq!(purpose(Some("低保复核".as_bytes())).as_deref(), Some("低保复核"));
        assert_eq!(purpose(Some("x".repeat(2000).as_bytes())).map(|p| p.len()), Some(MAX_PURPOSE_CHARS));
        assert_eq!(purpose(Some(b"   ")), None);
        assert_eq!(credentials(Some(b"Bearer t")).unwrap().token(), "t");
        assert!(matches!(credentials(None), Err(Error::MissingCredentials)));
        assert!(matches!(credentials(Some("Bearer 令牌".as_bytes())), Err(Error::MalformedCredentials { .. })));
    }
}
