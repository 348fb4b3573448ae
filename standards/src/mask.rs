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
//! | `{"strategy": "none"}` | shown as is | |

use serde::{Deserialize, Serialize};

/// How a sensitive value is shown without an unmasked grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
}

impl MaskStrategy {
    /// Whether this strategy leaves values unchanged.
    pub fn is_none(&self) -> bool {
        matches!(self, MaskStrategy::None)
    }

    /// Mask one value; `None` means the value becomes NULL.
    pub fn apply(&self, value: &str) -> Option<String> {
        match *self {
            MaskStrategy::None => Some(value.to_owned()),
            MaskStrategy::Redact => None,
            MaskStrategy::Full => Some("*".repeat(value.chars().count())),
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

    #[test]
    fn parses_from_json() {
        let mask: MaskStrategy = serde_json::from_str(r#"{"strategy":"keep_ends","first":3,"last":4}"#).unwrap();
        assert_eq!(mask, MaskStrategy::KeepEnds { first: 3, last: 4 });
        assert!(serde_json::from_str::<MaskStrategy>(r#"{"strategy":"bogus"}"#).is_err());
    }
}
