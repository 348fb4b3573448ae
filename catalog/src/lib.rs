//! # civlink-catalog
//!
//! The governed catalog: what datasets exist, who owns them, how they may be
//! shared, which standard they follow, their versions on Delta Lake, every
//! ingestion run with its quality report, and lineage.
//!
//! | module | what lives there |
//! |---|---|
//! | [`model`] | the vocabulary: departments, dataset ids and specs, sharing types, write modes, runs, quality, lineage |
//! | [`config`] | where metadata and tables live (data dir, SQLite/PostgreSQL URL, file/S3 storage), with env overrides |
//! | [`store`] | the metadata store: one set of migrations on SQLite (default) or PostgreSQL |
//! | [`findings`] | verification findings: identity, lifecycle, evidence, history, the summary roll-up |
//! | [`error`] | the metadata store's failures ([`error::StoreError`], also `store::Error`) |
//! | [`policy`] | access policy: principals, tokens, grants, the access decision (columns, masks, row scope), the hash-chained audit log |
//! | [`registry`] | publishing standard versions: the compatibility gate and the protection gate, audited |
//! | [`metrics`] | the process's counters and histograms (Prometheus text format), shared by every crate that counts |
//! | [`table`] | Delta Lake tables over object_store: create, append/overwrite/upsert in one commit, time travel, roll back |

pub mod config;
pub mod error;
pub mod findings;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod registry;
pub mod store;
pub mod table;
