//! Synthetic department exports (placeholder; being written).
