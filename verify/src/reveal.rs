//! A finding's subject as its reader may see it.
//!
//! A finding stores its subject only as the keyed pseudonym, and its
//! evidence as the rule's (masked) principal saw it. Whoever reads it sees
//! the subject's ID number and name only as far as their own access
//! unmasks them: [`subject_as_seen`] reads the row the finding rests on
//! through the governed query layer as the reader and returns its ID
//! number and name as the reader's policy shows them (clear under an
//! unmasking grant, masked otherwise). A reader who sees pseudonyms reads
//! just that row (by the pseudonym); one who sees the clear number reads
//! the rows of the finding's division and matches each number's pseudonym,
//! so a row filed under another division is not found (the answer is then
//! `None`, as for a row the reader may not read).

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::Utc;
use civlink_catalog::findings::Finding;
use civlink_catalog::policy::{AuditAction, Principal};
use civlink_query::{QueryRequest, SessionFactory, Statement};
use futures::TryStreamExt;
use serde::Serialize;

/// The subject as one reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenSubject {
    /// The dataset it was read from.
    pub dataset: String,
    /// The ID number as the reader's policy shows it.
    pub id_number: String,
    /// The name as the reader's policy shows it, when the reader may read it.
    pub name: Option<String>,
}

/// `finding`'s subject as `reader` sees it; `None` when no row it rests on
/// can be read by the reader (or the row is gone).
pub async fn subject_as_seen(
    factory: &SessionFactory,
    reader: &Principal,
    finding: &Finding,
) -> Result<Option<SeenSubject>, civlink_query::Error> {
    let snapshot = factory.policy().current().await?;
    let readable = snapshot.readable(reader, Utc::now());
    // The row whose key holds the subject: that key column is the subject's column there.
    let candidates = finding.rests_on.iter().filter_map(|row| {
        let (column, _) = row.key.iter().find(|(_, value)| **value == finding.subject)?;
        let dataset = readable.iter().find(|r| r.record.spec.id.to_string() == row.dataset)?;
        let division = dataset.access.division_column.clone()?;
        let mask = dataset.access.columns.iter().find(|c| &c.name == column)?.mask;
        Some((row, column.clone(), division, dataset, mask))
    });
    let key = factory.store().mask_key().await.map_err(|e| civlink_query::Error::Store { message: e.to_string() })?;
    for (row, column, division, dataset, mask) in candidates {
        // A reader who sees pseudonyms finds the one row by the subject itself; one who sees the
        // clear number looks among the rows of the finding's division, computing each pseudonym.
        let (filter_column, filter_value) = match mask {
            civlink_standards::mask::MaskStrategy::Pseudonym => (column.clone(), finding.subject.clone()),
            _ => (division.clone(), finding.division.to_string()),
        };
        let name = dataset.access.columns.iter().any(|c| c.name == "name").then_some("name");
        let quote = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let (department, table) = row.dataset.split_once('.').unwrap_or(("", &row.dataset));
        let sql = format!(
            "SELECT {} AS subject, {} AS name FROM {}.{} WHERE {} = $1",
            quote(&column),
            name.map(quote).unwrap_or_else(|| "CAST(NULL AS VARCHAR)".into()),
            quote(department),
            quote(table),
            quote(&filter_column)
        );
        let params = RecordBatch::try_from_iter([(
            "$1",
            std::sync::Arc::new(arrow::array::StringArray::from(vec![filter_value])) as arrow::array::ArrayRef,
        )])
        .map_err(|e| civlink_query::Error::Arrow { message: e.to_string() })?;
        let request = QueryRequest {
            principal: reader.clone(),
            purpose: Some(format!("查看线索 {} 的对象", finding.finding_id)),
            action: AuditAction::FindingRead,
            text: sql.clone(),
            query_id: None,
        };
        let stream = factory.run(request, Statement::Sql { sql, params: Some(params) }).await?;
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        let options = FormatOptions::default();
        for batch in &batches {
            let subjects = batch.column(0);
            let names = batch.column(1);
            let subject_text = ArrayFormatter::try_new(subjects.as_ref(), &options)
                .map_err(|e| civlink_query::Error::Arrow { message: e.to_string() })?;
            let name_text = ArrayFormatter::try_new(names.as_ref(), &options)
                .map_err(|e| civlink_query::Error::Arrow { message: e.to_string() })?;
            for i in 0..batch.num_rows() {
                if subjects.is_null(i) {
                    continue;
                }
                let seen = subject_text.value(i).to_string();
                if seen == finding.subject || key.pseudonym(&seen) == finding.subject {
                    let name = (!names.is_null(i)).then(|| name_text.value(i).to_string());
                    return Ok(Some(SeenSubject { dataset: row.dataset.clone(), id_number: seen, name }));
                }
            }
        }
    }
    Ok(None)
}
