//! What the binary provides for [`crate::jobs`]: the job directory and the
//! running of jobs (this crate sits on the query layer and knows no connector).

use chrono::{DateTime, Utc};
use civlink_catalog::model::DatasetId;
use futures::future::BoxFuture;

/// One job as the job directory declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Its name.
    pub name: String,
    /// The dataset it loads.
    pub dataset: DatasetId,
    /// Its cron schedule, if any.
    pub schedule: Option<String>,
    /// The jobs it runs after.
    pub after: Vec<String>,
    /// When the schedule next fires.
    pub next_run: Option<DateTime<Utc>>,
    /// The process holding its lease now.
    pub lease_holder: Option<String>,
}

/// Why a job cannot be listed or started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// No job of that name in the directory.
    #[error("no job {name}")]
    UnknownJob {
        /// The name asked for.
        name: String,
    },
    /// It is running now.
    #[error("job {name} is running now (run {run_id}); try again when it ends")]
    Busy {
        /// The job.
        name: String,
        /// The run in progress.
        run_id: String,
    },
    /// The job directory or the catalog failed.
    #[error("{message}")]
    Unavailable {
        /// What failed.
        message: String,
    },
}

/// The job directory and the running of jobs, as the binary provides them.
pub trait JobControl: Send + Sync + std::fmt::Debug {
    /// Every job of the directory.
    fn jobs(&self) -> BoxFuture<'_, std::result::Result<Vec<JobInfo>, JobError>>;
    /// Start a run of `name` now (its lease taken); the run id.
    fn start(&self, name: String) -> BoxFuture<'_, std::result::Result<String, JobError>>;
}
