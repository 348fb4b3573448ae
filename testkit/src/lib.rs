//! # civlink-testkit
//!
//! Fixtures the integration tests of several crates share (a dev-dependency
//! only; nothing here ships).
//!
//! | module | what lives there |
//! |---|---|
//! | [`catalog`] | a temporary local catalog, and committing a batch as a dataset's version |
//! | [`corpus`] | the adversarial scoping corpus: five-level data, principals, the queries, and the pre-filtered, pre-masked reference they must equal |
//! | [`postgres`] | a PostgreSQL database of a test's own, and running a test body on SQLite then PostgreSQL |
//! | [`http`] | a raw HTTP/1.1 server whose answers a test writes byte by byte (broken, stalled, whole) |
//! | [`s3`] | an `s3s-fs` S3-protocol server on a free loopback port |

pub mod catalog;
pub mod corpus;
pub mod http;
pub mod postgres;
pub mod s3;
