//! Cells as text: how a value in a sheet is rendered the way a person
//! reads it in Excel (see the reader's module docs for the rules), and the
//! long numbers Excel cannot hold.
//!
//! **Long numbers.** Excel keeps 15 significant digits of a number. An
//! 18-digit ID typed into a number cell is stored as `110101199003071000`
//! (or `1.10101199003071E+17`): its last digits are gone in the file
//! itself; a program writing a float stores its binary rounding
//! (`6.301211984060202e+17`); only a program writing the integer digit by
//! digit (`110101199003071234`) keeps them all. The reader takes the stored
//! text of such cells ([`long_number`]) rather than the parsed `f64`, so
//! nothing is rounded by the reader: an integer written in full keeps every
//! digit, and any other number of 16 or more integer digits becomes
//! [`Cell::Truncated`], which the validator reports as
//! 以数字格式保存，已丢失末位 when the value fails its checks. Old 15-digit
//! IDs fit in Excel's digits and read intact.

use calamine::{Data, DataRef, ExcelDateTime};

/// Seconds in a day, for Excel serial date-times (days since the epoch, the
/// time of day as the fraction).
const DAY_SECONDS: f64 = 86_400.0;

/// Serial number of 9999-12-31 + 1 in the 1900 date system: Excel's own
/// upper bound. Date cells outside `0..MAX_SERIAL` are not dates Excel can
/// show, so they are rendered as the number they hold.
const MAX_SERIAL: f64 = 2_958_466.0;

/// Excel's column limit (`XFD`). A header wider than this only comes from a
/// corrupt or hand-crafted file, and would make every row that wide.
pub(super) const MAX_COLUMNS: u32 = 16_384;

/// The significant digits Excel keeps of a number.
const EXCEL_DIGITS: usize = 15;

/// One cell, rendered.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Empty,
    Text(String),
    /// A number cell of 16 or more integer digits of which Excel kept no
    /// more than 15: the text of the number as stored.
    Truncated(String),
    /// An Excel error value such as `#N/A`.
    Error(String),
}

impl Cell {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }

    pub(super) fn text(&self) -> &str {
        match self {
            Cell::Empty => "",
            Cell::Text(s) | Cell::Truncated(s) | Cell::Error(s) => s,
        }
    }
}

/// The stored text of a number cell worth keeping instead of its `f64`: 16
/// or more digits, or an exponent. What [`long_number`] reads.
pub(super) fn is_long_number_text(stored: &str) -> bool {
    stored.bytes().any(|b| b == b'E' || b == b'e') || stored.bytes().filter(u8::is_ascii_digit).count() > EXCEL_DIGITS
}

/// A number cell from its stored text (see the module docs): every digit
/// of an integer written in full; [`Cell::Truncated`] for a value of 16 or
/// more integer digits with at most 15 significant ones; otherwise the
/// number as [`render_float`] shows it.
pub(super) fn long_number(stored: &str) -> Cell {
    let text = stored.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let Some(digits) = integer_digits(unsigned) else {
        return match text.parse::<f64>() {
            Ok(f) => Cell::Text(render_float(f)),
            Err(_) => Cell::Text(text.to_owned()),
        };
    };
    // Written digit by digit (`630121198406020214`), not as a float's text.
    let plain = unsigned.bytes().all(|b| b.is_ascii_digit());
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let significant = digits.trim_end_matches('0').len();
    let rendered = if negative && digits != "0" { format!("-{digits}") } else { digits.to_owned() };
    if digits.len() <= EXCEL_DIGITS || (plain && significant > EXCEL_DIGITS) {
        Cell::Text(rendered)
    } else {
        // Excel's 15 digits, or a float's text (`6.301211984060202e+17`),
        // whose digits past the 15th are binary rounding, not the value's.
        Cell::Truncated(rendered)
    }
}

/// The integer digits of a plain (`123`) or exponent (`1.23E+5`) number
/// without a fraction left over; `None` for anything else.
fn integer_digits(unsigned: &str) -> Option<String> {
    let (mantissa, exponent) = match unsigned.find(['E', 'e']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
        || !(0..=400).contains(&exponent)
    {
        return None;
    }
    let shift = exponent as usize;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > shift {
        // A fraction remains: not an integer.
        return None;
    }
    let mut digits = String::with_capacity(whole.len() + shift);
    digits.push_str(whole);
    digits.push_str(fraction);
    digits.extend(std::iter::repeat_n('0', shift - fraction.len()));
    Some(digits)
}

/// Renders a cell's value as text (see the module docs for the rules).
pub(super) fn render(value: &DataRef<'_>) -> Cell {
    let text = match value {
        DataRef::Empty => return Cell::Empty,
        DataRef::Error(e) => return Cell::Error(e.to_string()),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => return render_number(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => render_datetime(dt),
        DataRef::DateTimeIso(s) => render_iso_datetime(s),
        DataRef::DurationIso(s) => s.clone(),
    };
    if text.is_empty() { Cell::Empty } else { Cell::Text(text) }
}

/// [`render`] for an owned value (`.xls` sheets are read whole).
pub(super) fn render_data(value: &Data) -> Cell {
    match value {
        Data::Empty => Cell::Empty,
        Data::Error(e) => Cell::Error(e.to_string()),
        Data::String(s) => render(&DataRef::String(s.clone())),
        Data::Int(i) => Cell::Text(i.to_string()),
        Data::Float(f) => render_number(*f),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(dt) => Cell::Text(render_datetime(dt)),
        Data::DateTimeIso(s) => render(&DataRef::DateTimeIso(s.clone())),
        Data::DurationIso(s) => render(&DataRef::DurationIso(s.clone())),
    }
}

/// A number without its stored text (an `f64` is all the format keeps): a
/// whole number of 16 or more digits has lost digits in Excel.
fn render_number(f: f64) -> Cell {
    let text = render_float(f);
    if f.is_finite() && f.fract() == 0.0 && f.abs() >= 1e15 { Cell::Truncated(text) } else { Cell::Text(text) }
}

/// The cells of a rejected row from column `from` to `to`, as one CSV line
/// (quoted where needed, so the raw text stays unambiguous). A row wider
/// than Excel allows (a corrupt file) lists just the cells present.
pub(super) fn raw_line(cells: &[(u32, Cell)], from: u32, to: u32) -> String {
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
pub(super) fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// A number with full precision and no exponent: Rust's `Display` for `f64`
/// prints the shortest text that reads back as the same number, and never a
/// trailing `.0`, so `630102.0` is `630102` and `1234.5` stays `1234.5`.
pub(super) fn render_float(f: f64) -> String {
    if f == 0.0 {
        // Also turns -0 into 0.
        "0".to_owned()
    } else {
        f.to_string()
    }
}

/// An Excel serial date-time as `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or
/// `HH:MM:SS`; a duration as `H:MM:SS`.
pub(super) fn render_datetime(dt: &ExcelDateTime) -> String {
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
    use super::*;
    use calamine::{CellErrorType, ExcelDateTimeType};

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
    fn long_numbers_keep_their_stored_digits() {
        // Written in full by a program: every digit, none rounded.
        assert_eq!(long_number("110101199003071234"), Cell::Text("110101199003071234".into()));
        assert_eq!(long_number("6222020200112233445"), Cell::Text("6222020200112233445".into()));
        // What Excel stores for an 18-digit ID typed as a number.
        assert_eq!(long_number("1.10101199003071E+17"), Cell::Truncated("110101199003071000".into()));
        assert_eq!(long_number("110101199003071000"), Cell::Truncated("110101199003071000".into()));
        assert_eq!(long_number("-1.5E+16"), Cell::Truncated("-15000000000000000".into()));
        // A float's shortest text (what openpyxl writes for a big int): the digits past the 15th are rounding.
        assert_eq!(long_number("6.301211984060202e+17"), Cell::Truncated("630121198406020200".into()));
        // Not long after all, or not an integer.
        assert_eq!(long_number("1.5E+3"), Cell::Text("1500".into()));
        assert_eq!(long_number("1.25E-2"), Cell::Text("0.0125".into()));
        assert_eq!(long_number("0.1234567890123456"), Cell::Text("0.1234567890123456".into()));
        assert!(is_long_number_text("1.10101199003071E+17"));
        assert!(is_long_number_text("110101199003071234"));
        assert!(!is_long_number_text("630102001001"));
        // An f64 alone (.xls): a whole number of 16+ digits lost digits in Excel.
        assert_eq!(render_number(1.10101199003071e17), Cell::Truncated("110101199003071000".into()));
        assert_eq!(render_number(630102001001.0), Cell::Text("630102001001".into()));
    }

    #[test]
    fn cells_render() {
        assert_eq!(render(&DataRef::Bool(true)), Cell::Text("true".into()));
        assert_eq!(render(&DataRef::Int(42)), Cell::Text("42".into()));
        assert_eq!(render(&DataRef::SharedString("")), Cell::Empty);
        assert_eq!(render(&DataRef::Error(CellErrorType::Div0)), Cell::Error("#DIV/0!".into()));
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
