//! The scheduler `civlink serve` runs: the jobs of a job directory whose
//! files carry a cron `schedule`, and the jobs that follow others (`after`).
//!
//! | piece | where |
//! |---|---|
//! | one run under the job's lease in the catalog | [`lease`] |
//! | the loop: rescans, due occurrences, missed runs, dependencies, shutdown | [`Scheduler`] |
//!
//! Several processes may share one catalog. Two things keep them from
//! running a job twice:
//! - an occurrence of a schedule is run only by the process that claims it
//!   in the catalog (`job_occurrences`), so clocks that tick a moment apart
//!   do not run it one after the other;
//! - a run holds the job's lease (`job_leases`), renewed while it lives and
//!   lapsing when its process dies; whoever takes a lapsed lease records the
//!   dead run as failed and runs the job afresh. Dropping a run before its
//!   commit leaves the dataset as it was, so nothing is lost or doubled.
//!
//! The job directory is read again every `rescan` period: jobs can be added,
//! changed or removed without a restart. A broken job file is logged with all
//! of its problems and not scheduled; the others run on.
//!
//! A job that follows others runs when every job it names has committed
//! since its own last run started, checked when one of them commits here
//! and at each rescan (commits by other processes, accepted held runs). A
//! held or failed delivery therefore never triggers what follows it.

pub mod lease;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use civlink_catalog::config::S3Config;
use civlink_catalog::model::{RunCounts, RunStatus};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use futures::future::BoxFuture;
use tokio::task::{Id as TaskId, JoinSet};

pub use lease::{Acquire, Lease, LeasedRun, holder_name};

use crate::job::{Job, JobSet, MissedRuns};
use crate::pipeline::{Catalog, RunOptions, RunOutcome, Silent};

/// How often the loop looks at the clock.
const TICK: Duration = Duration::from_millis(250);

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The job directory cannot be listed.
    #[error("cannot read the job directory {path}: {source}")]
    JobsDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The job files (`*.toml`).
    pub jobs_dir: PathBuf,
    /// How long a lease lasts unless renewed (renewed every third of it):
    /// how long another process waits to take over a job whose process died.
    pub lease: Duration,
    /// How often the job directory is read again.
    pub rescan: Duration,
    /// How long a run in progress at shutdown may take to finish before it
    /// is stopped (dataset untouched).
    pub grace: Duration,
}

impl SchedulerConfig {
    /// Default settings for `jobs_dir`: a 60 s lease, a 10 s rescan, a 30 s grace.
    pub fn new(jobs_dir: PathBuf) -> SchedulerConfig {
        SchedulerConfig {
            jobs_dir,
            lease: Duration::from_secs(60),
            rescan: Duration::from_secs(10),
            grace: Duration::from_secs(30),
        }
    }
}

/// What the scheduler writes to: the catalog, owned.
pub struct SchedulerCatalog {
    /// Metadata.
    pub store: MetadataStore,
    /// Delta tables.
    pub tables: TableStore,
    /// Credentials for `s3://` sources.
    pub s3: Option<S3Config>,
}

impl SchedulerCatalog {
    fn pipeline(&self) -> Catalog<'_> {
        Catalog { store: &self.store, tables: &self.tables, s3: self.s3.as_ref() }
    }
}

/// Called after each scheduled run that committed or was held: the binary
/// runs the verification rules scheduled after ingestion here.
pub trait AfterRun: Send + Sync {
    /// `outcome` is the run's; its status says whether it committed.
    fn after_run<'a>(&'a self, job: &'a Job, outcome: &'a RunOutcome) -> BoxFuture<'a, ()>;
}

/// Why a run was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An occurrence of the job's schedule.
    Schedule(DateTime<Utc>),
    /// The latest occurrence missed while no scheduler ran (`missed = "run_once"`).
    Missed(DateTime<Utc>),
    /// A job it follows committed.
    After(String),
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self {
            Trigger::Schedule(t) => write!(f, "schedule {}", at(t)),
            Trigger::Missed(t) => write!(f, "missed schedule {}", at(t)),
            Trigger::After(job) => write!(f, "after {job}"),
        }
    }
}

/// How a triggered run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Committed a new version.
    Committed {
        /// The run.
        run_id: String,
        /// Its counts.
        counts: RunCounts,
    },
    /// A delivery gate held it.
    Held {
        /// The run.
        run_id: String,
    },
    /// Its sources had been ingested already.
    Skipped {
        /// The run.
        run_id: String,
    },
    /// It failed (recorded with its cause).
    Failed {
        /// The run.
        run_id: String,
        /// The cause.
        error: String,
    },
    /// Another process (or an earlier run here) holds the job's lease.
    Busy {
        /// Who holds it.
        holder: String,
    },
    /// The lease was lost mid-run; stopped before committing.
    LeaseLost {
        /// The run.
        run_id: String,
    },
    /// A dependency run no longer needed (another process ran it first).
    NotNeeded,
    /// The catalog could not be asked.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// One triggered run, as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The job.
    pub job: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// How it ended.
    pub ran: Ran,
}

/// The scheduler of one process.
pub struct Scheduler {
    config: SchedulerConfig,
    catalog: Arc<SchedulerCatalog>,
    holder: String,
    after_run: Option<Arc<dyn AfterRun>>,
    reports: Option<tokio::sync::mpsc::UnboundedSender<RunReport>>,
}

/// The loop's state.
#[derive(Default)]
struct State {
    set: Arc<JobSet>,
    /// Job texts as last scheduled, to notice changed files.
    texts: HashMap<String, String>,
    /// Broken files as last logged, to log each change once.
    broken: HashMap<PathBuf, Vec<String>>,
    next_due: HashMap<String, DateTime<Utc>>,
    /// Jobs running here, with their run ids.
    running: HashMap<String, String>,
    /// When each following job was last started here: a run that fails
    /// before it is recorded is not started again until what it follows
    /// commits anew.
    followed_at: HashMap<String, DateTime<Utc>>,
    tasks: JoinSet<RunReport>,
    task_jobs: HashMap<TaskId, String>,
}

impl Scheduler {
    /// A scheduler over `catalog`, holding leases as [`holder_name`]`("serve")`.
    pub fn new(config: SchedulerConfig, catalog: Arc<SchedulerCatalog>) -> Scheduler {
        Scheduler { config, catalog, holder: holder_name("serve"), after_run: None, reports: None }
    }

    /// Call `hook` after each run that committed or was held.
    pub fn after_run(mut self, hook: Arc<dyn AfterRun>) -> Scheduler {
        self.after_run = Some(hook);
        self
    }

    /// Send a report of every triggered run to `reports` (tests, status pages).
    pub fn reports(mut self, reports: tokio::sync::mpsc::UnboundedSender<RunReport>) -> Scheduler {
        self.reports = Some(reports);
        self
    }

    /// The name it holds leases under.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Run until `shutdown` resolves; then give runs in progress the grace
    /// period, stop the rest (recorded failed, leases released) and return.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::JobsDir`] when the job directory cannot be read at
    /// the start (later, an unreadable directory keeps the jobs last read).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ScheduleError> {
        let first = JobSet::load(&self.config.jobs_dir)
            .map_err(|source| ScheduleError::JobsDir { path: self.config.jobs_dir.clone(), source })?;
        let mut state = State::default();
        self.take_jobs(&mut state, first);
        tracing::info!(jobs_dir = %self.config.jobs_dir.display(), holder = %self.holder,
            jobs = state.set.jobs.len(), "scheduler started");
        self.catch_up(&mut state).await;
        self.follow_all(&mut state).await;

        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_scan = tokio::time::Instant::now();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = state.tasks.join_next_with_id(), if !state.tasks.is_empty() => {
                    if let Some(report) = self.joined(&mut state, joined).await {
                        let committed = matches!(report.ran, Ran::Committed { .. });
                        let job = report.job.clone();
                        self.report(report);
                        if committed {
                            self.follow(&mut state, &job).await;
                        }
                    }
                }
                _ = tick.tick() => {
                    if last_scan.elapsed() >= self.config.rescan {
                        last_scan = tokio::time::Instant::now();
                        match JobSet::load(&self.config.jobs_dir) {
                            Ok(set) => self.take_jobs(&mut state, set),
                            Err(error) => tracing::warn!(jobs_dir = %self.config.jobs_dir.display(), %error,
                                "cannot read the job directory; keeping the jobs last read"),
                        }
                        self.follow_all(&mut state).await;
                    }
                    self.fire_due(&mut state).await;
                }
            }
        }
        self.drain(state).await;
        Ok(())
    }

    fn report(&self, report: RunReport) {
        match &report.ran {
            Ran::Failed { run_id, error } => {
                tracing::warn!(job = %report.job, trigger = %report.trigger, %run_id, %error, "scheduled run failed");
            }
            Ran::Error { message } => {
                tracing::warn!(job = %report.job, trigger = %report.trigger, %message, "scheduled run not started");
            }
            ran => tracing::info!(job = %report.job, trigger = %report.trigger, ran = ?ran, "scheduled run ended"),
        }
        if let Some(reports) = &self.reports {
            let _ = reports.send(report);
        }
    }

    /// Adopt a freshly read job directory: log what broke, schedule what is
    /// new or changed, forget what went.
    fn take_jobs(&self, state: &mut State, set: JobSet) {
        let now = Utc::now();
        let broken: HashMap<PathBuf, Vec<String>> = set.broken.iter().cloned().collect();
        for (path, problems) in &broken {
            if state.broken.get(path) != Some(problems) {
                tracing::warn!(job_file = %path.display(), problems = %problems.join("; "),
                    "job file has problems; it is not scheduled");
            }
        }
        state.broken = broken;
        let mut texts = HashMap::new();
        let mut next_due = HashMap::new();
        for (_, job) in &set.jobs {
            let name = job.spec.name.clone();
            let unchanged = state.texts.get(&name) == Some(&job.text);
            let due = match state.next_due.get(&name) {
                Some(due) if unchanged => Some(*due),
                _ => job.next_run(now),
            };
            if let Some(due) = due {
                next_due.insert(name.clone(), due);
            }
            if !unchanged && state.texts.contains_key(&name) {
                tracing::info!(job = %name, "job file changed; schedule updated");
            }
            texts.insert(name, job.text.clone());
        }
        state.texts = texts;
        state.next_due = next_due;
        state.set = Arc::new(set);
    }

    /// On start: the occurrences missed while no scheduler ran, by each job's policy.
    async fn catch_up(&self, state: &mut State) {
        let now = Utc::now();
        let jobs: Vec<Job> = state.set.jobs.iter().map(|(_, job)| job.clone()).collect();
        for job in jobs {
            let Some(cron) = &job.schedule else { continue };
            let Ok(latest) = cron.find_previous_occurrence(&now, true) else { continue };
            let name = &job.spec.name;
            let claimed = match self.catalog.store.job_occurrence(name).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(job = %name, %error, "cannot read the job's last occurrence; not catching up");
                    continue;
                }
            };
            let missed = claimed.is_some_and(|claimed| claimed < latest);
            if missed && job.spec.missed == MissedRuns::Skip {
                // Not claimed: another process may be about to run this very occurrence.
                tracing::info!(job = %name, occurrence = %latest, "schedule missed while stopped; skipped (missed = skip)");
                continue;
            }
            if !missed && claimed.is_some() {
                continue;
            }
            // A job never scheduled before has missed nothing: its latest occurrence is claimed as where it starts.
            match self.catalog.store.claim_job_occurrence(name, latest, &self.holder).await {
                Ok(true) if missed => {
                    tracing::info!(job = %name, occurrence = %latest, "running a missed schedule once");
                    self.start(state, job.clone(), Trigger::Missed(latest));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(job = %name, %error, "cannot claim the job's occurrence"),
            }
        }
    }

    /// Start every job whose next occurrence has come, if this process claims it.
    async fn fire_due(&self, state: &mut State) {
        let now = Utc::now();
        let due: Vec<(String, DateTime<Utc>)> =
            state.next_due.iter().filter(|(_, due)| **due <= now).map(|(n, d)| (n.clone(), *d)).collect();
        for (name, occurrence) in due {
            let Some(job) = state.set.get(&name).cloned() else { continue };
            match job.next_run(now) {
                Some(next) => state.next_due.insert(name.clone(), next),
                None => state.next_due.remove(&name),
            };
            match self.catalog.store.claim_job_occurrence(&name, occurrence, &self.holder).await {
                Ok(true) => self.start(state, job, Trigger::Schedule(occurrence)),
                Ok(false) => tracing::debug!(job = %name, %occurrence, "occurrence claimed by another process"),
                Err(error) => tracing::warn!(job = %name, %error, "cannot claim the job's occurrence; not run"),
            }
        }
    }

    /// Start the followers of `upstream` that are due.
    async fn follow(&self, state: &mut State, upstream: &str) {
        let followers: Vec<Job> = state.set.followers(upstream).cloned().collect();
        for job in followers {
            let attempted = state.followed_at.get(&job.spec.name).copied();
            if !state.running.contains_key(&job.spec.name) && self.needed(&state.set, &job, attempted).await {
                state.followed_at.insert(job.spec.name.clone(), Utc::now());
                self.start(state, job, Trigger::After(upstream.to_owned()));
            }
        }
    }

    /// Start every following job that is due, whoever ran what it follows.
    async fn follow_all(&self, state: &mut State) {
        let followers: Vec<Job> =
            state.set.jobs.iter().map(|(_, job)| job).filter(|job| !job.spec.after.is_empty()).cloned().collect();
        for job in followers {
            let attempted = state.followed_at.get(&job.spec.name).copied();
            if !state.running.contains_key(&job.spec.name) && self.needed(&state.set, &job, attempted).await {
                state.followed_at.insert(job.spec.name.clone(), Utc::now());
                let upstream = job.spec.after.join(", ");
                self.start(state, job, Trigger::After(upstream));
            }
        }
    }

    /// Whether every job `job` follows has committed since `job`'s last run
    /// started (or since it was last started here, `attempted`).
    async fn needed(&self, set: &JobSet, job: &Job, attempted: Option<DateTime<Utc>>) -> bool {
        needed(&self.catalog.store, set, job, attempted).await.unwrap_or_else(|error| {
            tracing::warn!(job = %job.spec.name, %error, "cannot read the runs of the jobs it follows");
            false
        })
    }

    fn start(&self, state: &mut State, job: Job, trigger: Trigger) {
        let name = job.spec.name.clone();
        if state.running.contains_key(&name) {
            self.report(RunReport { job: name, trigger, ran: Ran::Busy { holder: self.holder.clone() } });
            return;
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        state.running.insert(name.clone(), run_id.clone());
        let task = RunTask {
            catalog: Arc::clone(&self.catalog),
            set: Arc::clone(&state.set),
            holder: self.holder.clone(),
            lease: self.config.lease,
            after_run: self.after_run.clone(),
        };
        let handle = state.tasks.spawn(task.run(job, trigger, run_id));
        state.task_jobs.insert(handle.id(), name);
    }

    /// A run task ended: forget it; its report, unless it panicked (then its
    /// run is recorded failed and its lease released, as at shutdown).
    async fn joined(
        &self,
        state: &mut State,
        joined: Result<(TaskId, RunReport), tokio::task::JoinError>,
    ) -> Option<RunReport> {
        match joined {
            Ok((id, report)) => {
                state.task_jobs.remove(&id);
                state.running.remove(&report.job);
                Some(report)
            }
            Err(error) => {
                let job = state.task_jobs.remove(&error.id());
                tracing::error!(job = ?job, %error, "a scheduled run's task ended abnormally");
                if let Some(job) = job
                    && let Some(run_id) = state.running.remove(&job)
                    && !error.is_cancelled()
                {
                    let reason = "failed: the scheduled run's task stopped abnormally (a bug: see the server log)";
                    lease::abandon(&self.catalog.store, &job, &self.holder, &run_id, reason).await;
                }
                None
            }
        }
    }

    /// At shutdown: wait up to the grace period for runs in progress; stop
    /// the rest before they commit, record them failed, release their leases.
    async fn drain(&self, mut state: State) {
        if state.tasks.is_empty() {
            tracing::info!("scheduler stopped");
            return;
        }
        tracing::info!(
            runs = state.tasks.len(),
            grace_secs = self.config.grace.as_secs_f64(),
            "shutdown: waiting for scheduled runs in progress"
        );
        let deadline = tokio::time::sleep(self.config.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = state.tasks.join_next_with_id() => match joined {
                    None => break,
                    Some(joined) => {
                        if let Some(report) = self.joined(&mut state, joined).await {
                            self.report(report);
                        }
                    }
                },
                () = &mut deadline => {
                    state.tasks.abort_all();
                    while state.tasks.join_next().await.is_some() {}
                    let reason = format!(
                        "stopped: civlink serve shut down and the run did not finish within the {} s grace period",
                        self.config.grace.as_secs()
                    );
                    for (job, run_id) in std::mem::take(&mut state.running) {
                        lease::abandon(&self.catalog.store, &job, &self.holder, &run_id, &reason).await;
                        tracing::warn!(job = %job, %run_id, "scheduled run stopped at shutdown; dataset untouched");
                    }
                    break;
                }
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// What one run task needs, owned.
struct RunTask {
    catalog: Arc<SchedulerCatalog>,
    set: Arc<JobSet>,
    holder: String,
    lease: Duration,
    after_run: Option<Arc<dyn AfterRun>>,
}

impl RunTask {
    async fn run(self, job: Job, trigger: Trigger, run_id: String) -> RunReport {
        let name = job.spec.name.clone();
        let report = |ran| RunReport { job: name.clone(), trigger: trigger.clone(), ran };
        let lease = match Lease::acquire(&self.catalog.store, &name, &self.holder, run_id, self.lease).await {
            Ok(Acquire::Got(lease)) => lease,
            Ok(Acquire::Busy(current)) => return report(Ran::Busy { holder: current.holder }),
            Err(error) => return report(Ran::Error { message: error.to_string() }),
        };
        // Under the lease, a dependency run is checked again: another process may have run it meanwhile.
        if matches!(trigger, Trigger::After(_))
            && !needed(&self.catalog.store, &self.set, &job, None).await.unwrap_or(false)
        {
            lease.release().await;
            return report(Ran::NotNeeded);
        }
        let run_id = lease.run_id().to_owned();
        let catalog = self.catalog.pipeline();
        let outcome = match lease.run(&job, &catalog, &Silent, RunOptions::default()).await {
            LeasedRun::LeaseLost => return report(Ran::LeaseLost { run_id }),
            LeasedRun::Ran(outcome) => *outcome,
        };
        let ran = match outcome {
            Err(error) => Ran::Failed { run_id, error: error.to_string() },
            Ok(outcome) => {
                if matches!(outcome.run.status, RunStatus::Committed | RunStatus::Held)
                    && let Some(hook) = &self.after_run
                {
                    hook.after_run(&job, &outcome).await;
                }
                match outcome.run.status {
                    RunStatus::Committed => Ran::Committed { run_id, counts: outcome.run.counts },
                    RunStatus::Held => Ran::Held { run_id },
                    RunStatus::Skipped => Ran::Skipped { run_id },
                    status => Ran::Failed { run_id, error: format!("ended as {}", status.code()) },
                }
            }
        };
        report(ran)
    }
}

/// Whether every job `job` follows has committed since `job`'s last run
/// started (or `job` never ran), and since `attempted`.
async fn needed(
    store: &MetadataStore,
    set: &JobSet,
    job: &Job,
    attempted: Option<DateTime<Utc>>,
) -> civlink_catalog::store::Result<bool> {
    if job.spec.after.is_empty() {
        return Ok(false);
    }
    let last_start =
        store.runs(&job.spec.dataset).await?.into_iter().filter(|r| r.job == job.spec.name).map(|r| r.started_at).max();
    let last_start = last_start.max(attempted);
    for upstream in &job.spec.after {
        let Some(upstream_job) = set.get(upstream) else { return Ok(false) };
        let last_commit = store
            .runs(&upstream_job.spec.dataset)
            .await?
            .into_iter()
            .filter(|r| r.job == *upstream && r.status == RunStatus::Committed)
            .filter_map(|r| r.finished_at)
            .max();
        match (last_commit, last_start) {
            (None, _) => return Ok(false),
            (Some(commit), Some(start)) if commit <= start => return Ok(false),
            _ => {}
        }
    }
    Ok(true)
}
