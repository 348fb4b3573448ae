//! Unit tests of the comparison, keyword by keyword, mode by mode.

use super::*;
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
    let declared =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": {"type": "string"}});
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
    assert_error(json!({"properties": {"x": {"minimum": "0"}}}), invalid("/properties/x/minimum", "must be a number"));
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
    assert_error(json!({"properties": {"x": {"pattern": 1}}}), invalid("/properties/x/pattern", "must be a string"));
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
    assert_error(json!({"x-civlink-division-column": 12}), invalid("/x-civlink-division-column", "must be a string"));
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
