//! Reading source columns as the standard's Arrow types.
//!
//! Sources hand over text (CSV, JSON) or their own types (Parquet, databases).
//! Each column is read as its property's type; a value that cannot be read
//! ("abc" in an integer column, 2021-02-30 in a date column) becomes NULL in
//! the typed batch and a violation of its row. It is never a crash, and the
//! row is never dropped here: the caller decides what to do with invalid rows.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringArray,
    TimestampMicrosecondBuilder, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

use super::Violation;
use crate::mask;
use crate::standard::{Property, ValueKind};

const EPOCH: Option<NaiveDate> = NaiveDate::from_ymd_opt(1970, 1, 1);

/// China Standard Time: a date-time without an offset is read as local time in China.
fn china_offset() -> Option<FixedOffset> {
    FixedOffset::east_opt(8 * 3600)
}

/// Read `column` as `property`'s type. Unreadable values become NULL and push a violation.
pub(crate) fn coerce_column(
    property: &Property,
    column: Option<&ArrayRef>,
    rows: usize,
    violations: &mut Vec<Violation>,
) -> ArrayRef {
    let target = property.kind.data_type();
    let Some(column) = column else {
        return new_null_array(&target, rows);
    };
    if column.data_type() == &target {
        return Arc::clone(column);
    }
    match column.data_type() {
        DataType::Utf8 => parse_text(property, column.as_string::<i32>(), violations),
        DataType::LargeUtf8 | DataType::Utf8View => {
            match cast_with_options(column, &DataType::Utf8, &CastOptions::default()) {
                Ok(text) => parse_text(property, text.as_string::<i32>(), violations),
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
    Violation::new(
        row,
        &property.name,
        type_keyword(property.kind),
        format!("cannot read \"{shown}\" as {}", property.kind.noun()),
    )
}

fn parse_text(property: &Property, text: &StringArray, violations: &mut Vec<Violation>) -> ArrayRef {
    let rows = text.len();
    macro_rules! parse_into {
        ($builder:expr, $parse:expr) => {{
            let mut builder = $builder;
            for row in 0..rows {
                if text.is_null(row) {
                    builder.append_null();
                    continue;
                }
                let raw = text.value(row);
                let trimmed = raw.trim();
                if trimmed.is_empty() {
                    // An empty cell is an absent value, as in CSV exports.
                    builder.append_null();
                    continue;
                }
                match $parse(trimmed) {
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
        ValueKind::String => Arc::new(text.clone()),
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

fn parse_integer(text: &str) -> Option<i64> {
    // `i64::from_str` takes one optional sign, `+` included; stripping a `+` first would let "+-5" through.
    text.parse().ok()
}

fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "是" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "否" => Some(false),
        _ => None,
    }
}

/// Dates as departments write them: 2024-01-31, 2024/01/31, 20240131, 2024年1月31日.
pub fn parse_date(text: &str) -> Option<i32> {
    // The common ISO form without chrono's format machinery, which costs more
    // than the rest of reading a row.
    if let [y0, y1, y2, y3, sep1, m0, m1, sep2, d0, d1] = *text.as_bytes()
        && sep1 == sep2
        && (sep1 == b'-' || sep1 == b'/')
    {
        let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
        if digits.iter().all(u8::is_ascii_digit) {
            let n = |ds: &[u8]| ds.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            let date = NaiveDate::from_ymd_opt(n(&digits[..4]) as i32, n(&digits[4..6]), n(&digits[6..]))?;
            return i32::try_from(date.signed_duration_since(EPOCH?).num_days()).ok();
        }
    }
    const FORMATS: [&str; 4] = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"];
    let date = FORMATS.iter().find_map(|f| NaiveDate::parse_from_str(text, f).ok())?;
    i32::try_from(date.signed_duration_since(EPOCH?).num_days()).ok()
}

/// RFC 3339 date-times, or a local date-time in China (`2024-01-31 08:00:00`), as UTC microseconds.
pub fn parse_date_time(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    const LOCAL: [&str; 4] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"];
    let naive = LOCAL.iter().find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?;
    china_offset()?.from_local_datetime(&naive).single().map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_department_formats() {
        let expected = parse_date("2024-01-31");
        assert!(expected.is_some());
        assert_eq!(parse_date("2024/01/31"), expected);
        assert_eq!(parse_date("20240131"), expected);
        assert_eq!(parse_date("2024年1月31日"), expected);
        assert_eq!(parse_date("2021-02-30"), None);
        assert_eq!(parse_date("abc"), None);
    }

    #[test]
    fn local_date_times_are_china_time() {
        let utc = parse_date_time("2024-01-31T00:00:00Z").unwrap();
        assert_eq!(parse_date_time("2024-01-31 08:00:00"), Some(utc));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_integer("+12"), Some(12));
        assert_eq!(parse_integer("1.5"), None);
        assert_eq!(parse_integer("+-5"), None);
        assert_eq!(parse_integer("++5"), None);
        assert_eq!(parse_integer("-5"), Some(-5));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_boolean("是"), Some(true));
    }
}
