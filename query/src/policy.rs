//! The process's view of the policy: the current [`PolicySnapshot`],
//! replaced when the catalog's change counter moves.
//!
//! [`PolicyCache::current`] reads the counter (one primary-key read) for
//! every call and reloads the snapshot when it moved, so a token revoked or
//! a grant withdrawn, by this process or by another sharing the catalog,
//! applies to the next request after its commit.
//!
//! **Shared reads.** Requests that arrive together share one read of the
//! counter: a request waits for the first read that *begins after it
//! arrived* ([`CounterReads`]), which is as fresh as a read of its own, so
//! nothing committed before the request arrived can be missed. Under load
//! that is one catalog round trip for many requests instead of one each.
//! Likewise concurrent requests that find the counter moved wait for one
//! reload, not one each.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use civlink_catalog::store::{MetadataStore, PolicySnapshot};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The current policy snapshot and how to refresh it.
#[derive(Debug)]
pub struct PolicyCache {
    store: MetadataStore,
    current: RwLock<Arc<PolicySnapshot>>,
    /// Held while reloading, so that one reload serves every waiting request.
    reloading: tokio::sync::Mutex<()>,
    counter: Arc<CounterReads>,
}

impl PolicyCache {
    /// Load the first snapshot.
    pub async fn load(store: MetadataStore) -> Result<PolicyCache> {
        let snapshot = store.policy_snapshot(None).await.map_err(Error::from_policy)?;
        Ok(PolicyCache {
            counter: Arc::new(CounterReads::new(store.clone())),
            store,
            current: RwLock::new(Arc::new(snapshot)),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The snapshot as of the catalog's state now.
    pub async fn current(&self) -> Result<Arc<PolicySnapshot>> {
        let epoch = CounterReads::fresh(&self.counter).await?;
        let held = self.held();
        // `>=`: a reload that raced ahead of this read is newer still.
        if held.epoch() >= epoch {
            return Ok(held);
        }
        let _reloading = self.reloading.lock().await;
        let held = self.held();
        if held.epoch() >= epoch {
            return Ok(held);
        }
        let fresh = Arc::new(self.store.policy_snapshot(Some(&held)).await.map_err(Error::from_policy)?);
        tracing::debug!(from = held.epoch(), to = fresh.epoch(), "policy snapshot reloaded");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// The snapshot held now, without looking at the catalog.
    pub fn held(&self) -> Arc<PolicySnapshot> {
        // A poisoned lock held a whole `Arc` all along: keep using it.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Reads of the catalog's change counter, shared by the requests waiting
/// for them (see the module docs).
///
/// Reads are numbered. A request takes the number of the next read to begin
/// and waits until that read has finished; one reader task begins read
/// after read while anybody waits. The number is taken and advanced under
/// one lock, so a request that holds number `n` arrived before read `n`
/// began.
#[derive(Debug)]
struct CounterReads {
    store: MetadataStore,
    state: Mutex<ReadState>,
    /// The last finished read: its number and what it found.
    finished: watch::Sender<(u64, std::result::Result<i64, String>)>,
}

#[derive(Debug)]
struct ReadState {
    /// The number the next read to begin will have.
    next: u64,
    /// The highest number a request waits for.
    wanted: u64,
    /// Whether the reader task runs.
    reading: bool,
}

impl CounterReads {
    fn new(store: MetadataStore) -> CounterReads {
        CounterReads {
            store,
            state: Mutex::new(ReadState { next: 1, wanted: 0, reading: false }),
            finished: watch::Sender::new((0, Ok(0))),
        }
    }

    /// The counter, read by a read that began after this call.
    async fn fresh(reads: &Arc<CounterReads>) -> Result<i64> {
        let mut finished = reads.finished.subscribe();
        let mine = {
            let mut state = reads.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mine = state.next;
            state.wanted = state.wanted.max(mine);
            if !state.reading {
                state.reading = true;
                tokio::spawn(CounterReads::reader(Arc::clone(reads)));
            }
            mine
        };
        let outcome = finished
            .wait_for(|(number, _)| *number >= mine)
            .await
            .map_err(|_| Error::Store { message: "the catalog counter's reader stopped".to_owned() })?;
        outcome.1.clone().map_err(|message| Error::Store { message })
    }

    /// Begin read after read while a request waits for one.
    async fn reader(reads: Arc<CounterReads>) {
        loop {
            let number = {
                let mut state = reads.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.wanted < state.next {
                    state.reading = false;
                    return;
                }
                state.next += 1;
                state.next - 1
            };
            let read = reads.store.catalog_epoch().await.map_err(|e| match Error::from_policy(e) {
                Error::Store { message } => message,
                other => other.to_string(),
            });
            // The previous read is not needed any more: every waiter is woken with this one.
            let _previous = reads.finished.send_replace((number, read));
        }
    }
}
