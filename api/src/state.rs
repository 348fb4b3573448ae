//! What every handler shares: the process's [`SessionFactory`] (policy,
//! tables, limits, slots, the auditor).
//!
//! Audit actions are the REST ones of [`AuditAction`]; each request that
//! authenticated (or tried to) is audited: principal (failed ones as
//! `(unauthenticated)`, aggregated by the query layer), the purpose from
//! `x-civlink-purpose` as given, the action, the request (path and query,
//! in the entry's `sql_text`), the dataset, the rows returned and the
//! outcome. Reads of data are audited by the query layer's run, fail
//! closed: a request whose entry cannot be written is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, Principal};
use civlink_catalog::store::MetadataStore;
use civlink_query::SessionFactory;
use civlink_verify::household::CheckSources;

use crate::auth;
use crate::error::{Error, Result};

/// Shared by every handler.
#[derive(Debug)]
pub struct AppState {
    factory: Arc<SessionFactory>,
    check_sources: Option<Arc<CheckSources>>,
    jobs: Option<Arc<dyn crate::job_control::JobControl>>,
}

impl AppState {
    /// State over the process's session factory, with the shipped household-check sources.
    pub fn new(factory: Arc<SessionFactory>) -> AppState {
        let check_sources =
            CheckSources::parse(civlink_verify::household::sources::SHIPPED, "shipped").ok().map(Arc::new);
        AppState { factory, check_sources, jobs: None }
    }

    /// Use these household-check sources (loaded and checked against the catalog).
    pub fn with_check_sources(mut self, sources: CheckSources) -> AppState {
        self.check_sources = Some(Arc::new(sources));
        self
    }

    /// Operate the jobs of this job directory ([`crate::jobs`]).
    pub fn with_jobs(mut self, jobs: Arc<dyn crate::job_control::JobControl>) -> AppState {
        self.jobs = Some(jobs);
        self
    }

    /// The job directory, when the server runs one.
    pub fn jobs(&self) -> Option<Arc<dyn crate::job_control::JobControl>> {
        self.jobs.clone()
    }

    /// The household-check sources.
    pub fn check_sources(&self) -> Option<Arc<CheckSources>> {
        self.check_sources.clone()
    }

    /// The session factory.
    pub fn factory(&self) -> &Arc<SessionFactory> {
        &self.factory
    }

    /// The metadata store.
    pub fn store(&self) -> &MetadataStore {
        self.factory.store()
    }

    /// The principal behind the request, or the authentication error; a
    /// failure is audited under `action`.
    pub async fn principal(&self, headers: &HeaderMap, action: AuditAction) -> Result<Principal> {
        self.factory.principal(auth::authorization(headers), auth::purpose(headers), action).await.map_err(Error::from)
    }

    /// Append an entry (fail closed: an unwritable log refuses the request).
    pub async fn audit(&self, entry: AuditEntry) -> Result<()> {
        self.factory.auditor().append(entry).await.map(|_| ()).map_err(Error::from)
    }
}

/// An audit entry being filled in by a handler; [`Audit::finish`] writes it.
#[derive(Debug)]
pub struct Audit {
    entry: AuditEntry,
    started: Instant,
}

impl Audit {
    /// An entry for an authenticated principal's request.
    pub fn start(principal: &Principal, action: AuditAction, headers: &HeaderMap, request: &str) -> Audit {
        let mut entry = AuditEntry::new(principal.name.clone(), action, AuditOutcome::OK);
        entry.purpose = auth::purpose(headers);
        entry.sql_text = Some(request.to_owned());
        Audit { entry, started: Instant::now() }
    }

    /// Name the dataset the request is about.
    pub fn dataset(&mut self, dataset: impl Into<String>) {
        self.entry.datasets = vec![dataset.into()];
    }

    /// Write a `started` entry now, before the request changes anything
    /// that cannot be undone (a run started, a version deprecated): when the
    /// log cannot be written, the change is never made ([`Error::AuditUnavailable`]).
    pub async fn started(&self, state: &AppState) -> Result<()> {
        let mut entry = self.entry.clone();
        entry.outcome = AuditOutcome::STARTED;
        state.audit(entry).await.map_err(|_| Error::AuditUnavailable)
    }

    /// Write the entry with the request's outcome (and rows, for data). A
    /// successful request whose entry cannot be written becomes
    /// [`Error::AuditUnavailable`]: nothing is answered unaudited.
    pub async fn finish<T>(mut self, state: &AppState, result: Result<T>, rows: Option<u64>) -> Result<T> {
        self.entry.outcome = match &result {
            Ok(_) => AuditOutcome::OK,
            Err(e) => e.outcome(),
        };
        self.entry.rows = rows;
        self.entry.duration_ms = Some(millis(self.started.elapsed()));
        let written = state.audit(self.entry).await;
        let value = result?;
        written?;
        Ok(value)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
