//! # civlink-flight
//!
//! Flight SQL over the governed catalog: analysts and department services
//! query the Delta tables with SQL (DataFusion 55), each principal seeing
//! only the datasets, columns and rows the access policy
//! ([`civlink_catalog::policy`]) gives it, with personal information masked.
//!
//! | module | what lives there |
//! |---|---|
//! | [`udf`] | SQL functions over national codes: `division_level/parent/name`, `id_birth_date/sex/age`, `civlink_mask` |
//! | [`scope`] | [`scope::ScopedTable`]: a dataset as one principal may see it (columns, masks, row scope) |
//! | [`session`] | [`session::SessionFactory`]: one DataFusion session per principal and query, with limits |
//! | [`auth`] | credentials from the `authorization` header (Basic in the handshake, Bearer on every call) |
//! | [`handle`] | stateless statement handles and tickets (the SQL, bound parameters, a query id) |
//! | [`service`] | [`service::CivlinkFlightSql`]: the Flight SQL service (auth, statements, prepared statements, metadata, limits, audit) |
//! | [`wire`] | [`wire::FastDoGet`]: `DoGet` framed straight from the batches' buffers, no copies before the socket |
//! | [`server`] | [`server::bind`] / [`server::serve`]: the tonic server, port-0 binding, graceful shutdown |
//! | [`error`] | the crate's errors and the one mapping to gRPC statuses |

pub mod auth;
pub mod error;
pub mod handle;
pub mod scope;
pub mod server;
pub mod service;
pub mod session;
pub mod udf;
pub mod wire;

pub use error::{Error, Result, to_status};
pub use server::{FlightConfig, FlightServer, TlsConfig, bind, serve};
pub use service::CivlinkFlightSql;
pub use session::{Limits, SessionFactory};
