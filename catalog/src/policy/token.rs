//! API tokens: `clk_<id>_<secret>`; the store keeps only their SHA-256.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A token just created. The secret is shown to its holder once and never
/// stored; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token's id (for listing and revoking).
    pub id: String,
    /// The whole token, `clk_<id>_<64 hex digits>`: what the client presents.
    pub secret: String,
    /// When it expires; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A token as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// Whose token it is.
    pub principal: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; `None` = not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// Prefix of every civlink token.
pub const TOKEN_PREFIX: &str = "clk_";
/// Hex digits of a token id.
pub(crate) const TOKEN_ID_LEN: usize = 16;
/// Hex digits of a token's secret part (32 bytes).
pub(crate) const TOKEN_SECRET_LEN: usize = 64;

/// A fresh token: its id and the whole token text.
///
/// The 32 secret bytes are SHA-256 over three version-4 UUIDs (366 bits from
/// the operating system's random source, through `uuid`), so no extra
/// random-number crate is needed.
pub(crate) fn new_token() -> (String, String) {
    let id: String = uuid::Uuid::new_v4().simple().to_string().chars().take(TOKEN_ID_LEN).collect();
    let mut hasher = Sha256::new();
    for _ in 0..3 {
        hasher.update(uuid::Uuid::new_v4().as_bytes());
    }
    let secret = hex::encode(hasher.finalize());
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    (id, token)
}

/// The id of a well-formed token (`clk_` + 16 lower-case hex + `_` + 64
/// lower-case hex), or `None`.
pub(crate) fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex(id, TOKEN_ID_LEN) && hex(secret, TOKEN_SECRET_LEN)).then_some(id)
}

/// SHA-256 (hex) of a token: what the store keeps.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape() {
        let (id, token) = new_token();
        assert_eq!(token_id(&token), Some(id.as_str()));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN);
        let (_, other) = new_token();
        assert_ne!(token, other);
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token_hash(&other));
        let issued = IssuedToken { id: id.clone(), secret: token.clone(), expires_at: None };
        assert!(!format!("{issued:?}").contains(&token[TOKEN_PREFIX.len() + TOKEN_ID_LEN + 1..]));
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        let good = format!("clk_{}_{}", "0123456789abcdef", "a".repeat(64));
        assert_eq!(token_id(&good), Some("0123456789abcdef"));
        let bad = [
            String::new(),
            "clk_".into(),
            "Bearer clk_x".into(),
            good.to_uppercase(),
            format!("clk_{}_{}", "0123456789abcde", "a".repeat(64)),
            format!("clk_{}_{}", "0123456789abcdef", "a".repeat(63)),
            format!("clk_{}_{}", "0123456789abcdeg", "a".repeat(64)),
            format!("clk_{}_{}_", "0123456789abcdef", "a".repeat(64)),
            format!("clk_{}_{}", "0123456789abcdef", "ａ".repeat(64)),
            format!("{good}\n"),
            "clk_😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀_".into(),
        ];
        for token in bad {
            assert_eq!(token_id(&token), None, "{token:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
