//! A rule file (`rules/<id>.toml`) and what it declares.
//!
//! ```toml
//! id = "dibao_deceased"
//! version = 1
//! title_zh = "已死亡人员仍在享受低保"
//! title_en = "A deceased person still receives 低保"
//! basis = "《最低生活保障审核确认办法》第三十四条"
//! severity = "high"           # high | medium | low
//! subject = "person"          # person | household
//! department = "minzheng"     # the office that acts, unless [columns] department names a column
//! explain = "低保成员 {name}（{id_number}）{death_fact}，低保自 {start_date} 起仍在享受"
//! sql = "SELECT …"
//!
//! [columns]
//! subject = "id_number"       # the output column holding the subject
//! division = "division_code"  # the responsible division (12 digits)
//! evidence = ["name", "start_date", "death_fact"]
//!
//! [[rests_on]]                # each source row a finding rests on
//! dataset = "minzheng.dibao_members"
//! key = { household_id = "household_id", id_number = "id_number" }  # primary key column = output column
//!
//! [schedule]                  # optional
//! after_ingest = true         # run after `civlink ingest` commits a dataset the rule reads
//! run_as = "province-verifier"  # the principal it runs as (it sees what that principal may read)
//! ```
//!
//! Parsing checks the file on its own ([`Rule::parse`]); planning the SQL
//! against the datasets is [`crate::check`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use civlink_catalog::findings::{Severity, SubjectKind};
use civlink_catalog::model::{DatasetId, Department};
use serde::Deserialize;

use crate::error::{Problem, RuleProblems};
use crate::explain::Template;

/// A rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// The rule's id: lower-case letters, digits and `_`, and the file's name.
    id: String,
    /// Its version, from 1; raise it whenever the SQL or the meaning changes.
    version: i64,
    /// The Chinese title officers read.
    title_zh: String,
    /// The English title.
    title_en: String,
    /// The policy provision the rule checks.
    basis: String,
    /// `high`, `medium` or `low`.
    severity: String,
    /// `person` or `household`.
    subject: String,
    /// The department whose office acts on a finding (unless a column says).
    #[serde(default)]
    department: Option<String>,
    /// The explanation template: `{column}` is that output column's value.
    explain: String,
    /// The rule's query over the standard datasets.
    sql: String,
    /// Which output columns mean what.
    columns: ColumnsFile,
    /// The source rows a finding rests on.
    #[serde(default)]
    rests_on: Vec<RestsOnFile>,
    /// Whether `civlink verify run` runs it when no rule is named (default true).
    #[serde(default)]
    enabled: Option<bool>,
    /// When it runs on its own.
    #[serde(default)]
    schedule: Option<ScheduleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    /// Run after `civlink ingest` commits a dataset the rule reads.
    #[serde(default)]
    after_ingest: bool,
    /// The principal the scheduled runs run as.
    #[serde(default)]
    run_as: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnsFile {
    /// The output column holding the subject.
    subject: String,
    /// The output column holding the responsible division.
    division: String,
    /// The output column holding the responsible department's code, if it varies by row.
    #[serde(default)]
    department: Option<String>,
    /// The output columns kept as evidence.
    #[serde(default)]
    evidence: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestsOnFile {
    /// `department.name`.
    dataset: String,
    /// The dataset's primary-key column → the output column holding its value.
    key: BTreeMap<String, String>,
}

/// Where a finding's responsible department comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentSource {
    /// Always this one.
    Fixed(Department),
    /// This output column's value (a department code); `fallback` when it is NULL.
    Column {
        /// The column.
        column: String,
        /// The department for rows whose column is NULL.
        fallback: Option<Department>,
    },
}

/// A source row a finding rests on: the dataset and where its key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestsOn {
    /// The dataset.
    pub dataset: DatasetId,
    /// Primary-key column → output column.
    pub key: BTreeMap<String, String>,
}

/// A parsed rule (checked on its own; [`crate::check::check_rule`] checks it
/// against the datasets).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Id.
    pub id: String,
    /// Version.
    pub version: i64,
    /// Chinese title.
    pub title_zh: String,
    /// English title.
    pub title_en: String,
    /// Policy basis.
    pub basis: String,
    /// Severity.
    pub severity: Severity,
    /// Person or household.
    pub subject: SubjectKind,
    /// The responsible department.
    pub department: DepartmentSource,
    /// The explanation template.
    pub explain: Template,
    /// The SQL.
    pub sql: String,
    /// The subject column.
    pub subject_column: String,
    /// The responsible-division column.
    pub division_column: String,
    /// The evidence columns.
    pub evidence: Vec<String>,
    /// The rows a finding rests on.
    pub rests_on: Vec<RestsOn>,
    /// Run when no rule is named.
    pub enabled: bool,
    /// Run after an ingestion commits a dataset it reads, as this principal.
    pub after_ingest: Option<String>,
}

impl Rule {
    /// Parse the text of a rule file named `file_stem` (the id must equal
    /// it when given). Every problem is reported at once.
    pub fn parse(text: &str, file_stem: Option<&str>) -> Result<Rule, RuleProblems> {
        let named = file_stem.unwrap_or("(rule)").to_owned();
        let file: RuleFile = toml::from_str(text)
            .map_err(|e| RuleProblems::new(&named, vec![Problem::Syntax { message: e.message().to_owned() }]))?;
        let mut problems = Vec::new();
        if !valid_id(&file.id) {
            problems.push(Problem::BadId { id: file.id.clone() });
        }
        if let Some(stem) = file_stem
            && stem != file.id
        {
            problems.push(Problem::FileName { id: file.id.clone(), file: stem.to_owned() });
        }
        if file.version < 1 {
            problems.push(Problem::BadVersion { version: file.version });
        }
        for (field, value) in [
            ("title_zh", &file.title_zh),
            ("title_en", &file.title_en),
            ("basis", &file.basis),
            ("sql", &file.sql),
            ("explain", &file.explain),
        ] {
            if value.trim().is_empty() {
                problems.push(Problem::Empty { field });
            }
        }
        let severity = Severity::parse(&file.severity);
        if severity.is_none() {
            problems.push(Problem::BadValue {
                field: "severity",
                value: file.severity.clone(),
                allowed: "high, medium, low",
            });
        }
        let subject = SubjectKind::parse(&file.subject);
        if subject.is_none() {
            problems.push(Problem::BadValue {
                field: "subject",
                value: file.subject.clone(),
                allowed: "person, household",
            });
        }
        let fixed = match file.department.as_deref().map(str::parse::<Department>) {
            None => None,
            Some(Ok(department)) => Some(department),
            Some(Err(_)) => {
                problems.push(Problem::BadValue {
                    field: "department",
                    value: file.department.clone().unwrap_or_default(),
                    allowed: "a department code (minzheng, gongan, renshe, weijian, canlian, xiangcun)",
                });
                None
            }
        };
        let department = match (&file.columns.department, fixed) {
            (Some(column), fallback) => Some(DepartmentSource::Column { column: column.clone(), fallback }),
            (None, Some(department)) => Some(DepartmentSource::Fixed(department)),
            (None, None) => {
                if file.department.is_none() {
                    problems.push(Problem::NoDepartment);
                }
                None
            }
        };
        let explain = match Template::parse(&file.explain) {
            Ok(template) => Some(template),
            Err(message) => {
                problems.push(Problem::Template { message });
                None
            }
        };
        let mut evidence_seen = BTreeSet::new();
        for column in &file.columns.evidence {
            if !evidence_seen.insert(column) {
                problems.push(Problem::Repeated { field: "columns.evidence", value: column.clone() });
            }
        }
        let mut rests_on = Vec::new();
        for (i, entry) in file.rests_on.iter().enumerate() {
            match entry.dataset.parse::<DatasetId>() {
                Ok(dataset) if !entry.key.is_empty() => rests_on.push(RestsOn { dataset, key: entry.key.clone() }),
                Ok(_) => problems.push(Problem::EmptyKey { index: i + 1, dataset: entry.dataset.clone() }),
                Err(_) => {
                    problems.push(Problem::BadDataset { field: "rests_on.dataset", value: entry.dataset.clone() })
                }
            }
        }
        let after_ingest = match &file.schedule {
            Some(ScheduleFile { after_ingest: true, run_as }) => {
                let run_as = run_as.as_deref().map(str::trim).unwrap_or_default();
                if run_as.is_empty() {
                    problems.push(Problem::NoRunAs);
                }
                Some(run_as.to_owned())
            }
            _ => None,
        };
        match (problems.is_empty(), severity, subject, department, explain) {
            (true, Some(severity), Some(subject), Some(department), Some(explain)) => Ok(Rule {
                id: file.id,
                version: file.version,
                title_zh: file.title_zh,
                title_en: file.title_en,
                basis: file.basis,
                severity,
                subject,
                department,
                explain,
                sql: file.sql,
                subject_column: file.columns.subject,
                division_column: file.columns.division,
                evidence: file.columns.evidence,
                rests_on,
                enabled: file.enabled.unwrap_or(true),
                after_ingest,
            }),
            _ => Err(RuleProblems::new(&named_or(&file.id, &named), problems)),
        }
    }

    /// Parse the rule file at `path`.
    pub fn read(path: &Path) -> Result<Rule, RuleProblems> {
        let stem = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
        let named = stem.clone().unwrap_or_else(|| path.display().to_string());
        let text = std::fs::read_to_string(path).map_err(|e| {
            RuleProblems::new(
                &named,
                vec![Problem::Unreadable { path: path.display().to_string(), message: e.to_string() }],
            )
        })?;
        Rule::parse(&text, stem.as_deref())
    }

    /// Every output column the rule relies on, with what it is for.
    pub fn required_columns(&self) -> Vec<(&str, &'static str)> {
        let mut columns = vec![
            (self.subject_column.as_str(), "columns.subject"),
            (self.division_column.as_str(), "columns.division"),
        ];
        if let DepartmentSource::Column { column, .. } = &self.department {
            columns.push((column.as_str(), "columns.department"));
        }
        columns.extend(self.evidence.iter().map(|c| (c.as_str(), "columns.evidence")));
        columns.extend(self.explain.placeholders().map(|c| (c, "explain")));
        for rests_on in &self.rests_on {
            columns.extend(rests_on.key.values().map(|c| (c.as_str(), "rests_on.key")));
        }
        columns
    }
}

fn named_or(id: &str, fallback: &str) -> String {
    if valid_id(id) { id.to_owned() } else { fallback.to_owned() }
}

/// Lower-case ASCII letters, digits and `_`, starting with a letter, at most 64.
fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "dibao_employed"
version = 2
title_zh = "低保对象有就业登记"
title_en = "A 低保 recipient is registered as employed"
basis = "《最低生活保障审核确认办法》第十条"
severity = "medium"
subject = "person"
department = "minzheng"
explain = "低保成员 {name}（{id_number}）自 {employed_since} 起就业"
sql = "SELECT 1"

[columns]
subject = "id_number"
division = "division_code"
evidence = ["name", "employed_since"]

[[rests_on]]
dataset = "renshe.employment"
key = { registration_id = "registration_id" }
"#;

    #[test]
    fn a_good_rule_parses() {
        let rule = Rule::parse(GOOD, Some("dibao_employed")).unwrap();
        assert_eq!(rule.version, 2);
        assert_eq!(rule.severity, Severity::Medium);
        assert_eq!(rule.department, DepartmentSource::Fixed(Department::Minzheng));
        let columns: Vec<&str> = rule.required_columns().into_iter().map(|(c, _)| c).collect();
        assert!(columns.contains(&"registration_id") && columns.contains(&"employed_since"));
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once() {
        let bad = GOOD
            .replace("version = 2", "version = 0")
            .replace("severity = \"medium\"", "severity = \"urgent\"")
            .replace("subject = \"person\"", "subject = \"family\"")
            .replace("title_en = \"A 低保 recipient is registered as employed\"", "title_en = \" \"");
        let err = Rule::parse(&bad, Some("other_name")).unwrap_err();
        let text = err.to_string();
        for expected in ["version 0", "urgent", "family", "title_en", "other_name"] {
            assert!(text.contains(expected), "{expected} missing from: {text}");
        }
        assert_eq!(err.problems.len(), 5, "{text}");
    }

    #[test]
    fn unknown_fields_and_bad_toml_are_syntax_errors() {
        let err = Rule::parse(&format!("colour = \"red\"\n{GOOD}"), None).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = Rule::parse("id = ", None).unwrap_err();
        assert!(matches!(err.problems[0], Problem::Syntax { .. }));
    }

    #[test]
    fn a_scheduled_rule_names_its_principal() {
        let scheduled = format!("{GOOD}\n[schedule]\nafter_ingest = true\nrun_as = \"verifier\"\n");
        assert_eq!(Rule::parse(&scheduled, None).unwrap().after_ingest.as_deref(), Some("verifier"));
        assert_eq!(Rule::parse(GOOD, None).unwrap().after_ingest, None);
        let nobody = format!("{GOOD}\n[schedule]\nafter_ingest = true\n");
        let err = Rule::parse(&nobody, None).unwrap_err();
        assert!(matches!(err.problems[0], Problem::NoRunAs), "{err}");
        let off = format!("{GOOD}\n[schedule]\nafter_ingest = false\n");
        assert_eq!(Rule::parse(&off, None).unwrap().after_ingest, None);
    }

    #[test]
    fn a_template_naming_nothing_or_unclosed_is_refused() {
        let err = Rule::parse(&GOOD.replace("{employed_since} 起就业", "{employed_since 起就业"), None).unwrap_err();
        assert!(matches!(err.problems[0], Problem::Template { .. }), "{err}");
    }
}
