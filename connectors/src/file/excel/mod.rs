//! Streaming Excel (`.xlsx`) reader: one worksheet in, all-`Utf8` Arrow
//! batches out, with the spreadsheet row number of every record.
//!
//! * The sheet is chosen by name; without a name, the first sheet is read. A
//!   missing sheet is an [`Error::SheetNotFound`] that lists the sheets the
//!   workbook has.
//! * The first row with any value is the header. Its names are cleaned like
//!   the CSV reader's (trimmed, empty → `column_N`, repeats → `_2`, `_3`),
//!   and its first to last non-empty cell fix the columns, so a table that
//!   starts at `B3` reads the same as one at `A1`.
//! * Every column is `Utf8` and nullable; an empty cell becomes NULL. Cell
//!   values are rendered as text the way a person reads them in Excel:
//!   - numbers with full precision and no spurious `.0` (`630102`, `1234.5`;
//!     a long ID typed as a number has already lost digits inside Excel, and
//!     shows as such, e.g. `110101199003071200`, for the validator to reject);
//!   - date cells as `YYYY-MM-DD`, date-time cells as `YYYY-MM-DD HH:MM:SS`
//!     (rounded to the second; a date-time at exactly midnight reads as a
//!     date), time-of-day cells as `HH:MM:SS`, durations as `H:MM:SS`;
//!   - booleans as `true` / `false`.
//! * Rows are never dropped: a row with an error cell (`#N/A`, `#DIV/0!`, …)
//!   or with a value outside the header's columns becomes a
//!   [`RawReject`](super::RawReject), its cells rendered as one CSV line.
//!   Completely empty rows are skipped and not counted, like blank CSV lines.
//! * Positions: [`PositionedBatch::lines`] holds the 1-based spreadsheet row
//!   number, so "line 7" is row 7 as Excel shows it.
//! * Memory: cells are streamed from the sheet's XML by a dedicated reader
//!   thread that hands finished batches over a channel of capacity one, so a
//!   sheet is never held whole in memory. The workbook's shared-string table
//!   (every distinct text in the workbook) is loaded up front, as Excel
//!   itself requires. If the consumer stops early, the thread stops at its
//!   next hand-over.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use calamine::{DataRef, ExcelDateTime, Reader, Xlsx};

use super::{Error, PositionedBatch, RejectKind, Result, Utf8BatchBuilder, check_batch_size, normalize_column_names};

/// Seconds in a day, for Excel serial date-times (days since the epoch, the
/// time of day as the fraction).
const DAY_SECONDS: f64 = 86_400.0;

/// Serial number of 9999-12-31 + 1 in the 1900 date system: Excel's own
/// upper bound. Date cells outside `0..MAX_SERIAL` are not dates Excel can
/// show, so they are rendered as the number they hold.
const MAX_SERIAL: f64 = 2_958_466.0;

/// Excel's column limit (`XFD`). A header wider than this only comes from a
/// corrupt or hand-crafted file, and would make every row that wide.
const MAX_COLUMNS: u32 = 16_384;

/// What the reader thread hands to the iterator.
enum Message {
    /// The header has been read (always the first message unless an error comes first).
    Header(SchemaRef),
    /// One finished batch.
    Batch(PositionedBatch),
    /// The sheet cannot be read further; nothing follows.
    Error(Error),
    /// The sheet ended cleanly; nothing follows.
    End,
}

/// Streams one worksheet of an `.xlsx` workbook as [`PositionedBatch`]es of
/// all-`Utf8` columns.
///
/// Iterating yields `Ok(batch)` until the end of the sheet; a workbook-level
/// failure (corrupt XML, truncated archive) is yielded once as `Err` after
/// the rows read before it, and the iterator then ends.
pub struct XlsxReader {
    path: String,
    sheet: String,
    schema: SchemaRef,
    receiver: Receiver<Message>,
    finished: bool,
}

impl XlsxReader {
    /// Opens the workbook at `path` and reads the header of `sheet` (the
    /// first sheet when `None`), `batch_size` records at a time.
    pub fn open(path: &Path, sheet: Option<&str>, batch_size: usize) -> Result<XlsxReader> {
        check_batch_size(batch_size)?;
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        Self::from_reader(&name, BufReader::new(file), sheet, batch_size)
    }

    /// Reads a workbook from any seekable byte source (a file, an in-memory
    /// buffer); `name` is used in errors. The header is read before this
    /// returns, so [`schema`](Self::schema) is known right away.
    pub fn from_reader<R>(name: &str, reader: R, sheet: Option<&str>, batch_size: usize) -> Result<XlsxReader>
    where
        R: Read + Seek + Send + 'static,
    {
        check_batch_size(batch_size)?;
        let xlsx_error = |e: calamine::XlsxError| Error::Xlsx { path: name.to_owned(), message: e.to_string() };
        let workbook: Xlsx<R> = Xlsx::new(reader).map_err(xlsx_error)?;
        let available = workbook.sheet_names();
        let sheet = match sheet {
            Some(wanted) => available.iter().find(|s| s.as_str() == wanted).cloned().ok_or_else(|| {
                Error::SheetNotFound { path: name.to_owned(), sheet: wanted.to_owned(), available: available.clone() }
            })?,
            None => available.first().cloned().ok_or_else(|| Error::Xlsx {
                path: name.to_owned(),
                message: "the workbook has no sheets".to_owned(),
            })?,
        };
        // Capacity one: the thread parses the next batch while the consumer
        // works on the current one, and no more than that is buffered.
        let (sender, receiver) = sync_channel(1);
        let worker = Worker { path: name.to_owned(), sheet: sheet.clone(), batch_size, sender };
        std::thread::Builder::new()
            .name("civlink-xlsx".to_owned())
            .spawn(move || worker.run(workbook))
            .map_err(|source| Error::Io { path: name.to_owned(), source })?;
        let mut this =
            XlsxReader { path: name.to_owned(), sheet, schema: Arc::new(Schema::empty()), receiver, finished: false };
        match this.receiver.recv() {
            Ok(Message::Header(schema)) => this.schema = schema,
            Ok(Message::Error(error)) => return Err(error),
            // The worker always sends the header (or an error) first; anything
            // else means it died, e.g. a panic inside the XML parser.
            Ok(Message::Batch(_) | Message::End) | Err(_) => return Err(this.worker_died()),
        }
        Ok(this)
    }

    /// The schema of every batch: one nullable `Utf8` column per header cell.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The name of the sheet being read.
    pub fn sheet(&self) -> &str {
        &self.sheet
    }

    fn worker_died(&self) -> Error {
        Error::Xlsx {
            path: self.path.clone(),
            message: format!("reading sheet {:?} stopped unexpectedly; the workbook is probably corrupt", self.sheet),
        }
    }
}

impl Iterator for XlsxReader {
    type Item = Result<PositionedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            match self.receiver.recv() {
                Ok(Message::Batch(batch)) => return Some(Ok(batch)),
                Ok(Message::Header(_)) => continue,
                Ok(Message::Error(error)) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                Ok(Message::End) => {
                    self.finished = true;
                    return None;
                }
                Err(_) => {
                    self.finished = true;
                    return Some(Err(self.worker_died()));
                }
            }
        }
    }
}

/// One cell, rendered.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Text(String),
    /// An Excel error value such as `#N/A`.
    Error(String),
}

impl Cell {
    fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }

    fn text(&self) -> &str {
        match self {
            Cell::Empty => "",
            Cell::Text(s) | Cell::Error(s) => s,
        }
    }
}

/// Why the worker stopped before the end of the sheet.
enum Stop {
    /// The sheet cannot be read further.
    Failed(Error),
    /// The consumer went away; the worker just stops.
    Disconnected,
}

/// The reader thread: parses the sheet and sends batches.
struct Worker {
    path: String,
    sheet: String,
    batch_size: usize,
    sender: SyncSender<Message>,
}

/// The header's column range and the batch being built.
struct Table {
    first_col: u32,
    last_col: u32,
    builder: Utf8BatchBuilder,
    /// Reused per row: the value of each header column.
    values: Vec<Option<String>>,
}

impl Worker {
    fn run<R: Read + Seek>(self, mut workbook: Xlsx<R>) {
        let last = match self.stream(&mut workbook) {
            Ok(()) => Message::End,
            Err(Stop::Failed(error)) => Message::Error(error),
            Err(Stop::Disconnected) => return,
        };
        // The consumer may be gone by now; nothing left to do either way.
        let _ = self.sender.send(last);
    }

    fn send(&self, message: Message) -> std::result::Result<(), Stop> {
        self.sender.send(message).map_err(|_| Stop::Disconnected)
    }

    /// Streams the sheet to the end.
    fn stream<R: Read + Seek>(&self, workbook: &mut Xlsx<R>) -> std::result::Result<(), Stop> {
        let xlsx_error =
            |e: calamine::XlsxError| Stop::Failed(Error::Xlsx { path: self.path.clone(), message: e.to_string() });
        let mut cells = workbook.worksheet_cells_reader(&self.sheet).map_err(xlsx_error)?;
        let mut table: Option<Table> = None;
        let mut row: Vec<(u32, Cell)> = Vec::new();
        let mut row_index: Option<u32> = None;
        loop {
            let next = match cells.next_cell() {
                Ok(next) => next,
                Err(e) => {
                    // Rows read before the failure are still delivered.
                    if let Some(index) = row_index {
                        self.row(&mut table, index, &mut row)?;
                    }
                    self.flush(&mut table)?;
                    return Err(xlsx_error(e));
                }
            };
            let Some(cell) = next else { break };
            let (r, c) = cell.get_position();
            if row_index != Some(r) {
                if let Some(index) = row_index {
                    self.row(&mut table, index, &mut row)?;
                }
                row_index = Some(r);
            }
            row.push((c, render(cell.get_value())));
        }
        if let Some(index) = row_index {
            self.row(&mut table, index, &mut row)?;
        }
        if table.is_none() {
            // No value anywhere: no columns and no rows.
            self.send(Message::Header(Arc::new(Schema::empty())))?;
        }
        self.flush(&mut table)
    }

    /// Sends the batch built so far, if it holds anything.
    fn flush(&self, table: &mut Option<Table>) -> std::result::Result<(), Stop> {
        if let Some(table) = table
            && !table.builder.is_empty()
        {
            let message = match table.builder.finish(&self.path) {
                Ok(batch) => Message::Batch(batch),
                Err(error) => Message::Error(error),
            };
            self.send(message)?;
        }
        Ok(())
    }

    /// Handles one complete row (0-based sheet row `index`), then clears `cells`.
    fn row(
        &self,
        table: &mut Option<Table>,
        index: u32,
        cells: &mut Vec<(u32, Cell)>,
    ) -> std::result::Result<(), Stop> {
        let result = self.row_inner(table, index, cells);
        cells.clear();
        result
    }

    fn row_inner(&self, table: &mut Option<Table>, index: u32, cells: &[(u32, Cell)]) -> std::result::Result<(), Stop> {
        let filled = || cells.iter().filter(|(_, cell)| !cell.is_empty());
        let (Some(min_col), Some(max_col)) = (filled().map(|(c, _)| *c).min(), filled().map(|(c, _)| *c).max()) else {
            // A blank row (no cells, or only formatted empty ones).
            return Ok(());
        };
        let line = u64::from(index) + 1;
        let Some(table) = table else {
            if max_col - min_col >= MAX_COLUMNS {
                return Err(Stop::Failed(Error::Xlsx {
                    path: self.path.clone(),
                    message: format!(
                        "the header in row {line} spans columns {}..{}, more than Excel's {MAX_COLUMNS}",
                        column_letters(min_col),
                        column_letters(max_col)
                    ),
                }));
            }
            let width = (max_col - min_col) as usize + 1;
            let mut names = vec![String::new(); width];
            for (c, cell) in cells {
                if let Some(slot) = c.checked_sub(min_col).and_then(|i| names.get_mut(i as usize)) {
                    cell.text().clone_into(slot);
                }
            }
            let names = normalize_column_names(names.iter().map(String::as_str));
            let fields: Vec<Field> = names.into_iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
            let schema = Arc::new(Schema::new(fields));
            self.send(Message::Header(schema.clone()))?;
            *table = Some(Table {
                first_col: min_col,
                last_col: max_col,
                builder: Utf8BatchBuilder::new(schema, 0),
                values: vec![None; width],
            });
            return Ok(());
        };
        let outside: Vec<u32> =
            filled().map(|(c, _)| *c).filter(|c| *c < table.first_col || *c > table.last_col).collect();
        let errors: Vec<String> = cells
            .iter()
            .filter_map(|(c, cell)| match cell {
                Cell::Error(e) => Some(format!("{}{line} holds {e}", column_letters(*c))),
                _ => None,
            })
            .collect();
        if !outside.is_empty() || !errors.is_empty() {
            let kind = if outside.is_empty() { RejectKind::ErrorCell } else { RejectKind::Ragged };
            let reason = if !outside.is_empty() {
                let letters: Vec<String> = outside.iter().map(|c| column_letters(*c)).collect();
                format!(
                    "ragged row: value in column {} outside the header's columns {}..{}",
                    letters.join(", "),
                    column_letters(table.first_col),
                    column_letters(table.last_col)
                )
            } else {
                format!("error cell: {}", errors.join("; "))
            };
            let raw = raw_line(cells, min_col.min(table.first_col), max_col);
            table.builder.push_reject(line, raw, kind, reason);
        } else {
            table.values.iter_mut().for_each(|v| *v = None);
            for (c, cell) in cells {
                if let (Cell::Text(text), Some(slot)) =
                    (cell, c.checked_sub(table.first_col).and_then(|i| table.values.get_mut(i as usize)))
                {
                    *slot = Some(text.clone());
                }
            }
            for (builder, value) in table.builder.columns.iter_mut().zip(&table.values) {
                builder.append_option(value.as_deref());
            }
            table.builder.push_row(line);
        }
        if table.builder.records >= self.batch_size {
            let message = match table.builder.finish(&self.path) {
                Ok(batch) => Message::Batch(batch),
                Err(error) => Message::Error(error),
            };
            self.send(message)?;
        }
        Ok(())
    }
}

/// The cells of a rejected row from column `from` to `to`, as one CSV line
/// (quoted where needed, so the raw text stays unambiguous). A row wider
/// than Excel allows (a corrupt file) lists just the cells present.
fn raw_line(cells: &[(u32, Cell)], from: u32, to: u32) -> String {
    let fields: Vec<&str> = if to.saturating_sub(from) < MAX_COLUMNS {
        let mut fields = vec![""; (to.saturating_sub(from)) as usize + 1];
        for (c, cell) in cells {
            if let Some(slot) = c.checked_sub(from).and_then(|i| fields.get_mut(i as usize)) {
                *slot = cell.text();
            }
        }
        fields
    } else {
        cells.iter().map(|(_, cell)| cell.text()).collect()
    };
    let mut writer = ::csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if writer.write_record(&fields).is_err() {
        return fields.join(",");
    }
    match writer.into_inner() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_owned(),
        Err(_) => fields.join(","),
    }
}

/// Spreadsheet column name of a 0-based column index: 0 → `A`, 26 → `AA`.
fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// Renders a cell's value as text (see the module docs for the rules).
fn render(value: &DataRef<'_>) -> Cell {
    let text = match value {
        DataRef::Empty => return Cell::Empty,
        DataRef::Error(e) => return Cell::Error(e.to_string()),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => render_float(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => render_datetime(dt),
        DataRef::DateTimeIso(s) => render_iso_datetime(s),
        DataRef::DurationIso(s) => s.clone(),
    };
    if text.is_empty() { Cell::Empty } else { Cell::Text(text) }
}

/// A number with full precision and no exponent: Rust's `Display` for `f64`
/// prints the shortest text that reads back as the same number, and never a
/// trailing `.0`, so `630102.0` is `630102` and `1234.5` stays `1234.5`.
fn render_float(f: f64) -> String {
    if f == 0.0 {
        // Also turns -0 into 0.
        "0".to_owned()
    } else {
        f.to_string()
    }
}

/// An Excel serial date-time as `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or
/// `HH:MM:SS`; a duration as `H:MM:SS`.
fn render_datetime(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if dt.is_duration() {
        return render_duration(serial);
    }
    if !serial.is_finite() || !(0.0..MAX_SERIAL).contains(&serial) {
        return render_float(serial);
    }
    // Rounded to the whole second: serials carry binary noise
    // (03:04:05 is stored as .12783564815), and Excel shows seconds.
    let mut seconds = (serial.fract() * DAY_SECONDS).round() as u32;
    if serial < 1.0 {
        // Only a time of day (the date part would be Excel's day zero).
        return format_time(seconds.min(86_399));
    }
    let (year, month, day, ..) = dt.to_ymd_hms_milli();
    let mut date = format!("{year:04}-{month:02}-{day:02}");
    if seconds >= 86_400 {
        // Rounded up to midnight: the next day.
        seconds = 0;
        if let Some(next) = chrono::NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
            .and_then(|d| d.succ_opt())
        {
            date = next.format("%Y-%m-%d").to_string();
        }
    }
    if seconds == 0 { date } else { format!("{date} {}", format_time(seconds)) }
}

fn format_time(seconds: u32) -> String {
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// A duration (days as a fraction) as `H:MM:SS`, hours not wrapped at 24.
fn render_duration(days: f64) -> String {
    if !days.is_finite() || days.abs() * DAY_SECONDS > 1e15 {
        return render_float(days);
    }
    let total = (days * DAY_SECONDS).round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    format!("{sign}{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

/// An ISO 8601 date-time cell (`t="d"`): `T` becomes a space, and a
/// midnight time is dropped, matching how serial date-times are rendered.
fn render_iso_datetime(s: &str) -> String {
    match s.split_once('T') {
        Some((date, time)) => {
            let time = time.trim_end_matches('Z');
            if time.is_empty() || time.trim_start_matches(['0', ':', '.']).is_empty() {
                date.to_owned()
            } else {
                format!("{date} {}", time.split('.').next().unwrap_or(time))
            }
        }
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use calamine::ExcelDateTimeType;

    use super::*;

    #[test]
    fn floats_render_without_spurious_decimals() {
        assert_eq!(render_float(630102.0), "630102");
        assert_eq!(render_float(1234.5), "1234.5");
        assert_eq!(render_float(-5.0), "-5");
        assert_eq!(render_float(-0.0), "0");
        assert_eq!(render_float(0.125), "0.125");
        assert_eq!(render_float(1e20), "100000000000000000000");
        assert_eq!(render_float(630102000000.0), "630102000000");
        // An 18-digit ID typed as a number keeps only what an f64 holds.
        assert_eq!(render_float(1.101011990030712e17), "110101199003071200");
        assert_eq!(render_float(f64::NAN), "NaN");
    }

    fn dt(serial: f64) -> ExcelDateTime {
        ExcelDateTime::new(serial, ExcelDateTimeType::DateTime, false)
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(render_datetime(&dt(32939.0)), "1990-03-07");
        assert_eq!(render_datetime(&dt(43832.12783564815)), "2020-01-02 03:04:05");
        assert_eq!(render_datetime(&dt(0.5625)), "13:30:00");
        assert_eq!(render_datetime(&dt(0.0)), "00:00:00");
        // 23:59:59.9 rounds to the next day's midnight.
        assert_eq!(render_datetime(&dt(43832.0 + 86_399.9 / 86_400.0)), "2020-01-03");
        // Not a date Excel can show: the number.
        assert_eq!(render_datetime(&dt(-1.0)), "-1");
        assert_eq!(render_datetime(&dt(1e300)), render_float(1e300));
        let duration = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(render_datetime(&duration), "36:00:00");
        let negative = ExcelDateTime::new(-0.25, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(render_datetime(&negative), "-6:00:00");
        let huge = ExcelDateTime::new(1e300, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(render_datetime(&huge), render_float(1e300));
    }

    #[test]
    fn iso_datetimes() {
        assert_eq!(render_iso_datetime("2024-05-01T00:00:00"), "2024-05-01");
        assert_eq!(render_iso_datetime("2024-05-01T08:30:00.000Z"), "2024-05-01 08:30:00");
        assert_eq!(render_iso_datetime("2024-05-01"), "2024-05-01");
    }

    #[test]
    fn cells_render() {
        assert_eq!(render(&DataRef::Bool(true)), Cell::Text("true".into()));
        assert_eq!(render(&DataRef::Int(42)), Cell::Text("42".into()));
        assert_eq!(render(&DataRef::SharedString("")), Cell::Empty);
        assert_eq!(render(&DataRef::Error(calamine::CellErrorType::Div0)), Cell::Error("#DIV/0!".into()));
    }

    #[test]
    fn letters() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        let last = column_letters(u32::MAX);
        assert!(!last.is_empty() && last.chars().all(|c| c.is_ascii_uppercase()), "{last}");
    }

    #[test]
    fn raw_lines_are_csv() {
        let cells = vec![(1, Cell::Text("a,b".into())), (3, Cell::Error("#N/A".into()))];
        assert_eq!(raw_line(&cells, 0, 3), ",\"a,b\",,#N/A");
        let far = vec![(0, Cell::Text("a".into())), (u32::MAX, Cell::Text("b".into()))];
        assert_eq!(raw_line(&far, 0, u32::MAX), "a,b");
    }
}
