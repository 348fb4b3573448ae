//! civlink-flight's integration tests: one binary.

mod adversarial;
mod fixture;
mod flight_sql;
mod tls;
