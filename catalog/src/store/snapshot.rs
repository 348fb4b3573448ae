//! The policy snapshot: everything a request needs to authenticate and to
//! decide what it may read, held in memory.
//!
//! Servers answer many small requests; reading the principals, tokens,
//! grants, datasets and standards from the database for each one cost tens
//! of page reads and a JSON parse per standard. A [`PolicySnapshot`] is
//! read once, in one consistent read (a SQLite read transaction, a
//! PostgreSQL `REPEATABLE READ` one), and answers
//! [`PolicySnapshot::authenticate`] and [`PolicySnapshot::readable`] without
//! I/O.
//!
//! **Freshness.** Every change to what the snapshot holds (a principal, a
//! token issued or revoked, a grant recorded or withdrawn, a standard
//! registered, a dataset registered or given a new version) increments the
//! catalog's change counter (`catalog_epoch`, migration 0004) in the same
//! transaction as the change. A server reads the counter per request
//! ([`MetadataStore::catalog_epoch`], one primary-key read) and reloads when
//! it moved, so a revocation applies to the next request after it commits,
//! in this process or in any other sharing the database. Time still counts
//! inside a snapshot: expired tokens and grants stop working at their
//! expiry, not at the next reload.
//!
//! **Standards** are immutable per (id, version) ([`MetadataStore::register_standard`]),
//! so a reload reuses the parsed standards of the snapshot it replaces and
//! parses only versions it has not seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use civlink_standards::standard::Standard;
use sqlx::Executor;

use super::codec::parse_timestamp;
use super::policy::{grant_from_row, principal_from_row};
use super::{Backend, Error as StoreError, MetadataStore, dataset_from_row, db_err, get};
use crate::model::{DatasetId, DatasetRecord};
use crate::policy::{
    Access, Error, Grant, Principal, PurposeRequired, Result, constant_time_eq, decide, purpose_required, token_hash,
    token_id,
};

/// A dataset a principal may read, with what it may read and its parsed standard.
#[derive(Debug, Clone)]
pub struct ReadableDataset {
    /// The dataset.
    pub record: DatasetRecord,
    /// What the principal may read of it.
    pub access: Access,
    /// The standard it is bound to.
    pub standard: Arc<Standard>,
}

/// One token as the snapshot keeps it: never the secret, only its hash.
#[derive(Debug, Clone)]
struct TokenEntry {
    principal: String,
    hash: String,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

/// What one principal may read, computed once per snapshot.
#[derive(Debug)]
struct Decided {
    principal: Principal,
    /// The decision holds until this instant (the next grant expiry), if any.
    until: Option<DateTime<Utc>>,
    readable: Arc<[ReadableDataset]>,
}

/// The policy as of one value of the catalog's change counter (see the module docs).
#[derive(Debug)]
pub struct PolicySnapshot {
    epoch: i64,
    principals: HashMap<String, Principal>,
    tokens: HashMap<String, TokenEntry>,
    /// Datasets in id order.
    datasets: Vec<DatasetRecord>,
    /// Parsed standards of the datasets' bound versions; `None` = missing or
    /// unparseable (its datasets are readable by no one).
    standards: HashMap<(String, String), Option<Arc<Standard>>>,
    grants: HashMap<DatasetId, Vec<Grant>>,
    /// What each principal may read, decided on its first request.
    decisions: Mutex<HashMap<String, Arc<Decided>>>,
}

impl PolicySnapshot {
    /// The change counter this snapshot reflects.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Every registered dataset, in id order.
    pub fn datasets(&self) -> &[DatasetRecord] {
        &self.datasets
    }

    /// The parsed standard `record` is bound to, if it parses.
    pub fn standard(&self, record: &DatasetRecord) -> Option<Arc<Standard>> {
        let key = (record.spec.standard_id.clone(), record.spec.standard_version.clone());
        self.standards.get(&key).cloned().flatten()
    }

    /// A principal by name.
    pub fn principal(&self, name: &str) -> Option<&Principal> {
        self.principals.get(name)
    }

    /// The principal a token belongs to, at `now`: the same answers, and the
    /// same care, as [`MetadataStore::authenticate`] (revocation and expiry are
    /// reported only once the secret matched).
    pub fn authenticate(&self, secret: &str, now: DateTime<Utc>) -> Result<Principal> {
        let id = token_id(secret).ok_or(Error::BadToken)?;
        let token = self.tokens.get(id).ok_or_else(|| Error::UnknownToken { id: id.to_owned() })?;
        if !constant_time_eq(token_hash(secret).as_bytes(), token.hash.as_bytes()) {
            return Err(Error::BadToken);
        }
        if token.revoked {
            return Err(Error::TokenRevoked { id: id.to_owned() });
        }
        if token.expires_at.is_some_and(|expires| expires <= now) {
            return Err(Error::TokenExpired { id: id.to_owned() });
        }
        self.principals
            .get(&token.principal)
            .cloned()
            .ok_or_else(|| Error::UnknownPrincipal { name: token.principal.clone() })
    }

    /// Every dataset `principal` may read at `now`, in id order (the same
    /// decision as [`MetadataStore::readable`]), computed once per principal
    /// and reused until a grant it depended on expires.
    pub fn readable(&self, principal: &Principal, now: DateTime<Utc>) -> Arc<[ReadableDataset]> {
        let still_good =
            |decided: &Decided| decided.principal == *principal && decided.until.is_none_or(|until| now < until);
        let found = self.memo().get(&principal.name).filter(|d| still_good(d)).cloned();
        if let Some(decided) = found {
            return Arc::clone(&decided.readable);
        }
        let decided = Arc::new(self.decide(principal, now));
        let readable = Arc::clone(&decided.readable);
        self.memo().insert(principal.name.clone(), decided);
        readable
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Decided>>> {
        // A poisoned lock only means another request panicked mid-insert: the map is still whole.
        self.decisions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `principal` may read of one dataset at `now`; `None` = nothing,
    /// or no such dataset (callers facing clients must not tell them apart).
    pub fn access(&self, principal: &Principal, dataset: &DatasetId, now: DateTime<Utc>) -> Option<ReadableDataset> {
        self.readable(principal, now).iter().find(|r| r.record.spec.id == *dataset).cloned()
    }

    /// The refusal of a request by `principal` that stated `purpose` (none:
    /// `None`) and reads `datasets` (ids as `department.name`), when a live
    /// grant on one of them requires a purpose ([`purpose_required`]).
    pub fn purpose_required(
        &self,
        principal: &Principal,
        datasets: &[String],
        purpose: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<PurposeRequired> {
        datasets.iter().filter_map(|d| d.parse::<DatasetId>().ok()).find_map(|dataset| {
            let on_dataset = self.grants.get(&dataset).map(Vec::as_slice).unwrap_or_default();
            purpose_required(principal, &dataset, on_dataset, purpose, now)
        })
    }

    fn decide(&self, principal: &Principal, now: DateTime<Utc>) -> Decided {
        let mut readable = Vec::new();
        for record in &self.datasets {
            let key = (record.spec.standard_id.clone(), record.spec.standard_version.clone());
            let Some(Some(standard)) = self.standards.get(&key) else { continue };
            let on_dataset = self.grants.get(&record.spec.id).map(Vec::as_slice).unwrap_or_default();
            if let Some(access) = decide(principal, record, standard, on_dataset, now) {
                readable.push(ReadableDataset { record: record.clone(), access, standard: Arc::clone(standard) });
            }
        }
        // A grant that is live now stops at its expiry: decide again then.
        let until = self.grants.values().flatten().filter_map(|g| g.expires_at).filter(|at| *at > now).min();
        Decided { principal: principal.clone(), until, readable: readable.into() }
    }
}

impl MetadataStore {
    /// The catalog's change counter (see [`PolicySnapshot`]): one primary-key read.
    pub async fn catalog_epoch(&self) -> Result<i64> {
        let row = sqlx::query("SELECT epoch FROM catalog_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("read the catalog's change counter"))?;
        Ok(get(&row, "epoch", || "catalog_epoch.epoch".into())?)
    }

    /// Read the policy in one consistent read. Standards already parsed in
    /// `previous` are reused, not read again.
    pub async fn policy_snapshot(&self, previous: Option<&PolicySnapshot>) -> Result<PolicySnapshot> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin the policy read"))?;
        if self.backend == Backend::Postgres {
            // Every statement below sees the same committed state, the counter's included.
            (&mut *tx)
                .execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(db_err("begin the policy read"))?;
        }
        let epoch_row = sqlx::query("SELECT epoch FROM catalog_epoch WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err("read the catalog's change counter"))?;
        let epoch: i64 = get(&epoch_row, "epoch", || "catalog_epoch.epoch".into())?;

        let rows = sqlx::query("SELECT name, department, role, division_code FROM principals")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("list principals"))?;
        let principals = rows
            .iter()
            .map(|row| principal_from_row(row).map(|p| (p.name.clone(), p)))
            .collect::<Result<HashMap<_, _>>>()?;

        let rows = sqlx::query("SELECT id, principal, hash, expires_at, revoked_at FROM tokens")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("list tokens"))?;
        let mut tokens = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = get(row, "id", || "tokens.id".into())?;
            let what = |column: &str| format!("tokens.{column} of token {id}");
            let expires_at: Option<String> = get(row, "expires_at", || what("expires_at"))?;
            let revoked_at: Option<String> = get(row, "revoked_at", || what("revoked_at"))?;
            let entry = TokenEntry {
                principal: get(row, "principal", || what("principal"))?,
                hash: get(row, "hash", || what("hash"))?,
                expires_at: expires_at.map(|at| parse_timestamp(|| what("expires_at"), &at)).transpose()?,
                revoked: revoked_at.is_some(),
            };
            tokens.insert(id, entry);
        }

        let rows = sqlx::query(&format!("SELECT {} FROM grants", super::policy::GRANT_COLUMNS))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("list grants"))?;
        let mut dated = rows.iter().map(grant_from_row).collect::<Result<Vec<_>>>()?;
        // Oldest first, as `grants_for` lists them.
        dated.sort_by(|(a, ga), (b, gb)| (a, &ga.id).cmp(&(b, &gb.id)));
        let mut grants: HashMap<DatasetId, Vec<Grant>> = HashMap::new();
        for (_, grant) in dated {
            grants.entry(grant.dataset.clone()).or_default().push(grant);
        }

        let rows = sqlx::query(concat!("SELECT ", dataset_columns!(), " FROM datasets"))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("list datasets"))?;
        let mut datasets = rows.iter().map(dataset_from_row).collect::<Result<Vec<_>, StoreError>>()?;
        datasets.sort_by_key(|d| d.spec.id.to_string());

        let mut standards: HashMap<(String, String), Option<Arc<Standard>>> = HashMap::new();
        for record in &datasets {
            let key = (record.spec.standard_id.clone(), record.spec.standard_version.clone());
            if standards.contains_key(&key) {
                continue;
            }
            if let Some(Some(parsed)) = previous.and_then(|p| p.standards.get(&key)) {
                standards.insert(key, Some(Arc::clone(parsed)));
                continue;
            }
            let row = sqlx::query("SELECT document FROM standards WHERE id = $1 AND version = $2")
                .bind(&key.0)
                .bind(&key.1)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err("read standard"))?;
            let parsed = match row {
                None => {
                    tracing::error!(dataset = %record.spec.id, standard = %key.0, version = %key.1, "dataset unreadable: its standard is not registered");
                    None
                }
                Some(row) => {
                    let document: String =
                        get(&row, "document", || format!("standards.document of {} {}", key.0, key.1))?;
                    match Standard::from_json_str(&document) {
                        Ok(standard) => Some(Arc::new(standard)),
                        Err(e) => {
                            tracing::error!(dataset = %record.spec.id, standard = %key.0, version = %key.1, error = %e, "dataset unreadable: its standard does not parse");
                            None
                        }
                    }
                }
            };
            standards.insert(key, parsed);
        }
        // Read-only: nothing to commit, and rolling back ends the read on both backends.
        tx.rollback().await.map_err(db_err("end the policy read"))?;
        Ok(PolicySnapshot { epoch, principals, tokens, datasets, standards, grants, decisions: Mutex::default() })
    }
}
