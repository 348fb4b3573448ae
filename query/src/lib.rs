//! # civlink-query
//!
//! The governed query layer: a principal's scoped, masked, limited, audited
//! DataFusion session, and nothing about any transport. Flight SQL
//! (`civlink-flight`), REST (`civlink-api`) and the verification rules all
//! run their queries through it, so every path applies the same policy the
//! same way.
//!
//! A process builds one [`SessionFactory`] ([`SessionFactory::builder`]):
//! one table cache, one slot table, one memory budget, one mask key, one
//! auditor. A request then goes:
//!
//! 1. [`auth`]: credentials from the transport's headers →
//!    [`SessionFactory::principal`] (failures audited, aggregated);
//! 2. [`SessionFactory::run`] ([`run`]): the principal's slot, the session
//!    ([`session`]) with its [`scope::ScopedTable`]s, the plan gate
//!    ([`gate`]), the audit entry written before the first batch, and the
//!    results as a [`run::QueryStream`] under the time limit, cancellable
//!    ([`running`]).
//!
//! Policy is *decided* in `civlink_catalog::policy::decide` and *enforced*
//! here: below every user expression, in [`scope`].
//!
//! | module | what lives there |
//! |---|---|
//! | [`session`] | [`SessionFactory`] (what the process shares) and [`ScopedSession`] (one principal's catalog) |
//! | [`sessions`] | sessions kept per principal while the policy's decision for it holds |
//! | [`policy`] | the policy snapshot in memory, reloaded when the catalog's change counter moves |
//! | [`plans`] | plans described by `GetFlightInfo`, kept for the one run of their ticket |
//! | [`findings`] | `verification.findings`: the findings in the principal's division, as a table |
//! | [`gate`] | the plan gate: read-only, the EXPLAIN rules, `?` placeholders, parameter binding |
//! | [`scope`] | [`scope::ScopedTable`] and [`scope::ScopeExec`]: a dataset as one principal may see it |
//! | [`cache`] | the table cache: tables decoded once per version, masked columns once per version, single-flight loads, the [`cache::BatchKeeper`] plug-in |
//! | [`run`] | [`SessionFactory::run`]: slot, deadline, audit, cancellation, the result stream |
//! | [`running`] | the running queries by id, for cancellation |
//! | [`limits`] | [`Limits`], the slot table, the server's memory budget and each query's pool |
//! | [`connections`] | connections per client and in all, for every transport |
//! | [`guard`] | resource guards on DataFusion functions that could allocate without bound |
//! | [`audit`] | the [`audit::Auditor`]: fail-closed, grouped appends, failed-authentication counts, head checkpoints |
//! | [`auth`] | `authorization` (Bearer, Basic) and `x-civlink-purpose` parsing |
//! | [`udf`] | SQL functions over national codes, and the masking function |
//! | [`plain`] | the plain types results travel in |
//! | [`redact`] | personal data out of log lines and audit outcomes |
//! | [`error`] | [`Error`] and its typed [`ErrorKind`] |

pub mod audit;
pub mod auth;
pub mod cache;
pub mod connections;
pub mod error;
pub mod findings;
pub mod gate;
pub mod guard;
pub mod limits;
pub mod plain;
pub mod plans;
pub mod policy;
pub mod redact;
pub mod run;
pub mod running;
pub mod scope;
pub mod session;
pub mod sessions;
pub mod udf;

pub use error::{Error, ErrorKind, Result};
pub use limits::Limits;
pub use run::{QueryRequest, QueryStream, Statement};
pub use session::{CATALOG, ScopedSession, SessionFactory};
