//! Synthetic department exports for civlink's demo and benchmarks, with the
//! ground truth of everything planted in them.
//!
//! [`generate`] invents the residents of Qinghai — households in real
//! villages of the shipped division table, with consistent members (one
//! household number, relationships, sexes and ages that fit, valid and unique
//! GB 11643 ID numbers) — and writes what six departments would export about
//! them, each in its own format and conventions (see `docs/demo-data.md`):
//!
//! | module | what lives there |
//! |---|---|
//! | [`truth`] | [`GroundTruth`]: expected counts per dataset, rule and division; planted anomalies |
//! | `world` | the villages and counties, unique ID numbers and record serials |
//! | `people` | households and people: who lives where, who receives what |
//! | `datasets` | the fourteen datasets: headers, formats, planted malformations, job mappings |
//! | `rows` | one export row, and the writers of every format (CSV, NDJSON, JSON, xlsx, Parquet) |
//! | `text` | names, dates and amounts as departments write them |
//!
//! Output under [`Options::out`]:
//!
//! * `exports/<department>/…`: the exports;
//! * `jobs/<department>.<dataset>.toml`: one ingestion job per dataset,
//!   mapping the export onto the shipped standard;
//! * `ground_truth.json`: the serialized [`GroundTruth`].
//!
//! Generation streams: rows are written as each household is generated, and
//! only small state is kept (per-county ID counters, per-village serials,
//! tallies), so province scale runs in bounded memory. The same seed gives
//! byte-identical files.

mod datasets;
mod people;
mod rows;
mod text;
pub mod truth;
mod world;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use truth::{Anomaly, AnomalyKind, Applicant, ApplicantMember, DatasetTruth, GroundTruth, RuleCount};

/// Errors of generating or loading synthetic data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Excel workbook could not be written.
    #[error("{path}: writing the workbook: {message}")]
    Xlsx {
        /// The workbook.
        path: PathBuf,
        /// rust_xlsxwriter's message.
        message: String,
    },
    /// A Parquet file could not be written.
    #[error("{path}: writing Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// A generated value has no encoding in the export's character set.
    #[error("{path}: a generated line has no {encoding} encoding: {line}")]
    Unencodable {
        /// The export.
        path: PathBuf,
        /// The character set.
        encoding: &'static str,
        /// The line.
        line: String,
    },
    /// The shipped division table has no Qinghai villages to put people in.
    #[error("the shipped division table has no Qinghai villages")]
    NoVillages,
    /// The generator broke one of its own invariants (a bug): e.g. a person
    /// matches an anomaly query without being planted.
    #[error("internal inconsistency in the generated data: {message}")]
    Inconsistent {
        /// What went wrong.
        message: String,
    },
    /// A scale name that is not `small` or `province`.
    #[error("unknown scale {value:?}; expected small or province")]
    UnknownScale {
        /// The name given.
        value: String,
    },
    /// `ground_truth.json` could not be parsed or written.
    #[error("{path}: ground truth: {message}")]
    GroundTruth {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many people to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// About 20,000 people: the demo.
    Small,
    /// About 6,000,000 people, Qinghai's population: the benchmarks.
    Province,
}

impl Scale {
    /// The number of people this scale generates.
    pub const fn people(self) -> u64 {
        match self {
            Scale::Small => 20_000,
            Scale::Province => 6_000_000,
        }
    }

    /// `small` or `province`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Province => "province",
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = Error;

    fn from_str(s: &str) -> Result<Scale> {
        match s.trim().to_ascii_lowercase().as_str() {
            "small" => Ok(Scale::Small),
            "province" => Ok(Scale::Province),
            _ => Err(Error::UnknownScale { value: s.to_owned() }),
        }
    }
}

/// What to generate, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Output directory (created if missing): `exports/`, `jobs/` and
    /// `ground_truth.json` are written here.
    pub out: PathBuf,
    /// The scale, which sets the number of people.
    pub scale: Scale,
    /// Seed: the same seed (and people count) gives byte-identical files.
    pub seed: u64,
    /// Number of people, overriding the scale's (tests use small numbers).
    pub people: Option<u64>,
}

impl Options {
    /// The number of people to generate: [`people`](Self::people) or the scale's.
    pub fn people_count(&self) -> u64 {
        self.people.unwrap_or(self.scale.people())
    }
}

/// Generates the exports, jobs and ground truth described in the module
/// docs. `progress` is called with (people generated so far, total) now and
/// then, and once at the end.
pub fn generate(options: &Options, progress: &mut dyn FnMut(u64, u64)) -> Result<GroundTruth> {
    people::run(options, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_parse_and_count() {
        assert_eq!("small".parse::<Scale>().unwrap(), Scale::Small);
        assert_eq!(" Province ".parse::<Scale>().unwrap(), Scale::Province);
        assert!(matches!("huge".parse::<Scale>(), Err(Error::UnknownScale { .. })));
        assert_eq!(Scale::Small.people(), 20_000);
        assert_eq!(Scale::Province.to_string(), "province");
        let options = Options { out: PathBuf::from("x"), scale: Scale::Small, seed: 1, people: Some(5) };
        assert_eq!(options.people_count(), 5);
    }
}
