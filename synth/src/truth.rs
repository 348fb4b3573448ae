//! The ground truth of a generated data set: what an ingestion of every job
//! must report, row for row, and every anomaly planted in the data.
//!
//! It is written next to the exports as `ground_truth.json` and read back with
//! [`GroundTruth::load`]. Per dataset it holds the expected run counts
//! (`read = written + quarantined + duplicates`), the quarantine per
//! (column, keyword) as the pipeline's quality report counts it, and the
//! valid rows per division at every level, so that a scoped analyst's row
//! count can be checked with [`DatasetTruth::valid_in`]. Each planted anomaly
//! names the person and the divisions of every row its finding depends on; a
//! scope sees it iff all of them lie inside the scope ([`GroundTruth::visible_in`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Scale};

/// The kinds of planted anomalies (`docs/demo-data.md`, "Planted anomalies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A current 低保 recipient who is deceased in the household register or
    /// has a death certificate (or both).
    DibaoDeceased,
    /// A current 低保 recipient with employee pension insurance (110) in
    /// status 1 (paying) or 4 (receiving).
    DibaoEmployeePension,
    /// A current 低保 recipient with an open employment registration.
    DibaoEmployed,
    /// A current member of two 低保 households in two different counties.
    DibaoTwoCounties,
    /// 漏保: monitored with the risk not eliminated, or registered poor and
    /// not lifted, yet receiving neither 低保 nor 特困 support.
    MissedAssistance,
    /// A valid grade 1 or 2 disability certificate without a care subsidy.
    DisabledWithoutCareSubsidy,
    /// Current 特困 support and a current 低保 membership at once (the two
    /// are exclusive).
    TekunAndDibao,
    /// 临时救助 granted, or a pension paid, after the recipient's date of
    /// death (the death certificate's date, else the register's
    /// cancellation date). A pension case is 人社's to act on.
    AidAfterDeath,
}

impl AnomalyKind {
    /// Every kind, in the contract's order.
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::DibaoDeceased,
        AnomalyKind::DibaoEmployeePension,
        AnomalyKind::DibaoEmployed,
        AnomalyKind::DibaoTwoCounties,
        AnomalyKind::MissedAssistance,
        AnomalyKind::DisabledWithoutCareSubsidy,
        AnomalyKind::TekunAndDibao,
        AnomalyKind::AidAfterDeath,
    ];

    /// The kind's name as serialized, e.g. `dibao_deceased`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::DibaoDeceased => "dibao_deceased",
            AnomalyKind::DibaoEmployeePension => "dibao_employee_pension",
            AnomalyKind::DibaoEmployed => "dibao_employed",
            AnomalyKind::DibaoTwoCounties => "dibao_two_counties",
            AnomalyKind::MissedAssistance => "missed_assistance",
            AnomalyKind::DisabledWithoutCareSubsidy => "disabled_without_care_subsidy",
            AnomalyKind::TekunAndDibao => "tekun_and_dibao",
            AnomalyKind::AidAfterDeath => "aid_after_death",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One planted anomaly: one person who matches one anomaly query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What was planted.
    pub kind: AnomalyKind,
    /// The person's ID number, as exported.
    pub id_number: String,
    /// The 12-digit division codes of every row the finding depends on
    /// (sorted, without repeats). A scope sees the case iff all lie in it.
    pub division_codes: Vec<String>,
    /// The 12-digit divisions whose offices must act on it: one finding of
    /// its rule each. For the 低保 kinds the division of each current 低保
    /// membership (two for `dibao_two_counties`, one per county), otherwise
    /// the person's home village.
    #[serde(default)]
    pub responsible_divisions: Vec<String>,
    /// The department whose offices act on it (`minzheng`, or `renshe` for
    /// a pension paid after death).
    #[serde(default = "minzheng")]
    pub department: String,
}

fn minzheng() -> String {
    "minzheng".to_owned()
}

/// A household that applies for aid, planted for the household check
/// (核对): what the check's report must state about each member, exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applicant {
    /// Why it was chosen: the anomaly planted in it, or `none`.
    pub planted: String,
    /// The village it applies in (its home village), 12 digits.
    pub household_division: String,
    /// Every member, the head first.
    pub members: Vec<ApplicantMember>,
}

/// What the hub holds about one member of an [`Applicant`] household
/// (counting only valid rows; a 12-month window is the dates after `as_of`
/// less 12 months, up to and including `as_of`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicantMember {
    /// The ID number.
    pub id_number: String,
    /// gongan.population `status`: `normal`, `deceased` or `moved_out`.
    pub register_status: String,
    /// The death certificate's date of death, if one was issued.
    pub certified_death: Option<NaiveDate>,
    /// Pension payments in the 12 months to `as_of`.
    pub pension_payments: u32,
    /// Their monthly amount, in yuan.
    pub pension_monthly: Option<f64>,
    /// Open employment registrations.
    pub open_jobs: u32,
    /// The disability certificate's grade (1–4), if any.
    pub disability_grade: Option<u8>,
    /// xiangcun.registered_poor `poverty_status`, if registered.
    pub poverty_status: Option<String>,
    /// xiangcun.monitoring `risk_eliminated`, if monitored.
    pub risk_eliminated: Option<String>,
    /// Current 低保 memberships (a second one elsewhere counts).
    pub dibao_current: u32,
    /// Current 低保 memberships outside the household's county.
    pub dibao_elsewhere: u32,
    /// Current 特困 support.
    pub tekun_current: bool,
    /// 临时救助 grants in the 12 months to `as_of`.
    pub temporary_aid: u32,
    /// The summary flags a check must raise for this member, sorted.
    pub flags: Vec<String>,
}

/// Quarantined rows broken by one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    /// The standard's column ("" for whole-row problems: `source`).
    pub column: String,
    /// The keyword that rejects the rows (`format`, `enum`,
    /// `x-civlink-code-table`, `source`, …).
    pub keyword: String,
    /// How many rows.
    pub rows: u64,
}

/// What ingesting one dataset's job must report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetTruth {
    /// The dataset, `department.name`, e.g. `gongan.population`.
    pub id: String,
    /// Its ingestion job, relative to the output directory
    /// (`jobs/gongan.population.toml`).
    pub job: String,
    /// The export files, relative to the output directory.
    pub exports: Vec<String>,
    /// Rows read: every data row of the exports, including the ones the
    /// reader cannot split or decode.
    pub rows: u64,
    /// Rows that must be written to the dataset.
    pub written: u64,
    /// Rows that must be quarantined as invalid (validation or source).
    pub quarantined: u64,
    /// Valid rows repeating an earlier row's primary key.
    pub duplicates: u64,
    /// Quarantined rows by kind: `validation` (the row breaks the standard)
    /// or `source` (a ragged CSV line or one that does not decode; column
    /// "" and keyword `source` in the quarantine).
    pub quarantined_by_kind: BTreeMap<String, u64>,
    /// Quarantined rows per (column, keyword); every planted row breaks
    /// exactly one rule.
    pub quarantined_by_rule: Vec<RuleCount>,
    /// Written rows per division: the key is the 12-digit code of a
    /// province, city, county, township or village (zero-filled), the value
    /// the rows whose `division_code` lies in it.
    pub valid_by_division: BTreeMap<String, u64>,
}

impl DatasetTruth {
    /// Written rows whose division code lies in `prefix`: a scope prefix
    /// (`63`, `6301`, `630106`, `630106100`, a 12-digit village code) or the
    /// 12-digit code of any division. 0 for anything else.
    pub fn valid_in(&self, prefix: &str) -> u64 {
        scope_prefix(prefix).map(|p| padded(&p)).and_then(|key| self.valid_by_division.get(&key).copied()).unwrap_or(0)
    }

    /// The quarantine per (column, keyword), the way the pipeline's quality
    /// report tallies its rules: [`quarantined_by_rule`](Self::quarantined_by_rule)
    /// plus `("", "x-civlink-primary-key")` for the duplicates (when there
    /// are any).
    pub fn quarantine_rules(&self) -> BTreeMap<(String, String), u64> {
        let mut rules: BTreeMap<(String, String), u64> = self
            .quarantined_by_rule
            .iter()
            .filter(|r| r.rows > 0)
            .map(|r| ((r.column.clone(), r.keyword.clone()), r.rows))
            .collect();
        if self.duplicates > 0 {
            *rules.entry((String::new(), "x-civlink-primary-key".to_owned())).or_default() += self.duplicates;
        }
        rules
    }
}

/// Everything generated and planted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The generator's seed.
    pub seed: u64,
    /// The scale asked for.
    pub scale: Scale,
    /// People in the household register (planted malformed rows are extra).
    pub people: u64,
    /// The reference date of the data: nothing happens after it.
    pub as_of: NaiveDate,
    /// Per dataset, in the contract's order.
    pub datasets: Vec<DatasetTruth>,
    /// Households planted for the household check (核对).
    #[serde(default)]
    pub applicants: Vec<Applicant>,
    /// Every planted anomaly.
    pub anomalies: Vec<Anomaly>,
}

impl GroundTruth {
    /// Reads a `ground_truth.json`.
    pub fn load(path: &Path) -> Result<GroundTruth> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|e| Error::GroundTruth { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Writes it as pretty-printed JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::GroundTruth { path: path.to_path_buf(), message: e.to_string() })?;
        std::fs::write(path, text + "\n").map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }

    /// The dataset with this id (`gongan.population`).
    pub fn dataset(&self, id: &str) -> Option<&DatasetTruth> {
        self.datasets.iter().find(|d| d.id == id)
    }

    /// Findings a scope's offices must act on, per kind name (every kind
    /// listed): one per responsible division inside the scope.
    pub fn findings_in(&self, prefix: &str) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = AnomalyKind::ALL.iter().map(|k| (k.as_str().to_owned(), 0)).collect();
        let Some(prefix) = scope_prefix(prefix) else { return counts };
        for anomaly in &self.anomalies {
            let n = anomaly.responsible_divisions.iter().filter(|code| code.starts_with(&prefix)).count() as u64;
            *counts.entry(anomaly.kind.as_str().to_owned()).or_default() += n;
        }
        counts
    }

    /// Planted anomalies a scope sees, per kind name (every kind is listed,
    /// with 0 when none is visible). `prefix` is read as in
    /// [`DatasetTruth::valid_in`]; a case is visible iff every one of its
    /// division codes lies in the scope.
    pub fn visible_in(&self, prefix: &str) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = AnomalyKind::ALL.iter().map(|k| (k.as_str().to_owned(), 0)).collect();
        let Some(prefix) = scope_prefix(prefix) else { return counts };
        for anomaly in &self.anomalies {
            if anomaly.division_codes.iter().all(|code| code.starts_with(&prefix)) {
                *counts.entry(anomaly.kind.as_str().to_owned()).or_default() += 1;
            }
        }
        counts
    }
}

/// The significant digits of a scope: `63`, `6301`, `630106`, `630106100` or
/// a 12-digit village code; `None` unless `text` is one of those or a
/// 12-digit code.
pub fn scope_prefix(text: &str) -> Option<String> {
    let text = text.trim();
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.len() {
        2 | 4 | 6 | 9 => Some(text.to_owned()),
        12 => {
            let zero = |range: std::ops::Range<usize>| text[range].bytes().all(|b| b == b'0');
            let len = if !zero(9..12) {
                12
            } else if !zero(6..9) {
                9
            } else if !zero(4..6) {
                6
            } else if !zero(2..4) {
                4
            } else {
                2
            };
            Some(text[..len].to_owned())
        }
        _ => None,
    }
}

/// A prefix zero-filled to 12 digits.
fn padded(prefix: &str) -> String {
    format!("{prefix:0<12}")
}

/// Running counts of one dataset while it is written.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    rows: u64,
    written: u64,
    quarantined: u64,
    duplicates: u64,
    kinds: BTreeMap<&'static str, u64>,
    rules: BTreeMap<(&'static str, &'static str), u64>,
    /// Written rows per exact division code (as a number), rolled up at the end.
    codes: HashMap<u64, u64, BuildHasherDefault<civlink_standards::division::CodeHasher>>,
    /// Rows come in runs of one household's village: counted here first.
    run: (u64, u64),
}

impl Tally {
    /// A row that must be written, in division `code`.
    pub(crate) fn valid(&mut self, code: u64) {
        self.rows += 1;
        self.written += 1;
        if self.run.0 == code {
            self.run.1 += 1;
        } else {
            self.flush_run();
            self.run = (code, 1);
        }
    }

    fn flush_run(&mut self) {
        let (code, count) = std::mem::take(&mut self.run);
        if count > 0 {
            *self.codes.entry(code).or_default() += count;
        }
    }

    /// A row that must be quarantined for (column, keyword).
    pub(crate) fn invalid(&mut self, column: &'static str, keyword: &'static str) {
        self.rows += 1;
        self.quarantined += 1;
        let kind = if keyword == "source" { "source" } else { "validation" };
        *self.kinds.entry(kind).or_default() += 1;
        *self.rules.entry((column, keyword)).or_default() += 1;
    }

    /// A valid row repeating an earlier primary key.
    pub(crate) fn duplicate(&mut self) {
        self.rows += 1;
        self.duplicates += 1;
    }

    /// The dataset's ground truth.
    pub(crate) fn finish(mut self, id: &str, job: String, exports: Vec<String>) -> DatasetTruth {
        self.flush_run();
        let mut valid_by_division: BTreeMap<String, u64> = BTreeMap::new();
        for (code, count) in self.codes {
            let text = format!("{code:012}");
            let Some(significant) = scope_prefix(&text) else { continue };
            for len in [2, 4, 6, 9, 12] {
                if len > significant.len() {
                    break;
                }
                *valid_by_division.entry(padded(&text[..len])).or_default() += count;
            }
        }
        DatasetTruth {
            id: id.to_owned(),
            job,
            exports,
            rows: self.rows,
            written: self.written,
            quarantined: self.quarantined,
            duplicates: self.duplicates,
            quarantined_by_kind: self.kinds.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            quarantined_by_rule: self
                .rules
                .into_iter()
                .map(|((column, keyword), rows)| RuleCount {
                    column: column.to_owned(),
                    keyword: keyword.to_owned(),
                    rows,
                })
                .collect(),
            valid_by_division,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_rollups() {
        assert_eq!(scope_prefix("630106000000").as_deref(), Some("630106"));
        assert_eq!(scope_prefix("630106100000").as_deref(), Some("630106100"));
        assert_eq!(scope_prefix("630000000000").as_deref(), Some("63"));
        assert_eq!(scope_prefix("630106100201").as_deref(), Some("630106100201"));
        assert_eq!(scope_prefix("6301").as_deref(), Some("6301"));
        assert_eq!(scope_prefix("63010"), None);
        assert_eq!(scope_prefix("abc"), None);

        let mut tally = Tally::default();
        tally.valid(630106100201);
        tally.valid(630106100202);
        tally.valid(632123000000); // a county-level code (hospital records)
        tally.invalid("id_number", "format");
        tally.invalid("", "source");
        tally.duplicate();
        let truth = tally.finish("x.y", "jobs/x.y.toml".into(), vec![]);
        assert_eq!((truth.rows, truth.written, truth.quarantined, truth.duplicates), (6, 3, 2, 1));
        assert_eq!(truth.valid_in("63"), 3);
        assert_eq!(truth.valid_in("630000000000"), 3);
        assert_eq!(truth.valid_in("630106"), 2);
        assert_eq!(truth.valid_in("630106100"), 2);
        assert_eq!(truth.valid_in("630106100201"), 1);
        assert_eq!(truth.valid_in("632123"), 1);
        assert_eq!(truth.valid_in("632123100"), 0);
        assert_eq!(truth.quarantined_by_kind.get("source"), Some(&1));
        let rules = truth.quarantine_rules();
        assert_eq!(rules.get(&("".into(), "x-civlink-primary-key".into())), Some(&1));
        assert_eq!(rules.get(&("id_number".into(), "format".into())), Some(&1));
        assert_eq!(rules.len(), 3);
    }

    #[test]
    fn visibility_needs_every_code_in_scope() {
        let truth = GroundTruth {
            seed: 1,
            scale: Scale::Small,
            people: 0,
            as_of: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            datasets: vec![],
            applicants: vec![],
            anomalies: vec![
                Anomaly {
                    kind: AnomalyKind::DibaoTwoCounties,
                    id_number: "x".into(),
                    division_codes: vec!["630106100201".into(), "632123100201".into()],
                    responsible_divisions: vec!["630106100201".into(), "632123100201".into()],
                    department: minzheng(),
                },
                Anomaly {
                    kind: AnomalyKind::DibaoDeceased,
                    id_number: "y".into(),
                    division_codes: vec!["630106100201".into()],
                    responsible_divisions: vec!["630106100201".into()],
                    department: minzheng(),
                },
            ],
        };
        let province = truth.visible_in("63");
        assert_eq!(province["dibao_two_counties"], 1);
        assert_eq!(province["dibao_deceased"], 1);
        let county = truth.visible_in("630106000000");
        assert_eq!(county["dibao_two_counties"], 0);
        assert_eq!(county["dibao_deceased"], 1);
        assert_eq!(county["missed_assistance"], 0);
        assert_eq!(county.len(), AnomalyKind::ALL.len());
        let findings = truth.findings_in("630106000000");
        assert_eq!(findings["dibao_two_counties"], 1, "the county's own office acts on its half");
        assert_eq!(truth.findings_in("63")["dibao_two_counties"], 2);
    }
}
