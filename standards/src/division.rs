//! Statistical division codes (统计用区划代码).
//!
//! The National Bureau of Statistics numbers every administrative division with
//! 12 digits, split 2+2+2+3+3 into province, city, county, township and village
//! segments; a division above village level zero-fills the segments below it
//! (青海省 is `630000000000`, 西宁市 `630100000000`, 城东区 `630102000000`).
//! The first six digits are the GB/T 2260 county code that citizen ID numbers
//! begin with.
//!
//! [`DivisionCode`] is a parsed, structurally valid code (it says nothing about
//! whether the division exists); [`DivisionTable`] is a table of real divisions,
//! and [`DivisionTable::builtin`] is the one shipped in `data/divisions/`:
//! Qinghai down to village level plus every mainland province, city and county.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Qinghai at all five levels (see `data/divisions/README.md`).
const QINGHAI_CSV: &str = include_str!("../data/divisions/qinghai.csv");
/// Every mainland province, city and county.
const CHINA_COUNTIES_CSV: &str = include_str!("../data/divisions/china-counties.csv");

/// Number of digits in a statistical division code.
pub const CODE_LEN: usize = 12;
/// Number of digits in a GB/T 2260 county code.
pub const COUNTY_CODE_LEN: usize = 6;

/// Errors from parsing division codes, levels and division tables.
///
/// Character positions are 1-based, because they end up in messages read by
/// people checking a spreadsheet column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A division code did not have exactly 12 characters.
    #[error("a division code has 12 digits, found {len} characters")]
    Length {
        /// Number of characters found (after trimming).
        len: usize,
    },
    /// A county code did not have exactly 6 characters.
    #[error("a county code (GB/T 2260) has 6 digits, found {len} characters")]
    CountyCodeLength {
        /// Number of characters found (after trimming).
        len: usize,
    },
    /// A character other than an ASCII digit.
    #[error("division codes are digits only, found {found:?} at position {position}")]
    NonDigit {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The digits do not form a division code: province `00`, or a non-zero
    /// segment below a zero-filled one (such as `630000100000`).
    #[error("{code} is not a well-formed division code")]
    Structure {
        /// The code as given.
        code: String,
    },
    /// A well-formed code that is not in the division table.
    #[error("division code {code} is not in the division table")]
    UnknownCode {
        /// The code looked up.
        code: String,
    },
    /// A division level name that is not one of the five levels.
    #[error(
        "unknown division level {value:?} (expected province, city, county, township, village, 省, 市, 县, 乡, 村 or 1-5)"
    )]
    UnknownLevel {
        /// The value as given.
        value: String,
    },
    /// A CSV line without exactly four columns.
    #[error("line {line}: expected 4 columns (code,name,level,parent_code), found {found}")]
    ColumnCount {
        /// 1-based line number.
        line: usize,
        /// Number of columns found.
        found: usize,
    },
    /// A CSV field that could not be parsed.
    #[error("line {line}: column {column}: {source}")]
    Field {
        /// 1-based line number.
        line: usize,
        /// Column name.
        column: &'static str,
        /// Why the field was rejected.
        #[source]
        source: Box<Error>,
    },
    /// A CSV line with an empty name.
    #[error("line {line}: empty division name")]
    EmptyName {
        /// 1-based line number.
        line: usize,
    },
    /// The level column disagrees with the level the code's digits imply.
    #[error("line {line}: {code} is a {derived} code but is declared {declared}")]
    LevelMismatch {
        /// 1-based line number.
        line: usize,
        /// The code on the line.
        code: String,
        /// Level in the CSV.
        declared: Level,
        /// Level implied by the digits.
        derived: Level,
    },
    /// The parent is not a higher-level division that contains the code (or a
    /// province names a parent).
    #[error("line {line}: {parent} cannot be the parent of {code}")]
    BadParent {
        /// 1-based line number.
        line: usize,
        /// The code on the line.
        code: String,
        /// The declared parent.
        parent: String,
    },
    /// A division below province level without a parent.
    #[error("line {line}: {code} is below province level but has no parent")]
    Orphan {
        /// 1-based line number.
        line: usize,
        /// The code on the line.
        code: String,
    },
    /// The declared parent is not in the table.
    #[error("line {line}: parent {parent} of {code} is not in the table")]
    MissingParent {
        /// 1-based line number.
        line: usize,
        /// The code on the line.
        code: String,
        /// The declared parent.
        parent: String,
    },
    /// The same code defined twice with different data.
    #[error("line {line}: {code} was already defined differently at line {first_line}")]
    Conflict {
        /// 1-based line number of the second definition.
        line: usize,
        /// The code.
        code: String,
        /// 1-based line number of the first definition (in its own source).
        first_line: usize,
    },
}

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The five levels of the statistical division hierarchy, ordered by depth
/// (`Province < City < … < Village`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 省级: province, autonomous region, municipality.
    Province,
    /// 地级: city, prefecture, league (and the "directly administered" groupings).
    City,
    /// 县级: county, district, county-level city, banner.
    County,
    /// 乡级: township, town, sub-district.
    Township,
    /// 村级: village committee, residents' committee.
    Village,
}

impl Level {
    /// All levels, from province down to village.
    pub const fn all() -> [Level; 5] {
        [Level::Province, Level::City, Level::County, Level::Township, Level::Village]
    }

    /// Lower-case English name, as used in the CSV files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }

    /// One-character Chinese label: 省, 市, 县, 乡, 村.
    pub const fn label_zh(self) -> &'static str {
        match self {
            Level::Province => "省",
            Level::City => "市",
            Level::County => "县",
            Level::Township => "乡",
            Level::Village => "村",
        }
    }

    /// Number of leading digits that identify a division of this level:
    /// 2, 4, 6, 9, 12.
    pub const fn prefix_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    /// Depth in the hierarchy, 1 (province) to 5 (village).
    pub const fn depth(self) -> u8 {
        match self {
            Level::Province => 1,
            Level::City => 2,
            Level::County => 3,
            Level::Township => 4,
            Level::Village => 5,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Accepts the English names (any case), the Chinese labels and the depth
    /// numbers 1-5.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        for level in Level::all() {
            if t.eq_ignore_ascii_case(level.as_str()) || t == level.label_zh() {
                return Ok(level);
            }
        }
        match t {
            "1" => Ok(Level::Province),
            "2" => Ok(Level::City),
            "3" => Ok(Level::County),
            "4" => Ok(Level::Township),
            "5" => Ok(Level::Village),
            _ => Err(Error::UnknownLevel { value: s.to_owned() }),
        }
    }
}

/// A structurally valid 12-digit statistical division code.
///
/// Stored as its 12 ASCII digits, so it is `Copy`, orders like the number it
/// spells, and [`as_str`](Self::as_str) borrows without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode([u8; CODE_LEN]);

/// True when every byte of the segment is `b'0'`.
fn all_zero(segment: &[u8]) -> bool {
    segment.iter().all(|&b| b == b'0')
}

/// Level implied by the zero-filled tail (assumes a well-formed code).
fn level_of(d: &[u8; CODE_LEN]) -> Level {
    if !all_zero(&d[9..12]) {
        Level::Village
    } else if !all_zero(&d[6..9]) {
        Level::Township
    } else if !all_zero(&d[4..6]) {
        Level::County
    } else if !all_zero(&d[2..4]) {
        Level::City
    } else {
        Level::Province
    }
}

/// Structural rules of a division code.
///
/// The province segment is never `00`; below a zero city segment everything
/// is zero; below a zero township segment the village is zero. A zero county
/// segment under a non-zero city with a non-zero township is allowed: cities
/// without counties (东莞 4419, 中山 4420, 儋州 4604, 嘉峪关 6202) number their
/// towns directly under the city, e.g. 东城街道 `441900003000`.
fn well_formed(d: &[u8; CODE_LEN]) -> bool {
    if all_zero(&d[0..2]) {
        return false;
    }
    if all_zero(&d[2..4]) && !all_zero(&d[4..12]) {
        return false;
    }
    if all_zero(&d[6..9]) && !all_zero(&d[9..12]) {
        return false;
    }
    true
}

/// Copies exactly `N` ASCII digits out of `s` (already trimmed), reporting the
/// first problem: the length, counted in characters, then a non-digit.
fn digits<const N: usize>(s: &str, length_error: fn(usize) -> Error) -> Result<[u8; N]> {
    let mut out = [b'0'; N];
    let mut count = 0usize;
    let mut bad: Option<(usize, char)> = None;
    for (i, c) in s.chars().enumerate() {
        if let Some(slot) = out.get_mut(i) {
            if c.is_ascii_digit() {
                // `c` is ASCII, so the cast is exact.
                *slot = c as u8;
            } else if bad.is_none() {
                bad = Some((i + 1, c));
            }
        }
        count += 1;
    }
    if count != N {
        return Err(length_error(count));
    }
    if let Some((position, found)) = bad {
        return Err(Error::NonDigit { position, found });
    }
    Ok(out)
}

impl DivisionCode {
    /// Parses exactly 12 ASCII digits (surrounding whitespace is ignored) with a
    /// valid structure. Does not check that the division exists; see
    /// [`DivisionTable::contains`].
    pub fn parse(s: &str) -> Result<DivisionCode> {
        let d = digits::<CODE_LEN>(s.trim(), |len| Error::Length { len })?;
        Self::from_digits(d)
    }

    /// Expands a 6-digit GB/T 2260 county code by appending `000000`; the level
    /// follows from the zeros (`630000` is a province, `630100` a city).
    pub fn from_county_code(six: &str) -> Result<DivisionCode> {
        let six = digits::<COUNTY_CODE_LEN>(six.trim(), |len| Error::CountyCodeLength { len })?;
        let mut d = [b'0'; CODE_LEN];
        d[..COUNTY_CODE_LEN].copy_from_slice(&six);
        Self::from_digits(d)
    }

    fn from_digits(d: [u8; CODE_LEN]) -> Result<DivisionCode> {
        if well_formed(&d) {
            Ok(DivisionCode(d))
        } else {
            Err(Error::Structure { code: String::from_utf8_lossy(&d).into_owned() })
        }
    }

    /// The level, from the zero-filled tail.
    pub fn level(&self) -> Level {
        level_of(&self.0)
    }

    /// The ancestor at `level`: `Some(self)` at its own level, `None` when
    /// `level` is deeper than this code, or when there is no division at that
    /// level in between (a town of 东莞 has a city but no county).
    pub fn parent(&self, level: Level) -> Option<DivisionCode> {
        if level > self.level() {
            return None;
        }
        let mut d = self.0;
        for b in &mut d[level.prefix_len()..] {
            *b = b'0';
        }
        (level_of(&d) == level).then_some(DivisionCode(d))
    }

    /// The digits up to its level: `63` for a province, `6301` for a city,
    /// `630102` for a county, `630102001` for a township, all 12 for a village.
    /// A row is in this division's scope iff its code starts with this prefix.
    pub fn scope_prefix(&self) -> &str {
        let s = self.as_str();
        s.get(..self.level().prefix_len()).unwrap_or(s)
    }

    /// Whether `other` lies within this division (a code contains itself).
    pub fn contains(&self, other: &DivisionCode) -> bool {
        other.as_str().starts_with(self.scope_prefix())
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The code as a number (what [`DivisionTable`] indexes by).
    pub fn as_u64(&self) -> u64 {
        digits_to_u64(&self.0)
    }

    /// The first six digits: the GB/T 2260 county code.
    pub fn county_code(&self) -> &str {
        let s = self.as_str();
        s.get(..COUNTY_CODE_LEN).unwrap_or(s)
    }
}

fn digits_to_u64(d: &[u8]) -> u64 {
    d.iter().fold(0u64, |acc, &b| acc * 10 + u64::from(b.wrapping_sub(b'0')))
}

/// Whether all 8 bytes of `word` are ASCII digits, tested at once. After
/// subtracting `'0'` from every byte, a digit is 0..=9 and stays below 16 after
/// adding 6; any other byte shows a high nibble (a byte below `'0'` wraps, and the
/// lowest such byte takes no borrow from below, so it is caught).
pub(crate) fn all_digits8(word: u64) -> bool {
    let v = word.wrapping_sub(0x3030_3030_3030_3030);
    (v | v.wrapping_add(0x0606_0606_0606_0606)) & 0xF0F0_F0F0_F0F0_F0F0 == 0
}

/// The number spelled by 8 ASCII digits loaded little-endian (first digit in the
/// lowest byte): pairs, then quads, then the whole, by three multiplies.
fn eight_digits(word: u64) -> u64 {
    let v = ((word & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    let v = ((v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    ((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32
}

/// The number spelled by exactly 12 ASCII digits, or `None`.
fn twelve_digits(b: &[u8]) -> Option<u64> {
    let [h0, h1, h2, h3, h4, h5, h6, h7, t0, t1, t2, t3] = *b else { return None };
    let head = u64::from_le_bytes([h0, h1, h2, h3, h4, h5, h6, h7]);
    // The last four digits behind four '0's: "0000dddd" spells the same number.
    let tail = u64::from_le_bytes([b'0', b'0', b'0', b'0', t0, t1, t2, t3]);
    (all_digits8(head) && all_digits8(tail)).then(|| eight_digits(head) * 10_000 + eight_digits(tail))
}

impl fmt::Debug for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DivisionCode").field(&self.as_str()).finish()
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DivisionCode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DivisionCode::parse(s)
    }
}

impl Serialize for DivisionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DivisionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DivisionCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 12-digit division code string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DivisionCode, E> {
                DivisionCode::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// One division of a [`DivisionTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DivisionEntry {
    /// Its code.
    pub code: DivisionCode,
    /// Its official name, e.g. 西宁市.
    pub name: String,
    /// Its level (always equal to `code.level()`).
    pub level: Level,
    /// The division it belongs to; `None` only for provinces.
    pub parent: Option<DivisionCode>,
}

/// A cheap hasher for `u64` division-code keys: the keys are already well
/// spread numbers, and SipHash would dominate a per-row lookup. Public so that
/// other per-row tallies by division (the demo generator's) share it.
#[derive(Debug, Default, Clone, Copy)]
pub struct CodeHasher(u64);

impl Hasher for CodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; rotate so the well-mixed high bits reach the low
        // bits hashbrown buckets by.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

type CodeMap<V> = HashMap<u64, V, BuildHasherDefault<CodeHasher>>;

/// A table of real divisions, indexed for fast membership tests.
#[derive(Debug, Clone, Default)]
pub struct DivisionTable {
    /// Sorted by code.
    entries: Vec<DivisionEntry>,
    /// Code value → position in `entries`.
    index: CodeMap<usize>,
    /// Positions of each entry's direct children, parallel to `entries`.
    children: Vec<Vec<usize>>,
    /// Bit `n` set iff `n` (two digits) is the prefix of a province.
    provinces: u128,
    /// Every code again, as a number, in an open-addressing table with linear
    /// probing ([`NO_CODE`] where free; a power-of-two length at most half full):
    /// membership is one multiply and usually one cache line, where the map
    /// above touches its control bytes and its buckets.
    members: Vec<u64>,
}

/// A free slot of [`DivisionTable::members`]: codes have 12 digits, far below it.
const NO_CODE: u64 = u64::MAX;

/// The first slot to probe for `code` in a table of `2^(64 - shift)` slots (Fibonacci hashing).
fn member_slot(code: u64, len: usize) -> usize {
    let shift = 64 - len.trailing_zeros();
    (code.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (shift % 64)) as usize & (len - 1)
}

fn member_table(codes: impl ExactSizeIterator<Item = u64>) -> Vec<u64> {
    let len = (codes.len() * 2).next_power_of_two().max(16);
    let mut table = vec![NO_CODE; len];
    for code in codes {
        let mut i = member_slot(code, len);
        while table[i] != NO_CODE && table[i] != code {
            i = (i + 1) & (len - 1);
        }
        table[i] = code;
    }
    table
}

/// Accumulates CSV sources, then checks cross-line rules once everything is in.
#[derive(Default)]
struct Builder {
    /// Entries with the line they came from.
    entries: Vec<(DivisionEntry, usize)>,
    by_code: CodeMap<usize>,
}

impl Builder {
    fn add_csv(&mut self, text: &str) -> Result<()> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || (line == 1 && row.starts_with("code,")) {
                continue;
            }
            self.add_row(line, row)?;
        }
        Ok(())
    }

    fn add_row(&mut self, line: usize, row: &str) -> Result<()> {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let [code, name, level, parent] = fields[..] else {
            return Err(Error::ColumnCount { line, found: fields.len() });
        };
        let field = |column: &'static str| move |e: Error| Error::Field { line, column, source: Box::new(e) };
        let code = DivisionCode::parse(code).map_err(field("code"))?;
        if name.is_empty() {
            return Err(Error::EmptyName { line });
        }
        let declared: Level = level.parse().map_err(field("level"))?;
        let parent =
            if parent.is_empty() { None } else { Some(DivisionCode::parse(parent).map_err(field("parent_code"))?) };
        // The upstream data repeats a city without counties (东莞, 中山, 儋州)
        // as a "county" parented by itself; the city row already covers it.
        if parent == Some(code) {
            return Ok(());
        }
        let derived = code.level();
        if declared != derived {
            return Err(Error::LevelMismatch { line, code: code.to_string(), declared, derived });
        }
        match parent {
            None if derived != Level::Province => {
                return Err(Error::Orphan { line, code: code.to_string() });
            }
            Some(p) if derived == Level::Province || p.level() >= derived || !p.contains(&code) => {
                return Err(Error::BadParent { line, code: code.to_string(), parent: p.to_string() });
            }
            _ => {}
        }
        let entry = DivisionEntry { code, name: name.to_owned(), level: derived, parent };
        if let Some(&pos) = self.by_code.get(&code.as_u64()) {
            // The shipped sources overlap (Qinghai's upper levels are in both);
            // identical repeats are fine, different ones are a data error.
            return match self.entries.get(pos) {
                Some((first, _)) if *first == entry => Ok(()),
                Some((_, first_line)) => Err(Error::Conflict { line, code: code.to_string(), first_line: *first_line }),
                None => Ok(()),
            };
        }
        self.by_code.insert(code.as_u64(), self.entries.len());
        self.entries.push((entry, line));
        Ok(())
    }

    fn finish(mut self) -> Result<DivisionTable> {
        for (entry, line) in &self.entries {
            if let Some(p) = entry.parent
                && !self.by_code.contains_key(&p.as_u64())
            {
                return Err(Error::MissingParent { line: *line, code: entry.code.to_string(), parent: p.to_string() });
            }
        }
        self.entries.sort_by_key(|(e, _)| e.code);
        let entries: Vec<DivisionEntry> = self.entries.into_iter().map(|(e, _)| e).collect();
        let mut index = CodeMap::default();
        index.reserve(entries.len());
        let mut provinces = 0u128;
        for (pos, e) in entries.iter().enumerate() {
            index.insert(e.code.as_u64(), pos);
            if e.level == Level::Province {
                // Province segments are 01..=99, so the shift stays below 128.
                provinces |= 1u128 << (e.code.as_u64() / 10_000_000_000);
            }
        }
        let mut children = vec![Vec::new(); entries.len()];
        // Entries are sorted, so each child list comes out sorted by code.
        for (pos, e) in entries.iter().enumerate() {
            if let Some(p) = e.parent
                && let Some(list) = index.get(&p.as_u64()).and_then(|&pp| children.get_mut(pp))
            {
                list.push(pos);
            }
        }
        let members = member_table(entries.iter().map(|e| e.code.as_u64()));
        Ok(DivisionTable { entries, index, children, provinces, members })
    }
}

impl DivisionTable {
    /// The shipped table: `qinghai.csv` merged with `china-counties.csv`,
    /// parsed once on first use.
    ///
    /// The embedded data is checked by this module's tests; should it ever fail
    /// to load, this returns an empty table rather than panicking
    /// ([`load_builtin`](Self::load_builtin) reports the error).
    pub fn builtin() -> &'static DivisionTable {
        static TABLE: OnceLock<DivisionTable> = OnceLock::new();
        TABLE.get_or_init(|| Self::load_builtin().unwrap_or_default())
    }

    /// Parses the shipped CSV files into a fresh table, reporting any error.
    pub fn load_builtin() -> Result<DivisionTable> {
        Self::from_csv_sources(&[QINGHAI_CSV, CHINA_COUNTIES_CSV])
    }

    /// Parses one CSV text with the columns `code,name,level,parent_code` (a
    /// header line is optional; fields are unquoted). A bad line is an error
    /// naming it.
    pub fn from_csv(text: &str) -> Result<DivisionTable> {
        Self::from_csv_sources(&[text])
    }

    /// Parses and merges several CSV texts; a code repeated identically across
    /// them is kept once, a code repeated with different data is an error.
    pub fn from_csv_sources(texts: &[&str]) -> Result<DivisionTable> {
        let mut builder = Builder::default();
        for text in texts {
            builder.add_csv(text)?;
        }
        builder.finish()
    }

    /// The entry for `code`.
    pub fn get(&self, code: &DivisionCode) -> Option<&DivisionEntry> {
        self.index.get(&code.as_u64()).and_then(|&pos| self.entries.get(pos))
    }

    /// The entry for `code`, or [`Error::UnknownCode`].
    pub fn require(&self, code: &DivisionCode) -> Result<&DivisionEntry> {
        self.get(code).ok_or_else(|| Error::UnknownCode { code: code.to_string() })
    }

    /// Whether `code` is in the table.
    pub fn contains(&self, code: &DivisionCode) -> bool {
        self.contains_number(code.as_u64())
    }

    /// Whether `s` (trimmed) is the 12-digit code of a division in the table.
    /// The per-row fast path: no allocation, no error values.
    pub fn contains_str(&self, s: &str) -> bool {
        // Twelve bytes with surrounding space would not be twelve digits: trim only otherwise.
        let b = if s.len() == CODE_LEN { s.as_bytes() } else { s.trim().as_bytes() };
        // Every code in the table is well formed, so membership implies it.
        twelve_digits(b).is_some_and(|n| self.contains_number(n))
    }

    /// Whether the code spelled by the number `n` is in the table.
    fn contains_number(&self, n: u64) -> bool {
        let len = self.members.len();
        if len == 0 {
            return false;
        }
        let mut i = member_slot(n, len);
        // At most half the slots are used, so a free slot ends every probe.
        loop {
            match self.members[i] {
                m if m == n => return true,
                NO_CODE => return false,
                _ => i = (i + 1) & (len - 1),
            }
        }
    }

    /// The name of `code`, e.g. 青海省 for `630000000000`.
    pub fn name(&self, code: &DivisionCode) -> Option<&str> {
        self.get(code).map(|e| e.name.as_str())
    }

    /// The names from province down to `code`, joined by spaces:
    /// `青海省 西宁市 城东区`.
    pub fn full_name(&self, code: &DivisionCode) -> Option<String> {
        let mut names = Vec::with_capacity(5);
        let mut current = self.get(code)?;
        names.push(current.name.as_str());
        // Parents are strictly shallower, so at most four steps up.
        for _ in 0..Level::all().len() {
            match current.parent.and_then(|p| self.get(&p)) {
                Some(parent) => {
                    names.push(parent.name.as_str());
                    current = parent;
                }
                None => break,
            }
        }
        names.reverse();
        Some(names.join(" "))
    }

    /// The direct children of `code`, sorted by code (empty if unknown).
    pub fn children(&self, code: &DivisionCode) -> Vec<&DivisionEntry> {
        self.index
            .get(&code.as_u64())
            .and_then(|&pos| self.children.get(pos))
            .map(|list| list.iter().filter_map(|&i| self.entries.get(i)).collect())
            .unwrap_or_default()
    }

    /// Every division of `level`, sorted by code.
    pub fn at_level(&self, level: Level) -> Vec<&DivisionEntry> {
        self.entries.iter().filter(|e| e.level == level).collect()
    }

    /// Whether `two_digits` is the prefix of a province in the table.
    pub fn is_province_prefix(&self, two_digits: &str) -> bool {
        match two_digits.as_bytes() {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                self.is_province_number(u32::from((a - b'0') * 10 + (b - b'0')))
            }
            _ => false,
        }
    }

    /// Whether `n` (0..=99) is the two-digit prefix of a province in the table.
    pub(crate) fn is_province_number(&self, n: u32) -> bool {
        n < 128 && self.provinces & (1u128 << n) != 0
    }

    /// All entries, sorted by code.
    pub fn iter(&self) -> impl Iterator<Item = &DivisionEntry> {
        self.entries.iter()
    }

    /// Number of divisions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no divisions.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn builtin_loads_without_error() {
        let table = DivisionTable::load_builtin().unwrap();
        assert_eq!(table.len(), DivisionTable::builtin().len());
        assert!(!table.is_empty());
    }

    #[test]
    fn qinghai_counts() {
        let table = DivisionTable::builtin();
        let qinghai = code("630000000000");
        let count = |level| table.at_level(level).into_iter().filter(|e| qinghai.contains(&e.code)).count();
        assert_eq!(count(Level::Province), 1);
        assert_eq!(count(Level::City), 8);
        assert_eq!(count(Level::County), 45);
        assert_eq!(count(Level::Township), 422);
        assert_eq!(count(Level::Village), 4716);
    }

    #[test]
    fn mainland_provinces() {
        let table = DivisionTable::builtin();
        assert_eq!(table.at_level(Level::Province).len(), 31);
        for p in ["11", "31", "44", "54", "63", "65"] {
            assert!(table.is_province_prefix(p), "{p}");
        }
        for p in ["00", "10", "71", "81", "82", "99", "6", "630", "6a", "六三"] {
            assert!(!table.is_province_prefix(p), "{p}");
        }
    }

    #[test]
    fn self_parented_rows_are_dropped() {
        let table = DivisionTable::builtin();
        let dongguan = table.get(&code("441900000000")).unwrap();
        assert_eq!(dongguan.level, Level::City);
        assert_eq!(dongguan.name, "东莞市");
        assert!(table.children(&dongguan.code).is_empty());
    }

    #[test]
    fn parent_chain_of_a_village() {
        let table = DivisionTable::builtin();
        let village = code("630102001001");
        let entry = table.get(&village).unwrap();
        assert_eq!(entry.name, "北关社区居民委员会");
        assert_eq!(entry.level, Level::Village);
        assert_eq!(entry.parent, Some(code("630102001000")));
        assert_eq!(village.parent(Level::Township), Some(code("630102001000")));
        assert_eq!(village.parent(Level::County), Some(code("630102000000")));
        assert_eq!(village.parent(Level::City), Some(code("630100000000")));
        assert_eq!(village.parent(Level::Province), Some(code("630000000000")));
        assert_eq!(village.parent(Level::Village), Some(village));
        assert_eq!(
            table.full_name(&village).unwrap(),
            format!("青海省 西宁市 城东区 {} 北关社区居民委员会", table.name(&code("630102001000")).unwrap())
        );
        assert_eq!(table.full_name(&code("630102000000")).unwrap(), "青海省 西宁市 城东区");
        assert_eq!(table.full_name(&code("630000000000")).unwrap(), "青海省");
        assert!(table.full_name(&code("639999000000")).is_none());
        // Every parent chain in the table ends at a province.
        for e in table.iter() {
            let full = table.full_name(&e.code).unwrap();
            assert_eq!(full.split(' ').count(), usize::from(e.level.depth()), "{full}");
        }
    }

    #[test]
    fn parent_is_none_when_deeper() {
        let county = code("630102000000");
        assert_eq!(county.parent(Level::Township), None);
        assert_eq!(county.parent(Level::Village), None);
        assert_eq!(code("630000000000").parent(Level::City), None);
        // A town of 东莞 has a city but no county above it.
        let town = code("441900003000");
        assert_eq!(town.level(), Level::Township);
        assert_eq!(town.parent(Level::County), None);
        assert_eq!(town.parent(Level::City), Some(code("441900000000")));
    }

    #[test]
    fn scope_prefixes() {
        assert_eq!(code("630000000000").scope_prefix(), "63");
        assert_eq!(code("630100000000").scope_prefix(), "6301");
        assert_eq!(code("630102000000").scope_prefix(), "630102");
        assert_eq!(code("630102001000").scope_prefix(), "630102001");
        assert_eq!(code("630102001001").scope_prefix(), "630102001001");
        assert_eq!(code("441900003000").scope_prefix(), "441900003");
        let xining = code("630100000000");
        assert!(xining.contains(&code("630102001001")));
        assert!(xining.contains(&xining));
        assert!(!xining.contains(&code("630200000000")));
        assert!(!code("630102001001").contains(&xining));
    }

    #[test]
    fn levels_from_codes() {
        assert_eq!(code("630000000000").level(), Level::Province);
        assert_eq!(code("630100000000").level(), Level::City);
        assert_eq!(code("630102000000").level(), Level::County);
        assert_eq!(code("630102001000").level(), Level::Township);
        assert_eq!(code("630102001001").level(), Level::Village);
        assert_eq!(code("429004000000").level(), Level::County);
    }

    #[test]
    fn name_lookup() {
        let table = DivisionTable::builtin();
        assert_eq!(table.name(&code("630000000000")), Some("青海省"));
        assert_eq!(table.name(&code("630100000000")), Some("西宁市"));
        assert_eq!(table.name(&code("110000000000")), Some("北京市"));
        assert_eq!(table.name(&code("639900000000")), None);
        assert!(matches!(
            table.require(&code("639900000000")),
            Err(Error::UnknownCode { code }) if code == "639900000000"
        ));
    }

    #[test]
    fn children_sorted() {
        let table = DivisionTable::builtin();
        let cities = table.children(&code("630000000000"));
        assert_eq!(cities.len(), 8);
        assert_eq!(cities[0].name, "西宁市");
        assert!(cities.windows(2).all(|w| w[0].code < w[1].code));
        assert!(cities.iter().all(|c| c.level == Level::City));
        let xining_counties = table.children(&code("630100000000"));
        assert_eq!(xining_counties.len(), 7);
        assert!(table.children(&code("639900000000")).is_empty());
    }

    #[test]
    fn contains_str_fast_path() {
        let table = DivisionTable::builtin();
        assert!(table.contains_str("630102001001"));
        assert!(table.contains_str(" 630102001001 "));
        assert!(table.contains_str("110101000000"));
        assert!(!table.contains_str("630102001999"));
        assert!(!table.contains_str("63010200100"));
        assert!(!table.contains_str("6301020010011"));
        assert!(!table.contains_str("63010200100a"));
        assert!(!table.contains_str("６30102001001"));
        assert!(!table.contains_str(""));
        assert!(table.contains(&code("630102001001")));
    }

    #[test]
    fn from_county_code_expands() {
        let c = DivisionCode::from_county_code("630102").unwrap();
        assert_eq!(c.as_str(), "630102000000");
        assert_eq!(c.level(), Level::County);
        assert_eq!(c.county_code(), "630102");
        let p = DivisionCode::from_county_code("630000").unwrap();
        assert_eq!(p.level(), Level::Province);
        assert_eq!(DivisionCode::from_county_code("630100").unwrap().level(), Level::City);
        assert_eq!(DivisionCode::from_county_code("63010"), Err(Error::CountyCodeLength { len: 5 }));
        assert_eq!(DivisionCode::from_county_code("000000"), Err(Error::Structure { code: "000000000000".into() }));
        assert_eq!(DivisionCode::from_county_code("63x102"), Err(Error::NonDigit { position: 3, found: 'x' }));
    }

    #[test]
    fn structural_rejects() {
        assert_eq!(DivisionCode::parse("630000100000"), Err(Error::Structure { code: "630000100000".into() }));
        assert!(matches!(DivisionCode::parse("000000000000"), Err(Error::Structure { .. })));
        assert!(matches!(DivisionCode::parse("000100000000"), Err(Error::Structure { .. })));
        assert!(matches!(DivisionCode::parse("630102000001"), Err(Error::Structure { .. })));
        assert!(matches!(DivisionCode::parse("630000000001"), Err(Error::Structure { .. })));
        assert_eq!(DivisionCode::parse(""), Err(Error::Length { len: 0 }));
        assert_eq!(DivisionCode::parse("6301020010011"), Err(Error::Length { len: 13 }));
        assert_eq!(DivisionCode::parse("63010200100一"), Err(Error::NonDigit { position: 12, found: '一' }));
        assert_eq!(DivisionCode::parse(" 630102001001\t").unwrap().as_str(), "630102001001");
    }

    #[test]
    fn levels_parse_and_order() {
        for (i, level) in Level::all().into_iter().enumerate() {
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
            assert_eq!(level.as_str().to_uppercase().parse::<Level>().unwrap(), level);
            assert_eq!(level.label_zh().parse::<Level>().unwrap(), level);
            assert_eq!((i + 1).to_string().parse::<Level>().unwrap(), level);
            assert_eq!(usize::from(level.depth()), i + 1);
        }
        assert!(Level::Province < Level::City && Level::Township < Level::Village);
        assert_eq!(Level::all().map(Level::prefix_len), [2, 4, 6, 9, 12]);
        assert_eq!("town".parse::<Level>(), Err(Error::UnknownLevel { value: "town".into() }));
        assert!("0".parse::<Level>().is_err());
        assert_eq!(Level::County.to_string(), "county");
    }

    #[test]
    fn serde_round_trip() {
        let c = code("630102001001");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"630102001001\"");
        assert_eq!(serde_json::from_str::<DivisionCode>(&json).unwrap(), c);
        assert!(serde_json::from_str::<DivisionCode>("\"630000100000\"").is_err());
        assert!(serde_json::from_str::<DivisionCode>("630102001001").is_err());
        assert_eq!(serde_json::to_string(&Level::Township).unwrap(), "\"township\"");
        assert_eq!(format!("{c}"), "630102001001");
        assert_eq!(format!("{c:?}"), "DivisionCode(\"630102001001\")");
        assert_eq!("630102001001".parse::<DivisionCode>().unwrap(), c);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let ok =
            "code,name,level,parent_code\r\n630000000000,青海省,province,\r\n630100000000,西宁市,city,630000000000\r\n";
        let t = DivisionTable::from_csv(ok).unwrap();
        assert_eq!(t.len(), 2);

        let bad = |body: &str| DivisionTable::from_csv(&format!("{ok}{body}\n")).unwrap_err();
        assert_eq!(bad("630102000000,城东区,county"), Error::ColumnCount { line: 4, found: 3 });
        assert!(matches!(bad("63010200000x,城东区,county,630100000000"), Error::Field { line: 4, column: "code", .. }));
        assert!(matches!(
            bad("630102000000,城东区,county-ish,630100000000"),
            Error::Field { line: 4, column: "level", .. }
        ));
        assert!(matches!(bad("630102000000,城东区,county,6301"), Error::Field { line: 4, column: "parent_code", .. }));
        assert_eq!(bad("630102000000,,county,630100000000"), Error::EmptyName { line: 4 });
        assert!(matches!(
            bad("630102000000,城东区,city,630100000000"),
            Error::LevelMismatch { line: 4, declared: Level::City, derived: Level::County, .. }
        ));
        assert!(matches!(bad("630102000000,城东区,county,"), Error::Orphan { line: 4, .. }));
        assert!(matches!(bad("630102000000,城东区,county,620100000000"), Error::BadParent { line: 4, .. }));
        assert!(matches!(bad("630102000000,城东区,county,630102001000"), Error::BadParent { line: 4, .. }));
        assert!(matches!(bad("620000000000,甘肃省,province,630000000000"), Error::BadParent { line: 4, .. }));
        assert!(matches!(bad("630202000000,乐都区,county,630200000000"), Error::MissingParent { line: 4, .. }));
        assert_eq!(
            bad("630100000000,西宁,city,630000000000"),
            Error::Conflict { line: 4, code: "630100000000".into(), first_line: 3 }
        );
        // An identical repeat is not an error.
        assert_eq!(DivisionTable::from_csv(&format!("{ok}630100000000,西宁市,city,630000000000\n")).unwrap().len(), 2);
        let msg = bad("630102000000,城东区,county").to_string();
        assert!(msg.contains("line 4"), "{msg}");
    }

    #[test]
    fn the_member_table_agrees_with_the_index() {
        let table = DivisionTable::builtin();
        for e in table.iter() {
            let n = e.code.as_u64();
            assert!(table.contains_number(n), "{}", e.code);
            // Neighbours of real codes are mostly not codes: the two lookups must agree on them.
            for other in [n.wrapping_sub(1), n + 1, n + 1_000, n ^ 1] {
                assert_eq!(table.contains_number(other), table.index.contains_key(&other), "{other}");
            }
        }
        assert!(!DivisionTable::default().contains_str("630000000000"));
        assert!(table.contains_str(" 630000000000\t"));
        assert!(!table.contains_str("63000000000 "));
        assert!(!table.contains_str("６30000000000"));
    }

    proptest! {
        #[test]
        fn twelve_digits_parse_like_the_byte_loop(s in "[0-9]{12}|[0-9/:]{12}|\\PC{0,13}") {
            let b = s.as_bytes();
            let expected = (b.len() == CODE_LEN && b.iter().all(u8::is_ascii_digit)).then(|| digits_to_u64(b));
            prop_assert_eq!(twelve_digits(b), expected);
        }

        #[test]
        fn twelve_digits_reject_every_single_non_digit(pos in 0usize..12, byte in any::<u8>()) {
            let mut b = *b"630102001001";
            b[pos] = byte;
            prop_assert_eq!(twelve_digits(&b).is_some(), byte.is_ascii_digit());
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = DivisionCode::parse(&s);
            let _ = DivisionCode::from_county_code(&s);
            let _ = s.parse::<Level>();
            let table = DivisionTable::builtin();
            let _ = table.contains_str(&s);
            let _ = table.is_province_prefix(&s);
        }

        #[test]
        fn parse_never_panics_on_any_string(s in any::<String>()) {
            let _ = DivisionCode::parse(&s);
            let _ = DivisionCode::from_county_code(&s);
            let _ = DivisionTable::from_csv(&s);
        }

        #[test]
        fn digit_strings_round_trip(s in "[0-9]{12}") {
            match DivisionCode::parse(&s) {
                Ok(c) => {
                    prop_assert_eq!(c.as_str(), s.as_str());
                    prop_assert!(c.contains(&c));
                    for level in Level::all() {
                        if let Some(p) = c.parent(level) {
                            prop_assert!(p.contains(&c));
                            prop_assert_eq!(p.level(), level);
                        }
                    }
                    prop_assert_eq!(DivisionTable::builtin().contains_str(&s), DivisionTable::builtin().contains(&c));
                }
                Err(e) => {
                    prop_assert!(matches!(e, Error::Structure { .. }), "{:?}", e);
                    prop_assert!(!DivisionTable::builtin().contains_str(&s));
                }
            }
        }
    }
}
