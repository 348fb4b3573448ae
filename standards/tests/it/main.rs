//! Integration tests of civlink-standards: the columnar validator against the
//! `jsonschema` oracle, robustness on hostile input, and the shipped fixture.

mod common;
mod never_panics;
mod oracle;
mod validate;
