//! The whole demo at small scale, end to end: `civlink demo` generates the six
//! departments' exports, ingests them, issues the analysts' tokens and serves
//! Flight SQL and REST; the test then queries it as the province, county and
//! township analysts and holds every count to the generator's ground truth:
//!
//! * every dataset's row count in each scope;
//! * every planted anomaly, found by a cross-department query (joins and
//!   anti-joins on masked, pseudonymised ID numbers) in each scope;
//! * after shutdown, the quarantine per (column, keyword).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array};
use arrow::record_batch::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use civlink_standards::division::DivisionCode;
use civlink_synth::GroundTruth;
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::common::command;

/// People in the test's demo: enough for every planted kind in every scope level.
const PEOPLE: &str = "8000";

/// The analysts the demo creates, and their divisions (as `civlink demo` prints them).
const ANALYSTS: [(&str, &str); 3] = [
    ("demo-province-analyst", "630000000000"),
    ("demo-county-analyst", "630106000000"),
    ("demo-township-analyst", "630106100000"),
];

/// One SQL per planted anomaly kind: the distinct (masked) ID numbers it finds.
const FINDINGS: [(&str, &str); 6] = [
    (
        "dibao_deceased",
        "SELECT count(DISTINCT m.id_number) FROM minzheng.dibao_members m WHERE m.end_date IS NULL AND \
         (m.id_number IN (SELECT id_number FROM gongan.population WHERE status = 'deceased') \
          OR m.id_number IN (SELECT id_number FROM weijian.death_certificates))",
    ),
    (
        "dibao_employee_pension",
        "SELECT count(DISTINCT m.id_number) FROM minzheng.dibao_members m JOIN renshe.social_insurance s \
         ON m.id_number = s.id_number WHERE m.end_date IS NULL AND s.insurance_type = '110' AND s.status IN ('1', '4')",
    ),
    (
        "dibao_employed",
        "SELECT count(DISTINCT m.id_number) FROM minzheng.dibao_members m JOIN renshe.employment e \
         ON m.id_number = e.id_number WHERE m.end_date IS NULL AND e.end_date IS NULL",
    ),
    (
        "dibao_two_counties",
        "SELECT count(*) FROM (SELECT id_number FROM minzheng.dibao_members WHERE end_date IS NULL \
         GROUP BY id_number HAVING count(DISTINCT substr(division_code, 1, 6)) > 1) t",
    ),
    (
        "missed_assistance",
        "SELECT count(DISTINCT e.id_number) FROM (SELECT id_number FROM xiangcun.monitoring WHERE risk_eliminated = 'no' \
         UNION SELECT id_number FROM xiangcun.registered_poor WHERE poverty_status = 'not_lifted') e \
         WHERE e.id_number NOT IN (SELECT id_number FROM minzheng.dibao_members WHERE end_date IS NULL) \
         AND e.id_number NOT IN (SELECT id_number FROM minzheng.tekun WHERE end_date IS NULL)",
    ),
    (
        "disabled_without_care_subsidy",
        "SELECT count(DISTINCT c.id_number) FROM canlian.disability_certificates c \
         WHERE c.grade IN ('1', '2') AND c.status = 'valid' \
         AND c.id_number NOT IN (SELECT id_number FROM canlian.disability_subsidies WHERE subsidy_type = 'care')",
    ),
];

/// The running demo: the child process and what it printed.
struct RunningDemo {
    child: Child,
    printed: String,
    flight: String,
    api: String,
    tokens: BTreeMap<String, String>,
    rest: mpsc::Receiver<String>,
}

/// Start `civlink demo` on free ports and wait until it serves.
fn start_demo(data_dir: &Path, out: &Path) -> RunningDemo {
    let mut child = command(data_dir)
        .args(["demo", "--people", PEOPLE, "--flight-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start civlink demo");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                if line.starts_with("Serving until") {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("civlink demo did not start serving:\n{printed}\n{err}");
            }
        }
    }
    let after = |prefix: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no \"{prefix}\" line in:\n{printed}"))
            .trim()
            .to_owned()
    };
    let flight = after("Flight SQL listening on ");
    let api = after("REST API listening on http://");
    // Each analyst's line names the principal; the token is on the next line.
    let mut tokens = BTreeMap::new();
    let all: Vec<&str> = printed.lines().collect();
    for (name, _) in ANALYSTS {
        let at = all.iter().position(|l| l.contains(name)).unwrap_or_else(|| panic!("no line for {name}"));
        let token = all[at + 1].split("token: ").nth(1).unwrap_or_else(|| panic!("no token after {name}")).trim();
        tokens.insert(name.to_owned(), token.to_owned());
    }
    RunningDemo { child, printed, flight, api, tokens, rest: lines }
}

async fn client(addr: &str, token: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(token.to_owned());
    client
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_owned(), None).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

async fn count(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> u64 {
    let batches = query(client, sql).await;
    let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap_or_else(|| panic!("{sql}: no rows"));
    let value = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap_or_else(|| panic!("{sql}: not Int64"));
    u64::try_from(value.value(0)).unwrap()
}

/// A plain HTTP/1.1 GET over loopback: (status, body).
fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_exactly_the_ground_truth_in_every_scope() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = dir.path().join("demo");
    let mut demo = start_demo(&data_dir, &out);
    assert!(
        demo.printed.contains("datasets match exactly"),
        "ingest did not match the ground truth:\n{}",
        demo.printed
    );
    assert!(
        demo.printed.contains("precision = recall = 1.0 for every rule"),
        "the findings did not match the ground truth:\n{}",
        demo.printed
    );
    let truth = GroundTruth::load(&out.join("ground_truth.json")).unwrap();
    assert_eq!(truth.datasets.len(), 14, "fourteen datasets from six departments");

    for (principal, division) in ANALYSTS {
        let prefix = DivisionCode::parse(division).unwrap().scope_prefix().to_owned();
        let mut flight = client(&demo.flight, &demo.tokens[principal]).await;
        for dataset in &truth.datasets {
            let rows = count(&mut flight, &format!("SELECT count(*) FROM {}", dataset.id)).await;
            assert_eq!(rows, dataset.valid_in(&prefix), "{principal}: rows of {}", dataset.id);
        }
        let visible = truth.visible_in(&prefix);
        for (kind, sql) in FINDINGS {
            let found = count(&mut flight, sql).await;
            let planted = visible.get(kind).copied().unwrap_or(0);
            assert_eq!(found, planted, "{principal}: {kind}");
            if principal == "demo-province-analyst" {
                assert!(planted >= 10, "at least ten {kind} cases are planted, got {planted}");
            }
        }
        // The demo ran every shipped rule: the findings each analyst's office must act on, on
        // Flight SQL (a table of the catalog) and on REST, are exactly the planted ones.
        let planted: u64 = truth.findings_in(&prefix).values().sum();
        let findings = count(&mut flight, "SELECT count(*) FROM verification.findings WHERE status = 'open'").await;
        assert_eq!(findings, planted, "{principal}: open findings");
        let outside = count(
            &mut flight,
            &format!("SELECT count(*) FROM verification.findings WHERE division_code NOT LIKE '{prefix}%'"),
        )
        .await;
        assert_eq!(outside, 0, "{principal} sees findings outside its division");
        let (status, body) = http_get(&demo.api, "/api/v1/findings?limit=1000", &demo.tokens[principal]);
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["findings"].as_array().unwrap().len() as u64, planted.min(1000), "{principal}: REST findings");

        // ID numbers and names are masked for every analyst: pseudonyms and surnames only.
        let sample = query(&mut flight, "SELECT id_number, name FROM gongan.population LIMIT 20").await;
        for batch in &sample {
            for id in batch.column(0).as_string::<i32>().iter().flatten() {
                assert!(id.starts_with("ps_"), "{principal} sees an unmasked ID number");
            }
            for name in batch.column(1).as_string::<i32>().iter().flatten() {
                assert!(name.chars().skip(1).all(|c| c == '*'), "{principal} sees an unmasked name");
            }
        }

        // The REST API serves the same scope.
        let (status, body) =
            http_get(&demo.api, "/api/v1/datasets/minzheng/dibao_members/rows?limit=50", &demo.tokens[principal]);
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rows = json["rows"].as_array().unwrap();
        assert!(
            !rows.is_empty()
                || truth.datasets.iter().any(|d| d.id == "minzheng.dibao_members" && d.valid_in(&prefix) == 0)
        );
        for row in rows {
            assert!(row["division_code"].as_str().unwrap().starts_with(&prefix), "{principal}: {row}");
            assert!(row["id_number"].as_str().unwrap().starts_with("ps_"), "{principal}: {row}");
        }
    }

    // Stop with SIGTERM; both servers say so.
    let term = Command::new("kill").args(["-TERM", &demo.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "civlink demo did not stop within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let rest: String = demo.rest.try_iter().collect::<Vec<_>>().join("\n");
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("Flight SQL stopped") && rest.contains("REST API stopped"), "{rest}");

    // The quarantine holds exactly what was planted, rule by rule.
    let config = civlink_catalog::config::CatalogConfig::local(&data_dir).unwrap();
    let store = civlink_catalog::store::MetadataStore::connect(&config.metadata_url).await.unwrap();
    for dataset in &truth.datasets {
        let id = dataset.id.parse().unwrap();
        let quality = store.latest_quality(&id).await.unwrap().unwrap();
        let mut found: BTreeMap<(String, String), u64> = BTreeMap::new();
        for rule in &quality.rules {
            found.insert((rule.column.clone(), rule.keyword.clone()), rule.failed);
        }
        assert_eq!(found, dataset.quarantine_rules(), "{}: quarantined rows per (column, keyword)", dataset.id);
    }
}

#[test]
fn demo_no_serve_stops_after_ingest_and_a_rerun_still_matches() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = dir.path().join("demo");
    let args = ["demo", "--people", "1500", "--no-serve", "--out", out.to_str().unwrap()];
    let first = command(&data_dir).args(args).output().unwrap();
    let text = crate::common::text(&first);
    assert_eq!(first.status.code(), Some(0), "{text}");
    assert!(text.contains("datasets match exactly"), "{text}");
    assert!(text.contains("--no-serve: not serving"), "{text}");
    assert!(!text.contains("listening"), "{text}");
    for (name, _) in ANALYSTS {
        assert!(text.contains(name), "{text}");
    }
    let second = command(&data_dir).args(args).output().unwrap();
    let again = crate::common::text(&second);
    assert_eq!(second.status.code(), Some(0), "{again}");
    assert!(again.contains("datasets match exactly"), "{again}");
}

#[test]
fn demo_generate_writes_exports_jobs_and_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    let output = command(&dir.path().join("data"))
        .args(["demo", "generate", "--scale", "small", "--seed", "7", "--people", "1000", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", crate::common::text(&output));
    let truth = GroundTruth::load(&out.join("ground_truth.json")).unwrap();
    assert_eq!(truth.people, 1000);
    for dataset in &truth.datasets {
        assert!(out.join(&dataset.job).is_file(), "job of {}", dataset.id);
    }
    let bad = command(&dir.path().join("data")).args(["demo", "generate", "--scale", "huge"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_postgres_reads_renshe_from_the_database_and_still_matches_the_ground_truth() {
    use sqlx::{Connection, Executor};
    const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = dir.path().join("demo");
    let args = ["demo", "--people", "1500", "--no-serve", "--with-postgres", POSTGRES, "--out", out.to_str().unwrap()];
    let demo = command(&data_dir).args(args).output().unwrap();
    let text = crate::common::text(&demo);
    assert_eq!(demo.status.code(), Some(0), "{text}");
    for table in [
        "civlink_demo_renshe_social_insurance",
        "civlink_demo_renshe_pension_payments",
        "civlink_demo_renshe_employment",
    ] {
        assert!(text.contains(table), "{table}: {text}");
    }
    assert!(text.contains("datasets match exactly"), "{text}");
    assert!(text.contains("precision = recall = 1.0 for every rule"), "{text}");
    // 人社's runs read the database; the other departments' their files.
    let shown =
        crate::common::text(&command(&data_dir).args(["catalog", "show", "renshe.employment"]).output().unwrap());
    assert!(shown.contains("postgres://postgres@127.0.0.1:5432/test"), "the lineage names the database: {shown}");
    let files =
        crate::common::text(&command(&data_dir).args(["catalog", "show", "gongan.population"]).output().unwrap());
    assert!(!files.contains("postgres://"), "{files}");

    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    for table in ["social_insurance", "pension_payments", "employment"] {
        conn.execute(format!("DROP TABLE IF EXISTS civlink_demo_renshe_{table}").as_str()).await.unwrap();
    }
    conn.close().await.unwrap();
}
