//! Quality reports as the API shows them: a rule's example message can quote
//! the value that broke it (a citizen ID, a name), so every example is shown
//! with quoted values and long digit runs masked.

use civlink_catalog::model::QualityReport;
use serde_json::Value;

/// `report` as JSON, examples redacted.
pub fn view(report: &QualityReport) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(rules) = value.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules {
            if let Some(example) = rule.get("example").and_then(Value::as_str) {
                let redacted = civlink_query::redact::quoted_values(example);
                rule["example"] = Value::String(redacted);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use civlink_catalog::model::{RuleValidity, RunCounts};

    #[test]
    fn examples_lose_their_values() {
        let report = QualityReport {
            run_id: "r".into(),
            counts: RunCounts::default(),
            completeness: vec![],
            rules: vec![RuleValidity {
                column: "id_number".into(),
                keyword: "format".into(),
                failed: 1,
                rows: 2,
                example: "'630102198001011234' is not a valid GB 11643 number".into(),
            }],
            primary_key_uniqueness: 1.0,
            normalised: vec![],
            unused_source_columns: vec![],
            source_drift: vec![],
            source_deletions: None,
            sheets: vec![],
            source_modified: None,
            ingested_at: chrono::Utc::now(),
        };
        let shown = view(&report).to_string();
        assert!(!shown.contains("630102198001011234"), "{shown}");
        assert!(shown.contains("GB 11643"));
    }
}
