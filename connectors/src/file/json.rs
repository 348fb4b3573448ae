//! Streaming JSON reader for NDJSON (one object per line) and JSON-array
//! exports, producing all-`Utf8` Arrow batches.
//!
//! * Columns are the top-level keys, in first-seen order, of the first
//!   [`SCHEMA_INFERENCE_RECORDS`] records. A later record with a key outside
//!   that set becomes a reject (`unexpected field X`) rather than silently
//!   losing the value or changing the schema mid-stream.
//! * Values are text: strings as-is (`""` stays an empty string), `null` and
//!   missing keys → NULL, numbers / booleans / nested objects and arrays →
//!   their exact JSON source text (so 18-digit IDs and `12.50` keep every digit).
//!   Each value's JSON type travels with the batch
//!   ([`PositionedBatch::delivered`]), so the validator judges `1` in a
//!   string column, or `"7"` in an integer column, as JSON Schema does.
//! * A record that is not valid UTF-8, not valid JSON, not an object, or has a
//!   key twice becomes a [`RawReject`](super::RawReject) with the raw text.
//! * NDJSON is read line by line; blank lines are not data rows. A JSON array
//!   is streamed element by element with a small bracket-matching scanner, so
//!   the whole array is never held in memory. For JSON arrays, `lines` holds
//!   1-based element ordinals; a reject's reason also names the physical line
//!   where the element starts.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use civlink_standards::validate::Delivered;

use super::{
    DEFAULT_MAX_RECORD_BYTES, Error, FileFormat, PositionedBatch, RejectKind, Result, Utf8BatchBuilder,
    check_batch_size,
};

/// Number of records (good or rejected) read up front to fix the schema.
pub const SCHEMA_INFERENCE_RECORDS: usize = 1000;

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Streams an NDJSON or JSON-array file as [`PositionedBatch`]es of
/// all-`Utf8` columns.
///
/// A file-level failure (I/O error, truncated array, oversized record) is
/// yielded once as `Err` after every row read before it, and the iterator
/// then ends.
pub struct JsonReader {
    path: String,
    source: Source,
    batch_size: usize,
    schema: SchemaRef,
    /// Column index of each key in the schema.
    columns: HashMap<String, usize>,
    /// Records read during schema inference, not yet emitted.
    pending: VecDeque<Parsed>,
    builder: Utf8BatchBuilder,
    /// The source has ended (cleanly or with `deferred_error`).
    exhausted: bool,
    /// Source failure to report after the rows read before it.
    deferred_error: Option<Error>,
    finished: bool,
    /// Reused buffer holding the current record's raw bytes.
    buf: Vec<u8>,
}

/// One record after parsing.
enum Parsed {
    Row {
        line: u64,
        /// (column index, value, its JSON type) for non-null values.
        values: Vec<(usize, String, Delivered)>,
    },
    Reject {
        line: u64,
        raw: String,
        kind: RejectKind,
        reason: String,
    },
}

impl JsonReader {
    /// Opens `path` as `format`, which must be [`FileFormat::Ndjson`] or
    /// [`FileFormat::JsonArray`].
    pub fn open(path: &Path, format: FileFormat, batch_size: usize) -> Result<JsonReader> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        Self::from_reader(&name, Box::new(file), format, batch_size)
    }

    /// Reads JSON from any byte stream; `name` is used in errors. Reads the
    /// first [`SCHEMA_INFERENCE_RECORDS`] records immediately to fix the schema.
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
        format: FileFormat,
        batch_size: usize,
    ) -> Result<JsonReader> {
        check_batch_size(batch_size)?;
        let reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
        let source = match format {
            FileFormat::Ndjson => Source::Lines(LineSource { reader, line: 0 }),
            FileFormat::JsonArray => {
                Source::Array(ArraySource { reader, physical_line: 1, ordinal: 0, state: ArrayState::Start })
            }
            other => {
                return Err(Error::InvalidOptions { message: format!("JsonReader cannot read {other} files") });
            }
        };
        let mut this = JsonReader {
            path: name.to_owned(),
            source,
            batch_size,
            schema: Arc::new(Schema::empty()),
            columns: HashMap::new(),
            pending: VecDeque::new(),
            builder: Utf8BatchBuilder::new(Arc::new(Schema::empty()), 0),
            exhausted: false,
            deferred_error: None,
            finished: false,
            buf: Vec::new(),
        };
        let mut names: Vec<String> = Vec::new();
        while this.pending.len() < SCHEMA_INFERENCE_RECORDS {
            match this.pull(Some(&mut names)) {
                Ok(Some(parsed)) => this.pending.push_back(parsed),
                Ok(None) => {
                    this.exhausted = true;
                    break;
                }
                Err(error) => {
                    this.exhausted = true;
                    this.deferred_error = Some(error);
                    break;
                }
            }
        }
        let fields: Vec<Field> = names.into_iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        this.schema = Arc::new(Schema::new(fields));
        this.builder = Utf8BatchBuilder::new(this.schema.clone(), 0);
        Ok(this)
    }

    /// The schema of every batch: one nullable `Utf8` column per key.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Reads and parses the next record. With `infer`, unknown keys become
    /// new columns (appended to the given name list); without, they make the
    /// record a reject.
    fn pull(&mut self, mut infer: Option<&mut Vec<String>>) -> Result<Option<Parsed>> {
        let Some(item) = self.source.next_item(&mut self.buf, &self.path)? else {
            return Ok(None);
        };
        let reject = |kind: RejectKind, reason: String, buf: &[u8]| Parsed::Reject {
            line: item.line,
            kind,
            raw: String::from_utf8_lossy(buf).into_owned(),
            reason: match item.element_line {
                Some(physical) => format!("{reason} (element starts at line {physical})"),
                None => reason,
            },
        };
        if item.truncated {
            return Ok(Some(reject(
                RejectKind::Malformed,
                "truncated element: the file ends before the JSON array is closed".to_owned(),
                &self.buf,
            )));
        }
        let fields = match split_object(&self.buf) {
            Ok(fields) => fields,
            Err((kind, reason)) => return Ok(Some(reject(kind, reason, &self.buf))),
        };
        let mut values = Vec::with_capacity(fields.len());
        let mut unexpected: Vec<&str> = Vec::new();
        for (key, value) in &fields {
            let index = match self.columns.get(key.as_ref()) {
                Some(&index) => index,
                None => match infer.as_deref_mut() {
                    Some(names) => {
                        let index = names.len();
                        names.push(key.clone().into_owned());
                        self.columns.insert(key.clone().into_owned(), index);
                        index
                    }
                    None => {
                        unexpected.push(key.as_ref());
                        continue;
                    }
                },
            };
            if let Some((value, delivered)) = value {
                values.push((index, value.clone().into_owned(), *delivered));
            }
        }
        if !unexpected.is_empty() {
            let reason = format!(
                "unexpected field{} {} (the schema was fixed from the first {} records)",
                if unexpected.len() > 1 { "s" } else { "" },
                unexpected.join(", "),
                SCHEMA_INFERENCE_RECORDS
            );
            return Ok(Some(reject(RejectKind::Malformed, reason, &self.buf)));
        }
        values.sort_unstable_by_key(|(index, _, _)| *index);
        Ok(Some(Parsed::Row { line: item.line, values }))
    }

    fn append(&mut self, parsed: Parsed) {
        match parsed {
            Parsed::Row { line, values } => {
                let mut values = values.into_iter().peekable();
                let types = self.builder.types.get_or_insert_with(Vec::new);
                types.resize_with(self.builder.columns.len(), Vec::new);
                for (index, (builder, types)) in self.builder.columns.iter_mut().zip(types.iter_mut()).enumerate() {
                    match values.next_if(|(i, _, _)| *i == index) {
                        Some((_, _, Delivered::Null)) => {
                            builder.append_null();
                            types.push(Delivered::Null);
                        }
                        Some((_, value, delivered)) => {
                            builder.append_value(value);
                            types.push(delivered);
                        }
                        None => {
                            builder.append_null();
                            types.push(Delivered::Text);
                        }
                    }
                }
                self.builder.push_row(line);
            }
            Parsed::Reject { line, raw, kind, reason } => self.builder.push_reject(line, raw, kind, reason),
        }
    }
}

impl Iterator for JsonReader {
    type Item = Result<PositionedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        while self.builder.records < self.batch_size {
            let parsed = match self.pending.pop_front() {
                Some(parsed) => parsed,
                None if self.exhausted => break,
                None => match self.pull(None) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) => {
                        self.exhausted = true;
                        break;
                    }
                    Err(error) => {
                        self.exhausted = true;
                        self.deferred_error = Some(error);
                        break;
                    }
                },
            };
            self.append(parsed);
        }
        if !self.builder.is_empty() {
            return Some(self.builder.finish(&self.path));
        }
        self.finished = true;
        self.deferred_error.take().map(Err)
    }
}

/// Position of one raw record in the file.
struct Item {
    /// NDJSON: physical line; JSON array: 1-based element ordinal.
    line: u64,
    /// JSON array only: physical line where the element starts.
    element_line: Option<u64>,
    /// The file ended inside this element.
    truncated: bool,
}

enum Source {
    Lines(LineSource),
    Array(ArraySource),
}

impl Source {
    /// Reads the next record's raw bytes into `buf`.
    fn next_item(&mut self, buf: &mut Vec<u8>, path: &str) -> Result<Option<Item>> {
        match self {
            Source::Lines(lines) => lines.next_item(buf, path),
            Source::Array(array) => array.next_item(buf, path),
        }
    }
}

struct LineSource {
    reader: BufReader<Box<dyn Read + Send>>,
    /// Lines consumed so far.
    line: u64,
}

impl LineSource {
    fn next_item(&mut self, buf: &mut Vec<u8>, path: &str) -> Result<Option<Item>> {
        loop {
            buf.clear();
            // `take` bounds the line so a file without newlines cannot fill memory.
            let n = (&mut self.reader)
                .take(DEFAULT_MAX_RECORD_BYTES as u64 + 1)
                .read_until(b'\n', buf)
                .map_err(|source| Error::Io { path: path.to_owned(), source })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            } else if buf.len() > DEFAULT_MAX_RECORD_BYTES {
                return Err(Error::Json {
                    path: path.to_owned(),
                    line: self.line,
                    message: format!("line is longer than {DEFAULT_MAX_RECORD_BYTES} bytes"),
                });
            }
            if self.line == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Item { line: self.line, element_line: None, truncated: false }));
        }
    }
}

enum ArrayState {
    /// Before the opening `[`.
    Start,
    /// Inside the array, before an element.
    InArray,
    /// After the closing `]`: only whitespace may follow.
    Closed,
    /// The array ended (or failed and the error was reported).
    Done,
    /// Report this error on the next call (the file ended inside an element).
    Failed(Error),
}

struct ArraySource {
    reader: BufReader<Box<dyn Read + Send>>,
    /// 1-based line of the next byte to be read.
    physical_line: u64,
    /// Elements returned so far.
    ordinal: u64,
    state: ArrayState,
}

impl ArraySource {
    fn next_item(&mut self, buf: &mut Vec<u8>, path: &str) -> Result<Option<Item>> {
        loop {
            match std::mem::replace(&mut self.state, ArrayState::Done) {
                ArrayState::Done => return Ok(None),
                ArrayState::Failed(error) => return Err(error),
                ArrayState::Start => {
                    self.skip_bom(path)?;
                    match self.next_non_whitespace(path)? {
                        None => return Ok(None), // an empty file holds no rows
                        Some(b'[') => self.state = ArrayState::InArray,
                        Some(other) => {
                            return Err(self.error(
                                path,
                                format!(
                                    "expected '[' at the start of a JSON array, found {:?}; is this NDJSON?",
                                    char::from(other)
                                ),
                            ));
                        }
                    }
                }
                ArrayState::Closed => {
                    return match self.next_non_whitespace(path)? {
                        None => Ok(None),
                        Some(other) => Err(self.error(
                            path,
                            format!("unexpected {:?} after the end of the JSON array", char::from(other)),
                        )),
                    };
                }
                ArrayState::InArray => {
                    let (terminator, element_line) = self.read_element(buf, path)?;
                    self.state = match terminator {
                        Some(b',') => ArrayState::InArray,
                        Some(_) => ArrayState::Closed,
                        None => ArrayState::Failed(
                            self.error(path, "unexpected end of file: the JSON array is not closed".to_owned()),
                        ),
                    };
                    // Empty elements (`[]`, a trailing comma, `,,`) hold no
                    // data and are not rows.
                    if let Some(element_line) = element_line {
                        self.ordinal += 1;
                        return Ok(Some(Item {
                            line: self.ordinal,
                            element_line: Some(element_line),
                            truncated: terminator.is_none(),
                        }));
                    }
                }
            }
        }
    }

    fn error(&self, path: &str, message: String) -> Error {
        Error::Json { path: path.to_owned(), line: self.physical_line, message }
    }

    fn io_error(path: &str, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }

    fn skip_bom(&mut self, path: &str) -> Result<()> {
        let head = self.reader.fill_buf().map_err(|e| Self::io_error(path, e))?;
        if head.starts_with(b"\xEF\xBB\xBF") {
            self.reader.consume(3);
        }
        Ok(())
    }

    /// Consumes and returns the next byte that is not JSON whitespace.
    fn next_non_whitespace(&mut self, path: &str) -> Result<Option<u8>> {
        loop {
            let chunk = self.reader.fill_buf().map_err(|e| Self::io_error(path, e))?;
            let Some(&byte) = chunk.first() else {
                return Ok(None);
            };
            self.reader.consume(1);
            match byte {
                b'\n' => self.physical_line += 1,
                b' ' | b'\t' | b'\r' => {}
                other => return Ok(Some(other)),
            }
        }
    }

    /// Collects the raw bytes of the next element into `buf`, up to (not
    /// including) the `,` or `]` that ends it at nesting depth 0. Returns
    /// that terminator (`None` at end of file) and the physical line where
    /// the element starts (`None` if the element is empty).
    fn read_element(&mut self, buf: &mut Vec<u8>, path: &str) -> Result<(Option<u8>, Option<u64>)> {
        buf.clear();
        let mut start_line = None;
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let chunk = self.reader.fill_buf().map_err(|e| Self::io_error(path, e))?;
            if chunk.is_empty() {
                return Ok((None, start_line));
            }
            let mut used = 0;
            let mut terminator = None;
            for &byte in chunk {
                used += 1;
                if byte == b'\n' {
                    self.physical_line += 1;
                }
                if start_line.is_none() {
                    if matches!(byte, b' ' | b'\t' | b'\r' | b'\n') {
                        continue;
                    }
                    start_line = Some(self.physical_line);
                }
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                    }
                } else {
                    match byte {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b',' | b']' if depth == 0 => {
                            terminator = Some(byte);
                            break;
                        }
                        b'}' | b']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                buf.push(byte);
            }
            // A terminator that was the element's first byte means it is empty.
            if terminator.is_some() && buf.is_empty() {
                start_line = None;
            }
            self.reader.consume(used);
            if terminator.is_some() {
                // Trailing whitespace before the terminator is not part of the element.
                while buf.last().is_some_and(u8::is_ascii_whitespace) {
                    buf.pop();
                }
                return Ok((terminator, start_line));
            }
            if buf.len() > DEFAULT_MAX_RECORD_BYTES {
                return Err(Error::Json {
                    path: path.to_owned(),
                    line: start_line.unwrap_or(self.physical_line),
                    message: format!(
                        "array element is larger than {DEFAULT_MAX_RECORD_BYTES} bytes; a bracket or quote is probably not closed"
                    ),
                });
            }
        }
    }
}

type Fields<'a> = Vec<(Cow<'a, str>, Option<(Cow<'a, str>, Delivered)>)>;

/// Splits one JSON object into (key, value text and JSON type) pairs, in
/// source order (`null` is an empty text of type [`Delivered::Null`]).
/// `Err` carries the reject reason.
fn split_object(bytes: &[u8]) -> Result<Fields<'_>, (RejectKind, String)> {
    let text = std::str::from_utf8(bytes).map_err(|_| (RejectKind::Encoding, "invalid UTF-8".to_owned()))?;
    split_text(text).map_err(|reason| (RejectKind::Malformed, reason))
}

fn split_text(text: &str) -> Result<Fields<'_>, String> {
    // Full validation first, so the scanner below only ever sees valid JSON.
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    match b.get(i) {
        Some(b'{') => {}
        Some(b'[') => return Err("not a JSON object (found an array)".to_owned()),
        Some(b'"') => return Err("not a JSON object (found a string)".to_owned()),
        Some(b'n') => return Err("not a JSON object (found null)".to_owned()),
        Some(b't' | b'f') => return Err("not a JSON object (found a boolean)".to_owned()),
        _ => return Err("not a JSON object (found a number)".to_owned()),
    }
    let malformed = || "malformed JSON object".to_owned();
    let mut fields: Fields<'_> = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(fields);
    }
    loop {
        let key_end = scan_string(b, i).ok_or_else(malformed)?;
        let key = decode_string(text, i, key_end).ok_or_else(malformed)?;
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(format!("duplicate field {key}"));
        }
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(malformed());
        }
        i = skip_ws(b, i + 1);
        let value_end = scan_value(b, i).ok_or_else(malformed)?;
        let literal = text.get(i..value_end).ok_or_else(malformed)?;
        let value = match Delivered::of_json(literal) {
            Delivered::String => Some((decode_string(text, i, value_end).ok_or_else(malformed)?, Delivered::String)),
            // Present but without a value: NULL, marked so the validator can tell it from a missing key.
            Delivered::Null => Some((Cow::Borrowed(""), Delivered::Null)),
            delivered => Some((Cow::Borrowed(literal), delivered)),
        };
        fields.push((key, value));
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(fields),
            _ => return Err(malformed()),
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// With `b[start]` a `"`, returns the index just past the closing quote.
fn scan_string(b: &[u8], start: usize) -> Option<usize> {
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let mut i = start + 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Returns the index just past the value starting at `b[start]`.
fn scan_value(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => scan_string(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = scan_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = start;
            while b.get(i).is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')) {
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

/// Decodes the JSON string literal `text[start..end]` (quotes included),
/// borrowing when it has no escapes.
fn decode_string(text: &str, start: usize, end: usize) -> Option<Cow<'_, str>> {
    let literal = text.get(start..end)?;
    let inner = literal.get(1..literal.len().checked_sub(1)?)?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(literal).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Vec<(String, Option<String>)> {
        split_object(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.filter(|(_, d)| *d != Delivered::Null).map(|(v, _)| v.into_owned())))
            .collect()
    }

    #[test]
    fn split_keeps_source_text() {
        let got = fields(
            r#" { "id" : 110101199003071234 , "amt": 12.50, "ok": true, "n": null,
                 "s": "a\"b\u4e2d", "o": {"x": [1, "]}"]}, "a": [ ], "e": "" } "#,
        );
        let want: Vec<(String, Option<String>)> = vec![
            ("id".into(), Some("110101199003071234".into())),
            ("amt".into(), Some("12.50".into())),
            ("ok".into(), Some("true".into())),
            ("n".into(), None),
            ("s".into(), Some("a\"b中".into())),
            ("o".into(), Some(r#"{"x": [1, "]}"]}"#.into())),
            ("a".into(), Some("[ ]".into())),
            ("e".into(), Some(String::new())),
        ];
        assert_eq!(got, want);
        assert_eq!(fields("{}"), vec![]);
        assert_eq!(fields(r#"{"k\u0041":1e5}"#), vec![("kA".into(), Some("1e5".into()))]);
    }

    #[test]
    fn split_rejects() {
        let reason = |s: &[u8]| split_object(s).unwrap_err().1;
        let kind = |s: &[u8]| split_object(s).unwrap_err().0;
        assert_eq!(kind(b"{\"a\":\xFF}"), RejectKind::Encoding);
        assert_eq!(kind(b"[1]"), RejectKind::Malformed);
        assert_eq!(reason(b"[1]"), "not a JSON object (found an array)");
        assert_eq!(reason(b"42"), "not a JSON object (found a number)");
        assert_eq!(reason(b"\"x\""), "not a JSON object (found a string)");
        assert_eq!(reason(b"null"), "not a JSON object (found null)");
        assert_eq!(reason(b"{\"a\":\xFF}"), "invalid UTF-8");
        assert!(reason(b"{\"a\":1,}").starts_with("invalid JSON"));
        assert!(reason(b"{\"a\":1} x").starts_with("invalid JSON"));
        assert_eq!(reason(br#"{"a":1,"a":2}"#), "duplicate field a");
        let deep = "[".repeat(100_000);
        assert!(reason(format!("{{\"a\":{deep}").as_bytes()).starts_with("invalid JSON"));
    }

    #[test]
    fn scanners_never_panic_on_garbage() {
        for s in ["", "\"", "\"\\", "{", "[", "]", "}", "\"abc", "{\"a\"", "-", "\u{FEFF}"] {
            let b = s.as_bytes();
            let _ = scan_string(b, 0);
            let _ = scan_value(b, 0);
            let _ = decode_string(s, 0, s.len());
            let _ = split_object(b);
        }
    }

    #[test]
    fn wrong_format_is_rejected() {
        let r = JsonReader::from_reader("t", Box::new(std::io::empty()), FileFormat::Csv, 10);
        assert!(matches!(r, Err(Error::InvalidOptions { .. })));
        let r = JsonReader::from_reader("t", Box::new(std::io::empty()), FileFormat::Ndjson, 0);
        assert!(matches!(r, Err(Error::InvalidOptions { .. })));
    }

    #[test]
    fn array_edge_cases() {
        let read = |s: &str| {
            JsonReader::from_reader(
                "t",
                Box::new(std::io::Cursor::new(s.as_bytes().to_vec())),
                FileFormat::JsonArray,
                100,
            )
            .unwrap()
            .collect::<Vec<_>>()
        };
        assert!(read("").is_empty());
        assert!(read(" [ ] ").is_empty());
        let ok = read("\u{FEFF}[{\"a\":1},]");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].as_ref().unwrap().batch.num_rows(), 1);
        let bad_start = read("{\"a\":1}");
        assert!(matches!(bad_start[0], Err(Error::Json { .. })));
        let trailing = read("[{\"a\":1}] x");
        assert_eq!(trailing.len(), 2);
        assert!(matches!(trailing[1], Err(Error::Json { .. })));
        // Scalars and junk inside the array are rejects, not errors.
        let mixed = read("[1, \"s\", {\"a\":\"]\"}, {\"a\": }, null]");
        let batch = mixed[0].as_ref().unwrap();
        assert_eq!(batch.batch.num_rows(), 1);
        assert_eq!(batch.rejects.len(), 4);
        assert_eq!(batch.rejects[2].raw, "{\"a\": }");
        assert_eq!(batch.lines, [3]);
    }

    #[test]
    fn truncated_array_yields_reject_then_error() {
        let data = "[\n{\"a\":\"1\"},\n{\"a\":\"2\"";
        let results: Vec<_> = JsonReader::from_reader(
            "t",
            Box::new(std::io::Cursor::new(data.as_bytes().to_vec())),
            FileFormat::JsonArray,
            100,
        )
        .unwrap()
        .collect();
        assert_eq!(results.len(), 2);
        let batch = results[0].as_ref().unwrap();
        assert_eq!(batch.batch.num_rows(), 1);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.rejects[0].row_index, 1);
        assert_eq!(batch.rejects[0].raw, "{\"a\":\"2\"");
        assert!(batch.rejects[0].reason.contains("line 3"), "{}", batch.rejects[0].reason);
        assert!(matches!(results[1], Err(Error::Json { .. })));
    }
}
