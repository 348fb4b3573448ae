//! Property tests of the comparison against its own laws: it never panics,
//! every generated standard parses, a version is compatible with itself, and
//! FORWARD is BACKWARD with the roles swapped.

use super::*;
use proptest::prelude::*;
use serde_json::json;

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
            prop::collection::btree_map(arb_string(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
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
        (arb_standard(), arb_string(), arb_json(), any::<bool>()).prop_map(|(mut doc, key, value, in_properties)| {
            if in_properties {
                doc["properties"][key] = value;
            } else {
                doc[key] = value;
            }
            doc
        }),
    ]
}

fn arb_type() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(vec!["string", "integer", "number", "null", "object", "array", "boolean"]);
    prop_oneof![name.clone().prop_map(Value::from), prop::collection::vec(name, 1..4).prop_map(|names| json!(names)),]
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
