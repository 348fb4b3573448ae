//! One run of a job under its lease in the catalog: taken before the run
//! starts, renewed while it lives, released when it ends. A run whose lease
//! is lost (it lapsed, and another process took the job over) is stopped
//! before it can commit; dropping a run at any point leaves the dataset as
//! it was, because nothing is visible until the catalog records the commit
//! (see [`crate::pipeline`]).

use std::time::Duration;

use chrono::Utc;
use civlink_catalog::model::{RunCounts, RunStatus};
use civlink_catalog::store::{JobLease, LeaseOutcome, MetadataStore, Result as StoreResult};

use crate::job::Job;
use crate::pipeline::{self, Catalog, Progress, RunOptions, RunOutcome};

/// A job's lease, held by this process for one run.
#[derive(Debug)]
pub struct Lease {
    store: MetadataStore,
    job: String,
    holder: String,
    run_id: String,
    ttl: Duration,
}

/// What asking for a lease came to.
#[derive(Debug)]
pub enum Acquire {
    /// This process holds it now.
    Got(Lease),
    /// Another process runs the job.
    Busy(JobLease),
}

/// How a run under a lease ended.
#[derive(Debug)]
pub enum LeasedRun {
    /// The run ended by itself: committed, held, skipped or failed.
    Ran(Box<pipeline::Result<RunOutcome>>),
    /// The lease was lost mid-run; the run was stopped before committing.
    LeaseLost,
}

impl Lease {
    /// Take `job`'s lease for run `run_id`. A lapsed lease of another holder
    /// is taken over, and the run it covered is recorded as failed: its
    /// process stopped without finishing it.
    pub async fn acquire(
        store: &MetadataStore,
        job: &str,
        holder: &str,
        run_id: String,
        ttl: Duration,
    ) -> StoreResult<Acquire> {
        match store.acquire_job_lease(job, holder, &run_id, ttl, Utc::now()).await? {
            LeaseOutcome::Held(current) => Ok(Acquire::Busy(current)),
            LeaseOutcome::Acquired { replaced } => {
                if let Some(dead) = replaced {
                    let reason = format!(
                        "interrupted: its process ({}) stopped and its lease lapsed at {}; {holder} took the job over",
                        dead.holder,
                        dead.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    );
                    // Only a run still recorded as running is changed: one that committed before its
                    // process died (and never released the lease) keeps its record.
                    match store.finish_run(&dead.run_id, RunStatus::Failed, Some(&reason), &RunCounts::default()).await
                    {
                        Ok(()) => tracing::warn!(job, run_id = %dead.run_id, previous_holder = %dead.holder,
                            "took over a lapsed lease; the run it covered is recorded as failed"),
                        Err(_) => tracing::info!(job, run_id = %dead.run_id, previous_holder = %dead.holder,
                            "took over a lapsed lease; the run it covered had finished"),
                    }
                }
                Ok(Acquire::Got(Lease {
                    store: store.clone(),
                    job: job.to_owned(),
                    holder: holder.to_owned(),
                    run_id,
                    ttl,
                }))
            }
        }
    }

    /// The run this lease covers.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Give the lease back without running.
    pub async fn release(self) {
        release(&self.store, &self.job, &self.holder).await;
    }

    /// Run `job` under this lease (the run gets the lease's run id),
    /// renewing it every third of its lifetime, then release it.
    pub async fn run(
        self,
        job: &Job,
        catalog: &Catalog<'_>,
        progress: &dyn Progress,
        mut options: RunOptions,
    ) -> LeasedRun {
        options.run_id = Some(self.run_id.clone());
        let outcome = {
            let run = pipeline::run_with(job, catalog, progress, &options);
            tokio::pin!(run);
            tokio::select! {
                // A run that ends as its lease is lost counts as ended: it may have committed.
                biased;
                outcome = &mut run => LeasedRun::Ran(Box::new(outcome)),
                () = self.kept() => LeasedRun::LeaseLost,
            }
            // The run, if unfinished, is dropped here: before its commit.
        };
        if matches!(outcome, LeasedRun::LeaseLost) {
            let reason =
                "stopped: the job's lease was lost (it lapsed and another process may have taken the job over)";
            let _ = self.store.finish_run(&self.run_id, RunStatus::Failed, Some(reason), &RunCounts::default()).await;
            tracing::warn!(job = %self.job, run_id = %self.run_id, "lease lost mid-run; the run was stopped before committing");
        }
        self.release().await;
        outcome
    }

    /// Renews the lease until it is lost: taken by another holder, or not
    /// renewed (the catalog unreachable) before it lapsed.
    async fn kept(&self) {
        let every = (self.ttl / 3).max(Duration::from_millis(50));
        let mut valid_until = tokio::time::Instant::now() + self.ttl;
        loop {
            tokio::time::sleep(every).await;
            let asked = tokio::time::Instant::now();
            // A catalog that hangs must not hide that the lease lapsed.
            let renewed =
                tokio::time::timeout(every, self.store.renew_job_lease(&self.job, &self.holder, self.ttl, Utc::now()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(civlink_catalog::store::Error::Query {
                            operation: "renew job lease",
                            message: "no answer in time".into(),
                        })
                    });
            match renewed {
                Ok(true) => valid_until = asked + self.ttl,
                Ok(false) => {
                    tracing::warn!(job = %self.job, holder = %self.holder, "the job's lease is another process's now");
                    return;
                }
                Err(error) => {
                    if tokio::time::Instant::now() >= valid_until {
                        tracing::warn!(job = %self.job, %error, "the job's lease lapsed: it could not be renewed");
                        return;
                    }
                    tracing::warn!(job = %self.job, %error, "renewing the job's lease failed; trying again");
                }
            }
        }
    }
}

/// A run that was stopped from outside (the service shut down after its
/// grace period): recorded as failed with `reason`, and its lease released.
pub async fn abandon(store: &MetadataStore, job: &str, holder: &str, run_id: &str, reason: &str) {
    let _ = store.finish_run(run_id, RunStatus::Failed, Some(reason), &RunCounts::default()).await;
    release(store, job, holder).await;
}

async fn release(store: &MetadataStore, job: &str, holder: &str) {
    if let Err(error) = store.release_job_lease(job, holder).await {
        // It lapses by itself: another process waits at most one lease lifetime.
        tracing::warn!(job, %error, "the job's lease was not released; it lapses by itself");
    }
}

/// This process's name as a lease holder: host, process id and a nonce (a
/// restarted process with a reused pid is another holder).
pub fn holder_name(role: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{role}@{host}:{}:{}", std::process::id(), &nonce[..8])
}
