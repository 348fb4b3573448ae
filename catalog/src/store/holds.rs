//! Runs a delivery gate held (see `civlink_connectors::gates`): recorded
//! with what the gates measured, and accepted later by someone allowed to.
//!
//! A held run wrote its data as a Delta version past the dataset's current
//! one, which readers never see (they follow the catalog's pointer), and its
//! quarantine as the quarantine's current version, for inspection.
//! Accepting it moves the dataset's pointer to its data, as a commit would
//! have, provided the dataset is still at the version the run was held
//! against: a later run would otherwise be replaced by older data.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::codec::parse_timestamp;
use super::codec::timestamp;
use super::{
    DbCounts, Error, MetadataStore, Result, db_err, explain_not_running, get, publish_version, quality_json,
    store_quality,
};
use crate::model::{QualityReport, RunRecord, RunStatus};

/// What is recorded about a held run.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// The run.
    pub run_id: String,
    /// The dataset's current version when the run was held (`None`: it had none).
    pub base_version: Option<i64>,
    /// The gates' report, as JSON (the connectors' `GateReport`).
    pub report: String,
    /// The run's source URIs.
    pub sources: Vec<String>,
    /// Who accepted it, when, and why; `None` while it waits.
    pub accepted: Option<Accepted>,
}

/// An acceptance of a held run.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The principal who accepted it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The reason given.
    pub reason: String,
}

impl MetadataStore {
    /// Finish a running run as held: its counts and versions recorded, the
    /// quarantine's pointer moved to its quarantine (for inspection), the
    /// dataset's data pointer left where it is, and the hold with the gates'
    /// `report` and the `base_version` the run would have replaced.
    pub async fn hold_run(
        &self,
        run: &RunRecord,
        quality: Option<&QualityReport>,
        base_version: Option<i64>,
        report: &str,
        sources: &[String],
    ) -> Result<()> {
        let sources = serde_json::to_string(sources)
            .map_err(|e| Error::Invalid { what: "hold sources", message: e.to_string() })?;
        let counts = DbCounts::of(&run.counts)?;
        let finished = timestamp(run.finished_at.unwrap_or_else(Utc::now));
        let mut tx = self.pool.begin().await.map_err(db_err("begin holding run"))?;
        let updated = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2, rows_read = $3, rows_written = $4, rows_quarantined = $5, \
             rows_duplicate = $6, data_version = $7, quarantine_version = $8 WHERE run_id = $9 AND status = $10",
        )
        .bind(RunStatus::Held.code())
        .bind(&finished)
        .bind(counts.read)
        .bind(counts.written)
        .bind(counts.quarantined)
        .bind(counts.duplicate)
        .bind(run.data_version)
        .bind(run.quarantine_version)
        .bind(&run.run_id)
        .bind(RunStatus::Running.code())
        .execute(&mut *tx)
        .await
        .map_err(db_err("hold run"))?;
        if updated.rows_affected() == 0 {
            return Err(explain_not_running(&mut tx, &run.run_id, Some(&run.dataset)).await);
        }
        if let Some(version) = run.quarantine_version {
            sqlx::query("UPDATE datasets SET quarantine_version = $1 WHERE id = $2")
                .bind(version)
                .bind(run.dataset.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err("hold run: move the quarantine's version"))?;
        }
        sqlx::query("INSERT INTO run_holds (run_id, base_version, report, sources) VALUES ($1, $2, $3, $4)")
            .bind(&run.run_id)
            .bind(base_version)
            .bind(report)
            .bind(sources)
            .execute(&mut *tx)
            .await
            .map_err(db_err("hold run: record the hold"))?;
        if let Some(quality) = quality {
            store_quality(&mut tx, &run.run_id, &quality_json(quality)?).await?;
        }
        tx.commit().await.map_err(db_err("hold run: commit the transaction"))
    }

    /// The hold of a run, if it was held.
    pub async fn hold(&self, run_id: &str) -> Result<Option<Hold>> {
        let row = sqlx::query(
            "SELECT run_id, base_version, report, sources, accepted_by, accepted_at, reason FROM run_holds WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("read a hold"))?;
        let Some(row) = row else { return Ok(None) };
        let what = || format!("run_holds of run {run_id}");
        let accepted_by: Option<String> = get(&row, "accepted_by", what)?;
        let accepted = match accepted_by {
            Some(by) => {
                let at: String = get(&row, "accepted_at", what)?;
                Some(Accepted {
                    by,
                    at: parse_timestamp(what, &at)?,
                    reason: row.try_get::<Option<String>, _>("reason").ok().flatten().unwrap_or_default(),
                })
            }
            None => None,
        };
        let sources: String = get(&row, "sources", what)?;
        Ok(Some(Hold {
            run_id: get(&row, "run_id", what)?,
            base_version: get(&row, "base_version", what)?,
            report: get(&row, "report", what)?,
            sources: serde_json::from_str(&sources)
                .map_err(|e| Error::Corrupt { what: what(), message: e.to_string() })?,
            accepted,
        }))
    }

    /// Commit a held run after all: the dataset's pointer moves to its data,
    /// with the version record and lineage a commit makes, and the hold
    /// records `by`, now and `reason`. Refused when the run is not held, was
    /// already accepted, or the dataset has moved on since
    /// ([`Error::HoldSuperseded`]).
    pub async fn accept_held_run(&self, run_id: &str, by: &str, reason: &str) -> Result<RunRecord> {
        let mut run = self.run(run_id).await?.ok_or_else(|| Error::UnknownRun { run_id: run_id.to_owned() })?;
        let not_held = |run: &RunRecord, accepted: bool| Error::RunNotHeld {
            run_id: run_id.to_owned(),
            status: run.status,
            accepted,
        };
        let hold = self.hold(run_id).await?.ok_or_else(|| not_held(&run, false))?;
        if run.status != RunStatus::Held || hold.accepted.is_some() {
            return Err(not_held(&run, hold.accepted.is_some()));
        }
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(db_err("begin accepting run"))?;
        let current: Option<i64> = sqlx::query("SELECT current_version FROM datasets WHERE id = $1")
            .bind(run.dataset.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err("accept run: read the dataset's version"))?
            .try_get("current_version")
            .map_err(db_err("accept run: read the dataset's version"))?;
        if current != hold.base_version || run.data_version.is_none() {
            return Err(Error::HoldSuperseded { run_id: run_id.to_owned(), held_against: hold.base_version, current });
        }
        let updated = sqlx::query("UPDATE runs SET status = $1 WHERE run_id = $2 AND status = $3")
            .bind(RunStatus::Committed.code())
            .bind(run_id)
            .bind(RunStatus::Held.code())
            .execute(&mut *tx)
            .await
            .map_err(db_err("accept run"))?;
        if updated.rows_affected() == 0 {
            return Err(not_held(&run, true));
        }
        let rows_written = DbCounts::of(&run.counts)?.written;
        publish_version(&mut tx, &run, rows_written, &timestamp(now), &hold.sources).await?;
        sqlx::query("UPDATE run_holds SET accepted_by = $1, accepted_at = $2, reason = $3 WHERE run_id = $4")
            .bind(by)
            .bind(timestamp(now))
            .bind(reason)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err("accept run: record the acceptance"))?;
        tx.commit().await.map_err(db_err("accept run: commit the transaction"))?;
        run.status = RunStatus::Committed;
        Ok(run)
    }
}
