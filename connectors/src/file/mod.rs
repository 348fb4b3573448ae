//! Reading departmental export files as a stream of Arrow record batches.
//!
//! Every reader in this module yields [`PositionedBatch`]es: an Arrow
//! [`RecordBatch`] plus, for each row, where it came from in the file, so that
//! a later validation failure can be reported as "file X, line N". Rows that
//! cannot become batch rows at all (a ragged CSV line, undecodable bytes, a
//! JSON line that does not parse) are never dropped: they travel alongside the
//! batch as [`RawReject`]s carrying the raw text, ready for quarantine.
//!
//! Memory stays bounded: readers hold at most one batch of rows plus a fixed
//! read buffer, and a single record larger than a hard limit (usually a quote
//! left open in a CSV file) stops the stream with an error instead of
//! swallowing the rest of the file into memory.
//!
//! | format | reader | columns |
//! |---|---|---|
//! | CSV (UTF-8, GBK, GB18030) | [`CsvReader`] | all `Utf8`, empty field = NULL |
//! | NDJSON, JSON array | [`JsonReader`] | all `Utf8`, JSON text of non-strings |
//! | Parquet | [`ParquetReader`] | typed, as stored |
//! | Excel `.xlsx`, `.xls` (chosen sheets) | [`ExcelReader`] | all `Utf8`, cells rendered as shown |
//!
//! [`open`] and [`open_with`] pick the reader from a [`FileFormat`] or the
//! file's extension; [`ReadOptions`] carries the per-format settings.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use civlink_catalog::model::{SheetHeader, SkippedRow};
use civlink_standards::validate::{Delivered, DeliveredTypes};
use serde::{Deserialize, Serialize};

pub mod csv;
pub mod excel;
pub mod json;
pub mod parquet;

pub use self::csv::{CsvOptions, CsvReader};
pub use self::excel::{ExcelOptions, ExcelReader};
pub use self::json::JsonReader;
pub use self::parquet::ParquetReader;

/// Hard upper bound on the size of one record (a CSV record or a JSON
/// line/element). A record this large almost always means a quote or bracket
/// was left open and the parser is swallowing the rest of the file; stopping
/// there keeps memory bounded on multi-gigabyte exports.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Errors raised while opening or streaming an export file.
///
/// Row-level problems (ragged rows, bad bytes, invalid JSON lines) are *not*
/// errors: they become [`RawReject`]s. An `Error` means the file as a whole
/// cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{path}: I/O error: {source}")]
    Io {
        /// File (or stream name) being read.
        path: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV file is unreadable at file level (header problem, record too large).
    #[error("{path}, line {line}: CSV error: {message}")]
    Csv {
        /// File (or stream name) being read.
        path: String,
        /// 1-based physical line where the problem starts.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// The CSV header does not decode in the declared encoding: almost
    /// always the wrong encoding, and every row would be garbled.
    #[error("{path}, line {line}: the header is not valid {}; is the file encoded otherwise?", encoding.name())]
    HeaderEncoding {
        /// File (or stream name) being read.
        path: String,
        /// 1-based physical line of the header.
        line: u64,
        /// The encoding it was read in.
        encoding: Encoding,
    },
    /// The JSON file is unreadable at file level (not an array, truncated, record too large).
    #[error("{path}, line {line}: JSON error: {message}")]
    Json {
        /// File (or stream name) being read.
        path: String,
        /// 1-based physical line where the problem was found.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// The Parquet file could not be decoded.
    #[error("{path}: Parquet error: {message}")]
    Parquet {
        /// File being read.
        path: String,
        /// Message from the Parquet decoder.
        message: String,
    },
    /// An Arrow batch could not be assembled or decoded.
    #[error("{path}: Arrow error: {source}")]
    Arrow {
        /// File (or stream name) being read.
        path: String,
        /// Underlying Arrow error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// The Excel workbook could not be read (not an `.xlsx` or `.xls` file, corrupt,
    /// password-protected).
    #[error("{path}: Excel error: {message}")]
    Xlsx {
        /// File (or stream name) being read.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The requested worksheet is not in the workbook.
    #[error("{path}: no sheet named {sheet:?}; the workbook has {}", quoted_list(available))]
    SheetNotFound {
        /// File (or stream name) being read.
        path: String,
        /// The sheet asked for.
        sheet: String,
        /// The workbook's sheet names, in workbook order.
        available: Vec<String>,
    },
    /// An encoding name that is not supported.
    #[error("unknown encoding {name:?}: expected one of utf-8, gbk, gb2312, gb18030")]
    UnknownEncoding {
        /// The name as given.
        name: String,
    },
    /// The file format could not be determined from the path's extension.
    #[error(
        "{path}: unknown file format: expected extension .csv, .txt, .ndjson, .jsonl, .json, .parquet, .xlsx or .xls"
    )]
    UnknownFormat {
        /// The path whose extension was not recognised.
        path: String,
    },
    /// A format name that is not supported.
    #[error("unknown file format name {name:?}: expected csv, ndjson, json-array, parquet, xlsx or xls")]
    UnknownFormatName {
        /// The name as given.
        name: String,
    },
    /// Reader options that cannot work (e.g. delimiter equal to quote, batch size 0).
    #[error("invalid reader options: {message}")]
    InvalidOptions {
        /// What is wrong with the options.
        message: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `"a", "b"` (or `no sheets` when empty), for error messages.
fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no sheets".to_owned();
    }
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// Character encoding of a text export.
///
/// Serialises as `utf8`, `gbk`, `gb18030`; deserialises from any name that
/// [`FromStr`] accepts (case-insensitive `utf-8`, `utf8`, `gbk`, `gb2312`,
/// `gb18030`), so configuration files can use the spelling departments use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum Encoding {
    /// UTF-8 (a leading BOM is stripped).
    #[default]
    Utf8,
    /// GBK. `gb2312` maps here too, since GBK is a superset of GB 2312.
    Gbk,
    /// GB 18030, the mandatory national standard superset of GBK.
    Gb18030,
}

impl Encoding {
    /// The `encoding_rs` decoder for this encoding.
    pub fn as_encoding_rs(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gbk => encoding_rs::GBK,
            Encoding::Gb18030 => encoding_rs::GB18030,
        }
    }

    /// Canonical lower-case name (`utf-8`, `gbk`, `gb18030`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Gbk => "gbk",
            Encoding::Gb18030 => "gb18030",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "gbk" | "gb2312" => Ok(Encoding::Gbk),
            "gb18030" => Ok(Encoding::Gb18030),
            _ => Err(Error::UnknownEncoding { name: s.to_owned() }),
        }
    }
}

impl TryFrom<String> for Encoding {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Layout of an export file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// Delimited text (comma, tab, pipe, ...).
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// A single JSON array of objects.
    JsonArray,
    /// Apache Parquet.
    Parquet,
    /// Excel Office Open XML workbook (`.xlsx`).
    Xlsx,
    /// Excel 97–2003 workbook (`.xls`, BIFF8).
    Xls,
}

impl FileFormat {
    /// Guesses the format from the path's extension (case-insensitive):
    /// `.csv`/`.txt` → CSV, `.ndjson`/`.jsonl` → NDJSON, `.parquet` → Parquet,
    /// `.xlsx`/`.xls` → Excel.
    ///
    /// `.json` is ambiguous in practice (many "JSON" exports are really one
    /// object per line), so the file is sniffed: if its first non-blank byte
    /// (after any BOM) is `{` it is NDJSON, otherwise a JSON array. A `.json`
    /// file that cannot be read is reported as a JSON array; opening it will
    /// then report the I/O error.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(FileFormat::Csv),
            "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
            "parquet" => Some(FileFormat::Parquet),
            "xlsx" => Some(FileFormat::Xlsx),
            "xls" => Some(FileFormat::Xls),
            "json" => Some(match sniff_first_byte(path) {
                Some(b'{') => FileFormat::Ndjson,
                _ => FileFormat::JsonArray,
            }),
            _ => None,
        }
    }

    /// Canonical name (`csv`, `ndjson`, `json-array`, `parquet`, `xlsx`, `xls`).
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Ndjson => "ndjson",
            FileFormat::JsonArray => "json-array",
            FileFormat::Parquet => "parquet",
            FileFormat::Xlsx => "xlsx",
            FileFormat::Xls => "xls",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FileFormat {
    type Err = Error;

    /// Accepts `csv`, `ndjson`/`jsonl`, `json-array`/`json`, `parquet`,
    /// `xlsx`/`excel`, `xls` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(FileFormat::Csv),
            "ndjson" | "jsonl" => Ok(FileFormat::Ndjson),
            "json-array" | "json_array" | "json" => Ok(FileFormat::JsonArray),
            "parquet" => Ok(FileFormat::Parquet),
            "xlsx" | "excel" => Ok(FileFormat::Xlsx),
            "xls" => Ok(FileFormat::Xls),
            _ => Err(Error::UnknownFormatName { name: s.to_owned() }),
        }
    }
}

/// First byte of the file that is not whitespace or part of a UTF-8 BOM,
/// looking at no more than the first 4 KiB.
fn sniff_first_byte(path: &Path) -> Option<u8> {
    let mut head = Vec::with_capacity(4096);
    File::open(path).ok()?.take(4096).read_to_end(&mut head).ok()?;
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// One batch read from a file, with the position of each row.
///
/// A batch covers a contiguous range of data rows (good rows and rejects
/// together): `first_row .. first_row + num_records()`. Good rows are in
/// `batch`, in file order; rows that could not be read are in `rejects`.
/// When there are no rejects, row `i` of `batch` is data row `first_row + i`.
#[derive(Debug, Clone)]
pub struct PositionedBatch {
    /// The good rows.
    pub batch: RecordBatch,
    /// 0-based data-row index (header excluded, rejects included) of the
    /// first record covered by this batch.
    pub first_row: u64,
    /// 1-based physical line number of each row of `batch` in the file
    /// (CSV/NDJSON: the line where the record starts; JSON array / Parquet:
    /// the 1-based row ordinal).
    pub lines: Vec<u64>,
    /// Records in this batch's row range that could not be turned into rows.
    pub rejects: Vec<RawReject>,
    /// JSON sources: the JSON type of every value of every column, for the
    /// validator to judge by JSON Schema's rules. `None`: text (CSV,
    /// spreadsheets) or typed columns (Parquet).
    pub delivered: Option<DeliveredTypes>,
    /// Spreadsheets: the sheet the rows come from.
    pub sheet: Option<Arc<str>>,
    /// Spreadsheets, on the first batch of each sheet: its header row(s)
    /// and how they were found.
    pub layout: Option<SheetHeader>,
    /// Spreadsheets: rows in this batch's range read but not taken as data
    /// (above the header, trailers); not counted as records.
    pub skipped: Vec<SkippedRow>,
}

impl PositionedBatch {
    /// Number of data rows this batch accounts for: good rows plus rejects.
    pub fn num_records(&self) -> u64 {
        (self.batch.num_rows() + self.rejects.len()) as u64
    }

    /// The 0-based data-row index of each row of `batch`, i.e. the batch's
    /// row range with the rejects' indices left out.
    pub fn row_indices(&self) -> Vec<u64> {
        let end = self.first_row + self.num_records();
        let mut rejected = self.rejects.iter().map(|r| r.row_index).peekable();
        let mut out = Vec::with_capacity(self.batch.num_rows());
        for index in self.first_row..end {
            if rejected.peek() == Some(&index) {
                rejected.next();
            } else {
                out.push(index);
            }
        }
        out
    }
}

/// A row that could not be turned into a batch row (ragged CSV line,
/// undecodable bytes, invalid JSON line). It is not dropped: it carries the
/// raw text for quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReject {
    /// 0-based data-row index in the file, counted together with good rows.
    pub row_index: u64,
    /// 1-based line (same convention as [`PositionedBatch::lines`]).
    pub line: u64,
    /// The raw record, lossily decoded to UTF-8 (CSV: fields joined by the
    /// delimiter).
    pub raw: String,
    /// Why the row was rejected, e.g. `ragged row: 9 fields, header has 12`.
    pub reason: String,
    /// The kind of reason, for the delivery gates.
    pub kind: RejectKind,
}

/// Why a row was rejected by the reader, before any mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Bytes that are not valid in the file's encoding.
    Encoding,
    /// A record with more or fewer fields than the header.
    Ragged,
    /// A record that is not well-formed (JSON that does not parse, not an object, a repeated key, an unexpected field).
    Malformed,
    /// A spreadsheet error cell (`#DIV/0!`, `#REF!`).
    ErrorCell,
}

impl RejectKind {
    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            RejectKind::Encoding => "encoding",
            RejectKind::Ragged => "ragged rows",
            RejectKind::Malformed => "malformed records",
            RejectKind::ErrorCell => "error cells",
        }
    }
}

/// A stream of positioned batches, whatever the format.
pub type BatchIter = Box<dyn Iterator<Item = Result<PositionedBatch>> + Send>;

/// Default number of records per batch.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// How to read a file, for every format at once: each reader takes the
/// settings that concern it and ignores the others.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// CSV settings, used only for CSV files. Their `batch_size` is
    /// overridden by [`ReadOptions::batch_size`].
    pub csv: CsvOptions,
    /// Spreadsheet settings (sheets, header row, names, trailer words), used
    /// only for `.xlsx` and `.xls` files.
    pub excel: ExcelOptions,
    /// Maximum number of records (good rows plus rejects) per batch, for every format.
    pub batch_size: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { csv: CsvOptions::default(), excel: ExcelOptions::default(), batch_size: DEFAULT_BATCH_SIZE }
    }
}

/// Opens `path` as a stream of batches, dispatching on `format`, or on the
/// extension (see [`FileFormat::from_path`]) when `format` is `None`.
///
/// `batch_size` applies to every format and overrides `csv.batch_size`; the
/// other CSV options are used only for CSV files. A workbook is read from
/// its first visible sheet; use [`open_with`] to choose sheets.
pub fn open(path: &Path, format: Option<FileFormat>, csv: CsvOptions, batch_size: usize) -> Result<BatchIter> {
    open_with(path, format, &ReadOptions { csv, excel: ExcelOptions::default(), batch_size })
}

/// Opens `path` as a stream of batches with every format's settings; see
/// [`open`] for how the format is chosen.
pub fn open_with(path: &Path, format: Option<FileFormat>, options: &ReadOptions) -> Result<BatchIter> {
    let format = match format {
        Some(format) => format,
        None => FileFormat::from_path(path).ok_or_else(|| Error::UnknownFormat { path: path.display().to_string() })?,
    };
    let batch_size = options.batch_size;
    Ok(match format {
        FileFormat::Csv => {
            let csv = CsvOptions { batch_size, ..options.csv.clone() };
            Box::new(CsvReader::open(path, csv)?)
        }
        FileFormat::Ndjson | FileFormat::JsonArray => Box::new(JsonReader::open(path, format, batch_size)?),
        FileFormat::Parquet => Box::new(ParquetReader::open(path, batch_size)?),
        FileFormat::Xlsx | FileFormat::Xls => Box::new(ExcelReader::open(path, &options.excel, batch_size)?),
    })
}

/// Rejects a batch size of zero, which would make readers loop forever.
fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::InvalidOptions { message: "batch_size must be at least 1".to_owned() });
    }
    Ok(())
}

/// Accumulates one batch of all-`Utf8` rows, their lines and the rejects
/// that fall into the same row range. Shared by the CSV and JSON readers.
struct Utf8BatchBuilder {
    schema: SchemaRef,
    columns: Vec<StringBuilder>,
    /// Per column, the JSON type of each row's value (JSON readers only).
    types: Option<Vec<Vec<Delivered>>>,
    lines: Vec<u64>,
    rejects: Vec<RawReject>,
    first_row: u64,
    /// Good rows plus rejects in the current batch.
    records: usize,
}

impl Utf8BatchBuilder {
    fn new(schema: SchemaRef, first_row: u64) -> Self {
        let columns = (0..schema.fields().len()).map(|_| StringBuilder::new()).collect();
        Utf8BatchBuilder { schema, columns, types: None, lines: Vec::new(), rejects: Vec::new(), first_row, records: 0 }
    }

    /// Index the next record (good or rejected) will get.
    fn next_row_index(&self) -> u64 {
        self.first_row + self.records as u64
    }

    fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records a good row; the caller has already appended one value to
    /// every column builder.
    fn push_row(&mut self, line: u64) {
        self.lines.push(line);
        self.records += 1;
    }

    /// Marks `column`'s value in the row being built (the next good row) as
    /// delivered `delivered`; unmarked values are text.
    fn mark_next_row(&mut self, column: usize, delivered: Delivered) {
        let row = self.lines.len();
        let width = self.columns.len();
        let types = self.types.get_or_insert_with(|| vec![Vec::new(); width]);
        if let Some(types) = types.get_mut(column) {
            types.resize(row, Delivered::Text);
            types.push(delivered);
        }
    }

    fn push_reject(&mut self, line: u64, raw: String, kind: RejectKind, reason: String) {
        let row_index = self.next_row_index();
        self.rejects.push(RawReject { row_index, line, raw, reason, kind });
        self.records += 1;
    }

    /// Finishes the current batch and starts the next row range right after it.
    fn finish(&mut self, path: &str) -> Result<PositionedBatch> {
        let arrays: Vec<ArrayRef> =
            self.columns.iter_mut().map(|builder| Arc::new(builder.finish()) as ArrayRef).collect();
        let num_rows = self.lines.len();
        // The explicit row count matters for zero-column schemas (e.g. a JSON
        // file whose objects are all `{}`), where Arrow cannot infer it.
        let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
            .map_err(|source| Error::Arrow { path: path.to_owned(), source })?;
        let delivered = self.types.as_mut().map(|types| {
            let mut delivered = DeliveredTypes::new();
            for (field, types) in self.schema.fields().iter().zip(types.iter_mut()) {
                let mut taken = std::mem::take(types);
                // Columns a batch never reached (no row so far had them) are all NULL.
                taken.resize(num_rows, Delivered::Text);
                delivered.insert(field.name().clone(), taken);
            }
            delivered
        });
        let out = PositionedBatch {
            batch,
            first_row: self.first_row,
            lines: std::mem::take(&mut self.lines),
            rejects: std::mem::take(&mut self.rejects),
            delivered,
            sheet: None,
            layout: None,
            skipped: Vec::new(),
        };
        self.first_row += self.records as u64;
        self.records = 0;
        Ok(out)
    }
}

/// Makes column names usable: trims them, strips a stray BOM, names empty
/// ones `column_N` (1-based position) and de-duplicates repeats by appending
/// `_2`, `_3`, ... (skipping suffixes that would collide with another name).
fn normalize_column_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let cleaned: Vec<String> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let name = name.trim_start_matches('\u{FEFF}').trim();
            if name.is_empty() { format!("column_{}", i + 1) } else { name.to_owned() }
        })
        .collect();
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let originals: std::collections::HashSet<&str> = cleaned.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(cleaned.len());
    for name in &cleaned {
        let mut candidate = name.clone();
        let mut suffix = 2u64;
        // A suffixed name must not collide with an original name that comes
        // later either, or that later column would be renamed instead.
        while taken.contains(&candidate) || (candidate != *name && originals.contains(candidate.as_str())) {
            candidate = format!("{name}_{suffix}");
            suffix += 1;
        }
        taken.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names() {
        assert_eq!("UTF-8".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert_eq!("utf8".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert_eq!("GBK".parse::<Encoding>().unwrap(), Encoding::Gbk);
        assert_eq!("gb2312".parse::<Encoding>().unwrap(), Encoding::Gbk);
        assert_eq!("Gb18030".parse::<Encoding>().unwrap(), Encoding::Gb18030);
        assert!(matches!(
            "latin1".parse::<Encoding>(),
            Err(Error::UnknownEncoding { name }) if name == "latin1"
        ));
        let e: Encoding = serde_json::from_str("\"GB2312\"").unwrap();
        assert_eq!(e, Encoding::Gbk);
        assert_eq!(serde_json::to_string(&Encoding::Gb18030).unwrap(), "\"gb18030\"");
        let back: Encoding = serde_json::from_str("\"utf8\"").unwrap();
        assert_eq!(back, Encoding::Utf8);
        assert!(serde_json::from_str::<Encoding>("\"big5\"").is_err());
    }

    #[test]
    fn format_from_extension() {
        let p = |s: &str| FileFormat::from_path(Path::new(s));
        assert_eq!(p("a.csv"), Some(FileFormat::Csv));
        assert_eq!(p("A.CSV"), Some(FileFormat::Csv));
        assert_eq!(p("a.txt"), Some(FileFormat::Csv));
        assert_eq!(p("a.jsonl"), Some(FileFormat::Ndjson));
        assert_eq!(p("a.ndjson"), Some(FileFormat::Ndjson));
        assert_eq!(p("a.parquet"), Some(FileFormat::Parquet));
        assert_eq!(p("/nonexistent/a.json"), Some(FileFormat::JsonArray));
        assert_eq!(p("a.xlsx"), Some(FileFormat::Xlsx));
        assert_eq!(p("a.xls"), Some(FileFormat::Xls));
        assert_eq!(p("a.xlsm"), None);
        assert_eq!("Excel".parse::<FileFormat>().unwrap(), FileFormat::Xlsx);
        assert_eq!(p("noext"), None);
        assert_eq!("JSONL".parse::<FileFormat>().unwrap(), FileFormat::Ndjson);
        assert!("xml".parse::<FileFormat>().is_err());
    }

    #[test]
    fn json_extension_is_sniffed() {
        let dir = tempfile::tempdir().unwrap();
        let nd = dir.path().join("a.json");
        std::fs::write(&nd, "\u{FEFF}  \n{\"a\":1}\n").unwrap();
        assert_eq!(FileFormat::from_path(&nd), Some(FileFormat::Ndjson));
        let arr = dir.path().join("b.json");
        std::fs::write(&arr, " [ {\"a\":1} ]").unwrap();
        assert_eq!(FileFormat::from_path(&arr), Some(FileFormat::JsonArray));
    }

    #[test]
    fn column_names_are_cleaned() {
        let names = normalize_column_names([" a ", "", "a", "\u{FEFF}b", "a", "a_2"]);
        assert_eq!(names, ["a", "column_2", "a_3", "b", "a_4", "a_2"]);
        let names = normalize_column_names(["x", "x", "x"]);
        assert_eq!(names, ["x", "x_2", "x_3"]);
    }

    #[test]
    fn row_indices_skip_rejects() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "a",
            arrow::datatypes::DataType::Utf8,
            true,
        )]));
        let mut b = Utf8BatchBuilder::new(schema, 10);
        b.columns[0].append_value("x");
        b.push_row(2);
        b.push_reject(3, "raw".into(), RejectKind::Ragged, "why".into());
        b.columns[0].append_null();
        b.push_row(4);
        let batch = b.finish("t").unwrap();
        assert_eq!(batch.first_row, 10);
        assert_eq!(batch.num_records(), 3);
        assert_eq!(batch.row_indices(), [10, 12]);
        assert_eq!(batch.rejects[0].row_index, 11);
        assert!(b.is_empty());
        assert_eq!(b.next_row_index(), 13);
    }

    #[test]
    fn zero_batch_size_is_rejected() {
        assert!(matches!(check_batch_size(0), Err(Error::InvalidOptions { .. })));
        assert!(check_batch_size(1).is_ok());
    }
}
