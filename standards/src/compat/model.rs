//! The schema model compatibility is decided on: the keyword vocabulary,
//! JSON types as bit sets, numeric and count bounds, and each document
//! parsed into per-property [`Schema`]s (errors point into the document).

use super::*;

pub(super) const CODE_TABLE: &str = "x-civlink-code-table";
pub(super) const PRIMARY_KEY: &str = "x-civlink-primary-key";
pub(super) const DIVISION_COLUMN: &str = "x-civlink-division-column";

/// Keywords that never change which records validate.
pub(super) const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "x-civlink-sensitivity",
    "x-civlink-mask",
    "x-civlink-pii",
];

/// Top-level keywords read by [`Doc::parse`] rather than [`Parser::schema`].
pub(super) const RECORD_KEYWORDS: &[&str] =
    &["properties", "required", "additionalProperties", PRIMARY_KEY, DIVISION_COLUMN];

/// Top-level keywords that identify the document rather than constrain data.
pub(super) const DOCUMENT_METADATA: &[&str] = &["$schema", "$id"];

/// The count-bound keyword pairs, the JSON type each applies to, and what it
/// counts (for messages).
pub(super) const COUNT_KEYWORDS: [CountKeywords; 3] = [
    CountKeywords {
        min: "minLength",
        max: "maxLength",
        applies_to: JsonType::String,
        subject: "strings of length",
        unit: "",
    },
    CountKeywords {
        min: "minItems",
        max: "maxItems",
        applies_to: JsonType::Array,
        subject: "arrays with",
        unit: " items",
    },
    CountKeywords {
        min: "minProperties",
        max: "maxProperties",
        applies_to: JsonType::Object,
        subject: "objects with",
        unit: " properties",
    },
];

pub(super) struct CountKeywords {
    pub(super) min: &'static str,
    pub(super) max: &'static str,
    pub(super) applies_to: JsonType,
    pub(super) subject: &'static str,
    pub(super) unit: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

impl JsonType {
    pub(super) const ALL: [JsonType; 7] = [
        JsonType::String,
        JsonType::Integer,
        JsonType::Number,
        JsonType::Boolean,
        JsonType::Object,
        JsonType::Array,
        JsonType::Null,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Null => "null",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
        JsonType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(super) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of JSON types, as a bit set over [`JsonType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TypeSet(pub(super) u8);

impl TypeSet {
    pub(super) const EMPTY: TypeSet = TypeSet(0);
    pub(super) const ANY: TypeSet = TypeSet(0x7f);

    pub(super) fn insert(&mut self, t: JsonType) {
        self.0 |= t.bit();
    }

    pub(super) fn contains(self, t: JsonType) -> bool {
        self.0 & t.bit() != 0
    }

    /// Whether every value of type `t` is accepted; integers are numbers.
    pub(super) fn admits(self, t: JsonType) -> bool {
        self.contains(t) || (t == JsonType::Integer && self.contains(JsonType::Number))
    }

    pub(super) fn iter(self) -> impl Iterator<Item = JsonType> {
        JsonType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

// ---------------------------------------------------------------------------
// Parsed documents

/// A numeric bound, inclusive (`minimum`) or exclusive (`exclusiveMinimum`).
#[derive(Debug, Clone, Copy)]
pub(super) struct NumBound<'a> {
    pub(super) keyword: &'static str,
    pub(super) value: &'a Number,
    pub(super) exclusive: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CountRange {
    pub(super) min: Option<u64>,
    pub(super) max: Option<u64>,
}

/// One schema (a property subschema, the record itself, or the record's
/// `additionalProperties`), reduced to the keywords this module compares.
#[derive(Debug)]
pub(super) struct Schema<'a> {
    /// Pointer to this schema in its own document.
    pub(super) ptr: String,
    /// The keywords, `None` for the boolean schemas `true` and `false`.
    pub(super) keys: Option<&'a Map<String, Value>>,
    /// The boolean schema `false`, which accepts no value.
    pub(super) nothing: bool,
    pub(super) types: Option<TypeSet>,
    pub(super) enumeration: Option<&'a [Value]>,
    pub(super) constant: Option<&'a Value>,
    pub(super) lower: Option<NumBound<'a>>,
    pub(super) upper: Option<NumBound<'a>>,
    pub(super) counts: [CountRange; 3],
    pub(super) multiple_of: Option<&'a Number>,
    pub(super) pattern: Option<&'a str>,
    pub(super) format: Option<&'a str>,
    pub(super) code_table: Option<&'a str>,
    /// Keywords compared only for equality.
    pub(super) other: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Schema<'a> {
    pub(super) fn empty(ptr: String) -> Self {
        Schema {
            ptr,
            keys: None,
            nothing: false,
            types: None,
            enumeration: None,
            constant: None,
            lower: None,
            upper: None,
            counts: [CountRange::default(); 3],
            multiple_of: None,
            pattern: None,
            format: None,
            code_table: None,
            other: BTreeMap::new(),
        }
    }

    /// Pointer to `keyword` in this schema if it is there, else to the schema.
    pub(super) fn at(&self, keyword: &str) -> String {
        match self.keys {
            Some(keys) if keys.contains_key(keyword) => child(&self.ptr, keyword),
            _ => self.ptr.clone(),
        }
    }

    /// Whether this schema, as a writer, may produce a value of type `t`.
    pub(super) fn writes(&self, t: JsonType) -> bool {
        let types = self.types.unwrap_or(TypeSet::ANY);
        match t {
            JsonType::Number | JsonType::Integer => {
                types.contains(JsonType::Number) || types.contains(JsonType::Integer)
            }
            _ => types.contains(t),
        }
    }

    /// Whether every number this schema writes is an integer.
    pub(super) fn writes_only_integers(&self) -> bool {
        self.types.is_some_and(|types| !types.contains(JsonType::Number))
    }
}

#[derive(Debug)]
pub(super) enum Additional<'a> {
    /// `additionalProperties` absent or `true`.
    Open,
    /// `additionalProperties: false`.
    Closed,
    /// `additionalProperties` is a schema undeclared properties must match.
    Schema(Box<Schema<'a>>),
}

/// A whole standard, reduced to what compatibility depends on.
#[derive(Debug)]
pub(super) struct Doc<'a> {
    pub(super) root: Schema<'a>,
    pub(super) properties: BTreeMap<&'a str, Schema<'a>>,
    pub(super) required: Vec<&'a str>,
    pub(super) additional: Additional<'a>,
    pub(super) primary_key: Option<Vec<&'a str>>,
    pub(super) division_column: Option<&'a str>,
}

impl<'a> Doc<'a> {
    pub(super) fn parse(value: &'a Value, document: Document) -> Result<Self> {
        let parser = Parser { document };
        let Value::Object(keys) = value else {
            return Err(parser.not_object(String::new()));
        };
        let root = parser.object_schema(keys, String::new(), true)?;

        let mut properties = BTreeMap::new();
        if let Some(value) = keys.get("properties") {
            let Value::Object(props) = value else {
                return Err(parser.invalid("/properties".into(), "must be an object"));
            };
            for (name, sub) in props {
                let ptr = child("/properties", name);
                properties.insert(name.as_str(), parser.schema(sub, ptr)?);
            }
        }

        let required = match keys.get("required") {
            None => Vec::new(),
            Some(value) => parser.strings(value, "/required")?,
        };

        let additional = match keys.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Additional::Open,
            Some(Value::Bool(false)) => Additional::Closed,
            Some(value @ Value::Object(_)) => {
                Additional::Schema(Box::new(parser.schema(value, "/additionalProperties".into())?))
            }
            Some(_) => {
                return Err(parser.invalid("/additionalProperties".into(), "must be a boolean or a schema object"));
            }
        };

        let primary_key = match keys.get(PRIMARY_KEY) {
            None => None,
            Some(value) => Some(parser.strings(value, &child("", PRIMARY_KEY))?),
        };

        let division_column = match keys.get(DIVISION_COLUMN) {
            None => None,
            Some(Value::String(column)) => Some(column.as_str()),
            Some(_) => {
                return Err(parser.invalid(child("", DIVISION_COLUMN), "must be a string"));
            }
        };

        Ok(Doc { root, properties, required, additional, primary_key, division_column })
    }

    pub(super) fn primary_key_set(&self) -> Option<BTreeSet<&'a str>> {
        self.primary_key.as_ref().map(|columns| columns.iter().copied().collect())
    }
}

/// Parses schemas of one document, so errors name the document.
pub(super) struct Parser {
    pub(super) document: Document,
}

impl Parser {
    pub(super) fn not_object(&self, pointer: String) -> Error {
        Error::NotAnObject { document: self.document, pointer }
    }

    pub(super) fn invalid(&self, pointer: String, message: &str) -> Error {
        Error::InvalidKeyword { document: self.document, pointer, message: message.to_owned() }
    }

    /// A property subschema or `additionalProperties`: an object or a boolean.
    pub(super) fn schema<'a>(&self, value: &'a Value, ptr: String) -> Result<Schema<'a>> {
        match value {
            Value::Bool(accepts) => {
                let mut schema = Schema::empty(ptr);
                schema.nothing = !accepts;
                Ok(schema)
            }
            Value::Object(keys) => self.object_schema(keys, ptr, false),
            _ => Err(self.not_object(ptr)),
        }
    }

    pub(super) fn object_schema<'a>(
        &self,
        keys: &'a Map<String, Value>,
        ptr: String,
        is_root: bool,
    ) -> Result<Schema<'a>> {
        let mut schema = Schema::empty(ptr);
        schema.keys = Some(keys);
        for (keyword, value) in keys {
            let kp = child(&schema.ptr, keyword);
            match keyword.as_str() {
                "type" => schema.types = Some(self.types(value, &kp)?),
                "enum" => match value {
                    Value::Array(values) => schema.enumeration = Some(values.as_slice()),
                    _ => return Err(self.invalid(kp, "must be an array")),
                },
                "const" => schema.constant = Some(value),
                "minimum" | "exclusiveMinimum" => {
                    let bound = self.num_bound(keyword, value, kp)?;
                    schema.lower = Some(tighter(schema.lower, bound, Ordering::Greater));
                }
                "maximum" | "exclusiveMaximum" => {
                    let bound = self.num_bound(keyword, value, kp)?;
                    schema.upper = Some(tighter(schema.upper, bound, Ordering::Less));
                }
                "multipleOf" => match value {
                    Value::Number(n) if n.as_f64().is_some_and(|f| f > 0.0) => {
                        schema.multiple_of = Some(n);
                    }
                    _ => return Err(self.invalid(kp, "must be a number greater than 0")),
                },
                "pattern" => schema.pattern = Some(self.string(value, kp)?),
                "format" => schema.format = Some(self.string(value, kp)?),
                CODE_TABLE => schema.code_table = Some(self.string(value, kp)?),
                _ => {
                    if let Some((i, is_min)) = count_keyword(keyword) {
                        let count = self.count(value, kp)?;
                        let range = &mut schema.counts[i];
                        if is_min {
                            range.min = Some(count);
                        } else {
                            range.max = Some(count);
                        }
                    } else if ANNOTATIONS.contains(&keyword.as_str()) || (is_root && is_record_level_ignored(keyword)) {
                        // Annotations, metadata and the record keywords
                        // Doc::parse reads itself.
                    } else {
                        schema.other.insert(keyword.as_str(), value);
                    }
                }
            }
        }
        Ok(schema)
    }

    pub(super) fn types(&self, value: &Value, ptr: &str) -> Result<TypeSet> {
        let mut set = TypeSet::EMPTY;
        match value {
            Value::String(name) => {
                set.insert(
                    JsonType::parse(name).ok_or_else(|| self.invalid(ptr.to_owned(), "unknown JSON type name"))?,
                );
            }
            Value::Array(names) if !names.is_empty() => {
                for (i, name) in names.iter().enumerate() {
                    let t = name
                        .as_str()
                        .and_then(JsonType::parse)
                        .ok_or_else(|| self.invalid(child(ptr, &i.to_string()), "must be a JSON type name"))?;
                    set.insert(t);
                }
            }
            _ => {
                return Err(self.invalid(ptr.to_owned(), "must be a JSON type name or a non-empty array of them"));
            }
        }
        Ok(set)
    }

    pub(super) fn num_bound<'a>(&self, keyword: &str, value: &'a Value, ptr: String) -> Result<NumBound<'a>> {
        let Value::Number(n) = value else {
            return Err(self.invalid(ptr, "must be a number"));
        };
        let (keyword, exclusive) = match keyword {
            "minimum" => ("minimum", false),
            "exclusiveMinimum" => ("exclusiveMinimum", true),
            "maximum" => ("maximum", false),
            _ => ("exclusiveMaximum", true),
        };
        Ok(NumBound { keyword, value: n, exclusive })
    }

    pub(super) fn count(&self, value: &Value, ptr: String) -> Result<u64> {
        let Value::Number(n) = value else {
            return Err(self.invalid(ptr, "must be a non-negative integer"));
        };
        match n.as_u64() {
            Some(count) => Ok(count),
            // 2020-12 counts 5.0 as an integer.
            None => match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
                _ => Err(self.invalid(ptr, "must be a non-negative integer")),
            },
        }
    }

    pub(super) fn string<'a>(&self, value: &'a Value, ptr: String) -> Result<&'a str> {
        value.as_str().ok_or_else(|| self.invalid(ptr, "must be a string"))
    }

    pub(super) fn strings<'a>(&self, value: &'a Value, ptr: &str) -> Result<Vec<&'a str>> {
        let Value::Array(items) = value else {
            return Err(self.invalid(ptr.to_owned(), "must be an array of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| item.as_str().ok_or_else(|| self.invalid(child(ptr, &i.to_string()), "must be a string")))
            .collect()
    }
}

/// Keywords the record level reads itself or ignores as metadata.
pub(super) fn is_record_level_ignored(keyword: &str) -> bool {
    RECORD_KEYWORDS.contains(&keyword)
        || DOCUMENT_METADATA.contains(&keyword)
        || (keyword.starts_with("x-civlink-") && keyword != CODE_TABLE)
}

/// Index into [`COUNT_KEYWORDS`] and whether `keyword` is the lower bound.
pub(super) fn count_keyword(keyword: &str) -> Option<(usize, bool)> {
    COUNT_KEYWORDS.iter().enumerate().find_map(|(i, kw)| {
        if kw.min == keyword {
            Some((i, true))
        } else if kw.max == keyword {
            Some((i, false))
        } else {
            None
        }
    })
}

/// The tighter of two lower (`want = Greater`) or upper (`want = Less`)
/// bounds; at equal values the exclusive one is tighter.
pub(super) fn tighter<'a>(current: Option<NumBound<'a>>, new: NumBound<'a>, want: Ordering) -> NumBound<'a> {
    match current {
        None => new,
        Some(cur) => match cmp_num(new.value, cur.value) {
            Ordering::Equal if new.exclusive && !cur.exclusive => new,
            Ordering::Equal => cur,
            ord if ord == want => new,
            _ => cur,
        },
    }
}
