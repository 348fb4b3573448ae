//! A data standard: a JSON Schema 2020-12 document describing one flat record,
//! with civlink's extension keywords.
//!
//! ## Document shape
//! ```json
//! {
//!   "$schema": "https://json-schema.org/draft/2020-12/schema",
//!   "x-civlink-id": "gongan.population",
//!   "x-civlink-version": "1.0.0",
//!   "title": "户籍人口",
//!   "type": "object",
//!   "x-civlink-primary-key": ["id_number"],
//!   "x-civlink-division-column": "division_code",
//!   "required": ["id_number", "name"],
//!   "properties": {
//!     "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
//!                   "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
//!                   "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}}
//!   }
//! }
//! ```
//!
//! ## Extension keywords
//! | keyword | where | meaning |
//! |---|---|---|
//! | `x-civlink-id` | root | the standard's id, `department.name` |
//! | `x-civlink-version` | root | the standard's version (text, e.g. semver) |
//! | `x-civlink-primary-key` | root | column names forming the primary key |
//! | `x-civlink-division-column` | root | the 12-digit division code column used for row scoping |
//! | `x-civlink-sensitivity` | property | `public` / `internal` / `sensitive` / `secret`, see [`Sensitivity`] |
//! | `x-civlink-pii` | property | `true` when the value is personal information (个人信息) |
//! | `x-civlink-mask` | property | how the value is masked, see [`MaskStrategy`] |
//! | `x-civlink-code-table` | property | the code table (代码表) the value must belong to |
//!
//! ## Nulls
//! An Arrow NULL stands for an absent property, or for JSON `null` when the
//! property's `type` admits `"null"`. So a column is nullable exactly when its
//! property is not `required` or admits `null`.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::code_table::CodeTableRegistry;
use crate::mask::MaskStrategy;

/// Errors in a standard document. Every one names where (a JSON pointer).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// The text is not JSON.
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The document breaks the JSON Schema 2020-12 meta-schema.
    #[error("{pointer}: not a valid JSON Schema: {message}")]
    MetaSchema {
        /// Where in the document.
        pointer: String,
        /// What the meta-schema says.
        message: String,
    },
    /// The document is valid JSON Schema but not a valid civlink standard.
    #[error("{pointer}: {message}")]
    Invalid {
        /// Where in the document.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// A `format` that neither civlink nor the JSON Schema validator knows.
    #[error("{pointer}: unknown format \"{format}\"")]
    UnknownFormat {
        /// Where in the document.
        pointer: String,
        /// The format named.
        format: String,
    },
    /// An `x-civlink-code-table` naming a table that is not shipped.
    #[error("{pointer}: unknown code table \"{name}\"")]
    UnknownCodeTable {
        /// Where in the document.
        pointer: String,
        /// The table named.
        name: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sensitivity of a property, mapped onto GB/T 43697-2024 (数据安全技术 数据分类分级规则).
///
/// | civlink | GB/T 43697 | meaning here |
/// |---|---|---|
/// | `public` | 一般数据 (可公开) | may be published; never masked |
/// | `internal` | 一般数据 (内部) | shared between government departments; not masked |
/// | `sensitive` | 一般数据中的个人信息 / 敏感个人信息 | personal information (ID numbers, names, phones, bank accounts): masked unless granted |
/// | `secret` | 重要数据 | masked unless granted, and never exported in bulk |
///
/// 核心数据 (core data) is out of scope: civlink must not hold it.
/// Personal information is marked separately by `x-civlink-pii`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// 一般数据, publishable.
    Public,
    /// 一般数据, internal to government.
    #[default]
    Internal,
    /// Personal information.
    Sensitive,
    /// 重要数据.
    Secret,
}

impl Sensitivity {
    /// Whether values of this sensitivity are masked by default.
    pub fn masked_by_default(self) -> bool {
        matches!(self, Sensitivity::Sensitive | Sensitivity::Secret)
    }

    /// The GB/T 43697 class this maps to.
    pub fn gb43697_class(self) -> &'static str {
        match self {
            Sensitivity::Public => "一般数据(可公开)",
            Sensitivity::Internal => "一般数据(内部)",
            Sensitivity::Sensitive => "一般数据(个人信息)",
            Sensitivity::Secret => "重要数据",
        }
    }
}

/// The value kind of a column: one JSON type (plus an Arrow-specific refinement for dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// JSON string → Utf8.
    String,
    /// JSON string with format `date` → Date32.
    Date,
    /// JSON string with format `date-time` → Timestamp(µs, UTC).
    DateTime,
    /// JSON integer → Int64.
    Integer,
    /// JSON number → Float64.
    Number,
    /// JSON boolean → Boolean.
    Boolean,
}

impl ValueKind {
    /// The Arrow type a column of this kind has.
    pub fn data_type(self) -> DataType {
        match self {
            ValueKind::String => DataType::Utf8,
            ValueKind::Date => DataType::Date32,
            ValueKind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ValueKind::Integer => DataType::Int64,
            ValueKind::Number => DataType::Float64,
            ValueKind::Boolean => DataType::Boolean,
        }
    }

    /// The JSON Schema `type` of this kind's values.
    pub fn json_type(self) -> &'static str {
        match self {
            ValueKind::String | ValueKind::Date | ValueKind::DateTime => "string",
            ValueKind::Integer => "integer",
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
        }
    }

    /// The word used in messages ("cannot read 'abc' as integer").
    pub fn noun(self) -> &'static str {
        match self {
            ValueKind::String => "text",
            ValueKind::Date => "date",
            ValueKind::DateTime => "date-time",
            ValueKind::Integer => "integer",
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
        }
    }
}

/// Formats civlink checks itself, on the columnar path.
pub const CIVLINK_FORMATS: [&str; 4] = ["gb11643", "division-code", "date", "date-time"];

/// One property (column) of a standard.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// English snake_case column name.
    pub name: String,
    /// Chinese title (中文名称).
    pub title: String,
    /// Free description.
    pub description: Option<String>,
    /// Value kind, and so the Arrow type.
    pub kind: ValueKind,
    /// Listed in `required`.
    pub required: bool,
    /// `type` admits `"null"`.
    pub admits_null: bool,
    /// `format`, if any.
    pub format: Option<String>,
    /// `x-civlink-code-table`, if any.
    pub code_table: Option<String>,
    /// `x-civlink-sensitivity`.
    pub sensitivity: Sensitivity,
    /// `x-civlink-pii`.
    pub pii: bool,
    /// `x-civlink-mask`; when absent, sensitive and secret columns are fully starred.
    pub mask: MaskStrategy,
    /// JSON pointer of this property's subschema.
    pub pointer: String,
    /// The property's subschema as written.
    pub schema: Map<String, Value>,
}

impl Property {
    /// Whether an Arrow NULL is acceptable in this column.
    pub fn nullable(&self) -> bool {
        !self.required || self.admits_null
    }

    /// The mask applied without an unmasked grant.
    pub fn effective_mask(&self) -> MaskStrategy {
        if self.mask.is_none() && self.sensitivity.masked_by_default() { MaskStrategy::Full } else { self.mask }
    }
}

/// A parsed data standard.
#[derive(Debug, Clone, PartialEq)]
pub struct Standard {
    /// `x-civlink-id`.
    pub id: String,
    /// `x-civlink-version`.
    pub version: String,
    /// Root `title`.
    pub title: String,
    /// Root `description`.
    pub description: Option<String>,
    /// Properties in document order.
    pub properties: Vec<Property>,
    /// `x-civlink-primary-key`.
    pub primary_key: Vec<String>,
    /// `x-civlink-division-column`.
    pub division_column: Option<String>,
    /// `additionalProperties` is `false`.
    pub closed: bool,
    /// The whole document.
    pub document: Value,
}

const META_SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

impl Standard {
    /// Parse a standard from JSON text.
    pub fn from_json_str(text: &str) -> Result<Standard> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Standard::from_value(value)
    }

    /// Parse a standard from a JSON value.
    pub fn from_value(document: Value) -> Result<Standard> {
        let root = document.as_object().ok_or_else(|| invalid("", "a standard must be a JSON object"))?;
        if let Some(schema) = root.get("$schema")
            && schema.as_str() != Some(META_SCHEMA_2020_12)
        {
            return Err(invalid("/$schema", format!("standards use JSON Schema 2020-12 (\"{META_SCHEMA_2020_12}\")")));
        }
        if let Err(e) = jsonschema::meta::validate(&document) {
            return Err(Error::MetaSchema { pointer: e.instance_path().as_str().to_owned(), message: e.to_string() });
        }
        if root.get("type").and_then(Value::as_str) != Some("object") {
            return Err(invalid("/type", "a standard describes a record: \"type\" must be \"object\""));
        }
        let id = required_str(root, "x-civlink-id")?;
        let version = match root.get("x-civlink-version") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("/x-civlink-version", "required: the standard's version, e.g. \"1.0.0\"")),
        };
        let title = required_str(root, "title")?;
        let description = root.get("description").and_then(Value::as_str).map(str::to_owned);

        let required = string_array(root, "required")?.unwrap_or_default();
        let props = root
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("/properties", "a standard must declare its columns in \"properties\""))?;
        if props.is_empty() {
            return Err(invalid("/properties", "a standard needs at least one property"));
        }
        let mut properties = Vec::with_capacity(props.len());
        for (name, schema) in props {
            properties.push(parse_property(name, schema, required.iter().any(|r| r == name))?);
        }
        for (i, name) in required.iter().enumerate() {
            if !props.contains_key(name) {
                return Err(invalid(format!("/required/{i}"), format!("\"{name}\" is required but not a property")));
            }
        }

        let primary_key = string_array(root, "x-civlink-primary-key")?.unwrap_or_default();
        for (i, column) in primary_key.iter().enumerate() {
            if !props.contains_key(column) {
                return Err(invalid(
                    format!("/x-civlink-primary-key/{i}"),
                    format!("primary-key column \"{column}\" is not a property"),
                ));
            }
            if !required.contains(column) {
                return Err(invalid(
                    format!("/x-civlink-primary-key/{i}"),
                    format!("primary-key column \"{column}\" must be required"),
                ));
            }
        }
        let division_column = match root.get("x-civlink-division-column") {
            None => None,
            Some(Value::String(column)) => {
                let prop = properties.iter().find(|p| &p.name == column).ok_or_else(|| {
                    invalid("/x-civlink-division-column", format!("division column \"{column}\" is not a property"))
                })?;
                if prop.kind != ValueKind::String || prop.format.as_deref() != Some("division-code") {
                    return Err(invalid(
                        "/x-civlink-division-column",
                        format!("division column \"{column}\" must be a string with format \"division-code\""),
                    ));
                }
                Some(column.clone())
            }
            Some(_) => return Err(invalid("/x-civlink-division-column", "must be a column name")),
        };
        let closed = matches!(root.get("additionalProperties"), Some(Value::Bool(false)));

        Ok(Standard { id, version, title, description, properties, primary_key, division_column, closed, document })
    }

    /// The property named `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The Arrow schema of data conforming to this standard. Field metadata
    /// carries the Chinese title and the sensitivity, so they travel with the data.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .properties
            .iter()
            .map(|p| {
                let mut metadata = std::collections::HashMap::new();
                metadata.insert("civlink.title".to_owned(), p.title.clone());
                metadata.insert(
                    "civlink.sensitivity".to_owned(),
                    serde_json::to_value(p.sensitivity)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
                Field::new(&p.name, p.kind.data_type(), p.nullable()).with_metadata(metadata)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { pointer: pointer.into(), message: message.into() }
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn required_str(root: &Map<String, Value>, key: &str) -> Result<String> {
    match root.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(invalid(format!("/{key}"), "required, a non-empty string")),
    }
}

fn string_array(object: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
    let Some(value) = object.get(key) else { return Ok(None) };
    let items = value.as_array().ok_or_else(|| invalid(format!("/{key}"), "must be an array of strings"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = item.as_str().ok_or_else(|| invalid(format!("/{key}/{i}"), "must be a string"))?;
        out.push(s.to_owned());
    }
    Ok(Some(out))
}

fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{20000}'..='\u{2A6DF}'))
}

fn parse_property(name: &str, schema: &Value, required: bool) -> Result<Property> {
    let pointer = format!("/properties/{}", pointer_segment(name));
    if !is_snake_case(name) {
        return Err(invalid(&pointer, format!("property name \"{name}\" must be English snake_case")));
    }
    let schema = schema.as_object().ok_or_else(|| invalid(&pointer, "a property must be a schema object"))?;
    let title = match schema.get("title").and_then(Value::as_str) {
        Some(t) if has_cjk(t) => t.to_owned(),
        Some(_) => return Err(invalid(format!("{pointer}/title"), "the title must be the Chinese name (中文名称)")),
        None => return Err(invalid(format!("{pointer}/title"), "every property needs a Chinese title")),
    };
    let description = schema.get("description").and_then(Value::as_str).map(str::to_owned);

    let mut types: BTreeSet<&str> = BTreeSet::new();
    match schema.get("type") {
        Some(Value::String(t)) => {
            types.insert(t.as_str());
        }
        Some(Value::Array(ts)) => {
            for t in ts {
                if let Some(t) = t.as_str() {
                    types.insert(t);
                }
            }
        }
        _ => return Err(invalid(format!("{pointer}/type"), "a column needs a \"type\" to have an Arrow type")),
    }
    let admits_null = types.remove("null");
    let format = match schema.get("format") {
        None => None,
        Some(Value::String(f)) => Some(f.clone()),
        Some(_) => return Err(invalid(format!("{pointer}/format"), "must be a string")),
    };
    if let Some(f) = &format {
        let known = CIVLINK_FORMATS.contains(&f.as_str())
            || jsonschema::options().is_known_format(jsonschema::Draft::Draft202012, f);
        if !known {
            return Err(Error::UnknownFormat { pointer: format!("{pointer}/format"), format: f.clone() });
        }
    }
    let kind = match (types.len(), types.first().copied()) {
        (1, Some("string")) => match format.as_deref() {
            Some("date") => ValueKind::Date,
            Some("date-time") => ValueKind::DateTime,
            _ => ValueKind::String,
        },
        (1, Some("integer")) => ValueKind::Integer,
        (1, Some("number")) => ValueKind::Number,
        (1, Some("boolean")) => ValueKind::Boolean,
        (1, Some(other)) => {
            return Err(invalid(
                format!("{pointer}/type"),
                format!("type \"{other}\" cannot be a column; use string, integer, number or boolean"),
            ));
        }
        _ => {
            return Err(invalid(format!("{pointer}/type"), "a column has exactly one non-null type"));
        }
    };
    let code_table = match schema.get("x-civlink-code-table") {
        None => None,
        Some(Value::String(table)) => {
            if CodeTableRegistry::builtin().get(table).is_none() {
                return Err(Error::UnknownCodeTable {
                    pointer: format!("{pointer}/x-civlink-code-table"),
                    name: table.clone(),
                });
            }
            if kind != ValueKind::String {
                return Err(invalid(
                    format!("{pointer}/x-civlink-code-table"),
                    "code-table columns hold the code as a string",
                ));
            }
            Some(table.clone())
        }
        Some(_) => return Err(invalid(format!("{pointer}/x-civlink-code-table"), "must name a code table")),
    };
    let sensitivity = match schema.get("x-civlink-sensitivity") {
        None => Sensitivity::default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            invalid(format!("{pointer}/x-civlink-sensitivity"), "must be one of public, internal, sensitive, secret")
        })?,
    };
    let pii = match schema.get("x-civlink-pii") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid(format!("{pointer}/x-civlink-pii"), "must be true or false")),
    };
    let mask = match schema.get("x-civlink-mask") {
        None => MaskStrategy::None,
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| invalid(format!("{pointer}/x-civlink-mask"), format!("not a mask strategy: {e}")))?,
    };
    Ok(Property {
        name: name.to_owned(),
        title,
        description,
        kind,
        required,
        admits_null,
        format,
        code_table,
        sensitivity,
        pii,
        mask,
        pointer,
        schema: schema.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-civlink-id": "gongan.population",
            "x-civlink-version": "1.0.0",
            "title": "户籍人口",
            "type": "object",
            "x-civlink-primary-key": ["id_number"],
            "x-civlink-division-column": "division_code",
            "required": ["id_number", "name", "division_code"],
            "properties": {
                "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
                    "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
                    "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
                "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive", "x-civlink-mask": {"strategy": "name"}},
                "sex": {"type": "string", "title": "性别", "x-civlink-code-table": "sex"},
                "birth_date": {"type": "string", "format": "date", "title": "出生日期"},
                "age": {"type": ["integer", "null"], "title": "年龄", "minimum": 0},
                "division_code": {"type": "string", "format": "division-code", "title": "行政区划代码"},
                "phone": {"type": "string", "title": "联系电话", "x-civlink-sensitivity": "sensitive"}
            }
        })
    }

    #[test]
    fn parses_and_derives_the_arrow_schema() {
        let standard = Standard::from_value(person()).unwrap();
        assert_eq!(standard.id, "gongan.population");
        assert_eq!(standard.primary_key, vec!["id_number"]);
        assert_eq!(standard.division_column.as_deref(), Some("division_code"));
        let schema = standard.arrow_schema();
        let id = schema.field_with_name("id_number").unwrap();
        assert_eq!(id.data_type(), &DataType::Utf8);
        assert!(!id.is_nullable());
        assert_eq!(schema.field_with_name("birth_date").unwrap().data_type(), &DataType::Date32);
        assert!(schema.field_with_name("sex").unwrap().is_nullable());
        assert_eq!(schema.field_with_name("age").unwrap().data_type(), &DataType::Int64);
        assert_eq!(id.metadata().get("civlink.title").map(String::as_str), Some("公民身份号码"));
        assert_eq!(standard.property("phone").unwrap().effective_mask(), MaskStrategy::Full);
        assert_eq!(standard.property("name").unwrap().effective_mask(), MaskStrategy::Name);
    }

    fn error_of(mut doc: Value, edit: impl FnOnce(&mut Value)) -> Error {
        edit(&mut doc);
        Standard::from_value(doc).unwrap_err()
    }

    #[test]
    fn unknown_format_names_it() {
        let err = error_of(person(), |d| d["properties"]["phone"]["format"] = json!("cn-phone"));
        assert_eq!(err, Error::UnknownFormat { pointer: "/properties/phone/format".into(), format: "cn-phone".into() });
    }

    #[test]
    fn unknown_code_table_names_it() {
        let err = error_of(person(), |d| d["properties"]["sex"]["x-civlink-code-table"] = json!("gender"));
        assert_eq!(
            err,
            Error::UnknownCodeTable { pointer: "/properties/sex/x-civlink-code-table".into(), name: "gender".into() }
        );
    }

    #[test]
    fn malformed_schema_gets_a_pointer() {
        let err = error_of(person(), |d| d["properties"]["name"]["minLength"] = json!(-1));
        match err {
            Error::MetaSchema { pointer, .. } => assert_eq!(pointer, "/properties/name/minLength"),
            other => panic!("unexpected {other:?}"),
        }
        let err = error_of(person(), |d| d["properties"]["name"]["title"] = json!("Name"));
        assert!(matches!(err, Error::Invalid { ref pointer, .. } if pointer == "/properties/name/title"), "{err:?}");
        let err = error_of(person(), |d| d["x-civlink-primary-key"] = json!(["nope"]));
        assert!(matches!(err, Error::Invalid { ref pointer, .. } if pointer == "/x-civlink-primary-key/0"), "{err:?}");
        let err = error_of(person(), |d| d["properties"]["age"]["type"] = json!(["integer", "string"]));
        assert!(matches!(err, Error::Invalid { ref pointer, .. } if pointer == "/properties/age/type"), "{err:?}");
        let err = error_of(person(), |d| d["properties"]["name"]["x-civlink-mask"] = json!({"strategy": "blur"}));
        assert!(
            matches!(err, Error::Invalid { ref pointer, .. } if pointer == "/properties/name/x-civlink-mask"),
            "{err:?}"
        );
    }

    #[test]
    fn json_syntax_error_has_a_position() {
        let err = Standard::from_json_str("{\n  \"type\": }").unwrap_err();
        assert!(matches!(err, Error::Json { line: 2, .. }), "{err:?}");
    }
}
