//! `civlink ingest JOB.toml`: run one ingestion job with a progress bar and a summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{QualityReport, RunStatus};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_connectors::job::Job;
use civlink_connectors::pipeline::{self, Catalog, Progress, RunOutcome};
use civlink_connectors::source::SourceFile;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Error, Outcome, Result};

/// The catalog opened from configuration: metadata store and table storage.
pub struct OpenCatalog {
    /// Resolved configuration.
    pub config: CatalogConfig,
    /// Metadata.
    pub store: MetadataStore,
    /// Delta tables.
    pub tables: TableStore,
}

impl OpenCatalog {
    /// Connect to the metadata store (running migrations) and set up table storage.
    pub async fn open(config: CatalogConfig) -> Result<OpenCatalog> {
        let store = MetadataStore::connect(&config.metadata_url).await.map_err(Error::Store)?;
        let tables = TableStore::new(&config).map_err(Error::Table)?;
        Ok(OpenCatalog { config, store, tables })
    }

    /// The pipeline's view of it.
    pub fn pipeline(&self) -> Catalog<'_> {
        Catalog { store: &self.store, tables: &self.tables, s3: self.config.s3.as_ref() }
    }
}

/// A progress bar: rows read and rows per second.
struct Bar(ProgressBar);

impl Bar {
    fn new(job: &str) -> Bar {
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg} {human_pos} rows ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(job.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar(bar)
    }
}

impl Progress for Bar {
    fn source_started(&self, file: &SourceFile) {
        self.0.set_message(file.uri.rsplit('/').next().unwrap_or(&file.uri).to_owned());
    }

    fn rows(&self, read: u64) {
        self.0.set_position(read);
    }
}

/// Run a job file and print its summary.
pub async fn run(job_path: &Path, catalog: &OpenCatalog) -> Result<Outcome> {
    let job =
        Job::load(job_path).map_err(|source| Error::Job { path: job_path.to_owned(), message: source.to_string() })?;
    let outcome = run_job(&job, job_path, catalog).await?;
    print!("{}", summary(&outcome));
    Ok(Outcome::Clean)
}

/// Run a loaded job with a progress bar; the bar is cleared when the run ends.
pub async fn run_job(job: &Job, job_path: &Path, catalog: &OpenCatalog) -> Result<RunOutcome> {
    let bar = Bar::new(&job.spec.name);
    let outcome = pipeline::run(job, &catalog.pipeline(), &bar).await;
    bar.0.finish_and_clear();
    outcome.map_err(|e| Error::Ingest { job: job_path.to_owned(), message: e.to_string() })
}

/// The run summary: counts, the conservation check, validity and the top violations.
pub fn summary(outcome: &RunOutcome) -> String {
    use std::fmt::Write;
    let run = &outcome.run;
    let mut out = String::new();
    if run.status == RunStatus::Skipped {
        let _ = writeln!(
            out,
            "{} → {}: skipped, the same sources were already ingested by run {}",
            run.job,
            run.dataset,
            outcome.skipped_because_of.as_deref().unwrap_or("?")
        );
        return out;
    }
    let c = run.counts;
    let _ = writeln!(
        out,
        "{} → {}  run {}  ({} mode, data version {}, {} source file(s))",
        run.job,
        run.dataset,
        run.run_id,
        run.mode.code(),
        run.data_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        outcome.sources.len()
    );
    let _ = writeln!(out, "  {:<12} {:>12}", "read", c.read);
    let _ = writeln!(out, "  {:<12} {:>12}", "written", c.written);
    let _ = writeln!(out, "  {:<12} {:>12}", "quarantined", c.quarantined);
    let _ = writeln!(out, "  {:<12} {:>12}", "duplicate", c.duplicate);
    let _ = writeln!(
        out,
        "  conservation: {} = {} + {} + {} {}",
        c.read,
        c.written,
        c.quarantined,
        c.duplicate,
        if c.conserved() { "✓" } else { "✗" }
    );
    if let Some(quality) = &outcome.quality {
        out.push_str(&quality_lines(quality, 5));
    }
    out
}

/// Validity and the top broken rules, for run summaries and `catalog show`.
pub fn quality_lines(quality: &QualityReport, top: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  validity {:.2}%   primary-key uniqueness {:.2}%",
        quality.validity() * 100.0,
        quality.primary_key_uniqueness * 100.0
    );
    if !quality.rules.is_empty() {
        let _ = writeln!(out, "  top violations:");
        for rule in quality.rules.iter().take(top) {
            let column = if rule.column.is_empty() { "(row)" } else { &rule.column };
            let _ = writeln!(out, "    {:>8}  {:<20} {:<22} {}", rule.failed, column, rule.keyword, rule.example);
        }
    }
    let changed: Vec<_> = quality.normalised.iter().filter(|n| n.normalised > 0).collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "  normalised by the job's mapping (values as delivered / normalised):");
        for n in changed {
            let total = n.as_delivered + n.normalised;
            let share = if total == 0 { 0.0 } else { n.normalised as f64 / total as f64 };
            let _ = writeln!(
                out,
                "    {:<22} {:>10} / {:<10} {:>6.1}% normalised",
                n.column,
                n.as_delivered,
                n.normalised,
                share * 100.0
            );
        }
    }
    out
}

/// Arguments of `civlink ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The job file (TOML).
    pub job: PathBuf,
}
