//! # civlink-api
//!
//! civlink's REST API: departmental systems pull shared data through it,
//! and the standards team publishes standards through it. Every path is
//! under `/api/v1` (but the operations endpoints `/healthz`, `/readyz` and
//! `/metrics`), speaks JSON, and (except `health` and those) takes the same
//! tokens as Flight SQL (`Authorization: Bearer <token>`, or Basic
//! `user:token`). Rows are read through the governed query layer
//! ([`civlink_query`]), the same one Flight SQL uses: the same policy,
//! scoped tables, limits, slots and audit.
//!
//! | path | what |
//! |---|---|
//! | `GET /api/openapi.json` | the OpenAPI 3.1 document (also `docs/openapi.json`), no authentication |
//! | `GET /api/docs` | the API page: the document rendered offline, no authentication |
//! | `GET /api/v1/health` | `{"status":"ok"}`, no authentication |
//! | `GET /api/v1/datasets` | datasets the principal may read, with its access |
//! | `GET /api/v1/datasets/{department}/{name}` | one of them (404 when not readable, as when unknown) |
//! | `GET /api/v1/datasets/{department}/{name}/rows` | rows, scoped, masked, filtered, ordered, paged by cursor, in any offered format |
//! | `GET /api/v1/datasets/{department}/{name}/quarantine` | quarantined rows with their violations, under the masks |
//! | `POST /api/v1/query` | SQL with bound parameters (analysts, admins), in any offered format |
//! | `GET /api/v1/findings` | findings whose responsible division lies in the principal's, paged |
//! | `GET /api/v1/findings/summary` | counts by rule and status, rolled up one level down, with each rule's precision |
//! | `GET /api/v1/findings/{id}` | one finding, its evidence and history |
//! | `POST /api/v1/findings/{id}/outcome` | an officer's outcome (under_review, confirmed, dismissed with a reason) |
//! | `GET /api/v1/jobs`, `GET/POST /api/v1/jobs/{name}/runs` | ingestion jobs, their runs, starting one (admins, the department's service accounts) |
//! | `POST /api/v1/checks` | a household economic-status check (核对): JSON, or the printable page for `Accept: text/html` |
//! | `POST /api/v1/standards` | publish a standard (`standards_admin`, `admin`) |
//! | `GET /api/v1/standards/{id}` | its versions |
//! | `GET /api/v1/standards/{id}/{version}` | its document |
//! | `GET /api/v1/standards` | every standard and its versions (deprecated ones marked) |
//! | `GET /api/v1/standards/{id}/{version}/arrow` | the Arrow schema a version derives |
//! | `GET /api/v1/standards/{id}/diff?from=&to=` | columns added, removed, changed, and compatibility both ways |
//! | `POST /api/v1/standards/{id}/{version}/deprecate` | deprecate a version with a reason (`standards_admin`, `admin`) |
//! | `GET /api/v1/code-tables[/{name}]` | the code tables and their entries |
//! | `POST`, `GET /api/v1/admin/tokens`; `DELETE /api/v1/admin/tokens/{id}` | issue (the secret once), list, revoke tokens (`admin`) |
//! | `POST`, `GET /api/v1/admin/grants?dataset=&principal=`; `DELETE /api/v1/admin/grants/{id}` | make, list, revoke grants (`admin`) |
//! | `GET /api/v1/admin/audit?limit=&principal=&action=&since=` | audit entries, newest first (`admin`) |
//! | `GET /api/v1/admin/audit/verify` | the audit chain's verification report (`admin`) |
//! | `GET /healthz`, `GET /readyz` | alive; metadata store and table storage answer (503 otherwise); no authentication |
//! | `GET /metrics` | Prometheus text format: requests, latency, queries, rows, ingestion, cache, audit failures; no authentication |
//!
//! Errors are RFC 9457 problem documents (`application/problem+json`).
//!
//! | module | what lives there |
//! |---|---|
//! | [`listener`] | accepted connections, admitted by the per-client and total connection counts |
//! | [`server`] | [`ApiConfig`], [`bind`], [`ApiServer`]: the listener, the router, graceful shutdown |
//! | [`datasets`] | the dataset endpoints: listing, description |
//! | [`rows`] | a dataset's rows: typed filters, order, time travel, sealed cursors, every format |
//! | [`quarantine`] | a dataset's quarantined rows and violations (whole-dataset scopes; raw rows only in clear to full readers) |
//! | [`quality`] | quality reports as shown: example messages redacted |
//! | [`query`] | SQL (`POST /api/v1/query`) through the same plan gate as Flight SQL |
//! | [`format`] | result formats by `Accept` (JSON, NDJSON, CSV, Arrow IPC, Parquet), written as batches come |
//! | [`job_control`] | the job directory and the running of jobs, as the binary provides them |
//! | [`jobs`] | ingestion jobs: list, history with counts, cursors and quality, start a run (through the binary's [`jobs::JobControl`]) |
//! | [`checks`] | household checks (核对), by principals with the check duty, under consent |
//! | [`findings`] | verification findings: list, summary, show, outcome (scoped by responsible division) |
//! | [`standards`] | publishing and reading standards |
//! | [`standard_views`] | the standards registry, Arrow schemas, diffs, deprecation, code tables |
//! | [`admin`] | the admin endpoints: tokens, grants, the audit log (admin role only) |
//! | [`ops`] | `healthz`, `readyz`, `metrics`, and the middleware counting requests by route template |
//! | [`auth`] | credentials and purpose from headers |
//! | [`state`] | shared state: the process's session factory, and the handlers' audit entries |
//! | [`extract`] | the query string's pairs and bounded bodies, with their one failure answer each |
//! | [`error`] | the crate's errors and the one mapping to problem documents |
//! | [`openapi`] | the OpenAPI 3.1 document (generated from the handlers), and the offline API page |

pub mod admin;
pub mod auth;
pub mod checks;
pub mod datasets;
pub mod error;
pub mod extract;
pub mod findings;
pub mod format;
pub mod job_control;
pub mod jobs;
pub mod listener;
pub mod openapi;
pub mod ops;
pub mod quality;
pub mod quarantine;
pub mod query;
pub mod rows;
pub mod server;
pub mod standard_views;
pub mod standards;
pub mod state;

pub use error::{Error, Problem, Result, problem};
pub use server::{ApiConfig, ApiServer, DEFAULT_ADDR, bind, bind_with_jobs, openapi, router};
