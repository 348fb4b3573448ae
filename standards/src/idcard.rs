//! Citizen ID numbers (公民身份号码), GB 11643-1999.
//!
//! An ID number has 18 characters: a 6-digit GB/T 2260 county code, the birth
//! date as `YYYYMMDD`, a 3-digit order code (odd for men, even for women) and
//! an ISO 7064 MOD 11-2 check character (`0`-`9` or `X`). Numbers issued before
//! 1999 had 15 digits (two-digit year, no check character); [`normalize`]
//! upgrades them.
//!
//! Two entry points:
//! - [`CitizenId::parse`] for one value typed by a person: normalizes
//!   (whitespace, full-width digits, lower-case `x`, 15-digit numbers), then
//!   validates.
//! - [`validate_str`] for the columnar validator: checks an already-normalized
//!   string with no normalization and no allocation.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::division::{DivisionTable, all_digits8};

/// Number of characters in a current ID number.
pub const ID_LEN: usize = 18;
/// Number of digits in a pre-1999 ID number.
pub const OLD_ID_LEN: usize = 15;
/// Birth years before this are rejected as implausible.
pub const MIN_BIRTH_YEAR: i32 = 1800;

/// ISO 7064 MOD 11-2 weights of the first 17 digits (2^(17-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder of the weighted sum mod 11.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Why a string is not a valid citizen ID number.
///
/// Checks run in this order: length and character set, province, birth date,
/// check character; the first failure is reported. Character positions are
/// 1-based, because they end up in messages read by people fixing a
/// spreadsheet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing there (or only whitespace, after normalization).
    #[error("empty ID number")]
    Empty,
    /// Not 18 characters.
    #[error("an ID number has 18 characters, found {len}")]
    Length {
        /// Number of characters found.
        len: usize,
    },
    /// A character other than a digit, or an `X` anywhere but last.
    #[error("invalid character {found:?} at position {position} (digits only; X only last)")]
    Charset {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The first two digits are not a province (nor 71/81/82/83).
    #[error("{prefix} is not a province code")]
    UnknownProvince {
        /// The first two digits.
        prefix: String,
    },
    /// The birth-date digits are not a calendar date from 1800 on.
    #[error("{date} is not a valid birth date")]
    InvalidBirthDate {
        /// The eight birth-date digits.
        date: String,
    },
    /// The birth date is after today.
    #[error("birth date {date} is in the future")]
    FutureBirthDate {
        /// The birth date.
        date: NaiveDate,
    },
    /// The last character does not match the check computed from the others.
    #[error("check character should be {expected}, found {found}")]
    CheckCharacter {
        /// The check character the first 17 digits call for.
        expected: char,
        /// The character present.
        found: char,
    },
}

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sex as encoded by the parity of the order code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// Odd order code.
    Male,
    /// Even order code.
    Female,
}

impl Sex {
    /// The GB/T 2261.1-2003 code: `"1"` male, `"2"` female.
    pub const fn gb2261_code(&self) -> &'static str {
        match self {
            Sex::Male => "1",
            Sex::Female => "2",
        }
    }

    /// The GB/T 2261.1-2003 label: 男性 or 女性.
    pub const fn label_zh(&self) -> &'static str {
        match self {
            Sex::Male => "男性",
            Sex::Female => "女性",
        }
    }
}

/// A valid, normalized 18-character citizen ID number.
///
/// Stored inline (it is `Copy`); the birth date is decoded once at parse time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId {
    digits: [u8; ID_LEN],
    birth: NaiveDate,
}

impl CitizenId {
    /// Normalizes (see [`normalize`]) and validates, with "today" being the
    /// current date in China (UTC+8).
    pub fn parse(input: &str) -> Result<CitizenId> {
        Self::parse_on(input, today_in_china())
    }

    /// Normalizes and validates, rejecting birth dates after `today`.
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<CitizenId> {
        let normalized = normalize(input);
        let (year, month, day) = check(&normalized, today)?;
        let birth = NaiveDate::from_ymd_opt(year as i32, month, day)
            .ok_or_else(|| Error::InvalidBirthDate { date: normalized.get(6..14).unwrap_or_default().to_owned() })?;
        let mut digits = [b'0'; ID_LEN];
        // `check` guarantees exactly 18 ASCII bytes.
        digits.copy_from_slice(normalized.as_bytes());
        Ok(CitizenId { digits, birth })
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and `X` are ever stored, so this never falls back.
        std::str::from_utf8(&self.digits).unwrap_or("")
    }

    /// The birth date (digits 7-14).
    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// Sex from the parity of the order code (digits 15-17): odd is male.
    pub fn sex(&self) -> Sex {
        if self.digits[16] % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// Age in full years on `date`; `None` if `date` is before the birth date.
    ///
    /// Someone born on 29 February turns a year older on 1 March in common
    /// years.
    pub fn age_on(&self, date: NaiveDate) -> Option<u32> {
        if date < self.birth {
            return None;
        }
        let mut years = date.year() - self.birth.year();
        if (date.month(), date.day()) < (self.birth.month(), self.birth.day()) {
            years -= 1;
        }
        u32::try_from(years).ok()
    }

    /// The first six digits: the GB/T 2260 county code of the place of
    /// registration at issue.
    pub fn county_code(&self) -> &str {
        let s = self.as_str();
        s.get(..6).unwrap_or(s)
    }
}

/// Puts a typed ID number into canonical form without validating it: trims
/// whitespace (including the full-width space U+3000), maps full-width digits
/// `０`-`９` to ASCII and `Ｘ`, `ｘ`, `x` to `X`, and upgrades a 15-digit
/// pre-1999 number to 18 by inserting `19` after the county code and appending
/// the check character.
pub fn normalize(input: &str) -> String {
    let trimmed = input.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let s: String = trimmed
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(u32::from(c) - 0xff10 + u32::from(b'0')).unwrap_or(c),
            'Ｘ' | 'ｘ' | 'x' => 'X',
            other => other,
        })
        .collect();
    if s.len() == OLD_ID_LEN && s.bytes().all(|b| b.is_ascii_digit()) {
        let mut upgraded = String::with_capacity(ID_LEN);
        upgraded.push_str(&s[..6]);
        upgraded.push_str("19");
        upgraded.push_str(&s[6..]);
        if let Some(c) = check_character(&upgraded) {
            upgraded.push(c);
        }
        return upgraded;
    }
    s
}

/// The ISO 7064 MOD 11-2 check character for the first 17 digits, or `None`
/// unless `first17` is exactly 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != WEIGHTS.len() {
        return None;
    }
    check_byte(b).map(char::from)
}

/// Check byte over the first 17 bytes; `None` if any is not a digit.
fn check_byte(b: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (&d, &w) in b.iter().zip(WEIGHTS.iter()) {
        if !d.is_ascii_digit() {
            return None;
        }
        sum += u32::from(d - b'0') * w;
    }
    CHECK_CHARS.get((sum % 11) as usize).copied()
}

/// Σ dᵢ·2^(7-i) over the 8 ASCII digits of `word` (loaded little-endian, so the
/// first digit is the lowest byte): pairs, then quads, then all eight, by three
/// multiplies, each lane small enough never to carry into the next.
fn binary_weighted(word: u64) -> u64 {
    let v = ((word & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2 << 8 | 1)) >> 8;
    let v = ((v & 0x00FF_00FF_00FF_00FF).wrapping_mul(4 << 16 | 1)) >> 16;
    ((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(16 << 32 | 1)) >> 32
}

/// The check character of an ID whose first 17 bytes are known to be ASCII
/// digits (the validator's hot path). The MOD 11-2 weights are 2^(17-i) mod 11,
/// so the weighted sum is, mod 11, the digits read as a base-2 number:
/// two 8-digit words by multiplies instead of 17 multiply-adds.
fn check_byte_of_digits(b: &[u8; ID_LEN]) -> u8 {
    let [d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, _] = *b;
    let head = binary_weighted(u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]));
    let tail = binary_weighted(u64::from_le_bytes([d8, d9, d10, d11, d12, d13, d14, d15]));
    let sum = (head << 10) + (tail << 2) + (u64::from(d16 & 0x0F) << 1);
    CHECK_CHARS.get((sum % 11) as usize).copied().unwrap_or(b'?')
}

/// Validates an already-normalized ID number: exactly 18 characters, no
/// normalization, no allocation on success. The per-row fast path of the
/// columnar validator.
pub fn validate_str(input: &str, today: NaiveDate) -> Result<()> {
    check(input, today).map(|_| ())
}

/// The validity test of [`validate_str`] for many IDs against one "today":
/// the columnar validator's per-row check. It answers only yes or no (ask
/// [`validate_str`] why), so it runs on bytes with no error values, and the
/// date of today is taken apart once, not per ID.
#[derive(Debug, Clone, Copy)]
pub struct Checker {
    /// Today as the number yyyymmdd.
    today: i64,
}

impl Checker {
    /// A checker for birth dates up to `today`.
    pub fn new(today: NaiveDate) -> Checker {
        Checker { today: date_key(i64::from(today.year()), today.month(), today.day()) }
    }

    /// Whether `input` is a valid normalized ID number: exactly what
    /// `validate_str(input, today).is_ok()` says.
    #[inline]
    pub fn is_valid(&self, input: &str) -> bool {
        let b = input.as_bytes();
        // A valid ID is exactly 18 ASCII bytes; anything else fails validate_str too.
        let Some(id) = b.first_chunk::<ID_LEN>().filter(|_| b.len() == ID_LEN) else { return false };
        let [d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, last] = *id;
        let well_formed = all_digits8(u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]))
            & all_digits8(u64::from_le_bytes([d8, d9, d10, d11, d12, d13, d14, d15]))
            & d16.is_ascii_digit()
            & (last.is_ascii_digit() | (last == b'X'));
        if !well_formed || !province_ok(d0, d1) {
            return false;
        }
        let year = number(&[d6, d7, d8, d9]);
        let month = number(&[d10, d11]);
        let day = number(&[d12, d13]);
        year >= MIN_BIRTH_YEAR as u32
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && date_key(i64::from(year), month, day) <= self.today
            && check_byte_of_digits(id) == last
    }
}

/// A date as the number yyyymmdd, which orders like the date.
fn date_key(year: i64, month: u32, day: u32) -> i64 {
    year * 10_000 + i64::from(month * 100 + day)
}

/// Today's date in China (UTC+8, no daylight saving).
pub fn today_in_china() -> NaiveDate {
    let now = Utc::now().naive_utc();
    now.checked_add_signed(TimeDelta::hours(8)).unwrap_or(now).date()
}

/// Whether the first two digits may begin an ID number: a mainland province
/// of the division table, or Taiwan (71), Hong Kong (81), Macao (82), or 83
/// (residence permits for Taiwan residents).
fn province_ok(a: u8, b: u8) -> bool {
    match (a, b) {
        (b'7', b'1') | (b'8', b'1'..=b'3') => true,
        (b'0'..=b'9', b'0'..=b'9') => {
            DivisionTable::builtin().is_province_number(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => false,
    }
}

/// Parses ASCII digits into a number (callers pass digits only).
fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |acc, &d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 31,
    }
}

/// All the checks, in order; returns the birth date as (year, month, day), a real calendar date.
fn check(input: &str, today: NaiveDate) -> Result<(u32, u32, u32)> {
    if input.is_empty() {
        return Err(Error::Empty);
    }
    let b = input.as_bytes();
    if b.len() != ID_LEN {
        let len = input.chars().count();
        if len != ID_LEN {
            return Err(Error::Length { len });
        }
        // 18 characters but more bytes: a non-ASCII character, reported below.
    }
    // The common case: 17 ASCII digits and a digit or X, checked on bytes, eight at a time.
    let well_formed = b.first_chunk::<ID_LEN>().filter(|_| b.len() == ID_LEN).is_some_and(|id| {
        let [d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, last] = *id;
        all_digits8(u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]))
            && all_digits8(u64::from_le_bytes([d8, d9, d10, d11, d12, d13, d14, d15]))
            && d16.is_ascii_digit()
            && (last.is_ascii_digit() || last == b'X')
    });
    if !well_formed {
        for (i, c) in input.chars().enumerate() {
            if !(c.is_ascii_digit() || (i == ID_LEN - 1 && c == 'X')) {
                return Err(Error::Charset { position: i + 1, found: c });
            }
        }
    }
    // From here on `b` is exactly 18 ASCII bytes (18 characters, all ASCII).
    let Some(id) = b.first_chunk::<ID_LEN>() else { return Err(Error::Length { len: b.len() }) };
    if !province_ok(b[0], b[1]) {
        return Err(Error::UnknownProvince { prefix: input[..2].to_owned() });
    }
    let year = number(&b[6..10]);
    let month = number(&b[10..12]);
    let day = number(&b[12..14]);
    // A plain calendar check: this runs once per row on the validator's hot path,
    // where building a NaiveDate per row costs more than the rest of the check.
    let real_date = i32::try_from(year).is_ok_and(|y| y >= MIN_BIRTH_YEAR)
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month);
    if !real_date {
        return Err(Error::InvalidBirthDate { date: input[6..14].to_owned() });
    }
    if date_key(i64::from(year), month, day) > date_key(i64::from(today.year()), today.month(), today.day()) {
        return Err(Error::FutureBirthDate { date: NaiveDate::from_ymd_opt(year as i32, month, day).unwrap_or(today) });
    }
    let expected = check_byte_of_digits(id);
    let found = b[17];
    if expected != found {
        return Err(Error::CheckCharacter { expected: char::from(expected), found: char::from(found) });
    }
    Ok((year, month, day))
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CitizenId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CitizenId {
    type Err = Error;

    /// Same as [`CitizenId::parse`].
    fn from_str(s: &str) -> Result<Self> {
        CitizenId::parse(s)
    }
}

impl Serialize for CitizenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CitizenId {
    /// Accepts a string and parses it like [`CitizenId::parse`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CitizenId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a citizen ID number string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CitizenId, E> {
                CitizenId::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2025, 6, 1)
    }

    /// A valid ID from its first 17 digits.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_character(first17).unwrap())
    }

    #[test]
    fn standard_example() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        let id = CitizenId::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.sex().gb2261_code(), "2");
        assert_eq!(id.county_code(), "110105");
        assert_eq!(validate_str("11010519491231002X", today()), Ok(()));
    }

    #[test]
    fn other_known_valid_ids() {
        // Check characters computed by hand with the MOD 11-2 weights.
        assert_eq!(check_character("44052419800101001"), Some('3'));
        assert_eq!(check_character("63010219900307123"), Some('1'));
        for id in ["440524198001010013", "630102199003071231"] {
            assert_eq!(validate_str(id, today()), Ok(()), "{id}");
        }
        let id = CitizenId::parse_on("630102199003071231", today()).unwrap();
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.sex().gb2261_code(), "1");
        assert_eq!(id.age_on(date(2025, 3, 6)), Some(34));
        assert_eq!(id.age_on(date(2025, 3, 7)), Some(35));
    }

    #[test]
    fn non_mainland_prefixes() {
        for prefix in ["71", "81", "82", "83"] {
            let id = with_check(&format!("{prefix}000019900101001"));
            assert_eq!(validate_str(&id, today()), Ok(()), "{id}");
        }
        for prefix in ["00", "10", "66", "72", "80", "84", "91", "99"] {
            let id = with_check(&format!("{prefix}010519491231002"));
            assert_eq!(validate_str(&id, today()), Err(Error::UnknownProvince { prefix: prefix.into() }), "{id}");
        }
    }

    #[test]
    fn each_error_variant() {
        let t = today();
        assert_eq!(validate_str("", t), Err(Error::Empty));
        assert_eq!(CitizenId::parse_on("  \u{3000} ", t), Err(Error::Empty));
        assert_eq!(validate_str("11010519491231002", t), Err(Error::Length { len: 17 }));
        assert_eq!(validate_str("11010519491231002X1", t), Err(Error::Length { len: 19 }));
        assert_eq!(validate_str("1101051949123100AX", t), Err(Error::Charset { position: 17, found: 'A' }));
        assert_eq!(validate_str("X1010519491231002X", t), Err(Error::Charset { position: 1, found: 'X' }));
        // validate_str does not normalize: lower-case x and full-width digits fail.
        assert_eq!(validate_str("11010519491231002x", t), Err(Error::Charset { position: 18, found: 'x' }));
        assert_eq!(validate_str("１10105194912310023", t), Err(Error::Charset { position: 1, found: '１' }));
        assert_eq!(
            validate_str(&with_check("99010519491231002"), t),
            Err(Error::UnknownProvince { prefix: "99".into() })
        );
        assert_eq!(
            validate_str(&with_check("11010519900230002"), t),
            Err(Error::InvalidBirthDate { date: "19900230".into() })
        );
        assert_eq!(
            validate_str(&with_check("11010519901301002"), t),
            Err(Error::InvalidBirthDate { date: "19901301".into() })
        );
        assert_eq!(
            validate_str(&with_check("11010517991231002"), t),
            Err(Error::InvalidBirthDate { date: "17991231".into() })
        );
        assert_eq!(validate_str(&with_check("11010518000101002"), t), Ok(()));
        assert_eq!(
            validate_str(&with_check("11010520250602002"), t),
            Err(Error::FutureBirthDate { date: date(2025, 6, 2) })
        );
        assert_eq!(validate_str(&with_check("11010520250601002"), t), Ok(()));
        assert_eq!(validate_str("110105194912310021", t), Err(Error::CheckCharacter { expected: 'X', found: '1' }));
    }

    #[test]
    fn check_order() {
        // Bad province, bad date and bad check at once: the province wins.
        assert!(matches!(validate_str("990105199002300021", today()), Err(Error::UnknownProvince { .. })));
        // Bad date and bad check: the date wins.
        assert!(matches!(validate_str("110105199002300021", today()), Err(Error::InvalidBirthDate { .. })));
        // Length before anything else.
        assert!(matches!(validate_str("99", today()), Err(Error::Length { len: 2 })));
    }

    #[test]
    fn fifteen_digit_upgrade() {
        assert_eq!(normalize("110105491231002"), "11010519491231002X");
        let id = CitizenId::parse_on(" 110105491231002 ", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        // Not 15 digits: left alone.
        assert_eq!(normalize("11010549123100A"), "11010549123100A");
        assert_eq!(normalize("1101054912310"), "1101054912310");
    }

    #[test]
    fn full_width_and_lower_x() {
        assert_eq!(normalize("\u{3000}１１０１０５１９４９１２３１００２ｘ "), "11010519491231002X");
        assert_eq!(normalize("11010519491231002Ｘ"), "11010519491231002X");
        assert_eq!(normalize("11010519491231002x"), "11010519491231002X");
        for s in [
            "１１０１０５１９４９１２３１００２Ｘ",
            "11010519491231002x",
            "\t11010519491231002X\n",
            "１１０１０５４９１２３１００２",
        ] {
            assert_eq!(CitizenId::parse_on(s, today()).unwrap().as_str(), "11010519491231002X", "{s}");
        }
    }

    #[test]
    fn age_and_leap_days() {
        let id = CitizenId::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.age_on(date(1949, 12, 30)), None);
        assert_eq!(id.age_on(date(1949, 12, 31)), Some(0));
        assert_eq!(id.age_on(date(2024, 12, 30)), Some(74));
        assert_eq!(id.age_on(date(2024, 12, 31)), Some(75));

        let leap = CitizenId::parse_on(&with_check("63010220000229003"), today()).unwrap();
        assert_eq!(leap.birth_date(), date(2000, 2, 29));
        assert_eq!(leap.sex(), Sex::Male);
        assert_eq!(leap.age_on(date(2001, 2, 28)), Some(0));
        assert_eq!(leap.age_on(date(2001, 3, 1)), Some(1));
        assert_eq!(leap.age_on(date(2004, 2, 28)), Some(3));
        assert_eq!(leap.age_on(date(2004, 2, 29)), Some(4));
        // 1900 was not a leap year; 2000 was.
        assert!(matches!(validate_str(&with_check("63010219000229003"), today()), Err(Error::InvalidBirthDate { .. })));
    }

    #[test]
    fn traits() {
        let id: CitizenId = "11010519491231002x".parse().unwrap();
        assert_eq!(id.to_string(), "11010519491231002X");
        assert_eq!(format!("{id:?}"), "CitizenId(\"11010519491231002X\")");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<CitizenId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<CitizenId>("\"110105194912310021\"").is_err());
        assert_eq!(Sex::Female.label_zh(), "女性");
        let msg = Error::Charset { position: 3, found: 'a' }.to_string();
        assert!(msg.contains("position 3"), "{msg}");
    }

    #[test]
    fn today_is_sane() {
        let t = today_in_china();
        let utc = Utc::now().date_naive();
        assert!(t == utc || t == utc.succ_opt().unwrap());
        assert!(CitizenId::parse("11010519491231002X").is_ok());
    }

    #[test]
    fn check_character_rejects_non_digits() {
        assert_eq!(check_character(""), None);
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("110105194912310021"), None);
        assert_eq!(check_character("1101051949123100X"), None);
        assert_eq!(check_character("１１０１０５１９"), None);
    }

    /// 17-digit bodies with a real province, a real date and any county and
    /// order digits.
    fn valid_body() -> impl Strategy<Value = String> {
        let provinces = prop::sample::select(vec!["11", "31", "44", "54", "63", "65", "71", "81", "82", "83"]);
        // 1900-01-01 plus up to ~125 years, capped at today() below.
        (provinces, 0u32..10_000, 0i64..45_000, 0u32..1000).prop_map(|(p, county, days, order)| {
            let birth = date(1900, 1, 1).checked_add_signed(TimeDelta::days(days)).unwrap().min(today());
            format!("{p}{county:04}{}{order:03}", birth.format("%Y%m%d"))
        })
    }

    proptest! {
        #[test]
        fn the_checker_agrees_with_validate_str(
            body in "[0-9]{17}",
            province in "[0-9]{2}",
            date in "(1[7-9]|20)[0-9]{2}(0[0-9]|1[0-3])([0-2][0-9]|3[0-2])",
            last in "[0-9Xx]",
            mangle in 0usize..6,
            today in (-1000i32..4000).prop_map(|d| date(2020, 1, 1) + chrono::Duration::days(i64::from(d))),
        ) {
            // Built around a real check digit, then perturbed, so every rule gets both verdicts.
            let first17 = format!("{province}{}{date}{}", &body[2..6], &body[14..17]);
            let good = check_character(&first17).unwrap_or('0');
            let id = match mangle {
                0 => format!("{first17}{good}"),
                1 => format!("{first17}{last}"),
                2 => format!("{first17}{good} "),
                3 => format!("{}{good}", &first17[..16]),
                4 => format!("{}１{good}", &first17[..16]),
                _ => format!("{}X{good}", &first17[..16]),
            };
            prop_assert_eq!(Checker::new(today).is_valid(&id), validate_str(&id, today).is_ok(), "{}", id);
        }

        #[test]
        fn the_checker_agrees_on_any_text(s in "\\PC{0,20}|[0-9X]{18}") {
            let today = date(2026, 1, 1);
            prop_assert_eq!(Checker::new(today).is_valid(&s), validate_str(&s, today).is_ok());
        }

        #[test]
        fn the_base_two_check_digit_equals_the_weighted_sum(digits in "[0-9]{17}") {
            let mut id = [b'0'; ID_LEN];
            id[..17].copy_from_slice(digits.as_bytes());
            prop_assert_eq!(Some(check_byte_of_digits(&id)), check_byte(&id[..17]));
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let n = normalize(&s);
            let _ = CitizenId::parse_on(&s, today());
            let _ = CitizenId::parse(&s);
            let _ = validate_str(&s, today());
            let _ = validate_str(&n, today());
            let _ = check_character(&s);
        }

        #[test]
        fn never_panics_on_id_like_strings(s in "[0-9xXｘＸ０-９ \u{3000}é]{0,20}") {
            if let Ok(id) = CitizenId::parse_on(&s, today()) {
                prop_assert_eq!(validate_str(id.as_str(), today()), Ok(()));
                prop_assert!(id.age_on(today()).is_some());
            }
        }

        #[test]
        fn check_character_round_trip(body in valid_body(), wrong in 0usize..11) {
            let expected = check_character(&body).unwrap();
            let id = format!("{body}{expected}");
            prop_assert_eq!(validate_str(&id, today()), Ok(()));
            let parsed = CitizenId::parse_on(&id, today()).unwrap();
            prop_assert_eq!(parsed.as_str(), id.as_str());
            let other = char::from(b"0123456789X"[wrong]);
            if other != expected {
                prop_assert_eq!(
                    validate_str(&format!("{body}{other}"), today()),
                    Err(Error::CheckCharacter { expected, found: other })
                );
            }
        }
    }
}
