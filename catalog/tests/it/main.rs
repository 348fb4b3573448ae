//! Integration tests of civlink-catalog: one test binary for the crate.
mod store;
mod table;
