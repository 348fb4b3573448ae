//! The verification findings as a table of every session:
//! `civlink.verification.findings`, holding exactly the findings whose
//! responsible division lies within the principal's (the same rule as the
//! CLI and REST). It is read from the metadata store when a query scans it,
//! so it is as fresh as the store; subjects are pseudonyms and evidence is
//! masked, as the findings were stored.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use civlink_catalog::findings::{Finding, FindingFilter};
use civlink_catalog::store::MetadataStore;
use civlink_standards::division::DivisionCode;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The schema the table is in.
pub const SCHEMA: &str = "verification";
/// The table's name.
pub const TABLE: &str = "findings";

static FINDINGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let time = |name: &str, nullable| {
        Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
    };
    Arc::new(Schema::new(vec![
        text("finding_id", false),
        text("rule_id", false),
        Field::new("rule_version", DataType::Int64, false),
        text("status", false),
        text("severity", false),
        text("subject_kind", false),
        text("subject", false),
        text("department", false),
        text("division_code", false),
        text("explanation", false),
        text("evidence", false),
        text("outcome", true),
        text("outcome_reason", true),
        text("decided_by", true),
        time("decided_at", true),
        time("first_seen", false),
        time("last_seen", false),
    ]))
});

/// One principal's view of the findings (see the module docs).
#[derive(Debug)]
pub struct FindingsTable {
    store: MetadataStore,
    within: DivisionCode,
}

impl FindingsTable {
    /// The findings inside `within`.
    pub fn new(store: MetadataStore, within: DivisionCode) -> FindingsTable {
        FindingsTable { store, within }
    }
}

fn batch(findings: &[Finding]) -> DfResult<RecordBatch> {
    let text = |f: &dyn Fn(&Finding) -> String| -> ArrayRef {
        Arc::new(findings.iter().map(f).map(Some).collect::<StringArray>())
    };
    let optional = |f: &dyn Fn(&Finding) -> Option<String>| -> ArrayRef {
        Arc::new(findings.iter().map(f).collect::<StringArray>())
    };
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    let time = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|f| f.finding_id.clone()),
        text(&|f| f.rule_id.clone()),
        Arc::new(findings.iter().map(|f| f.rule_version).collect::<Int64Array>()),
        text(&|f| f.status.code().to_owned()),
        text(&|f| f.severity.code().to_owned()),
        text(&|f| f.subject_kind.code().to_owned()),
        text(&|f| f.subject.clone()),
        text(&|f| f.department.code().to_owned()),
        text(&|f| f.division.to_string()),
        text(&|f| f.explanation.clone()),
        text(&|f| serde_json::to_string(&f.evidence).unwrap_or_default()),
        optional(&|f| f.outcome.as_ref().map(|o| o.status.code().to_owned())),
        optional(&|f| f.outcome.as_ref().and_then(|o| o.reason).map(|r| r.code().to_owned())),
        optional(&|f| f.outcome.as_ref().map(|o| o.by.clone())),
        time(findings.iter().map(|f| f.outcome.as_ref().map(|o| micros(o.at))).collect()),
        time(findings.iter().map(|f| Some(micros(f.first_seen))).collect()),
        time(findings.iter().map(|f| Some(micros(f.last_seen))).collect()),
    ];
    Ok(RecordBatch::try_new(Arc::clone(&FINDINGS_SCHEMA), columns)?)
}

#[async_trait]
impl TableProvider for FindingsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&FINDINGS_SCHEMA)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = FindingFilter { within: Some(self.within), ..FindingFilter::default() };
        let findings = self.store.findings(&filter).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = MemTable::try_new(Arc::clone(&FINDINGS_SCHEMA), vec![vec![batch(&findings)?]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_batch_has_the_table_schema() {
        let batch = batch(&[]).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.schema(), *FINDINGS_SCHEMA);
    }
}
