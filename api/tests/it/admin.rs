//! The admin endpoints: admins only, every request audited; tokens issued
//! (the secret once), used, revoked; grants that unmask until revoked, and
//! grants that require a stated purpose; the audit log listed and verified;
//! bad input answered with 4xx problems.

use std::collections::BTreeSet;

use civlink_catalog::policy::{AuditAction, OutcomeKind};
use serde_json::{Value, json};

use crate::fixture::{Fixture, PEOPLE, Reply, in_scope, request};

/// `method path` with a bearer token, a JSON body and extra headers.
async fn send(f: &Fixture, method: &str, token: &str, path: &str, body: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    request(f.addr, method, path, &headers, body.map(str::as_bytes)).await
}

/// The names in every row of `PEOPLE` as `token` sees them.
async fn names(f: &Fixture, token: &str, extra: &[(&str, &str)]) -> Result<BTreeSet<String>, Reply> {
    let reply =
        send(f, "GET", token, "/api/v1/datasets/gongan/population/rows?limit=1000&columns=name", None, extra).await;
    if reply.status != 200 {
        return Err(reply);
    }
    Ok(reply.json()["rows"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect())
}

#[tokio::test]
async fn non_admins_are_refused_and_the_refusal_is_audited() {
    let f = Fixture::start().await;
    for token in [&f.tokens.county, &f.tokens.standards, &f.tokens.province] {
        for path in
            ["/api/v1/admin/tokens", "/api/v1/admin/grants", "/api/v1/admin/audit", "/api/v1/admin/audit/verify"]
        {
            let body = f.get(token, path).await.problem(403);
            assert_eq!(body["type"], "urn:civlink:problem:forbidden", "{body}");
            assert!(body["detail"].as_str().unwrap().contains("admin role"), "{body}");
        }
    }
    let grant = json!({"principal": "county", "dataset": PEOPLE, "unmasked": true}).to_string();
    send(&f, "POST", &f.tokens.county, "/api/v1/admin/grants", Some(&grant), &[]).await.problem(403);
    send(&f, "POST", &f.tokens.county, "/api/v1/admin/tokens", Some(r#"{"principal":"county"}"#), &[])
        .await
        .problem(403);
    send(&f, "DELETE", &f.tokens.county, "/api/v1/admin/grants/province-insured", None, &[]).await.problem(403);
    // Nothing changed, and no token is needed to be refused as unauthenticated.
    assert_eq!(f.store.grants().await.unwrap().len(), 1);
    assert_eq!(request(f.addr, "GET", "/api/v1/admin/tokens", &[], None).await.status, 401);
    assert_eq!(f.get(&f.tokens.admin, "/api/v1/admin/tokens").await.status, 200);

    let entries = f.store.audit_entries(None).await.unwrap();
    let denied = |action: AuditAction| {
        entries.iter().any(|r| {
            r.entry.action == action && r.entry.principal == "county" && r.entry.outcome.kind == OutcomeKind::Denied
        })
    };
    for action in [
        AuditAction::TokenList,
        AuditAction::GrantList,
        AuditAction::AuditRead,
        AuditAction::AuditVerify,
        AuditAction::Grant,
        AuditAction::TokenCreate,
        AuditAction::GrantRevoke,
    ] {
        assert!(denied(action), "no denied {action} entry");
    }
    f.stop().await;
}

#[tokio::test]
async fn a_token_is_issued_once_used_listed_without_its_secret_and_revoked() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    let reply = send(&f, "POST", admin, "/api/v1/admin/tokens", Some(r#"{"principal": "township"}"#), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let issued = reply.json();
    let (id, secret) = (issued["id"].as_str().unwrap().to_owned(), issued["token"].as_str().unwrap().to_owned());
    assert!(secret.starts_with("clk_") && secret.contains(&id), "{issued}");
    assert_eq!(issued["principal"], "township");
    assert_eq!(f.get(&secret, "/api/v1/datasets").await.status, 200);

    let listing = f.get(admin, "/api/v1/admin/tokens?principal=township").await;
    assert_eq!(listing.status, 200, "{}", listing.text());
    let tokens = listing.json()["tokens"].as_array().unwrap().clone();
    let mine = tokens.iter().find(|t| t["id"] == id.as_str()).expect("the new token is listed");
    assert_eq!(mine["status"], "active");
    assert!(tokens.iter().all(|t| t["principal"] == "township"));
    assert!(!listing.text().contains(&secret[secret.len() - 64..]), "a secret is listed");

    let revoked = send(&f, "DELETE", admin, &format!("/api/v1/admin/tokens/{id}"), None, &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(revoked.json()["already_revoked"], false);
    let body = f.get(&secret, "/api/v1/datasets").await.problem(401);
    assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");
    let again = send(&f, "DELETE", admin, &format!("/api/v1/admin/tokens/{id}"), None, &[]).await;
    assert_eq!(again.json()["already_revoked"], true);
    send(&f, "DELETE", admin, "/api/v1/admin/tokens/0000000000000000", None, &[]).await.problem(404);

    // A lifetime, as an RFC 3339 time.
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let body = json!({"principal": "county", "expires_at": later}).to_string();
    let reply = send(&f, "POST", admin, "/api/v1/admin/tokens", Some(&body), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(reply.json()["expires_at"].is_string());

    // The audit log has the issue and the revocation, never the secret.
    let entries = f.store.audit_entries(None).await.unwrap();
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(&secret[secret.len() - 64..]), "the secret reached the audit log");
    for action in [AuditAction::TokenCreate, AuditAction::TokenRevoke, AuditAction::TokenList] {
        assert!(
            entries.iter().any(|r| r.entry.action == action && r.entry.principal == "admin" && r.entry.outcome.is_ok()),
            "no {action} entry"
        );
    }
    assert!(entries.iter().any(|r| r.entry.datasets == [format!("token {id} for township")]));
    f.stop().await;
}

#[tokio::test]
async fn bad_token_requests_are_4xx_problems() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    for (body, status, kind) in [
        ("{not json", 400, "bad-body"),
        (r#"{"principal": 5}"#, 400, "bad-body"),
        (r#"{"principal": "county", "colour": "red"}"#, 400, "bad-body"),
        (r#"{}"#, 400, "bad-body"),
        (r#"{"principal": "nobody"}"#, 422, "unknown-principal"),
        (r#"{"principal": "county", "expires_at": "next tuesday"}"#, 400, "bad-request"),
        (&json!({"principal": "county", "expires_at": yesterday}).to_string(), 400, "bad-request"),
    ] {
        let problem = send(&f, "POST", admin, "/api/v1/admin/tokens", Some(body), &[]).await.problem(status);
        assert_eq!(problem["type"], format!("urn:civlink:problem:{kind}"), "{body}: {problem}");
    }
    let huge = format!(r#"{{"principal": "{}"}}"#, "x".repeat(100_000));
    send(&f, "POST", admin, "/api/v1/admin/tokens", Some(&huge), &[]).await.problem(413);
    f.get(admin, "/api/v1/admin/tokens?colour=red").await.problem(400);
    f.stop().await;
}

#[tokio::test]
async fn a_grant_unmasks_for_its_grantee_until_it_is_revoked() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    let clear: BTreeSet<String> = in_scope(Some("630102")).into_iter().map(|p| p.name).collect();
    let masked = names(&f, &f.tokens.county, &[]).await.unwrap();
    assert_eq!(masked.len(), clear.len());
    assert!(masked.is_disjoint(&clear), "names are in clear before any grant: {masked:?}");

    let grant = json!({
        "id": "county-names", "principal": "county", "dataset": PEOPLE, "columns": ["name"], "unmasked": true,
        "purpose": "低保复核", "expires_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
    });
    let reply = send(&f, "POST", admin, "/api/v1/admin/grants", Some(&grant.to_string()), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let made = reply.json();
    assert_eq!(made["id"], "county-names");
    assert_eq!(made["subject"], json!({"kind": "principal", "subject": "county"}));
    assert_eq!((made["live"].clone(), made["purpose_required"].clone()), (json!(true), json!(false)));
    assert_eq!(names(&f, &f.tokens.county, &[]).await.unwrap(), clear);
    // Only for the grantee: the township analyst still sees masks.
    assert!(names(&f, &f.tokens.township, &[]).await.unwrap().is_disjoint(&clear));

    // The same id again is a conflict, not a silent replacement.
    let reply = send(&f, "POST", admin, "/api/v1/admin/grants", Some(&grant.to_string()), &[]).await;
    reply.problem(409);

    // Listed by dataset and by principal (its department's grants included).
    let listed = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["grants"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(listed(f.get(admin, "/api/v1/admin/grants").await), ["province-insured", "county-names"]);
    assert_eq!(listed(f.get(admin, &format!("/api/v1/admin/grants?dataset={PEOPLE}")).await), ["county-names"]);
    assert_eq!(listed(f.get(admin, "/api/v1/admin/grants?principal=county").await), ["county-names"]);
    assert_eq!(listed(f.get(admin, "/api/v1/admin/grants?principal=province").await), ["province-insured"]);
    f.get(admin, "/api/v1/admin/grants?principal=nobody").await.problem(422);
    f.get(admin, "/api/v1/admin/grants?dataset=not-a-dataset").await.problem(400);

    let reply = send(&f, "DELETE", admin, "/api/v1/admin/grants/county-names", None, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["revoked"]["id"], "county-names");
    assert!(names(&f, &f.tokens.county, &[]).await.unwrap().is_disjoint(&clear), "still in clear after revoking");
    send(&f, "DELETE", admin, "/api/v1/admin/grants/county-names", None, &[]).await.problem(404);

    let entries = f.store.audit_entries(None).await.unwrap();
    for action in [AuditAction::Grant, AuditAction::GrantRevoke, AuditAction::GrantList] {
        assert!(
            entries.iter().any(|r| r.entry.action == action && r.entry.principal == "admin" && r.entry.outcome.is_ok()),
            "no {action} entry"
        );
    }
    f.stop().await;
}

#[tokio::test]
async fn bad_grant_requests_are_4xx_problems() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let earlier = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"principal": "nobody", "dataset": PEOPLE}), 422, "unknown-principal"),
        (json!({"principal": "county", "dataset": "gongan.nothing"}), 422, "unknown-dataset"),
        (json!({"principal": "county", "dataset": "nonsense"}), 400, "bad-request"),
        (json!({"principal": "county", "dataset": PEOPLE, "columns": ["salary"]}), 400, "bad-request"),
        (json!({"principal": "county", "department": "minzheng", "dataset": PEOPLE}), 400, "bad-request"),
        (json!({"dataset": PEOPLE}), 400, "bad-request"),
        (json!({"department": "nowhere", "dataset": PEOPLE}), 400, "bad-request"),
        (json!({"principal": "county", "dataset": PEOPLE, "expires_at": earlier}), 400, "bad-request"),
        (json!({"principal": "county", "dataset": PEOPLE, "expires_at": "soon"}), 400, "bad-request"),
        (json!({"principal": "county", "dataset": PEOPLE, "purpose_required": true}), 400, "bad-request"),
        (json!({"principal": "county", "dataset": PEOPLE, "unmasked": "yes"}), 400, "bad-body"),
        (json!({"principal": "county", "dataset": PEOPLE, "expires_at": later, "extra": 1}), 400, "bad-body"),
        (json!(["county"]), 400, "bad-body"),
    ];
    for (body, status, kind) in cases {
        let reply = send(&f, "POST", admin, "/api/v1/admin/grants", Some(&body.to_string()), &[]).await;
        let problem = reply.problem(status);
        assert_eq!(problem["type"], format!("urn:civlink:problem:{kind}"), "{body}: {problem}");
    }
    assert_eq!(f.store.grants().await.unwrap().len(), 1, "a refused grant was recorded");
    // A department grant is fine.
    let body = json!({"department": "minzheng", "dataset": PEOPLE, "columns": ["name"], "expires_at": later});
    let reply = send(&f, "POST", admin, "/api/v1/admin/grants", Some(&body.to_string()), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["subject"], json!({"kind": "department", "subject": "minzheng"}));
    f.stop().await;
}

#[tokio::test]
async fn a_grant_that_requires_a_purpose_refuses_requests_without_one() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    let grant = json!({
        "id": "county-purpose", "principal": "county", "dataset": PEOPLE, "columns": ["name"], "unmasked": true,
        "purpose": "低保复核", "purpose_required": true,
    });
    let reply = send(&f, "POST", admin, "/api/v1/admin/grants", Some(&grant.to_string()), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["purpose_required"], true);

    let refused = names(&f, &f.tokens.county, &[]).await.expect_err("read without a purpose");
    let body = refused.problem(403);
    assert_eq!(body["type"], "urn:civlink:problem:purpose-required", "{body}");
    assert_eq!(body["dataset"], PEOPLE);
    assert_eq!(body["grant"], "county-purpose");
    assert_eq!(body["header"], "x-civlink-purpose");
    assert!(body["detail"].as_str().unwrap().contains("x-civlink-purpose"), "{body}");

    // With a purpose, the grant applies; others are not affected by it.
    let clear: BTreeSet<String> = in_scope(Some("630102")).into_iter().map(|p| p.name).collect();
    let read = names(&f, &f.tokens.county, &[("x-civlink-purpose", "低保复核 2026")]).await.unwrap();
    assert_eq!(read, clear);
    assert!(names(&f, &f.tokens.township, &[]).await.is_ok());

    let entries = f.store.audit_entries(None).await.unwrap();
    let refusal = entries
        .iter()
        .find(|r| r.entry.action == AuditAction::RestRows && r.entry.outcome.kind == OutcomeKind::Denied)
        .expect("the refusal is audited");
    assert_eq!(refusal.entry.principal, "county");
    assert!(refusal.entry.outcome.to_string().contains("purpose"), "{}", refusal.entry.outcome);
    f.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_listed_newest_first_filtered_and_verified() {
    let f = Fixture::start().await;
    let admin = &f.tokens.admin;
    assert_eq!(f.get(&f.tokens.county, "/api/v1/datasets").await.status, 200);
    assert_eq!(f.get(&f.tokens.township, "/api/v1/datasets").await.status, 200);
    let reply = send(&f, "POST", admin, "/api/v1/admin/tokens", Some(r#"{"principal": "township"}"#), &[]).await;
    assert_eq!(reply.status, 201);
    let secret = reply.json()["token"].as_str().unwrap().to_owned();

    let reply = f.get(admin, "/api/v1/admin/audit?limit=2").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let page = reply.json();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "not newest first: {seqs:?}");
    assert_eq!(entries[0]["action"], "token_create");
    assert_eq!(entries[0]["request"], "POST /api/v1/admin/tokens");
    assert!(!reply.text().contains(&secret[secret.len() - 64..]));
    // The next page continues below.
    let next = page["next_before"].as_i64().unwrap();
    let older = f.get(admin, &format!("/api/v1/admin/audit?limit=2&before={next}")).await.json();
    let older = older["entries"].as_array().unwrap();
    assert_eq!(older.len(), 1, "{older:?}");
    assert_eq!((older[0]["seq"].as_i64(), older[0]["principal"].as_str()), (Some(1), Some("county")));

    let by = f.get(admin, "/api/v1/admin/audit?principal=county&action=rest_list&since=2000-01-01").await.json();
    let by = by["entries"].as_array().unwrap();
    assert_eq!(by.len(), 1, "{by:?}");
    assert_eq!((by[0]["principal"].clone(), by[0]["outcome"].clone()), (json!("county"), json!("ok")));
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let none = f.get(admin, &format!("/api/v1/admin/audit?since={}", crate::fixture::enc(&future))).await.json();
    assert_eq!(none["entries"], json!([]));
    // The listing requests are audited themselves.
    let reads = f.get(admin, "/api/v1/admin/audit?action=audit_read&limit=1000").await.json();
    assert!(reads["entries"].as_array().unwrap().len() >= 4);

    for bad in ["limit=0", "limit=1001", "limit=99999999999999999999", "action=nope", "since=yesterday", "before=-3"] {
        let body = f.get(admin, &format!("/api/v1/admin/audit?{bad}")).await.problem(400);
        assert_eq!(body["type"], "urn:civlink:problem:bad-request", "{bad}: {body}");
    }

    let report = f.get(admin, "/api/v1/admin/audit/verify").await;
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["problems"], json!([]));
    assert!(report["entries"].as_u64().unwrap() >= 10, "{report}");
    assert_eq!(report["head"]["seq"].as_u64(), report["entries"].as_u64());
    f.stop().await;
}
