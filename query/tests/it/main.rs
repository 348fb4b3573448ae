//! civlink-query's integration tests: one binary.

mod adversarial;
