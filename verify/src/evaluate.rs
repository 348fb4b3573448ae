//! Running a rule: its SQL through the governed query layer as one
//! principal ([`SessionFactory::run`], so it sees only what that principal
//! may read, and the query is audited like any other), its rows turned into
//! [`Candidate`]s, and the evaluation recorded with its findings
//! (`MetadataStore::record_evaluation`) and in the audit chain.
//!
//! A rule runs only under a principal that sees personal data masked:
//! findings must never hold a clear ID number or name, so a principal with
//! an unmasking grant on a column the rule reads is refused before the
//! query runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::Utc;
use civlink_catalog::findings::{Candidate, EvaluationSummary, RowRef, RuleEvaluation};
use civlink_catalog::model::Department;
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, Principal};
use civlink_query::{QueryRequest, SessionFactory, Statement};
use civlink_standards::division::DivisionCode;
use civlink_standards::mask::MaskStrategy;
use futures::TryStreamExt;

use crate::check::CheckedRule;
use crate::error::{Error, Result};
use crate::rule::{DepartmentSource, Rule};

/// What one run of one rule did.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    /// The rule.
    pub rule: String,
    /// Its version.
    pub version: i64,
    /// The rule run's id (also the query id in the audit chain).
    pub run_id: String,
    /// Rows the SQL returned.
    pub rows: u64,
    /// Rows that could not be routed (no subject, or no valid division or
    /// department): counted, never stored.
    pub unroutable: u64,
    /// What recording the findings changed.
    pub summary: EvaluationSummary,
    /// The dataset versions it read.
    pub dataset_versions: BTreeMap<String, i64>,
    /// How long it took, end to end.
    pub elapsed: Duration,
}

/// Run `checked` as `principal` and record its findings (see the module docs).
pub async fn run_rule(factory: &SessionFactory, principal: &Principal, checked: &CheckedRule) -> Result<RuleOutcome> {
    run_rule_triggered(factory, principal, checked, None).await
}

/// [`run_rule`] on someone else's behalf: a scheduled run, `trigger`
/// naming what started it (`civlink ingest of … by …`), which its audit
/// entry records beside the principal it ran as.
pub async fn run_rule_triggered(
    factory: &SessionFactory,
    principal: &Principal,
    checked: &CheckedRule,
    trigger: Option<&str>,
) -> Result<RuleOutcome> {
    let rule = &checked.rule;
    let clock = Instant::now();
    let started_at = Utc::now();
    let run_id = format!("vr_{}", uuid::Uuid::new_v4().simple());
    let query_error = |source| Error::Query { rule: rule.id.clone(), source };

    let snapshot = factory.policy().current().await.map_err(query_error)?;
    let readable = snapshot.readable(principal, started_at);
    let mut dataset_versions = BTreeMap::new();
    for id in &checked.datasets {
        // A dataset the principal may not read fails in the query below, with the query layer's own answer.
        let Some(dataset) = readable.iter().find(|r| r.record.spec.id == *id) else { continue };
        for column in &dataset.access.columns {
            let pii = dataset.standard.property(&column.name).is_some_and(|p| p.pii);
            if pii && column.mask == MaskStrategy::None {
                return Err(Error::Unmasked {
                    rule: rule.id.clone(),
                    principal: principal.name.clone(),
                    dataset: id.to_string(),
                    column: column.name.clone(),
                });
            }
        }
        if let Some(version) = dataset.record.current_version {
            dataset_versions.insert(id.to_string(), version);
        }
    }

    let request = QueryRequest {
        principal: principal.clone(),
        purpose: Some(format!("比对规则 {} v{}", rule.id, rule.version)),
        action: AuditAction::Query,
        text: rule.sql.clone(),
        query_id: Some(run_id.clone()),
    };
    let stream =
        factory.run(request, Statement::Sql { sql: rule.sql.clone(), params: None }).await.map_err(query_error)?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(query_error)?;
    let (candidates, unroutable) = candidates(rule, &batches)?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    if unroutable > 0 {
        tracing::warn!(rule = %rule.id, unroutable, "rows without a subject, division or department were not stored");
    }

    let evaluation = RuleEvaluation {
        run_id: run_id.clone(),
        rule_id: rule.id.clone(),
        rule_version: rule.version,
        severity: rule.severity,
        subject_kind: rule.subject,
        principal: principal.name.clone(),
        scope: principal.division,
        dataset_versions: dataset_versions.clone(),
        started_at,
    };
    let summary = factory.store().record_evaluation(&evaluation, &candidates).await?;
    let mut entry = AuditEntry::new(principal.name.clone(), AuditAction::RuleRun, AuditOutcome::OK);
    entry.purpose = Some(format!("比对规则 {} v{}", rule.id, rule.version));
    entry.sql_text = Some(format!(
        "verify run {} v{} ({run_id}): {} found, {} new, {} reopened, {} resolved at source{}",
        rule.id,
        rule.version,
        summary.found,
        summary.new,
        summary.reopened,
        summary.resolved,
        trigger.map(|t| format!("; scheduled, after {t}")).unwrap_or_default()
    ));
    entry.datasets = checked.datasets.iter().map(ToString::to_string).collect();
    entry.rows = Some(summary.found);
    entry.duration_ms = Some(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    factory.auditor().append(entry).await.map_err(query_error)?;
    Ok(RuleOutcome {
        rule: rule.id.clone(),
        version: rule.version,
        run_id,
        rows,
        unroutable,
        summary,
        dataset_versions,
        elapsed: clock.elapsed(),
    })
}

/// The candidates in `batches`, and how many rows could not be routed.
pub fn candidates(rule: &Rule, batches: &[RecordBatch]) -> Result<(Vec<Candidate>, u64)> {
    let options = FormatOptions::default();
    let mut found = Vec::new();
    let mut unroutable = 0u64;
    let mut needed: Vec<&str> = rule.required_columns().into_iter().map(|(c, _)| c).collect();
    needed.sort_unstable();
    needed.dedup();
    for batch in batches {
        let schema = batch.schema();
        let mut columns: BTreeMap<&str, (&dyn Array, ArrayFormatter<'_>)> = BTreeMap::new();
        for name in &needed {
            let index = schema.index_of(name).map_err(|_| Error::BadRow {
                rule: rule.id.clone(),
                message: format!("the result has no column {name:?}"),
            })?;
            let array = batch.column(index).as_ref();
            let formatter = ArrayFormatter::try_new(array, &options)
                .map_err(|e| Error::BadRow { rule: rule.id.clone(), message: format!("column {name:?}: {e}") })?;
            columns.insert(name, (array, formatter));
        }
        let value = |name: &str, row: usize| -> Option<String> {
            let (array, formatter) = columns.get(name)?;
            (!array.is_null(row)).then(|| formatter.value(row).to_string())
        };
        for row in 0..batch.num_rows() {
            let Some(subject) = value(&rule.subject_column, row) else {
                unroutable += 1;
                continue;
            };
            let Some(division) = value(&rule.division_column, row).and_then(|d| DivisionCode::parse(&d).ok()) else {
                unroutable += 1;
                continue;
            };
            let department = match &rule.department {
                DepartmentSource::Fixed(department) => Some(*department),
                DepartmentSource::Column { column, fallback } => match value(column, row) {
                    Some(code) => code.parse::<Department>().ok(),
                    None => *fallback,
                },
            };
            let Some(department) = department else {
                unroutable += 1;
                continue;
            };
            let values: BTreeMap<String, Option<String>> =
                needed.iter().map(|name| ((*name).to_owned(), value(name, row))).collect();
            let evidence =
                rule.evidence.iter().map(|name| (name.clone(), value(name, row).unwrap_or_default())).collect();
            let rests_on = rule
                .rests_on
                .iter()
                .filter_map(|r| {
                    let key: Option<BTreeMap<String, String>> = r
                        .key
                        .iter()
                        .map(|(key_column, output)| value(output, row).map(|v| (key_column.clone(), v)))
                        .collect();
                    key.map(|key| RowRef { dataset: r.dataset.to_string(), key })
                })
                .collect();
            found.push(Candidate {
                subject,
                department,
                division,
                explanation: rule.explain.render(&values),
                evidence,
                rests_on,
            });
        }
    }
    Ok((found, unroutable))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rule() -> Rule {
        Rule::parse(
            r#"
id = "r"
version = 1
title_zh = "测试"
title_en = "test"
basis = "none"
severity = "low"
subject = "person"
explain = "{name}（{id_number}）在 {place}"
sql = "SELECT 1"
[columns]
subject = "id_number"
division = "division_code"
department = "dept"
evidence = ["name"]
[[rests_on]]
dataset = "gongan.population"
key = { id_number = "pop_id" }
"#,
            None,
        )
        .unwrap()
    }

    fn batch(rows: &[[Option<&str>; 6]]) -> RecordBatch {
        let names = ["id_number", "name", "division_code", "dept", "place", "pop_id"];
        let schema =
            Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>()));
        let columns =
            (0..names.len()).map(|i| Arc::new(rows.iter().map(|r| r[i]).collect::<StringArray>()) as _).collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn rows_become_routed_candidates_and_unroutable_rows_are_counted() {
        let rows = [
            [Some("ps_a"), Some("张**"), Some("630102001001"), Some("renshe"), Some("西宁"), Some("ps_a")],
            [Some("ps_b"), Some("李*"), Some("630102001001"), Some("minzheng"), None, None],
            [None, Some("王*"), Some("630102001001"), Some("minzheng"), None, None],
            [Some("ps_c"), Some("赵*"), Some("6301"), Some("minzheng"), None, None],
            [Some("ps_d"), Some("钱*"), Some("630102001001"), None, None, None],
        ];
        let (found, unroutable) = candidates(&rule(), &[batch(&rows)]).unwrap();
        assert_eq!(unroutable, 3, "no subject, a bad division, no department (and no fallback)");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].department, Department::Renshe);
        assert_eq!(found[0].explanation, "张**（ps_a）在 西宁");
        assert_eq!(
            found[0].rests_on,
            [RowRef { dataset: "gongan.population".into(), key: [("id_number".into(), "ps_a".into())].into() }]
        );
        assert_eq!(found[1].explanation, "李*（ps_b）在 —");
        assert!(found[1].rests_on.is_empty(), "a NULL key rests on nothing");
        assert_eq!(found[1].evidence["name"], "李*");
    }
}
