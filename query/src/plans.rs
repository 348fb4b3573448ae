//! Plans made to be run once, shortly: Flight SQL's `GetFlightInfo` plans a
//! statement to answer with its schema, and the `DoGet` that follows runs
//! that same plan instead of planning again.
//!
//! A plan is kept under the query id of the ticket it was described for,
//! bound to the principal, the exact statement (SQL and parameters) and the
//! policy snapshot it was planned under, for [`KEPT_FOR`]. It is handed out
//! once, and only to a run that matches all of these: any other run of the
//! ticket (another principal's, an edited ticket, a replay, a run after the
//! policy changed or the plan expired) plans afresh under its own caller,
//! so a kept plan never grants anything. At most [`MAX_KEPT`] plans are kept;
//! beyond that, describing still works and the run plans again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use civlink_catalog::policy::Principal;
use datafusion::logical_expr::LogicalPlan;

/// How long a described plan waits for its run.
pub const KEPT_FOR: Duration = Duration::from_secs(30);
/// How many described plans wait at once, at most.
pub const MAX_KEPT: usize = 4096;

/// A planned statement and everything it is bound to; `S` is the session
/// it was planned in (kept generic so this module needs nothing of the
/// session's).
pub(crate) struct KeptPlan<S> {
    pub principal: Principal,
    pub epoch: i64,
    pub sql: String,
    pub params: Option<RecordBatch>,
    pub session: S,
    pub plan: LogicalPlan,
    pub datasets: Vec<String>,
    pub kept_at: Instant,
}

/// The kept plans (see the module docs).
pub struct KeptPlans<S> {
    plans: Mutex<HashMap<String, KeptPlan<S>>>,
    reused: AtomicU64,
}

impl<S> Default for KeptPlans<S> {
    fn default() -> Self {
        KeptPlans { plans: Mutex::default(), reused: AtomicU64::new(0) }
    }
}

impl<S> std::fmt::Debug for KeptPlans<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptPlans").field("reused", &self.reused()).finish_non_exhaustive()
    }
}

impl<S> KeptPlans<S> {
    /// Keep `plan` for the run of ticket `query_id`.
    pub(crate) fn keep(&self, query_id: &str, plan: KeptPlan<S>) {
        let mut plans = self.lock();
        if plans.len() >= MAX_KEPT {
            plans.retain(|_, kept| kept.kept_at.elapsed() < KEPT_FOR);
            if plans.len() >= MAX_KEPT {
                return;
            }
        }
        plans.insert(query_id.to_owned(), plan);
    }

    /// The plan kept for `query_id`, if it was made for exactly this run.
    pub(crate) fn take(
        &self,
        query_id: &str,
        principal: &Principal,
        epoch: i64,
        sql: &str,
        params: Option<&RecordBatch>,
    ) -> Option<KeptPlan<S>> {
        let mut plans = self.lock();
        let kept = plans.get(query_id)?;
        if kept.kept_at.elapsed() >= KEPT_FOR {
            plans.remove(query_id);
            return None;
        }
        // Another caller's run of this ticket plans for itself and leaves the plan be.
        if kept.principal != *principal || kept.sql != sql || kept.params.as_ref() != params {
            return None;
        }
        let kept = plans.remove(query_id)?;
        if kept.epoch != epoch {
            return None;
        }
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(kept)
    }

    /// How many runs used a kept plan.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// How many plans wait now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeptPlan<S>>> {
        // A panic mid-insert leaves a whole map: keep using it.
        self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
