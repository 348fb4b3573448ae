//! Deployment settings (`migrations/0003_settings.sql`): one row holding the
//! secret key of the `pseudonym` mask.

use chrono::Utc;
use civlink_standards::mask::{MASK_KEY_LEN, MaskKey};
use sha2::{Digest, Sha256};

use super::codec::timestamp;
use super::{Error, MetadataStore, Result, db_err, get};

/// What a corrupt key is reported as (never with its value).
const MASK_KEY_COLUMN: &str = "settings.mask_key";

impl MetadataStore {
    /// The deployment's [`MaskKey`], generated and stored on first use.
    ///
    /// Race-free across processes and backends: every caller offers a fresh
    /// random key with `INSERT … ON CONFLICT DO NOTHING` and then reads the
    /// stored one, so concurrent first callers all end up with the key of
    /// whichever insert won. The key never changes afterwards (a new key
    /// would change every pseudonym).
    pub async fn mask_key(&self) -> Result<MaskKey> {
        sqlx::query("INSERT INTO settings (id, mask_key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(hex::encode(random_key()))
            .bind(timestamp(Utc::now()))
            .execute(&self.pool)
            .await
            .map_err(db_err("store the mask key"))?;
        let row = sqlx::query("SELECT mask_key FROM settings WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read the mask key"))?;
        let Some(row) = row else {
            return Err(corrupt("the settings row is missing after it was inserted"));
        };
        let text: String = get(&row, "mask_key", || MASK_KEY_COLUMN.into())?;
        parse_key(&text)
    }
}

/// 32 random bytes: SHA-256 over three version-4 UUIDs (366 random bits from
/// the operating system's generator, which `uuid` uses), the same way API
/// token secrets are made; the hash leaves a full 256 bits of entropy.
fn random_key() -> [u8; MASK_KEY_LEN] {
    let mut hasher = Sha256::new();
    for _ in 0..3 {
        hasher.update(uuid::Uuid::new_v4().as_bytes());
    }
    hasher.finalize().into()
}

/// A stored key (64 hex digits).
fn parse_key(text: &str) -> Result<MaskKey> {
    // The messages describe the problem, never the (secret) value.
    let bytes = hex::decode(text.trim()).map_err(|_| corrupt("not hexadecimal"))?;
    let bytes = <[u8; MASK_KEY_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| corrupt(&format!("{} bytes, expected {MASK_KEY_LEN}", bytes.len())))?;
    Ok(MaskKey::from_bytes(bytes))
}

/// A corrupt stored key.
fn corrupt(message: &str) -> Error {
    Error::Corrupt { what: MASK_KEY_COLUMN.into(), message: message.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key(), random_key());
    }

    #[test]
    fn stored_keys_parse_and_bad_ones_are_corrupt_without_echoing_them() {
        let bytes = [7u8; MASK_KEY_LEN];
        assert_eq!(parse_key(&hex::encode(bytes)).unwrap(), MaskKey::from_bytes(bytes));
        for bad in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            match parse_key(bad) {
                Err(Error::Corrupt { what, message }) => {
                    assert_eq!(what, MASK_KEY_COLUMN);
                    assert!(bad.is_empty() || !message.contains(bad), "{message}");
                }
                other => panic!("{bad:?}: expected a corrupt key, got {other:?}"),
            }
        }
    }
}
