//! # civlink-verify
//!
//! Cross-department verification (比对): rules as versioned files, run
//! through the governed query layer, producing findings that are routed to
//! the office that must act, carry their evidence, and record their outcome.
//! A finding is a lead, not a verdict, until an officer records its outcome.
//! And household economic-status checks (核对, [`household`]): what every
//! department holds about an applicant household, under its consent.
//!
//! | module | what lives there |
//! |---|---|
//! | [`rule`] | the rule file (`rules/<id>.toml`) and [`rule::Rule`] |
//! | [`check`] | a rule checked against the datasets' schemas before it runs |
//! | [`load`] | [`load::RuleSet`]: shipped rules and configured directories, every problem at once |
//! | [`shipped`] | the rules compiled into the binary |
//! | [`evaluate`] | [`evaluate::run_rule`]: the SQL as a principal, rows → candidates → findings |
//! | [`explain`] | the explanation templates |
//! | [`reveal`] | [`reveal::subject_as_seen`]: a finding's subject as its reader's own access shows it |
//! | [`household`] | 核对: [`household::CheckSources`], [`household::run_check`], [`household::CheckReport`] |
//! | [`error`] | [`Error`], [`error::RuleProblems`], [`error::Problem`] |
//!
//! The findings themselves (model, lifecycle, storage) are the catalog's:
//! `civlink_catalog::findings` and `MetadataStore::record_evaluation`.

pub mod check;
pub mod error;
pub mod evaluate;
pub mod explain;
pub mod household;
pub mod load;
pub mod reveal;
pub mod rule;
pub mod shipped;

pub use error::{Error, Result};
