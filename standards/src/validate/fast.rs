//! The validator's per-row fast paths:
//!
//! - [`FxHasher`] and the [`FastSet`]/[`FastMap`] built on it, for enum sets;
//! - [`PackedStrSet`], code lists as packed integers in an open-addressing table;
//! - [`find_repeats`], primary-key uniqueness within a batch, over a probe table
//!   reused from batch to batch, with [`hash_bytes`];
//! - [`SimplePattern`], anchored patterns of literal bytes and ASCII classes.
//!
//! The inputs are trusted (the standard) or bounded to one batch, so HashDoS
//! resistance buys nothing here, while SipHash costs a large share of the
//! per-row budget.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The multiply-rotate hash of rustc (FxHash).
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A HashSet with [`FxHasher`].
pub type FastSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;
/// A HashMap with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_behave_like_sets() {
        let mut set: FastSet<String> = FastSet::default();
        assert!(set.insert("01".into()));
        assert!(!set.insert("01".into()));
        assert!(set.contains("01"));
        assert!(!set.contains("1"));
        let long = "一二三四五六七八九十".to_owned();
        set.insert(long.clone());
        assert!(set.contains(long.as_str()));
    }
}

/// A set of strings tuned for code lists: strings of up to 15 bytes are packed
/// into one `u128` (bytes plus length), so a lookup is one multiply-hash and
/// one integer compare instead of hashing and comparing bytes.
#[derive(Debug, Clone)]
pub struct PackedStrSet {
    /// Every packed member, in insertion order (to rebuild `table` as it grows).
    members: Vec<u128>,
    /// Open addressing with linear probing over packed members, [`EMPTY`] where free;
    /// a power-of-two length, at most a quarter full: a lookup of a member almost
    /// always ends at its first probe, and every probe sequence reaches a free slot.
    table: Vec<u128>,
    long: FastSet<String>,
}

impl Default for PackedStrSet {
    fn default() -> Self {
        PackedStrSet { members: Vec::new(), table: vec![EMPTY; MIN_SLOTS], long: FastSet::default() }
    }
}

const MIN_SLOTS: usize = 16;

/// No packed string: the length byte of a packing is at most 15.
const EMPTY: u128 = u128::MAX;

/// Reads `bytes` (at most 16) as a little-endian number, low and high 8 bytes. Whole-word
/// loads that may overlap rather than a byte loop or a variable-length copy: a `memcpy`
/// call, or a loop of shifts, cost more than the lookup itself.
#[inline]
fn load_words(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        // Bytes 8.. are the top `len - 8` bytes of the last eight (none when len is 8).
        let high = u64::from_le_bytes(*last).checked_shr(8 * (16 - len.min(16)) as u32).unwrap_or(0);
        (u64::from_le_bytes(*first), high)
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // Overlapping bytes are the same byte at the same place, so OR is exact.
        (u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << (8 * (len - 4)), 0)
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // One to three bytes: first, middle and last cover them all.
        let middle = bytes.get(len / 2).copied().unwrap_or(first);
        (u64::from(first) | u64::from(middle) << (8 * (len / 2)) | u64::from(last) << (8 * (len - 1)), 0)
    } else {
        (0, 0)
    }
}

#[inline]
fn pack(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() > 15 {
        return None;
    }
    let (low, high) = load_words(bytes);
    Some(u128::from(low) | u128::from(high | (bytes.len() as u64) << 56) << 64)
}

/// The 64x64 → 128-bit product folded to 64 bits: one `mul` that mixes every input bit.
#[inline]
fn folded_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

const MIX: [u64; 3] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344, 0xa409_3822_299f_31d0];

#[inline]
fn slot_of(packed: u128) -> usize {
    folded_mul(packed as u64 ^ MIX[0], (packed >> 64) as u64 ^ MIX[1]) as usize
}

impl PackedStrSet {
    /// Add a string.
    pub fn insert(&mut self, s: &str) {
        let Some(p) = pack(s) else {
            self.long.insert(s.to_owned());
            return;
        };
        if self.members.contains(&p) {
            return;
        }
        self.members.push(p);
        if self.members.len() * 4 > self.table.len() {
            let size = (self.members.len() * 4).next_power_of_two().max(MIN_SLOTS);
            self.table = vec![EMPTY; size];
            for &member in &self.members {
                Self::place(&mut self.table, member);
            }
        } else {
            Self::place(&mut self.table, p);
        }
    }

    fn place(table: &mut [u128], p: u128) {
        let mask = table.len() - 1;
        let mut i = slot_of(p) & mask;
        while table[i] != EMPTY {
            i = (i + 1) & mask;
        }
        table[i] = p;
    }

    /// Whether `s` is in the set.
    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        match pack(s) {
            Some(p) => {
                // The table always has free slots (at least MIN_SLOTS, at most a quarter used).
                let mask = self.table.len().wrapping_sub(1);
                let mut i = slot_of(p) & mask;
                loop {
                    let m = self.table[i];
                    if m == p {
                        return true;
                    }
                    if m == EMPTY {
                        return false;
                    }
                    i = (i + 1) & mask;
                }
            }
            None => self.contains_long(s),
        }
    }

    #[cold]
    #[inline(never)]
    fn contains_long(&self, s: &str) -> bool {
        self.long.contains(s)
    }
}

/// A 64-bit hash of a byte string (a folded-multiply hash in the style of
/// foldhash): two independent multiplies per 16 bytes, no per-byte loop.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let seed = (len as u64).wrapping_mul(MIX[2]);
    if len <= 16 {
        let (low, high) = load_words(bytes);
        return folded_mul(low ^ MIX[0] ^ seed, high ^ MIX[1]);
    }
    let mut h = seed;
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        let (low, high) = load_words(chunk);
        h = folded_mul(low ^ MIX[0] ^ h, high ^ MIX[1]);
    }
    if !chunks.remainder().is_empty() {
        // The last 16 bytes, overlapping the chunks before: the length in the seed tells lengths apart.
        let (low, high) = bytes.last_chunk::<16>().map_or((0, 0), |last| load_words(last));
        h = folded_mul(low ^ MIX[0] ^ h, high ^ MIX[1]);
    }
    h
}

thread_local! {
    /// The probe table of [`find_repeats`], kept between batches: a fresh table per batch
    /// meant a large allocation (often fresh pages) for every batch.
    static REPEATS_TABLE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Tables above this many slots (2 MiB, batches of up to 128 Ki rows) are not kept between calls.
const KEEP_SLOTS_MAX: usize = 1 << 18;

/// For every row `0..rows` whose `value` equals the value of an earlier row,
/// call `repeat(row, first)` with the first row holding that value. Rows whose
/// `value` is `None` (NULL) take no part.
///
/// One open-addressing table of `u64`s: each used slot holds 32 bits of the
/// value's hash and the row (plus one, so zero means free); the values
/// themselves decide whenever the stored hash bits match.
pub fn find_repeats<'a>(rows: usize, value: impl Fn(usize) -> Option<&'a str>, mut repeat: impl FnMut(usize, usize)) {
    if u32::try_from(rows).is_err() {
        // More rows than a slot can name: a plain map.
        let mut seen: FastMap<&str, usize> = FastMap::default();
        for row in 0..rows {
            if let Some(v) = value(row) {
                match seen.entry(v) {
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                    std::collections::hash_map::Entry::Occupied(first) => repeat(row, *first.get()),
                }
            }
        }
        return;
    }
    let mut run = |slots: &mut Vec<u64>| {
        let size = (rows * 2).next_power_of_two().max(16);
        slots.clear();
        slots.resize(size, 0);
        let mask = size - 1;
        for row in 0..rows {
            let Some(v) = value(row) else { continue };
            let hash = hash_bytes(v.as_bytes());
            let tag = hash >> 32;
            // rows < 2^32, so row + 1 fits the low 32 bits.
            let entry = tag << 32 | (row as u64 + 1);
            let mut i = hash as usize & mask;
            loop {
                let slot = slots[i];
                if slot == 0 {
                    slots[i] = entry;
                    break;
                }
                if slot >> 32 == tag {
                    let first = (slot as u32 as usize).wrapping_sub(1);
                    if value(first) == Some(v) {
                        repeat(row, first);
                        break;
                    }
                }
                i = (i + 1) & mask;
            }
        }
        if slots.len() > KEEP_SLOTS_MAX {
            *slots = Vec::new();
        }
    };
    REPEATS_TABLE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slots) => run(&mut slots),
        // Only if `value` or `repeat` itself validates another batch on this thread.
        Err(_) => run(&mut Vec::new()),
    });
}

impl<'a> FromIterator<&'a str> for PackedStrSet {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut set = PackedStrSet::default();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;
    use proptest::prelude::*;

    fn byte_loop_pack(s: &str) -> Option<u128> {
        let bytes = s.as_bytes();
        (bytes.len() <= 15).then(|| {
            let mut packed = (bytes.len() as u128) << 120;
            for (i, b) in bytes.iter().enumerate() {
                packed |= u128::from(*b) << (8 * i);
            }
            packed
        })
    }

    proptest! {
        #[test]
        fn word_loads_pack_like_a_byte_loop(s in "\\PC{0,17}") {
            prop_assert_eq!(pack(&s), byte_loop_pack(&s));
        }

        #[test]
        fn packed_sets_agree_with_hash_sets(
            members in proptest::collection::vec("[0-9A-Z汉]{0,17}", 0..80),
            probes in proptest::collection::vec("[0-9A-Z汉]{0,17}", 0..80),
        ) {
            let set: PackedStrSet = members.iter().map(String::as_str).collect();
            let oracle: std::collections::HashSet<&str> = members.iter().map(String::as_str).collect();
            for s in members.iter().chain(&probes) {
                prop_assert_eq!(set.contains(s), oracle.contains(s.as_str()), "{:?}", s);
            }
        }

        #[test]
        fn repeats_are_found_against_the_first_row(values in proptest::collection::vec(
            proptest::option::of("[0-9X]{0,3}|[0-9]{17}[0-9X]"), 0..300,
        )) {
            let mut found = Vec::new();
            find_repeats(values.len(), |row| values[row].as_deref(), |row, first| found.push((row, first)));
            let mut expected = Vec::new();
            let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for (row, value) in values.iter().enumerate() {
                if let Some(v) = value {
                    match first.get(v.as_str()) {
                        Some(f) => expected.push((row, *f)),
                        None => {
                            first.insert(v, row);
                        }
                    }
                }
            }
            prop_assert_eq!(found, expected);
        }
    }

    #[test]
    fn large_sets_and_hashes() {
        let codes: Vec<String> = (0..200).map(|i| format!("{i:02}")).collect();
        let set: PackedStrSet = codes.iter().map(String::as_str).collect();
        assert!(codes.iter().all(|c| set.contains(c)));
        assert!(!set.contains("200") && !set.contains("0") && !set.contains("1"));
        // Lengths and contents both count.
        assert_ne!(hash_bytes(b"0123456789012345678"), hash_bytes(b"012345678901234567"));
        assert_ne!(hash_bytes(b"11010519491231002X"), hash_bytes(b"110105194912310021"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }

    #[test]
    fn packed_sets_distinguish_lengths_and_long_strings() {
        let set: PackedStrSet = ["1", "01", "", "terminated", "a-very-long-code-value"].into_iter().collect();
        for member in ["1", "01", "", "terminated", "a-very-long-code-value"] {
            assert!(set.contains(member), "{member}");
        }
        for other in ["001", "0", "1\0", "terminate", "a-very-long-code-valuE", "汉"] {
            assert!(!set.contains(other), "{other}");
        }
    }
}

/// A `pattern` of the simple shape most standards use — `^` then literal
/// ASCII characters and ASCII classes with counts, then `$` (e.g.
/// `^1[3-9][0-9]{9}$`, `^[0-9]{9,12}$`) — matched byte by byte without a
/// regex engine. Only shapes a greedy left-to-right match decides exactly are
/// accepted: a variable count must be last, or followed by a class it cannot
/// overlap. Anything else returns `None` and stays with the regex crate.
#[derive(Debug, Clone)]
pub struct SimplePattern {
    atoms: Vec<Atom>,
    /// When every count is fixed (`^1[3-9][0-9]{9}$`): the bytes each position
    /// admits (never a byte of 128 or more). The text must have exactly this many bytes.
    fixed: Option<Vec<[bool; 256]>>,
}

#[derive(Debug, Clone)]
struct Atom {
    set: [bool; 128],
    min: usize,
    max: usize,
}

impl SimplePattern {
    /// Compile `pattern`, or `None` when it is not of the simple shape.
    pub fn compile(pattern: &str) -> Option<SimplePattern> {
        let body = pattern.strip_prefix('^')?.strip_suffix('$')?;
        let bytes = body.as_bytes();
        let mut atoms: Vec<Atom> = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let mut set = [false; 128];
            match bytes[i] {
                b'[' => {
                    let end = i + bytes[i..].iter().position(|&b| b == b']')?;
                    let class = &bytes[i + 1..end];
                    if class.is_empty() || class[0] == b'^' {
                        return None;
                    }
                    let mut j = 0;
                    while j < class.len() {
                        let c = class[j];
                        if !(c.is_ascii_alphanumeric() || c == b'_') {
                            return None;
                        }
                        if j + 2 < class.len() && class[j + 1] == b'-' {
                            let hi = class[j + 2];
                            if !hi.is_ascii_alphanumeric() || hi < c {
                                return None;
                            }
                            (c..=hi).for_each(|b| set[b as usize] = true);
                            j += 3;
                        } else {
                            set[c as usize] = true;
                            j += 1;
                        }
                    }
                    i = end + 1;
                }
                c if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' => {
                    set[c as usize] = true;
                    i += 1;
                }
                _ => return None,
            }
            let (min, max, next) = quantifier(bytes, i)?;
            i = next;
            atoms.push(Atom { set, min, max });
        }
        // Greedy matching is exact only if a variable atom cannot take what a later atom needs:
        // every atom up to and including the first mandatory one may start right after it
        // (`^[0-9]+-?[0-9]{2}$` on "123" needs `[0-9]+` to give back two digits past `-?`).
        for (i, atom) in atoms.iter().enumerate() {
            if atom.min == atom.max {
                continue;
            }
            for next in &atoms[i + 1..] {
                if atom.set.iter().zip(&next.set).any(|(a, b)| *a && *b) {
                    return None;
                }
                if next.min > 0 {
                    break;
                }
            }
        }
        let fixed = atoms.iter().all(|a| a.min == a.max && a.max <= 64).then(|| {
            let mut positions = Vec::new();
            for atom in &atoms {
                let mut admits = [false; 256];
                admits[..128].copy_from_slice(&atom.set);
                positions.extend(std::iter::repeat_n(admits, atom.min));
            }
            positions
        });
        Some(SimplePattern { atoms, fixed })
    }

    /// Whether the whole of `text` matches.
    #[inline]
    pub fn is_match(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        if let Some(positions) = &self.fixed {
            // No early exit: the common text matches, and one combined test is cheaper than a branch per byte.
            return bytes.len() == positions.len()
                && bytes.iter().zip(positions).fold(true, |ok, (&b, admits)| ok & admits[usize::from(b)]);
        }
        let mut pos = 0;
        for atom in &self.atoms {
            let mut taken = 0;
            while taken < atom.max && pos < bytes.len() && bytes[pos] < 128 && atom.set[bytes[pos] as usize] {
                taken += 1;
                pos += 1;
            }
            if taken < atom.min {
                return false;
            }
        }
        pos == bytes.len()
    }
}

/// Parse an optional `{n}` / `{n,m}` / `?` / `+` / `*` at `i`: (min, max, next index).
fn quantifier(bytes: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    match bytes.get(i) {
        Some(b'?') => Some((0, 1, i + 1)),
        Some(b'+') => Some((1, usize::MAX, i + 1)),
        Some(b'*') => Some((0, usize::MAX, i + 1)),
        Some(b'{') => {
            let end = i + bytes[i..].iter().position(|&b| b == b'}')?;
            let inside = std::str::from_utf8(&bytes[i + 1..end]).ok()?;
            let (min, max) = match inside.split_once(',') {
                None => {
                    let n = inside.parse().ok()?;
                    (n, n)
                }
                Some((a, "")) => (a.parse().ok()?, usize::MAX),
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            };
            (min <= max).then_some((min, max, end + 1))
        }
        _ => Some((1, 1, i)),
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn simple_patterns_match_like_the_regex_crate() {
        let cases = [
            "^1[3-9][0-9]{9}$",
            "^[0-9]{9,12}$",
            "^[0-9]{6}$",
            "^A[0-9]+$",
            "^[a-z_]*$",
            "^ab?c$",
            "^[0-9]{2,}X$",
            "^-?[0-9]+$",
            "^[0-9]+-?[A-Z]{2}$",
            "^[A-Z]{2}[0-9]{2}$",
            "^ab$",
            "^$",
        ];
        let inputs = [
            "13912345678",
            "12912345678",
            "1391234567",
            "139123456789",
            "",
            "123456789",
            "123456789012",
            "1234567890123",
            "123456",
            "A1",
            "A",
            "abc",
            "ac",
            "a_b",
            "12X",
            "1X",
            "123X",
            "１３912345678",
            "汉字",
            "-12",
            "12-AB",
            "12AB",
            "-",
            "1-",
            "AB12",
            "AB1",
            "AB123",
            "ab",
            "aB12",
            "AB1\u{80}",
            "ÀB12",
        ];
        for pattern in cases {
            let simple = SimplePattern::compile(pattern).unwrap_or_else(|| panic!("{pattern} should compile"));
            let regex = regex::Regex::new(pattern).unwrap();
            for input in inputs {
                assert_eq!(simple.is_match(input), regex.is_match(input), "{pattern} on {input:?}");
            }
        }
    }

    #[test]
    fn other_shapes_are_left_to_the_regex_engine() {
        for pattern in [
            "张",
            "^[0-9]+[0-9]$",
            "^a|b$",
            "^[^0-9]$",
            "^\\d+$",
            "^(ab)+$",
            "^.$",
            "^[0-9]{3}",
            "^[0-9]+-?[0-9]{2}$",
            "^a?b?a$",
        ] {
            assert!(SimplePattern::compile(pattern).is_none(), "{pattern}");
        }
    }
}
