//! The catalog's vocabulary: departments, datasets and their governance
//! attributes, write modes, runs, quality reports and lineage.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use civlink_standards::standard::Sensitivity;
use serde::{Deserialize, Serialize};

/// A value that does not name a member of one of the catalog's vocabularies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a department code.
    #[error("unknown department \"{value}\"; expected one of minzheng, gongan, renshe, weijian, canlian, xiangcun")]
    Department {
        /// The value given.
        value: String,
    },
    /// Not `department.name`.
    #[error("\"{value}\" is not a dataset id: expected department.name with a snake_case name, e.g. gongan.population")]
    DatasetId {
        /// The value given.
        value: String,
    },
    /// Not a sharing type.
    #[error(
        "unknown sharing type \"{value}\"; expected unconditional (无条件), conditional (有条件) or not_shared (不予共享)"
    )]
    Sharing {
        /// The value given.
        value: String,
    },
    /// Not an update cycle.
    #[error("unknown update cycle \"{value}\"")]
    UpdateCycle {
        /// The value given.
        value: String,
    },
    /// Not a write mode.
    #[error("unknown write mode \"{value}\"; expected append, overwrite or upsert")]
    WriteMode {
        /// The value given.
        value: String,
    },
    /// Not a run status.
    #[error("unknown run status \"{value}\"")]
    RunStatus {
        /// The value given.
        value: String,
    },
}

/// The six source departments, with stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Department {
    /// 民政: civil affairs.
    Minzheng,
    /// 公安户籍: household registration.
    Gongan,
    /// 人社: human resources and social security.
    Renshe,
    /// 卫健: health.
    Weijian,
    /// 残联: disabled persons' federation.
    Canlian,
    /// 乡村振兴/扶贫: rural revitalisation and poverty alleviation.
    Xiangcun,
}

impl Department {
    /// Every department, in code order of the catalog.
    pub const ALL: [Department; 6] = [
        Department::Minzheng,
        Department::Gongan,
        Department::Renshe,
        Department::Weijian,
        Department::Canlian,
        Department::Xiangcun,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Department::Minzheng => "minzheng",
            Department::Gongan => "gongan",
            Department::Renshe => "renshe",
            Department::Weijian => "weijian",
            Department::Canlian => "canlian",
            Department::Xiangcun => "xiangcun",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Department::Minzheng => "民政",
            Department::Gongan => "公安户籍",
            Department::Renshe => "人社",
            Department::Weijian => "卫健",
            Department::Canlian => "残联",
            Department::Xiangcun => "乡村振兴/扶贫",
        }
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Department {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let v = value.trim();
        Department::ALL
            .into_iter()
            .find(|d| d.code().eq_ignore_ascii_case(v) || d.name_zh() == v)
            .ok_or_else(|| ParseError::Department { value: value.to_owned() })
    }
}

/// A dataset's id: `department.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetId {
    /// The owning department.
    pub department: Department,
    /// snake_case name within the department.
    pub name: String,
}

impl DatasetId {
    /// The id of the dataset's quarantine table: `<dataset>__quarantine`.
    pub fn quarantine_name(&self) -> String {
        format!("{}__quarantine", self.name)
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.department, self.name)
    }
}

impl FromStr for DatasetId {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::DatasetId { value: value.to_owned() };
        let (department, name) = value.trim().split_once('.').ok_or_else(err)?;
        let department = department.parse().map_err(|_| err())?;
        let snake = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.ends_with("__quarantine");
        if !snake {
            return Err(err());
        }
        Ok(DatasetId { department, name: name.to_owned() })
    }
}

impl TryFrom<String> for DatasetId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<DatasetId> for String {
    fn from(id: DatasetId) -> String {
        id.to_string()
    }
}

/// Sharing type, GB/T 21063 (政务信息资源目录体系): who may read a dataset by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingType {
    /// 无条件共享: any authenticated principal.
    Unconditional,
    /// 有条件共享: needs a grant.
    Conditional,
    /// 不予共享: the owning department only.
    NotShared,
}

impl SharingType {
    /// Code as stored.
    pub fn code(self) -> &'static str {
        match self {
            SharingType::Unconditional => "unconditional",
            SharingType::Conditional => "conditional",
            SharingType::NotShared => "not_shared",
        }
    }

    /// The GB/T 21063 term.
    pub fn name_zh(self) -> &'static str {
        match self {
            SharingType::Unconditional => "无条件共享",
            SharingType::Conditional => "有条件共享",
            SharingType::NotShared => "不予共享",
        }
    }
}

impl FromStr for SharingType {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "unconditional" | "无条件" | "无条件共享" => Ok(SharingType::Unconditional),
            "conditional" | "有条件" | "有条件共享" => Ok(SharingType::Conditional),
            "not_shared" | "不予共享" => Ok(SharingType::NotShared),
            _ => Err(ParseError::Sharing { value: value.to_owned() }),
        }
    }
}

/// How often the source department updates a dataset (更新周期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateCycle {
    /// 实时.
    Realtime,
    /// 每日.
    Daily,
    /// 每周.
    Weekly,
    /// 每月.
    Monthly,
    /// 每季度.
    Quarterly,
    /// 每年.
    Yearly,
    /// 不定期.
    Irregular,
}

impl UpdateCycle {
    /// Code as stored.
    pub fn code(self) -> &'static str {
        match self {
            UpdateCycle::Realtime => "realtime",
            UpdateCycle::Daily => "daily",
            UpdateCycle::Weekly => "weekly",
            UpdateCycle::Monthly => "monthly",
            UpdateCycle::Quarterly => "quarterly",
            UpdateCycle::Yearly => "yearly",
            UpdateCycle::Irregular => "irregular",
        }
    }
}

impl FromStr for UpdateCycle {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [
            UpdateCycle::Realtime,
            UpdateCycle::Daily,
            UpdateCycle::Weekly,
            UpdateCycle::Monthly,
            UpdateCycle::Quarterly,
            UpdateCycle::Yearly,
            UpdateCycle::Irregular,
        ]
        .into_iter()
        .find(|c| c.code() == value.trim())
        .ok_or_else(|| ParseError::UpdateCycle { value: value.to_owned() })
    }
}

/// How a run's valid rows land in the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Add the rows.
    #[default]
    Append,
    /// Replace the whole dataset with the rows.
    Overwrite,
    /// Insert or update by primary key (Delta MERGE).
    Upsert,
}

impl WriteMode {
    /// Code as stored.
    pub fn code(self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Upsert => "upsert",
        }
    }
}

impl FromStr for WriteMode {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "append" => Ok(WriteMode::Append),
            "overwrite" => Ok(WriteMode::Overwrite),
            "upsert" | "merge" => Ok(WriteMode::Upsert),
            _ => Err(ParseError::WriteMode { value: value.to_owned() }),
        }
    }
}

/// What the catalog knows of a dataset, as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// `department.name`.
    pub id: DatasetId,
    /// Chinese title.
    pub title: String,
    /// The person or office responsible (数据责任人).
    pub owner: String,
    /// What the dataset holds.
    pub description: String,
    /// The bound standard's id.
    pub standard_id: String,
    /// The bound standard's version.
    pub standard_version: String,
    /// Classification (GB/T 43697 mapping, see [`Sensitivity`]).
    pub classification: Sensitivity,
    /// Sharing type (GB/T 21063).
    pub sharing: SharingType,
    /// Update cycle.
    pub update_cycle: UpdateCycle,
    /// The division-code column used for row scoping.
    pub division_column: Option<String>,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
}

/// A registered dataset with its storage and current versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The registration.
    pub spec: DatasetSpec,
    /// Delta table location.
    pub table_uri: String,
    /// Delta table location of `<dataset>__quarantine`.
    pub quarantine_uri: String,
    /// The committed Delta version readers see; `None` before the first run.
    pub current_version: Option<i64>,
    /// The committed Delta version of the quarantine table.
    pub quarantine_version: Option<i64>,
    /// When the dataset was registered.
    pub created_at: DateTime<Utc>,
    /// When a run last committed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The state of an ingestion run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished (or killed: a run never committed stays here).
    Running,
    /// Data, quarantine and catalog record committed together.
    Committed,
    /// Failed; the dataset stayed at its previous version.
    Failed,
    /// Skipped: the same sources were already ingested by a committed run.
    Skipped,
    /// Stopped by a delivery gate: the dataset kept its version; the run's
    /// data waits to be accepted (or is superseded by the next run).
    Held,
}

impl RunStatus {
    /// Code as stored.
    pub fn code(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Committed => "committed",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Held => "held",
        }
    }
}

impl FromStr for RunStatus {
    type Err = ParseError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "running" => Ok(RunStatus::Running),
            "committed" => Ok(RunStatus::Committed),
            "failed" => Ok(RunStatus::Failed),
            "skipped" => Ok(RunStatus::Skipped),
            "held" => Ok(RunStatus::Held),
            _ => Err(ParseError::RunStatus { value: value.to_owned() }),
        }
    }
}

/// Row counts of a run. Conservation: `read = written + quarantined + duplicate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunCounts {
    /// Rows read from the sources (including rows the reader could not split).
    pub read: u64,
    /// Valid rows written to the dataset.
    pub written: u64,
    /// Invalid rows written to quarantine.
    pub quarantined: u64,
    /// Rows whose primary key already appeared earlier in the run (also kept in quarantine).
    pub duplicate: u64,
}

impl RunCounts {
    /// Whether every row read is accounted for exactly once.
    pub fn conserved(&self) -> bool {
        self.read == self.written + self.quarantined + self.duplicate
    }
}

/// One ingestion run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique run id.
    pub run_id: String,
    /// Target dataset.
    pub dataset: DatasetId,
    /// The job's name.
    pub job: String,
    /// Write mode used.
    pub mode: WriteMode,
    /// State.
    pub status: RunStatus,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished (committed, failed or skipped).
    pub finished_at: Option<DateTime<Utc>>,
    /// Counts (zero until finished).
    pub counts: RunCounts,
    /// Dataset Delta version this run committed.
    pub data_version: Option<i64>,
    /// Quarantine Delta version this run committed.
    pub quarantine_version: Option<i64>,
    /// Fingerprint of the sources and job, for idempotent re-runs.
    pub fingerprint: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Completeness of one column: the share of rows with a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnCompleteness {
    /// Column.
    pub column: String,
    /// Rows with a non-null value.
    pub present: u64,
    /// Rows checked.
    pub rows: u64,
}

/// Validity of one rule: rows that broke it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleValidity {
    /// Column ("" for whole-row rules).
    pub column: String,
    /// Keyword.
    pub keyword: String,
    /// Rows breaking it.
    pub failed: u64,
    /// Rows checked.
    pub rows: u64,
    /// One example message.
    pub example: String,
}

/// How a column's values arrived: in the standard's form, or through one of
/// the job's declared normalisers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnNormalisation {
    /// The column (the standard's name).
    pub column: String,
    /// Non-null values delivered in the standard's form.
    pub as_delivered: u64,
    /// Values a declared normaliser changed into it.
    pub normalised: u64,
}

/// Where a spreadsheet's table was found, one per sheet read: the header
/// row(s), how they were found, and the rows read but not taken as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetLayout {
    /// The workbook's URI.
    pub source: String,
    /// The sheet.
    pub sheet: String,
    /// The header.
    pub header: SheetHeader,
    /// Rows above the header and trailer rows, in sheet order.
    pub skipped: Vec<SkippedRow>,
}

/// The header row(s) of a sheet and how they were found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetHeader {
    /// 1-based sheet rows of the header: one, or two for a group title
    /// merged over sub-columns (names `组_子`).
    pub rows: Vec<u64>,
    /// How the reader chose them.
    pub found: HeaderFound,
}

/// How a sheet's header row was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum HeaderFound {
    /// The job's `header_row`.
    Declared,
    /// The first row whose cells name this many of the job's source columns
    /// or the standard's column names and titles.
    Matched {
        /// Names matched.
        names: u64,
    },
    /// No row named enough columns: the first row with a value.
    FirstRow,
}

impl fmt::Display for HeaderFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderFound::Declared => f.write_str("declared by the job (header_row)"),
            HeaderFound::Matched { names } => write!(f, "found: {names} known column names"),
            HeaderFound::FirstRow => f.write_str("no row named the standard's columns: the first row with a value"),
        }
    }
}

/// A spreadsheet row read but not taken as data (nor quarantined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// 1-based sheet row.
    pub line: u64,
    /// Why.
    pub reason: SkipReason,
}

/// Why a spreadsheet row was not data. Only the reason is kept, never the
/// row's text: a signature line names a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// Above the header: a title, units, a note such as 填报单位：….
    AboveHeader,
    /// A total (合计, 小计, …) or signature line (制表人, 审核人, …): its
    /// first cell starts with `word`.
    Trailer {
        /// The trailer word its first cell starts with.
        word: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::AboveHeader => f.write_str("above the header"),
            SkipReason::Trailer { word } => write!(f, "trailer ({word})"),
        }
    }
}

/// One comparison of a dataset's primary keys with its source's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionCheck {
    /// The soft-delete column.
    pub column: String,
    /// Primary keys the source holds.
    pub source_keys: u64,
    /// Rows of the dataset marked deleted by this run.
    pub marked: u64,
}

/// The quality report of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The run.
    pub run_id: String,
    /// Row counts.
    pub counts: RunCounts,
    /// Completeness per column, over all rows the reader could split.
    pub completeness: Vec<ColumnCompleteness>,
    /// Validity per rule, most broken first.
    pub rules: Vec<RuleValidity>,
    /// Share of keyed rows whose primary key is unique within the run (1.0 when no key).
    pub primary_key_uniqueness: f64,
    /// Per column the job's mapping has steps for: values kept as delivered
    /// and values its declared normalisers changed (empty for reports
    /// written before normalisation was counted).
    #[serde(default)]
    pub normalised: Vec<ColumnNormalisation>,
    /// Source columns the job's mapping does not use: a warning, since a
    /// column renamed at the source shows up here first.
    #[serde(default)]
    pub unused_source_columns: Vec<String>,
    /// Database sources read on under `on_drift = "continue"`: how the
    /// source's columns changed since the last committed run (a column
    /// dropped, added or retyped), so that the drift is on record.
    #[serde(default)]
    pub source_drift: Vec<String>,
    /// Database sources with `[source.database.deletions]`: the primary-key
    /// comparison this run made, if one was due.
    #[serde(default)]
    pub source_deletions: Option<DeletionCheck>,
    /// Spreadsheets: per sheet read, where its table was and the rows
    /// skipped (empty for other sources).
    #[serde(default)]
    pub sheets: Vec<SheetLayout>,
    /// Newest modification time among the sources, when known.
    pub source_modified: Option<DateTime<Utc>>,
    /// When the run committed.
    pub ingested_at: DateTime<Utc>,
}

impl QualityReport {
    /// Share of rows written, of rows read.
    pub fn validity(&self) -> f64 {
        if self.counts.read == 0 { 1.0 } else { self.counts.written as f64 / self.counts.read as f64 }
    }
}

/// One lineage edge: a source feeding a run that produced a dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageEdge {
    /// Source URI (file path, object URL).
    pub source_uri: String,
    /// The run.
    pub run_id: String,
    /// The dataset.
    pub dataset: DatasetId,
    /// The dataset version produced.
    pub version: i64,
}

/// One committed version of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Delta version.
    pub version: i64,
    /// The run that committed it.
    pub run_id: String,
    /// Write mode.
    pub mode: WriteMode,
    /// Rows written by the run.
    pub rows_written: u64,
    /// When.
    pub committed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_ids_parse_and_print() {
        let id: DatasetId = "gongan.population".parse().unwrap();
        assert_eq!(id.department, Department::Gongan);
        assert_eq!(id.to_string(), "gongan.population");
        assert_eq!(id.quarantine_name(), "population__quarantine");
        for bad in ["population", "police.population", "gongan.Population", "gongan.", "gongan.x__quarantine"] {
            assert!(bad.parse::<DatasetId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn vocabularies_accept_chinese_terms() {
        assert_eq!("有条件".parse::<SharingType>().unwrap(), SharingType::Conditional);
        assert_eq!("民政".parse::<Department>().unwrap(), Department::Minzheng);
        assert_eq!("merge".parse::<WriteMode>().unwrap(), WriteMode::Upsert);
    }

    #[test]
    fn conservation() {
        let counts = RunCounts { read: 10, written: 7, quarantined: 2, duplicate: 1 };
        assert!(counts.conserved());
        assert!(!RunCounts { written: 6, ..counts }.conserved());
    }
}
