//! Integration tests of civlink-catalog: one test binary for the crate.
mod findings;
mod leases;
mod policy;
mod settings;
mod snapshot;
mod store;
mod table;
