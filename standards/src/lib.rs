//! # civlink-standards
//!
//! The data standards every civlink row is checked against, and the national
//! codes they carry.
//!
//! | module | what lives there |
//! |---|---|
//! | [`idcard`] | GB 11643-1999 citizen ID numbers: normalize, validate, derive birth date, sex and age |
//! | [`division`] | 12-digit statistical division codes (统计用区划代码), their levels, and the shipped code table |
//! | [`code_table`] | code tables (代码表) as data: GB/T 2261.1 sex, GB 3304 ethnic groups, GB/T 4761 relationship, GB/T 26341 disability, assistance categories |
//! | [`standard`] | a data standard: a JSON Schema 2020-12 document with `x-civlink-*` extension keywords, and its Arrow schema |
//! | [`mask`] | masking strategies for sensitive columns (`x-civlink-mask`) |
//! | [`seal`] | sealed tokens under the deployment key (deterministic authenticated encryption): REST cursors |
//! | [`validate`] | the columnar validator: a standard compiled into checks over Arrow batches, with a `jsonschema` fallback |
//! | [`shipped`] | the data standards civlink ships (`data/standards/`), embedded |
//! | [`rng`] | a deterministic generator for synthetic data (demo, benchmarks, tests) |
//! | [`compat`] | compatibility between versions of a standard (NONE, BACKWARD, FORWARD, FULL and the transitive modes) |

pub mod code_table;
pub mod compat;
pub mod division;
pub mod idcard;
pub mod mask;
pub mod rng;
pub mod seal;
pub mod shipped;
pub mod standard;
pub mod validate;
