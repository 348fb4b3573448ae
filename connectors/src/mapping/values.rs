//! Per-value normalisers: full-width forms, division codes, and the casts.

use super::*;

/// Maps full-width ASCII forms (`１`, `．`, `－`) to ASCII.
pub(super) fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Strips whitespace (anywhere) and maps full-width digits; a 6-digit
/// GB/T 2260 county code becomes the 12-digit division code. Anything else
/// is returned cleaned but otherwise unchanged, for the validator to judge.
pub(super) fn normalize_division_code(value: &str) -> String {
    let cleaned: String = value.chars().map(half_width).filter(|c| !c.is_whitespace() && *c != '\u{feff}').collect();
    if cleaned.len() == 6
        && cleaned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(code) = DivisionCode::from_county_code(&cleaned)
    {
        return code.as_str().to_owned();
    }
    cleaned
}

/// Whether `format` is a chrono format without errors.
pub(super) fn valid_date_format(format: &str) -> bool {
    !format.trim().is_empty() && StrftimeItems::new(format).all(|item| !matches!(item, Item::Error))
}

/// Applies a cast; `None` when the value does not parse (it is then kept as is).
pub(super) fn apply_cast(cast: &Cast, value: &str) -> Option<String> {
    match cast {
        Cast::Integer => cast_integer(&clean_number(value)),
        Cast::Number => cast_number(&clean_number(value)),
        Cast::Date(format) => parse_date(value, format.as_deref()).map(|d| d.format("%Y-%m-%d").to_string()),
        Cast::DateTime(format) => cast_date_time(value, format.as_deref()),
        Cast::Boolean => cast_boolean(value).map(|b| b.to_string()),
        Cast::String => Some(value.to_owned()),
    }
}

/// Yes/no as offices write it; anything else is left for the validator.
pub(super) fn cast_boolean(value: &str) -> Option<bool> {
    let text: String = value.chars().map(half_width).collect();
    match text.trim().to_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "是" | "有" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "否" | "无" => Some(false),
        _ => None,
    }
}

/// Local date-time layouts read as China time (UTC+8) when no format is given.
const DATE_TIME_LAYOUTS: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
];

/// An RFC 3339 date-time (`2024-01-31T08:00:00+08:00`): one already in that
/// form is kept (trimmed); a local date-time (`2024-01-31 08:00:00`, or in
/// `format`) is China time.
pub(super) fn cast_date_time(value: &str, format: Option<&str>) -> Option<String> {
    let text: String = value.chars().map(half_width).collect();
    let text = text.trim();
    if civlink_standards::validate::parse_date_time(text).is_some() {
        return Some(text.to_owned());
    }
    let local = match format {
        Some(format) => NaiveDateTime::parse_from_str(text, format).ok()?,
        None => DATE_TIME_LAYOUTS.iter().find_map(|layout| NaiveDateTime::parse_from_str(text, layout).ok())?,
    };
    Some(local.format("%Y-%m-%dT%H:%M:%S%.f+08:00").to_string())
}

/// Numeric text without decoration: full-width forms to ASCII, whitespace,
/// thousands separators (`,` and `，`), a leading `¥`/`￥` and a trailing
/// `元` removed.
pub(super) fn clean_number(value: &str) -> String {
    let text: String = value.chars().map(half_width).collect();
    let text = text.trim();
    let text = text.strip_suffix('元').unwrap_or(text);
    let text = text.trim_start_matches(['¥', '￥']);
    text.chars().filter(|c| !c.is_whitespace() && !matches!(c, ',' | '，')).collect()
}

/// `[+-]digits` or `[+-]digits.000`, as a canonical integer (no `+`, no
/// leading zeros).
pub(super) fn cast_integer(text: &str) -> Option<String> {
    let (negative, digits) = split_sign(text);
    let digits = match digits.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => digits,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    Some(match (digits.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{digits}"),
        (false, false) => digits.to_owned(),
    })
}

/// A decimal number (optionally with an exponent), kept digit for digit:
/// only a `+` is removed and a bare `.5` / `5.` completed, so no precision is
/// lost to floating point.
pub(super) fn cast_number(text: &str) -> Option<String> {
    let (negative, rest) = split_sign(text);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 1);
    if negative {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    if let Some(exponent) = exponent {
        let (exp_negative, exp_digits) = split_sign(exponent);
        if exp_digits.is_empty() || !digits(exp_digits) {
            return None;
        }
        out.push('e');
        if exp_negative {
            out.push('-');
        }
        out.push_str(exp_digits);
    }
    Some(out)
}

pub(super) fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') { (true, rest) } else { (false, text.strip_prefix('+').unwrap_or(text)) }
}

/// Layouts tried by `cast = "date"` without a `date_format`, in order. A
/// time after the date is accepted and dropped.
pub const DATE_LAYOUTS: [&str; 5] = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d"];

/// Parses a date with `format`, or with [`DATE_LAYOUTS`] (and 8 digits as
/// `YYYYMMDD`) when `None`. Full-width digits are accepted; a time part after
/// the date (`2024-03-07 08:00:00`, `2024-03-07T08:00`) is ignored.
pub fn parse_date(value: &str, format: Option<&str>) -> Option<NaiveDate> {
    let text: String = value.chars().map(half_width).collect();
    let text = text.trim();
    if let Some(format) = format {
        return NaiveDate::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(|dt| dt.date()));
    }
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        let number = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok());
        let year = i32::try_from(number(0..4)?).ok()?;
        return NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?);
    }
    // The date is what precedes a time part.
    let date = text.split([' ', 'T']).next().unwrap_or(text);
    DATE_LAYOUTS.iter().find_map(|layout| NaiveDate::parse_from_str(date, layout).ok())
}

/// Excel's serial day (1900 date system) as `YYYY-MM-DD`: day 1 is
/// 1900-01-01, and day 60 is the 1900-02-29 Excel counts (after Lotus 1-2-3)
/// though it never was, so days from 61 on are one less after it. Only
/// whole days 1..=2958465 (9999-12-31), written as digits (a `.0` allowed):
/// anything else is `None`, and the value is kept for the validator.
pub(super) fn excel_serial_date(value: &str) -> Option<String> {
    let text = value.trim();
    let digits = text.strip_suffix(".0").unwrap_or(text);
    if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let serial: i64 = digits.parse().ok()?;
    if !(1..=2_958_465).contains(&serial) || serial == 60 {
        return None;
    }
    // Day 0 is 1899-12-31; from day 61 on, the phantom 29 February is skipped.
    let days = if serial > 60 { serial - 1 } else { serial };
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 31)?;
    Some(epoch.checked_add_days(chrono::Days::new(u64::try_from(days).ok()?))?.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::excel_serial_date;

    #[test]
    fn excel_serial_dates() {
        assert_eq!(excel_serial_date("1").as_deref(), Some("1900-01-01"));
        assert_eq!(excel_serial_date("59").as_deref(), Some("1900-02-28"));
        // Excel's phantom 1900-02-29 is no date.
        assert_eq!(excel_serial_date("60"), None);
        assert_eq!(excel_serial_date("61").as_deref(), Some("1900-03-01"));
        assert_eq!(excel_serial_date("45292").as_deref(), Some("2024-01-01"));
        assert_eq!(excel_serial_date(" 45292.0 ").as_deref(), Some("2024-01-01"));
        assert_eq!(excel_serial_date("2958465").as_deref(), Some("9999-12-31"));
        for kept in ["0", "2958466", "45292.5", "-1", "2024-01-01", "", "4529２"] {
            assert_eq!(excel_serial_date(kept), None, "{kept}");
        }
    }
}
