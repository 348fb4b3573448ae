//! The columnar validator.
//!
//! [`Validator::compile`] turns a [`Standard`] into per-column checks that run
//! over Arrow arrays, a column at a time, without building a JSON value per
//! row. Each keyword of the document takes one of three routes, listed in the
//! [`CompileReport`]:
//!
//! - **columnar**: `type`, `required`, `enum`, `const`, `pattern` (when it
//!   translates to a Rust regex the way `jsonschema` translates it),
//!   `minLength`, `maxLength`, `minimum`, `maximum`, `exclusiveMinimum`,
//!   `exclusiveMaximum`, the formats `gb11643`, `division-code`, `date`,
//!   `date-time`, `x-civlink-code-table`, `additionalProperties: false` and
//!   primary-key uniqueness within the batch;
//! - **fallback**: every other assertion keyword. They are gathered into a
//!   residual schema checked by the `jsonschema` crate, row by row as JSON, so
//!   nothing is ever ignored;
//! - **annotation**: keywords that assert nothing (`title`, `x-civlink-mask`, …).
//!
//! [`Validator::validate`] also reads each source column as the standard's
//! Arrow type (see [`coerce`]); unreadable values are violations of their rows.
//! [`Validator::validate_delivered`] does the same for JSON sources, judging
//! each value's delivered JSON type ([`delivered`]) by JSON Schema's rules.
//!
//! | module | what lives there |
//! |---|---|
//! | this one | compiling a standard into per-column plans, the batch entry points, the primary-key check |
//! | `checks` | the columnar checks of one typed column |
//! | [`coerce`] | reading delivered values into the standard's types (the text rules) |
//! | [`delivered`] | the JSON types a JSON source delivered |
//! | `fast` | packed string sets and simple patterns the checks use |
//! | [`json`] | rows as JSON and the `jsonschema` validator (fallback and oracle) |

mod checks;
pub mod coerce;
pub mod delivered;
mod fast;
pub mod json;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, SchemaRef};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Number, Value};

pub use coerce::{is_json_number, parse_boolean, parse_date, parse_date_time, parse_integer, parse_number};
pub use delivered::{Delivered, DeliveredTypes};

use self::checks::{check_column, report_lost_digits};
use self::fast::{FastSet, PackedStrSet, SimplePattern};
use crate::code_table::{CodeTable, CodeTableRegistry};
use crate::division::DivisionTable;
use crate::idcard;
use crate::mask;
use crate::standard::{self, CIVLINK_FORMATS, Property, Standard, ValueKind, pointer_segment};

/// Errors compiling a standard or validating a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The standard document itself is invalid.
    #[error(transparent)]
    Standard(#[from] standard::Error),
    /// The residual schema for fallback keywords could not be built.
    #[error("{pointer}: the jsonschema fallback rejects this schema: {message}")]
    Fallback {
        /// Where in the document.
        pointer: String,
        /// The jsonschema message.
        message: String,
    },
    /// Building the typed batch failed.
    #[error("cannot assemble the typed batch: {message}")]
    Batch {
        /// Arrow's message.
        message: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One broken rule in one row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Violation {
    /// 0-based row index within the batch.
    pub row: usize,
    /// The column (property) concerned; empty for whole-row rules.
    pub column: String,
    /// The JSON Schema or civlink keyword broken.
    pub keyword: String,
    /// What is wrong, for people. Sensitive values are masked.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(row: usize, column: &str, keyword: &str, message: String) -> Violation {
        Violation { row, column: column.to_owned(), keyword: keyword.to_owned(), message }
    }
}

/// The path a keyword takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Checked over Arrow arrays.
    Columnar,
    /// Checked by the `jsonschema` crate on the row as JSON.
    Fallback,
    /// Asserts nothing.
    Annotation,
}

/// One keyword of the document and its route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordRoute {
    /// JSON pointer of the keyword.
    pub pointer: String,
    /// The keyword.
    pub keyword: String,
    /// Its route.
    pub route: Route,
}

/// Which path each keyword of a standard takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompileReport {
    /// Every keyword, in document order.
    pub routes: Vec<KeywordRoute>,
}

impl CompileReport {
    /// Keywords taking `route`.
    pub fn with_route(&self, route: Route) -> impl Iterator<Item = &KeywordRoute> {
        self.routes.iter().filter(move |r| r.route == route)
    }
}

impl fmt::Display for CompileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |route| self.with_route(route).count();
        writeln!(
            f,
            "keywords: {} columnar, {} fallback (jsonschema), {} annotation",
            count(Route::Columnar),
            count(Route::Fallback),
            count(Route::Annotation)
        )?;
        for route in self.routes.iter().filter(|r| r.route != Route::Annotation) {
            let path = match route.route {
                Route::Columnar => "columnar",
                Route::Fallback => "fallback",
                Route::Annotation => "annotation",
            };
            writeln!(f, "  {:<9} {}", path, route.pointer)?;
        }
        Ok(())
    }
}

/// The verdict on one batch.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The batch read as the standard's Arrow schema (unreadable values are NULL).
    pub batch: RecordBatch,
    /// Per row: no violation.
    pub valid: Vec<bool>,
    /// Every violation, ordered by row.
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// Number of valid rows.
    pub fn valid_count(&self) -> usize {
        self.valid.iter().filter(|v| **v).count()
    }

    /// Number of invalid rows.
    pub fn invalid_count(&self) -> usize {
        self.valid.len() - self.valid_count()
    }

    /// The violations of one row.
    pub fn violations_of(&self, row: usize) -> impl Iterator<Item = &Violation> {
        let start = self.violations.partition_point(|v| v.row < row);
        self.violations[start..].iter().take_while(move |v| v.row == row)
    }
}

/// A JSON number from the schema, kept exact: every JSON integer up to
/// `u64::MAX` is an `Int`, because an `f64` cannot tell 2^63 from 2^63 + 1.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Int(i128),
    /// An integer small enough (below 2^53) to be exact as an f64, kept in both forms
    /// so the per-row comparisons need no conversion.
    SmallInt(i64, f64),
    Float(f64),
}

impl Bound {
    fn from_number(n: &Number) -> Bound {
        match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i.unsigned_abs() < (1 << 53) => Bound::SmallInt(i, i as f64),
            (Some(i), _) => Bound::Int(i128::from(i)),
            (None, Some(u)) => Bound::Int(i128::from(u)),
            (None, None) => Bound::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    /// `value` compared to the bound.
    fn cmp_i64(self, value: i64) -> Option<std::cmp::Ordering> {
        match self {
            Bound::SmallInt(b, _) => Some(value.cmp(&b)),
            Bound::Int(b) => Some(i128::from(value).cmp(&b)),
            Bound::Float(b) => compare_i128_f64(i128::from(value), b),
        }
    }

    fn cmp_f64(self, value: f64) -> Option<std::cmp::Ordering> {
        match self {
            // Integers below 2^53 are exact as f64: compare as floats, no rounding question.
            Bound::SmallInt(_, b) => value.partial_cmp(&b),
            Bound::Int(b) => compare_i128_f64(b, value).map(std::cmp::Ordering::reverse),
            Bound::Float(b) => value.partial_cmp(&b),
        }
    }
}

/// 2^63, exact as an f64: every i64 lies in [-2^63, 2^63).
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// Exact comparison of an i64 with an f64.
#[cfg(test)]
fn compare_i64_f64(i: i64, f: f64) -> Option<std::cmp::Ordering> {
    compare_i128_f64(i128::from(i), f)
}

/// Exact comparison of an integer with an f64 (no rounding of either side).
fn compare_i128_f64(i: i128, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    if f.is_nan() {
        return None;
    }
    // 2^127 as f64 is exact; every i128 lies in [-2^127, 2^127).
    const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= TWO_127 {
        return Some(Ordering::Less);
    }
    if f < -TWO_127 {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    // floor is integral and in range, so the cast is exact.
    let fi = floor as i128;
    match i.cmp(&fi) {
        Ordering::Equal if f > floor => Some(Ordering::Less),
        other => Some(other),
    }
}

/// Which side of a bound breaks the rule.
#[derive(Debug, Clone, Copy)]
enum BoundKind {
    Minimum,
    Maximum,
    ExclusiveMinimum,
    ExclusiveMaximum,
}

impl BoundKind {
    fn keyword(self) -> &'static str {
        match self {
            BoundKind::Minimum => "minimum",
            BoundKind::Maximum => "maximum",
            BoundKind::ExclusiveMinimum => "exclusiveMinimum",
            BoundKind::ExclusiveMaximum => "exclusiveMaximum",
        }
    }

    fn allows(self, ordering: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::*;
        match (self, ordering) {
            (_, None) => false,
            (BoundKind::Minimum, Some(o)) => o != Less,
            (BoundKind::Maximum, Some(o)) => o != Greater,
            (BoundKind::ExclusiveMinimum, Some(o)) => o == Greater,
            (BoundKind::ExclusiveMaximum, Some(o)) => o == Less,
        }
    }
}

/// A value set for `enum` / `const`, pre-split by type for fast membership.
#[derive(Debug, Clone, Default)]
struct ValueSet {
    keyword: &'static str,
    strings: PackedStrSet,
    /// The numbers equal to some i64, as that i64.
    integers: FastSet<i64>,
    /// Every number, exact, for float cells.
    numbers: Vec<Bound>,
    booleans: Vec<bool>,
    null: bool,
    shown: String,
}

impl ValueSet {
    fn new(keyword: &'static str, values: &[Value]) -> ValueSet {
        let mut set = ValueSet { keyword, ..ValueSet::default() };
        for value in values {
            match value {
                Value::String(s) => set.strings.insert(s),
                Value::Number(n) => {
                    let number = Bound::from_number(n);
                    let integer = match number {
                        Bound::SmallInt(i, _) => Some(i),
                        Bound::Int(i) => i64::try_from(i).ok(),
                        // An integral float in [-2^63, 2^63) equals exactly one i64 (`1.0` equals `1`).
                        Bound::Float(f) if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) => Some(f as i64),
                        Bound::Float(_) => None,
                    };
                    if let Some(i) = integer {
                        set.integers.insert(i);
                    }
                    set.numbers.push(number);
                }
                Value::Bool(b) => set.booleans.push(*b),
                Value::Null => set.null = true,
                // Arrays and objects never equal a scalar cell.
                Value::Array(_) | Value::Object(_) => {}
            }
        }
        let mut shown = serde_json::to_string(values).unwrap_or_default();
        if shown.chars().count() > 80 {
            shown = shown.chars().take(77).collect::<String>() + "...";
        }
        set.shown = shown;
        set
    }

    fn message(&self) -> String {
        if self.keyword == "const" {
            format!("must equal {}", self.shown.trim_start_matches('[').trim_end_matches(']'))
        } else {
            format!("must be one of {}", self.shown)
        }
    }

    fn contains_f64(&self, v: f64) -> bool {
        // Exact numeric equality is what JSON Schema means: 2^53 + 1 does not equal the float 2^53.
        self.numbers.iter().any(|n| n.cmp_f64(v) == Some(std::cmp::Ordering::Equal))
    }
}

/// One columnar check.
#[derive(Debug)]
enum Check {
    Values(ValueSet),
    Pattern {
        regex: regex::Regex,
        simple: Option<SimplePattern>,
        source: String,
    },
    MinLength(u64),
    MaxLength(u64),
    Bound(BoundKind, Bound, String),
    Gb11643,
    DivisionCode(&'static DivisionTable),
    CodeTable(&'static CodeTable, PackedStrSet),
    /// RFC 3339 dates have four-digit years: 0000..=9999 (bounds in the column's unit).
    TemporalRange {
        min: i64,
        max: i64,
    },
}

/// The checks of one column.
#[derive(Debug)]
struct ColumnPlan {
    property: Property,
    checks: Vec<Check>,
}

/// A standard compiled into columnar checks.
#[derive(Debug)]
pub struct Validator {
    standard: Arc<Standard>,
    schema: SchemaRef,
    /// `schema` with every field nullable: the schema of [`Verdict::batch`].
    typed_schema: SchemaRef,
    columns: Vec<ColumnPlan>,
    fallback: Option<jsonschema::Validator>,
    report: CompileReport,
    today: NaiveDate,
    /// Check primary-key uniqueness within each batch (callers that check over a whole run turn it off).
    batch_key_check: bool,
}

const PROPERTY_ANNOTATIONS: [&str; 8] =
    ["title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly"];
const ROOT_ANNOTATIONS: [&str; 8] =
    ["$schema", "$id", "$comment", "title", "description", "examples", "$defs", "deprecated"];

fn is_annotation(keyword: &str, list: &[&str]) -> bool {
    list.contains(&keyword) || keyword.starts_with("x-civlink-") && keyword != "x-civlink-code-table"
}

impl Validator {
    /// Compile a standard.
    pub fn compile(standard: Standard) -> Result<Validator> {
        let standard = Arc::new(standard);
        let root = standard.document.as_object().cloned().unwrap_or_default();
        let mut report = CompileReport::default();
        let mut residual_root = Map::new();
        let mut residual_properties = Map::new();

        for (keyword, value) in &root {
            let route = match keyword.as_str() {
                "type" | "properties" | "required" => Route::Columnar,
                "additionalProperties" if value.is_boolean() => Route::Columnar,
                k if is_annotation(k, &ROOT_ANNOTATIONS) => Route::Annotation,
                _ => Route::Fallback,
            };
            if route == Route::Fallback {
                residual_root.insert(keyword.clone(), value.clone());
            }
            if keyword == "$defs" || keyword == "$schema" {
                residual_root.insert(keyword.clone(), value.clone());
            }
            report.routes.push(KeywordRoute {
                pointer: format!("/{}", pointer_segment(keyword)),
                keyword: keyword.clone(),
                route,
            });
        }
        if !standard.primary_key.is_empty() {
            // Uniqueness of the primary key is asserted, columnar, within each batch.
            if let Some(route) = report.routes.iter_mut().find(|r| r.keyword == "x-civlink-primary-key") {
                route.route = Route::Columnar;
            }
        }

        let mut columns = Vec::with_capacity(standard.properties.len());
        for property in &standard.properties {
            let mut checks = Vec::new();
            let mut residual = Map::new();
            for (keyword, value) in &property.schema {
                let pointer = format!("{}/{}", property.pointer, pointer_segment(keyword));
                let route = plan_keyword(property, keyword, value, &mut checks);
                if route == Route::Fallback {
                    residual.insert(keyword.clone(), value.clone());
                }
                report.routes.push(KeywordRoute { pointer, keyword: keyword.clone(), route });
            }
            if !residual.is_empty() {
                // Fallback keywords such as `multipleOf` need their `type` to mean the same thing.
                if let Some(t) = property.schema.get("type") {
                    residual.insert("type".into(), t.clone());
                }
                residual_properties.insert(property.name.clone(), Value::Object(residual));
            }
            columns.push(ColumnPlan { property: property.clone(), checks });
        }

        let needs_fallback =
            !residual_properties.is_empty() || residual_root.keys().any(|k| k != "$defs" && k != "$schema");
        let fallback = if needs_fallback {
            // Every column stays declared, so `additionalProperties` and
            // `unevaluatedProperties` judge the same properties as in the document.
            for property in &standard.properties {
                residual_properties.entry(property.name.clone()).or_insert(Value::Bool(true));
            }
            residual_root.insert("properties".into(), Value::Object(residual_properties));
            if contains_ref(&standard.document) {
                embed_document(&standard.document, &mut residual_root);
            }
            let residual = Value::Object(residual_root);
            Some(
                json::json_schema_validator(&residual)
                    .map_err(|message| Error::Fallback { pointer: String::new(), message })?,
            )
        } else {
            None
        };

        let schema = standard.arrow_schema();
        Ok(Validator {
            typed_schema: all_nullable(&schema),
            schema,
            standard,
            columns,
            fallback,
            report,
            today: idcard::today_in_china(),
            batch_key_check: true,
        })
    }

    /// The standard compiled.
    pub fn standard(&self) -> &Standard {
        &self.standard
    }

    /// The Arrow schema of valid data.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Which route each keyword takes.
    pub fn report(&self) -> &CompileReport {
        &self.report
    }

    /// Turn the within-batch primary-key check off: for callers, such as the
    /// ingestion pipeline, that decide uniqueness over a whole run themselves.
    pub fn without_batch_key_check(mut self) -> Validator {
        self.batch_key_check = false;
        self
    }

    /// Whether some keyword needs the row-by-row jsonschema fallback.
    pub fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Validate one batch. Columns are matched by name; missing columns are
    /// absent values; columns of other types are read as the standard's types.
    pub fn validate(&self, batch: &RecordBatch) -> Result<Verdict> {
        self.validate_delivered(batch, None)
    }

    /// [`validate`](Self::validate) a batch from a JSON source: `delivered`
    /// gives the JSON type of the values of its columns (after mapping), and
    /// each is judged by JSON Schema's `type` rules, not read as text.
    pub fn validate_delivered(&self, batch: &RecordBatch, delivered: Option<&DeliveredTypes>) -> Result<Verdict> {
        let rows = batch.num_rows();
        let mut violations = Vec::new();

        if self.standard.closed {
            for (index, field) in batch.schema().fields().iter().enumerate() {
                if self.standard.property(field.name()).is_none() {
                    let column = batch.column(index);
                    for row in (0..rows).filter(|r| column.is_valid(*r)) {
                        violations.push(Violation::new(
                            row,
                            field.name(),
                            "additionalProperties",
                            format!("\"{}\" is not a column of this standard", field.name()),
                        ));
                    }
                }
            }
        }

        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for plan in &self.columns {
            let before = violations.len();
            let types = delivered.and_then(|d| d.get(&plan.property.name)).filter(|t| t.len() == rows);
            let typed = coerce::coerce_column(
                &plan.property,
                batch.column_by_name(&plan.property.name),
                rows,
                types,
                &mut violations,
            );
            // A value that was there but unreadable is reported once, not again as missing.
            let unreadable: HashSet<usize> = violations[before..].iter().map(|v| v.row).collect();
            check_column(plan, typed.as_ref(), &unreadable, self.today, &mut violations);
            if let Some(types) = types.filter(|_| plan.property.kind == ValueKind::String) {
                report_lost_digits(&plan.property, types, &mut violations, before);
            }
            arrays.push(typed);
        }
        let typed = RecordBatch::try_new_with_options(
            Arc::clone(&self.typed_schema),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| Error::Batch { message: e.to_string() })?;

        if self.batch_key_check {
            self.check_primary_key(&typed, &mut violations);
        }

        if let Some(fallback) = &self.fallback {
            for row in 0..rows {
                let instance = json::row_to_json(&self.standard, &typed, row);
                for error in fallback.iter_errors(&instance) {
                    let column = error
                        .instance_path()
                        .as_str()
                        .trim_start_matches('/')
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .replace("~1", "/")
                        .replace("~0", "~");
                    let keyword = error.schema_path().as_str().rsplit('/').next().unwrap_or("").to_owned();
                    let property = self.standard.property(&column);
                    let message = if property.is_some_and(|p| p.sensitivity.masked_by_default()) {
                        format!("violates {keyword}")
                    } else {
                        error.to_string()
                    };
                    violations.push(Violation { row, column, keyword, message });
                }
            }
        }

        violations.sort_by_key(|v| v.row);
        let mut valid = vec![true; rows];
        for v in &violations {
            valid[v.row] = false;
        }
        Ok(Verdict { batch: typed, valid, violations })
    }

    fn check_primary_key(&self, typed: &RecordBatch, violations: &mut Vec<Violation>) {
        let key = &self.standard.primary_key;
        if key.is_empty() {
            return;
        }
        let Some(columns) = key.iter().map(|c| typed.column_by_name(c)).collect::<Option<Vec<_>>>() else { return };
        let rows = typed.num_rows();
        let shown = key.join(", ");
        let mut report = |row: usize, first: usize| {
            violations.push(Violation::new(
                row,
                &key[0],
                "x-civlink-primary-key",
                format!("duplicate primary key ({shown}): same as row {first}"),
            ));
        };
        if let [single] = columns.as_slice()
            && let Some(strings) = single.as_string_opt::<i32>()
        {
            let value = |row: usize| strings.is_valid(row).then(|| strings.value(row));
            fast::find_repeats(rows, value, &mut report);
            return;
        }
        let mut seen: HashMap<Vec<String>, usize> = HashMap::with_capacity(rows);
        for row in 0..rows {
            if columns.iter().any(|c| c.is_null(row)) {
                continue;
            }
            let values: Vec<String> = columns
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, row).unwrap_or_default())
                .collect();
            match seen.get(&values) {
                Some(first) => report(row, *first),
                None => {
                    seen.insert(values, row);
                }
            }
        }
    }
}

/// The typed batch keeps unreadable values as NULL, so every field is
/// nullable there; the standard's own schema says which may be NULL in valid data.
fn all_nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The `$defs` entry holding the whole document inside a residual schema.
const DOCUMENT_DEF: &str = "x-civlink-document";
/// The base URI of that copy, when the document has no `$id` of its own.
const DOCUMENT_ID: &str = "urn:civlink:standard";

/// Keywords whose values are data, not schemas: a `$ref` key in there is no reference.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Whether a schema has a `$ref` anywhere.
fn contains_ref(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "$ref" && v.is_string()) || (!DATA_KEYWORDS.contains(&k.as_str()) && contains_ref(v))),
        Value::Array(items) => items.iter().any(contains_ref),
        _ => false,
    }
}

/// Make the residual's `$ref`s mean what they mean in the document.
///
/// A `$ref` like `#/properties/age` or `#` points into the document, not into
/// the residual (which lacks the columnar keywords and so means less). The
/// residual gets the whole document as an embedded resource under `$defs`,
/// and its own same-document references are pointed into that copy; inside
/// the copy they resolve against the copy itself.
fn embed_document(document: &Value, residual_root: &mut Map<String, Value>) {
    let id = document.get("$id").and_then(Value::as_str).unwrap_or(DOCUMENT_ID).to_owned();
    for (keyword, value) in residual_root.iter_mut() {
        if keyword != "$schema" {
            point_refs_into(&id, value);
        }
    }
    let mut copy = document.clone();
    if let Some(object) = copy.as_object_mut() {
        object.entry("$id").or_insert_with(|| Value::String(id.clone()));
    }
    if let Some(defs) = residual_root.entry("$defs").or_insert_with(|| Value::Object(Map::new())).as_object_mut() {
        defs.insert(DOCUMENT_DEF.into(), copy);
    }
}

/// Rewrite `"$ref": "#…"` to `"$ref": "{id}#…"` throughout a schema.
fn point_refs_into(id: &str, schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(target) if k == "$ref" && target.starts_with('#') => {
                        *target = format!("{id}{target}")
                    }
                    _ if DATA_KEYWORDS.contains(&k.as_str()) => {}
                    _ => point_refs_into(id, v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| point_refs_into(id, item)),
        _ => {}
    }
}

/// Decide the route of one property keyword, adding its columnar check.
fn plan_keyword(property: &Property, keyword: &str, value: &Value, checks: &mut Vec<Check>) -> Route {
    let number = || value.as_number().map(Bound::from_number);
    match keyword {
        "type" => Route::Columnar,
        "enum" => match value.as_array() {
            Some(values) => {
                checks.push(Check::Values(ValueSet::new("enum", values)));
                Route::Columnar
            }
            None => Route::Fallback,
        },
        "const" => {
            checks.push(Check::Values(ValueSet::new("const", std::slice::from_ref(value))));
            Route::Columnar
        }
        "pattern" => {
            let Some(source) = value.as_str() else { return Route::Fallback };
            let translated = jsonschema_regex::to_rust_regex(source).ok();
            match translated.and_then(|t| regex::Regex::new(&t).ok()) {
                Some(regex) => {
                    checks.push(Check::Pattern {
                        regex,
                        simple: SimplePattern::compile(source),
                        source: source.to_owned(),
                    });
                    Route::Columnar
                }
                None => Route::Fallback,
            }
        }
        "minLength" | "maxLength" => match value.as_u64() {
            Some(n) => {
                checks.push(if keyword == "minLength" { Check::MinLength(n) } else { Check::MaxLength(n) });
                Route::Columnar
            }
            None => Route::Fallback,
        },
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => match number() {
            Some(bound) => {
                let kind = match keyword {
                    "minimum" => BoundKind::Minimum,
                    "maximum" => BoundKind::Maximum,
                    "exclusiveMinimum" => BoundKind::ExclusiveMinimum,
                    _ => BoundKind::ExclusiveMaximum,
                };
                checks.push(Check::Bound(kind, bound, value.to_string()));
                Route::Columnar
            }
            None => Route::Fallback,
        },
        "format" => match value.as_str() {
            Some(f) if CIVLINK_FORMATS.contains(&f) => {
                match (f, property.kind) {
                    ("gb11643", ValueKind::String) => checks.push(Check::Gb11643),
                    ("division-code", ValueKind::String) => checks.push(Check::DivisionCode(DivisionTable::builtin())),
                    ("date", ValueKind::Date) => {
                        checks.push(Check::TemporalRange { min: FIRST_RFC3339_DAY, max: LAST_RFC3339_DAY })
                    }
                    ("date-time", ValueKind::DateTime) => checks.push(Check::TemporalRange {
                        min: FIRST_RFC3339_DAY * MICROS_PER_DAY,
                        max: (LAST_RFC3339_DAY + 1) * MICROS_PER_DAY - 1,
                    }),
                    // A format asserts nothing about values of another type.
                    _ => {}
                }
                Route::Columnar
            }
            _ => Route::Fallback,
        },
        "x-civlink-code-table" => {
            match value.as_str().and_then(|name| CodeTableRegistry::builtin().get(name)) {
                Some(table) => checks.push(Check::CodeTable(table, table.codes().collect())),
                None => return Route::Fallback,
            }
            Route::Columnar
        }
        k if is_annotation(k, &PROPERTY_ANNOTATIONS) => Route::Annotation,
        _ => Route::Fallback,
    }
}

/// Days from 1970-01-01 to 0000-01-01, the first day RFC 3339 can write.
const FIRST_RFC3339_DAY: i64 = -719_528;
/// Days from 1970-01-01 to 9999-12-31, the last day RFC 3339 can write.
const LAST_RFC3339_DAY: i64 = 2_932_896;
const MICROS_PER_DAY: i64 = 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use serde_json::json;

    fn standard(extra: Value) -> Standard {
        let mut doc = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-civlink-id": "test.person",
            "x-civlink-version": "1",
            "title": "测试",
            "type": "object",
            "x-civlink-primary-key": ["id_number"],
            "required": ["id_number", "name"],
            "properties": {
                "id_number": {"type": "string", "title": "身份证号", "format": "gb11643", "x-civlink-sensitivity": "sensitive"},
                "name": {"type": "string", "title": "姓名", "minLength": 2, "maxLength": 4},
                "sex": {"type": "string", "title": "性别", "x-civlink-code-table": "sex"},
                "age": {"type": "integer", "title": "年龄", "minimum": 0, "exclusiveMaximum": 150},
                "amount": {"type": "number", "title": "金额", "multipleOf": 0.5},
                "birth_date": {"type": "string", "title": "出生日期", "format": "date"}
            }
        });
        if let (Some(target), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        Standard::from_value(doc).unwrap()
    }

    fn text_batch(columns: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)).collect();
        let arrays: Vec<ArrayRef> =
            columns.iter().map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn report_routes_each_keyword() {
        let validator = Validator::compile(standard(json!({}))).unwrap();
        let report = validator.report();
        let route = |p: &str| report.routes.iter().find(|r| r.pointer == p).map(|r| r.route);
        assert_eq!(route("/properties/amount/multipleOf"), Some(Route::Fallback));
        assert_eq!(route("/properties/name/minLength"), Some(Route::Columnar));
        assert_eq!(route("/properties/name/title"), Some(Route::Annotation));
        assert_eq!(route("/properties/sex/x-civlink-code-table"), Some(Route::Columnar));
        assert_eq!(route("/x-civlink-primary-key"), Some(Route::Columnar));
        assert!(validator.has_fallback());
        assert!(report.to_string().contains("fallback  /properties/amount/multipleOf"));
    }

    #[test]
    fn text_columns_are_read_as_their_types_and_bad_values_are_violations() {
        let validator = Validator::compile(standard(json!({}))).unwrap();
        let batch = text_batch(&[
            ("id_number", vec![Some("11010519491231002X"), Some("110105194912310021"), Some("11010519491231002X")]),
            ("name", vec![Some("张三"), None, Some("李四")]),
            ("sex", vec![Some("1"), Some("男"), None]),
            ("age", vec![Some("30"), Some("abc"), Some("150")]),
            ("amount", vec![Some("10.5"), Some("1.25"), None]),
            ("birth_date", vec![Some("1949-12-31"), Some("2021-02-30"), None]),
        ]);
        let verdict = validator.validate(&batch).unwrap();
        assert_eq!(verdict.valid, vec![true, false, false]);
        let kinds: Vec<(usize, &str, &str)> =
            verdict.violations.iter().map(|v| (v.row, v.column.as_str(), v.keyword.as_str())).collect();
        for expected in [
            (1, "id_number", "format"),
            (1, "name", "required"),
            (1, "sex", "x-civlink-code-table"),
            (1, "age", "type"),
            (1, "amount", "multipleOf"),
            (1, "birth_date", "format"),
            (2, "age", "exclusiveMaximum"),
            (2, "id_number", "x-civlink-primary-key"),
        ] {
            assert!(kinds.contains(&expected), "missing {expected:?} in {kinds:?}");
        }
        assert_eq!(verdict.violations.len(), 8, "{kinds:?}");
        // Sensitive values never appear in clear in messages.
        assert!(verdict.violations.iter().all(|v| !v.message.contains("110105194912310021")));
        assert_eq!(verdict.batch.column_by_name("age").unwrap().as_primitive::<Int64Type>().value(0), 30);
        assert_eq!(verdict.violations_of(2).count(), 2);
    }

    #[test]
    fn typed_columns_pass_through_and_closed_standards_reject_extra_columns() {
        let validator = Validator::compile(standard(json!({"additionalProperties": false}))).unwrap();
        let schema = Schema::new(vec![
            Field::new("id_number", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("age", DataType::Int64, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("nickname", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["11010519491231002X", "630102198001010013"])),
                Arc::new(StringArray::from(vec!["张三", "李四"])),
                Arc::new(Int64Array::from(vec![Some(-1), None])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(f64::NAN)])),
                Arc::new(StringArray::from(vec![None, Some("小李")])),
            ],
        )
        .unwrap();
        let verdict = validator.validate(&batch).unwrap();
        let kinds: Vec<(usize, &str)> = verdict.violations.iter().map(|v| (v.row, v.keyword.as_str())).collect();
        assert!(kinds.contains(&(0, "minimum")), "{kinds:?}");
        assert!(kinds.contains(&(1, "additionalProperties")), "{kinds:?}");
        assert!(kinds.contains(&(1, "type")), "{kinds:?}");
    }

    #[test]
    fn exact_integer_float_comparison() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_i64_f64(3, 2.5), Some(Greater));
        assert_eq!(compare_i64_f64(2, 2.5), Some(Less));
        assert_eq!(compare_i64_f64(i64::MAX, 9.223372036854776e18), Some(Less));
        assert_eq!(compare_i64_f64(i64::MIN, -9.223372036854776e18), Some(Equal));
        assert_eq!(compare_i64_f64(-3, -2.5), Some(Less));
        assert_eq!(compare_i128_f64(i128::from(u64::MAX), 18_446_744_073_709_551_616.0), Some(Less));
        assert_eq!(compare_i128_f64((1 << 63) + 1, TWO_63), Some(Greater));
        assert_eq!(compare_i128_f64(0, -0.0), Some(Equal));
        assert_eq!(compare_i128_f64(i128::MIN, -1e300), Some(Greater));
    }

    #[test]
    fn numbers_in_enum_and_bounds_compare_exactly() {
        // 2^53 + 1 and u64::MAX have no f64 of their own: nearby floats must not match them.
        let set = ValueSet::new("enum", &[json!(9_007_199_254_740_993_i64), json!(u64::MAX), json!(2.0)]);
        assert!(!set.contains_f64(9_007_199_254_740_992.0));
        assert!(!set.contains_f64(18_446_744_073_709_551_616.0));
        assert!(set.contains_f64(2.0));
        assert!(set.integers.contains(&2));
        // -2^63 written as a float equals i64::MIN.
        let set = ValueSet::new("const", &[json!(-TWO_63)]);
        assert!(set.integers.contains(&i64::MIN));
        let bound = Bound::from_number(&Number::from((1u64 << 63) + 1));
        assert!(BoundKind::ExclusiveMaximum.allows(bound.cmp_f64(TWO_63)));
        let bound = Bound::from_number(&Number::from(u64::MAX));
        assert!(!BoundKind::Maximum.allows(bound.cmp_f64(18_446_744_073_709_551_616.0)));
    }
}
