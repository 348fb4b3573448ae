-- Verification findings (比对, `catalog/src/findings.rs`): one row per
-- (rule, subject, responsible department, responsible division), its history,
-- and the rule runs that produced them. No personal data in clear: subjects
-- are keyed pseudonyms (or household ids) and evidence is as the rule's
-- principal saw it, masked.
CREATE TABLE findings (
    finding_id       TEXT NOT NULL PRIMARY KEY,
    rule_id          TEXT NOT NULL,
    rule_version     BIGINT NOT NULL,
    subject_kind     TEXT NOT NULL,
    subject          TEXT NOT NULL,
    department       TEXT NOT NULL,
    division_code    TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    explanation      TEXT NOT NULL,
    evidence         TEXT NOT NULL, -- JSON object: column -> value
    rests_on         TEXT NOT NULL, -- JSON array of {dataset, key}
    dataset_versions TEXT NOT NULL, -- JSON object: dataset -> Delta version
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    outcome_status   TEXT,          -- the last decision, kept after an automatic resolution
    outcome_reason   TEXT,
    outcome_note     TEXT,
    decided_by       TEXT,
    decided_at       TEXT
);
CREATE INDEX findings_by_rule ON findings (rule_id, status);
CREATE INDEX findings_by_division ON findings (division_code);

CREATE TABLE finding_events (
    finding_id  TEXT NOT NULL REFERENCES findings (finding_id),
    seq         BIGINT NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT,
    note        TEXT,
    run_id      TEXT,
    PRIMARY KEY (finding_id, seq)
);

CREATE TABLE rule_runs (
    run_id       TEXT NOT NULL PRIMARY KEY,
    rule_id      TEXT NOT NULL,
    rule_version BIGINT NOT NULL,
    principal    TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    found        BIGINT NOT NULL,
    new          BIGINT NOT NULL,
    reopened     BIGINT NOT NULL,
    seen_again   BIGINT NOT NULL,
    resolved     BIGINT NOT NULL
);
CREATE INDEX rule_runs_by_rule ON rule_runs (rule_id);
