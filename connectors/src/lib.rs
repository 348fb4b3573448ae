//! # civlink-connectors
//!
//! Reading each department's exports as Arrow record batches.
//!
//! | module | what lives there |
//! |---|---|
//! | [`file`](mod@file) | file formats: CSV (UTF-8, GBK, GB18030), NDJSON / JSON arrays, Parquet, Excel `.xlsx` |
//! | [`source`] | where files come from (paths, globs, `file://`, `s3://`) and the async [`source::Source`] stream; [`source::database`]: PostgreSQL and MySQL/MariaDB tables and queries as batches (type mapping, cursors, credentials, drift); [`source::http`]: JSON APIs page by page (pagination, auth, retries, cursors) |
//! | [`gates`] | delivery gates: when a run is held instead of committed (quarantine share, shrink, rows, required columns) |
//! | [`mapping`] | declarative mapping of a department's columns and values onto a standard's, applied before validation |
//! | [`pipeline`] | one ingestion run: map, validate, quarantine, de-duplicate, write and commit with quality and lineage |
//! | [`job`] | ingestion job files (TOML): dataset, standard, write mode, schedule, governance attributes, source, mapping; [`job::JobSet`]: a job directory checked as a whole (`after` dependencies, cycles, names) |
//! | [`schedule`] | the scheduler of `civlink serve`: cron occurrences claimed in the catalog, one run per job under a renewed lease, missed runs, `after` dependencies, shutdown grace |

pub mod file;
pub mod gates;
pub mod job;
pub mod mapping;
pub mod pipeline;
pub mod schedule;
pub mod source;
