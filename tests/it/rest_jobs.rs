//! Ingestion jobs over REST, through `civlink serve` with a job directory:
//! who may see and start them, a run started by hand under the job's lease,
//! and its history with counts, cursor and quality report.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, civlink, export_rows, job, text, write_gbk};

/// `civlink token create` with these options; the printed token.
fn token(data: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let output = civlink(data, &all);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    out.lines().map(str::trim).find(|l| l.starts_with("clk_")).unwrap_or_else(|| panic!("no token in {out}")).to_owned()
}

/// `METHOD path` on `server`: (status, JSON body).
fn http(server: &Server, method: &str, path: &str, token: &str) -> (u16, Value) {
    let (status, body) = server.request(method, path, token);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn jobs_are_operated_over_rest_by_admins_and_their_departments_service_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let (export, _, _, _) = export_rows();
    let csv = dir.path().join("people.csv");
    write_gbk(&csv, &export);
    job(&jobs, "overwrite", csv.to_str().unwrap());

    let admin = token(&data, &["--user", "ops-admin", "--role", "admin", "--division", "630000000000"]);
    let minzheng = token(
        &data,
        &[
            "--user",
            "mz-service",
            "--role",
            "department_service",
            "--division",
            "630000000000",
            "--department",
            "minzheng",
        ],
    );
    let gongan = token(
        &data,
        &[
            "--user",
            "ga-service",
            "--role",
            "department_service",
            "--division",
            "630000000000",
            "--department",
            "gongan",
        ],
    );
    let analyst = token(
        &data,
        &["--user", "an-analyst", "--role", "analyst", "--division", "630000000000", "--department", "minzheng"],
    );

    let env = vec![("CIVLINK_JOBS_DIR".to_owned(), jobs.display().to_string())];
    let server = Server::start(&data, &env);
    let api = &server;

    // Who sees the job.
    let (status, body) = http(api, "GET", "/api/v1/jobs", &admin);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"][0]["name"], "test-people");
    assert_eq!(body["jobs"][0]["dataset"], "minzheng.test_people");
    assert!(body["jobs"][0]["last_run"].is_null());
    let (_, mine) = http(api, "GET", "/api/v1/jobs", &minzheng);
    assert_eq!(mine["jobs"].as_array().map(Vec::len), Some(1));
    let (_, theirs) = http(api, "GET", "/api/v1/jobs", &gongan);
    assert_eq!(theirs["jobs"], serde_json::json!([]), "another department's jobs are not listed");
    assert_eq!(http(api, "GET", "/api/v1/jobs", &analyst).0, 403);
    assert_eq!(http(api, "POST", "/api/v1/jobs/test-people/runs", &gongan).0, 404);
    assert_eq!(http(api, "POST", "/api/v1/jobs/no-such-job/runs", &admin).0, 404);

    // A run started by the department's service account, then its history.
    let (status, started) = http(api, "POST", "/api/v1/jobs/test-people/runs", &minzheng);
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let (status, history) = http(api, "GET", "/api/v1/jobs/test-people/runs", &minzheng);
        assert_eq!(status, 200, "{history}");
        let done = history["runs"].as_array().unwrap().iter().find(|r| r["status"] == "committed").cloned();
        if let Some(run) = done {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not commit: {history}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["run_id"], run_id.as_str(), "the run is the one started");
    let c = &run["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(n("read"), n("written") + n("quarantined") + n("duplicate"), "{run}");
    assert!(n("written") > 0);
    assert!(run["quality"]["completeness"].is_array(), "{run}");
    let (_, listed) = http(api, "GET", "/api/v1/jobs", &admin);
    assert_eq!(listed["jobs"][0]["last_run"]["status"], "committed");
    assert_eq!(http(api, "GET", "/api/v1/jobs/test-people/runs", &gongan).0, 404);

    let log = server.stop();
    assert!(!log.contains("panicked"), "{log}");
}
