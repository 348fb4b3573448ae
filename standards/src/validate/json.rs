//! The JSON side of validation: Arrow rows as JSON objects, and a `jsonschema`
//! validator that knows civlink's formats and keywords.
//!
//! The columnar path never uses this module. The fallback path uses it for
//! keywords the columnar path does not cover, and the oracle tests and the
//! benchmark use it as the reference ("the obvious path").

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate};
use jsonschema::paths::Location;
use jsonschema::{Keyword, ValidationError};
use serde_json::{Map, Number, Value};

use crate::code_table::{CodeTable, CodeTableRegistry};
use crate::division::DivisionTable;
use crate::idcard;
use crate::standard::{Standard, ValueKind};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// A Date32 value as a calendar date, when chrono can represent it.
pub fn date32_to_date(days: i32) -> Option<NaiveDate> {
    days.checked_add(UNIX_EPOCH_CE_DAYS).and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// The JSON text form of a Date32 value: `YYYY-MM-DD`, or chrono's signed
/// form outside 0000..=9999 (`+10000-01-01`, `-0001-12-31`).
///
/// Every Date32 value has one, even past chrono's ±262143 years: such a value
/// is a date that is there but not RFC 3339, never an absent one, so both
/// validation paths must see it as text that fails `format: date`.
pub fn date32_to_string(days: i32) -> String {
    match date32_to_date(days) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => civil_text(i64::from(days)),
    }
}

/// The JSON text form of a UTC microsecond timestamp (RFC 3339 with `Z`), in
/// chrono's signed form outside 0000..=9999 like [`date32_to_string`].
pub fn timestamp_to_string(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => {
            const MICROS_PER_DAY: i64 = 86_400_000_000;
            let (days, of_day) = (micros.div_euclid(MICROS_PER_DAY), micros.rem_euclid(MICROS_PER_DAY));
            let (seconds, fraction) = (of_day / 1_000_000, of_day % 1_000_000);
            format!(
                "{}T{:02}:{:02}:{:02}.{fraction:06}Z",
                civil_text(days),
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            )
        }
    }
}

/// `YYYY-MM-DD` of a day count from 1970-01-01 in the proleptic Gregorian
/// calendar, for days chrono cannot represent (H. Hinnant's `civil_from_days`;
/// i64 arithmetic cannot overflow for any i32 day or i64 microsecond count).
fn civil_text(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+05}-{month:02}-{day:02}")
    }
}

/// One row of a batch typed by `standard` as the JSON object the standard describes.
///
/// A NULL becomes JSON `null` when the property admits null, and an absent
/// property otherwise (see the module docs of [`crate::standard`]).
pub fn row_to_json(standard: &Standard, batch: &RecordBatch, row: usize) -> Value {
    let mut object = Map::with_capacity(standard.properties.len());
    for property in &standard.properties {
        let Some(column) = batch.column_by_name(&property.name) else { continue };
        if column.is_null(row) {
            if property.admits_null {
                object.insert(property.name.clone(), Value::Null);
            }
            continue;
        }
        if let Some(value) = cell_to_json(column.as_ref(), row) {
            object.insert(property.name.clone(), value);
        }
    }
    Value::Object(object)
}

/// One non-null cell as JSON, for the column types a standard produces.
pub fn cell_to_json(column: &dyn Array, row: usize) -> Option<Value> {
    Some(match column.data_type() {
        DataType::Utf8 => Value::String(column.as_any().downcast_ref::<StringArray>()?.value(row).to_owned()),
        DataType::Int64 => Value::Number(column.as_any().downcast_ref::<Int64Array>()?.value(row).into()),
        DataType::Float64 => {
            let v = column.as_any().downcast_ref::<Float64Array>()?.value(row);
            Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
        }
        DataType::Boolean => Value::Bool(column.as_any().downcast_ref::<BooleanArray>()?.value(row)),
        DataType::Date32 => {
            let days = column.as_any().downcast_ref::<Date32Array>()?.value(row);
            Value::String(date32_to_string(days))
        }
        DataType::Timestamp(_, _) => {
            let micros = column.as_any().downcast_ref::<TimestampMicrosecondArray>()?.value(row);
            Value::String(timestamp_to_string(micros))
        }
        DataType::LargeUtf8 => Value::String(column.as_string::<i64>().value(row).to_owned()),
        _ => return None,
    })
}

/// The text of a non-null cell of a date or date-time column, as the JSON form has it.
pub fn temporal_text(kind: ValueKind, column: &dyn Array, row: usize) -> Option<String> {
    match kind {
        ValueKind::Date => Some(date32_to_string(column.as_any().downcast_ref::<Date32Array>()?.value(row))),
        ValueKind::DateTime => {
            Some(timestamp_to_string(column.as_any().downcast_ref::<TimestampMicrosecondArray>()?.value(row)))
        }
        _ => None,
    }
}

/// `x-civlink-code-table` as a jsonschema keyword: a string must be a code of the table.
struct CodeTableKeyword {
    table: &'static CodeTable,
}

impl<'i> Keyword<'i> for CodeTableKeyword {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(ValidationError::custom(format!("not a code of table \"{}\"", self.table.name)))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        match instance {
            Value::String(code) => self.table.contains(code),
            _ => true,
        }
    }
}

fn code_table_keyword<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _location: Location,
) -> Result<Box<dyn for<'i> Keyword<'i>>, ValidationError<'a>> {
    let name = value.as_str().ok_or_else(|| ValidationError::custom("x-civlink-code-table must name a table"))?;
    let table = CodeTableRegistry::builtin()
        .get(name)
        .ok_or_else(|| ValidationError::custom(format!("unknown code table \"{name}\"")))?;
    Ok(Box::new(CodeTableKeyword { table }))
}

/// A `jsonschema` validator for `schema` with civlink's formats (`gb11643`,
/// `division-code`) and keyword (`x-civlink-code-table`), asserting formats.
pub fn json_schema_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    let today = idcard::today_in_china();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .with_format("gb11643", move |s: &str| idcard::validate_str(s, today).is_ok())
        .with_format("division-code", |s: &str| DivisionTable::builtin().contains_str(s))
        .with_keyword("x-civlink-code-table", code_table_keyword)
        .build(schema)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_render_as_rfc3339() {
        assert_eq!(date32_to_string(0), "1970-01-01");
        assert_eq!(date32_to_string(-1), "1969-12-31");
        assert_eq!(timestamp_to_string(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(date32_to_string(i32::MAX), "+5881580-07-11");
        assert_eq!(date32_to_string(i32::MIN), "-5877641-06-23");
        assert_eq!(timestamp_to_string(i64::MAX), "+294247-01-10T04:00:54.775807Z");
        assert_eq!(timestamp_to_string(i64::MIN), "-290308-12-21T19:59:05.224192Z");
        // Outside chrono's range the fallback computes exactly what chrono does inside it.
        for days in [-719_528, -719_162, 0, 2_932_896, 2_932_897, 95_000_000, -96_000_000] {
            if let Some(d) = date32_to_date(days) {
                assert_eq!(civil_text(i64::from(days)), d.format("%Y-%m-%d").to_string(), "{days}");
            }
        }
    }

    #[test]
    fn the_json_validator_knows_civlink_formats() {
        let validator = json_schema_validator(&json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "gb11643"},
                "sex": {"type": "string", "x-civlink-code-table": "sex"}
            }
        }))
        .unwrap();
        assert!(validator.is_valid(&json!({"id": "11010519491231002X", "sex": "1"})));
        assert!(!validator.is_valid(&json!({"id": "110105194912310021"})));
        assert!(!validator.is_valid(&json!({"sex": "男"})));
    }
}
