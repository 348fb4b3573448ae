//! # civlink-connectors
//!
//! Reading each department's exports as Arrow record batches.
//!
//! | module | what lives there |
//! |---|---|
//! | [`file`] | file formats: CSV (UTF-8, GBK, GB18030), NDJSON / JSON arrays, Parquet |

pub mod file;
