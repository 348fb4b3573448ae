//! Streaming CSV reader: UTF-8, GBK or GB18030 text in, all-`Utf8` Arrow
//! batches out, with the start line of every record.
//!
//! * Every column is `Utf8` and nullable; an empty field becomes NULL
//!   (typing is a later, standards-driven step, not a guess made here).
//! * **How a cell becomes a value** (the same for spreadsheets): text has no
//!   JSON type, so the validator reads each cell into its column's type by
//!   fixed rules, and a cell that does not follow them is a violation as
//!   delivered, never a guess:
//!
//!   | column | a cell reads when it is | not, for example |
//!   |---|---|---|
//!   | any | empty: NULL (absent) | |
//!   | `string` | anything, spaces kept | |
//!   | `integer` | a JSON number without a fraction: `7`, `-7`, `7.0`, `7e2` | `+7`, `007`, ` 7`, `1,234`, `7.5` |
//!   | `number` | a JSON number: `-1.5`, `2e-3`, `12` | `.5`, `5.`, `+1`, `NaN`, `1,5` |
//!   | `boolean` | `true` or `false` | `是`, `1`, `TRUE`, `Y` |
//!   | `date` | RFC 3339 `YYYY-MM-DD` | `20240131`, `2024/1/31`, `2024年1月31日` |
//!   | `date-time` | RFC 3339: `2024-01-31T08:00:00+08:00`, `…Z` | `2024-01-31 08:00:00` |
//!
//!   A job declares what its export needs instead (`trim`, `cast = "date"`,
//!   `cast = "boolean"`, …, see [`crate::mapping`]), and the run counts the
//!   values each column's steps normalised.
//! * Header names are trimmed; a BOM is stripped; an empty name becomes
//!   `column_N` (1-based position) and a repeated name gets `_2`, `_3`, ...
//!   appended, so the schema is always valid and no column is lost.
//! * A header that does not decode cleanly (invalid UTF-8, or U+FFFD after
//!   GBK/GB18030 decoding) is an [`Error::HeaderEncoding`]: it almost always means the
//!   configured encoding is wrong, and every row would be garbled or rejected.
//! * Rows are never dropped: a record whose field count differs from the
//!   header's, that is not valid UTF-8, or that contains bytes that are not
//!   valid GBK/GB18030 becomes a [`RawReject`](super::RawReject).
//! * Memory is bounded by one batch plus the read buffers; a single record
//!   larger than [`CsvOptions::max_record_bytes`] (typically an unclosed
//!   quote) ends the stream with [`Error::Csv`] instead of reading the rest of
//!   the file into memory.
//! * Completely empty lines are skipped by the CSV parser; they are not data
//!   rows and are not counted.
//! * Line numbers count `\n` (LF and CRLF files). Files with bare-CR line
//!   endings (classic Mac OS) parse correctly, but their records all report
//!   line 1; row indices stay exact.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use ::csv::{ByteRecord, StringRecord};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::{
    DEFAULT_MAX_RECORD_BYTES, Encoding, Error, PositionedBatch, RejectKind, Result, Utf8BatchBuilder, check_batch_size,
    normalize_column_names,
};

/// Size of the decoder's and the CSV parser's read buffers. Larger than the
/// libraries' 8 KiB defaults because multi-gigabyte exports are the norm.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How to read a CSV export. Deserialises from configuration (TOML, JSON);
/// every field is optional and unknown fields are an error.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    /// Field separator, one ASCII character given as a string: `","`, `"|"`,
    /// `"\t"` (a real tab, or the two characters backslash-t), or `"tab"`.
    /// Default `,`.
    #[serde(deserialize_with = "deserialize_ascii_char")]
    pub delimiter: u8,
    /// Quote character, one ASCII character given as a string. Default `"`.
    /// A quote inside a quoted field is written doubled (`""`).
    #[serde(deserialize_with = "deserialize_ascii_char")]
    pub quote: u8,
    /// Whether the first record is a header with the column names. Default `true`.
    pub has_header: bool,
    /// Text encoding of the file: `utf-8`, `gbk` (also `gb2312`) or `gb18030`.
    /// Default `utf-8`.
    pub encoding: Encoding,
    /// Maximum number of records (good rows plus rejects) per batch. Default 8192.
    pub batch_size: usize,
    /// Column names to use when `has_header` is `false`. When absent, columns
    /// are named `column_1`, `column_2`, ... after the first record's width.
    /// Setting it together with `has_header = true` is an error, since it is
    /// unclear which names should win.
    pub column_names: Option<Vec<String>>,
    /// Largest record, in decoded bytes, that is accepted before the stream
    /// is stopped with an error (almost always an unclosed quote). Default 64 MiB.
    pub max_record_bytes: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            has_header: true,
            encoding: Encoding::Utf8,
            batch_size: 8192,
            column_names: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl CsvOptions {
    /// Checks the combinations that cannot work.
    fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::InvalidOptions { message });
        for (what, byte) in [("delimiter", self.delimiter), ("quote", self.quote)] {
            // Non-ASCII bytes could split a multi-byte character; line breaks
            // would make every line a record boundary and a field at once.
            if !byte.is_ascii() || byte == b'\n' || byte == b'\r' {
                return invalid(format!(
                    "{what} must be an ASCII character other than a line break, got byte 0x{byte:02X}"
                ));
            }
        }
        if self.delimiter == self.quote {
            return invalid(format!("delimiter and quote are both {:?}", char::from(self.delimiter)));
        }
        check_batch_size(self.batch_size)?;
        if self.max_record_bytes == 0 {
            return invalid("max_record_bytes must be at least 1".to_owned());
        }
        match (&self.column_names, self.has_header) {
            (Some(_), true) => invalid(
                "column_names is only used when has_header = false; the file's header would be ignored".to_owned(),
            ),
            (Some(names), false) if names.is_empty() => {
                invalid("column_names must name at least one column".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// Parses a one-character ASCII string (or a few spelled-out escapes) into a byte.
fn parse_ascii_char(s: &str) -> Option<u8> {
    match s {
        "\\t" | "tab" | "TAB" => Some(b'\t'),
        _ => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => Some(c as u8),
                _ => None,
            }
        }
    }
}

fn deserialize_ascii_char<'de, D>(deserializer: D) -> std::result::Result<u8, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct AsciiChar;

    impl serde::de::Visitor<'_> for AsciiChar {
        type Value = u8;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a single ASCII character such as \",\", \"|\" or \"\\t\"")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<u8, E> {
            parse_ascii_char(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }

        fn visit_char<E: serde::de::Error>(self, v: char) -> std::result::Result<u8, E> {
            u8::try_from(v)
                .ok()
                .filter(u8::is_ascii)
                .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Char(v), &self))
        }
    }

    deserializer.deserialize_str(AsciiChar)
}

/// Reader wrapper between the decoder and the CSV parser. It refuses to
/// deliver more than `limit` bytes beyond the start of the record being
/// parsed, so an unclosed quote cannot pull a whole multi-gigabyte file into
/// one record, and it remembers where recent newlines were, which is what
/// lets the reader compute each record's true start line (the `csv` crate's
/// own record position points before skipped blank lines and, for CRLF
/// files, one line too early).
struct Tracker<R> {
    inner: R,
    /// Bytes handed to the CSV parser so far.
    delivered: u64,
    /// Decoded-stream offset where the current record starts.
    record_start: u64,
    /// Maximum bytes allowed past `record_start`, including read-ahead.
    limit: u64,
    /// Offsets of `\n` bytes among the last `2 * READ_BUFFER_BYTES` bytes
    /// delivered; the parser never lags further behind than one buffer.
    newlines: VecDeque<u64>,
}

impl<R> Tracker<R> {
    /// Whether the byte at decoded-stream offset `offset` is a `\n`, for an
    /// offset within the parser's buffer window.
    fn is_newline_at(&mut self, offset: u64) -> bool {
        while self.newlines.front().is_some_and(|&at| at < offset) {
            self.newlines.pop_front();
        }
        self.newlines.front() == Some(&offset)
    }
}

/// Marker carried inside the `io::Error` the tracker returns, so the reader
/// can tell "record too large" apart from a real I/O failure.
#[derive(Debug)]
struct RecordTooLarge;

impl fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record too large")
    }
}

impl std::error::Error for RecordTooLarge {}

impl<R: Read> Read for Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.delivered.saturating_sub(self.record_start) > self.limit {
            return Err(io::Error::other(RecordTooLarge));
        }
        let n = self.inner.read(buf)?;
        let horizon = self.delivered.saturating_sub(2 * READ_BUFFER_BYTES as u64);
        while self.newlines.front().is_some_and(|&at| at < horizon) {
            self.newlines.pop_front();
        }
        let base = self.delivered;
        for (i, &byte) in buf.iter().take(n).enumerate() {
            if byte == b'\n' {
                self.newlines.push_back(base + i as u64);
            }
        }
        self.delivered += n as u64;
        Ok(n)
    }
}

type Source = Tracker<DecodeReaderBytes<Box<dyn Read + Send>, Vec<u8>>>;

/// Streams a CSV file as [`PositionedBatch`]es of all-`Utf8` columns.
///
/// Iterating yields `Ok(batch)` until the end of the file; a file-level
/// failure (I/O error, record too large) is yielded once as `Err` after the
/// rows read before it, and the iterator then ends.
pub struct CsvReader {
    path: String,
    reader: ::csv::Reader<Source>,
    options: CsvOptions,
    schema: SchemaRef,
    /// Reused for every record; `None` only transiently while being validated.
    record: Option<ByteRecord>,
    /// 1-based physical line where the record in `record` starts.
    record_line: u64,
    /// The record in `record` has been read (no-header peek) but not yet used.
    peeked: bool,
    builder: Utf8BatchBuilder,
    /// Error to report once the rows read before it have been emitted.
    pending_error: Option<Error>,
    done: bool,
}

impl CsvReader {
    /// Opens the CSV file at `path`.
    pub fn open(path: &Path, options: CsvOptions) -> Result<CsvReader> {
        let name = path.display().to_string();
        options.validate()?;
        let file = File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        Self::from_reader(&name, Box::new(file), options)
    }

    /// Reads CSV from any byte stream; `name` is used in errors.
    ///
    /// Reads the header (or, without one, the first record) immediately, so
    /// [`schema`](Self::schema) is known right after construction.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>, options: CsvOptions) -> Result<CsvReader> {
        options.validate()?;
        let mut decode = DecodeReaderBytesBuilder::new();
        // A BOM is stripped in every case. For UTF-8 the bytes pass through
        // untouched so that invalid sequences can be rejected row by row
        // instead of being silently replaced; a UTF-16 BOM still switches to
        // UTF-16 decoding. For GBK/GB18030 a BOM wins over the configured
        // encoding, because a BOM is far stronger evidence than a config
        // entry written by hand.
        decode.strip_bom(true);
        match options.encoding {
            Encoding::Utf8 => decode.utf8_passthru(true),
            other => decode.encoding(Some(other.as_encoding_rs())).bom_override(true),
        };
        let decoded = decode
            .build_with_buffer(reader, vec![0; READ_BUFFER_BYTES])
            .map_err(|source| Error::Io { path: name.to_owned(), source })?;
        let guard = Tracker {
            inner: decoded,
            delivered: 0,
            record_start: 0,
            limit: (options.max_record_bytes as u64).saturating_add(READ_BUFFER_BYTES as u64),
            newlines: VecDeque::new(),
        };
        let reader = ::csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .double_quote(true)
            // The header is read by hand below, so that it goes through the
            // same BOM, UTF-8 and GBK checks as data rows.
            .has_headers(false)
            // Ragged rows are reported as rejects, not parse errors.
            .flexible(true)
            .buffer_capacity(READ_BUFFER_BYTES)
            .from_reader(guard);
        let mut this = CsvReader {
            path: name.to_owned(),
            reader,
            schema: Arc::new(Schema::empty()),
            record: Some(ByteRecord::new()),
            record_line: 0,
            peeked: false,
            builder: Utf8BatchBuilder::new(Arc::new(Schema::empty()), 0),
            pending_error: None,
            done: false,
            options,
        };
        let names = this.read_column_names()?;
        let fields: Vec<Field> = names.into_iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        this.schema = Arc::new(Schema::new(fields));
        this.builder = Utf8BatchBuilder::new(this.schema.clone(), 0);
        Ok(this)
    }

    /// The schema of every batch: one nullable `Utf8` column per header name.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Determines the column names from the header, the options, or (no
    /// header, no names) the width of the first record, which is kept for
    /// the first batch.
    fn read_column_names(&mut self) -> Result<Vec<String>> {
        if let Some(names) = &self.options.column_names {
            return Ok(normalize_column_names(names.iter().map(String::as_str)));
        }
        let found = self.read_record()?;
        let record = self.record.take().unwrap_or_default();
        let line = self.record_line;
        if !found {
            // An empty file: no columns and no rows.
            self.record = Some(record);
            self.done = true;
            return Ok(Vec::new());
        }
        if !self.options.has_header {
            let width = record.len();
            self.record = Some(record);
            self.peeked = true;
            return Ok((1..=width).map(|i| format!("column_{i}")).collect());
        }
        let encoding = self.options.encoding;
        let header = StringRecord::from_byte_record(record).map_err(|_| Error::HeaderEncoding {
            path: self.path.clone(),
            line,
            encoding,
        })?;
        if encoding != Encoding::Utf8 && contains_replacement_char(header.as_byte_record().as_slice()) {
            return Err(Error::HeaderEncoding { path: self.path.clone(), line, encoding });
        }
        let names = normalize_column_names(header.iter());
        self.record = Some(header.into_byte_record());
        Ok(names)
    }

    /// Reads the next record into `self.record`; `false` at end of file.
    fn read_record(&mut self) -> Result<bool> {
        let start = self.reader.position().clone();
        self.reader.get_mut().record_start = start.byte();
        let record = self.record.get_or_insert_with(ByteRecord::new);
        let found = self.reader.read_byte_record(record).map_err(|e| {
            let line = start.line();
            match e.into_kind() {
                ::csv::ErrorKind::Io(source) => {
                    if source
                        .get_ref()
                        .is_some_and(|inner| inner.is::<RecordTooLarge>())
                    {
                        Error::Csv {
                            path: self.path.clone(),
                            line,
                            message: format!(
                                "record starting at or after this line exceeds {} bytes; a quote is probably not closed",
                                self.options.max_record_bytes
                            ),
                        }
                    } else {
                        Error::Io {
                            path: self.path.clone(),
                            source,
                        }
                    }
                }
                other => Error::Csv {
                    path: self.path.clone(),
                    line,
                    message: format!("{other:?}"),
                },
            }
        })?;
        if found {
            // The parser's line counter stands after the record's terminator.
            // Walk back over the newlines inside quoted fields and over a
            // `\n` terminator (a `\r` terminator or end of file adds none).
            let end = self.reader.position();
            let (end_line, end_byte) = (end.line(), end.byte());
            let inside = record_newlines(self.record.as_ref());
            let terminator = end_byte.checked_sub(1).is_some_and(|last| self.reader.get_mut().is_newline_at(last));
            self.record_line = end_line.saturating_sub(inside).saturating_sub(u64::from(terminator)).max(1);
        }
        Ok(found)
    }

    /// Turns the record in `self.record` into a row or a reject.
    fn consume_record(&mut self) {
        let record = self.record.take().unwrap_or_default();
        let line = self.record_line;
        let width = self.schema.fields().len();
        if record.len() != width {
            let reason = format!("ragged row: {} fields, header has {width}", record.len());
            self.reject(&record, line, RejectKind::Ragged, reason);
            self.record = Some(record);
            return;
        }
        match StringRecord::from_byte_record(record) {
            Ok(text) => {
                if self.options.encoding != Encoding::Utf8
                    && contains_replacement_char(text.as_byte_record().as_slice())
                {
                    let reason = format!("invalid {} byte sequence", self.options.encoding.name().to_ascii_uppercase());
                    let record = text.into_byte_record();
                    self.reject(&record, line, RejectKind::Encoding, reason);
                    self.record = Some(record);
                    return;
                }
                for (builder, field) in self.builder.columns.iter_mut().zip(text.iter()) {
                    if field.is_empty() {
                        builder.append_null();
                    } else {
                        builder.append_value(field);
                    }
                }
                self.builder.push_row(line);
                self.record = Some(text.into_byte_record());
            }
            Err(e) => {
                let record = e.into_byte_record();
                self.reject(&record, line, RejectKind::Encoding, "invalid UTF-8".to_owned());
                self.record = Some(record);
            }
        }
    }

    fn reject(&mut self, record: &ByteRecord, line: u64, kind: RejectKind, reason: String) {
        let delimiter = char::from(self.options.delimiter);
        let mut raw = String::with_capacity(record.as_slice().len() + record.len());
        for (i, field) in record.iter().enumerate() {
            if i > 0 {
                raw.push(delimiter);
            }
            raw.push_str(&String::from_utf8_lossy(field));
        }
        self.builder.push_reject(line, raw, kind, reason);
    }

    /// Emits the batch built so far, if it holds anything.
    fn flush(&mut self) -> Option<Result<PositionedBatch>> {
        if self.builder.is_empty() { None } else { Some(self.builder.finish(&self.path)) }
    }
}

impl Iterator for CsvReader {
    type Item = Result<PositionedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending_error.take() {
            self.done = true;
            return Some(Err(error));
        }
        if self.done {
            return self.flush();
        }
        while self.builder.records < self.options.batch_size {
            if self.peeked {
                self.peeked = false;
                self.consume_record();
                continue;
            }
            match self.read_record() {
                Ok(true) => self.consume_record(),
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Err(error) => {
                    self.done = true;
                    // Rows read before the failure are still delivered.
                    if self.builder.is_empty() {
                        return Some(Err(error));
                    }
                    self.pending_error = Some(error);
                    break;
                }
            }
        }
        self.flush()
    }
}

/// Number of `\n` bytes inside the fields of `record`.
fn record_newlines(record: Option<&ByteRecord>) -> u64 {
    record.map_or(0, |r| r.as_slice().iter().filter(|&&b| b == b'\n').count() as u64)
}

/// Whether decoded text contains U+FFFD, which encoding_rs substitutes for
/// byte sequences that are not valid in the source encoding.
fn contains_replacement_char(bytes: &[u8]) -> bool {
    const REPLACEMENT: [u8; 3] = [0xEF, 0xBF, 0xBD];
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == REPLACEMENT[0]) {
        rest = &rest[at..];
        if rest.starts_with(&REPLACEMENT) {
            return true;
        }
        rest = &rest[1..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], options: CsvOptions) -> Vec<PositionedBatch> {
        let reader = CsvReader::from_reader("t.csv", Box::new(io::Cursor::new(data.to_vec())), options).unwrap();
        reader.collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn options_from_json() {
        let o: CsvOptions = serde_json::from_str(r#"{"delimiter":"\t","encoding":"GBK"}"#).unwrap();
        assert_eq!(o.delimiter, b'\t');
        assert_eq!(o.quote, b'"');
        assert_eq!(o.encoding, Encoding::Gbk);
        assert!(o.has_header);
        assert_eq!(o.batch_size, 8192);
        let o: CsvOptions = serde_json::from_str(r#"{"delimiter":"\\t","quote":"'"}"#).unwrap();
        assert_eq!(o.delimiter, b'\t');
        assert_eq!(o.quote, b'\'');
        let o: CsvOptions = serde_json::from_str(r#"{"delimiter":"tab"}"#).unwrap();
        assert_eq!(o.delimiter, b'\t');
        assert!(serde_json::from_str::<CsvOptions>(r#"{"delimiter":",,"}"#).is_err());
        assert!(serde_json::from_str::<CsvOptions>(r#"{"delimiter":"，"}"#).is_err());
        assert!(serde_json::from_str::<CsvOptions>(r#"{"delimiter":""}"#).is_err());
        assert!(serde_json::from_str::<CsvOptions>(r#"{"delim":","}"#).is_err());
    }

    #[test]
    fn invalid_options() {
        let bad = [
            CsvOptions { delimiter: b'"', ..CsvOptions::default() },
            CsvOptions { delimiter: b'\n', ..CsvOptions::default() },
            CsvOptions { quote: 0xA1, ..CsvOptions::default() },
            CsvOptions { batch_size: 0, ..CsvOptions::default() },
            CsvOptions { column_names: Some(vec!["a".into()]), ..CsvOptions::default() },
            CsvOptions { has_header: false, column_names: Some(vec![]), ..CsvOptions::default() },
        ];
        for options in bad {
            let r = CsvReader::from_reader("t", Box::new(io::empty()), options.clone());
            assert!(matches!(r, Err(Error::InvalidOptions { .. })), "{options:?} accepted");
        }
    }

    #[test]
    fn empty_input_has_no_columns_and_no_batches() {
        let reader = CsvReader::from_reader("t", Box::new(io::empty()), CsvOptions::default()).unwrap();
        assert_eq!(reader.schema().fields().len(), 0);
        assert_eq!(reader.count(), 0);
    }

    #[test]
    fn header_only() {
        let batches = read_all(b"a,b\n", CsvOptions::default());
        assert!(batches.is_empty());
    }

    #[test]
    fn no_header_names_columns_by_position() {
        let options = CsvOptions { has_header: false, ..CsvOptions::default() };
        let reader = CsvReader::from_reader("t", Box::new(io::Cursor::new(b"1,2\n3,4\n".to_vec())), options).unwrap();
        let names: Vec<_> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["column_1", "column_2"]);
        let batches: Vec<_> = reader.collect::<Result<_>>().unwrap();
        assert_eq!(batches[0].batch.num_rows(), 2);
        assert_eq!(batches[0].lines, [1, 2]);
    }

    #[test]
    fn oversized_record_stops_with_error_after_good_rows() {
        let mut data = b"a,b\n1,2\n3,\"never closed".to_vec();
        data.extend(std::iter::repeat_n(b'x', 300_000));
        let options = CsvOptions { max_record_bytes: 1000, ..CsvOptions::default() };
        let reader = CsvReader::from_reader("t", Box::new(io::Cursor::new(data)), options).unwrap();
        let results: Vec<_> = reader.collect();
        assert_eq!(results.len(), 2);
        let first = results[0].as_ref().unwrap();
        assert_eq!(first.batch.num_rows(), 1);
        match &results[1] {
            Err(Error::Csv { line, message, .. }) => {
                assert_eq!(*line, 3);
                assert!(message.contains("quote"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn replacement_char_detection() {
        assert!(contains_replacement_char("a\u{FFFD}b".as_bytes()));
        assert!(!contains_replacement_char("，。\u{FFFC}".as_bytes()));
        assert!(!contains_replacement_char(b"\xEF\xBF"));
        assert!(!contains_replacement_char(b""));
    }

    #[test]
    fn crlf_and_trailing_blank_lines() {
        let batches = read_all(b"a,b\r\n1,2\r\n\r\n3,4\r\n\r\n", CsvOptions::default());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].batch.num_rows(), 2);
        assert_eq!(batches[0].lines, [2, 4]);
    }

    #[test]
    fn line_numbers_survive_blank_lines_and_line_endings() {
        let cases: [(&[u8], &[u64]); 6] = [
            (b"a\n1\n\n\n2\n", &[2, 5]),
            (b"\n\na\n1\n2", &[4, 5]),
            (b"a\r\n\r\n1\r\n\r\n\r\n2", &[3, 6]),
            (b"a\n\"x\n\n\ny\"\n\n2\n", &[2, 7]),
            (b"a\r\n\"x\r\ny\"\r\n2\r\n", &[2, 4]),
            (b"a\n1\n\"\n\"\n", &[2, 3]),
        ];
        for (data, want) in cases {
            let batches = read_all(data, CsvOptions::default());
            assert_eq!(batches[0].lines, want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn line_numbers_across_read_buffers() {
        // Records long enough that terminators fall at and around the
        // 64 KiB buffer edges.
        let mut data = b"a,b\n".to_vec();
        let mut want = Vec::new();
        let mut line = 2;
        for i in 0..400u64 {
            want.push(line);
            let pad = "x".repeat((i as usize * 997) % 3000);
            if i % 3 == 0 {
                data.extend_from_slice(format!("{i},\"{pad}\n{pad}\"\r\n\n").as_bytes());
                line += 3;
            } else {
                data.extend_from_slice(format!("{i},{pad}\n").as_bytes());
                line += 1;
            }
        }
        let lines: Vec<u64> = read_all(&data, CsvOptions::default()).into_iter().flat_map(|b| b.lines).collect();
        assert_eq!(lines, want);
    }
}
