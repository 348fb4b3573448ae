//! Running a governed query: [`SessionFactory::run`].
//!
//! One function for every transport and every rule, in this order:
//!
//! 1. the principal's query slot ([`crate::limits::Slots`]);
//! 2. under the time limit from here on: the session, planning (which opens
//!    the tables it names, loading them into the cache on first use),
//!    parameters, and the physical plan;
//! 3. the audit entry ([`OutcomeKind::Started`], with the SQL or request and
//!    the datasets), durable before anything is sent: if it cannot be
//!    written the query is refused ([`Error::AuditUnavailable`]);
//! 4. registration under its query id, for [`crate::running::RunningQueries::cancel`];
//! 5. the results as a [`QueryStream`] in the plain types
//!    ([`crate::plain`]): it stops at the deadline, on cancellation, at the
//!    first error, or at the end, and then appends the query's closing entry
//!    (outcome, rows, duration). A stream dropped early (the client went
//!    away) closes as [`Error::ClientClosed`].
//!
//! A request refused before step 3 (no slot, a planning error, permission)
//! is audited with its outcome in one entry.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, Principal};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::future::BoxFuture;
use futures::stream::{AbortHandle, Abortable};
use futures::{Stream, StreamExt};

use crate::error::{Error, Result};
use crate::limits::Slot;
use crate::plain::{plain_schema, to_plain};
use crate::plans::KeptPlan;
use crate::running::Registered;
use crate::session::{ScopedSession, SessionFactory};

/// Who asks, why, and how it is recorded.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The authenticated principal.
    pub principal: Principal,
    /// The purpose it stated.
    pub purpose: Option<String>,
    /// The audit action.
    pub action: AuditAction,
    /// What the audit log records as the request: the SQL, or the REST request.
    pub text: String,
    /// The id a cancellation names; `None` = not cancellable by id.
    pub query_id: Option<String>,
}

/// A planned statement: the plan (parameters bound) and the datasets it names.
pub type PlanOutput = (LogicalPlan, Vec<String>);

/// What to run.
pub enum Statement {
    /// SQL text through the plan gate, with one row of parameters.
    Sql {
        /// The SQL.
        sql: String,
        /// Bound parameters (`$1`, `$2`, … by column).
        params: Option<RecordBatch>,
    },
    /// A plan a transport builds in the session (REST's typed row requests).
    Plan(Box<dyn FnOnce(ScopedSession) -> BoxFuture<'static, Result<PlanOutput>> + Send>),
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statement::Sql { sql, .. } => f.debug_struct("Sql").field("sql", sql).finish_non_exhaustive(),
            Statement::Plan(_) => f.write_str("Plan(..)"),
        }
    }
}

impl SessionFactory {
    /// Run `statement` for `request` (see the module docs).
    pub async fn run(&self, request: QueryRequest, statement: Statement) -> Result<QueryStream> {
        let started = Instant::now();
        let timeout = self.limits().query_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut entry = AuditEntry::new(request.principal.name.clone(), request.action, AuditOutcome::STARTED);
        entry.purpose = request.purpose.clone();
        entry.sql_text = Some(request.text.clone());

        let prepared = async {
            let slot = self.slots().acquire(&request.principal.name)?;
            let work = async {
                let snapshot = self.policy().current().await?;
                // A parameterless statement's optimized plan is kept by its session.
                let reusable = match &statement {
                    Statement::Sql { sql, params } if bound_params(params.as_ref()).is_none() => Some(sql.clone()),
                    _ => None,
                };
                let (session, plan, datasets) = match statement {
                    Statement::Sql { sql, params } => {
                        let kept = request.query_id.as_deref().and_then(|id| {
                            self.kept_plans().take(
                                id,
                                &request.principal,
                                snapshot.epoch(),
                                &sql,
                                bound_params(params.as_ref()),
                            )
                        });
                        match kept {
                            Some(kept) => (kept.session, kept.plan, kept.datasets),
                            None => {
                                let session = self.session_in(&snapshot, &request.principal)?;
                                let planned = session.plan_sql(&sql).await?;
                                let plan = crate::gate::bind(planned.plan, params.as_ref())?;
                                (session, plan, planned.datasets)
                            }
                        }
                    }
                    Statement::Plan(build) => {
                        let session = self.session_in(&snapshot, &request.principal)?;
                        let (plan, datasets) = build(session.clone()).await?;
                        (session, plan, datasets)
                    }
                };
                // A grant on a dataset it reads may require a stated purpose.
                let purpose = request.purpose.as_deref();
                if let Some(refusal) =
                    snapshot.purpose_required(&request.principal, &datasets, purpose, chrono::Utc::now())
                {
                    return Err(refusal.into());
                }
                let plain = plain_schema(plan.schema().as_arrow());
                let physical = session.physical_plan(&plan, reusable.as_deref()).await?;
                let task = Arc::new(session.task_context(self.query_runtime()));
                let stream = datafusion::physical_plan::execute_stream(physical, task)?;
                Ok::<_, Error>((plain, stream, datasets))
            };
            // Deadline first: a plan that finishes in its first poll must not
            // slip past a deadline already reached.
            let (plain, stream, datasets) = tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => return Err(Error::Timeout { seconds: timeout.as_secs() }),
                done = work => done?,
            };
            Ok::<_, Error>((slot, plain, stream, datasets))
        }
        .await;
        let (slot, plain, stream, datasets) = match prepared {
            Ok(ok) => ok,
            Err(e) => {
                entry.outcome = e.outcome();
                entry.duration_ms = Some(millis(started.elapsed()));
                count(&entry);
                // The request is refused whatever the log says; a log failure is counted there.
                let _ = self.auditor().append(entry).await;
                return Err(e);
            }
        };
        entry.datasets = datasets;
        // Fail closed: nothing leaves before its entry is durable.
        self.auditor().append(entry.clone()).await?;

        let (abort, registration) = AbortHandle::new_pair();
        let registered =
            request.query_id.as_deref().map(|id| self.running().register(id, &request.principal.name, abort));
        Ok(QueryStream {
            schema: Arc::clone(&plain),
            phase: Phase::Running(Box::new(Run {
                batches: Abortable::new(stream, registration),
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                timeout,
                plain,
                closing: Closing { auditor: Arc::clone(self.auditor()), entry: Some(entry), started, rows: 0 },
                _slot: slot,
                _registered: registered,
            })),
        })
    }
}

/// What planning a statement gave, without running it.
#[derive(Debug, Clone)]
pub struct Described {
    /// The result schema, in plain types.
    pub schema: SchemaRef,
    /// The statement's parameters (`$1`, `$2`, …), typed where DataFusion infers them.
    pub parameters: arrow::datatypes::Schema,
    /// The datasets it names.
    pub datasets: Vec<String>,
}

impl SessionFactory {
    /// Plan `sql` for `request` without running it (Flight's GetFlightInfo
    /// and prepare), under the principal's slot and the time limit like a
    /// run. `params` are bound when given; without them placeholders stay
    /// open. A refusal is audited under `request.action`; success is audited
    /// by the run that follows (or, for a prepare, by the caller).
    ///
    /// With a `request.query_id` (a ticket's), the bound plan is kept for the
    /// run of that ticket ([`crate::plans`]).
    pub async fn describe(&self, request: &QueryRequest, sql: &str, params: Option<&RecordBatch>) -> Result<Described> {
        let started = Instant::now();
        let timeout = self.limits().query_timeout;
        let work = async {
            let _slot = self.slots().acquire(&request.principal.name)?;
            let planning = async {
                let snapshot = self.policy().current().await?;
                let session = self.session_in(&snapshot, &request.principal)?;
                let planned = session.plan_sql(sql).await?;
                let purpose = request.purpose.as_deref();
                if let Some(refusal) =
                    snapshot.purpose_required(&request.principal, &planned.datasets, purpose, chrono::Utc::now())
                {
                    return Err(refusal.into());
                }
                let parameters = crate::gate::parameter_schema(&planned.plan)?;
                let plan = match params {
                    Some(params) => crate::gate::bind(planned.plan, Some(params))?,
                    None => planned.plan,
                };
                let described = Described {
                    schema: plain_schema(plan.schema().as_arrow()),
                    parameters,
                    datasets: planned.datasets,
                };
                if let (Some(id), Some(_)) = (request.query_id.as_deref(), params) {
                    let kept = KeptPlan {
                        principal: request.principal.clone(),
                        epoch: snapshot.epoch(),
                        sql: sql.to_owned(),
                        params: bound_params(params).cloned(),
                        session,
                        plan,
                        datasets: described.datasets.clone(),
                        kept_at: Instant::now(),
                    };
                    self.kept_plans().keep(id, kept);
                }
                Ok::<_, Error>(described)
            };
            tokio::select! {
                biased;
                () = tokio::time::sleep(timeout) => Err(Error::Timeout { seconds: timeout.as_secs() }),
                done = planning => done,
            }
        };
        let result = work.await;
        if let Err(e) = &result {
            let mut entry = AuditEntry::new(request.principal.name.clone(), request.action, e.outcome());
            entry.purpose = request.purpose.clone();
            entry.sql_text = Some(request.text.clone());
            entry.duration_ms = Some(millis(started.elapsed()));
            let _ = self.auditor().append(entry).await;
        }
        result
    }
}

/// Parameters as a run compares them: a batch without columns binds nothing.
fn bound_params(params: Option<&RecordBatch>) -> Option<&RecordBatch> {
    params.filter(|p| p.num_columns() > 0)
}

/// The closing audit entry of a query, written once.
struct Closing {
    auditor: Arc<crate::audit::Auditor>,
    entry: Option<AuditEntry>,
    started: Instant,
    rows: u64,
}

impl Closing {
    fn entry(&mut self, outcome: AuditOutcome) -> Option<AuditEntry> {
        let mut entry = self.entry.take()?;
        entry.at = chrono::Utc::now();
        entry.outcome = outcome;
        entry.rows = Some(self.rows);
        entry.duration_ms = Some(millis(self.started.elapsed()));
        count(&entry);
        Some(entry)
    }
}

/// Count a query that ended (or was refused), and the rows it served, in
/// the process's metrics (by transport, action and outcome).
fn count(entry: &AuditEntry) {
    use civlink_catalog::metrics::{QUERIES, QUERY_ROWS, global, transport};
    let transport = transport(entry.action);
    let action = entry.action.code();
    global().inc(QUERIES, &[("transport", transport), ("action", action), ("outcome", entry.outcome.kind.code())]);
    if let Some(rows) = entry.rows.filter(|r| *r > 0) {
        global().add(QUERY_ROWS, &[("transport", transport), ("action", action)], rows);
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        // The stream was dropped before it ended: the client went away.
        if let Some(entry) = self.entry(Error::ClientClosed.outcome()) {
            self.auditor.append_detached(entry);
        }
    }
}

/// A query being streamed.
struct Run {
    batches: Abortable<SendableRecordBatchStream>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    plain: SchemaRef,
    closing: Closing,
    _slot: Slot,
    _registered: Option<Registered>,
}

/// A governed query's results (see the module docs).
pub struct QueryStream {
    schema: SchemaRef,
    phase: Phase,
}

enum Phase {
    Running(Box<Run>),
    /// Writing the closing entry; then the last item (an error, or none).
    Closing(BoxFuture<'static, Option<Result<RecordBatch>>>),
    Done,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl QueryStream {
    /// The schema of the batches (plain types).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// End `run` with `outcome`: dropping it stops execution and frees the slot
/// at once; the closing entry is written, then `last` is yielded.
fn close(mut run: Box<Run>, outcome: AuditOutcome, last: Option<Result<RecordBatch>>) -> Phase {
    let entry = run.closing.entry(outcome);
    let auditor = Arc::clone(&run.closing.auditor);
    drop(run);
    Phase::Closing(Box::pin(async move {
        if let Some(entry) = entry {
            // The results are sent already; a failure here is counted and logged.
            let _ = auditor.append(entry).await;
        }
        last
    }))
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.phase, Phase::Done) {
                Phase::Done => return Poll::Ready(None),
                Phase::Closing(mut closing) => match closing.as_mut().poll(cx) {
                    Poll::Ready(last) => return Poll::Ready(last),
                    Poll::Pending => {
                        this.phase = Phase::Closing(closing);
                        return Poll::Pending;
                    }
                },
                Phase::Running(mut run) => {
                    // Deadline first, as in planning.
                    if run.deadline.as_mut().poll(cx).is_ready() {
                        let e = Error::Timeout { seconds: run.timeout.as_secs() };
                        this.phase = close(run, e.outcome(), Some(Err(e)));
                        continue;
                    }
                    let next = match run.batches.poll_next_unpin(cx) {
                        Poll::Pending => {
                            this.phase = Phase::Running(run);
                            return Poll::Pending;
                        }
                        Poll::Ready(next) => next,
                    };
                    this.phase = match next {
                        Some(Ok(batch)) => match to_plain(&batch, &run.plain) {
                            Ok(batch) => {
                                run.closing.rows += batch.num_rows() as u64;
                                this.phase = Phase::Running(run);
                                return Poll::Ready(Some(Ok(batch)));
                            }
                            Err(e) => {
                                let e = Error::from(e);
                                close(run, e.outcome(), Some(Err(e)))
                            }
                        },
                        Some(Err(e)) => {
                            let e = Error::from_datafusion(e);
                            if e.kind() == crate::error::ErrorKind::Internal {
                                tracing::error!(error = %e.log_text(), "query failed");
                            }
                            close(run, e.outcome(), Some(Err(e)))
                        }
                        None if run.batches.is_aborted() => {
                            close(run, Error::Cancelled.outcome(), Some(Err(Error::Cancelled)))
                        }
                        None => close(run, AuditOutcome::OK, None),
                    };
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
