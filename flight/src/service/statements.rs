//! Statements: the handshake, `GetFlightInfo` for SQL and prepared
//! statements, preparing, binding parameters, and running a ticket.

use std::pin::Pin;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandPreparedStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc,
    Ticket,
};
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, Principal};
use civlink_query::{Error, QueryRequest, QueryStream, Statement};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use prost::bytes::Bytes;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use super::CivlinkFlightSql;
use crate::auth::{self, Credentials};
use crate::error::to_status;
use crate::handle::Handle;

/// What the handshake answers.
pub(super) type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

impl CivlinkFlightSql {
    /// The handshake: authenticate, audit, and hand the token back as the bearer token.
    pub(super) async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let started = Instant::now();
        let metadata = request.metadata();
        let principal = self.principal(metadata, AuditAction::Handshake).await?;
        let token = match auth::credentials(metadata) {
            Ok(Credentials::Basic { token, .. } | Credentials::Bearer { token }) => token,
            Err(e) => return Err(to_status(&e)),
        };
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| to_status(&Error::MalformedCredentials { reason: "token is not a valid header value" }))?;
        let mut entry = AuditEntry::new(principal.name.clone(), AuditAction::Handshake, AuditOutcome::OK);
        entry.purpose = auth::purpose(metadata);
        entry.duration_ms = Some(millis(started));
        self.factory().auditor().append(entry).await.map_err(|e| to_status(&e))?;
        let output = futures::stream::iter([Ok(HandshakeResponse { protocol_version: 0, payload: Bytes::new() })]);
        let mut response: Response<HandshakeStream> = Response::new(Box::pin(output));
        response.metadata_mut().insert(auth::AUTHORIZATION, header);
        Ok(response)
    }

    /// What the query layer records of a request.
    fn query_request(
        &self,
        principal: &Principal,
        metadata: &MetadataMap,
        action: AuditAction,
        handle: &Handle,
    ) -> QueryRequest {
        QueryRequest {
            principal: principal.clone(),
            purpose: auth::purpose(metadata),
            action,
            text: handle.sql.clone(),
            query_id: (!handle.query_id.is_empty()).then(|| handle.query_id.clone()),
        }
    }

    /// `GetFlightInfo` for a statement: plan it, answer with its schema and a ticket.
    pub(super) async fn flight_info_for(
        &self,
        request: Request<FlightDescriptor>,
        handle: Handle,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = self.principal(request.metadata(), AuditAction::Query).await?;
        // The ticket's query id names the plan made here, kept for its DoGet.
        let ticket_handle = handle.for_execution();
        let query = self.query_request(&principal, request.metadata(), AuditAction::Query, &ticket_handle);
        let described = self
            .factory()
            .describe(&query, &ticket_handle.sql, Some(ticket_handle.params.as_ref().unwrap_or(&empty_params())))
            .await
            .map_err(|e| to_status(&e))?;
        let ticket =
            TicketStatementQuery { statement_handle: ticket_handle.encode().map_err(|e| to_status(&e))?.into() };
        let info = FlightInfo::new()
            .try_with_schema(&described.schema)
            .map_err(|e| to_status(&Error::from(e)))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())))
            .with_descriptor(request.into_inner())
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// Run a statement ticket: the query layer's governed run.
    pub(super) async fn run_ticket(&self, metadata: &MetadataMap, handle: Handle) -> Result<QueryStream, Status> {
        let principal = self.principal(metadata, AuditAction::Query).await?;
        let request = self.query_request(&principal, metadata, AuditAction::Query, &handle);
        let statement = Statement::Sql { sql: handle.sql, params: handle.params };
        self.factory().run(request, statement).await.map_err(|e| to_status(&e))
    }

    /// Create a prepared statement: plan it (audited), answer with its schemas.
    pub(super) async fn prepare(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let started = Instant::now();
        let metadata = request.metadata();
        let principal = self.principal(metadata, AuditAction::Prepare).await?;
        if query.transaction_id.is_some() {
            return Err(to_status(&Error::Unsupported { what: "transactions".into() }));
        }
        let handle = Handle::new(query.query.clone());
        let request = self.query_request(&principal, metadata, AuditAction::Prepare, &handle);
        let described = self.factory().describe(&request, &query.query, None).await.map_err(|e| to_status(&e))?;
        let result = (|| {
            Ok::<_, Error>(ActionCreatePreparedStatementResult {
                prepared_statement_handle: handle.encode()?.into(),
                dataset_schema: schema_bytes(&described.schema)?,
                parameter_schema: schema_bytes(&described.parameters)?,
            })
        })();
        let mut entry = AuditEntry::new(principal.name.clone(), AuditAction::Prepare, AuditOutcome::OK);
        entry.purpose = request.purpose;
        entry.sql_text = Some(query.query);
        entry.datasets = described.datasets;
        entry.duration_ms = Some(millis(started));
        if let Err(e) = &result {
            entry.outcome = e.outcome();
        }
        self.factory().auditor().append(entry).await.map_err(|e| to_status(&e))?;
        result.map_err(|e| to_status(&e))
    }

    /// `DoPut` with a prepared statement's parameters: a new handle carrying them.
    pub(super) async fn bind_parameters(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.principal(request.metadata(), AuditAction::Prepare).await?;
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
}

/// No parameters: a statement with placeholders then fails to plan, with a
/// message naming them.
fn empty_params() -> RecordBatch {
    RecordBatch::new_empty(SchemaRef::new(Schema::empty()))
}

/// IPC bytes of a schema (for prepared-statement results).
fn schema_bytes(schema: &Schema) -> Result<Bytes, Error> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &arrow::ipc::writer::IpcWriteOptions::default()).try_into()?;
    Ok(message.0)
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
