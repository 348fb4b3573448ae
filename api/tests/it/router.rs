//! The router without a listener (`tower::ServiceExt::oneshot`), and bad
//! input of every kind: each gets a clear 4xx problem, nothing panics.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::fixture::Fixture;

async fn call(
    f: &Fixture,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let state = Arc::new(civlink_api::state::AppState::new(Arc::clone(&f.factory)));
    let router = civlink_api::router(state);
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router.oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn the_router_answers_without_a_listener() {
    let f = Fixture::start().await;
    let (status, body) = call(&f, "GET", "/api/v1/datasets", Some(&f.tokens.county), vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["datasets"].as_array().is_some_and(|d| !d.is_empty()));
    let (status, body) = call(&f, "GET", "/api/v1/datasets", None, vec![]).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("urn:civlink:problem:unauthenticated"))
    );
    let (status, _) = call(&f, "GET", "/api/openapi.json", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    f.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_nothing_panics() {
    let f = Fixture::start().await;
    let t = Some(f.tokens.county.as_str());
    let rows = "/api/v1/datasets/gongan/population/rows";
    for (method, path, body, want) in [
        // Malformed and wrongly typed bodies.
        ("POST", "/api/v1/query", b"{".to_vec(), 400),
        ("POST", "/api/v1/query", br#"{"sql": ["SELECT 1"]}"#.to_vec(), 400),
        ("POST", "/api/v1/findings/x/outcome", b"not json".to_vec(), 400),
        // A page size of 10^9, unknown columns, SQL text in filter values.
        ("GET", &format!("{rows}?limit=1000000000"), vec![], 400),
        ("GET", &format!("{rows}?columns=salary"), vec![], 400),
        ("GET", &format!("{rows}?sex=1%27%20OR%20%271%27=%271"), vec![], 200),
        ("GET", &format!("{rows}?household_size=1%3B%20DROP%20TABLE%20x"), vec![], 400),
        ("GET", &format!("{rows}?sort=name%3B%20DROP%20TABLE%20x"), vec![], 400),
        // Path traversal in names.
        ("GET", "/api/v1/datasets/..%2F..%2Fetc/passwd/rows", vec![], 404),
        ("GET", "/api/v1/datasets/gongan/..%2Fpopulation/rows", vec![], 404),
        ("GET", "/api/v1/standards/..%2F..%2Fetc%2Fpasswd/1", vec![], 404),
        ("GET", "/api/v1/code-tables/..%2Fsex", vec![], 404),
        // A huge body.
        ("POST", "/api/v1/query", vec![b' '; 3 << 20], 413),
    ] {
        let (status, body) = call(&f, method, path, t, body).await;
        assert_eq!(status.as_u16(), want, "{method} {path}: {body}");
        if want != 200 {
            assert!(body["type"].as_str().is_some_and(|t| t.starts_with("urn:civlink:problem:")), "{path}: {body}");
        } else {
            // SQL text in a filter value is a value: it matches nothing.
            assert_eq!(body["rows"], serde_json::json!([]), "{path}");
        }
    }
    f.stop().await;
}
