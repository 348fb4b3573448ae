//! civlink-query's integration tests: one binary.

mod adversarial;
mod explain;
mod limits;
mod logs;
mod policy;
