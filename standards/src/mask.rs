//! Masking strategies for sensitive columns (`x-civlink-mask`).
//!
//! A standard names, per property, how the value is shown to a principal
//! who has not been granted unmasked access. The strategies work on Unicode
//! characters, not bytes, so a Chinese name is masked per character.
//!
//! | JSON form | effect | example |
//! |---|---|---|
//! | `{"strategy": "keep_ends", "first": 6, "last": 4}` | keep the first and last characters, star the middle | `630102********1234` |
//! | `{"strategy": "name"}` | keep the surname (first character) | `张**` |
//! | `{"strategy": "full"}` | star every character | `****` |
//! | `{"strategy": "redact"}` | the value becomes NULL | |
//! | `{"strategy": "pseudonym"}` | a keyed token: `ps_` + 24 hex digits of HMAC-SHA256 | `ps_2de2b91d50098766186aa9e7` |
//! | `{"strategy": "none"}` | shown as is | |
//!
//! # Pseudonyms
//!
//! A join key (a citizen ID number) masked by `keep_ends` can neither be
//! joined on (two people share `630102********1234`) nor kept secret (an ID
//! number has so little entropy that the starred digits are guessed from the
//! birth date and a few thousand tries). `pseudonym` replaces the value by
//! `HMAC-SHA256(key, value)`, cut to its first 96 bits: equal values give
//! equal pseudonyms, so masked columns of different datasets still join, and
//! without the key — a deployment secret, [`MaskKey`] — a pseudonym can be
//! neither reversed nor recomputed from a guessed ID number. The value is
//! hashed exactly as stored (no normalisation): ingestion has normalised ID
//! numbers already.
//!
//! The key is an explicit argument: [`MaskStrategy::apply_keyed`]. The
//! keyless [`MaskStrategy::apply`] cannot compute a pseudonym, and fails
//! closed: it stars the whole value, exactly like `full`. A code path that
//! forgot the key therefore shows stars, never the clear value, and never an
//! unkeyed (brute-forceable) hash.

use std::fmt;
use std::fmt::Write as _;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How a sensitive value is shown without an unmasked grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum MaskStrategy {
    /// Shown as is.
    #[default]
    None,
    /// Keep `first` leading and `last` trailing characters, star the rest.
    KeepEnds {
        /// Characters kept at the start.
        first: usize,
        /// Characters kept at the end.
        last: usize,
    },
    /// Keep the first character (the surname) and star the rest: 张三丰 → 张**.
    Name,
    /// Star every character.
    Full,
    /// Replace the value with NULL.
    Redact,
    /// A keyed pseudonym: `ps_` + the first 24 lower-case hex digits of
    /// `HMAC-SHA256(key, value)` (module docs). Needs the [`MaskKey`]; without
    /// it the value is starred in full.
    Pseudonym,
}

/// Prefix of every pseudonym, so that a pseudonym is never mistaken for a value.
pub const PSEUDONYM_PREFIX: &str = "ps_";

/// Hex digits of the HMAC kept in a pseudonym: 24 digits = 96 bits, so that
/// two of even 10^10 distinct values collide with probability below 10^-9
/// (birthday bound n²/2^97) and joins stay exact.
pub const PSEUDONYM_HEX_DIGITS: usize = 24;

/// Length in bytes of a [`MaskKey`].
pub const MASK_KEY_LEN: usize = 32;

/// The deployment secret that keys [`MaskStrategy::Pseudonym`].
///
/// 32 random bytes, generated once per deployment and kept in the metadata
/// store (`MetadataStore::mask_key`). Its `Debug` output never shows the
/// bytes, and there is no accessor for them: code that holds a key can
/// compute pseudonyms, not print or copy the secret.
#[derive(Clone)]
pub struct MaskKey {
    bytes: [u8; MASK_KEY_LEN],
    /// HMAC state with the key already absorbed, cloned per value (saves two
    /// SHA-256 blocks per value over keying afresh).
    mac: Hmac<Sha256>,
}

impl MaskKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; MASK_KEY_LEN]) -> MaskKey {
        // HMAC pads a key shorter than the hash's 64-byte block with zeros
        // (RFC 2104, step 1), so keying with the zero-padded block is HMAC
        // under the 32-byte key, through the infallible constructor.
        let mut block = [0u8; 64];
        block[..MASK_KEY_LEN].copy_from_slice(&bytes);
        let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        MaskKey { bytes, mac }
    }

    /// A MAC keyed with this key, for derivations within the crate
    /// ([`crate::seal`]).
    pub(crate) fn keyed_mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    /// The pseudonym of `value`: `ps_` + 24 lower-case hex digits.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PSEUDONYM_PREFIX.len() + PSEUDONYM_HEX_DIGITS);
        out.push_str(PSEUDONYM_PREFIX);
        for byte in digest.iter().take(PSEUDONYM_HEX_DIGITS / 2) {
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

impl fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskKey(<redacted>)")
    }
}

impl PartialEq for MaskKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for MaskKey {}

impl std::hash::Hash for MaskKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl MaskStrategy {
    /// Whether this strategy leaves values unchanged.
    pub fn is_none(&self) -> bool {
        matches!(self, MaskStrategy::None)
    }

    /// Whether this strategy needs the [`MaskKey`] ([`MaskStrategy::apply_keyed`]).
    pub fn is_keyed(&self) -> bool {
        matches!(self, MaskStrategy::Pseudonym)
    }

    /// Mask one value with `key`; `None` means the value becomes NULL.
    ///
    /// The same as [`MaskStrategy::apply`] except for
    /// [`MaskStrategy::Pseudonym`], which this computes.
    pub fn apply_keyed(&self, value: &str, key: &MaskKey) -> Option<String> {
        match self {
            MaskStrategy::Pseudonym => Some(key.pseudonym(value)),
            other => other.apply(value),
        }
    }

    /// Mask one value without a key; `None` means the value becomes NULL.
    ///
    /// [`MaskStrategy::Pseudonym`] cannot be computed without the key and
    /// fails closed: every character is starred, as by [`MaskStrategy::Full`].
    pub fn apply(&self, value: &str) -> Option<String> {
        match *self {
            MaskStrategy::None => Some(value.to_owned()),
            MaskStrategy::Redact => None,
            MaskStrategy::Full | MaskStrategy::Pseudonym => Some("*".repeat(value.chars().count())),
            MaskStrategy::Name => {
                let mut chars = value.chars();
                let mut out = String::with_capacity(value.len());
                if let Some(first) = chars.next() {
                    out.push(first);
                }
                out.extend(chars.map(|_| '*'));
                Some(out)
            }
            MaskStrategy::KeepEnds { first, last } => {
                let count = value.chars().count();
                if first + last >= count {
                    // Too short to keep both ends without revealing everything:
                    // star it all rather than leak the value.
                    return Some("*".repeat(count));
                }
                let out = value
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i < first || i >= count - last { c } else { '*' })
                    .collect();
                Some(out)
            }
        }
    }

    /// A short human description, for reports.
    pub fn describe(&self) -> String {
        match self {
            MaskStrategy::None => "none".into(),
            MaskStrategy::KeepEnds { first, last } => format!("keep first {first}, last {last}"),
            MaskStrategy::Name => "surname only".into(),
            MaskStrategy::Full => "all starred".into(),
            MaskStrategy::Redact => "null".into(),
            MaskStrategy::Pseudonym => "keyed pseudonym (HMAC-SHA256)".into(),
        }
    }
}

/// Mask a value for a log line: never log an ID number, name or phone number in clear.
pub fn for_log(value: &str) -> String {
    MaskStrategy::KeepEnds { first: 3, last: 2 }.apply(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_ends_masks_an_id_number() {
        let mask = MaskStrategy::KeepEnds { first: 6, last: 4 };
        assert_eq!(mask.apply("11010519491231002X").as_deref(), Some("110105********002X"));
    }

    #[test]
    fn keep_ends_never_reveals_a_short_value() {
        let mask = MaskStrategy::KeepEnds { first: 6, last: 4 };
        assert_eq!(mask.apply("12345").as_deref(), Some("*****"));
    }

    #[test]
    fn name_keeps_the_surname_per_character() {
        assert_eq!(MaskStrategy::Name.apply("张三丰").as_deref(), Some("张**"));
        assert_eq!(MaskStrategy::Name.apply("").as_deref(), Some(""));
    }

    #[test]
    fn redact_and_full() {
        assert_eq!(MaskStrategy::Redact.apply("x"), None);
        assert_eq!(MaskStrategy::Full.apply("青海").as_deref(), Some("**"));
    }

    fn key(fill: u8) -> MaskKey {
        MaskKey::from_bytes([fill; MASK_KEY_LEN])
    }

    fn counting_key() -> MaskKey {
        let mut bytes = [0u8; MASK_KEY_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        MaskKey::from_bytes(bytes)
    }

    #[test]
    fn pseudonym_is_hmac_sha256_truncated_to_96_bits() {
        // Expected values from Python: "ps_" + hmac.new(bytes(range(32)), v, sha256).hexdigest()[:24].
        let key = counting_key();
        assert_eq!(key.pseudonym("630102199003071234"), "ps_2de2b91d50098766186aa9e7");
        assert_eq!(key.pseudonym(""), "ps_d38b42096d80f45f826b44a9");
        assert_eq!(key.pseudonym("张三"), "ps_f816bf03f906c81a577a6e55");
        // The padded-block keying equals HMAC keyed with the 32 bytes directly.
        let mut bytes = [0u8; MASK_KEY_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap();
        mac.update(b"x");
        let full: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key.pseudonym("x"), format!("ps_{}", &full[..24]));
    }

    #[test]
    fn pseudonyms_are_deterministic_joinable_and_key_dependent() {
        let id = "11010519491231002X";
        let strategy = MaskStrategy::Pseudonym;
        let a = strategy.apply_keyed(id, &key(1)).unwrap();
        // Same key, same value: same pseudonym (also from a clone of the key).
        assert_eq!(strategy.apply_keyed(id, &key(1)).unwrap(), a);
        assert_eq!(strategy.apply_keyed(id, &key(1).clone()).unwrap(), a);
        // Another key: another pseudonym.
        assert_ne!(strategy.apply_keyed(id, &key(2)).unwrap(), a);
        // Another value: another pseudonym.
        assert_ne!(strategy.apply_keyed("110105194912310029", &key(1)).unwrap(), a);
        assert!(!a.contains("110105"), "{a}");
    }

    #[test]
    fn pseudonym_without_the_key_is_all_stars() {
        assert_eq!(MaskStrategy::Pseudonym.apply("11010519491231002X").as_deref(), Some("******************"));
        assert!(MaskStrategy::Pseudonym.is_keyed());
        assert!(!MaskStrategy::Full.is_keyed());
        // Unkeyed strategies ignore the key.
        assert_eq!(MaskStrategy::Name.apply_keyed("张三丰", &key(1)).as_deref(), Some("张**"));
        assert_eq!(MaskStrategy::Redact.apply_keyed("x", &key(1)), None);
    }

    #[test]
    fn key_debug_never_shows_the_bytes() {
        let text = format!("{:?}", key(0xab));
        assert_eq!(text, "MaskKey(<redacted>)");
        assert!(!text.contains("171") && !text.contains("ab"), "{text}");
        assert_eq!(key(3), key(3));
        assert_ne!(key(3), key(4));
    }

    #[test]
    fn pseudonym_parses_from_and_writes_json() {
        let mask: MaskStrategy = serde_json::from_str(r#"{"strategy": "pseudonym"}"#).unwrap();
        assert_eq!(mask, MaskStrategy::Pseudonym);
        assert_eq!(serde_json::to_string(&mask).unwrap(), r#"{"strategy":"pseudonym"}"#);
    }

    proptest::proptest! {
        #[test]
        fn pseudonym_format_holds_for_any_string(value in ".*", fill in proptest::num::u8::ANY) {
            let key = key(fill);
            let p = MaskStrategy::Pseudonym.apply_keyed(&value, &key).unwrap();
            proptest::prop_assert_eq!(p.len(), 27);
            proptest::prop_assert!(p.starts_with("ps_"));
            proptest::prop_assert!(p[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            proptest::prop_assert_eq!(&p, &key.pseudonym(&value.clone()));
            // The keyless path never reveals the value: stars only.
            let starred = MaskStrategy::Pseudonym.apply(&value).unwrap();
            proptest::prop_assert!(starred.chars().all(|c| c == '*'));
            proptest::prop_assert_eq!(starred.chars().count(), value.chars().count());
        }

        #[test]
        fn distinct_values_get_distinct_pseudonyms(a in ".{0,20}", b in ".{0,20}") {
            let key = counting_key();
            proptest::prop_assert_eq!(a == b, key.pseudonym(&a) == key.pseudonym(&b));
        }
    }

    #[test]
    fn parses_from_json() {
        let mask: MaskStrategy = serde_json::from_str(r#"{"strategy":"keep_ends","first":3,"last":4}"#).unwrap();
        assert_eq!(mask, MaskStrategy::KeepEnds { first: 3, last: 4 });
        assert!(serde_json::from_str::<MaskStrategy>(r#"{"strategy":"bogus"}"#).is_err());
    }
}
