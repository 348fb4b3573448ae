//! Publishing standards: role check, validation with every problem,
//! compatibility with earlier versions, idempotence and conflicts.

use serde_json::json;

use civlink_catalog::policy::{AuditAction, OutcomeKind};

use crate::fixture::Fixture;

/// A small standard, version `version`, with extra properties and required names.
pub fn standard(version: &str, extra: &str, required: &[&str]) -> String {
    let required: Vec<String> = ["code"].iter().chain(required).map(|r| format!("\"{r}\"")).collect();
    format!(
        r#"{{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "test.things",
  "x-civlink-version": "{version}",
  "title": "东西",
  "type": "object",
  "required": [{}],
  "properties": {{"code": {{"type": "string", "title": "代码", "maxLength": 10}}{extra}}}
}}"#,
        required.join(", ")
    )
}

#[tokio::test]
async fn standards_admins_publish_and_everyone_reads() {
    let f = Fixture::start().await;
    let v1 = standard("1.0.0", "", &[]);

    // Analysts may not publish, whatever the document.
    let body = f.post(&f.tokens.county, "/api/v1/standards", &v1).await.problem(403);
    assert!(body["detail"].as_str().unwrap().contains("standards_admin"));

    let reply = f.post(&f.tokens.standards, "/api/v1/standards", &v1).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/api/v1/standards/test.things/1.0.0"));
    let body = reply.json();
    assert_eq!(
        (body["id"].clone(), body["version"].clone(), body["created"].clone()),
        (json!("test.things"), json!("1.0.0"), json!(true))
    );

    // Publishing the same document again changes nothing.
    let again = f.post(&f.tokens.standards, "/api/v1/standards", &v1).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["created"], false);

    // Any principal reads the versions and the document, byte for byte.
    let versions = f.get(&f.tokens.township, "/api/v1/standards/test.things").await.json();
    assert_eq!(versions, json!({"id": "test.things", "latest": "1.0.0", "versions": ["1.0.0"]}));
    let document = f.get(&f.tokens.township, "/api/v1/standards/test.things/1.0.0").await;
    assert_eq!(document.status, 200);
    assert_eq!(document.header("content-type"), Some("application/json"));
    assert_eq!(document.text(), v1);
    f.get(&f.tokens.township, "/api/v1/standards/test.things/9.9.9").await.problem(404);
    f.get(&f.tokens.township, "/api/v1/standards/test.nothing").await.problem(404);

    // Admin may publish too: a compatible new version (an optional column).
    let v11 = standard("1.1.0", r#", "note": {"type": "string", "title": "备注"}"#, &[]);
    let reply = f.post(&f.tokens.admin, "/api/v1/standards", &v11).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["compatibility"], json!({"mode": "backward", "checked_against": 1}));
    let versions = f.get(&f.tokens.township, "/api/v1/standards/test.things").await.json();
    assert_eq!(versions["versions"], json!(["1.0.0", "1.1.0"]));
    f.stop().await;
}

#[tokio::test]
async fn a_different_document_under_a_registered_version_is_409() {
    let f = Fixture::start().await;
    let v1 = standard("1.0.0", "", &[]);
    assert_eq!(f.post(&f.tokens.standards, "/api/v1/standards", &v1).await.status, 201);
    let changed = standard("1.0.0", r#", "note": {"type": "string", "title": "备注"}"#, &[]);
    let body = f.post(&f.tokens.standards, "/api/v1/standards", &changed).await.problem(409);
    assert_eq!(body["type"], "urn:civlink:problem:standard-conflict");
    // The registered document is unchanged.
    let document = f.get(&f.tokens.standards, "/api/v1/standards/test.things/1.0.0").await;
    assert_eq!(document.text(), v1);
    f.stop().await;
}

#[tokio::test]
async fn invalid_standards_are_422_with_every_problem() {
    let f = Fixture::start().await;
    let post = async |body: &str| f.post(&f.tokens.standards, "/api/v1/standards", body).await;

    // Several meta-schema violations: all of them are listed.
    let broken =
        standard("1.0.0", r#", "a": {"type": "strin"}, "b": {"minimum": "zero"}, "c": {"maxLength": -1}"#, &[]);
    let body = post(&broken).await.problem(422);
    assert_eq!(body["type"], "urn:civlink:problem:invalid-standard");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() >= 3, "{body}");
    for column in ["/properties/a", "/properties/b", "/properties/c"] {
        assert!(errors.iter().any(|e| e["pointer"].as_str().unwrap().starts_with(column)), "{column}: {body}");
    }

    // Not JSON; JSON but not a civlink standard; a civlink problem with its pointer.
    let body = post("{\"x-civlink-id\": ").await.problem(422);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("JSON"), "{body}");
    let body = post("[1, 2]").await.problem(422);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    let unknown_table = standard(
        "1.0.0",
        r#", "t": {"type": "string", "title": "类型", "x-civlink-code-table": "no_such_table"}"#,
        &[],
    );
    let body = post(&unknown_table).await.problem(422);
    assert_eq!(body["errors"][0]["pointer"], "/properties/t/x-civlink-code-table", "{body}");

    // Nothing was registered.
    f.get(&f.tokens.standards, "/api/v1/standards/test.things").await.problem(404);
    // A body that is not UTF-8 is a 400.
    let auth = format!("Bearer {}", f.tokens.standards);
    let reply =
        crate::fixture::request(f.addr, "POST", "/api/v1/standards", &[("Authorization", &auth)], Some(&[0xff, 0xfe]))
            .await;
    reply.problem(400);
    f.stop().await;
}

#[tokio::test]
async fn incompatible_versions_are_409_with_the_full_report_unless_the_mode_allows_them() {
    let f = Fixture::start().await;
    assert_eq!(f.post(&f.tokens.standards, "/api/v1/standards", &standard("1.0.0", "", &[])).await.status, 201);

    // A new required column breaks backward compatibility (old rows lack it).
    let v2 = standard("2.0.0", r#", "owner": {"type": "string", "title": "所有人"}"#, &["owner"]);
    let body = f.post(&f.tokens.standards, "/api/v1/standards", &v2).await.problem(409);
    assert_eq!(body["type"], "urn:civlink:problem:incompatible-standard");
    assert_eq!(body["mode"], "backward");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["message"].as_str().unwrap().contains("1.0.0")), "{body}");
    assert!(errors.iter().all(|e| e["pointer"].is_string()));

    // A tighter bound and the new required column: every incompatibility is listed.
    let v2_tight = v2.replace("\"maxLength\": 10", "\"maxLength\": 5");
    let body = f.post(&f.tokens.standards, "/api/v1/standards", &v2_tight).await.problem(409);
    assert!(body["errors"].as_array().unwrap().len() >= 2, "{body}");

    let reply = f.post(&f.tokens.standards, "/api/v1/standards?compatibility=none", &v2).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let bad_mode = f.post(&f.tokens.standards, "/api/v1/standards?compatibility=sideways", &v2).await;
    bad_mode.problem(400);

    // Publishing is audited.
    let entries = f.store.audit_entries(None).await.unwrap();
    let publishes: Vec<_> =
        entries.iter().map(|r| &r.entry).filter(|e| e.action == AuditAction::RestPublishStandard).collect();
    assert_eq!(publishes.len(), 5, "{publishes:#?}");
    assert!(publishes.iter().all(|e| e.principal == "std_admin"));
    assert!(publishes[0].outcome.is_ok());
    assert_eq!(publishes[0].datasets, ["standard test.things 1.0.0"]);
    assert_eq!(publishes[1].outcome.kind, OutcomeKind::Error, "{:?}", publishes[1].outcome);
    f.stop().await;
}

#[tokio::test]
async fn publishing_cannot_silently_unmask() {
    let f = Fixture::start().await;
    let masked = r#", "phone": {"type": "string", "title": "电话", "x-civlink-sensitivity": "sensitive",
        "x-civlink-pii": true, "x-civlink-mask": {"strategy": "keep_ends", "first": 3, "last": 4}}"#;
    let v1 = standard("1.0.0", masked, &[]);
    assert_eq!(f.post(&f.tokens.standards, "/api/v1/standards", &v1).await.status, 201);
    // v2 shows the phone in clear: a compatible change in shape, a weakening in protection.
    let clear = r#", "phone": {"type": "string", "title": "电话", "x-civlink-sensitivity": "internal"}"#;
    let v2 = standard("2.0.0", clear, &[]);
    let body = f.post(&f.tokens.standards, "/api/v1/standards", &v2).await.problem(409);
    assert_eq!(body["type"], "urn:civlink:problem:weakens-protection");
    let columns = body["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 1);
    assert_eq!(columns[0]["column"], "phone");
    let change = columns[0]["change"].as_str().unwrap();
    assert!(change.contains("mask") && change.contains("sensitivity") && change.contains("pii"), "{change}");
    // The flag alone is not enough for a standards admin, nor without a reason for an admin.
    let path = "/api/v1/standards?allow_weaker_protection=true&reason=%E5%85%AC%E5%BC%80%E5%8F%B7%E7%A0%81";
    f.post(&f.tokens.standards, path, &v2).await.problem(403);
    f.post(&f.tokens.admin, "/api/v1/standards?allow_weaker_protection=true", &v2).await.problem(400);
    let reply = f.post(&f.tokens.admin, path, &v2).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    // Nothing else was registered, and the weakening is in the audit chain with its columns and reason.
    let versions = f.get(&f.tokens.county, "/api/v1/standards/test.things").await.json();
    assert_eq!(versions["versions"], json!(["1.0.0", "2.0.0"]));
    let entries = f.store.audit_entries(None).await.unwrap();
    let published: Vec<_> =
        entries.iter().map(|r| &r.entry).filter(|e| e.action == AuditAction::StandardPublish).collect();
    assert_eq!(published.len(), 2, "{published:#?}");
    let weakened = published[1].outcome.detail.as_deref().unwrap();
    assert!(weakened.contains("phone") && weakened.contains("公开号码") && weakened.contains("admin"), "{weakened}");
    assert!(f.store.verify_audit().await.unwrap().intact());
    f.stop().await;
}
