//! A fast, non-cryptographic hasher for the validator's hot sets (code tables,
//! enums, primary keys within a batch). The inputs are trusted (the standard)
//! or bounded to one batch, so HashDoS resistance buys nothing here, while
//! SipHash costs a large share of the per-row budget.

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
#[derive(Debug, Clone, Default)]
pub struct PackedStrSet {
    packed: FastSet<u128>,
    /// The packed members again, scanned linearly while there are few: cheaper than hashing.
    few: Vec<u128>,
    long: FastSet<String>,
}

/// Up to this many members, a linear scan beats a hash lookup.
const LINEAR_SCAN_MAX: usize = 8;

#[inline]
fn pack(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() > 15 {
        return None;
    }
    // Shifts rather than a slice copy: a variable-length copy becomes a memcpy call,
    // which cost more than the lookup itself.
    let mut packed = (bytes.len() as u128) << 120;
    for (i, b) in bytes.iter().enumerate() {
        packed |= u128::from(*b) << (8 * i);
    }
    Some(packed)
}

impl PackedStrSet {
    /// Add a string.
    pub fn insert(&mut self, s: &str) {
        match pack(s) {
            Some(p) => {
                if self.packed.insert(p) {
                    self.few.push(p);
                }
            }
            None => {
                self.long.insert(s.to_owned());
            }
        }
    }

    /// Whether `s` is in the set.
    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        match pack(s) {
            Some(p) if self.few.len() <= LINEAR_SCAN_MAX => self.few.contains(&p),
            Some(p) => self.packed.contains(&p),
            None => self.long.contains(s),
        }
    }
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
        Some(SimplePattern { atoms })
    }

    /// Whether the whole of `text` matches.
    #[inline]
    pub fn is_match(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
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
