-- The scheduler of `civlink serve` (connectors::schedule). Several processes
-- may share one PostgreSQL catalog; these two tables keep them from running a
-- job twice.
--
-- Portable SQL, same conventions as 0001_catalog.sql.

-- Per job, who runs it now. A holder renews its lease while the run lives;
-- a lease whose `expires_at` has passed may be taken by another process
-- (its holder died), which then records the dead holder's run as failed.
CREATE TABLE job_leases (
    job         TEXT NOT NULL PRIMARY KEY,
    holder      TEXT NOT NULL, -- host:pid:nonce of the process
    run_id      TEXT NOT NULL, -- the run the lease was taken for
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Per scheduled job, the latest cron occurrence a process has claimed. Only
-- the process that advances it runs that occurrence, so two processes whose
-- clocks tick a moment apart do not run it one after the other; on start,
-- an occurrence later than this one was missed while no scheduler ran.
CREATE TABLE job_occurrences (
    job        TEXT NOT NULL PRIMARY KEY,
    occurrence TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);

-- The source whose columns `job_source_columns` holds (as `job_cursors.source`):
-- a job moved to another table or query compares nothing with the old one's
-- columns. Rows from before this column are taken as the job's current source.
ALTER TABLE job_source_columns ADD COLUMN source TEXT;

-- Per job with `[source.database.deletions]`: when its primary keys were last
-- compared with the source's (by a run that committed), so that the
-- comparison runs every `every_hours`.
CREATE TABLE job_deletion_checks (
    job        TEXT NOT NULL PRIMARY KEY,
    dataset    TEXT NOT NULL REFERENCES datasets (id),
    checked_at TEXT NOT NULL,
    run_id     TEXT NOT NULL
);
