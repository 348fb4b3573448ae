-- Incremental database sources: per ingestion job, the largest cursor value
-- its last committed run read. Written only after the run commits, so a run
-- that fails or is held leaves the next run reading from the same place.
--
-- Portable SQL, same conventions as 0001_catalog.sql.

CREATE TABLE job_cursors (
    job           TEXT NOT NULL PRIMARY KEY,
    dataset       TEXT NOT NULL REFERENCES datasets (id),
    source        TEXT NOT NULL, -- what was read (location, table or query): another source starts afresh
    cursor_column TEXT NOT NULL,
    value         TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Per job of a database source, its columns (`name: type` each, a JSON
-- array) as the last committed run read them: the next run compares, and a
-- dropped, renamed or retyped column is caught before a row is read.
CREATE TABLE job_source_columns (
    job        TEXT NOT NULL PRIMARY KEY,
    dataset    TEXT NOT NULL REFERENCES datasets (id),
    columns    TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Per committed run of an incremental job: the cursor it started from and
-- the one it ended at (`civlink jobs history` shows both).
CREATE TABLE run_cursors (
    run_id TEXT NOT NULL PRIMARY KEY REFERENCES runs (run_id),
    before TEXT,
    after  TEXT
);
