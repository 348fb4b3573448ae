//! The Flight SQL service: [`CivlinkFlightSql`] implements arrow-flight's
//! [`FlightSqlService`] over the governed query layer ([`civlink_query`]).
//!
//! # Authentication
//!
//! The handshake takes `authorization: Basic base64(user:token)` (or
//! `Bearer <token>`) and answers with `authorization: Bearer <token>`: the
//! civlink token itself; the user name, when given, must be the token's
//! principal. Every other call must carry the bearer token and is
//! authenticated again, so expiry and revocation bite at once. A failure is
//! `UNAUTHENTICATED`; naming a dataset one may not read, or writing
//! anything, is `PERMISSION_DENIED`.
//!
//! # Statements ([`statements`])
//!
//! `GetFlightInfo(CommandStatementQuery)` plans the SQL in the principal's
//! session, under its query slot and the time limit, so errors surface
//! before any data moves, and returns the result schema with one endpoint
//! whose ticket is a stateless [`Handle`] (the SQL and a fresh query id).
//! `DoGet` runs the ticket through [`civlink_query::SessionFactory::run`] and
//! **streams** record batches as DataFusion produces them, in the plain types
//! every client reads ([`civlink_query::plain`]). Served by `civlink serve`,
//! the batches are framed by [`crate::wire::FastDoGet`] without copying their
//! buffers (a bare [`CivlinkFlightSql::into_server`] uses arrow-flight's
//! `FlightDataEncoder` instead).
//!
//! Prepared statements are stateless too: the handle carries the SQL;
//! `DoPut` with parameters (one row, placeholders `$1`, `$2`, … by column
//! position) answers with a new handle that carries them as well; closing
//! is a no-op.
//!
//! # Metadata ([`metadata`]) and cancellation ([`cancel`])
//!
//! The catalog calls answer from the principal's session: only what it may
//! read. `CancelFlightInfo` (or the older `CancelQuery`) with the
//! `FlightInfo` stops a running query of the same principal; a client
//! dropping the stream stops execution.
//!
//! # Limits and audit
//!
//! The query layer's: see [`civlink_query::run`]. A query's first audit
//! entry is written before its first batch leaves, and a query whose entry
//! cannot be written is refused.

mod cancel;
mod do_get;
mod metadata;
mod statements;

use std::sync::Arc;

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{Action, ActionType, FlightDescriptor, FlightInfo, HandshakeRequest, Ticket};
use civlink_catalog::policy::{AuditAction, Principal};
use civlink_query::SessionFactory;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::encoded::PreEncoded;
use crate::error::to_status;
use crate::handle::Handle;

pub(crate) use do_get::DoGetResults;

/// The action name of the Flight RPC cancellation.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
/// The only table type civlink has.
pub const TABLE_TYPE: &str = "TABLE";

/// The stream type of `DoGet`.
type DoGetStream = <CivlinkFlightSql as FlightService>::DoGetStream;

/// The civlink Flight SQL service. Cheap to clone.
#[derive(Clone)]
pub struct CivlinkFlightSql {
    inner: Arc<Inner>,
}

struct Inner {
    factory: Arc<SessionFactory>,
    /// Cached batches as their Flight messages (the factory's cache keeps them through it).
    pre_encoded: PreEncoded,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
}

impl std::fmt::Debug for CivlinkFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CivlinkFlightSql").field("factory", &self.inner.factory).finish_non_exhaustive()
    }
}

impl CivlinkFlightSql {
    /// The service over `factory`'s sessions; `pre_encoded` is the keeper the
    /// factory's cache was built with (see [`crate::wire`]), or a fresh one.
    pub fn new(factory: Arc<SessionFactory>, pre_encoded: PreEncoded) -> civlink_query::Result<CivlinkFlightSql> {
        let sql_info = metadata::sql_info(&factory)?;
        let xdbc = metadata::xdbc_types()?;
        Ok(CivlinkFlightSql { inner: Arc::new(Inner { factory, pre_encoded, sql_info, xdbc }) })
    }

    /// The gRPC service to mount on a tonic server.
    pub fn into_server(self) -> FlightServiceServer<CivlinkFlightSql> {
        FlightServiceServer::new(self)
    }

    fn factory(&self) -> &SessionFactory {
        &self.inner.factory
    }

    /// The principal behind the request's credentials; a failure is audited
    /// (aggregated) under `action`.
    async fn principal(&self, metadata: &MetadataMap, action: AuditAction) -> Result<Principal, Status> {
        self.factory()
            .principal(auth::authorization(metadata), auth::purpose(metadata), action)
            .await
            .map_err(|e| to_status(&e))
    }
}

#[tonic::async_trait]
impl FlightSqlService for CivlinkFlightSql {
    type FlightService = CivlinkFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<statements::HandshakeStream>, Status> {
        self.handshake(request).await
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        if query.transaction_id.is_some() {
            return Err(to_status(&civlink_query::Error::Unsupported { what: "transactions".into() }));
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
        self.prepare(query, request).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.bind_parameters(query, request).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Stateless handles: nothing to free.
        self.principal(request.metadata(), AuditAction::Prepare).await?;
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(request.metadata(), AuditAction::Query).await?;
        Err(to_status(&civlink_query::Error::PermissionDenied {
            what: "this service is read-only (queries only)".into(),
        }))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(request.metadata(), AuditAction::Query).await?;
        Err(to_status(&civlink_query::Error::PermissionDenied {
            what: "this service is read-only; ingest through civlink ingest".into(),
        }))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.catalogs_info(query, request).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.catalogs(query, request).await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.schemas_info(query, request).await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.schemas(query, request).await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.tables_info(query, request).await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tables(query, request).await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.table_types_info(query, request).await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.table_types(query, request).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.sql_info_info(query, request).await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.sql_info(query, request).await
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.xdbc_info(query, request).await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.xdbc(query, request).await
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.primary_keys_info(query, request).await
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.primary_keys(query, request).await
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        self.cancel_query(query, request).await
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        self.cancel_flight_info(request).await
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.into(),
            description: "Cancel a running query: body CancelFlightInfoRequest, result CancelFlightInfoResult".into(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
