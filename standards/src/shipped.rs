//! The data standards civlink ships, embedded in the binary so that
//! `civlink demo` runs with no configuration. Files live in `data/standards/`,
//! one per standard, named `<x-civlink-id>.json`.

use crate::standard::{Result, Standard};

/// Every shipped standard as `(id, document text)`.
pub const SHIPPED: &[(&str, &str)] = &[("gongan.population", include_str!("../data/standards/gongan.population.json"))];

/// The shipped standard with this id, parsed.
pub fn standard(id: &str) -> Option<Result<Standard>> {
    SHIPPED.iter().find(|(name, _)| *name == id).map(|(_, text)| Standard::from_json_str(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_standard_parses_compiles_and_is_named_by_its_id() {
        for (id, text) in SHIPPED {
            let standard = Standard::from_json_str(text).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(&standard.id, id);
            let validator = crate::validate::Validator::compile(standard).unwrap();
            assert!(!validator.has_fallback(), "{id} should be fully columnar");
        }
        assert!(standard("gongan.population").is_some());
        assert!(standard("nope").is_none());
    }
}
