//! The tamper-evident audit log: entries, their hash chain, and the check
//! that names every edited, inserted, deleted or reordered entry.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an audit entry records. Stored as its [`AuditAction::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
    /// A Flight SQL client authenticated (or failed to).
    Handshake,
    /// A query ran, or was refused (Flight SQL statements and the REST SQL endpoint).
    Query,
    /// A statement was prepared.
    Prepare,
    /// A metadata call (catalogs, schemas, tables, SQL info, …).
    Metadata,
    /// A request to cancel a running query.
    Cancel,
    /// Failed authentications, aggregated: the entry's `rows` counts them.
    AuthFailures,
    /// A token was issued.
    TokenCreate,
    /// A token was revoked.
    TokenRevoke,
    /// A grant was made.
    Grant,
    /// A grant was revoked.
    GrantRevoke,
    /// A standard version was published.
    StandardPublish,
    /// `GET /api/v1/datasets`.
    RestList,
    /// `GET /api/v1/datasets/{department}/{name}`.
    RestDescribe,
    /// `GET /api/v1/datasets/{department}/{name}/rows`.
    RestRows,
    /// `POST /api/v1/query`: SQL over REST.
    RestQuery,
    /// `GET /api/v1/jobs…`: ingestion jobs and their runs.
    RestJobs,
    /// `GET /api/v1/datasets/{department}/{name}/quarantine`.
    RestQuarantine,
    /// `POST /api/v1/jobs/{name}/runs`: a run started by hand.
    JobTrigger,
    /// `POST /api/v1/standards`.
    RestPublishStandard,
    /// `GET /api/v1/standards/…`.
    RestReadStandard,
    /// A REST request refused before its handler (an unauthenticated body).
    RestRequest,
    /// A run a delivery gate held was accepted (`civlink ingest --accept`), with a reason.
    IngestAccept,
    /// A run committed although a delivery gate would have held it (`civlink ingest --force`), with a reason.
    IngestForce,
    /// A verification rule ran and its findings were recorded.
    RuleRun,
    /// Findings were read (list, show, summary; CLI or REST).
    FindingRead,
    /// An officer recorded an outcome on a finding.
    FindingDecide,
    /// A household economic-status check (核对) ran, or was refused, with
    /// its consent reference and purpose.
    HouseholdCheck,
    /// Tokens were listed (`GET /api/v1/admin/tokens`).
    TokenList,
    /// Grants were listed (`GET /api/v1/admin/grants`, `civlink grant list`).
    GrantList,
    /// Audit entries were read (`GET /api/v1/admin/audit`).
    AuditRead,
    /// The audit chain was verified (`GET /api/v1/admin/audit/verify`).
    AuditVerify,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 31] = [
        AuditAction::Handshake,
        AuditAction::Query,
        AuditAction::Prepare,
        AuditAction::Metadata,
        AuditAction::Cancel,
        AuditAction::AuthFailures,
        AuditAction::TokenCreate,
        AuditAction::TokenRevoke,
        AuditAction::Grant,
        AuditAction::GrantRevoke,
        AuditAction::StandardPublish,
        AuditAction::RestList,
        AuditAction::RestDescribe,
        AuditAction::RestRows,
        AuditAction::RestQuery,
        AuditAction::RestJobs,
        AuditAction::RestQuarantine,
        AuditAction::JobTrigger,
        AuditAction::RestPublishStandard,
        AuditAction::RestReadStandard,
        AuditAction::RestRequest,
        AuditAction::IngestAccept,
        AuditAction::IngestForce,
        AuditAction::RuleRun,
        AuditAction::FindingRead,
        AuditAction::FindingDecide,
        AuditAction::HouseholdCheck,
        AuditAction::TokenList,
        AuditAction::GrantList,
        AuditAction::AuditRead,
        AuditAction::AuditVerify,
    ];

    /// The stable code, as stored and hashed.
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::Handshake => "handshake",
            AuditAction::Query => "query",
            AuditAction::Prepare => "prepare",
            AuditAction::Metadata => "metadata",
            AuditAction::Cancel => "cancel",
            AuditAction::AuthFailures => "auth_failures",
            AuditAction::TokenCreate => "token_create",
            AuditAction::TokenRevoke => "token_revoke",
            AuditAction::Grant => "grant",
            AuditAction::GrantRevoke => "grant_revoke",
            AuditAction::StandardPublish => "standard_publish",
            AuditAction::RestList => "rest_list",
            AuditAction::RestDescribe => "rest_describe",
            AuditAction::RestRows => "rest_rows",
            AuditAction::RestQuery => "rest_query",
            AuditAction::RestJobs => "rest_jobs",
            AuditAction::RestQuarantine => "rest_quarantine",
            AuditAction::JobTrigger => "job_trigger",
            AuditAction::RestPublishStandard => "rest_publish_standard",
            AuditAction::RestReadStandard => "rest_read_standard",
            AuditAction::RestRequest => "rest_request",
            AuditAction::IngestAccept => "ingest_accept",
            AuditAction::IngestForce => "ingest_force",
            AuditAction::RuleRun => "rule_run",
            AuditAction::FindingRead => "finding_read",
            AuditAction::FindingDecide => "finding_decide",
            AuditAction::HouseholdCheck => "household_check",
            AuditAction::TokenList => "token_list",
            AuditAction::GrantList => "grant_list",
            AuditAction::AuditRead => "audit_read",
            AuditAction::AuditVerify => "audit_verify",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for AuditAction {
    type Err = String;
    fn from_str(code: &str) -> Result<Self, String> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.code() == code)
            .ok_or_else(|| format!("unknown audit action \"{code}\""))
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// How an audited request ended, in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// It succeeded.
    Ok,
    /// The query was admitted and its results are about to be sent: the
    /// entry written before the first row leaves (its end is a second entry).
    Started,
    /// The credentials were missing, malformed, invalid, expired or revoked.
    Unauthenticated,
    /// The principal may not do this.
    Denied,
    /// The request was wrong (SQL that does not plan, a bad parameter, …).
    Error,
    /// A limit stopped it (concurrency, memory, time).
    Limit,
    /// It was cancelled, by the principal or by the client going away.
    Cancelled,
    /// civlink failed; the detail is in the server log under a reference.
    Internal,
}

impl OutcomeKind {
    /// Every kind.
    pub const ALL: [OutcomeKind; 8] = [
        OutcomeKind::Ok,
        OutcomeKind::Started,
        OutcomeKind::Unauthenticated,
        OutcomeKind::Denied,
        OutcomeKind::Error,
        OutcomeKind::Limit,
        OutcomeKind::Cancelled,
        OutcomeKind::Internal,
    ];

    /// The stable code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            OutcomeKind::Ok => "ok",
            OutcomeKind::Started => "started",
            OutcomeKind::Unauthenticated => "unauthenticated",
            OutcomeKind::Denied => "denied",
            OutcomeKind::Error => "error",
            OutcomeKind::Limit => "limit",
            OutcomeKind::Cancelled => "cancelled",
            OutcomeKind::Internal => "internal",
        }
    }
}

/// An audited outcome: its kind and, for failures, a short description
/// without internals. Stored as `kind` or `kind: detail`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditOutcome {
    /// What kind of ending.
    pub kind: OutcomeKind,
    /// What happened, for people reading the log.
    pub detail: Option<String>,
}

impl AuditOutcome {
    /// Success.
    pub const OK: AuditOutcome = AuditOutcome { kind: OutcomeKind::Ok, detail: None };
    /// Admitted, results about to be sent.
    pub const STARTED: AuditOutcome = AuditOutcome { kind: OutcomeKind::Started, detail: None };

    /// An outcome of `kind` with a description.
    pub fn new(kind: OutcomeKind, detail: impl Into<String>) -> AuditOutcome {
        AuditOutcome { kind, detail: Some(detail.into()) }
    }

    /// Whether it is a success.
    pub fn is_ok(&self) -> bool {
        self.kind == OutcomeKind::Ok
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            None => f.write_str(self.kind.code()),
            Some(detail) => write!(f, "{}: {detail}", self.kind.code()),
        }
    }
}

impl std::str::FromStr for AuditOutcome {
    type Err = String;
    /// The inverse of `Display`: `kind` or `kind: detail`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (code, detail) = match text.split_once(": ") {
            Some((code, detail)) => (code, Some(detail.to_owned())),
            None => (text, None),
        };
        let kind = OutcomeKind::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .ok_or_else(|| format!("unknown audit outcome \"{code}\""))?;
        Ok(AuditOutcome { kind, detail })
    }
}

impl Serialize for AuditOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AuditOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The hash the first audit entry chains from: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest SQL (or request) text an entry keeps, in bytes; longer text
/// is cut at a character boundary and marked with its full length and
/// SHA-256, so the entry still identifies what ran without letting one
/// request write megabytes into the log.
pub const MAX_AUDIT_TEXT_BYTES: usize = 8 << 10;

/// `text` as an audit entry keeps it (see [`MAX_AUDIT_TEXT_BYTES`]).
pub fn capped_text(text: &str) -> String {
    if text.len() <= MAX_AUDIT_TEXT_BYTES {
        return text.to_owned();
    }
    let mut cut = MAX_AUDIT_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{}… [cut: {} bytes in all, sha256 {digest}]", &text[..cut], text.len())
}

/// One audit event, as the caller records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who: the authenticated principal; `(unauthenticated)` for requests
    /// that did not authenticate (a name they claimed is never trusted).
    pub principal: String,
    /// The purpose the client stated.
    pub purpose: Option<String>,
    /// What.
    pub action: AuditAction,
    /// The SQL text (queries) or the request (REST), capped ([`capped_text`]).
    pub sql_text: Option<String>,
    /// The datasets touched.
    pub datasets: Vec<String>,
    /// Rows returned (for [`AuditAction::AuthFailures`]: failures counted).
    pub rows: Option<u64>,
    /// How long it took.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub outcome: AuditOutcome,
}

/// The principal recorded for requests that did not authenticate.
pub const UNAUTHENTICATED: &str = "(unauthenticated)";

impl AuditEntry {
    /// An entry at the current time, with no purpose, SQL, datasets or counts.
    pub fn new(principal: impl Into<String>, action: AuditAction, outcome: AuditOutcome) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            principal: principal.into(),
            purpose: None,
            action,
            sql_text: None,
            datasets: Vec::new(),
            rows: None,
            duration_ms: None,
            outcome,
        }
    }

    /// Set the SQL or request text, capped.
    pub fn with_text(mut self, text: &str) -> AuditEntry {
        self.sql_text = Some(capped_text(text));
        self
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
    /// The log ends before a head recorded outside the database.
    Truncated,
    /// An entry's hash is not the one recorded outside the database.
    Rewritten,
}

impl AuditProblemKind {
    /// Lower-case name, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditProblemKind::Edited => "edited",
            AuditProblemKind::Inserted => "inserted",
            AuditProblemKind::Deleted => "deleted",
            AuditProblemKind::Reordered => "reordered",
            AuditProblemKind::Truncated => "truncated",
            AuditProblemKind::Rewritten => "rewritten",
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
/// tail shows only against it. Written and read as `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

impl fmt::Display for AuditHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for AuditHead {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (seq, hash) = text.split_once(':').ok_or_else(|| format!("\"{text}\" is not SEQ:HASH"))?;
        let seq: i64 =
            seq.parse().ok().filter(|s| *s >= 1).ok_or_else(|| format!("\"{seq}\" is not an entry number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("\"{hash}\" is not a SHA-256 hash (64 lower-case hex digits)"));
        }
        Ok(AuditHead { seq, hash: hash.to_owned() })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
