//! The process's view of the policy: the current [`PolicySnapshot`],
//! replaced when the catalog's change counter moves.
//!
//! [`PolicyCache::current`] reads the counter (one primary-key read) on
//! every call and reloads the snapshot when it moved, so a token revoked or
//! a grant withdrawn, by this process or by another sharing the catalog,
//! applies to the next request after its commit. Concurrent requests that
//! find the counter moved wait for one reload, not one each.

use std::sync::{Arc, RwLock};

use civlink_catalog::store::{MetadataStore, PolicySnapshot};

use crate::error::{Error, Result};

/// The current policy snapshot and how to refresh it.
#[derive(Debug)]
pub struct PolicyCache {
    store: MetadataStore,
    current: RwLock<Arc<PolicySnapshot>>,
    /// Held while reloading, so that one reload serves every waiting request.
    reloading: tokio::sync::Mutex<()>,
}

impl PolicyCache {
    /// Load the first snapshot.
    pub async fn load(store: MetadataStore) -> Result<PolicyCache> {
        let snapshot = store.policy_snapshot(None).await.map_err(Error::from_policy)?;
        Ok(PolicyCache { store, current: RwLock::new(Arc::new(snapshot)), reloading: tokio::sync::Mutex::new(()) })
    }

    /// The snapshot as of the catalog's state now.
    pub async fn current(&self) -> Result<Arc<PolicySnapshot>> {
        let epoch = self.store.catalog_epoch().await.map_err(Error::from_policy)?;
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
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// The snapshot held now, without looking at the catalog.
    pub fn held(&self) -> Arc<PolicySnapshot> {
        // A poisoned lock held a whole `Arc` all along: keep using it.
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}
