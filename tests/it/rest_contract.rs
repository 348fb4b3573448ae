//! The REST API against its own contract and against Flight SQL, through
//! `civlink serve`: schemathesis (a client that is not ours) fuzzes every
//! documented operation from the served OpenAPI document, and a corpus of
//! row requests gives the same rows and masks through REST as through
//! Flight SQL at three levels of government.

use std::collections::BTreeSet;
use std::process::Command;

use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::common::{Server, repo, text};
use crate::python_clients::{DATASET, residents_catalog, token};

fn schemathesis() -> std::path::PathBuf {
    let bin = repo().join(".venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "schemathesis is missing from .venv: run scripts/test (tests/python/requirements.txt lists it)"
    );
    bin
}

#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = residents_catalog(dir.path());
    let county = token(&data, "county-analyst", "630102000000");
    let server = Server::start(&data, &[]);
    let schema = format!("http://{}/api/openapi.json", server.rest);
    let run = Command::new(schemathesis())
        .args(["run", &schema])
        .args(["--header", &format!("Authorization: Bearer {county}")])
        // ignored_auth: every operation that declares the bearer scheme is
        // also sent without credentials and with wrong ones, and must refuse.
        .args(["--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,ignored_auth"])
        .args(["--max-examples", "40", "--workers", "2", "--seed", "20261204", "--request-timeout", "30"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let out = text(&run);
    let log = server.stop();
    assert!(run.status.success(), "schemathesis found problems:\n{out}\nserver log:\n{log}");
    // "N generated, N passed, …": it really ran, on every operation.
    let generated = out
        .lines()
        .find_map(|l| {
            l.trim().split_once(" generated, ").map(|(n, rest)| (n.trim().parse::<u64>().unwrap_or(0), rest.to_owned()))
        })
        .unwrap_or_else(|| panic!("no test-case summary in:\n{out}"));
    assert!(generated.0 >= 300, "only {} test cases:\n{out}", generated.0);
    assert!(generated.1.starts_with(&format!("{} passed", generated.0)), "{out}");
    // Every documented operation was selected and tested.
    let field = |name: &str| {
        out.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned())).unwrap_or_default()
    };
    let selected = field("Selected:");
    let tested = field("Tested:");
    assert!(
        selected
            .split_once('/')
            .is_some_and(|(a, b)| a == b && b == tested && tested.parse::<u32>().unwrap_or(0) >= 20),
        "selected {selected}, tested {tested}:\n{out}"
    );
    // No ID number of the dataset ever reached the server's log.
    assert!(!log.contains("19800"), "{log}");
}

async fn flight_rows(addr: &str, token: &str, sql: &str) -> BTreeSet<String> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(token.to_owned());
    let info = client.execute(sql.to_owned(), None).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = BTreeSet::new();
    for endpoint in info.endpoint {
        let batches: Vec<arrow::record_batch::RecordBatch> =
            client.do_get(endpoint.ticket.unwrap()).await.unwrap().try_collect().await.unwrap();
        for batch in batches {
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            writer.write(&batch).unwrap();
            writer.finish().unwrap();
            for line in String::from_utf8(writer.into_inner()).unwrap().lines() {
                rows.insert(canonical(&serde_json::from_str(line).unwrap()));
            }
        }
    }
    rows
}

/// A row as comparable text: members sorted, nulls dropped (arrow-json's
/// line writer leaves them out; the REST pages write them as `null`).
fn canonical(row: &serde_json::Value) -> String {
    let object = row.as_object().unwrap();
    let members: std::collections::BTreeMap<&String, &serde_json::Value> =
        object.iter().filter(|(_, v)| !v.is_null()).collect();
    serde_json::to_string(&members).unwrap()
}

fn rest_rows(server: &Server, token: &str, query: &str) -> BTreeSet<String> {
    let path = format!("/api/v1/datasets/{}/rows?limit=10000&{query}", DATASET.replace('.', "/"));
    let (status, body) = server.get(&path, token);
    assert_eq!(status, 200, "{path}: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["next_cursor"].is_null(), "one page holds every row");
    body["rows"].as_array().unwrap().iter().map(canonical).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_gives_the_rows_and_masks_flight_sql_gives_at_three_levels() {
    let dir = tempfile::tempdir().unwrap();
    let (data, rows) = residents_catalog(dir.path());
    let levels = [
        ("province-analyst", "630000000000"),
        ("county-analyst", "630102000000"),
        ("township-analyst", "630102002000"),
    ];
    let tokens: Vec<String> = levels.iter().map(|(user, division)| token(&data, user, division)).collect();
    let server = Server::start(&data, &[]);
    let table = DATASET;
    // (REST query, the same request in SQL).
    let corpus = [
        ("", format!("SELECT * FROM {table}")),
        ("sex=1", format!("SELECT * FROM {table} WHERE sex = '1'")),
        ("columns=id_number,name", format!("SELECT id_number, name FROM {table}")),
        ("division_code.prefix=630102002", format!("SELECT * FROM {table} WHERE division_code LIKE '630102002%'")),
        ("sex.in=2&columns=name,division_code", format!("SELECT name, division_code FROM {table} WHERE sex IN ('2')")),
        (
            "division_code.gte=630102003000&sort=-division_code",
            format!("SELECT * FROM {table} WHERE division_code >= '630102003000'"),
        ),
    ];
    let mut nonempty = 0;
    for ((user, _), token) in levels.iter().zip(&tokens) {
        for (query, sql) in &corpus {
            let rest = rest_rows(&server, token, query);
            let flight = flight_rows(&server.flight, token, sql).await;
            assert_eq!(rest, flight, "{user}: REST ?{query} against Flight {sql}");
            nonempty += usize::from(!rest.is_empty());
            // Masked for every level: no clear ID or name of any row.
            for (id, name, _, _) in &rows {
                assert!(!rest.iter().any(|r| r.contains(id.as_str()) || r.contains(&format!("\"{name}\""))), "{user}");
            }
        }
    }
    assert!(nonempty >= 15, "the corpus must mostly return rows: {nonempty}");
    server.stop();
}
