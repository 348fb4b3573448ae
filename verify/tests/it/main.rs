//! civlink-verify's integration tests: rules run through a real query layer
//! over the scoping corpus's catalog.

mod evaluate;
