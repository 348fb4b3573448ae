//! Source column types: what each engine's types become in Arrow, and the
//! SQL that reads each as text (the one form both drivers decode the same
//! way; Arrow's casts then give the typed column).

use arrow::datatypes::{DataType, TimeUnit};

use super::Engine;

/// What a source column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any integer type → `Int64`.
    Integer,
    /// `numeric`/`decimal` of known precision and scale → `Decimal128(p, s)`.
    Decimal(u8, i8),
    /// `numeric` of unknown precision (a query's column) → text.
    Numeric,
    /// `real`, `double precision`, `float`, `double` → `Float64`.
    Float,
    /// Text, char, varchar, uuid, enum, time, interval → `Utf8`.
    Text,
    /// JSON, as its text → `Utf8`.
    Json,
    /// `date` → `Date32` (MySQL's zero date `0000-00-00` → NULL).
    Date,
    /// `timestamp` / `datetime` (no zone) → `Timestamp(µs)`.
    Timestamp,
    /// `timestamptz` / MySQL `timestamp` → `Timestamp(µs, "UTC")`.
    TimestampTz,
    /// `boolean`, MySQL `tinyint(1)` → `Boolean`.
    Boolean,
    /// `bytea`, `blob`, `binary`, `varbinary` → `Binary`.
    Binary,
}

impl Kind {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Integer => DataType::Int64,
            Kind::Decimal(p, s) => DataType::Decimal128(p, s),
            Kind::Numeric | Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Boolean => DataType::Boolean,
            Kind::Binary => DataType::Binary,
        }
    }

    /// Whether a cursor of this kind can look back (`lookback` seconds or units).
    pub fn looks_back(self) -> bool {
        matches!(self, Kind::Integer | Kind::Timestamp | Kind::TimestampTz)
    }
}

/// The kind of a column from its engine's type name (information_schema's
/// `data_type` / `column_type`, or the driver's name for a query's column),
/// with the precision and scale when known. `None`: unsupported.
pub fn kind_of(
    engine: Engine,
    type_name: &str,
    column_type: Option<&str>,
    precision: Option<i64>,
    scale: Option<i64>,
) -> Option<Kind> {
    let name = type_name.trim().to_ascii_lowercase();
    let decimal = || match (precision, scale) {
        (Some(p), Some(s)) if (1..=38).contains(&p) && (0..=p).contains(&s) => Kind::Decimal(p as u8, s as i8),
        _ => Kind::Numeric,
    };
    let kind = match engine {
        Engine::Postgres => match name.as_str() {
            "smallint" | "integer" | "bigint" | "int2" | "int4" | "int8" | "smallserial" | "serial" | "bigserial" => {
                Kind::Integer
            }
            "numeric" | "decimal" => decimal(),
            "real" | "double precision" | "float4" | "float8" => Kind::Float,
            "text"
            | "character varying"
            | "varchar"
            | "character"
            | "char"
            | "bpchar"
            | "name"
            | "uuid"
            | "citext"
            | "time without time zone"
            | "time with time zone"
            | "time"
            | "timetz"
            | "interval" => Kind::Text,
            "json" | "jsonb" => Kind::Json,
            "date" => Kind::Date,
            "timestamp without time zone" | "timestamp" => Kind::Timestamp,
            "timestamp with time zone" | "timestamptz" => Kind::TimestampTz,
            "boolean" | "bool" => Kind::Boolean,
            "bytea" => Kind::Binary,
            _ => return None,
        },
        Engine::MySql => {
            let column_type = column_type.unwrap_or_default().trim().to_ascii_lowercase();
            if column_type.starts_with("tinyint(1)") || name == "boolean" || name == "bool" {
                return Some(Kind::Boolean);
            }
            match name.as_str() {
                "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => Kind::Integer,
                "decimal" | "numeric" => decimal(),
                "float" | "double" | "real" => Kind::Float,
                "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "time" => {
                    Kind::Text
                }
                "json" => Kind::Json,
                "date" => Kind::Date,
                "datetime" => Kind::Timestamp,
                "timestamp" => Kind::TimestampTz,
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary,
                _ => return None,
            }
        }
    };
    Some(kind)
}

/// An identifier quoted for `engine`.
pub fn quote(engine: Engine, name: &str) -> String {
    match engine {
        Engine::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        Engine::MySql => format!("`{}`", name.replace('`', "``")),
    }
}

/// A string literal for `engine`.
pub fn literal(engine: Engine, value: &str) -> String {
    match engine {
        Engine::Postgres => format!("'{}'", value.replace('\'', "''")),
        Engine::MySql => format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''")),
    }
}

/// The SQL reading column `column` (already quoted) of kind `kind` as text,
/// in the form [`Kind::data_type`]'s cast reads.
pub fn text_expression(engine: Engine, kind: Kind, column: &str) -> String {
    match (engine, kind) {
        (Engine::Postgres, Kind::Date) => format!("to_char({column}, 'YYYY-MM-DD')"),
        (Engine::Postgres, Kind::Timestamp) => format!("to_char({column}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"),
        // The session runs in UTC, so this is the instant in UTC.
        (Engine::Postgres, Kind::TimestampTz) => {
            format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')")
        }
        (Engine::Postgres, Kind::Boolean) => {
            format!("CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END")
        }
        (Engine::Postgres, Kind::Binary) => format!("encode({column}, 'hex')"),
        (Engine::Postgres, _) => format!("CAST({column} AS TEXT)"),
        // Zero dates (0000-00-00, and dates with a zero month or day) read as NULL.
        (Engine::MySql, Kind::Date) => {
            format!(
                "CASE WHEN MONTH({column}) = 0 OR DAY({column}) = 0 THEN NULL ELSE DATE_FORMAT({column}, '%Y-%m-%d') END"
            )
        }
        (Engine::MySql, Kind::Timestamp | Kind::TimestampTz) => format!(
            "CASE WHEN MONTH({column}) = 0 OR DAY({column}) = 0 THEN NULL ELSE DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%f') END"
        ),
        (Engine::MySql, Kind::Boolean) => {
            format!("CASE WHEN {column} <> 0 THEN 'true' WHEN {column} = 0 THEN 'false' END")
        }
        (Engine::MySql, Kind::Binary) => format!("HEX({column})"),
        (Engine::MySql, _) => format!("CAST({column} AS CHAR)"),
    }
}

/// The condition "`column` is at or past `bound`, less `lookback`" for a
/// cursor of `kind` (a bound from [`text_expression`]'s form).
pub fn cursor_condition(engine: Engine, kind: Kind, column: &str, bound: &str, lookback: u64) -> String {
    let value = literal(engine, bound);
    if lookback == 0 || !kind.looks_back() {
        return format!("{column} >= {value}");
    }
    match (engine, kind) {
        (Engine::Postgres, Kind::Integer) => format!("{column} >= CAST({value} AS BIGINT) - {lookback}"),
        (Engine::Postgres, Kind::Timestamp) => {
            format!("{column} >= CAST({value} AS TIMESTAMP) - INTERVAL '{lookback} seconds'")
        }
        (Engine::Postgres, _) => format!("{column} >= CAST({value} AS TIMESTAMPTZ) - INTERVAL '{lookback} seconds'"),
        (Engine::MySql, Kind::Integer) => format!("{column} >= CAST({value} AS SIGNED) - {lookback}"),
        (Engine::MySql, _) => format!("{column} >= CAST({value} AS DATETIME(6)) - INTERVAL {lookback} SECOND"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_map_every_documented_type() {
        let pg = |t: &str| kind_of(Engine::Postgres, t, None, Some(12), Some(2));
        assert_eq!(pg("integer"), Some(Kind::Integer));
        assert_eq!(pg("numeric"), Some(Kind::Decimal(12, 2)));
        assert_eq!(kind_of(Engine::Postgres, "NUMERIC", None, None, None), Some(Kind::Numeric));
        assert_eq!(pg("timestamp with time zone"), Some(Kind::TimestampTz));
        assert_eq!(pg("jsonb"), Some(Kind::Json));
        assert_eq!(pg("bytea"), Some(Kind::Binary));
        assert_eq!(pg("USER-DEFINED"), None);
        let my = |t: &str, c: &str| kind_of(Engine::MySql, t, Some(c), Some(10), Some(0));
        assert_eq!(my("tinyint", "tinyint(1)"), Some(Kind::Boolean));
        assert_eq!(my("tinyint", "tinyint(4)"), Some(Kind::Integer));
        assert_eq!(my("datetime", "datetime"), Some(Kind::Timestamp));
        assert_eq!(my("timestamp", "timestamp"), Some(Kind::TimestampTz));
        assert_eq!(my("longblob", "longblob"), Some(Kind::Binary));
        assert_eq!(my("geometry", "geometry"), None);
    }

    #[test]
    fn literals_and_names_are_quoted() {
        assert_eq!(quote(Engine::Postgres, "a\"b"), "\"a\"\"b\"");
        assert_eq!(quote(Engine::MySql, "a`b"), "`a``b`");
        assert_eq!(literal(Engine::MySql, "x'\\"), "'x''\\\\'");
        assert_eq!(
            cursor_condition(Engine::Postgres, Kind::Integer, "\"id\"", "41", 5),
            "\"id\" >= CAST('41' AS BIGINT) - 5"
        );
        assert_eq!(cursor_condition(Engine::MySql, Kind::Text, "`k`", "x", 5), "`k` >= 'x'");
    }
}
