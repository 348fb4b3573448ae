//! REST API (placeholder; being written).
