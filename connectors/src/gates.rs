//! Delivery gates: a run that a gate stops is held, not committed, so one
//! broken delivery never replaces good data.
//!
//! A job's `[gates]` section sets the thresholds; every gate has a default
//! that catches a mis-encoded or wrong file while letting an ordinary
//! delivery with its few bad rows through:
//!
//! ```toml
//! [gates]
//! max_quarantined = "10%"        # rows set aside (invalid or duplicate), of rows read
//! max_source_reason = "5%"       # rows the reader rejected for one reason (encoding, ragged, malformed), of rows read
//! max_shrink = "50%"             # overwrite: how much smaller than the current version
//! max_growth = "1000%"           # overwrite: how much larger (default: no limit)
//! min_rows = 1                   # rows a delivery must have
//! min_required_columns = "100%"  # the standard's required columns the source provides (after mapping)
//! allow_rows = 10                # the share gates let this many rows through whatever the share
//! ```
//!
//! `allow_rows` keeps a small delivery's few bad rows (3 of 20 is 15 %) from
//! holding it, while a delivery that is mostly bad (985 of 999) is held.
//!
//! A share is written `"12.5%"` or as a fraction (`0.125`). [`check`]
//! reports every problem of the section at once (an unknown gate, a share
//! over 100 %, a negative one) alongside the rest of the job's.
//!
//! [`Gates::evaluate`] turns a run's figures into a [`GateReport`]: one
//! line per gate with its figure, threshold and verdict, which the run
//! record keeps.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::file::RejectKind;
use toml::{Table, Value};

/// The gates of a job, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    /// Largest share of rows read that may be set aside.
    pub max_quarantined: f64,
    /// Largest share of rows read that one reader reason may reject.
    pub max_source_reason: f64,
    /// Overwrite: largest shrink against the current version (0.5 = half).
    pub max_shrink: f64,
    /// Overwrite: largest growth against the current version (`None`: any).
    pub max_growth: Option<f64>,
    /// Fewest rows a delivery may have.
    pub min_rows: u64,
    /// Smallest share of the standard's required columns the source must provide.
    pub min_required_columns: f64,
    /// Rows the share gates (quarantined, one reader reason) let through whatever their share.
    pub allow_rows: u64,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            max_quarantined: 0.10,
            max_source_reason: 0.05,
            max_shrink: 0.50,
            max_growth: None,
            min_rows: 1,
            min_required_columns: 1.0,
            allow_rows: 10,
        }
    }
}

const KNOWN: [&str; 7] = [
    "max_quarantined",
    "max_source_reason",
    "max_shrink",
    "max_growth",
    "min_rows",
    "min_required_columns",
    "allow_rows",
];

/// Read the `[gates]` table: the gates, and every problem as (key, message).
pub fn check(table: Option<&Table>) -> (Gates, Vec<(String, String)>) {
    let mut gates = Gates::default();
    let mut problems = Vec::new();
    let Some(table) = table else { return (gates, problems) };
    for (key, value) in table {
        let field = format!("gates.{key}");
        let share = |bounded: bool| -> Result<f64, String> {
            let share = parse_share(value)?;
            if share < 0.0 {
                return Err(format!("{} is negative", show_share(share)));
            }
            if bounded && share > 1.0 {
                return Err(format!("{} is more than 100%", show_share(share)));
            }
            Ok(share)
        };
        let outcome = match key.as_str() {
            "max_quarantined" => share(true).map(|s| gates.max_quarantined = s),
            "max_source_reason" => share(true).map(|s| gates.max_source_reason = s),
            "max_shrink" => share(true).map(|s| gates.max_shrink = s),
            "max_growth" => share(false).map(|s| gates.max_growth = Some(s)),
            "min_required_columns" => share(true).map(|s| gates.min_required_columns = s),
            "min_rows" | "allow_rows" => match value {
                Value::Integer(n) if *n >= 0 => {
                    if key == "min_rows" {
                        gates.min_rows = *n as u64;
                    } else {
                        gates.allow_rows = *n as u64;
                    }
                    Ok(())
                }
                other => Err(format!("must be a whole number of rows, not {other}")),
            },
            _ => Err(format!("unknown gate; expected one of {}", KNOWN.join(", "))),
        };
        if let Err(message) = outcome {
            problems.push((field, message));
        }
    }
    (gates, problems)
}

fn parse_share(value: &Value) -> Result<f64, String> {
    let share = match value {
        Value::String(text) => {
            let number =
                text.trim().strip_suffix('%').ok_or_else(|| format!("{text:?} is not a share like \"10%\""))?;
            number.trim().parse::<f64>().map_err(|_| format!("{text:?} is not a share like \"10%\""))? / 100.0
        }
        Value::Float(f) => *f,
        Value::Integer(n) => *n as f64,
        other => return Err(format!("{other} is not a share like \"10%\"")),
    };
    if share.is_finite() { Ok(share) } else { Err("is not a finite share".to_owned()) }
}

fn show_share(share: f64) -> String {
    let percent = share * 100.0;
    if (percent - percent.round()).abs() < 1e-9 { format!("{percent:.0}%") } else { format!("{percent:.2}%") }
}

/// Which gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    /// Rows set aside, of rows read.
    Quarantined,
    /// Rows the reader rejected for one reason, of rows read.
    SourceReason {
        /// The reason.
        reason: RejectKind,
    },
    /// Overwrite: the new version against the current one, smaller.
    Shrink,
    /// Overwrite: the new version against the current one, larger.
    Growth,
    /// Rows delivered.
    MinRows,
    /// The standard's required columns the source provides.
    RequiredColumns,
}

/// One gate's figure against its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOutcome {
    /// The gate.
    #[serde(flatten)]
    pub gate: Gate,
    /// What the run measured (a share, or rows for [`Gate::MinRows`]).
    pub figure: f64,
    /// The limit (a share, or rows).
    pub threshold: f64,
    /// Whether the figure is within the limit.
    pub passed: bool,
    /// The figure in words, e.g. `985 of 999 rows`.
    pub detail: String,
}

impl fmt::Display for GateOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "ok  " } else { "HELD" };
        let (name, figure, threshold) = match &self.gate {
            Gate::Quarantined => {
                ("quarantined".to_owned(), show_share(self.figure), format!("≤ {}", show_share(self.threshold)))
            }
            Gate::SourceReason { reason } => (
                format!("rejected: {}", reason.label()),
                show_share(self.figure),
                format!("≤ {}", show_share(self.threshold)),
            ),
            Gate::Shrink => ("shrink".to_owned(), show_share(self.figure), format!("≤ {}", show_share(self.threshold))),
            Gate::Growth => ("growth".to_owned(), show_share(self.figure), format!("≤ {}", show_share(self.threshold))),
            Gate::MinRows => ("rows".to_owned(), format!("{}", self.figure), format!("≥ {}", self.threshold)),
            Gate::RequiredColumns => {
                ("required columns".to_owned(), show_share(self.figure), format!("≥ {}", show_share(self.threshold)))
            }
        };
        write!(f, "{verdict} {name:<26} {figure:>8}  {threshold:<8}  {}", self.detail)
    }
}

/// What a run measured, for the gates.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// Rows read.
    pub read: u64,
    /// Rows set aside (quarantined and duplicate).
    pub set_aside: u64,
    /// Rows the reader rejected, per reason.
    pub rejected: Vec<(RejectKind, u64)>,
    /// Overwrite: rows in the current version, when there is one.
    pub current_rows: Option<u64>,
    /// Rows this run writes.
    pub written: u64,
}

/// Every gate's outcome for one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// One per gate that applied, in a fixed order.
    pub outcomes: Vec<GateOutcome>,
    /// The file decodes cleanly in another encoding than the declared one.
    pub encoding_hint: Option<String>,
    /// Source columns the mapping does not use (a renamed column at the source shows up here first).
    pub unused_columns: Vec<String>,
}

impl GateReport {
    /// Whether every gate passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.passed)
    }

    /// The gates that stopped the run.
    pub fn failed(&self) -> impl Iterator<Item = &GateOutcome> {
        self.outcomes.iter().filter(|o| !o.passed)
    }
}

fn share_of(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

impl Gates {
    /// The outcome of the required-columns gate for a source that provides
    /// `provided` of the standard's `required` columns.
    pub fn required_columns(&self, provided: usize, required: usize, missing: &[String]) -> GateOutcome {
        let figure = if required == 0 { 1.0 } else { provided as f64 / required as f64 };
        let detail = if missing.is_empty() {
            format!("{provided} of {required} required columns")
        } else {
            format!("{provided} of {required} required columns; missing {}", missing.join(", "))
        };
        GateOutcome {
            gate: Gate::RequiredColumns,
            figure,
            threshold: self.min_required_columns,
            // A source without any required column never passes, whatever the threshold.
            passed: figure >= self.min_required_columns && (provided > 0 || required == 0),
            detail,
        }
    }

    /// Every row-count gate for a finished read.
    pub fn evaluate(&self, figures: &RunFigures) -> Vec<GateOutcome> {
        let mut out = Vec::new();
        let quarantined = share_of(figures.set_aside, figures.read);
        out.push(GateOutcome {
            gate: Gate::Quarantined,
            figure: quarantined,
            threshold: self.max_quarantined,
            passed: quarantined <= self.max_quarantined || figures.set_aside <= self.allow_rows,
            detail: format!("{} of {} rows set aside", figures.set_aside, figures.read),
        });
        for &(reason, rows) in &figures.rejected {
            let share = share_of(rows, figures.read);
            out.push(GateOutcome {
                gate: Gate::SourceReason { reason },
                figure: share,
                threshold: self.max_source_reason,
                passed: share <= self.max_source_reason || rows <= self.allow_rows,
                detail: format!("{rows} of {} rows", figures.read),
            });
        }
        out.push(GateOutcome {
            gate: Gate::MinRows,
            figure: figures.read as f64,
            threshold: self.min_rows as f64,
            passed: figures.read >= self.min_rows,
            detail: format!("{} rows delivered", figures.read),
        });
        if let Some(current) = figures.current_rows.filter(|c| *c > 0) {
            let written = figures.written;
            let shrink = if written < current { 1.0 - written as f64 / current as f64 } else { 0.0 };
            out.push(GateOutcome {
                gate: Gate::Shrink,
                figure: shrink,
                threshold: self.max_shrink,
                passed: shrink <= self.max_shrink,
                detail: format!("{written} rows replace {current}"),
            });
            if let Some(max_growth) = self.max_growth {
                let growth = if written > current { written as f64 / current as f64 - 1.0 } else { 0.0 };
                out.push(GateOutcome {
                    gate: Gate::Growth,
                    figure: growth,
                    threshold: max_growth,
                    passed: growth <= max_growth,
                    detail: format!("{written} rows replace {current}"),
                });
            }
        }
        out
    }
}

/// How much of a file the encoding sniffer reads.
const SNIFF_BYTES: usize = 16 << 20;

/// For a run held with encoding rejects: the encodings the run's local CSV
/// files decode cleanly in, other than the one the job declares, as
/// `declared utf-8; the file decodes cleanly as gbk, gb18030`. A hint for
/// the person who fixes the job, never applied by itself.
pub fn encoding_hint(files: &[crate::source::SourceFile], declared: crate::file::Encoding) -> Option<String> {
    use crate::file::Encoding;
    let mut clean: Vec<Encoding> = Vec::new();
    for file in files {
        let Some(path) = url::Url::parse(&file.uri).ok().and_then(|u| u.to_file_path().ok()) else { continue };
        let Ok(mut handle) = std::fs::File::open(&path) else { continue };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(&mut handle, SNIFF_BYTES as u64), &mut bytes).is_err() {
            continue;
        }
        let here: Vec<Encoding> = [Encoding::Utf8, Encoding::Gbk, Encoding::Gb18030]
            .into_iter()
            .filter(|e| *e != declared && decodes_cleanly(&bytes, *e, bytes.len() < SNIFF_BYTES))
            .collect();
        if here.is_empty() {
            return None;
        }
        if clean.is_empty() {
            clean = here;
        } else {
            clean.retain(|e| here.contains(e));
        }
    }
    if clean.is_empty() {
        return None;
    }
    let names: Vec<&str> = clean.iter().map(|e| e.name()).collect();
    let subject = if files.len() == 1 { "the file decodes" } else { "the files decode" };
    Some(format!("declared {}; {subject} cleanly as {}", declared.name(), names.join(", ")))
}

/// Whether `bytes` decode in `encoding` without one malformed sequence
/// (`whole`: they are the whole file; otherwise a cut sequence at the end is fine).
fn decodes_cleanly(bytes: &[u8], encoding: crate::file::Encoding, whole: bool) -> bool {
    let mut decoder = encoding.as_encoding_rs().new_decoder_without_bom_handling();
    let Some(capacity) = decoder.max_utf8_buffer_length_without_replacement(bytes.len()) else { return false };
    let mut out = String::with_capacity(capacity);
    let (result, _) = decoder.decode_to_string_without_replacement(bytes, &mut out, whole);
    matches!(result, encoding_rs::DecoderResult::InputEmpty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_and_shares() {
        let (gates, problems) = check(Some(&table("max_quarantined = \"12.5%\"\nmax_shrink = 0.2\nmin_rows = 10")));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(gates.max_quarantined, 0.125);
        assert_eq!(gates.max_shrink, 0.2);
        assert_eq!(gates.min_rows, 10);
        assert_eq!(gates.max_source_reason, Gates::default().max_source_reason);
        let (gates, _) = check(Some(&table("max_growth = \"300%\"")));
        assert_eq!(gates.max_growth, Some(3.0));
    }

    #[test]
    fn every_problem_is_reported() {
        let (_, problems) = check(Some(&table(
            "max_quarantined = \"150%\"\nmax_shrnk = \"5%\"\nmin_rows = -1\nmax_shrink = \"lots\"\nmin_required_columns = -0.5",
        )));
        let mut problems = problems;
        problems.sort();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "gates.max_quarantined",
                "gates.max_shrink",
                "gates.max_shrnk",
                "gates.min_required_columns",
                "gates.min_rows"
            ]
        );
        assert!(problems[0].1.contains("more than 100%"), "{problems:?}");
        assert!(problems[2].1.contains("unknown gate"), "{problems:?}");
    }

    #[test]
    fn encodings_are_sniffed_not_guessed() {
        use crate::file::Encoding;
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,身份证号\n张三,1\n");
        assert!(!decodes_cleanly(&gbk, Encoding::Utf8, true));
        assert!(decodes_cleanly(&gbk, Encoding::Gbk, true));
        assert!(decodes_cleanly("姓名".as_bytes(), Encoding::Utf8, true));
        // A multi-byte character cut by the sniff window is not a defect.
        assert!(decodes_cleanly(&"姓名".as_bytes()[..4], Encoding::Utf8, false));
        assert!(!decodes_cleanly(&"姓名".as_bytes()[..4], Encoding::Utf8, true));
    }

    #[test]
    fn figures_against_thresholds() {
        let gates = Gates::default();
        let figures = RunFigures {
            read: 999,
            set_aside: 985,
            rejected: vec![(RejectKind::Encoding, 985)],
            current_rows: Some(999),
            written: 14,
        };
        let outcomes = gates.evaluate(&figures);
        let failed: Vec<&Gate> = outcomes.iter().filter(|o| !o.passed).map(|o| &o.gate).collect();
        assert_eq!(failed, [&Gate::Quarantined, &Gate::SourceReason { reason: RejectKind::Encoding }, &Gate::Shrink]);
        // The demo's planted rows (up to 8 %) pass; so do a small delivery's few.
        let ordinary = RunFigures { read: 1000, set_aside: 80, rejected: vec![(RejectKind::Ragged, 10)], ..figures };
        assert!(gates.evaluate(&RunFigures { current_rows: None, ..ordinary.clone() }).iter().all(|o| o.passed));
        let small = RunFigures {
            read: 18,
            set_aside: 8,
            rejected: vec![(RejectKind::Ragged, 1)],
            current_rows: None,
            written: 10,
        };
        assert!(gates.evaluate(&small).iter().all(|o| o.passed));
        let strict = Gates { allow_rows: 0, ..gates.clone() };
        assert!(!strict.evaluate(&small).iter().all(|o| o.passed));
        assert!(!gates.required_columns(0, 3, &["a".into()]).passed);
        assert!(gates.required_columns(3, 3, &[]).passed);
        assert!(!Gates { min_required_columns: 0.0, ..gates }.required_columns(0, 3, &[]).passed);
    }
}
