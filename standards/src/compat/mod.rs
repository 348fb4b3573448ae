//! Compatibility between versions of a data standard.
//!
//! A data standard is a JSON Schema 2020-12 document describing one flat
//! record (see [`crate::standard`]). When a new version of a standard is
//! registered, [`check`] decides whether it is compatible with the versions
//! before it, using the modes of the Confluent Schema Registry:
//!
//! | mode | the check |
//! |---|---|
//! | [`Mode::None`] | nothing is compared |
//! | [`Mode::Backward`] | the new version can read data written with the latest previous one |
//! | [`Mode::Forward`] | the latest previous version can read data written with the new one |
//! | [`Mode::Full`] | both |
//! | `*Transitive` | the same, against every previous version instead of only the latest |
//!
//! Both directions run the same rule, "every record the *writer* schema
//! accepts is accepted by the *reader* schema"; BACKWARD makes the new
//! version the reader, FORWARD makes the old version the reader. A finding is
//! named after what changed from the old version to the new one, so the same
//! rule reports [`IncompatibilityKind::TypeNarrowed`] when it breaks backward
//! compatibility and [`IncompatibilityKind::TypeWidened`] when it breaks
//! forward compatibility.
//!
//! # What is compared
//!
//! * The record level: `properties`, `required`, `additionalProperties`,
//!   `x-civlink-primary-key` and `x-civlink-division-column`, plus the
//!   generic keywords below when they appear at the top level.
//! * Each property present in both versions, keyword by keyword: `type`
//!   (`"integer"` is a subset of `"number"`, a missing `type` means any),
//!   `enum` and `const` (JSON equality, `1` equals `1.0`), the numeric bounds
//!   `minimum`/`exclusiveMinimum`/`maximum`/`exclusiveMaximum`, the count
//!   bounds `minLength`/`maxLength`/`minItems`/`maxItems`/`minProperties`/
//!   `maxProperties`, `multipleOf`, `pattern`, `format` and
//!   `x-civlink-code-table`.
//!
//! Keywords only matter for the JSON types they apply to: a new `minimum` on
//! a property whose writer only produces strings is not a finding.
//!
//! # Limits
//!
//! The comparison is keyword by keyword, not a full schema-containment
//! decision procedure, and it errs on the side of reporting:
//!
//! * Nested schemas inside a property (`items`, `prefixItems`, nested
//!   `properties`, `allOf`, `$ref`, …) are compared only at the top level of
//!   the property: any change to such a keyword, other than to the
//!   annotations listed below, is reported as
//!   [`IncompatibilityKind::KeywordChanged`] in both directions. The same
//!   holds for every other keyword this module does not understand.
//! * Keywords that interact are not combined: e.g. dropping `type` next to an
//!   unchanged `enum` is reported as a widening even though the enum still
//!   restricts the values.
//! * Properties a writer may emit through an open content model (no
//!   `additionalProperties: false`) are assumed not to collide with
//!   properties a later version declares; that is what makes "adding an
//!   optional field" compatible, as in the Confluent registry.
//!
//! Annotations never affect compatibility: `title`, `description`,
//! `examples`, `default`, `$comment`, `deprecated`, `readOnly`, `writeOnly`,
//! `x-civlink-sensitivity`, `x-civlink-mask` and `x-civlink-pii`. At the top
//! level `$schema`, `$id` and any `x-civlink-*` keyword other than the primary
//! key, the division column and the code table are metadata about the
//! standard (its name, version, owner…) and are ignored as well.
//!
//! # Pointers
//!
//! Every [`Incompatibility`] carries an RFC 6901 JSON pointer into the *new*
//! document (e.g. `/properties/age/maximum`, `/required/3`), falling back to
//! the enclosing property when the new document lacks the keyword. Findings
//! about something the new version deleted point into the previous version
//! instead, and their message says so.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

mod compare;
mod model;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
mod values;

use compare::*;
use model::*;
use values::*;

/// A compatibility mode, in the Confluent Schema Registry sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No checks at all.
    None,
    /// The new version can read data written with the latest previous one.
    Backward,
    /// The latest previous version can read data written with the new one.
    Forward,
    /// Both [`Mode::Backward`] and [`Mode::Forward`].
    Full,
    /// [`Mode::Backward`] against every previous version.
    BackwardTransitive,
    /// [`Mode::Forward`] against every previous version.
    ForwardTransitive,
    /// [`Mode::Full`] against every previous version.
    FullTransitive,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 7] = [
        Mode::None,
        Mode::Backward,
        Mode::Forward,
        Mode::Full,
        Mode::BackwardTransitive,
        Mode::ForwardTransitive,
        Mode::FullTransitive,
    ];

    /// The lower-case snake form, as accepted by [`FromStr`] and written by
    /// [`fmt::Display`] and serde.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
            Mode::BackwardTransitive => "backward_transitive",
            Mode::ForwardTransitive => "forward_transitive",
            Mode::FullTransitive => "full_transitive",
        }
    }

    /// Whether the mode requires the new version to read old data.
    pub const fn checks_backward(self) -> bool {
        matches!(self, Mode::Backward | Mode::Full | Mode::BackwardTransitive | Mode::FullTransitive)
    }

    /// Whether the mode requires old versions to read new data.
    pub const fn checks_forward(self) -> bool {
        matches!(self, Mode::Forward | Mode::Full | Mode::ForwardTransitive | Mode::FullTransitive)
    }

    /// Whether the mode checks every previous version rather than the latest.
    pub const fn is_transitive(self) -> bool {
        matches!(self, Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Accepts the snake form case-insensitively, with `-` in place of `_`
    /// too (`"FULL-TRANSITIVE"`), and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self> {
        let normalized = s.trim().to_ascii_lowercase().replace('-', "_");
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == normalized)
            .ok_or_else(|| Error::UnknownMode { input: s.to_owned() })
    }
}

/// The direction of compatibility a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The new version cannot read some data written with the old one.
    Backward,
    /// The old version cannot read some data written with the new one.
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        })
    }
}

/// What changed between the old and the new version.
///
/// Kinds that come in pairs (`…Narrowed`/`…Widened`, `…Added`/`…Removed`)
/// are the same rule seen from the two directions: the first breaks
/// [`Direction::Backward`], the second [`Direction::Forward`]. The others can
/// break either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncompatibilityKind {
    /// A required field the old version did not declare.
    RequiredFieldAdded,
    /// A field the old version required is no longer declared.
    RequiredFieldRemoved,
    /// A field the old version declared as optional is now required.
    FieldMadeRequired,
    /// A field the old version required is now optional.
    FieldMadeOptional,
    /// A field was deleted while the new version rejects undeclared fields.
    FieldRemovedFromClosedModel,
    /// A field was added while the old version rejects undeclared fields.
    FieldAddedToClosedModel,
    /// `additionalProperties` now rejects (some) undeclared fields.
    ClosedContentModel,
    /// `additionalProperties` now accepts undeclared fields the old one rejected.
    OpenedContentModel,
    /// `type` accepts fewer JSON types.
    TypeNarrowed,
    /// `type` accepts more JSON types.
    TypeWidened,
    /// `enum` allows fewer values (or was added).
    EnumNarrowed,
    /// `enum` allows more values (or was removed).
    EnumWidened,
    /// `const` was added, removed or changed.
    ConstChanged,
    /// A numeric, length, item-count or property-count bound is tighter.
    RangeNarrowed,
    /// A numeric, length, item-count or property-count bound is looser.
    RangeWidened,
    /// `multipleOf` was added, removed or changed to a value that does not divide.
    MultipleOfChanged,
    /// `pattern` was added, removed or changed.
    PatternChanged,
    /// `format` was added, removed or changed.
    FormatChanged,
    /// `x-civlink-code-table` was added, removed or changed.
    CodeTableChanged,
    /// `x-civlink-primary-key` was added, removed or changed.
    PrimaryKeyChanged,
    /// `x-civlink-division-column` was added, removed or changed.
    DivisionColumnChanged,
    /// A keyword this module does not compare structurally changed.
    KeywordChanged,
}

/// One reason the new version is not compatible with a previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incompatibility {
    /// RFC 6901 pointer into the new document, or into the previous version
    /// `against_version` when the finding is about something the new version
    /// deleted (the message then says so).
    pub pointer: String,
    /// The direction of compatibility the finding breaks.
    pub direction: Direction,
    /// Index into the `previous` slice given to [`check`].
    pub against_version: usize,
    /// What changed.
    pub kind: IncompatibilityKind,
    /// Human-readable explanation, naming the values that would be rejected.
    pub message: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The mode that was checked.
    pub mode: Mode,
    /// How many previous versions the new one was compared with.
    pub checked_against: usize,
    /// Every finding, ordered by previous version, then direction.
    pub incompatibilities: Vec<Incompatibility>,
}

impl Report {
    /// Whether no incompatibility was found.
    pub fn is_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }
}

/// Which of the documents given to [`check`] an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Document {
    /// The `new` argument.
    New,
    /// `previous[index]`.
    Previous {
        /// Index into the `previous` slice.
        index: usize,
    },
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Document::New => f.write_str("new version"),
            Document::Previous { index } => write!(f, "previous version {index}"),
        }
    }
}

/// Why a compatibility check could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A document or a property subschema is not a JSON object.
    #[error("{document}, {}: not a JSON object", show_pointer(pointer))]
    NotAnObject {
        /// The document the error is in.
        document: Document,
        /// RFC 6901 pointer to the offending value.
        pointer: String,
    },
    /// A keyword has a value of the wrong shape (`required` not an array of
    /// strings, `minimum` not a number, an unknown type name…).
    #[error("{document}, {}: {message}", show_pointer(pointer))]
    InvalidKeyword {
        /// The document the error is in.
        document: Document,
        /// RFC 6901 pointer to the offending value.
        pointer: String,
        /// What is wrong with it.
        message: String,
    },
    /// A string that names no [`Mode`].
    #[error(
        "unknown compatibility mode {input:?}: expected none, backward, forward, full, \
         backward_transitive, forward_transitive or full_transitive"
    )]
    UnknownMode {
        /// The string that was parsed.
        input: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks `new` against the previous versions of the same standard.
///
/// `previous` is ordered oldest → newest; the non-transitive modes check only
/// its last element, the transitive ones every element. An empty `previous`
/// (a first version) is always compatible.
///
/// `new` is validated even under [`Mode::None`], because a malformed standard
/// must not be registered whatever the mode; previous versions are validated
/// only when they are compared.
///
/// # Errors
///
/// [`Error::NotAnObject`] or [`Error::InvalidKeyword`] when a document that
/// is compared is malformed.
pub fn check(new: &Value, previous: &[Value], mode: Mode) -> Result<Report> {
    let new_doc = Doc::parse(new, Document::New)?;
    let first = if mode == Mode::None {
        previous.len()
    } else if mode.is_transitive() {
        0
    } else {
        previous.len().saturating_sub(1)
    };

    let mut incompatibilities = Vec::new();
    let mut checked_against = 0;
    for (index, old) in previous.iter().enumerate().skip(first) {
        let old_doc = Doc::parse(old, Document::Previous { index })?;
        checked_against += 1;
        if mode.checks_backward() {
            Comparison::new(Direction::Backward, index, &mut incompatibilities).documents(&new_doc, &old_doc);
        }
        if mode.checks_forward() {
            Comparison::new(Direction::Forward, index, &mut incompatibilities).documents(&old_doc, &new_doc);
        }
    }

    Ok(Report { mode, checked_against, incompatibilities })
}
