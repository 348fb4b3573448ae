//! civlink-flight's integration tests: one binary.

mod fixture;
mod flight_sql;
