//! `civlink catalog list | show | quarantine | history`: the governed catalog, readable at a glance.

use std::fmt::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use civlink_catalog::model::{DatasetId, DatasetRecord};
use civlink_catalog::table::TimeTravel;
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
}

/// Run a `catalog` subcommand.
pub async fn run(command: CatalogCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    let text = match command {
        CatalogCommand::List => list(catalog).await?,
        CatalogCommand::Show { dataset } => show(catalog, &dataset).await?,
        CatalogCommand::Quarantine { dataset, limit } => quarantine(catalog, &dataset, limit).await?,
        CatalogCommand::History { dataset } => history(catalog, &dataset).await?,
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
            let file = source.value(row).rsplit('/').next().unwrap_or_default();
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
    }
    Ok(out)
}
