//! Access policy: principals, API tokens, grants, the access decision, and
//! the tamper-evident audit log.
//!
//! [`decide`] is the single source of truth for what a principal may read of
//! a dataset; Flight SQL and REST both ask it (through
//! [`MetadataStore::access`](crate::store::MetadataStore::access)) and apply
//! the [`Access`] it returns: the readable columns with their masks, and the
//! division prefix rows must start with.
//!
//! # The rules
//!
//! **Who may read a dataset** follows its GB/T 21063 sharing type:
//!
//! | sharing | who reads | which columns |
//! |---|---|---|
//! | `unconditional` (无条件共享) | every authenticated principal | all |
//! | `conditional` (有条件共享) | principals with a live grant (to themselves or to their department) | the union of the live grants' columns (`None` = all) |
//! | `not_shared` (不予共享) | principals of the owning department | all |
//!
//! On top of the table:
//!
//! * **Admin** reads every dataset, every column and every row.
//! * **The owning department** (`dataset.spec.id.department`) reads all
//!   columns of its own datasets whatever their sharing type: it is the
//!   source of the data, so a grant to read its own conditional dataset
//!   would be a formality. (Rows are still scoped, see below.)
//! * **Grants never open a `not_shared` dataset** to anyone outside the
//!   owning department: 不予共享 means not shared. On such a dataset a grant
//!   can only unmask columns for the owner's principals.
//! * A grant is **live** while `expires_at` is `None` or later than `now`
//!   (a grant expiring exactly at `now` is expired). Its `purpose` is the
//!   recorded legal basis, shown and audited; it is not matched against
//!   anything here.
//! * The roles other than Admin (`analyst`, `department_service`,
//!   `standards_admin`) read under the same rules: the role gates
//!   administrative operations (registering standards, issuing tokens),
//!   not data.
//!
//! **Masking**: every column whose property's
//! [`effective_mask`](civlink_standards::standard::Property::effective_mask)
//! is not `None` (sensitive and secret columns, and any column with an
//! explicit `x-civlink-mask`) is masked, unless a live grant that applies to
//! the principal, covers the column and has `unmasked = true`. This holds
//! for Admin and the owning department too: seeing personal information in
//! clear always takes an explicit, expiring, audited grant.
//!
//! **Row scope**: every principal except Admin is confined to the rows
//! whose division code starts with its division's
//! [`scope_prefix`](civlink_standards::division::DivisionCode::scope_prefix)
//! (a county analyst at `630102000000` sees rows `630102…`). A dataset
//! without a division column cannot be scoped, so it is readable only by
//! province-level principals (and Admin): a county analyst must not see
//! province-wide data it has no way to be confined in. Admin's `row_prefix`
//! is `None`.
//!
//! Anything inconsistent fails closed: a standard that is not the one the
//! dataset is bound to, or a grant whose columns name nothing readable,
//! yields no access.
//!
//! # Tokens
//!
//! A token is `clk_<id>_<secret>`: a 16-hex-digit id (what `token list` and
//! `token revoke` name) and 64 hex digits of secret. The store keeps only the
//! SHA-256 of the whole token, compares hashes in constant time, and never
//! writes the token anywhere; [`IssuedToken`]'s `Debug` hides it.
//!
//! # The audit log
//!
//! Every entry carries `hash = SHA-256(prev_hash ‖ canonical JSON of the
//! entry)`, the JSON including the entry's `seq` and `at`, and the first
//! entry chaining from [`GENESIS_HASH`]. Appends are serialised (one writer
//! at a time) so the chain never forks, and `seq` runs 1, 2, 3, … without
//! gaps. [`MetadataStore::verify_audit`](crate::store::MetadataStore::verify_audit)
//! recomputes the chain and names every edited, inserted, deleted or
//! reordered entry. What a hash chain without a secret key cannot show is a
//! truncated tail, or a rewrite of the chain from some entry onwards with
//! recomputed hashes: [`AuditReport::head`] is printed so that operators can
//! anchor the head outside the database and compare.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use civlink_standards::division::{DivisionCode, Level};
use civlink_standards::mask::MaskStrategy;
use civlink_standards::standard::Standard;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{DatasetId, DatasetRecord, Department, SharingType};
use crate::store;

/// Why a policy operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The metadata store failed (including an unknown dataset).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// No principal with this name.
    #[error("unknown principal {name}")]
    UnknownPrincipal {
        /// The name given.
        name: String,
    },
    /// Not a civlink token, or not the secret of the token it names. The
    /// message never repeats what was presented.
    #[error("invalid token")]
    BadToken,
    /// The token is past its expiry.
    #[error("token {id} has expired")]
    TokenExpired {
        /// The token's id.
        id: String,
    },
    /// The token was revoked.
    #[error("token {id} has been revoked")]
    TokenRevoked {
        /// The token's id.
        id: String,
    },
    /// No token with this id.
    #[error("unknown token {id}")]
    UnknownToken {
        /// The id given.
        id: String,
    },
    /// An argument that cannot be recorded or used as given.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which argument, e.g. "role".
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The dataset is bound to a standard version that is not registered.
    #[error("dataset {dataset} follows standard {id} version {version}, which is not registered")]
    MissingStandard {
        /// The dataset.
        dataset: String,
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
    },
    /// The registered standard document does not parse.
    #[error("standard {id} version {version} (of dataset {dataset}) does not parse: {message}")]
    BadStandard {
        /// The dataset.
        dataset: String,
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// The parser's message.
        message: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a principal is, for administration (data access is decided by
/// department, division and grants; only [`Role::Admin`] changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads data under the sharing rules, grants and row scope.
    Analyst,
    /// A department's service account (ingestion, exchange).
    DepartmentService,
    /// Registers and evolves data standards.
    StandardsAdmin,
    /// Reads everything, every row; still masked without an unmasked grant.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Analyst, Role::DepartmentService, Role::StandardsAdmin, Role::Admin];

    /// The stable code, as stored and parsed.
    pub fn code(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::DepartmentService => "department_service",
            Role::StandardsAdmin => "standards_admin",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(value: &str) -> Result<Self> {
        let v = value.trim();
        Role::ALL.into_iter().find(|r| r.code().eq_ignore_ascii_case(v)).ok_or_else(|| Error::Invalid {
            what: "role",
            message: format!(
                "\"{value}\" is not a role; expected analyst, department_service, standards_admin or admin"
            ),
        })
    }
}

/// Someone (or a service) that authenticates with a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Unique name (a user name or a service account's name).
    pub name: String,
    /// The source department it belongs to, if any.
    pub department: Option<Department>,
    /// Its role.
    pub role: Role,
    /// The division it works for: its rows are those within this division.
    pub division: DivisionCode,
}

impl Principal {
    /// The level of government it works at (省/市/县/乡/村).
    pub fn level(&self) -> Level {
        self.division.level()
    }
}

/// To whom a grant is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "subject", rename_all = "snake_case")]
pub enum GrantSubject {
    /// One principal, by name.
    Principal(String),
    /// Every principal of a department.
    Department(Department),
}

impl GrantSubject {
    /// `principal` or `department`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            GrantSubject::Principal(_) => "principal",
            GrantSubject::Department(_) => "department",
        }
    }

    /// The principal's name or the department's code, as stored.
    pub fn subject(&self) -> &str {
        match self {
            GrantSubject::Principal(name) => name,
            GrantSubject::Department(department) => department.code(),
        }
    }

    /// Whether the grant is made to this principal.
    pub fn includes(&self, principal: &Principal) -> bool {
        match self {
            GrantSubject::Principal(name) => *name == principal.name,
            GrantSubject::Department(department) => principal.department == Some(*department),
        }
    }
}

impl fmt::Display for GrantSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.subject())
    }
}

/// Permission for a subject to read (some columns of) a dataset, and
/// optionally to see them unmasked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique id.
    pub id: String,
    /// To whom.
    pub subject: GrantSubject,
    /// Which dataset.
    pub dataset: DatasetId,
    /// Which columns; `None` = every column.
    pub columns: Option<Vec<String>>,
    /// Whether the covered columns are shown in clear.
    pub unmasked: bool,
    /// The stated purpose (legal basis), recorded and audited.
    pub purpose: Option<String>,
    /// When it lapses; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Whether the grant is in force at `now` (a grant expiring exactly at
    /// `now` is not).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires| expires > now)
    }

    /// Whether the grant covers `column`.
    pub fn covers(&self, column: &str) -> bool {
        self.columns.as_ref().is_none_or(|columns| columns.iter().any(|c| c == column))
    }
}

/// One readable column and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnAccess {
    /// Column name.
    pub name: String,
    /// The mask applied to its values; [`MaskStrategy::None`] = in clear.
    pub mask: MaskStrategy,
}

/// What one principal may read of one dataset: the single source of truth
/// used by Flight SQL and REST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The dataset.
    pub dataset: DatasetId,
    /// The column holding each row's division code, when the dataset has one.
    pub division_column: Option<String>,
    /// Rows whose division code starts with this prefix; `None` = every row
    /// (only for the Admin role). Applied on `division_column`; when the
    /// dataset has none, [`decide`] has already established that the
    /// principal (province level) may read all its rows.
    pub row_prefix: Option<String>,
    /// Readable columns in standard order, with masks.
    pub columns: Vec<ColumnAccess>,
}

impl Access {
    /// The readable column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnAccess> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The row filter to apply: rows whose `column` value starts with
    /// `prefix`. `None` = no filter (Admin, or an unscoped dataset read at
    /// province level).
    pub fn row_filter(&self) -> Option<(&str, &str)> {
        Some((self.division_column.as_deref()?, self.row_prefix.as_deref()?))
    }

    /// Whether a row with this division code (the division column's value)
    /// may be read. A row without one (`None`) is readable only without a
    /// row filter: it cannot be placed inside anyone's division.
    pub fn admits_division(&self, code: Option<&str>) -> bool {
        match self.row_filter() {
            None => true,
            Some((_, prefix)) => code.is_some_and(|c| c.starts_with(prefix)),
        }
    }
}

/// Decide what `principal` may read of `dataset` (whose bound standard is
/// `standard`), given the grants on it, at `now`. `None` = nothing.
///
/// Pure: no I/O, no clock. The rules are in the [module docs](self). Grants
/// for other datasets or other subjects in `grants` are ignored.
pub fn decide(
    principal: &Principal,
    dataset: &DatasetRecord,
    standard: &Standard,
    grants: &[Grant],
    now: DateTime<Utc>,
) -> Option<Access> {
    let spec = &dataset.spec;
    if standard.id != spec.standard_id || standard.version != spec.standard_version {
        // Not the standard the dataset is bound to: its columns and masks cannot be trusted.
        return None;
    }
    let admin = principal.role == Role::Admin;
    let owner = principal.department == Some(spec.id.department);
    let live: Vec<&Grant> =
        grants.iter().filter(|g| g.dataset == spec.id && g.is_live(now) && g.subject.includes(principal)).collect();

    // Which columns, before masking: `None` = all of them.
    let granted: Option<HashSet<&str>> = if admin || owner {
        None
    } else {
        match spec.sharing {
            SharingType::Unconditional => None,
            SharingType::Conditional => {
                if live.is_empty() {
                    return None;
                }
                if live.iter().any(|g| g.columns.is_none()) {
                    None
                } else {
                    Some(live.iter().flat_map(|g| g.columns.iter().flatten().map(String::as_str)).collect())
                }
            }
            SharingType::NotShared => return None,
        }
    };

    let division_column = spec.division_column.clone().or_else(|| standard.division_column.clone());
    let row_prefix = if admin {
        None
    } else {
        if division_column.is_none() && principal.level() != Level::Province {
            return None;
        }
        Some(principal.division.scope_prefix().to_owned())
    };

    let columns: Vec<ColumnAccess> = standard
        .properties
        .iter()
        .filter(|p| granted.as_ref().is_none_or(|set| set.contains(p.name.as_str())))
        .map(|p| {
            let unmasked = live.iter().any(|g| g.unmasked && g.covers(&p.name));
            ColumnAccess { name: p.name.clone(), mask: if unmasked { MaskStrategy::None } else { p.effective_mask() } }
        })
        .collect();
    if columns.is_empty() {
        return None;
    }
    Some(Access { dataset: spec.id.clone(), division_column, row_prefix, columns })
}

/// A token just created. The secret is shown to its holder once and never
/// stored; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token's id (for listing and revoking).
    pub id: String,
    /// The whole token, `clk_<id>_<64 hex digits>`: what the client presents.
    pub secret: String,
    /// When it expires; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A token as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// Whose token it is.
    pub principal: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; `None` = not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// Prefix of every civlink token.
pub const TOKEN_PREFIX: &str = "clk_";
/// Hex digits of a token id.
pub(crate) const TOKEN_ID_LEN: usize = 16;
/// Hex digits of a token's secret part (32 bytes).
pub(crate) const TOKEN_SECRET_LEN: usize = 64;

/// A fresh token: its id and the whole token text.
///
/// The 32 secret bytes are SHA-256 over three version-4 UUIDs (366 bits from
/// the operating system's random source, through `uuid`), so no extra
/// random-number crate is needed.
pub(crate) fn new_token() -> (String, String) {
    let id: String = uuid::Uuid::new_v4().simple().to_string().chars().take(TOKEN_ID_LEN).collect();
    let mut hasher = Sha256::new();
    for _ in 0..3 {
        hasher.update(uuid::Uuid::new_v4().as_bytes());
    }
    let secret = hex::encode(hasher.finalize());
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    (id, token)
}

/// The id of a well-formed token (`clk_` + 16 lower-case hex + `_` + 64
/// lower-case hex), or `None`.
pub(crate) fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex(id, TOKEN_ID_LEN) && hex(secret, TOKEN_SECRET_LEN)).then_some(id)
}

/// SHA-256 (hex) of a token: what the store keeps.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Audit actions civlink writes (the column is free text; these are the
/// names the services agree on).
pub mod action {
    /// A client authenticated (or failed to).
    pub const HANDSHAKE: &str = "handshake";
    /// A query ran (or was refused).
    pub const QUERY: &str = "query";
    /// A statement was prepared.
    pub const PREPARE: &str = "prepare";
    /// A token was issued.
    pub const TOKEN_CREATE: &str = "token_create";
    /// A token was revoked.
    pub const TOKEN_REVOKE: &str = "token_revoke";
    /// A grant was made.
    pub const GRANT: &str = "grant";
}

/// The hash the first audit entry chains from: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event, as the caller records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who (the authenticated principal, or the name a failed handshake claimed).
    pub principal: String,
    /// The purpose the client stated.
    pub purpose: Option<String>,
    /// What: see [`action`].
    pub action: String,
    /// The SQL text, for queries.
    pub sql_text: Option<String>,
    /// The datasets touched.
    pub datasets: Vec<String>,
    /// Rows returned.
    pub rows: Option<u64>,
    /// How long it took.
    pub duration_ms: Option<u64>,
    /// `ok`, `denied`, or an error message.
    pub outcome: String,
}

impl AuditEntry {
    /// An entry at the current time, with no purpose, SQL, datasets or counts.
    pub fn new(principal: impl Into<String>, action: impl Into<String>, outcome: impl Into<String>) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            principal: principal.into(),
            purpose: None,
            action: action.into(),
            sql_text: None,
            datasets: Vec::new(),
            rows: None,
            duration_ms: None,
            outcome: outcome.into(),
        }
    }
}

/// A stored audit entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: i64,
    /// The entry.
    pub entry: AuditEntry,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// How the audit log was tampered with at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditProblemKind {
    /// The entry's content no longer matches its hash, or it was rewritten
    /// with a recomputed hash that the next entry does not chain from.
    Edited,
    /// The entry was not appended by the store: neither its link to the
    /// previous entry nor its own hash holds.
    Inserted,
    /// Entries are missing: a gap in the sequence numbers.
    Deleted,
    /// The entry chains from an entry found elsewhere in the log: entries were moved.
    Reordered,
}

impl AuditProblemKind {
    /// Lower-case name, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditProblemKind::Edited => "edited",
            AuditProblemKind::Inserted => "inserted",
            AuditProblemKind::Deleted => "deleted",
            AuditProblemKind::Reordered => "reordered",
        }
    }
}

impl fmt::Display for AuditProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One place where the audit chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// The entry (for deletions: the first missing sequence number).
    pub seq: i64,
    /// What happened there.
    pub kind: AuditProblemKind,
    /// Details for the auditor.
    pub detail: String,
}

/// The last entry of the log, to be kept outside the database: a truncated
/// tail shows only against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// The result of checking the whole audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Entries in the log.
    pub entries: u64,
    /// Every problem, in log order; empty = intact.
    pub problems: Vec<AuditProblem>,
    /// The last entry; `None` for an empty log.
    pub head: Option<AuditHead>,
}

impl AuditReport {
    /// Whether the chain holds everywhere.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The hashed content of an audit entry, as stored: field order is fixed by
/// the struct, so its JSON is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ChainContent<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub principal: &'a str,
    pub purpose: Option<&'a str>,
    pub action: &'a str,
    pub sql_text: Option<&'a str>,
    pub datasets: &'a [String],
    pub rows: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: &'a str,
}

/// `SHA-256(prev_hash ‖ canonical JSON of content)`, hex.
pub(crate) fn chain_hash(prev_hash: &str, content: &ChainContent<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    // Serialising a struct of strings and integers cannot fail; should it
    // ever, the empty JSON makes the hash mismatch rather than panic.
    hasher.update(serde_json::to_vec(content).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// One row of the audit log as read back for verification.
#[derive(Debug, Clone)]
pub(crate) struct ChainRow {
    /// Its sequence number.
    pub seq: i64,
    /// Its stored prev_hash.
    pub prev_hash: String,
    /// Its stored hash.
    pub hash: String,
    /// Whether its hash matches its content (`Err` = the row does not even decode).
    pub content: Result<bool, String>,
}

/// Check a chain of rows in `seq` order (see [`AuditProblemKind`] for the
/// classification). Rows whose `seq` is not an integer are passed as
/// `Err(text)` at their place.
pub(crate) fn check_chain(rows: &[Result<ChainRow, (String, String)>]) -> Vec<AuditProblem> {
    // Where every hash sits, to recognise entries chaining from elsewhere.
    let mut hash_at: HashMap<&str, i64> = HashMap::new();
    for row in rows.iter().flatten() {
        hash_at.entry(row.hash.as_str()).or_insert(row.seq);
    }
    let mut problems = Vec::new();
    // (seq, hash, flagged) of the previous decodable row.
    let mut previous: Option<(i64, &str, bool)> = None;
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err((seq_text, message)) => {
                let after = previous.map(|(s, _, _)| s).unwrap_or(0);
                problems.push(AuditProblem {
                    seq: after,
                    kind: AuditProblemKind::Inserted,
                    detail: format!("a row with seq \"{seq_text}\" follows entry {after}: {message}"),
                });
                if let Some(p) = previous.as_mut() {
                    p.2 = true;
                }
                continue;
            }
        };
        let expected_seq = previous.map(|(s, _, _)| s.saturating_add(1)).unwrap_or(1);
        let mut flagged = false;
        if row.seq > expected_seq {
            let last_missing = row.seq - 1;
            problems.push(AuditProblem {
                seq: expected_seq,
                kind: AuditProblemKind::Deleted,
                detail: if last_missing == expected_seq {
                    format!("entry {expected_seq} is missing")
                } else {
                    format!("entries {expected_seq} to {last_missing} are missing")
                },
            });
        } else if row.seq < expected_seq {
            // Only possible for a first row numbered below 1.
            problems.push(AuditProblem {
                seq: row.seq,
                kind: AuditProblemKind::Inserted,
                detail: format!("entry {} precedes the first entry of the log (1)", row.seq),
            });
            flagged = true;
        }
        let gap = row.seq != expected_seq;
        let self_ok = match &row.content {
            Ok(ok) => *ok,
            Err(message) => {
                problems.push(AuditProblem {
                    seq: row.seq,
                    kind: AuditProblemKind::Edited,
                    detail: format!("entry {} does not decode: {message}", row.seq),
                });
                flagged = true;
                false
            }
        };
        let content_decodes = row.content.is_ok();
        // Across a gap the link cannot be checked: the entry it chained from is gone.
        let link_ok = gap
            || match previous {
                None => row.prev_hash == GENESIS_HASH,
                Some((_, hash, _)) => row.prev_hash == hash,
            };
        // Another entry (not this one, not the one before it) whose hash this one chains from.
        let elsewhere =
            hash_at.get(row.prev_hash.as_str()).copied().filter(|s| *s != row.seq && Some(*s) != previous.map(|p| p.0));
        if !flagged {
            if link_ok {
                if !self_ok {
                    problems.push(AuditProblem {
                        seq: row.seq,
                        kind: AuditProblemKind::Edited,
                        detail: format!("entry {}'s content no longer matches its hash", row.seq),
                    });
                    flagged = true;
                }
            } else if previous.is_some_and(|p| p.2) {
                // The broken link is explained by the problem already found just before.
                if !self_ok && content_decodes {
                    let (kind, detail) = match elsewhere {
                        Some(from) => (
                            AuditProblemKind::Reordered,
                            format!("entry {} chains from entry {from}, not from the entry before it", row.seq),
                        ),
                        None => (
                            AuditProblemKind::Edited,
                            format!("entry {}'s content no longer matches its hash", row.seq),
                        ),
                    };
                    problems.push(AuditProblem { seq: row.seq, kind, detail });
                    flagged = true;
                }
            } else if let Some(from) = elsewhere {
                problems.push(AuditProblem {
                    seq: row.seq,
                    kind: AuditProblemKind::Reordered,
                    detail: format!("entry {} chains from entry {from}, not from the entry before it", row.seq),
                });
                flagged = true;
            } else if self_ok {
                match previous {
                    Some((p, _, _)) => problems.push(AuditProblem {
                        seq: p,
                        kind: AuditProblemKind::Edited,
                        detail: format!(
                            "entry {p} was rewritten with a recomputed hash: entry {} no longer chains from it",
                            row.seq
                        ),
                    }),
                    None => {
                        problems.push(AuditProblem {
                            seq: row.seq,
                            kind: AuditProblemKind::Inserted,
                            detail: format!("entry {} is first but does not chain from the genesis hash", row.seq),
                        });
                        flagged = true;
                    }
                }
            } else {
                problems.push(AuditProblem {
                    seq: row.seq,
                    kind: AuditProblemKind::Inserted,
                    detail: format!(
                        "entry {} neither chains from the entry before it nor matches its own hash: it was not \
                         appended by civlink",
                        row.seq
                    ),
                });
                flagged = true;
            }
        }
        previous = Some((row.seq, row.hash.as_str(), flagged));
    }
    problems
}

/// Check a principal's or token's name: 1 to 128 characters, no control
/// characters, no surrounding whitespace.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.chars().count() > 128 {
        Some("it is longer than 128 characters".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters".to_owned())
    } else if name.trim() != name {
        Some("it starts or ends with whitespace".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::Invalid { what, message: format!("\"{}\": {message}", name.escape_debug()) }),
        None => Ok(()),
    }
}

/// Check a grant's columns against its dataset's standard: a list names at
/// least one column, each a property of the standard, each once.
pub(crate) fn check_grant_columns(grant: &Grant, standard: &Standard) -> Result<()> {
    let Some(columns) = &grant.columns else {
        return Ok(());
    };
    if columns.is_empty() {
        return Err(Error::Invalid {
            what: "grant",
            message: "an empty column list grants nothing; omit it to grant every column".into(),
        });
    }
    let mut seen = BTreeSet::new();
    for column in columns {
        if standard.property(column).is_none() {
            return Err(Error::Invalid {
                what: "grant",
                message: format!(
                    "{} has no column \"{}\" (standard {} {})",
                    grant.dataset,
                    column.escape_debug(),
                    standard.id,
                    standard.version
                ),
            });
        }
        if !seen.insert(column) {
            return Err(Error::Invalid { what: "grant", message: format!("column {column} is listed twice") });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DatasetSpec, UpdateCycle};
    use chrono::TimeZone;
    use civlink_standards::standard::Sensitivity;

    const STANDARD: &str = r#"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "x-civlink-id": "gongan.population",
      "x-civlink-version": "1.0.0",
      "x-civlink-division-column": "division_code",
      "title": "人口",
      "type": "object",
      "required": ["id_number"],
      "properties": {
        "division_code": {"type": "string", "title": "区划代码", "format": "division-code"},
        "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive",
                 "x-civlink-mask": {"strategy": "name"}},
        "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
                      "x-civlink-sensitivity": "sensitive",
                      "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
        "amount": {"type": "number", "title": "金额"}
      }
    }"#;

    /// The same columns without a division column anywhere.
    const UNSCOPED_STANDARD: &str = r#"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "x-civlink-id": "gongan.population",
      "x-civlink-version": "1.0.0",
      "title": "人口",
      "type": "object",
      "properties": {
        "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "secret"},
        "amount": {"type": "number", "title": "金额"}
      }
    }"#;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn standard() -> Standard {
        Standard::from_json_str(STANDARD).unwrap()
    }

    fn dataset_id() -> DatasetId {
        "gongan.population".parse().unwrap()
    }

    fn dataset(sharing: SharingType, division_column: Option<&str>) -> DatasetRecord {
        DatasetRecord {
            spec: DatasetSpec {
                id: dataset_id(),
                title: "人口".into(),
                owner: "户籍处".into(),
                description: String::new(),
                standard_id: "gongan.population".into(),
                standard_version: "1.0.0".into(),
                classification: Sensitivity::Sensitive,
                sharing,
                update_cycle: UpdateCycle::Daily,
                division_column: division_column.map(Into::into),
                primary_key: vec!["id_number".into()],
            },
            table_uri: "file:///t".into(),
            quarantine_uri: "file:///q".into(),
            current_version: Some(1),
            quarantine_version: Some(1),
            created_at: now(),
            updated_at: None,
        }
    }

    fn principal(name: &str, department: Option<Department>, role: Role, division: &str) -> Principal {
        Principal { name: name.into(), department, role, division: DivisionCode::parse(division).unwrap() }
    }

    /// A: a county analyst of another department; O: a city analyst of the
    /// owning department; S: a province service account of another department;
    /// T: a township standards admin of no department; M: an admin.
    fn principals() -> Vec<(&'static str, Principal)> {
        vec![
            ("A", principal("a", Some(Department::Minzheng), Role::Analyst, "630102000000")),
            ("O", principal("o", Some(Department::Gongan), Role::Analyst, "630100000000")),
            ("S", principal("s", Some(Department::Renshe), Role::DepartmentService, "630000000000")),
            ("T", principal("t", None, Role::StandardsAdmin, "630102001000")),
            ("M", principal("m", None, Role::Admin, "630105000000")),
        ]
    }

    fn grant(subject: GrantSubject, columns: Option<&[&str]>, unmasked: bool, expires: Option<i64>) -> Grant {
        Grant {
            id: "g".into(),
            subject,
            dataset: dataset_id(),
            columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            unmasked,
            purpose: Some("低保资格核查".into()),
            expires_at: expires.map(|hours| now() + chrono::Duration::hours(hours)),
        }
    }

    /// The grant cases: none; P a live, masked grant of three columns to the
    /// principal; D a live, masked grant of every column to its department;
    /// X an expired unmasked grant to the principal; U a live unmasked grant
    /// of every column to the principal.
    fn grants_for(case: &str, p: &Principal) -> Vec<Grant> {
        let me = GrantSubject::Principal(p.name.clone());
        match case {
            "-" => vec![],
            "P" => vec![grant(me, Some(&["division_code", "name", "amount"]), false, Some(24))],
            // A principal without a department gets a grant for another department: it must not apply.
            "D" => {
                vec![grant(GrantSubject::Department(p.department.unwrap_or(Department::Weijian)), None, false, None)]
            }
            "X" => vec![grant(me, None, true, Some(-1))],
            "U" => vec![grant(me, None, true, None)],
            other => panic!("unknown case {other}"),
        }
    }

    /// Columns as `name` (clear) or `name~` (masked), space separated in the
    /// standard's property order; `-` = no access.
    /// The readable columns (`~` = masked), sorted by name so the tables below
    /// read the same whatever the standard's order; the order itself is checked
    /// by `columns_follow_the_standard_order`.
    fn render(access: &Option<Access>) -> String {
        match access {
            None => "-".into(),
            Some(a) => {
                let mut names: Vec<String> = a
                    .columns
                    .iter()
                    .map(|c| if c.mask.is_none() { c.name.clone() } else { format!("{}~", c.name) })
                    .collect();
                names.sort();
                names.join(" ")
            }
        }
    }

    #[test]
    fn columns_follow_the_standard_order() {
        let standard = standard();
        let admin = principals().into_iter().find(|(k, _)| *k == "M").unwrap().1;
        let access =
            decide(&admin, &dataset(SharingType::Unconditional, Some("division_code")), &standard, &[], now()).unwrap();
        let order: Vec<&str> = access.columns.iter().map(|c| c.name.as_str()).collect();
        let document: Vec<&str> = standard.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, document);
    }

    const MASKED: &str = "amount division_code id_number~ name~";
    const CLEAR: &str = "amount division_code id_number name";
    const P_COLS: &str = "amount division_code name~";

    #[test]
    fn decide_exhaustive_table() {
        use SharingType::*;
        // (sharing, principal, grant case, expected columns)
        #[rustfmt::skip]
        let table: &[(SharingType, &str, &str, &str)] = &[
            (Unconditional, "A", "-", MASKED), (Unconditional, "A", "P", MASKED), (Unconditional, "A", "D", MASKED),
            (Unconditional, "A", "X", MASKED), (Unconditional, "A", "U", CLEAR),
            (Unconditional, "O", "-", MASKED), (Unconditional, "O", "P", MASKED), (Unconditional, "O", "D", MASKED),
            (Unconditional, "O", "X", MASKED), (Unconditional, "O", "U", CLEAR),
            (Unconditional, "S", "-", MASKED), (Unconditional, "S", "P", MASKED), (Unconditional, "S", "D", MASKED),
            (Unconditional, "S", "X", MASKED), (Unconditional, "S", "U", CLEAR),
            (Unconditional, "T", "-", MASKED), (Unconditional, "T", "P", MASKED), (Unconditional, "T", "D", MASKED),
            (Unconditional, "T", "X", MASKED), (Unconditional, "T", "U", CLEAR),
            (Unconditional, "M", "-", MASKED), (Unconditional, "M", "P", MASKED), (Unconditional, "M", "D", MASKED),
            (Unconditional, "M", "X", MASKED), (Unconditional, "M", "U", CLEAR),

            (Conditional, "A", "-", "-"), (Conditional, "A", "P", P_COLS), (Conditional, "A", "D", MASKED),
            (Conditional, "A", "X", "-"), (Conditional, "A", "U", CLEAR),
            (Conditional, "O", "-", MASKED), (Conditional, "O", "P", MASKED), (Conditional, "O", "D", MASKED),
            (Conditional, "O", "X", MASKED), (Conditional, "O", "U", CLEAR),
            (Conditional, "S", "-", "-"), (Conditional, "S", "P", P_COLS), (Conditional, "S", "D", MASKED),
            (Conditional, "S", "X", "-"), (Conditional, "S", "U", CLEAR),
            (Conditional, "T", "-", "-"), (Conditional, "T", "P", P_COLS), (Conditional, "T", "D", "-"),
            (Conditional, "T", "X", "-"), (Conditional, "T", "U", CLEAR),
            (Conditional, "M", "-", MASKED), (Conditional, "M", "P", MASKED), (Conditional, "M", "D", MASKED),
            (Conditional, "M", "X", MASKED), (Conditional, "M", "U", CLEAR),

            (NotShared, "A", "-", "-"), (NotShared, "A", "P", "-"), (NotShared, "A", "D", "-"),
            (NotShared, "A", "X", "-"), (NotShared, "A", "U", "-"),
            (NotShared, "O", "-", MASKED), (NotShared, "O", "P", MASKED), (NotShared, "O", "D", MASKED),
            (NotShared, "O", "X", MASKED), (NotShared, "O", "U", CLEAR),
            (NotShared, "S", "-", "-"), (NotShared, "S", "P", "-"), (NotShared, "S", "D", "-"),
            (NotShared, "S", "X", "-"), (NotShared, "S", "U", "-"),
            (NotShared, "T", "-", "-"), (NotShared, "T", "P", "-"), (NotShared, "T", "D", "-"),
            (NotShared, "T", "X", "-"), (NotShared, "T", "U", "-"),
            (NotShared, "M", "-", MASKED), (NotShared, "M", "P", MASKED), (NotShared, "M", "D", MASKED),
            (NotShared, "M", "X", MASKED), (NotShared, "M", "U", CLEAR),
        ];
        assert_eq!(table.len(), 3 * 5 * 5);
        let standard = standard();
        let prefixes: HashMap<&str, Option<&str>> =
            [("A", Some("630102")), ("O", Some("6301")), ("S", Some("63")), ("T", Some("630102001")), ("M", None)]
                .into();
        let mut failures = Vec::new();
        for (sharing, who, case, expected) in table {
            let p = &principals().into_iter().find(|(k, _)| k == who).unwrap().1;
            let access = decide(p, &dataset(*sharing, Some("division_code")), &standard, &grants_for(case, p), now());
            let got = render(&access);
            if got != *expected {
                failures.push(format!("{sharing:?} {who} {case}: expected {expected}, got {got}"));
            }
            if let Some(a) = &access {
                assert_eq!(a.row_prefix.as_deref(), prefixes[who], "{sharing:?} {who} {case}");
                assert_eq!(a.division_column.as_deref(), Some("division_code"));
                assert_eq!(a.dataset, dataset_id());
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn masks_come_from_the_standard() {
        let p = &principals()[0].1;
        let access =
            decide(p, &dataset(SharingType::Unconditional, Some("division_code")), &standard(), &[], now()).unwrap();
        assert_eq!(access.column("name").unwrap().mask, MaskStrategy::Name);
        assert_eq!(access.column("id_number").unwrap().mask, MaskStrategy::KeepEnds { first: 6, last: 4 });
        assert_eq!(access.column("amount").unwrap().mask, MaskStrategy::None);
        // A secret column without an explicit mask is fully starred.
        let unscoped = Standard::from_json_str(UNSCOPED_STANDARD).unwrap();
        let province = &principals()[2].1;
        let access = decide(province, &dataset(SharingType::Unconditional, None), &unscoped, &[], now()).unwrap();
        assert_eq!(access.column("name").unwrap().mask, MaskStrategy::Full);
    }

    #[test]
    fn unmasking_is_per_covered_column_and_grants_combine() {
        let p = &principals()[0].1;
        let me = || GrantSubject::Principal(p.name.clone());
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        // Read three columns, see one of them in clear.
        let grants = [
            grant(me(), Some(&["division_code", "name", "id_number"]), false, None),
            grant(me(), Some(&["name"]), true, None),
        ];
        assert_eq!(render(&decide(p, &ds, &standard(), &grants, now())), "division_code id_number~ name");
        // An unmasked grant on an unconditional dataset unmasks only its columns.
        let ds = dataset(SharingType::Unconditional, Some("division_code"));
        let grants = [grant(me(), Some(&["id_number"]), true, None)];
        assert_eq!(render(&decide(p, &ds, &standard(), &grants, now())), "amount division_code id_number name~");
    }

    #[test]
    fn grants_for_others_or_other_datasets_or_expiring_now_do_not_apply() {
        let p = &principals()[0].1;
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        let mut other_dataset = grant(GrantSubject::Principal(p.name.clone()), None, true, None);
        other_dataset.dataset = "gongan.households".parse().unwrap();
        let other_principal = grant(GrantSubject::Principal("b".into()), None, true, None);
        let other_department = grant(GrantSubject::Department(Department::Weijian), None, true, None);
        let mut expiring_now = grant(GrantSubject::Principal(p.name.clone()), None, true, None);
        expiring_now.expires_at = Some(now());
        for g in [other_dataset, other_principal, other_department, expiring_now] {
            assert_eq!(decide(p, &ds, &standard(), std::slice::from_ref(&g), now()), None, "{g:?}");
        }
        // One nanosecond before its expiry, it applies.
        let mut live = grant(GrantSubject::Principal(p.name.clone()), None, false, None);
        live.expires_at = Some(now() + chrono::Duration::nanoseconds(1));
        assert!(decide(p, &ds, &standard(), &[live], now()).is_some());
    }

    #[test]
    fn a_grant_naming_no_readable_column_grants_nothing() {
        let p = &principals()[0].1;
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        let g = grant(GrantSubject::Principal(p.name.clone()), Some(&["no_such_column"]), false, None);
        assert_eq!(decide(p, &ds, &standard(), &[g], now()), None);
    }

    #[test]
    fn unscoped_datasets_are_for_province_level_and_admin_only() {
        let unscoped = Standard::from_json_str(UNSCOPED_STANDARD).unwrap();
        let ds = dataset(SharingType::Unconditional, None);
        for (who, p) in principals() {
            let access = decide(&p, &ds, &unscoped, &[], now());
            match who {
                "S" => {
                    assert_eq!(render(&access), "amount name~");
                    let a = access.unwrap();
                    assert_eq!((a.division_column.as_deref(), a.row_prefix.as_deref()), (None, Some("63")));
                    assert_eq!(a.row_filter(), None);
                }
                "M" => assert_eq!(access.unwrap().row_prefix, None),
                _ => assert_eq!(access, None, "{who}: {:?}", p.level()),
            }
        }
    }

    #[test]
    fn the_division_column_falls_back_to_the_standards() {
        let p = &principals()[0].1;
        let access = decide(p, &dataset(SharingType::Unconditional, None), &standard(), &[], now()).unwrap();
        assert_eq!(access.row_filter(), Some(("division_code", "630102")));
        assert!(access.admits_division(Some("630102001001")));
        assert!(!access.admits_division(Some("630103001001")));
        assert!(!access.admits_division(None));
    }

    #[test]
    fn a_standard_that_is_not_the_bound_one_fails_closed() {
        let p = &principals()[4].1;
        let mut ds = dataset(SharingType::Unconditional, Some("division_code"));
        ds.spec.standard_version = "2.0.0".into();
        assert_eq!(decide(p, &ds, &standard(), &[], now()), None);
    }

    #[test]
    fn admin_filters_nothing() {
        let m = &principals()[4].1;
        let a = decide(m, &dataset(SharingType::NotShared, Some("division_code")), &standard(), &[], now()).unwrap();
        assert_eq!(a.row_filter(), None);
        assert!(a.admits_division(None));
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.code().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::Value::from(role.code()));
        }
        assert_eq!(" Admin ".parse::<Role>().unwrap(), Role::Admin);
        for bad in ["", "root", "管理员", "admin\u{0}"] {
            assert!(matches!(bad.parse::<Role>(), Err(Error::Invalid { what: "role", .. })), "{bad}");
        }
    }

    #[test]
    fn principals_know_their_level() {
        let levels: Vec<Level> = principals().iter().map(|(_, p)| p.level()).collect();
        assert_eq!(levels, [Level::County, Level::City, Level::Province, Level::Township, Level::County]);
    }

    #[test]
    fn grant_subjects_serialise_with_their_kind() {
        let s = GrantSubject::Department(Department::Minzheng);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"kind":"department","subject":"minzheng"}"#);
        assert_eq!(s.to_string(), "department minzheng");
        assert_eq!(GrantSubject::Principal("张三".into()).subject(), "张三");
    }

    #[test]
    fn tokens_have_the_documented_shape() {
        let (id, token) = new_token();
        assert_eq!(token_id(&token), Some(id.as_str()));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN);
        let (_, other) = new_token();
        assert_ne!(token, other);
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token_hash(&other));
        let issued = IssuedToken { id: id.clone(), secret: token.clone(), expires_at: None };
        assert!(!format!("{issued:?}").contains(&token[TOKEN_PREFIX.len() + TOKEN_ID_LEN + 1..]));
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        let good = format!("clk_{}_{}", "0123456789abcdef", "a".repeat(64));
        assert_eq!(token_id(&good), Some("0123456789abcdef"));
        let bad = [
            String::new(),
            "clk_".into(),
            "Bearer clk_x".into(),
            good.to_uppercase(),
            format!("clk_{}_{}", "0123456789abcde", "a".repeat(64)),
            format!("clk_{}_{}", "0123456789abcdef", "a".repeat(63)),
            format!("clk_{}_{}", "0123456789abcdeg", "a".repeat(64)),
            format!("clk_{}_{}_", "0123456789abcdef", "a".repeat(64)),
            format!("clk_{}_{}", "0123456789abcdef", "ａ".repeat(64)),
            format!("{good}\n"),
            "clk_😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀_".into(),
        ];
        for token in bad {
            assert_eq!(token_id(&token), None, "{token:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("principal", "张三").is_ok());
        assert!(check_name("principal", "svc-gongan.ingest@63").is_ok());
        for bad in ["", " a", "a ", "a\nb", "\u{7}", &"x".repeat(129)] {
            assert!(matches!(check_name("principal", bad), Err(Error::Invalid { what: "principal", .. })), "{bad:?}");
        }
    }

    #[test]
    fn grant_columns_are_checked_against_the_standard() {
        let s = standard();
        let g = |cols: Option<&[&str]>| grant(GrantSubject::Department(Department::Minzheng), cols, false, None);
        assert!(check_grant_columns(&g(None), &s).is_ok());
        assert!(check_grant_columns(&g(Some(&["name", "amount"])), &s).is_ok());
        for bad in [&[][..], &["nope"][..], &["name", "name"][..]] {
            assert!(matches!(check_grant_columns(&g(Some(bad)), &s), Err(Error::Invalid { .. })), "{bad:?}");
        }
    }

    /// A chain of `n` valid rows.
    fn chain(n: i64) -> Vec<Result<ChainRow, (String, String)>> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let datasets = vec!["gongan.population".to_owned()];
                let content = ChainContent {
                    seq,
                    at: "2026-03-01T00:00:00.000000000Z",
                    principal: "a",
                    purpose: None,
                    action: "query",
                    sql_text: Some("SELECT 1"),
                    datasets: &datasets,
                    rows: Some(seq),
                    duration_ms: None,
                    outcome: "ok",
                };
                let hash = chain_hash(&prev, &content);
                let row = ChainRow { seq, prev_hash: prev.clone(), hash: hash.clone(), content: Ok(true) };
                prev = hash;
                Ok(row)
            })
            .collect()
    }

    fn kinds(problems: &[AuditProblem]) -> Vec<(i64, AuditProblemKind)> {
        problems.iter().map(|p| (p.seq, p.kind)).collect()
    }

    fn row(rows: &mut [Result<ChainRow, (String, String)>], seq: i64) -> &mut ChainRow {
        rows.iter_mut().flatten().find(|r| r.seq == seq).unwrap()
    }

    #[test]
    fn chain_check_classifies_tampering() {
        use AuditProblemKind::*;
        assert!(check_chain(&chain(5)).is_empty());
        assert!(check_chain(&[]).is_empty());

        let mut edited = chain(5);
        row(&mut edited, 3).content = Ok(false);
        assert_eq!(kinds(&check_chain(&edited)), [(3, Edited)]);

        let mut rehashed = chain(5);
        row(&mut rehashed, 3).hash = "f".repeat(64);
        assert_eq!(kinds(&check_chain(&rehashed)), [(3, Edited)]);

        let mut deleted = chain(6);
        deleted.remove(2).unwrap();
        assert_eq!(kinds(&check_chain(&deleted)), [(3, Deleted)]);
        deleted.remove(2).unwrap();
        deleted.remove(0).unwrap();
        let problems = check_chain(&deleted);
        assert_eq!(kinds(&problems), [(1, Deleted), (3, Deleted)]);
        assert_eq!(problems[1].detail, "entries 3 to 4 are missing");

        let mut forged = chain(5);
        let r = row(&mut forged, 3);
        (r.prev_hash, r.hash, r.content) = ("x".into(), "y".into(), Ok(false));
        assert_eq!(kinds(&check_chain(&forged)), [(3, Inserted)]);
        // Chaining from itself is not chaining from elsewhere.
        let r = row(&mut forged, 3);
        (r.prev_hash, r.hash) = ("x".into(), "x".into());
        assert_eq!(kinds(&check_chain(&forged)), [(3, Inserted)]);

        let mut appended = chain(5);
        appended.push(Ok(ChainRow { seq: 6, prev_hash: "x".into(), hash: "y".into(), content: Ok(false) }));
        assert_eq!(kinds(&check_chain(&appended)), [(6, Inserted)]);

        let mut first = chain(2);
        row(&mut first, 1).prev_hash = "x".into();
        assert_eq!(kinds(&check_chain(&first)), [(1, Inserted)]);

        // Rows 3 and 4 swapped (their seq is hashed, so neither matches its hash any more).
        let mut swapped = chain(5);
        swapped.swap(2, 3);
        for (index, seq) in [(2, 3), (3, 4)] {
            let r = swapped[index].as_mut().unwrap();
            (r.seq, r.content) = (seq, Ok(false));
        }
        assert_eq!(kinds(&check_chain(&swapped)), [(3, Reordered), (4, Reordered)]);

        let mut undecodable = chain(4);
        row(&mut undecodable, 2).content = Err("rows is not an integer".into());
        assert_eq!(kinds(&check_chain(&undecodable)), [(2, Edited)]);

        let mut fractional = chain(4);
        fractional.insert(2, Err(("2.5".into(), "not an integer".into())));
        assert_eq!(kinds(&check_chain(&fractional)), [(2, Inserted)]);
    }
}
