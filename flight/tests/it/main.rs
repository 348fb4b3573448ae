//! civlink-flight's integration tests: one binary.

mod corpus;
mod fixture;
mod flight_sql;
mod tls;
