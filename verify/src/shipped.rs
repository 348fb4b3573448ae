//! The rules shipped in the project (`rules/*.toml`), compiled into the
//! binary so that `civlink demo` and `civlink verify` work from anywhere.

/// (file stem, text) of every shipped rule.
pub const SHIPPED: [(&str, &str); 8] = [
    ("dibao_deceased", include_str!("../../rules/dibao_deceased.toml")),
    ("dibao_employee_pension", include_str!("../../rules/dibao_employee_pension.toml")),
    ("dibao_employed", include_str!("../../rules/dibao_employed.toml")),
    ("dibao_two_counties", include_str!("../../rules/dibao_two_counties.toml")),
    ("missed_assistance", include_str!("../../rules/missed_assistance.toml")),
    ("disabled_without_care_subsidy", include_str!("../../rules/disabled_without_care_subsidy.toml")),
    ("tekun_and_dibao", include_str!("../../rules/tekun_and_dibao.toml")),
    ("aid_after_death", include_str!("../../rules/aid_after_death.toml")),
];
