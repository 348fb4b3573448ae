//! The session factory and a principal's session.
//!
//! [`SessionFactory`] is built once per process ([`SessionFactory::builder`])
//! and shared by every transport. It holds what is the server's, not a
//! request's: the metadata store, the [`Limits`], the table cache, the slot
//! table, the server's memory budget and spill disk, the mask key, the
//! auditor and the registry of running queries.
//!
//! [`SessionFactory::session_for`] asks the policy what the principal may
//! read and builds a [`SessionContext`] holding exactly that:
//!
//! * catalog `civlink` (the only catalog: there is no `datafusion.public`),
//!   one schema per department code (`gongan`, `minzheng`, …) and in it one
//!   table per readable dataset with a committed version, named by the
//!   dataset's name, each a [`ScopedTable`] (columns, masks and row scope of
//!   the principal) opened lazily through the table cache, so a query pays
//!   only for the tables it names;
//! * `information_schema`, which therefore lists only what the principal
//!   may read;
//! * the functions of [`crate::udf`], and the resource guards of
//!   [`crate::guard`] on DataFusion's own;
//! * its own memory pool inside the server's budget ([`crate::limits`]), and
//!   the server's spill disk with its one budget.
//!
//! What the principal may read comes from the policy snapshot
//! ([`crate::policy`]), checked against the catalog's change counter on
//! every request. A session is kept and reused only while the snapshot's
//! decision for the principal is the very same one ([`crate::sessions`]), so
//! a revoked grant, an expired one or a new dataset version stops applying
//! at the next request; each query runs in a memory pool of its own
//! ([`ScopedSession::task_context`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use civlink_catalog::model::{DatasetId, DatasetRecord, Department};
use civlink_catalog::policy::{Access, AuditAction, Principal};
use civlink_catalog::store::{MetadataStore, PolicySnapshot};
use civlink_catalog::table::TableStore;
use civlink_standards::mask::MaskKey;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider, SchemaProvider,
    TableProvider,
};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::audit::Auditor;
use crate::auth::Credentials;
use crate::cache::{BatchKeeper, PlainKeeper, TableCache};
use crate::connections::ConnectionLimiter;
use crate::error::{Error, Result};
use crate::guard::{Guard, GuardRule};
use crate::limits::{Limits, QueryPool, ServerMemory, Slots};
use crate::plans::KeptPlans;
use crate::policy::PolicyCache;
use crate::running::RunningQueries;
use crate::scope::ScopedTable;
use crate::sessions::SessionCache;
use crate::udf;

/// The one catalog every session has.
pub const CATALOG: &str = "civlink";
/// The schema DataFusion adds to every catalog.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// Builds a [`SessionFactory`].
pub struct SessionFactoryBuilder {
    store: MetadataStore,
    tables: TableStore,
    limits: Limits,
    mask_key: Option<MaskKey>,
    keeper: Arc<dyn BatchKeeper>,
}

impl SessionFactoryBuilder {
    /// Use these limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Key `pseudonym` masks with `key` instead of the store's
    /// (`MetadataStore::mask_key`, generated on first use).
    pub fn mask_key(mut self, key: MaskKey) -> Self {
        self.mask_key = Some(key);
        self
    }

    /// Keep cached batches through `keeper` (a transport's encoding, see [`crate::cache`]).
    pub fn keeper(mut self, keeper: Arc<dyn BatchKeeper>) -> Self {
        self.keeper = keeper;
        self
    }

    /// The factory. Reads the mask key from the store when none was given
    /// (so a store that cannot produce it fails here, at start-up), and
    /// starts the auditor on the current runtime.
    pub async fn build(self) -> Result<Arc<SessionFactory>> {
        let problems = self.limits.problems();
        if !problems.is_empty() {
            return Err(Error::InvalidRequest { message: format!("limits: {}", problems.join("; ")) });
        }
        let mask_key = match self.mask_key {
            Some(key) => key,
            None => self.store.mask_key().await.map_err(|e| Error::Store { message: e.to_string() })?,
        };
        let policy = PolicyCache::load(self.store.clone()).await?;
        let limits = self.limits;
        let mode = match &limits.spill_dir {
            Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
            None => DiskManagerMode::OsTmpDirectory,
        };
        let cache = Arc::new(TableCache::new(self.tables, limits.table_cache_bytes, self.keeper));
        // One disk manager for every query: its size limit is the server's spill budget.
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(mode).with_max_temp_directory_size(limits.max_spill_bytes),
            )
            .with_object_store_registry(cache.registry())
            .build()?;
        let guard = Arc::new(GuardRule::new(Guard::for_query_memory(limits.memory_per_query)));
        let base = base_state(&limits, &guard);
        Ok(Arc::new(SessionFactory {
            base,
            auditor: Auditor::start(self.store.clone()),
            store: self.store,
            policy,
            plans: KeptPlans::default(),
            sessions: SessionCache::default(),
            slots: Slots::new(limits.max_concurrent_per_principal),
            memory: ServerMemory::new(limits.memory_total),
            running: RunningQueries::default(),
            connections: ConnectionLimiter::new(limits.connections),
            runtime,
            cache,
            mask_key: Arc::new(mask_key),
            limits,
        }))
    }
}

/// The state every session starts from: the configuration, DataFusion's
/// functions, the guard rule and civlink's UDFs; no catalog.
fn base_state(limits: &Limits, guard: &Arc<GuardRule>) -> SessionState {
    let mut config = SessionConfig::new().with_information_schema(true).with_create_default_catalog_and_schema(false);
    // A sort sets aside this much to merge its spill files; DataFusion's 10 MiB
    // default would not fit a small per-query cap, and the sort would fail
    // instead of spilling.
    let execution = &mut config.options_mut().execution;
    execution.sort_spill_reservation_bytes = execution.sort_spill_reservation_bytes.min(limits.memory_per_query / 8);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_analyzer_rule(Arc::clone(guard) as _)
        .build();
    let ctx = SessionContext::new_with_state(state);
    udf::register_all(&ctx);
    ctx.state()
}

/// What every session of the process shares (see the module docs).
pub struct SessionFactory {
    /// What each session's state is cloned from ([`base_state`]).
    base: SessionState,
    store: MetadataStore,
    policy: PolicyCache,
    plans: KeptPlans<ScopedSession>,
    sessions: SessionCache<ScopedSession>,
    limits: Limits,
    cache: Arc<TableCache>,
    slots: Slots,
    memory: Arc<ServerMemory>,
    /// The shared parts of every query's runtime (disk manager, caches,
    /// object stores); each query gets its own memory pool in a copy.
    runtime: RuntimeEnv,
    /// Keys the `pseudonym` masks of every scoped table (its `Debug` shows no bytes).
    mask_key: Arc<MaskKey>,
    auditor: Arc<Auditor>,
    running: RunningQueries,
    connections: ConnectionLimiter,
}

impl std::fmt::Debug for SessionFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFactory")
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .field("memory_in_use", &self.memory.used())
            .finish_non_exhaustive()
    }
}

impl SessionFactory {
    /// A builder over the catalog `store` and the Delta tables of `tables`.
    pub fn builder(store: MetadataStore, tables: TableStore) -> SessionFactoryBuilder {
        SessionFactoryBuilder {
            store,
            tables,
            limits: Limits::default(),
            mask_key: None,
            keeper: Arc::new(PlainKeeper),
        }
    }

    /// The metadata store.
    pub fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// The policy snapshot every request decides by.
    pub fn policy(&self) -> &PolicyCache {
        &self.policy
    }

    /// A runtime for one query: the shared parts, and a memory pool of its
    /// own inside the server's budget.
    pub(crate) fn query_runtime(&self) -> RuntimeEnv {
        let mut runtime = self.runtime.clone();
        runtime.memory_pool = Arc::new(QueryPool::new(self.limits.memory_per_query, Arc::clone(&self.memory)));
        runtime
    }

    /// The sessions kept per principal.
    pub fn sessions(&self) -> &SessionCache<ScopedSession> {
        &self.sessions
    }

    /// The plans described and kept for their runs.
    pub fn kept_plans(&self) -> &KeptPlans<ScopedSession> {
        &self.plans
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The per-principal slot table.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The table cache.
    pub fn cache(&self) -> &TableCache {
        &self.cache
    }

    /// The auditor.
    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.auditor
    }

    /// The running queries.
    pub fn running(&self) -> &RunningQueries {
        &self.running
    }

    /// The connection counts every transport admits its connections by.
    pub fn connections(&self) -> &ConnectionLimiter {
        &self.connections
    }

    /// `plaintext` sealed under the deployment key for `domain`
    /// ([`civlink_standards::seal`]): what a transport wraps its opaque
    /// tokens in (REST cursors), so that clients can neither read nor forge them.
    pub fn seal(&self, domain: &str, plaintext: &[u8]) -> Vec<u8> {
        self.mask_key.seal(domain, plaintext)
    }

    /// What [`SessionFactory::seal`] sealed for `domain`; `None` for anything else.
    pub fn open_sealed(&self, domain: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.mask_key.open(domain, sealed)
    }

    /// Memory all queries hold now (bytes).
    pub fn memory_in_use(&self) -> usize {
        self.memory.used()
    }

    /// The principal behind `credentials` (the user name of Basic
    /// credentials, when given, must be the token's principal).
    pub async fn authenticate(&self, credentials: &Credentials) -> Result<Principal> {
        let snapshot = self.policy.current().await?;
        let principal = snapshot.authenticate(credentials.token(), chrono::Utc::now()).map_err(Error::from_policy)?;
        match credentials.user() {
            Some(user) if !user.is_empty() && user != principal.name => Err(Error::UserMismatch),
            _ => Ok(principal),
        }
    }

    /// The principal behind an `authorization` header value, with a failure
    /// audited under `action` (see [`Auditor::auth_failure`]).
    pub async fn principal(
        &self,
        authorization: Option<&[u8]>,
        purpose: Option<String>,
        action: AuditAction,
    ) -> Result<Principal> {
        let (result, claimed) = match crate::auth::credentials(authorization) {
            Ok(credentials) => {
                let claimed = credentials.user().map(str::to_owned);
                (self.authenticate(&credentials).await, claimed)
            }
            Err(e) => (Err(e), None),
        };
        if let Err(e) = &result {
            self.auditor.auth_failure(action, e, claimed.as_deref(), purpose).await;
        }
        result
    }

    /// A fresh session holding what `principal` may read.
    pub async fn session_for(&self, principal: &Principal) -> Result<ScopedSession> {
        let snapshot = self.policy.current().await?;
        self.session_in(&snapshot, principal)
    }

    /// The session holding what `principal` may read under `snapshot`: the
    /// one kept for exactly this decision ([`crate::sessions`]), or a new one.
    pub(crate) fn session_in(&self, snapshot: &PolicySnapshot, principal: &Principal) -> Result<ScopedSession> {
        let readable = snapshot.readable(principal, chrono::Utc::now());
        if let Some(session) = self.sessions.get(principal, &readable) {
            return Ok(session);
        }
        let session = self.build_session(snapshot, principal, &readable)?;
        self.sessions.keep(principal, readable, session.clone());
        Ok(session)
    }

    /// A new session holding `readable`.
    fn build_session(
        &self,
        snapshot: &PolicySnapshot,
        principal: &Principal,
        readable: &[civlink_catalog::store::ReadableDataset],
    ) -> Result<ScopedSession> {
        let datasets: Vec<(DatasetRecord, Access)> = readable
            .iter()
            .filter(|r| r.record.current_version.is_some())
            .map(|r| (r.record.clone(), r.access.clone()))
            .collect();

        // Queries run in pools of their own ([`SessionFactory::query_runtime`]); this one
        // bounds anything run through the session's context directly the same way.
        let runtime = self.query_runtime();
        let default_schema = principal.department.unwrap_or(Department::Minzheng).code();
        let config = self.base.config().clone().with_default_catalog_and_schema(CATALOG, default_schema);
        // From the base state: DataFusion's functions, the guard and the UDFs are
        // registered once per process, not once per request. The catalog list is
        // the session's own: the base's is shared, and what one principal may
        // read must never be registered where another's session looks.
        let state = SessionStateBuilder::new_from_existing(self.base.clone())
            .with_config(config)
            .with_runtime_env(Arc::new(runtime))
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        let state = Arc::new(state);
        let ctx = SessionContext::new_with_state((*state).clone());

        let mut by_department: BTreeMap<Department, BTreeMap<String, (DatasetRecord, Access)>> = BTreeMap::new();
        for (record, access) in &datasets {
            by_department
                .entry(record.spec.id.department)
                .or_default()
                .insert(record.spec.id.name.clone(), (record.clone(), access.clone()));
        }
        let catalog = MemoryCatalogProvider::new();
        for (department, tables) in by_department {
            let schema = DatasetSchema {
                tables,
                cache: Arc::clone(&self.cache),
                mask_key: Arc::clone(&self.mask_key),
                opened: std::sync::Mutex::default(),
            };
            catalog.register_schema(department.code(), Arc::new(schema))?;
        }
        // The findings the principal's division holds, as `verification.findings`.
        let verification = MemorySchemaProvider::new();
        let findings = crate::findings::FindingsTable::new(self.store.clone(), principal.division);
        verification.register_table(crate::findings::TABLE.to_owned(), Arc::new(findings))?;
        catalog.register_schema(crate::findings::SCHEMA, Arc::new(verification))?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        Ok(ScopedSession {
            ctx,
            state,
            planned: Arc::default(),
            optimized: Arc::default(),
            principal: principal.clone(),
            datasets: datasets.into(),
            epoch: snapshot.epoch(),
            store: self.store.clone(),
            cache: Arc::clone(&self.cache),
            mask_key: Arc::clone(&self.mask_key),
        })
    }
}

/// A principal's session: the context and what it may read. Cheap to clone
/// (its parts are shared).
#[derive(Clone)]
pub struct ScopedSession {
    /// The DataFusion context.
    pub ctx: SessionContext,
    /// The same state as `ctx`'s, shared: planning reads it without copying
    /// it (`SessionContext::state` clones every function registry).
    pub(crate) state: Arc<SessionState>,
    /// Statements planned in this session, by SQL text ([`crate::gate`]).
    pub(crate) planned: Arc<std::sync::Mutex<HashMap<String, Planned>>>,
    /// Optimized plans of parameterless statements whose functions are all
    /// immutable, by SQL text ([`ScopedSession::physical_plan`]).
    optimized: Arc<std::sync::Mutex<HashMap<String, LogicalPlan>>>,
    /// Whose session this is.
    pub principal: Principal,
    /// The readable datasets that have a committed version, with their access.
    pub datasets: Arc<[(DatasetRecord, Access)]>,
    /// The catalog change counter of the policy it was built under.
    pub epoch: i64,
    pub(crate) store: MetadataStore,
    /// The process's table cache and mask key, for tables at earlier versions.
    cache: Arc<TableCache>,
    mask_key: Arc<MaskKey>,
}

impl std::fmt::Debug for ScopedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedSession")
            .field("principal", &self.principal.name)
            .field("datasets", &self.datasets.iter().map(|(r, _)| r.spec.id.to_string()).collect::<Vec<_>>())
            .finish()
    }
}

/// A statement planned in a session ([`ScopedSession::plan_sql`]).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The logical plan (placeholders `$1…` unbound).
    pub plan: LogicalPlan,
    /// The datasets the statement names (`department.name`), for the audit log.
    pub datasets: Vec<String>,
}

/// Statements a session keeps the plans of, at most.
pub(crate) const MAX_PLANNED_STATEMENTS: usize = 128;

/// Whether every function in `plan` (and its subqueries) is immutable: only
/// then does optimizing it give the same plan at any time (`now()` and
/// friends are folded into constants by the optimizer).
fn immutable(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Volatility;
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        let _ = node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    immutable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        });
        Ok(if immutable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    immutable
}

impl ScopedSession {
    /// The physical plan of `plan`. A parameterless statement (`sql`) whose
    /// functions are all immutable is optimized once per session; any other
    /// immutable plan is optimized now in the shared state; a plan with a
    /// time-dependent function, in a copy of the state marked with this
    /// query's start (what `now()` means).
    pub(crate) async fn physical_plan(
        &self,
        plan: &LogicalPlan,
        sql: Option<&str>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let kept = |this: &Self, sql: &str| {
            this.optimized.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(sql).cloned()
        };
        let immutable = immutable(plan);
        match sql {
            Some(sql) if immutable => {
                let optimized = match kept(self, sql) {
                    Some(optimized) => optimized,
                    None => {
                        let optimized = self.state.optimize(plan)?;
                        let mut all = self.optimized.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if all.len() < MAX_PLANNED_STATEMENTS {
                            all.insert(sql.to_owned(), optimized.clone());
                        }
                        optimized
                    }
                };
                self.state.query_planner().create_physical_plan(&optimized, self.state.as_ref()).await
            }
            // Nothing time-dependent to fold: the shared state plans it as it is.
            None if immutable => self.state.create_physical_plan(plan).await,
            _ => {
                let mut state = (*self.state).clone();
                state.mark_start_execution();
                state.create_physical_plan(plan).await
            }
        }
    }

    /// The context one query runs in: the session's configuration and
    /// `runtime` (the query's own memory pool). Without function registries:
    /// a physical plan holds its functions, and cloning the registries per
    /// query would cost more than a small query.
    pub(crate) fn task_context(&self, runtime: RuntimeEnv) -> TaskContext {
        TaskContext::new(
            None,
            self.state.session_id().to_owned(),
            self.state.config().clone(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            Arc::new(runtime),
        )
    }

    /// The schema of `verification.findings` (for test references that
    /// must list what the session lists).
    pub fn findings_schema(&self) -> Option<Arc<dyn SchemaProvider>> {
        self.ctx.catalog(CATALOG)?.schema(crate::findings::SCHEMA)
    }

    /// The scoped table of a readable dataset (opening its table).
    pub async fn table(&self, id: &DatasetId) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(catalog) = self.ctx.catalog(CATALOG) else { return Ok(None) };
        let Some(schema) = catalog.schema(id.department.code()) else { return Ok(None) };
        schema.table(&id.name).await.map_err(Error::from_datafusion)
    }

    /// The scoped table of a readable dataset at `version`, one of its
    /// committed versions (time travel, and REST cursors pinned to the
    /// version their first page read): the same columns, masks and row
    /// scope as [`ScopedSession::table`], which is what it gives for the
    /// current version. `None` when the dataset is not readable.
    pub async fn table_at(&self, id: &DatasetId, version: i64) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((record, access)) = self.datasets.iter().find(|(r, _)| r.spec.id == *id) else { return Ok(None) };
        if record.current_version == Some(version) {
            return self.table(id).await;
        }
        let opened = self.cache.open_version(record, version).await?;
        // A policy naming columns this version lacks fails closed, as for the current one.
        let scoped = ScopedTable::try_new(opened, access, &self.mask_key)
            .map_err(|e| Error::Engine { message: format!("scoping {id} at version {version}: {e}") })?;
        Ok(Some(Arc::new(scoped)))
    }
}

/// One department's readable datasets, opened on first use and then kept
/// with the session (a kept session serves many queries).
#[derive(Debug)]
struct DatasetSchema {
    tables: BTreeMap<String, (DatasetRecord, Access)>,
    cache: Arc<TableCache>,
    mask_key: Arc<MaskKey>,
    opened: std::sync::Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

#[async_trait]
impl SchemaProvider for DatasetSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let Some((record, access)) = self.tables.get(name) else { return Ok(None) };
        let kept = |opened: &std::sync::Mutex<HashMap<String, Arc<dyn TableProvider>>>| {
            opened.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
        };
        if let Some(table) = kept(&self.opened) {
            return Ok(Some(table));
        }
        let opened = self.cache.open(record).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        // A policy naming columns the table lacks fails closed, loudly.
        let scoped: Arc<dyn TableProvider> = Arc::new(
            ScopedTable::try_new(opened, access, &self.mask_key).map_err(|e| DataFusionError::External(Box::new(e)))?,
        );
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_owned())
            .or_insert_with(|| Arc::clone(&scoped));
        Ok(Some(scoped))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(sql: &str) -> LogicalPlan {
        SessionContext::new().state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn only_plans_of_immutable_functions_are_optimized_once() {
        assert!(immutable(&plan("SELECT 1 + 1, abs(-2), upper('a')").await));
        assert!(!immutable(&plan("SELECT now()").await), "now() is folded at optimization: not reusable");
        assert!(!immutable(&plan("SELECT 1 WHERE random() > 0.5").await));
        assert!(!immutable(&plan("SELECT 1 WHERE 1 IN (SELECT 1 WHERE current_date() > '2000-01-01')").await));
    }
}
