//! `civlink catalog list | show | quarantine | history | read`: the governed catalog, readable at a glance.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use civlink_catalog::model::{DatasetId, DatasetRecord};
use civlink_catalog::table::TimeTravel;
use civlink_standards::mask::{MaskKey, MaskStrategy};
use civlink_standards::standard::Standard;
use clap::Subcommand;

use crate::ingest_cmd::{OpenCatalog, quality_lines};
use crate::{Error, Outcome, Result};

/// `civlink catalog` subcommands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Every dataset: owner, sharing type, standard, current version.
    List,
    /// One dataset: governance attributes, latest quality report, lineage.
    Show {
        /// `department.name`.
        dataset: DatasetId,
    },
    /// Quarantined rows of a dataset, newest runs first.
    Quarantine {
        /// `department.name`.
        dataset: DatasetId,
        /// How many rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Versions and runs of a dataset.
    History {
        /// `department.name`.
        dataset: DatasetId,
    },
    /// Rows of a dataset as of its current version, an earlier version, or a time;
    /// sensitive columns masked by the dataset's standard.
    Read {
        /// `department.name`.
        dataset: DatasetId,
        /// An earlier committed Delta version (default: the catalog's current version).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..), conflicts_with = "as_of")]
        version: Option<i64>,
        /// The version the catalog served at this time: RFC 3339
        /// (`2026-03-01T09:30:00+08:00`) or `YYYY-MM-DD HH:MM:SS` in China time (UTC+8).
        #[arg(long, value_parser = parse_as_of)]
        as_of: Option<DateTime<FixedOffset>>,
        /// How many rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Show sensitive columns in clear instead of masked.
        #[arg(long)]
        unmasked: bool,
    },
}

/// Why `catalog read` refused to read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// An explicit version or time, but no run has committed yet.
    #[error("{dataset}: nothing has been ingested yet, so there is no version to read")]
    NotIngested {
        /// The dataset.
        dataset: DatasetId,
    },
    /// A version past the catalog's current one: left by a run that never committed.
    #[error(
        "{dataset}: version {version} is newer than the catalog's current version {current}; versions past it \
         were written by runs the catalog never committed (crashed or in progress) and are not served"
    )]
    Uncommitted {
        /// The dataset.
        dataset: DatasetId,
        /// The version asked for.
        version: i64,
        /// The catalog's current version.
        current: i64,
    },
    /// A version at or below the current one that no committed run produced.
    #[error(
        "{dataset}: version {version} was never committed by the catalog (an orphaned commit of a crashed run, \
         or the rollback of one); committed versions: {}",
        committed.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    )]
    NeverCommitted {
        /// The dataset.
        dataset: DatasetId,
        /// The version asked for.
        version: i64,
        /// The versions the catalog committed, oldest first.
        committed: Vec<i64>,
    },
    /// A time before the first committed version.
    #[error(
        "{dataset}: no version had been committed at {} (the first was committed at {})",
        at.format("%Y-%m-%d %H:%M:%S%:z"),
        first.format("%Y-%m-%d %H:%M:%S%.3f%:z")
    )]
    NothingAt {
        /// The dataset.
        dataset: DatasetId,
        /// The time asked for, as given.
        at: DateTime<FixedOffset>,
        /// When the first version was committed.
        first: DateTime<FixedOffset>,
    },
    /// The dataset's standard is not in the catalog, so its masks are unknown.
    #[error("{dataset}: its standard {standard} {version} is not registered, so its columns cannot be masked")]
    StandardMissing {
        /// The dataset.
        dataset: DatasetId,
        /// Standard id.
        standard: String,
        /// Standard version.
        version: String,
    },
    /// The registered standard does not parse.
    #[error("standard {standard} {version} in the catalog is malformed: {source}")]
    Standard {
        /// Standard id.
        standard: String,
        /// Standard version.
        version: String,
        /// Why.
        #[source]
        source: civlink_standards::standard::Error,
    },
    /// Masking produced a batch arrow refuses (a bug, reported instead of panicking).
    #[error("cannot mask the rows of {dataset}: {message}")]
    Mask {
        /// The dataset.
        dataset: DatasetId,
        /// arrow's message.
        message: String,
    },
}

/// China Standard Time, the zone `--as-of` times without an offset are in.
fn china() -> FixedOffset {
    // 8 h is within FixedOffset's ±24 h range, so this is always Some; UTC is a harmless fallback.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// `--as-of`: RFC 3339, or a local date-time taken as China time (UTC+8).
fn parse_as_of(text: &str) -> std::result::Result<DateTime<FixedOffset>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t);
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return china()
                .from_local_datetime(&local)
                .single()
                .ok_or_else(|| format!("{text:?} is not a time in UTC+8"));
        }
    }
    Err(format!(
        "{text:?} is not a time: use RFC 3339 (2026-03-01T09:30:00+08:00) or \"YYYY-MM-DD HH:MM:SS\" (China time, UTC+8)"
    ))
}

/// Run a `catalog` subcommand.
pub async fn run(command: CatalogCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    let text = match command {
        CatalogCommand::List => list(catalog).await?,
        CatalogCommand::Show { dataset } => show(catalog, &dataset).await?,
        CatalogCommand::Quarantine { dataset, limit } => quarantine(catalog, &dataset, limit).await?,
        CatalogCommand::History { dataset } => history(catalog, &dataset).await?,
        CatalogCommand::Read { dataset, version, as_of, limit, unmasked } => {
            let at = match (version, as_of) {
                (Some(version), _) => At::Version(version),
                (None, Some(time)) => At::Time(time),
                (None, None) => At::Current,
            };
            read(catalog, &dataset, at, limit, unmasked).await?
        }
    };
    print!("{text}");
    Ok(Outcome::Clean)
}

async fn dataset(catalog: &OpenCatalog, id: &DatasetId) -> Result<DatasetRecord> {
    catalog.store.require_dataset(id).await.map_err(Error::Store)
}

/// Pad to a display width, counting CJK characters as two columns.
fn pad(text: &str, width: usize) -> String {
    let shown: usize = text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(shown)))
}

async fn list(catalog: &OpenCatalog) -> Result<String> {
    let datasets = catalog.store.datasets().await.map_err(Error::Store)?;
    let mut out = String::new();
    if datasets.is_empty() {
        out.push_str("no datasets yet: run `civlink ingest JOB.toml` or `civlink demo`\n");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{}{}{}{}{:>8}  updated",
        pad("dataset", 34),
        pad("title", 24),
        pad("sharing", 14),
        pad("standard", 30),
        "version"
    );
    for d in datasets {
        let _ = writeln!(
            out,
            "{}{}{}{}{:>8}  {}",
            pad(&d.spec.id.to_string(), 34),
            pad(&d.spec.title, 24),
            pad(d.spec.sharing.name_zh(), 14),
            pad(&format!("{} {}", d.spec.standard_id, d.spec.standard_version), 30),
            d.current_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            d.updated_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into()),
        );
    }
    Ok(out)
}

async fn show(catalog: &OpenCatalog, id: &DatasetId) -> Result<String> {
    let d = dataset(catalog, id).await?;
    let s = &d.spec;
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", s.id, s.title);
    let _ = writeln!(out, "  owner          {}", s.owner);
    if !s.description.is_empty() {
        let _ = writeln!(out, "  description    {}", s.description);
    }
    let _ = writeln!(out, "  department     {} ({})", s.id.department.code(), s.id.department.name_zh());
    let _ = writeln!(out, "  standard       {} {}", s.standard_id, s.standard_version);
    let _ = writeln!(
        out,
        "  classification {} ({})",
        serde_json::to_value(s.classification).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        s.classification.gb43697_class()
    );
    let _ = writeln!(out, "  sharing        {} ({})", s.sharing.code(), s.sharing.name_zh());
    let _ = writeln!(out, "  update cycle   {}", s.update_cycle.code());
    let _ = writeln!(out, "  division col   {}", s.division_column.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "  primary key    {}",
        if s.primary_key.is_empty() { "-".into() } else { s.primary_key.join(", ") }
    );
    let _ = writeln!(
        out,
        "  table          {} (version {})",
        d.table_uri,
        d.current_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(
        out,
        "  quarantine     {} (version {})",
        d.quarantine_uri,
        d.quarantine_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
    );

    if let Some(q) = catalog.store.latest_quality(id).await.map_err(Error::Store)? {
        let _ = writeln!(out, "quality (run {}, {})", q.run_id, q.ingested_at.format("%Y-%m-%d %H:%M:%S UTC"));
        let c = q.counts;
        let _ = writeln!(
            out,
            "  rows: read {} = written {} + quarantined {} + duplicate {}",
            c.read, c.written, c.quarantined, c.duplicate
        );
        if let Some(modified) = q.source_modified {
            let age = q.ingested_at.signed_duration_since(modified);
            let _ = writeln!(
                out,
                "  freshness: sources modified {} ({} h before ingest)",
                modified.format("%Y-%m-%d %H:%M"),
                age.num_hours()
            );
        }
        out.push_str(&quality_lines(&q, 10));
        let _ = writeln!(out, "  completeness:");
        for col in &q.completeness {
            let share = if col.rows == 0 { 1.0 } else { col.present as f64 / col.rows as f64 };
            let filled = (share * 20.0).round() as usize;
            let _ = writeln!(
                out,
                "    {:<22} {}{} {:>6.1}%",
                col.column,
                "█".repeat(filled),
                "·".repeat(20 - filled.min(20)),
                share * 100.0
            );
        }
    }
    let lineage = catalog.store.lineage(id).await.map_err(Error::Store)?;
    if !lineage.is_empty() {
        let _ = writeln!(out, "lineage (source → run → version):");
        for edge in lineage.iter().rev().take(10) {
            let _ = writeln!(out, "  {} → {} → v{}", edge.source_uri, edge.run_id, edge.version);
        }
    }
    Ok(out)
}

async fn quarantine(catalog: &OpenCatalog, id: &DatasetId, limit: usize) -> Result<String> {
    let d = dataset(catalog, id).await?;
    let mut out = String::new();
    let Some(version) = d.quarantine_version else {
        let _ = writeln!(out, "{id}: nothing ingested yet");
        return Ok(out);
    };
    let batches: Vec<RecordBatch> =
        catalog.tables.read(&d.quarantine_uri, TimeTravel::Version(version)).await.map_err(Error::Table)?;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let _ = writeln!(out, "{id}__quarantine: {total} rows (version {version})");
    let mut shown = 0;
    'outer: for batch in batches.iter().rev() {
        let col = |name: &str| batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>().cloned());
        let (Some(kind), Some(source), Some(violations)) = (col("kind"), col("source_uri"), col("violations")) else {
            continue;
        };
        let line =
            batch.column_by_name("line").and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned());
        for row in (0..batch.num_rows()).rev() {
            if shown == limit {
                break 'outer;
            }
            let line = line.as_ref().filter(|l| l.is_valid(row)).map(|l| l.value(row).to_string()).unwrap_or_default();
            let file = crate::ingest_cmd::file_name(source.value(row));
            let reasons: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(violations.value(row))
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    let column = v["column"].as_str().unwrap_or_default();
                    let keyword = v["keyword"].as_str().unwrap_or_default();
                    let message = v["message"].as_str().unwrap_or_default();
                    if column.is_empty() {
                        format!("{keyword}: {message}")
                    } else {
                        format!("{column} {keyword}: {message}")
                    }
                })
                .collect();
            let _ = writeln!(out, "  {:<9} {}:{}  {}", kind.value(row), file, line, reasons.join("; "));
            shown += 1;
        }
    }
    if total > shown {
        let _ = writeln!(out, "  … {} more (--limit)", total - shown);
    }
    Ok(out)
}

async fn history(catalog: &OpenCatalog, id: &DatasetId) -> Result<String> {
    dataset(catalog, id).await?;
    let versions = catalog.store.versions(id).await.map_err(Error::Store)?;
    let runs = catalog.store.runs(id).await.map_err(Error::Store)?;
    let mut out = String::new();
    let _ = writeln!(out, "{id}: {} version(s), {} run(s)", versions.len(), runs.len());
    let _ = writeln!(out, "  {:>7}  {:<10} {:>10}  {:<20} run", "version", "mode", "rows", "committed");
    for v in versions.iter().rev() {
        let _ = writeln!(
            out,
            "  {:>7}  {:<10} {:>10}  {:<20} {}",
            v.version,
            v.mode.code(),
            v.rows_written,
            v.committed_at.format("%Y-%m-%d %H:%M:%S"),
            v.run_id
        );
    }
    let _ = writeln!(out, "runs:");
    for r in &runs {
        let c = r.counts;
        let _ = writeln!(
            out,
            "  {}  {:<9} {}  read {} written {} quarantined {} duplicate {}{}",
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.status.code(),
            r.run_id,
            c.read,
            c.written,
            c.quarantined,
            c.duplicate,
            r.error.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default()
        );
        // A run a gate held: each gate that held it, at a glance, and whether someone accepted it.
        if let Some(hold) = catalog.store.hold(&r.run_id).await.map_err(Error::Store)? {
            if let Ok(report) = serde_json::from_str::<civlink_connectors::gates::GateReport>(&hold.report) {
                for gate in report.failed() {
                    let _ = writeln!(out, "      {gate}");
                }
                if let Some(hint) = &report.encoding_hint {
                    let _ = writeln!(out, "      encoding: {hint}");
                }
            }
            match &hold.accepted {
                Some(accepted) => {
                    let _ = writeln!(
                        out,
                        "      accepted by {} at {}: {}",
                        accepted.by,
                        accepted.at.format("%Y-%m-%d %H:%M:%S"),
                        accepted.reason
                    );
                }
                None if r.status == civlink_catalog::model::RunStatus::Held => {
                    let _ = writeln!(out, "      waiting: civlink ingest --accept {} --token … --reason …", r.run_id);
                }
                None => {}
            }
        }
    }
    Ok(out)
}

/// Which version `catalog read` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The catalog's current version.
    Current,
    /// A version the catalog committed.
    Version(i64),
    /// The version the catalog served at this time.
    Time(DateTime<FixedOffset>),
}

async fn read(catalog: &OpenCatalog, id: &DatasetId, at: At, limit: usize, unmasked: bool) -> Result<String> {
    let d = dataset(catalog, id).await?;
    let mut out = String::new();
    let Some(current) = d.current_version else {
        if at == At::Current {
            let _ = writeln!(out, "{id}: nothing ingested yet");
            return Ok(out);
        }
        return Err(Error::CatalogRead(ReadError::NotIngested { dataset: id.clone() }));
    };
    let version = resolve(catalog, id, current, at).await?;

    // The standard first, so a missing or broken one stops the command before any
    // clear value is read. Unmasked, it only orders the columns: do without it.
    let standard = match standard(catalog, &d).await {
        Ok(standard) => Some(standard),
        Err(_) if unmasked => None,
        Err(e) => return Err(e),
    };
    let masks = match (&standard, unmasked) {
        (Some(standard), false) => masks(standard),
        _ => HashMap::new(),
    };
    // Key columns first; the others as stored (the standard's properties do not keep document order).
    let order: Vec<String> = standard.map(|s| s.primary_key).unwrap_or_default();
    // The version is pinned: the Delta log's head may hold commits the catalog never made.
    let batches = catalog.tables.read(&d.table_uri, TimeTravel::Version(version)).await.map_err(Error::Table)?;
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();

    let when = match at {
        At::Time(time) => format!(", as of {}", time.format("%Y-%m-%d %H:%M:%S%:z")),
        At::Current | At::Version(_) => String::new(),
    };
    let _ = writeln!(out, "{id}: {total} rows at version {version} (current version {current}{when})");
    if !masks.is_empty() {
        let mut described: Vec<String> = masks.iter().map(|(c, m)| format!("{c} ({})", m.describe())).collect();
        described.sort();
        let _ = writeln!(out, "masked: {}; --unmasked shows clear values", described.join(", "));
    }
    let shown = first_rows(&batches, limit);
    // Pseudonyms are keyed with the deployment's key, so they match what Flight SQL and REST show.
    let key = if masks.values().any(MaskStrategy::is_keyed) {
        Some(catalog.store.mask_key().await.map_err(Error::Store)?)
    } else {
        None
    };
    let shown = shown.iter().map(|b| present(id, b, &order, &masks, key.as_ref())).collect::<Result<Vec<_>>>()?;
    if !shown.is_empty() {
        let table =
            arrow::util::pretty::pretty_format_batches(&shown).map_err(|e| Error::Output { message: e.to_string() })?;
        let _ = writeln!(out, "{table}");
    }
    if total > limit {
        let _ = writeln!(out, "… {} more (--limit)", total - limit);
    }
    Ok(out)
}

/// The Delta version to read: only versions the catalog committed are served.
async fn resolve(catalog: &OpenCatalog, id: &DatasetId, current: i64, at: At) -> Result<i64> {
    let committed = || async { catalog.store.versions(id).await.map_err(Error::Store) };
    match at {
        At::Current => Ok(current),
        At::Version(version) if version > current => {
            Err(Error::CatalogRead(ReadError::Uncommitted { dataset: id.clone(), version, current }))
        }
        At::Version(version) => {
            let committed: Vec<i64> = committed().await?.iter().map(|v| v.version).collect();
            if committed.contains(&version) {
                Ok(version)
            } else {
                Err(Error::CatalogRead(ReadError::NeverCommitted { dataset: id.clone(), version, committed }))
            }
        }
        At::Time(time) => {
            // The catalog's commit time, not the Delta commit's: a version becomes what
            // readers see when the catalog records it, and orphaned commits (which have
            // Delta timestamps too) are never served.
            let versions = committed().await?;
            let utc = time.with_timezone(&Utc);
            if let Some(v) =
                versions.iter().filter(|v| v.committed_at <= utc && v.version <= current).max_by_key(|v| v.version)
            {
                return Ok(v.version);
            }
            match versions.iter().min_by_key(|v| v.committed_at) {
                Some(first) => Err(Error::CatalogRead(ReadError::NothingAt {
                    dataset: id.clone(),
                    at: time,
                    first: first.committed_at.with_timezone(&time.timezone()),
                })),
                None => Err(Error::CatalogRead(ReadError::NotIngested { dataset: id.clone() })),
            }
        }
    }
}

/// Column name → mask, for the dataset's standard's columns whose mask changes values.
async fn standard(catalog: &OpenCatalog, d: &DatasetRecord) -> Result<Standard> {
    let (standard, version) = (&d.spec.standard_id, &d.spec.standard_version);
    let document = catalog.store.standard(standard, version).await.map_err(Error::Store)?.ok_or_else(|| {
        Error::CatalogRead(ReadError::StandardMissing {
            dataset: d.spec.id.clone(),
            standard: standard.clone(),
            version: version.clone(),
        })
    })?;
    Standard::from_json_str(&document).map_err(|source| {
        Error::CatalogRead(ReadError::Standard { standard: standard.clone(), version: version.clone(), source })
    })
}

/// Column name → mask, for the standard's columns whose mask changes values.
fn masks(standard: &Standard) -> HashMap<String, MaskStrategy> {
    standard
        .properties
        .iter()
        .map(|p| (p.name.clone(), p.effective_mask()))
        .filter(|(_, mask)| !mask.is_none())
        .collect()
}

/// The first `limit` rows, as slices of the batches (no copy).
fn first_rows(batches: &[RecordBatch], limit: usize) -> Vec<RecordBatch> {
    let mut left = limit;
    let mut out = Vec::new();
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        if take > 0 {
            out.push(batch.slice(0, take));
            left -= take;
        }
    }
    out
}

/// A batch as shown: the `order` columns first (the others after them, as
/// stored), masks applied. Masked columns become strings (a masked number or
/// date is shown starred too); a column that cannot be shown as text is redacted
/// whole rather than shown in clear.
fn present(
    id: &DatasetId,
    batch: &RecordBatch,
    order: &[String],
    masks: &HashMap<String, MaskStrategy>,
    key: Option<&MaskKey>,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut indices: Vec<usize> = (0..schema.fields().len()).collect();
    indices.sort_by_key(|&i| (order.iter().position(|name| name == schema.field(i).name()).unwrap_or(usize::MAX), i));
    let mut fields = Vec::with_capacity(indices.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(indices.len());
    for (field, column) in indices.iter().map(|&i| (schema.field(i), batch.column(i))) {
        let Some(mask) = masks.get(field.name()) else {
            fields.push(field.clone());
            columns.push(column.clone());
            continue;
        };
        let masked: StringArray = match arrow::compute::cast(column, &DataType::Utf8) {
            Ok(text) => text
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.and_then(|v| match key {
                        Some(key) => mask.apply_keyed(v, key),
                        None => mask.apply(v),
                    })
                })
                .collect(),
            Err(_) => StringArray::new_null(column.len()),
        };
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(masked));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::CatalogRead(ReadError::Mask { dataset: id.clone(), message: e.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StructArray};

    fn id() -> DatasetId {
        "minzheng.test_people".parse().unwrap()
    }

    #[test]
    fn as_of_takes_rfc3339_or_china_time() {
        let rfc = parse_as_of("2026-03-01T09:30:00+08:00").unwrap();
        assert_eq!(rfc.with_timezone(&Utc).to_rfc3339(), "2026-03-01T01:30:00+00:00");
        assert_eq!(parse_as_of("2026-03-01 09:30:00").unwrap(), rfc);
        assert_eq!(parse_as_of(" 2026-03-01T09:30:00 ").unwrap(), rfc);
        assert_eq!(parse_as_of("2026-03-01 09:30").unwrap(), rfc);
        assert_eq!(parse_as_of("2026-03-01T01:30:00Z").unwrap(), rfc);
        for bad in
            ["", "yesterday", "2026-02-30 00:00:00", "2026-03-01", "２０２６-03-01 09:30:00", "9999999-01-01 00:00:00"]
        {
            let err = parse_as_of(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn rows_are_ordered_and_masked_whatever_their_type() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("age", DataType::Int64, true),
            Field::new("extra", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("id_number", DataType::Utf8, false),
            Field::new("nested", DataType::Struct(vec![Field::new("x", DataType::Int64, true)].into()), true),
        ]));
        let nested = StructArray::from(vec![(
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
        )]);
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(30), None])),
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(StringArray::from(vec![Some("张三丰"), None])),
                Arc::new(StringArray::from(vec!["11010519491231002X", "短"])),
                Arc::new(nested),
            ],
        )
        .unwrap();
        let order: Vec<String> = ["id_number", "name", "age"].map(String::from).into();
        let masks: HashMap<String, MaskStrategy> = [
            ("id_number".to_owned(), MaskStrategy::KeepEnds { first: 6, last: 4 }),
            ("name".to_owned(), MaskStrategy::Name),
            ("age".to_owned(), MaskStrategy::Full),
            ("nested".to_owned(), MaskStrategy::Full),
        ]
        .into();
        let shown = present(&id(), &batch, &order, &masks, None).unwrap();
        let names: Vec<String> = shown.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["id_number", "name", "age", "extra", "nested"]);
        let strings = |i: usize| -> Vec<Option<String>> {
            shown.column(i).as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
        };
        assert_eq!(strings(0), [Some("110105********002X".into()), Some("*".into())]);
        assert_eq!(strings(1), [Some("张**".into()), None]);
        assert_eq!(strings(2), [Some("**".into()), None]);
        assert_eq!(strings(3), [Some("a".into()), Some("b".into())]);
        // A column that cannot become text is redacted, never shown in clear.
        assert_eq!(shown.column(4).null_count(), 2);

        // Unmasked: the same order, the values as stored.
        let clear = present(&id(), &batch, &order, &HashMap::new(), None).unwrap();
        assert_eq!(clear.column(0).as_string::<i32>().value(0), "11010519491231002X");
        assert_eq!(clear.schema().field(2).data_type(), &DataType::Int64);
    }

    #[test]
    fn first_rows_slices_across_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch =
            |n: i64| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap();
        let batches = [batch(2), batch(0), batch(3), batch(4)];
        let rows = |limit| first_rows(&batches, limit).iter().map(RecordBatch::num_rows).collect::<Vec<_>>();
        assert_eq!(rows(0), Vec::<usize>::new());
        assert_eq!(rows(4), [2, 2]);
        assert_eq!(rows(100), [2, 3, 4]);
    }
}
