//! What every handler shares: the session factory (policy, tables, limits),
//! per-principal query slots, and the audit log.
//!
//! Audit actions are the REST ones below; each request that authenticated
//! (or tried to) appends one entry: principal (or the Basic user name a
//! failed request claimed), the purpose from `x-civlink-purpose` as given,
//! the action, the request (path and query, in the entry's `sql_text`),
//! the dataset, the rows returned and the outcome. A failure to write the
//! audit log is logged; it does not fail the request (as in Flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use civlink_catalog::policy::{AuditEntry, Principal};
use civlink_catalog::store::MetadataStore;
use civlink_flight::SessionFactory;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth;
use crate::error::{Error, Result};

/// Audit actions of the REST API.
pub mod action {
    /// `GET /api/v1/datasets`.
    pub const LIST: &str = "rest_list";
    /// `GET /api/v1/datasets/{department}/{name}`.
    pub const DESCRIBE: &str = "rest_describe";
    /// `GET /api/v1/datasets/{department}/{name}/rows`.
    pub const ROWS: &str = "rest_rows";
    /// `POST /api/v1/standards`.
    pub const PUBLISH_STANDARD: &str = "rest_publish_standard";
    /// `GET /api/v1/standards/…`.
    pub const READ_STANDARD: &str = "rest_read_standard";
}

/// The principal recorded for requests that never authenticated and claimed no name.
const ANONYMOUS: &str = "(unauthenticated)";

/// Shared by every handler.
#[derive(Debug)]
pub struct AppState {
    factory: SessionFactory,
    /// Per-principal query slots.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl AppState {
    /// State over a session factory.
    pub fn new(factory: SessionFactory) -> AppState {
        AppState { factory, slots: Mutex::new(HashMap::new()) }
    }

    /// The session factory.
    pub fn factory(&self) -> &SessionFactory {
        &self.factory
    }

    /// The metadata store.
    pub fn store(&self) -> &MetadataStore {
        self.factory.store()
    }

    /// The principal behind the request, or the authentication error; a
    /// failure is audited under `action`.
    pub async fn principal(&self, headers: &HeaderMap, action: &str, request: &str) -> Result<Principal> {
        match auth::authenticate(self.store(), headers).await {
            Ok(principal) => Ok(principal),
            Err(e) => {
                let claimed = auth::claimed_user(headers).unwrap_or_else(|| ANONYMOUS.to_owned());
                let mut entry = AuditEntry::new(claimed, action, e.outcome());
                entry.purpose = auth::purpose(headers);
                entry.sql_text = Some(request.to_owned());
                self.audit(&entry).await;
                Err(e)
            }
        }
    }

    /// One of the principal's query slots, or [`Error::TooManyQueries`].
    pub fn slot(&self, principal: &str) -> Result<OwnedSemaphorePermit> {
        let limit = self.factory.limits().max_concurrent_per_principal.max(1);
        let semaphore = match self.slots.lock() {
            Ok(mut slots) => {
                Arc::clone(slots.entry(principal.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit))))
            }
            Err(_) => return Err(Error::Engine { message: "query slot table poisoned".into() }),
        };
        semaphore.try_acquire_owned().map_err(|_| Error::TooManyQueries { limit })
    }

    /// Append an entry; a failure is logged, not returned.
    pub async fn audit(&self, entry: &AuditEntry) {
        if let Err(e) = self.store().append_audit(entry).await {
            tracing::error!(error = %e, principal = %entry.principal, action = %entry.action, "cannot write the audit log");
        }
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
    pub fn start(principal: &Principal, action: &str, headers: &HeaderMap, request: &str) -> Audit {
        let mut entry = AuditEntry::new(principal.name.clone(), action, "ok");
        entry.purpose = auth::purpose(headers);
        entry.sql_text = Some(request.to_owned());
        Audit { entry, started: Instant::now() }
    }

    /// Name the dataset the request is about.
    pub fn dataset(&mut self, dataset: impl Into<String>) {
        self.entry.datasets = vec![dataset.into()];
    }

    /// Write the entry with the request's outcome (and rows, for data).
    pub async fn finish<T>(mut self, state: &AppState, result: &Result<T>, rows: Option<u64>) {
        self.entry.outcome = match result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.outcome(),
        };
        self.entry.rows = rows;
        self.entry.duration_ms = Some(millis(self.started.elapsed()));
        state.audit(&self.entry).await;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
