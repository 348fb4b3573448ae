//! Reading source columns as the standard's Arrow types, by JSON Schema's
//! rules on the values as delivered.
//!
//! * **JSON values** (from NDJSON, JSON arrays, HTTP APIs) keep their JSON
//!   type ([`Delivered`]): `1` is not a string, `"7"` is not an integer,
//!   `7.0` is an integer, `0` is not a boolean. A value of the wrong JSON
//!   type is a `type` violation naming what was delivered.
//! * **Text** (CSV and spreadsheet cells, and values a job's mapping
//!   produced) has no JSON type and is read by these rules, the same for
//!   every text source:
//!   - an empty cell is an absent value (NULL), in every column;
//!   - `string`: the text as it is, spaces included;
//!   - `integer`: a JSON number literal whose value has no fraction (`7`,
//!     `-7`, `7.0`, `7e2`), within 64 bits; `+7`, `007`, ` 7`, `1,234` are not;
//!   - `number`: a JSON number literal (`-1.5`, `2e-3`), finite;
//!   - `boolean`: `true` or `false`, exactly;
//!   - `date`: RFC 3339 `full-date`, `YYYY-MM-DD`, zero-padded;
//!   - `date-time`: RFC 3339 `date-time`: `2024-01-31T08:00:00+08:00`,
//!     `…T00:00:00.5Z`; no space, no missing offset, a leap second only at
//!     23:59:60 UTC.
//!
//!   Anything else (`20230328`, `2023年3月28日`, `是`, ` 7`) is what a job
//!   declares a normaliser for in its mapping, never read implicitly.
//! * A value that cannot be read becomes NULL in the typed batch and a
//!   violation of its row. It is never a crash, and the row is never dropped
//!   here: the caller decides what to do with invalid rows.
//! * Typed columns (Parquet, databases) are cast, and a cast that would
//!   change a value (1.5 → 1) is a violation like an unreadable value.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringArray,
    TimestampMicrosecondBuilder, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::NaiveDate;

use super::Violation;
use super::delivered::Delivered;
use crate::mask;
use crate::standard::{Property, ValueKind};

const EPOCH: Option<NaiveDate> = NaiveDate::from_ymd_opt(1970, 1, 1);

/// Read `column` as `property`'s type. Unreadable values become NULL and push a violation.
pub(crate) fn coerce_column(
    property: &Property,
    column: Option<&ArrayRef>,
    rows: usize,
    delivered: Option<&[Delivered]>,
    violations: &mut Vec<Violation>,
) -> ArrayRef {
    let target = property.kind.data_type();
    let Some(column) = column else {
        return new_null_array(&target, rows);
    };
    // JSON null is a value of its own, and only a type that admits it takes it.
    if let Some(delivered) = delivered
        && !property.admits_null
    {
        for (row, _) in delivered.iter().enumerate().filter(|(_, d)| **d == Delivered::Null) {
            violations.push(wrong_json_type(property, "null", Delivered::Null, row));
        }
    }
    // A text column delivered from JSON still has its values' JSON types to judge.
    if column.data_type() == &target && (delivered.is_none() || target != DataType::Utf8) {
        return Arc::clone(column);
    }
    match column.data_type() {
        DataType::Utf8 => parse_text(property, column.as_string::<i32>(), delivered, violations),
        DataType::LargeUtf8 | DataType::Utf8View => {
            match cast_with_options(column, &DataType::Utf8, &CastOptions::default()) {
                Ok(text) => parse_text(property, text.as_string::<i32>(), delivered, violations),
                Err(e) => unreadable_column(property, column, rows, &e.to_string(), violations),
            }
        }
        _ => cast_typed(property, column, &target, violations),
    }
}

/// Every non-null value of a column that cannot be cast at all is a violation.
fn unreadable_column(
    property: &Property,
    column: &ArrayRef,
    rows: usize,
    reason: &str,
    violations: &mut Vec<Violation>,
) -> ArrayRef {
    for row in 0..rows {
        if column.is_valid(row) {
            violations.push(Violation::new(
                row,
                &property.name,
                type_keyword(property.kind),
                format!("cannot read a {} value as {}: {reason}", column.data_type(), property.kind.noun()),
            ));
        }
    }
    new_null_array(&property.kind.data_type(), rows)
}

fn cast_typed(property: &Property, column: &ArrayRef, target: &DataType, violations: &mut Vec<Violation>) -> ArrayRef {
    let options = CastOptions { safe: true, ..Default::default() };
    match cast_with_options(column, target, &options) {
        Ok(cast) => {
            // A safe cast turns what it cannot convert into NULL, but it also changes values it
            // can convert (1.5 → 1, 5 → true, 2^53 + 1 → 2^53): casting back tells. Text is
            // exempt: every value has a faithful text form.
            let changed = if *target == DataType::Utf8 {
                None
            } else {
                cast_with_options(&cast, column.data_type(), &options)
                    .ok()
                    .and_then(|back| arrow::compute::kernels::cmp::distinct(column, &back).ok())
            };
            let mut lost = vec![false; column.len()];
            for (row, lost) in lost.iter_mut().enumerate() {
                if column.is_valid(row) && (cast.is_null(row) || changed.as_ref().is_some_and(|c| c.value(row))) {
                    let shown = arrow::util::display::array_value_to_string(column, row).unwrap_or_default();
                    violations.push(unreadable(property, &shown, row));
                    *lost = true;
                }
            }
            // A changed value is no reading of the source: it becomes NULL like an unreadable one.
            if lost.iter().any(|l| *l) {
                match arrow::compute::nullif(&cast, &BooleanArray::from(lost)) {
                    Ok(nulled) => nulled,
                    Err(e) => unreadable_column(property, column, column.len(), &e.to_string(), violations),
                }
            } else {
                cast
            }
        }
        Err(e) => unreadable_column(property, column, column.len(), &e.to_string(), violations),
    }
}

fn type_keyword(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Date | ValueKind::DateTime => "format",
        _ => "type",
    }
}

fn unreadable(property: &Property, raw: &str, row: usize) -> Violation {
    let shown = if property.sensitivity.masked_by_default() { mask::for_log(raw) } else { raw.to_owned() };
    // A spreadsheet's date cell typed as a plain number shows as its serial day.
    let serial_day =
        property.kind == ValueKind::Date && (1..=7).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
    let hint = if serial_day {
        " (a plain number: if it is an Excel serial day, the job can declare normalize = \"excel_serial_date\")"
    } else {
        ""
    };
    Violation::new(
        row,
        &property.name,
        type_keyword(property.kind),
        format!("cannot read \"{shown}\" as {}{hint}", property.kind.noun()),
    )
}

fn parse_text(
    property: &Property,
    text: &StringArray,
    delivered: Option<&[Delivered]>,
    violations: &mut Vec<Violation>,
) -> ArrayRef {
    let rows = text.len();
    let kind_of = |row: usize| delivered.and_then(|d| d.get(row)).copied().unwrap_or(Delivered::Text);
    macro_rules! parse_into {
        ($builder:expr, $parse:expr) => {{
            let mut builder = $builder;
            for row in 0..rows {
                if text.is_null(row) {
                    builder.append_null();
                    continue;
                }
                let raw = text.value(row);
                let kind = kind_of(row);
                // An empty cell is an absent value; an empty JSON string is a string.
                if raw.is_empty() && kind == Delivered::Text {
                    builder.append_null();
                    continue;
                }
                if !admits(property.kind, kind) {
                    builder.append_null();
                    violations.push(wrong_json_type(property, raw, kind, row));
                    continue;
                }
                match $parse(raw) {
                    Some(value) => builder.append_value(value),
                    None => {
                        builder.append_null();
                        violations.push(unreadable(property, raw, row));
                    }
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    match property.kind {
        ValueKind::String => {
            let wrong: Vec<usize> = match delivered {
                Some(d) => (0..rows).filter(|&row| text.is_valid(row) && !admits(ValueKind::String, d[row])).collect(),
                None => Vec::new(),
            };
            if wrong.is_empty() {
                return Arc::new(text.clone());
            }
            let mut mismatched = vec![false; rows];
            for &row in &wrong {
                violations.push(wrong_json_type(property, text.value(row), kind_of(row), row));
                mismatched[row] = true;
            }
            match arrow::compute::nullif(text, &BooleanArray::from(mismatched)) {
                Ok(nulled) => nulled,
                Err(_) => new_null_array(&DataType::Utf8, rows),
            }
        }
        ValueKind::Integer => parse_into!(Int64Builder::with_capacity(rows), parse_integer),
        ValueKind::Number => parse_into!(Float64Builder::with_capacity(rows), parse_number),
        ValueKind::Boolean => parse_into!(BooleanBuilder::with_capacity(rows), parse_boolean),
        ValueKind::Date => parse_into!(Date32Builder::with_capacity(rows), parse_date),
        ValueKind::DateTime => parse_into!(
            TimestampMicrosecondBuilder::with_capacity(rows)
                .with_data_type(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
            parse_date_time
        ),
    }
}

/// Whether a value delivered as `delivered` can be a `kind` value at all
/// (JSON Schema's `type`): text is read by the text rules whatever the column.
fn admits(kind: ValueKind, delivered: Delivered) -> bool {
    match delivered {
        Delivered::Text | Delivered::TruncatedNumber => true,
        Delivered::String => matches!(kind, ValueKind::String | ValueKind::Date | ValueKind::DateTime),
        Delivered::Integer | Delivered::Number => matches!(kind, ValueKind::Integer | ValueKind::Number),
        Delivered::Boolean => kind == ValueKind::Boolean,
        Delivered::Structured | Delivered::Null => false,
    }
}

fn wrong_json_type(property: &Property, raw: &str, delivered: Delivered, row: usize) -> Violation {
    let shown = if property.sensitivity.masked_by_default() { mask::for_log(raw) } else { raw.to_owned() };
    let expected = property.kind.json_type();
    Violation::new(
        row,
        &property.name,
        "type",
        format!("delivered a JSON {} ({shown}), expected {expected}", delivered.noun()),
    )
}

/// RFC 8259's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// An integer as JSON Schema counts one: a JSON number whose value has no
/// fraction (`7`, `-7`, `7.0`, `7e2`), within 64 bits. A literal with a
/// fraction or an exponent is read as a double first, as JSON Schema
/// validators read it.
pub fn parse_integer(text: &str) -> Option<i64> {
    if !is_json_number(text) {
        return None;
    }
    if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return text.parse().ok();
    }
    let value = text.parse::<f64>().ok().filter(|v| v.is_finite() && v.fract() == 0.0)?;
    // 2^63 is exactly representable; every double below it in magnitude fits an i64.
    (value.abs() < 9_223_372_036_854_775_808.0).then_some(value as i64)
}

/// A JSON number, finite as a double.
pub fn parse_number(text: &str) -> Option<f64> {
    if !is_json_number(text) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// JSON's two literals. Other spellings (是/否, 1/0, Y/N) are a job's
/// declared normalisation, not the standard's form.
pub fn parse_boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match *b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

fn full_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = b[..4].iter().fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
    NaiveDate::from_ymd_opt(year, two_digits(&b[5..7])?, two_digits(&b[8..10])?)
}

/// RFC 3339 `full-date` exactly (`YYYY-MM-DD`, zero-padded, a real day), as
/// days since 1970-01-01. Other spellings (`20230328`, `2023年3月28日`) are a
/// job's declared normalisation.
pub fn parse_date(text: &str) -> Option<i32> {
    let date = full_date(text.as_bytes())?;
    i32::try_from(date.signed_duration_since(EPOCH?).num_days()).ok()
}

/// RFC 3339 `date-time` exactly (`T` or `t` between date and time, seconds,
/// an optional fraction, `Z` or a numeric offset; a leap second only where
/// it is 23:59:60 in UTC), as UTC microseconds. A leap second reads as the
/// first instant of the next day; digits past microseconds are dropped.
pub fn parse_date_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let t = b.iter().position(|c| matches!(c, b'T' | b't'))?;
    let date = full_date(&b[..t])?;
    let time = &b[t + 1..];
    if time.len() < 9 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (two_digits(&time[..2])?, two_digits(&time[3..5])?, two_digits(&time[6..8])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 8;
    let mut micros = 0i64;
    if time.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while time.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 6 {
                micros = micros * 10 + i64::from(time[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset_minutes: i64 = match time.get(i)? {
        b'Z' | b'z' if i + 1 == time.len() => 0,
        sign @ (b'+' | b'-') if time.len() - i == 6 && time[i + 3] == b':' => {
            let (hh, mm) = (two_digits(&time[i + 1..i + 3])?, two_digits(&time[i + 4..i + 6])?);
            if hh > 23 || mm > 59 {
                return None;
            }
            let minutes = i64::from(hh * 60 + mm);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let local_minutes = i64::from(hour * 60 + minute);
    if second == 60 && (local_minutes - offset_minutes).rem_euclid(24 * 60) != 23 * 60 + 59 {
        return None;
    }
    let days = date.signed_duration_since(EPOCH?).num_days();
    let seconds = days * 86_400 + (local_minutes - offset_minutes) * 60 + i64::from(second);
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_full_dates_only() {
        let expected = parse_date("2024-01-31");
        assert!(expected.is_some());
        for other in
            ["2024/01/31", "20240131", "2024年1月31日", "2023-3-28", " 2023-03-28", "2023-03-28 ", "", "2021-02-30"]
        {
            assert_eq!(parse_date(other), None, "{other:?}");
        }
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("0000-01-01").is_some());
    }

    #[test]
    fn date_times_are_rfc3339_only() {
        let utc = parse_date_time("2024-01-31T00:00:00Z").unwrap();
        assert_eq!(parse_date_time("2024-01-31T08:00:00+08:00"), Some(utc));
        assert_eq!(parse_date_time("2024-01-31t08:00:00+08:00"), Some(utc));
        assert_eq!(parse_date_time("2024-01-30T16:00:00-08:00"), Some(utc));
        assert_eq!(parse_date_time("2024-01-31T00:00:00.5z"), Some(utc + 500_000));
        assert_eq!(parse_date_time("2024-01-31T00:00:00.1234567Z"), Some(utc + 123_456));
        for other in [
            "2024-01-31 08:00:00",
            "2024-01-31T08:00:00",
            "2024-01-31T08:00:00Z\n",
            "2024-01-31T08:00Z",
            "2024-01-31T24:00:00Z",
            "2024-01-31T08:00:00.Z",
            "2024-01-31T08:00:00+0800",
            "2024-01-31T12:59:60Z",
            "2024-01-31T23:58:60Z",
            "2024-01-31T23:59:60+01:00",
        ] {
            assert_eq!(parse_date_time(other), None, "{other:?}");
        }
        // A leap second where it is 23:59:60 in UTC, and its next instant.
        let midnight = parse_date_time("2017-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_date_time("2016-12-31T23:59:60Z"), Some(midnight));
        assert_eq!(parse_date_time("2017-01-01T07:59:60+08:00"), Some(midnight));
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        assert_eq!(parse_integer("12"), Some(12));
        assert_eq!(parse_integer("-5"), Some(-5));
        assert_eq!(parse_integer("7.0"), Some(7));
        assert_eq!(parse_integer("7e2"), Some(700));
        assert_eq!(parse_integer("9223372036854775807"), Some(i64::MAX));
        for other in ["+12", "1.5", "+-5", "007", " 7", "7 ", "1,234", "", "-", "1e", "9223372036854775808", "1e19"] {
            assert_eq!(parse_integer(other), None, "{other:?}");
        }
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("-0.5"), Some(-0.5));
        for other in ["NaN", "inf", ".5", "5.", "+1", "1e400", "0x10"] {
            assert_eq!(parse_number(other), None, "{other:?}");
        }
        assert_eq!(parse_boolean("true"), Some(true));
        assert_eq!(parse_boolean("false"), Some(false));
        for other in ["是", "True", "1", "yes", " true"] {
            assert_eq!(parse_boolean(other), None, "{other:?}");
        }
    }

    #[test]
    fn json_types_are_judged_as_json_schema_judges_them() {
        let property = |kind| Property {
            name: "v".into(),
            title: "v".into(),
            description: None,
            kind,
            required: false,
            admits_null: true,
            format: None,
            code_table: None,
            sensitivity: Default::default(),
            pii: false,
            mask: Default::default(),
            pointer: "/properties/v".into(),
            schema: Default::default(),
        };
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("1"), Some("7"), Some("true"), Some("1.0"), None]));
        let delivered = [Delivered::Integer, Delivered::String, Delivered::Boolean, Delivered::Number, Delivered::Text];
        let valid = |kind| {
            let mut violations = Vec::new();
            coerce_column(&property(kind), Some(&text), 5, Some(&delivered), &mut violations);
            let bad: Vec<usize> = violations.iter().map(|v| v.row).collect();
            (0..4).map(|row| !bad.contains(&row)).collect::<Vec<_>>()
        };
        assert_eq!(valid(ValueKind::String), [false, true, false, false]);
        assert_eq!(valid(ValueKind::Integer), [true, false, false, true]);
        assert_eq!(valid(ValueKind::Number), [true, false, false, true]);
        assert_eq!(valid(ValueKind::Boolean), [false, false, true, false]);
        let mut violations = Vec::new();
        coerce_column(&property(ValueKind::String), Some(&text), 5, Some(&delivered), &mut violations);
        assert!(violations[0].message.contains("delivered a JSON number"), "{}", violations[0].message);
    }
}
