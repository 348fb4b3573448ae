//! The findings endpoints: scoped by responsible division, paged, decided
//! once, summarised, and audited.

use std::collections::BTreeMap;

use chrono::Utc;
use civlink_catalog::findings::{Candidate, RowRef, RuleEvaluation, Severity, SubjectKind};
use civlink_catalog::model::Department;
use civlink_standards::division::DivisionCode;

use crate::fixture::Fixture;

/// Findings in two townships of county 630102 and one village of 630105.
async fn plant(fixture: &Fixture) -> Vec<String> {
    let villages = ["630102001001", "630102001002", "630102002001", "630105001001"];
    let candidates: Vec<Candidate> = villages
        .iter()
        .enumerate()
        .map(|(i, village)| Candidate {
            subject: format!("ps_{i}"),
            department: Department::Minzheng,
            division: DivisionCode::parse(village).unwrap(),
            explanation: format!("低保成员 张**（ps_{i}）户籍于 2024-03-10 注销（死亡）"),
            evidence: BTreeMap::from([("name".to_owned(), "张**".to_owned())]),
            rests_on: vec![RowRef {
                dataset: "minzheng.dibao_members".into(),
                key: BTreeMap::from([("id_number".to_owned(), format!("ps_{i}"))]),
            }],
        })
        .collect();
    let evaluation = RuleEvaluation {
        run_id: "vr_test".into(),
        rule_id: "dibao_deceased".into(),
        rule_version: 1,
        severity: Severity::High,
        subject_kind: SubjectKind::Person,
        principal: "province".into(),
        scope: DivisionCode::parse("630000000000").unwrap(),
        dataset_versions: BTreeMap::from([("minzheng.dibao_members".to_owned(), 1)]),
        started_at: Utc::now(),
    };
    fixture.store.record_evaluation(&evaluation, &candidates).await.unwrap();
    candidates.iter().map(|c| c.id("dibao_deceased")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_are_scoped_paged_decided_once_and_summarised() {
    let fixture = Fixture::start().await;
    let ids = plant(&fixture).await;
    let t = &fixture.tokens;

    let count = |reply: &crate::fixture::Reply| reply.json()["findings"].as_array().unwrap().len();
    assert_eq!(count(&fixture.get(&t.province, "/api/v1/findings").await), 4);
    assert_eq!(count(&fixture.get(&t.county, "/api/v1/findings").await), 3, "630102 only");
    assert_eq!(count(&fixture.get(&t.township, "/api/v1/findings").await), 2, "630102001 only");

    // Pages by cursor, each finding once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/findings?limit=1".to_owned();
    loop {
        let page = fixture.get(&t.province, &path).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let json = page.json();
        seen.extend(json["findings"].as_array().unwrap().iter().map(|f| f["finding_id"].as_str().unwrap().to_owned()));
        match json["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/findings?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    // Outside one's division a finding does not exist; a division filter outside it is refused.
    let outside = &ids[3];
    assert_eq!(fixture.get(&t.county, &format!("/api/v1/findings/{outside}")).await.status, 404);
    assert_eq!(fixture.get(&t.county, "/api/v1/findings?division=630105000000").await.status, 403);
    assert_eq!(fixture.get(&t.county, "/api/v1/findings?status=nonsense").await.status, 400);
    let reply =
        fixture.post(&t.county, &format!("/api/v1/findings/{outside}/outcome"), r#"{"outcome":"confirmed"}"#).await;
    assert_eq!(reply.status, 404, "{}", reply.text());

    // Another department's analyst in the county sees the finding but does not decide it.
    let gongan = fixture.get(&t.gongan, &format!("/api/v1/findings/{}", ids[0])).await;
    assert_eq!(gongan.status, 200, "{}", gongan.text());
    let refused =
        fixture.post(&t.gongan, &format!("/api/v1/findings/{}/outcome", ids[0]), r#"{"outcome":"confirmed"}"#).await;
    assert_eq!(refused.status, 403, "{}", refused.text());

    // The township decides its own: once.
    let mine = &ids[0];
    let shown = fixture.get(&t.township, &format!("/api/v1/findings/{mine}")).await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["history"].as_array().unwrap().len(), 1);
    let path = format!("/api/v1/findings/{mine}/outcome");
    let bad = fixture.post(&t.township, &path, r#"{"outcome":"dismissed"}"#).await;
    assert_eq!(bad.status, 400, "a dismissal needs a reason: {}", bad.text());
    let bad = fixture.post(&t.township, &path, r#"{"outcome":"resolved_at_source"}"#).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = fixture.post(&t.township, &path, r#"{"outcome":"confirmed","colour":"red"}"#).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let ok = fixture.post(&t.township, &path, r#"{"outcome":"confirmed","note":"入户核实"}"#).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["finding"]["status"], "confirmed");
    let again = fixture.post(&t.township, &path, r#"{"outcome":"dismissed","reason":"other"}"#).await;
    assert_eq!(again.status, 409, "{}", again.text());
    let dismissed = fixture
        .post(
            &t.township,
            &format!("/api/v1/findings/{}/outcome", ids[1]),
            r#"{"outcome":"dismissed","reason":"legitimate"}"#,
        )
        .await;
    assert_eq!(dismissed.status, 200, "{}", dismissed.text());

    // The county's summary: by rule with its precision, by township.
    let summary = fixture.get(&t.county, "/api/v1/findings/summary").await;
    assert_eq!(summary.status, 200, "{}", summary.text());
    let json = summary.json();
    assert_eq!(json["level"], "township");
    assert_eq!(json["by_rule"][0]["total"], 3);
    assert_eq!(json["by_rule"][0]["precision"], 0.5);
    assert_eq!(json["by_division"].as_array().unwrap().len(), 2);
    assert_eq!(fixture.get(&t.township, "/api/v1/findings/summary?level=province").await.status, 400);

    // Every request is audited, the decision with its outcome.
    let entries = fixture.store.audit_entries(None).await.unwrap();
    let decisions: Vec<_> = entries.iter().filter(|e| e.entry.action.code() == "finding_decide").collect();
    assert!(decisions.len() >= 3);
    assert!(entries.iter().any(|e| e.entry.action.code() == "finding_read"));
    fixture.stop().await;
}
