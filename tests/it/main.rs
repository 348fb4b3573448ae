//! End-to-end tests of the `civlink` binary: one test binary for the root package.

mod cli;
mod ingest;
