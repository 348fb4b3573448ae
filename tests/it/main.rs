//! End-to-end tests of the `civlink` binary: one test binary for the root package.

mod architecture;
mod catalog;
mod check;
mod cli;
mod common;
mod database;
mod demo;
mod demo_data;
mod gates;
mod grant;
mod http_source;
mod ingest;
mod jobs;
mod policy;
mod python_clients;
mod rest_contract;
mod rest_jobs;
mod s3;
mod scheduler;
mod spreadsheets;
mod verify;
