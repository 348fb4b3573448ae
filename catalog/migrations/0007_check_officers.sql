-- Household economic-status checks (核对): the principals who may run them.
-- A check reads everything the hub holds about an applicant household, so it
-- is a duty given to named officers, on top of their role; every check is
-- audited (`household_check`) with its consent reference and purpose.
--
-- Portable SQL, same conventions as 0001_catalog.sql.

CREATE TABLE check_officers (
    principal  TEXT NOT NULL PRIMARY KEY REFERENCES principals (name),
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL
);
