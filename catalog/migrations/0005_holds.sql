-- Runs a delivery gate held instead of committing: what the gates measured
-- (a JSON report), the dataset version the run would have replaced, and who
-- accepted it anyway, when and why.
CREATE TABLE run_holds (
    run_id       TEXT NOT NULL PRIMARY KEY REFERENCES runs (run_id),
    base_version BIGINT,
    report       TEXT NOT NULL,
    sources      TEXT NOT NULL, -- JSON array of the source URIs, for the lineage an acceptance records
    accepted_by  TEXT,
    accepted_at  TEXT,
    reason       TEXT
);
