//! The Flight SQL service: [`CivlinkFlightSql`] implements arrow-flight's
//! [`FlightSqlService`] over [`SessionFactory`] sessions.
//!
//! # Authentication
//!
//! The handshake takes `authorization: Basic base64(user:token)` (or
//! `Bearer <token>`) and answers with `authorization: Bearer <token>`: the
//! civlink token itself (see [`crate::auth`]); the user name, when given,
//! must be the token's principal. Every other call must carry the bearer
//! token and is authenticated again, so expiry and revocation bite at once.
//! A missing, malformed, invalid, expired or revoked token is
//! `UNAUTHENTICATED`; naming a dataset one may not read, or writing
//! anything, is `PERMISSION_DENIED`.
//!
//! # Statements
//!
//! `GetFlightInfo(CommandStatementQuery)` plans the SQL in the principal's
//! session, so errors surface before any data moves, and returns the result
//! schema with one endpoint whose ticket is a stateless [`Handle`] (the SQL
//! and a fresh query id). `DoGet` re-plans from the ticket and **streams**
//! record batches as DataFusion produces them; nothing is collected. Served
//! by `civlink serve`, the batches are framed by [`crate::wire::FastDoGet`]
//! without copying their buffers (a bare [`CivlinkFlightSql::into_server`]
//! uses arrow-flight's `FlightDataEncoder` instead). String views
//! (`Utf8View`, the Delta scan's strings) go out as plain `Utf8`, which
//! every Flight SQL client reads, and dictionaries as their values.
//!
//! Prepared statements are stateless too: the handle carries the SQL;
//! `DoPut` with parameters (one row, placeholders `$1`, `$2`, … by column
//! position) answers with a new handle that carries them as well;
//! closing is a no-op.
//!
//! # Limits
//!
//! Per query: a memory pool ([`crate::session::Limits::memory_per_query`],
//! spilling first), a time limit (`DEADLINE_EXCEEDED`), and cancellation:
//! `CancelFlightInfo` (or the older `CancelQuery`) with the `FlightInfo`
//! stops a running query of the same principal (`NOT_FOUND` for one that is
//! not running), and a client dropping the stream drops the DataFusion
//! stream, which stops execution. Per principal: at most
//! [`crate::session::Limits::max_concurrent_per_principal`] queries at once;
//! one more is `RESOURCE_EXHAUSTED`.
//!
//! # Audit
//!
//! Every handshake, prepare and query appends an [`AuditEntry`]: principal
//! (or the name a failed handshake claimed), the purpose from the
//! `x-civlink-purpose` header as given, the SQL, the datasets it names, the
//! rows returned, the duration and the outcome. A query's entry is written
//! when its stream ends: completed, failed, timed out, cancelled, or dropped
//! by the client. A failure to write the audit log is logged; it does not
//! fail the request.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandGetCatalogs,
    CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, Nullable, ProstMessageExt, Searchable, SqlInfo,
    SqlSupportedTransaction, TicketStatementQuery, XdbcDataType, XdbcDatetimeSubcode,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use civlink_catalog::policy::{AuditEntry, Principal, action};
use civlink_catalog::store::MetadataStore;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::stream::{AbortHandle, Abortable};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use prost::bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{self, Credentials};
use crate::error::{Error, Result, to_status};
use crate::handle::Handle;
use crate::session::{CATALOG, ScopedSession, SessionFactory};

/// The action name of the Flight RPC cancellation.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
/// The only table type civlink has.
pub const TABLE_TYPE: &str = "TABLE";
/// The principal recorded for requests that never authenticated and claimed no name.
const ANONYMOUS: &str = "(unauthenticated)";

/// The stream type of `DoGet`.
type DoGetStream = <CivlinkFlightSql as FlightService>::DoGetStream;

/// What a `DoGet` answers (see [`CivlinkFlightSql::do_get_results`]).
pub(crate) enum DoGetResults {
    /// A statement's results: the schema they travel in, and the batches.
    Batches {
        /// The wire schema ([`wire_schema`]), sent first.
        schema: SchemaRef,
        /// The batches, each already in `schema`.
        batches: futures::stream::BoxStream<'static, Result<RecordBatch, Status>>,
        /// Cached batches' messages, to send those as they are.
        pre_encoded: crate::wire::PreEncoded,
    },
    /// Any other ticket's messages, encoded by arrow-flight.
    Encoded(DoGetStream),
}

/// The civlink Flight SQL service. Cheap to clone.
#[derive(Clone)]
pub struct CivlinkFlightSql {
    inner: Arc<Inner>,
}

struct Inner {
    factory: SessionFactory,
    /// Running queries by query id (from the ticket), for cancellation.
    running: Mutex<HashMap<String, Running>>,
    /// Per-principal query slots.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    serial: AtomicU64,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
}

struct Running {
    serial: u64,
    principal: String,
    abort: AbortHandle,
}

impl std::fmt::Debug for CivlinkFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CivlinkFlightSql").field("factory", &self.inner.factory).finish_non_exhaustive()
    }
}

impl CivlinkFlightSql {
    /// The service over `factory`'s sessions.
    pub fn new(factory: SessionFactory) -> Result<CivlinkFlightSql> {
        let sql_info = sql_info(&factory)?;
        let xdbc = xdbc_types()?;
        Ok(CivlinkFlightSql {
            inner: Arc::new(Inner {
                factory,
                running: Mutex::new(HashMap::new()),
                slots: Mutex::new(HashMap::new()),
                serial: AtomicU64::new(0),
                sql_info,
                xdbc,
            }),
        })
    }

    /// The gRPC service to mount on a tonic server.
    pub fn into_server(self) -> FlightServiceServer<CivlinkFlightSql> {
        FlightServiceServer::new(self)
    }

    fn store(&self) -> &MetadataStore {
        self.inner.factory.store()
    }

    /// The principal behind the request's credentials.
    async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal> {
        let credentials = auth::credentials(metadata)?;
        let principal = self.store().authenticate(credentials.token()).await.map_err(Error::from_policy)?;
        match credentials.user() {
            Some(user) if !user.is_empty() && user != principal.name => Err(Error::UserMismatch),
            _ => Ok(principal),
        }
    }

    /// [`Self::authenticate`], auditing a failure under `audit_action`.
    async fn principal(&self, metadata: &MetadataMap, audit_action: &str) -> Result<Principal, Status> {
        match self.authenticate(metadata).await {
            Ok(principal) => Ok(principal),
            Err(e) => {
                let claimed = auth::credentials(metadata)
                    .ok()
                    .and_then(|c| c.user().filter(|u| !u.is_empty()).map(str::to_owned))
                    .unwrap_or_else(|| ANONYMOUS.to_owned());
                let mut entry = AuditEntry::new(claimed, audit_action, e.outcome());
                entry.purpose = auth::purpose(metadata);
                audit(self.store(), &entry).await;
                Err(to_status(&e))
            }
        }
    }

    /// A session for an authenticated principal.
    async fn session(&self, principal: &Principal) -> Result<ScopedSession> {
        self.inner.factory.session_for(principal).await
    }

    /// One of the principal's query slots, or `TooManyQueries`.
    fn slot(&self, principal: &str) -> Result<OwnedSemaphorePermit> {
        let limit = self.inner.factory.limits().max_concurrent_per_principal.max(1);
        let semaphore = match self.inner.slots.lock() {
            Ok(mut slots) => {
                Arc::clone(slots.entry(principal.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit))))
            }
            Err(_) => return Err(Error::Engine { message: "query slot table poisoned".into() }),
        };
        semaphore.try_acquire_owned().map_err(|_| Error::TooManyQueries { limit })
    }

    /// Plan `handle` for `principal`: the plan with parameters bound, and the datasets it names.
    async fn plan(&self, principal: &Principal, handle: &Handle) -> Result<(ScopedSession, LogicalPlan, Vec<String>)> {
        let session = self.session(principal).await?;
        let planned = session.plan_sql(&handle.sql).await?;
        let plan = bind(planned.plan, handle.params.as_ref())?;
        Ok((session, plan, planned.datasets))
    }

    /// `GetFlightInfo` for a statement: plan it, answer with its schema and a ticket.
    async fn flight_info_for(
        &self,
        request: Request<FlightDescriptor>,
        handle: Handle,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = Instant::now();
        let principal = self.principal(request.metadata(), action::QUERY).await?;
        let purpose = auth::purpose(request.metadata());
        let result = async {
            let (_, plan, _) = self.plan(&principal, &handle).await?;
            let ticket = TicketStatementQuery { statement_handle: handle.for_execution().encode()?.into() };
            let info = FlightInfo::new()
                .try_with_schema(&wire_schema(plan.schema().as_arrow()))?
                .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())))
                .with_descriptor(request.get_ref().clone())
                .with_ordered(true);
            Ok::<_, Error>(info)
        }
        .await;
        match result {
            Ok(info) => Ok(Response::new(info)),
            Err(e) => {
                // Planning failures are audited here; successful plans when they run.
                let mut entry = AuditEntry::new(principal.name.clone(), action::QUERY, e.outcome());
                entry.purpose = purpose;
                entry.sql_text = Some(handle.sql.clone());
                entry.duration_ms = Some(millis(started.elapsed()));
                audit(self.store(), &entry).await;
                Err(to_status(&e))
            }
        }
    }

    /// `DoGet` for a statement through tonic's codec (arrow-flight's encoder):
    /// the path a bare [`Self::into_server`] takes. `civlink serve` answers
    /// `DoGet` through [`crate::wire::FastDoGet`] instead, over the same
    /// [`Self::execute_batches`].
    async fn execute(&self, metadata: &MetadataMap, handle: Handle) -> Result<Response<DoGetStream>, Status> {
        let (wire, batches) = self.execute_batches(metadata, handle).await?;
        let flight = FlightDataEncoderBuilder::new().with_schema(wire).build(batches).map_err(Status::from);
        Ok(Response::new(Box::pin(flight) as DoGetStream))
    }

    /// What a `DoGet` ticket answers: a statement's record batches (its wire
    /// schema and the stream), or, for any other ticket (metadata commands),
    /// arrow-flight's own encoded stream.
    pub(crate) async fn do_get_results(&self, request: Request<Ticket>) -> Result<DoGetResults, Status> {
        let handle = match Any::decode(request.get_ref().ticket.clone()) {
            Ok(any) if any.is::<TicketStatementQuery>() => {
                let ticket = any.unpack::<TicketStatementQuery>().map_err(|e| to_status(&Error::from(e)))?;
                ticket.map(|t| t.statement_handle)
            }
            Ok(any) if any.is::<CommandPreparedStatementQuery>() => {
                let query = any.unpack::<CommandPreparedStatementQuery>().map_err(|e| to_status(&Error::from(e)))?;
                query.map(|q| q.prepared_statement_handle)
            }
            _ => None,
        };
        match handle {
            Some(handle) => {
                let handle = Handle::decode(&handle).map_err(|e| to_status(&e))?;
                let (wire, batches) = self.execute_batches(request.metadata(), handle).await?;
                Ok(DoGetResults::Batches {
                    schema: wire,
                    batches: Box::pin(batches.map_err(Status::from)),
                    pre_encoded: self.inner.factory.pre_encoded().clone(),
                })
            }
            None => Ok(DoGetResults::Encoded(FlightService::do_get(self, request).await?.into_inner())),
        }
    }

    /// Run a statement: its wire schema and its batches, streamed as
    /// DataFusion produces them, in the wire types, under the time limit and
    /// the principal's query slot, audited when the stream ends or is dropped.
    async fn execute_batches(
        &self,
        metadata: &MetadataMap,
        handle: Handle,
    ) -> Result<(SchemaRef, impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static), Status> {
        let started = Instant::now();
        let principal = self.principal(metadata, action::QUERY).await?;
        let mut entry = AuditEntry::new(principal.name.clone(), action::QUERY, "ok");
        entry.purpose = auth::purpose(metadata);
        entry.sql_text = Some(handle.sql.clone());
        let mut guard = AuditGuard { store: self.store().clone(), entry: Some(entry), started, rows: 0 };

        let prepared = async {
            let permit = self.slot(&principal.name)?;
            let (session, plan, datasets) = self.plan(&principal, &handle).await?;
            if let Some(entry) = guard.entry.as_mut() {
                entry.datasets = datasets;
            }
            let wire = wire_schema(plan.schema().as_arrow());
            let frame = session.ctx.execute_logical_plan(plan).await?;
            let stream = frame.execute_stream().await?;
            Ok::<_, Error>((permit, wire, stream))
        }
        .await;
        let (permit, wire, stream) = match prepared {
            Ok(ok) => ok,
            Err(e) => {
                guard.finish(e.outcome()).await;
                return Err(to_status(&e));
            }
        };

        let (abort, registration) = AbortHandle::new_pair();
        let registered = (!handle.query_id.is_empty()).then(|| self.register(&handle.query_id, &principal.name, abort));
        let timeout = self.inner.factory.limits().query_timeout;
        let run = QueryRun {
            batches: Abortable::new(stream, registration),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            wire: Arc::clone(&wire),
            audit: guard,
            _permit: permit,
            _registered: registered,
        };
        Ok((wire, futures::stream::unfold(Some(run), next_batch)))
    }

    /// Record a running query under its ticket's id.
    fn register(&self, query_id: &str, principal: &str, abort: AbortHandle) -> Registered {
        let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(query_id.to_owned(), Running { serial, principal: principal.to_owned(), abort });
        }
        Registered { inner: Arc::clone(&self.inner), query_id: query_id.to_owned(), serial }
    }

    /// Cancel the running queries of a FlightInfo's tickets (the principal's own only).
    fn cancel(&self, info: &FlightInfo, principal: &Principal) -> Result<CancelStatus> {
        let mut cancelled = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else { continue };
            let Some(handle) = Any::decode(ticket.ticket.clone())
                .ok()
                .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
                .and_then(|t| Handle::decode(&t.statement_handle).ok())
            else {
                continue;
            };
            if let Ok(running) = self.inner.running.lock()
                && let Some(query) = running.get(&handle.query_id)
                && query.principal == principal.name
            {
                query.abort.abort();
                cancelled = true;
            }
        }
        if cancelled { Ok(CancelStatus::Cancelled) } else { Err(Error::UnknownQuery) }
    }

    /// A metadata `FlightInfo`: the command itself is the ticket.
    async fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        command: Any,
        schema: &Schema,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(request.metadata(), "metadata").await?;
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| to_status(&Error::from(e)))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(command.encode_to_vec())))
            .with_descriptor(request.into_inner());
        Ok(Response::new(info))
    }
}

/// Removes a query from the running table when its stream ends.
struct Registered {
    inner: Arc<Inner>,
    query_id: String,
    serial: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut running) = self.inner.running.lock()
            && running.get(&self.query_id).is_some_and(|r| r.serial == self.serial)
        {
            running.remove(&self.query_id);
        }
    }
}

/// Writes a query's audit entry once: when the stream ends, or when it is dropped.
struct AuditGuard {
    store: MetadataStore,
    entry: Option<AuditEntry>,
    started: Instant,
    rows: u64,
}

impl AuditGuard {
    async fn finish(&mut self, outcome: String) {
        if let Some(mut entry) = self.entry.take() {
            entry.outcome = outcome;
            entry.rows = Some(self.rows);
            entry.duration_ms = Some(millis(self.started.elapsed()));
            audit(&self.store, &entry).await;
        }
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        // The client went away mid-stream: record what it got.
        if let Some(mut entry) = self.entry.take() {
            entry.outcome = "cancelled: the client closed the stream".into();
            entry.rows = Some(self.rows);
            entry.duration_ms = Some(millis(self.started.elapsed()));
            let store = self.store.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move { audit(&store, &entry).await });
                }
                Err(_) => tracing::error!(principal = %entry.principal, "no runtime to write an audit entry on"),
            }
        }
    }
}

/// A query being streamed.
struct QueryRun {
    batches: Abortable<SendableRecordBatchStream>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    wire: SchemaRef,
    audit: AuditGuard,
    _permit: OwnedSemaphorePermit,
    _registered: Option<Registered>,
}

/// The next batch of a query (for `stream::unfold`): stops at the deadline,
/// on cancellation, on the first error, or at the end, auditing once.
async fn next_batch(state: Option<QueryRun>) -> Option<(Result<RecordBatch, FlightError>, Option<QueryRun>)> {
    let mut run = state?;
    let next = tokio::select! {
        biased;
        () = &mut run.deadline => Err(Error::Timeout { seconds: run.timeout.as_secs() }),
        item = run.batches.next() => match item {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(Error::from_datafusion(e)),
            None if run.batches.is_aborted() => Err(Error::Cancelled),
            None => Ok(None),
        },
    };
    let failure = match next {
        Ok(Some(batch)) => match to_wire(&batch, &run.wire) {
            Ok(batch) => {
                run.audit.rows += batch.num_rows() as u64;
                return Some((Ok(batch), Some(run)));
            }
            Err(e) => Error::from(e),
        },
        Ok(None) => {
            run.audit.finish("ok".into()).await;
            return None;
        }
        Err(e) => e,
    };
    run.audit.finish(failure.outcome()).await;
    Some((Err(FlightError::Tonic(Box::new(to_status(&failure)))), None))
}

/// Append an audit entry; a failure is logged, not returned.
async fn audit(store: &MetadataStore, entry: &AuditEntry) {
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(error = %e, principal = %entry.principal, action = %entry.action, "cannot write the audit log");
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Bind positional parameters (one row) to a plan's placeholders.
fn bind(plan: LogicalPlan, params: Option<&RecordBatch>) -> Result<LogicalPlan> {
    let expected = plan.get_parameter_types().map_err(Error::from_datafusion)?;
    let Some(batch) = params.filter(|b| b.num_columns() > 0) else {
        if expected.is_empty() {
            return Ok(plan);
        }
        let mut names: Vec<_> = expected.keys().cloned().collect();
        names.sort();
        return Err(Error::InvalidRequest {
            message: format!("the statement has parameters ({}); bind them first", names.join(", ")),
        });
    };
    if batch.num_rows() != 1 {
        return Err(Error::InvalidRequest {
            message: format!("bind exactly one row of parameters (got {})", batch.num_rows()),
        });
    }
    let mut values = Vec::with_capacity(batch.num_columns());
    for (i, column) in batch.columns().iter().enumerate() {
        let value = ScalarValue::try_from_array(column, 0).map_err(Error::from_datafusion)?;
        // Clients bind plain strings where the plan expects views (and the like): cast to the placeholder's type.
        let value = match expected.get(&format!("${}", i + 1)) {
            Some(Some(t)) if value.data_type() != *t && !value.is_null() => {
                value.cast_to(t).map_err(|e| Error::InvalidRequest {
                    message: format!("parameter ${} cannot be used as {t}: {}", i + 1, e.message()),
                })?
            }
            Some(Some(t)) if value.is_null() => ScalarValue::try_from(t).unwrap_or(value),
            _ => value,
        };
        values.push(value);
    }
    plan.with_param_values(values).map_err(Error::from_datafusion)
}

/// The type a column travels as: string and binary views as their plain
/// forms (clients and drivers read those everywhere), and dictionaries as
/// their values (so the schema `GetFlightInfo` announces is the one the
/// stream carries, with no dictionary messages), recursively.
fn wire_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => wire_type(values),
        DataType::List(f) => DataType::List(Arc::new(wire_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(wire_field(f))),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(Arc::new(wire_field(f)), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| wire_field(f)).collect::<Fields>()),
        other => other.clone(),
    }
}

fn wire_field(field: &Field) -> Field {
    field.clone().with_data_type(wire_type(field.data_type()))
}

/// The schema results travel with.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(|f| wire_field(f)).collect::<Fields>(),
        schema.metadata().clone(),
    ))
}

/// A result batch in the wire schema (a no-op but for the schema when the
/// types already match, as they do for tables served from the cache).
pub(crate) fn to_wire(batch: &RecordBatch, wire: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields().iter().zip(wire.fields()).all(|(a, b)| a.data_type() == b.data_type()) {
        return RecordBatch::try_new(Arc::clone(wire), batch.columns().to_vec());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(wire.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(Arc::clone(wire), columns)
}

/// A response streaming one batch.
fn one_batch<E: Into<FlightError>>(schema: SchemaRef, batch: Result<RecordBatch, E>) -> Response<DoGetStream> {
    let batch = batch.map_err(Into::into);
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { batch }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// IPC bytes of a schema (for prepared-statement results).
fn schema_bytes(schema: &Schema) -> Result<Bytes> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &arrow::ipc::writer::IpcWriteOptions::default()).try_into()?;
    Ok(message.0)
}

/// The schema of `GetPrimaryKeys` results (Flight SQL spec).
fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// What `GetSqlInfo` reports.
fn sql_info(factory: &SessionFactory) -> Result<SqlInfoData> {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "civlink");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    builder.append(SqlInfo::FlightSqlServerCancel, true);
    let timeout = i32::try_from(factory.limits().query_timeout.as_secs()).unwrap_or(i32::MAX);
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, timeout);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    Ok(builder.build()?)
}

/// What `GetXdbcTypeInfo` reports: the SQL types results come in.
fn xdbc_types() -> Result<XdbcTypeInfoData> {
    let base = |name: &str, data_type: XdbcDataType| XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        nullable: Nullable::NullabilityNullable,
        searchable: Searchable::Full,
        local_type_name: Some(name.into()),
        sql_data_type: data_type,
        ..Default::default()
    };
    let mut builder = XdbcTypeInfoDataBuilder::new();
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("'".into()),
        literal_suffix: Some("'".into()),
        case_sensitive: true,
        ..base("VARCHAR", XdbcDataType::XdbcVarchar)
    });
    for (name, t, size) in [
        ("BIGINT", XdbcDataType::XdbcBigint, 64),
        ("INTEGER", XdbcDataType::XdbcInteger, 32),
        ("DOUBLE", XdbcDataType::XdbcDouble, 53),
    ] {
        builder.append(XdbcTypeInfo {
            column_size: Some(size),
            unsigned_attribute: Some(false),
            num_prec_radix: Some(2),
            ..base(name, t)
        });
    }
    builder.append(base("BOOLEAN", XdbcDataType::XdbcBit));
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("DATE '".into()),
        literal_suffix: Some("'".into()),
        sql_data_type: XdbcDataType::XdbcDatetime,
        datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        ..base("DATE", XdbcDataType::XdbcDate)
    });
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("TIMESTAMP '".into()),
        literal_suffix: Some("'".into()),
        sql_data_type: XdbcDataType::XdbcDatetime,
        datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        ..base("TIMESTAMP", XdbcDataType::XdbcTimestamp)
    });
    Ok(builder.build()?)
}

#[tonic::async_trait]
impl FlightSqlService for CivlinkFlightSql {
    type FlightService = CivlinkFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let started = Instant::now();
        let metadata = request.metadata();
        let principal = self.principal(metadata, action::HANDSHAKE).await?;
        let token = match auth::credentials(metadata) {
            Ok(Credentials::Basic { token, .. } | Credentials::Bearer { token }) => token,
            Err(e) => return Err(to_status(&e)),
        };
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| to_status(&Error::MalformedCredentials { reason: "token is not a valid header value" }))?;
        let mut entry = AuditEntry::new(principal.name.clone(), action::HANDSHAKE, "ok");
        entry.purpose = auth::purpose(metadata);
        entry.duration_ms = Some(millis(started.elapsed()));
        audit(self.store(), &entry).await;
        let output = futures::stream::iter([Ok(HandshakeResponse { protocol_version: 0, payload: Bytes::new() })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> =
            Response::new(Box::pin(output));
        response.metadata_mut().insert(auth::AUTHORIZATION, header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        if query.transaction_id.is_some() {
            return Err(to_status(&Error::Unsupported { what: "transactions".into() }));
        }
        self.flight_info_for(request, Handle::new(query.query)).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = Handle::decode(&query.prepared_statement_handle).map_err(|e| to_status(&e))?;
        self.flight_info_for(request, handle).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = Handle::decode(&ticket.statement_handle).map_err(|e| to_status(&e))?;
        self.execute(request.metadata(), handle).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = Handle::decode(&query.prepared_statement_handle).map_err(|e| to_status(&e))?;
        self.execute(request.metadata(), handle).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let started = Instant::now();
        let metadata = request.metadata();
        let principal = self.principal(metadata, action::PREPARE).await?;
        let mut entry = AuditEntry::new(principal.name.clone(), action::PREPARE, "ok");
        entry.purpose = auth::purpose(metadata);
        entry.sql_text = Some(query.query.clone());
        let result = async {
            if query.transaction_id.is_some() {
                return Err(Error::Unsupported { what: "transactions".into() });
            }
            let session = self.session(&principal).await?;
            let planned = session.plan_sql(&query.query).await?;
            entry.datasets = planned.datasets.clone();
            let parameters = parameter_schema(&planned.plan)?;
            Ok(ActionCreatePreparedStatementResult {
                prepared_statement_handle: Handle::new(query.query.clone()).encode()?.into(),
                dataset_schema: schema_bytes(&wire_schema(planned.plan.schema().as_arrow()))?,
                parameter_schema: schema_bytes(&parameters)?,
            })
        }
        .await;
        entry.duration_ms = Some(millis(started.elapsed()));
        if let Err(e) = &result {
            entry.outcome = e.outcome();
        }
        audit(self.store(), &entry).await;
        result.map_err(|e| to_status(&e))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.principal(request.metadata(), action::PREPARE).await?;
        let handle = Handle::decode(&query.prepared_statement_handle).map_err(|e| to_status(&e))?;
        // The peekable stream still yields the first message (with the schema).
        let flight = request.into_inner().map_err(|status| FlightError::Tonic(Box::new(status)));
        let mut batches = FlightRecordBatchStream::new_from_flight_data(flight);
        let mut params: Option<RecordBatch> = None;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| {
                to_status(&Error::InvalidRequest { message: format!("cannot read the parameters: {e}") })
            })?;
            if batch.num_rows() == 0 {
                continue;
            }
            if params.is_some() || batch.num_rows() > 1 {
                return Err(to_status(&Error::InvalidRequest {
                    message: "bind exactly one row of parameters per execution".into(),
                }));
            }
            params = Some(batch);
        }
        let bound = Handle { params, ..handle };
        let encoded = bound.encode().map_err(|e| to_status(&e))?;
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(encoded.into()) })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Stateless handles: nothing to free.
        self.principal(request.metadata(), action::PREPARE).await?;
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(request.metadata(), action::QUERY).await?;
        Err(to_status(&Error::PermissionDenied { what: "this service is read-only (queries only)".into() }))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(request.metadata(), action::QUERY).await?;
        Err(to_status(&Error::PermissionDenied {
            what: "this service is read-only; ingest through civlink ingest".into(),
        }))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), "metadata").await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = self.principal(request.metadata(), "metadata").await?;
        let session = self.session(&principal).await.map_err(|e| to_status(&e))?;
        let mut departments: Vec<&str> = session.datasets.iter().map(|(r, _)| r.spec.id.department.code()).collect();
        departments.sort_unstable();
        departments.dedup();
        let mut builder = query.into_builder();
        for department in departments {
            builder.append(CATALOG, department);
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = self.principal(request.metadata(), "metadata").await?;
        let session = self.session(&principal).await.map_err(|e| to_status(&e))?;
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        let mut ids: Vec<_> = session.datasets.iter().map(|(r, _)| r.spec.id.clone()).collect();
        ids.sort();
        for id in ids {
            let schema = if include_schema {
                match session.table(&id).await.map_err(|e| to_status(&e))? {
                    Some(table) => wire_schema(&table.schema()),
                    None => continue,
                }
            } else {
                Arc::new(Schema::empty())
            };
            builder
                .append(CATALOG, id.department.code(), &id.name, TABLE_TYPE, &schema)
                .map_err(|e| to_status(&Error::from(e)))?;
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), "metadata").await?;
        let mut builder = query.into_builder();
        builder.append(TABLE_TYPE);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.inner.sql_info).schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), "metadata").await?;
        let builder = query.into_builder(&self.inner.sql_info);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.inner.xdbc).schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), "metadata").await?;
        let builder = query.into_builder(&self.inner.xdbc);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &primary_keys_schema()).await
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let principal = self.principal(request.metadata(), "metadata").await?;
        let session = self.session(&principal).await.map_err(|e| to_status(&e))?;
        let mut catalogs = StringBuilder::new();
        let mut schemas = StringBuilder::new();
        let mut tables = StringBuilder::new();
        let mut columns = StringBuilder::new();
        let mut key_names = StringBuilder::new();
        let mut sequence = Int32Builder::new();
        let catalog_ok = query.catalog.as_deref().is_none_or(|c| c == CATALOG);
        for (record, access) in &session.datasets {
            let id = &record.spec.id;
            let schema_ok = query.db_schema.as_deref().is_none_or(|s| s == id.department.code());
            if !catalog_ok || !schema_ok || id.name != query.table {
                continue;
            }
            // Only key columns the principal can see are reported.
            let visible = record.spec.primary_key.iter().filter(|k| access.column(k).is_some());
            for (position, column) in (1..).zip(visible) {
                catalogs.append_value(CATALOG);
                schemas.append_value(id.department.code());
                tables.append_value(&id.name);
                columns.append_value(column);
                key_names.append_null();
                sequence.append_value(position);
            }
        }
        let schema = primary_keys_schema();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(catalogs.finish()),
            Arc::new(schemas.finish()),
            Arc::new(tables.finish()),
            Arc::new(columns.finish()),
            Arc::new(key_names.finish()),
            Arc::new(sequence.finish()),
        ];
        Ok(one_batch(Arc::clone(&schema), RecordBatch::try_new(schema, arrays)))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let principal = self.principal(request.metadata(), "cancel").await?;
        let info = FlightInfo::decode(query.info).map_err(|_| {
            to_status(&Error::InvalidRequest { message: "CancelQuery carries no valid FlightInfo".into() })
        })?;
        let status = self.cancel(&info, &principal).map_err(|e| to_status(&e))?;
        Ok(ActionCancelQueryResult { result: status as i32 })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        if request.get_ref().r#type != CANCEL_FLIGHT_INFO {
            return Err(to_status(&Error::Unsupported { what: format!("action {}", request.get_ref().r#type) }));
        }
        let principal = self.principal(request.metadata(), "cancel").await?;
        let info =
            CancelFlightInfoRequest::decode(request.get_ref().body.clone()).ok().and_then(|r| r.info).ok_or_else(
                || to_status(&Error::InvalidRequest { message: "CancelFlightInfo carries no FlightInfo".into() }),
            )?;
        let status = self.cancel(&info, &principal).map_err(|e| to_status(&e))?;
        let body = CancelFlightInfoResult::new(status).encode_to_vec();
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(arrow_flight::Result::new(body))]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.into(),
            description: "Cancel a running query: body CancelFlightInfoRequest, result CancelFlightInfoResult".into(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The parameters of a plan as a schema: `$1`, `$2`, … in order, typed when
/// DataFusion could infer the type (`Null` otherwise: bind anything).
fn parameter_schema(plan: &LogicalPlan) -> Result<Schema> {
    let types = plan.get_parameter_types().map_err(Error::from_datafusion)?;
    let mut names: Vec<(u64, String)> = types
        .keys()
        .map(|name| (name.trim_start_matches('$').parse::<u64>().unwrap_or(u64::MAX), name.clone()))
        .collect();
    names.sort();
    let fields: Vec<Field> = names
        .into_iter()
        .map(|(_, name)| {
            let t = types.get(&name).cloned().flatten().map(|t| wire_type(&t)).unwrap_or(DataType::Null);
            Field::new(name, t, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, StringViewArray};

    #[test]
    fn views_travel_as_plain_strings() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new("b", DataType::Int64, false),
            Field::new("c", DataType::List(Arc::new(Field::new("item", DataType::Utf8View, true))), true),
        ]);
        let wire = wire_schema(&schema);
        assert_eq!(wire.field(0).data_type(), &DataType::Utf8);
        assert_eq!(wire.field(1).data_type(), &DataType::Int64);
        assert_eq!(wire.field(2).data_type(), &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))));
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8View, true)]));
        let batch =
            RecordBatch::try_new(one.clone(), vec![Arc::new(StringViewArray::from(vec!["青海", "x"]))]).unwrap();
        let out = to_wire(&batch, &wire_schema(&one)).unwrap();
        assert_eq!(out.column(0).as_string::<i32>().value(0), "青海");
    }

    #[test]
    fn dictionaries_travel_as_their_values() {
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8View));
        let schema = Arc::new(Schema::new(vec![Field::new("code", dictionary, true)]));
        let wire = wire_schema(&schema);
        assert_eq!(wire.field(0).data_type(), &DataType::Utf8, "the dictionary's values, views as plain strings");
        let values: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
            vec![Some("男"), None, Some("女"), Some("男")].into_iter().collect();
        let values = arrow::compute::cast(&values, schema.field(0).data_type()).unwrap();
        let out = to_wire(&RecordBatch::try_new(schema, vec![values]).unwrap(), &wire).unwrap();
        let strings = out.column(0).as_string::<i32>();
        assert_eq!(strings.iter().collect::<Vec<_>>(), [Some("男"), None, Some("女"), Some("男")]);
    }

    #[test]
    fn parameters_are_listed_in_order() {
        let ctx = datafusion::prelude::SessionContext::new();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let plan = rt
            .block_on(
                ctx.state().create_logical_plan("SELECT * FROM (VALUES (1, 'a')) t(x, y) WHERE x > $2 AND y = $1"),
            )
            .unwrap();
        let schema = parameter_schema(&plan).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["$1", "$2"]);
        let unbound = bind(plan.clone(), None);
        assert!(matches!(unbound, Err(Error::InvalidRequest { .. })));
    }

    #[test]
    fn metadata_builders_build() {
        assert!(xdbc_types().is_ok());
        assert_eq!(primary_keys_schema().fields().len(), 6);
    }
}
