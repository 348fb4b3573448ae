-- civlink access policy: principals, API tokens, grants and the tamper-evident
-- audit log.
--
-- Portable SQL, same conventions as 0001_catalog.sql: TEXT and BIGINT only
-- (booleans are BIGINT 0/1), application-generated ids, timestamps as
-- fixed-width RFC 3339 UTC text, JSON as TEXT.

-- Who can authenticate: a user or a service account, with the role and the
-- division (12-digit statistical division code) that scope what it may read.
CREATE TABLE principals (
    name          TEXT NOT NULL PRIMARY KEY,
    department    TEXT REFERENCES departments (code), -- NULL: belongs to no source department
    role          TEXT NOT NULL
        CHECK (role IN ('analyst', 'department_service', 'standards_admin', 'admin')),
    division_code TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- API tokens. Only the SHA-256 (hex) of the secret is kept: the secret is
-- shown once, when the token is created, and can never be read back.
CREATE TABLE tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals (name),
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT, -- NULL: never expires
    revoked_at TEXT  -- NULL: not revoked
);

CREATE INDEX tokens_principal ON tokens (principal);

-- Grants on conditionally shared datasets (and unmasking on any dataset), to
-- one principal or to every principal of a department.
CREATE TABLE grants (
    id           TEXT NOT NULL PRIMARY KEY,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('principal', 'department')),
    subject      TEXT NOT NULL, -- a principal's name or a department code
    dataset      TEXT NOT NULL REFERENCES datasets (id),
    columns      TEXT,          -- JSON array of column names; NULL: every column
    unmasked     BIGINT NOT NULL DEFAULT 0 CHECK (unmasked IN (0, 1)),
    purpose      TEXT,
    expires_at   TEXT,          -- NULL: never expires
    created_at   TEXT NOT NULL
);

CREATE INDEX grants_dataset ON grants (dataset);

-- The audit log: one row per handshake, query, token operation, … chained by
-- hashes. `hash` = SHA-256(prev_hash || canonical JSON of the entry, seq and
-- `at` included); the first entry's prev_hash is 64 zeros. `seq` is assigned
-- by the writer (1, 2, 3, … without gaps), so a missing number is a deleted
-- entry. No foreign key on `principal`: failed handshakes are logged under
-- the name they claimed.
CREATE TABLE audit_log (
    seq         BIGINT NOT NULL PRIMARY KEY,
    at          TEXT NOT NULL,
    principal   TEXT NOT NULL,
    purpose     TEXT,
    action      TEXT NOT NULL, -- handshake | query | prepare | token_create | token_revoke | …
    sql_text    TEXT,
    datasets    TEXT NOT NULL, -- JSON array of dataset ids
    rows        BIGINT,
    duration_ms BIGINT,
    outcome     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
