//! Integration tests of civlink-catalog: one test binary for the crate.
mod policy;
mod settings;
mod store;
mod table;
