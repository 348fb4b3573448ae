//! Ingestion job files: what to read, how to map it, which standard it must
//! meet, and where it lands.
//!
//! One TOML file per job:
//!
//! ```toml
//! name = "gongan-population"            # job name
//! dataset = "gongan.population"          # target dataset: department.name
//! standard = "gongan.population"         # a shipped standard id, or a JSON file (relative to this file)
//! mode = "upsert"                        # append (default) | overwrite | upsert
//! schedule = "0 0 2 * * *"               # optional cron, seconds optional
//! missed = "run_once"                    # optional: skip (default) | run_once, see set::MissedRuns
//! after = ["gongan-population"]          # optional: run once these jobs have committed (see set)
//!
//! [dataset_info]                         # governance attributes, for registering the dataset
//! title = "户籍人口"                      # optional: the standard's title
//! owner = "省公安厅人口管理总队"            # optional
//! description = "..."                    # optional: the standard's description
//! sharing = "conditional"                # unconditional | conditional | not_shared (or 无条件 / 有条件 / 不予共享)
//! update_cycle = "daily"                 # realtime | daily | weekly | monthly | quarterly | yearly | irregular (or 每日 …)
//! classification = "sensitive"           # optional: public | internal | sensitive | secret; default: the standard's most sensitive column
//!
//! [source]
//! location = "exports/population_*.csv"  # path or glob (relative to this file), file:// or s3:// URL
//! format = "csv"                         # optional; from the extension otherwise
//! sheet = "人口"                          # xlsx/xls only: one sheet (default: the first visible)
//! # sheets = ["低保户", "低保成员"]        # or several, names or glob patterns, into one dataset
//! header_row = 3                         # xlsx/xls only, optional: found by its names otherwise
//! trailer_words = ["备注"]                # xlsx/xls only, optional: more words that start a trailer row
//! [source.csv]                           # CSV only: see file::CsvOptions
//! encoding = "gbk"
//!
//! [mapping]                              # optional: see the mapping module
//! rename = { "公民身份号码" = "id_number" }
//!
//! [gates]                                # optional: see the gates module (defaults apply)
//! max_quarantined = "10%"
//! ```
//!
//! [`Job::load`] checks everything it can without reading the data and
//! reports **every** problem at once ([`JobError::Invalid`]): a TOML syntax
//! error (with line and column), unknown or missing keys, an unknown
//! department, write mode, sharing type or update cycle, a bad cron
//! expression, a location that is not a path or URL, CSV options on a
//! non-CSV source, spreadsheet settings on a non-Excel source, a standard that is neither
//! shipped nor a readable file, and every mapping problem, including (for a
//! closed standard) mapped columns the standard does not have.

mod remote;
mod set;

pub use set::{JobSet, MissedRuns};

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use civlink_catalog::model::{DatasetId, Department, SharingType, UpdateCycle, WriteMode};
use civlink_standards::shipped;
use civlink_standards::standard::{Sensitivity, Standard};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use toml::{Table, Value};

use crate::file::{CsvOptions, CsvReader, DEFAULT_BATCH_SIZE, ExcelOptions, FileFormat, ReadOptions};
use crate::gates::Gates;
use crate::mapping::{Mapping, MappingError, MappingSpec};
use crate::source;

/// A job file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name, unique among the jobs (used in run records and logs).
    pub name: String,
    /// The target dataset, `department.name` (the department may be given
    /// by code or Chinese name: `gongan.population`, `公安户籍.population`).
    pub dataset: DatasetId,
    /// The standard rows must meet: a shipped standard id
    /// (`civlink_standards::shipped`) or the path of a standard JSON file,
    /// relative to the job file.
    pub standard: String,
    /// How valid rows land: `append` (default), `overwrite` or `upsert`
    /// (also `merge`), see [`WriteMode`].
    #[serde(default, deserialize_with = "de_from_str")]
    pub mode: WriteMode,
    /// Cron expression for scheduled runs (5 fields, or 6 with seconds first),
    /// kept as written; see [`Job::schedule`] for the parsed form.
    #[serde(default)]
    pub schedule: Option<String>,
    /// What a scheduler does about occurrences of `schedule` it missed while
    /// no scheduler ran: `skip` (default) or `run_once` when it starts.
    #[serde(default, deserialize_with = "de_from_str")]
    pub missed: MissedRuns,
    /// Jobs, by name, whose commits this job follows: the scheduler runs it
    /// once every one of them has committed since its own last run (see
    /// [`JobSet`] for the checks across jobs).
    #[serde(default)]
    pub after: Vec<String>,
    /// Governance attributes used when the dataset is registered.
    pub dataset_info: DatasetInfo,
    /// Where the files come from and how to read them.
    pub source: SourceSpec,
    /// How the export's columns map onto the standard's (default: unchanged).
    #[serde(default)]
    pub mapping: MappingSpec,
    /// The delivery gates' thresholds, as written (see [`crate::gates`];
    /// checked into [`Job::gates`]).
    #[serde(default)]
    pub gates: Table,
}

/// The `[dataset_info]` section: how the dataset is catalogued.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetInfo {
    /// Chinese title, e.g. 户籍人口 (default: the standard's title).
    #[serde(default)]
    pub title: Option<String>,
    /// The person or office responsible (数据责任人).
    #[serde(default)]
    pub owner: Option<String>,
    /// What the dataset holds (default: the standard's description).
    #[serde(default)]
    pub description: Option<String>,
    /// Sharing type (GB/T 21063): `unconditional`, `conditional`,
    /// `not_shared`, or 无条件 / 有条件 / 不予共享.
    #[serde(deserialize_with = "de_from_str")]
    pub sharing: SharingType,
    /// Update cycle: `realtime`, `daily`, `weekly`, `monthly`, `quarterly`,
    /// `yearly`, `irregular`, or 实时 / 每日 / 每周 / 每月 / 每季度 / 每年 / 不定期.
    #[serde(deserialize_with = "de_update_cycle")]
    pub update_cycle: UpdateCycle,
    /// Classification (GB/T 43697 mapping): `public`, `internal`,
    /// `sensitive`, `secret`, or 公开 / 内部 / 敏感 / 重要 (default: the
    /// most sensitive of the standard's columns).
    #[serde(default, deserialize_with = "de_opt_sensitivity")]
    pub classification: Option<Sensitivity>,
}

/// The `[source]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A path or glob (relative to the job file), a `file://` URL or an
    /// `s3://bucket/key` URL; see [`crate::source`].
    pub location: String,
    /// `csv`, `ndjson`, `json-array`, `parquet` or `xlsx`; from each file's
    /// extension when absent.
    #[serde(default, deserialize_with = "de_opt_from_str")]
    pub format: Option<FileFormat>,
    /// The worksheet of `.xlsx`/`.xls` files (default: the first visible sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Several worksheets, by name or glob pattern (`乡镇*`), read into one
    /// dataset, each with its own header; hidden sheets only when named
    /// exactly. Not with `sheet`.
    #[serde(default)]
    pub sheets: Option<Vec<String>>,
    /// The 1-based row of the header in every sheet read; without it the
    /// reader finds the header by the names it carries (see
    /// [`crate::file::excel::layout`]).
    #[serde(default)]
    pub header_row: Option<u32>,
    /// Words that start a trailer row's first cell, besides 合计, 总计,
    /// 小计, 制表人, 审核人, 填报日期 and the other defaults.
    #[serde(default)]
    pub trailer_words: Vec<String>,
    /// CSV reading options (`[source.csv]`), for CSV sources only.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// A database source (`[source.database]`; the location is then a
    /// `postgres://` or `mysql://` URL): see [`crate::source::database`].
    #[serde(default)]
    pub database: Option<crate::source::database::DatabaseSpec>,
    /// An HTTP API source (`[source.http]`; the location is then an
    /// `http://` or `https://` URL): see [`crate::source::http`].
    #[serde(default)]
    pub http: Option<crate::source::http::HttpSpec>,
}

/// One problem in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProblem {
    /// The key concerned, e.g. `dataset_info.sharing` (empty for syntax errors).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line, when known (syntax errors).
    pub line: Option<usize>,
    /// 1-based column, when known (syntax errors).
    pub column: Option<usize>,
}

impl JobProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> JobProblem {
        JobProblem { field: field.into(), message: message.into(), line: None, column: None }
    }
}

impl fmt::Display for JobProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "line {line}, column {column}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Errors of loading a job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The job file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The job has problems; every one is listed.
    #[error("{origin}: invalid job:\n  - {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Invalid {
        /// The job file, or `<job>` for text given directly.
        origin: String,
        /// Every problem found.
        problems: Vec<JobProblem>,
    },
    /// The standard could not be read.
    #[error("standard {reference:?}: {message}")]
    Standard {
        /// The job's `standard` value.
        reference: String,
        /// What went wrong.
        message: String,
    },
}

/// Result type of this module.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// A checked job, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job file's content.
    pub spec: JobSpec,
    /// The job file's text as read (for run fingerprints).
    pub text: String,
    /// Directory that relative paths (source location, standard file) are
    /// resolved against: the job file's directory.
    pub base_dir: PathBuf,
    /// The job file, when loaded from one.
    pub path: Option<PathBuf>,
    /// The compiled mapping, restricted to the standard's columns for
    /// `drop_unmapped`.
    pub mapping: Mapping,
    /// The parsed `schedule`.
    pub schedule: Option<croner::Cron>,
    /// The delivery gates, defaults filled in.
    pub gates: Gates,
}

impl Job {
    /// Reads and checks a job file; relative paths in it are resolved
    /// against its directory.
    pub fn load(path: &Path) -> Result<Job> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| JobError::Read { path: path.display().to_string(), source })?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        let mut job = Self::check(&text, &base_dir, &path.display().to_string())?;
        job.path = Some(path.to_path_buf());
        Ok(job)
    }

    /// Checks a job given as text; relative paths are resolved against `base_dir`.
    pub fn from_str(text: &str, base_dir: &Path) -> Result<Job> {
        Self::check(text, base_dir, "<job>")
    }

    fn check(text: &str, base_dir: &Path, origin: &str) -> Result<Job> {
        let invalid = |problems: Vec<JobProblem>| JobError::Invalid { origin: origin.to_owned(), problems };
        let table: Table = text.parse().map_err(|e: toml::de::Error| invalid(vec![syntax_problem(text, &e)]))?;
        let mut c = Checker::default();
        c.unknown_keys(
            &table,
            "",
            &[
                "name",
                "dataset",
                "standard",
                "mode",
                "schedule",
                "missed",
                "after",
                "dataset_info",
                "source",
                "mapping",
                "gates",
            ],
        );
        let gates_table = c.table(&table, "", "gates", false);
        let (gates, gate_problems) = crate::gates::check(gates_table);
        for (field, message) in gate_problems {
            c.problem(field, message);
        }

        if let Some(name) = c.string(&table, "", "name", true)
            && (name.trim().is_empty() || name.chars().any(char::is_control))
        {
            c.problem("name", "must be a non-empty name without control characters");
        }
        c.parsed(&table, "", "dataset", true, parse_dataset);
        let standard = c.string(&table, "", "standard", true);
        c.parsed(&table, "", "mode", false, |v| WriteMode::from_str(v).map_err(|e| e.to_string()));
        let schedule = c.parsed(&table, "", "schedule", false, |v| {
            croner::Cron::from_str(v).map_err(|e| format!("invalid cron expression {v:?}: {e}"))
        });
        set::check_own_keys(&mut c, &table);

        if let Some(info) = c.table(&table, "", "dataset_info", true) {
            c.unknown_keys(
                info,
                "dataset_info",
                &["title", "owner", "description", "sharing", "update_cycle", "classification"],
            );
            for key in ["title", "owner"] {
                if let Some(value) = c.string(info, "dataset_info", key, false)
                    && value.trim().is_empty()
                {
                    c.problem(format!("dataset_info.{key}"), "must not be empty when given");
                }
            }
            c.string(info, "dataset_info", "description", false);
            c.parsed(info, "dataset_info", "sharing", true, |v| SharingType::from_str(v).map_err(|e| e.to_string()));
            c.parsed(info, "dataset_info", "update_cycle", true, parse_update_cycle);
            c.parsed(info, "dataset_info", "classification", false, parse_sensitivity);
        }

        let mut csv_given = false;
        let mut sheet_given = false;
        let mut format: Option<Option<FileFormat>> = None;
        if let Some(src) = c.table(&table, "", "source", true) {
            c.unknown_keys(
                src,
                "source",
                &["location", "format", "sheet", "sheets", "header_row", "trailer_words", "csv", "database", "http"],
            );
            let explicit =
                c.parsed(src, "source", "format", false, |v| FileFormat::from_str(v).map_err(|e| e.to_string()));
            let database = c.deserialize::<crate::source::database::DatabaseSpec>(src, "source", "database");
            let http = c.deserialize::<crate::source::http::HttpSpec>(src, "source", "http");
            if let Some(location) = c.string(src, "source", "location", true) {
                let web = location.starts_with("http://") || location.starts_with("https://");
                match (&database, &http) {
                    (Some(_), Some(_)) => c.problem("source", "give [source.database] or [source.http], not both"),
                    (Some(database), None) => {
                        remote::check_database(&mut c, &location, database, &table, src);
                    }
                    (None, Some(http)) => remote::check_http(&mut c, &location, http, &table, src),
                    _ if src.contains_key("database") || src.contains_key("http") => {}
                    _ if web => c.problem("source.http", "an HTTP API location needs [source.http]"),
                    (None, None) => {
                        if crate::source::database::Engine::of_location(&location).is_some() {
                            c.problem(
                                "source.database",
                                "a database location needs [source.database] (table or query)",
                            );
                        } else if let Err(e) = source::check_location(&location) {
                            c.problem("source.location", e.to_string());
                        }
                        format = Some(explicit.or_else(|| format_of_location(&location)));
                    }
                }
            }
            let sheet = c.string(src, "source", "sheet", false);
            let sheets = c.strings(src, "source", "sheets");
            if sheet.is_some() && sheets.is_some() {
                c.problem("source.sheets", "give either sheet or sheets, not both");
            }
            if sheets.as_ref().is_some_and(Vec::is_empty) {
                c.problem("source.sheets", "must name at least one sheet");
            }
            if let Some(Value::Integer(row)) = src.get("header_row")
                && !(1..=1_048_576).contains(row)
            {
                c.problem("source.header_row", format!("must be a sheet row, 1 to 1048576; found {row}"));
            } else if let Some(other) = src.get("header_row").filter(|v| !v.is_integer()) {
                c.problem("source.header_row", format!("expected an integer, found {}", other.type_str()));
            }
            let trailer_words = c.strings(src, "source", "trailer_words");
            if trailer_words.as_ref().is_some_and(|words| words.iter().any(|w| w.trim().is_empty())) {
                c.problem("source.trailer_words", "a trailer word must not be empty");
            }
            sheet_given = [sheet.is_some(), sheets.is_some(), src.contains_key("header_row"), trailer_words.is_some()]
                .contains(&true);
            if let Some(options) = c.deserialize::<CsvOptions>(src, "source", "csv") {
                csv_given = true;
                // The readers' own checks (delimiter = quote, batch_size 0, …),
                // run now against an empty stream rather than at the first file.
                if let Err(e) = CsvReader::from_reader("[source.csv]", Box::new(std::io::empty()), options) {
                    c.problem("source.csv", e.to_string());
                }
            }
        }
        if let Some(Some(format)) = format {
            if csv_given && format != FileFormat::Csv {
                c.problem(
                    "source.csv",
                    format!("CSV options on a {format} source; remove [source.csv] or set source.format"),
                );
            }
            if sheet_given && !matches!(format, FileFormat::Xlsx | FileFormat::Xls) {
                c.problem(
                    "source",
                    format!(
                        "sheet, sheets, header_row and trailer_words apply to spreadsheets (xlsx, xls) only, \
                         this source is {format}"
                    ),
                );
            }
        }

        // The standard: shipped, or a file next to the job.
        let mut standard_columns: Option<(Vec<String>, bool)> = None;
        if let Some(reference) = &standard {
            if reference.trim().is_empty() {
                c.problem("standard", "must name a shipped standard or a standard file");
            } else {
                match load_standard(reference, base_dir) {
                    Ok(standard) => {
                        standard_columns =
                            Some((standard.properties.iter().map(|p| p.name.clone()).collect(), standard.closed));
                    }
                    Err(message) => c.problem("standard", message),
                }
            }
        }

        // The mapping, checked in full and against the standard's columns.
        let mut mapping = None;
        if let Some(spec) = c.deserialize::<MappingSpec>(&table, "", "mapping") {
            match Mapping::compile(&spec) {
                Ok(compiled) => mapping = Some(compiled),
                Err(MappingError::Invalid { problems }) => {
                    for p in problems {
                        c.problems.push(JobProblem::new("", p.to_string()));
                    }
                }
                Err(other) => c.problem("mapping", other.to_string()),
            }
        } else if !table.contains_key("mapping") {
            mapping = Some(Mapping::default());
        }
        if let (Some(compiled), Some((columns, closed))) = (&mapping, &standard_columns) {
            let known: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
            if *closed {
                for target in compiled.target_columns() {
                    if !known.contains(target) {
                        c.problem(
                            "mapping",
                            format!("column {target:?} is not in the standard, which allows no other columns"),
                        );
                    }
                }
            }
        }

        if !c.problems.is_empty() {
            return Err(invalid(c.problems));
        }
        // Every field has been checked; the typed spec now deserializes.
        let spec: JobSpec = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(vec![JobProblem::new("", e.message())]))?;
        let mut mapping = mapping.unwrap_or_default();
        if let Some((columns, _)) = standard_columns {
            mapping = mapping.restrict_to(columns);
        }
        Ok(Job { spec, text: text.to_owned(), base_dir: base_dir.to_path_buf(), path: None, mapping, schedule, gates })
    }

    /// The standard's JSON document: the shipped text, or the file named by
    /// `standard` (relative to the job file), read now.
    pub fn standard_document(&self) -> Result<String> {
        let reference = &self.spec.standard;
        if let Some((_, text)) = shipped::SHIPPED.iter().find(|(id, _)| id == reference) {
            return Ok((*text).to_owned());
        }
        let path = self.base_dir.join(reference);
        std::fs::read_to_string(&path).map_err(|e| JobError::Standard {
            reference: reference.clone(),
            message: format!("cannot read {}: {e}", path.display()),
        })
    }

    /// The standard, parsed.
    pub fn standard(&self) -> Result<Standard> {
        let text = self.standard_document()?;
        Standard::from_json_str(&text)
            .map_err(|e| JobError::Standard { reference: self.spec.standard.clone(), message: e.to_string() })
    }

    /// The spreadsheet settings: the sheets, header row and trailer words
    /// given, and the names a header row may carry (the mapping's source
    /// columns, the standard's column names and titles).
    fn excel_options(&self) -> ExcelOptions {
        let source = &self.spec.source;
        let mut header_names: Vec<String> = self.mapping.source_names().into_iter().map(str::to_owned).collect();
        if let Ok(standard) = self.standard() {
            for property in &standard.properties {
                header_names.push(property.name.clone());
                header_names.push(property.title.clone());
            }
        }
        ExcelOptions {
            sheets: source.sheet.iter().chain(source.sheets.iter().flatten()).cloned().collect(),
            header_row: source.header_row,
            header_names,
            trailer_words: source.trailer_words.clone(),
        }
    }

    /// When the job's `schedule` next fires after `after` (`None`: no schedule).
    pub fn next_run(&self, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule.as_ref()?.find_next_occurrence(&after, false).ok()
    }

    /// Reader options for this job's files: its `[source.csv]` and spreadsheet settings,
    /// and [`DEFAULT_BATCH_SIZE`] records per batch (set
    /// [`ReadOptions::batch_size`] to change it).
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            csv: self.spec.source.csv.clone().unwrap_or_default(),
            excel: self.excel_options(),
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Collects problems while checking the table field by field, so that one
/// bad value does not hide the next.
#[derive(Default)]
struct Checker {
    problems: Vec<JobProblem>,
}

fn key_path(section: &str, key: &str) -> String {
    if section.is_empty() { key.to_owned() } else { format!("{section}.{key}") }
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(JobProblem::new(field, message));
    }

    fn unknown_keys(&mut self, table: &Table, section: &str, known: &[&str]) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(key_path(section, key), format!("unknown key; expected one of {}", known.join(", ")));
            }
        }
    }

    fn missing(&mut self, section: &str, key: &str) {
        self.problem(key_path(section, key), "required");
    }

    /// A string value; `None` when absent or of another type.
    fn string(&mut self, table: &Table, section: &str, key: &str, required: bool) -> Option<String> {
        match table.get(key) {
            None => {
                if required {
                    self.missing(section, key);
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(key_path(section, key), format!("expected a string, found {}", other.type_str()));
                None
            }
        }
    }

    /// A string value parsed by `parse`; `None` when absent or invalid.
    fn parsed<T>(
        &mut self,
        table: &Table,
        section: &str,
        key: &str,
        required: bool,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Option<T> {
        let text = self.string(table, section, key, required)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.problem(key_path(section, key), message);
                None
            }
        }
    }

    /// An optional list of strings; `None` when absent or not one.
    fn strings(&mut self, table: &Table, section: &str, key: &str) -> Option<Vec<String>> {
        match table.get(key)? {
            Value::Array(items) => {
                let strings: Vec<String> = items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                if strings.len() == items.len() {
                    Some(strings)
                } else {
                    self.problem(key_path(section, key), "expected a list of strings");
                    None
                }
            }
            other => {
                self.problem(key_path(section, key), format!("expected a list of strings, found {}", other.type_str()));
                None
            }
        }
    }

    /// A sub-table.
    fn table<'t>(&mut self, table: &'t Table, section: &str, key: &str, required: bool) -> Option<&'t Table> {
        match table.get(key) {
            None => {
                if required {
                    self.missing(section, key);
                }
                None
            }
            Some(Value::Table(t)) => Some(t),
            Some(other) => {
                self.problem(key_path(section, key), format!("expected a table, found {}", other.type_str()));
                None
            }
        }
    }

    /// An optional sub-table deserialized whole (its own type reports its
    /// first problem).
    fn deserialize<T: DeserializeOwned>(&mut self, table: &Table, section: &str, key: &str) -> Option<T> {
        let value = table.get(key)?.clone();
        match value.try_into::<T>() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.problem(key_path(section, key), e.message().trim().to_owned());
                None
            }
        }
    }
}

/// A TOML syntax error with its 1-based line and column.
fn syntax_problem(text: &str, error: &toml::de::Error) -> JobProblem {
    let (line, column) = match error.span() {
        Some(span) => {
            let before = text.get(..span.start.min(text.len())).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    JobProblem { field: String::new(), message: format!("TOML syntax error: {}", error.message().trim()), line, column }
}

/// The format a location's extension implies, if any (`.json` counts as a
/// JSON array here; the actual file is sniffed when read, and either way it
/// is not CSV or Excel).
fn format_of_location(location: &str) -> Option<FileFormat> {
    let name = location.rsplit('/').next().unwrap_or(location);
    let (_, extension) = name.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "csv" | "txt" => Some(FileFormat::Csv),
        "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
        "json" => Some(FileFormat::JsonArray),
        "parquet" => Some(FileFormat::Parquet),
        "xlsx" => Some(FileFormat::Xlsx),
        "xls" => Some(FileFormat::Xls),
        _ => None,
    }
}

/// Loads and parses the job's standard, as a problem message on failure.
fn load_standard(reference: &str, base_dir: &Path) -> std::result::Result<Standard, String> {
    if let Some(parsed) = shipped::standard(reference) {
        return parsed.map_err(|e| format!("shipped standard {reference:?} does not parse: {e}"));
    }
    let path = base_dir.join(reference);
    let shipped_ids: Vec<&str> = shipped::SHIPPED.iter().map(|(id, _)| *id).collect();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{reference:?} is neither a shipped standard ({}) nor a readable file ({}: {e})",
            shipped_ids.join(", "),
            path.display()
        )
    })?;
    Standard::from_json_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A dataset id, naming the department when that is what is wrong.
fn parse_dataset(value: &str) -> std::result::Result<DatasetId, String> {
    if let Some((department, _)) = value.trim().split_once('.')
        && let Err(e) = Department::from_str(department)
    {
        return Err(e.to_string());
    }
    DatasetId::from_str(value).map_err(|e| e.to_string())
}

/// The catalog's codes, plus the Chinese terms of 政务信息资源目录.
fn parse_update_cycle(value: &str) -> std::result::Result<UpdateCycle, String> {
    let code = match value.trim() {
        "实时" => "realtime",
        "每日" | "每天" | "日" => "daily",
        "每周" | "周" => "weekly",
        "每月" | "月" => "monthly",
        "每季度" | "季度" => "quarterly",
        "每年" | "年" => "yearly",
        "不定期" => "irregular",
        other => other,
    };
    UpdateCycle::from_str(code).map_err(|_| {
        format!(
            "unknown update cycle {value:?}; expected realtime, daily, weekly, monthly, quarterly, yearly or irregular (实时, 每日, 每周, 每月, 每季度, 每年, 不定期)"
        )
    })
}

/// The standard's sensitivity names, plus Chinese terms.
fn parse_sensitivity(value: &str) -> std::result::Result<Sensitivity, String> {
    match value.trim() {
        "public" | "公开" => Ok(Sensitivity::Public),
        "internal" | "内部" => Ok(Sensitivity::Internal),
        "sensitive" | "敏感" | "个人信息" => Ok(Sensitivity::Sensitive),
        "secret" | "重要" | "重要数据" => Ok(Sensitivity::Secret),
        _ => Err(format!(
            "unknown classification {value:?}; expected public, internal, sensitive or secret (公开, 内部, 敏感, 重要)"
        )),
    }
}

fn de_from_str<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(D::Error::custom)
}

fn de_opt_from_str<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Option::<String>::deserialize(deserializer)?.map(|text| text.parse().map_err(D::Error::custom)).transpose()
}

fn de_update_cycle<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<UpdateCycle, D::Error> {
    parse_update_cycle(&String::deserialize(deserializer)?).map_err(D::Error::custom)
}

fn de_opt_sensitivity<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Sensitivity>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse_sensitivity(&text).map_err(D::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "gongan-population"
dataset = "gongan.population"
standard = "gongan.population"
mode = "upsert"
schedule = "0 0 2 * * *"

[dataset_info]
title = "户籍人口"
owner = "省公安厅人口管理总队"
description = "全省户籍人口"
sharing = "有条件"
update_cycle = "每日"
classification = "sensitive"

[source]
location = "exports/population_*.csv"
[source.csv]
encoding = "gbk"

[mapping]
rename = { "公民身份号码" = "id_number", "姓名" = "name", "性别" = "sex" }
[[mapping.columns]]
name = "sex"
code_table = "sex"
"#;

    fn database_job(source: &str, mode: &str) -> String {
        let (head, _) = GOOD.split_once("[source]").unwrap();
        let (_, mapping) = GOOD.split_once("[mapping]").unwrap();
        format!("{}[source]\n{source}\n[mapping]{mapping}", head.replace("mode = \"upsert\"", mode))
    }

    #[test]
    fn a_database_source_is_checked_in_full() {
        let good = database_job(
            "location = \"postgres://renshe@127.0.0.1:5432/renshe\"\n[source.database]\ntable = \"public.people\"\n\
             password_env = \"PW\"\ncursor = \"updated_at\"\nlookback = 60",
            "mode = \"upsert\"",
        );
        let job = Job::from_str(&good, Path::new("/jobs")).unwrap();
        let database = job.spec.source.database.as_ref().unwrap();
        assert_eq!(database.cursor.as_deref(), Some("updated_at"));
        assert_eq!(database.lookback, Some(60));

        let bad = database_job(
            "location = \"mysql://root:hunter2@127.0.0.1:3306/test\"\nformat = \"csv\"\n[source.database]\n\
             table = \"t\"\nquery = \"SELECT 1\"\npassword_env = \"A\"\npassword_file = \"b\"\ncursor = \"c\"\nport = 1",
            "mode = \"append\"",
        );
        let err = Job::from_str(&bad, Path::new("/jobs")).unwrap_err().to_string();
        assert!(err.contains("port"), "unknown keys are named: {err}");
        let bad = bad.replace("\nport = 1", "");
        let err = Job::from_str(&bad, Path::new("/jobs")).unwrap_err().to_string();
        for expected in [
            "carries a password",
            "either table or query",
            "either password_env or password_file",
            "source.format",
            "mode = \"upsert\"",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
        assert!(!err.contains("hunter2"), "{err}");
        let in_query = database_job(
            "location = \"postgres://x@h/db?password=hunter2\"\n[source.database]\ntable = \"t\"",
            "mode = \"overwrite\"",
        );
        let err = Job::from_str(&in_query, Path::new("/jobs")).unwrap_err().to_string();
        assert!(err.contains("carries a password") && !err.contains("hunter2"), "{err}");
        let appending =
            database_job("location = \"postgres://x@h/db\"\n[source.database]\ntable = \"t\"", "mode = \"append\"");
        let err = Job::from_str(&appending, Path::new("/jobs")).unwrap_err().to_string();
        assert!(err.contains("read in full each run"), "a full read appended each run would double: {err}");
        let no_section = database_job("location = \"postgres://x@h/db\"", "mode = \"overwrite\"");
        let err = Job::from_str(&no_section, Path::new("/jobs")).unwrap_err().to_string();
        assert!(err.contains("needs [source.database]"), "{err}");
    }

    #[test]
    fn an_http_source_is_checked_in_full() {
        let good = database_job(
            "location = \"https://api.example/v1/people\"\n[source.http]\nrecords = \"data.items\"\n\
             pagination = \"page\"\nauth = \"bearer\"\ntoken_env = \"T\"\ncursor_field = \"updated_at\"\n\
             cursor_param = \"since\"",
            "mode = \"upsert\"",
        );
        let job = Job::from_str(&good, Path::new("/jobs")).unwrap();
        assert_eq!(job.spec.source.http.as_ref().and_then(|h| h.records.as_deref()), Some("data.items"));
        let bad = database_job(
            "location = \"https://api.example/v1/people\"\nformat = \"csv\"\n[source.http]\npagination = \"next_link\"\n\
             auth = \"api_key\"\ncursor_field = \"updated_at\"",
            "mode = \"append\"",
        );
        let err = Job::from_str(&bad, Path::new("/jobs")).unwrap_err().to_string();
        for expected in ["next_link pagination needs", "needs token_env or token_file", "source.format", "go together"]
        {
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let bare = database_job("location = \"https://api.example/v1/people\"", "mode = \"overwrite\"");
        let err = Job::from_str(&bare, Path::new("/jobs")).unwrap_err().to_string();
        assert!(err.contains("needs [source.http]"), "{err}");
    }

    #[test]
    fn good_job() {
        let job = Job::from_str(GOOD, Path::new("/jobs")).unwrap();
        assert_eq!(job.spec.name, "gongan-population");
        assert_eq!(job.spec.dataset.to_string(), "gongan.population");
        assert_eq!(job.spec.mode, WriteMode::Upsert);
        assert_eq!(job.spec.dataset_info.sharing, SharingType::Conditional);
        assert_eq!(job.spec.dataset_info.update_cycle, UpdateCycle::Daily);
        assert_eq!(job.spec.dataset_info.classification, Some(Sensitivity::Sensitive));
        assert_eq!(job.spec.dataset_info.title.as_deref(), Some("户籍人口"));
        assert_eq!(job.text, GOOD);
        assert_eq!(job.spec.source.csv.as_ref().map(|c| c.encoding), Some(crate::file::Encoding::Gbk));
        assert!(job.schedule.is_some());
        assert_eq!(job.spec.schedule.as_deref(), Some("0 0 2 * * *"));
        assert!(!job.mapping.is_identity());
        assert_eq!(job.read_options().csv.encoding, crate::file::Encoding::Gbk);
        assert_eq!(job.read_options().batch_size, DEFAULT_BATCH_SIZE);
        assert!(job.standard_document().unwrap().contains("\"x-civlink-id\": \"gongan.population\""));
        assert_eq!(job.standard().unwrap().id, "gongan.population");
        // The derived Deserialize agrees with the checker.
        let direct: JobSpec = toml::from_str(GOOD).unwrap();
        assert_eq!(format!("{direct:?}"), format!("{:?}", job.spec));
    }

    #[test]
    fn minimal_job_defaults() {
        let text = r#"
name = "x"
dataset = "民政.assistance"
standard = "gongan.population"
[dataset_info]
sharing = "unconditional"
update_cycle = "irregular"
[source]
location = "s3://bucket/exports/"
"#;
        let job = Job::from_str(text, Path::new("/")).unwrap();
        assert_eq!(job.spec.mode, WriteMode::Append);
        assert!(job.schedule.is_none() && job.mapping.is_identity());
        assert_eq!(job.spec.dataset_info.description, None);
        assert_eq!(job.spec.dataset_info.classification, None);
        assert_eq!(job.spec.dataset.department, Department::Minzheng);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = Job::from_str("name = \"x\"\ndataset = \n", Path::new("/")).unwrap_err();
        let JobError::Invalid { problems, .. } = &err else { panic!("{err}") };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2), "{err}");
        assert!(problems[0].column.is_some());
        assert!(err.to_string().contains("line 2, column"), "{err}");
    }

    #[test]
    fn formats_from_locations() {
        assert_eq!(format_of_location("a/b.CSV"), Some(FileFormat::Csv));
        assert_eq!(format_of_location("s3://b/x/*.parquet"), Some(FileFormat::Parquet));
        assert_eq!(format_of_location("exports/"), None);
        assert_eq!(format_of_location("exports.d/file"), None);
    }
}
