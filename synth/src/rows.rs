//! One export row, and the writers of every export format.
//!
//! A [`Row`] holds its cells as text in one buffer (the department's own
//! spelling: `男`, `20210305`, `1,234.50`) together with what each cell *is*
//! (text, NULL, integer, number, date), so that typed formats can write real
//! values: the `.xlsx` writer writes numbers and date cells, the JSON writers
//! bare numbers and `null`, the Parquet writer typed integer columns.
//!
//! Writers stream: CSV, NDJSON and JSON go through a buffered file, the
//! workbook through rust_xlsxwriter's constant-memory worksheets, Parquet one
//! row group of [`PARQUET_BATCH`] rows at a time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet};

use crate::text::{DateStyle, push_amount, push_date};
use crate::{Error, Result};

/// Rows per Parquet row group / Arrow batch.
pub(crate) const PARQUET_BATCH: usize = 16_384;

/// What a cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// Text, as written.
    Text,
    /// Nothing: an empty CSV field, JSON `null`, an empty cell.
    Null,
    /// An integer.
    Int(i64),
    /// A number (amounts).
    Num(f64),
    /// A date.
    Date(NaiveDate),
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    start: usize,
    end: usize,
    value: Value,
}

/// One row: its cells' text in one buffer, and what each cell is.
#[derive(Debug, Default)]
pub(crate) struct Row {
    text: String,
    cells: Vec<Cell>,
}

impl Row {
    /// Empties the row for reuse.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.cells.clear();
    }

    fn push(&mut self, start: usize, value: Value) {
        self.cells.push(Cell { start, end: self.text.len(), value });
    }

    /// A text cell.
    pub(crate) fn text(&mut self, s: &str) {
        let start = self.text.len();
        self.text.push_str(s);
        self.push(start, Value::Text);
    }

    /// A text cell written by `f` into the buffer.
    pub(crate) fn text_with(&mut self, f: impl FnOnce(&mut String)) {
        let start = self.text.len();
        f(&mut self.text);
        self.push(start, Value::Text);
    }

    /// An empty cell.
    pub(crate) fn null(&mut self) {
        self.push(self.text.len(), Value::Null);
    }

    /// An integer cell.
    pub(crate) fn int(&mut self, value: i64) {
        let start = self.text.len();
        if value < 0 {
            self.text.push('-');
        }
        crate::text::push_number(&mut self.text, value.unsigned_abs(), 1);
        self.push(start, Value::Int(value));
    }

    /// An optional integer cell.
    pub(crate) fn opt_int(&mut self, value: Option<i64>) {
        match value {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    /// An amount in cents; `thousands` writes `1,234.50`.
    pub(crate) fn amount(&mut self, cents: u64, thousands: bool) {
        let start = self.text.len();
        push_amount(&mut self.text, cents, thousands);
        self.push(start, Value::Num(cents as f64 / 100.0));
    }

    /// An optional amount.
    pub(crate) fn opt_amount(&mut self, cents: Option<u64>, thousands: bool) {
        match cents {
            Some(c) => self.amount(c, thousands),
            None => self.null(),
        }
    }

    /// A date cell in `style`.
    pub(crate) fn date(&mut self, date: NaiveDate, style: DateStyle) {
        let start = self.text.len();
        push_date(&mut self.text, date, style);
        self.push(start, Value::Date(date));
    }

    /// An optional date cell.
    pub(crate) fn opt_date(&mut self, date: Option<NaiveDate>, style: DateStyle) {
        match date {
            Some(d) => self.date(d, style),
            None => self.null(),
        }
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Cell `i`: its text and what it is.
    pub(crate) fn cell(&self, i: usize) -> (&str, Value) {
        match self.cells.get(i) {
            Some(c) => (self.text.get(c.start..c.end).unwrap_or(""), c.value),
            None => ("", Value::Null),
        }
    }

    /// Replaces cell `i` by a text cell (planted malformations; rare, so it
    /// simply rebuilds the row).
    pub(crate) fn replace_text(&mut self, i: usize, text: &str) {
        let old = std::mem::take(self);
        for j in 0..old.len() {
            let (t, value) = old.cell(j);
            if j == i {
                self.text(text);
            } else {
                let start = self.text.len();
                self.text.push_str(t);
                self.push(start, value);
            }
        }
    }
}

/// The character set of a CSV export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// UTF-8 with a byte-order mark, as Excel-friendly exports are.
    Utf8Bom,
    /// GBK.
    Gbk,
    /// GB 18030.
    Gb18030,
}

impl Charset {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Charset::Utf8Bom => "utf-8",
            Charset::Gbk => "gbk",
            Charset::Gb18030 => "gb18030",
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    let file = File::create(path).map_err(io_err(path))?;
    Ok(BufWriter::with_capacity(256 * 1024, file))
}

/// A CSV export file.
pub(crate) struct CsvWriter {
    path: PathBuf,
    out: BufWriter<File>,
    charset: Charset,
    line: String,
    /// The line encoded (GBK, GB 18030), reused.
    bytes: Vec<u8>,
}

impl CsvWriter {
    /// Creates the file and writes the header.
    pub(crate) fn create(path: &Path, charset: Charset, headers: &[&str]) -> Result<CsvWriter> {
        let mut out = create(path)?;
        if charset == Charset::Utf8Bom {
            out.write_all("\u{feff}".as_bytes()).map_err(io_err(path))?;
        }
        let mut writer = CsvWriter { path: path.to_path_buf(), out, charset, line: String::new(), bytes: Vec::new() };
        for (i, h) in headers.iter().enumerate() {
            if i > 0 {
                writer.line.push(',');
            }
            push_field(&mut writer.line, h);
        }
        writer.line.push_str("\r\n");
        writer.flush_line(charset)?;
        Ok(writer)
    }

    fn build(&mut self, row: &Row, cells: usize) {
        self.line.clear();
        for i in 0..cells {
            if i > 0 {
                self.line.push(',');
            }
            let (text, value) = row.cell(i);
            if value != Value::Null {
                push_field(&mut self.line, text);
            }
        }
        self.line.push_str("\r\n");
    }

    fn flush_line(&mut self, charset: Charset) -> Result<()> {
        let encoding = match charset {
            Charset::Utf8Bom => return self.out.write_all(self.line.as_bytes()).map_err(io_err(&self.path)),
            Charset::Gbk => encoding_rs::GBK,
            Charset::Gb18030 => encoding_rs::GB18030,
        };
        let mut encoder = encoding.new_encoder();
        self.bytes.clear();
        let needed =
            encoder.max_buffer_length_from_utf8_without_replacement(self.line.len()).unwrap_or(self.line.len() * 4);
        self.bytes.reserve(needed);
        let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(&self.line, &mut self.bytes, true);
        if result != encoding_rs::EncoderResult::InputEmpty {
            return Err(Error::Unencodable {
                path: self.path.clone(),
                encoding: charset.name(),
                line: self.line.clone(),
            });
        }
        self.out.write_all(&self.bytes).map_err(io_err(&self.path))
    }

    /// Writes a row.
    pub(crate) fn write(&mut self, row: &Row) -> Result<()> {
        self.build(row, row.len());
        self.flush_line(self.charset)
    }

    /// Writes a row with its last field missing: a ragged line.
    pub(crate) fn write_ragged(&mut self, row: &Row) -> Result<()> {
        self.build(row, row.len().saturating_sub(1));
        self.flush_line(self.charset)
    }

    /// Writes a row in the other character set (UTF-8 in a GBK/GB18030 file,
    /// GBK in a UTF-8 one), checking that it cannot be read as the file's:
    /// a mixed-encoding line.
    pub(crate) fn write_foreign(&mut self, row: &Row) -> Result<()> {
        self.build(row, row.len());
        let (foreign, decodes_cleanly) = match self.charset {
            Charset::Utf8Bom => {
                let (bytes, _, _) = encoding_rs::GBK.encode(&self.line);
                let clean = std::str::from_utf8(&bytes).is_ok();
                (Charset::Gbk, clean)
            }
            Charset::Gbk | Charset::Gb18030 => {
                let encoding = if self.charset == Charset::Gbk { encoding_rs::GBK } else { encoding_rs::GB18030 };
                let (_, had_errors) = encoding.decode_without_bom_handling(self.line.as_bytes());
                (Charset::Utf8Bom, !had_errors)
            }
        };
        if decodes_cleanly {
            return Err(Error::Inconsistent {
                message: format!(
                    "{}: a planted mixed-encoding line decodes cleanly as {}",
                    self.path.display(),
                    self.charset.name()
                ),
            });
        }
        self.flush_line(foreign)
    }

    /// Flushes and closes the file.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(io_err(&self.path))
    }
}

/// Appends a CSV field, quoted when it has to be.
fn push_field(line: &mut String, text: &str) {
    if text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

/// An NDJSON file or a JSON array of objects.
pub(crate) struct JsonWriter {
    path: PathBuf,
    out: BufWriter<File>,
    keys: Vec<String>,
    array: bool,
    first: bool,
    line: String,
}

impl JsonWriter {
    /// Creates the file; `array` writes one JSON array instead of NDJSON.
    pub(crate) fn create(path: &Path, keys: &[&str], array: bool) -> Result<JsonWriter> {
        let mut out = create(path)?;
        if array {
            out.write_all(b"[\n").map_err(io_err(path))?;
        }
        let keys = keys
            .iter()
            .map(|k| {
                let mut quoted = String::new();
                push_json_string(&mut quoted, k);
                quoted
            })
            .collect();
        Ok(JsonWriter { path: path.to_path_buf(), out, keys, array, first: true, line: String::new() })
    }

    /// Writes a row as one object.
    pub(crate) fn write(&mut self, row: &Row) -> Result<()> {
        self.line.clear();
        if self.array && !self.first {
            self.line.push_str(",\n");
        }
        self.first = false;
        self.line.push('{');
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push_str(key);
            self.line.push(':');
            let (text, value) = row.cell(i);
            match value {
                Value::Null => self.line.push_str("null"),
                Value::Int(_) | Value::Num(_) => self.line.push_str(text),
                Value::Text | Value::Date(_) => push_json_string(&mut self.line, text),
            }
        }
        self.line.push('}');
        if !self.array {
            self.line.push('\n');
        }
        self.out.write_all(self.line.as_bytes()).map_err(io_err(&self.path))
    }

    /// Closes the array (if any) and flushes.
    pub(crate) fn finish(mut self) -> Result<()> {
        if self.array {
            self.out.write_all(b"\n]\n").map_err(io_err(&self.path))?;
        }
        self.out.flush().map_err(io_err(&self.path))
    }
}

/// Appends `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    // Generated text almost never needs escaping: copy it whole.
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
        out.push('"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                let hex = b"0123456789abcdef";
                out.push(char::from(hex[(c as usize) >> 4]));
                out.push(char::from(hex[(c as usize) & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How one sheet of a workbook is laid out above and below its rows.
#[derive(Debug, Clone)]
pub(crate) struct SheetPlan<'a> {
    /// The sheet's name.
    pub name: &'a str,
    /// Column headers; `组_子` names make a two-row header with the group
    /// title merged over its sub-columns.
    pub headers: &'a [&'a str],
    /// A title merged across the table's width above the header, and a
    /// note line under it (填报单位：…), as township ledgers have.
    pub title: Option<(String, String)>,
    /// A 合计 row after the data: the text in its second cell (`{n}` is the row count).
    pub total: Option<&'a str>,
}

/// One `.xlsx` workbook whose sheets are written in constant memory, row by row.
pub(crate) struct XlsxWriter {
    path: PathBuf,
    workbook: Workbook,
    /// Per sheet: the worksheet, the next row, its first data row and its 合计 text.
    sheets: Vec<(Worksheet, u32, u32, Option<String>)>,
    date: Format,
}

impl XlsxWriter {
    /// A workbook with one sheet per plan, titles and headers written.
    pub(crate) fn create(path: &Path, sheets: &[SheetPlan<'_>], created: NaiveDate) -> Result<XlsxWriter> {
        let err = |e: rust_xlsxwriter::XlsxError| Error::Xlsx { path: path.to_path_buf(), message: e.to_string() };
        let mut workbook = Workbook::new();
        // Level 6 spends more time deflating than generating the rest of the data.
        workbook.set_zip_compression_level(1);
        // A fixed creation time keeps the file byte-identical for a seed.
        let created = excel_date(created).map_err(err)?;
        workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
        let centred = Format::new().set_align(rust_xlsxwriter::FormatAlign::Center);
        let mut out = Vec::with_capacity(sheets.len());
        for plan in sheets {
            let mut sheet = workbook.new_worksheet_with_constant_memory().map_err(err)?;
            sheet.set_name(plan.name).map_err(err)?;
            let last_col = plan.headers.len().saturating_sub(1) as u16;
            let mut row = 0;
            if let Some((title, note)) = &plan.title {
                sheet.merge_range(0, 0, 0, last_col, title, &centred).map_err(err)?;
                sheet.write_string(1, 0, note).map_err(err)?;
                row = 2;
            }
            let split: Vec<(Option<&str>, &str)> = plan
                .headers
                .iter()
                .map(|h| match h.split_once('_') {
                    Some((group, sub)) => (Some(group), sub),
                    None => (None, *h),
                })
                .collect();
            if split.iter().any(|(group, _)| group.is_some()) {
                // The group row: each group title merged over its run of columns
                // (written left to right: constant memory writes rows in order).
                let mut col = 0;
                while col < split.len() {
                    match split[col].0 {
                        Some(group) => {
                            let end =
                                (col..split.len()).take_while(|&c| split[c].0 == Some(group)).last().unwrap_or(col);
                            if end > col {
                                sheet.merge_range(row, col as u16, row, end as u16, group, &centred).map_err(err)?;
                            } else {
                                sheet.write_string(row, col as u16, group).map_err(err)?;
                            }
                            col = end + 1;
                        }
                        None => {
                            sheet.write_string(row, col as u16, split[col].1).map_err(err)?;
                            col += 1;
                        }
                    }
                }
                for (col, (group, sub)) in split.iter().enumerate() {
                    if group.is_some() {
                        sheet.write_string(row + 1, col as u16, *sub).map_err(err)?;
                    }
                }
                row += 2;
            } else {
                for (col, header) in plan.headers.iter().enumerate() {
                    sheet.write_string(row, col as u16, *header).map_err(err)?;
                }
                row += 1;
            }
            out.push((sheet, row, row, plan.total.map(str::to_owned)));
        }
        let date = Format::new().set_num_format("yyyy-mm-dd");
        Ok(XlsxWriter { path: path.to_path_buf(), workbook, sheets: out, date })
    }

    /// Writes a row at the end of sheet `sheet`.
    pub(crate) fn write(&mut self, sheet: usize, row: &Row) -> Result<()> {
        let path = &self.path;
        let err = |e: rust_xlsxwriter::XlsxError| Error::Xlsx { path: path.clone(), message: e.to_string() };
        let Some((worksheet, next, _, _)) = self.sheets.get_mut(sheet) else {
            return Err(Error::Inconsistent { message: format!("{}: no sheet {sheet}", path.display()) });
        };
        let r = *next;
        for i in 0..row.len() {
            let col = i as u16;
            let (text, value) = row.cell(i);
            match value {
                Value::Null => {}
                Value::Text => {
                    worksheet.write_string(r, col, text).map_err(err)?;
                }
                Value::Int(v) => {
                    worksheet.write_number(r, col, v as f64).map_err(err)?;
                }
                Value::Num(v) => {
                    worksheet.write_number(r, col, v).map_err(err)?;
                }
                Value::Date(d) => {
                    let date = excel_date(d).map_err(err)?;
                    worksheet.write_datetime_with_format(r, col, &date, &self.date).map_err(err)?;
                }
            }
        }
        *next += 1;
        Ok(())
    }

    /// Writes the 合计 rows, adds the sheets and saves the workbook.
    pub(crate) fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rust_xlsxwriter::XlsxError| Error::Xlsx { path: path.clone(), message: e.to_string() };
        for (mut sheet, next, first, total) in self.sheets.drain(..) {
            if let Some(total) = total {
                sheet.write_string(next, 0, "合计").map_err(err)?;
                sheet.write_string(next, 1, total.replace("{n}", &(next - first).to_string())).map_err(err)?;
            }
            self.workbook.push_worksheet(sheet);
        }
        self.workbook.save(&path).map_err(|e| Error::Xlsx { path: path.clone(), message: e.to_string() })
    }
}

fn excel_date(d: NaiveDate) -> std::result::Result<ExcelDateTime, rust_xlsxwriter::XlsxError> {
    ExcelDateTime::from_ymd(d.year().clamp(1900, 9999) as u16, d.month() as u8, d.day() as u8)
}

/// A Parquet column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParquetType {
    /// Text (`Utf8`).
    Text,
    /// A 32-bit integer.
    Int32,
}

enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
}

/// A Parquet file written one row group at a time.
pub(crate) struct ParquetWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl ParquetWriter {
    /// Creates the file with one column per (name, type).
    pub(crate) fn create(path: &Path, columns: &[(&str, ParquetType)]) -> Result<ParquetWriter> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, t)| {
                Field::new(*name, if *t == ParquetType::Int32 { DataType::Int32 } else { DataType::Utf8 }, true)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let file = File::create(path).map_err(io_err(path))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(PARQUET_BATCH * 4))
            .build();
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties))
            .map_err(|e| Error::Parquet { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(ParquetWriter {
            path: path.to_path_buf(),
            writer,
            schema,
            columns: columns.iter().map(|(_, t)| new_builder(*t)).collect(),
            rows: 0,
        })
    }

    /// Appends a row, writing a batch when one is full.
    pub(crate) fn write(&mut self, row: &Row) -> Result<()> {
        for (i, column) in self.columns.iter_mut().enumerate() {
            let (text, value) = row.cell(i);
            match column {
                ColumnBuilder::Text(b) => match value {
                    Value::Null => b.append_null(),
                    _ => b.append_value(text),
                },
                ColumnBuilder::Int32(b) => match value {
                    Value::Int(v) => b.append_option(i32::try_from(v).ok()),
                    _ => b.append_null(),
                },
            }
        }
        self.rows += 1;
        if self.rows >= PARQUET_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int32(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        let err = |message: String| Error::Parquet { path: self.path.clone(), message };
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays).map_err(|e| err(e.to_string()))?;
        self.writer.write(&batch).map_err(|e| err(e.to_string()))
    }

    /// Writes what is left and the footer.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.writer.close().map_err(|e| Error::Parquet { path: self.path.clone(), message: e.to_string() })?;
        Ok(())
    }
}

fn new_builder(t: ParquetType) -> ColumnBuilder {
    match t {
        ParquetType::Text => ColumnBuilder::Text(StringBuilder::new()),
        ParquetType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_replace_cells() {
        let mut row = Row::default();
        row.text("a");
        row.int(-5);
        row.amount(123_450, true);
        row.null();
        row.date(NaiveDate::from_ymd_opt(2021, 3, 5).unwrap(), DateStyle::Compact);
        assert_eq!(row.cell(1), ("-5", Value::Int(-5)));
        assert_eq!(row.cell(2).0, "1,234.50");
        assert_eq!(row.cell(3), ("", Value::Null));
        row.replace_text(4, "20210230");
        assert_eq!(row.cell(4), ("20210230", Value::Text));
        assert_eq!(row.cell(0), ("a", Value::Text));
        assert_eq!(row.len(), 5);
    }

    #[test]
    fn json_strings_escape() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
