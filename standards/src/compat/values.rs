//! JSON values and bounds for the comparison and its messages: pointers,
//! numeric equality and order, integer ranges, and short renderings.

use super::*;

/// Appends one RFC 6901 reference token to `ptr`.
pub(super) fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", token.replace('~', "~0").replace('/', "~1"))
}

pub(super) fn show_pointer(pointer: &str) -> String {
    if pointer.is_empty() { "document root".to_owned() } else { format!("at {pointer}") }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
/// Iterative, so deeply nested values cannot exhaust the stack.
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    let mut stack = vec![(a, b)];
    while let Some(pair) = stack.pop() {
        match pair {
            (Value::Number(x), Value::Number(y)) => {
                if cmp_num(x, y) != Ordering::Equal {
                    return false;
                }
            }
            (Value::Array(xs), Value::Array(ys)) => {
                if xs.len() != ys.len() {
                    return false;
                }
                stack.extend(xs.iter().zip(ys));
            }
            (Value::Object(xs), Value::Object(ys)) => {
                if xs.len() != ys.len() {
                    return false;
                }
                for (key, x) in xs {
                    match ys.get(key) {
                        Some(y) => stack.push((x, y)),
                        None => return false,
                    }
                }
            }
            (x, y) => {
                if x != y {
                    return false;
                }
            }
        }
    }
    true
}

/// Numeric order; exact for integers, `f64` otherwise.
pub(super) fn cmp_num(a: &Number, b: &Number) -> Ordering {
    match (exact_int(a), exact_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(f64::NAN);
            let y = b.as_f64().unwrap_or(f64::NAN);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

pub(super) fn exact_int(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// 2^53: beyond it `f64` no longer holds every integer.
pub(super) const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// The integer value of `n`, if it has one that `f64` represents exactly.
pub(super) fn integral(n: &Number) -> Option<i128> {
    exact_int(n).or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f.abs() <= MAX_EXACT_F64).then_some(f as i128)
    })
}

/// Whether `value` is an integer multiple of `divisor`.
pub(super) fn is_multiple(value: &Number, divisor: &Number) -> bool {
    if let (Some(v), Some(d)) = (exact_int(value), exact_int(divisor))
        && d != 0
    {
        return v % d == 0;
    }
    match (value.as_f64(), divisor.as_f64()) {
        (Some(v), Some(d)) if d != 0.0 => {
            let quotient = v / d;
            quotient.is_finite() && (quotient - quotient.round()).abs() <= 1e-9 * quotient.abs().max(1.0)
        }
        _ => false,
    }
}

/// The least integer a lower bound admits, if `f64` can say.
pub(super) fn int_lower(bound: NumBound<'_>) -> Option<i128> {
    match integral(bound.value) {
        Some(i) => Some(if bound.exclusive { i + 1 } else { i }),
        None => {
            let f = bound.value.as_f64()?;
            (f.abs() <= MAX_EXACT_F64).then(|| f.ceil() as i128)
        }
    }
}

/// The greatest integer an upper bound admits, if `f64` can say.
pub(super) fn int_upper(bound: NumBound<'_>) -> Option<i128> {
    match integral(bound.value) {
        Some(i) => Some(if bound.exclusive { i - 1 } else { i }),
        None => {
            let f = bound.value.as_f64()?;
            (f.abs() <= MAX_EXACT_F64).then(|| f.floor() as i128)
        }
    }
}

pub(super) fn int_range(lo: i128, hi: i128) -> String {
    if lo == hi { format!("the value {lo}") } else { format!("values {lo}..{hi}") }
}

pub(super) fn int_span(lo: u128, hi: u128) -> String {
    if lo == hi { lo.to_string() } else { format!("{lo}..{hi}") }
}

pub(super) fn describe_types(types: Option<TypeSet>) -> String {
    match types {
        None => "any type".to_owned(),
        Some(set) => {
            let names: Vec<String> = set.iter().map(|t| format!("{:?}", t.name())).collect();
            match names.as_slice() {
                [one] => one.clone(),
                _ => format!("[{}]", names.join(", ")),
            }
        }
    }
}

pub(super) fn describe_additional(doc: &Doc<'_>) -> &'static str {
    match (&doc.additional, doc.root.keys.and_then(|k| k.get("additionalProperties"))) {
        (Additional::Open, None) => "absent (open)",
        (Additional::Open, Some(_)) => "true",
        (Additional::Closed, _) => "false",
        (Additional::Schema(_), _) => "a schema",
    }
}

/// A JSON value for a message, cut short so huge values stay readable.
pub(super) fn show(value: &Value) -> String {
    const LIMIT: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        text
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}…")
    }
}

pub(super) fn show_values<'v>(values: impl Iterator<Item = &'v Value>) -> String {
    const LIMIT: usize = 10;
    let values: Vec<&Value> = values.collect();
    let mut shown: Vec<String> = values.iter().take(LIMIT).map(|v| show(v)).collect();
    if values.len() > LIMIT {
        shown.push(format!("… {} more", values.len() - LIMIT));
    }
    format!("[{}]", shown.join(", "))
}
