//! Cancellation: `CancelFlightInfo` (and the older `CancelQuery`) stop a
//! running query of the same principal, found by its tickets' query ids.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, Any, TicketStatementQuery};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo};
use civlink_catalog::policy::{AuditAction, Principal};
use civlink_query::Error;
use prost::Message;
use tonic::{Request, Response, Status};

use super::{CANCEL_FLIGHT_INFO, CivlinkFlightSql};
use crate::error::to_status;
use crate::handle::Handle;

impl CivlinkFlightSql {
    /// Cancel the running queries of a FlightInfo's tickets (the principal's own only).
    fn cancel(&self, info: &FlightInfo, principal: &Principal) -> Result<CancelStatus, Error> {
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
            if self.factory().running().cancel(&handle.query_id, &principal.name).is_ok() {
                cancelled = true;
            }
        }
        if cancelled { Ok(CancelStatus::Cancelled) } else { Err(Error::UnknownQuery) }
    }

    pub(super) async fn cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let principal = self.principal(request.metadata(), AuditAction::Cancel).await?;
        let info = FlightInfo::decode(query.info).map_err(|_| {
            to_status(&Error::InvalidRequest { message: "CancelQuery carries no valid FlightInfo".into() })
        })?;
        let status = self.cancel(&info, &principal).map_err(|e| to_status(&e))?;
        Ok(ActionCancelQueryResult { result: status as i32 })
    }

    pub(super) async fn cancel_flight_info(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        if request.get_ref().r#type != CANCEL_FLIGHT_INFO {
            return Err(to_status(&Error::Unsupported { what: format!("action {}", request.get_ref().r#type) }));
        }
        let principal = self.principal(request.metadata(), AuditAction::Cancel).await?;
        let info =
            CancelFlightInfoRequest::decode(request.get_ref().body.clone()).ok().and_then(|r| r.info).ok_or_else(
                || to_status(&Error::InvalidRequest { message: "CancelFlightInfo carries no FlightInfo".into() }),
            )?;
        let status = self.cancel(&info, &principal).map_err(|e| to_status(&e))?;
        let body = CancelFlightInfoResult::new(status).encode_to_vec();
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(arrow_flight::Result::new(body))]))))
    }
}
