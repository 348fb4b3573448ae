//! SQL functions over the national codes, registered in every session.
//!
//! | function | returns | meaning |
//! |---|---|---|
//! | `division_level(code)` | Utf8 | `province`, `city`, `county`, `township` or `village` |
//! | `division_parent(code, level)` | Utf8 | the 12-digit ancestor at `level` (`'county'`, `'县'` or `3`) |
//! | `division_name(code)` | Utf8 | the division's name from the shipped table (青海省, 城东区, …) |
//! | `id_birth_date(id)` | Date32 | the birth date of a GB 11643 citizen ID number |
//! | `id_sex(id)` | Utf8 | the GB/T 2261.1 sex code: `'1'` male, `'2'` female |
//! | `id_age(id, date)` | Int64 | full years of age on `date` |
//! | `civlink_mask(value, strategy)` | Utf8 | `value` masked by a `x-civlink-mask` strategy given as JSON |
//!
//! Every function maps NULL to NULL, and an input that is not a valid code, ID
//! number or level to NULL as well: a column of real-world data has bad values
//! in it, and one of them must not fail a whole query. Code arguments accept
//! `Utf8`, `LargeUtf8` and `Utf8View` (the Delta scan hands strings out as
//! views); division codes also accept integers (a 12-digit code fits in one).
//!
//! `civlink_mask` is what [`crate::scope::ScopedTable`] puts over masked
//! columns; it is registered too so that a client can reproduce a mask, and it
//! can never unmask anything. A strategy that does not parse masks to NULL
//! (fail closed).
//!
//! # The mask key stays below the scope boundary
//!
//! The `pseudonym` strategy needs the deployment's [`MaskKey`]. Only the
//! scoped tables hold a keyed instance ([`keyed_mask_udf`]), placed by
//! [`crate::scope::ScopedTable`] inside its own plan, where user SQL never
//! reaches it. The `civlink_mask` registered in sessions ([`mask_udf`]) has no
//! key, so `pseudonym` there stars the value like `full`: with the key, a
//! client could compute the pseudonym of any ID number it guesses, which is
//! exactly the lookup and brute-force oracle pseudonyms exist to prevent.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Builder, Int64Builder, StringBuilder};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use civlink_standards::division::{DivisionCode, DivisionTable, Level};
use civlink_standards::idcard::{CitizenId, today_in_china};
use civlink_standards::mask::{MaskKey, MaskStrategy};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// Name of the masking function.
pub const MASK_FUNCTION: &str = "civlink_mask";

/// Every function of this module, ready to register.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(CodeFunction::new(CodeFn::DivisionLevel)),
        ScalarUDF::from(DivisionParent::new()),
        ScalarUDF::from(CodeFunction::new(CodeFn::DivisionName)),
        ScalarUDF::from(CodeFunction::new(CodeFn::IdBirthDate)),
        ScalarUDF::from(CodeFunction::new(CodeFn::IdSex)),
        ScalarUDF::from(IdAge::new()),
        mask_udf(),
    ]
}

/// Register every function of this module with a session.
pub fn register_all(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}

/// The keyless masking function, as registered in every session: `pseudonym`
/// stars the value (module docs).
pub fn mask_udf() -> ScalarUDF {
    ScalarUDF::from(Mask::new(None))
}

/// The masking function holding the deployment's mask key, which computes
/// `pseudonym`: for [`crate::scope::ScopedTable`] only, never for a session's
/// function registry (module docs).
pub fn keyed_mask_udf(key: &MaskKey) -> ScalarUDF {
    ScalarUDF::from(Mask::new(Some(key.clone())))
}

/// Whether a type is one of Arrow's three string types.
fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The type a string argument is coerced to: strings stay as they are (no copy
/// of a view column), NULL literals and dictionaries of strings become `Utf8`.
/// Integers are accepted where `integers` is set (division codes stored as numbers).
fn coerce_string(function: &str, t: &DataType, integers: bool) -> Result<DataType> {
    match t {
        t if is_string(t) => Ok(t.clone()),
        DataType::Null => Ok(DataType::Utf8),
        DataType::Dictionary(_, value) if is_string(value) => Ok(DataType::Utf8),
        t if integers && t.is_integer() => Ok(DataType::Utf8),
        other => plan_err!("{function} expects a string argument, got {other}"),
    }
}

/// The values of a string array (`Utf8`, `LargeUtf8`, `Utf8View`), or of an
/// all-NULL array as NULLs.
fn strings<'a>(function: &str, array: &'a ArrayRef) -> Result<Vec<Option<&'a str>>> {
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        DataType::Null => vec![None; array.len()],
        other => return exec_err!("{function}: unexpected argument type {other} (after coercion)"),
    })
}

/// Evaluate `f` over array arguments, keeping scalar-in → scalar-out so that
/// constant arguments are computed once rather than once per row.
fn invoke(args: ScalarFunctionArgs, f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>) -> Result<ColumnarValue> {
    let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if all_scalar { 1 } else { args.number_rows };
    let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
    let out = f(&arrays)?;
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// Days since the Unix epoch, as Arrow's `Date32` stores dates.
fn to_date32(date: NaiveDate) -> Option<i32> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from(date.signed_duration_since(epoch).num_days()).ok()
}

/// A date from Arrow's `Date32`.
fn from_date32(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::TimeDelta::try_days(i64::from(days))?)
}

/// The one-argument functions over a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CodeFn {
    DivisionLevel,
    DivisionName,
    IdBirthDate,
    IdSex,
}

impl CodeFn {
    fn name(self) -> &'static str {
        match self {
            CodeFn::DivisionLevel => "division_level",
            CodeFn::DivisionName => "division_name",
            CodeFn::IdBirthDate => "id_birth_date",
            CodeFn::IdSex => "id_sex",
        }
    }

    fn takes_integers(self) -> bool {
        matches!(self, CodeFn::DivisionLevel | CodeFn::DivisionName)
    }
}

/// `division_level`, `division_name`, `id_birth_date`, `id_sex`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CodeFunction {
    function: CodeFn,
    signature: Signature,
}

impl CodeFunction {
    fn new(function: CodeFn) -> Self {
        CodeFunction { function, signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for CodeFunction {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![coerce_string(self.name(), t, self.function.takes_integers())?]),
            _ => plan_err!("{} takes one argument, got {}", self.name(), arg_types.len()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.function {
            CodeFn::IdBirthDate => DataType::Date32,
            CodeFn::DivisionLevel | CodeFn::DivisionName | CodeFn::IdSex => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let function = self.function;
        invoke(args, |arrays| {
            let [codes] = arrays else {
                return exec_err!("{} takes one argument", function.name());
            };
            let values = strings(function.name(), codes)?;
            Ok(match function {
                CodeFn::DivisionLevel => {
                    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
                    for v in values {
                        out.append_option(v.and_then(|v| DivisionCode::parse(v).ok()).map(|c| c.level().as_str()));
                    }
                    Arc::new(out.finish()) as ArrayRef
                }
                CodeFn::DivisionName => {
                    let table = DivisionTable::builtin();
                    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 9);
                    for v in values {
                        out.append_option(v.and_then(|v| DivisionCode::parse(v).ok()).and_then(|c| table.name(&c)));
                    }
                    Arc::new(out.finish())
                }
                CodeFn::IdBirthDate => {
                    let today = today_in_china();
                    let mut out = Date32Builder::with_capacity(values.len());
                    for v in values {
                        out.append_option(
                            v.and_then(|v| CitizenId::parse_on(v, today).ok())
                                .and_then(|id| to_date32(id.birth_date())),
                        );
                    }
                    Arc::new(out.finish())
                }
                CodeFn::IdSex => {
                    let today = today_in_china();
                    let mut out = StringBuilder::with_capacity(values.len(), values.len());
                    for v in values {
                        out.append_option(
                            v.and_then(|v| CitizenId::parse_on(v, today).ok()).map(|id| id.sex().gb2261_code()),
                        );
                    }
                    Arc::new(out.finish())
                }
            })
        })
    }
}

/// `division_parent(code, level)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DivisionParent {
    signature: Signature,
}

impl DivisionParent {
    fn new() -> Self {
        DivisionParent { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for DivisionParent {
    fn name(&self) -> &str {
        "division_parent"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            // The level as text ('county', '县') or as its depth 1-5, which the
            // coercion turns into text so that `Level::from_str` reads both.
            [code, level] => {
                Ok(vec![coerce_string(self.name(), code, true)?, coerce_string(self.name(), level, true)?])
            }
            _ => plan_err!("division_parent takes two arguments (code, level), got {}", arg_types.len()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke(args, |arrays| {
            let [codes, levels] = arrays else {
                return exec_err!("division_parent takes two arguments");
            };
            let codes = strings("division_parent", codes)?;
            let levels = strings("division_parent", levels)?;
            let mut out = StringBuilder::with_capacity(codes.len(), codes.len() * 12);
            for (code, level) in codes.into_iter().zip(levels) {
                let parent = code
                    .and_then(|c| DivisionCode::parse(c).ok())
                    .zip(level.and_then(|l| l.parse::<Level>().ok()))
                    .and_then(|(code, level)| code.parent(level));
                out.append_option(parent.as_ref().map(DivisionCode::as_str));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `id_age(id, date)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IdAge {
    signature: Signature,
}

impl IdAge {
    fn new() -> Self {
        IdAge { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for IdAge {
    fn name(&self) -> &str {
        "id_age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [id, date] => {
                let date_ok = is_string(date)
                    || matches!(date, DataType::Null | DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _));
                if !date_ok {
                    return plan_err!("id_age expects a date as its second argument, got {date}");
                }
                // Strings ('2024-01-01') and timestamps are cast to a date by DataFusion.
                Ok(vec![coerce_string(self.name(), id, false)?, DataType::Date32])
            }
            _ => plan_err!("id_age takes two arguments (id, date), got {}", arg_types.len()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke(args, |arrays| {
            let [ids, dates] = arrays else {
                return exec_err!("id_age takes two arguments");
            };
            let ids = strings("id_age", ids)?;
            let Some(dates) = dates.as_primitive_opt::<arrow::datatypes::Date32Type>() else {
                return exec_err!("id_age: the date argument is {} after coercion", dates.data_type());
            };
            let today = today_in_china();
            let mut out = Int64Builder::with_capacity(ids.len());
            for (id, date) in ids.into_iter().zip(dates.iter()) {
                let age = id
                    .and_then(|id| CitizenId::parse_on(id, today).ok())
                    .zip(date.and_then(from_date32))
                    .and_then(|(id, date)| id.age_on(date))
                    .map(i64::from);
                out.append_option(age);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `values` masked by `strategy` (`pseudonym` keyed with `key`), as the keyed
/// `civlink_mask` computes them: what the table cache precomputes once per
/// table version instead of once per query. Non-string values are masked as
/// their text.
pub fn mask_array(values: &ArrayRef, strategy: &MaskStrategy, key: &MaskKey) -> Result<ArrayRef> {
    let text;
    let values = if is_string(values.data_type()) || values.data_type() == &DataType::Null {
        values
    } else {
        text = arrow::compute::cast(values, &DataType::Utf8)?;
        &text
    };
    let strings = strings(MASK_FUNCTION, values)?;
    let mut out = StringBuilder::with_capacity(strings.len(), strings.len() * 8);
    for v in strings {
        out.append_option(v.and_then(|v| strategy.apply_keyed(v, key)));
    }
    Ok(Arc::new(out.finish()))
}

/// `civlink_mask(value, strategy_json)`, keyed or not.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mask {
    signature: Signature,
    /// The deployment's mask key (its `Debug` shows no bytes); `None` in the
    /// function users can call.
    key: Option<MaskKey>,
}

impl Mask {
    fn new(key: Option<MaskKey>) -> Self {
        Mask { signature: Signature::user_defined(Volatility::Immutable), key }
    }

    /// Mask one value; a strategy that does not parse hides the value entirely.
    fn mask_value(&self, strategy: Option<&MaskStrategy>, value: &str) -> Option<String> {
        let strategy = strategy?;
        match &self.key {
            Some(key) => strategy.apply_keyed(value, key),
            None => strategy.apply(value),
        }
    }
}

impl ScalarUDFImpl for Mask {
    fn name(&self) -> &str {
        MASK_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, strategy] => {
                // Non-string values are masked as their text.
                let value = if is_string(value) { value.clone() } else { DataType::Utf8 };
                Ok(vec![value, coerce_string(MASK_FUNCTION, strategy, false)?])
            }
            _ => plan_err!("{MASK_FUNCTION} takes two arguments (value, strategy JSON), got {}", arg_types.len()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // The strategy is nearly always a literal: parse it once, not per row.
        let constant = match args.args.get(1) {
            Some(ColumnarValue::Scalar(s)) => Some(match s {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    v.as_deref().and_then(|j| serde_json::from_str::<MaskStrategy>(j).ok())
                }
                _ => None,
            }),
            _ => None,
        };
        invoke(args, |arrays| {
            let [values, strategies] = arrays else {
                return exec_err!("{MASK_FUNCTION} takes two arguments");
            };
            let values = strings(MASK_FUNCTION, values)?;
            let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
            match constant {
                Some(strategy) => {
                    for v in values {
                        out.append_option(v.and_then(|v| self.mask_value(strategy.as_ref(), v)));
                    }
                }
                None => {
                    let strategies = strings(MASK_FUNCTION, strategies)?;
                    let mut cache: Option<(&str, Option<MaskStrategy>)> = None;
                    for (v, s) in values.into_iter().zip(strategies) {
                        let strategy = match (s, &cache) {
                            (Some(s), Some((text, parsed))) if *text == s => *parsed,
                            (Some(s), _) => {
                                let parsed = serde_json::from_str::<MaskStrategy>(s).ok();
                                cache = Some((s, parsed));
                                parsed
                            }
                            (None, _) => None,
                        };
                        out.append_option(v.and_then(|v| self.mask_value(strategy.as_ref(), v)));
                    }
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    fn valid_id(first17: &str) -> String {
        let check = civlink_standards::idcard::check_character(first17).unwrap();
        format!("{first17}{check}")
    }

    async fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        register_all(&ctx);
        let ids: Vec<Option<String>> = vec![
            Some(valid_id("63010219900307123")),
            Some(valid_id("63010220000229002")),
            None,
            Some("not an id".into()),
            Some("63010219900307123X".into()),
        ];
        let codes = vec![Some("630102001001"), Some("630000000000"), None, Some("6301"), Some("630102000000")];
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8View, true),
            Field::new("code", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringViewArray::from(ids.iter().map(|s| s.as_deref()).collect::<Vec<_>>())),
                Arc::new(StringArray::from(codes)),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4), Some(5)])),
            ],
        )
        .unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    async fn strings_of(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for batch in batches {
            let column = arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
            out.extend(column.as_string::<i32>().iter().map(|v| v.map(str::to_owned)));
        }
        out
    }

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[tokio::test]
    async fn division_level_over_a_column_and_literals() {
        let ctx = ctx().await;
        assert_eq!(
            strings_of(&ctx, "SELECT division_level(code) FROM t").await,
            s(&[Some("village"), Some("province"), None, None, Some("county")])
        );
        assert_eq!(strings_of(&ctx, "SELECT division_level('630102001000')").await, s(&[Some("township")]));
        assert_eq!(strings_of(&ctx, "SELECT division_level(630100000000)").await, s(&[Some("city")]));
        assert_eq!(strings_of(&ctx, "SELECT division_level(NULL)").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_level('63010200100X')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_level('青海')").await, s(&[None]));
    }

    #[tokio::test]
    async fn division_parent_by_name_label_and_depth() {
        let ctx = ctx().await;
        assert_eq!(
            strings_of(&ctx, "SELECT division_parent(code, 'county') FROM t").await,
            s(&[Some("630102000000"), None, None, None, Some("630102000000")])
        );
        assert_eq!(strings_of(&ctx, "SELECT division_parent('630102001001', 2)").await, s(&[Some("630100000000")]));
        assert_eq!(strings_of(&ctx, "SELECT division_parent('630102001001', '省')").await, s(&[Some("630000000000")]));
        assert_eq!(
            strings_of(&ctx, "SELECT division_parent('630102001001', 'township')").await,
            s(&[Some("630102001000")])
        );
        assert_eq!(strings_of(&ctx, "SELECT division_parent('630102001001', 'galaxy')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_parent('630102001001', 9)").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_parent('630100000000', 'village')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_parent(NULL, 'city')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_parent(code, NULL) FROM t LIMIT 1").await, s(&[None]));
    }

    #[tokio::test]
    async fn division_name_from_the_shipped_table() {
        let ctx = ctx().await;
        assert_eq!(strings_of(&ctx, "SELECT division_name('630000000000')").await, s(&[Some("青海省")]));
        assert_eq!(strings_of(&ctx, "SELECT division_name(code) FROM t").await[1], Some("青海省".to_owned()));
        assert_eq!(strings_of(&ctx, "SELECT division_name('639900000000')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT division_name('x')").await, s(&[None]));
    }

    #[tokio::test]
    async fn id_functions_over_views_and_literals() {
        let ctx = ctx().await;
        assert_eq!(strings_of(&ctx, "SELECT id_sex(id) FROM t").await, s(&[Some("1"), Some("2"), None, None, None]));
        assert_eq!(
            strings_of(&ctx, "SELECT CAST(id_birth_date(id) AS VARCHAR) FROM t").await,
            s(&[Some("1990-03-07"), Some("2000-02-29"), None, None, None])
        );
        let batches = ctx.sql("SELECT id_age(id, DATE '2024-03-06') FROM t").await.unwrap().collect().await.unwrap();
        let ages: Vec<Option<i64>> =
            batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().iter()).collect();
        assert_eq!(ages, vec![Some(33), Some(24), None, None, None]);
        // Leap-day birthdays turn a year older on 1 March; dates before birth are NULL.
        let one = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().iter().next().flatten()
            }
        };
        let leap = valid_id("63010220000229002");
        let q = format!("SELECT id_age('{leap}', '2001-02-28')");
        let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
        assert_eq!(b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 0);
        let q = format!("SELECT id_age('{leap}', '2001-03-01')");
        let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
        assert_eq!(b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 1);
        let q = format!("SELECT id_age('{}', DATE '1980-01-01')", valid_id("63010219900307123"));
        let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
        assert!(b[0].column(0).is_null(0), "a date before birth has no age");
        assert_eq!(one("SELECT id_age(NULL, DATE '2020-01-01')").await, None);
        assert_eq!(one("SELECT id_age('bad', DATE '2020-01-01')").await, None);
        let q = format!("SELECT id_age('{}', NULL)", valid_id("63010219900307123"));
        let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
        assert!(b[0].column(0).is_null(0));
        // A timestamp works as the date.
        let q = format!("SELECT id_age('{}', TIMESTAMP '2020-03-07 10:00:00')", valid_id("63010219900307123"));
        let b = ctx.sql(&q).await.unwrap().collect().await.unwrap();
        assert_eq!(b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 30);
        // 15-digit numbers and full-width digits normalise like CitizenId::parse does.
        assert_eq!(strings_of(&ctx, "SELECT id_sex('630102900307123')").await, s(&[Some("1")]));
        let full_width: String = valid_id("63010219900307124")
            .chars()
            .map(|c| c.to_digit(10).and_then(|d| char::from_u32(0xff10 + d)).unwrap_or(c))
            .collect();
        assert_eq!(strings_of(&ctx, &format!("SELECT id_sex('{full_width}')")).await, s(&[Some("2")]));
    }

    #[tokio::test]
    async fn id_birth_date_is_a_date32() {
        let ctx = ctx().await;
        let b = ctx.sql("SELECT id_birth_date(id) AS d FROM t").await.unwrap().collect().await.unwrap();
        assert_eq!(b[0].schema().field(0).data_type(), &DataType::Date32);
        let d = b[0].column(0).as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(d.value_as_date(0), NaiveDate::from_ymd_opt(1990, 3, 7));
    }

    #[tokio::test]
    async fn wrong_argument_types_are_plan_errors() {
        let ctx = ctx().await;
        for sql in [
            "SELECT id_sex(1.5)",
            "SELECT id_sex(n) FROM t",
            "SELECT division_level()",
            "SELECT division_parent('630000000000')",
            "SELECT id_age('x', 3.5)",
        ] {
            let planned = ctx.sql(sql).await;
            let failed = match planned {
                Err(_) => true,
                Ok(df) => df.collect().await.is_err(),
            };
            assert!(failed, "{sql} should fail");
        }
    }

    #[tokio::test]
    async fn mask_applies_the_standard_strategies() {
        let ctx = ctx().await;
        let keep = r#"{"strategy":"keep_ends","first":6,"last":4}"#;
        let id = valid_id("63010219900307123");
        let masked = strings_of(&ctx, &format!("SELECT civlink_mask(id, '{keep}') FROM t")).await;
        assert_eq!(masked[0].as_deref(), Some(format!("630102********{}", &id[14..]).as_str()));
        assert_eq!(masked[2], None);
        assert_eq!(
            strings_of(&ctx, r#"SELECT civlink_mask('张三丰', '{"strategy":"name"}')"#).await,
            s(&[Some("张**")])
        );
        assert_eq!(strings_of(&ctx, r#"SELECT civlink_mask('青海', '{"strategy":"full"}')"#).await, s(&[Some("**")]));
        assert_eq!(strings_of(&ctx, r#"SELECT civlink_mask('x', '{"strategy":"redact"}')"#).await, s(&[None]));
        assert_eq!(strings_of(&ctx, r#"SELECT civlink_mask('x', '{"strategy":"none"}')"#).await, s(&[Some("x")]));
        // Fail closed: a strategy that does not parse hides the value.
        assert_eq!(strings_of(&ctx, "SELECT civlink_mask('x', 'nonsense')").await, s(&[None]));
        assert_eq!(strings_of(&ctx, "SELECT civlink_mask('x', NULL)").await, s(&[None]));
        // Numbers are masked as text.
        assert_eq!(
            strings_of(&ctx, r#"SELECT civlink_mask(n, '{"strategy":"full"}') FROM t"#).await[0],
            Some("*".into())
        );
        // A per-row strategy column works too.
        let per_row = strings_of(
            &ctx,
            r#"SELECT civlink_mask(code, CASE WHEN n = 1 THEN '{"strategy":"full"}' ELSE '{"strategy":"none"}' END) FROM t"#,
        )
        .await;
        assert_eq!(per_row[0].as_deref(), Some("************"));
        assert_eq!(per_row[1].as_deref(), Some("630000000000"));
    }

    #[tokio::test]
    async fn pseudonyms_need_the_keyed_function() {
        let ctx = ctx().await;
        let id = valid_id("63010219900307123");
        let sql = format!(r#"SELECT civlink_mask('{id}', '{{"strategy":"pseudonym"}}')"#);
        // The session's function has no key: stars, never a (guessable) token.
        assert_eq!(strings_of(&ctx, &sql).await, s(&[Some("******************")]));

        let key = MaskKey::from_bytes([9; civlink_standards::mask::MASK_KEY_LEN]);
        let keyed = SessionContext::new();
        keyed.register_udf(keyed_mask_udf(&key));
        let expected = key.pseudonym(&id);
        assert_eq!(strings_of(&keyed, &sql).await, s(&[Some(expected.as_str())]));
        assert!(expected.starts_with("ps_") && expected.len() == 27, "{expected}");
        // The other strategies are the same keyed or not.
        assert_eq!(
            strings_of(&keyed, r#"SELECT civlink_mask('张三丰', '{"strategy":"name"}')"#).await,
            s(&[Some("张**")])
        );
        // Neither instance shows the key in its Debug output.
        assert!(format!("{:?}", keyed_mask_udf(&key)).contains("MaskKey(<redacted>)"));
        assert_ne!(keyed_mask_udf(&key), mask_udf());
    }

    #[test]
    fn dates_round_trip_through_date32() {
        for (y, m, d) in [(1970, 1, 1), (1800, 1, 1), (2000, 2, 29), (2099, 12, 31)] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(from_date32(to_date32(date).unwrap()), Some(date));
        }
        assert_eq!(to_date32(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), Some(1));
    }
}
