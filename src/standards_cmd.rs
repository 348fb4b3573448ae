//! `civlink standards ...`: check a standard and its compatibility with
//! earlier versions, and validate a data file against a standard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use civlink_connectors::file::{self, CsvOptions, Encoding, PositionedBatch};
use civlink_standards::compat::{self, Mode};
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Route, Validator};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use crate::{Error, Outcome, Result};

/// `civlink standards` subcommands.
#[derive(Debug, Subcommand)]
pub enum StandardsCommand {
    /// Check that a standard is well-formed, show how each keyword is validated,
    /// and (with --against) check compatibility with earlier versions.
    Check {
        /// The new version of the standard (JSON Schema 2020-12).
        new: PathBuf,
        /// Earlier versions, oldest first; the non-transitive modes use the last.
        #[arg(long = "against")]
        against: Vec<PathBuf>,
        /// Compatibility mode (Confluent Schema Registry sense).
        #[arg(long, default_value = "backward")]
        mode: Mode,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Validate a data file (CSV, NDJSON, JSON array, Parquet) against a standard.
    Validate {
        /// The standard.
        standard: PathBuf,
        /// The data file; its format comes from its extension.
        data: PathBuf,
        /// Text encoding of a CSV file: utf-8, gbk or gb18030.
        #[arg(long, default_value = "utf-8")]
        encoding: Encoding,
        /// CSV field delimiter (one character; `\t` for tab).
        #[arg(long, default_value = ",")]
        delimiter: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// How many violation kinds the text report lists.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Run a `standards` subcommand.
pub fn run(command: StandardsCommand) -> Result<Outcome> {
    match command {
        StandardsCommand::Check { new, against, mode, format } => check(&new, &against, mode, format),
        StandardsCommand::Validate { standard, data, encoding, delimiter, format, top } => {
            validate(&standard, &data, encoding, &delimiter, format, top)
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let standard =
        Standard::from_json_str(&text).map_err(|source| Error::Standard { path: path.to_owned(), source })?;
    Ok(standard.document)
}

pub fn load_standard(path: &Path) -> Result<Validator> {
    let document = read_json(path)?;
    let standard =
        Standard::from_value(document).map_err(|source| Error::Standard { path: path.to_owned(), source })?;
    Validator::compile(standard).map_err(|source| Error::Compile { path: path.to_owned(), source })
}

fn print_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Output { message: e.to_string() })?;
    println!("{text}");
    Ok(())
}

fn check(new: &Path, against: &[PathBuf], mode: Mode, format: OutputFormat) -> Result<Outcome> {
    let validator = load_standard(new)?;
    let previous = against.iter().map(|p| read_json(p)).collect::<Result<Vec<_>>>()?;
    let compat_report = if previous.is_empty() {
        None
    } else {
        Some(
            compat::check(&validator.standard().document, &previous, mode)
                .map_err(|source| Error::Compat { path: new.to_owned(), source })?,
        )
    };
    let compatible = compat_report.as_ref().is_none_or(|r| r.is_compatible());
    match format {
        OutputFormat::Json => {
            #[derive(Serialize)]
            struct CheckReport<'a> {
                id: &'a str,
                version: &'a str,
                columns: usize,
                routes: &'a [civlink_standards::validate::KeywordRoute],
                compatibility: Option<&'a compat::Report>,
            }
            let standard = validator.standard();
            print_json(&CheckReport {
                id: &standard.id,
                version: &standard.version,
                columns: standard.properties.len(),
                routes: &validator.report().routes,
                compatibility: compat_report.as_ref(),
            })?;
        }
        OutputFormat::Text => {
            let standard = validator.standard();
            println!(
                "{} {} ({}): {} columns — OK",
                standard.id,
                standard.version,
                standard.title,
                standard.properties.len()
            );
            print!("{}", validator.report());
            if validator.report().with_route(Route::Fallback).next().is_some() {
                println!("  (fallback keywords are checked row by row by the jsonschema crate)");
            }
            if let Some(report) = &compat_report {
                if report.is_compatible() {
                    println!("compatibility {mode}: compatible with {} earlier version(s)", report.checked_against);
                } else {
                    println!("compatibility {mode}: {} incompatibilities", report.incompatibilities.len());
                    for finding in &report.incompatibilities {
                        println!(
                            "  {:<40} {:?} (against {}): {}",
                            finding.pointer,
                            finding.direction,
                            against.get(finding.against_version).map(|p| p.display().to_string()).unwrap_or_default(),
                            finding.message
                        );
                    }
                }
            }
        }
    }
    Ok(if compatible { Outcome::Clean } else { Outcome::Findings })
}

/// One invalid row in the JSON report.
#[derive(Debug, Serialize)]
pub struct InvalidRow {
    /// 0-based index among the data rows of the file.
    pub row: u64,
    /// 1-based line in the file (record start), or row ordinal for binary formats.
    pub line: u64,
    /// What is wrong with it.
    pub violations: Vec<RowViolation>,
}

/// One violation of an invalid row.
#[derive(Debug, Serialize)]
pub struct RowViolation {
    /// The column, empty for whole-row problems.
    pub column: String,
    /// The rule broken.
    pub keyword: String,
    /// What is wrong.
    pub message: String,
}

/// Counts and invalid rows of one file, as `--format json` prints them.
#[derive(Debug, Serialize)]
pub struct ValidateReport {
    /// Data rows read.
    pub total: u64,
    /// Rows without violations.
    pub valid: u64,
    /// Rows with at least one violation.
    pub invalid: u64,
    /// Every invalid row, in file order.
    pub invalid_rows: Vec<InvalidRow>,
}

/// Tally of one (column, keyword) pair for the text summary.
struct Tally {
    count: u64,
    example: String,
    first_line: u64,
}

fn validate(
    standard_path: &Path,
    data: &Path,
    encoding: Encoding,
    delimiter: &str,
    format: OutputFormat,
    top: usize,
) -> Result<Outcome> {
    let validator = load_standard(standard_path)?;
    let delimiter = match delimiter {
        "\\t" | "\t" => b'\t',
        d if d.len() == 1 => d.as_bytes()[0],
        other => {
            return Err(Error::Output { message: format!("--delimiter must be one ASCII character, got {other:?}") });
        }
    };
    let csv = CsvOptions { encoding, delimiter, ..CsvOptions::default() };
    let checked = validate_file(&validator, data, csv)?;
    match format {
        OutputFormat::Json => print_json(&checked.report)?,
        OutputFormat::Text => print!("{}", checked.summary(&validator, data, top)),
    }
    Ok(if checked.report.invalid == 0 { Outcome::Clean } else { Outcome::Findings })
}

/// The result of validating one file.
pub struct FileValidation {
    /// Counts and every invalid row.
    pub report: ValidateReport,
    tallies: HashMap<(String, String), Tally>,
}

impl FileValidation {
    /// A summary for people: counts, then the most frequent violations.
    pub fn summary(&self, validator: &Validator, data: &Path, top: usize) -> String {
        use std::fmt::Write;
        let report = &self.report;
        let standard = validator.standard();
        let mut out = String::new();
        let pct = |n: u64| if report.total == 0 { 0.0 } else { 100.0 * n as f64 / report.total as f64 };
        let _ = writeln!(out, "{} against {} {}", data.display(), standard.id, standard.version);
        let _ = writeln!(out, "  rows     {:>10}", report.total);
        let _ = writeln!(out, "  valid    {:>10}  {:>6.2}%", report.valid, pct(report.valid));
        let _ = writeln!(out, "  invalid  {:>10}  {:>6.2}%", report.invalid, pct(report.invalid));
        if !self.tallies.is_empty() {
            let mut sorted: Vec<_> = self.tallies.iter().collect();
            sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
            let _ = writeln!(out, "top violations:");
            let _ = writeln!(out, "  {:>8}  {:<20} {:<22} example (first at line)", "count", "column", "rule");
            for ((column, keyword), tally) in sorted.into_iter().take(top) {
                let column = if column.is_empty() { "(row)" } else { column.as_str() };
                let _ = writeln!(
                    out,
                    "  {:>8}  {:<20} {:<22} {} (line {})",
                    tally.count, column, keyword, tally.example, tally.first_line
                );
            }
        }
        out
    }
}

/// Validate every row of a data file; rows the reader could not even split
/// (ragged CSV lines, undecodable bytes) count as invalid rows with keyword `source`.
pub fn validate_file(validator: &Validator, data: &Path, csv: CsvOptions) -> Result<FileValidation> {
    let batches = file::open(data, None, csv, 8192)?;
    let mut report = ValidateReport { total: 0, valid: 0, invalid: 0, invalid_rows: Vec::new() };
    let mut tallies: HashMap<(String, String), Tally> = HashMap::new();
    let mut note = |column: &str, keyword: &str, message: &str, line: u64| {
        let tally = tallies.entry((column.to_owned(), keyword.to_owned())).or_insert_with(|| Tally {
            count: 0,
            example: message.to_owned(),
            first_line: line,
        });
        tally.count += 1;
    };
    for positioned in batches {
        let PositionedBatch { batch, first_row, lines, rejects, delivered, .. } = positioned?;
        let verdict = validator
            .validate_delivered(&batch, delivered.as_ref())
            .map_err(|source| Error::Compile { path: data.to_owned(), source })?;
        // Data-row indices of this batch: rejects keep theirs, good rows fill the rest in order.
        let span = batch.num_rows() as u64 + rejects.len() as u64;
        let mut reject_at: HashMap<u64, &file::RawReject> = rejects.iter().map(|r| (r.row_index, r)).collect();
        let mut good = 0usize;
        for index in first_row..first_row + span {
            report.total += 1;
            if let Some(reject) = reject_at.remove(&index) {
                report.invalid += 1;
                note("", "source", &reject.reason, reject.line);
                report.invalid_rows.push(InvalidRow {
                    row: index,
                    line: reject.line,
                    violations: vec![RowViolation {
                        column: String::new(),
                        keyword: "source".into(),
                        message: reject.reason.clone(),
                    }],
                });
                continue;
            }
            let row = good;
            good += 1;
            if verdict.valid.get(row).copied().unwrap_or(false) {
                report.valid += 1;
                continue;
            }
            report.invalid += 1;
            let line = lines.get(row).copied().unwrap_or_default();
            let violations = verdict
                .violations_of(row)
                .map(|v| {
                    note(&v.column, &v.keyword, &v.message, line);
                    RowViolation { column: v.column.clone(), keyword: v.keyword.clone(), message: v.message.clone() }
                })
                .collect();
            report.invalid_rows.push(InvalidRow { row: index, line, violations });
        }
    }
    Ok(FileValidation { report, tallies })
}
