//! `civlink jobs list | run | history`: the ingestion jobs of a job
//! directory (`--jobs-dir`, `CIVLINK_JOBS_DIR`), their schedules, who runs
//! them now (the lease holder: a `civlink serve` scheduler, or `jobs run`)
//! and their runs, readable at a glance. `jobs run` takes the job's lease
//! like the scheduler does, so a job never runs twice at once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use civlink_catalog::model::RunStatus;
use civlink_catalog::store::JobLease;
use civlink_connectors::job::{Job, JobSet};
use civlink_connectors::schedule::{Acquire, Lease, holder_name};
use clap::{Args, Subcommand};

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::{columns, show_time};
use crate::{Error, Outcome, Result};

/// How long `jobs run`'s lease lasts unless renewed (renewed every third of it while the run lives).
const LEASE: Duration = Duration::from_secs(60);

/// Where the jobs are.
#[derive(Debug, Args)]
pub struct JobsDir {
    /// The directory of job files (`*.toml`).
    #[arg(long = "jobs-dir", env = "CIVLINK_JOBS_DIR")]
    pub dir: PathBuf,
}

/// `civlink jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Each job: dataset, schedule, next run and last outcome (a broken job file with its problems).
    List(JobsDir),
    /// Run a job now, by name.
    Run {
        /// The job's `name`.
        name: String,
        /// Where the jobs are.
        #[command(flatten)]
        dir: JobsDir,
    },
    /// The runs of one job (or of every job): start, end, outcome, counts, cursor before → after, error.
    History {
        /// The job's `name` (default: every job of the directory).
        name: Option<String>,
        /// Where the jobs are.
        #[command(flatten)]
        dir: JobsDir,
    },
}

/// The job files of `dir`, checked one by one and together.
fn jobs(dir: &Path) -> Result<JobSet> {
    JobSet::load(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })
}

fn find(dir: &Path, name: &str) -> Result<(PathBuf, Job)> {
    let set = jobs(dir)?;
    if let Some((path, job)) = set.jobs.iter().find(|(_, job)| job.spec.name == name) {
        return Ok((path.clone(), job.clone()));
    }
    Err(Error::Job {
        path: dir.join(format!("{name}.toml")),
        message: format!("no job named {name:?} in {} (jobs: {})", dir.display(), set.names().join(", ")),
    })
}

/// The live lease of each job: who runs it, and until when unless renewed.
async fn live_leases(catalog: &OpenCatalog) -> Result<HashMap<String, JobLease>> {
    let now = Utc::now();
    Ok(catalog
        .store
        .job_leases()
        .await
        .map_err(Error::Store)?
        .into_iter()
        .filter(|lease| lease.is_live(now))
        .map(|lease| (lease.job.clone(), lease))
        .collect())
}

/// Run a `civlink jobs` command.
pub async fn run(command: JobsCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    match command {
        JobsCommand::List(dir) => {
            let now = Utc::now();
            let mut rows = Vec::new();
            let mut broken = String::new();
            let set = jobs(&dir.dir)?;
            for (path, problems) in &set.broken {
                let _ = writeln!(broken, "  ! {}:", path.display());
                for problem in problems {
                    let _ = writeln!(broken, "      - {problem}");
                }
            }
            let leases = live_leases(catalog).await?;
            for (_, job) in &set.jobs {
                let runs = catalog.store.runs(&job.spec.dataset).await.map_err(Error::Store)?;
                let last = runs.iter().filter(|r| r.job == job.spec.name).max_by_key(|r| r.started_at);
                rows.push(vec![
                    job.spec.name.clone(),
                    job.spec.dataset.to_string(),
                    match (&job.spec.schedule, job.spec.after.is_empty()) {
                        (Some(cron), true) => cron.clone(),
                        (Some(cron), false) => format!("{cron}, after {}", job.spec.after.join(", ")),
                        (None, false) => format!("after {}", job.spec.after.join(", ")),
                        (None, true) => "-".into(),
                    },
                    job.next_run(now).map(show_time).unwrap_or_else(|| "-".into()),
                    last.map(|r| format!("{} {}", r.status.code(), show_time(r.started_at)))
                        .unwrap_or_else(|| "never run".into()),
                    match leases.get(&job.spec.name) {
                        Some(lease) => format!("{} (until {})", lease.holder, show_time(lease.expires_at)),
                        None => "-".into(),
                    },
                ]);
            }
            print!("{}", columns(&["JOB", "DATASET", "SCHEDULE", "NEXT RUN", "LAST RUN", "LEASE"], &rows));
            print!("{broken}");
            Ok(if broken.is_empty() { Outcome::Clean } else { Outcome::Findings })
        }
        JobsCommand::Run { name, dir } => {
            let (path, job) = find(&dir.dir, &name)?;
            // The job's lease, as a scheduler takes it: never two runs of one job at once.
            let holder = holder_name("jobs-run");
            let run_id = uuid::Uuid::new_v4().to_string();
            let lease =
                match Lease::acquire(&catalog.store, &name, &holder, run_id, LEASE).await.map_err(Error::Store)? {
                    Acquire::Got(lease) => lease,
                    Acquire::Busy(current) => {
                        return Err(Error::Job {
                            path,
                            message: format!(
                                "job {name:?} is running now (run {}, by {}, lease until {}); try again when it ends",
                                current.run_id,
                                current.holder,
                                show_time(current.expires_at)
                            ),
                        });
                    }
                };
            let outcome = crate::ingest_cmd::run_job_leased(&job, &path, catalog, lease).await?;
            print!("{}", crate::ingest_cmd::summary(&outcome));
            Ok(if outcome.run.status == RunStatus::Held { Outcome::Held } else { Outcome::Clean })
        }
        JobsCommand::History { name, dir } => {
            let selected: Vec<Job> = match &name {
                Some(name) => vec![find(&dir.dir, name)?.1],
                None => jobs(&dir.dir)?.jobs.into_iter().map(|(_, job)| job).collect(),
            };
            let mut rows = Vec::new();
            for job in &selected {
                let runs = catalog.store.runs(&job.spec.dataset).await.map_err(Error::Store)?;
                for r in runs.iter().filter(|r| r.job == job.spec.name) {
                    let c = r.counts;
                    // Failed and held runs stand out.
                    let mark = match r.status {
                        RunStatus::Failed => "!!",
                        RunStatus::Held => "!",
                        _ => "",
                    };
                    rows.push(vec![
                        mark.to_owned(),
                        job.spec.name.clone(),
                        show_time(r.started_at),
                        r.finished_at.map(show_time).unwrap_or_else(|| "-".into()),
                        r.status.code().to_owned(),
                        c.read.to_string(),
                        c.written.to_string(),
                        c.quarantined.to_string(),
                        c.duplicate.to_string(),
                        match catalog.store.run_cursor(&r.run_id).await.map_err(Error::Store)? {
                            Some((before, after)) => format!(
                                "{} → {}",
                                before.as_deref().unwrap_or("start"),
                                after.as_deref().unwrap_or("-")
                            ),
                            None => "-".into(),
                        },
                        r.error.clone().unwrap_or_default(),
                    ]);
                }
            }
            print!(
                "{}",
                columns(
                    &[
                        "", "JOB", "STARTED", "FINISHED", "OUTCOME", "READ", "WRITTEN", "QUAR.", "DUP.", "CURSOR",
                        "ERROR"
                    ],
                    &rows
                )
            );
            Ok(Outcome::Clean)
        }
    }
}
