//! Code tables (代码表) as data.
//!
//! A code table maps the canonical codes of a national standard (GB/T 2261.1
//! sex, GB 3304 ethnic groups, …) to their labels, plus the aliases people
//! actually type into spreadsheets (男, M, 藏, 一级残疾 …). Each shipped table
//! is a JSON file under `data/code_tables/`, embedded at compile time:
//!
//! ```json
//! {"name": "sex", "title": "人的性别代码", "standard": "GB/T 2261.1-2003",
//!  "entries": [{"code": "1", "label": "男性", "aliases": ["男", "M", "male"]}]}
//! ```
//!
//! [`CodeTable::translate`] turns any accepted spelling into the canonical
//! code; [`CodeTableRegistry::builtin`] holds every shipped table by name.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The shipped tables: file name (for messages) and contents.
const BUILTIN_SOURCES: [(&str, &str); 9] = [
    ("sex.json", include_str!("../data/code_tables/sex.json")),
    ("ethnic_group.json", include_str!("../data/code_tables/ethnic_group.json")),
    ("family_relationship.json", include_str!("../data/code_tables/family_relationship.json")),
    ("disability_category.json", include_str!("../data/code_tables/disability_category.json")),
    ("disability_grade.json", include_str!("../data/code_tables/disability_grade.json")),
    ("assistance_category.json", include_str!("../data/code_tables/assistance_category.json")),
    ("insurance_type.json", include_str!("../data/code_tables/insurance_type.json")),
    ("insurance_status.json", include_str!("../data/code_tables/insurance_status.json")),
    ("monitoring_risk.json", include_str!("../data/code_tables/monitoring_risk.json")),
];

/// Errors from loading and looking up code tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The JSON document is malformed or does not have the table shape.
    #[error("code table {table:?}: {message}")]
    Parse {
        /// The table's name when it could be read, else empty.
        table: String,
        /// What the JSON parser reported.
        message: String,
    },
    /// One spelling (code, label or alias, compared after normalization) that
    /// would translate to two different codes.
    #[error("code table {table:?}: {alias:?} would mean both {} and {}", codes.0, codes.1)]
    DuplicateAlias {
        /// The table's name.
        table: String,
        /// The ambiguous spelling, as written in the second entry.
        alias: String,
        /// The two codes it would map to (first one seen, then the second).
        codes: (String, String),
    },
    /// The same canonical code listed twice.
    #[error("code table {table:?}: code {code:?} is listed twice")]
    DuplicateCode {
        /// The table's name.
        table: String,
        /// The repeated code.
        code: String,
    },
    /// A name, code, label or alias that is empty (or only whitespace).
    #[error("code table {table:?}: empty {field} (entry {code:?})")]
    EmptyField {
        /// The table's name.
        table: String,
        /// The entry's code (empty for table-level fields and empty codes).
        code: String,
        /// Which field: `name`, `code`, `label` or `alias`.
        field: &'static str,
    },
    /// Two tables with the same name in one registry.
    #[error("code table {name:?} is defined twice")]
    DuplicateTable {
        /// The repeated name.
        name: String,
    },
    /// A table name the registry does not have.
    #[error("unknown code table {name:?}")]
    UnknownTable {
        /// The name asked for.
        name: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One code of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeEntry {
    /// The canonical code, e.g. `"1"` or `"04"`.
    pub code: String,
    /// The standard's label, e.g. 男性.
    pub label: String,
    /// Other accepted spellings.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The JSON shape of a table file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableDoc {
    name: String,
    title: String,
    standard: String,
    entries: Vec<CodeEntry>,
}

/// Just the name, to label a parse error of an otherwise broken document.
#[derive(Deserialize)]
struct NameOnly {
    name: String,
}

/// A code table with its translation index.
///
/// The fields are public for reading; the index is built by
/// [`from_json`](Self::from_json) and does not follow later edits to them.
#[derive(Debug, Clone, Serialize)]
pub struct CodeTable {
    /// Registry key, e.g. `sex`.
    pub name: String,
    /// Human title, e.g. 人的性别代码.
    pub title: String,
    /// The standard it implements, e.g. `GB/T 2261.1-2003`.
    pub standard: String,
    /// The codes, in the standard's order.
    pub entries: Vec<CodeEntry>,
    /// Exact canonical code → position in `entries`.
    #[serde(skip)]
    codes: HashMap<String, usize>,
    /// Normalized spelling (code, label, alias) → position in `entries`.
    #[serde(skip)]
    index: HashMap<String, usize>,
}

/// Maps a full-width ASCII form (U+FF01..U+FF5E: `Ｍ`, `１`, `（`) to ASCII.
fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The lookup key of a spelling: trimmed, full-width ASCII folded to ASCII,
/// ASCII lower-cased. Borrows when nothing changes, which is the common case
/// for the codes and Chinese labels the validator sees per row.
fn key(s: &str) -> Cow<'_, str> {
    let t = s.trim();
    let needs_work = t.chars().any(|c| c.is_ascii_uppercase() || matches!(c, '\u{ff01}'..='\u{ff5e}' | '\u{3000}'));
    if needs_work {
        let folded: String = t.chars().map(|c| half_width(c).to_ascii_lowercase()).collect();
        // Folding can expose new surrounding spaces (a trailing U+3000 was
        // already trimmed, but keep the rule simple and exact).
        Cow::Owned(folded.trim().to_owned())
    } else {
        Cow::Borrowed(t)
    }
}

impl CodeTable {
    /// Parses a table document and builds its index. A spelling (code, label
    /// or alias) that would translate to two different codes is an error, and
    /// so is a repeated code or an empty field.
    pub fn from_json(text: &str) -> Result<CodeTable> {
        let doc: TableDoc = serde_json::from_str(text).map_err(|e| Error::Parse {
            table: serde_json::from_str::<NameOnly>(text).map(|n| n.name).unwrap_or_default(),
            message: e.to_string(),
        })?;
        Self::new(doc.name, doc.title, doc.standard, doc.entries)
    }

    /// Builds a table from its parts, with the same checks as
    /// [`from_json`](Self::from_json).
    pub fn new(name: String, title: String, standard: String, entries: Vec<CodeEntry>) -> Result<CodeTable> {
        let empty = |code: &str, field| Error::EmptyField { table: name.clone(), code: code.to_owned(), field };
        if name.trim().is_empty() {
            return Err(empty("", "name"));
        }
        let mut codes = HashMap::with_capacity(entries.len());
        let mut index = HashMap::new();
        for (pos, entry) in entries.iter().enumerate() {
            if entry.code.trim().is_empty() {
                return Err(empty("", "code"));
            }
            if entry.label.trim().is_empty() {
                return Err(empty(&entry.code, "label"));
            }
            if codes.insert(entry.code.clone(), pos).is_some() {
                return Err(Error::DuplicateCode { table: name.clone(), code: entry.code.clone() });
            }
            let spellings = [&entry.code, &entry.label].into_iter().chain(entry.aliases.iter());
            for spelling in spellings {
                let k = key(spelling);
                if k.is_empty() {
                    return Err(empty(&entry.code, "alias"));
                }
                match index.get(k.as_ref()) {
                    Some(&other) if other != pos => {
                        let first = entries.get(other).map(|e: &CodeEntry| e.code.clone()).unwrap_or_default();
                        return Err(Error::DuplicateAlias {
                            table: name.clone(),
                            alias: spelling.clone(),
                            codes: (first, entry.code.clone()),
                        });
                    }
                    Some(_) => {}
                    None => {
                        index.insert(k.into_owned(), pos);
                    }
                }
            }
        }
        Ok(CodeTable { name, title, standard, entries, codes, index })
    }

    /// Whether `code` is exactly one of the canonical codes (no trimming, no
    /// aliases).
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains_key(code)
    }

    /// The entry of a canonical code.
    pub fn entry(&self, code: &str) -> Option<&CodeEntry> {
        self.codes.get(code).and_then(|&pos| self.entries.get(pos))
    }

    /// The label of a canonical code.
    pub fn label(&self, code: &str) -> Option<&str> {
        self.entry(code).map(|e| e.label.as_str())
    }

    /// The canonical code for `value`, which may be the code itself, its label
    /// or any alias. Surrounding whitespace is ignored, full-width ASCII forms
    /// count as ASCII, and ASCII letters match in any case.
    pub fn translate(&self, value: &str) -> Option<&str> {
        let pos = match self.codes.get(value) {
            Some(&pos) => Some(pos),
            None => self.index.get(key(value).as_ref()).copied(),
        };
        pos.and_then(|p| self.entries.get(p)).map(|e| e.code.as_str())
    }

    /// The canonical codes, in the standard's order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.code.as_str())
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no codes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Code tables by name.
#[derive(Debug, Clone, Default)]
pub struct CodeTableRegistry {
    tables: BTreeMap<String, CodeTable>,
}

impl CodeTableRegistry {
    /// The shipped tables, parsed once on first use.
    ///
    /// The embedded files are checked by this module's tests; a table that
    /// failed to load would be left out rather than panic
    /// ([`load_builtin`](Self::load_builtin) reports the error).
    pub fn builtin() -> &'static CodeTableRegistry {
        static REGISTRY: OnceLock<CodeTableRegistry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            let mut registry = CodeTableRegistry::default();
            for (_, text) in BUILTIN_SOURCES {
                if let Ok(table) = CodeTable::from_json(text) {
                    // Names are unique in the shipped set (tested), so this
                    // never shadows.
                    registry.tables.insert(table.name.clone(), table);
                }
            }
            registry
        })
    }

    /// Parses every shipped table into a fresh registry, reporting the first
    /// error.
    pub fn load_builtin() -> Result<CodeTableRegistry> {
        let tables = BUILTIN_SOURCES.iter().map(|(_, text)| CodeTable::from_json(text)).collect::<Result<Vec<_>>>()?;
        Self::from_tables(tables)
    }

    /// A registry of the given tables; two tables with one name is an error.
    pub fn from_tables(tables: impl IntoIterator<Item = CodeTable>) -> Result<CodeTableRegistry> {
        let mut registry = CodeTableRegistry::default();
        for table in tables {
            registry.insert(table)?;
        }
        Ok(registry)
    }

    /// Adds a table; a table of that name already present is an error.
    pub fn insert(&mut self, table: CodeTable) -> Result<()> {
        if self.tables.contains_key(&table.name) {
            return Err(Error::DuplicateTable { name: table.name });
        }
        self.tables.insert(table.name.clone(), table);
        Ok(())
    }

    /// The table called `name`.
    pub fn get(&self, name: &str) -> Option<&CodeTable> {
        self.tables.get(name)
    }

    /// The table called `name`, or [`Error::UnknownTable`] naming it.
    pub fn require(&self, name: &str) -> Result<&CodeTable> {
        self.get(name).ok_or_else(|| Error::UnknownTable { name: name.to_owned() })
    }

    /// The table names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// The tables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &CodeTable> {
        self.tables.values()
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(name: &str) -> &'static CodeTable {
        CodeTableRegistry::builtin().require(name).unwrap()
    }

    #[test]
    fn every_builtin_table_loads() {
        for (file, text) in BUILTIN_SOURCES {
            let t = CodeTable::from_json(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{}.json", t.name), file);
            assert!(!t.title.is_empty() && !t.standard.is_empty());
            assert!(!t.is_empty());
            for e in &t.entries {
                assert_eq!(t.translate(&e.code), Some(e.code.as_str()));
                assert_eq!(t.translate(&e.label), Some(e.code.as_str()));
                for a in &e.aliases {
                    assert_eq!(t.translate(a), Some(e.code.as_str()), "{file}: {a}");
                }
            }
        }
        let registry = CodeTableRegistry::load_builtin().unwrap();
        let names: Vec<&str> = registry.names().collect();
        assert_eq!(
            names,
            [
                "assistance_category",
                "disability_category",
                "disability_grade",
                "ethnic_group",
                "family_relationship",
                "insurance_status",
                "insurance_type",
                "monitoring_risk",
                "sex"
            ]
        );
        assert_eq!(CodeTableRegistry::builtin().len(), registry.len());
    }

    #[test]
    fn sex() {
        let t = table("sex");
        assert_eq!(t.standard, "GB/T 2261.1-2003");
        assert_eq!(t.codes().collect::<Vec<_>>(), ["0", "1", "2", "9"]);
        assert_eq!(t.translate("男"), Some("1"));
        assert_eq!(t.translate("M"), Some("1"));
        assert_eq!(t.translate("m"), Some("1"));
        assert_eq!(t.translate(" Male "), Some("1"));
        assert_eq!(t.translate("Ｍ"), Some("1"));
        assert_eq!(t.translate("１"), Some("1"));
        assert_eq!(t.translate("女性"), Some("2"));
        assert_eq!(t.translate("F"), Some("2"));
        assert_eq!(t.translate("未知"), Some("0"));
        assert_eq!(t.translate("9"), Some("9"));
        assert_eq!(t.translate("x"), None);
        assert_eq!(t.translate(""), None);
        assert_eq!(t.label("2"), Some("女性"));
        assert_eq!(t.label("男"), None);
        assert!(t.contains("1"));
        assert!(!t.contains(" 1"));
        assert!(!t.contains("男"));
    }

    #[test]
    fn ethnic_group() {
        let t = table("ethnic_group");
        assert_eq!(t.standard, "GB 3304-1991");
        let codes: Vec<&str> = t.codes().collect();
        let mut expected: Vec<String> = (1..=56).map(|n| format!("{n:02}")).collect();
        expected.push("97".into());
        expected.push("98".into());
        assert_eq!(codes, expected);
        let groups = t.entries.iter().filter(|e| e.label.ends_with('族')).count();
        assert_eq!(groups, 56);
        assert_eq!(t.label("01"), Some("汉族"));
        assert_eq!(t.label("56"), Some("基诺族"));
        assert_eq!(t.label("30"), Some("土族"));
        assert_eq!(t.label("35"), Some("撒拉族"));
        assert_eq!(t.translate("藏"), Some("04"));
        assert_eq!(t.translate("藏族"), Some("04"));
        assert_eq!(t.translate("ZA"), Some("04"));
        assert_eq!(t.translate("za"), Some("04"));
        assert_eq!(t.translate("1"), Some("01"));
        assert_eq!(t.translate("HA"), Some("01"));
        assert_eq!(t.translate("蒙古"), Some("02"));
        assert_eq!(t.translate("回"), Some("03"));
        assert_eq!(t.translate("土"), Some("30"));
        assert_eq!(t.translate("土家"), Some("15"));
        assert_eq!(t.translate("JN"), Some("56"));
        assert_eq!(t.translate("其他"), Some("97"));
        assert_eq!(t.translate("外国血统中国籍人士"), Some("98"));
        assert_eq!(t.translate("57"), None);
    }

    #[test]
    fn family_relationship() {
        let t = table("family_relationship");
        assert_eq!(t.standard, "GB/T 4761-2008");
        assert_eq!(t.translate("本人"), Some("01"));
        assert_eq!(t.translate("户主"), Some("02"));
        assert_eq!(t.translate("配偶"), Some("10"));
        assert_eq!(t.translate("丈夫"), Some("11"));
        assert_eq!(t.translate("妻子"), Some("12"));
        assert_eq!(t.translate("儿子"), Some("20"));
        assert_eq!(t.translate("女儿"), Some("30"));
        assert_eq!(t.translate("孙子"), Some("41"));
        assert_eq!(t.translate("孙女"), Some("42"));
        assert_eq!(t.translate("父亲"), Some("51"));
        assert_eq!(t.translate("母亲"), Some("52"));
        assert_eq!(t.translate("兄弟姐妹"), Some("70"));
        assert_eq!(t.translate("非亲属"), Some("99"));
        assert_eq!(t.label("80"), Some("其他"));
    }

    #[test]
    fn disability() {
        let cat = table("disability_category");
        assert_eq!(cat.len(), 7);
        assert_eq!(cat.translate("肢体"), Some("4"));
        assert_eq!(cat.translate("多重残疾"), Some("7"));
        let grade = table("disability_grade");
        assert_eq!(grade.standard, "GB/T 26341-2010");
        assert_eq!(grade.translate("一级残疾"), Some("1"));
        assert_eq!(grade.translate("1级"), Some("1"));
        assert_eq!(grade.translate("二级"), Some("2"));
        assert_eq!(grade.translate("III"), Some("3"));
        assert_eq!(grade.translate("iv"), Some("4"));
        assert_eq!(grade.translate("肆级"), Some("4"));
        assert_eq!(grade.translate("5"), None);
    }

    #[test]
    fn assistance_category() {
        let t = table("assistance_category");
        assert_eq!(t.translate("城镇低保"), Some("A"));
        assert_eq!(t.translate("农村低保"), Some("B"));
        assert_eq!(t.translate("城市特困供养"), Some("C"));
        assert_eq!(t.translate("五保"), Some("D"));
        assert_eq!(t.translate("农村五保"), Some("D"));
        assert_eq!(t.translate("db1"), Some("DB1"));
        assert_eq!(t.translate("全额保障户(一类)"), Some("DB1"));
        assert_eq!(t.translate("二类"), Some("DB2"));
        assert_eq!(t.translate("a"), Some("A"));
    }

    #[test]
    fn unknown_table() {
        let err = CodeTableRegistry::builtin().require("nope").unwrap_err();
        assert_eq!(err, Error::UnknownTable { name: "nope".into() });
        assert!(err.to_string().contains("nope"));
        assert!(CodeTableRegistry::builtin().get("nope").is_none());
    }

    #[test]
    fn duplicate_alias() {
        let json = r#"{"name": "t", "title": "T", "standard": "S", "entries": [
            {"code": "1", "label": "one", "aliases": ["x"]},
            {"code": "2", "label": "two", "aliases": ["X"]}]}"#;
        assert_eq!(
            CodeTable::from_json(json).unwrap_err(),
            Error::DuplicateAlias { table: "t".into(), alias: "X".into(), codes: ("1".into(), "2".into()) }
        );
        // A label equal to another entry's code is just as ambiguous.
        let json = r#"{"name": "t", "title": "T", "standard": "S", "entries": [
            {"code": "1", "label": "one"}, {"code": "2", "label": "1"}]}"#;
        assert!(matches!(CodeTable::from_json(json), Err(Error::DuplicateAlias { .. })));
        // Repeating a spelling within one entry is harmless.
        let json = r#"{"name": "t", "title": "T", "standard": "S", "entries": [
            {"code": "1", "label": "one", "aliases": ["1", "ONE", "one"]}]}"#;
        assert_eq!(CodeTable::from_json(json).unwrap().translate("One"), Some("1"));
    }

    #[test]
    fn malformed_tables() {
        assert!(matches!(
            CodeTable::from_json("{"),
            Err(Error::Parse { table, .. }) if table.is_empty()
        ));
        assert!(matches!(
            CodeTable::from_json(r#"{"name": "t", "title": "T", "standard": "S", "entries": [{"code": 1}]}"#),
            Err(Error::Parse { table, .. }) if table == "t"
        ));
        assert!(matches!(
            CodeTable::from_json(r#"{"name": "t", "title": "T", "standard": "S", "entries": [], "extra": 1}"#),
            Err(Error::Parse { .. })
        ));
        assert_eq!(
            CodeTable::from_json(
                r#"{"name": "t", "title": "T", "standard": "S", "entries": [
                {"code": "1", "label": "a"}, {"code": "1", "label": "b"}]}"#
            )
            .unwrap_err(),
            Error::DuplicateCode { table: "t".into(), code: "1".into() }
        );
        assert!(matches!(
            CodeTable::from_json(
                r#"{"name": "t", "title": "T", "standard": "S", "entries": [
                {"code": "1", "label": "a", "aliases": [" "]}]}"#
            ),
            Err(Error::EmptyField { field: "alias", .. })
        ));
        assert!(matches!(
            CodeTable::from_json(
                r#"{"name": "t", "title": "T", "standard": "S", "entries": [
                {"code": "", "label": "a"}]}"#
            ),
            Err(Error::EmptyField { field: "code", .. })
        ));
        assert!(matches!(
            CodeTable::from_json(r#"{"name": "", "title": "T", "standard": "S", "entries": []}"#),
            Err(Error::EmptyField { field: "name", .. })
        ));
    }

    #[test]
    fn duplicate_table_names() {
        let t = CodeTable::from_json(BUILTIN_SOURCES[0].1).unwrap();
        assert_eq!(
            CodeTableRegistry::from_tables([t.clone(), t]).unwrap_err(),
            Error::DuplicateTable { name: "sex".into() }
        );
    }

    #[test]
    fn serializes_without_index() {
        let v = serde_json::to_value(table("disability_grade")).unwrap();
        assert_eq!(v["name"], "disability_grade");
        assert_eq!(v["entries"][0]["code"], "1");
        assert!(v.get("index").is_none());
    }

    proptest! {
        #[test]
        fn translate_never_panics(s in any::<String>()) {
            for t in CodeTableRegistry::builtin().iter() {
                if let Some(code) = t.translate(&s) {
                    prop_assert!(t.contains(code));
                }
                let _ = t.contains(&s);
                let _ = t.label(&s);
            }
            let _ = CodeTable::from_json(&s);
        }
    }
}
