//! civlink-api's integration tests: one binary, real HTTP against servers on free ports.

mod admin;
mod auth;
mod checks;
mod contract;
mod cursors;
mod datasets;
mod findings;
mod fixture;
mod formats;
mod ops;
mod quarantine;
mod router;
mod rows;
mod standard_views;
mod standards;
