//! `civlink ingest JOB.toml`: run one ingestion job with a progress bar and a summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetId, QualityReport, RunRecord, RunStatus};
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, OutcomeKind, Principal, Role};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_connectors::gates::GateReport;
use civlink_connectors::job::Job;
use civlink_connectors::pipeline::{self, Catalog, Progress, RunOptions, RunOutcome};
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

/// Why a gate override was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// No token to say who overrides.
    #[error("{what} needs --token (or CIVLINK_TOKEN) of an admin or of the dataset department's service account")]
    MissingToken {
        /// `--accept` or `--force`.
        what: &'static str,
    },
    /// No reason given.
    #[error("{what} needs --reason: why the delivery is accepted although a gate held it (it is audited)")]
    MissingReason {
        /// `--accept` or `--force`.
        what: &'static str,
    },
    /// The principal may not override this dataset's gates.
    #[error(
        "{principal} may not override the delivery gates of {dataset}: an admin or {dataset}'s department service account may"
    )]
    NotAllowed {
        /// Who tried.
        principal: String,
        /// The dataset.
        dataset: DatasetId,
    },
    /// `--accept` names no run.
    #[error("no run {run_id}")]
    UnknownRun {
        /// The run id given.
        run_id: String,
    },
}

/// What an ingestion did to a dataset, for what runs after it.
pub struct Ran {
    /// The dataset.
    pub dataset: DatasetId,
    /// How its run ended (an accepted held run counts as committed).
    pub status: RunStatus,
}

/// Run a job file (or accept a held run) and print its summary.
pub async fn run(args: &IngestArgs, catalog: &OpenCatalog) -> Result<(Outcome, Option<Ran>)> {
    if let Some(run_id) = &args.accept {
        return accept(run_id, args, catalog).await;
    }
    let Some(job_path) = args.job.as_deref() else {
        return Err(Error::Job { path: PathBuf::from("-"), message: "give a job file, or --accept RUN".into() });
    };
    let job =
        Job::load(job_path).map_err(|source| Error::Job { path: job_path.to_owned(), message: source.to_string() })?;
    let overrider = match args.force {
        true => Some(overrider(args, catalog, &job.spec.dataset, "--force").await?),
        false => None,
    };
    let options = RunOptions { force: args.force, ..RunOptions::default() };
    let outcome = run_job_with(&job, job_path, catalog, &options).await?;
    if let (Some((principal, reason)), Some(gates)) = (overrider, &outcome.gates)
        && !gates.passed()
        && outcome.run.status == RunStatus::Committed
    {
        let overridden: Vec<String> = gates.failed().map(|g| g.to_string()).collect();
        audit_override(catalog, &principal, AuditAction::IngestForce, &outcome.run, &reason, &overridden).await?;
    }
    print!("{}", summary(&outcome));
    let ran = Ran { dataset: job.spec.dataset.clone(), status: outcome.run.status };
    Ok((if outcome.run.status == RunStatus::Held { Outcome::Held } else { Outcome::Clean }, Some(ran)))
}

/// The principal behind `--token`, if it may override `dataset`'s gates, and the reason given.
async fn overrider(
    args: &IngestArgs,
    catalog: &OpenCatalog,
    dataset: &DatasetId,
    what: &'static str,
) -> Result<(Principal, String)> {
    let token = args.token.as_deref().ok_or(OverrideError::MissingToken { what })?;
    let reason =
        args.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).ok_or(OverrideError::MissingReason { what })?;
    let principal = catalog.store.authenticate(token).await.map_err(Error::Policy)?;
    let allowed = match principal.role {
        Role::Admin => true,
        Role::DepartmentService => principal.department == Some(dataset.department),
        Role::Analyst | Role::StandardsAdmin => false,
    };
    if !allowed {
        return Err(OverrideError::NotAllowed { principal: principal.name, dataset: dataset.clone() }.into());
    }
    Ok((principal, reason.to_owned()))
}

/// The override, in the audit chain: who, which run, why, and the gates it overrode.
async fn audit_override(
    catalog: &OpenCatalog,
    principal: &Principal,
    action: AuditAction,
    run: &RunRecord,
    reason: &str,
    gates: &[String],
) -> Result<()> {
    let detail = format!("run {} of {}: {reason} (gates: {})", run.run_id, run.dataset, gates.join("; "));
    let mut entry = AuditEntry::new(principal.name.clone(), action, AuditOutcome::new(OutcomeKind::Ok, detail));
    entry.purpose = Some(reason.to_owned());
    entry.datasets = vec![run.dataset.to_string()];
    catalog.store.append_audit(&entry).await.map_err(Error::Policy)?;
    Ok(())
}

/// `civlink ingest --accept RUN`: commit a held run as it is.
async fn accept(run_id: &str, args: &IngestArgs, catalog: &OpenCatalog) -> Result<(Outcome, Option<Ran>)> {
    let run = catalog
        .store
        .run(run_id)
        .await
        .map_err(Error::Store)?
        .ok_or_else(|| OverrideError::UnknownRun { run_id: run_id.to_owned() })?;
    let (principal, reason) = overrider(args, catalog, &run.dataset, "--accept").await?;
    let hold = catalog.store.hold(run_id).await.map_err(Error::Store)?;
    let gates: Vec<String> = hold
        .as_ref()
        .and_then(|h| serde_json::from_str::<GateReport>(&h.report).ok())
        .map(|report| report.failed().map(|g| g.to_string()).collect())
        .unwrap_or_default();
    let accepted = catalog.store.accept_held_run(run_id, &principal.name, &reason).await.map_err(Error::Store)?;
    audit_override(catalog, &principal, AuditAction::IngestAccept, &accepted, &reason, &gates).await?;
    println!(
        "run {} accepted by {}: {} is now at version {} ({} rows written)",
        accepted.run_id,
        principal.name,
        accepted.dataset,
        accepted.data_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        accepted.counts.written
    );
    Ok((Outcome::Clean, Some(Ran { dataset: accepted.dataset.clone(), status: RunStatus::Committed })))
}

/// Run a loaded job with a progress bar; the bar is cleared when the run ends.
pub async fn run_job(job: &Job, job_path: &Path, catalog: &OpenCatalog) -> Result<RunOutcome> {
    run_job_with(job, job_path, catalog, &RunOptions::default()).await
}

/// [`run_job`] with options.
pub async fn run_job_with(
    job: &Job,
    job_path: &Path,
    catalog: &OpenCatalog,
    options: &RunOptions,
) -> Result<RunOutcome> {
    let bar = Bar::new(&job.spec.name);
    let outcome = pipeline::run_with(job, &catalog.pipeline(), &bar, options).await;
    bar.0.finish_and_clear();
    outcome.map_err(|e| Error::Ingest { job: job_path.to_owned(), message: e.to_string() })
}

/// [`run_job`] under the job's lease (the scheduler's, taken by `jobs run`): renewed while the run lives, released after.
pub async fn run_job_leased(
    job: &Job,
    job_path: &Path,
    catalog: &OpenCatalog,
    lease: civlink_connectors::schedule::Lease,
) -> Result<RunOutcome> {
    use civlink_connectors::schedule::LeasedRun;
    let bar = Bar::new(&job.spec.name);
    let outcome = lease.run(job, &catalog.pipeline(), &bar, RunOptions::default()).await;
    bar.0.finish_and_clear();
    match outcome {
        LeasedRun::Ran(outcome) => {
            (*outcome).map_err(|e| Error::Ingest { job: job_path.to_owned(), message: e.to_string() })
        }
        LeasedRun::LeaseLost => Err(Error::Ingest {
            job: job_path.to_owned(),
            message: "stopped before committing: the job's lease was lost (another process took the job over)".into(),
        }),
    }
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
    if let Some(gates) = &outcome.gates {
        out.push_str(&gate_lines(gates, run, outcome.quality.is_some()));
    }
    out
}

/// The delivery gates of a run: every gate when one held it, else only warnings and overrides.
pub fn gate_lines(gates: &GateReport, run: &RunRecord, with_quality: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if run.status == RunStatus::Held {
        let _ = writeln!(
            out,
            "  HELD by a delivery gate: {} keeps its current version; nothing was committed",
            run.dataset
        );
    } else if !gates.passed() {
        let _ = writeln!(out, "  committed with --force over these gates:");
    }
    if !gates.passed() {
        for gate in &gates.outcomes {
            let _ = writeln!(out, "    {gate}");
        }
    }
    if let Some(hint) = &gates.encoding_hint {
        let _ = writeln!(out, "  encoding: {hint}");
    }
    // With a quality report, the warning is printed from it (and stored with it).
    if !gates.unused_columns.is_empty() && !with_quality {
        let _ = writeln!(
            out,
            "  warning: source columns the mapping does not use: {} (renamed at the source?)",
            gates.unused_columns.join(", ")
        );
    }
    if run.status == RunStatus::Held {
        if run.data_version.is_some() {
            let _ = writeln!(
                out,
                "  inspect: civlink catalog quarantine {}; accept as it is: civlink ingest --accept {} --token … --reason …",
                run.dataset, run.run_id
            );
        } else {
            let _ =
                writeln!(out, "  fix the export or the job and run it again (or --force with --token and --reason)");
        }
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
    if !quality.unused_source_columns.is_empty() {
        let _ = writeln!(
            out,
            "  warning: source columns the mapping does not use: {} (renamed at the source?)",
            quality.unused_source_columns.join(", ")
        );
    }
    if let Some(check) = &quality.source_deletions {
        let _ = writeln!(
            out,
            "  deletions at the source: {} key(s) compared, {} row(s) marked in {}",
            check.source_keys, check.marked, check.column
        );
    }
    if !quality.source_drift.is_empty() {
        let _ = writeln!(
            out,
            "  warning: the source's columns changed since the last committed run, read on (on_drift = continue): {}",
            quality.source_drift.join("; ")
        );
    }
    for layout in &quality.sheets {
        out.push_str(&sheet_lines(layout));
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

/// Where a sheet's table was and the rows not taken as data, e.g.
/// `sheet 低保户 (台账.xlsx): header rows 3–4 (found: 6 known column names); skipped 3 rows: 1–2 above the header, 12 trailer (合计)`.
fn sheet_lines(layout: &civlink_catalog::model::SheetLayout) -> String {
    use std::fmt::Write;
    let file = file_name(&layout.source);
    let rows = match layout.header.rows.as_slice() {
        [] => "no header".to_owned(),
        [one] => format!("header row {one}"),
        [first, .., last] => format!("header rows {first}–{last}"),
    };
    let mut out = String::new();
    let _ = write!(out, "  sheet {} ({file}): {rows} ({})", layout.sheet, layout.header.found);
    if layout.skipped.is_empty() {
        let _ = writeln!(out);
        return out;
    }
    // Runs of consecutive rows with one reason, so a long title block reads as `1–4`.
    let mut groups: Vec<(u64, u64, String)> = Vec::new();
    for row in &layout.skipped {
        let reason = row.reason.to_string();
        match groups.last_mut() {
            Some((_, last, r)) if *last + 1 == row.line && *r == reason => *last = row.line,
            _ => groups.push((row.line, row.line, reason)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(
            |(first, last, reason)| {
                if first == last { format!("{first} {reason}") } else { format!("{first}–{last} {reason}") }
            },
        )
        .collect();
    let _ = writeln!(out, "; skipped {} rows: {}", layout.skipped.len(), parts.join(", "));
    out
}

/// The file name at the end of a source URI, percent-decoding undone
/// (`file:///…/%E4%BD%8E%E4%BF%9D.xlsx#sheet` → `低保.xlsx#sheet`), for people to read.
pub fn file_name(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or(uri).as_bytes();
    let mut bytes = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (name[i], name.get(i + 1).copied().and_then(hex), name.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                bytes.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Arguments of `civlink ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The job file (TOML); not with --accept.
    #[arg(required_unless_present = "accept")]
    pub job: Option<PathBuf>,
    /// Commit a run a delivery gate held, by its run id, as it is.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["job", "force"])]
    pub accept: Option<String>,
    /// Commit even when a delivery gate would hold the run.
    #[arg(long)]
    pub force: bool,
    /// With --accept or --force: the token of an admin, or of the dataset department's service account.
    #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With --accept or --force: why (recorded in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
    /// Rule files (besides the shipped ones) whose `[schedule] after_ingest`
    /// rules run when this ingestion commits a dataset they read.
    #[arg(long = "rules-dir", env = "CIVLINK_RULES_DIR")]
    pub rules_dirs: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_read_as_written() {
        assert_eq!(file_name("file:///data/%E4%BD%8E%E4%BF%9D.xlsx#低保户"), "低保.xlsx#低保户");
        assert_eq!(file_name("s3://bucket/exports/a.csv"), "a.csv");
        assert_eq!(file_name("file:///x/100%25.csv"), "100%.csv");
        assert_eq!(file_name("file:///x/bad%zz.csv"), "bad%zz.csv");
    }
}
