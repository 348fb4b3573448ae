//! Findings in the metadata store (`crate::findings` has the model and the
//! lifecycle): recording a rule's evaluation, listing, showing, deciding and
//! summarising.
//!
//! Recording an evaluation is one transaction: new findings are inserted,
//! known ones refreshed (`last_seen`, evidence) or reopened, and those in the
//! evaluating principal's scope that were not found again are resolved at
//! source, each change with its event; the run's record comes last. A rule
//! run by a county principal therefore never resolves another county's
//! findings.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use civlink_standards::division::DivisionCode;
use sqlx::any::AnyRow;

use super::codec::{count_from_db, count_to_db, parse_timestamp, timestamp};
use super::{Error, MetadataStore, Result, db_err, get};
use crate::findings::{
    Candidate, DismissReason, EvaluationSummary, Finding, FindingCount, FindingEvent, FindingFilter, FindingStatus,
    Outcome, RowRef, RuleEvaluation, RuleRunRecord, Severity, SubjectKind,
};
use crate::model::Department;

/// The columns of `findings`, in the order [`finding_from_row`] reads them.
const FINDING_COLUMNS: &str = "finding_id, rule_id, rule_version, subject_kind, subject, department, division_code, \
     severity, status, explanation, evidence, rests_on, dataset_versions, first_seen, last_seen, outcome_status, \
     outcome_reason, outcome_note, decided_by, decided_at";

/// An event about to be written.
struct NewEvent<'a> {
    finding_id: &'a str,
    /// Its place in the finding's history (the last one's + 1).
    seq: i64,
    at: &'a str,
    actor: &'a str,
    from: Option<FindingStatus>,
    to: FindingStatus,
    reason: Option<DismissReason>,
    note: Option<&'a str>,
    run_id: Option<&'a str>,
}

impl MetadataStore {
    /// Record one evaluation of a rule: `candidates` are what it found, in
    /// any order (several for one identity are merged: the first one's
    /// evidence is kept, the rows they rest on are joined). See the module docs.
    pub async fn record_evaluation(
        &self,
        evaluation: &RuleEvaluation,
        candidates: &[Candidate],
    ) -> Result<EvaluationSummary> {
        let finished = Utc::now();
        let now = timestamp(finished);
        let versions = to_json("dataset versions", &evaluation.dataset_versions)?;
        let mut merged: BTreeMap<String, Candidate> = BTreeMap::new();
        for candidate in candidates {
            match merged.entry(candidate.id(&evaluation.rule_id)) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(candidate.clone());
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let kept = slot.get_mut();
                    for row in &candidate.rests_on {
                        if !kept.rests_on.contains(row) {
                            kept.rests_on.push(row.clone());
                        }
                    }
                }
            }
        }

        let mut tx = self.pool.begin().await.map_err(db_err("begin recording findings"))?;
        // With each finding the number of its last event, so that events are numbered without a read each.
        let known: HashMap<String, (FindingStatus, DivisionCode, i64)> = sqlx::query(
            "SELECT f.finding_id, f.status, f.division_code, \
             (SELECT COALESCE(MAX(e.seq), 0) FROM finding_events e WHERE e.finding_id = f.finding_id) AS last_seq \
             FROM findings f WHERE f.rule_id = $1",
        )
        .bind(&evaluation.rule_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err("read a rule's findings"))?
        .iter()
        .map(|row| {
            let id: String = get(row, "finding_id", || "findings.finding_id".to_owned())?;
            let status = parse_status(row, "status", &id)?;
            let division = parse_division(row, &id)?;
            let last_seq: i64 = get(row, "last_seq", || format!("the last event of {id}"))?;
            Ok((id, (status, division, last_seq)))
        })
        .collect::<Result<_>>()?;

        let mut summary = EvaluationSummary { found: merged.len() as u64, ..EvaluationSummary::default() };
        for (id, candidate) in &merged {
            let evidence = to_json("evidence", &candidate.evidence)?;
            let rests_on = to_json("rows a finding rests on", &candidate.rests_on)?;
            match known.get(id) {
                None => {
                    sqlx::query(
                        "INSERT INTO findings (finding_id, rule_id, rule_version, subject_kind, subject, department, \
                         division_code, severity, status, explanation, evidence, rests_on, dataset_versions, \
                         first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    )
                    .bind(id)
                    .bind(&evaluation.rule_id)
                    .bind(evaluation.rule_version)
                    .bind(evaluation.subject_kind.code())
                    .bind(&candidate.subject)
                    .bind(candidate.department.code())
                    .bind(candidate.division.as_str())
                    .bind(evaluation.severity.code())
                    .bind(FindingStatus::Open.code())
                    .bind(&candidate.explanation)
                    .bind(&evidence)
                    .bind(&rests_on)
                    .bind(&versions)
                    .bind(&now)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("insert a finding"))?;
                    let event = NewEvent {
                        finding_id: id,
                        seq: 1,
                        at: &now,
                        actor: &evaluation.principal,
                        from: None,
                        to: FindingStatus::Open,
                        reason: None,
                        note: Some("found"),
                        run_id: Some(&evaluation.run_id),
                    };
                    insert_event(&mut tx, &event).await?;
                    summary.new += 1;
                }
                Some((status, _, last_seq)) => {
                    let reopen = *status == FindingStatus::ResolvedAtSource;
                    let to = if reopen { FindingStatus::Open } else { *status };
                    sqlx::query(
                        "UPDATE findings SET rule_version = $1, severity = $2, status = $3, explanation = $4, \
                         evidence = $5, rests_on = $6, dataset_versions = $7, last_seen = $8 WHERE finding_id = $9",
                    )
                    .bind(evaluation.rule_version)
                    .bind(evaluation.severity.code())
                    .bind(to.code())
                    .bind(&candidate.explanation)
                    .bind(&evidence)
                    .bind(&rests_on)
                    .bind(&versions)
                    .bind(&now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("refresh a finding"))?;
                    if reopen {
                        let event = NewEvent {
                            finding_id: id,
                            seq: last_seq + 1,
                            at: &now,
                            actor: &evaluation.principal,
                            from: Some(*status),
                            to,
                            reason: None,
                            note: Some("found again after it was resolved at source: reopened"),
                            run_id: Some(&evaluation.run_id),
                        };
                        insert_event(&mut tx, &event).await?;
                        summary.reopened += 1;
                    } else {
                        summary.seen_again += 1;
                    }
                }
            }
        }
        for (id, (status, division, last_seq)) in &known {
            if merged.contains_key(id)
                || *status == FindingStatus::ResolvedAtSource
                || !evaluation.scope.contains(division)
            {
                continue;
            }
            sqlx::query("UPDATE findings SET status = $1 WHERE finding_id = $2")
                .bind(FindingStatus::ResolvedAtSource.code())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err("resolve a finding"))?;
            let event = NewEvent {
                finding_id: id,
                seq: last_seq + 1,
                at: &now,
                actor: &evaluation.principal,
                from: Some(*status),
                to: FindingStatus::ResolvedAtSource,
                reason: None,
                note: Some("not found again: the condition no longer holds in the source data"),
                run_id: Some(&evaluation.run_id),
            };
            insert_event(&mut tx, &event).await?;
            summary.resolved += 1;
        }
        sqlx::query(
            "INSERT INTO rule_runs (run_id, rule_id, rule_version, principal, started_at, finished_at, found, new, \
             reopened, seen_again, resolved) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&evaluation.run_id)
        .bind(&evaluation.rule_id)
        .bind(evaluation.rule_version)
        .bind(&evaluation.principal)
        .bind(timestamp(evaluation.started_at))
        .bind(&now)
        .bind(count_to_db("found", summary.found)?)
        .bind(count_to_db("new", summary.new)?)
        .bind(count_to_db("reopened", summary.reopened)?)
        .bind(count_to_db("seen again", summary.seen_again)?)
        .bind(count_to_db("resolved", summary.resolved)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err("record a rule run"))?;
        tx.commit().await.map_err(db_err("commit findings"))?;
        Ok(summary)
    }

    /// The findings `filter` selects, by id.
    pub async fn findings(&self, filter: &FindingFilter) -> Result<Vec<Finding>> {
        let mut sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut param = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(within) = &filter.within {
            param(&mut sql, " AND division_code LIKE ?", format!("{}%", within.scope_prefix()));
        }
        if let Some(rule) = &filter.rule {
            param(&mut sql, " AND rule_id = ?", rule.clone());
        }
        if let Some(status) = filter.status {
            param(&mut sql, " AND status = ?", status.code().to_owned());
        }
        if let Some(after) = &filter.after {
            param(&mut sql, " AND finding_id > ?", after.clone());
        }
        sql.push_str(" ORDER BY finding_id");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_err("list findings"))?;
        rows.iter().map(finding_from_row).collect()
    }

    /// One finding and its history, if it exists and its responsible
    /// division lies in `within` (a finding outside the caller's scope is
    /// reported as absent, like one that does not exist).
    pub async fn finding(
        &self,
        finding_id: &str,
        within: Option<&DivisionCode>,
    ) -> Result<Option<(Finding, Vec<FindingEvent>)>> {
        let row = sqlx::query(&format!("SELECT {FINDING_COLUMNS} FROM findings WHERE finding_id = $1"))
            .bind(finding_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read a finding"))?;
        let Some(row) = row else { return Ok(None) };
        let finding = finding_from_row(&row)?;
        if within.is_some_and(|scope| !scope.contains(&finding.division)) {
            return Ok(None);
        }
        let events = sqlx::query(
            "SELECT seq, at, actor, from_status, to_status, reason, note, run_id FROM finding_events \
             WHERE finding_id = $1 ORDER BY seq",
        )
        .bind(finding_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("read a finding's history"))?
        .iter()
        .map(|row| event_from_row(row, finding_id))
        .collect::<Result<Vec<_>>>()?;
        Ok(Some((finding, events)))
    }

    /// Record an officer's decision: `outcome.status` is `under_review`,
    /// `confirmed` or `dismissed` (a dismissal needs a reason). The finding
    /// must lie in `within` and be open or under review.
    pub async fn decide_finding(
        &self,
        finding_id: &str,
        within: Option<&DivisionCode>,
        outcome: &Outcome,
    ) -> Result<Finding> {
        if outcome.status == FindingStatus::Dismissed && outcome.reason.is_none() {
            return Err(Error::Invalid {
                what: "finding outcome",
                message: "a dismissal needs a reason (source_data_error, legitimate or other)".to_owned(),
            });
        }
        let mut tx = self.pool.begin().await.map_err(db_err("begin deciding a finding"))?;
        let row = sqlx::query(
            "SELECT f.status, f.division_code, \
             (SELECT COALESCE(MAX(e.seq), 0) FROM finding_events e WHERE e.finding_id = f.finding_id) AS last_seq \
             FROM findings f WHERE f.finding_id = $1",
        )
        .bind(finding_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err("read a finding"))?;
        let unknown = || Error::UnknownFinding { finding_id: finding_id.to_owned() };
        let Some(row) = row else { return Err(unknown()) };
        let from = parse_status(&row, "status", finding_id)?;
        let division = parse_division(&row, finding_id)?;
        let last_seq: i64 = get(&row, "last_seq", || format!("the last event of {finding_id}"))?;
        if within.is_some_and(|scope| !scope.contains(&division)) {
            return Err(unknown());
        }
        if !from.may_decide(outcome.status) {
            return Err(Error::FindingTransition { finding_id: finding_id.to_owned(), from, to: outcome.status });
        }
        let at = timestamp(outcome.at);
        // Putting a finding under review is not a decision: the last outcome stays.
        let decided = matches!(outcome.status, FindingStatus::Confirmed | FindingStatus::Dismissed);
        let changed = if decided {
            sqlx::query(
                "UPDATE findings SET status = $1, outcome_status = $1, outcome_reason = $2, outcome_note = $3, \
                 decided_by = $4, decided_at = $5 WHERE finding_id = $6 AND status = $7",
            )
            .bind(outcome.status.code())
            .bind(outcome.reason.map(DismissReason::code))
            .bind(outcome.note.as_deref())
            .bind(&outcome.by)
            .bind(&at)
            .bind(finding_id)
            .bind(from.code())
            .execute(&mut *tx)
            .await
        } else {
            sqlx::query("UPDATE findings SET status = $1 WHERE finding_id = $2 AND status = $3")
                .bind(outcome.status.code())
                .bind(finding_id)
                .bind(from.code())
                .execute(&mut *tx)
                .await
        }
        .map_err(db_err("decide a finding"))?
        .rows_affected();
        if changed != 1 {
            return Err(Error::FindingTransition { finding_id: finding_id.to_owned(), from, to: outcome.status });
        }
        let event = NewEvent {
            finding_id,
            seq: last_seq + 1,
            at: &at,
            actor: &outcome.by,
            from: Some(from),
            to: outcome.status,
            reason: outcome.reason,
            note: outcome.note.as_deref(),
            run_id: None,
        };
        insert_event(&mut tx, &event).await?;
        let row = sqlx::query(&format!("SELECT {FINDING_COLUMNS} FROM findings WHERE finding_id = $1"))
            .bind(finding_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err("read a decided finding"))?;
        let finding = finding_from_row(&row)?;
        tx.commit().await.map_err(db_err("commit a finding's outcome"))?;
        Ok(finding)
    }

    /// Counts of the findings in `within` by rule, responsible division and status.
    pub async fn finding_counts(&self, within: Option<&DivisionCode>) -> Result<Vec<FindingCount>> {
        let prefix = within.map_or_else(String::new, |w| w.scope_prefix().to_owned());
        let rows = sqlx::query(
            "SELECT rule_id, division_code, status, outcome_status, count(*) AS n FROM findings \
             WHERE division_code LIKE $1 GROUP BY rule_id, division_code, status, outcome_status",
        )
        .bind(format!("{prefix}%"))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("count findings"))?;
        rows.iter()
            .map(|row| {
                let rule_id: String = get(row, "rule_id", || "findings.rule_id".to_owned())?;
                let division = parse_division(row, &rule_id)?;
                let status = parse_status(row, "status", &rule_id)?;
                let outcome: Option<String> = get(row, "outcome_status", || "findings.outcome_status".to_owned())?;
                let outcome = match outcome {
                    None => None,
                    Some(_) => Some(parse_status(row, "outcome_status", &rule_id)?),
                };
                let n: i64 = get(row, "n", || "a findings count".to_owned())?;
                let count = count_from_db(|| "a findings count".into(), n)?;
                Ok(FindingCount { rule_id, division, status, outcome, count })
            })
            .collect()
    }

    /// Per rule, its most recent run.
    pub async fn last_rule_runs(&self) -> Result<BTreeMap<String, RuleRunRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, rule_id, rule_version, principal, started_at, finished_at, found, new, reopened, \
             seen_again, resolved FROM rule_runs",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("read rule runs"))?;
        let mut last: BTreeMap<String, RuleRunRecord> = BTreeMap::new();
        for row in &rows {
            let run = rule_run_from_row(row)?;
            match last.get(&run.rule_id) {
                Some(seen) if seen.finished_at >= run.finished_at => {}
                _ => {
                    last.insert(run.rule_id.clone(), run);
                }
            }
        }
        Ok(last)
    }
}

async fn insert_event(tx: &mut sqlx::Transaction<'_, sqlx::Any>, event: &NewEvent<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO finding_events (finding_id, seq, at, actor, from_status, to_status, reason, note, run_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.finding_id)
    .bind(event.seq)
    .bind(event.at)
    .bind(event.actor)
    .bind(event.from.map(FindingStatus::code))
    .bind(event.to.code())
    .bind(event.reason.map(DismissReason::code))
    .bind(event.note)
    .bind(event.run_id)
    .execute(&mut **tx)
    .await
    .map_err(db_err("record a finding's event"))?;
    Ok(())
}

fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Invalid { what, message: e.to_string() })
}

fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str, id: &str) -> Result<T> {
    let text: String = get(row, column, || format!("findings.{column} of {id}"))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Corrupt { what: format!("findings.{column} of {id}"), message: e.to_string() })
}

fn parse_status(row: &AnyRow, column: &str, id: &str) -> Result<FindingStatus> {
    let code: String = get(row, column, || format!("{column} of {id}"))?;
    FindingStatus::parse(&code).ok_or_else(|| Error::Corrupt {
        what: format!("{column} of {id}"),
        message: format!("unknown status {code:?}"),
    })
}

fn parse_division(row: &AnyRow, id: &str) -> Result<DivisionCode> {
    let code: String = get(row, "division_code", || format!("division_code of {id}"))?;
    DivisionCode::parse(&code)
        .map_err(|e| Error::Corrupt { what: format!("division_code of {id}"), message: e.to_string() })
}

fn parse_time(row: &AnyRow, column: &str, id: &str) -> Result<DateTime<Utc>> {
    let text: String = get(row, column, || format!("{column} of {id}"))?;
    parse_timestamp(|| format!("{column} of {id}"), &text)
}

fn finding_from_row(row: &AnyRow) -> Result<Finding> {
    let id: String = get(row, "finding_id", || "findings.finding_id".to_owned())?;
    let corrupt =
        |column: &str, message: String| Error::Corrupt { what: format!("findings.{column} of {id}"), message };
    let text = |column: &str| get::<String>(row, column, || format!("findings.{column} of {id}"));
    let subject_kind = text("subject_kind")?;
    let subject_kind = SubjectKind::parse(&subject_kind)
        .ok_or_else(|| corrupt("subject_kind", format!("unknown subject kind {subject_kind:?}")))?;
    let department: Department =
        text("department")?.parse().map_err(|e: crate::model::ParseError| corrupt("department", e.to_string()))?;
    let severity = text("severity")?;
    let severity =
        Severity::parse(&severity).ok_or_else(|| corrupt("severity", format!("unknown severity {severity:?}")))?;
    let outcome_status: Option<String> = get(row, "outcome_status", || format!("findings.outcome_status of {id}"))?;
    let outcome = match outcome_status {
        None => None,
        Some(code) => {
            let status = FindingStatus::parse(&code)
                .ok_or_else(|| corrupt("outcome_status", format!("unknown status {code:?}")))?;
            let reason: Option<String> = get(row, "outcome_reason", || format!("findings.outcome_reason of {id}"))?;
            let reason = match reason {
                None => None,
                Some(code) => Some(
                    DismissReason::parse(&code)
                        .ok_or_else(|| corrupt("outcome_reason", format!("unknown reason {code:?}")))?,
                ),
            };
            Some(Outcome {
                status,
                reason,
                note: get(row, "outcome_note", || format!("findings.outcome_note of {id}"))?,
                by: text("decided_by")?,
                at: parse_time(row, "decided_at", &id)?,
            })
        }
    };
    Ok(Finding {
        rule_id: text("rule_id")?,
        rule_version: get(row, "rule_version", || format!("findings.rule_version of {id}"))?,
        subject_kind,
        subject: text("subject")?,
        department,
        division: parse_division(row, &id)?,
        severity,
        status: parse_status(row, "status", &id)?,
        outcome,
        explanation: text("explanation")?,
        evidence: from_json::<BTreeMap<String, String>>(row, "evidence", &id)?,
        rests_on: from_json::<Vec<RowRef>>(row, "rests_on", &id)?,
        dataset_versions: from_json::<BTreeMap<String, i64>>(row, "dataset_versions", &id)?,
        first_seen: parse_time(row, "first_seen", &id)?,
        last_seen: parse_time(row, "last_seen", &id)?,
        finding_id: id,
    })
}

fn event_from_row(row: &AnyRow, id: &str) -> Result<FindingEvent> {
    let from: Option<String> = get(row, "from_status", || format!("finding_events.from_status of {id}"))?;
    let from = match from {
        None => None,
        Some(code) => Some(FindingStatus::parse(&code).ok_or_else(|| Error::Corrupt {
            what: format!("finding_events.from_status of {id}"),
            message: format!("unknown status {code:?}"),
        })?),
    };
    let reason: Option<String> = get(row, "reason", || format!("finding_events.reason of {id}"))?;
    let reason = match reason {
        None => None,
        Some(code) => Some(DismissReason::parse(&code).ok_or_else(|| Error::Corrupt {
            what: format!("finding_events.reason of {id}"),
            message: format!("unknown reason {code:?}"),
        })?),
    };
    Ok(FindingEvent {
        seq: get(row, "seq", || format!("finding_events.seq of {id}"))?,
        at: parse_time(row, "at", id)?,
        actor: get(row, "actor", || format!("finding_events.actor of {id}"))?,
        from,
        to: parse_status(row, "to_status", id)?,
        reason,
        note: get(row, "note", || format!("finding_events.note of {id}"))?,
        run_id: get(row, "run_id", || format!("finding_events.run_id of {id}"))?,
    })
}

fn rule_run_from_row(row: &AnyRow) -> Result<RuleRunRecord> {
    let run_id: String = get(row, "run_id", || "rule_runs.run_id".to_owned())?;
    let count = |column: &str| -> Result<u64> {
        let n: i64 = get(row, column, || format!("rule_runs.{column} of {run_id}"))?;
        count_from_db(|| format!("rule_runs.{column} of {run_id}"), n)
    };
    let summary = EvaluationSummary {
        found: count("found")?,
        new: count("new")?,
        reopened: count("reopened")?,
        seen_again: count("seen_again")?,
        resolved: count("resolved")?,
    };
    let time = |column: &str| -> Result<DateTime<Utc>> {
        let text: String = get(row, column, || format!("rule_runs.{column} of {run_id}"))?;
        parse_timestamp(|| format!("rule_runs.{column} of {run_id}"), &text)
    };
    Ok(RuleRunRecord {
        rule_id: get(row, "rule_id", || format!("rule_runs.rule_id of {run_id}"))?,
        rule_version: get(row, "rule_version", || format!("rule_runs.rule_version of {run_id}"))?,
        principal: get(row, "principal", || format!("rule_runs.principal of {run_id}"))?,
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        summary,
        run_id,
    })
}
