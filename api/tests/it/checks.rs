//! `POST /api/v1/checks`: only principals with the check duty, only with a
//! consent reference, bad requests answered with every problem; members
//! matched as the principal sees the ID column (clear under an unmasking
//! grant; a source whose ID column it sees otherwise masked is reported as
//! not consulted); the report as JSON or the printable page; every check
//! and refusal audited, and no clear ID number in the audit chain.

use std::sync::Arc;

use civlink_api::ApiConfig;
use civlink_catalog::policy::AuditAction;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::fixture::{Fixture, INSURED, PEOPLE, people, request};

const SOURCES: &str = r#"
[[source]]
dataset = "gongan.population"
section = "户籍登记"
person = "id_number"
columns = ["name", "status", "division_code"]

[[source.flag]]
id = "moved_out"
title = "已迁出"
when = "status = 'moved_out'"

[[source]]
dataset = "renshe.insured_people"
section = "参保"
person = "id_number"
columns = ["name", "sex", "division_code"]

[[source.flag]]
id = "assistance_elsewhere"
title = "在其他县（区）"
outside_household_county = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_need_the_duty_and_consent_and_report_what_the_principal_may_see() {
    let fixture = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources.toml");
    std::fs::write(&sources, SOURCES).unwrap();
    let config = ApiConfig { addr: "127.0.0.1:0".parse().unwrap(), check_sources: Some(sources.clone()) };
    let server = civlink_api::bind(config, Arc::clone(&fixture.factory)).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    fixture.store.allow_checks("province", "test").await.unwrap();
    let t = &fixture.tokens;
    let post = async |token: &str, body: &str, accept: &str| {
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Accept", accept)];
        request(addr, "POST", "/api/v1/checks", &headers, Some(body.as_bytes())).await
    };
    let everyone = people();
    // Township 630102001 (moved out) and a person of prefecture 632221.
    let (home, away) = (&everyone[0], &everyone[22]);
    let body = |consent: Value| {
        json!({
            "members": [home.id_number, away.id_number],
            "consent_reference": consent,
            "purpose": "低保申请审核",
            "household_division": "630102001001",
        })
        .to_string()
    };

    let refused = post(&t.county, &body(json!("SQ-1")), "application/json").await;
    let problem = refused.problem(403);
    assert!(problem["detail"].as_str().unwrap().contains("may not run household checks"), "{problem}");
    let no_consent = post(&t.province, &body(Value::Null), "application/json").await;
    assert!(no_consent.problem(403)["detail"].as_str().unwrap().contains("signed consent"));
    let bad = json!({"members": ["110105194912310021", "x"], "consent_reference": "SQ-1", "purpose": "",
        "household_division": "630102"})
    .to_string();
    let detail = post(&t.province, &bad, "application/json").await.problem(400)["detail"].as_str().unwrap().to_owned();
    for expected in ["member 1: not a valid ID number", "member 2", "purpose is required"] {
        assert!(detail.contains(expected), "{expected}: {detail}");
    }
    assert!(!detail.contains("110105194912310021"), "{detail}");
    let unknown_field = post(&t.province, r#"{"members": [], "consent": "x"}"#, "application/json").await;
    unknown_field.problem(400);

    let reply = post(&t.province, &body(json!("SQ-2026-0042")), "application/json").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let report = reply.json();
    assert_eq!(report["consent_reference"], "SQ-2026-0042");
    let sources: Vec<&Value> = report["sources"].as_array().unwrap().iter().collect();
    let population = sources.iter().find(|s| s["dataset"] == PEOPLE).unwrap();
    assert_eq!(population["consulted"], false, "the province sees the ID column only in part: {population}");
    assert!(population["note"].as_str().unwrap().contains("masked"), "{population}");
    let insured = sources.iter().find(|s| s["dataset"] == INSURED).unwrap();
    assert_eq!(insured["consulted"], true, "an unmasking grant: matched in clear");
    assert_eq!(insured["rows"], 2);
    let members = report["members"].as_array().unwrap();
    assert_eq!(members[0]["flags"], json!([]));
    assert_eq!(members[1]["flags"], json!(["assistance_elsewhere"]), "632221 lies outside county 630102");
    assert_eq!(report["flags"][0]["members"], json!([2]));
    let item = &members[0]["items"][0];
    assert_eq!(item["dataset"], INSURED);
    assert_eq!(item["rows"][0]["division_code"], "630102001001");
    assert!(item["version"].as_i64().is_some() && item["as_of"].is_string(), "{item}");
    assert!(!members[0]["id_number"].as_str().unwrap().contains(&home.id_number[6..14]));

    let page = post(&t.province, &body(json!("SQ-2026-0042")), "text/html").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(page.header("cache-control"), Some("no-store"), "no cache keeps a report");
    let html = page.text();
    assert!(html.contains("家庭经济状况核对报告") && html.contains("SQ-2026-0042"), "{html}");

    // Audited: the checks with their consent, the refusals too; never a clear ID number.
    let entries = fixture.store.audit_entries(Some(200)).await.unwrap();
    let checks: Vec<_> = entries.iter().filter(|r| r.entry.action == AuditAction::HouseholdCheck).collect();
    assert!(checks.len() >= 5, "{} household_check entries", checks.len());
    assert!(checks.iter().any(|r| r.entry.outcome.is_ok()
        && r.entry.sql_text.as_deref().is_some_and(|s| s.contains("SQ-2026-0042"))));
    assert!(checks.iter().filter(|r| !r.entry.outcome.is_ok()).count() >= 3, "refusals are audited");
    for record in &entries {
        let text = format!("{:?}", record.entry);
        assert!(!text.contains(&home.id_number) && !text.contains(&away.id_number), "{text}");
    }

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    fixture.stop().await;
}
