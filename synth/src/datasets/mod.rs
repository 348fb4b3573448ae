//! The fourteen datasets: how each department exports it (file, format,
//! headers in its own words), which malformed rows are planted in it, and the
//! ingestion job that maps the export back onto the shipped standard.
//!
//! [`Exports`] owns every writer and every [`Tally`]: real rows go through
//! [`Exports::valid`], and after each one [`Exports::junk_due`] says whether a
//! planted malformed row is due; [`Exports::junk`] turns a valid row of a
//! throw-away person into that malformation, writes it and records what the
//! pipeline must do with it.
//!
//! Planted rows come in a fixed cycle per dataset: the whole cycle early in
//! the file (so that small runs have every kind), then one row every
//! [`JUNK_INTERVAL`] real rows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use crate::rows::{Charset, CsvWriter, JsonWriter, ParquetType, ParquetWriter, Row, SheetPlan, XlsxWriter};
use crate::truth::{DatasetTruth, Tally};
use crate::world::unknown_village_code;
use crate::{Error, Result};

mod specs;

use specs::SPECS;

/// Real rows between two planted malformed rows, after the first cycle.
pub(crate) const JUNK_INTERVAL: u64 = 400;
/// Real rows between the planted rows of the first cycle.
const FIRST_CYCLE_GAP: u64 = 1;

/// A dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ds {
    Population,
    DibaoHouseholds,
    DibaoMembers,
    Tekun,
    TemporaryAid,
    SocialInsurance,
    PensionPayments,
    Employment,
    DeathCertificates,
    SeriousIllness,
    DisabilityCertificates,
    DisabilitySubsidies,
    RegisteredPoor,
    Monitoring,
}

impl Ds {
    /// Every dataset, in the contract's order.
    pub(crate) const ALL: [Ds; 14] = [
        Ds::Population,
        Ds::DibaoHouseholds,
        Ds::DibaoMembers,
        Ds::Tekun,
        Ds::TemporaryAid,
        Ds::SocialInsurance,
        Ds::PensionPayments,
        Ds::Employment,
        Ds::DeathCertificates,
        Ds::SeriousIllness,
        Ds::DisabilityCertificates,
        Ds::DisabilitySubsidies,
        Ds::RegisteredPoor,
        Ds::Monitoring,
    ];

    pub(crate) fn spec(self) -> &'static Spec {
        &SPECS[self as usize]
    }
}

/// How a dataset is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv(Charset),
    Ndjson,
    JsonArray,
    /// A sheet of the department's workbook ([`WORKBOOK`]).
    Xlsx(&'static str),
    Parquet,
}

/// One export column: the department's header and the standard's column
/// ("" for a column the standard does not have, dropped by the job).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub header: &'static str,
    pub standard: &'static str,
    pub parquet: ParquetType,
}

const fn c(header: &'static str, standard: &'static str) -> Column {
    Column { header, standard, parquet: ParquetType::Text }
}

const fn int(header: &'static str, standard: &'static str) -> Column {
    Column { header, standard, parquet: ParquetType::Int32 }
}

/// A planted malformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Junk {
    /// A wrong check character in the ID column: (`id_number`, `format`).
    CheckChar,
    /// A division code that does not exist: (division column, `format`).
    Division,
    /// An impossible date (this text in this column): (column, `format`).
    Date(usize, &'static str),
    /// A code outside the column's code table: (column, `x-civlink-code-table`).
    CodeTable(usize, &'static str),
    /// A value outside the column's enum: (column, `enum`).
    Enum(usize, &'static str),
    /// A line in the other character set: ("", `source`).
    Foreign,
    /// A line with a field missing: ("", `source`).
    Ragged,
    /// A valid row written twice: one duplicate.
    Duplicate,
}

/// Everything about one dataset's export and job.
#[derive(Debug)]
pub(crate) struct Spec {
    /// `department.name`.
    pub id: &'static str,
    pub title: &'static str,
    pub owner: &'static str,
    pub sharing: &'static str,
    pub update_cycle: &'static str,
    pub format: Format,
    /// File name under `exports/<department>/` (population: the stem of `<stem>_<n>.csv`).
    pub file: &'static str,
    pub columns: &'static [Column],
    /// Index of the ID-number column planted with wrong check characters.
    pub id_column: usize,
    /// Index of the division-code column.
    pub division_column: usize,
    /// The job's `[[mapping.columns]]` steps (TOML).
    pub steps: &'static str,
    /// The planted malformations, in cycle order.
    pub junk: &'static [Junk],
}

impl Spec {
    pub(crate) fn department(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    fn name(&self) -> &'static str {
        self.id.split('.').nth(1).unwrap_or(self.id)
    }

    pub(crate) fn headers(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.header).collect()
    }

    /// The (column, keyword) a planted malformation is quarantined for.
    fn rule(&self, junk: Junk) -> Option<(&'static str, &'static str)> {
        let column = |i: usize| self.columns.get(i).map_or("", |c| c.standard);
        match junk {
            Junk::CheckChar => Some((column(self.id_column), "format")),
            Junk::Division => Some((column(self.division_column), "format")),
            Junk::Date(i, _) => Some((column(i), "format")),
            Junk::CodeTable(i, _) => Some((column(i), "x-civlink-code-table")),
            Junk::Enum(i, _) => Some((column(i), "enum")),
            Junk::Foreign | Junk::Ragged => Some(("", "source")),
            Junk::Duplicate => None,
        }
    }

    /// The job file's text.
    pub(crate) fn job(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "# {} ({}): generated by civlink-synth; maps the department's export", self.title, self.id);
        let _ = writeln!(t, "# onto the shipped standard {}.", self.id);
        let _ = writeln!(t, "name = \"{}-{}\"", self.department(), self.name().replace('_', "-"));
        let _ = writeln!(t, "dataset = \"{}\"", self.id);
        let _ = writeln!(t, "standard = \"{}\"", self.id);
        t.push_str("# Each delivery is a full snapshot of the department's records.\nmode = \"overwrite\"\n\n");
        t.push_str("[dataset_info]\n");
        let _ = writeln!(t, "title = \"{}\"", self.title);
        let _ = writeln!(t, "owner = \"{}\"", self.owner);
        let _ = writeln!(t, "sharing = \"{}\"", self.sharing);
        let _ = writeln!(t, "update_cycle = \"{}\"\n", self.update_cycle);
        t.push_str("[source]\n");
        let location = match self.format {
            Format::Csv(_) if *self == *Ds::Population.spec() => format!("{}_*.csv", self.file),
            Format::Xlsx(_) => WORKBOOK.to_owned(),
            _ => self.file.to_owned(),
        };
        let _ = writeln!(t, "location = \"../exports/{}/{location}\"", self.department());
        match self.format {
            Format::Xlsx(sheet) => {
                let _ = writeln!(t, "sheet = \"{sheet}\"");
            }
            Format::Csv(charset) => {
                let _ = writeln!(t, "[source.csv]\nencoding = \"{}\"", charset.name());
            }
            Format::Ndjson | Format::JsonArray | Format::Parquet => {}
        }
        t.push_str(
            "\n[mapping]\n# Columns the standard does not have (such as remarks) are left out.\ndrop_unmapped = true\n",
        );
        if matches!(self.format, Format::Ndjson | Format::JsonArray) {
            // The export writes `null` for a value it does not have; the standard's columns do not admit null.
            t.push_str("# The export's JSON nulls mean \"no value\", as a missing key does.\njson_null = \"absent\"\n");
        }
        t.push('\n');
        t.push_str("[mapping.rename]\n");
        for column in self.columns.iter().filter(|c| !c.standard.is_empty()) {
            let _ = writeln!(t, "\"{}\" = \"{}\"", column.header, column.standard);
        }
        t.push('\n');
        t.push_str(self.steps.trim_start());
        t
    }
}

impl PartialEq for Spec {
    fn eq(&self, other: &Spec) -> bool {
        self.id == other.id
    }
}

/// The 民政 workbook holding both 低保 sheets.
pub(crate) const WORKBOOK: &str = "低保台账.xlsx";

/// Where a dataset's rows go.
enum Sink {
    Csv(CsvWriter),
    Json(JsonWriter),
    Sheet(usize),
    Parquet(Box<ParquetWriter>),
    /// Finished (population between files, or after `finish`).
    Closed,
}

/// When the next planted row of a dataset is due.
#[derive(Debug, Default, Clone, Copy)]
struct Schedule {
    real: u64,
    next: u64,
    planted: usize,
}

/// Every writer and tally.
pub(crate) struct Exports {
    out: PathBuf,
    sinks: Vec<Sink>,
    book: Option<XlsxWriter>,
    tallies: Vec<Tally>,
    schedules: Vec<Schedule>,
    files: Vec<Vec<String>>,
    /// Population rows per file.
    per_file: u64,
    /// Population rows in the current file.
    in_file: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl Exports {
    /// Creates `exports/<department>/` and every export file; `people` sets
    /// how the household register is split into files.
    pub(crate) fn create(out: &Path, people: u64, as_of: NaiveDate) -> Result<Exports> {
        for department in ["gongan", "minzheng", "renshe", "weijian", "canlian", "xiangcun"] {
            let dir = out.join("exports").join(department);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        // Register files of an earlier, larger run would be picked up by the job's glob.
        let gongan = out.join("exports").join("gongan");
        let stem = Ds::Population.spec().file;
        for entry in std::fs::read_dir(&gongan).map_err(io(&gongan))? {
            let entry = entry.map_err(io(&gongan))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{stem}_")) && name.ends_with(".csv") {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        let mut exports = Exports {
            out: out.to_path_buf(),
            sinks: Vec::with_capacity(Ds::ALL.len()),
            book: None,
            tallies: Ds::ALL.iter().map(|_| Tally::default()).collect(),
            schedules: vec![Schedule { real: 0, next: 1, planted: 0 }; Ds::ALL.len()],
            files: vec![Vec::new(); Ds::ALL.len()],
            per_file: people.div_ceil(2).clamp(1000, 1_000_000),
            in_file: 0,
        };
        let sheets: Vec<(&Spec, &str, Vec<&str>)> = Ds::ALL
            .iter()
            .filter_map(|ds| match ds.spec().format {
                Format::Xlsx(sheet) => Some((ds.spec(), sheet, ds.spec().headers())),
                _ => None,
            })
            .collect();
        // As township ledgers are: a merged title and a note above the header, a 合计 row below the data.
        let plans: Vec<SheetPlan<'_>> = sheets
            .iter()
            .map(|(spec, sheet, headers)| SheetPlan {
                name: sheet,
                headers,
                title: Some((
                    format!("{}台账（{}年{}月）", spec.title, as_of.year(), as_of.month()),
                    format!("填报单位：{}", spec.owner),
                )),
                total: (*sheet == "低保户").then_some("{n}户"),
            })
            .collect();
        let book_path = out.join("exports").join("minzheng").join(WORKBOOK);
        exports.book = Some(XlsxWriter::create(&book_path, &plans, as_of)?);
        let mut sheet_index = 0;
        for ds in Ds::ALL {
            let spec = ds.spec();
            let sink = match spec.format {
                Format::Csv(_) if ds == Ds::Population => Sink::Closed,
                Format::Csv(charset) => {
                    let (path, relative) = exports.path(ds, spec.file);
                    exports.files[ds as usize].push(relative);
                    Sink::Csv(CsvWriter::create(&path, charset, &spec.headers())?)
                }
                Format::Ndjson | Format::JsonArray => {
                    let (path, relative) = exports.path(ds, spec.file);
                    exports.files[ds as usize].push(relative);
                    Sink::Json(JsonWriter::create(&path, &spec.headers(), spec.format == Format::JsonArray)?)
                }
                Format::Xlsx(_) => {
                    let (_, relative) = exports.path(ds, WORKBOOK);
                    exports.files[ds as usize].push(relative);
                    sheet_index += 1;
                    Sink::Sheet(sheet_index - 1)
                }
                Format::Parquet => {
                    let (path, relative) = exports.path(ds, spec.file);
                    exports.files[ds as usize].push(relative);
                    let columns: Vec<(&str, ParquetType)> =
                        spec.columns.iter().map(|c| (c.header, c.parquet)).collect();
                    Sink::Parquet(Box::new(ParquetWriter::create(&path, &columns)?))
                }
            };
            exports.sinks.push(sink);
        }
        exports.next_population_file()?;
        Ok(exports)
    }

    /// The absolute and output-relative path of a dataset's file.
    fn path(&self, ds: Ds, file: &str) -> (PathBuf, String) {
        let department = ds.spec().department();
        (self.out.join("exports").join(department).join(file), format!("exports/{department}/{file}"))
    }

    fn next_population_file(&mut self) -> Result<()> {
        let ds = Ds::Population;
        if let Sink::Csv(writer) = std::mem::replace(&mut self.sinks[ds as usize], Sink::Closed) {
            writer.finish()?;
        }
        let n = self.files[ds as usize].len() + 1;
        let spec = ds.spec();
        let (path, relative) = self.path(ds, &format!("{}_{n}.csv", spec.file));
        self.files[ds as usize].push(relative);
        let Format::Csv(charset) = spec.format else {
            return Err(Error::Inconsistent { message: "the household register is not a CSV export".into() });
        };
        self.sinks[ds as usize] = Sink::Csv(CsvWriter::create(&path, charset, &spec.headers())?);
        self.in_file = 0;
        Ok(())
    }

    fn write(&mut self, ds: Ds, row: &Row) -> Result<()> {
        let expected = ds.spec().columns.len();
        if row.len() != expected {
            return Err(Error::Inconsistent {
                message: format!("{}: a row has {} cells, the export {expected} columns", ds.spec().id, row.len()),
            });
        }
        match &mut self.sinks[ds as usize] {
            Sink::Csv(w) => w.write(row),
            Sink::Json(w) => w.write(row),
            Sink::Parquet(w) => w.write(row),
            Sink::Sheet(sheet) => match &mut self.book {
                Some(book) => book.write(*sheet, row),
                None => Err(Error::Inconsistent { message: "the workbook is closed".into() }),
            },
            Sink::Closed => Err(Error::Inconsistent { message: format!("{}: export closed", ds.spec().id) }),
        }
    }

    /// Writes a real (valid) row in division `code`.
    pub(crate) fn valid(&mut self, ds: Ds, row: &Row, code: u64) -> Result<()> {
        if ds == Ds::Population {
            if self.in_file >= self.per_file {
                self.next_population_file()?;
            }
            self.in_file += 1;
        }
        self.write(ds, row)?;
        self.tallies[ds as usize].valid(code);
        self.schedules[ds as usize].real += 1;
        Ok(())
    }

    /// The malformation due after the latest real row of `ds`, if any.
    pub(crate) fn junk_due(&mut self, ds: Ds) -> Option<Junk> {
        let junk = ds.spec().junk;
        let s = &mut self.schedules[ds as usize];
        if junk.is_empty() || s.real < s.next {
            return None;
        }
        let kind = junk[s.planted % junk.len()];
        s.planted += 1;
        s.next = s.real + if s.planted < junk.len() { FIRST_CYCLE_GAP } else { JUNK_INTERVAL };
        Some(kind)
    }

    /// Turns `row` — a valid row of a throw-away person, in division `code`
    /// — into the malformation `junk`, writes it and tallies it.
    pub(crate) fn junk(&mut self, ds: Ds, junk: Junk, row: &mut Row, code: u64) -> Result<()> {
        let spec = ds.spec();
        match junk {
            Junk::CheckChar => {
                let (id, _) = row.cell(spec.id_column);
                let mut wrong = id.to_owned();
                let last = wrong.pop().unwrap_or('0');
                wrong.push(if last == '0' { '1' } else { '0' });
                row.replace_text(spec.id_column, &wrong);
            }
            Junk::Division => {
                let (current, _) = row.cell(spec.division_column);
                // Hospital records carry 6-digit county codes: a county that does not exist.
                let unknown = if current.len() == 6 { "639999".to_owned() } else { unknown_village_code(current) };
                row.replace_text(spec.division_column, &unknown);
            }
            Junk::Date(i, text) | Junk::CodeTable(i, text) | Junk::Enum(i, text) => row.replace_text(i, text),
            Junk::Foreign | Junk::Ragged | Junk::Duplicate => {}
        }
        match junk {
            Junk::Duplicate => {
                self.write(ds, row)?;
                self.write(ds, row)?;
                let tally = &mut self.tallies[ds as usize];
                tally.valid(code);
                tally.duplicate();
                return Ok(());
            }
            Junk::Foreign | Junk::Ragged => {
                let Sink::Csv(writer) = &mut self.sinks[ds as usize] else {
                    return Err(Error::Inconsistent {
                        message: format!("{}: source junk in a non-CSV export", spec.id),
                    });
                };
                if junk == Junk::Foreign {
                    writer.write_foreign(row)?;
                } else {
                    writer.write_ragged(row)?;
                }
            }
            _ => self.write(ds, row)?,
        }
        if let Some((column, keyword)) = spec.rule(junk) {
            self.tallies[ds as usize].invalid(column, keyword);
        }
        Ok(())
    }

    /// Closes every file, writes the jobs, and returns each dataset's truth.
    pub(crate) fn finish(mut self) -> Result<Vec<DatasetTruth>> {
        for sink in std::mem::take(&mut self.sinks) {
            match sink {
                Sink::Csv(w) => w.finish()?,
                Sink::Json(w) => w.finish()?,
                Sink::Parquet(w) => w.finish()?,
                Sink::Sheet(_) | Sink::Closed => {}
            }
        }
        if let Some(book) = self.book.take() {
            book.finish()?;
        }
        let jobs = self.out.join("jobs");
        std::fs::create_dir_all(&jobs).map_err(io(&jobs))?;
        let mut truths = Vec::with_capacity(Ds::ALL.len());
        for (ds, (tally, files)) in Ds::ALL.iter().zip(std::mem::take(&mut self.tallies).into_iter().zip(self.files)) {
            let spec = ds.spec();
            let file = format!("{}.toml", spec.id);
            let path = jobs.join(&file);
            std::fs::write(&path, spec.job()).map_err(io(&path))?;
            truths.push(tally.finish(spec.id, format!("jobs/{file}"), files));
        }
        Ok(truths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_consistent() {
        for ds in Ds::ALL {
            let spec = ds.spec();
            assert_eq!(spec.id, SPECS[ds as usize].id);
            assert!(spec.columns[spec.id_column].standard.contains("id_number"), "{}", spec.id);
            assert_eq!(spec.columns[spec.division_column].standard, "division_code", "{}", spec.id);
            for junk in spec.junk {
                if let Junk::Date(i, _) | Junk::CodeTable(i, _) | Junk::Enum(i, _) = junk {
                    assert!(!spec.columns[*i].standard.is_empty(), "{}: {junk:?}", spec.id);
                }
                if matches!(junk, Junk::Foreign | Junk::Ragged) {
                    assert!(matches!(spec.format, Format::Csv(_)), "{}", spec.id);
                }
            }
            assert!(spec.junk.contains(&Junk::Duplicate), "{}", spec.id);
            let job = spec.job();
            assert!(job.contains(&format!("dataset = \"{}\"", spec.id)));
            let parsed: toml::Table = job.parse().unwrap_or_else(|e| panic!("{}: {e}\n{job}", spec.id));
            assert!(parsed.contains_key("mapping"));
        }
        assert!(Ds::Population.spec().job().contains("户籍人口_*.csv"));
        assert!(Ds::DibaoMembers.spec().job().contains("sheet = \"低保成员\""));
    }
}
