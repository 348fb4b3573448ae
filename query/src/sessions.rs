//! Sessions kept per principal, for as long as what the principal may read
//! stays the same.
//!
//! Building a principal's session (a DataFusion state with every function,
//! the principal's catalog, its tables' scopes and masks) costs far more
//! than a small query. A session depends only on the principal and on what
//! the policy snapshot decided it may read, which the snapshot memoises as
//! one `Arc<[ReadableDataset]>` per principal: the same `Arc` until the
//! catalog's change counter moves or a grant the decision rests on expires.
//! So a kept session is handed out again only while the snapshot returns
//! *that very `Arc`* for the principal (pointer equality) and the principal
//! is the same: a revoked grant, a new dataset version or an expired grant
//! gives a new decision, hence a new session, on the next request, exactly
//! as when every request built its own.
//!
//! Queries do not run in the kept session's memory pool: each run gets its
//! own pool inside the server's budget ([`crate::run`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use civlink_catalog::policy::Principal;
use civlink_catalog::store::ReadableDataset;

/// Principals whose sessions are kept at most; beyond that the least
/// recently used is dropped.
pub const MAX_KEPT_SESSIONS: usize = 256;

struct Kept<S> {
    principal: Principal,
    decided: Arc<[ReadableDataset]>,
    session: S,
    used: Instant,
}

/// The kept sessions (see the module docs); `S` is the session type (kept
/// generic so that this module needs nothing of the session's).
pub struct SessionCache<S> {
    kept: Mutex<HashMap<String, Kept<S>>>,
}

impl<S> Default for SessionCache<S> {
    fn default() -> Self {
        SessionCache { kept: Mutex::default() }
    }
}

impl<S> std::fmt::Debug for SessionCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("kept", &self.len()).finish()
    }
}

impl<S: Clone> SessionCache<S> {
    /// The session kept for `principal` under exactly the decision `decided`.
    pub(crate) fn get(&self, principal: &Principal, decided: &Arc<[ReadableDataset]>) -> Option<S> {
        let mut kept = self.lock();
        let entry = kept.get_mut(&principal.name)?;
        if entry.principal != *principal || !Arc::ptr_eq(&entry.decided, decided) {
            return None;
        }
        entry.used = Instant::now();
        Some(entry.session.clone())
    }

    /// Keep `session`, built for `principal` under `decided`.
    pub(crate) fn keep(&self, principal: &Principal, decided: Arc<[ReadableDataset]>, session: S) {
        let mut kept = self.lock();
        if kept.len() >= MAX_KEPT_SESSIONS && !kept.contains_key(&principal.name) {
            let oldest = kept.iter().min_by_key(|(_, k)| k.used).map(|(name, _)| name.clone());
            if let Some(name) = oldest {
                kept.remove(&name);
            }
        }
        kept.insert(
            principal.name.clone(),
            Kept { principal: principal.clone(), decided, session, used: Instant::now() },
        );
    }
}

impl<S> SessionCache<S> {
    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept<S>>> {
        // A panic mid-insert leaves a whole map: keep using it.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use civlink_catalog::model::Department;
    use civlink_catalog::policy::Role;
    use civlink_standards::division::DivisionCode;

    use super::*;

    fn principal(name: &str, division: &str) -> Principal {
        Principal {
            name: name.to_owned(),
            department: Some(Department::Minzheng),
            role: Role::Analyst,
            division: DivisionCode::parse(division).unwrap(),
        }
    }

    #[test]
    fn a_session_is_reused_only_under_the_very_same_decision() {
        let cache: SessionCache<&'static str> = SessionCache::default();
        let county = principal("county", "630102000000");
        let decided: Arc<[ReadableDataset]> = Arc::from(Vec::new());
        cache.keep(&county, Arc::clone(&decided), "session 1");
        assert_eq!(cache.get(&county, &decided), Some("session 1"));
        // An equal but new decision (a reload, an expired grant) is another decision.
        let reloaded: Arc<[ReadableDataset]> = Arc::from(Vec::new());
        assert_eq!(cache.get(&county, &reloaded), None);
        // The same name with other attributes is another principal.
        let moved = principal("county", "630105000000");
        assert_eq!(cache.get(&moved, &decided), None);
        assert_eq!(cache.get(&principal("other", "630102000000"), &decided), None);
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let cache: SessionCache<usize> = SessionCache::default();
        let decided: Arc<[ReadableDataset]> = Arc::from(Vec::new());
        let principals: Vec<Principal> =
            (0..=MAX_KEPT_SESSIONS).map(|i| principal(&format!("p{i}"), "630102000000")).collect();
        cache.keep(&principals[0], Arc::clone(&decided), 0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        for (i, p) in principals.iter().enumerate().take(MAX_KEPT_SESSIONS).skip(1) {
            cache.keep(p, Arc::clone(&decided), i);
        }
        // p0, the first kept, is used again: another one makes room for the newcomer.
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(cache.get(&principals[0], &decided), Some(0));
        cache.keep(&principals[MAX_KEPT_SESSIONS], Arc::clone(&decided), MAX_KEPT_SESSIONS);
        assert_eq!(cache.len(), MAX_KEPT_SESSIONS);
        assert_eq!(cache.get(&principals[0], &decided), Some(0));
        assert_eq!(cache.get(&principals[MAX_KEPT_SESSIONS], &decided), Some(MAX_KEPT_SESSIONS));
        let evicted = principals[1..MAX_KEPT_SESSIONS].iter().filter(|p| cache.get(p, &decided).is_none()).count();
        assert_eq!(evicted, 1);
    }
}
