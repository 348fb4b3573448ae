//! Reading the audit log by principal, action and time, newest first: what
//! `GET /api/v1/admin/audit` answers. The chain itself is checked by
//! [`MetadataStore::verify_audit`]; this only reads.

use chrono::{DateTime, Utc};

use super::codec::{count_to_db, timestamp};
use super::policy::{AUDIT_COLUMNS, audit_from_row, corrupt};
use super::{MetadataStore, db_err};
use crate::policy::{AuditAction, AuditRecord, Result};

/// The most entries one read returns.
pub const MAX_AUDIT_PAGE: u64 = 1000;

/// Which audit entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// At most this many (capped at [`MAX_AUDIT_PAGE`]).
    pub limit: u64,
    /// Only this principal's (as recorded, `(unauthenticated)` included).
    pub principal: Option<String>,
    /// Only entries of this action.
    pub action: Option<AuditAction>,
    /// Only entries written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this `seq` (paging on, newest first).
    pub before: Option<i64>,
}

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter { limit: 100, principal: None, action: None, since: None, before: None }
    }
}

impl MetadataStore {
    /// The entries `filter` selects, newest first (by `seq`, an integer).
    /// Timestamps are stored as fixed-width RFC 3339 UTC text with their
    /// punctuation at the same places, so `since` compares as text, and the
    /// same under a PostgreSQL locale collation as in SQLite (a collation
    /// that weighs punctuation less still orders the digits alike).
    pub async fn audit_search(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if filter.principal.is_some() {
            conditions.push(format!("principal = {}", param()));
        }
        if filter.action.is_some() {
            conditions.push(format!("action = {}", param()));
        }
        if filter.since.is_some() {
            conditions.push(format!("at >= {}", param()));
        }
        if filter.before.is_some() {
            conditions.push(format!("seq < {}", param()));
        }
        let limit = param();
        let condition =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log {condition} ORDER BY seq DESC LIMIT {limit}");
        let mut query = sqlx::query(&sql);
        if let Some(principal) = &filter.principal {
            query = query.bind(principal.clone());
        }
        if let Some(action) = filter.action {
            query = query.bind(action.code());
        }
        if let Some(since) = filter.since {
            query = query.bind(timestamp(since));
        }
        if let Some(before) = filter.before {
            query = query.bind(before);
        }
        let query = query.bind(count_to_db("audit limit", filter.limit.min(MAX_AUDIT_PAGE))?);
        let rows = query.fetch_all(&self.pool).await.map_err(db_err("read the audit log"))?;
        rows.iter()
            .map(|row| audit_from_row(row).map(|(record, _)| record).map_err(|(what, message)| corrupt(what, message)))
            .collect()
    }
}
