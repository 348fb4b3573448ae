//! The verification crate's errors: [`RuleProblems`] (everything wrong with
//! one rule file, reported at once), [`Problem`] (one cause), and [`Error`]
//! for loading rule sets and running them.

use std::fmt;

/// One thing wrong with a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Unreadable {
        /// The path.
        path: String,
        /// The system's message.
        message: String,
    },
    /// The file is not valid TOML for a rule (including unknown fields).
    #[error("{message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// The id is not a snake-case name.
    #[error("id {id:?} must be lower-case letters, digits and _ (starting with a letter, at most 64)")]
    BadId {
        /// The id.
        id: String,
    },
    /// The id and the file's name differ.
    #[error("id {id:?} differs from the file's name {file:?}: a rule lives in rules/<id>.toml")]
    FileName {
        /// The id.
        id: String,
        /// The file's stem.
        file: String,
    },
    /// The version is below 1.
    #[error("version {version} must be 1 or more")]
    BadVersion {
        /// The version given.
        version: i64,
    },
    /// A required text is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A field holds a value outside its set.
    #[error("{field} {value:?} is not one of: {allowed}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// What it may be.
        allowed: &'static str,
    },
    /// A scheduled rule names no principal to run as.
    #[error("schedule.after_ingest needs schedule.run_as: the principal the rule runs as")]
    NoRunAs,
    /// Neither `department` nor `columns.department` says which office acts.
    #[error("give department (the office that acts on a finding) or columns.department")]
    NoDepartment,
    /// The explanation template does not parse.
    #[error("explain: {message}")]
    Template {
        /// Why.
        message: String,
    },
    /// A list names a value twice.
    #[error("{field} names {value:?} twice")]
    Repeated {
        /// The list.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A `rests_on` entry has no key columns.
    #[error("rests_on #{index} ({dataset}) has an empty key")]
    EmptyKey {
        /// 1-based position.
        index: usize,
        /// Its dataset.
        dataset: String,
    },
    /// A dataset id does not parse.
    #[error("{field} {value:?} is not a dataset id (department.name)")]
    BadDataset {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The SQL names a dataset that is not registered.
    #[error("the SQL reads {dataset}, which is not a registered dataset")]
    UnknownDataset {
        /// The dataset as named.
        dataset: String,
    },
    /// The SQL does not parse or plan.
    #[error("the SQL does not plan: {message}")]
    Sql {
        /// DataFusion's message.
        message: String,
    },
    /// The SQL is not a read-only query.
    #[error("the SQL must be one read-only query (SELECT …)")]
    NotAQuery,
    /// A column the rule relies on is not in the SQL's output.
    #[error("{field} names {column:?}, which the SQL does not output (it outputs: {outputs})")]
    MissingColumn {
        /// Which field relies on it.
        field: &'static str,
        /// The column.
        column: String,
        /// The output columns.
        outputs: String,
    },
    /// Two output columns have one name (alias one of them).
    #[error("the SQL outputs two columns named {column:?}: alias one of them")]
    DuplicateOutput {
        /// The name.
        column: String,
    },
    /// A `rests_on` key names a column that is not the dataset's primary key.
    #[error("rests_on {dataset}: {column:?} is not part of its primary key ({primary_key})")]
    NotPrimaryKey {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// The primary key.
        primary_key: String,
    },
    /// A `rests_on` key leaves out part of the primary key.
    #[error("rests_on {dataset}: the key leaves out {missing} of its primary key")]
    PartialKey {
        /// The dataset.
        dataset: String,
        /// The missing columns.
        missing: String,
    },
    /// A `rests_on` dataset is not one the SQL reads.
    #[error("rests_on {dataset}: the SQL does not read it")]
    NotRead {
        /// The dataset.
        dataset: String,
    },
    /// Two files declare the same id.
    #[error("another file declares the same id: {other}")]
    DuplicateId {
        /// The other file.
        other: String,
    },
}

/// Everything wrong with one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleProblems {
    /// The rule's id (or its file's name, when the id is unusable).
    pub rule: String,
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl RuleProblems {
    /// `problems` of `rule`.
    pub fn new(rule: &str, problems: Vec<Problem>) -> RuleProblems {
        RuleProblems { rule: rule.to_owned(), problems }
    }
}

impl fmt::Display for RuleProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}:", self.rule)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleProblems {}

/// Loading and running rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rules are broken; each names itself and all of its problems.
    #[error("{} broken rule(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<RuleProblems>),
    /// A rules directory could not be listed.
    #[error("cannot list rules in {path}: {message}")]
    Directory {
        /// The directory.
        path: String,
        /// The system's message.
        message: String,
    },
    /// A rule named on the command line or in a request is not loaded.
    #[error("no rule {rule} (loaded: {loaded})")]
    UnknownRule {
        /// The name given.
        rule: String,
        /// The loaded ids.
        loaded: String,
    },
    /// The governed query layer refused or failed the rule's query.
    #[error("rule {rule}: {source}")]
    Query {
        /// The rule.
        rule: String,
        /// Why.
        source: civlink_query::Error,
    },
    /// The principal would see personal data in clear: findings must not hold it.
    #[error(
        "rule {rule}: {principal} reads {dataset}.{column} unmasked; rules run under a principal that sees personal data masked, so that no finding holds it in clear"
    )]
    Unmasked {
        /// The rule.
        rule: String,
        /// The principal.
        principal: String,
        /// The dataset.
        dataset: String,
        /// The unmasked column.
        column: String,
    },
    /// A result row cannot become a finding (e.g. its division is not a division code).
    #[error("rule {rule}: {message}")]
    BadRow {
        /// The rule.
        rule: String,
        /// What is wrong, without the row's values.
        message: String,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] civlink_catalog::store::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
