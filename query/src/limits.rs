//! Limits that hold for the whole server, and per query inside them.
//!
//! * [`Limits`]: the configured figures (`[serve.limits]`).
//! * [`Slots`]: one table of per-principal query slots for the process, so a
//!   principal's concurrency limit counts its Flight SQL and REST queries
//!   together. Planning and the first load of a table take a slot too.
//! * [`ServerMemory`] and [`QueryPool`]: one memory budget shared by every
//!   query, and each query's own pool inside it. A query's pool refuses to
//!   grow past its cap *or* past what the server has left, so one principal's
//!   query can never take the memory the others need: it spills, or fails
//!   with a resource error, and the server stays up.
//! * Spill files of all queries share one disk budget
//!   ([`Limits::max_spill_bytes`]; see [`crate::SessionFactory`]).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Per-query, per-principal and whole-server limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A request (planning, opening tables, and running) still going after
    /// this long is stopped.
    pub query_timeout: Duration,
    /// Queries one principal may run at the same time, over every transport;
    /// more are refused rather than queued.
    pub max_concurrent_per_principal: usize,
    /// Memory one query may hold (bytes) before it spills or fails.
    pub memory_per_query: usize,
    /// Memory all queries together may hold (bytes).
    pub memory_total: usize,
    /// Disk all queries together may spill to (bytes).
    pub max_spill_bytes: u64,
    /// Where spill files go; `None` = the operating system's temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// Memory (bytes) for keeping whole tables decoded in memory, shared by
    /// every session (see [`crate::cache`]). 0 turns the cache off.
    pub table_cache_bytes: usize,
    /// Connections open at once, per client and in all (each transport's).
    pub connections: crate::connections::ConnectionLimits,
    /// Requests one HTTP/2 connection may have in flight (Flight SQL streams).
    pub max_streams_per_connection: u32,
}

impl Default for Limits {
    /// Five minutes, four queries per principal, 1 GiB per query and 4 GiB
    /// for all queries, 16 GiB of spill, 2 GiB of decoded tables.
    fn default() -> Self {
        Limits {
            query_timeout: Duration::from_secs(300),
            max_concurrent_per_principal: 4,
            memory_per_query: 1 << 30,
            memory_total: 4 << 30,
            max_spill_bytes: 16 << 30,
            spill_dir: None,
            table_cache_bytes: 2 << 30,
            connections: crate::connections::ConnectionLimits::default(),
            max_streams_per_connection: 64,
        }
    }
}

impl Limits {
    /// Every problem with these figures, at once (empty = usable).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.query_timeout.is_zero() {
            problems.push("query_timeout_secs must be at least 1".to_owned());
        }
        if self.max_concurrent_per_principal == 0 {
            problems.push("max_concurrent_per_principal must be at least 1".to_owned());
        }
        if self.memory_per_query < 1 << 20 {
            problems.push("memory_per_query_mib must be at least 1".to_owned());
        }
        if self.memory_total < self.memory_per_query {
            problems.push("memory_total_mib must be at least memory_per_query_mib".to_owned());
        }
        if self.connections.per_client == 0 || self.connections.total < self.connections.per_client {
            problems.push("max_connections_per_client must be at least 1 and at most max_connections".to_owned());
        }
        if self.max_streams_per_connection == 0 {
            problems.push("max_streams_per_connection must be at least 1".to_owned());
        }
        problems
    }
}

/// One table of per-principal query slots for the whole process.
#[derive(Debug)]
pub struct Slots {
    limit: usize,
    by_principal: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A held query slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    /// `limit` concurrent queries per principal (at least 1).
    pub fn new(limit: usize) -> Slots {
        Slots { limit: limit.max(1), by_principal: Mutex::new(HashMap::new()) }
    }

    /// One of `principal`'s slots, or [`Error::TooManyQueries`].
    pub fn acquire(&self, principal: &str) -> Result<Slot> {
        // A panic elsewhere while the table was locked leaves it as it was
        // (the map only ever gains entries), so a poisoned lock is used as is:
        // refusing every query from then on would be the wrong failure.
        let semaphore = {
            let mut table = self.by_principal.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(table.entry(principal.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.limit))))
        };
        let permit = semaphore.try_acquire_owned().map_err(|_| Error::TooManyQueries { limit: self.limit })?;
        Ok(Slot { _permit: permit })
    }

    /// The limit per principal.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// The memory budget every query's pool draws from.
#[derive(Debug)]
pub struct ServerMemory {
    budget: usize,
    used: AtomicUsize,
}

impl ServerMemory {
    /// A budget of `budget` bytes.
    pub fn new(budget: usize) -> Arc<ServerMemory> {
        Arc::new(ServerMemory { budget, used: AtomicUsize::new(0) })
    }

    /// Bytes all queries hold now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.budget)
            })
            .is_ok()
    }

    fn take(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    fn give_back(&self, bytes: usize) {
        // Saturating: a pool never gives back more than it took, but an
        // underflow here must not wrap into "the server is full".
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes)));
    }
}

/// One query's memory pool: DataFusion's [`FairSpillPool`] at the query's
/// cap (fair among the query's spilling operators), charged against the
/// server's budget as it grows.
#[derive(Debug)]
pub struct QueryPool {
    own: FairSpillPool,
    server: Arc<ServerMemory>,
}

impl QueryPool {
    /// A pool of at most `cap` bytes inside `server`.
    pub fn new(cap: usize, server: Arc<ServerMemory>) -> QueryPool {
        QueryPool { own: FairSpillPool::new(cap), server }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "civlink query pool ({} of the server's {} bytes in use)", self.server.used(), self.server.budget)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "civlink_query_pool"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.own.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.own.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.own.grow(reservation, additional);
        self.server.take(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.own.shrink(reservation, shrink);
        self.server.give_back(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        self.own.try_grow(reservation, additional)?;
        if self.server.try_take(additional) {
            return Ok(());
        }
        self.own.shrink(reservation, additional);
        Err(DataFusionError::ResourcesExhausted(format!(
            "the server's query memory ({} bytes) is in use by other queries; {additional} more bytes refused",
            self.server.budget
        )))
    }

    fn reserved(&self) -> usize {
        self.own.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.own.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_sane() {
        let limits = Limits::default();
        assert!(limits.problems().is_empty());
        assert!(limits.memory_total >= limits.memory_per_query);
    }

    #[test]
    fn bad_limits_are_all_reported() {
        let limits = Limits {
            query_timeout: Duration::ZERO,
            max_concurrent_per_principal: 0,
            memory_per_query: 1,
            memory_total: 0,
            ..Limits::default()
        };
        assert_eq!(limits.problems().len(), 4, "{:?}", limits.problems());
    }

    #[test]
    fn slots_are_per_principal() {
        let slots = Slots::new(2);
        let a1 = slots.acquire("a").unwrap();
        let _a2 = slots.acquire("a").unwrap();
        assert!(matches!(slots.acquire("a"), Err(Error::TooManyQueries { limit: 2 })));
        let _b = slots.acquire("b").unwrap();
        drop(a1);
        assert!(slots.acquire("a").is_ok());
    }

    #[test]
    fn a_poisoned_slot_table_still_hands_out_slots() {
        let slots = Arc::new(Slots::new(1));
        let poisoner = Arc::clone(&slots);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.by_principal.lock().unwrap();
            panic!("poison the slot table");
        })
        .join();
        assert!(slots.by_principal.is_poisoned());
        let held = slots.acquire("a").unwrap();
        assert!(matches!(slots.acquire("a"), Err(Error::TooManyQueries { .. })));
        drop(held);
        assert!(slots.acquire("a").is_ok());
    }

    #[test]
    fn query_pools_share_the_server_budget() {
        let server = ServerMemory::new(100);
        let first: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(80, Arc::clone(&server)));
        let second: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(80, Arc::clone(&server)));
        let a = MemoryConsumer::new("a").register(&first);
        let b = MemoryConsumer::new("b").register(&second);
        a.try_grow(70).unwrap();
        // Within its own cap, but the server has only 30 left.
        assert!(b.try_grow(40).is_err());
        assert_eq!(server.used(), 70);
        b.try_grow(30).unwrap();
        // Past its own cap.
        assert!(a.try_grow(20).is_err());
        a.shrink(70);
        b.try_grow(40).unwrap();
        assert_eq!(server.used(), 70);
        drop(a);
        drop(b);
        assert_eq!(server.used(), 0);
    }
}
