//! The ingestion jobs: what runs, its history, and starting a run by hand.
//!
//! * `GET /api/v1/jobs`: the jobs of the server's job directory that the
//!   principal may see, each with its schedule, next run, who holds its
//!   lease, and its last run;
//! * `GET /api/v1/jobs/{name}/runs`: its runs, newest first, with their
//!   counts (`read = written + quarantined + duplicate`), cursor, error and
//!   quality report;
//! * `POST /api/v1/jobs/{name}/runs`: start a run now (202 with its run id).
//!   It takes the job's lease as the scheduler does, so a job never runs
//!   twice at once (409 while it runs).
//!
//! Admins see and start every job; a department's service account those
//! loading its department's datasets; anyone else gets 403. The job
//! directory and the running of jobs are the binary's ([`JobControl`]): this
//! crate sits on the query layer and knows no connector.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use civlink_catalog::policy::{AuditAction, Principal, Role};
use serde_json::{Value, json};

pub use crate::job_control::{JobControl, JobError, JobInfo};

use crate::datasets::request_text;
use crate::error::{Error, Result};
use crate::state::{AppState, Audit};

/// Runs listed per job, at most.
pub const MAX_RUNS: usize = 200;

impl From<JobError> for Error {
    fn from(error: JobError) -> Error {
        match error {
            JobError::UnknownJob { .. } => Error::NotFound { what: error.to_string() },
            JobError::Busy { .. } => Error::Conflict { message: error.to_string() },
            JobError::Unavailable { message } => Error::Store { message },
        }
    }
}

/// Whether `principal` may see and start `job`.
fn may_operate(principal: &Principal, job: &JobInfo) -> bool {
    match principal.role {
        Role::Admin => true,
        Role::DepartmentService => principal.department == Some(job.dataset.department),
        Role::Analyst | Role::StandardsAdmin => false,
    }
}

fn refuse(principal: &Principal) -> Option<Error> {
    (!matches!(principal.role, Role::Admin | Role::DepartmentService))
        .then(|| Error::Forbidden { what: "jobs are operated by admins and by departments' service accounts".into() })
}

fn control(state: &AppState) -> Result<Arc<dyn JobControl>> {
    state.jobs().ok_or_else(|| Error::Conflict {
        message: "this server runs no job directory (serve.scheduler.jobs_dir)".into(),
    })
}

/// The job `name` if `principal` may operate it (404 otherwise, as for an unknown one).
async fn job(state: &AppState, principal: &Principal, name: &str) -> Result<JobInfo> {
    let jobs = control(state)?.jobs().await?;
    jobs.into_iter()
        .find(|j| j.name == name && may_operate(principal, j))
        .ok_or_else(|| Error::NotFound { what: format!("no job {name}, or not one you may operate") })
}

/// A run as listed.
fn run_view(run: &civlink_catalog::model::RunRecord, cursor: Option<(Option<String>, Option<String>)>) -> Value {
    let c = run.counts;
    json!({
        "run_id": run.run_id,
        "status": run.status.code(),
        "mode": run.mode.code(),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "counts": { "read": c.read, "written": c.written, "quarantined": c.quarantined, "duplicate": c.duplicate },
        "data_version": run.data_version,
        "cursor": cursor.map(|(before, after)| json!({ "before": before, "after": after })),
        // Source errors can quote values: quoted spans and long digit runs are masked.
        "error": run.error.as_deref().map(civlink_query::redact::quoted_values),
    })
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, description = "The jobs the principal may operate, with their last run", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/jobs`.
pub async fn list(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestJobs).await?;
    let audit = Audit::start(&principal, AuditAction::RestJobs, &headers, &request_text("GET", &uri));
    let result = async {
        if let Some(e) = refuse(&principal) {
            return Err(e);
        }
        let mut out = Vec::new();
        for job in control(&state)?.jobs().await?.into_iter().filter(|j| may_operate(&principal, j)) {
            let runs = state.store().runs(&job.dataset).await?;
            let last = runs.iter().filter(|r| r.job == job.name).max_by_key(|r| r.started_at);
            out.push(json!({
                "name": job.name,
                "dataset": job.dataset.to_string(),
                "schedule": job.schedule,
                "after": job.after,
                "next_run": job.next_run,
                "lease_holder": job.lease_holder,
                "last_run": last.map(|r| run_view(r, None)),
            }));
        }
        Ok(json!({ "jobs": out }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{name}/runs", tag = "jobs",
    params(("name" = String, Path, description = "Job name")),
    responses((status = 200, description = "Its runs, newest first, with counts, cursor and quality report", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/jobs/{name}/runs`.
pub async fn history(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let principal = state.principal(&headers, AuditAction::RestJobs).await?;
    let audit = Audit::start(&principal, AuditAction::RestJobs, &headers, &request_text("GET", &uri));
    let result = async {
        if let Some(e) = refuse(&principal) {
            return Err(e);
        }
        let Path(name) = path.map_err(|_| Error::NotFound { what: "no such job".into() })?;
        let job = job(&state, &principal, &name).await?;
        let mut runs: Vec<_> =
            state.store().runs(&job.dataset).await?.into_iter().filter(|r| r.job == job.name).collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        let mut out = Vec::new();
        for run in runs.iter().take(MAX_RUNS) {
            let mut view = run_view(run, state.store().run_cursor(&run.run_id).await?);
            view["quality"] = match state.store().quality(&run.run_id).await? {
                Some(report) => crate::quality::view(&report),
                None => Value::Null,
            };
            out.push(view);
        }
        Ok(json!({ "job": job.name, "dataset": job.dataset.to_string(), "runs": out }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(post, path = "/api/v1/jobs/{name}/runs", tag = "jobs",
    params(("name" = String, Path, description = "Job name")),
    responses((status = 202, description = "The run started; its progress is in the job's runs", body = crate::openapi::AnyObject)))]
/// `POST /api/v1/jobs/{name}/runs`.
pub async fn trigger(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let principal = state.principal(&headers, AuditAction::JobTrigger).await?;
    let mut audit = Audit::start(&principal, AuditAction::JobTrigger, &headers, &request_text("POST", &uri));
    let result = async {
        if let Some(e) = refuse(&principal) {
            return Err(e);
        }
        let Path(name) = path.map_err(|_| Error::NotFound { what: "no such job".into() })?;
        let job = job(&state, &principal, &name).await?;
        audit.dataset(job.dataset.to_string());
        let control = control(&state)?;
        audit.started(&state).await?;
        let run_id = control.start(job.name.clone()).await?;
        Ok(json!({ "job": job.name, "run_id": run_id, "runs": format!("/api/v1/jobs/{}/runs", job.name) }))
    }
    .await;
    Ok((StatusCode::ACCEPTED, Json(audit.finish(&state, result, None).await?)))
}
