//! The audit trail every governed request leaves, written through one
//! [`Auditor`] per process.
//!
//! * **Fail closed.** [`Auditor::append`] returns only once the entry is
//!   durable; a query's entry is appended before its first batch leaves
//!   ([`crate::run`]), and when the log cannot be written the request is
//!   refused ([`Error::AuditUnavailable`]) and the refusal counted
//!   ([`Auditor::failures`]) and logged.
//! * **Grouped.** Entries that arrive together are committed together, in
//!   the order they arrived, by one writer task: one transaction (and one
//!   lock of the chain) for many requests instead of one each.
//! * **Failed authentications** are recorded under
//!   [`UNAUTHENTICATED`], never under the name they claimed, and cannot
//!   flood the log or delay real entries: the first failure of a kind in a
//!   window is written at once, the rest of that window are counted and
//!   written as one [`AuditAction::AuthFailures`] entry when it closes.
//! * **Checkpoints.** [`Auditor::checkpoint_to`] writes the chain head
//!   (`SEQ:HASH`) to a file outside the database, periodically; `civlink audit
//!   verify --expect-head` then detects a cut tail or a rewritten chain.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, OutcomeKind, UNAUTHENTICATED, capped_text};
use civlink_catalog::store::MetadataStore;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Entries committed in one transaction at most.
const MAX_GROUP: usize = 512;
/// Entries waiting for the writer at most; more wait for room.
const QUEUE: usize = 8192;
/// How long failed authentications of one kind are counted before their
/// count is written.
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// The longest claimed user name kept from a failed authentication.
const MAX_CLAIMED_CHARS: usize = 64;

/// An entry waiting to be written, and who waits for it.
struct Pending {
    entry: AuditEntry,
    done: oneshot::Sender<std::result::Result<i64, String>>,
}

/// Failed authentications of one kind in the current window.
struct Window {
    opened: Instant,
    /// Failures after the first (which was written at once).
    more: u64,
    purpose: Option<String>,
}

/// The process's audit writer (see the module docs). Cheap to share (`Arc`).
pub struct Auditor {
    store: MetadataStore,
    queue: mpsc::Sender<Pending>,
    failures: AtomicU64,
    windows: Mutex<HashMap<(AuditAction, String), Window>>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").field("failures", &self.failures.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `store`, with its writer task (and the flusher
    /// of failed-authentication counts) on the current tokio runtime.
    pub fn start(store: MetadataStore) -> Arc<Auditor> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let auditor =
            Arc::new(Auditor { store: store.clone(), queue, failures: AtomicU64::new(0), windows: Mutex::default() });
        tokio::spawn(write_groups(store, receiver));
        tokio::spawn(flush_windows(Arc::downgrade(&auditor)));
        auditor
    }

    /// Requests refused because the audit log could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Append `entry`; returns its `seq` once it is durable. A failure is
    /// [`Error::AuditUnavailable`]: the caller must refuse what it audits.
    pub async fn append(&self, mut entry: AuditEntry) -> Result<i64> {
        if let Some(text) = &entry.sql_text {
            entry.sql_text = Some(capped_text(text));
        }
        let (done, written) = oneshot::channel();
        let outcome = match self.queue.send(Pending { entry, done }).await {
            Ok(()) => written.await.unwrap_or_else(|_| Err("the audit writer stopped".to_owned())),
            Err(_) => Err("the audit writer stopped".to_owned()),
        };
        outcome.map_err(|detail| {
            let refused = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(error = %detail, refused, "cannot write the audit log: refusing the request");
            Error::AuditUnavailable { detail }
        })
    }

    /// Append `entry` where nothing waits on it (a stream the client
    /// dropped): written in order with the others, a failure only logged
    /// and counted.
    pub fn append_detached(self: &Arc<Self>, entry: AuditEntry) {
        let auditor = Arc::clone(self);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = auditor.append(entry).await;
                });
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(action = %entry.action, "no runtime to write an audit entry on");
            }
        }
    }

    /// Record a failed authentication of `action` (see the module docs). The
    /// name the request claimed is kept only as a claim, cut and escaped.
    pub async fn auth_failure(
        &self,
        action: AuditAction,
        error: &Error,
        claimed: Option<&str>,
        purpose: Option<String>,
    ) {
        let outcome = error.outcome();
        let key = (action, outcome.to_string());
        let first = {
            let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
            match windows.get_mut(&key) {
                Some(window) if window.opened.elapsed() < AUTH_FAILURE_WINDOW => {
                    window.more += 1;
                    false
                }
                _ => {
                    windows.insert(key, Window { opened: Instant::now(), more: 0, purpose: purpose.clone() });
                    true
                }
            }
        };
        if !first {
            return;
        }
        let mut entry = AuditEntry::new(UNAUTHENTICATED, action, outcome);
        entry.purpose = purpose;
        if let Some(claimed) = claimed.filter(|c| !c.is_empty()) {
            let claimed: String = claimed.chars().take(MAX_CLAIMED_CHARS).collect();
            entry.sql_text = Some(format!("claimed user \"{}\"", claimed.escape_debug()));
        }
        // Not fail closed: the request is refused anyway.
        let _ = self.append(entry).await;
    }

    /// Write the counts of windows that have closed (all of them with `all`).
    async fn flush(&self, all: bool) {
        let closed: Vec<((AuditAction, String), Window)> = {
            let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
            let keys: Vec<_> = windows
                .iter()
                .filter(|(_, w)| all || w.opened.elapsed() >= AUTH_FAILURE_WINDOW)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter().filter_map(|k| windows.remove_entry(&k)).collect()
        };
        for ((action, outcome), window) in closed {
            if window.more == 0 {
                continue;
            }
            let kind = outcome.parse::<AuditOutcome>().map_or(OutcomeKind::Unauthenticated, |o| o.kind);
            let mut entry = AuditEntry::new(
                UNAUTHENTICATED,
                AuditAction::AuthFailures,
                AuditOutcome::new(
                    kind,
                    format!(
                        "{} more failed {action} authentications ({outcome}) within {} s",
                        window.more,
                        AUTH_FAILURE_WINDOW.as_secs()
                    ),
                ),
            );
            entry.rows = Some(window.more);
            entry.purpose = window.purpose;
            let _ = self.append(entry).await;
        }
    }

    /// Write the counts of failed authentications still being counted (at shutdown).
    pub async fn flush_all(&self) {
        self.flush(true).await;
    }

    /// Write the chain head to `path` every `every`, replacing the file
    /// atomically (write, then rename), until the auditor is dropped.
    pub fn checkpoint_to(self: &Arc<Self>, path: PathBuf, every: Duration) {
        let auditor = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(auditor) = auditor.upgrade() else { return };
                if let Err(e) = auditor.write_checkpoint(&path).await {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the audit checkpoint");
                }
            }
        });
    }

    /// Write the chain head to `path` now.
    pub async fn write_checkpoint(&self, path: &std::path::Path) -> std::result::Result<(), String> {
        let head = self.store.audit_head().await.map_err(|e| e.to_string())?;
        let Some(head) = head else { return Ok(()) };
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, format!("{head}\n")).await.map_err(|e| e.to_string())?;
        tokio::fs::rename(&partial, path).await.map_err(|e| e.to_string())
    }
}

/// The writer task: takes what has queued up (in order), commits it in one
/// transaction, and answers every waiter.
async fn write_groups(store: MetadataStore, mut queue: mpsc::Receiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let entries: Vec<AuditEntry> = group.iter().map(|p| p.entry.clone()).collect();
        match store.append_audit_batch(&entries).await {
            Ok(seqs) => {
                for (pending, seq) in group.into_iter().zip(seqs) {
                    let _ = pending.done.send(Ok(seq));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for pending in group {
                    let _ = pending.done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Writes closed windows' counts, until the auditor is dropped.
async fn flush_windows(auditor: Weak<Auditor>) {
    let mut ticks = tokio::time::interval(AUTH_FAILURE_WINDOW / 2);
    loop {
        ticks.tick().await;
        let Some(auditor) = auditor.upgrade() else { return };
        auditor.flush(false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("catalog.db").display());
        let store = MetadataStore::connect(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn entries_arriving_together_are_written_in_order_and_chain() {
        let (_dir, store) = store().await;
        let auditor = Auditor::start(store.clone());
        let appends = (0..50).map(|i| {
            let auditor = Arc::clone(&auditor);
            async move {
                let entry = AuditEntry::new(format!("p{i}"), AuditAction::Query, AuditOutcome::OK);
                auditor.append(entry).await.unwrap()
            }
        });
        let mut seqs = futures::future::join_all(appends).await;
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
        let report = store.verify_audit().await.unwrap();
        assert!(report.intact(), "{:?}", report.problems);
        assert_eq!(report.entries, 50);
    }

    #[tokio::test]
    async fn long_sql_text_is_capped() {
        let (_dir, store) = store().await;
        let auditor = Auditor::start(store.clone());
        let mut entry = AuditEntry::new("p", AuditAction::Query, AuditOutcome::OK);
        entry.sql_text = Some("x".repeat(1 << 20));
        auditor.append(entry).await.unwrap();
        let stored = store.audit_entries(None).await.unwrap().remove(0);
        let text = stored.entry.sql_text.unwrap();
        assert!(text.len() < 9 << 10, "{}", text.len());
        assert!(text.contains("1048576 bytes in all"));
    }

    #[tokio::test]
    async fn a_flood_of_failed_authentications_is_counted_not_written() {
        let (_dir, store) = store().await;
        let auditor = Auditor::start(store.clone());
        for i in 0..1000 {
            let claimed = format!("mallory{i}");
            auditor.auth_failure(AuditAction::Handshake, &Error::InvalidToken, Some(&claimed), None).await;
        }
        // A real entry is not held up behind them.
        let real = AuditEntry::new("county", AuditAction::Query, AuditOutcome::OK);
        auditor.append(real).await.unwrap();
        auditor.flush_all().await;
        let entries = store.audit_entries(None).await.unwrap();
        assert_eq!(entries.len(), 3, "{entries:?}");
        let first = &entries[0].entry;
        assert_eq!(first.principal, UNAUTHENTICATED);
        assert_eq!(first.outcome.kind, OutcomeKind::Unauthenticated);
        assert_eq!(first.sql_text.as_deref(), Some("claimed user \"mallory0\""));
        let counted = &entries[2].entry;
        assert_eq!(counted.action, AuditAction::AuthFailures);
        assert_eq!(counted.rows, Some(999));
        assert!(entries.iter().all(|e| e.entry.principal != "mallory1"));
    }

    #[tokio::test]
    async fn an_unwritable_log_refuses_and_counts() {
        let (_dir, store) = store().await;
        let auditor = Auditor::start(store.clone());
        store.close().await;
        let entry = AuditEntry::new("p", AuditAction::Query, AuditOutcome::OK);
        assert!(matches!(auditor.append(entry).await, Err(Error::AuditUnavailable { .. })));
        assert_eq!(auditor.failures(), 1);
    }

    #[tokio::test]
    async fn checkpoints_hold_the_head() {
        let (dir, store) = store().await;
        let auditor = Auditor::start(store.clone());
        for _ in 0..3 {
            auditor.append(AuditEntry::new("p", AuditAction::Query, AuditOutcome::OK)).await.unwrap();
        }
        let path = dir.path().join("audit.head");
        auditor.write_checkpoint(&path).await.unwrap();
        let written: civlink_catalog::policy::AuditHead = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        assert_eq!(written, store.audit_head().await.unwrap().unwrap());
        assert_eq!(written.seq, 3);
    }
}
