//! The columnar checks of one typed column: required values, enums and
//! constants, bounds, lengths, patterns, formats and code tables, each
//! reporting its violations by row.

use super::*;

/// Show a value in a message, masked when the column is sensitive.
fn shown(property: &Property, value: &str) -> String {
    if property.sensitivity.masked_by_default() { mask::for_log(value) } else { value.to_owned() }
}

/// Run a column's checks over its typed array.
pub(super) fn check_column(
    plan: &ColumnPlan,
    array: &dyn Array,
    unreadable: &HashSet<usize>,
    today: NaiveDate,
    out: &mut Vec<Violation>,
) {
    let property = &plan.property;
    let name = property.name.as_str();
    let rows = array.len();

    if let Some(nulls) = array.nulls().filter(|n| n.null_count() > 0) {
        let null_rows = (0..rows).filter(|r| nulls.is_null(*r));
        // Most batches have no unreadable value: skip hashing every NULL row's index then.
        for row in null_rows.filter(|r| unreadable.is_empty() || !unreadable.contains(r)) {
            if property.admits_null {
                // NULL is JSON null here: only enum/const can reject it.
                for check in &plan.checks {
                    if let Check::Values(set) = check
                        && !set.null
                    {
                        out.push(Violation::new(row, name, set.keyword, set.message()));
                    }
                }
            } else if property.required {
                out.push(Violation::new(row, name, "required", format!("\"{name}\" ({}) is required", property.title)));
            }
        }
    }

    match property.kind {
        ValueKind::String => {
            let Some(strings) = array.as_string_opt::<i32>() else { return };
            for check in &plan.checks {
                check_strings(property, check, &TextColumn(strings), today, out);
            }
        }
        ValueKind::Date | ValueKind::DateTime => {
            for check in &plan.checks {
                if let Check::TemporalRange { min, max } = check {
                    let mut report = |row: usize, value: i64| {
                        if (value < *min || value > *max) && array.is_valid(row) {
                            out.push(Violation::new(
                                row,
                                name,
                                "format",
                                format!("{} is outside years 0000-9999", property.kind.noun()),
                            ));
                        }
                    };
                    if let Some(dates) = array.as_primitive_opt::<arrow::datatypes::Date32Type>() {
                        dates.values().iter().enumerate().for_each(|(row, v)| report(row, i64::from(*v)));
                    } else if let Some(times) = array.as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>() {
                        times.values().iter().enumerate().for_each(|(row, v)| report(row, *v));
                    }
                    continue;
                }
                check_strings(property, check, &TemporalText { kind: property.kind, array }, today, out);
            }
        }
        ValueKind::Integer => {
            let Some(ints) = array.as_primitive_opt::<Int64Type>() else { return };
            for check in &plan.checks {
                match check {
                    Check::Values(set) => {
                        for row in (0..rows).filter(|r| ints.is_valid(*r)) {
                            if !set.integers.contains(&ints.value(row)) {
                                out.push(Violation::new(row, name, set.keyword, set.message()));
                            }
                        }
                    }
                    Check::Bound(kind, bound, shown_bound) => {
                        let mut broken = |row: usize, v: i64| {
                            if ints.is_valid(row) {
                                report(out, || bound_violation(row, name, *kind, &v.to_string(), shown_bound));
                            }
                        };
                        match int_range(*kind, *bound) {
                            // The common bound: one range test per value, validity looked up only on failure.
                            Some((lo, hi)) => ints.values().iter().enumerate().for_each(|(row, &v)| {
                                if v < lo || v > hi {
                                    broken(row, v);
                                }
                            }),
                            None => ints.values().iter().enumerate().for_each(|(row, &v)| {
                                if !kind.allows(bound.cmp_i64(v)) {
                                    broken(row, v);
                                }
                            }),
                        }
                    }
                    _ => {}
                }
            }
        }
        ValueKind::Number => {
            let Some(floats) = array.as_primitive_opt::<Float64Type>() else { return };
            for (row, v) in floats.values().iter().enumerate() {
                if !v.is_finite() && floats.is_valid(row) {
                    report(out, || Violation::new(row, name, "type", "NaN and infinities are not JSON numbers".into()));
                }
            }
            for check in &plan.checks {
                match check {
                    Check::Values(set) => {
                        for row in (0..rows).filter(|r| floats.is_valid(*r)) {
                            if !set.contains_f64(floats.value(row)) {
                                out.push(Violation::new(row, name, set.keyword, set.message()));
                            }
                        }
                    }
                    Check::Bound(kind, bound, shown_bound) => {
                        let mut broken = |row: usize, v: f64| {
                            if floats.is_valid(row) {
                                report(out, || bound_violation(row, name, *kind, &v.to_string(), shown_bound));
                            }
                        };
                        let values = floats.values().iter().enumerate();
                        // Non-finite values are reported above, not as out of bounds.
                        match (kind, bound) {
                            // An f64 bound (or an integer exact as one): a plain float comparison is exact.
                            (_, Bound::SmallInt(_, b) | Bound::Float(b)) => {
                                let b = *b;
                                let allowed: fn(f64, f64) -> bool = match kind {
                                    BoundKind::Minimum => |v, b| v >= b,
                                    BoundKind::Maximum => |v, b| v <= b,
                                    BoundKind::ExclusiveMinimum => |v, b| v > b,
                                    BoundKind::ExclusiveMaximum => |v, b| v < b,
                                };
                                values.for_each(|(row, &v)| {
                                    if v.is_finite() && !allowed(v, b) {
                                        broken(row, v);
                                    }
                                });
                            }
                            (_, Bound::Int(_)) => values.for_each(|(row, &v)| {
                                if v.is_finite() && !kind.allows(bound.cmp_f64(v)) {
                                    broken(row, v);
                                }
                            }),
                        }
                    }
                    _ => {}
                }
            }
        }
        ValueKind::Boolean => {
            let Some(bools) = array.as_boolean_opt() else { return };
            for check in &plan.checks {
                if let Check::Values(set) = check {
                    for row in (0..rows).filter(|r| bools.is_valid(*r)) {
                        if !set.booleans.contains(&bools.value(row)) {
                            out.push(Violation::new(row, name, set.keyword, set.message()));
                        }
                    }
                }
            }
        }
    }
}

/// Push a violation built only when needed: the failure path stays out of the
/// per-row loops, so each check's loop body is small enough to be inlined.
#[cold]
#[inline(never)]
fn report(out: &mut Vec<Violation>, violation: impl FnOnce() -> Violation) {
    out.push(violation());
}

/// The i64 values an exactly representable integer bound allows, as an inclusive
/// range; `None` for the other bounds, which take the exact comparison.
fn int_range(kind: BoundKind, bound: Bound) -> Option<(i64, i64)> {
    // |b| < 2^53, so b ± 1 cannot overflow.
    let Bound::SmallInt(b, _) = bound else { return None };
    Some(match kind {
        BoundKind::Minimum => (b, i64::MAX),
        BoundKind::Maximum => (i64::MIN, b),
        BoundKind::ExclusiveMinimum => (b + 1, i64::MAX),
        BoundKind::ExclusiveMaximum => (i64::MIN, b - 1),
    })
}

fn bound_violation(row: usize, column: &str, kind: BoundKind, value: &str, bound: &str) -> Violation {
    let relation = match kind {
        BoundKind::Minimum => "less than the minimum",
        BoundKind::Maximum => "greater than the maximum",
        BoundKind::ExclusiveMinimum => "not greater than the exclusive minimum",
        BoundKind::ExclusiveMaximum => "not less than the exclusive maximum",
    };
    Violation::new(row, column, kind.keyword(), format!("{value} is {relation} {bound}"))
}

/// The non-null values of a column as text, visited in row order. Generic, so each
/// check's per-row closure is inlined into the loop (a `dyn FnMut` per row cost a
/// fifth of the validator's time).
trait StrValues {
    fn for_each(&self, f: impl FnMut(usize, &str));
}

/// A Utf8 column.
struct TextColumn<'a>(&'a arrow::array::StringArray);

impl StrValues for TextColumn<'_> {
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, &str)) {
        let strings = self.0;
        if strings.null_count() == 0 {
            for row in 0..strings.len() {
                f(row, strings.value(row));
            }
        } else {
            for row in 0..strings.len() {
                if strings.is_valid(row) {
                    f(row, strings.value(row));
                }
            }
        }
    }
}

/// A date or date-time column, as the JSON text of each value.
struct TemporalText<'a> {
    kind: ValueKind,
    array: &'a dyn Array,
}

impl StrValues for TemporalText<'_> {
    fn for_each(&self, mut f: impl FnMut(usize, &str)) {
        for row in (0..self.array.len()).filter(|r| self.array.is_valid(*r)) {
            match json::temporal_text(self.kind, self.array, row) {
                Some(text) => f(row, &text),
                // Only for an array of another type, which coercion never yields.
                None => f(row, "\u{0}unreadable"),
            }
        }
    }
}

/// Run one check over the string values of a column.
fn check_strings(
    property: &Property,
    check: &Check,
    values: &impl StrValues,
    today: NaiveDate,
    out: &mut Vec<Violation>,
) {
    let name = property.name.as_str();
    match check {
        Check::Values(set) => values.for_each(|row, s| {
            if !set.strings.contains(s) {
                report(out, || Violation::new(row, name, set.keyword, set.message()));
            }
        }),
        Check::Pattern { regex, simple, source } => {
            let broken = |out: &mut Vec<Violation>, row: usize, s: &str| {
                report(out, || {
                    let message = format!("\"{}\" does not match {source}", shown(property, s));
                    Violation::new(row, name, "pattern", message)
                })
            };
            match simple {
                Some(simple) => values.for_each(|row, s| {
                    if !simple.is_match(s) {
                        broken(out, row, s);
                    }
                }),
                None => values.for_each(|row, s| {
                    if !regex.is_match(s) {
                        broken(out, row, s);
                    }
                }),
            }
        }
        Check::MinLength(min) => values.for_each(|row, s| {
            // A UTF-8 character is at most 4 bytes: long enough in bytes/4 means long enough;
            // and ASCII text has as many characters as bytes.
            if (s.len() / 4) as u64 >= *min || (s.len() as u64 >= *min && s.is_ascii()) {
                return;
            }
            let n = s.chars().count() as u64;
            if n < *min {
                report(out, || Violation::new(row, name, "minLength", format!("{n} characters, fewer than {min}")));
            }
        }),
        Check::MaxLength(max) => values.for_each(|row, s| {
            // Byte length bounds the character count from above: skip the count when it cannot exceed.
            if s.len() as u64 > *max {
                let n = s.chars().count() as u64;
                if n > *max {
                    report(out, || Violation::new(row, name, "maxLength", format!("{n} characters, more than {max}")));
                }
            }
        }),
        Check::Gb11643 => {
            let checker = idcard::Checker::new(today);
            values.for_each(|row, s| {
                if !checker.is_valid(s) {
                    report(out, || {
                        // The cause, for the message: the full check again, off the hot path.
                        let why = idcard::validate_str(s, today).err().map(|e| e.to_string()).unwrap_or_default();
                        let message = format!("not a valid GB 11643 ID number ({}): {why}", shown(property, s));
                        Violation::new(row, name, "format", message)
                    });
                }
            })
        }
        Check::DivisionCode(table) => values.for_each(|row, s| {
            if !table.contains_str(s) {
                report(out, || {
                    let why = match crate::division::DivisionCode::parse(s) {
                        Err(e) => e.to_string(),
                        Ok(_) => "not in the division code table".to_owned(),
                    };
                    Violation::new(row, name, "format", format!("\"{s}\" is not a division code: {why}"))
                });
            }
        }),
        Check::CodeTable(table, codes) => values.for_each(|row, s| {
            if !codes.contains(s) {
                report(out, || {
                    let message =
                        format!("\"{}\" is not a code of {} ({})", shown(property, s), table.name, table.title);
                    Violation::new(row, name, "x-civlink-code-table", message)
                });
            }
        }),
        // Numeric keywords assert nothing about strings (JSON Schema semantics);
        // the temporal range is checked on the numbers, before this is reached.
        Check::Bound(..) | Check::TemporalRange { .. } => {}
    }
}

/// A text value Excel stored as a number and cut to 15 significant digits
/// ([`Delivered::TruncatedNumber`]) that fails its column's checks failed
/// because of that: its violations become one `digits_lost`, which says so
/// plainly and asks for the column to be stored as text. One that passes
/// (an ID whose last digits really are zeros) stands.
pub(super) fn report_lost_digits(
    property: &Property,
    types: &[Delivered],
    violations: &mut Vec<Violation>,
    from: usize,
) {
    let cut: HashSet<usize> = violations[from..]
        .iter()
        .filter(|v| types.get(v.row) == Some(&Delivered::TruncatedNumber))
        .map(|v| v.row)
        .collect();
    if cut.is_empty() {
        return;
    }
    let mut kept: Vec<Violation> = violations.drain(from..).filter(|v| !cut.contains(&v.row)).collect();
    let what =
        if property.format.as_deref() == Some("gb11643") { "身份证号".to_owned() } else { property.title.clone() };
    let mut rows: Vec<usize> = cut.into_iter().collect();
    rows.sort_unstable();
    for row in rows {
        kept.push(Violation::new(
            row,
            &property.name,
            "digits_lost",
            format!(
                "{what}以数字格式保存，已丢失末位：Excel 只保留 15 位有效数字，请将该列设置为文本格式后重新填报 \
                 (stored as a number cell: Excel kept only 15 significant digits; ask the office to store the column as text)"
            ),
        ));
    }
    kept.sort_by_key(|v| v.row);
    violations.extend(kept);
}
