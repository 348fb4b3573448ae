//! # civlink-flight
//!
//! Flight SQL over the governed query layer: analysts and department
//! services query the Delta tables with SQL (DataFusion 55) from ADBC, JDBC
//! or pyarrow clients. Everything about *what* a principal may see and how
//! long it may run lives in [`civlink_query`]; this crate is the gRPC
//! transport over it.
//!
//! | module | what lives there |
//! |---|---|
//! | [`service`] | [`service::CivlinkFlightSql`]: the Flight SQL service; `statements`, `metadata`, `cancel`, `do_get` by concern |
//! | [`handle`] | stateless statement handles and tickets (the SQL, bound parameters, a query id) |
//! | [`wire`] | [`wire::FastDoGet`]: `DoGet` framed straight from the batches' buffers |
//! | [`encoded`] | [`encoded::PreEncoded`]: cached batches kept as their Flight messages (the table cache's keeper) |
//! | [`incoming`] | accepted connections, admitted by the per-client and total connection counts |
//! | [`server`] | [`server::bind`] / [`server::serve`]: the tonic server, TLS, port-0 binding, graceful shutdown |
//! | [`auth`] | credentials and purpose from gRPC metadata |
//! | [`error`] | [`error::to_status`], the one mapping to gRPC statuses, and the server's own errors |

pub mod auth;
pub mod encoded;
pub mod error;
pub mod handle;
pub mod incoming;
pub mod server;
pub mod service;
pub mod wire;

pub use encoded::PreEncoded;
pub use error::{Error, Result, to_status};
pub use server::{FlightConfig, FlightServer, TlsConfig, bind, serve};
pub use service::CivlinkFlightSql;
