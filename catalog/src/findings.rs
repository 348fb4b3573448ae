//! Verification findings (比对): what a rule found, and what became of it.
//!
//! A finding is a lead, not a verdict, until an officer records its
//! outcome. Its identity is stable per (rule, subject, responsible
//! department, responsible division) — [`finding_id`] — so re-running a rule
//! adds no duplicate. Its lifecycle:
//!
//! ```text
//!            ┌────────────── decide ──────────────┐
//!  (found) ─▶ open ─▶ under_review ─▶ confirmed | dismissed (reason, note)
//!              ▲  └──────────── decide ────────────┘
//!              │                          │ the condition no longer holds
//!              └── found again ── resolved_at_source ◀──┘ (from any status)
//! ```
//!
//! Every change is a [`FindingEvent`] (who, when, why) kept with the finding
//! and appended to the audit chain by whoever made it. Nothing here holds
//! personal data in clear: the subject is the keyed pseudonym the rule saw,
//! and evidence values are as the rule's principal saw them (masked).
//! The store's side is `crate::store` (`record_rule_run`, `findings`, …).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use civlink_standards::division::{DivisionCode, Level};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Department;

/// Where a finding is in its lifecycle (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Found, nobody has looked at it yet.
    Open,
    /// An officer is looking into it.
    UnderReview,
    /// An officer confirmed it: wrong or missed coverage.
    Confirmed,
    /// An officer dismissed it, with a reason.
    Dismissed,
    /// The condition no longer holds in the source data.
    ResolvedAtSource,
}

impl FindingStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [FindingStatus; 5] = [
        FindingStatus::Open,
        FindingStatus::UnderReview,
        FindingStatus::Confirmed,
        FindingStatus::Dismissed,
        FindingStatus::ResolvedAtSource,
    ];

    /// The stable code, as stored and parsed.
    pub fn code(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::UnderReview => "under_review",
            FindingStatus::Confirmed => "confirmed",
            FindingStatus::Dismissed => "dismissed",
            FindingStatus::ResolvedAtSource => "resolved_at_source",
        }
    }

    /// The status with this code.
    pub fn parse(code: &str) -> Option<FindingStatus> {
        FindingStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The Chinese label an officer reads.
    pub fn label(self) -> &'static str {
        match self {
            FindingStatus::Open => "待核查",
            FindingStatus::UnderReview => "核查中",
            FindingStatus::Confirmed => "已确认",
            FindingStatus::Dismissed => "已排除",
            FindingStatus::ResolvedAtSource => "源数据已消除",
        }
    }

    /// Whether an officer may move a finding from this status to `to`.
    pub fn may_decide(self, to: FindingStatus) -> bool {
        matches!(self, FindingStatus::Open | FindingStatus::UnderReview)
            && matches!(to, FindingStatus::UnderReview | FindingStatus::Confirmed | FindingStatus::Dismissed)
            && self != to
    }
}

impl fmt::Display for FindingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a finding was dismissed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DismissReason {
    /// The contradicting record is wrong at its source.
    SourceDataError,
    /// The situation is legitimate (e.g. a policy exception).
    Legitimate,
    /// Anything else; the note says what.
    Other,
}

impl DismissReason {
    /// Every reason.
    pub const ALL: [DismissReason; 3] =
        [DismissReason::SourceDataError, DismissReason::Legitimate, DismissReason::Other];

    /// The stable code, as stored and parsed.
    pub fn code(self) -> &'static str {
        match self {
            DismissReason::SourceDataError => "source_data_error",
            DismissReason::Legitimate => "legitimate",
            DismissReason::Other => "other",
        }
    }

    /// The reason with this code.
    pub fn parse(code: &str) -> Option<DismissReason> {
        DismissReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for DismissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a rule is about: one person, or one household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A person (the subject is the keyed pseudonym of an ID number).
    Person,
    /// A household (the subject is a household id).
    Household,
}

impl SubjectKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            SubjectKind::Person => "person",
            SubjectKind::Household => "household",
        }
    }

    /// The kind with this code.
    pub fn parse(code: &str) -> Option<SubjectKind> {
        [SubjectKind::Person, SubjectKind::Household].into_iter().find(|k| k.code() == code)
    }
}

/// How urgently a rule's findings need an officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Money is very likely paid wrongly, or someone in need gets nothing.
    High,
    /// Likely wrong; needs a look within the review cycle.
    Medium,
    /// Worth a look.
    Low,
}

impl Severity {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// The severity with this code.
    pub fn parse(code: &str) -> Option<Severity> {
        [Severity::High, Severity::Medium, Severity::Low].into_iter().find(|s| s.code() == code)
    }
}

/// One source row a finding rests on: its dataset and primary key (key
/// values as the rule saw them, so a sensitive key is its pseudonym).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowRef {
    /// `department.name`.
    pub dataset: String,
    /// Primary-key column → value.
    pub key: BTreeMap<String, String>,
}

/// What one evaluation of a rule found for one (subject, office).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The subject as the rule saw it (a pseudonym, or a household id).
    pub subject: String,
    /// The department whose office must act.
    pub department: Department,
    /// The division whose office must act.
    pub division: DivisionCode,
    /// The explanation in Chinese, from the rows it rests on.
    pub explanation: String,
    /// The evidence columns and their values (as the rule saw them).
    pub evidence: BTreeMap<String, String>,
    /// The rows it rests on.
    pub rests_on: Vec<RowRef>,
}

impl Candidate {
    /// Its stable identity under `rule`.
    pub fn id(&self, rule: &str) -> String {
        finding_id(rule, &self.subject, self.department, &self.division)
    }
}

/// The stable identity of a finding: `f_` and 20 hex digits of the SHA-256
/// of (rule, subject, department, division).
pub fn finding_id(rule: &str, subject: &str, department: Department, division: &DivisionCode) -> String {
    let mut hash = Sha256::new();
    for part in [rule, subject, department.code(), division.as_str()] {
        hash.update(part.as_bytes());
        // A separator no part contains: ("ab","c") and ("a","bc") differ.
        hash.update([0u8]);
    }
    let digest = hex::encode(hash.finalize());
    format!("f_{}", &digest[..20])
}

/// One evaluation of a rule, as recorded with its findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEvaluation {
    /// The run's id.
    pub run_id: String,
    /// The rule.
    pub rule_id: String,
    /// Its version.
    pub rule_version: i64,
    /// Its severity (copied onto its findings).
    pub severity: Severity,
    /// Its subject kind.
    pub subject_kind: SubjectKind,
    /// Who ran it: its findings are the ones this principal may see.
    pub principal: String,
    /// The principal's division: findings inside it that were not found
    /// again are resolved at source; findings outside it are left alone.
    pub scope: DivisionCode,
    /// The versions of the datasets it read.
    pub dataset_versions: BTreeMap<String, i64>,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// What recording an evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationSummary {
    /// Distinct findings the evaluation produced.
    pub found: u64,
    /// Of those, new.
    pub new: u64,
    /// Of those, reopened after they had been resolved at source.
    pub reopened: u64,
    /// Of those, already known and still holding.
    pub seen_again: u64,
    /// Findings in scope that no longer hold, now resolved at source.
    pub resolved: u64,
}

/// An officer's decision on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `confirmed`, `dismissed` or `under_review`.
    pub status: FindingStatus,
    /// Why (required to dismiss).
    pub reason: Option<DismissReason>,
    /// The officer's note.
    pub note: Option<String>,
    /// Who decided.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identity ([`finding_id`]).
    pub finding_id: String,
    /// The rule.
    pub rule_id: String,
    /// The rule's version at the last evaluation that found it.
    pub rule_version: i64,
    /// Person or household.
    pub subject_kind: SubjectKind,
    /// The subject (pseudonym or household id).
    pub subject: String,
    /// The department whose office must act.
    pub department: Department,
    /// The division whose office must act.
    pub division: DivisionCode,
    /// The rule's severity.
    pub severity: Severity,
    /// Where it is in its lifecycle.
    pub status: FindingStatus,
    /// The last officer's decision, kept when the finding is later resolved at source.
    pub outcome: Option<Outcome>,
    /// The explanation, in Chinese.
    pub explanation: String,
    /// The evidence columns and their values.
    pub evidence: BTreeMap<String, String>,
    /// The rows it rests on.
    pub rests_on: Vec<RowRef>,
    /// The dataset versions of the last evaluation that found it.
    pub dataset_versions: BTreeMap<String, i64>,
    /// First found.
    pub first_seen: DateTime<Utc>,
    /// Last found.
    pub last_seen: DateTime<Utc>,
}

/// One change of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingEvent {
    /// Its place in the finding's history, from 1.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: an officer, or the principal a rule ran as.
    pub actor: String,
    /// The status before (`None`: the finding was new).
    pub from: Option<FindingStatus>,
    /// The status after.
    pub to: FindingStatus,
    /// A dismissal's reason.
    pub reason: Option<DismissReason>,
    /// The note given, or what the evaluation did (`found`, `not found again`).
    pub note: Option<String>,
    /// The rule run that made the change, if a run did.
    pub run_id: Option<String>,
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// Only findings whose responsible division lies in this one (the caller's scope).
    pub within: Option<DivisionCode>,
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only in this status.
    pub status: Option<FindingStatus>,
    /// Only findings after this id (a cursor: findings are listed by id).
    pub after: Option<String>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// One line of the findings summary: a rule, a division, a status and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCount {
    /// The rule.
    pub rule_id: String,
    /// The responsible division.
    pub division: DivisionCode,
    /// The status.
    pub status: FindingStatus,
    /// The last decision (`confirmed` or `dismissed`), kept after an automatic resolution.
    pub outcome: Option<FindingStatus>,
    /// How many.
    pub count: u64,
}

/// A recorded rule run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRunRecord {
    /// The run.
    pub run_id: String,
    /// The rule.
    pub rule_id: String,
    /// Its version.
    pub rule_version: i64,
    /// Who ran it.
    pub principal: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// What it changed.
    pub summary: EvaluationSummary,
}

/// Per rule: counts by status and the decisions taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTally {
    /// The rule.
    pub rule_id: String,
    /// Findings by status.
    pub by_status: BTreeMap<FindingStatus, u64>,
    /// Findings an officer confirmed (whatever became of them since).
    pub confirmed: u64,
    /// Findings an officer dismissed.
    pub dismissed: u64,
}

impl RuleTally {
    /// Every finding of the rule.
    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// The rule's measured precision in the field: confirmed among decided
    /// (`None` before any decision).
    pub fn precision(&self) -> Option<f64> {
        let decided = self.confirmed + self.dismissed;
        (decided > 0).then(|| self.confirmed as f64 / decided as f64)
    }
}

/// Per division at one level: counts by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivisionTally {
    /// The division.
    pub division: DivisionCode,
    /// Findings by status.
    pub by_status: BTreeMap<FindingStatus, u64>,
}

/// The findings summary of one scope: by rule, and rolled up to one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The scope summarised.
    pub scope: DivisionCode,
    /// The level of [`Summary::by_division`].
    pub level: Level,
    /// Per rule.
    pub by_rule: Vec<RuleTally>,
    /// Per division at `level` inside the scope.
    pub by_division: Vec<DivisionTally>,
}

/// Summarise `counts` (of findings inside `scope`) by rule, and by division
/// at `level` (default: one level below the scope's; a village's own).
pub fn summarize(scope: &DivisionCode, level: Option<Level>, counts: &[FindingCount]) -> Summary {
    let level = level.unwrap_or_else(|| {
        let all = Level::all();
        let i = all.iter().position(|l| *l == scope.level()).unwrap_or(all.len() - 1);
        all.get(i + 1).copied().unwrap_or(scope.level())
    });
    let mut by_rule: BTreeMap<&str, RuleTally> = BTreeMap::new();
    let mut by_division: BTreeMap<DivisionCode, BTreeMap<FindingStatus, u64>> = BTreeMap::new();
    for count in counts.iter().filter(|c| scope.contains(&c.division)) {
        let tally = by_rule
            .entry(count.rule_id.as_str())
            .or_insert_with(|| RuleTally { rule_id: count.rule_id.clone(), ..RuleTally::default() });
        *tally.by_status.entry(count.status).or_default() += count.count;
        match count.outcome {
            Some(FindingStatus::Confirmed) => tally.confirmed += count.count,
            Some(FindingStatus::Dismissed) => tally.dismissed += count.count,
            _ => {}
        }
        // A division above `level` (a county-level finding in a township roll-up) counts as itself.
        let at = count.division.parent(level).unwrap_or(count.division);
        *by_division.entry(at).or_default().entry(count.status).or_default() += count.count;
    }
    Summary {
        scope: *scope,
        level,
        by_rule: by_rule.into_values().collect(),
        by_division: by_division
            .into_iter()
            .map(|(division, by_status)| DivisionTally { division, by_status })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_ids_are_stable_and_separate_their_parts() {
        let division = DivisionCode::parse("630102001001").unwrap();
        let a = finding_id("dibao_deceased", "ps_ab", Department::Minzheng, &division);
        assert_eq!(a, finding_id("dibao_deceased", "ps_ab", Department::Minzheng, &division));
        assert!(a.starts_with("f_") && a.len() == 22);
        assert_ne!(a, finding_id("dibao_deceasedp", "s_ab", Department::Minzheng, &division));
        assert_ne!(a, finding_id("dibao_deceased", "ps_ab", Department::Renshe, &division));
    }

    #[test]
    fn summaries_roll_up_one_level_below_and_measure_precision() {
        let count = |rule: &str, division: &str, status, outcome, n| FindingCount {
            rule_id: rule.into(),
            division: DivisionCode::parse(division).unwrap(),
            status,
            outcome,
            count: n,
        };
        let counts = [
            count("a", "630102001001", FindingStatus::Open, None, 2),
            count("a", "630102002001", FindingStatus::ResolvedAtSource, Some(FindingStatus::Confirmed), 3),
            count("a", "630105001001", FindingStatus::Dismissed, Some(FindingStatus::Dismissed), 1),
            count("b", "630102001001", FindingStatus::Open, None, 4),
            count("b", "632123100201", FindingStatus::Open, None, 9),
        ];
        let city = DivisionCode::parse("630100000000").unwrap();
        let summary = summarize(&city, None, &counts);
        assert_eq!(summary.level, Level::County);
        let a = &summary.by_rule[0];
        assert_eq!((a.total(), a.confirmed, a.dismissed), (6, 3, 1));
        assert_eq!(a.precision(), Some(0.75));
        assert_eq!(summary.by_rule[1].total(), 4, "outside the city is not counted");
        let counties: Vec<(&str, u64)> =
            summary.by_division.iter().map(|d| (d.division.as_str(), d.by_status.values().sum())).collect();
        assert_eq!(counties, [("630102000000", 9), ("630105000000", 1)]);
        let village = DivisionCode::parse("630102001001").unwrap();
        assert_eq!(summarize(&village, None, &counts).level, Level::Village);
    }

    #[test]
    fn only_open_findings_are_decided() {
        use FindingStatus::*;
        assert!(Open.may_decide(Confirmed));
        assert!(Open.may_decide(UnderReview));
        assert!(UnderReview.may_decide(Dismissed));
        assert!(!UnderReview.may_decide(UnderReview));
        assert!(!Confirmed.may_decide(Dismissed));
        assert!(!ResolvedAtSource.may_decide(Confirmed));
        assert!(!Open.may_decide(ResolvedAtSource));
        assert!(!Open.may_decide(Open));
        for status in FindingStatus::ALL {
            assert_eq!(FindingStatus::parse(status.code()), Some(status));
        }
    }
}
