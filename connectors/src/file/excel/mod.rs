//! Streaming spreadsheet reader (`.xlsx`, and the pre-2007 `.xls` that
//! county offices still send): worksheets in, all-`Utf8` Arrow batches out,
//! with the sheet and row number of every record.
//!
//! * **Sheets.** [`ExcelOptions::sheets`] lists sheet names or glob patterns
//!   (`乡镇*`); without any, the first visible sheet is read. Sheets are read
//!   in workbook order, each with its own header, into one stream whose
//!   batches carry their [`PositionedBatch::sheet`]. A hidden sheet is read
//!   only when named exactly, never through a pattern. A name or pattern
//!   that matches nothing is an [`Error::SheetNotFound`] listing the sheets.
//! * **Where the table is.** The header row is declared or found, with
//!   two-row headers and trailer rows, by the rules of [`layout`]. Rows above
//!   the header and trailers are not records: they travel as
//!   [`PositionedBatch::skipped`], with the header's rows and how they were
//!   found as [`PositionedBatch::layout`] on the first batch of each sheet
//!   (a sheet with a header but no data still yields one empty batch).
//! * The header's first to last filled cell fix the columns, so a table that
//!   starts at `B3` reads the same as one at `A1`. Names are cleaned like the
//!   CSV reader's (trimmed, empty → `column_N`, repeats → `_2`, `_3`).
//! * Every column is `Utf8` and nullable; an empty cell becomes NULL. Cell
//!   values are rendered as text the way a person reads them in Excel (see
//!   [`render`]): numbers with full precision and no spurious `.0`; long
//!   numbers from their stored text, and marked
//!   [`Delivered::TruncatedNumber`] when Excel had already dropped digits;
//!   date cells as `YYYY-MM-DD`, date-time cells as `YYYY-MM-DD HH:MM:SS`
//!   (rounded to the second; a date-time at exactly midnight reads as a
//!   date), time-of-day cells as `HH:MM:SS`, durations as `H:MM:SS`;
//!   booleans as `true` / `false`. A plain number in a date column stays a
//!   number: only the job's `excel_serial_date` normaliser turns it into a
//!   date.
//! * Rows are never dropped: a row with an error cell (`#N/A`, `#DIV/0!`, …)
//!   or with a value outside the header's columns becomes a
//!   [`RawReject`](super::RawReject), its cells rendered as one CSV line.
//!   Completely empty rows are skipped and not counted, like blank CSV lines.
//! * Positions: [`PositionedBatch::lines`] holds the 1-based sheet row
//!   number, so "line 7" is row 7 as Excel shows it. Data-row indices run on
//!   across the sheets of one workbook.
//! * Memory: `.xlsx` cells are streamed from the sheet's XML by a dedicated
//!   reader thread that hands finished batches over a channel of capacity
//!   one, so a sheet is never held whole in memory; one extra pass over the
//!   sheet's XML collects its merged ranges and long numbers first
//!   ([`stored`]). The shared-string table (every distinct text in the
//!   workbook) is loaded up front, as the format requires. An `.xls` sheet
//!   (at most 65,536 rows by its format) is read whole. If the consumer stops
//!   early, the thread stops at its next hand-over.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use calamine::{Reader, SheetType, SheetVisible, Xls, Xlsx};
use civlink_catalog::model::{SheetHeader, SkipReason, SkippedRow};
use civlink_standards::validate::Delivered;

use super::{Error, PositionedBatch, RejectKind, Result, Utf8BatchBuilder, check_batch_size, normalize_column_names};

pub mod layout;
mod render;
mod stored;

use self::layout::{Decision, Region, Row, Rules};
use self::render::{Cell, MAX_COLUMNS, column_letters, raw_line};

/// How to read a workbook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcelOptions {
    /// Sheet names or glob patterns; empty: the first visible sheet.
    pub sheets: Vec<String>,
    /// The 1-based header row; `None`: found (see [`layout`]).
    pub header_row: Option<u32>,
    /// Names a header row carries: the job's source columns, the standard's
    /// column names and titles.
    pub header_names: Vec<String>,
    /// Trailer words besides [`layout::DEFAULT_TRAILER_WORDS`].
    pub trailer_words: Vec<String>,
}

impl ExcelOptions {
    /// Read `sheet` (the first visible sheet when `None`), finding the header by itself.
    pub fn sheet(sheet: Option<&str>) -> ExcelOptions {
        ExcelOptions { sheets: sheet.map(str::to_owned).into_iter().collect(), ..ExcelOptions::default() }
    }
}

/// What the reader thread hands to the iterator.
enum Message {
    /// A sheet's header has been read (the first sheet's always comes first
    /// unless an error does).
    Header(SchemaRef),
    /// One finished batch.
    Batch(PositionedBatch),
    /// The workbook cannot be read further; nothing follows.
    Error(Error),
    /// The last sheet ended cleanly; nothing follows.
    End,
}

/// Streams the chosen worksheets of an `.xlsx` or `.xls` workbook as
/// [`PositionedBatch`]es of all-`Utf8` columns.
///
/// Iterating yields `Ok(batch)` until the end of the last sheet; a
/// workbook-level failure (corrupt XML, truncated archive) is yielded once
/// as `Err` after the rows read before it, and the iterator then ends.
pub struct ExcelReader {
    path: String,
    sheets: Vec<String>,
    schema: SchemaRef,
    receiver: Receiver<Message>,
    finished: bool,
}

/// The workbook's bytes, which the `.xlsx` reader opens twice (see [`stored`]).
#[derive(Clone)]
enum Bytes {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}
type Input = Box<dyn ReadSeek>;

impl Bytes {
    fn open(&self) -> std::io::Result<Input> {
        Ok(match self {
            Bytes::File(path) => Box::new(BufReader::new(File::open(path)?)),
            Bytes::Memory(bytes) => Box::new(Cursor::new(Arc::clone(bytes))),
        })
    }
}

/// An open workbook of either format.
enum Book {
    Xlsx(Box<Xlsx<Input>>),
    Xls(Box<Xls<Input>>),
}

impl Book {
    fn sheets_metadata(&self) -> &[calamine::Sheet] {
        match self {
            Book::Xlsx(book) => book.sheets_metadata(),
            Book::Xls(book) => book.sheets_metadata(),
        }
    }
}

/// The OLE2 compound-file signature that starts every `.xls` workbook.
const OLE_SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

impl ExcelReader {
    /// Opens the workbook at `path` (`.xlsx` or `.xls`, told apart by their
    /// content) and reads the header of its first chosen sheet, `batch_size`
    /// records at a time.
    pub fn open(path: &Path, options: &ExcelOptions, batch_size: usize) -> Result<ExcelReader> {
        check_batch_size(batch_size)?;
        let name = path.display().to_string();
        // Opened here first, so that a missing file is an I/O error at once.
        File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        Self::start(&name, Bytes::File(path.to_owned()), options, batch_size)
    }

    /// Reads a workbook held in memory; `name` is used in errors.
    pub fn from_bytes(name: &str, bytes: Vec<u8>, options: &ExcelOptions, batch_size: usize) -> Result<ExcelReader> {
        check_batch_size(batch_size)?;
        Self::start(name, Bytes::Memory(bytes.into()), options, batch_size)
    }

    fn start(name: &str, bytes: Bytes, options: &ExcelOptions, batch_size: usize) -> Result<ExcelReader> {
        let io = |source| Error::Io { path: name.to_owned(), source };
        let mut head = [0u8; 8];
        let mut probe = bytes.open().map_err(io)?;
        let is_xls = probe.read_exact(&mut head).is_ok() && head == OLE_SIGNATURE;
        let input = bytes.open().map_err(io)?;
        let book = if is_xls {
            Book::Xls(Box::new(
                Xls::new(input).map_err(|e| Error::Xlsx { path: name.to_owned(), message: e.to_string() })?,
            ))
        } else {
            Book::Xlsx(Box::new(
                Xlsx::new(input).map_err(|e| Error::Xlsx { path: name.to_owned(), message: e.to_string() })?,
            ))
        };
        let sheets = select_sheets(name, book.sheets_metadata(), &options.sheets)?;
        // Capacity one: the thread parses the next batch while the consumer
        // works on the current one, and no more than that is buffered.
        let (sender, receiver) = sync_channel(1);
        let worker = Worker {
            path: name.to_owned(),
            bytes,
            sheets: sheets.clone(),
            rules: Rules::new(options.header_row, &options.header_names, &options.trailer_words),
            batch_size,
            sender,
        };
        std::thread::Builder::new()
            .name("civlink-excel".to_owned())
            .spawn(move || worker.run(book))
            .map_err(|source| Error::Io { path: name.to_owned(), source })?;
        let mut this =
            ExcelReader { path: name.to_owned(), sheets, schema: Arc::new(Schema::empty()), receiver, finished: false };
        match this.receiver.recv() {
            Ok(Message::Header(schema)) => this.schema = schema,
            Ok(Message::Error(error)) => return Err(error),
            // The worker always sends the header (or an error) first; anything
            // else means it died, e.g. a panic inside the XML parser.
            Ok(Message::Batch(_) | Message::End) | Err(_) => return Err(this.worker_died()),
        }
        Ok(this)
    }

    /// The schema of the first sheet's batches: one nullable `Utf8` column
    /// per header cell. Later sheets have their own (see each batch).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The sheets being read, in order.
    pub fn sheets(&self) -> &[String] {
        &self.sheets
    }

    fn worker_died(&self) -> Error {
        Error::Xlsx {
            path: self.path.clone(),
            message: format!("reading {:?} stopped unexpectedly; the workbook is probably corrupt", self.sheets),
        }
    }
}

impl Iterator for ExcelReader {
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

/// The sheets `wanted` names (see [`ExcelOptions::sheets`]), in workbook order.
fn select_sheets(path: &str, sheets: &[calamine::Sheet], wanted: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = sheets.iter().map(|s| s.name.clone()).collect();
    let readable = |s: &calamine::Sheet| s.typ == SheetType::WorkSheet;
    let visible = |s: &calamine::Sheet| readable(s) && s.visible == SheetVisible::Visible;
    if wanted.is_empty() {
        return match sheets.iter().find(|s| visible(s)) {
            Some(first) => Ok(vec![first.name.clone()]),
            None => Err(Error::Xlsx { path: path.to_owned(), message: "the workbook has no visible sheet".to_owned() }),
        };
    }
    let mut chosen = vec![false; sheets.len()];
    for want in wanted {
        let mut matched = false;
        if let Some(i) = sheets.iter().position(|s| &s.name == want && readable(s)) {
            chosen[i] = true;
            matched = true;
        } else if want.contains(['*', '?', '[']) {
            let pattern = glob::Pattern::new(want)
                .map_err(|e| Error::InvalidOptions { message: format!("sheet pattern {want:?}: {e}") })?;
            for (i, sheet) in sheets.iter().enumerate() {
                if visible(sheet) && pattern.matches(&sheet.name) {
                    chosen[i] = true;
                    matched = true;
                }
            }
        }
        if !matched {
            return Err(Error::SheetNotFound { path: path.to_owned(), sheet: want.clone(), available: names });
        }
    }
    Ok(sheets.iter().zip(chosen).filter(|(_, c)| *c).map(|(s, _)| s.name.clone()).collect())
}

/// Why the worker stopped before the end of the workbook.
enum Stop {
    /// The workbook cannot be read further.
    Failed(Error),
    /// The consumer went away; the worker just stops.
    Disconnected,
}

/// The reader thread: reads the sheets in turn and sends batches.
struct Worker {
    path: String,
    bytes: Bytes,
    sheets: Vec<String>,
    rules: Rules,
    batch_size: usize,
    sender: SyncSender<Message>,
}

impl Worker {
    fn run(self, mut book: Book) {
        let last = match self.read_all(&mut book) {
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

    fn failed(&self, message: impl Into<String>) -> Stop {
        Stop::Failed(Error::Xlsx { path: self.path.clone(), message: message.into() })
    }

    fn read_all(&self, book: &mut Book) -> std::result::Result<(), Stop> {
        let mut next_row = 0u64;
        for sheet in &self.sheets {
            let mut table = match book {
                Book::Xlsx(book) => {
                    let input = self
                        .bytes
                        .open()
                        .map_err(|source| Stop::Failed(Error::Io { path: self.path.clone(), source }))?;
                    let stored =
                        stored::read(input, sheet).map_err(|e| self.failed(format!("sheet {sheet:?}: {e}")))?;
                    let mut table = SheetTable::new(self, sheet, stored.merges, stored.long_numbers, next_row);
                    self.stream_xlsx(book, sheet, &mut table)?;
                    table
                }
                Book::Xls(book) => {
                    let merges = book
                        .worksheet_merge_cells(sheet)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|d| Region { top: d.start.0, left: d.start.1, bottom: d.end.0, right: d.end.1 })
                        .collect();
                    let mut table = SheetTable::new(self, sheet, merges, HashMap::new(), next_row);
                    let range =
                        book.worksheet_range(sheet).map_err(|e| self.failed(format!("sheet {sheet:?}: {e}")))?;
                    if let Some((top, left)) = range.start() {
                        for (r, cells) in range.rows().enumerate() {
                            let cells = cells
                                .iter()
                                .enumerate()
                                .map(|(c, value)| (left + c as u32, render::render_data(value)))
                                .filter(|(_, cell)| !cell.is_empty())
                                .collect();
                            table.push(Row { index: top + r as u32, cells })?;
                        }
                    }
                    table
                }
            };
            table.finish()?;
            next_row = table.next_row();
        }
        Ok(())
    }

    /// Streams an `.xlsx` sheet's cells into `table`, row by row.
    fn stream_xlsx(
        &self,
        book: &mut Xlsx<Input>,
        sheet: &str,
        table: &mut SheetTable<'_>,
    ) -> std::result::Result<(), Stop> {
        let xlsx_error = |e: calamine::XlsxError| self.failed(format!("sheet {sheet:?}: {e}"));
        let mut cells = book.worksheet_cells_reader(sheet).map_err(xlsx_error)?;
        let mut row = Row::default();
        let mut started = false;
        loop {
            let next = match cells.next_cell() {
                Ok(next) => next,
                Err(e) => {
                    // Rows read before the failure are still delivered.
                    if started {
                        table.push(std::mem::take(&mut row))?;
                    }
                    table.flush()?;
                    return Err(xlsx_error(e));
                }
            };
            let Some(cell) = next else { break };
            let (r, c) = cell.get_position();
            if !started || row.index != r {
                if started {
                    table.push(std::mem::take(&mut row))?;
                }
                row.index = r;
                started = true;
            }
            let value = cell.get_value();
            let rendered = match (value, table.long_numbers.get(&(r, c))) {
                (calamine::DataRef::Float(_), Some(stored)) => render::long_number(stored),
                _ => render::render(value),
            };
            row.cells.push((c, rendered));
        }
        if started {
            table.push(row)?;
        }
        Ok(())
    }
}

/// One sheet being read: the rows before its header is decided, then the
/// batch being built.
struct SheetTable<'w> {
    worker: &'w Worker,
    sheet: Arc<str>,
    merges: Vec<Region>,
    long_numbers: HashMap<(u32, u32), String>,
    /// Non-blank rows buffered until the header is decided.
    pending: Vec<Row>,
    table: Option<Table>,
    /// The header's layout, until the first batch carries it.
    layout: Option<SheetHeader>,
    skipped: Vec<SkippedRow>,
    first_row: u64,
    sent: bool,
}

/// The header's column range and the batch being built.
struct Table {
    first_col: u32,
    last_col: u32,
    builder: Utf8BatchBuilder,
    /// Reused per row: the value of each header column.
    values: Vec<Option<String>>,
}

impl<'w> SheetTable<'w> {
    fn new(
        worker: &'w Worker,
        sheet: &str,
        merges: Vec<Region>,
        long_numbers: HashMap<(u32, u32), String>,
        first_row: u64,
    ) -> SheetTable<'w> {
        SheetTable {
            worker,
            sheet: sheet.into(),
            merges,
            long_numbers,
            pending: Vec::new(),
            table: None,
            layout: None,
            skipped: Vec::new(),
            first_row,
            sent: false,
        }
    }

    /// The data-row index the next sheet starts at.
    fn next_row(&self) -> u64 {
        self.table.as_ref().map_or(self.first_row, |t| t.builder.next_row_index())
    }

    /// Takes one row of the sheet (in order).
    fn push(&mut self, row: Row) -> std::result::Result<(), Stop> {
        if row.is_blank() {
            return Ok(());
        }
        if self.table.is_some() {
            return self.data(row);
        }
        self.pending.push(row);
        self.decide(false)
    }

    /// Decides the header when the buffered rows allow it.
    fn decide(&mut self, complete: bool) -> std::result::Result<(), Stop> {
        let header = match layout::find_header(&self.pending, complete, &self.worker.rules, &self.merges) {
            Decision::NeedMore => return Ok(()),
            Decision::DeclaredRowEmpty => {
                let row = self.worker.rules.header_row.unwrap_or_default();
                return Err(self.worker.failed(format!("sheet {:?}: the header_row {row} is empty", self.sheet)));
            }
            Decision::Found(header) => header,
        };
        if header.last_col - header.first_col >= MAX_COLUMNS {
            return Err(self.worker.failed(format!(
                "sheet {:?}: the header spans columns {}..{}, more than Excel's {MAX_COLUMNS}",
                self.sheet,
                column_letters(header.first_col),
                column_letters(header.last_col)
            )));
        }
        let pending = std::mem::take(&mut self.pending);
        let header_rows = if header.two_rows { 2 } else { 1 };
        for above in &pending[..header.at] {
            self.skipped.push(SkippedRow { line: u64::from(above.index) + 1, reason: SkipReason::AboveHeader });
        }
        let rows: Vec<u64> =
            pending[header.at..header.at + header_rows].iter().map(|r| u64::from(r.index) + 1).collect();
        self.layout = Some(SheetHeader { rows, found: header.found });
        let names = normalize_column_names(header.names.iter().map(String::as_str));
        let fields: Vec<Field> = names.into_iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        let schema = Arc::new(Schema::new(fields));
        self.worker.send(Message::Header(Arc::clone(&schema)))?;
        let width = (header.last_col - header.first_col) as usize + 1;
        self.table = Some(Table {
            first_col: header.first_col,
            last_col: header.last_col,
            builder: Utf8BatchBuilder::new(schema, self.first_row),
            values: vec![None; width],
        });
        for row in pending.into_iter().skip(header.at + header_rows) {
            self.data(row)?;
        }
        Ok(())
    }

    /// Handles one data-area row.
    fn data(&mut self, row: Row) -> std::result::Result<(), Stop> {
        let line = u64::from(row.index) + 1;
        if let Some(word) = self.worker.rules.trailer_word(&row) {
            self.skipped.push(SkippedRow { line, reason: SkipReason::Trailer { word: word.to_owned() } });
            return Ok(());
        }
        let Some(table) = self.table.as_mut() else { return Ok(()) };
        let Some((min_col, max_col)) = row.span() else { return Ok(()) };
        let filled = || row.cells.iter().filter(|(_, cell)| !cell.is_empty());
        let outside: Vec<u32> =
            filled().map(|(c, _)| *c).filter(|c| *c < table.first_col || *c > table.last_col).collect();
        let errors: Vec<String> = row
            .cells
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
            let raw = raw_line(&row.cells, min_col.min(table.first_col), max_col);
            table.builder.push_reject(line, raw, kind, reason);
        } else {
            table.values.iter_mut().for_each(|v| *v = None);
            for (c, cell) in row.cells {
                let Some(index) = c.checked_sub(table.first_col).map(|i| i as usize) else { continue };
                match cell {
                    Cell::Text(text) => {
                        if let Some(slot) = table.values.get_mut(index) {
                            *slot = Some(text);
                        }
                    }
                    Cell::Truncated(text) => {
                        if let Some(slot) = table.values.get_mut(index) {
                            *slot = Some(text);
                            table.builder.mark_next_row(index, Delivered::TruncatedNumber);
                        }
                    }
                    Cell::Empty | Cell::Error(_) => {}
                }
            }
            for (builder, value) in table.builder.columns.iter_mut().zip(&table.values) {
                builder.append_option(value.as_deref());
            }
            table.builder.push_row(line);
        }
        if table.builder.records >= self.worker.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the batch built so far: when it holds records or skipped rows,
    /// or when nothing of this sheet was sent yet (its layout).
    fn flush(&mut self) -> std::result::Result<(), Stop> {
        let Some(table) = self.table.as_mut() else { return Ok(()) };
        if table.builder.is_empty() && self.skipped.is_empty() && self.sent {
            return Ok(());
        }
        let message = match table.builder.finish(&self.worker.path) {
            Ok(mut batch) => {
                batch.sheet = Some(Arc::clone(&self.sheet));
                batch.layout = self.layout.take();
                batch.skipped = std::mem::take(&mut self.skipped);
                Message::Batch(batch)
            }
            Err(error) => Message::Error(error),
        };
        self.sent = true;
        self.worker.send(message)
    }

    /// The sheet ended: decide the header if still open, send what is left.
    fn finish(&mut self) -> std::result::Result<(), Stop> {
        if self.table.is_none() {
            self.decide(true)?;
        }
        if self.table.is_none() {
            // No value anywhere: no columns and no rows.
            self.worker.send(Message::Header(Arc::new(Schema::empty())))?;
            return Ok(());
        }
        self.flush()
    }
}
