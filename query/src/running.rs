//! The running queries of the process, by query id, for cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::AbortHandle;

use crate::error::{Error, Result};

/// Running queries by query id, for cancellation.
#[derive(Debug, Default)]
pub struct RunningQueries {
    by_id: Arc<Mutex<HashMap<String, Running>>>,
    serial: AtomicU64,
}

#[derive(Debug)]
struct Running {
    serial: u64,
    principal: String,
    abort: AbortHandle,
}

/// The table, poisoned or not: a panic elsewhere while it was locked leaves
/// a consistent map, and refusing to use it would silently end cancellation.
fn lock(by_id: &Mutex<HashMap<String, Running>>) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
    by_id.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunningQueries {
    pub(crate) fn register(&self, query_id: &str, principal: &str, abort: AbortHandle) -> Registered {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        lock(&self.by_id).insert(query_id.to_owned(), Running { serial, principal: principal.to_owned(), abort });
        Registered { by_id: Arc::clone(&self.by_id), query_id: query_id.to_owned(), serial }
    }

    /// Cancel `principal`'s running query `query_id`; [`Error::UnknownQuery`]
    /// when it has none by that id (finished, never started, or another's).
    pub fn cancel(&self, query_id: &str, principal: &str) -> Result<()> {
        match lock(&self.by_id).get(query_id) {
            Some(query) if query.principal == principal => {
                query.abort.abort();
                Ok(())
            }
            _ => Err(Error::UnknownQuery),
        }
    }

    /// How many queries are running.
    pub fn len(&self) -> usize {
        lock(&self.by_id).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes a query from the running table when its stream ends.
pub(crate) struct Registered {
    by_id: Arc<Mutex<HashMap<String, Running>>>,
    query_id: String,
    serial: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut running = lock(&self.by_id);
        if running.get(&self.query_id).is_some_and(|r| r.serial == self.serial) {
            running.remove(&self.query_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream::Abortable;

    #[test]
    fn cancellation_survives_a_poisoned_table() {
        let queries = RunningQueries::default();
        let (abort, registration) = AbortHandle::new_pair();
        let query = Abortable::new(futures::future::pending::<()>(), registration);
        let registered = queries.register("q1", "county", abort);
        let by_id = Arc::clone(&queries.by_id);
        let _ = std::thread::spawn(move || {
            let _guard = by_id.lock().unwrap();
            panic!("poison the running-query table");
        })
        .join();
        assert!(queries.by_id.is_poisoned());
        assert!(matches!(queries.cancel("q1", "someone else"), Err(Error::UnknownQuery)));
        queries.cancel("q1", "county").unwrap();
        assert!(query.is_aborted());
        drop(registered);
        assert!(queries.is_empty());
        assert!(matches!(queries.cancel("q1", "county"), Err(Error::UnknownQuery)));
    }
}
