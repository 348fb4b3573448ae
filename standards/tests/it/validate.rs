//! Deterministic tests on the shipped person standard, and one regression
//! test per validator bug the property tests found.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use chrono::NaiveDate;
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Route, Validator, Verdict, json};
use serde_json::{Value, json};

use crate::common::{self, person, valid_id};

/// A real village of 城东区, 西宁市.
const VILLAGE: &str = "630102001001";

/// A person row as text, the way a CSV export has it; every value valid.
fn person_text(row: usize) -> Vec<(&'static str, Option<String>)> {
    let birth = NaiveDate::from_ymd_opt(1980, 5, 17).expect("a real date");
    let text = |s: &str| Some(s.to_owned());
    vec![
        ("id_number", Some(valid_id("630102", birth, row as u16))),
        ("name", text("张三")),
        ("sex", text(if row % 2 == 1 { "1" } else { "2" })),
        ("ethnic_group", text("01")),
        ("birth_date", text("1980-05-17")),
        ("division_code", text(VILLAGE)),
        ("phone", text("13912345678")),
        ("relationship", text("01")),
        ("household_size", text("3")),
        ("monthly_amount", text("560.5")),
        ("assistance_category", text("DB1")),
        ("start_date", text("2020-01-01")),
        ("status", text("normal")),
        // A text column keeps "" as an empty string; a missing account is NULL.
        ("bank_account", None),
    ]
}

/// One change to a person row: the column, and its new text (None: NULL).
type Edit<'a> = Option<(&'a str, Option<&'a str>)>;

/// A text batch of person rows, row `i` changed by `edits[i]`.
fn person_batch(edits: &[Edit<'_>]) -> RecordBatch {
    let rows: Vec<Vec<(&str, Option<String>)>> = edits
        .iter()
        .enumerate()
        .map(|(i, edit)| {
            let mut row = person_text(i);
            if let Some((column, value)) = edit {
                for cell in row.iter_mut().filter(|(c, _)| c == column) {
                    cell.1 = value.map(str::to_owned);
                }
            }
            row
        })
        .collect();
    let names: Vec<&str> = person_text(0).iter().map(|(n, _)| *n).collect();
    let fields: Vec<Field> = names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect();
    let arrays: Vec<ArrayRef> = (0..names.len())
        .map(|c| Arc::new(StringArray::from(rows.iter().map(|r| r[c].1.clone()).collect::<Vec<_>>())) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("a well-formed batch")
}

/// The (column, keyword) pairs of a row's violations, sorted.
fn kinds(verdict: &Verdict, row: usize) -> Vec<(String, String)> {
    let mut kinds: Vec<_> = verdict.violations_of(row).map(|v| (v.column.clone(), v.keyword.clone())).collect();
    kinds.sort();
    kinds
}

/// Validate a batch whose columns already have the standard's types, and
/// check the jsonschema oracle agrees on every row.
fn validate_typed(doc: Value, columns: Vec<(&str, ArrayRef)>) -> Verdict {
    let standard = Standard::from_value(doc.clone()).expect("a valid standard");
    let validator = Validator::compile(standard.clone()).expect("it compiles");
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("a well-formed batch");
    let verdict = validator.validate(&batch).expect("validation runs");
    let oracle = json::json_schema_validator(&doc).expect("the oracle compiles");
    let disagreements = common::disagreements(&standard, &oracle, &batch, &verdict);
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));
    verdict
}

/// A one-or-more-column standard document.
fn doc(properties: Value, extra: Value) -> Value {
    let mut doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-civlink-id": "test.regression",
        "x-civlink-version": "1",
        "title": "回归测试",
        "type": "object",
        "properties": properties,
    });
    if let (Some(target), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
    doc
}

#[test]
fn the_person_standard_compiles_without_fallback() {
    let validator = Validator::compile(person()).expect("the fixture compiles");
    let report = validator.report();
    let fallback: Vec<_> = report.with_route(Route::Fallback).map(|r| r.pointer.as_str()).collect();
    assert!(fallback.is_empty(), "{fallback:?}");
    assert!(!validator.has_fallback());
    let route = |p: &str| report.routes.iter().find(|r| r.pointer == p).map(|r| r.route);
    for columnar in [
        "/required",
        "/x-civlink-primary-key",
        "/properties/id_number/format",
        "/properties/phone/pattern",
        "/properties/sex/x-civlink-code-table",
        "/properties/monthly_amount/exclusiveMaximum",
        "/properties/status/enum",
        "/properties/bank_account/maxLength",
    ] {
        assert_eq!(route(columnar), Some(Route::Columnar), "{columnar}");
    }
    assert_eq!(route("/properties/name/x-civlink-mask"), Some(Route::Annotation));
}

#[test]
fn a_valid_person_row_is_valid_as_text_and_typed() {
    let validator = Validator::compile(person()).expect("the fixture compiles");
    let text = person_batch(&[None, None]);
    let verdict = validator.validate(&text).expect("validation runs");
    assert_eq!(verdict.valid, vec![true, true], "{:?}", verdict.violations);

    // The typed batch is what a typed source would hand over: it is valid too, and jsonschema agrees.
    let standard = person();
    let typed = RecordBatch::try_new(common::nullable_schema(&standard), verdict.batch.columns().to_vec())
        .expect("the typed batch has the standard's schema");
    let again = validator.validate(&typed).expect("validation runs");
    assert_eq!(again.valid, vec![true, true], "{:?}", again.violations);
    let oracle = json::json_schema_validator(&standard.document).expect("the oracle compiles");
    assert!(common::disagreements(&standard, &oracle, &typed, &again).is_empty());
    let row = json::row_to_json(&standard, &typed, 1);
    assert_eq!(row["birth_date"], json!("1980-05-17"));
    assert_eq!(row["household_size"], json!(3));
    assert_eq!(row["bank_account"], Value::Null, "a nullable type renders NULL as null");
    assert!(row.get("ethnic_group").is_some());
}

#[test]
fn each_kind_of_violation_names_its_column_and_keyword() {
    let long_name = "张".repeat(21);
    let cases: Vec<(Edit<'_>, &str, &str)> = vec![
        (Some(("id_number", Some("63010219800517123X"))), "id_number", "format"),
        (Some(("id_number", None)), "id_number", "required"),
        (Some(("name", Some(""))), "name", "minLength"),
        (Some(("name", Some(&long_name))), "name", "maxLength"),
        (Some(("name", None)), "name", "required"),
        (Some(("sex", Some("男"))), "sex", "x-civlink-code-table"),
        (Some(("sex", None)), "sex", "required"),
        (Some(("ethnic_group", Some("99"))), "ethnic_group", "x-civlink-code-table"),
        (Some(("birth_date", Some("1980-02-30"))), "birth_date", "format"),
        (Some(("division_code", Some("630102001999"))), "division_code", "format"),
        (Some(("division_code", Some("63010200100"))), "division_code", "format"),
        (Some(("phone", Some("12912345678"))), "phone", "pattern"),
        (Some(("relationship", Some("03"))), "relationship", "x-civlink-code-table"),
        (Some(("household_size", Some("0"))), "household_size", "minimum"),
        (Some(("household_size", Some("31"))), "household_size", "maximum"),
        (Some(("household_size", Some("abc"))), "household_size", "type"),
        (Some(("household_size", Some("2.5"))), "household_size", "type"),
        (Some(("monthly_amount", Some("100000"))), "monthly_amount", "exclusiveMaximum"),
        (Some(("monthly_amount", Some("-0.01"))), "monthly_amount", "minimum"),
        (Some(("monthly_amount", Some("lots"))), "monthly_amount", "type"),
        (Some(("start_date", Some("2020/13/01"))), "start_date", "format"),
        (Some(("status", Some("closed"))), "status", "enum"),
        (Some(("bank_account", Some("6222"))), "bank_account", "minLength"),
    ];
    let mut edits = vec![None];
    edits.extend(cases.iter().map(|(edit, _, _)| *edit));
    let validator = Validator::compile(person()).expect("the fixture compiles");
    let verdict = validator.validate(&person_batch(&edits)).expect("validation runs");
    assert!(verdict.valid[0], "{:?}", kinds(&verdict, 0));
    for (i, (edit, column, keyword)) in cases.iter().enumerate() {
        let row = i + 1;
        assert!(!verdict.valid[row], "{edit:?} must be invalid");
        assert_eq!(kinds(&verdict, row), vec![(column.to_string(), keyword.to_string())], "{edit:?}");
    }
    assert_eq!(verdict.invalid_count(), cases.len());
    // Sensitive values never appear in clear in messages.
    let id = verdict.violations_of(1).next().map(|v| v.message.clone()).unwrap_or_default();
    assert!(!id.contains("63010219800517123X"), "{id}");
}

#[test]
fn primary_key_duplicates_are_reported_after_the_first() {
    let validator = Validator::compile(person()).expect("the fixture compiles");
    let mut batch = person_batch(&[None, None, None, None, None]);
    // Rows 2 and 4 repeat row 0's ID number; row 3 repeats row 1's.
    let ids = batch.column_by_name("id_number").expect("id_number").as_string::<i32>().clone();
    let repeated: Vec<Option<&str>> = [0, 1, 0, 1, 0].iter().map(|&i| Some(ids.value(i))).collect();
    let mut columns = batch.columns().to_vec();
    columns[0] = Arc::new(StringArray::from(repeated));
    batch = RecordBatch::try_new(batch.schema(), columns).expect("same schema");
    let verdict = validator.validate(&batch).expect("validation runs");
    assert_eq!(verdict.valid, vec![true, true, false, false, false]);
    for (row, first) in [(2, 0), (3, 1), (4, 0)] {
        let v: Vec<_> = verdict.violations_of(row).collect();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].column.as_str(), v[0].keyword.as_str()), ("id_number", "x-civlink-primary-key"));
        assert!(v[0].message.ends_with(&format!("row {first}")), "{}", v[0].message);
    }
}

#[test]
fn null_primary_keys_are_missing_values_not_duplicates() {
    let validator = Validator::compile(person()).expect("the fixture compiles");
    let batch = person_batch(&[Some(("id_number", None)), Some(("id_number", None))]);
    let verdict = validator.validate(&batch).expect("validation runs");
    for row in 0..2 {
        assert_eq!(kinds(&verdict, row), vec![("id_number".to_owned(), "required".to_owned())]);
    }
}

/// Regression: `enum`/`const` values and bounds were compared as f64, so
/// 2^53 + 1 equalled the float 2^53 and u64 bounds rounded to 2^64.
#[test]
fn numbers_compare_exactly_with_enum_const_and_bounds() {
    let verdict = validate_typed(
        doc(
            json!({
                "a": {"type": "number", "title": "甲", "const": 9_223_372_036_854_775_807_i64},
                "b": {"type": "number", "title": "乙", "enum": [9_007_199_254_740_993_i64, u64::MAX]},
                "c": {"type": "number", "title": "丙", "exclusiveMaximum": (1u64 << 63) + 1},
                "d": {"type": "integer", "title": "丁", "enum": [-9.223_372_036_854_776e18, 2.0]},
            }),
            json!({}),
        ),
        vec![
            ("a", Arc::new(Float64Array::from(vec![9.223_372_036_854_776e18, 0.0])) as ArrayRef),
            ("b", Arc::new(Float64Array::from(vec![9_007_199_254_740_992.0, 18_446_744_073_709_551_616.0]))),
            ("c", Arc::new(Float64Array::from(vec![9.223_372_036_854_776e18, 9.223_372_036_854_778e18]))),
            ("d", Arc::new(Int64Array::from(vec![i64::MIN, 2]))),
        ],
    );
    assert_eq!(
        kinds(&verdict, 0),
        vec![("a".to_owned(), "const".to_owned()), ("b".to_owned(), "enum".to_owned())],
        "2^63 is not i64::MAX, 2^53 is not 2^53 + 1; 2^63 < 2^63 + 1; -2^63 as a float is i64::MIN"
    );
    assert_eq!(
        kinds(&verdict, 1),
        vec![("a".into(), "const".into()), ("b".into(), "enum".into()), ("c".into(), "exclusiveMaximum".into())]
    );
}

/// Regression: a Date32 past chrono's range was rendered as JSON null, so a
/// nullable date column accepted it on the JSON side and the fallback saw null.
#[test]
fn dates_beyond_chrono_are_out_of_range_text_not_null() {
    let verdict = validate_typed(
        doc(
            json!({
                "d": {"type": ["string", "null"], "format": "date", "title": "日期"},
                "e": {"type": ["string", "null"], "format": "date", "title": "日期二", "not": {"const": "x"}},
            }),
            json!({}),
        ),
        vec![
            ("d", Arc::new(Date32Array::from(vec![Some(i32::MAX), Some(i32::MIN), None, Some(0)])) as ArrayRef),
            ("e", Arc::new(Date32Array::from(vec![None, None, Some(i32::MAX), Some(0)]))),
        ],
    );
    assert_eq!(verdict.valid, vec![false, false, false, true]);
    assert_eq!(json::date32_to_string(i32::MAX), "+5881580-07-11");
}

/// Regression: "+-5" was read as -5 (a leading `+` was stripped before `i64::from_str`).
#[test]
fn integer_text_has_at_most_one_sign() {
    let standard = Standard::from_value(doc(json!({"n": {"type": "integer", "title": "数"}}), json!({})))
        .expect("a valid standard");
    let validator = Validator::compile(standard).expect("it compiles");
    let texts = vec!["+-5", "++5", "-+5", "+5", "-5", " +7 ", "7"];
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(texts))],
    )
    .expect("a well-formed batch");
    let verdict = validator.validate(&batch).expect("validation runs");
    // JSON's number grammar: one optional minus, no plus, no padding.
    assert_eq!(verdict.valid, vec![false, false, false, false, true, false, true]);
    let typed = verdict.batch.column(0).as_primitive::<Int64Type>();
    assert_eq!((typed.value(4), typed.value(6)), (-5, 7));
    assert!(typed.is_null(0));
}

/// Regression: Arrow casts change values they can convert (1.5 → 1,
/// 5 → true, 2^53 + 1 → 2^53); such a value was accepted as the changed one.
#[test]
fn casts_that_change_values_are_violations() {
    let standard = Standard::from_value(doc(
        json!({
            "i": {"type": "integer", "title": "整数", "maximum": 1},
            "b": {"type": "boolean", "title": "布尔"},
            "x": {"type": "number", "title": "数"},
        }),
        json!({}),
    ))
    .expect("a valid standard");
    let validator = Validator::compile(standard).expect("it compiles");
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Float64, true),
            Field::new("b", DataType::Int64, true),
            Field::new("x", DataType::Int64, true),
        ])),
        vec![
            Arc::new(Float64Array::from(vec![1.5, 1.0, f64::NAN])),
            Arc::new(Int64Array::from(vec![5, 1, 0])),
            Arc::new(Int64Array::from(vec![9_007_199_254_740_993, 3, 1 << 53])),
        ],
    )
    .expect("a well-formed batch");
    let verdict = validator.validate(&batch).expect("validation runs");
    assert_eq!(
        kinds(&verdict, 0),
        vec![("b".into(), "type".into()), ("i".into(), "type".into()), ("x".into(), "type".into())]
    );
    assert_eq!(kinds(&verdict, 1), vec![]);
    assert_eq!(kinds(&verdict, 2), vec![("i".into(), "type".into())]);
    let typed = |name: &str| verdict.batch.column_by_name(name).cloned().expect("a typed column");
    assert!(typed("i").is_null(0), "a changed value is not kept");
    assert_eq!(typed("b").as_boolean(), &BooleanArray::from(vec![None, Some(true), Some(false)]));
}

/// Regression: the fallback's residual schema left out columns without
/// fallback keywords and pointed `$ref`s into itself, so `$ref: "#"` meant
/// less than in the document, `#/properties/x` did not compile, and
/// `unevaluatedProperties`/`additionalProperties` rejected declared columns.
#[test]
fn the_fallback_judges_with_the_whole_document() {
    let columns = || {
        vec![
            ("short", Arc::new(StringArray::from(vec![Some("ab"), Some("a"), None])) as ArrayRef),
            ("same", Arc::new(StringArray::from(vec![Some("a"), Some("ab"), None]))),
            ("whole", Arc::new(StringArray::from(vec![None, None, Some("x")]))),
        ]
    };
    let properties = json!({
        "short": {"type": "string", "title": "短", "maxLength": 1},
        "same": {"type": "string", "title": "同", "$ref": "#/properties/short"},
        "whole": {"type": "string", "title": "全", "$ref": "#"},
    });
    let verdict = validate_typed(doc(properties.clone(), json!({})), columns());
    assert_eq!(kinds(&verdict, 0), vec![("short".into(), "maxLength".into())]);
    assert_eq!(kinds(&verdict, 1), vec![("same".into(), "maxLength".into())]);
    assert!(!verdict.valid[2], "a string is not the record object");

    let verdict = validate_typed(
        doc(
            json!({"short": {"type": "string", "title": "短", "maxLength": 1}, "n": {"type": "integer", "title": "数"}}),
            json!({"unevaluatedProperties": false, "additionalProperties": {"type": "integer"}, "minProperties": 1}),
        ),
        vec![
            ("short", Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![None, None]))),
        ],
    );
    assert_eq!(verdict.valid, vec![true, false]);
}

/// Regression: the regex-free matcher for simple patterns matched greedily
/// when an optional atom sat between a repeated atom and one it overlaps,
/// so `^[0-9]+-?[0-9]{2}$` rejected "123".
#[test]
fn simple_patterns_give_back_what_later_atoms_need() {
    let verdict = validate_typed(
        doc(
            json!({
                "code": {"type": "string", "title": "编码", "pattern": "^[0-9]+-?[0-9]{2}$"},
                "tag": {"type": "string", "title": "标签", "pattern": "^a?b?a$"},
            }),
            json!({}),
        ),
        vec![
            ("code", Arc::new(StringArray::from(vec!["123", "1-23", "12", "1-2"])) as ArrayRef),
            ("tag", Arc::new(StringArray::from(vec!["a", "aba", "ba", "b"]))),
        ],
    );
    assert_eq!(verdict.valid, vec![true, true, false, false]);
}
