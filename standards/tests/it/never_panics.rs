//! Hostile input never panics: arbitrary documents, arbitrary standards, and
//! batches whose columns have the wrong types. Unreadable values are
//! violations of their rows, never silently dropped or changed.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Date64Array, Decimal128Array, Float32Array, Float64Array,
    Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray, TimestampMillisecondArray,
    TimestampNanosecondArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType,
};
use chrono::NaiveDate;
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Validator, Verdict};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use crate::common::{self, CODE_TABLES, PERSON, any_text};
use crate::oracle::{self, Kind, Spec};

/// Keywords worth hitting in arbitrary documents.
const KEYWORDS: &[&str] = &[
    "type",
    "title",
    "properties",
    "required",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "format",
    "not",
    "anyOf",
    "allOf",
    "oneOf",
    "if",
    "then",
    "else",
    "$ref",
    "$defs",
    "$schema",
    "$id",
    "$anchor",
    "$dynamicRef",
    "items",
    "prefixItems",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "uniqueItems",
    "contentEncoding",
    "description",
    "default",
    "x-civlink-id",
    "x-civlink-version",
    "x-civlink-primary-key",
    "x-civlink-division-column",
    "x-civlink-sensitivity",
    "x-civlink-pii",
    "x-civlink-mask",
    "x-civlink-code-table",
];

/// Any JSON value, with keys that are often keywords.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        "\\PC{0,10}".prop_map(Value::from),
        select(KEYWORDS).prop_map(Value::from),
        select(vec!["string", "integer", "number", "boolean", "null", "object", "array", "date", "gb11643"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let key = prop_oneof![3 => select(KEYWORDS).prop_map(str::to_owned), 1 => "\\PC{0,6}"];
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Plausible values for `keyword`, so documents often get past the meta-schema.
fn candidates(keyword: &str) -> Vec<Value> {
    match keyword {
        "type" => vec![
            json!("string"),
            json!("integer"),
            json!("number"),
            json!("boolean"),
            json!(["string", "null"]),
            json!(["integer", "null"]),
            json!(["null"]),
            json!("object"),
            json!(["string", "integer"]),
            json!([]),
        ],
        "pattern" => vec![
            json!("^[0-9]{6}$"),
            json!("("),
            json!("a{99999}{99999}"),
            json!("\\p{Han}"),
            json!("(?<=a)b"),
            json!("(a)\\1"),
            json!("[\\uD83D\\uDE42]"),
            json!("\\cA"),
            json!("[a--b]"),
            json!("^\\S*$"),
            json!("^abc$"),
            json!("^abc"),
            json!("(?i)x"),
        ],
        "minLength" | "maxLength" | "minProperties" => vec![json!(0), json!(3), json!(2.0), json!(-1), json!(1.5)],
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
            vec![json!(0), json!(-1), json!(0.5), json!(1e300), json!(u64::MAX), json!(i64::MIN), json!(1e-300)]
        }
        "format" => {
            ["date", "date-time", "gb11643", "division-code", "email", "uuid", "regex", "time", "phone", "ipv4"]
                .iter()
                .map(|f| json!(f))
                .collect()
        }
        "x-civlink-code-table" => CODE_TABLES.iter().map(|t| json!(t)).chain([json!("gender"), json!(1)]).collect(),
        "x-civlink-mask" => vec![
            json!({"strategy": "keep_ends", "first": 6, "last": 4}),
            json!({"strategy": "name"}),
            json!({"strategy": "full"}),
            json!({"strategy": "redact"}),
            json!({"strategy": "blur"}),
        ],
        "x-civlink-sensitivity" => vec![json!("public"), json!("sensitive"), json!("secret"), json!("top")],
        "x-civlink-pii" => vec![json!(true), json!("yes")],
        "$ref" => vec![
            json!("#"),
            json!("#/properties/c0"),
            json!("#/$defs/x"),
            json!("http://example.com/schema.json"),
            json!("urn:civlink:x"),
            json!("other.json#/a"),
        ],
        "not"
        | "if"
        | "then"
        | "else"
        | "items"
        | "additionalProperties"
        | "unevaluatedProperties"
        | "propertyNames" => {
            vec![json!({"const": 1}), json!({"type": "null"}), json!(true), json!(false), json!({"$ref": "#"})]
        }
        "anyOf" | "allOf" | "oneOf" | "prefixItems" => {
            vec![json!([{"type": "string"}, {"type": "integer"}]), json!([]), json!([{"$ref": "#/$defs/missing"}])]
        }
        "enum" => vec![json!([1, "a", null]), json!([]), json!(["1", "2"]), json!([1.0, 2])],
        "dependentRequired" => vec![json!({"c0": ["c1"]}), json!({"c0": ["nope"]})],
        "$defs" => vec![json!({"x": {"type": "string"}}), json!({"x": {"$ref": "#/$defs/x"}})],
        _ => vec![json!(null), json!("标题"), json!(1)],
    }
}

/// A keyword with a plausible or arbitrary value.
fn keyword_entry() -> impl Strategy<Value = (String, Value)> {
    select(KEYWORDS).prop_flat_map(|k| (Just(k.to_owned()), prop_oneof![4 => select(candidates(k)), 1 => arb_json()]))
}

/// Documents shaped like standards, with random keywords in the root and in each property.
fn standard_like() -> impl Strategy<Value = Value> {
    let property =
        (select(candidates("type")), select(vec![json!("字段"), json!("Field"), json!(5)]), vec(keyword_entry(), 0..5))
            .prop_map(|(t, title, keywords)| property_schema(t, title, keywords));
    let name = prop_oneof![
        4 => select(vec!["c0", "c1", "c2", "id_number", "division_code"]).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ];
    (btree_map(name, property, 1..5), vec(keyword_entry(), 0..4), select(vec![json!(["c0"]), json!([]), json!(["zz"])]))
        .prop_map(|(properties, root, names)| document(properties, root, names))
}

/// Property keywords that assert or annotate, for [`plausible_standard`].
const PROPERTY_KEYWORDS: &[&str] = &[
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "format",
    "not",
    "anyOf",
    "allOf",
    "oneOf",
    "if",
    "then",
    "$ref",
    "items",
    "description",
    "default",
    "x-civlink-sensitivity",
    "x-civlink-pii",
    "x-civlink-mask",
    "x-civlink-code-table",
];

/// Root keywords for [`plausible_standard`].
const ROOT_KEYWORDS: &[&str] =
    &["additionalProperties", "minProperties", "dependentRequired", "$defs", "allOf", "not", "description", "$ref"];

/// Documents that usually are valid standards: column types, Chinese titles,
/// and keywords with mostly sensible values, so compilation gets exercised.
fn plausible_standard() -> impl Strategy<Value = Value> {
    let entry = |keywords: &'static [&'static str]| {
        select(keywords).prop_flat_map(|k| (Just(k.to_owned()), select(candidates(k))))
    };
    let property = (
        select(vec![
            json!("string"),
            json!("integer"),
            json!("number"),
            json!("boolean"),
            json!(["string", "null"]),
            json!(["integer", "null"]),
        ]),
        vec(entry(PROPERTY_KEYWORDS), 0..3),
    )
        .prop_map(|(t, keywords)| property_schema(t, json!("字段"), keywords));
    let names = vec![json!(["c0"]), json!([]), json!(["c0", "c1"])];
    (
        btree_map(select(vec!["c0", "c1", "c2", "c3"]).prop_map(str::to_owned), property, 1..5),
        vec(entry(ROOT_KEYWORDS), 0..2),
        select(names),
    )
        .prop_map(|(properties, root, names)| document(properties, root, names))
}

fn property_schema(t: Value, title: Value, keywords: Vec<(String, Value)>) -> Value {
    let mut schema: Map<String, Value> = keywords.into_iter().collect();
    schema.insert("type".into(), t);
    schema.insert("title".into(), title);
    Value::Object(schema)
}

fn document(properties: std::collections::BTreeMap<String, Value>, root: Vec<(String, Value)>, names: Value) -> Value {
    let mut doc = json!({
        "x-civlink-id": "test.random",
        "x-civlink-version": "1",
        "title": "随机",
        "type": "object",
    });
    if let Some(object) = doc.as_object_mut() {
        for (k, v) in root {
            object.insert(k, v);
        }
        object.insert("properties".into(), Value::Object(properties.into_iter().collect()));
        for key in ["required", "x-civlink-primary-key"] {
            if !object.contains_key(key) {
                object.insert(key.into(), names.clone());
            }
        }
    }
    doc
}

/// The person fixture with one value somewhere replaced by an arbitrary one.
fn mutated_person() -> impl Strategy<Value = Value> {
    let person: Value = serde_json::from_str(PERSON).unwrap_or(Value::Null);
    (any::<prop::sample::Index>(), arb_json()).prop_map(move |(at, replacement)| {
        let mut doc = person.clone();
        let mut pointers = Vec::new();
        collect_pointers(&doc, String::new(), &mut pointers);
        let pointer = at.get(&pointers).clone();
        if let Some(slot) = doc.pointer_mut(&pointer) {
            *slot = replacement;
        }
        doc
    })
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                collect_pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Compile whatever parses, and validate a batch of arbitrary text with it.
fn compile_and_validate(doc: Value, cells: &[Option<String>]) {
    let Ok(standard) = Standard::from_value(doc) else { return };
    let names: Vec<String> = standard.properties.iter().map(|p| p.name.clone()).chain(["extra".to_owned()]).collect();
    let Ok(validator) = Validator::compile(standard) else { return };
    let fields: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect();
    let arrays: Vec<ArrayRef> = names.iter().map(|_| Arc::new(StringArray::from(cells.to_vec())) as ArrayRef).collect();
    if let Ok(batch) = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays) {
        let _ = validator.validate(&batch);
        let _ = validator.report().to_string();
    }
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn parsing_arbitrary_json_never_panics(doc in prop_oneof![arb_json(), standard_like(), mutated_person()]) {
        let text = doc.to_string();
        let _ = Standard::from_value(doc);
        let _ = Standard::from_json_str(&text);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(
        text in prop_oneof![
            "\\PC{0,200}",
            ".{0,50}",
            (0usize..PERSON.len(), "\\PC{0,3}").prop_map(|(at, insert)| {
                // Splice at a char boundary of the fixture: truncated or corrupted documents.
                let at = (0..=at).rev().find(|i| PERSON.is_char_boundary(*i)).unwrap_or(0);
                format!("{}{insert}{}", &PERSON[..at], &PERSON[at..].chars().skip(1).collect::<String>())
            }),
        ]
    ) {
        let _ = Standard::from_json_str(&text);
    }

    #[test]
    fn compiling_parsed_standards_never_panics(
        doc in prop_oneof![3 => plausible_standard(), 1 => standard_like(), 1 => mutated_person()],
        cells in vec(proptest::option::of(any_text()), 0..6),
    ) {
        compile_and_validate(doc, &cells);
    }
}

/// What a text cell must be read as.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Blank: NULL, and no complaint about its type.
    Empty,
    /// Readable as this integer.
    Integer(i64),
    /// Readable as this number.
    Number(f64),
    /// Readable as this boolean.
    Boolean(bool),
    /// Readable as this date (days since 1970-01-01).
    Date(i32),
    /// Readable as this instant (UTC microseconds).
    DateTime(i64),
    /// Not readable: the row must have a violation on this column.
    Bad,
    /// Either readable, or a violation on this column.
    Unknown,
}

/// An empty cell is an absent value; a blank one is text like any other.
fn blank() -> impl Strategy<Value = (String, Expect)> {
    Just((String::new(), Expect::Empty))
}

/// Padding makes any value something other than the standard's form (a
/// job declares `trim` for that).
fn padded(text: String, pad: usize) -> String {
    match pad {
        0 => format!(" {text} "),
        1 => format!("\t{text}\u{3000}"),
        _ => text,
    }
}

fn letters() -> impl Strategy<Value = String> {
    "[a-zA-Z\u{4e00}-\u{9fa5}]{1,5}"
}

/// A text cell for a column of `kind`, with what it must be read as.
fn text_cell(kind: Kind) -> BoxedStrategy<(String, Expect)> {
    let unknown = any_text().prop_map(|s| (s, Expect::Unknown));
    let good: BoxedStrategy<(String, Expect)> = match kind {
        Kind::Integer => prop_oneof![
            any::<i64>().prop_map(|v| (v.to_string(), Expect::Integer(v))),
            // JSON Schema counts 7.0 and 7e2 as integers.
            (-1_000_000i64..1_000_000).prop_map(|v| (format!("{v}.0"), Expect::Integer(v))),
            (-1000i64..1000).prop_map(|v| (format!("{v}e2"), Expect::Integer(v * 100))),
        ]
        .boxed(),
        Kind::Number => (
            prop_oneof![any::<f64>().prop_filter("finite", |f| f.is_finite()), (-1000i32..1000).prop_map(f64::from)],
            any::<bool>(),
        )
            .prop_map(|(v, exp)| {
                let text = if exp { format!("{v:e}") } else { v.to_string() };
                (text, Expect::Number(v))
            })
            .boxed(),
        Kind::Boolean => {
            select(vec![("true", true), ("false", false)]).prop_map(|(s, b)| (s.to_owned(), Expect::Boolean(b))).boxed()
        }
        Kind::Date => (1000i32..=9999, 1u32..=12, 1u32..=31)
            .prop_filter_map("a real date", |(y, m, d)| {
                let date = NaiveDate::from_ymd_opt(y, m, d)?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
                Some((date.format("%Y-%m-%d").to_string(), Expect::Date((date - epoch).num_days() as i32)))
            })
            .boxed(),
        Kind::DateTime => (-30_000_000_000i64..253_402_300_799, any::<bool>())
            .prop_filter_map("a representable instant", |(seconds, utc_form)| {
                let utc = chrono::DateTime::from_timestamp(seconds, 0)?;
                let china = utc + chrono::TimeDelta::hours(8);
                let text = if utc_form {
                    utc.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                } else {
                    china.format("%Y-%m-%dT%H:%M:%S+08:00").to_string()
                };
                Some((text, Expect::DateTime(seconds * 1_000_000)))
            })
            .boxed(),
        Kind::Text => any_text().prop_map(|s| (s, Expect::Unknown)).boxed(),
    };
    let bad_list: Vec<&str> = match kind {
        Kind::Integer => vec![
            "+5",
            " 7",
            "7 ",
            "007",
            "1.5e0",
            "abc",
            "1.5",
            "1e-3",
            "+-5",
            "++5",
            "--5",
            "-+5",
            "0x10",
            "９",
            "1 2",
            "9223372036854775808",
            "-9223372036854775809",
            "五",
            "1,000",
            "NaN",
            "+",
            "-",
            "١٢",
        ],
        Kind::Number => vec![
            "abc", "NaN", "nan", "inf", "-inf", "infinity", "1,5", "1.2.3", "０.５", "1e", "e5", "0x1p3", "--1", "五",
            "1e400", "-1e400", "+-1", "1 000", "+1", ".5", "5.", " 1", "01",
        ],
        Kind::Boolean => vec![
            "2",
            "truee",
            "ok",
            "真",
            "假",
            "on",
            "off",
            "-1",
            "yes please",
            "01",
            "tru",
            "TRUE",
            "True",
            "t",
            "1",
            "yes",
            "是",
            "False",
            "F",
            "0",
            "no",
            "否",
            " true",
            "false ",
        ],
        Kind::Date => vec![
            "2021-02-30",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "abc",
            "31/01/2024",
            "2024.01.31",
            "20241301",
            "２０２４-01-01",
            "2024-01-31T00:00:00",
            "2024年2月30日",
            "1900-02-29",
            "2024--01-01",
            "2024/01/31",
            "20240131",
            "2024年1月31日",
            "2023-3-28",
            " 2023-03-28",
            "2023-03-28 ",
            "\u{3000}",
        ],
        Kind::DateTime => vec![
            "2024-01-31T25:00:00Z",
            "2024-02-30 00:00:00",
            "abc",
            "2024-01-31",
            "2024-01-31T00:00:00+25:00",
            "31/01/2024 08:00:00",
            "2024-01-31 08:00",
            "2024-13-01T00:00:00Z",
            "2024-01-31T00:00:00ZZ",
            "2024-01-31 08:00:00",
            "2024/01/31 08:00:00",
            "2024-01-31T08:00:00",
            "2024-01-31T00:00:00Z\n",
            "2024-01-31T12:59:60Z",
        ],
        Kind::Text => vec![],
    };
    let bad = prop_oneof![
        3 => select(if bad_list.is_empty() { vec!["x"] } else { bad_list }).prop_map(|s| (s.to_owned(), Expect::Bad)),
        1 => letters().prop_filter_map("letters that are no boolean word", move |s| {
            (kind != Kind::Boolean || !["true", "false"].contains(&s.as_str())).then_some((s, Expect::Bad))
        }),
    ];
    let padded_good = (good.clone(), 0usize..2).prop_map(move |((text, expect), pad)| {
        let expect = if kind == Kind::Text { expect } else { Expect::Bad };
        (padded(text, pad), expect)
    });
    prop_oneof![4 => good, 1 => padded_good, 2 => bad, 1 => blank(), 2 => unknown].boxed()
}

/// How a property's column reaches the validator.
#[derive(Debug, Clone)]
enum Source {
    /// Not in the batch.
    Missing,
    /// Its own type.
    Typed(oracle::Column),
    /// Text (Utf8, LargeUtf8 or Utf8View) for a property of another kind.
    Text(u8, Vec<Option<(String, Expect)>>),
    /// Int32.
    Int32(Vec<Option<i32>>),
    /// Int64 for a property of another kind.
    Int64(Vec<Option<i64>>),
    /// Float32.
    Float32(Vec<Option<f32>>),
    /// Float64 for a property of another kind.
    Float64(Vec<Option<f64>>),
    /// Boolean for a property of another kind.
    Boolean(Vec<Option<bool>>),
    /// Date32 for a text property.
    Date32(Vec<Option<i32>>),
    /// Date64 (whole days, as Arrow requires) for a date property.
    Date64(Vec<Option<i64>>),
    /// Decimal128(12, 2), as databases hand over amounts.
    Decimal(Vec<Option<i128>>),
    /// Timestamp(ms, no time zone) for a date-time property.
    Millis(Vec<Option<i64>>),
    /// Timestamp(ns, +08:00) for a date-time property.
    Nanos(Vec<Option<i64>>),
}

impl Source {
    fn array(&self) -> Option<ArrayRef> {
        Some(match self {
            Source::Missing => return None,
            Source::Typed(column) => column.array(),
            Source::Text(flavour, cells) => {
                let texts: Vec<Option<&str>> = cells.iter().map(|c| c.as_ref().map(|(s, _)| s.as_str())).collect();
                match flavour {
                    0 => Arc::new(StringArray::from(texts)),
                    1 => Arc::new(LargeStringArray::from(texts)),
                    _ => Arc::new(StringViewArray::from(texts)),
                }
            }
            Source::Int32(v) => Arc::new(Int32Array::from(v.clone())),
            Source::Int64(v) => Arc::new(Int64Array::from(v.clone())),
            Source::Float32(v) => Arc::new(Float32Array::from(v.clone())),
            Source::Float64(v) => Arc::new(Float64Array::from(v.clone())),
            Source::Boolean(v) => Arc::new(BooleanArray::from(v.clone())),
            Source::Date32(v) => Arc::new(Date32Array::from(v.clone())),
            Source::Date64(v) => Arc::new(Date64Array::from(v.clone())),
            Source::Decimal(v) => Arc::new(
                Decimal128Array::from(v.clone())
                    .with_precision_and_scale(12, 2)
                    .unwrap_or_else(|_| Decimal128Array::from(vec![None; v.len()])),
            ),
            Source::Millis(v) => Arc::new(TimestampMillisecondArray::from(v.clone())),
            Source::Nanos(v) => Arc::new(TimestampNanosecondArray::from(v.clone()).with_timezone("+08:00")),
        })
    }
}

fn cells<T: std::fmt::Debug + Clone + 'static>(
    rows: usize,
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Vec<Option<T>>> {
    vec(proptest::option::weighted(0.85, s), rows)
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (-100i32..100).prop_map(f64::from),
        (-100.0f64..100.0),
        select(vec![0.5, -0.0, 9_007_199_254_740_993.0, 1e300, f64::NAN, f64::INFINITY]),
    ]
}

/// Decimal(12, 2) raw values: whole and fractional amounts up to 10^10.
fn decimal() -> impl Strategy<Value = i128> {
    prop_oneof![
        (-999_999_999_999i64..=999_999_999_999).prop_map(i128::from),
        (-1000i64..1000).prop_map(|v| i128::from(v) * 100),
    ]
}

fn any_i64() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), -3i64..3, select(vec![i64::MIN, i64::MAX, 9_007_199_254_740_993, 1 << 53])]
}

/// A wrong-typed (or missing, or right-typed) source for property `p`.
fn source(p: &oracle::PropSpec, rows: usize) -> BoxedStrategy<Source> {
    let typed = oracle::column(p, rows).prop_map(Source::Typed);
    let missing = Just(Source::Missing);
    let text = (0u8..3, cells(rows, text_cell(p.kind))).prop_map(|(f, c)| Source::Text(f, c));
    match p.kind {
        Kind::Text => prop_oneof![
            1 => typed,
            1 => missing,
            2 => text,
            1 => cells(rows, any::<i32>()).prop_map(Source::Int32),
            1 => cells(rows, any_i64()).prop_map(Source::Int64),
            1 => cells(rows, any::<f32>()).prop_map(Source::Float32),
            1 => cells(rows, any::<bool>()).prop_map(Source::Boolean),
            1 => cells(rows, -1_000_000i32..3_000_000).prop_map(Source::Date32),
            1 => cells(rows, decimal()).prop_map(Source::Decimal),
        ]
        .boxed(),
        Kind::Integer => prop_oneof![
            1 => typed,
            1 => missing,
            4 => text,
            1 => cells(rows, any::<i32>()).prop_map(Source::Int32),
            1 => cells(rows, any::<f32>()).prop_map(Source::Float32),
            2 => cells(rows, any_f64()).prop_map(Source::Float64),
            1 => cells(rows, any::<bool>()).prop_map(Source::Boolean),
            1 => cells(rows, decimal()).prop_map(Source::Decimal),
        ]
        .boxed(),
        Kind::Number => prop_oneof![
            1 => typed,
            1 => missing,
            4 => text,
            1 => cells(rows, any::<i32>()).prop_map(Source::Int32),
            2 => cells(rows, any_i64()).prop_map(Source::Int64),
            1 => cells(rows, any::<f32>()).prop_map(Source::Float32),
            1 => cells(rows, any::<bool>()).prop_map(Source::Boolean),
            1 => cells(rows, decimal()).prop_map(Source::Decimal),
        ]
        .boxed(),
        Kind::Boolean => prop_oneof![
            1 => typed,
            1 => missing,
            4 => text,
            2 => cells(rows, prop_oneof![0i64..2, any_i64()]).prop_map(Source::Int64),
            1 => cells(rows, any_f64()).prop_map(Source::Float64),
        ]
        .boxed(),
        Kind::Date => prop_oneof![
            1 => typed,
            1 => missing,
            4 => text,
            1 => cells(rows, any::<i32>()).prop_map(Source::Int32),
            1 => cells(rows, any_i64()).prop_map(Source::Int64),
            1 => cells(rows, -3_000_000i64..3_000_000).prop_map(|v| {
                Source::Date64(v.into_iter().map(|d| d.map(|d| d * 86_400_000)).collect())
            }),
        ]
        .boxed(),
        Kind::DateTime => prop_oneof![
            1 => typed,
            1 => missing,
            4 => text,
            1 => cells(rows, any_i64()).prop_map(Source::Int64),
            1 => cells(rows, -1_000_000i32..3_000_000).prop_map(Source::Date32),
            1 => cells(rows, prop_oneof![any_i64(), (-1i64 << 40)..(1i64 << 40)]).prop_map(Source::Millis),
            1 => cells(rows, prop_oneof![any_i64(), (-1000i64..1000).prop_map(|s| s * 1000)]).prop_map(Source::Nanos),
        ]
        .boxed(),
    }
}

/// A standard, one source per property, and extra columns.
fn hostile_case() -> impl Strategy<Value = (Spec, Vec<Source>, Vec<Source>)> {
    (oracle::spec(), 0usize..=30).prop_flat_map(|(spec, rows)| {
        let sources: Vec<BoxedStrategy<Source>> = spec.props.iter().map(|p| source(p, rows)).collect();
        let extras = vec(
            prop_oneof![
                cells(rows, any_text())
                    .prop_map(|c| Source::Text(0, c.into_iter().map(|c| c.map(|s| (s, Expect::Unknown))).collect())),
                cells(rows, any::<i32>()).prop_map(Source::Int32),
            ],
            0..3,
        );
        (Just(spec), sources, extras)
    })
}

/// Whether row `row` has a violation on `column` saying its value is unreadable.
fn unreadable(verdict: &Verdict, row: usize, column: &str) -> bool {
    verdict.violations_of(row).any(|v| v.column == column && (v.keyword == "type" || v.keyword == "format"))
}

/// Check one property's typed column against its source.
fn check_property(
    kind: Kind,
    name: &str,
    source: &Source,
    typed: &ArrayRef,
    verdict: &Verdict,
) -> Result<(), TestCaseError> {
    let rows = typed.len();
    let here = |row: usize| format!("column {name}, row {row}, source {source:?}, violations {:?}", verdict.violations);
    match source {
        Source::Missing => prop_assert_eq!(typed.null_count(), rows, "a missing column is all NULL: {}", here(0)),
        Source::Typed(_) => {}
        Source::Text(_, cells) if kind != Kind::Text => {
            for (row, cell) in cells.iter().enumerate() {
                let Some((text, expect)) = cell else {
                    prop_assert!(typed.is_null(row), "NULL stays NULL: {}", here(row));
                    continue;
                };
                let read = typed.is_valid(row);
                // An empty cell is an absent value whatever the generator meant.
                let expect = if text.is_empty() { &Expect::Empty } else { expect };
                match expect {
                    Expect::Empty => {
                        prop_assert!(!read, "blank {text:?} is NULL: {}", here(row));
                        prop_assert!(!unreadable(verdict, row, name), "blank {text:?} is no type error: {}", here(row));
                    }
                    Expect::Bad => {
                        prop_assert!(!verdict.valid[row], "{text:?} cannot be read: {}", here(row));
                        prop_assert!(unreadable(verdict, row, name), "{text:?} cannot be read: {}", here(row));
                        prop_assert!(!read, "{text:?} is NULL in the typed batch: {}", here(row));
                    }
                    Expect::Unknown => prop_assert!(
                        read || unreadable(verdict, row, name),
                        "{text:?} is either read or a violation: {}",
                        here(row)
                    ),
                    Expect::Integer(v) => {
                        prop_assert!(read, "{text:?} reads: {}", here(row));
                        prop_assert_eq!(typed.as_primitive::<Int64Type>().value(row), *v, "{}", here(row));
                    }
                    Expect::Number(v) => {
                        prop_assert!(read, "{text:?} reads: {}", here(row));
                        prop_assert_eq!(typed.as_primitive::<Float64Type>().value(row), *v, "{}", here(row));
                    }
                    Expect::Boolean(v) => {
                        prop_assert!(read, "{text:?} reads: {}", here(row));
                        prop_assert_eq!(typed.as_boolean().value(row), *v, "{}", here(row));
                    }
                    Expect::Date(v) => {
                        prop_assert!(read, "{text:?} reads: {}", here(row));
                        prop_assert_eq!(typed.as_primitive::<Date32Type>().value(row), *v, "{}", here(row));
                    }
                    Expect::DateTime(v) => {
                        prop_assert!(read, "{text:?} reads: {}", here(row));
                        prop_assert_eq!(
                            typed.as_primitive::<TimestampMicrosecondType>().value(row),
                            *v,
                            "{}",
                            here(row)
                        );
                    }
                }
            }
        }
        _ => {
            // Any other type: each value is read exactly, or is a violation of its row.
            let source_array = source.array().ok_or_else(|| TestCaseError::fail("a present source"))?;
            for row in 0..rows {
                if source_array.is_null(row) {
                    prop_assert!(typed.is_null(row), "NULL stays NULL: {}", here(row));
                    continue;
                }
                if typed.is_null(row) {
                    prop_assert!(unreadable(verdict, row, name), "unread value is a violation: {}", here(row));
                    continue;
                }
                prop_assert!(read_exactly(kind, &source_array, typed, row), "value changed in reading: {}", here(row));
                if kind == Kind::Number && !typed.as_primitive::<Float64Type>().value(row).is_finite() {
                    prop_assert!(unreadable(verdict, row, name), "NaN and infinities are violations: {}", here(row));
                }
            }
        }
    }
    Ok(())
}

/// Whether the typed cell holds exactly the source value.
fn read_exactly(kind: Kind, source: &ArrayRef, typed: &ArrayRef, row: usize) -> bool {
    // Compared exactly: integers widened (i128), floats by value with NaN equal to NaN, text as displayed.
    let text = |a: &ArrayRef| arrow::util::display::array_value_to_string(a, row).unwrap_or_default();
    match kind {
        Kind::Text => {
            let typed = typed.as_string::<i32>().value(row);
            match source.data_type() {
                DataType::Int32 => {
                    typed.parse::<i32>().ok() == Some(source.as_primitive::<arrow::datatypes::Int32Type>().value(row))
                }
                DataType::Int64 => typed.parse::<i64>().ok() == Some(source.as_primitive::<Int64Type>().value(row)),
                DataType::Float32 => {
                    let v = source.as_primitive::<arrow::datatypes::Float32Type>().value(row);
                    typed.parse::<f32>().is_ok_and(|t| t == v || (t.is_nan() && v.is_nan()))
                }
                DataType::Boolean => typed.parse::<bool>().ok() == Some(source.as_boolean().value(row)),
                _ => typed == text(source),
            }
        }
        Kind::Integer => {
            let t = i128::from(typed.as_primitive::<Int64Type>().value(row));
            match source.data_type() {
                DataType::Int32 => t == i128::from(source.as_primitive::<arrow::datatypes::Int32Type>().value(row)),
                DataType::Boolean => t == i128::from(source.as_boolean().value(row)),
                DataType::Float32 => {
                    exact_f64_int(f64::from(source.as_primitive::<arrow::datatypes::Float32Type>().value(row)), t)
                }
                DataType::Float64 => exact_f64_int(source.as_primitive::<Float64Type>().value(row), t),
                DataType::Decimal128(_, 2) => source.as_primitive::<Decimal128Type>().value(row) == t * 100,
                _ => false,
            }
        }
        Kind::Number => {
            let t = typed.as_primitive::<Float64Type>().value(row);
            match source.data_type() {
                DataType::Int32 => t == f64::from(source.as_primitive::<arrow::datatypes::Int32Type>().value(row)),
                DataType::Int64 => exact_f64_int(t, i128::from(source.as_primitive::<Int64Type>().value(row))),
                DataType::Float32 => {
                    let v = f64::from(source.as_primitive::<arrow::datatypes::Float32Type>().value(row));
                    t == v || (t.is_nan() && v.is_nan())
                }
                DataType::Boolean => t == f64::from(u8::from(source.as_boolean().value(row))),
                // The decimal text read as a float is the nearest float: exact as far as a float can be.
                DataType::Decimal128(..) => text(source).parse::<f64>().ok() == Some(t),
                _ => false,
            }
        }
        Kind::Boolean => {
            let t = typed.as_boolean().value(row);
            match source.data_type() {
                DataType::Int64 => i64::from(t) == source.as_primitive::<Int64Type>().value(row),
                DataType::Float64 => f64::from(u8::from(t)) == source.as_primitive::<Float64Type>().value(row),
                _ => false,
            }
        }
        Kind::Date => {
            let t = i64::from(typed.as_primitive::<Date32Type>().value(row));
            match source.data_type() {
                DataType::Int32 => t == i64::from(source.as_primitive::<arrow::datatypes::Int32Type>().value(row)),
                DataType::Int64 => t == source.as_primitive::<Int64Type>().value(row),
                DataType::Date64 => t * 86_400_000 == source.as_primitive::<arrow::datatypes::Date64Type>().value(row),
                _ => false,
            }
        }
        Kind::DateTime => {
            let t = i128::from(typed.as_primitive::<TimestampMicrosecondType>().value(row));
            match source.data_type() {
                DataType::Int64 => t == i128::from(source.as_primitive::<Int64Type>().value(row)),
                DataType::Date32 => t == i128::from(source.as_primitive::<Date32Type>().value(row)) * 86_400_000_000,
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    t == i128::from(source.as_primitive::<TimestampMillisecondType>().value(row)) * 1000
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                    t * 1000 == i128::from(source.as_primitive::<TimestampNanosecondType>().value(row))
                }
                _ => false,
            }
        }
    }
}

/// Whether the float `f` is exactly the integer `i`.
fn exact_f64_int(f: f64, i: i128) -> bool {
    // |i| < 2^64 here; an f64 that equals it is integral and below 2^64, so the cast is exact.
    f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 && f as i128 == i
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn wrong_column_types_never_panic_and_unreadable_values_are_violations(
        (spec, sources, extras) in hostile_case()
    ) {
        let standard = Standard::from_value(spec.document()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let validator = Validator::compile(standard.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            if let Some(array) = source.array() {
                fields.push(Field::new(spec.name(i), array.data_type().clone(), true));
                arrays.push(array);
            }
        }
        for (i, extra) in extras.iter().enumerate() {
            if let Some(array) = extra.array() {
                fields.push(Field::new(format!("extra_{i}"), array.data_type().clone(), true));
                arrays.push(array);
            }
        }
        let rows = match sources.first() {
            Some(Source::Text(_, c)) => c.len(),
            _ => arrays.first().map_or(0, |a| a.len()),
        };
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let verdict = validator.validate(&batch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(verdict.valid.len(), batch.num_rows());
        prop_assert_eq!(verdict.batch.num_columns(), spec.props.len());

        for (i, source) in sources.iter().enumerate() {
            let name = spec.name(i);
            let typed = verdict.batch.column_by_name(&name).ok_or_else(|| TestCaseError::fail("typed column"))?;
            prop_assert_eq!(typed.data_type(), &standard.properties[i].kind.data_type());
            check_property(spec.props[i].kind, &name, source, typed, &verdict)?;
            // A missing required column makes every row invalid.
            let p = &standard.properties[i];
            if matches!(source, Source::Missing) && p.required && !p.admits_null {
                for row in 0..batch.num_rows() {
                    prop_assert!(verdict.violations_of(row).any(|v| v.column == name && v.keyword == "required"));
                }
            }
        }
        for (i, extra) in extras.iter().enumerate() {
            let name = format!("extra_{i}");
            let column = batch.column_by_name(&name).ok_or_else(|| TestCaseError::fail("extra column"))?;
            for row in 0..batch.num_rows() {
                let reported = verdict.violations_of(row).any(|v| v.column == name && v.keyword == "additionalProperties");
                prop_assert_eq!(reported, standard.closed && column.is_valid(row), "extra {:?} row {}", extra, row);
            }
        }
    }
}
