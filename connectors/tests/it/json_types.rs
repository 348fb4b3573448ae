//! The read path against the oracle: JSON values of every JSON type,
//! delivered as NDJSON and read by civlink's JSON reader, mapping and
//! validator, get exactly the verdict the `jsonschema` crate gives the raw
//! JSON objects.
//!
//! Outside what a 64-bit column can hold, the two differ by design: an
//! integer beyond ±2^63 (JSON Schema has no bound) is out of range for
//! civlink, so the generated numbers stay inside it.

use std::io::Cursor;

use civlink_connectors::file::{FileFormat, JsonReader};
use civlink_connectors::mapping::{Mapping, MappingSpec};
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Validator, json::json_schema_validator};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

/// Every column type, a format of each string kind, and one column that admits null.
fn standard_document() -> Value {
    let column = |schema: Value| {
        let mut schema = schema;
        schema["title"] = json!("列");
        schema["x-civlink-sensitivity"] = json!("internal");
        schema
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-civlink-id": "test.json_types",
        "x-civlink-version": "1.0.0",
        "title": "JSON 类型",
        "type": "object",
        "properties": {
            "s": column(json!({"type": "string"})),
            "i": column(json!({"type": "integer"})),
            "n": column(json!({"type": "number"})),
            "b": column(json!({"type": "boolean"})),
            "d": column(json!({"type": "string", "format": "date"})),
            "t": column(json!({"type": "string", "format": "date-time"})),
            "ns": column(json!({"type": ["string", "null"]})),
        }
    })
}

const KEYS: [&str; 7] = ["s", "i", "n", "b", "d", "t", "ns"];

/// JSON values of every type, with the spellings a standard must not read
/// into another type, and the ones it must.
fn any_value() -> impl Strategy<Value = Value> {
    let strings = select(vec![
        "",
        "7",
        "-7",
        "1.0",
        "0.1",
        "true",
        "false",
        "yes",
        "是",
        "abc",
        " ",
        "2023-03-28",
        "20230328",
        "2023-3-28",
        " 2023-03-28",
        "2023-03-28 ",
        "2023-02-29",
        "2024-02-29",
        "2023-03-28T08:00:00Z",
        "2023-03-28T08:00:00+08:00",
        "2023-03-28 08:00:00",
        "2023-03-28T08:00:00Z\n",
        "2016-12-31T23:59:60Z",
        "2016-12-31T22:59:60Z",
        "2017-01-01T07:59:60+08:00",
        "2023-03-28t08:00:00.123z",
        "2023-03-28T24:00:00Z",
        "null",
    ])
    .prop_map(|s| Value::String(s.to_owned()));
    prop_oneof![
        3 => strings,
        1 => "[a-z0-9 .:-]{0,10}".prop_map(Value::String),
        2 => any::<i64>().prop_map(|v| json!(v)),
        1 => (-1000i64..1000).prop_map(|v| json!(v)),
        1 => select(vec![1.0, 0.1, -0.0, 100.0, 2.5, -1.5e-7, 1e15, 123_456.0]).prop_map(|v| json!(v)),
        1 => (-1.0e15..1.0e15f64).prop_map(|v| json!(v)),
        1 => any::<bool>().prop_map(|v| json!(v)),
        1 => Just(Value::Null),
        1 => select(vec![json!([]), json!([1, "a"]), json!({}), json!({"a": 1})]),
    ]
}

/// Rows with any subset of the keys, each with any value.
fn any_rows() -> impl Strategy<Value = Vec<serde_json::Map<String, Value>>> {
    vec(btree_map(select(KEYS.to_vec()), any_value(), 0..=KEYS.len()), 1..40).prop_map(|rows| {
        rows.into_iter().map(|row| row.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).collect()
    })
}

/// civlink's verdict per row: read, mapped (the identity, or a renaming one), validated.
fn civlink_verdicts(validator: &Validator, mapping: &Mapping, ndjson: String) -> Vec<bool> {
    let reader = JsonReader::from_reader("rows.ndjson", Box::new(Cursor::new(ndjson)), FileFormat::Ndjson, 16)
        .expect("the reader opens");
    let mut verdicts = Vec::new();
    for positioned in reader {
        let positioned = positioned.expect("a batch");
        assert!(positioned.rejects.is_empty(), "every row is a JSON object: {:?}", positioned.rejects);
        let mapped = mapping.apply_delivered(&positioned.batch, positioned.delivered.as_ref()).expect("mapping");
        let verdict = validator.validate_delivered(&mapped.batch, mapped.delivered.as_ref()).expect("validation");
        verdicts.extend(verdict.valid);
    }
    verdicts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn delivered_json_values_get_json_schemas_verdict(rows in any_rows(), renamed in any::<bool>()) {
        let document = standard_document();
        let standard = Standard::from_value(document.clone()).expect("the standard");
        let validator = Validator::compile(standard).expect("it compiles");
        let oracle = json_schema_validator(&document).expect("the oracle");
        // A renaming mapping: the JSON types follow the columns through it.
        let (mapping, rows_as_sent) = if renamed {
            let spec: MappingSpec = toml::from_str(
                "rename = { \"S\" = \"s\", \"I\" = \"i\", \"N\" = \"n\", \"B\" = \"b\", \"D\" = \"d\", \"T\" = \"t\", \"NS\" = \"ns\" }",
            )
            .expect("the mapping");
            let sent: Vec<serde_json::Map<String, Value>> = rows
                .iter()
                .map(|row| row.iter().map(|(k, v)| (k.to_uppercase(), v.clone())).collect())
                .collect();
            (Mapping::compile(&spec).expect("it compiles"), sent)
        } else {
            (Mapping::default(), rows.clone())
        };
        let ndjson: String = rows_as_sent.iter().map(|row| format!("{}\n", Value::Object(row.clone()))).collect();
        let verdicts = civlink_verdicts(&validator, &mapping, ndjson);
        prop_assert_eq!(verdicts.len(), rows.len());
        for (row, (object, civlink)) in rows.iter().zip(verdicts).enumerate() {
            let instance = Value::Object(object.clone());
            let expected = oracle.is_valid(&instance);
            prop_assert_eq!(civlink, expected, "row {}: {} — civlink says {}, jsonschema says {}", row, instance, civlink, expected);
        }
    }
}

/// The cases a new user found (issue 16), one by one, through the same path.
#[test]
fn the_reported_disagreements_are_gone() {
    let document = standard_document();
    let validator = Validator::compile(Standard::from_value(document.clone()).unwrap()).unwrap();
    let oracle = json_schema_validator(&document).unwrap();
    let cases = [
        json!({"s": 1}),
        json!({"s": 0.1}),
        json!({"s": true}),
        json!({"i": "7"}),
        json!({"i": 1.0}),
        json!({"b": 0}),
        json!({"b": "yes"}),
        json!({"d": "20230328"}),
        json!({"d": "2023-3-28"}),
        json!({"d": " 2023-03-28"}),
        json!({"d": "2023-03-28 "}),
        json!({"d": ""}),
        json!({"t": "2023-03-28T08:00:00Z\n"}),
        json!({"t": "2016-12-31T22:59:60Z"}),
        json!({"t": "2016-12-31T23:58:60Z"}),
        json!({"t": "2016-12-31T23:59:60Z"}),
    ];
    let ndjson: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let verdicts = civlink_verdicts(&validator, &Mapping::default(), ndjson);
    let expected: Vec<bool> = cases.iter().map(|c| oracle.is_valid(c)).collect();
    assert_eq!(verdicts, expected);
    // And what that is: only 1.0 as an integer and the real leap second pass.
    let valid: Vec<String> = cases.iter().zip(&verdicts).filter(|(_, v)| **v).map(|(c, _)| c.to_string()).collect();
    assert_eq!(valid, [r#"{"i":1.0}"#, r#"{"t":"2016-12-31T23:59:60Z"}"#]);
}

/// CSV cells have no JSON type: the documented text rules read them, and a
/// job's declared normalisers turn office spellings into the standard's form.
#[test]
fn csv_cells_follow_the_text_rules_and_declared_normalisers() {
    let document = standard_document();
    let validator = Validator::compile(Standard::from_value(document).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = "s,i,n,b,d,t\n\
               x,7,1e3,true,2023-03-28,2023-03-28T08:00:00Z\n\
               ,,,,,\n \
               x ,7.0,-0.5,false,2024-02-29,2023-03-28T08:00:00+08:00\n\
               7, 7,+1,是,20230328,2023-03-28 08:00:00\n\
               x,007,.5,TRUE,2023年3月28日,2023-03-28T08:00:00\n\
               x,七,abc,也许,明天,later\n";
    let path = dir.path().join("cells.csv");
    std::fs::write(&path, csv).unwrap();
    let verdicts = |mapping: &Mapping| -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for positioned in civlink_connectors::file::open(&path, None, Default::default(), 64).unwrap() {
            let positioned = positioned.unwrap();
            assert!(positioned.delivered.is_none(), "CSV has no JSON types");
            let mapped = mapping.apply_delivered(&positioned.batch, None).unwrap();
            let verdict = validator.validate_delivered(&mapped.batch, mapped.delivered.as_ref()).unwrap();
            for row in 0..verdict.batch.num_rows() {
                let mut columns: Vec<String> = verdict.violations_of(row).map(|v| v.column.clone()).collect();
                columns.sort();
                rows.push(columns);
            }
        }
        rows
    };
    let strict = verdicts(&Mapping::default());
    let none: Vec<String> = Vec::new();
    assert_eq!(strict[0], none, "the standard's own forms");
    assert_eq!(strict[1], none, "empty cells are absent");
    assert_eq!(strict[2], none, "7.0 is an integer; spaces in text are text");
    assert_eq!(strict[3], ["b", "d", "i", "n", "t"], "office spellings are not read implicitly");
    assert_eq!(strict[4], ["b", "d", "i", "n", "t"]);
    assert_eq!(strict[5], ["b", "d", "i", "n", "t"]);

    let spec: MappingSpec = toml::from_str(
        r#"
        [[columns]]
        name = "i"
        trim = true
        cast = "integer"
        [[columns]]
        name = "n"
        cast = "number"
        [[columns]]
        name = "b"
        cast = "boolean"
        [[columns]]
        name = "d"
        cast = "date"
        [[columns]]
        name = "t"
        cast = "datetime"
        "#,
    )
    .unwrap();
    let normalised = verdicts(&Mapping::compile(&spec).unwrap());
    assert_eq!(normalised[3], none, "declared: {:?}", normalised[3]);
    assert_eq!(normalised[4], none, "declared: {:?}", normalised[4]);
    // What no declared normaliser reads stays a violation, as delivered.
    assert_eq!(normalised[5], ["b", "d", "i", "n", "t"]);
}
