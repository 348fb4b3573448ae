//! The data standards civlink ships, embedded in the binary so that
//! `civlink demo` runs with no configuration. Files live in `data/standards/`,
//! one per standard, named `<x-civlink-id>.json`; the demo's six departments
//! and their datasets are described in `docs/demo-data.md`.

use crate::standard::{Result, Standard};

/// Every shipped standard as `(id, document text)`, sorted by id.
pub const SHIPPED: &[(&str, &str)] = &[
    ("canlian.disability_certificates", include_str!("../data/standards/canlian.disability_certificates.json")),
    ("canlian.disability_subsidies", include_str!("../data/standards/canlian.disability_subsidies.json")),
    ("gongan.population", include_str!("../data/standards/gongan.population.json")),
    ("minzheng.dibao_households", include_str!("../data/standards/minzheng.dibao_households.json")),
    ("minzheng.dibao_members", include_str!("../data/standards/minzheng.dibao_members.json")),
    ("minzheng.tekun", include_str!("../data/standards/minzheng.tekun.json")),
    ("minzheng.temporary_aid", include_str!("../data/standards/minzheng.temporary_aid.json")),
    ("renshe.employment", include_str!("../data/standards/renshe.employment.json")),
    ("renshe.pension_payments", include_str!("../data/standards/renshe.pension_payments.json")),
    ("renshe.social_insurance", include_str!("../data/standards/renshe.social_insurance.json")),
    ("weijian.death_certificates", include_str!("../data/standards/weijian.death_certificates.json")),
    ("weijian.serious_illness", include_str!("../data/standards/weijian.serious_illness.json")),
    ("xiangcun.monitoring", include_str!("../data/standards/xiangcun.monitoring.json")),
    ("xiangcun.registered_poor", include_str!("../data/standards/xiangcun.registered_poor.json")),
];

/// The shipped standard with this id, parsed.
pub fn standard(id: &str) -> Option<Result<Standard>> {
    SHIPPED.iter().find(|(name, _)| *name == id).map(|(_, text)| Standard::from_json_str(text))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::code_table::CodeTableRegistry;
    use crate::idcard;
    use crate::mask::MaskStrategy;
    use crate::standard::Sensitivity;
    use crate::validate::Validator;

    fn parsed(id: &str) -> Standard {
        standard(id).unwrap_or_else(|| panic!("{id} is not shipped")).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    #[test]
    fn every_shipped_standard_parses_compiles_and_is_named_by_its_id() {
        for (id, text) in SHIPPED {
            let standard = Standard::from_json_str(text).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(&standard.id, id);
            assert_eq!(standard.version, "1.0.0", "{id}");
            let validator = Validator::compile(standard).unwrap();
            assert!(!validator.has_fallback(), "{id} should be fully columnar:\n{}", validator.report());
        }
        assert!(standard("gongan.population").is_some());
        assert!(standard("nope").is_none());
    }

    #[test]
    fn the_demo_departments_are_shipped_sorted_by_id() {
        let ids: Vec<&str> = SHIPPED.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [
                "canlian.disability_certificates",
                "canlian.disability_subsidies",
                "gongan.population",
                "minzheng.dibao_households",
                "minzheng.dibao_members",
                "minzheng.tekun",
                "minzheng.temporary_aid",
                "renshe.employment",
                "renshe.pension_payments",
                "renshe.social_insurance",
                "weijian.death_certificates",
                "weijian.serious_illness",
                "xiangcun.monitoring",
                "xiangcun.registered_poor",
            ]
        );
    }

    #[test]
    fn every_shipped_standard_follows_the_conventions() {
        let tables = CodeTableRegistry::builtin();
        for (id, _) in SHIPPED {
            let standard = parsed(id);
            let names: BTreeSet<&str> = standard.properties.iter().map(|p| p.name.as_str()).collect();

            assert!(!standard.primary_key.is_empty(), "{id}: no primary key");
            for column in &standard.primary_key {
                assert!(names.contains(column.as_str()), "{id}: key column {column} is not a property");
            }
            let division = standard.division_column.as_deref().unwrap_or_else(|| panic!("{id}: no division column"));
            assert_eq!(division, "division_code", "{id}");
            assert!(names.contains(division), "{id}");

            let required = standard.document["required"].as_array().unwrap_or_else(|| panic!("{id}: no required"));
            for column in required {
                let column = column.as_str().unwrap();
                assert!(names.contains(column), "{id}: required {column} is not a property");
            }
            assert!(standard.properties.iter().any(|p| p.required), "{id}");

            for p in &standard.properties {
                let at = format!("{id}.{}", p.name);
                if p.format.as_deref() == Some("gb11643") {
                    assert_eq!(p.mask, MaskStrategy::Pseudonym, "{at}: ID numbers are pseudonymized");
                    assert_eq!(p.sensitivity, Sensitivity::Sensitive, "{at}");
                    assert!(p.pii, "{at}");
                }
                if p.name.ends_with("id_number") {
                    assert_eq!(p.format.as_deref(), Some("gb11643"), "{at}");
                }
                if p.name == "name" || p.name.ends_with("_name") {
                    assert_eq!(p.mask, MaskStrategy::Name, "{at}");
                    assert!(p.pii, "{at}");
                }
                if p.pii {
                    assert_eq!(p.sensitivity, Sensitivity::Sensitive, "{at}: personal information is sensitive");
                    assert!(!p.mask.is_none(), "{at}: personal information needs a mask");
                }
                if let Some(table) = &p.code_table {
                    assert!(tables.get(table).is_some(), "{at}: unknown code table {table}");
                }
                if p.schema.contains_key("enum") {
                    let description = p.description.as_deref().unwrap_or_default();
                    assert!(
                        description.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                        "{at}: an enum's description gives the Chinese meaning of each value"
                    );
                }
            }
        }
    }

    #[test]
    fn insurance_type_table() {
        let t = CodeTableRegistry::builtin().require("insurance_type").unwrap();
        assert_eq!(t.codes().collect::<Vec<_>>(), ["110", "120", "170", "210", "310", "390", "410", "510"]);
        assert_eq!(t.translate("企业职工基本养老保险"), Some("110"));
        assert_eq!(t.translate("职工养老"), Some("110"));
        assert_eq!(t.translate("企业养老"), Some("110"));
        assert_eq!(t.translate("机关养老"), Some("120"));
        assert_eq!(t.translate("城乡居民基本养老保险"), Some("170"));
        assert_eq!(t.translate("居民养老"), Some("170"));
        assert_eq!(t.translate("城乡居民养老"), Some("170"));
        assert_eq!(t.translate("失业"), Some("210"));
        assert_eq!(t.translate("职工医保"), Some("310"));
        assert_eq!(t.translate("居民医保"), Some("390"));
        assert_eq!(t.translate("工伤保险"), Some("410"));
        assert_eq!(t.translate("生育"), Some("510"));
        assert_eq!(t.translate(" 110 "), Some("110"));
        assert_eq!(t.translate("养老"), None);
        assert_eq!(t.label("170"), Some("城乡居民基本养老保险"));
    }

    #[test]
    fn insurance_status_table() {
        let t = CodeTableRegistry::builtin().require("insurance_status").unwrap();
        assert_eq!(t.codes().collect::<Vec<_>>(), ["1", "2", "3", "4"]);
        assert_eq!(t.translate("正常参保"), Some("1"));
        assert_eq!(t.translate("参保缴费"), Some("1"));
        assert_eq!(t.translate("正常缴费"), Some("1"));
        assert_eq!(t.translate("暂停缴费"), Some("2"));
        assert_eq!(t.translate("中断"), Some("2"));
        assert_eq!(t.translate("终止"), Some("3"));
        assert_eq!(t.translate("待遇领取"), Some("4"));
        assert_eq!(t.translate("领取待遇"), Some("4"));
        assert_eq!(t.translate("5"), None);
    }

    #[test]
    fn monitoring_risk_table() {
        let t = CodeTableRegistry::builtin().require("monitoring_risk").unwrap();
        let codes: Vec<&str> = t.codes().collect();
        assert_eq!(codes, ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "99"]);
        assert_eq!(t.translate("因病"), Some("01"));
        assert_eq!(t.translate("因病致贫"), Some("01"));
        assert_eq!(t.translate("1"), Some("01"));
        assert_eq!(t.translate("因残"), Some("02"));
        assert_eq!(t.translate("意外事故"), Some("05"));
        assert_eq!(t.translate("缺劳动力"), Some("06"));
        assert_eq!(t.translate("务工就业不稳"), Some("07"));
        assert_eq!(t.translate("住房安全问题"), Some("09"));
        assert_eq!(t.translate("饮水安全问题"), Some("10"));
        assert_eq!(t.translate("其它"), Some("99"));
        assert_eq!(t.translate("11"), None);
    }

    /// A valid GB 11643 ID number: `first17` plus its check character.
    fn id(first17: &str) -> String {
        let check = idcard::check_character(first17).unwrap_or_else(|| panic!("{first17} is not 17 digits"));
        format!("{first17}{check}")
    }

    /// The same ID number with a wrong check character.
    fn bad_id(first17: &str) -> String {
        let good = idcard::check_character(first17).unwrap();
        format!("{first17}{}", if good == '0' { '1' } else { '0' })
    }

    const VILLAGE: &str = "630102001001";
    const PERSON: &str = "63010219800101001";

    /// One row per entry; every column is text, as a CSV source hands it over.
    fn text_batch(columns: &[&str], rows: &[Vec<Option<String>>]) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect();
        let arrays: Vec<ArrayRef> = (0..columns.len())
            .map(|i| Arc::new(StringArray::from(rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>())) as ArrayRef)
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// A standard, one valid row, and variants of it that each break the
    /// standard in the named `(column, keyword)`s.
    struct Case {
        id: &'static str,
        valid: Vec<(&'static str, String)>,
        /// `(column, replacement value or NULL, the keywords violated in that column)`.
        invalid: Vec<(&'static str, Option<String>, Vec<&'static str>)>,
    }

    fn row(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(c, v)| (*c, (*v).to_owned())).collect()
    }

    fn bad(
        column: &'static str,
        value: &str,
        keywords: &[&'static str],
    ) -> (&'static str, Option<String>, Vec<&'static str>) {
        (column, Some(value.to_owned()), keywords.to_vec())
    }

    fn missing(column: &'static str) -> (&'static str, Option<String>, Vec<&'static str>) {
        (column, None, vec!["required"])
    }

    fn cases() -> Vec<Case> {
        let person = id(PERSON);
        let broken = bad_id(PERSON);
        let household = format!("DB{VILLAGE}000001");
        let long_name = "张".repeat(31);
        let long_employer = "青".repeat(61);
        vec![
            Case {
                id: "gongan.population",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "张三"),
                    ("sex", "1"),
                    ("ethnic_group", "01"),
                    ("birth_date", "1980-01-01"),
                    ("household_number", "630102001"),
                    ("relationship", "02"),
                    ("division_code", VILLAGE),
                    ("address", "青海省西宁市城东区"),
                    ("status", "normal"),
                    ("status_date", "2000-01-01"),
                ]),
                invalid: vec![bad("id_number", &broken, &["format"]), bad("status", "dead", &["enum"])],
            },
            Case {
                id: "minzheng.dibao_households",
                valid: row(&[
                    ("household_id", &household),
                    ("head_id_number", &person),
                    ("head_name", "张三"),
                    ("division_code", VILLAGE),
                    ("category", "B"),
                    ("household_class", "DB2"),
                    ("household_size", "3"),
                    ("monthly_amount", "1260.5"),
                    ("bank_account", "6217002870001234567"),
                    ("phone", "13800001234"),
                    ("start_date", "2021-03-01"),
                    ("end_date", "2024-02-29"),
                    ("status", "active"),
                ]),
                invalid: vec![
                    bad("household_id", "DB63010200100100001", &["pattern"]),
                    bad("head_id_number", &broken, &["format"]),
                    missing("head_name"),
                    bad("head_name", "", &["minLength"]),
                    bad("division_code", "639999000000", &["format"]),
                    bad("category", "C", &["enum"]),
                    bad("category", "Z", &["x-civlink-code-table", "enum"]),
                    bad("household_class", "A", &["enum"]),
                    bad("household_size", "0", &["minimum"]),
                    bad("household_size", "21", &["maximum"]),
                    bad("household_size", "2.5", &["type"]),
                    bad("monthly_amount", "-1", &["minimum"]),
                    bad("bank_account", "6217-0028", &["pattern"]),
                    bad("phone", "12800001234", &["pattern"]),
                    bad("start_date", "2021-02-30", &["format"]),
                    bad("status", "closed", &["enum"]),
                ],
            },
            Case {
                id: "minzheng.dibao_members",
                valid: row(&[
                    ("household_id", &household),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("sex", "1"),
                    ("relationship", "02"),
                    ("division_code", VILLAGE),
                    ("monthly_amount", "420"),
                    ("start_date", "2021-03-01"),
                    ("end_date", "2024-01-31"),
                ]),
                invalid: vec![
                    bad("household_id", "XX630102001001000001", &["pattern"]),
                    bad("id_number", &broken, &["format"]),
                    bad("sex", "男", &["x-civlink-code-table"]),
                    bad("relationship", "00", &["x-civlink-code-table"]),
                    missing("monthly_amount"),
                    bad("end_date", "2024-13-01", &["format"]),
                ],
            },
            Case {
                id: "minzheng.tekun",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "李四"),
                    ("sex", "2"),
                    ("division_code", VILLAGE),
                    ("category", "D"),
                    ("support_mode", "dispersed"),
                    ("self_care", "partial"),
                    ("monthly_amount", "980"),
                    ("start_date", "2019-07-01"),
                    ("end_date", "2023-12-31"),
                ]),
                invalid: vec![
                    bad("category", "A", &["enum"]),
                    bad("support_mode", "home", &["enum"]),
                    bad("self_care", "some", &["enum"]),
                    bad("sex", "5", &["x-civlink-code-table"]),
                    missing("start_date"),
                ],
            },
            Case {
                id: "minzheng.temporary_aid",
                valid: row(&[
                    ("aid_id", "LS20240315000001"),
                    ("id_number", &person),
                    ("name", "王五"),
                    ("division_code", VILLAGE),
                    ("aid_type", "emergency"),
                    ("reason", "illness"),
                    ("amount", "3000"),
                    ("aid_date", "2024-03-15"),
                ]),
                invalid: vec![
                    bad("aid_id", "LS2024031500001", &["pattern"]),
                    bad("aid_type", "urgent", &["enum"]),
                    bad("reason", "fire", &["enum"]),
                    bad("amount", "-5", &["minimum"]),
                    bad("aid_date", "2024-02-30", &["format"]),
                ],
            },
            Case {
                id: "renshe.social_insurance",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "张三"),
                    ("division_code", VILLAGE),
                    ("insurance_type", "110"),
                    ("status", "1"),
                    ("monthly_base", "4200"),
                    ("start_date", "2005-07-01"),
                    ("end_date", "2020-06-30"),
                ]),
                invalid: vec![
                    bad("insurance_type", "999", &["x-civlink-code-table"]),
                    bad("insurance_type", "职工养老", &["x-civlink-code-table"]),
                    bad("status", "5", &["x-civlink-code-table"]),
                    bad("monthly_base", "-1", &["minimum"]),
                    bad("name", &long_name, &["maxLength"]),
                ],
            },
            Case {
                id: "renshe.pension_payments",
                valid: row(&[
                    ("payment_id", "YL2024010000000001"),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("division_code", VILLAGE),
                    ("insurance_type", "170"),
                    ("period", "2024-01"),
                    ("amount", "215.5"),
                    ("paid_date", "2024-01-15"),
                    ("bank_account", "622848000000000001"),
                ]),
                invalid: vec![
                    bad("payment_id", "YL202401000000001", &["pattern"]),
                    bad("insurance_type", "210", &["enum"]),
                    bad("insurance_type", "111", &["x-civlink-code-table", "enum"]),
                    bad("period", "2024-13", &["pattern"]),
                    bad("period", "1999-12", &["pattern"]),
                    bad("amount", "abc", &["type"]),
                    bad("bank_account", "12345", &["pattern"]),
                ],
            },
            Case {
                id: "renshe.employment",
                valid: row(&[
                    ("registration_id", "JY20230101000001"),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("division_code", VILLAGE),
                    ("employer", "西宁市某某建筑工程有限公司"),
                    ("employment_type", "flexible"),
                    ("start_date", "2023-01-01"),
                    ("end_date", "2023-12-31"),
                ]),
                invalid: vec![
                    bad("registration_id", "JY2023010100000A", &["pattern"]),
                    bad("employer", &long_employer, &["maxLength"]),
                    missing("employer"),
                    bad("employment_type", "retired", &["enum"]),
                ],
            },
            Case {
                id: "weijian.death_certificates",
                valid: row(&[
                    ("certificate_number", "Q630102001"),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("sex", "1"),
                    ("death_date", "2023-11-02"),
                    ("division_code", VILLAGE),
                    ("cause_icd10", "I21.9"),
                    ("place", "hospital"),
                ]),
                invalid: vec![
                    bad("certificate_number", "q630102001", &["pattern"]),
                    bad("cause_icd10", "I21.123", &["pattern"]),
                    bad("place", "street", &["enum"]),
                    bad("death_date", "2023-02-29", &["format"]),
                    missing("death_date"),
                ],
            },
            Case {
                id: "weijian.serious_illness",
                valid: row(&[
                    ("record_id", "ZY20230501000001"),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("division_code", VILLAGE),
                    ("hospital", "青海大学附属医院"),
                    ("diagnosis_icd10", "C34"),
                    ("admission_date", "2023-05-01"),
                    ("discharge_date", "2023-05-20"),
                    ("total_cost", "86000"),
                    ("insurance_paid", "60000"),
                    ("out_of_pocket", "26000"),
                ]),
                invalid: vec![
                    bad("record_id", "ZY2023050100001", &["pattern"]),
                    bad("diagnosis_icd10", "C3", &["pattern"]),
                    missing("hospital"),
                    bad("total_cost", "八万", &["type"]),
                    bad("out_of_pocket", "-0.01", &["minimum"]),
                    bad("discharge_date", "2023-05-32", &["format"]),
                ],
            },
            Case {
                id: "canlian.disability_certificates",
                valid: row(&[
                    ("certificate_number", &format!("{person}41")),
                    ("id_number", &person),
                    ("name", "张三"),
                    ("sex", "1"),
                    ("division_code", VILLAGE),
                    ("category", "4"),
                    ("grade", "1"),
                    ("issue_date", "2018-06-01"),
                    ("status", "valid"),
                ]),
                invalid: vec![
                    bad("certificate_number", &format!("{person}81"), &["pattern"]),
                    bad("certificate_number", &format!("{person}45"), &["pattern"]),
                    bad("category", "8", &["x-civlink-code-table"]),
                    bad("grade", "一级", &["x-civlink-code-table"]),
                    bad("status", "revoked", &["enum"]),
                    bad("id_number", &broken, &["format"]),
                ],
            },
            Case {
                id: "canlian.disability_subsidies",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "张三"),
                    ("division_code", VILLAGE),
                    ("subsidy_type", "care"),
                    ("monthly_amount", "100"),
                    ("start_date", "2018-07-01"),
                    ("end_date", "2022-06-30"),
                ]),
                invalid: vec![
                    bad("subsidy_type", "both", &["enum"]),
                    missing("subsidy_type"),
                    bad("monthly_amount", "-1", &["minimum"]),
                    bad("division_code", "63010200100", &["format"]),
                ],
            },
            Case {
                id: "xiangcun.registered_poor",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "张三"),
                    ("household_id", &format!("{VILLAGE}0001")),
                    ("relationship", "01"),
                    ("division_code", VILLAGE),
                    ("poverty_status", "lifted"),
                    ("registered_year", "2014"),
                    ("lifted_year", "2020"),
                ]),
                invalid: vec![
                    bad("household_id", "630102001001001", &["pattern"]),
                    bad("relationship", "本人", &["x-civlink-code-table"]),
                    bad("poverty_status", "poor", &["enum"]),
                    bad("registered_year", "2013", &["minimum"]),
                    bad("lifted_year", "2021", &["maximum"]),
                    bad("lifted_year", "二〇二〇", &["type"]),
                ],
            },
            Case {
                id: "xiangcun.monitoring",
                valid: row(&[
                    ("id_number", &person),
                    ("name", "张三"),
                    ("household_id", &format!("{VILLAGE}0001")),
                    ("division_code", VILLAGE),
                    ("monitor_type", "marginal"),
                    ("risk_type", "07"),
                    ("risk_eliminated", "no"),
                    ("identified_date", "2022-04-01"),
                ]),
                invalid: vec![
                    bad("monitor_type", "poor", &["enum"]),
                    bad("risk_type", "11", &["x-civlink-code-table"]),
                    bad("risk_type", "7", &["x-civlink-code-table"]),
                    bad("risk_eliminated", "maybe", &["enum"]),
                    bad("identified_date", "2022-04-31", &["format"]),
                    missing("household_id"),
                ],
            },
        ]
    }

    #[test]
    fn valid_and_invalid_rows_of_every_shipped_standard() {
        let cases = cases();
        let covered: BTreeSet<&str> = cases.iter().map(|c| c.id).collect();
        let shipped: BTreeSet<&str> = SHIPPED.iter().map(|(id, _)| *id).collect();
        assert_eq!(covered, shipped, "every shipped standard has a case");

        for case in &cases {
            let standard = parsed(case.id);
            let columns: Vec<&str> = case.valid.iter().map(|(c, _)| *c).collect();
            let properties: BTreeSet<&str> = standard.properties.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(
                columns.iter().copied().collect::<BTreeSet<_>>(),
                properties,
                "{}: the valid row fills every column",
                case.id
            );
            let validator = Validator::compile(standard).unwrap();

            let valid: Vec<Option<String>> = case.valid.iter().map(|(_, v)| Some(v.clone())).collect();
            let verdict = validator.validate(&text_batch(&columns, std::slice::from_ref(&valid))).unwrap();
            assert_eq!(verdict.violations, vec![], "{}: the valid row", case.id);
            assert_eq!(verdict.valid, vec![true]);

            assert!(!case.invalid.is_empty());
            for (column, value, keywords) in &case.invalid {
                let position = columns.iter().position(|c| c == column).unwrap_or_else(|| panic!("{column}"));
                let mut row = valid.clone();
                row[position] = value.clone();
                // One row per batch, so the variants do not collide on the primary key.
                let verdict = validator.validate(&text_batch(&columns, &[row])).unwrap();
                let found: BTreeSet<(&str, &str)> =
                    verdict.violations.iter().map(|v| (v.column.as_str(), v.keyword.as_str())).collect();
                let expected: BTreeSet<(&str, &str)> = keywords.iter().map(|k| (*column, *k)).collect();
                assert_eq!(found, expected, "{}: {column} = {value:?}", case.id);
                assert_eq!(verdict.valid, vec![false]);
                // Sensitive values never show in clear in messages.
                if let Some(value) = value
                    && validator.standard().property(column).is_some_and(|p| p.sensitivity == Sensitivity::Sensitive)
                    && value.chars().count() > 8
                {
                    assert!(verdict.violations.iter().all(|v| !v.message.contains(value.as_str())), "{}", case.id);
                }
            }

            // The primary key is unique within a batch.
            let verdict = validator.validate(&text_batch(&columns, &[valid.clone(), valid])).unwrap();
            let key = &validator.standard().primary_key[0];
            let found: Vec<(usize, &str, &str)> =
                verdict.violations.iter().map(|v| (v.row, v.column.as_str(), v.keyword.as_str())).collect();
            assert_eq!(found, [(1, key.as_str(), "x-civlink-primary-key")], "{}", case.id);
        }
    }

    #[test]
    fn a_composite_key_allows_one_person_in_several_rows() {
        let validator = Validator::compile(parsed("renshe.social_insurance")).unwrap();
        let person = id(PERSON);
        let columns = ["id_number", "name", "division_code", "insurance_type", "status", "start_date"];
        let row = |insurance: &str| -> Vec<Option<String>> {
            [person.as_str(), "张三", VILLAGE, insurance, "1", "2005-07-01"]
                .iter()
                .map(|v| Some((*v).to_owned()))
                .collect()
        };
        let verdict = validator.validate(&text_batch(&columns, &[row("110"), row("310"), row("110")])).unwrap();
        assert_eq!(verdict.valid, vec![true, true, false]);
        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].keyword, "x-civlink-primary-key");
    }
}
