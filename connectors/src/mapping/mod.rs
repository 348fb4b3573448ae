//! Declarative mapping from a department's export to a standard's columns,
//! applied to each batch before validation.
//!
//! Departments export with their own column names (`公民身份号码`, `性别`),
//! their own spellings of codes (`男`, `M`), IDs with full-width digits or a
//! lower-case `x`, 6-digit county codes, `1,234.50元`, `2024年3月7日`. A
//! mapping, written in the job file, turns that into what the standard
//! expects:
//!
//! ```toml
//! [mapping]
//! rename = { "公民身份号码" = "id_number", "姓名" = "name", "性别" = "sex" }
//! [[mapping.columns]]
//! name = "sex"
//! code_table = "sex"                      # 男 → 1
//! [[mapping.columns]]
//! name = "birth_date"
//! derive = "id_birth_date(id_number)"     # a new column from the ID number
//! ```
//!
//! Steps, in order:
//!
//! 1. **rename** every source column listed (all at once, so `a → b, b → a`
//!    swaps). A rename whose source column is absent does nothing: the
//!    validator then reports the standard's column as missing.
//! 2. every **`[[columns]]`** entry, in the order written. Within one entry:
//!    `derive` (compute the values from other columns) → `trim` → `default`
//!    (for NULL or blank values) → `values` (literal map) → `normalize` →
//!    `code_table` → `cast`. An entry for a column the batch does not have
//!    (and does not derive) is skipped, unless it has a `default`, which then
//!    fills a new column.
//! 3. with **drop_unmapped**, columns outside the target set are removed.
//!
//! The standard reads values as JSON Schema does (see
//! `civlink_standards::validate::coerce`): `20240131` is no date, `是` no
//! boolean, `1` from a JSON source no string. Every conversion a source
//! needs is declared here, and counted: [`Mapping::apply_delivered`]
//! reports per column how many values arrived in the standard's form and
//! how many a step normalised, and the run's quality report keeps it.
//! A JSON value keeps its JSON type through renames and steps that leave it
//! unchanged; a value a step changed, or a `cast` read, becomes text.
//!
//! Rules that keep the mapping honest:
//!
//! * It never drops or adds rows: the output has exactly the input's rows,
//!   in order, so positions stay valid.
//! * A value that a step cannot translate (an unknown code, a date that does
//!   not parse, an ID that is not valid) is kept **as is**, for the
//!   validator to reject with the right reason, never dropped or nulled. A
//!   derivation from an invalid ID yields NULL (the ID column itself is
//!   rejected).
//! * A step never produces an empty string: an empty result is NULL, as an
//!   empty CSV field is.
//! * Transformed columns are `Utf8`. A non-`Utf8` column (from Parquet) is
//!   cast to text only when a text step applies to it, or when a derivation
//!   reads it; otherwise it passes through with its type.
//! * The mapping is pure and deterministic: the only outside input is the
//!   reference date of `id_age` (and of the "birth date in the future"
//!   check), fixed when the mapping is compiled ([`Mapping::with_as_of`]).
//!
//! [`Mapping::compile`] checks a [`MappingSpec`] and reports every problem
//! at once (unknown code table, unknown derive function, bad cast, bad
//! `date_format`, two columns renamed to one name, …).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime};
use civlink_standards::code_table::{CodeTable, CodeTableRegistry};
use civlink_standards::division::DivisionCode;
use civlink_standards::idcard::{self, CitizenId};
use civlink_standards::validate::{Delivered, DeliveredTypes};
use serde::Deserialize;

mod derive;
#[cfg(test)]
mod tests;
mod values;

use derive::{Derive, parse_derive};
pub use values::parse_date;
use values::{apply_cast, excel_serial_date, half_width, normalize_division_code, valid_date_format};

/// The `[mapping]` section of a job file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// Source column → target column, e.g. `{ "公民身份号码" = "id_number" }`.
    /// Renames apply together, before any column step.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Per-column steps (`[[mapping.columns]]`), applied in the order written.
    #[serde(default)]
    pub columns: Vec<ColumnMapping>,
    /// `false` (default): columns not in the standard are kept, and are
    /// rejected by the validator only if the standard is closed
    /// (`additionalProperties: false`). `true`: they are removed after
    /// mapping — only the standard's columns (see [`Mapping::restrict_to`];
    /// without it, the rename targets and mapped columns) are kept.
    #[serde(default)]
    pub drop_unmapped: bool,
    /// JSON sources: what a JSON `null` means. `null` (default): JSON
    /// Schema's reading, a value that only a type admitting null takes.
    /// `absent`: no value, as if the key were missing (a declared
    /// normalisation, counted per column).
    #[serde(default)]
    pub json_null: JsonNull,
}

/// What a JSON `null` in a JSON source means ([`MappingSpec::json_null`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonNull {
    /// A null value, judged by the standard's types.
    #[default]
    Null,
    /// No value, like a missing key.
    Absent,
}

/// One `[[mapping.columns]]` entry: the steps for one target column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// The target column (after renaming).
    pub name: String,
    /// Computes the column from others: `id_birth_date(col)` → `YYYY-MM-DD`,
    /// `id_sex(col)` → GB/T 2261.1 code, `id_age(col)` → whole years,
    /// `concat(col, 'literal', col2)`, `const('x')`, `copy(col)`. Column
    /// names are bare (any text without quotes, commas or parentheses);
    /// literals are in single or double quotes (a doubled quote escapes it).
    #[serde(default)]
    pub derive: Option<String>,
    /// Strips leading and trailing whitespace (including the full-width space).
    #[serde(default)]
    pub trim: bool,
    /// Used when the value is NULL or blank.
    #[serde(default)]
    pub default: Option<String>,
    /// Literal value map, matched exactly after trimming, e.g.
    /// `{ "正常" = "normal" }`; unmapped values are kept as they are.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// `id_number` (GB 11643: trim, full-width digits, `x` → `X`, 15 → 18
    /// digits), `division_code` (strip spaces, full-width digits; a 6-digit
    /// GB/T 2260 county code becomes its 12-digit division code) or
    /// `half_width` (full-width digits, letters and punctuation to ASCII) or
    /// `excel_serial_date` (a plain number in a spreadsheet's date column,
    /// Excel's serial day in the 1900 date system, e.g. `45292`, to
    /// `YYYY-MM-DD`: `2024-01-01`; other values are kept).
    #[serde(default)]
    pub normalize: Option<String>,
    /// Translates codes, labels and aliases of this shipped code table
    /// (`sex`: 男 → `1`); values it does not know are kept as they are.
    #[serde(default)]
    pub code_table: Option<String>,
    /// Reads the value into the standard's form: `integer`, `number`
    /// (thousands separators, a leading `¥` and a trailing `元` removed),
    /// `date` (`YYYY-MM-DD` from `20240131`, `2024/1/31`, `2024年1月31日`, …),
    /// `datetime` (RFC 3339; a local `2024-01-31 08:00:00` is China time),
    /// `boolean` (是/否, 有/无, yes/no, y/n, t/f, 1/0 in any case → `true` /
    /// `false`) or `string` (a JSON number or boolean taken as its text).
    /// Values that do not parse are kept as they are, for the validator to
    /// reject as delivered.
    #[serde(default)]
    pub cast: Option<String>,
    /// The chrono format of `cast = "date"` or `"datetime"` input, e.g. `%Y年%m月%d日`.
    /// Without it, common layouts are tried (see [`parse_date`]).
    #[serde(default)]
    pub date_format: Option<String>,
}

/// One problem in a [`MappingSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A rename with an empty source or target name.
    EmptyRename {
        /// Source column.
        source: String,
        /// Target column.
        target: String,
    },
    /// Several source columns renamed to the same target.
    RenameCollision {
        /// The target.
        target: String,
        /// The sources renamed to it.
        sources: Vec<String>,
    },
    /// A `[[mapping.columns]]` entry without a name.
    EmptyColumnName {
        /// 0-based position of the entry.
        index: usize,
    },
    /// Two `[[mapping.columns]]` entries for the same column.
    DuplicateColumn {
        /// The column.
        column: String,
    },
    /// An entry with no step at all.
    NothingToDo {
        /// The column.
        column: String,
    },
    /// `code_table` names no shipped table.
    UnknownCodeTable {
        /// The column.
        column: String,
        /// The name given.
        table: String,
        /// The shipped tables.
        available: Vec<String>,
    },
    /// `normalize` is not `id_number` or `division_code`.
    UnknownNormalize {
        /// The column.
        column: String,
        /// The value given.
        value: String,
    },
    /// `cast` is not `integer`, `number` or `date`.
    UnknownCast {
        /// The column.
        column: String,
        /// The value given.
        value: String,
    },
    /// `date_format` is not a valid chrono format.
    BadDateFormat {
        /// The column.
        column: String,
        /// The format given.
        format: String,
    },
    /// `date_format` without `cast = "date"` or `"datetime"`.
    DateFormatWithoutDateCast {
        /// The column.
        column: String,
    },
    /// Two `values` keys that are the same after trimming, mapped differently.
    AmbiguousValue {
        /// The column.
        column: String,
        /// The trimmed key.
        key: String,
    },
    /// A `derive` expression that does not parse.
    BadDerive {
        /// The column.
        column: String,
        /// The expression.
        expression: String,
        /// What is wrong.
        message: String,
    },
    /// A `derive` function that does not exist.
    UnknownDeriveFunction {
        /// The column.
        column: String,
        /// The function name.
        function: String,
    },
    /// A `derive` function called with the wrong arguments.
    DeriveArguments {
        /// The column.
        column: String,
        /// The function name.
        function: String,
        /// What it expects.
        expected: &'static str,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EmptyRename { source, target } => {
                write!(f, "mapping.rename: empty column name in {source:?} = {target:?}")
            }
            Problem::RenameCollision { target, sources } => {
                write!(f, "mapping.rename: {} are all renamed to {target:?}", quoted(sources))
            }
            Problem::EmptyColumnName { index } => write!(f, "mapping.columns[{index}]: name is empty"),
            Problem::DuplicateColumn { column } => {
                write!(f, "mapping.columns: {column:?} appears twice; put all its steps in one entry")
            }
            Problem::NothingToDo { column } => write!(
                f,
                "mapping.columns {column:?}: no step given (derive, trim, default, values, normalize, code_table or cast)"
            ),
            Problem::UnknownCodeTable { column, table, available } => write!(
                f,
                "mapping.columns {column:?}: unknown code table {table:?}; shipped tables: {}",
                available.join(", ")
            ),
            Problem::UnknownNormalize { column, value } => write!(
                f,
                "mapping.columns {column:?}: unknown normalize {value:?}; expected id_number, division_code, half_width or excel_serial_date"
            ),
            Problem::UnknownCast { column, value } => {
                write!(
                    f,
                    "mapping.columns {column:?}: unknown cast {value:?}; expected integer, number, boolean, date, datetime or string"
                )
            }
            Problem::BadDateFormat { column, format } => write!(
                f,
                "mapping.columns {column:?}: date_format {format:?} is not a valid format (use %Y, %m, %d, e.g. \"%Y年%m月%d日\")"
            ),
            Problem::DateFormatWithoutDateCast { column } => {
                write!(f, "mapping.columns {column:?}: date_format needs cast = \"date\" or \"datetime\"")
            }
            Problem::AmbiguousValue { column, key } => {
                write!(
                    f,
                    "mapping.columns {column:?}: values has {key:?} twice (after trimming) with different targets"
                )
            }
            Problem::BadDerive { column, expression, message } => {
                write!(f, "mapping.columns {column:?}: derive {expression:?}: {message}")
            }
            Problem::UnknownDeriveFunction { column, function } => write!(
                f,
                "mapping.columns {column:?}: unknown derive function {function:?}; expected id_birth_date, id_sex, id_age, concat, const or copy"
            ),
            Problem::DeriveArguments { column, function, expected } => {
                write!(f, "mapping.columns {column:?}: {function} takes {expected}")
            }
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// Errors of compiling or applying a mapping.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The spec has problems; every one is listed.
    #[error("invalid mapping:\n  - {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Invalid {
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// After renaming, two columns of the batch have the same name.
    #[error("after renaming, column {column:?} appears twice (from source columns {first:?} and {second:?})")]
    DuplicateColumn {
        /// The name.
        column: String,
        /// The first source column.
        first: String,
        /// The second source column.
        second: String,
    },
    /// A derivation reads a column the batch does not have.
    #[error(
        "mapping.columns {column:?}: derive {expression:?} reads column {missing:?}, which the source does not have (columns: {})",
        quoted(available)
    )]
    MissingColumn {
        /// The derived column.
        column: String,
        /// The derive expression.
        expression: String,
        /// The column it reads.
        missing: String,
        /// The batch's columns after renaming.
        available: Vec<String>,
    },
    /// A non-text column could not be read as text.
    #[error("column {column:?} ({data_type}) cannot be read as text: {source}")]
    Cast {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: DataType,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// The mapped batch could not be assembled.
    #[error("assembling the mapped batch: {source}")]
    Arrow {
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
}

/// Result type of this module.
pub type Result<T, E = MappingError> = std::result::Result<T, E>;

/// A compiled [`MappingSpec`], ready to apply to batches.
#[derive(Debug, Clone)]
pub struct Mapping {
    rename: BTreeMap<String, String>,
    columns: Vec<CompiledColumn>,
    drop_unmapped: bool,
    /// The columns kept by `drop_unmapped`, when known (the standard's).
    keep: Option<BTreeSet<String>>,
    /// Reference date of `id_age` and of ID validation.
    as_of: NaiveDate,
    json_null: JsonNull,
}

impl Default for Mapping {
    /// The identity mapping: batches pass through unchanged.
    fn default() -> Self {
        Mapping {
            rename: BTreeMap::new(),
            columns: Vec::new(),
            drop_unmapped: false,
            keep: None,
            as_of: idcard::today_in_china(),
            json_null: JsonNull::Null,
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledColumn {
    name: String,
    derive: Option<Derive>,
    trim: bool,
    default: Option<String>,
    /// Keys trimmed.
    values: HashMap<String, String>,
    normalize: Option<Normalize>,
    code_table: Option<&'static CodeTable>,
    cast: Option<Cast>,
}

impl CompiledColumn {
    /// Whether any per-value text step applies (derive aside).
    fn has_text_steps(&self) -> bool {
        self.trim
            || self.default.is_some()
            || !self.values.is_empty()
            || self.normalize.is_some()
            || self.code_table.is_some()
            || self.cast.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalize {
    IdNumber,
    DivisionCode,
    /// Full-width forms (`１２３`, `ＡＢ`, the ideographic space) to ASCII.
    HalfWidth,
    /// An Excel serial day number to `YYYY-MM-DD`.
    ExcelSerialDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cast {
    Integer,
    Number,
    /// With the user's format, if any.
    Date(Option<String>),
    /// To RFC 3339; a local date-time is China time. With the user's format, if any.
    DateTime(Option<String>),
    /// 是/否, yes/no, y/n, 1/0, true/false in any case → `true`/`false`.
    Boolean,
    /// Any value as text: a JSON number or boolean read as a string.
    String,
}

impl Cast {
    /// Whether a JSON value of type `delivered` is already what this cast produces.
    fn delivers(&self, delivered: Delivered) -> bool {
        match self {
            Cast::Integer | Cast::Number => matches!(delivered, Delivered::Integer | Delivered::Number),
            Cast::Boolean => delivered == Delivered::Boolean,
            Cast::Date(_) | Cast::DateTime(_) | Cast::String => delivered == Delivered::String,
        }
    }
}

impl Mapping {
    /// Checks `spec` and compiles it, reporting every problem at once.
    /// The reference date of `id_age` is today in China; see [`with_as_of`](Self::with_as_of).
    pub fn compile(spec: &MappingSpec) -> Result<Mapping> {
        let mut problems = Vec::new();

        let mut by_target: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (source, target) in &spec.rename {
            if source.trim().is_empty() || target.trim().is_empty() {
                problems.push(Problem::EmptyRename { source: source.clone(), target: target.clone() });
                continue;
            }
            by_target.entry(target.as_str()).or_default().push(source.clone());
        }
        for (target, sources) in by_target {
            if sources.len() > 1 {
                problems.push(Problem::RenameCollision { target: target.to_owned(), sources });
            }
        }

        let registry = CodeTableRegistry::builtin();
        let mut seen = BTreeSet::new();
        let mut columns = Vec::with_capacity(spec.columns.len());
        for (index, entry) in spec.columns.iter().enumerate() {
            let column = entry.name.clone();
            if column.trim().is_empty() {
                problems.push(Problem::EmptyColumnName { index });
            } else if !seen.insert(column.clone()) {
                problems.push(Problem::DuplicateColumn { column: column.clone() });
            }
            let nothing = entry.derive.is_none()
                && !entry.trim
                && entry.default.is_none()
                && entry.values.is_empty()
                && entry.normalize.is_none()
                && entry.code_table.is_none()
                && entry.cast.is_none();
            if nothing {
                problems.push(Problem::NothingToDo { column: column.clone() });
            }
            let code_table = entry.code_table.as_ref().and_then(|table| {
                let found = registry.get(table);
                if found.is_none() {
                    problems.push(Problem::UnknownCodeTable {
                        column: column.clone(),
                        table: table.clone(),
                        available: registry.names().map(str::to_owned).collect(),
                    });
                }
                found
            });
            let normalize = entry.normalize.as_ref().and_then(|value| match value.trim() {
                "id_number" => Some(Normalize::IdNumber),
                "division_code" => Some(Normalize::DivisionCode),
                "half_width" => Some(Normalize::HalfWidth),
                "excel_serial_date" => Some(Normalize::ExcelSerialDate),
                _ => {
                    problems.push(Problem::UnknownNormalize { column: column.clone(), value: value.clone() });
                    None
                }
            });
            if let Some(format) = &entry.date_format {
                if !valid_date_format(format) {
                    problems.push(Problem::BadDateFormat { column: column.clone(), format: format.clone() });
                }
                if !matches!(entry.cast.as_deref().map(str::trim), Some("date" | "datetime")) {
                    problems.push(Problem::DateFormatWithoutDateCast { column: column.clone() });
                }
            }
            let cast = entry.cast.as_ref().and_then(|value| match value.trim() {
                "integer" => Some(Cast::Integer),
                "number" => Some(Cast::Number),
                "date" => Some(Cast::Date(entry.date_format.clone())),
                "datetime" => Some(Cast::DateTime(entry.date_format.clone())),
                "boolean" => Some(Cast::Boolean),
                "string" => Some(Cast::String),
                _ => {
                    problems.push(Problem::UnknownCast { column: column.clone(), value: value.clone() });
                    None
                }
            });
            let mut values: HashMap<String, String> = HashMap::new();
            for (from, to) in &entry.values {
                let key = from.trim().to_owned();
                match values.get(&key) {
                    Some(existing) if existing != to => {
                        problems.push(Problem::AmbiguousValue { column: column.clone(), key: key.clone() });
                    }
                    _ => {
                        values.insert(key, to.clone());
                    }
                }
            }
            let derive = entry.derive.as_ref().and_then(|expression| match parse_derive(&column, expression) {
                Ok(function) => Some(Derive { expression: expression.clone(), function }),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            });
            columns.push(CompiledColumn {
                name: column,
                derive,
                trim: entry.trim,
                default: entry.default.clone(),
                values,
                normalize,
                code_table,
                cast,
            });
        }

        if !problems.is_empty() {
            return Err(MappingError::Invalid { problems });
        }
        Ok(Mapping {
            rename: spec.rename.clone(),
            columns,
            drop_unmapped: spec.drop_unmapped,
            keep: None,
            as_of: idcard::today_in_china(),
            json_null: spec.json_null,
        })
    }

    /// Sets the reference date of `id_age` and of the ID check's "birth date
    /// in the future" rule (default: today in China when compiled).
    pub fn with_as_of(mut self, as_of: NaiveDate) -> Mapping {
        self.as_of = as_of;
        self
    }

    /// Names the target columns (the standard's properties) that
    /// `drop_unmapped` keeps. Without it, `drop_unmapped` keeps the rename
    /// targets and the mapped columns.
    pub fn restrict_to<I, S>(mut self, columns: I) -> Mapping
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keep = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Whether applying the mapping changes nothing.
    pub fn is_identity(&self) -> bool {
        self.rename.iter().all(|(source, target)| source == target)
            && self.columns.is_empty()
            && !self.drop_unmapped
            && self.json_null == JsonNull::Null
    }

    /// Whether the source column `source` feeds one of the `standard`'s
    /// columns: named as one (after renaming), or read by a derivation.
    pub fn uses(&self, source: &str, standard: &BTreeSet<&str>) -> bool {
        let target = self.rename.get(source).map_or(source, String::as_str);
        standard.contains(target)
            || self.columns.iter().any(|c| c.derive.as_ref().is_some_and(|d| d.function.inputs().contains(&target)))
    }

    /// The source columns the mapping names: rename sources, derive inputs
    /// and `[[columns]]` names (a header row carries these).
    pub fn source_names(&self) -> BTreeSet<&str> {
        self.rename
            .keys()
            .map(String::as_str)
            .chain(self.columns.iter().map(|c| c.name.as_str()))
            .chain(self.columns.iter().filter_map(|c| c.derive.as_ref()).flat_map(|d| d.function.inputs()))
            .collect()
    }

    /// The columns the mapping produces or touches: rename targets and
    /// `[[columns]]` names, sorted.
    pub fn target_columns(&self) -> BTreeSet<&str> {
        self.rename.values().map(String::as_str).chain(self.columns.iter().map(|c| c.name.as_str())).collect()
    }

    /// Maps one batch. The output has exactly the input's rows, in order.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        Ok(self.apply_delivered(batch, None)?.batch)
    }

    /// [`apply`](Self::apply) to a batch whose values carry their JSON types
    /// (`delivered`, from a JSON source): the types follow their columns
    /// through renames; a value a step changed, or a `cast` read, becomes
    /// text. Also counts, per column with steps, the values left as
    /// delivered and those the steps normalised.
    pub fn apply_delivered(&self, batch: &RecordBatch, delivered: Option<&DeliveredTypes>) -> Result<Mapped> {
        let rows = batch.num_rows();
        let schema = batch.schema();
        let mut types: Vec<Option<Vec<Delivered>>> = Vec::with_capacity(schema.fields().len() + self.columns.len());
        let mut normalised = Vec::new();

        // 1. Rename.
        let mut fields: Vec<FieldRef> = Vec::with_capacity(schema.fields().len() + self.columns.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
        let mut origin: HashMap<String, String> = HashMap::new();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let name = self.rename.get(field.name()).unwrap_or(field.name());
            if let Some(first) = origin.insert(name.clone(), field.name().clone()) {
                return Err(MappingError::DuplicateColumn {
                    column: name.clone(),
                    first,
                    second: field.name().clone(),
                });
            }
            types.push(delivered.and_then(|d| d.get(field.name())).map(<[_]>::to_vec));
            let field =
                if name == field.name() { field.clone() } else { Arc::new(field.as_ref().clone().with_name(name)) };
            fields.push(field);
            arrays.push(array.clone());
        }

        // JSON nulls the job declared absent are no values at all.
        if self.json_null == JsonNull::Absent {
            for ((field, array), types) in fields.iter().zip(&arrays).zip(types.iter_mut()) {
                let Some(types) = types else { continue };
                let mut nulls = 0;
                for t in types.iter_mut().filter(|t| **t == Delivered::Null) {
                    *t = Delivered::Text;
                    nulls += 1;
                }
                if nulls > 0 {
                    // A column with steps counts its values there; here only the nulls.
                    let stepped = self.columns.iter().any(|c| c.derive.is_none() && c.name == *field.name());
                    let present = if stepped { 0 } else { (array.len() - array.null_count()) as u64 };
                    normalised.push(Normalised {
                        column: field.name().clone(),
                        as_delivered: present,
                        normalised: nulls,
                    });
                }
            }
        }

        // 2. Column steps.
        for column in &self.columns {
            let position = fields.iter().position(|f| f.name() == &column.name);
            let base: Option<ArrayRef> = match &column.derive {
                Some(derive) => Some(self.derive(column, derive, &fields, &arrays, rows)?),
                None => position.map(|i| arrays[i].clone()),
            };
            let base = match base {
                Some(base) => base,
                // Nothing to transform; a default fills a new column.
                None if column.default.is_some() => Arc::new(StringArray::new_null(rows)),
                None => continue,
            };
            // A derived column is made here: its values are text, never delivered.
            let types_in: Option<Vec<Delivered>> = match (&column.derive, position) {
                (None, Some(i)) => types[i].clone(),
                _ => delivered.map(|_| vec![Delivered::Text; rows]),
            };
            let (field, array, types_out) = if column.has_text_steps() {
                let text = as_text(&column.name, &base)?;
                let text = text.as_string::<i32>();
                let mut builder = StringBuilder::with_capacity(rows, text.value_data().len());
                let mut types_out = types_in.clone();
                let mut counts = Normalised { column: column.name.clone(), as_delivered: 0, normalised: 0 };
                for (row, value) in text.iter().enumerate() {
                    let (out, retyped) = self.transform(column, value);
                    let before = types_in.as_ref().map_or(Delivered::Text, |t| t[row]);
                    let changed = out.as_deref() != value;
                    // A cast that reads a value already of its JSON type, unchanged, retypes nothing.
                    let retyped = retyped && !column.cast.as_ref().is_some_and(|cast| cast.delivers(before));
                    let after = if changed || retyped { Delivered::Text } else { before };
                    if let Some(types) = types_out.as_mut() {
                        types[row] = after;
                    }
                    if out.is_some() {
                        if changed || after != before { counts.normalised += 1 } else { counts.as_delivered += 1 }
                    }
                    builder.append_option(out.as_deref());
                }
                if column.derive.is_none() {
                    normalised.push(counts);
                }
                let array: ArrayRef = Arc::new(builder.finish());
                (Arc::new(Field::new(&column.name, DataType::Utf8, true)), array, types_out)
            } else {
                let field = Field::new(&column.name, base.data_type().clone(), true);
                (Arc::new(field), base, types_in)
            };
            match position {
                Some(i) => {
                    fields[i] = field;
                    arrays[i] = array;
                    types[i] = types_out;
                }
                None => {
                    fields.push(field);
                    arrays.push(array);
                    types.push(types_out);
                }
            }
        }

        // 3. Drop what the standard does not have.
        if self.drop_unmapped {
            let targets = self.target_columns();
            let keep = |name: &str| match &self.keep {
                Some(keep) => keep.contains(name),
                None => targets.contains(name),
            };
            let mut kept_fields = Vec::with_capacity(fields.len());
            let mut kept_arrays = Vec::with_capacity(arrays.len());
            let mut kept_types = Vec::with_capacity(types.len());
            for ((field, array), types) in fields.into_iter().zip(arrays).zip(types) {
                if keep(field.name()) {
                    kept_fields.push(field);
                    kept_arrays.push(array);
                    kept_types.push(types);
                }
            }
            fields = kept_fields;
            arrays = kept_arrays;
            types = kept_types;
        }

        let delivered = delivered.map(|_| {
            let mut out = DeliveredTypes::new();
            for (field, types) in fields.iter().zip(types) {
                if let Some(types) = types {
                    out.insert(field.name().clone(), types);
                }
            }
            out
        });
        let schema = Arc::new(Schema::new(fields).with_metadata(schema.metadata().clone()));
        // The explicit row count keeps the rows even when no column is left.
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(schema, arrays, &options)
            .map_err(|source| MappingError::Arrow { source })?;
        Ok(Mapped { batch, delivered, normalised })
    }

    /// The per-value steps after `derive`.
    /// The value after the steps, and whether a `cast` read it (its JSON
    /// type, if it had one, gives way to the text the cast produced).
    fn transform<'a>(&'a self, column: &'a CompiledColumn, value: Option<&'a str>) -> (Option<Cow<'a, str>>, bool) {
        let mut value: Option<Cow<'a, str>> = value.map(Cow::Borrowed);
        if column.trim {
            value = value.map(|v| match v {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
            });
        }
        if let Some(default) = &column.default
            && value.as_deref().is_none_or(|v| v.trim().is_empty())
        {
            value = Some(Cow::Borrowed(default.as_str()));
        }
        if let Some(mapped) = value.as_deref().and_then(|v| column.values.get(v.trim())) {
            value = Some(Cow::Borrowed(mapped.as_str()));
        }
        if let Some(normalize) = column.normalize {
            value = value.map(|v| match normalize {
                Normalize::IdNumber => Cow::Owned(idcard::normalize(&v)),
                Normalize::DivisionCode => Cow::Owned(normalize_division_code(&v)),
                Normalize::HalfWidth => Cow::Owned(v.chars().map(half_width).collect()),
                Normalize::ExcelSerialDate => excel_serial_date(&v).map_or(v, Cow::Owned),
            });
        }
        if let Some(table) = column.code_table
            && let Some(code) = value.as_deref().and_then(|v| table.translate(v))
        {
            value = Some(Cow::Borrowed(code));
        }
        let mut retyped = false;
        if let Some(cast) = &column.cast
            && let Some(cast_value) = value.as_deref().and_then(|v| apply_cast(cast, v))
        {
            value = Some(Cow::Owned(cast_value));
            retyped = true;
        }
        (value.filter(|v| !v.is_empty()), retyped)
    }
}

/// What mapping one batch gave ([`Mapping::apply_delivered`]).
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The batch in the standard's columns.
    pub batch: RecordBatch,
    /// The JSON types of its values, when the source had them.
    pub delivered: Option<DeliveredTypes>,
    /// Per column with steps (not derived), in the order of the steps.
    pub normalised: Vec<Normalised>,
}

/// How many of a column's values its steps left as delivered, and how many they normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// The target column.
    pub column: String,
    /// Non-null values the steps left as they were delivered.
    pub as_delivered: u64,
    /// Values a step changed (or a `cast` read from another JSON type).
    pub normalised: u64,
}

/// The array as `Utf8` (cast from other types).
fn as_text(name: &str, array: &ArrayRef) -> Result<ArrayRef> {
    if array.data_type() == &DataType::Utf8 {
        return Ok(array.clone());
    }
    arrow::compute::cast(array, &DataType::Utf8).map_err(|source| MappingError::Cast {
        column: name.to_owned(),
        data_type: array.data_type().clone(),
        source,
    })
}
