//! The demo's verification step (比对): every shipped rule run as the
//! province's 民政 analyst, the findings counted by rule and by county, and
//! held to the generator's ground truth: each planted case must be found,
//! once per office that must act on it, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use civlink_catalog::findings::FindingFilter;
use civlink_catalog::policy::Principal;
use civlink_standards::division::{DivisionCode, DivisionTable, Level};
use civlink_synth::GroundTruth;

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::table;
use crate::verify_cmd::{factory, load_rules, outcomes_table, run_rules};
use crate::{Error, Result};

/// What the step found.
pub struct Verified {
    /// The printed report.
    pub report: String,
    /// Differences from the ground truth (empty: precision = recall = 1.0 for every rule).
    pub mismatches: Vec<String>,
}

/// Run every shipped rule as `principal` and compare with `truth`.
pub async fn verify(catalog: &OpenCatalog, principal: &Principal, truth: &GroundTruth) -> Result<Verified> {
    let factory = factory(catalog).await?;
    let rules = load_rules(&factory, &[]).await?;
    let selected = rules.select(&[]).map_err(|e| Error::Demo { message: e.to_string() })?;
    let outcomes = run_rules(&factory, principal, &selected).await?;
    let mut report = outcomes_table(&outcomes);

    let findings = catalog.store.findings(&FindingFilter::default()).await.map_err(Error::Store)?;
    let key = catalog.store.mask_key().await.map_err(Error::Store)?;
    // (rule, subject, department, division): a finding is routed to one office of one department.
    let key_of = |f: &civlink_catalog::findings::Finding| {
        (f.rule_id.clone(), f.subject.clone(), f.department.code().to_owned(), f.division.to_string())
    };
    let open: BTreeSet<(String, String, String, String)> = findings
        .iter()
        .filter(|f| f.status != civlink_catalog::findings::FindingStatus::ResolvedAtSource)
        .map(key_of)
        .collect();
    let mut expected: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for anomaly in &truth.anomalies {
        let subject = key.pseudonym(&anomaly.id_number);
        for division in &anomaly.responsible_divisions {
            let kind = anomaly.kind.as_str().to_owned();
            expected.insert((kind, subject.clone(), anomaly.department.clone(), division.clone()));
        }
    }
    let mut mismatches = Vec::new();
    let rule_ids: BTreeSet<&str> = selected.iter().map(|r| r.rule.id.as_str()).collect();
    for (rule, subject, department, division) in expected.difference(&open) {
        if rule_ids.contains(rule.as_str()) {
            mismatches.push(format!("{rule}: planted case {subject} for {department} in {division} was not found"));
        }
    }
    for (rule, subject, department, division) in open.difference(&expected) {
        mismatches.push(format!("{rule}: {subject} for {department} in {division} was found but not planted"));
    }

    // Findings by county, a column per rule: what each county office has to work through.
    let mut by_county: BTreeMap<DivisionCode, BTreeMap<&str, u64>> = BTreeMap::new();
    for f in findings.iter().filter(|f| open.contains(&key_of(f))) {
        let county = f.division.parent(Level::County).unwrap_or(f.division);
        *by_county.entry(county).or_default().entry(f.rule_id.as_str()).or_default() += 1;
    }
    let names = DivisionTable::builtin();
    let rows: Vec<[String; 10]> = by_county
        .iter()
        .map(|(county, counts)| {
            let n = |rule: &str| counts.get(rule).copied().unwrap_or(0).to_string();
            [
                format!("{} {}", county.county_code(), names.name(county).unwrap_or("")),
                n("dibao_deceased"),
                n("dibao_employee_pension"),
                n("dibao_employed"),
                n("dibao_two_counties"),
                n("missed_assistance"),
                n("disabled_without_care_subsidy"),
                n("tekun_and_dibao"),
                n("aid_after_death"),
                counts.values().sum::<u64>().to_string(),
            ]
        })
        .collect();
    let _ = writeln!(report, "\n  findings by county (the office that must act):");
    report.push_str(&table(
        &[
            "COUNTY",
            "DECEASED",
            "PENSION",
            "EMPLOYED",
            "TWO COUNTIES",
            "MISSED",
            "NO CARE SUBSIDY",
            "TEKUN+DIBAO",
            "AFTER DEATH",
            "TOTAL",
        ],
        &rows,
    ));
    Ok(Verified { report, mismatches })
}
