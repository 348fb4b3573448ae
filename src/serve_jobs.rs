//! The jobs `civlink serve` operates over REST ([`civlink_api::jobs`]): the
//! scheduler's job directory, read afresh on each request, and runs started
//! by hand under the job's lease, exactly as `civlink jobs run` starts them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use civlink_api::jobs::{JobControl, JobError, JobInfo};
use civlink_connectors::job::JobSet;
use civlink_connectors::schedule::{Acquire, Lease, holder_name};
use futures::future::BoxFuture;

use crate::ingest_cmd::OpenCatalog;

/// How long a hand-started run's lease lasts unless renewed (it is, while the run lives).
const LEASE: Duration = Duration::from_secs(60);

/// The job directory of `civlink serve`, over its catalog.
pub struct ServeJobs {
    /// The job files.
    pub dir: PathBuf,
    /// The catalog runs commit to.
    pub catalog: Arc<OpenCatalog>,
}

impl std::fmt::Debug for ServeJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeJobs").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn unavailable(what: impl std::fmt::Display) -> JobError {
    JobError::Unavailable { message: what.to_string() }
}

impl ServeJobs {
    fn load(&self) -> Result<JobSet, JobError> {
        JobSet::load(&self.dir).map_err(|e| unavailable(format!("reading {}: {e}", self.dir.display())))
    }
}

impl JobControl for ServeJobs {
    fn jobs(&self) -> BoxFuture<'_, Result<Vec<JobInfo>, JobError>> {
        Box::pin(async move {
            let set = self.load()?;
            let now = Utc::now();
            let leases = self.catalog.store.job_leases().await.map_err(unavailable)?;
            Ok(set
                .jobs
                .iter()
                .map(|(_, job)| JobInfo {
                    name: job.spec.name.clone(),
                    dataset: job.spec.dataset.clone(),
                    schedule: job.spec.schedule.clone(),
                    after: job.spec.after.clone(),
                    next_run: job.next_run(now),
                    lease_holder: leases
                        .iter()
                        .find(|l| l.job == job.spec.name && l.is_live(now))
                        .map(|l| l.holder.clone()),
                })
                .collect())
        })
    }

    fn start(&self, name: String) -> BoxFuture<'_, Result<String, JobError>> {
        Box::pin(async move {
            let set = self.load()?;
            let Some((path, job)) = set.jobs.iter().find(|(_, job)| job.spec.name == name).cloned() else {
                return Err(JobError::UnknownJob { name });
            };
            let holder = holder_name("rest");
            let run_id = uuid::Uuid::new_v4().to_string();
            let lease = match Lease::acquire(&self.catalog.store, &name, &holder, run_id.clone(), LEASE)
                .await
                .map_err(unavailable)?
            {
                Acquire::Got(lease) => lease,
                Acquire::Busy(current) => return Err(JobError::Busy { name, run_id: current.run_id }),
            };
            let catalog = Arc::clone(&self.catalog);
            tokio::spawn(async move {
                match crate::ingest_cmd::run_job_leased(&job, &path, &catalog, lease).await {
                    Ok(outcome) => {
                        tracing::info!(job = %name, run = %outcome.run.run_id, status = outcome.run.status.code(), "run started over REST ended")
                    }
                    Err(e) => {
                        tracing::warn!(job = %name, error = %civlink_query::redact::quoted_values(&e.to_string()), "run started over REST failed")
                    }
                }
            });
            Ok(run_id)
        })
    }
}
