//! `civlink jobs list | run | history`: the ingestion jobs of a job
//! directory (`--jobs-dir`, `CIVLINK_JOBS_DIR`), their schedules and their
//! runs, readable at a glance. (The scheduler that fires them inside
//! `civlink serve` is still to come: until then a schedule is shown with its
//! next time, and `jobs run` runs a job now.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::Utc;
use civlink_catalog::model::RunStatus;
use civlink_connectors::job::Job;
use clap::{Args, Subcommand};

use crate::ingest_cmd::{OpenCatalog, run_job};
use crate::token_cmd::{columns, show_time};
use crate::{Error, Outcome, Result};

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

/// The job files of `dir`, by file name, each loaded or with its problems.
fn jobs(dir: &Path) -> Result<Vec<(PathBuf, std::result::Result<Job, String>)>> {
    let listing = std::fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    let mut files: Vec<PathBuf> = listing
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            let job = Job::load(&path).map_err(|e| e.to_string());
            (path, job)
        })
        .collect())
}

fn find(dir: &Path, name: &str) -> Result<(PathBuf, Job)> {
    let mut names = Vec::new();
    for (path, job) in jobs(dir)? {
        if let Ok(job) = job {
            if job.spec.name == name {
                return Ok((path, job));
            }
            names.push(job.spec.name);
        }
    }
    Err(Error::Job {
        path: dir.join(format!("{name}.toml")),
        message: format!("no job named {name:?} in {} (jobs: {})", dir.display(), names.join(", ")),
    })
}

/// Run a `civlink jobs` command.
pub async fn run(command: JobsCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    match command {
        JobsCommand::List(dir) => {
            let now = Utc::now();
            let mut rows = Vec::new();
            let mut broken = String::new();
            for (path, job) in jobs(&dir.dir)? {
                let job = match job {
                    Ok(job) => job,
                    Err(problems) => {
                        let _ = writeln!(broken, "  ! {}: {problems}", path.display());
                        continue;
                    }
                };
                let runs = catalog.store.runs(&job.spec.dataset).await.map_err(Error::Store)?;
                let last = runs.iter().filter(|r| r.job == job.spec.name).max_by_key(|r| r.started_at);
                rows.push(vec![
                    job.spec.name.clone(),
                    job.spec.dataset.to_string(),
                    job.spec.schedule.clone().unwrap_or_else(|| "-".into()),
                    job.next_run(now).map(show_time).unwrap_or_else(|| "-".into()),
                    last.map(|r| format!("{} {}", r.status.code(), show_time(r.started_at)))
                        .unwrap_or_else(|| "never run".into()),
                    "-".into(),
                ]);
            }
            print!("{}", columns(&["JOB", "DATASET", "SCHEDULE", "NEXT RUN", "LAST RUN", "LEASE"], &rows));
            print!("{broken}");
            Ok(if broken.is_empty() { Outcome::Clean } else { Outcome::Findings })
        }
        JobsCommand::Run { name, dir } => {
            let (path, job) = find(&dir.dir, &name)?;
            let outcome = run_job(&job, &path, catalog).await?;
            print!("{}", crate::ingest_cmd::summary(&outcome));
            Ok(if outcome.run.status == RunStatus::Held { Outcome::Held } else { Outcome::Clean })
        }
        JobsCommand::History { name, dir } => {
            let selected: Vec<Job> = match &name {
                Some(name) => vec![find(&dir.dir, name)?.1],
                None => jobs(&dir.dir)?.into_iter().filter_map(|(_, job)| job.ok()).collect(),
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
