//! Oracle equivalence: on random standards of the covered subset and random
//! typed batches, the columnar validator judges every row exactly as the
//! `jsonschema` crate judges the row rendered as JSON.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use chrono::NaiveDate;
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Route, Validator, json};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value, json};

use crate::common::{self, CODE_TABLES, any_text, code_value, division_code, id_number};

/// The value kinds of the covered subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type: string`.
    Text,
    /// `type: integer`.
    Integer,
    /// `type: number`.
    Number,
    /// `type: boolean`.
    Boolean,
    /// `type: string, format: date`.
    Date,
    /// `type: string, format: date-time`.
    DateTime,
}

impl Kind {
    fn json_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Date | Kind::DateTime => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "int",
            Kind::Number => "num",
            Kind::Boolean => "bool",
            Kind::Date => "date",
            Kind::DateTime => "dt",
        }
    }
}

/// One generated property.
#[derive(Debug, Clone)]
pub struct PropSpec {
    /// Its kind.
    pub kind: Kind,
    /// `type` is `[t, "null"]`.
    pub nullable: bool,
    /// Listed in `required`.
    pub required: bool,
    /// Assertion keywords besides `type` (and `format: date` for dates).
    pub keywords: Vec<(String, Value)>,
}

/// One generated standard.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its properties, named `c{index}_{kind}`.
    pub props: Vec<PropSpec>,
    /// `additionalProperties: false`.
    pub closed: bool,
    /// Extra root keywords.
    pub root: Vec<(String, Value)>,
}

impl Spec {
    /// The column name of property `i`.
    pub fn name(&self, i: usize) -> String {
        format!("c{i}_{}", self.props[i].kind.tag())
    }

    /// The standard document.
    pub fn document(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (i, p) in self.props.iter().enumerate() {
            let mut schema = Map::new();
            schema.insert("title".into(), json!(format!("字段{i}")));
            schema.insert(
                "type".into(),
                if p.nullable { json!([p.kind.json_type(), "null"]) } else { json!(p.kind.json_type()) },
            );
            match p.kind {
                Kind::Date => schema.insert("format".into(), json!("date")),
                Kind::DateTime => schema.insert("format".into(), json!("date-time")),
                _ => None,
            };
            for (k, v) in &p.keywords {
                schema.insert(k.clone(), v.clone());
            }
            properties.insert(self.name(i), Value::Object(schema));
            if p.required {
                required.push(json!(self.name(i)));
            }
        }
        let mut doc = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-civlink-id": "test.oracle",
            "x-civlink-version": "1.0.0",
            "title": "随机标准",
            "type": "object",
            "required": required,
            "properties": properties,
        });
        if let Some(root) = doc.as_object_mut() {
            if self.closed {
                root.insert("additionalProperties".into(), json!(false));
            }
            for (k, v) in &self.root {
                root.insert(k.clone(), v.clone());
            }
        }
        doc
    }
}

/// Realistic ECMA-262 patterns, some with `\d`/`\w` whose ASCII-only meaning differs from Rust's.
const PATTERNS: &[&str] = &[
    "^[0-9]{6}$",
    "^1[3-9][0-9]{9}$",
    "张",
    "^[\\u4e00-\\u9fa5]{2,4}$",
    "a|b",
    "^\\d+$",
    "\\w",
    "^$",
    "^[A-Z]{2}\\d{4}$",
    "^\\S+$",
    "\\s",
    "^.{2}$",
    "^(normal|suspended)$",
    "^[^0-9]*$",
    "^\\d{17}[\\dX]$",
    "^6301",
    "^(?!0)\\d+$",
    // Shapes the validator matches without a regex engine.
    "^[0-9]{9,12}$",
    "^A[0-9]+$",
    "^[a-z_]*$",
    "^ab?c$",
    "^[0-9]{2,}X$",
    "^[0-9]+-?[0-9]{2}$",
    "^a?b?a$",
    "^[1-9][0-9]*$",
    "^-?[0-9]+$",
    "^[0-9]{0,3}$",
    "^[A-Za-z]{2}-[0-9]{1,2}$",
];

/// Random patterns of the simple shape (`^`, literal ASCII and classes with
/// counts, `$`) that the validator matches without a regex engine.
fn simple_pattern() -> impl Strategy<Value = String> {
    let atom = (
        select(vec!["a", "b", "1", "-", "X", "_", "[0-9]", "[a-z]", "[1-9]", "[0-9X]", "[ab]", "[A-Za-z]", "[a-b0-1]"]),
        select(vec!["", "", "?", "+", "*", "{2}", "{1,3}", "{2,}", "{0,2}"]),
    )
        .prop_map(|(atom, count)| format!("{atom}{count}"));
    vec(atom, 0..5).prop_map(|atoms| format!("^{}$", atoms.concat()))
}

/// Strings matching a pattern of the shape [`simple_pattern`] writes (each
/// atom repeated a count in its range, biased to the low end), sometimes with
/// a character dropped or added; `None` for any other pattern.
fn pattern_witness(pattern: &str) -> Option<BoxedStrategy<String>> {
    let body = pattern.strip_prefix('^')?.strip_suffix('$')?;
    let chars: Vec<char> = body.chars().collect();
    let mut atoms: Vec<(Vec<char>, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let mut set = Vec::new();
        if chars[i] == '[' {
            let end = i + chars[i..].iter().position(|c| *c == ']')?;
            let class = &chars[i + 1..end];
            let mut j = 0;
            while j < class.len() {
                if j + 2 < class.len() && class[j + 1] == '-' {
                    set.extend(class[j]..=class[j + 2]);
                    j += 3;
                } else {
                    set.push(class[j]);
                    j += 1;
                }
            }
            i = end + 1;
        } else if chars[i].is_ascii_alphanumeric() || chars[i] == '-' || chars[i] == '_' {
            set.push(chars[i]);
            i += 1;
        } else {
            return None;
        }
        let (min, max) = match chars.get(i) {
            Some('?') => (0, 1),
            Some('+') => (1, 4),
            Some('*') => (0, 4),
            Some('{') => {
                let end = i + chars[i..].iter().position(|c| *c == '}')?;
                let inside: String = chars[i + 1..end].iter().collect();
                let counts = match inside.split_once(',') {
                    None => (inside.parse().ok()?, inside.parse().ok()?),
                    Some((a, "")) => (a.parse().ok()?, a.parse::<usize>().ok()? + 3),
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                };
                i = end;
                counts
            }
            _ => {
                i -= 1;
                (1, 1)
            }
        };
        i += 1;
        atoms.push((set, min, max));
    }
    let parts: Vec<BoxedStrategy<String>> = atoms
        .into_iter()
        .map(|(set, min, max)| {
            (min..=max).prop_flat_map(move |n| vec(select(set.clone()), n)).prop_map(String::from_iter).boxed()
        })
        .collect();
    let exact = parts.prop_map(|parts| parts.concat());
    Some(
        prop_oneof![
            4 => exact.clone(),
            1 => (exact.clone(), any::<prop::sample::Index>())
                .prop_map(|(s, at)| s.chars().enumerate().filter(|(i, _)| s.is_empty() || *i != at.index(s.chars().count())).map(|(_, c)| c).collect()),
            1 => (exact, select(vec!['1', 'a', '-', 'X', '张'])).prop_map(|(s, c)| format!("{s}{c}")),
        ]
        .boxed(),
    )
}

/// Patterns that make sense for RFC 3339 date-time text.
const DATE_TIME_PATTERNS: &[&str] = &["Z$", "T00:", "^19", "\\.000000Z$", "^\\d{4}-", ":59"];

/// Microseconds from 1970 of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59.999999Z.
const MICROS_1_TO_9999: (i64, i64) = (-62_135_596_800_000_000, 253_402_300_799_999_999);

/// RFC 3339 text of an instant in years 1..9999, as the validator renders it.
fn date_time_text() -> impl Strategy<Value = String> {
    prop_oneof![MICROS_1_TO_9999.0..=MICROS_1_TO_9999.1, (0i64..2_000_000_000).prop_map(|s| s * 1_000_000),]
        .prop_map(json::timestamp_to_string)
}

/// Patterns that make sense for `YYYY-MM-DD` text.
const DATE_PATTERNS: &[&str] = &["^19", "^20[0-9]{2}-", "-01$", "^\\d{4}-\\d{2}-\\d{2}$", "2", "^0"];

const SIXTY_THREE: f64 = 9_223_372_036_854_775_808.0;

/// Numbers as written in schemas: small and huge integers, integral floats
/// (`1.0`), fractions, and values at the edges of i64, u64 and f64 precision.
fn number_literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-5i64..=5).prop_map(Value::from),
        2 => select(vec![i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1, 9_007_199_254_740_993, 1_000_000, -100])
            .prop_map(Value::from),
        1 => select(vec![u64::MAX, 1u64 << 63, (1u64 << 63) + 1]).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        3 => select(vec![
            2.5, -0.5, 0.1, 1.0, -1.0, 0.0, 3.0, 1e300, -1e300, 9.2e18, 9.223_372_036_854_775e18, SIXTY_THREE,
            -SIXTY_THREE, 18_446_744_073_709_551_616.0, 0.1 + 0.2, 9_007_199_254_740_992.0, 1e-300, 99.99,
        ])
        .prop_map(float),
        1 => (-1000.0f64..1000.0).prop_map(float),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(float),
    ]
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

/// A string literal for `enum`/`const` of a text column.
fn text_literal() -> impl Strategy<Value = Value> {
    prop_oneof![8 => any_text().prop_map(Value::from), 1 => Just(json!(1)), 1 => Just(Value::Null)]
}

/// `YYYY-MM-DD` of a day in years 1..9999.
fn date_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1i32..=9999, 1u32..=12, 1u32..=31)
            .prop_filter_map("a real date", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
            .prop_map(|d| d.format("%Y-%m-%d").to_string()),
        (1900i32..=2030, 1u32..=12, 1u32..=28)
            .prop_filter_map("a real date", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
            .prop_map(|d| d.format("%Y-%m-%d").to_string()),
    ]
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    key: &'static str,
    p: f64,
    s: impl Strategy<Value = T> + 'static,
    to_json: fn(T) -> Value,
) -> BoxedStrategy<Option<(String, Value)>> {
    proptest::option::weighted(p, s).prop_map(move |o| o.map(|v| (key.to_owned(), to_json(v)))).boxed()
}

fn keywords_of(kind: Kind) -> BoxedStrategy<Vec<(String, Value)>> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = match kind {
        Kind::Text => vec![
            maybe("enum", 0.2, vec(text_literal(), 1..6), Value::Array),
            maybe("const", 0.05, text_literal(), |v| v),
            maybe(
                "pattern",
                0.25,
                prop_oneof![select(PATTERNS).prop_map(str::to_owned), simple_pattern()],
                Value::from,
            ),
            maybe("minLength", 0.2, 0u64..6, Value::from),
            maybe("maxLength", 0.2, 0u64..24, Value::from),
            maybe("format", 0.2, select(vec!["gb11643", "division-code"]), Value::from),
            maybe("x-civlink-code-table", 0.2, select(CODE_TABLES.to_vec()), Value::from),
        ],
        Kind::Integer | Kind::Number => vec![
            maybe("minimum", 0.25, number_literal(), |v| v),
            maybe("maximum", 0.25, number_literal(), |v| v),
            maybe("exclusiveMinimum", 0.2, number_literal(), |v| v),
            maybe("exclusiveMaximum", 0.2, number_literal(), |v| v),
            maybe("enum", 0.2, vec(prop_oneof![9 => number_literal(), 1 => Just(Value::Null)], 1..6), Value::Array),
            maybe("const", 0.1, number_literal(), |v| v),
        ],
        Kind::Boolean => vec![
            maybe(
                "enum",
                0.4,
                vec(select(vec![json!(true), json!(false), Value::Null, json!(1), json!(0)]), 1..4),
                Value::Array,
            ),
            maybe("const", 0.2, any::<bool>(), Value::from),
        ],
        Kind::Date => vec![
            maybe(
                "enum",
                0.2,
                vec(prop_oneof![6 => date_text().prop_map(Value::from), 1 => Just(Value::Null)], 1..5),
                Value::Array,
            ),
            maybe("const", 0.05, date_text(), Value::from),
            maybe("pattern", 0.25, select(DATE_PATTERNS), Value::from),
            maybe("minLength", 0.1, 8u64..12, Value::from),
            maybe("maxLength", 0.1, 8u64..12, Value::from),
        ],
        Kind::DateTime => vec![
            maybe(
                "enum",
                0.2,
                vec(prop_oneof![6 => date_time_text().prop_map(Value::from), 1 => Just(Value::Null)], 1..5),
                Value::Array,
            ),
            maybe("const", 0.05, date_time_text(), Value::from),
            maybe("pattern", 0.25, select(DATE_TIME_PATTERNS), Value::from),
            maybe("minLength", 0.1, 26u64..29, Value::from),
            maybe("maxLength", 0.1, 26u64..29, Value::from),
        ],
    };
    parts.prop_map(|kws| kws.into_iter().flatten().collect()).boxed()
}

fn prop_spec() -> impl Strategy<Value = PropSpec> {
    select(vec![Kind::Text, Kind::Text, Kind::Integer, Kind::Number, Kind::Boolean, Kind::Date, Kind::DateTime])
        .prop_flat_map(|kind| {
            (keywords_of(kind), proptest::bool::weighted(0.25), any::<bool>())
                .prop_map(move |(keywords, nullable, required)| PropSpec { kind, nullable, required, keywords })
        })
}

/// Random standards of the covered subset.
pub fn spec() -> impl Strategy<Value = Spec> {
    (vec(prop_spec(), 1..=6), proptest::bool::weighted(0.2)).prop_map(|(props, closed)| Spec {
        props,
        closed,
        root: Vec::new(),
    })
}

/// One generated column.
#[derive(Debug, Clone)]
pub enum Column {
    /// Utf8.
    Text(Vec<Option<String>>),
    /// Int64.
    Integer(Vec<Option<i64>>),
    /// Float64.
    Number(Vec<Option<f64>>),
    /// Boolean.
    Boolean(Vec<Option<bool>>),
    /// Date32.
    Date(Vec<Option<i32>>),
    /// Timestamp(µs, UTC).
    DateTime(Vec<Option<i64>>),
}

impl Column {
    /// The Arrow array.
    pub fn array(&self) -> ArrayRef {
        match self {
            Column::Text(v) => Arc::new(StringArray::from(v.clone())),
            Column::Integer(v) => Arc::new(Int64Array::from(v.clone())),
            Column::Number(v) => Arc::new(Float64Array::from(v.clone())),
            Column::Boolean(v) => Arc::new(BooleanArray::from(v.clone())),
            Column::Date(v) => Arc::new(Date32Array::from(v.clone())),
            Column::DateTime(v) => Arc::new(TimestampMicrosecondArray::from(v.clone()).with_timezone("UTC")),
        }
    }
}

/// The numbers a property's keywords mention (bounds, enum, const).
fn numbers_in(p: &PropSpec) -> Vec<Number> {
    let mut out = Vec::new();
    for (_, v) in &p.keywords {
        match v {
            Value::Number(n) => out.push(n.clone()),
            Value::Array(items) => out.extend(items.iter().filter_map(|i| i.as_number().cloned())),
            _ => {}
        }
    }
    out
}

/// The strings a property's keywords mention (enum, const).
fn strings_in(p: &PropSpec) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &p.keywords {
        match v {
            Value::String(s) if k == "enum" || k == "const" => out.push(s.clone()),
            Value::Array(items) => out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out
}

/// Integers at and next to each number the keywords mention.
fn integers_near(p: &PropSpec) -> Vec<i64> {
    let mut out = Vec::new();
    for n in numbers_in(p) {
        if let Some(i) = n.as_i64() {
            out.extend([i.checked_sub(1), Some(i), i.checked_add(1)].into_iter().flatten());
        } else if n.as_u64().is_some() {
            out.push(i64::MAX);
        } else if let Some(f) = n.as_f64() {
            for g in [f.floor() - 1.0, f.floor(), f.ceil(), f.ceil() + 1.0] {
                if (-SIXTY_THREE..SIXTY_THREE).contains(&g) {
                    // In range and integral, so exact.
                    out.push(g as i64);
                }
            }
        }
    }
    out
}

/// Floats at and next to each number the keywords mention.
fn floats_near(p: &PropSpec) -> Vec<f64> {
    let mut out = Vec::new();
    for n in numbers_in(p) {
        if let Some(f) = n.as_f64() {
            out.extend([f.next_down(), f, f.next_up()].into_iter().filter(|f| f.is_finite()));
        }
        if let Some(i) = n.as_i64() {
            out.extend([i.saturating_sub(i.signum()) as f64, i.saturating_add(i.signum()) as f64]);
        }
    }
    out
}

fn or_pool<T: Clone + std::fmt::Debug + 'static>(pool: Vec<T>, fallback: BoxedStrategy<T>) -> BoxedStrategy<T> {
    if pool.is_empty() { fallback } else { select(pool).boxed() }
}

/// Days since 1970-01-01 of `date`.
fn days_of(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a real date");
    (date - epoch).num_days() as i32
}

/// Days since 1970-01-01 of `y-m-d`.
fn days(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).map(days_of).unwrap_or(0)
}

/// Values for one cell of property `p`, biased towards its keywords' edges.
fn cell(p: &PropSpec) -> BoxedStrategy<CellValue> {
    match p.kind {
        Kind::Text => {
            let mentioned = strings_in(p);
            let has = |k: &str, v: &str| p.keywords.iter().any(|(kk, vv)| kk == k && vv.as_str() == Some(v));
            let special: BoxedStrategy<String> = if has("format", "gb11643") {
                id_number().boxed()
            } else if has("format", "division-code") {
                division_code().boxed()
            } else if p.keywords.iter().any(|(k, _)| k == "x-civlink-code-table") {
                code_value().boxed()
            } else {
                any_text().boxed()
            };
            // Strings that match the pattern (when it is of the simple shape), or nearly do.
            let witness = p
                .keywords
                .iter()
                .find(|(k, _)| k == "pattern")
                .and_then(|(_, v)| v.as_str())
                .and_then(pattern_witness)
                .unwrap_or_else(|| any_text().boxed());
            prop_oneof![
                3 => special,
                2 => any_text(),
                2 => or_pool(mentioned, any_text().boxed()),
                3 => witness,
            ]
            .prop_map(CellValue::Text)
            .boxed()
        }
        Kind::Integer => prop_oneof![
            2 => any::<i64>(),
            3 => -10i64..10,
            2 => select(vec![i64::MIN, i64::MAX, 0, 1, -1, i64::MIN + 1, i64::MAX - 1]),
            4 => or_pool(integers_near(p), (-3i64..3).boxed()),
        ]
        .prop_map(CellValue::Integer)
        .boxed(),
        Kind::Number => prop_oneof![
            2 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
            3 => (-10i32..10).prop_map(f64::from),
            2 => -10.0f64..10.0,
            2 => select(vec![
                1e300, -1e300, -0.0, 0.0, 0.1 + 0.2, 0.3, f64::MIN_POSITIVE, f64::MAX, f64::MIN, 5e-324,
                9_007_199_254_740_992.0, 9_007_199_254_740_994.0, SIXTY_THREE, -SIXTY_THREE,
                18_446_744_073_709_551_616.0, 1.0, -1.0,
            ]),
            4 => or_pool(floats_near(p), (-3.0f64..3.0).boxed()),
        ]
        .prop_map(CellValue::Number)
        .boxed(),
        Kind::Boolean => any::<bool>().prop_map(CellValue::Boolean).boxed(),
        Kind::Date => {
            let mentioned: Vec<i32> = strings_in(p)
                .iter()
                .filter_map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .map(days_of)
                .collect();
            prop_oneof![
                4 => days(1, 1, 1)..=days(9999, 12, 31),
                3 => days(1900, 1, 1)..days(2030, 1, 1),
                2 => or_pool(mentioned, (0i32..100).boxed()),
                1 => select(vec![days(1, 1, 1), days(9999, 12, 31), days(2000, 2, 29), days(1900, 3, 1), 0, -1]),
                1 => select(vec![days(0, 1, 1), days(0, 12, 31), days(10000, 1, 1), days(-1, 12, 31), i32::MIN, i32::MAX]),
            ]
            .prop_map(CellValue::Date)
            .boxed()
        }
        Kind::DateTime => {
            let mentioned: Vec<i64> = strings_in(p)
                .iter()
                .filter_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_micros())
                .collect();
            prop_oneof![
                4 => MICROS_1_TO_9999.0..=MICROS_1_TO_9999.1,
                3 => (-2_000_000_000i64..2_000_000_000).prop_map(|s| s * 1_000_000),
                2 => or_pool(mentioned, (0i64..100).boxed()),
                1 => select(vec![MICROS_1_TO_9999.0, MICROS_1_TO_9999.1, 0, -1, 1]),
                1 => select(vec![
                    MICROS_1_TO_9999.0 - 1,
                    MICROS_1_TO_9999.1 + 1,
                    i64::from(days(0, 1, 1)) * 86_400_000_000,
                    i64::from(days(0, 1, 1)) * 86_400_000_000 - 1,
                    i64::MIN,
                    i64::MAX,
                ]),
                1 => any::<i64>(),
            ]
            .prop_map(CellValue::DateTime)
            .boxed()
        }
    }
}

/// One non-null cell.
#[derive(Debug, Clone)]
pub enum CellValue {
    /// Text.
    Text(String),
    /// Int64.
    Integer(i64),
    /// Float64.
    Number(f64),
    /// Boolean.
    Boolean(bool),
    /// Date32 days.
    Date(i32),
    /// UTC microseconds.
    DateTime(i64),
}

/// A column of `rows` cells of property `p`, with NULLs.
pub fn column(p: &PropSpec, rows: usize) -> BoxedStrategy<Column> {
    let kind = p.kind;
    vec(proptest::option::weighted(0.85, cell(p)), rows)
        .prop_map(move |cells| match kind {
            Kind::Text => Column::Text(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::Text(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
            Kind::Integer => Column::Integer(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::Integer(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
            Kind::Number => Column::Number(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::Number(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
            Kind::Boolean => Column::Boolean(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::Boolean(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
            Kind::Date => Column::Date(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::Date(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
            Kind::DateTime => Column::DateTime(
                cells
                    .into_iter()
                    .map(|c| c.and_then(|c| if let CellValue::DateTime(v) = c { Some(v) } else { None }))
                    .collect(),
            ),
        })
        .boxed()
}

/// A standard and a typed batch of 0-40 rows for it.
pub fn spec_and_columns(spec: impl Strategy<Value = Spec>) -> impl Strategy<Value = (Spec, Vec<Column>)> {
    (spec, 0usize..=40).prop_flat_map(|(spec, rows)| {
        let columns: Vec<BoxedStrategy<Column>> = spec.props.iter().map(|p| column(p, rows)).collect();
        (Just(spec), columns)
    })
}

/// The typed batch of `columns` for `standard`.
pub fn batch(standard: &Standard, columns: &[Column]) -> RecordBatch {
    let arrays: Vec<ArrayRef> = columns.iter().map(Column::array).collect();
    RecordBatch::try_new(common::nullable_schema(standard), arrays).expect("columns follow the standard's schema")
}

/// Check equivalence on one case; returns the explanation of every disagreement.
fn check_equivalence(spec: &Spec, columns: &[Column]) -> Result<(Standard, Validator), TestCaseError> {
    let doc = spec.document();
    let standard = Standard::from_value(doc.clone())
        .map_err(|e| TestCaseError::fail(format!("generated an invalid standard: {e}\n{}", common::compact(&doc))))?;
    let validator = Validator::compile(standard.clone())
        .map_err(|e| TestCaseError::fail(format!("compile failed: {e}\n{}", common::compact(&doc))))?;
    let oracle = json::json_schema_validator(&doc)
        .map_err(|e| TestCaseError::fail(format!("oracle rejects the schema: {e}\n{}", common::compact(&doc))))?;
    let batch = batch(&standard, columns);
    let verdict = validator.validate(&batch).map_err(|e| TestCaseError::fail(format!("validate failed: {e}")))?;
    prop_assert_eq!(verdict.valid.len(), batch.num_rows());
    let disagreements = common::disagreements(&standard, &oracle, &batch, &verdict);
    prop_assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));
    if spec.root.is_empty() {
        // Without root keywords every rule belongs to one column: the columns
        // blamed must be exactly those jsonschema rejects on their own.
        let blamed = column_disagreements(spec, &standard, &batch, &verdict)?;
        prop_assert!(blamed.is_empty(), "{}", blamed.join("\n\n"));
    }
    Ok((standard, validator))
}

/// Rows where the columnar validator blames a different set of columns than
/// jsonschema rejects, each column judged alone: the row reduced to that one
/// property, against the document with only that property required.
fn column_disagreements(
    spec: &Spec,
    standard: &Standard,
    batch: &RecordBatch,
    verdict: &civlink_standards::validate::Verdict,
) -> Result<Vec<String>, TestCaseError> {
    let mut oracles = Vec::with_capacity(spec.props.len());
    for i in 0..spec.props.len() {
        let name = spec.name(i);
        let mut single = spec.document();
        single["required"] = if spec.props[i].required { json!([name]) } else { json!([]) };
        let oracle = json::json_schema_validator(&single).map_err(TestCaseError::fail)?;
        oracles.push((name, oracle));
    }
    let mut out = Vec::new();
    for row in 0..batch.num_rows() {
        let instance = json::row_to_json(standard, batch, row);
        for (name, oracle) in &oracles {
            let mut alone = json!({});
            if let Some(value) = instance.get(name) {
                alone[name] = value.clone();
            }
            let columnar = verdict.violations_of(row).any(|v| &v.column == name);
            let jsonschema = !oracle.is_valid(&alone);
            if columnar != jsonschema {
                let violations: Vec<String> =
                    verdict.violations_of(row).map(|v| format!("{} {}: {}", v.column, v.keyword, v.message)).collect();
                out.push(format!(
                    "row {row}, column {name}: columnar blames it={columnar}, jsonschema rejects it={jsonschema}\n\
                     schema: {}\nrow JSON: {}\ncolumnar violations: {violations:#?}",
                    common::compact(&standard.document),
                    common::compact(&alone),
                ));
            }
        }
    }
    Ok(out)
}

/// What a property's `$ref` points at.
#[derive(Debug, Clone)]
enum RefTarget {
    /// `#`: the whole record schema.
    Root,
    /// `#/properties/{name}` of the property at this index.
    Property(usize),
    /// `#/$defs/short`.
    Definition,
}

/// Root keywords that only jsonschema checks, and that see every property of the row.
fn root_fallback() -> impl Strategy<Value = Vec<(String, Value)>> {
    vec(
        prop_oneof![
            (0u64..=7).prop_map(|m| ("minProperties".to_owned(), json!(m))),
            Just(("unevaluatedProperties".to_owned(), json!(false))),
            Just(("additionalProperties".to_owned(), json!({"type": "integer"}))),
            Just(("not".to_owned(), json!({"required": ["c0_text"]}))),
            Just(("allOf".to_owned(), json!([{"properties": {"c1_int": {"maximum": 3}}}]))),
        ],
        0..3,
    )
}

/// Fallback keywords added to a generated standard, with the pointer each lands at.
fn with_fallback_keywords() -> impl Strategy<Value = (Spec, Vec<String>)> {
    let extras = (
        vec(
            (
                proptest::option::weighted(
                    0.5,
                    select(vec![json!(2), json!(3), json!(0.5), json!(0.1), json!(1e-3), json!(7)]),
                ),
                proptest::option::weighted(
                    0.3,
                    prop_oneof![text_literal(), number_literal(), any::<bool>().prop_map(Value::from)],
                ),
                proptest::option::weighted(0.1, 1u64..4),
                proptest::option::weighted(
                    0.15,
                    prop_oneof![
                        Just(RefTarget::Root),
                        Just(RefTarget::Definition),
                        (0usize..6).prop_map(RefTarget::Property)
                    ],
                ),
            ),
            6,
        ),
        root_fallback(),
        proptest::option::weighted(0.4, (0usize..6, 0usize..6)),
    );
    (spec(), extras).prop_map(|(mut spec, (per_prop, root, dependent))| {
        let mut pointers = Vec::new();
        let n = spec.props.len();
        let mut uses_definitions = false;
        for (i, (multiple_of, not, min_length_float, reference)) in per_prop.into_iter().take(n).enumerate() {
            let name = spec.name(i);
            let target = match &reference {
                Some(RefTarget::Root) => Some("#".to_owned()),
                Some(RefTarget::Definition) => Some("#/$defs/short".to_owned()),
                Some(RefTarget::Property(j)) => Some(format!("#/properties/{}", spec.name(j % n))),
                None => None,
            };
            let p = &mut spec.props[i];
            if let Some(m) = multiple_of
                && matches!(p.kind, Kind::Integer | Kind::Number)
            {
                p.keywords.push(("multipleOf".into(), m));
                pointers.push(format!("/properties/{name}/multipleOf"));
            }
            if let Some(v) = not {
                p.keywords.push(("not".into(), json!({"const": v})));
                pointers.push(format!("/properties/{name}/not"));
            }
            // An integral float is a valid `minLength` in 2020-12 but not a u64: jsonschema checks it.
            if let Some(m) = min_length_float
                && matches!(p.kind, Kind::Text | Kind::Date | Kind::DateTime)
                && !p.keywords.iter().any(|(k, _)| k == "minLength")
            {
                p.keywords.push(("minLength".into(), float(m as f64)));
                pointers.push(format!("/properties/{name}/minLength"));
            }
            // A `$ref` means what it means in the document, columnar keywords of its target included.
            if let Some(target) = target {
                uses_definitions |= matches!(reference, Some(RefTarget::Definition));
                p.keywords.push(("$ref".into(), json!(target)));
                pointers.push(format!("/properties/{name}/$ref"));
            }
        }
        if uses_definitions {
            spec.root.push(("$defs".into(), json!({"short": {"maxLength": 2, "not": {"const": 0}}})));
        }
        for (keyword, value) in root {
            if !spec.root.iter().any(|(k, _)| *k == keyword) {
                pointers.push(format!("/{keyword}"));
                spec.root.push((keyword, value));
            }
        }
        if let Some((a, b)) = dependent {
            let (a, b) = (spec.name(a % n), spec.name(b % n));
            spec.root.push(("dependentRequired".into(), json!({ a: [b] })));
            pointers.push("/dependentRequired".into());
        }
        (spec, pointers)
    })
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn columnar_validator_agrees_with_jsonschema((spec, columns) in spec_and_columns(spec())) {
        let (_, validator) = check_equivalence(&spec, &columns)?;
        // Every keyword of the covered subset takes the columnar path.
        let fallback: Vec<_> = validator.report().with_route(Route::Fallback).map(|r| r.pointer.clone()).collect();
        let lookaround = spec.props.iter().any(|p| p.keywords.iter().any(|(_, v)| v.as_str().is_some_and(|s| s.contains("(?!"))));
        prop_assert!(fallback.is_empty() || lookaround, "unexpected fallback keywords {:?}", fallback);
    }
}

proptest! {
    #![proptest_config(common::config(128))]

    #[test]
    fn fallback_keywords_keep_agreement(
        (pointers, (spec, columns)) in with_fallback_keywords()
            .prop_flat_map(|(spec, pointers)| (Just(pointers), spec_and_columns(Just(spec))))
    ) {
        let (_, validator) = check_equivalence(&spec, &columns)?;
        let report = validator.report();
        for pointer in &pointers {
            let route = report.routes.iter().find(|r| &r.pointer == pointer).map(|r| r.route);
            prop_assert_eq!(route, Some(Route::Fallback), "route of {}\n{}", pointer, report);
        }
        if !pointers.is_empty() {
            prop_assert!(validator.has_fallback());
        }
    }
}

proptest! {
    #![proptest_config(common::config(256))]

    /// Patterns of the simple shape are matched without a regex engine; they
    /// must still match exactly what jsonschema's ECMA-262 regex matches.
    #[test]
    fn simple_patterns_match_like_jsonschema(
        (pattern, texts) in simple_pattern().prop_flat_map(|pattern| {
            let witness = pattern_witness(&pattern).unwrap_or_else(|| any_text().boxed());
            (Just(pattern), vec(prop_oneof![4 => witness, 1 => "[0-9abX_-]{0,6}"], 1..40))
        })
    ) {
        let spec = Spec {
            props: vec![PropSpec {
                kind: Kind::Text,
                nullable: false,
                required: true,
                keywords: vec![("pattern".into(), json!(pattern))],
            }],
            closed: false,
            root: Vec::new(),
        };
        check_equivalence(&spec, &[Column::Text(texts.into_iter().map(Some).collect())])?;
    }
}

proptest! {
    #![proptest_config(common::config(128))]

    /// Primary-key duplicates are exactly the rows whose key appeared in an
    /// earlier row, each pointing at that first row.
    #[test]
    fn primary_key_duplicates_are_exactly_the_repeats(
        keys in vec(proptest::option::weighted(0.9, prop_oneof![
            3 => select(vec!["a", "b", "", "1", "01", "张", "a\0", "a-very-long-key-over-15-bytes"]).prop_map(str::to_owned),
            1 => any_text(),
        ]), 0..60)
    ) {
        let doc = json!({
            "x-civlink-id": "test.pk", "x-civlink-version": "1", "title": "主键", "type": "object",
            "x-civlink-primary-key": ["k"], "required": ["k"],
            "properties": {"k": {"type": "string", "title": "键"}},
        });
        let standard = Standard::from_value(doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let validator = Validator::compile(standard.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let verdict = validator
            .validate(&batch(&standard, &[Column::Text(keys.clone())]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (row, key) in keys.iter().enumerate() {
            let reported: Vec<_> =
                verdict.violations_of(row).filter(|v| v.keyword == "x-civlink-primary-key").map(|v| v.message.clone()).collect();
            match key {
                None => prop_assert!(reported.is_empty()),
                Some(key) => match first.get(key.as_str()) {
                    Some(earlier) => {
                        prop_assert_eq!(reported.len(), 1, "row {} repeats row {}", row, earlier);
                        prop_assert!(reported[0].ends_with(&format!("row {earlier}")), "{:?}", reported);
                    }
                    None => {
                        prop_assert!(reported.is_empty(), "row {} is the first {:?}: {:?}", row, key, reported);
                        first.insert(key, row);
                    }
                },
            }
        }
    }
}
