//! The operations endpoints: healthz and readyz without a token (readyz 503
//! when the metadata store is gone), and the Prometheus metrics after some
//! requests (and after an audit log that refuses appends).

use crate::fixture::{Fixture, request};

#[tokio::test]
async fn healthz_and_readyz_need_no_token() {
    let f = Fixture::start().await;
    let alive = request(f.addr, "GET", "/healthz", &[], None).await;
    assert_eq!((alive.status, alive.json()), (200, serde_json::json!({"status": "ok"})));
    let ready = request(f.addr, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.json()["checks"]["table_storage"], "ok");
    // The old health path stays.
    assert_eq!(request(f.addr, "GET", "/api/v1/health", &[], None).await.status, 200);
    f.stop().await;
}

#[tokio::test]
async fn readyz_is_a_503_problem_when_the_metadata_store_does_not_answer() {
    let f = Fixture::start().await;
    f.store.close().await;
    let reply = request(f.addr, "GET", "/readyz", &[], None).await;
    let body = reply.problem(503);
    assert_eq!(body["type"], "urn:civlink:problem:not-ready", "{body}");
    assert_eq!(body["failed"], serde_json::json!(["metadata_store"]), "{body}");
    // Alive all the same.
    assert_eq!(request(f.addr, "GET", "/healthz", &[], None).await.status, 200);
}

#[tokio::test]
async fn metrics_count_requests_queries_rows_and_the_cache() {
    let f = Fixture::start().await;
    // The county analyst twice (its session keeps the table it opened), then
    // the township analyst (a new session: the table comes from the cache).
    for token in [&f.tokens.county, &f.tokens.county, &f.tokens.township] {
        let rows = f.get(token, "/api/v1/datasets/gongan/population/rows?limit=5").await;
        assert_eq!(rows.status, 200, "{}", rows.text());
    }
    f.get(&f.tokens.county, "/api/v1/datasets/renshe/insured_people/rows").await.problem(404);
    f.get(&f.tokens.admin, "/api/v1/nothing/here/at/all").await.problem(404);

    let reply = request(f.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = reply.text();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    let value = |prefix: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // By route template, never by raw path.
    has(
        r#"civlink_http_requests_total{method="GET",route="/api/v1/datasets/{department}/{name}/rows",status="200"} 3"#,
    );
    has(
        r#"civlink_http_requests_total{method="GET",route="/api/v1/datasets/{department}/{name}/rows",status="404"} 1"#,
    );
    has(r#"civlink_http_requests_total{method="GET",route="unmatched",status="404"} 1"#);
    assert!(!text.contains("gongan/population"), "a raw path is a label");
    has("# TYPE civlink_http_request_duration_seconds histogram");
    let route = r#"route="/api/v1/datasets/{department}/{name}/rows""#;
    assert_eq!(value(&format!("civlink_http_request_duration_seconds_count{{{route}}}")), 4);
    assert_eq!(value(&format!(r#"civlink_http_request_duration_seconds_bucket{{{route},le="+Inf"}}"#)), 4);
    // Queries and rows per transport, counted in the query layer.
    has(r#"civlink_queries_total{action="rest_rows",outcome="ok",transport="rest"} 3"#);
    has(r#"civlink_queries_total{action="rest_rows",outcome="error",transport="rest"} 1"#);
    // Each page reads one row past its limit, to know whether another follows.
    assert_eq!(value(r#"civlink_query_rows_total{action="rest_rows",transport="rest"}"#), 18);
    // The first session loaded the table, the second found it cached.
    assert!(value(r#"civlink_table_cache_lookups_total{result="miss"}"#) >= 1);
    assert!(value(r#"civlink_table_cache_lookups_total{result="hit"}"#) >= 1);
    has("civlink_audit_write_failures_total 0");
    has("# TYPE civlink_table_cache_bytes gauge");
    f.stop().await;
}

#[tokio::test]
async fn audit_write_failures_are_counted() {
    let f = Fixture::start().await;
    assert_eq!(f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows?limit=1").await.status, 200);
    // Make the audit log refuse appends, underneath the server (as a full disk would).
    let db = f._dir.path().join("catalog.db");
    let sql = "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(FAIL, 'disk full'); END";
    let output = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
        .arg(&db)
        .arg(sql)
        .output()
        .expect("run python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let body = f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows?limit=1").await.problem(503);
    assert_eq!(body["type"], "urn:civlink:problem:audit-unavailable", "{body}");
    let text = request(f.addr, "GET", "/metrics", &[], None).await.text();
    let failures = text
        .lines()
        .find_map(|l| l.strip_prefix("civlink_audit_write_failures_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no audit failures in\n{text}"));
    assert!(failures >= 1, "{text}");
    f.stop().await;
}
