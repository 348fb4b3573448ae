//! The OpenAPI document: generated, served, checked in, and rendered offline.

use serde_json::Value;

use crate::fixture::{Fixture, request};

/// `docs/openapi.json`, from this crate's directory.
const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let generated = civlink_api::openapi::to_json(&civlink_api::openapi());
    if std::env::var_os("CIVLINK_WRITE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from the document the code generates; regenerate it with \
         `CIVLINK_WRITE_OPENAPI=1 cargo nextest run -p civlink-api -E 'test(checked_in)'` and review the diff"
    );
    let f = Fixture::start().await;
    let served = request(f.addr, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(served.text(), generated);
    f.stop().await;
}

#[test]
fn every_operation_documents_its_problems_and_security() {
    let doc: Value = serde_json::to_value(civlink_api::openapi()).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/datasets",
        "/api/v1/datasets/{department}/{name}",
        "/api/v1/datasets/{department}/{name}/rows",
        "/api/v1/query",
        "/api/v1/standards",
        "/api/v1/findings",
        "/api/v1/checks",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if ["/api/v1/health", "/healthz", "/readyz", "/metrics"].contains(&path.as_str()) {
                assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
                continue;
            }
            assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{method} {path}");
            for status in ["400", "401", "403", "404", "500", "503"] {
                let problem = &responses[status]["content"]["application/problem+json"];
                assert!(problem.is_object(), "{method} {path} lacks the {status} problem");
            }
        }
    }
    let types = doc["components"]["schemas"]["ProblemDoc"]["properties"]["type"]["enum"].as_array().unwrap();
    assert!(types.contains(&Value::String("urn:civlink:problem:bad-cursor".into())));
    assert_eq!(types.len(), civlink_api::error::PROBLEM_TYPES.len());
    // The rows endpoint offers every format.
    let content = &paths["/api/v1/datasets/{department}/{name}/rows"]["get"]["responses"]["200"]["content"];
    for t in civlink_api::format::OFFERED {
        assert!(content[t].is_object(), "rows does not document {t}");
    }
}

#[tokio::test]
async fn the_api_page_is_self_contained() {
    let f = Fixture::start().await;
    let page = request(f.addr, "GET", "/api/docs", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let html = page.text();
    assert!(html.contains("/api/openapi.json"));
    // Nothing loaded from elsewhere: no external script, style or font.
    for external in ["http://", "https://", "//cdn", "<script src", "<link"] {
        assert!(!html.contains(external), "the page refers to {external}");
    }
    f.stop().await;
}

#[tokio::test]
async fn every_documented_operation_answers_401_without_a_usable_token() {
    let f = Fixture::start().await;
    let doc: Value = serde_json::to_value(civlink_api::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Path parameters filled with plausible values.
        let concrete = path
            .replace("{department}", "gongan")
            .replace("{name}", "population")
            .replace("{id}", "test.person")
            .replace("{version}", "1.0.0");
        for (method, op) in item.as_object().unwrap() {
            if op["security"] == serde_json::json!([]) {
                continue;
            }
            let method = method.to_uppercase();
            let body: &[u8] = if method == "POST" { br#"{"sql": "SELECT 1"}"# } else { b"" };
            let revoked = format!("Bearer {}", f.tokens.revoked);
            for auth in [None, Some("Bearer clk_wrong"), Some(revoked.as_str())] {
                let mut headers = vec![("Content-Type", "application/json")];
                if let Some(auth) = auth {
                    headers.push(("Authorization", auth));
                }
                let reply = request(f.addr, &method, &concrete, &headers, Some(body)).await;
                let problem = reply.problem(401);
                assert_eq!(problem["type"], "urn:civlink:problem:unauthenticated", "{method} {concrete}");
                assert!(reply.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")));
                checked += 1;
            }
        }
    }
    assert!(checked >= 36, "{checked}");
    f.stop().await;
}
