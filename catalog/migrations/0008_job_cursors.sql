-- Incremental database sources: per ingestion job, the largest cursor value
-- its last committed run read. Written only after the run commits, so a run
-- that fails or is held leaves the next run reading from the same place.
--
-- Portable SQL, same conventions as 0001_catalog.sql.

CREATE TABLE job_cursors (
    job           TEXT NOT NULL PRIMARY KEY,
    dataset       TEXT NOT NULL REFERENCES datasets (id),
    cursor_column TEXT NOT NULL,
    value         TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
