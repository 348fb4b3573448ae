//! The access policy's tables (`migrations/0002_policy.sql`): principals,
//! tokens, grants and the audit log. The rules themselves live in
//! [`crate::policy`]; this is storage, and the chained, serialised audit
//! append.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use civlink_standards::division::DivisionCode;
use civlink_standards::standard::Standard;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::announce_change;
use super::codec::{count_from_db, count_to_db, parse_timestamp, timestamp};
use super::{Backend, Error as StoreError, MetadataStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::model::{DatasetId, DatasetRecord, Department};
use crate::policy::{
    Access, AuditEntry, AuditHead, AuditProblem, AuditProblemKind, AuditRecord, AuditReport, ChainContent, ChainRow,
    Error, GENESIS_HASH, Grant, GrantSubject, IssuedToken, Principal, Result, Role, TokenInfo, chain_hash, check_chain,
    check_grant_columns, check_name, constant_time_eq, decide, new_token, token_hash, token_id,
};

/// The columns of `grants`, in the order [`grant_from_row`] reads them.
pub(super) const GRANT_COLUMNS: &str =
    "id, subject_kind, subject, dataset, columns, unmasked, purpose, expires_at, created_at, purpose_required";

/// The columns of `audit_log` (with `seq` also as text, so that a forged
/// non-integer `seq` in SQLite is reported rather than failing the read).
pub(super) const AUDIT_COLUMNS: &str = "seq, CAST(seq AS TEXT) AS seq_text, at, principal, purpose, action, sql_text, datasets, \
                             rows, duration_ms, outcome, prev_hash, hash";

/// A stored value that does not parse.
pub(super) fn corrupt(what: String, message: impl Into<String>) -> Error {
    Error::Store(StoreError::Corrupt { what, message: message.into() })
}

impl MetadataStore {
    /// Create a principal, or update the department, role and division of
    /// an existing one (its tokens stay valid).
    pub async fn create_principal(&self, p: &Principal) -> Result<()> {
        check_name("principal", &p.name)?;
        let mut tx = self.pool.begin().await.map_err(db_err("create principal"))?;
        sqlx::query(
            "INSERT INTO principals (name, department, role, division_code, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET department = excluded.department, role = excluded.role, \
             division_code = excluded.division_code",
        )
        .bind(&p.name)
        .bind(p.department.map(Department::code))
        .bind(p.role.code())
        .bind(p.division.as_str())
        .bind(timestamp(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(db_err("create principal"))?;
        announce_change(&mut tx).await?;
        tx.commit().await.map_err(db_err("create principal"))?;
        Ok(())
    }

    /// A principal by name.
    pub async fn principal(&self, name: &str) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT name, department, role, division_code FROM principals WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read principal"))?;
        row.as_ref().map(principal_from_row).transpose()
    }

    /// Every principal, by name.
    pub async fn principals(&self) -> Result<Vec<Principal>> {
        let rows = sqlx::query("SELECT name, department, role, division_code FROM principals")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list principals"))?;
        let mut principals = rows.iter().map(principal_from_row).collect::<Result<Vec<_>>>()?;
        principals.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(principals)
    }

    /// Issue a token for `principal`. The returned secret is the only copy:
    /// the store keeps its SHA-256.
    pub async fn create_token(&self, principal: &str, expires_at: Option<DateTime<Utc>>) -> Result<IssuedToken> {
        let now = Utc::now();
        if let Some(expires) = expires_at
            && expires <= now
        {
            return Err(Error::Invalid {
                what: "token expiry",
                message: format!("{} is not in the future", timestamp(expires)),
            });
        }
        if self.principal(principal).await?.is_none() {
            return Err(Error::UnknownPrincipal { name: principal.to_owned() });
        }
        let (id, secret) = new_token();
        let mut tx = self.pool.begin().await.map_err(db_err("create token"))?;
        let inserted =
            sqlx::query("INSERT INTO tokens (id, principal, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(principal)
                .bind(token_hash(&secret))
                .bind(timestamp(now))
                .bind(expires_at.map(timestamp))
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {
                announce_change(&mut tx).await?;
                tx.commit().await.map_err(db_err("create token"))?;
                Ok(IssuedToken { id, secret, expires_at })
            }
            Err(e) if is_foreign_key_violation(&e) => Err(Error::UnknownPrincipal { name: principal.to_owned() }),
            Err(e) => Err(db_err("create token")(e).into()),
        }
    }

    /// The principal a token belongs to.
    ///
    /// A malformed token, or one whose secret does not match, is
    /// [`Error::BadToken`]; a well-formed one with an unknown id is
    /// [`Error::UnknownToken`]. Revocation and expiry are only reported once
    /// the secret matched, so a guessed id learns nothing about the token.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        let id = token_id(secret).ok_or(Error::BadToken)?;
        let row = sqlx::query("SELECT principal, hash, expires_at, revoked_at FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read token"))?
            .ok_or_else(|| Error::UnknownToken { id: id.to_owned() })?;
        let what = |column: &str| format!("tokens.{column} of token {id}");
        let hash: String = get(&row, "hash", || what("hash"))?;
        if !constant_time_eq(token_hash(secret).as_bytes(), hash.as_bytes()) {
            return Err(Error::BadToken);
        }
        let revoked_at: Option<String> = get(&row, "revoked_at", || what("revoked_at"))?;
        if revoked_at.is_some() {
            return Err(Error::TokenRevoked { id: id.to_owned() });
        }
        let expires_at: Option<String> = get(&row, "expires_at", || what("expires_at"))?;
        if let Some(expires) = expires_at
            && parse_timestamp(|| what("expires_at"), &expires)? <= Utc::now()
        {
            return Err(Error::TokenExpired { id: id.to_owned() });
        }
        let name: String = get(&row, "principal", || what("principal"))?;
        self.principal(&name).await?.ok_or(Error::UnknownPrincipal { name })
    }

    /// Revoke a token. Revoking a revoked token again changes nothing.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err("revoke token"))?;
        let updated = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(timestamp(Utc::now()))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err("revoke token"))?;
        if updated.rows_affected() > 0 {
            announce_change(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err("revoke token"))?;
        if updated.rows_affected() == 0 && self.token(id).await?.is_none() {
            return Err(Error::UnknownToken { id: id.to_owned() });
        }
        Ok(())
    }

    /// One token's listing entry.
    pub async fn token(&self, id: &str) -> Result<Option<TokenInfo>> {
        let row = sqlx::query("SELECT id, principal, created_at, expires_at, revoked_at FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read token"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Every token, oldest first; never a secret or a hash.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query("SELECT id, principal, created_at, expires_at, revoked_at FROM tokens")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list tokens"))?;
        let mut tokens = rows.iter().map(token_from_row).collect::<Result<Vec<_>>>()?;
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    /// Record a grant (a grant with the same id is replaced).
    ///
    /// The dataset must be registered, a principal subject must exist, and
    /// listed columns must be columns of the dataset's standard.
    pub async fn grant(&self, g: &Grant) -> Result<()> {
        self.record_grant(g, true).await
    }

    /// Record a new grant, as [`MetadataStore::grant`] does, but never
    /// replace one: an id in use is [`Error::GrantExists`], decided by the
    /// database's key (two concurrent creates of one id: one wins, one is refused).
    pub async fn create_grant(&self, g: &Grant) -> Result<()> {
        self.record_grant(g, false).await
    }

    async fn record_grant(&self, g: &Grant, replace: bool) -> Result<()> {
        check_name("grant id", &g.id)?;
        let dataset = self.require_dataset(&g.dataset).await?;
        let standard = self.bound_standard(&dataset).await?;
        check_grant_columns(g, &standard)?;
        if let GrantSubject::Principal(name) = &g.subject
            && self.principal(name).await?.is_none()
        {
            return Err(Error::UnknownPrincipal { name: name.clone() });
        }
        let columns = g
            .columns
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Invalid { what: "grant", message: e.to_string() })?;
        let mut tx = self.pool.begin().await.map_err(db_err("record grant"))?;
        const INSERT: &str = "INSERT INTO grants (id, subject_kind, subject, dataset, columns, unmasked, purpose, \
             expires_at, created_at, purpose_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        const UPSERT: &str = "INSERT INTO grants (id, subject_kind, subject, dataset, columns, unmasked, purpose, \
             expires_at, created_at, purpose_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET subject_kind = excluded.subject_kind, subject = excluded.subject, \
             dataset = excluded.dataset, columns = excluded.columns, unmasked = excluded.unmasked, \
             purpose = excluded.purpose, expires_at = excluded.expires_at, \
             purpose_required = excluded.purpose_required";
        let inserted = sqlx::query(if replace { UPSERT } else { INSERT })
            .bind(&g.id)
            .bind(g.subject.kind())
            .bind(g.subject.subject())
            .bind(g.dataset.to_string())
            .bind(columns)
            .bind(i64::from(g.unmasked))
            .bind(g.purpose.as_deref())
            .bind(g.expires_at.map(timestamp))
            .bind(timestamp(Utc::now()))
            .bind(i64::from(g.purpose_required))
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {
                announce_change(&mut tx).await?;
                tx.commit().await.map_err(db_err("record grant"))?;
                Ok(())
            }
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::UnknownDataset { dataset: g.dataset.to_string() }.into())
            }
            Err(e) if !replace && is_unique_violation(&e) => Err(Error::GrantExists { id: g.id.clone() }),
            Err(e) => Err(db_err("record grant")(e).into()),
        }
    }

    /// Withdraw a grant.
    pub async fn revoke_grant(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err("revoke grant"))?;
        let deleted = sqlx::query("DELETE FROM grants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err("revoke grant"))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::UnknownGrant { id: id.to_owned() });
        }
        announce_change(&mut tx).await?;
        tx.commit().await.map_err(db_err("revoke grant"))?;
        Ok(())
    }

    /// Every grant, expired ones included, oldest first.
    pub async fn grants(&self) -> Result<Vec<Grant>> {
        let rows = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list grants"))?;
        sorted_grants(&rows)
    }

    /// Every grant on a dataset, expired ones included, oldest first.
    pub async fn grants_for(&self, dataset: &DatasetId) -> Result<Vec<Grant>> {
        let rows = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE dataset = $1"))
            .bind(dataset.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list grants"))?;
        sorted_grants(&rows)
    }

    /// What `principal` may read of `dataset` now ([`decide`] on the stored
    /// dataset, its standard and its grants). `None` = nothing.
    ///
    /// An unregistered dataset is an error ([`StoreError::UnknownDataset`]);
    /// services facing untrusted clients should answer it like `None`, so
    /// that a refusal does not reveal which datasets exist.
    pub async fn access(&self, principal: &Principal, dataset: &DatasetId) -> Result<Option<Access>> {
        let record = self.require_dataset(dataset).await?;
        let standard = self.bound_standard(&record).await?;
        let grants = self.grants_for(dataset).await?;
        Ok(decide(principal, &record, &standard, &grants, Utc::now()))
    }

    /// Every dataset `principal` may read, with what it may read, by dataset id.
    pub async fn readable(&self, principal: &Principal) -> Result<Vec<(DatasetRecord, Access)>> {
        let now = Utc::now();
        let rows = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list grants"))?;
        let mut grants: HashMap<DatasetId, Vec<Grant>> = HashMap::new();
        for grant in sorted_grants(&rows)? {
            grants.entry(grant.dataset.clone()).or_default().push(grant);
        }
        let mut standards: HashMap<(String, String), Option<Standard>> = HashMap::new();
        let mut readable = Vec::new();
        for record in self.datasets().await? {
            let key = (record.spec.standard_id.clone(), record.spec.standard_version.clone());
            let standard = match standards.get(&key) {
                Some(standard) => standard,
                None => {
                    // A dataset whose standard is missing or unreadable cannot be
                    // scoped or masked, so it is readable by no one; the others are
                    // not affected. A store failure still fails the whole call.
                    let standard = match self.bound_standard(&record).await {
                        Ok(standard) => Some(standard),
                        Err(e @ (Error::MissingStandard { .. } | Error::BadStandard { .. })) => {
                            tracing::error!(dataset = %record.spec.id, error = %e, "dataset unreadable: its standard cannot be used");
                            None
                        }
                        Err(e) => return Err(e),
                    };
                    standards.entry(key).or_insert(standard)
                }
            };
            let Some(standard) = standard else { continue };
            let on_dataset = grants.get(&record.spec.id).map(Vec::as_slice).unwrap_or_default();
            if let Some(access) = decide(principal, &record, standard, on_dataset, now) {
                readable.push((record, access));
            }
        }
        Ok(readable)
    }

    /// The parsed standard a dataset is bound to.
    async fn bound_standard(&self, record: &DatasetRecord) -> Result<Standard> {
        let spec = &record.spec;
        let document =
            self.standard(&spec.standard_id, &spec.standard_version).await?.ok_or_else(|| Error::MissingStandard {
                dataset: spec.id.to_string(),
                id: spec.standard_id.clone(),
                version: spec.standard_version.clone(),
            })?;
        Standard::from_json_str(&document).map_err(|e| Error::BadStandard {
            dataset: spec.id.to_string(),
            id: spec.standard_id.clone(),
            version: spec.standard_version.clone(),
            message: e.to_string(),
        })
    }

    /// Append an entry to the audit log; returns its `seq`.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        let seqs = self.append_audit_batch(std::slice::from_ref(entry)).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| Error::Invalid { what: "audit entry", message: "the append wrote nothing".into() })
    }

    /// Append entries to the audit log in one transaction, in order; returns
    /// their `seq`s. Either all are durable or none is.
    ///
    /// Appends are serialised: on SQLite the transaction starts with
    /// `BEGIN IMMEDIATE` (the write lock is taken before the last entry is
    /// read), on PostgreSQL it locks `audit_log` in EXCLUSIVE mode (readers
    /// go on, writers queue). Inside it the last entry is read and the new
    /// ones chained from it, so concurrent appends never fork the chain; the
    /// primary key on `seq` backs this up.
    pub async fn append_audit_batch(&self, entries: &[AuditEntry]) -> Result<Vec<i64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(db_err("begin audit append"))?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(db_err("lock the audit log"))?;
        }
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err("read the last audit entry"))?;
        let (mut seq, mut prev_hash) = match last {
            Some(row) => {
                let last_seq: i64 = get(&row, "seq", || "audit_log.seq of the last entry".into())?;
                let hash: String = get(&row, "hash", || format!("audit_log.hash of entry {last_seq}"))?;
                (last_seq, hash)
            }
            None => (0, GENESIS_HASH.to_owned()),
        };
        let mut seqs = Vec::with_capacity(entries.len());
        for entry in entries {
            seq = seq.saturating_add(1);
            let rows = entry.rows.map(|r| count_to_db("audit rows", r)).transpose()?;
            let duration_ms = entry.duration_ms.map(|d| count_to_db("audit duration", d)).transpose()?;
            let datasets = serde_json::to_string(&entry.datasets)
                .map_err(|e| Error::Invalid { what: "audit datasets", message: e.to_string() })?;
            let at = timestamp(entry.at);
            let action = entry.action.code();
            let outcome = entry.outcome.to_string();
            let content = ChainContent {
                seq,
                at: &at,
                principal: &entry.principal,
                purpose: entry.purpose.as_deref(),
                action,
                sql_text: entry.sql_text.as_deref(),
                datasets: &entry.datasets,
                rows,
                duration_ms,
                outcome: &outcome,
            };
            let hash = chain_hash(&prev_hash, &content);
            let inserted = sqlx::query(
                "INSERT INTO audit_log (seq, at, principal, purpose, action, sql_text, datasets, rows, duration_ms, \
                 outcome, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(seq)
            .bind(&at)
            .bind(&entry.principal)
            .bind(entry.purpose.as_deref())
            .bind(action)
            .bind(entry.sql_text.as_deref())
            .bind(&datasets)
            .bind(rows)
            .bind(duration_ms)
            .bind(&outcome)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::Invalid {
                        what: "audit entry",
                        message: format!("entry {seq} was appended concurrently (the audit log lock did not hold)"),
                    });
                }
                Err(e) => return Err(db_err("append audit entry")(e).into()),
            }
            seqs.push(seq);
            prev_hash = hash;
        }
        tx.commit().await.map_err(db_err("commit audit entry"))?;
        Ok(seqs)
    }

    /// The last entry of the audit log (`None` when it is empty), without
    /// checking the chain: what a checkpoint records.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>> {
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read the last audit entry"))?;
        match last {
            None => Ok(None),
            Some(row) => {
                let seq: i64 = get(&row, "seq", || "audit_log.seq of the last entry".into())?;
                let hash: String = get(&row, "hash", || format!("audit_log.hash of entry {seq}"))?;
                Ok(Some(AuditHead { seq, hash }))
            }
        }
    }

    /// The last `limit` audit entries (all of them when `None`), oldest first.
    pub async fn audit_entries(&self, limit: Option<u64>) -> Result<Vec<AuditRecord>> {
        let rows = match limit {
            Some(limit) => {
                let limit = count_to_db("audit limit", limit)?;
                sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_err("read the audit log"))?;
        let mut records = rows
            .iter()
            .map(|row| audit_from_row(row).map(|(record, _)| record).map_err(|(what, message)| corrupt(what, message)))
            .collect::<Result<Vec<_>>>()?;
        records.reverse();
        Ok(records)
    }

    /// Check the whole audit chain: every entry's hash against its content
    /// and its link to the entry before, and the sequence for gaps. Every
    /// edited, inserted, deleted or reordered entry is named.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        self.verify_audit_anchored(&[]).await
    }

    /// [`Self::verify_audit`], and against heads recorded outside the
    /// database (`civlink audit verify --expect-head`, the checkpoints
    /// `civlink serve` writes): an anchor past the last entry means the tail
    /// was cut, and an entry whose hash is not the anchor's means the chain
    /// was rewritten from there on, whatever the chain itself says.
    pub async fn verify_audit_anchored(&self, anchors: &[AuditHead]) -> Result<AuditReport> {
        let rows = sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("read the audit log"))?;
        let chain: Vec<std::result::Result<ChainRow, (String, String)>> = rows.iter().map(chain_row).collect();
        let head = chain.iter().rev().flatten().next().map(|r| AuditHead { seq: r.seq, hash: r.hash.clone() });
        let mut problems = check_chain(&chain);
        problems.extend(check_anchors(&chain, anchors));
        Ok(AuditReport { entries: rows.len() as u64, problems, head })
    }
}

/// The problems anchors reveal (see [`MetadataStore::verify_audit_anchored`]).
fn check_anchors(
    chain: &[std::result::Result<ChainRow, (String, String)>],
    anchors: &[AuditHead],
) -> Vec<AuditProblem> {
    let last = chain.iter().rev().flatten().next().map(|r| r.seq).unwrap_or(0);
    let mut problems = Vec::new();
    for anchor in anchors {
        match chain.iter().flatten().find(|r| r.seq == anchor.seq) {
            Some(row) if constant_time_eq(row.hash.as_bytes(), anchor.hash.as_bytes()) => {}
            Some(_) => problems.push(AuditProblem {
                seq: anchor.seq,
                kind: AuditProblemKind::Rewritten,
                detail: format!(
                    "entry {} does not have the hash recorded outside the database ({}): the chain was rewritten",
                    anchor.seq, anchor.hash
                ),
            }),
            None if anchor.seq > last => problems.push(AuditProblem {
                seq: last.saturating_add(1),
                kind: AuditProblemKind::Truncated,
                detail: format!(
                    "the log ends at entry {last}, but entry {} was recorded outside the database: the tail was cut",
                    anchor.seq
                ),
            }),
            // Inside the log but missing: `check_chain` reports the gap.
            None => {}
        }
    }
    problems
}

/// One audit row for [`check_chain`]: `Err((seq as text, why))` when its
/// `seq` is not an integer.
fn chain_row(row: &AnyRow) -> std::result::Result<ChainRow, (String, String)> {
    let seq_text: String = row.try_get("seq_text").unwrap_or_else(|_| "?".to_owned());
    let seq: i64 = row.try_get("seq").map_err(|e| (seq_text.clone(), e.to_string()))?;
    let text = |column: &str| row.try_get::<String, _>(column).unwrap_or_default();
    let prev_hash = text("prev_hash");
    let hash = text("hash");
    let content = match audit_from_row(row) {
        Ok((_, recomputed)) => Ok(constant_time_eq(recomputed.as_bytes(), hash.as_bytes())),
        Err((what, message)) => Err(format!("{what}: {message}")),
    };
    Ok(ChainRow { seq, prev_hash, hash, content })
}

/// A stored audit entry, and the hash its content and prev_hash give.
pub(super) fn audit_from_row(row: &AnyRow) -> std::result::Result<(AuditRecord, String), (String, String)> {
    let seq: i64 = row.try_get("seq").map_err(|e| ("audit_log.seq".to_owned(), e.to_string()))?;
    let what = |column: &str| format!("audit_log.{column} of entry {seq}");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| (what(column), e.to_string()));
    let optional_text =
        |column: &str| row.try_get::<Option<String>, _>(column).map_err(|e| (what(column), e.to_string()));
    let optional_count =
        |column: &str| row.try_get::<Option<i64>, _>(column).map_err(|e| (what(column), e.to_string()));
    let at = text("at")?;
    let principal = text("principal")?;
    let purpose = optional_text("purpose")?;
    let action = text("action")?;
    let sql_text = optional_text("sql_text")?;
    let datasets: Vec<String> =
        serde_json::from_str(&text("datasets")?).map_err(|e| (what("datasets"), e.to_string()))?;
    let rows = optional_count("rows")?;
    let duration_ms = optional_count("duration_ms")?;
    let outcome = text("outcome")?;
    let prev_hash = text("prev_hash")?;
    let hash = text("hash")?;
    let recomputed = chain_hash(
        &prev_hash,
        &ChainContent {
            seq,
            at: &at,
            principal: &principal,
            purpose: purpose.as_deref(),
            action: &action,
            sql_text: sql_text.as_deref(),
            datasets: &datasets,
            rows,
            duration_ms,
            outcome: &outcome,
        },
    );
    let count = |column: &str, value: Option<i64>| {
        value.map(|v| count_from_db(|| what(column), v)).transpose().map_err(|e| (what(column), e.to_string()))
    };
    let entry = AuditEntry {
        at: parse_timestamp(|| what("at"), &at).map_err(|e| (what("at"), e.to_string()))?,
        principal,
        purpose,
        action: action.parse().map_err(|e| (what("action"), e))?,
        sql_text,
        datasets,
        rows: count("rows", rows)?,
        duration_ms: count("duration_ms", duration_ms)?,
        outcome: outcome.parse().map_err(|e| (what("outcome"), e))?,
    };
    Ok((AuditRecord { seq, entry, prev_hash, hash }, recomputed))
}

/// A `principals` row.
pub(super) fn principal_from_row(row: &AnyRow) -> Result<Principal> {
    let name: String = get(row, "name", || "principals.name".into())?;
    let what = |column: &str| format!("principals.{column} of {name}");
    let department: Option<String> = get(row, "department", || what("department"))?;
    let role: String = get(row, "role", || what("role"))?;
    let division: String = get(row, "division_code", || what("division_code"))?;
    Ok(Principal {
        department: department
            .map(|d| Department::from_str(&d).map_err(|e| corrupt(what("department"), e.to_string())))
            .transpose()?,
        role: Role::from_str(&role).map_err(|e| corrupt(what("role"), e.to_string()))?,
        division: DivisionCode::parse(&division).map_err(|e| corrupt(what("division_code"), e.to_string()))?,
        name,
    })
}

/// A `tokens` row (without its hash).
fn token_from_row(row: &AnyRow) -> Result<TokenInfo> {
    let id: String = get(row, "id", || "tokens.id".into())?;
    let what = |column: &str| format!("tokens.{column} of token {id}");
    let time = |column: &str| -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = get(row, column, || what(column))?;
        Ok(text.map(|t| parse_timestamp(|| what(column), &t)).transpose()?)
    };
    let created: String = get(row, "created_at", || what("created_at"))?;
    Ok(TokenInfo {
        principal: get(row, "principal", || what("principal"))?,
        created_at: parse_timestamp(|| what("created_at"), &created)?,
        expires_at: time("expires_at")?,
        revoked_at: time("revoked_at")?,
        id,
    })
}

/// `grants` rows, oldest first (by creation time, then id).
fn sorted_grants(rows: &[AnyRow]) -> Result<Vec<Grant>> {
    let mut grants = rows.iter().map(grant_from_row).collect::<Result<Vec<_>>>()?;
    grants.sort_by(|(a, ga), (b, gb)| (a, &ga.id).cmp(&(b, &gb.id)));
    Ok(grants.into_iter().map(|(_, g)| g).collect())
}

/// A `grants` row (columns of [`GRANT_COLUMNS`]) with its creation time.
pub(super) fn grant_from_row(row: &AnyRow) -> Result<(DateTime<Utc>, Grant)> {
    let id: String = get(row, "id", || "grants.id".into())?;
    let what = |column: &str| format!("grants.{column} of grant {id}");
    let text = |column: &str| get::<String>(row, column, || what(column));
    let kind = text("subject_kind")?;
    let subject = text("subject")?;
    let subject = match kind.as_str() {
        "principal" => GrantSubject::Principal(subject),
        "department" => GrantSubject::Department(
            Department::from_str(&subject).map_err(|e| corrupt(what("subject"), e.to_string()))?,
        ),
        other => return Err(corrupt(what("subject_kind"), format!("unknown subject kind \"{other}\""))),
    };
    let columns: Option<String> = get(row, "columns", || what("columns"))?;
    let unmasked: i64 = get(row, "unmasked", || what("unmasked"))?;
    let purpose_required: i64 = get(row, "purpose_required", || what("purpose_required"))?;
    let expires_at: Option<String> = get(row, "expires_at", || what("expires_at"))?;
    let created_at = parse_timestamp(|| what("created_at"), &text("created_at")?)?;
    let grant = Grant {
        subject,
        dataset: DatasetId::from_str(&text("dataset")?).map_err(|e| corrupt(what("dataset"), e.to_string()))?,
        columns: columns
            .map(|c| serde_json::from_str(&c).map_err(|e| corrupt(what("columns"), e.to_string())))
            .transpose()?,
        unmasked: match unmasked {
            0 => false,
            1 => true,
            other => return Err(corrupt(what("unmasked"), format!("{other} is not 0 or 1"))),
        },
        purpose: get(row, "purpose", || what("purpose"))?,
        purpose_required: match purpose_required {
            0 => false,
            1 => true,
            other => return Err(corrupt(what("purpose_required"), format!("{other} is not 0 or 1"))),
        },
        expires_at: expires_at.map(|t| parse_timestamp(|| what("expires_at"), &t)).transpose()?,
        id,
    };
    Ok((created_at, grant))
}
