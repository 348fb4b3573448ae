//! Cursors of incremental database sources (migration `0008_job_cursors`):
//! per job, the largest cursor value its last committed run read, and the
//! source's columns as that run read them.

use chrono::Utc;
use sqlx::Row;

use super::codec::timestamp;
use super::{MetadataStore, Result, db_err};
use crate::model::DatasetId;

/// A job's stored cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    /// What was read: the location and the table or query (a cursor of
    /// another source does not apply).
    pub source: String,
    /// The cursor column.
    pub column: String,
    /// The largest value read, in the source's text form.
    pub value: String,
    /// The committed run that read it.
    pub run_id: String,
}

impl MetadataStore {
    /// The cursor job `job` stored, if any.
    pub async fn job_cursor(&self, job: &str) -> Result<Option<JobCursor>> {
        let row = sqlx::query("SELECT source, cursor_column, value, run_id FROM job_cursors WHERE job = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read job cursor"))?;
        row.map(|row| {
            Ok(JobCursor {
                source: row.try_get(0).map_err(db_err("read job cursor"))?,
                column: row.try_get(1).map_err(db_err("read job cursor"))?,
                value: row.try_get(2).map_err(db_err("read job cursor"))?,
                run_id: row.try_get(3).map_err(db_err("read job cursor"))?,
            })
        })
        .transpose()
    }

    /// Store job `job`'s cursor after its run committed.
    pub async fn set_job_cursor(&self, job: &str, dataset: &DatasetId, cursor: &JobCursor) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_cursors (job, dataset, source, cursor_column, value, run_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job) DO UPDATE SET dataset = excluded.dataset, \
             source = excluded.source, cursor_column = excluded.cursor_column, value = excluded.value, \
             run_id = excluded.run_id, updated_at = excluded.updated_at",
        )
        .bind(job)
        .bind(dataset.to_string())
        .bind(&cursor.source)
        .bind(&cursor.column)
        .bind(&cursor.value)
        .bind(&cursor.run_id)
        .bind(timestamp(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(db_err("store job cursor"))?;
        Ok(())
    }

    /// The source columns job `job`'s last committed run read (`name: type`
    /// each), if it read `source` (another source's columns do not apply).
    pub async fn job_source_columns(&self, job: &str, source: &str) -> Result<Option<Vec<String>>> {
        let row = sqlx::query("SELECT columns, source FROM job_source_columns WHERE job = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read job source columns"))?;
        let Some(row) = row else { return Ok(None) };
        let stored_source: Option<String> = row.try_get(1).map_err(db_err("read job source columns"))?;
        if stored_source.is_some_and(|stored| stored != source) {
            return Ok(None);
        }
        let text: String = row.try_get(0).map_err(db_err("read job source columns"))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| super::Error::Corrupt { what: "job source columns".into(), message: e.to_string() })
    }

    /// Store the source columns of job `job` after its run committed.
    pub async fn set_job_source_columns(
        &self,
        job: &str,
        dataset: &DatasetId,
        source: &str,
        columns: &[String],
        run_id: &str,
    ) -> Result<()> {
        let text = serde_json::to_string(columns)
            .map_err(|e| super::Error::Invalid { what: "job source columns", message: e.to_string() })?;
        sqlx::query(
            "INSERT INTO job_source_columns (job, dataset, columns, run_id, updated_at, source) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job) DO UPDATE SET dataset = excluded.dataset, \
             columns = excluded.columns, run_id = excluded.run_id, updated_at = excluded.updated_at, \
             source = excluded.source",
        )
        .bind(job)
        .bind(dataset.to_string())
        .bind(text)
        .bind(run_id)
        .bind(timestamp(Utc::now()))
        .bind(source)
        .execute(&self.pool)
        .await
        .map_err(db_err("store job source columns"))?;
        Ok(())
    }

    /// Record run `run_id`'s cursor: where it started (`None`: from the beginning) and where it ended.
    pub async fn set_run_cursor(&self, run_id: &str, before: Option<&str>, after: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO run_cursors (run_id, before, after) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id) DO UPDATE SET before = excluded.before, after = excluded.after",
        )
        .bind(run_id)
        .bind(before)
        .bind(after)
        .execute(&self.pool)
        .await
        .map_err(db_err("store run cursor"))?;
        Ok(())
    }

    /// Run `run_id`'s cursor (before, after), if it had one.
    pub async fn run_cursor(&self, run_id: &str) -> Result<Option<(Option<String>, Option<String>)>> {
        let row = sqlx::query("SELECT before, after FROM run_cursors WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read run cursor"))?;
        row.map(|row| {
            Ok((row.try_get(0).map_err(db_err("read run cursor"))?, row.try_get(1).map_err(db_err("read run cursor"))?))
        })
        .transpose()
    }

    /// When job `job` last compared its primary keys with its source's.
    pub async fn job_deletion_check(&self, job: &str) -> Result<Option<chrono::DateTime<Utc>>> {
        let row = sqlx::query("SELECT checked_at FROM job_deletion_checks WHERE job = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read job deletion check"))?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0).map_err(db_err("read job deletion check"))?;
        super::codec::parse_timestamp(|| format!("deletion check of job {job}"), &text).map(Some)
    }

    /// Record that job `job`'s run `run_id`, which committed, compared its keys at `at`.
    pub async fn set_job_deletion_check(
        &self,
        job: &str,
        dataset: &DatasetId,
        at: chrono::DateTime<Utc>,
        run_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_deletion_checks (job, dataset, checked_at, run_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job) DO UPDATE SET dataset = excluded.dataset, checked_at = excluded.checked_at, \
             run_id = excluded.run_id",
        )
        .bind(job)
        .bind(dataset.to_string())
        .bind(timestamp(at))
        .bind(run_id)
        .execute(&self.pool)
        .await
        .map_err(db_err("store job deletion check"))?;
        Ok(())
    }
}
