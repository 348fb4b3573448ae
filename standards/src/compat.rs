//! Compatibility between versions of a data standard.
//!
//! A data standard is a JSON Schema 2020-12 document describing one flat
//! record (see [`crate::standard`]). When a new version of a standard is
//! registered, [`check`] decides whether it is compatible with the versions
//! before it, using the modes of the Confluent Schema Registry:
//!
//! | mode | the check |
//! |---|---|
//! | [`Mode::None`] | nothing is compared |
//! | [`Mode::Backward`] | the new version can read data written with the latest previous one |
//! | [`Mode::Forward`] | the latest previous version can read data written with the new one |
//! | [`Mode::Full`] | both |
//! | `*Transitive` | the same, against every previous version instead of only the latest |
//!
//! Both directions run the same rule, "every record the *writer* schema
//! accepts is accepted by the *reader* schema"; BACKWARD makes the new
//! version the reader, FORWARD makes the old version the reader. A finding is
//! named after what changed from the old version to the new one, so the same
//! rule reports [`IncompatibilityKind::TypeNarrowed`] when it breaks backward
//! compatibility and [`IncompatibilityKind::TypeWidened`] when it breaks
//! forward compatibility.
//!
//! # What is compared
//!
//! * The record level: `properties`, `required`, `additionalProperties`,
//!   `x-civlink-primary-key` and `x-civlink-division-column`, plus the
//!   generic keywords below when they appear at the top level.
//! * Each property present in both versions, keyword by keyword: `type`
//!   (`"integer"` is a subset of `"number"`, a missing `type` means any),
//!   `enum` and `const` (JSON equality, `1` equals `1.0`), the numeric bounds
//!   `minimum`/`exclusiveMinimum`/`maximum`/`exclusiveMaximum`, the count
//!   bounds `minLength`/`maxLength`/`minItems`/`maxItems`/`minProperties`/
//!   `maxProperties`, `multipleOf`, `pattern`, `format` and
//!   `x-civlink-code-table`.
//!
//! Keywords only matter for the JSON types they apply to: a new `minimum` on
//! a property whose writer only produces strings is not a finding.
//!
//! # Limits
//!
//! The comparison is keyword by keyword, not a full schema-containment
//! decision procedure, and it errs on the side of reporting:
//!
//! * Nested schemas inside a property (`items`, `prefixItems`, nested
//!   `properties`, `allOf`, `$ref`, …) are compared only at the top level of
//!   the property: any change to such a keyword, other than to the
//!   annotations listed below, is reported as
//!   [`IncompatibilityKind::KeywordChanged`] in both directions. The same
//!   holds for every other keyword this module does not understand.
//! * Keywords that interact are not combined: e.g. dropping `type` next to an
//!   unchanged `enum` is reported as a widening even though the enum still
//!   restricts the values.
//! * Properties a writer may emit through an open content model (no
//!   `additionalProperties: false`) are assumed not to collide with
//!   properties a later version declares; that is what makes "adding an
//!   optional field" compatible, as in the Confluent registry.
//!
//! Annotations never affect compatibility: `title`, `description`,
//! `examples`, `default`, `$comment`, `deprecated`, `readOnly`, `writeOnly`,
//! `x-civlink-sensitivity`, `x-civlink-mask` and `x-civlink-pii`. At the top
//! level `$schema`, `$id` and any `x-civlink-*` keyword other than the primary
//! key, the division column and the code table are metadata about the
//! standard (its name, version, owner…) and are ignored as well.
//!
//! # Pointers
//!
//! Every [`Incompatibility`] carries an RFC 6901 JSON pointer into the *new*
//! document (e.g. `/properties/age/maximum`, `/required/3`), falling back to
//! the enclosing property when the new document lacks the keyword. Findings
//! about something the new version deleted point into the previous version
//! instead, and their message says so.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// A compatibility mode, in the Confluent Schema Registry sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No checks at all.
    None,
    /// The new version can read data written with the latest previous one.
    Backward,
    /// The latest previous version can read data written with the new one.
    Forward,
    /// Both [`Mode::Backward`] and [`Mode::Forward`].
    Full,
    /// [`Mode::Backward`] against every previous version.
    BackwardTransitive,
    /// [`Mode::Forward`] against every previous version.
    ForwardTransitive,
    /// [`Mode::Full`] against every previous version.
    FullTransitive,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 7] = [
        Mode::None,
        Mode::Backward,
        Mode::Forward,
        Mode::Full,
        Mode::BackwardTransitive,
        Mode::ForwardTransitive,
        Mode::FullTransitive,
    ];

    /// The lower-case snake form, as accepted by [`FromStr`] and written by
    /// [`fmt::Display`] and serde.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
            Mode::BackwardTransitive => "backward_transitive",
            Mode::ForwardTransitive => "forward_transitive",
            Mode::FullTransitive => "full_transitive",
        }
    }

    /// Whether the mode requires the new version to read old data.
    pub const fn checks_backward(self) -> bool {
        matches!(self, Mode::Backward | Mode::Full | Mode::BackwardTransitive | Mode::FullTransitive)
    }

    /// Whether the mode requires old versions to read new data.
    pub const fn checks_forward(self) -> bool {
        matches!(self, Mode::Forward | Mode::Full | Mode::ForwardTransitive | Mode::FullTransitive)
    }

    /// Whether the mode checks every previous version rather than the latest.
    pub const fn is_transitive(self) -> bool {
        matches!(self, Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Accepts the snake form case-insensitively, with `-` in place of `_`
    /// too (`"FULL-TRANSITIVE"`), and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self> {
        let normalized = s.trim().to_ascii_lowercase().replace('-', "_");
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == normalized)
            .ok_or_else(|| Error::UnknownMode { input: s.to_owned() })
    }
}

/// The direction of compatibility a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The new version cannot read some data written with the old one.
    Backward,
    /// The old version cannot read some data written with the new one.
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        })
    }
}

/// What changed between the old and the new version.
///
/// Kinds that come in pairs (`…Narrowed`/`…Widened`, `…Added`/`…Removed`)
/// are the same rule seen from the two directions: the first breaks
/// [`Direction::Backward`], the second [`Direction::Forward`]. The others can
/// break either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncompatibilityKind {
    /// A required field the old version did not declare.
    RequiredFieldAdded,
    /// A field the old version required is no longer declared.
    RequiredFieldRemoved,
    /// A field the old version declared as optional is now required.
    FieldMadeRequired,
    /// A field the old version required is now optional.
    FieldMadeOptional,
    /// A field was deleted while the new version rejects undeclared fields.
    FieldRemovedFromClosedModel,
    /// A field was added while the old version rejects undeclared fields.
    FieldAddedToClosedModel,
    /// `additionalProperties` now rejects (some) undeclared fields.
    ClosedContentModel,
    /// `additionalProperties` now accepts undeclared fields the old one rejected.
    OpenedContentModel,
    /// `type` accepts fewer JSON types.
    TypeNarrowed,
    /// `type` accepts more JSON types.
    TypeWidened,
    /// `enum` allows fewer values (or was added).
    EnumNarrowed,
    /// `enum` allows more values (or was removed).
    EnumWidened,
    /// `const` was added, removed or changed.
    ConstChanged,
    /// A numeric, length, item-count or property-count bound is tighter.
    RangeNarrowed,
    /// A numeric, length, item-count or property-count bound is looser.
    RangeWidened,
    /// `multipleOf` was added, removed or changed to a value that does not divide.
    MultipleOfChanged,
    /// `pattern` was added, removed or changed.
    PatternChanged,
    /// `format` was added, removed or changed.
    FormatChanged,
    /// `x-civlink-code-table` was added, removed or changed.
    CodeTableChanged,
    /// `x-civlink-primary-key` was added, removed or changed.
    PrimaryKeyChanged,
    /// `x-civlink-division-column` was added, removed or changed.
    DivisionColumnChanged,
    /// A keyword this module does not compare structurally changed.
    KeywordChanged,
}

/// One reason the new version is not compatible with a previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incompatibility {
    /// RFC 6901 pointer into the new document, or into the previous version
    /// `against_version` when the finding is about something the new version
    /// deleted (the message then says so).
    pub pointer: String,
    /// The direction of compatibility the finding breaks.
    pub direction: Direction,
    /// Index into the `previous` slice given to [`check`].
    pub against_version: usize,
    /// What changed.
    pub kind: IncompatibilityKind,
    /// Human-readable explanation, naming the values that would be rejected.
    pub message: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The mode that was checked.
    pub mode: Mode,
    /// How many previous versions the new one was compared with.
    pub checked_against: usize,
    /// Every finding, ordered by previous version, then direction.
    pub incompatibilities: Vec<Incompatibility>,
}

impl Report {
    /// Whether no incompatibility was found.
    pub fn is_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }
}

/// Which of the documents given to [`check`] an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Document {
    /// The `new` argument.
    New,
    /// `previous[index]`.
    Previous {
        /// Index into the `previous` slice.
        index: usize,
    },
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Document::New => f.write_str("new version"),
            Document::Previous { index } => write!(f, "previous version {index}"),
        }
    }
}

/// Why a compatibility check could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A document or a property subschema is not a JSON object.
    #[error("{document}, {}: not a JSON object", show_pointer(pointer))]
    NotAnObject {
        /// The document the error is in.
        document: Document,
        /// RFC 6901 pointer to the offending value.
        pointer: String,
    },
    /// A keyword has a value of the wrong shape (`required` not an array of
    /// strings, `minimum` not a number, an unknown type name…).
    #[error("{document}, {}: {message}", show_pointer(pointer))]
    InvalidKeyword {
        /// The document the error is in.
        document: Document,
        /// RFC 6901 pointer to the offending value.
        pointer: String,
        /// What is wrong with it.
        message: String,
    },
    /// A string that names no [`Mode`].
    #[error(
        "unknown compatibility mode {input:?}: expected none, backward, forward, full, \
         backward_transitive, forward_transitive or full_transitive"
    )]
    UnknownMode {
        /// The string that was parsed.
        input: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks `new` against the previous versions of the same standard.
///
/// `previous` is ordered oldest → newest; the non-transitive modes check only
/// its last element, the transitive ones every element. An empty `previous`
/// (a first version) is always compatible.
///
/// `new` is validated even under [`Mode::None`], because a malformed standard
/// must not be registered whatever the mode; previous versions are validated
/// only when they are compared.
///
/// # Errors
///
/// [`Error::NotAnObject`] or [`Error::InvalidKeyword`] when a document that
/// is compared is malformed.
pub fn check(new: &Value, previous: &[Value], mode: Mode) -> Result<Report> {
    let new_doc = Doc::parse(new, Document::New)?;
    let first = if mode == Mode::None {
        previous.len()
    } else if mode.is_transitive() {
        0
    } else {
        previous.len().saturating_sub(1)
    };

    let mut incompatibilities = Vec::new();
    let mut checked_against = 0;
    for (index, old) in previous.iter().enumerate().skip(first) {
        let old_doc = Doc::parse(old, Document::Previous { index })?;
        checked_against += 1;
        if mode.checks_backward() {
            Comparison::new(Direction::Backward, index, &mut incompatibilities).documents(&new_doc, &old_doc);
        }
        if mode.checks_forward() {
            Comparison::new(Direction::Forward, index, &mut incompatibilities).documents(&old_doc, &new_doc);
        }
    }

    Ok(Report { mode, checked_against, incompatibilities })
}

// ---------------------------------------------------------------------------
// Keyword vocabulary

const CODE_TABLE: &str = "x-civlink-code-table";
const PRIMARY_KEY: &str = "x-civlink-primary-key";
const DIVISION_COLUMN: &str = "x-civlink-division-column";

/// Keywords that never change which records validate.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "x-civlink-sensitivity",
    "x-civlink-mask",
    "x-civlink-pii",
];

/// Top-level keywords read by [`Doc::parse`] rather than [`Parser::schema`].
const RECORD_KEYWORDS: &[&str] = &["properties", "required", "additionalProperties", PRIMARY_KEY, DIVISION_COLUMN];

/// Top-level keywords that identify the document rather than constrain data.
const DOCUMENT_METADATA: &[&str] = &["$schema", "$id"];

/// The count-bound keyword pairs, the JSON type each applies to, and what it
/// counts (for messages).
const COUNT_KEYWORDS: [CountKeywords; 3] = [
    CountKeywords {
        min: "minLength",
        max: "maxLength",
        applies_to: JsonType::String,
        subject: "strings of length",
        unit: "",
    },
    CountKeywords {
        min: "minItems",
        max: "maxItems",
        applies_to: JsonType::Array,
        subject: "arrays with",
        unit: " items",
    },
    CountKeywords {
        min: "minProperties",
        max: "maxProperties",
        applies_to: JsonType::Object,
        subject: "objects with",
        unit: " properties",
    },
];

struct CountKeywords {
    min: &'static str,
    max: &'static str,
    applies_to: JsonType,
    subject: &'static str,
    unit: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

impl JsonType {
    const ALL: [JsonType; 7] = [
        JsonType::String,
        JsonType::Integer,
        JsonType::Number,
        JsonType::Boolean,
        JsonType::Object,
        JsonType::Array,
        JsonType::Null,
    ];

    fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Null => "null",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        JsonType::ALL.into_iter().find(|t| t.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of JSON types, as a bit set over [`JsonType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TypeSet(u8);

impl TypeSet {
    const EMPTY: TypeSet = TypeSet(0);
    const ANY: TypeSet = TypeSet(0x7f);

    fn insert(&mut self, t: JsonType) {
        self.0 |= t.bit();
    }

    fn contains(self, t: JsonType) -> bool {
        self.0 & t.bit() != 0
    }

    /// Whether every value of type `t` is accepted; integers are numbers.
    fn admits(self, t: JsonType) -> bool {
        self.contains(t) || (t == JsonType::Integer && self.contains(JsonType::Number))
    }

    fn iter(self) -> impl Iterator<Item = JsonType> {
        JsonType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

// ---------------------------------------------------------------------------
// Parsed documents

/// A numeric bound, inclusive (`minimum`) or exclusive (`exclusiveMinimum`).
#[derive(Debug, Clone, Copy)]
struct NumBound<'a> {
    keyword: &'static str,
    value: &'a Number,
    exclusive: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct CountRange {
    min: Option<u64>,
    max: Option<u64>,
}

/// One schema (a property subschema, the record itself, or the record's
/// `additionalProperties`), reduced to the keywords this module compares.
#[derive(Debug)]
struct Schema<'a> {
    /// Pointer to this schema in its own document.
    ptr: String,
    /// The keywords, `None` for the boolean schemas `true` and `false`.
    keys: Option<&'a Map<String, Value>>,
    /// The boolean schema `false`, which accepts no value.
    nothing: bool,
    types: Option<TypeSet>,
    enumeration: Option<&'a [Value]>,
    constant: Option<&'a Value>,
    lower: Option<NumBound<'a>>,
    upper: Option<NumBound<'a>>,
    counts: [CountRange; 3],
    multiple_of: Option<&'a Number>,
    pattern: Option<&'a str>,
    format: Option<&'a str>,
    code_table: Option<&'a str>,
    /// Keywords compared only for equality.
    other: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Schema<'a> {
    fn empty(ptr: String) -> Self {
        Schema {
            ptr,
            keys: None,
            nothing: false,
            types: None,
            enumeration: None,
            constant: None,
            lower: None,
            upper: None,
            counts: [CountRange::default(); 3],
            multiple_of: None,
            pattern: None,
            format: None,
            code_table: None,
            other: BTreeMap::new(),
        }
    }

    /// Pointer to `keyword` in this schema if it is there, else to the schema.
    fn at(&self, keyword: &str) -> String {
        match self.keys {
            Some(keys) if keys.contains_key(keyword) => child(&self.ptr, keyword),
            _ => self.ptr.clone(),
        }
    }

    /// Whether this schema, as a writer, may produce a value of type `t`.
    fn writes(&self, t: JsonType) -> bool {
        let types = self.types.unwrap_or(TypeSet::ANY);
        match t {
            JsonType::Number | JsonType::Integer => {
                types.contains(JsonType::Number) || types.contains(JsonType::Integer)
            }
            _ => types.contains(t),
        }
    }

    /// Whether every number this schema writes is an integer.
    fn writes_only_integers(&self) -> bool {
        self.types.is_some_and(|types| !types.contains(JsonType::Number))
    }
}

#[derive(Debug)]
enum Additional<'a> {
    /// `additionalProperties` absent or `true`.
    Open,
    /// `additionalProperties: false`.
    Closed,
    /// `additionalProperties` is a schema undeclared properties must match.
    Schema(Box<Schema<'a>>),
}

/// A whole standard, reduced to what compatibility depends on.
#[derive(Debug)]
struct Doc<'a> {
    root: Schema<'a>,
    properties: BTreeMap<&'a str, Schema<'a>>,
    required: Vec<&'a str>,
    additional: Additional<'a>,
    primary_key: Option<Vec<&'a str>>,
    division_column: Option<&'a str>,
}

impl<'a> Doc<'a> {
    fn parse(value: &'a Value, document: Document) -> Result<Self> {
        let parser = Parser { document };
        let Value::Object(keys) = value else {
            return Err(parser.not_object(String::new()));
        };
        let root = parser.object_schema(keys, String::new(), true)?;

        let mut properties = BTreeMap::new();
        if let Some(value) = keys.get("properties") {
            let Value::Object(props) = value else {
                return Err(parser.invalid("/properties".into(), "must be an object"));
            };
            for (name, sub) in props {
                let ptr = child("/properties", name);
                properties.insert(name.as_str(), parser.schema(sub, ptr)?);
            }
        }

        let required = match keys.get("required") {
            None => Vec::new(),
            Some(value) => parser.strings(value, "/required")?,
        };

        let additional = match keys.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Additional::Open,
            Some(Value::Bool(false)) => Additional::Closed,
            Some(value @ Value::Object(_)) => {
                Additional::Schema(Box::new(parser.schema(value, "/additionalProperties".into())?))
            }
            Some(_) => {
                return Err(parser.invalid("/additionalProperties".into(), "must be a boolean or a schema object"));
            }
        };

        let primary_key = match keys.get(PRIMARY_KEY) {
            None => None,
            Some(value) => Some(parser.strings(value, &child("", PRIMARY_KEY))?),
        };

        let division_column = match keys.get(DIVISION_COLUMN) {
            None => None,
            Some(Value::String(column)) => Some(column.as_str()),
            Some(_) => {
                return Err(parser.invalid(child("", DIVISION_COLUMN), "must be a string"));
            }
        };

        Ok(Doc { root, properties, required, additional, primary_key, division_column })
    }

    fn primary_key_set(&self) -> Option<BTreeSet<&'a str>> {
        self.primary_key.as_ref().map(|columns| columns.iter().copied().collect())
    }
}

/// Parses schemas of one document, so errors name the document.
struct Parser {
    document: Document,
}

impl Parser {
    fn not_object(&self, pointer: String) -> Error {
        Error::NotAnObject { document: self.document, pointer }
    }

    fn invalid(&self, pointer: String, message: &str) -> Error {
        Error::InvalidKeyword { document: self.document, pointer, message: message.to_owned() }
    }

    /// A property subschema or `additionalProperties`: an object or a boolean.
    fn schema<'a>(&self, value: &'a Value, ptr: String) -> Result<Schema<'a>> {
        match value {
            Value::Bool(accepts) => {
                let mut schema = Schema::empty(ptr);
                schema.nothing = !accepts;
                Ok(schema)
            }
            Value::Object(keys) => self.object_schema(keys, ptr, false),
            _ => Err(self.not_object(ptr)),
        }
    }

    fn object_schema<'a>(&self, keys: &'a Map<String, Value>, ptr: String, is_root: bool) -> Result<Schema<'a>> {
        let mut schema = Schema::empty(ptr);
        schema.keys = Some(keys);
        for (keyword, value) in keys {
            let kp = child(&schema.ptr, keyword);
            match keyword.as_str() {
                "type" => schema.types = Some(self.types(value, &kp)?),
                "enum" => match value {
                    Value::Array(values) => schema.enumeration = Some(values.as_slice()),
                    _ => return Err(self.invalid(kp, "must be an array")),
                },
                "const" => schema.constant = Some(value),
                "minimum" | "exclusiveMinimum" => {
                    let bound = self.num_bound(keyword, value, kp)?;
                    schema.lower = Some(tighter(schema.lower, bound, Ordering::Greater));
                }
                "maximum" | "exclusiveMaximum" => {
                    let bound = self.num_bound(keyword, value, kp)?;
                    schema.upper = Some(tighter(schema.upper, bound, Ordering::Less));
                }
                "multipleOf" => match value {
                    Value::Number(n) if n.as_f64().is_some_and(|f| f > 0.0) => {
                        schema.multiple_of = Some(n);
                    }
                    _ => return Err(self.invalid(kp, "must be a number greater than 0")),
                },
                "pattern" => schema.pattern = Some(self.string(value, kp)?),
                "format" => schema.format = Some(self.string(value, kp)?),
                CODE_TABLE => schema.code_table = Some(self.string(value, kp)?),
                _ => {
                    if let Some((i, is_min)) = count_keyword(keyword) {
                        let count = self.count(value, kp)?;
                        let range = &mut schema.counts[i];
                        if is_min {
                            range.min = Some(count);
                        } else {
                            range.max = Some(count);
                        }
                    } else if ANNOTATIONS.contains(&keyword.as_str()) || (is_root && is_record_level_ignored(keyword)) {
                        // Annotations, metadata and the record keywords
                        // Doc::parse reads itself.
                    } else {
                        schema.other.insert(keyword.as_str(), value);
                    }
                }
            }
        }
        Ok(schema)
    }

    fn types(&self, value: &Value, ptr: &str) -> Result<TypeSet> {
        let mut set = TypeSet::EMPTY;
        match value {
            Value::String(name) => {
                set.insert(
                    JsonType::parse(name).ok_or_else(|| self.invalid(ptr.to_owned(), "unknown JSON type name"))?,
                );
            }
            Value::Array(names) if !names.is_empty() => {
                for (i, name) in names.iter().enumerate() {
                    let t = name
                        .as_str()
                        .and_then(JsonType::parse)
                        .ok_or_else(|| self.invalid(child(ptr, &i.to_string()), "must be a JSON type name"))?;
                    set.insert(t);
                }
            }
            _ => {
                return Err(self.invalid(ptr.to_owned(), "must be a JSON type name or a non-empty array of them"));
            }
        }
        Ok(set)
    }

    fn num_bound<'a>(&self, keyword: &str, value: &'a Value, ptr: String) -> Result<NumBound<'a>> {
        let Value::Number(n) = value else {
            return Err(self.invalid(ptr, "must be a number"));
        };
        let (keyword, exclusive) = match keyword {
            "minimum" => ("minimum", false),
            "exclusiveMinimum" => ("exclusiveMinimum", true),
            "maximum" => ("maximum", false),
            _ => ("exclusiveMaximum", true),
        };
        Ok(NumBound { keyword, value: n, exclusive })
    }

    fn count(&self, value: &Value, ptr: String) -> Result<u64> {
        let Value::Number(n) = value else {
            return Err(self.invalid(ptr, "must be a non-negative integer"));
        };
        match n.as_u64() {
            Some(count) => Ok(count),
            // 2020-12 counts 5.0 as an integer.
            None => match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
                _ => Err(self.invalid(ptr, "must be a non-negative integer")),
            },
        }
    }

    fn string<'a>(&self, value: &'a Value, ptr: String) -> Result<&'a str> {
        value.as_str().ok_or_else(|| self.invalid(ptr, "must be a string"))
    }

    fn strings<'a>(&self, value: &'a Value, ptr: &str) -> Result<Vec<&'a str>> {
        let Value::Array(items) = value else {
            return Err(self.invalid(ptr.to_owned(), "must be an array of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| item.as_str().ok_or_else(|| self.invalid(child(ptr, &i.to_string()), "must be a string")))
            .collect()
    }
}

/// Keywords the record level reads itself or ignores as metadata.
fn is_record_level_ignored(keyword: &str) -> bool {
    RECORD_KEYWORDS.contains(&keyword)
        || DOCUMENT_METADATA.contains(&keyword)
        || (keyword.starts_with("x-civlink-") && keyword != CODE_TABLE)
}

/// Index into [`COUNT_KEYWORDS`] and whether `keyword` is the lower bound.
fn count_keyword(keyword: &str) -> Option<(usize, bool)> {
    COUNT_KEYWORDS.iter().enumerate().find_map(|(i, kw)| {
        if kw.min == keyword {
            Some((i, true))
        } else if kw.max == keyword {
            Some((i, false))
        } else {
            None
        }
    })
}

/// The tighter of two lower (`want = Greater`) or upper (`want = Less`)
/// bounds; at equal values the exclusive one is tighter.
fn tighter<'a>(current: Option<NumBound<'a>>, new: NumBound<'a>, want: Ordering) -> NumBound<'a> {
    match current {
        None => new,
        Some(cur) => match cmp_num(new.value, cur.value) {
            Ordering::Equal if new.exclusive && !cur.exclusive => new,
            Ordering::Equal => cur,
            ord if ord == want => new,
            _ => cur,
        },
    }
}

// ---------------------------------------------------------------------------
// Comparison

/// One reader/writer comparison; collects findings into `out`.
struct Comparison<'o> {
    direction: Direction,
    against: usize,
    out: &'o mut Vec<Incompatibility>,
}

impl<'o> Comparison<'o> {
    fn new(direction: Direction, against: usize, out: &'o mut Vec<Incompatibility>) -> Self {
        Comparison { direction, against, out }
    }

    /// BACKWARD reads old data with the new version; FORWARD the reverse.
    fn reader_is_new(&self) -> bool {
        self.direction == Direction::Backward
    }

    /// `(new, old)` out of `(reader, writer)`.
    fn new_old<'s, T>(&self, reader: &'s T, writer: &'s T) -> (&'s T, &'s T) {
        if self.reader_is_new() { (reader, writer) } else { (writer, reader) }
    }

    fn kind(&self, backward: IncompatibilityKind, forward: IncompatibilityKind) -> IncompatibilityKind {
        if self.reader_is_new() { backward } else { forward }
    }

    /// "`what` written by the old version would be rejected by the new version".
    fn consequence(&self, what: &str) -> String {
        let (writer, reader) = if self.reader_is_new() { ("old", "new") } else { ("new", "old") };
        format!("{what} written by the {writer} version would be rejected by the {reader} version")
    }

    /// Appended to messages whose pointer is into the previous version.
    fn in_previous(&self) -> String {
        format!(" (pointer refers to previous version {})", self.against)
    }

    fn push(&mut self, pointer: String, kind: IncompatibilityKind, message: String) {
        self.out.push(Incompatibility {
            pointer,
            direction: self.direction,
            against_version: self.against,
            kind,
            message,
        });
    }

    fn documents(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        self.schema(&reader.root, &writer.root);
        self.properties(reader, writer);
        self.content_model(reader, writer);
        self.required(reader, writer);
        self.primary_key(reader, writer);
        self.division_column(reader, writer);
    }

    fn properties(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        for (name, w) in &writer.properties {
            if let Some(r) = reader.properties.get(name) {
                self.schema(r, w);
                continue;
            }
            if w.nothing {
                continue;
            }
            match &reader.additional {
                Additional::Open => {}
                Additional::Schema(r) => self.schema(r, w),
                Additional::Closed => {
                    let (kind, message) = if self.reader_is_new() {
                        (
                            IncompatibilityKind::FieldRemovedFromClosedModel,
                            format!(
                                "field `{name}` removed while additionalProperties is false: {}{}",
                                self.consequence(&format!("records with `{name}`")),
                                self.in_previous()
                            ),
                        )
                    } else {
                        (
                            IncompatibilityKind::FieldAddedToClosedModel,
                            format!(
                                "field `{name}` added while the old version has additionalProperties false: {}",
                                self.consequence(&format!("records with `{name}`"))
                            ),
                        )
                    };
                    // The writer's declaration: in the old document when the
                    // field was removed, in the new one when it was added.
                    self.push(w.ptr.clone(), kind, message);
                }
            }
        }
    }

    fn content_model(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        let rejects_extras = match (&reader.additional, &writer.additional) {
            (Additional::Open, _) | (_, Additional::Closed) => false,
            (Additional::Closed | Additional::Schema(_), Additional::Open) => true,
            (Additional::Closed, Additional::Schema(w)) => !w.nothing,
            (Additional::Schema(r), Additional::Schema(w)) => {
                self.schema(r, w);
                false
            }
        };
        if !rejects_extras {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let message = format!(
            "additionalProperties changed from {} to {}: {}",
            describe_additional(old),
            describe_additional(new),
            self.consequence("properties the reader does not declare")
        );
        let kind = self.kind(IncompatibilityKind::ClosedContentModel, IncompatibilityKind::OpenedContentModel);
        self.push(new.root.at("additionalProperties"), kind, message);
    }

    fn required(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        for (i, name) in reader.required.iter().enumerate() {
            if reader.required[..i].contains(name) || writer.required.contains(name) {
                continue;
            }
            let required_ptr = format!("/required/{i}");
            let records = format!("records without `{name}`");
            match (writer.properties.get(name), self.reader_is_new()) {
                (Some(_), true) => {
                    let message = format!("optional field `{name}` made required: {}", self.consequence(&records));
                    self.push(required_ptr, IncompatibilityKind::FieldMadeRequired, message);
                }
                (Some(w), false) => {
                    let message = format!("required field `{name}` made optional: {}", self.consequence(&records));
                    self.push(w.ptr.clone(), IncompatibilityKind::FieldMadeOptional, message);
                }
                (None, true) => {
                    let message = format!("required field `{name}` added: {}", self.consequence(&records));
                    self.push(required_ptr, IncompatibilityKind::RequiredFieldAdded, message);
                }
                (None, false) => {
                    let message = format!(
                        "required field `{name}` removed: {}{}",
                        self.consequence(&records),
                        self.in_previous()
                    );
                    self.push(required_ptr, IncompatibilityKind::RequiredFieldRemoved, message);
                }
            }
        }
    }

    /// The key defines row identity for upserts and de-duplication, so any
    /// change alters what a row means across versions, in either direction.
    fn primary_key(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        if reader.primary_key_set() == writer.primary_key_set() {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let describe = |doc: &Doc<'_>| match &doc.primary_key {
            None => "none".to_owned(),
            Some(columns) => format!("[{}]", columns.join(", ")),
        };
        let message = format!(
            "primary key changed from {} to {}: rows written by the {} version are identified differently by the {} version",
            describe(old),
            describe(new),
            if self.reader_is_new() { "old" } else { "new" },
            if self.reader_is_new() { "new" } else { "old" },
        );
        self.push(new.root.at(PRIMARY_KEY), IncompatibilityKind::PrimaryKeyChanged, message);
    }

    /// The division column decides which administrative division (and so
    /// which data owner and access scope) a row belongs to.
    fn division_column(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        if reader.division_column == writer.division_column {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let describe = |doc: &Doc<'_>| match doc.division_column {
            None => "none".to_owned(),
            Some(column) => format!("`{column}`"),
        };
        let message = format!(
            "division column changed from {} to {}: rows are assigned to divisions differently",
            describe(old),
            describe(new)
        );
        self.push(new.root.at(DIVISION_COLUMN), IncompatibilityKind::DivisionColumnChanged, message);
    }

    /// Everything `w` accepts must be accepted by `r`, keyword by keyword.
    fn schema(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if w.nothing {
            return;
        }
        if r.nothing {
            let (new, _) = self.new_old(r, w);
            let message = format!(
                "the {} version's schema is `false` and accepts no value: {}",
                if self.reader_is_new() { "new" } else { "old" },
                self.consequence("any value")
            );
            let kind = self.kind(IncompatibilityKind::TypeNarrowed, IncompatibilityKind::TypeWidened);
            self.push(new.ptr.clone(), kind, message);
            return;
        }
        self.types(r, w);
        self.enumeration(r, w);
        self.constant(r, w);
        self.lower(r, w);
        self.upper(r, w);
        for (i, keywords) in COUNT_KEYWORDS.iter().enumerate() {
            if w.writes(keywords.applies_to) {
                self.count_min(r, w, i, keywords);
                self.count_max(r, w, i, keywords);
            }
        }
        self.multiple_of(r, w);
        self.string_keyword(
            r,
            w,
            "pattern",
            |s| s.pattern,
            w.writes(JsonType::String),
            IncompatibilityKind::PatternChanged,
            "strings not matching",
        );
        self.string_keyword(
            r,
            w,
            "format",
            |s| s.format,
            true,
            IncompatibilityKind::FormatChanged,
            "values not in format",
        );
        self.string_keyword(
            r,
            w,
            CODE_TABLE,
            |s| s.code_table,
            true,
            IncompatibilityKind::CodeTableChanged,
            "codes outside code table",
        );
        self.other(r, w);
    }

    fn types(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(reader_types) = r.types else {
            return;
        };
        let writer_types = w.types.unwrap_or(TypeSet::ANY);
        let mut missing = TypeSet::EMPTY;
        for t in writer_types.iter().filter(|t| !reader_types.admits(*t)) {
            missing.insert(t);
        }
        if missing == TypeSet::EMPTY {
            return;
        }
        // "number" already says "integer".
        if missing.contains(JsonType::Number) {
            missing.0 &= !JsonType::Integer.bit();
        }
        let (new, old) = self.new_old(r, w);
        let verb = if self.reader_is_new() { "narrowed" } else { "widened" };
        let names: Vec<&str> = missing.iter().map(JsonType::name).collect();
        let message = format!(
            "type {verb} from {} to {}: {}",
            describe_types(old.types),
            describe_types(new.types),
            self.consequence(&format!("values of type {}", names.join(", ")))
        );
        let kind = self.kind(IncompatibilityKind::TypeNarrowed, IncompatibilityKind::TypeWidened);
        self.push(new.at("type"), kind, message);
    }

    fn enumeration(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(allowed) = r.enumeration else {
            return;
        };
        let contains = |v: &Value| allowed.iter().any(|a| json_eq(a, v));
        if w.constant.is_some_and(contains) {
            return;
        }
        // What the writer may write that the reader's enum lacks; `None`
        // when the writer has no enum (or const) at all.
        let missing: Option<Vec<&Value>> = match (w.enumeration, w.constant) {
            (Some(values), _) => Some(values.iter().filter(|v| !contains(v)).collect()),
            (None, Some(value)) => Some(vec![value]),
            (None, None) => None,
        };
        if missing.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        let (new, _) = self.new_old(r, w);
        let kind = self.kind(IncompatibilityKind::EnumNarrowed, IncompatibilityKind::EnumWidened);
        let message = match (missing, self.reader_is_new()) {
            (None, true) => {
                format!("enum {} added: {}", show_values(allowed.iter()), self.consequence("values outside it"))
            }
            (None, false) => {
                format!("enum {} removed: {}", show_values(allowed.iter()), self.consequence("values outside it"))
            }
            (Some(values), true) => format!(
                "enum no longer allows {}: {}",
                show_values(values.iter().copied()),
                self.consequence("those values")
            ),
            (Some(values), false) => format!(
                "enum now also allows {}: {}",
                show_values(values.iter().copied()),
                self.consequence("those values")
            ),
        };
        self.push(new.at("enum"), kind, message);
    }

    fn constant(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(expected) = r.constant else {
            return;
        };
        let same = w.constant.is_some_and(|c| json_eq(c, expected))
            || w.enumeration.is_some_and(|values| values.iter().all(|v| json_eq(v, expected)));
        if same {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (old.constant, new.constant) {
            (Some(o), Some(n)) => format!("const changed from {} to {}", show(o), show(n)),
            (None, Some(n)) => format!("const {} added", show(n)),
            (Some(o), None) => format!("const {} removed", show(o)),
            (None, None) => "const changed".to_owned(),
        };
        let message = format!("{change}: {}", self.consequence(&format!("values other than {}", show(expected))));
        self.push(new.at("const"), IncompatibilityKind::ConstChanged, message);
    }

    fn lower(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(rb) = r.lower else {
            return;
        };
        // Writer values below the reader's bound. For a writer of integers
        // only, bounds are compared as the integers they admit, so that
        // `exclusiveMinimum: -1` and `minimum: 0` are the same.
        let integers = if w.writes_only_integers() {
            match (int_lower(rb), w.lower.map(int_lower)) {
                (Some(r_lo), None) => Some(Some(format!("values up to {}", r_lo - 1))),
                (Some(r_lo), Some(Some(w_lo))) => Some((r_lo > w_lo).then(|| int_range(w_lo, r_lo - 1))),
                _ => None,
            }
        } else {
            None
        };
        let gap = match integers {
            Some(Some(gap)) => gap,
            Some(None) => return,
            None => match w.lower {
                None => format!("values {} {}", if rb.exclusive { "at or below" } else { "below" }, rb.value),
                Some(wb) => {
                    let narrower = match cmp_num(rb.value, wb.value) {
                        Ordering::Greater => true,
                        Ordering::Equal => rb.exclusive && !wb.exclusive,
                        Ordering::Less => false,
                    };
                    if !narrower {
                        return;
                    }
                    format!(
                        "values in {}{}, {}{}",
                        if wb.exclusive { "(" } else { "[" },
                        wb.value,
                        rb.value,
                        if rb.exclusive { "]" } else { ")" },
                    )
                }
            },
        };
        self.bound_finding(r, w, |s| s.lower, "lower", gap);
    }

    fn upper(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(rb) = r.upper else {
            return;
        };
        // Writer values above the reader's bound; integers as in `lower`.
        let integers = if w.writes_only_integers() {
            match (int_upper(rb), w.upper.map(int_upper)) {
                (Some(r_hi), None) => Some(Some(format!("values from {}", r_hi + 1))),
                (Some(r_hi), Some(Some(w_hi))) => Some((r_hi < w_hi).then(|| int_range(r_hi + 1, w_hi))),
                _ => None,
            }
        } else {
            None
        };
        let gap = match integers {
            Some(Some(gap)) => gap,
            Some(None) => return,
            None => match w.upper {
                None => format!("values {} {}", if rb.exclusive { "at or above" } else { "above" }, rb.value),
                Some(wb) => {
                    let narrower = match cmp_num(rb.value, wb.value) {
                        Ordering::Less => true,
                        Ordering::Equal => rb.exclusive && !wb.exclusive,
                        Ordering::Greater => false,
                    };
                    if !narrower {
                        return;
                    }
                    format!(
                        "values in {}{}, {}{}",
                        if rb.exclusive { "[" } else { "(" },
                        rb.value,
                        wb.value,
                        if wb.exclusive { ")" } else { "]" },
                    )
                }
            },
        };
        self.bound_finding(r, w, |s| s.upper, "upper", gap);
    }

    /// Reports a narrowed numeric bound; `side` is "lower" or "upper".
    fn bound_finding<'a>(
        &mut self,
        r: &Schema<'a>,
        w: &Schema<'a>,
        bound: impl Fn(&Schema<'a>) -> Option<NumBound<'a>>,
        side: &str,
        gap: String,
    ) {
        let (new, old) = self.new_old(r, w);
        let change = match (bound(old), bound(new)) {
            (Some(o), Some(n)) if o.keyword == n.keyword => format!(
                "{} {} from {} to {}",
                n.keyword,
                if cmp_num(n.value, o.value) == Ordering::Greater { "raised" } else { "lowered" },
                o.value,
                n.value
            ),
            (Some(o), Some(n)) => {
                format!("{side} bound changed from {} {} to {} {}", o.keyword, o.value, n.keyword, n.value)
            }
            (None, Some(n)) => format!("{} {} added", n.keyword, n.value),
            (Some(o), None) => format!("{} {} removed", o.keyword, o.value),
            (None, None) => format!("{side} bound changed"),
        };
        let pointer = match bound(new) {
            Some(n) => new.at(n.keyword),
            None => new.ptr.clone(),
        };
        let message = format!("{change}: {}", self.consequence(&gap));
        let kind = self.kind(IncompatibilityKind::RangeNarrowed, IncompatibilityKind::RangeWidened);
        self.push(pointer, kind, message);
    }

    fn count_min(&mut self, r: &Schema<'_>, w: &Schema<'_>, i: usize, keywords: &CountKeywords) {
        let Some(reader_min) = r.counts[i].min else {
            return;
        };
        // An absent minimum count is 0.
        let writer_min = w.counts[i].min.unwrap_or(0);
        if reader_min <= writer_min {
            return;
        }
        let gap = format!(
            "{} {}{}",
            keywords.subject,
            int_span(u128::from(writer_min), u128::from(reader_min) - 1),
            keywords.unit
        );
        self.count_finding(r, w, i, keywords.min, |c| c.min, gap);
    }

    fn count_max(&mut self, r: &Schema<'_>, w: &Schema<'_>, i: usize, keywords: &CountKeywords) {
        let Some(reader_max) = r.counts[i].max else {
            return;
        };
        let gap = match w.counts[i].max {
            Some(writer_max) if writer_max <= reader_max => return,
            Some(writer_max) => format!(
                "{} {}{}",
                keywords.subject,
                int_span(u128::from(reader_max) + 1, u128::from(writer_max)),
                keywords.unit
            ),
            None => format!("{} more than {reader_max}{}", keywords.subject, keywords.unit),
        };
        self.count_finding(r, w, i, keywords.max, |c| c.max, gap);
    }

    fn count_finding(
        &mut self,
        r: &Schema<'_>,
        w: &Schema<'_>,
        i: usize,
        keyword: &str,
        get: impl Fn(&CountRange) -> Option<u64>,
        gap: String,
    ) {
        let (new, old) = self.new_old(r, w);
        let change = match (get(&old.counts[i]), get(&new.counts[i])) {
            (Some(o), Some(n)) => format!("{keyword} {} from {o} to {n}", if n > o { "raised" } else { "lowered" }),
            (None, Some(n)) => format!("{keyword} {n} added"),
            (Some(o), None) => format!("{keyword} {o} removed"),
            (None, None) => format!("{keyword} changed"),
        };
        let message = format!("{change}: {}", self.consequence(&gap));
        let kind = self.kind(IncompatibilityKind::RangeNarrowed, IncompatibilityKind::RangeWidened);
        self.push(new.at(keyword), kind, message);
    }

    fn multiple_of(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(divisor) = r.multiple_of else {
            return;
        };
        let divides_writer = w.multiple_of.is_some_and(|writer_divisor| is_multiple(writer_divisor, divisor));
        // Every integer is a multiple of 1 (and of 1/2, 1/3…).
        let divides_integers = w.writes_only_integers() && is_multiple(&Number::from(1u8), divisor);
        if divides_writer || divides_integers {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (old.multiple_of, new.multiple_of) {
            (Some(o), Some(n)) => format!("multipleOf changed from {o} to {n}"),
            (None, Some(n)) => format!("multipleOf {n} added"),
            (Some(o), None) => format!("multipleOf {o} removed"),
            (None, None) => "multipleOf changed".to_owned(),
        };
        let message = format!("{change}: {}", self.consequence(&format!("values that are not multiples of {divisor}")));
        self.push(new.at("multipleOf"), IncompatibilityKind::MultipleOfChanged, message);
    }

    /// `pattern`, `format` and `x-civlink-code-table`: the reader's value, if
    /// any, must be exactly the writer's, because neither can be decided to
    /// contain the other.
    #[allow(clippy::too_many_arguments)] // One call per keyword; a struct would only rename them.
    fn string_keyword<'a>(
        &mut self,
        r: &Schema<'a>,
        w: &Schema<'a>,
        keyword: &str,
        get: impl Fn(&Schema<'a>) -> Option<&'a str>,
        applies: bool,
        kind: IncompatibilityKind,
        rejected: &str,
    ) {
        if !applies {
            return;
        }
        let Some(expected) = get(r) else {
            return;
        };
        if get(w) == Some(expected) {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (get(old), get(new)) {
            (Some(o), Some(n)) => format!("{keyword} changed from {o:?} to {n:?}"),
            (None, Some(n)) => format!("{keyword} {n:?} added"),
            (Some(o), None) => format!("{keyword} {o:?} removed"),
            (None, None) => format!("{keyword} changed"),
        };
        let message = format!("{change}: {}", self.consequence(&format!("{rejected} {expected:?}")));
        self.push(new.at(keyword), kind, message);
    }

    /// Keywords compared only for equality, conservatively in both directions.
    fn other(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let keywords: BTreeSet<&str> = r.other.keys().chain(w.other.keys()).copied().collect();
        for keyword in keywords {
            let (reader_value, writer_value) = (r.other.get(keyword), w.other.get(keyword));
            let same = match (reader_value, writer_value) {
                (Some(a), Some(b)) => json_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same {
                continue;
            }
            let (new, old) = self.new_old(r, w);
            let change = match (old.other.get(keyword), new.other.get(keyword)) {
                (Some(o), Some(n)) => {
                    format!("keyword `{keyword}` changed from {} to {}", show(o), show(n))
                }
                (None, Some(n)) => format!("keyword `{keyword}` {} added", show(n)),
                (Some(o), None) => format!("keyword `{keyword}` {} removed", show(o)),
                (None, None) => format!("keyword `{keyword}` changed"),
            };
            let message =
                format!("{change}: it is not compared structurally, so the change is assumed to break both directions");
            self.push(new.at(keyword), IncompatibilityKind::KeywordChanged, message);
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Appends one RFC 6901 reference token to `ptr`.
fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn show_pointer(pointer: &str) -> String {
    if pointer.is_empty() { "document root".to_owned() } else { format!("at {pointer}") }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
/// Iterative, so deeply nested values cannot exhaust the stack.
fn json_eq(a: &Value, b: &Value) -> bool {
    let mut stack = vec![(a, b)];
    while let Some(pair) = stack.pop() {
        match pair {
            (Value::Number(x), Value::Number(y)) => {
                if cmp_num(x, y) != Ordering::Equal {
                    return false;
                }
            }
            (Value::Array(xs), Value::Array(ys)) => {
                if xs.len() != ys.len() {
                    return false;
                }
                stack.extend(xs.iter().zip(ys));
            }
            (Value::Object(xs), Value::Object(ys)) => {
                if xs.len() != ys.len() {
                    return false;
                }
                for (key, x) in xs {
                    match ys.get(key) {
                        Some(y) => stack.push((x, y)),
                        None => return false,
                    }
                }
            }
            (x, y) => {
                if x != y {
                    return false;
                }
            }
        }
    }
    true
}

/// Numeric order; exact for integers, `f64` otherwise.
fn cmp_num(a: &Number, b: &Number) -> Ordering {
    match (exact_int(a), exact_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(f64::NAN);
            let y = b.as_f64().unwrap_or(f64::NAN);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

fn exact_int(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// 2^53: beyond it `f64` no longer holds every integer.
const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// The integer value of `n`, if it has one that `f64` represents exactly.
fn integral(n: &Number) -> Option<i128> {
    exact_int(n).or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f.abs() <= MAX_EXACT_F64).then_some(f as i128)
    })
}

/// Whether `value` is an integer multiple of `divisor`.
fn is_multiple(value: &Number, divisor: &Number) -> bool {
    if let (Some(v), Some(d)) = (exact_int(value), exact_int(divisor))
        && d != 0
    {
        return v % d == 0;
    }
    match (value.as_f64(), divisor.as_f64()) {
        (Some(v), Some(d)) if d != 0.0 => {
            let quotient = v / d;
            quotient.is_finite() && (quotient - quotient.round()).abs() <= 1e-9 * quotient.abs().max(1.0)
        }
        _ => false,
    }
}

/// The least integer a lower bound admits, if `f64` can say.
fn int_lower(bound: NumBound<'_>) -> Option<i128> {
    match integral(bound.value) {
        Some(i) => Some(if bound.exclusive { i + 1 } else { i }),
        None => {
            let f = bound.value.as_f64()?;
            (f.abs() <= MAX_EXACT_F64).then(|| f.ceil() as i128)
        }
    }
}

/// The greatest integer an upper bound admits, if `f64` can say.
fn int_upper(bound: NumBound<'_>) -> Option<i128> {
    match integral(bound.value) {
        Some(i) => Some(if bound.exclusive { i - 1 } else { i }),
        None => {
            let f = bound.value.as_f64()?;
            (f.abs() <= MAX_EXACT_F64).then(|| f.floor() as i128)
        }
    }
}

fn int_range(lo: i128, hi: i128) -> String {
    if lo == hi { format!("the value {lo}") } else { format!("values {lo}..{hi}") }
}

fn int_span(lo: u128, hi: u128) -> String {
    if lo == hi { lo.to_string() } else { format!("{lo}..{hi}") }
}

fn describe_types(types: Option<TypeSet>) -> String {
    match types {
        None => "any type".to_owned(),
        Some(set) => {
            let names: Vec<String> = set.iter().map(|t| format!("{:?}", t.name())).collect();
            match names.as_slice() {
                [one] => one.clone(),
                _ => format!("[{}]", names.join(", ")),
            }
        }
    }
}

fn describe_additional(doc: &Doc<'_>) -> &'static str {
    match (&doc.additional, doc.root.keys.and_then(|k| k.get("additionalProperties"))) {
        (Additional::Open, None) => "absent (open)",
        (Additional::Open, Some(_)) => "true",
        (Additional::Closed, _) => "false",
        (Additional::Schema(_), _) => "a schema",
    }
}

/// A JSON value for a message, cut short so huge values stay readable.
fn show(value: &Value) -> String {
    const LIMIT: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        text
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}…")
    }
}

fn show_values<'v>(values: impl Iterator<Item = &'v Value>) -> String {
    const LIMIT: usize = 10;
    let values: Vec<&Value> = values.collect();
    let mut shown: Vec<String> = values.iter().take(LIMIT).map(|v| show(v)).collect();
    if values.len() > LIMIT {
        shown.push(format!("… {} more", values.len() - LIMIT));
    }
    format!("[{}]", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A small person standard in the shape of the real ones.
    fn person() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://civlink.example/standards/person/1",
            "title": "Person",
            "type": "object",
            "x-civlink-primary-key": ["id_number"],
            "x-civlink-division-column": "division_code",
            "properties": {
                "id_number": {"type": "string", "format": "gb11643", "x-civlink-sensitivity": "high"},
                "name": {"type": "string", "maxLength": 50},
                "sex": {"type": "string", "enum": ["1", "2", "9"], "x-civlink-code-table": "sex"},
                "age": {"type": "integer", "minimum": 0, "maximum": 150},
                "income": {"type": ["number", "null"]},
                "division_code": {"type": "string", "format": "division-code"},
                "phone": {"type": "string", "pattern": "^1[0-9]{10}$"}
            },
            "required": ["id_number", "name", "division_code"]
        })
    }

    /// `person()` with `edit` applied.
    fn edited(edit: impl FnOnce(&mut Value)) -> Value {
        let mut doc = person();
        edit(&mut doc);
        doc
    }

    fn prop<'v>(doc: &'v mut Value, name: &str) -> &'v mut Value {
        &mut doc["properties"][name]
    }

    fn run(new: &Value, old: &Value, mode: Mode) -> Report {
        match check(new, std::slice::from_ref(old), mode) {
            Ok(report) => report,
            Err(e) => panic!("check failed: {e}"),
        }
    }

    fn kinds(report: &Report) -> Vec<(Direction, IncompatibilityKind, String)> {
        report.incompatibilities.iter().map(|i| (i.direction, i.kind, i.pointer.clone())).collect()
    }

    /// Asserts BACKWARD and FORWARD give exactly the expected findings.
    #[track_caller]
    fn assert_findings(
        new: &Value,
        old: &Value,
        backward: &[(IncompatibilityKind, &str)],
        forward: &[(IncompatibilityKind, &str)],
    ) {
        let b = run(new, old, Mode::Backward);
        let expected: Vec<_> = backward.iter().map(|(k, p)| (Direction::Backward, *k, (*p).to_owned())).collect();
        assert_eq!(kinds(&b), expected, "backward: {:#?}", b.incompatibilities);
        let f = run(new, old, Mode::Forward);
        let expected: Vec<_> = forward.iter().map(|(k, p)| (Direction::Forward, *k, (*p).to_owned())).collect();
        assert_eq!(kinds(&f), expected, "forward: {:#?}", f.incompatibilities);
    }

    use IncompatibilityKind as K;

    // --- modes -------------------------------------------------------------

    #[test]
    fn mode_parses_and_displays() {
        for mode in Mode::ALL {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
            assert_eq!(mode.as_str().to_uppercase().parse::<Mode>(), Ok(mode));
            assert_eq!(mode.as_str().replace('_', "-").parse::<Mode>(), Ok(mode));
            let json = serde_json::to_value(mode).unwrap();
            assert_eq!(json, Value::String(mode.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<Mode>(json).unwrap(), mode);
        }
        assert_eq!("Full-Transitive".parse::<Mode>(), Ok(Mode::FullTransitive));
        assert_eq!("sideways".parse::<Mode>(), Err(Error::UnknownMode { input: "sideways".into() }));
        assert!("".parse::<Mode>().is_err());
        assert!("ｆｕｌｌ".parse::<Mode>().is_err());
    }

    #[test]
    fn mode_directions() {
        assert!(!Mode::None.checks_backward() && !Mode::None.checks_forward());
        assert!(Mode::Backward.checks_backward() && !Mode::Backward.checks_forward());
        assert!(!Mode::Forward.checks_backward() && Mode::Forward.checks_forward());
        assert!(Mode::Full.checks_backward() && Mode::Full.checks_forward());
        assert!(Mode::FullTransitive.is_transitive() && !Mode::Full.is_transitive());
    }

    #[test]
    fn identical_versions_are_compatible_in_every_mode() {
        for mode in Mode::ALL {
            let report = run(&person(), &person(), mode);
            assert!(report.is_compatible(), "{mode}: {report:#?}");
        }
    }

    #[test]
    fn none_checks_nothing() {
        let new = edited(|d| *prop(d, "age") = json!({"type": "string"}));
        let report = run(&new, &person(), Mode::None);
        assert!(report.is_compatible());
        assert_eq!(report.checked_against, 0);
    }

    #[test]
    fn first_version_is_compatible() {
        for mode in Mode::ALL {
            let report = check(&person(), &[], mode).unwrap();
            assert!(report.is_compatible());
            assert_eq!(report.checked_against, 0);
        }
    }

    // --- fields ------------------------------------------------------------

    #[test]
    fn adding_an_optional_field_is_compatible_both_ways() {
        let new = edited(|d| *prop(d, "email") = json!({"type": "string", "format": "email"}));
        assert_findings(&new, &person(), &[], &[]);
    }

    #[test]
    fn deleting_an_optional_field_is_compatible_both_ways() {
        let new = edited(|d| {
            d["properties"].as_object_mut().unwrap().remove("phone");
        });
        assert_findings(&new, &person(), &[], &[]);
    }

    #[test]
    fn adding_a_required_field_breaks_backward() {
        let new = edited(|d| {
            *prop(d, "household_id") = json!({"type": "string"});
            d["required"].as_array_mut().unwrap().push(json!("household_id"));
        });
        assert_findings(&new, &person(), &[(K::RequiredFieldAdded, "/required/3")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        let message = &report.incompatibilities[0].message;
        assert!(message.contains("`household_id`"), "{message}");
        assert_eq!(report.incompatibilities[0].against_version, 0);
    }

    #[test]
    fn deleting_a_required_field_breaks_forward_and_points_into_the_old_version() {
        let new = edited(|d| {
            d["properties"].as_object_mut().unwrap().remove("name");
            d["required"] = json!(["id_number", "division_code"]);
        });
        assert_findings(&new, &person(), &[], &[(K::RequiredFieldRemoved, "/required/1")]);
        let report = run(&new, &person(), Mode::Forward);
        assert!(report.incompatibilities[0].message.contains("pointer refers to previous version 0"));
    }

    #[test]
    fn making_a_field_required_breaks_backward() {
        let new = edited(|d| d["required"].as_array_mut().unwrap().push(json!("age")));
        assert_findings(&new, &person(), &[(K::FieldMadeRequired, "/required/3")], &[]);
    }

    #[test]
    fn making_a_field_optional_breaks_forward() {
        let new = edited(|d| d["required"] = json!(["id_number", "division_code"]));
        assert_findings(&new, &person(), &[], &[(K::FieldMadeOptional, "/properties/name")]);
    }

    #[test]
    fn duplicate_required_entries_are_reported_once() {
        let new = edited(|d| d["required"] = json!(["id_number", "name", "division_code", "age", "age"]));
        assert_findings(&new, &person(), &[(K::FieldMadeRequired, "/required/3")], &[]);
    }

    // --- type --------------------------------------------------------------

    #[test]
    fn narrowing_number_to_integer_breaks_backward() {
        let new = edited(|d| *prop(d, "income") = json!({"type": ["integer", "null"]}));
        assert_findings(&new, &person(), &[(K::TypeNarrowed, "/properties/income/type")], &[]);
    }

    #[test]
    fn widening_integer_to_number_breaks_forward() {
        let new = edited(|d| prop(d, "age")["type"] = json!("number"));
        assert_findings(&new, &person(), &[], &[(K::TypeWidened, "/properties/age/type")]);
    }

    #[test]
    fn dropping_null_from_a_union_breaks_backward() {
        let new = edited(|d| prop(d, "income")["type"] = json!("number"));
        assert_findings(&new, &person(), &[(K::TypeNarrowed, "/properties/income/type")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        let message = &report.incompatibilities[0].message;
        assert!(message.contains("type null"), "{message}");
        assert!(message.contains(r#"from ["number", "null"] to "number""#), "{message}");
    }

    #[test]
    fn removing_type_widens_and_adding_type_narrows() {
        let without = edited(|d| {
            prop(d, "income").as_object_mut().unwrap().remove("type");
        });
        assert_findings(&without, &person(), &[], &[(K::TypeWidened, "/properties/income")]);
        assert_findings(&person(), &without, &[(K::TypeNarrowed, "/properties/income/type")], &[]);
    }

    #[test]
    fn boolean_subschemas() {
        let old = edited(|d| *prop(d, "phone") = json!(false));
        let new = edited(|d| *prop(d, "phone") = json!(true));
        // The old version never wrote `phone`; the new one may.
        assert_findings(&new, &old, &[], &[(K::TypeWidened, "/properties/phone")]);
    }

    // --- enum and const ----------------------------------------------------

    #[test]
    fn narrowing_an_enum_breaks_backward() {
        let new = edited(|d| prop(d, "sex")["enum"] = json!(["1", "2"]));
        assert_findings(&new, &person(), &[(K::EnumNarrowed, "/properties/sex/enum")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        assert!(report.incompatibilities[0].message.contains(r#"["9"]"#));
    }

    #[test]
    fn widening_an_enum_breaks_forward() {
        let new = edited(|d| prop(d, "sex")["enum"] = json!(["0", "1", "2", "9"]));
        assert_findings(&new, &person(), &[], &[(K::EnumWidened, "/properties/sex/enum")]);
    }

    #[test]
    fn adding_and_removing_an_enum() {
        let new = edited(|d| prop(d, "name")["enum"] = json!(["a"]));
        assert_findings(&new, &person(), &[(K::EnumNarrowed, "/properties/name/enum")], &[]);
        assert_findings(&person(), &new, &[], &[(K::EnumWidened, "/properties/name")]);
    }

    #[test]
    fn enum_values_compare_numerically() {
        let old = json!({"type": "object", "properties": {"level": {"enum": [1, 2, 3]}}});
        let new = json!({"type": "object", "properties": {"level": {"enum": [3.0, 2.0, 1.0]}}});
        assert!(run(&new, &old, Mode::Full).is_compatible());
    }

    #[test]
    fn const_changes_break_both_ways() {
        let old = json!({"type": "object", "properties": {"v": {"const": "A"}}});
        let new = json!({"type": "object", "properties": {"v": {"const": "B"}}});
        assert_findings(
            &new,
            &old,
            &[(K::ConstChanged, "/properties/v/const")],
            &[(K::ConstChanged, "/properties/v/const")],
        );
        let open = json!({"type": "object", "properties": {"v": {}}});
        assert_findings(&new, &open, &[(K::ConstChanged, "/properties/v/const")], &[]);
        assert_findings(&open, &old, &[], &[(K::ConstChanged, "/properties/v")]);
    }

    #[test]
    fn const_within_enum_and_single_value_enum() {
        let enumerated = json!({"type": "object", "properties": {"v": {"enum": ["A", "B"]}}});
        let constant = json!({"type": "object", "properties": {"v": {"const": "A"}}});
        let single = json!({"type": "object", "properties": {"v": {"enum": ["A"]}}});
        // const A is within enum [A, B]: narrowing only.
        assert_findings(&constant, &enumerated, &[(K::ConstChanged, "/properties/v/const")], &[]);
        assert!(run(&constant, &single, Mode::Full).is_compatible());
    }

    // --- ranges ------------------------------------------------------------

    #[test]
    fn lowering_maximum_breaks_backward_with_a_useful_message() {
        let new = edited(|d| prop(d, "age")["maximum"] = json!(120));
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/age/maximum")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        assert_eq!(
            report.incompatibilities[0].message,
            "maximum lowered from 150 to 120: values 121..150 written by the old version \
             would be rejected by the new version"
        );
    }

    #[test]
    fn raising_maximum_breaks_forward() {
        let new = edited(|d| prop(d, "age")["maximum"] = json!(200));
        assert_findings(&new, &person(), &[], &[(K::RangeWidened, "/properties/age/maximum")]);
        let report = run(&new, &person(), Mode::Forward);
        assert_eq!(
            report.incompatibilities[0].message,
            "maximum raised from 150 to 200: values 151..200 written by the new version \
             would be rejected by the old version"
        );
    }

    #[test]
    fn raising_minimum_and_adding_bounds() {
        let new = edited(|d| prop(d, "age")["minimum"] = json!(18));
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/age/minimum")], &[]);
        let new = edited(|d| prop(d, "income")["minimum"] = json!(0.5));
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/income/minimum")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        assert!(report.incompatibilities[0].message.contains("values below 0.5"));
        // Removing a bound is the forward counterpart.
        assert_findings(&person(), &new, &[], &[(K::RangeWidened, "/properties/income")]);
    }

    #[test]
    fn exclusive_bound_at_the_same_value_narrows() {
        let new = edited(|d| {
            let age = prop(d, "age").as_object_mut().unwrap();
            age.remove("maximum");
            age.insert("exclusiveMaximum".into(), json!(150));
        });
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/age/exclusiveMaximum")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        assert!(report.incompatibilities[0].message.contains("the value 150"));
        // For integers `exclusiveMinimum: -1` is `minimum: 0`...
        let new = edited(|d| {
            let age = prop(d, "age").as_object_mut().unwrap();
            age.remove("minimum");
            age.insert("exclusiveMinimum".into(), json!(-1));
        });
        assert!(run(&new, &person(), Mode::Full).is_compatible());
        // ...but for numbers it admits (-1, 0).
        let new_number = edited(|d| {
            let age = prop(d, "age").as_object_mut().unwrap();
            age.remove("minimum");
            age.insert("exclusiveMinimum".into(), json!(-1));
            age.insert("type".into(), json!("number"));
        });
        let old_number = edited(|d| prop(d, "age")["type"] = json!("number"));
        assert_findings(&new_number, &old_number, &[], &[(K::RangeWidened, "/properties/age/exclusiveMinimum")]);
        let report = run(&new_number, &old_number, Mode::Forward);
        assert!(report.incompatibilities[0].message.contains("values in (-1, 0)"));
        // Fractional bounds are rounded to the integers they admit.
        let new = edited(|d| prop(d, "age")["maximum"] = json!(150.5));
        assert!(run(&new, &person(), Mode::Full).is_compatible());
    }

    #[test]
    fn tighter_of_two_bounds_counts() {
        let old = json!({"type": "object", "properties": {"x": {"maximum": 10, "exclusiveMaximum": 10}}});
        let new = json!({"type": "object", "properties": {"x": {"exclusiveMaximum": 10}}});
        assert!(run(&new, &old, Mode::Full).is_compatible());
    }

    #[test]
    fn length_bounds() {
        let new = edited(|d| prop(d, "name")["maxLength"] = json!(20));
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/name/maxLength")], &[]);
        let report = run(&new, &person(), Mode::Backward);
        assert!(report.incompatibilities[0].message.contains("strings of length 21..50"));
        let new = edited(|d| prop(d, "name")["minLength"] = json!(2));
        assert_findings(&new, &person(), &[(K::RangeNarrowed, "/properties/name/minLength")], &[]);
        // minLength 0 is the same as no minLength.
        let new = edited(|d| prop(d, "name")["minLength"] = json!(0));
        assert!(run(&new, &person(), Mode::Full).is_compatible());
        // 2020-12 accepts 50.0 as an integer.
        let new = edited(|d| prop(d, "name")["maxLength"] = json!(50.0));
        assert!(run(&new, &person(), Mode::Full).is_compatible());
    }

    #[test]
    fn keywords_only_matter_for_the_types_they_apply_to() {
        let new = edited(|d| {
            prop(d, "name")["minimum"] = json!(3);
            prop(d, "age")["maxLength"] = json!(3);
            prop(d, "age")["pattern"] = json!("^[0-9]$");
        });
        assert!(run(&new, &person(), Mode::Full).is_compatible());
    }

    #[test]
    fn multiple_of() {
        let base = json!({"type": "object", "properties": {"x": {"type": "number", "multipleOf": 10}}});
        let five = json!({"type": "object", "properties": {"x": {"type": "number", "multipleOf": 5}}});
        let none = json!({"type": "object", "properties": {"x": {"type": "number"}}});
        // 5 divides 10: every old value is still valid.
        assert_findings(&five, &base, &[], &[(K::MultipleOfChanged, "/properties/x/multipleOf")]);
        assert_findings(&base, &five, &[(K::MultipleOfChanged, "/properties/x/multipleOf")], &[]);
        assert_findings(&base, &none, &[(K::MultipleOfChanged, "/properties/x/multipleOf")], &[]);
        let half = json!({"type": "object", "properties": {"x": {"multipleOf": 0.5}}});
        let one_and_half = json!({"type": "object", "properties": {"x": {"multipleOf": 1.5}}});
        assert!(run(&half, &one_and_half, Mode::Backward).is_compatible());
        // Integers are all multiples of 1.
        let int = json!({"type": "object", "properties": {"x": {"type": "integer"}}});
        let int_one = json!({"type": "object", "properties": {"x": {"type": "integer", "multipleOf": 1}}});
        assert!(run(&int_one, &int, Mode::Full).is_compatible());
    }

    // --- string keywords ---------------------------------------------------

    #[test]
    fn pattern_format_and_code_table_changes() {
        let new = edited(|d| prop(d, "phone")["pattern"] = json!("^1[3-9][0-9]{9}$"));
        let changed = [(K::PatternChanged, "/properties/phone/pattern")];
        assert_findings(&new, &person(), &changed, &changed);

        let new = edited(|d| prop(d, "name")["pattern"] = json!("^\\p{Han}+$"));
        assert_findings(&new, &person(), &[(K::PatternChanged, "/properties/name/pattern")], &[]);
        assert_findings(&person(), &new, &[], &[(K::PatternChanged, "/properties/name")]);

        let new = edited(|d| prop(d, "id_number")["format"] = json!("gb11643-2"));
        let changed = [(K::FormatChanged, "/properties/id_number/format")];
        assert_findings(&new, &person(), &changed, &changed);
        let new = edited(|d| prop(d, "name")["format"] = json!("email"));
        assert_findings(&new, &person(), &[(K::FormatChanged, "/properties/name/format")], &[]);

        let new = edited(|d| prop(d, "sex")["x-civlink-code-table"] = json!("gender"));
        let changed = [(K::CodeTableChanged, "/properties/sex/x-civlink-code-table")];
        assert_findings(&new, &person(), &changed, &changed);
        let new = edited(|d| {
            prop(d, "sex").as_object_mut().unwrap().remove("x-civlink-code-table");
        });
        assert_findings(&new, &person(), &[], &[(K::CodeTableChanged, "/properties/sex")]);
    }

    // --- content model, keys -----------------------------------------------

    #[test]
    fn closing_the_content_model_breaks_backward() {
        let new = edited(|d| d["additionalProperties"] = json!(false));
        assert_findings(&new, &person(), &[(K::ClosedContentModel, "/additionalProperties")], &[]);
        assert_findings(&person(), &new, &[], &[(K::OpenedContentModel, "")]);
        // Closed in both: compatible.
        assert!(run(&new, &new, Mode::Full).is_compatible());
    }

    #[test]
    fn fields_against_a_closed_model() {
        let closed = edited(|d| d["additionalProperties"] = json!(false));
        let removed = edited(|d| {
            d["additionalProperties"] = json!(false);
            d["properties"].as_object_mut().unwrap().remove("phone");
        });
        assert_findings(&removed, &closed, &[(K::FieldRemovedFromClosedModel, "/properties/phone")], &[]);
        let report = run(&removed, &closed, Mode::Backward);
        assert!(report.incompatibilities[0].message.contains("previous version 0"));
        // Adding an optional field to a closed model breaks the old reader.
        assert_findings(&closed, &removed, &[], &[(K::FieldAddedToClosedModel, "/properties/phone")]);
    }

    #[test]
    fn additional_properties_schemas() {
        let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
        let any = json!({"type": "object", "additionalProperties": {}});
        assert_findings(&strings, &any, &[(K::TypeNarrowed, "/additionalProperties/type")], &[]);
        let open = json!({"type": "object"});
        assert_findings(&strings, &open, &[(K::ClosedContentModel, "/additionalProperties")], &[]);
        // A declared field removed into a typed additionalProperties is
        // checked against that schema.
        let declared = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": {"type": "string"}});
        assert_findings(&strings, &declared, &[(K::TypeNarrowed, "/additionalProperties/type")], &[]);
    }

    #[test]
    fn primary_key_changes_break_both_ways() {
        let new = edited(|d| d["x-civlink-primary-key"] = json!(["id_number", "division_code"]));
        let changed = [(K::PrimaryKeyChanged, "/x-civlink-primary-key")];
        assert_findings(&new, &person(), &changed, &changed);
        let removed = edited(|d| {
            d.as_object_mut().unwrap().remove("x-civlink-primary-key");
        });
        assert_findings(&removed, &person(), &[(K::PrimaryKeyChanged, "")], &[(K::PrimaryKeyChanged, "")]);
        // Column order does not change identity.
        let a = json!({"type": "object", "x-civlink-primary-key": ["a", "b"]});
        let b = json!({"type": "object", "x-civlink-primary-key": ["b", "a"]});
        assert!(run(&a, &b, Mode::Full).is_compatible());
    }

    #[test]
    fn division_column_changes_break_both_ways() {
        let new = edited(|d| d["x-civlink-division-column"] = json!("residence_code"));
        let changed = [(K::DivisionColumnChanged, "/x-civlink-division-column")];
        assert_findings(&new, &person(), &changed, &changed);
    }

    #[test]
    fn annotations_and_metadata_do_not_matter() {
        let new = edited(|d| {
            d["title"] = json!("人员");
            d["$id"] = json!("https://civlink.example/standards/person/2");
            d["x-civlink-version"] = json!("2.0.0");
            let id = prop(d, "id_number");
            id["x-civlink-sensitivity"] = json!("low");
            id["x-civlink-mask"] = json!("keep_last_4");
            id["x-civlink-pii"] = json!(true);
            id["description"] = json!("公民身份号码");
            id["examples"] = json!(["110101199003074514"]);
            id["deprecated"] = json!(true);
        });
        assert!(run(&new, &person(), Mode::FullTransitive).is_compatible());
    }

    #[test]
    fn unknown_keywords_break_both_ways() {
        let old = json!({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}});
        let new = json!({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 5}}}});
        let changed = [(K::KeywordChanged, "/properties/tags/items")];
        assert_findings(&new, &old, &changed, &changed);
        let report = run(&new, &old, Mode::Full);
        assert_eq!(report.incompatibilities.len(), 2);
        // Equal nested values, with numbers in different spellings, are fine.
        let a = json!({"type": "object", "properties": {"t": {"items": {"maxLength": 5}}}});
        let b = json!({"type": "object", "properties": {"t": {"items": {"maxLength": 5.0}}}});
        assert!(run(&a, &b, Mode::Full).is_compatible());
        // Unknown top-level keywords count too.
        let c = json!({"type": "object", "patternProperties": {"^x_": {}}});
        assert_findings(
            &c,
            &json!({"type": "object"}),
            &[(K::KeywordChanged, "/patternProperties")],
            &[(K::KeywordChanged, "/patternProperties")],
        );
    }

    // --- modes combined ----------------------------------------------------

    #[test]
    fn full_combines_both_directions() {
        let widened = edited(|d| prop(d, "age")["type"] = json!("number"));
        let report = run(&widened, &person(), Mode::Full);
        assert_eq!(kinds(&report), vec![(Direction::Forward, K::TypeWidened, "/properties/age/type".to_owned())]);
        let narrowed = edited(|d| prop(d, "age")["maximum"] = json!(100));
        let both = edited(|d| {
            prop(d, "age")["maximum"] = json!(100);
            prop(d, "sex")["enum"] = json!(["1", "2", "9", "0"]);
        });
        assert_eq!(run(&narrowed, &person(), Mode::Full).incompatibilities.len(), 1);
        let report = run(&both, &person(), Mode::Full);
        assert_eq!(
            kinds(&report),
            vec![
                (Direction::Backward, K::RangeNarrowed, "/properties/age/maximum".to_owned()),
                (Direction::Forward, K::EnumWidened, "/properties/sex/enum".to_owned()),
            ]
        );
    }

    #[test]
    fn transitive_modes_check_every_previous_version() {
        let v1 = person();
        let v2 = edited(|d| prop(d, "age")["maximum"] = json!(120));
        let v3 = v2.clone();
        let history = [v1, v2];

        let report = check(&v3, &history, Mode::Backward).unwrap();
        assert!(report.is_compatible());
        assert_eq!(report.checked_against, 1);

        let report = check(&v3, &history, Mode::BackwardTransitive).unwrap();
        assert_eq!(report.checked_against, 2);
        assert_eq!(report.incompatibilities.len(), 1);
        let finding = &report.incompatibilities[0];
        assert_eq!(finding.against_version, 0);
        assert_eq!(finding.direction, Direction::Backward);
        assert_eq!(finding.kind, K::RangeNarrowed);
        assert_eq!(finding.pointer, "/properties/age/maximum");

        assert!(check(&v3, &history, Mode::ForwardTransitive).unwrap().is_compatible());
        assert_eq!(check(&v3, &history, Mode::FullTransitive).unwrap().incompatibilities.len(), 1);
    }

    #[test]
    fn transitive_forward_names_the_version() {
        let v1 = edited(|d| prop(d, "age")["maximum"] = json!(100));
        let v2 = person();
        let v3 = person();
        let report = check(&v3, &[v1, v2], Mode::ForwardTransitive).unwrap();
        assert_eq!(kinds(&report), vec![(Direction::Forward, K::RangeWidened, "/properties/age/maximum".to_owned())]);
        assert_eq!(report.incompatibilities[0].against_version, 0);
    }

    // --- pointers ----------------------------------------------------------

    #[test]
    fn pointers_escape_property_names() {
        let old = json!({"type": "object", "properties": {"a/b~c": {"type": "string"}}});
        let new = json!({"type": "object", "properties": {"a/b~c": {"type": "string", "maxLength": 3}}});
        assert_findings(&new, &old, &[(K::RangeNarrowed, "/properties/a~1b~0c/maxLength")], &[]);
    }

    // --- malformed documents -----------------------------------------------

    #[track_caller]
    fn assert_error(new: Value, expected: Error) {
        assert_eq!(check(&new, &[person()], Mode::Full), Err(expected));
    }

    fn invalid(pointer: &str, message: &str) -> Error {
        Error::InvalidKeyword { document: Document::New, pointer: pointer.into(), message: message.into() }
    }

    #[test]
    fn malformed_documents_give_errors_with_pointers() {
        assert_error(json!([1, 2]), Error::NotAnObject { document: Document::New, pointer: String::new() });
        assert_error(json!({"properties": []}), invalid("/properties", "must be an object"));
        assert_error(
            json!({"properties": {"a/b": 3}}),
            Error::NotAnObject { document: Document::New, pointer: "/properties/a~1b".into() },
        );
        assert_error(json!({"required": "name"}), invalid("/required", "must be an array of strings"));
        assert_error(json!({"required": ["a", 1]}), invalid("/required/1", "must be a string"));
        assert_error(
            json!({"properties": {"x": {"minimum": "0"}}}),
            invalid("/properties/x/minimum", "must be a number"),
        );
        assert_error(
            json!({"properties": {"x": {"maxLength": -1}}}),
            invalid("/properties/x/maxLength", "must be a non-negative integer"),
        );
        assert_error(
            json!({"properties": {"x": {"maxLength": 2.5}}}),
            invalid("/properties/x/maxLength", "must be a non-negative integer"),
        );
        assert_error(
            json!({"properties": {"x": {"multipleOf": 0}}}),
            invalid("/properties/x/multipleOf", "must be a number greater than 0"),
        );
        assert_error(
            json!({"properties": {"x": {"type": "text"}}}),
            invalid("/properties/x/type", "unknown JSON type name"),
        );
        assert_error(
            json!({"properties": {"x": {"type": ["string", 3]}}}),
            invalid("/properties/x/type/1", "must be a JSON type name"),
        );
        assert_error(
            json!({"properties": {"x": {"type": []}}}),
            invalid("/properties/x/type", "must be a JSON type name or a non-empty array of them"),
        );
        assert_error(json!({"properties": {"x": {"enum": "a"}}}), invalid("/properties/x/enum", "must be an array"));
        assert_error(
            json!({"properties": {"x": {"pattern": 1}}}),
            invalid("/properties/x/pattern", "must be a string"),
        );
        assert_error(
            json!({"properties": {"x": {"x-civlink-code-table": null}}}),
            invalid("/properties/x/x-civlink-code-table", "must be a string"),
        );
        assert_error(
            json!({"additionalProperties": 1}),
            invalid("/additionalProperties", "must be a boolean or a schema object"),
        );
        assert_error(
            json!({"x-civlink-primary-key": "id"}),
            invalid("/x-civlink-primary-key", "must be an array of strings"),
        );
        assert_error(
            json!({"x-civlink-division-column": 12}),
            invalid("/x-civlink-division-column", "must be a string"),
        );
    }

    #[test]
    fn errors_name_the_document() {
        let bad = json!({"required": [1]});
        let err = check(&person(), &[person(), bad.clone()], Mode::Full).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidKeyword {
                document: Document::Previous { index: 1 },
                pointer: "/required/0".into(),
                message: "must be a string".into(),
            }
        );
        assert_eq!(err.to_string(), "previous version 1, at /required/0: must be a string");
        // Versions that are not compared are not validated...
        assert!(check(&person(), &[bad.clone(), person()], Mode::Full).is_ok());
        // ...but transitive modes compare them all, and `new` is always checked.
        assert!(check(&person(), &[bad.clone(), person()], Mode::FullTransitive).is_err());
        assert!(check(&bad, &[], Mode::None).is_err());
        let err = check(&json!(null), &[], Mode::None).unwrap_err();
        assert_eq!(err.to_string(), "new version, document root: not a JSON object");
    }

    #[test]
    fn report_serializes_in_snake_case() {
        let new = edited(|d| prop(d, "age")["maximum"] = json!(120));
        let report = run(&new, &person(), Mode::Backward);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "backward");
        assert_eq!(json["checked_against"], 1);
        assert_eq!(json["incompatibilities"][0]["kind"], "range_narrowed");
        assert_eq!(json["incompatibilities"][0]["direction"], "backward");
        assert_eq!(json["incompatibilities"][0]["pointer"], "/properties/age/maximum");
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(json_eq(&deep, &deep));
        // Dropping a 10 000-deep Value recurses inside serde_json; leak it
        // instead, the test only needs json_eq to be iterative.
        std::mem::forget(deep);
    }

    // --- properties --------------------------------------------------------

    const KEYWORDS: &[&str] = &[
        "type",
        "properties",
        "required",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "multipleOf",
        "pattern",
        "format",
        "additionalProperties",
        "x-civlink-primary-key",
        "x-civlink-code-table",
        "x-civlink-division-column",
        "items",
        "title",
        "a",
        "b/~",
    ];

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "string",
                "integer",
                "number",
                "null",
                "object",
                "array",
                "boolean",
                "",
                "a",
                "身份证",
                "~/",
            ])
            .prop_map(str::to_owned),
            prop::sample::select(KEYWORDS).prop_map(str::to_owned),
        ]
    }

    fn arb_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (any::<i32>(), 1u8..8).prop_map(|(n, d)| json!(f64::from(n) / f64::from(d))),
            prop::sample::select(vec![0.0, -0.0, 1e300, -1e300, 5e-324, 0.1]).prop_map(|f| json!(f)),
        ]
    }

    /// Arbitrary small JSON, biased towards schema keywords.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            arb_number(),
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(arb_string(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Arbitrary documents whose properties are arbitrary JSON.
    fn arb_document() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => arb_json(),
            3 => (
                prop::collection::btree_map(arb_string(), arb_json(), 0..5),
                prop::collection::btree_map(arb_string(), arb_json(), 0..5),
            )
                .prop_map(|(top, props)| {
                    let mut doc: Map<String, Value> = top.into_iter().collect();
                    doc.insert("properties".into(), Value::Object(props.into_iter().collect()));
                    Value::Object(doc)
                }),
        ]
    }

    /// Arbitrary documents, valid standards, and valid standards with one
    /// property or top-level keyword replaced by arbitrary JSON.
    fn arb_any_document() -> impl Strategy<Value = Value> {
        prop_oneof![
            arb_document(),
            arb_standard(),
            (arb_standard(), arb_string(), arb_json(), any::<bool>()).prop_map(
                |(mut doc, key, value, in_properties)| {
                    if in_properties {
                        doc["properties"][key] = value;
                    } else {
                        doc[key] = value;
                    }
                    doc
                }
            ),
        ]
    }

    fn arb_type() -> impl Strategy<Value = Value> {
        let name = prop::sample::select(vec!["string", "integer", "number", "null", "object", "array", "boolean"]);
        prop_oneof![
            name.clone().prop_map(Value::from),
            prop::collection::vec(name, 1..4).prop_map(|names| json!(names)),
        ]
    }

    fn arb_small_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..5).prop_map(Value::from),
            (-10i32..10).prop_map(|n| json!(f64::from(n) / 2.0)),
            prop::sample::select(vec!["1", "2", "9", "男"]).prop_map(Value::from),
        ]
    }

    /// A valid property subschema.
    fn arb_subschema() -> impl Strategy<Value = Value> {
        let keyword = prop_oneof![
            arb_type().prop_map(|v| ("type", v)),
            prop::collection::vec(arb_small_value(), 0..4).prop_map(|v| ("enum", json!(v))),
            arb_small_value().prop_map(|v| ("const", v)),
            arb_number().prop_map(|v| ("minimum", v)),
            arb_number().prop_map(|v| ("maximum", v)),
            arb_number().prop_map(|v| ("exclusiveMinimum", v)),
            arb_number().prop_map(|v| ("exclusiveMaximum", v)),
            (0u64..100).prop_map(|v| ("minLength", json!(v))),
            (0u64..100).prop_map(|v| ("maxItems", json!(v))),
            prop::sample::select(vec![json!(1), json!(0.5), json!(7), json!(0.01)]).prop_map(|v| ("multipleOf", v)),
            prop::sample::select(vec!["^[0-9]+$", "^a"]).prop_map(|v| ("pattern", json!(v))),
            prop::sample::select(vec!["gb11643", "date"]).prop_map(|v| ("format", json!(v))),
            prop::sample::select(vec!["sex", "ethnic"]).prop_map(|v| ("x-civlink-code-table", json!(v))),
            Just(("items", json!({"type": "string"}))),
            Just(("title", json!("标题"))),
        ];
        prop_oneof![
            1 => any::<bool>().prop_map(Value::Bool),
            8 => prop::collection::vec(keyword, 0..6).prop_map(|keywords| {
                Value::Object(keywords.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    }

    /// A valid standard.
    fn arb_standard() -> impl Strategy<Value = Value> {
        let name = prop::sample::select(vec!["id_number", "name", "age", "sex", "a/b", "x~y"]);
        (
            prop::collection::btree_map(name.clone(), arb_subschema(), 0..5),
            prop::collection::vec(name.clone(), 0..4),
            prop_oneof![Just(None), any::<bool>().prop_map(|b| Some(json!(b))), arb_subschema().prop_map(Some),],
            prop::option::of(prop::collection::vec(name.clone(), 1..3)),
            prop::option::of(name),
        )
            .prop_map(|(properties, required, additional, key, division)| {
                let mut doc = json!({
                    "type": "object",
                    "properties": properties.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>(),
                    "required": required,
                });
                if let Some(additional) = additional {
                    doc["additionalProperties"] = additional;
                }
                if let Some(key) = key {
                    doc["x-civlink-primary-key"] = json!(key);
                }
                if let Some(division) = division {
                    doc["x-civlink-division-column"] = json!(division);
                }
                doc
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics(new in arb_any_document(), old in arb_any_document(), older in arb_any_document()) {
            for mode in Mode::ALL {
                let _ = check(&new, &[older.clone(), old.clone()], mode);
            }
        }

        #[test]
        fn valid_standards_parse(doc in arb_standard()) {
            prop_assert!(check(&doc, &[], Mode::None).is_ok());
        }

        #[test]
        fn a_version_is_compatible_with_itself(doc in arb_standard()) {
            let report = check(&doc, &[doc.clone(), doc.clone()], Mode::FullTransitive);
            prop_assert!(report.as_ref().is_ok_and(Report::is_compatible), "{:#?}", report);
        }

        #[test]
        fn forward_is_backward_with_roles_swapped(a in arb_standard(), b in arb_standard()) {
            let backward = check(&a, std::slice::from_ref(&b), Mode::Backward);
            let forward = check(&b, std::slice::from_ref(&a), Mode::Forward);
            match (backward, forward) {
                (Ok(backward), Ok(forward)) => prop_assert_eq!(
                    backward.incompatibilities.len(),
                    forward.incompatibilities.len()
                ),
                (backward, forward) => prop_assert!(false, "{:?} / {:?}", backward, forward),
            }
        }
    }
}
