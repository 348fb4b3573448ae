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
use serde::Deserialize;

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
    /// digits) or `division_code` (strip spaces, full-width digits; a 6-digit
    /// GB/T 2260 county code becomes its 12-digit division code).
    #[serde(default)]
    pub normalize: Option<String>,
    /// Translates codes, labels and aliases of this shipped code table
    /// (`sex`: 男 → `1`); values it does not know are kept as they are.
    #[serde(default)]
    pub code_table: Option<String>,
    /// Cleans text into `integer`, `number` (thousands separators, a leading
    /// `¥` and a trailing `元` removed) or `date` (`YYYY-MM-DD`); values that
    /// do not parse are kept as they are.
    #[serde(default)]
    pub cast: Option<String>,
    /// The chrono format of `cast = "date"` input, e.g. `%Y年%m月%d日`.
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
    /// `date_format` without `cast = "date"`.
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
                "mapping.columns {column:?}: unknown normalize {value:?}; expected id_number or division_code"
            ),
            Problem::UnknownCast { column, value } => {
                write!(f, "mapping.columns {column:?}: unknown cast {value:?}; expected integer, number or date")
            }
            Problem::BadDateFormat { column, format } => write!(
                f,
                "mapping.columns {column:?}: date_format {format:?} is not a valid format (use %Y, %m, %d, e.g. \"%Y年%m月%d日\")"
            ),
            Problem::DateFormatWithoutDateCast { column } => {
                write!(f, "mapping.columns {column:?}: date_format needs cast = \"date\"")
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cast {
    Integer,
    Number,
    /// With the user's format, if any.
    Date(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Derive {
    expression: String,
    function: DeriveFn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeriveFn {
    IdBirthDate(String),
    IdSex(String),
    IdAge(String),
    Concat(Vec<Arg>),
    Const(String),
    Copy(String),
}

impl DeriveFn {
    /// The columns it reads.
    fn inputs(&self) -> Vec<&str> {
        match self {
            DeriveFn::IdBirthDate(c) | DeriveFn::IdSex(c) | DeriveFn::IdAge(c) | DeriveFn::Copy(c) => vec![c.as_str()],
            DeriveFn::Concat(args) => args
                .iter()
                .filter_map(|a| match a {
                    Arg::Column(c) => Some(c.as_str()),
                    Arg::Literal(_) => None,
                })
                .collect(),
            DeriveFn::Const(_) => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Column(String),
    Literal(String),
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
                _ => {
                    problems.push(Problem::UnknownNormalize { column: column.clone(), value: value.clone() });
                    None
                }
            });
            if let Some(format) = &entry.date_format {
                if !valid_date_format(format) {
                    problems.push(Problem::BadDateFormat { column: column.clone(), format: format.clone() });
                }
                if entry.cast.as_deref().map(str::trim) != Some("date") {
                    problems.push(Problem::DateFormatWithoutDateCast { column: column.clone() });
                }
            }
            let cast = entry.cast.as_ref().and_then(|value| match value.trim() {
                "integer" => Some(Cast::Integer),
                "number" => Some(Cast::Number),
                "date" => Some(Cast::Date(entry.date_format.clone())),
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
        self.rename.iter().all(|(source, target)| source == target) && self.columns.is_empty() && !self.drop_unmapped
    }

    /// The columns the mapping produces or touches: rename targets and
    /// `[[columns]]` names, sorted.
    pub fn target_columns(&self) -> BTreeSet<&str> {
        self.rename.values().map(String::as_str).chain(self.columns.iter().map(|c| c.name.as_str())).collect()
    }

    /// Maps one batch. The output has exactly the input's rows, in order.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let schema = batch.schema();

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
            let field =
                if name == field.name() { field.clone() } else { Arc::new(field.as_ref().clone().with_name(name)) };
            fields.push(field);
            arrays.push(array.clone());
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
            let (field, array) = if column.has_text_steps() {
                let text = as_text(&column.name, &base)?;
                let text = text.as_string::<i32>();
                let mut builder = StringBuilder::with_capacity(rows, text.value_data().len());
                for value in text.iter() {
                    builder.append_option(self.transform(column, value).as_deref());
                }
                let array: ArrayRef = Arc::new(builder.finish());
                (Arc::new(Field::new(&column.name, DataType::Utf8, true)), array)
            } else {
                let field = Field::new(&column.name, base.data_type().clone(), true);
                (Arc::new(field), base)
            };
            match position {
                Some(i) => {
                    fields[i] = field;
                    arrays[i] = array;
                }
                None => {
                    fields.push(field);
                    arrays.push(array);
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
            for (field, array) in fields.into_iter().zip(arrays) {
                if keep(field.name()) {
                    kept_fields.push(field);
                    kept_arrays.push(array);
                }
            }
            fields = kept_fields;
            arrays = kept_arrays;
        }

        let schema = Arc::new(Schema::new(fields).with_metadata(schema.metadata().clone()));
        // The explicit row count keeps the rows even when no column is left.
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|source| MappingError::Arrow { source })
    }

    /// The per-value steps after `derive`.
    fn transform<'a>(&'a self, column: &'a CompiledColumn, value: Option<&'a str>) -> Option<Cow<'a, str>> {
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
            });
        }
        if let Some(table) = column.code_table
            && let Some(code) = value.as_deref().and_then(|v| table.translate(v))
        {
            value = Some(Cow::Borrowed(code));
        }
        if let Some(cast) = &column.cast
            && let Some(cast_value) = value.as_deref().and_then(|v| apply_cast(cast, v))
        {
            value = Some(Cow::Owned(cast_value));
        }
        value.filter(|v| !v.is_empty())
    }

    /// Computes a derived column.
    fn derive(
        &self,
        column: &CompiledColumn,
        derive: &Derive,
        fields: &[FieldRef],
        arrays: &[ArrayRef],
        rows: usize,
    ) -> Result<ArrayRef> {
        let mut inputs: HashMap<&str, ArrayRef> = HashMap::new();
        for name in derive.function.inputs() {
            let position = fields.iter().position(|f| f.name() == name).ok_or_else(|| MappingError::MissingColumn {
                column: column.name.clone(),
                expression: derive.expression.clone(),
                missing: name.to_owned(),
                available: fields.iter().map(|f| f.name().clone()).collect(),
            })?;
            inputs.insert(name, arrays[position].clone());
        }
        let text = |name: &str| -> Result<ArrayRef> {
            match inputs.get(name) {
                Some(array) => as_text(name, array),
                // Every input was resolved above.
                None => Ok(Arc::new(StringArray::new_null(rows))),
            }
        };
        let per_id = |name: &str, f: &dyn Fn(&CitizenId) -> String| -> Result<ArrayRef> {
            let array = text(name)?;
            let ids = array.as_string::<i32>();
            let out: StringArray =
                ids.iter().map(|v| v.and_then(|v| CitizenId::parse_on(v, self.as_of).ok()).map(|id| f(&id))).collect();
            Ok(Arc::new(out))
        };
        match &derive.function {
            DeriveFn::IdBirthDate(name) => per_id(name, &|id| id.birth_date().format("%Y-%m-%d").to_string()),
            DeriveFn::IdSex(name) => per_id(name, &|id| id.sex().gb2261_code().to_owned()),
            DeriveFn::IdAge(name) => {
                let array = text(name)?;
                let ids = array.as_string::<i32>();
                let out: StringArray = ids
                    .iter()
                    .map(|v| {
                        v.and_then(|v| CitizenId::parse_on(v, self.as_of).ok())
                            .and_then(|id| id.age_on(self.as_of))
                            .map(|age| age.to_string())
                    })
                    .collect();
                Ok(Arc::new(out))
            }
            DeriveFn::Copy(name) => {
                Ok(inputs.get(name.as_str()).cloned().unwrap_or_else(|| Arc::new(StringArray::new_null(rows))))
            }
            DeriveFn::Const(literal) => {
                let value = (!literal.is_empty()).then_some(literal.as_str());
                Ok(Arc::new(StringArray::from(vec![value; rows])))
            }
            DeriveFn::Concat(args) => {
                let parts: Vec<Option<ArrayRef>> = args
                    .iter()
                    .map(|arg| match arg {
                        Arg::Column(name) => text(name).map(Some),
                        Arg::Literal(_) => Ok(None),
                    })
                    .collect::<Result<_>>()?;
                let has_columns = parts.iter().any(Option::is_some);
                let mut builder = StringBuilder::with_capacity(rows, rows * 16);
                let mut value = String::new();
                for row in 0..rows {
                    value.clear();
                    let mut any = false;
                    for (arg, part) in args.iter().zip(&parts) {
                        match (arg, part) {
                            (Arg::Literal(literal), _) => value.push_str(literal),
                            (Arg::Column(_), Some(array)) => {
                                let array = array.as_string::<i32>();
                                if array.is_valid(row) {
                                    value.push_str(array.value(row));
                                    any = true;
                                }
                            }
                            (Arg::Column(_), None) => {}
                        }
                    }
                    // Literals alone (separators) do not make a value out of NULLs.
                    if (any || !has_columns) && !value.is_empty() {
                        builder.append_value(&value);
                    } else {
                        builder.append_null();
                    }
                }
                Ok(Arc::new(builder.finish()))
            }
        }
    }
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

/// Parses a `derive` expression.
fn parse_derive(column: &str, expression: &str) -> std::result::Result<DeriveFn, Problem> {
    let bad = |message: &str| Problem::BadDerive {
        column: column.to_owned(),
        expression: expression.to_owned(),
        message: message.to_owned(),
    };
    let text = expression.trim();
    let open = text.find('(').ok_or_else(|| bad("expected function(arguments), e.g. id_birth_date(id_number)"))?;
    let function = text[..open].trim();
    if function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("expected a function name before '('"));
    }
    let inner = text[open + 1..].strip_suffix(')').ok_or_else(|| bad("expected ')' at the end"))?;
    let args = split_args(inner).map_err(|message| bad(&message))?;
    let arity = |expected: &'static str| Problem::DeriveArguments {
        column: column.to_owned(),
        function: function.to_owned(),
        expected,
    };
    let one_column = |args: &[Arg]| match args {
        [Arg::Column(c)] => Ok(c.clone()),
        _ => Err(arity("exactly one column name")),
    };
    match function {
        "id_birth_date" => one_column(&args).map(DeriveFn::IdBirthDate),
        "id_sex" => one_column(&args).map(DeriveFn::IdSex),
        "id_age" => one_column(&args).map(DeriveFn::IdAge),
        "copy" => one_column(&args).map(DeriveFn::Copy),
        "const" => match args.as_slice() {
            [Arg::Literal(l)] => Ok(DeriveFn::Const(l.clone())),
            _ => Err(arity("exactly one quoted literal")),
        },
        "concat" if args.is_empty() => Err(arity("one or more columns or quoted literals")),
        "concat" => Ok(DeriveFn::Concat(args)),
        other => Err(Problem::UnknownDeriveFunction { column: column.to_owned(), function: other.to_owned() }),
    }
}

/// Splits `a, 'lit, eral', "x"` into arguments.
fn split_args(inner: &str) -> std::result::Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Ok(args);
    }
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek().copied() {
            Some(quote @ ('\'' | '"')) => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == quote => {
                            // A doubled quote is a literal quote.
                            if chars.next_if_eq(&quote).is_some() {
                                literal.push(quote);
                            } else {
                                break;
                            }
                        }
                        Some(c) => literal.push(c),
                        None => return Err(format!("unclosed {quote} quote")),
                    }
                }
                args.push(Arg::Literal(literal));
            }
            _ => {
                let mut name = String::new();
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    if matches!(c, '(' | ')' | '\'' | '"') {
                        return Err(format!("unexpected {c:?} in a column name (quote literals)"));
                    }
                    name.push(c);
                }
                let name = name.trim();
                if name.is_empty() {
                    return Err("empty argument".to_owned());
                }
                args.push(Arg::Column(name.to_owned()));
            }
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Ok(args),
            Some(',') => {}
            Some(c) => return Err(format!("expected ',' between arguments, found {c:?}")),
        }
    }
}

/// Maps full-width ASCII forms (`１`, `．`, `－`) to ASCII.
fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Strips whitespace (anywhere) and maps full-width digits; a 6-digit
/// GB/T 2260 county code becomes the 12-digit division code. Anything else
/// is returned cleaned but otherwise unchanged, for the validator to judge.
fn normalize_division_code(value: &str) -> String {
    let cleaned: String = value.chars().map(half_width).filter(|c| !c.is_whitespace() && *c != '\u{feff}').collect();
    if cleaned.len() == 6
        && cleaned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(code) = DivisionCode::from_county_code(&cleaned)
    {
        return code.as_str().to_owned();
    }
    cleaned
}

/// Whether `format` is a chrono format without errors.
fn valid_date_format(format: &str) -> bool {
    !format.trim().is_empty() && StrftimeItems::new(format).all(|item| !matches!(item, Item::Error))
}

/// Applies a cast; `None` when the value does not parse (it is then kept as is).
fn apply_cast(cast: &Cast, value: &str) -> Option<String> {
    match cast {
        Cast::Integer => cast_integer(&clean_number(value)),
        Cast::Number => cast_number(&clean_number(value)),
        Cast::Date(format) => parse_date(value, format.as_deref()).map(|d| d.format("%Y-%m-%d").to_string()),
    }
}

/// Numeric text without decoration: full-width forms to ASCII, whitespace,
/// thousands separators (`,` and `，`), a leading `¥`/`￥` and a trailing
/// `元` removed.
fn clean_number(value: &str) -> String {
    let text: String = value.chars().map(half_width).collect();
    let text = text.trim();
    let text = text.strip_suffix('元').unwrap_or(text);
    let text = text.trim_start_matches(['¥', '￥']);
    text.chars().filter(|c| !c.is_whitespace() && !matches!(c, ',' | '，')).collect()
}

/// `[+-]digits` or `[+-]digits.000`, as a canonical integer (no `+`, no
/// leading zeros).
fn cast_integer(text: &str) -> Option<String> {
    let (negative, digits) = split_sign(text);
    let digits = match digits.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => digits,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    Some(match (digits.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{digits}"),
        (false, false) => digits.to_owned(),
    })
}

/// A decimal number (optionally with an exponent), kept digit for digit:
/// only a `+` is removed and a bare `.5` / `5.` completed, so no precision is
/// lost to floating point.
fn cast_number(text: &str) -> Option<String> {
    let (negative, rest) = split_sign(text);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 1);
    if negative {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    if let Some(exponent) = exponent {
        let (exp_negative, exp_digits) = split_sign(exponent);
        if exp_digits.is_empty() || !digits(exp_digits) {
            return None;
        }
        out.push('e');
        if exp_negative {
            out.push('-');
        }
        out.push_str(exp_digits);
    }
    Some(out)
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') { (true, rest) } else { (false, text.strip_prefix('+').unwrap_or(text)) }
}

/// Layouts tried by `cast = "date"` without a `date_format`, in order. A
/// time after the date is accepted and dropped.
pub const DATE_LAYOUTS: [&str; 5] = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d"];

/// Parses a date with `format`, or with [`DATE_LAYOUTS`] (and 8 digits as
/// `YYYYMMDD`) when `None`. Full-width digits are accepted; a time part after
/// the date (`2024-03-07 08:00:00`, `2024-03-07T08:00`) is ignored.
pub fn parse_date(value: &str, format: Option<&str>) -> Option<NaiveDate> {
    let text: String = value.chars().map(half_width).collect();
    let text = text.trim();
    if let Some(format) = format {
        return NaiveDate::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(|dt| dt.date()));
    }
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        let number = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok());
        let year = i32::try_from(number(0..4)?).ok()?;
        return NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?);
    }
    // The date is what precedes a time part.
    let date = text.split([' ', 'T']).next().unwrap_or(text);
    DATE_LAYOUTS.iter().find_map(|layout| NaiveDate::parse_from_str(date, layout).ok())
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, Int64Array};

    use super::*;

    fn spec(toml_text: &str) -> MappingSpec {
        toml::from_str(toml_text).expect("spec parses")
    }

    fn compile(toml_text: &str) -> Mapping {
        Mapping::compile(&spec(toml_text))
            .expect("mapping compiles")
            .with_as_of(NaiveDate::from_ymd_opt(2024, 6, 1).expect("date"))
    }

    fn batch(columns: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)).collect();
        let arrays: Vec<ArrayRef> =
            columns.iter().map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
    }

    fn column(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
        let text = as_text(name, array).expect("text");
        text.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn names(batch: &RecordBatch) -> Vec<String> {
        batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn identity_and_rename() {
        let input = batch(&[("姓名", vec![Some("张三"), None]), ("x", vec![Some("1"), Some("2")])]);
        let identity = Mapping::default();
        assert!(identity.is_identity());
        assert_eq!(identity.apply(&input).unwrap(), input);

        let mapping = compile(r#"rename = { "姓名" = "name", "absent" = "nothing" }"#);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(names(&out), ["name", "x"]);
        assert_eq!(column(&out, "name"), s(&[Some("张三"), None]));

        // Renames apply together: a swap works.
        let swap = compile(r#"rename = { "姓名" = "x", "x" = "姓名" }"#);
        let out = swap.apply(&input).unwrap();
        assert_eq!(names(&out), ["x", "姓名"]);
        assert_eq!(column(&out, "x"), s(&[Some("张三"), None]));

        // Renaming onto a column that stays is a collision.
        let clash = compile(r#"rename = { "姓名" = "x" }"#);
        match clash.apply(&input) {
            Err(MappingError::DuplicateColumn { column, first, second }) => {
                assert_eq!((column.as_str(), first.as_str(), second.as_str()), ("x", "姓名", "x"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn code_tables_translate_or_keep() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "sex"
            code_table = "sex"
            "#,
        );
        let input =
            batch(&[("sex", vec![Some("男"), Some(" 女 "), Some("Ｍ"), Some("2"), Some("妖"), None, Some("")])]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(column(&out, "sex"), s(&[Some("1"), Some("2"), Some("1"), Some("2"), Some("妖"), None, None]));
    }

    #[test]
    fn normalize_id_numbers_and_division_codes() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "id"
            normalize = "id_number"
            [[columns]]
            name = "division"
            normalize = "division_code"
            "#,
        );
        let input = batch(&[
            (
                "id",
                vec![
                    Some(" １１０１０１１９９００３０７１２３４ "),
                    Some("11010519491231002x"),
                    Some("110105491231002"),
                    Some("abc"),
                    None,
                ],
            ),
            (
                "division",
                vec![Some("630102"), Some("６３０１ ０２"), Some("630102001001"), Some("000000"), Some("12345")],
            ),
        ]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(
            column(&out, "id"),
            s(&[Some("110101199003071234"), Some("11010519491231002X"), Some("11010519491231002X"), Some("abc"), None])
        );
        assert_eq!(
            column(&out, "division"),
            s(&[Some("630102000000"), Some("630102000000"), Some("630102001001"), Some("000000"), Some("12345")])
        );
    }

    #[test]
    fn trim_default_and_values() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "status"
            trim = true
            default = "正常"
            values = { "正常" = "normal", "死亡" = "deceased", "迁出" = "moved_out" }
            "#,
        );
        let input = batch(&[(
            "status",
            vec![Some(" 死亡 "), None, Some("   "), Some("迁出"), Some("失踪"), Some("\u{3000}正常\u{3000}")],
        )]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(
            column(&out, "status"),
            s(&[Some("deceased"), Some("normal"), Some("normal"), Some("moved_out"), Some("失踪"), Some("normal")])
        );

        // A default fills a column the source lacks; without one, the entry is skipped.
        let input = batch(&[("other", vec![Some("a"), None])]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(names(&out), ["other", "status"]);
        assert_eq!(column(&out, "status"), s(&[Some("normal"), Some("normal")]));
        let no_default = compile("[[columns]]\nname = \"status\"\ntrim = true");
        assert_eq!(no_default.apply(&input).unwrap(), input);
    }

    #[test]
    fn untrimmed_values_stay_untrimmed_when_unmapped() {
        let mapping = compile("[[columns]]\nname = \"a\"\nvalues = { \"x\" = \"y\" }");
        let out = mapping.apply(&batch(&[("a", vec![Some(" x "), Some(" z ")])])).unwrap();
        assert_eq!(column(&out, "a"), s(&[Some("y"), Some(" z ")]));
    }

    #[test]
    fn derived_columns() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "birth_date"
            derive = "id_birth_date(身份证)"
            [[columns]]
            name = "sex"
            derive = "id_sex(身份证)"
            [[columns]]
            name = "age"
            derive = "id_age(身份证)"
            [[columns]]
            name = "address"
            derive = "concat(city, '市', district, \"区\")"
            [[columns]]
            name = "source"
            derive = "const('公安厅')"
            [[columns]]
            name = "raw_id"
            derive = "copy(身份证)"
            "#,
        );
        let input = batch(&[
            ("身份证", vec![Some("110101199003071233"), Some("11010119900307123X"), None, Some("110105491231002")]),
            ("city", vec![Some("西宁"), None, None, Some("北京")]),
            ("district", vec![Some("城东"), Some("城西"), None, None]),
        ]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(out.num_rows(), 4);
        assert_eq!(column(&out, "birth_date"), s(&[Some("1990-03-07"), None, None, Some("1949-12-31")]));
        assert_eq!(column(&out, "sex"), s(&[Some("1"), None, None, Some("2")]));
        assert_eq!(column(&out, "age"), s(&[Some("34"), None, None, Some("74")]));
        assert_eq!(column(&out, "address"), s(&[Some("西宁市城东区"), Some("市城西区"), None, Some("北京市区")]));
        assert_eq!(column(&out, "source"), s(&[Some("公安厅"); 4]));
        assert_eq!(column(&out, "raw_id"), column(&input, "身份证"));

        // A derivation reading a missing column is a configuration error.
        let lacking = batch(&[("city", vec![Some("x")])]);
        match mapping.apply(&lacking) {
            Err(MappingError::MissingColumn { column, missing, .. }) => {
                assert_eq!((column.as_str(), missing.as_str()), ("birth_date", "身份证"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn derive_then_steps() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "sex"
            derive = "copy(性别)"
            code_table = "sex"
            "#,
        );
        let out = mapping.apply(&batch(&[("性别", vec![Some("男"), Some("女")])])).unwrap();
        assert_eq!(names(&out), ["性别", "sex"]);
        assert_eq!(column(&out, "sex"), s(&[Some("1"), Some("2")]));
        assert_eq!(column(&out, "性别"), s(&[Some("男"), Some("女")]));
    }

    #[test]
    fn casts() {
        let mapping = compile(
            r#"
            [[columns]]
            name = "amount"
            cast = "number"
            [[columns]]
            name = "count"
            cast = "integer"
            [[columns]]
            name = "date"
            cast = "date"
            [[columns]]
            name = "cn_date"
            cast = "date"
            date_format = "%Y年%m月%d日"
            "#,
        );
        let input = batch(&[
            (
                "amount",
                vec![
                    Some("1,234.50元"),
                    Some("￥ 12"),
                    Some("-.5"),
                    Some("１２３．４"),
                    Some("1.5e3"),
                    Some("abc"),
                    Some("1.2.3"),
                    None,
                ],
            ),
            (
                "count",
                vec![
                    Some("1,000"),
                    Some("+007"),
                    Some("12.00"),
                    Some("12.5"),
                    Some("-0"),
                    Some("十"),
                    Some("99999999999999999999999"),
                    None,
                ],
            ),
            (
                "date",
                vec![
                    Some("2024/3/7"),
                    Some("2024年03月07日"),
                    Some("20240307"),
                    Some("2024-03-07 08:00:00"),
                    Some("2024.3.7"),
                    Some("2024-02-30"),
                    Some("昨天"),
                    None,
                ],
            ),
            ("cn_date", vec![Some("2024年3月7日"), Some("2024-03-07"), None, None, None, None, None, None]),
        ]);
        let out = mapping.apply(&input).unwrap();
        assert_eq!(
            column(&out, "amount"),
            s(&[
                Some("1234.50"),
                Some("12"),
                Some("-0.5"),
                Some("123.4"),
                Some("1.5e3"),
                Some("abc"),
                Some("1.2.3"),
                None
            ])
        );
        assert_eq!(
            column(&out, "count"),
            s(&[
                Some("1000"),
                Some("7"),
                Some("12"),
                Some("12.5"),
                Some("0"),
                Some("十"),
                Some("99999999999999999999999"),
                None
            ])
        );
        assert_eq!(
            column(&out, "date"),
            s(&[
                Some("2024-03-07"),
                Some("2024-03-07"),
                Some("2024-03-07"),
                Some("2024-03-07"),
                Some("2024-03-07"),
                Some("2024-02-30"),
                Some("昨天"),
                None
            ])
        );
        assert_eq!(
            column(&out, "cn_date"),
            s(&[Some("2024-03-07"), Some("2024-03-07"), None, None, None, None, None, None])
        );
    }

    #[test]
    fn non_text_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("d", DataType::Date32, true),
            Field::new("keep", DataType::Int64, false),
        ]));
        let input = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(630102), None])),
                Arc::new(Date32Array::from(vec![Some(19_789), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let mapping = compile(
            r#"
            rename = { "keep" = "kept" }
            [[columns]]
            name = "n"
            normalize = "division_code"
            [[columns]]
            name = "birth"
            derive = "concat(d)"
            "#,
        );
        let out = mapping.apply(&input).unwrap();
        assert_eq!(out.schema().field_with_name("n").unwrap().data_type(), &DataType::Utf8);
        assert_eq!(column(&out, "n"), s(&[Some("630102000000"), None]));
        assert_eq!(column(&out, "birth"), s(&[Some("2024-03-07"), None]));
        // Untouched columns keep their type and nullability.
        let kept = out.schema().field_with_name("kept").unwrap().clone();
        assert_eq!((kept.data_type(), kept.is_nullable()), (&DataType::Int64, false));
    }

    #[test]
    fn drop_unmapped() {
        let input = batch(&[("姓名", vec![Some("a")]), ("extra", vec![Some("b")]), ("sex", vec![Some("男")])]);
        let mapping = compile(
            r#"
            drop_unmapped = true
            rename = { "姓名" = "name" }
            [[columns]]
            name = "sex"
            code_table = "sex"
            "#,
        );
        assert_eq!(names(&mapping.apply(&input).unwrap()), ["name", "sex"]);
        let restricted = mapping.clone().restrict_to(["name", "extra"]);
        assert_eq!(names(&restricted.apply(&input).unwrap()), ["name", "extra"]);
        // Dropping every column still keeps the rows.
        let none = mapping.restrict_to(Vec::<String>::new());
        let out = none.apply(&input).unwrap();
        assert_eq!((out.num_columns(), out.num_rows()), (0, 1));
    }

    #[test]
    fn every_problem_is_reported() {
        let spec = spec(
            r#"
            rename = { "a" = "x", "b" = "x", "" = "y" }
            [[columns]]
            name = "sex"
            code_table = "gender"
            [[columns]]
            name = "sex"
            trim = true
            [[columns]]
            name = "id"
            normalize = "idcard"
            cast = "float"
            [[columns]]
            name = "d"
            date_format = "%Q"
            [[columns]]
            name = "e"
            derive = "age(id)"
            [[columns]]
            name = "f"
            derive = "id_sex(a, b)"
            [[columns]]
            name = "g"
            derive = "concat(a, 'unclosed)"
            [[columns]]
            name = "h"
            [[columns]]
            name = ""
            trim = true
            [[columns]]
            name = "v"
            values = { "x" = "1", " x " = "2" }
            "#,
        );
        let Err(MappingError::Invalid { problems }) = Mapping::compile(&spec) else {
            panic!("expected problems");
        };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(matches!(&problems[0], Problem::EmptyRename { .. }), "{text:#?}");
        assert!(problems.iter().any(
            |p| matches!(p, Problem::RenameCollision { target, sources } if target == "x" && sources == &["a", "b"])
        ));
        assert!(has("unknown code table \"gender\"") && has("sex, "), "{text:#?}");
        assert!(has("\"sex\" appears twice"));
        assert!(has("unknown normalize \"idcard\""));
        assert!(has("unknown cast \"float\""));
        assert!(has("date_format \"%Q\" is not a valid format"));
        assert!(has("date_format needs cast = \"date\""));
        assert!(has("unknown derive function \"age\""));
        assert!(has("id_sex takes exactly one column name"));
        assert!(has("unclosed ' quote"));
        assert!(has("\"h\": no step given"));
        assert!(has("mapping.columns[8]: name is empty"));
        assert!(has("values has \"x\" twice"));
        assert_eq!(problems.len(), 15, "{text:#?}");
        let all = MappingError::Invalid { problems }.to_string();
        assert!(all.starts_with("invalid mapping:\n  - "), "{all}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<MappingSpec>("[[columns]]\nname = \"a\"\ncodetable = \"sex\"").unwrap_err();
        assert!(err.to_string().contains("codetable"), "{err}");
        assert!(toml::from_str::<MappingSpec>("renames = {}").is_err());
    }

    #[test]
    fn derive_expressions_parse() {
        let p = |e: &str| parse_derive("c", e);
        assert_eq!(p("id_sex( 公民身份号码 )"), Ok(DeriveFn::IdSex("公民身份号码".into())));
        assert_eq!(
            p("concat(a,' - ',\"it\"\"s\", 'O''Neil', b c)"),
            Ok(DeriveFn::Concat(vec![
                Arg::Column("a".into()),
                Arg::Literal(" - ".into()),
                Arg::Literal("it\"s".into()),
                Arg::Literal("O'Neil".into()),
                Arg::Column("b c".into()),
            ]))
        );
        assert_eq!(p("const('')"), Ok(DeriveFn::Const(String::new())));
        for bad in [
            "",
            "id_sex",
            "id_sex(a",
            "(a)",
            "id sex(a)",
            "concat()",
            "concat(a,,b)",
            "concat(a 'x')",
            "const(a)",
            "copy('a')",
            "concat(a(b))",
            "const('a', 'b')",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn rows_never_change_under_any_mapping() {
        let mapping = compile(
            r#"
            drop_unmapped = true
            rename = { "证件" = "id" }
            [[columns]]
            name = "id"
            normalize = "id_number"
            trim = true
            [[columns]]
            name = "birth"
            derive = "id_birth_date(id)"
            cast = "date"
            [[columns]]
            name = "status"
            default = "normal"
            values = { "正常" = "normal" }
            [[columns]]
            name = "amount"
            cast = "number"
            "#,
        );
        let nasty = [
            None,
            Some(""),
            Some(" "),
            Some("\u{0}"),
            Some("𠀀𠀁"),
            Some("\u{FEFF}"),
            Some("１１０１０１１９９００３０７１２３４"),
            Some("e"),
            Some("-"),
            Some("."),
            Some("元"),
            Some("1e"),
            Some("9999-99-99"),
            Some("((("),
        ];
        for size in [0, 1, 7, nasty.len()] {
            let values: Vec<Option<&str>> = nasty.iter().copied().cycle().take(size).collect();
            let input = batch(&[("证件", values.clone()), ("amount", values.clone()), ("status", values.clone())]);
            let out = mapping.apply(&input).unwrap();
            assert_eq!(out.num_rows(), size);
            // Deterministic.
            assert_eq!(mapping.apply(&input).unwrap(), out);
        }
    }

    #[test]
    fn number_and_date_helpers() {
        assert_eq!(cast_number("1."), Some("1".into()));
        assert_eq!(cast_number("+1.5E-3"), Some("1.5e-3".into()));
        assert_eq!(cast_number("1e"), None);
        assert_eq!(cast_number(""), None);
        assert_eq!(cast_number("."), None);
        assert_eq!(cast_integer("000"), Some("0".into()));
        assert_eq!(cast_integer("-"), None);
        assert_eq!(clean_number(" ¥1，234 元"), "1234");
        assert_eq!(parse_date("２０２４－０３－０７", None), NaiveDate::from_ymd_opt(2024, 3, 7));
        assert_eq!(parse_date("2024-03-07T08:00", None), NaiveDate::from_ymd_opt(2024, 3, 7));
        assert_eq!(parse_date("20241307", None), None);
        assert_eq!(parse_date("07/03/2024 10:00", Some("%d/%m/%Y %H:%M")), NaiveDate::from_ymd_opt(2024, 3, 7));
        assert!(valid_date_format("%Y年%m月%d日"));
        assert!(!valid_date_format("%"));
        assert!(!valid_date_format(""));
    }
}
