//! Running a household check: one query per source, through the governed
//! query layer as the checking principal, for the members' ID numbers only.
//!
//! The members' ID numbers are matched as the principal sees the ID column:
//! in clear where a grant unmasks it, else by their keyed pseudonyms (the
//! same tokens the column holds). They travel as bound parameters, so the
//! audit chain records each source's SQL with placeholders and never a
//! number; the check itself is audited (`household_check`) with its consent
//! reference, purpose and the members' pseudonyms. A source the principal
//! may not read, or whose ID column it sees masked otherwise, is listed as
//! not consulted, with the reason: a report never pretends to be complete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{Months, Utc};
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, OutcomeKind, Principal};
use civlink_query::{QueryRequest, SessionFactory, Statement};
use civlink_standards::division::DivisionTable;
use civlink_standards::mask::MaskStrategy;
use futures::TryStreamExt;

use super::error::Error;
use super::report::{CheckReport, Column, Item, MemberReport, SourceUsed, SummaryFlag, partial_id};
use super::request::{CheckRequest, ValidRequest};
use super::sources::{CheckSources, DIVISION_COLUMN, MEMBER_COLUMN, Source};

/// One row of a report item: column → value as the principal sees it.
type Row = BTreeMap<String, Option<String>>;

/// What one source found: per member, its rows and raised flags.
struct Found {
    used: SourceUsed,
    columns: Vec<Column>,
    /// Per member (0-based): rows, and the flags raised (indexes into the source's flags).
    rows: Vec<Vec<Row>>,
    flags: Vec<BTreeSet<usize>>,
}

/// Run `request` as `principal` over `sources` (see the module docs).
pub async fn run_check(
    factory: &SessionFactory,
    sources: &CheckSources,
    principal: &Principal,
    request: &CheckRequest,
) -> Result<CheckReport, Error> {
    let clock = Instant::now();
    let checked_at = Utc::now();
    let check_id = format!("hc_{}", uuid::Uuid::new_v4().simple());
    // A refused request's texts are unchecked: the audit keeps a short, printable part of them.
    let printable = |text: &str| -> String { text.chars().filter(|c| !c.is_control()).take(200).collect() };
    let refuse = |kind: OutcomeKind, detail: String| {
        let mut entry =
            AuditEntry::new(principal.name.clone(), AuditAction::HouseholdCheck, AuditOutcome::new(kind, detail));
        entry.purpose = request.purpose.as_deref().map(printable);
        let consent = request.consent_reference.as_deref().map(str::trim).filter(|c| !c.is_empty());
        entry.sql_text = Some(format!(
            "household check {check_id}: consent {}",
            consent.map(printable).unwrap_or_else(|| "(none)".into())
        ));
        entry
    };
    if !factory.store().may_check(&principal.name).await? {
        let error = Error::NotCheckOfficer { principal: principal.name.clone() };
        factory.auditor().append(refuse(OutcomeKind::Denied, error.to_string())).await?;
        return Err(error);
    }
    let valid = match request.validate(checked_at.date_naive()) {
        Ok(valid) => valid,
        Err(error) => {
            let kind = if matches!(error, Error::NoConsent) { OutcomeKind::Denied } else { OutcomeKind::Error };
            factory.auditor().append(refuse(kind, error.to_string())).await?;
            return Err(error);
        }
    };

    let key = factory.store().mask_key().await?;
    let pseudonyms: Vec<String> = valid.members.iter().map(|m| key.pseudonym(m)).collect();
    let snapshot = factory.policy().current().await?;
    let readable = snapshot.readable(principal, checked_at);
    let purpose = format!("核对 {check_id}（授权书 {}）：{}", valid.consent_reference, valid.purpose);

    let mut found = Vec::with_capacity(sources.sources.len());
    for source in &sources.sources {
        let window = source
            .within_months
            .and_then(|m| valid.as_of.checked_sub_months(Months::new(m)))
            .map(|after| (after, valid.as_of));
        let Some(dataset) = readable.iter().find(|r| r.record.spec.id == source.dataset) else {
            found.push(not_consulted(source, None, "the checking principal may not read this dataset"));
            continue;
        };
        let used = |note: Option<String>| SourceUsed {
            dataset: source.dataset.to_string(),
            section: source.section.clone(),
            version: dataset.record.current_version,
            as_of: dataset.record.updated_at,
            consulted: true,
            rows: 0,
            note,
        };
        let keys = match dataset.access.columns.iter().find(|c| c.name == source.person).map(|c| &c.mask) {
            Some(MaskStrategy::None) => valid.members.clone(),
            Some(MaskStrategy::Pseudonym) => pseudonyms.clone(),
            Some(other) => {
                let note = format!("its ID column is masked ({other:?}) for the principal: members cannot be matched");
                found.push(not_consulted(source, Some(dataset.record.current_version), &note));
                continue;
            }
            None => {
                let note = "the principal may not read its ID column";
                found.push(not_consulted(source, Some(dataset.record.current_version), note));
                continue;
            }
        };
        // Columns the principal may not read are left out, and the report says so.
        let readable_columns: Vec<&String> =
            source.columns.iter().filter(|c| dataset.access.columns.iter().any(|a| &a.name == *c)).collect();
        let left_out: Vec<&str> =
            source.columns.iter().filter(|c| !readable_columns.contains(c)).map(String::as_str).collect();
        let shown = Source { columns: readable_columns.iter().map(|c| (*c).clone()).collect(), ..source.clone() };
        // Whether a row lies outside the household's county can be told only from a division code in clear.
        let division_in_clear = dataset
            .access
            .division_column
            .as_ref()
            .is_some_and(|d| dataset.access.columns.iter().any(|c| &c.name == d && c.mask == MaskStrategy::None));
        let sql = shown.query(keys.len(), window, dataset.access.division_column.as_deref());
        let columns: Vec<Column> = shown
            .columns
            .iter()
            .map(|name| Column {
                name: name.clone(),
                title: dataset.standard.property(name).map(|p| p.title.clone()).unwrap_or_else(|| name.clone()),
            })
            .collect();
        let note =
            (!left_out.is_empty()).then(|| format!("columns not readable by the principal: {}", left_out.join(", ")));
        match query(factory, principal, &purpose, &check_id, &sql, &keys).await {
            Ok(batches) => {
                let mut one = Found {
                    used: used(note),
                    columns,
                    rows: vec![Vec::new(); keys.len()],
                    flags: vec![BTreeSet::new(); keys.len()],
                };
                match collect(&mut one, &shown, &batches, &keys, &valid, division_in_clear) {
                    Ok(()) => found.push(one),
                    Err(e) => {
                        tracing::warn!(check = %check_id, dataset = %source.dataset, error = %e, "a check source's rows could not be read");
                        found.push(not_consulted(source, Some(dataset.record.current_version), &e.to_string()));
                    }
                }
            }
            Err(e) => {
                // One source failing (a flag's condition on a column the principal cannot read, say)
                // leaves the others; the report names it.
                tracing::warn!(check = %check_id, dataset = %source.dataset, error = %e, "a check source failed");
                let mut failed =
                    not_consulted(source, Some(dataset.record.current_version), &format!("query failed: {e}"));
                failed.used.as_of = dataset.record.updated_at;
                found.push(failed);
            }
        }
    }

    let report = assemble(&check_id, checked_at, principal, &valid, sources, found);
    let mut entry = AuditEntry::new(principal.name.clone(), AuditAction::HouseholdCheck, AuditOutcome::OK);
    entry.purpose = Some(valid.purpose.clone());
    let flags: Vec<String> = report.flags.iter().map(|f| format!("{} (members {:?})", f.id, f.members)).collect();
    entry.sql_text = Some(format!(
        "household check {check_id}: consent {}; household in {}; {} members {}; flags: {}",
        valid.consent_reference,
        valid.household_division,
        pseudonyms.len(),
        pseudonyms.join(", "),
        if flags.is_empty() { "none".to_owned() } else { flags.join(", ") }
    ));
    entry.datasets = report.sources.iter().filter(|s| s.consulted).map(|s| s.dataset.clone()).collect();
    entry.rows = Some(report.sources.iter().map(|s| s.rows).sum());
    entry.duration_ms = Some(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    factory.auditor().append(entry).await?;
    tracing::info!(check = %check_id, members = valid.members.len(), flags = report.flags.len(), "household check ran");
    Ok(report)
}

fn not_consulted(source: &Source, version: Option<Option<i64>>, note: &str) -> Found {
    Found {
        used: SourceUsed {
            dataset: source.dataset.to_string(),
            section: source.section.clone(),
            version: version.flatten(),
            as_of: None,
            consulted: false,
            rows: 0,
            note: Some(note.to_owned()),
        },
        columns: Vec::new(),
        rows: Vec::new(),
        flags: Vec::new(),
    }
}

/// One source's query, its keys bound as `$1`….
async fn query(
    factory: &SessionFactory,
    principal: &Principal,
    purpose: &str,
    check_id: &str,
    sql: &str,
    keys: &[String],
) -> Result<Vec<RecordBatch>, civlink_query::Error> {
    let fields: Vec<Field> = (1..=keys.len()).map(|i| Field::new(format!("${i}"), DataType::Utf8, false)).collect();
    let values: Vec<ArrayRef> =
        keys.iter().map(|k| Arc::new(StringArray::from(vec![k.as_str()])) as ArrayRef).collect();
    let params = RecordBatch::try_new(Arc::new(Schema::new(fields)), values)
        .map_err(|e| civlink_query::Error::Arrow { message: format!("check parameters: {e}") })?;
    let request = QueryRequest {
        principal: principal.clone(),
        purpose: Some(purpose.to_owned()),
        action: AuditAction::Query,
        text: sql.to_owned(),
        query_id: Some(format!("{check_id}_{}", uuid::Uuid::new_v4().simple())),
    };
    let stream = factory.run(request, Statement::Sql { sql: sql.to_owned(), params: Some(params) }).await?;
    stream.try_collect().await
}

/// Sort `batches`' rows into `one`, per member.
fn collect(
    one: &mut Found,
    source: &Source,
    batches: &[RecordBatch],
    keys: &[String],
    request: &ValidRequest,
    division_in_clear: bool,
) -> Result<(), Error> {
    let options = FormatOptions::default();
    let member_of: BTreeMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let county = request.household_division.county_code().to_owned();
    let mut dated: Vec<Vec<(Option<String>, Row)>> = vec![Vec::new(); keys.len()];
    for batch in batches {
        let formatter = |name: &str| -> Result<(ArrayRef, ArrayFormatter<'_>), Error> {
            let unexpected = |message: String| Error::Result { dataset: source.dataset.to_string(), message };
            let column =
                batch.column_by_name(name).ok_or_else(|| unexpected(format!("the result has no column {name}")))?;
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|e| unexpected(format!("column {name}: {e}")))?;
            Ok((Arc::clone(column), formatter))
        };
        let value = |(array, formatter): &(ArrayRef, ArrayFormatter<'_>), row: usize| {
            (!array.is_null(row)).then(|| formatter.value(row).to_string())
        };
        let member = formatter(MEMBER_COLUMN)?;
        let division = formatter(DIVISION_COLUMN)?;
        let shown: Vec<(&String, (ArrayRef, ArrayFormatter<'_>))> =
            source.columns.iter().map(|c| formatter(c).map(|f| (c, f))).collect::<Result<_, _>>()?;
        let flags: Vec<Option<BooleanArray>> = (0..source.flags.len())
            .map(|i| {
                batch
                    .column_by_name(&Source::flag_column(i))
                    .and_then(|c| c.as_any().downcast_ref::<BooleanArray>().cloned())
            })
            .collect();
        for row in 0..batch.num_rows() {
            let Some(index) = value(&member, row).and_then(|m| member_of.get(m.as_str()).copied()) else { continue };
            let values: Row = shown.iter().map(|(name, f)| ((*name).clone(), value(f, row))).collect();
            let outside =
                division_in_clear && value(&division, row).is_some_and(|d| d.get(..6).is_some_and(|c| c != county));
            for (i, flag) in source.flags.iter().enumerate() {
                let holds = flags[i].as_ref().is_some_and(|a| a.is_valid(row) && a.value(row));
                if holds && (!flag.outside_household_county || outside) {
                    one.flags[index].insert(i);
                }
            }
            let date = source.as_of.as_ref().and_then(|c| values.get(c).cloned().flatten());
            dated[index].push((date, values));
        }
    }
    for (index, mut rows) in dated.into_iter().enumerate() {
        // Newest first; rows without a date last.
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        one.used.rows += rows.len() as u64;
        one.rows[index] = rows.into_iter().map(|(_, values)| values).collect();
    }
    Ok(())
}

fn assemble(
    check_id: &str,
    checked_at: chrono::DateTime<Utc>,
    principal: &Principal,
    request: &ValidRequest,
    sources: &CheckSources,
    found: Vec<Found>,
) -> CheckReport {
    let mut members: Vec<MemberReport> = request
        .members
        .iter()
        .enumerate()
        .map(|(i, id)| MemberReport { member: i + 1, id_number: partial_id(id), flags: Vec::new(), items: Vec::new() })
        .collect();
    let mut flags: Vec<SummaryFlag> = Vec::new();
    for (source, one) in sources.sources.iter().zip(&found) {
        if !one.used.consulted {
            continue;
        }
        for (i, member) in members.iter_mut().enumerate() {
            let rows = one.rows.get(i).cloned().unwrap_or_default();
            let amounts: Vec<f64> = source
                .amount
                .as_ref()
                .map(|column| rows.iter().filter_map(|r| r.get(column).cloned().flatten()?.parse().ok()).collect())
                .unwrap_or_default();
            let (total, latest) = match source.amount {
                Some(_) if !amounts.is_empty() => (Some(amounts.iter().sum()), amounts.first().copied()),
                _ => (None, None),
            };
            member.items.push(Item {
                section: source.section.clone(),
                dataset: source.dataset.to_string(),
                version: one.used.version,
                as_of: one.used.as_of,
                columns: one.columns.clone(),
                rows,
                total,
                latest,
            });
            for &f in one.flags.get(i).into_iter().flatten() {
                let flag = &source.flags[f];
                if !member.flags.contains(&flag.id) {
                    member.flags.push(flag.id.clone());
                }
                let summary = match flags.iter_mut().position(|s| s.id == flag.id) {
                    Some(at) => &mut flags[at],
                    None => {
                        flags.push(SummaryFlag {
                            id: flag.id.clone(),
                            title: flag.title.clone(),
                            members: Vec::new(),
                            datasets: Vec::new(),
                        });
                        let last = flags.len() - 1;
                        &mut flags[last]
                    }
                };
                if !summary.members.contains(&member.member) {
                    summary.members.push(member.member);
                }
                let dataset = source.dataset.to_string();
                if !summary.datasets.contains(&dataset) {
                    summary.datasets.push(dataset);
                }
            }
        }
    }
    for flag in &mut flags {
        flag.members.sort_unstable();
    }
    CheckReport {
        check_id: check_id.to_owned(),
        checked_at,
        as_of: request.as_of,
        principal: principal.name.clone(),
        consent_reference: request.consent_reference.clone(),
        purpose: request.purpose.clone(),
        household_division: request.household_division.to_string(),
        household_division_name: DivisionTable::builtin().name(&request.household_division).map(str::to_owned),
        flags,
        members,
        sources: found.into_iter().map(|f| f.used).collect(),
    }
}
