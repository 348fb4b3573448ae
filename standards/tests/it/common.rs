//! Shared fixtures and generators: the person standard, ID numbers, division
//! codes, code-table codes and awkward text.

use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use chrono::NaiveDate;
use civlink_standards::code_table::CodeTableRegistry;
use civlink_standards::division::{DivisionTable, Level};
use civlink_standards::idcard;
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Verdict, json};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

/// Proptest settings: `default` cases unless `PROPTEST_CASES` says otherwise,
/// and no regression files written into the source tree (counterexamples
/// found so far are kept as deterministic tests instead).
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// The shipped person standard (the benchmark's).
pub const PERSON: &str = include_str!("../data/person.standard.json");

/// The person standard, parsed.
pub fn person() -> Standard {
    Standard::from_json_str(PERSON).expect("the shipped fixture is a valid standard")
}

/// The code-table names shipped with the crate.
pub const CODE_TABLES: [&str; 6] =
    ["sex", "ethnic_group", "family_relationship", "disability_category", "disability_grade", "assistance_category"];

/// `standard`'s Arrow schema with every field nullable, so a test batch may
/// hold NULLs in required columns (which the validator must then report).
pub fn nullable_schema(standard: &Standard) -> SchemaRef {
    let schema = standard.arrow_schema();
    let fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Six-digit county codes of the shipped division table.
pub static COUNTIES: LazyLock<Vec<String>> = LazyLock::new(|| {
    DivisionTable::builtin().at_level(Level::County).iter().map(|e| e.code.county_code().to_owned()).collect()
});

/// Division codes of every level of the shipped table.
pub static DIVISIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    Level::all()
        .into_iter()
        .flat_map(|level| DivisionTable::builtin().at_level(level))
        .map(|e| e.code.as_str().to_owned())
        .collect()
});

/// Every canonical code of every shipped code table.
pub static CODES: LazyLock<Vec<String>> = LazyLock::new(|| {
    CodeTableRegistry::builtin().iter().flat_map(|t| t.codes().map(str::to_owned).collect::<Vec<_>>()).collect()
});

/// A valid ID number: county, birth date, order code and check character.
pub fn valid_id(county: &str, birth: NaiveDate, order: u16) -> String {
    let body = format!("{county}{}{:03}", birth.format("%Y%m%d"), order % 1000);
    let check = idcard::check_character(&body).expect("17 digits have a check character");
    format!("{body}{check}")
}

fn birth_date() -> impl Strategy<Value = NaiveDate> {
    (1900i32..=2020, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("day 1-28 exists in every month"))
}

fn county() -> impl Strategy<Value = String> {
    select(COUNTIES.clone())
}

/// ID numbers: mostly valid, the rest broken in one realistic way each.
pub fn id_number() -> impl Strategy<Value = String> {
    let valid = (county(), birth_date(), 0u16..1000).prop_map(|(c, b, o)| valid_id(&c, b, o)).boxed();
    prop_oneof![
        4 => valid.clone(),
        // Wrong check character.
        1 => (valid.clone(), 1usize..11).prop_map(|(id, shift)| {
            const CHECKS: &[u8; 11] = b"0123456789X";
            let last = id.as_bytes()[17];
            let at = CHECKS.iter().position(|c| *c == last).unwrap_or(0);
            format!("{}{}", &id[..17], char::from(CHECKS[(at + shift) % 11]))
        }),
        // A date that does not exist, is too early, or is in the future, with a correct check character.
        1 => (county(), select(vec!["19990230", "20230229", "17991231", "20991231", "19901301", "19900100"]), 0u16..1000)
            .prop_map(|(c, date, o)| {
                let body = format!("{c}{date}{:03}", o % 1000);
                let check = idcard::check_character(&body).unwrap_or('0');
                format!("{body}{check}")
            }),
        // A province that does not exist, with a correct check character.
        1 => (select(vec!["00", "99", "10", "20", "66"]), valid.clone()).prop_map(|(p, id)| {
            let body = format!("{p}{}", &id[2..17]);
            let check = idcard::check_character(&body).unwrap_or('0');
            format!("{body}{check}")
        }),
        // Not normalized: lower-case x, 15 digits, spaces, full-width digits.
        1 => (valid, 0usize..4).prop_map(|(id, how)| match how {
            0 => id.replace('X', "x"),
            1 => format!("{}{}", &id[..6], &id[8..17]),
            2 => format!(" {id}"),
            _ => id.chars().map(|c| if c == '1' { '１' } else { c }).collect(),
        }),
    ]
}

/// Division codes: real ones of every level, and near misses.
pub fn division_code() -> impl Strategy<Value = String> {
    let real = select(DIVISIONS.clone());
    prop_oneof![
        4 => real.clone(),
        1 => (real.clone(), 0u8..10).prop_map(|(code, d)| format!("{}{d}", &code[..11])),
        1 => real.clone().prop_map(|code| format!(" {code}\t")),
        1 => real.prop_map(|code| code[..11].to_owned()),
        1 => select(vec!["000000000000", "990000000000", "63010200000０", "6301020000001", "abcdefghijkl"])
            .prop_map(str::to_owned),
    ]
}

/// Code-table codes, and values that are labels, aliases or near misses rather than codes.
pub fn code_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(CODES.clone()),
        1 => select(vec!["男", "女", "M", "F", "male", "１", " 1", "1 ", "001", "DB4", "a", "汉族", "57", "00", "E"])
            .prop_map(str::to_owned),
    ]
}

/// Text that trips up naive validators: CJK, emoji, combining marks,
/// full-width and non-ASCII digits, whitespace, the empty string.
pub fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            " ",
            "张",
            "张三",
            "欧阳娜娜",
            "买买提·艾力",
            "a",
            "b",
            "ab",
            "abc",
            "123456",
            "630102",
            "13912345678",
            "12912345678",
            "1391234567",
            "１２３４５６",
            "٣٤٥",
            "e\u{301}",
            "é",
            "🙂",
            "👨‍👩‍👧",
            "\u{3000}",
            "\u{feff}",
            "a\nb",
            "_",
            "0",
            "-1",
            "1e3",
            "true",
            "null",
            "normal",
            "\u{0}",
            "𠀀𠀁",
            "ＡＢＣ",
            "\t",
            "123",
            "aa",
            "ba",
            "ac",
            "12-34",
            "1234",
            "A1",
            "007",
            "-12",
            "12X",
            "Ab-1",
            "abc\n",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
        "[\u{4e00}-\u{9fa5}]{1,5}",
        "[0-9]{0,12}",
        "[a-z_]{0,6}",
        "[0-9aAbX-]{0,6}",
    ]
}

/// Strings of every sort a text column of a standard may meet.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => awkward_text(), 1 => id_number(), 1 => division_code(), 1 => code_value()]
}

/// The rows of `verdict` that the columnar validator and the jsonschema oracle
/// judge differently, each as a ready-to-print explanation.
pub fn disagreements(
    standard: &Standard,
    oracle: &jsonschema::Validator,
    batch: &RecordBatch,
    verdict: &Verdict,
) -> Vec<String> {
    let mut out = Vec::new();
    for row in 0..batch.num_rows() {
        let instance = json::row_to_json(standard, batch, row);
        let expected = oracle.is_valid(&instance);
        if verdict.valid[row] != expected {
            let errors: Vec<String> =
                oracle.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path().as_str())).collect();
            let violations: Vec<String> =
                verdict.violations_of(row).map(|v| format!("{} {}: {}", v.column, v.keyword, v.message)).collect();
            out.push(format!(
                "row {row}: columnar says valid={}, jsonschema says valid={expected}\n\
                 schema:\n{}\nrow JSON: {}\ncolumnar violations: {violations:#?}\njsonschema errors: {errors:#?}",
                verdict.valid[row],
                serde_json::to_string_pretty(&standard.document).unwrap_or_default(),
                serde_json::to_string(&instance).unwrap_or_default(),
            ));
        }
    }
    out
}

/// `value` as compact JSON, for messages.
pub fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
