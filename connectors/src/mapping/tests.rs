//! The mapping's unit tests.

use arrow::array::{Date32Array, Int64Array};

use super::derive::*;
use super::values::*;
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
    let input = batch(&[("sex", vec![Some("男"), Some(" 女 "), Some("Ｍ"), Some("2"), Some("妖"), None, Some("")])]);
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
        ("division", vec![Some("630102"), Some("６３０１ ０２"), Some("630102001001"), Some("000000"), Some("12345")]),
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
        s(&[Some("1234.50"), Some("12"), Some("-0.5"), Some("123.4"), Some("1.5e3"), Some("abc"), Some("1.2.3"), None])
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
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::RenameCollision { target, sources } if target == "x" && sources == &["a", "b"])
        )
    );
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

#[test]
fn boolean_datetime_string_and_half_width_normalisers() {
    let mapping = compile(
        r#"
        [[columns]]
        name = "flag"
        cast = "boolean"
        [[columns]]
        name = "at"
        cast = "datetime"
        [[columns]]
        name = "at_custom"
        cast = "datetime"
        date_format = "%Y年%m月%d日 %H时%M分%S秒"
        [[columns]]
        name = "code"
        normalize = "half_width"
        "#,
    );
    let input = batch(&[
        ("flag", vec![Some("是"), Some("否"), Some("Y"), Some("0"), Some("TRUE"), Some("也许"), None]),
        (
            "at",
            vec![
                Some("2024-01-31 08:00:00"),
                Some("2024-01-31T00:00:00Z"),
                Some("2024/01/31 08:00"),
                Some("明天"),
                None,
                None,
                None,
            ],
        ),
        ("at_custom", vec![Some("2024年01月31日 08时00分00秒"), None, None, None, None, None, None]),
        ("code", vec![Some("ＡＢ１２３"), Some("ab"), None, None, None, None, None]),
    ]);
    let out = mapping.apply(&input).unwrap();
    assert_eq!(
        column(&out, "flag"),
        s(&[Some("true"), Some("false"), Some("true"), Some("false"), Some("true"), Some("也许"), None])
    );
    assert_eq!(
        column(&out, "at")[..4],
        s(&[
            Some("2024-01-31T08:00:00+08:00"),
            Some("2024-01-31T00:00:00Z"),
            Some("2024-01-31T08:00:00+08:00"),
            Some("明天")
        ])
    );
    assert_eq!(column(&out, "at_custom")[0].as_deref(), Some("2024-01-31T08:00:00+08:00"));
    assert_eq!(column(&out, "code")[..2], s(&[Some("AB123"), Some("ab")]));
    // What the casts produce is what the standard reads.
    assert!(civlink_standards::validate::parse_date_time("2024-01-31T08:00:00+08:00").is_some());
}

#[test]
fn json_types_follow_renames_and_steps_and_are_counted() {
    use civlink_standards::validate::{Delivered, DeliveredTypes};
    let mapping = compile(
        r#"
        rename = { "CODE" = "code", "AMOUNT" = "amount", "NOTE" = "note" }
        json_null = "absent"
        [[columns]]
        name = "code"
        cast = "string"
        [[columns]]
        name = "amount"
        cast = "number"
        [[columns]]
        name = "note"
        trim = true
        "#,
    );
    let input = batch(&[
        ("CODE", vec![Some("170"), Some("390"), None]),
        ("AMOUNT", vec![Some("12.5"), Some("1,234"), None]),
        ("NOTE", vec![Some(" x "), Some("y"), None]),
        ("OTHER", vec![Some("1"), None, None]),
    ]);
    let mut delivered = DeliveredTypes::new();
    delivered.insert("CODE", vec![Delivered::Integer, Delivered::String, Delivered::Null]);
    delivered.insert("AMOUNT", vec![Delivered::String, Delivered::String, Delivered::Text]);
    delivered.insert("NOTE", vec![Delivered::String, Delivered::String, Delivered::Null]);
    delivered.insert("OTHER", vec![Delivered::Integer, Delivered::Null, Delivered::Text]);
    let mapped = mapping.apply_delivered(&input, Some(&delivered)).unwrap();
    let types = mapped.delivered.expect("types kept");
    // The number read as text is text now; the string stays a string.
    assert_eq!(types.get("code").unwrap(), [Delivered::Text, Delivered::String, Delivered::Text]);
    // A cast read both strings; an untouched value keeps its type.
    assert_eq!(types.get("amount").unwrap()[..2], [Delivered::Text, Delivered::Text]);
    assert_eq!(types.get("note").unwrap(), [Delivered::Text, Delivered::String, Delivered::Text]);
    assert_eq!(types.get("OTHER").unwrap(), [Delivered::Integer, Delivered::Text, Delivered::Text]);
    assert!(types.get("CODE").is_none());

    let counted = |name: &str| -> (u64, u64) {
        mapped
            .normalised
            .iter()
            .filter(|n| n.column == name)
            .fold((0, 0), |(a, b), n| (a + n.as_delivered, b + n.normalised))
    };
    // code: 170 retyped (normalised), "390" already a string, null declared absent (normalised).
    assert_eq!(counted("code"), (1, 1 + 1));
    // amount: "12.5" and "1,234" both read by the cast from JSON strings.
    assert_eq!(counted("amount"), (0, 2));
    // note: " x " trimmed, "y" as delivered, the null declared absent.
    assert_eq!(counted("note"), (1, 1 + 1));
    assert_eq!(counted("OTHER"), (1, 1));

    // Without types (a CSV), the same mapping counts only changed text.
    let plain = mapping.apply_delivered(&input, None).unwrap();
    assert!(plain.delivered.is_none());
    let amount: Vec<_> = plain.normalised.iter().filter(|n| n.column == "amount").collect();
    assert_eq!((amount[0].as_delivered, amount[0].normalised), (1, 1));
}
