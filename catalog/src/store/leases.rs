//! Job leases and claimed schedule occurrences (migration `0009_job_leases`):
//! what keeps several `civlink serve` processes on one catalog from running a
//! job twice.
//!
//! A lease names its holder and the run it was taken for, and expires unless
//! renewed. Taking one is a compare-and-set on the row as it was read, so of
//! two processes racing for the same job exactly one wins, on SQLite and on
//! PostgreSQL alike. Expiry compares timestamps of the processes' own clocks:
//! hosts sharing a catalog are expected to keep time (NTP), and a lease
//! lasts far longer than any skew between them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::codec::{parse_timestamp, timestamp};
use super::{MetadataStore, Result, db_err};

/// Who runs a job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    /// The job's name.
    pub job: String,
    /// The process holding it (`host:pid:nonce`).
    pub holder: String,
    /// The run it was taken for.
    pub run_id: String,
    /// When it was taken.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl JobLease {
    /// Whether it still holds at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// What [`MetadataStore::acquire_job_lease`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease now.
    Acquired {
        /// The lapsed lease of another holder it replaced: that process
        /// stopped without releasing it, and its run never finished.
        replaced: Option<JobLease>,
    },
    /// Another process holds it.
    Held(JobLease),
}

/// `now + ttl`, or the far future when that does not fit.
fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

const LEASE_COLUMNS: &str = "job, holder, run_id, acquired_at, expires_at";

fn lease_from_row(row: &sqlx::any::AnyRow) -> Result<JobLease> {
    let text = |i: usize| -> Result<String> { row.try_get(i).map_err(db_err("read job lease")) };
    let job = text(0)?;
    Ok(JobLease {
        holder: text(1)?,
        run_id: text(2)?,
        acquired_at: parse_timestamp(|| format!("lease of job {job}: acquired_at"), &text(3)?)?,
        expires_at: parse_timestamp(|| format!("lease of job {job}: expires_at"), &text(4)?)?,
        job,
    })
}

impl MetadataStore {
    /// The lease of `job`, live or lapsed, if any.
    pub async fn job_lease(&self, job: &str) -> Result<Option<JobLease>> {
        let row = sqlx::query(&format!("SELECT {LEASE_COLUMNS} FROM job_leases WHERE job = $1"))
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read job lease"))?;
        row.as_ref().map(lease_from_row).transpose()
    }

    /// Every job's lease, live or lapsed, by job name.
    pub async fn job_leases(&self) -> Result<Vec<JobLease>> {
        let rows = sqlx::query(&format!("SELECT {LEASE_COLUMNS} FROM job_leases"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list job leases"))?;
        let mut leases = rows.iter().map(lease_from_row).collect::<Result<Vec<_>>>()?;
        leases.sort_by(|a, b| a.job.cmp(&b.job));
        Ok(leases)
    }

    /// Take the lease of `job` for `run_id` until `now + ttl`: when nobody
    /// holds it, when its holder let it lapse, or when `holder` already holds
    /// it. Otherwise the live lease is returned and nothing changes.
    pub async fn acquire_job_lease(
        &self,
        job: &str,
        holder: &str,
        run_id: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        let expires = expiry(now, ttl);
        // Two attempts: a row that appears (or changes) between the read and
        // the write is read again once; a second race is lost to the winner.
        for _ in 0..2 {
            match self.job_lease(job).await? {
                None => {
                    let inserted = sqlx::query(
                        "INSERT INTO job_leases (job, holder, run_id, acquired_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job) DO NOTHING",
                    )
                    .bind(job)
                    .bind(holder)
                    .bind(run_id)
                    .bind(timestamp(now))
                    .bind(timestamp(expires))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err("take job lease"))?;
                    if inserted.rows_affected() == 1 {
                        return Ok(LeaseOutcome::Acquired { replaced: None });
                    }
                }
                Some(current) if current.holder != holder && current.is_live(now) => {
                    return Ok(LeaseOutcome::Held(current));
                }
                Some(current) => {
                    // Compare-and-set against the row as read.
                    let updated = sqlx::query(
                        "UPDATE job_leases SET holder = $1, run_id = $2, acquired_at = $3, expires_at = $4 \
                         WHERE job = $5 AND holder = $6 AND run_id = $7 AND expires_at = $8",
                    )
                    .bind(holder)
                    .bind(run_id)
                    .bind(timestamp(now))
                    .bind(timestamp(expires))
                    .bind(job)
                    .bind(&current.holder)
                    .bind(&current.run_id)
                    .bind(timestamp(current.expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err("take job lease"))?;
                    if updated.rows_affected() == 1 {
                        let replaced = (current.holder != holder).then_some(current);
                        return Ok(LeaseOutcome::Acquired { replaced });
                    }
                }
            }
        }
        match self.job_lease(job).await? {
            Some(current) => Ok(LeaseOutcome::Held(current)),
            // Released again in the meantime: free, but this caller lost the race; it tries at its next turn.
            None => Ok(LeaseOutcome::Held(JobLease {
                job: job.to_owned(),
                holder: "(released)".into(),
                run_id: String::new(),
                acquired_at: now,
                expires_at: now,
            })),
        }
    }

    /// Extend `holder`'s lease of `job` to `now + ttl`. `false`: the lease
    /// is no longer this holder's (it lapsed and another process took it),
    /// so the caller must stop its run before it commits.
    pub async fn renew_job_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let expires = expiry(now, ttl);
        let updated = sqlx::query("UPDATE job_leases SET expires_at = $1 WHERE job = $2 AND holder = $3")
            .bind(timestamp(expires))
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_err("renew job lease"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Give up `holder`'s lease of `job` (nothing when it is another's).
    pub async fn release_job_lease(&self, job: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_err("release job lease"))?;
        Ok(())
    }

    /// The latest schedule occurrence of `job` a scheduler claimed.
    pub async fn job_occurrence(&self, job: &str) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT occurrence FROM job_occurrences WHERE job = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read job occurrence"))?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0).map_err(db_err("read job occurrence"))?;
        parse_timestamp(|| format!("occurrence of job {job}"), &text).map(Some)
    }

    /// Claim `occurrence` of `job`'s schedule for `holder`: `true` when it is
    /// later than every occurrence claimed before (this caller runs it),
    /// `false` when another process (or an earlier tick) already has.
    pub async fn claim_job_occurrence(&self, job: &str, occurrence: DateTime<Utc>, holder: &str) -> Result<bool> {
        let now = timestamp(Utc::now());
        let at = timestamp(occurrence);
        let inserted = sqlx::query(
            "INSERT INTO job_occurrences (job, occurrence, claimed_by, claimed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(&at)
        .bind(holder)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(db_err("claim job occurrence"))?;
        if inserted.rows_affected() == 1 {
            return Ok(true);
        }
        // Fixed-width timestamps compare as text in the order of the instants.
        let updated = sqlx::query(
            "UPDATE job_occurrences SET occurrence = $1, claimed_by = $2, claimed_at = $3 \
             WHERE job = $4 AND occurrence < $5",
        )
        .bind(&at)
        .bind(holder)
        .bind(&now)
        .bind(job)
        .bind(&at)
        .execute(&self.pool)
        .await
        .map_err(db_err("claim job occurrence"))?;
        Ok(updated.rows_affected() == 1)
    }
}
