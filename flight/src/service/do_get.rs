//! `DoGet`: a statement ticket's results, or a metadata command's.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::Ticket;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{Any, CommandPreparedStatementQuery, TicketStatementQuery};
use futures::TryStreamExt;
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::{CivlinkFlightSql, DoGetStream};
use crate::encoded::PreEncoded;
use crate::error::to_status;
use crate::handle::Handle;

/// What a `DoGet` answers (see [`CivlinkFlightSql::do_get_results`]).
pub(crate) enum DoGetResults {
    /// A statement's results: the schema they travel in, and the batches.
    Batches {
        /// The plain schema, sent first.
        schema: SchemaRef,
        /// The batches, each already in `schema`.
        batches: futures::stream::BoxStream<'static, Result<RecordBatch, Status>>,
        /// Cached batches' messages, to send those as they are.
        pre_encoded: PreEncoded,
    },
    /// Any other ticket's messages, encoded by arrow-flight.
    Encoded(DoGetStream),
}

impl CivlinkFlightSql {
    /// `DoGet` for a statement through tonic's codec (arrow-flight's
    /// encoder): the path a bare [`Self::into_server`] takes. `civlink serve`
    /// answers `DoGet` through [`crate::wire::FastDoGet`] instead, over the
    /// same run.
    pub(super) async fn execute(
        &self,
        metadata: &MetadataMap,
        handle: Handle,
    ) -> Result<Response<DoGetStream>, Status> {
        let results = self.run_ticket(metadata, handle).await?;
        let schema = results.schema();
        let batches = results.map_err(|e| FlightError::Tonic(Box::new(to_status(&e))));
        let flight = FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(Status::from);
        Ok(Response::new(Box::pin(flight) as DoGetStream))
    }

    /// What a `DoGet` ticket answers: a statement's record batches, or, for
    /// any other ticket (metadata commands), arrow-flight's own encoded stream.
    pub(crate) async fn do_get_results(&self, request: Request<Ticket>) -> Result<DoGetResults, Status> {
        let unpacked = |e: arrow::error::ArrowError| to_status(&civlink_query::Error::from(e));
        let handle = match Any::decode(request.get_ref().ticket.clone()) {
            Ok(any) if any.is::<TicketStatementQuery>() => {
                any.unpack::<TicketStatementQuery>().map_err(unpacked)?.map(|t| t.statement_handle)
            }
            Ok(any) if any.is::<CommandPreparedStatementQuery>() => {
                any.unpack::<CommandPreparedStatementQuery>().map_err(unpacked)?.map(|q| q.prepared_statement_handle)
            }
            _ => None,
        };
        match handle {
            Some(handle) => {
                let handle = Handle::decode(&handle).map_err(|e| to_status(&e))?;
                let results = self.run_ticket(request.metadata(), handle).await?;
                Ok(DoGetResults::Batches {
                    schema: results.schema(),
                    batches: Box::pin(results.map_err(|e| to_status(&e))),
                    pre_encoded: self.inner.pre_encoded.clone(),
                })
            }
            None => Ok(DoGetResults::Encoded(FlightService::do_get(self, request).await?.into_inner())),
        }
    }
}
