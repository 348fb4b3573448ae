//! Connections per client and in all, counted the same way for every
//! transport: a transport asks [`ConnectionLimiter::admit`] for each accepted
//! TCP connection and keeps the [`Admitted`] guard for the connection's life;
//! one that is not admitted is closed at once, before anything is read from
//! it. One client opening connections in a loop then cannot exhaust the
//! server's sockets, memory or tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// How many connections may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From one client address.
    pub per_client: usize,
    /// From all clients together.
    pub total: usize,
}

impl Default for ConnectionLimits {
    /// 64 per client, 1024 in all.
    fn default() -> Self {
        ConnectionLimits { per_client: 64, total: 1024 }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// Counts open connections against [`ConnectionLimits`]. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    limits: ConnectionLimits,
    open: Arc<Mutex<Open>>,
}

/// An admitted connection; dropping it (when the connection closes) frees its place.
#[derive(Debug)]
pub struct Admitted {
    client: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl ConnectionLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: ConnectionLimits) -> ConnectionLimiter {
        ConnectionLimiter { limits, open: Arc::default() }
    }

    /// Admit a connection from `client`, or `None` when it is over a limit.
    pub fn admit(&self, client: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let from_client = open.by_client.get(&client).copied().unwrap_or(0);
        if open.total >= self.limits.total || from_client >= self.limits.per_client {
            tracing::warn!(
                client = %client,
                from_client,
                total = open.total,
                "connection refused: over the connection limit"
            );
            return None;
        }
        open.total += 1;
        *open.by_client.entry(client).or_default() += 1;
        Some(Admitted { client, open: Arc::clone(&self.open) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_client_and_in_all() {
        let limiter = ConnectionLimiter::new(ConnectionLimits { per_client: 2, total: 3 });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none(), "a third from one client");
        let _b1 = limiter.admit(b).unwrap();
        assert!(limiter.admit(b).is_none(), "a fourth in all");
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(a).is_some());
    }
}
