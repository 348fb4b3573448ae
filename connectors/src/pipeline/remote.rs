//! What a run of a database or API source keeps besides its rows: the
//! source's identity, where its read starts, and, once the run has
//! committed, its cursor, its source columns and its key comparison.

use civlink_catalog::model::{DatasetId, QualityReport};
use sha2::{Digest, Sha256};

use super::Catalog;
use crate::job::Job;

/// What a database or API job reads, as its stored cursor remembers it: the
/// location (without secrets) and the table or query. A cursor stored for
/// another source does not apply: the job starts afresh.
pub(super) fn source_identity(job: &Job) -> String {
    let source = &job.spec.source;
    let what = match (&source.database, &source.http) {
        (Some(d), _) => format!("{}|{}", d.table.as_deref().unwrap_or(""), d.query.as_deref().unwrap_or("")),
        (None, Some(h)) => {
            format!("{}|{}", h.records.as_deref().unwrap_or(""), h.cursor_param.as_deref().unwrap_or(""))
        }
        (None, None) => String::new(),
    };
    let shown = crate::source::database::shown_location(&source.location);
    hex::encode(Sha256::digest(format!("{shown}|{what}").as_bytes()))
}

/// A database source's run: where it starts, and the largest cursor value read.
pub(super) struct DatabaseRead {
    /// The last committed run's cursor value, for an incremental job.
    pub(super) since: Option<String>,
    /// The source's columns as the last committed run read them.
    pub(super) previous: Option<Vec<String>>,
    /// Filled in while reading.
    pub(super) cell: crate::source::database::CursorCell,
}

/// After the run committed: store the source's columns, the key comparison
/// and the cursor. A failure to store is logged, not the run's failure: the
/// next run then reads from the old cursor (upsert makes that harmless),
/// compares its columns with the old ones, and compares its keys again.
pub(super) async fn record_after_commit(
    job: &Job,
    catalog: &Catalog<'_>,
    dataset: &DatasetId,
    run_id: &str,
    database: Option<&DatabaseRead>,
    cursor_column: Option<&String>,
    quality: &QualityReport,
) {
    // The cursor advances only now that the run has committed. Should storing it fail, the next
    // run reads from the old cursor again: upsert makes that harmless.
    let columns = database.map(|read| read.cell.columns()).unwrap_or_default();
    if !columns.is_empty()
        && let Err(e) =
            catalog.store.set_job_source_columns(&job.spec.name, dataset, &source_identity(job), &columns, run_id).await
    {
        tracing::warn!(run_id = %run_id, job = %job.spec.name, error = %e,
            "the run committed but its source columns were not stored");
    }
    if let Some(check) = &quality.source_deletions {
        match catalog.store.set_job_deletion_check(&job.spec.name, dataset, quality.ingested_at, run_id).await {
            Ok(()) => tracing::info!(run_id = %run_id, job = %job.spec.name, source_keys = check.source_keys,
                marked = check.marked, "primary keys compared with the source"),
            Err(e) => tracing::warn!(run_id = %run_id, job = %job.spec.name, error = %e,
                "the run committed but its key comparison was not recorded; the next run compares again"),
        }
    }
    if let (Some(column), Some(value)) = (cursor_column, database.and_then(|d| d.cell.get())) {
        let cursor = civlink_catalog::store::JobCursor {
            source: source_identity(job),
            column: column.clone(),
            value,
            run_id: run_id.to_owned(),
        };
        let before = database.and_then(|d| d.since.clone());
        if let Err(e) = catalog.store.set_run_cursor(run_id, before.as_deref(), Some(&cursor.value)).await {
            tracing::warn!(run_id = %run_id, error = %e, "the run's cursor was not recorded");
        }
        if let Err(e) = catalog.store.set_job_cursor(&job.spec.name, dataset, &cursor).await {
            tracing::warn!(run_id = %run_id, job = %job.spec.name, error = %e,
                "the run committed but its cursor was not stored; the next run reads from the old one");
        }
    }
}
