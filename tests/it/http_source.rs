//! An HTTP API source through the whole pipeline (`civlink ingest`): the
//! API's JSON records keep their JSON types, a record the standard rejects
//! is quarantined like a file's row, the token goes out in the header and is
//! never shown.

use std::io::Write;

use civlink_testkit::http::{RawHttp, json_answer};

use crate::common::{civlink_env, repo, text};

const TOKEN: &str = "api-t0ken-9c1e";

/// A one-route API: the records for a request carrying the token, 401 otherwise.
fn serve(body: String) -> std::net::SocketAddr {
    RawHttp::start(move |_, head, stream| {
        let authorized = head.to_ascii_lowercase().contains(&format!("bearer {TOKEN}").to_ascii_lowercase());
        let answer = if authorized { json_answer("200 OK", &body) } else { json_answer("401 Unauthorized", "") };
        let _ = stream.write_all(answer.as_bytes());
    })
    .addr()
}

#[test]
fn an_api_delivers_through_the_pipeline_and_its_token_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let body = serde_json::json!({"data": [
        {"id_number": "11010519491231002X", "name": "张三", "code": "01", "age": 76, "birth_date": "1949-12-31", "amount": 10.5},
        {"id_number": "630102198001010019", "name": "王五", "code": "02", "age": 46, "birth_date": "1980-01-01", "amount": 20},
        {"id_number": "630102199001010013", "name": "赵六", "code": "03", "age": "36", "birth_date": "1990-01-01", "amount": null}
    ]})
    .to_string();
    let addr = serve(body);
    let job = dir.path().join("api.toml");
    std::fs::write(
        &job,
        format!(
            r#"
name = "api-people"
dataset = "renshe.api_people"
standard = "{standard}"
mode = "overwrite"

[dataset_info]
title = "接口人员"
owner = "测试处"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "http://{addr}/people"

[source.http]
records = "data"
auth = "bearer"
token_env = "CIVLINK_TEST_API_TOKEN"
"#,
            standard = repo().join("tests/data/person_v1.json").display()
        ),
    )
    .unwrap();
    let env = vec![("CIVLINK_TEST_API_TOKEN".to_owned(), TOKEN.to_owned())];
    let ingest = civlink_env(&data_dir, &["ingest", job.to_str().unwrap()], &env);
    let printed = text(&ingest);
    assert_eq!(ingest.status.code(), Some(0), "{printed}");
    let figure = |label: &str| -> u64 {
        printed
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {printed}"))
    };
    assert_eq!(
        (figure("read"), figure("written"), figure("quarantined")),
        (3, 2, 1),
        "the JSON string \"36\" is no integer: {printed}"
    );
    let history = civlink_env(&data_dir, &["catalog", "history", "renshe.api_people"], &env);
    for output in [&ingest, &history] {
        assert!(!text(output).contains(TOKEN), "{}", text(output));
    }

    // Without the token the API refuses, and the run says so.
    let refused = civlink_env(
        &data_dir,
        &["ingest", job.to_str().unwrap()],
        &[("CIVLINK_TEST_API_TOKEN".to_owned(), "wrong".to_owned())],
    );
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(text(&refused).contains("401"), "{}", text(&refused));

    // The API answers with no records at all: the gates hold the delivery, the dataset keeps its rows.
    let empty = serve(serde_json::json!({"data": []}).to_string());
    let job_text =
        std::fs::read_to_string(&job).unwrap().replace(&format!("http://{addr}/"), &format!("http://{empty}/"));
    std::fs::write(&job, job_text).unwrap();
    let held = civlink_env(&data_dir, &["ingest", job.to_str().unwrap()], &env);
    assert_eq!(held.status.code(), Some(3), "held: {}", text(&held));
    let read = text(&civlink_env(&data_dir, &["catalog", "read", "renshe.api_people", "--limit", "10"], &env));
    assert!(read.contains("renshe.api_people: 2 "), "the held delivery replaced the data: {read}");
}
