//! Formats by `Accept`, streamed downloads, and SQL over REST.

use arrow::array::RecordBatch;
use serde_json::{Value, json};

use crate::fixture::{Fixture, in_scope, people, request};

const PEOPLE_ROWS: &str = "/api/v1/datasets/gongan/population/rows";

fn csv_rows(body: &[u8]) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(body);
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    (header, reader.records().map(Result::unwrap).collect())
}

fn arrow_rows(body: &[u8]) -> Vec<RecordBatch> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body.to_vec()), None)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn every_format_carries_the_same_scoped_masked_rows() {
    let f = Fixture::start().await;
    let token = &f.tokens.county;
    let want = in_scope(Some("630102"));
    let json = f.get(token, &format!("{PEOPLE_ROWS}?limit=10000")).await.json();
    let json_rows = json["rows"].as_array().unwrap().clone();
    assert_eq!(json_rows.len(), want.len());

    // Streamed downloads (no limit): every row, in the same masks.
    let ndjson = f.get_as(token, PEOPLE_ROWS, "application/x-ndjson").await;
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), want.len());
    let mut sorted = lines.clone();
    sorted.sort_by_key(|r| r.to_string());
    let mut json_sorted = json_rows.clone();
    json_sorted.sort_by_key(|r| r.to_string());
    assert_eq!(sorted, json_sorted, "the same rows, whatever the order of a download");

    let csv = f.get_as(token, &format!("{PEOPLE_ROWS}?bom=true"), "text/csv").await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.body.starts_with(b"\xEF\xBB\xBF"), "BOM first");
    let (header, records) = csv_rows(&csv.body[3..]);
    assert_eq!(header[..3], ["id_number", "name", "household_number"]);
    assert_eq!(records.len(), want.len());
    let plain = f.get_as(token, PEOPLE_ROWS, "text/csv").await;
    assert!(!plain.body.starts_with(b"\xEF\xBB\xBF"));

    let ipc = f.get_as(token, PEOPLE_ROWS, "application/vnd.apache.arrow.stream").await;
    let batches = arrow_rows(&ipc.body);
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), want.len());

    let parquet = f.get_as(token, PEOPLE_ROWS, "application/vnd.apache.parquet").await;
    assert_eq!(parquet.status, 200);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
        parquet.body.clone(),
    ))
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), want.len());

    // Nothing in clear in any of them.
    for body in [ndjson.text(), csv.text(), String::from_utf8_lossy(&ipc.body).into_owned()] {
        for p in &want {
            assert!(!body.contains(&p.id_number) && !body.contains(&p.name) && !body.contains(&p.phone));
        }
    }

    // A page in another format carries its cursor in a header.
    let page = f.get_as(token, &format!("{PEOPLE_ROWS}?limit=5"), "text/csv").await;
    assert_eq!(csv_rows(&page.body).1.len(), 5);
    let next = page.header("x-civlink-next-cursor").unwrap().to_owned();
    let second = f.get(token, &format!("{PEOPLE_ROWS}?limit=5&cursor={next}")).await.json();
    assert_eq!(second["rows"].as_array().unwrap()[..], json_rows[5..10]);

    // A format not offered: 406 listing those that are.
    let refused = f.get_as(token, PEOPLE_ROWS, "text/html").await.problem(406);
    assert_eq!(refused["type"], "urn:civlink:problem:not-acceptable");
    assert!(refused["offered"].as_array().unwrap().contains(&json!("text/csv")));
    f.stop().await;
}

async fn post_sql(f: &Fixture, token: &str, body: &str, accept: &str) -> crate::fixture::Reply {
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Accept", accept)];
    request(f.addr, "POST", "/api/v1/query", &headers, Some(body.as_bytes())).await
}

#[tokio::test]
async fn sql_over_rest_is_scoped_masked_and_typed() {
    let f = Fixture::start().await;
    let sql = |sql: &str, params: Value| json!({"sql": sql, "params": params}).to_string();
    // The same scope as the rows: the township sees its 9 people.
    let reply = post_sql(
        &f,
        &f.tokens.township,
        &sql("SELECT count(*) AS n FROM gongan.population", json!([])),
        "application/json",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"columns": ["n"], "rows": [{"n": in_scope(Some("630102001")).len()}]}));
    // Bound parameters, and masks: the ID is shown as the rows endpoint shows it.
    let body = sql(
        "SELECT id_number, household_size FROM gongan.population WHERE household_size = $1 ORDER BY id_number",
        json!([2]),
    );
    let reply = post_sql(&f, &f.tokens.county, &body, "application/json").await.json();
    let want = in_scope(Some("630102")).into_iter().filter(|p| p.household_size == Some(2)).count();
    assert_eq!(reply["rows"].as_array().unwrap().len(), want);
    for row in reply["rows"].as_array().unwrap() {
        assert!(row["id_number"].as_str().unwrap().contains('*'), "{row}");
    }
    // Other formats.
    let csv = post_sql(
        &f,
        &f.tokens.admin,
        &sql("SELECT sex, count(*) AS n FROM gongan.population GROUP BY sex ORDER BY sex", json!([])),
        "text/csv",
    )
    .await;
    let (header, records) = csv_rows(&csv.body);
    assert_eq!(header, ["sex", "n"]);
    let total: usize = records.iter().map(|r| r[1].parse::<usize>().unwrap()).sum();
    assert_eq!(total, people().len());
    let ipc =
        post_sql(&f, &f.tokens.admin, &sql("SELECT 1 AS one", json!([])), "application/vnd.apache.arrow.stream").await;
    assert_eq!(arrow_rows(&ipc.body)[0].num_rows(), 1);

    // Refusals: writes (the plan gate), SQL that does not plan, other roles, bad bodies, no token.
    let write =
        post_sql(&f, &f.tokens.admin, &sql("DELETE FROM gongan.population", json!([])), "application/json").await;
    assert!(matches!(write.status, 400 | 403), "{}", write.text());
    let unknown =
        post_sql(&f, &f.tokens.county, &sql("SELECT * FROM renshe.insured_people", json!([])), "application/json")
            .await;
    // As Flight SQL answers it: a dataset outside the principal's grants is refused.
    assert_eq!(unknown.problem(403)["type"], "urn:civlink:problem:forbidden");
    let typo = post_sql(&f, &f.tokens.county, &sql("SELEC 1", json!([])), "application/json").await;
    assert_eq!(typo.problem(400)["type"], "urn:civlink:problem:sql");
    let standards = post_sql(&f, &f.tokens.standards, &sql("SELECT 1", json!([])), "application/json").await;
    assert_eq!(standards.problem(403)["type"], "urn:civlink:problem:forbidden");
    for bad in [
        "{",
        "[]",
        r#"{"sql": 1}"#,
        r#"{"sql": "SELECT 1", "extra": true}"#,
        r#"{"sql": "SELECT $1", "params": [[1]]}"#,
        r#"{"sql": "  "}"#,
    ] {
        let reply = post_sql(&f, &f.tokens.county, bad, "application/json").await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
    }
    let anonymous = request(
        f.addr,
        "POST",
        "/api/v1/query",
        &[("Content-Type", "application/json")],
        Some(br#"{"sql":"SELECT 1"}"#),
    )
    .await;
    anonymous.problem(401);
    // Audited under its own action, with the SQL text.
    let entries = f.store.audit_entries(None).await.unwrap();
    assert!(entries.iter().any(|r| r.entry.action == civlink_catalog::policy::AuditAction::RestQuery
        && r.entry.sql_text.as_deref().is_some_and(|t| t.contains("GROUP BY sex"))));
    f.stop().await;
}
