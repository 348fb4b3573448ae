//! What a source delivered besides the text of a value: its JSON type.
//!
//! JSON sources hand every value over as text (so 18-digit IDs and `12.50`
//! keep every digit) together with the JSON type it had; the validator
//! judges the type by JSON Schema's rules (see the coerce module). Text sources
//! (CSV, spreadsheets) have no JSON types: their values are [`Delivered::Text`],
//! except the spreadsheet numbers whose digits Excel dropped
//! ([`Delivered::TruncatedNumber`]).

use std::collections::HashMap;

/// The JSON type of one delivered value, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Delivered {
    /// Text without a JSON type: a CSV or spreadsheet cell, a value the
    /// job's mapping produced, or an absent value. Read by the text rules.
    #[default]
    Text,
    /// A JSON string.
    String,
    /// A JSON number literal without a fraction or an exponent (`7`, `-7`).
    Integer,
    /// Any other JSON number literal (`7.0`, `1e3`, `0.1`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object or array.
    Structured,
    /// JSON `null`: present, but no value (a missing key is absent, not null).
    Null,
    /// A spreadsheet number cell of 16 or more integer digits of which
    /// Excel kept at most 15 significant ones: an ID, account or phone number
    /// typed into a number cell, whose last digits Excel replaced by zeros.
    /// Read by the text rules; when the value then fails a check of a text
    /// column, the violation is `digits_lost`, which says so, not the check's.
    TruncatedNumber,
}

impl Delivered {
    /// The JSON type of a JSON value from its first byte.
    pub fn of_json(literal: &str) -> Delivered {
        match literal.as_bytes().first() {
            Some(b'"') => Delivered::String,
            Some(b't' | b'f') => Delivered::Boolean,
            Some(b'{' | b'[') => Delivered::Structured,
            Some(b'n') | None => Delivered::Null,
            _ if literal.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) => Delivered::Number,
            _ => Delivered::Integer,
        }
    }

    /// How messages name it.
    pub fn noun(self) -> &'static str {
        match self {
            Delivered::Text => "text",
            Delivered::String => "string",
            Delivered::Integer | Delivered::Number => "number",
            Delivered::Boolean => "boolean",
            Delivered::Structured => "object or array",
            Delivered::Null => "null",
            Delivered::TruncatedNumber => "number cell",
        }
    }
}

/// The delivered types of one batch's columns, by column name; a column
/// not listed was delivered as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveredTypes {
    columns: HashMap<String, Vec<Delivered>>,
}

impl DeliveredTypes {
    /// No column typed.
    pub fn new() -> DeliveredTypes {
        DeliveredTypes::default()
    }

    /// Record the types of `column`'s values, one per row.
    pub fn insert(&mut self, column: impl Into<String>, types: Vec<Delivered>) {
        self.columns.insert(column.into(), types);
    }

    /// The types of `column`'s values, when it was typed.
    pub fn get(&self, column: &str) -> Option<&[Delivered]> {
        self.columns.get(column).map(Vec::as_slice)
    }

    /// Take `column`'s types out.
    pub fn remove(&mut self, column: &str) -> Option<Vec<Delivered>> {
        self.columns.remove(column)
    }

    /// Whether no column is typed.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The typed columns' names.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_types_from_literals() {
        assert_eq!(Delivered::of_json("\"7\""), Delivered::String);
        assert_eq!(Delivered::of_json("7"), Delivered::Integer);
        assert_eq!(Delivered::of_json("-7"), Delivered::Integer);
        assert_eq!(Delivered::of_json("7.0"), Delivered::Number);
        assert_eq!(Delivered::of_json("7e2"), Delivered::Number);
        assert_eq!(Delivered::of_json("true"), Delivered::Boolean);
        assert_eq!(Delivered::of_json("[1]"), Delivered::Structured);
        assert_eq!(Delivered::of_json("null"), Delivered::Null);
    }
}
