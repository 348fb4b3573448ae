//! Resource guards on the functions that can make a small query allocate
//! without bound.
//!
//! DataFusion's operators (sorts, joins, aggregates, the recursive work
//! table) reserve their memory in the query's pool ([`crate::limits`]), so
//! they spill or fail at its cap. Scalar functions do not: `repeat('x',
//! 2000000000)` or `range(0, 3000000000)` allocate their whole result before
//! anything can account for it, and a 24-byte query takes the server down.
//!
//! [`GuardRule`], an analyzer rule in every session, wraps each call of such
//! a function in [`Guarded`], which works out from its arguments (before
//! calling it) how many bytes it would produce for the batch and refuses with
//! a resource error when that is more than [`Guard::max_bytes`]. The string
//! operator `||` is rewritten into the same guard ([`StringConcat`]), since
//! a chain of them doubles a value per step. The estimates are upper bounds
//! (see each [`Kind`]); the functions themselves are DataFusion's, called
//! unchanged once admitted.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef, IntervalMonthDayNano};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// What a guarded function's output size is estimated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `repeat(s, n)`: `len(s) × n`.
    Repeat,
    /// `lpad/rpad(s, n[, fill])`: `n` characters of at most 4 bytes.
    Pad,
    /// `replace(s, from, to)`: `(len(s) / len(from) + 1) × len(to) + len(s)`.
    Replace,
    /// `regexp_replace(s, pattern, replacement[, flags])`:
    /// `(len(s) + 1) × len(replacement) + len(s)`.
    RegexpReplace,
    /// `concat(…)`, `||`, `array_concat(…)`: the sum of the arguments.
    Sum,
    /// `concat_ws(sep, …)`: the sum of the arguments and a separator each.
    ConcatWs,
    /// `encode(s, format)`: at most twice the input (hex).
    Encode,
    /// `range` / `generate_series` as arrays: the elements between start and stop.
    Range,
    /// `array_repeat(v, n)`: `n` copies of the element.
    ArrayRepeat,
    /// `array_resize(a, n[, v])`: `n` elements.
    ArrayResize,
}

/// The functions guarded, by name, and how.
pub const GUARDED: &[(&str, Kind)] = &[
    ("repeat", Kind::Repeat),
    ("lpad", Kind::Pad),
    ("rpad", Kind::Pad),
    ("replace", Kind::Replace),
    ("regexp_replace", Kind::RegexpReplace),
    ("concat", Kind::Sum),
    ("concat_ws", Kind::ConcatWs),
    ("array_concat", Kind::Sum),
    ("array_cat", Kind::Sum),
    ("list_concat", Kind::Sum),
    ("list_cat", Kind::Sum),
    ("encode", Kind::Encode),
    ("range", Kind::Range),
    ("generate_series", Kind::Range),
    ("array_repeat", Kind::ArrayRepeat),
    ("list_repeat", Kind::ArrayRepeat),
    ("array_resize", Kind::ArrayResize),
    ("list_resize", Kind::ArrayResize),
];

/// The limit the guards enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guard {
    /// The most bytes one call may produce for one batch.
    pub max_bytes: u64,
}

impl Guard {
    /// A quarter of a query's memory, at most 256 MiB: what one function
    /// call may produce for one batch.
    pub fn for_query_memory(memory_per_query: usize) -> Guard {
        let quarter = u64::try_from(memory_per_query / 4).unwrap_or(u64::MAX);
        Guard { max_bytes: quarter.min(256 << 20) }
    }

    fn check(&self, function: &str, estimate: f64) -> Result<()> {
        if estimate <= self.max_bytes as f64 {
            return Ok(());
        }
        Err(DataFusionError::ResourcesExhausted(format!(
            "{function} would produce about {} MiB for one batch, more than a query may ({} MiB)",
            (estimate / f64::from(1 << 20)).ceil(),
            self.max_bytes >> 20
        )))
    }
}

/// A DataFusion function behind its guard. Same name, signature and result
/// as the function itself, so plans and column names do not change.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Guarded {
    inner: ScalarUDF,
    kind: Kind,
    guard: Guard,
}

impl ScalarUDFImpl for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.guard.check(self.name(), estimate(self.kind, &args.args, args.number_rows))?;
        self.inner.invoke_with_args(args)
    }
}

/// `left || right` on strings, guarded: NULL when either side is NULL, as
/// the operator is.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StringConcat {
    signature: Signature,
    guard: Guard,
}

impl StringConcat {
    fn new(guard: Guard) -> StringConcat {
        StringConcat { signature: Signature::any(2, Volatility::Immutable), guard }
    }
}

impl ScalarUDFImpl for StringConcat {
    fn name(&self) -> &str {
        "civlink_string_concat"
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        match args {
            [left, right] => Ok(format!("{left} || {right}")),
            _ => Ok("||".to_owned()),
        }
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        // The name the operator gives its column, so results keep their names.
        match args {
            [left, right] => Ok(format!("{} || {}", left.schema_name(), right.schema_name())),
            _ => Ok("||".to_owned()),
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Utf8))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.guard.check("||", estimate(Kind::Sum, &args.args, args.number_rows))?;
        let [left, right] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("|| takes two operands".into()));
        };
        let out_type = left.data_type();
        let scalar = matches!((left, right), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let plain =
            |v: &ColumnarValue| -> Result<ArrayRef> { Ok(arrow::compute::cast(&v.to_array(rows)?, &DataType::Utf8)?) };
        let joined = arrow::compute::kernels::concat_elements::concat_elements_dyn(&plain(left)?, &plain(right)?)?;
        let joined = arrow::compute::cast(&joined, &out_type)?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&joined, 0)?))
        } else {
            Ok(ColumnarValue::Array(joined))
        }
    }
}

/// The analyzer rule that puts the guards in every plan (see the module docs).
#[derive(Debug)]
pub struct GuardRule {
    guard: Guard,
    concat: Arc<ScalarUDF>,
}

impl GuardRule {
    /// The rule enforcing `guard`.
    pub fn new(guard: Guard) -> GuardRule {
        GuardRule { guard, concat: Arc::new(ScalarUDF::from(StringConcat::new(guard))) }
    }

    fn rewrite(&self, expr: Expr, plan: &LogicalPlan) -> Result<Transformed<Expr>> {
        match expr {
            Expr::ScalarFunction(ScalarFunction { func, args }) => {
                let is_guard = {
                    let inner: &dyn Any = func.inner().as_ref();
                    inner.is::<Guarded>() || inner.is::<StringConcat>()
                };
                match GUARDED.iter().find(|(name, _)| *name == func.name()).filter(|_| !is_guard) {
                    Some((_, kind)) => {
                        let guarded = Guarded { inner: func.as_ref().clone(), kind: *kind, guard: self.guard };
                        let func = Arc::new(ScalarUDF::from(guarded));
                        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args })))
                    }
                    None => Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args }))),
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right }) => {
                let schema = plan.schema();
                let is_text = |e: &Expr| {
                    e.get_type(schema.as_ref()).is_ok_and(|t| {
                        matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
                    })
                };
                if is_text(&left) && is_text(&right) {
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: Arc::clone(&self.concat),
                        args: vec![*left, *right],
                    })))
                } else {
                    Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right })))
                }
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

impl AnalyzerRule for GuardRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            // Expressions are typed against the node's inputs, which the
            // bottom-up walk has already rewritten.
            let inputs: Vec<LogicalPlan> = node.inputs().into_iter().cloned().collect();
            let typing = match inputs.as_slice() {
                [only] => only.clone(),
                _ => node.clone(),
            };
            let rewritten = node.map_expressions(|e| e.transform_up(|e| self.rewrite(e, &typing)))?;
            if rewritten.transformed { rewritten.data.recompute_schema().map(Transformed::yes) } else { Ok(rewritten) }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "civlink_resource_guard"
    }
}

/// Per-row byte lengths of a string argument (0 for NULL), or `None` when
/// it is not a string.
fn lengths(value: &ColumnarValue, rows: usize) -> Option<Vec<f64>> {
    match value {
        ColumnarValue::Scalar(scalar) => {
            let len = match scalar {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    v.as_ref().map_or(0, String::len)
                }
                ScalarValue::Null => 0,
                _ => return None,
            };
            Some(vec![len as f64; rows])
        }
        ColumnarValue::Array(array) => {
            let len = |i: usize, f: &dyn Fn(usize) -> usize| if array.is_null(i) { 0.0 } else { f(i) as f64 };
            Some(match array.data_type() {
                DataType::Utf8 => {
                    let a = array.as_string::<i32>();
                    (0..a.len()).map(|i| len(i, &|i| a.value(i).len())).collect()
                }
                DataType::LargeUtf8 => {
                    let a = array.as_string::<i64>();
                    (0..a.len()).map(|i| len(i, &|i| a.value(i).len())).collect()
                }
                DataType::Utf8View => {
                    let a = array.as_string_view();
                    (0..a.len()).map(|i| len(i, &|i| a.value(i).len())).collect()
                }
                DataType::Null => vec![0.0; array.len()],
                _ => return None,
            })
        }
    }
}

/// Per-row lengths of any argument: strings by their bytes, anything else by
/// its in-memory size per row (scalars by their own size).
fn sizes(value: &ColumnarValue, rows: usize) -> Vec<f64> {
    if let Some(lengths) = lengths(value, rows) {
        return lengths;
    }
    match value {
        ColumnarValue::Scalar(scalar) => vec![scalar.size() as f64; rows],
        ColumnarValue::Array(array) => {
            let per_row = array.get_array_memory_size() as f64 / array.len().max(1) as f64;
            vec![per_row; array.len()]
        }
    }
}

/// Per-row values of a numeric argument as `f64` (NULL: 0).
fn numbers(value: &ColumnarValue, rows: usize) -> Vec<f64> {
    let array = match value.to_array(rows.max(1)) {
        Ok(array) => array,
        Err(_) => return vec![0.0; rows],
    };
    let array = match array.data_type() {
        // Dates count in days, timestamps in their unit: the same unit their
        // range's step is converted to (see `steps`).
        DataType::Date32 | DataType::Date64 => arrow::compute::cast(&array, &DataType::Date32)
            .and_then(|a| arrow::compute::cast(&a, &DataType::Int32))
            .and_then(|a| arrow::compute::cast(&a, &DataType::Float64)),
        DataType::Timestamp(_, _) => {
            arrow::compute::cast(&array, &DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None))
                .and_then(|a| arrow::compute::cast(&a, &DataType::Int64))
                .and_then(|a| arrow::compute::cast(&a, &DataType::Float64))
        }
        _ => arrow::compute::cast(&array, &DataType::Float64),
    };
    match array {
        Ok(array) => {
            let floats = array.as_primitive::<arrow::datatypes::Float64Type>();
            (0..floats.len()).map(|i| if floats.is_null(i) { 0.0 } else { floats.value(i) }).collect()
        }
        Err(_) => vec![0.0; rows],
    }
}

/// Per-row steps of a range: numbers as they are; intervals in days (for
/// date ranges) or nanoseconds (for timestamp ranges), months as 28 days
/// (the shortest, so the count is an upper bound).
fn steps(value: &ColumnarValue, rows: usize, dates: bool) -> Vec<f64> {
    let interval = |v: IntervalMonthDayNano| {
        let days = f64::from(v.months) * 28.0 + f64::from(v.days);
        if dates { days + v.nanoseconds as f64 / 86_400e9 } else { days * 86_400e9 + v.nanoseconds as f64 }
    };
    match value {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(v)) => vec![v.map_or(0.0, interval); rows],
        ColumnarValue::Array(array) if matches!(array.data_type(), DataType::Interval(_)) => {
            match arrow::compute::cast(array, &DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)) {
                Ok(cast) => {
                    let values = cast.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>();
                    (0..values.len()).map(|i| if values.is_null(i) { 0.0 } else { interval(values.value(i)) }).collect()
                }
                Err(_) => vec![0.0; rows],
            }
        }
        other => numbers(other, rows),
    }
}

/// How many rows an invocation covers: a batch's, or one for scalars only.
fn rows_of(args: &[ColumnarValue], number_rows: usize) -> usize {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) { number_rows.max(1) } else { number_rows }
}

/// Upper bound of the bytes `kind` produces over `args`.
fn estimate(kind: Kind, args: &[ColumnarValue], number_rows: usize) -> f64 {
    let rows = rows_of(args, number_rows);
    let arg = |i: usize| args.get(i);
    let zeros = || vec![0.0; rows];
    let len = |i: usize| arg(i).map_or_else(zeros, |a| sizes(a, rows));
    let num = |i: usize| arg(i).map_or_else(zeros, |a| numbers(a, rows));
    let per_row: Vec<f64> = match kind {
        Kind::Repeat => len(0).iter().zip(num(1)).map(|(l, n)| l * n.max(0.0)).collect(),
        Kind::Pad => num(1).iter().map(|n| n.max(0.0) * 4.0).collect(),
        Kind::Replace => {
            let (s, from, to) = (len(0), len(1), len(2));
            (0..rows).map(|i| (s[i] / from[i].max(1.0) + 1.0) * to[i] + s[i]).collect()
        }
        Kind::RegexpReplace => {
            let (s, replacement) = (len(0), len(2));
            (0..rows).map(|i| (s[i] + 1.0) * replacement[i] + s[i]).collect()
        }
        Kind::Sum => (0..args.len()).map(len).fold(zeros(), |acc, l| acc.iter().zip(l).map(|(a, b)| a + b).collect()),
        Kind::ConcatWs => {
            let separator = len(0);
            let parts = args.len().saturating_sub(1) as f64;
            (1..args.len()).map(len).fold(separator.iter().map(|s| s * parts).collect::<Vec<_>>(), |acc, l| {
                acc.iter().zip(l).map(|(a, b)| a + b).collect()
            })
        }
        Kind::Encode => len(0).iter().map(|l| l * 2.0).collect(),
        Kind::Range => {
            let dates = arg(0).is_some_and(|a| matches!(a.data_type(), DataType::Date32 | DataType::Date64));
            let (start, stop, step) = match args.len() {
                1 => (zeros(), num(0), vec![1.0; rows]),
                2 => (num(0), num(1), vec![1.0; rows]),
                _ => (num(0), num(1), arg(2).map_or_else(zeros, |a| steps(a, rows, dates))),
            };
            (0..rows).map(|i| ((stop[i] - start[i]).abs() / step[i].abs().max(1e-9) + 1.0) * 8.0).collect()
        }
        Kind::ArrayRepeat => {
            let (element, count) = (len(0), num(1));
            (0..rows).map(|i| element[i].max(8.0) * count[i].max(0.0)).collect()
        }
        Kind::ArrayResize => num(1).iter().map(|n| n.max(0.0) * 16.0).collect(),
    };
    per_row.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn ctx(max_bytes: u64) -> SessionContext {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(Arc::new(GuardRule::new(Guard { max_bytes })));
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        ctx.sql(sql).await?.collect().await
    }

    fn is_resource_error(e: &DataFusionError) -> bool {
        matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
    }

    #[tokio::test]
    async fn amplifying_calls_are_refused_before_they_allocate() {
        let ctx = ctx(64 << 20);
        for sql in [
            "SELECT length(repeat('x', 2000000000))",
            "SELECT cardinality(range(0, 3000000000))",
            "SELECT cardinality(generate_series(1, 3000000000))",
            "SELECT length(lpad('x', 2000000000))",
            "SELECT length(replace(repeat('a', 1000000), 'a', repeat('b', 1000000)))",
            "SELECT cardinality(array_repeat(1, 2000000000))",
            "SELECT cardinality(range(DATE '0001-01-01', DATE '9999-12-31', INTERVAL '1 second'))",
        ] {
            let err = run(&ctx, sql).await.expect_err(sql);
            assert!(is_resource_error(&err), "{sql}: {err}");
        }
        // A chain of `||` that doubles a value: refused once it is too large.
        let mut doubling = "repeat('x', 1000000)".to_owned();
        for _ in 0..8 {
            doubling = format!("({doubling} || {doubling})");
        }
        let err = run(&ctx, &format!("SELECT length({doubling})")).await.expect_err("doubling");
        assert!(is_resource_error(&err), "{err}");
    }

    #[tokio::test]
    async fn ordinary_calls_run_and_keep_their_names() {
        let ctx = ctx(64 << 20);
        let batches =
            run(&ctx, "SELECT repeat('ab', 3) AS r, 'a' || 'b', concat('x', NULL), cardinality(range(1, 10))")
                .await
                .unwrap();
        let batch = &batches[0];
        assert_eq!(batch.schema().field(1).name(), "Utf8(\"a\") || Utf8(\"b\")");
        let text = arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("ababab") && text.contains("| ab ") && text.contains("| x "), "{text}");
        // `||` keeps the operator's NULL semantics (concat() would not).
        let batches = run(&ctx, "SELECT 'a' || CAST(NULL AS VARCHAR) IS NULL").await.unwrap();
        let nulls = batches[0].column(0).as_boolean();
        assert!(nulls.value(0));
        // Over a column too.
        let batches =
            run(&ctx, "SELECT v || '!' FROM (VALUES ('a'), (NULL), ('c')) t(v) ORDER BY 1 NULLS LAST").await.unwrap();
        let strings = arrow::compute::cast(batches[0].column(0), &DataType::Utf8).unwrap();
        let values: Vec<_> = strings.as_string::<i32>().iter().collect();
        assert_eq!(values, [Some("a!"), Some("c!"), None]);
    }

    #[test]
    fn the_guard_is_a_quarter_of_the_query_memory_up_to_256_mib() {
        assert_eq!(Guard::for_query_memory(64 << 20).max_bytes, 16 << 20);
        assert_eq!(Guard::for_query_memory(4 << 30).max_bytes, 256 << 20);
    }
}
