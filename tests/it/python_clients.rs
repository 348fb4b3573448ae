//! Flight SQL through a client that is not ours: `civlink serve` on a free
//! port, queried by tests/python/test_flight_sql.py with ADBC (Bearer and
//! Basic authentication, get_objects, queries, prepared statements with
//! parameters, row scope by division, masking), then stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{civlink, command, python, repo, text, write_gbk};

/// The dataset the Python client reads.
pub const DATASET: &str = "minzheng.test_residents";

/// A standard with a division column, so that rows are scoped per principal.
const STANDARD: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "test.resident",
  "x-civlink-version": "1",
  "title": "居民",
  "type": "object",
  "x-civlink-primary-key": ["id_number"],
  "x-civlink-division-column": "division_code",
  "required": ["id_number", "name", "division_code"],
  "properties": {
    "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643", "x-civlink-sensitivity": "sensitive",
                  "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
    "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive", "x-civlink-mask": {"strategy": "name"}},
    "sex": {"type": "string", "title": "性别", "pattern": "^[12]$"},
    "division_code": {"type": "string", "title": "行政区划代码", "format": "division-code"}
  }
}"#;

/// The townships the rows live in: two counties of 西宁市, several townships each.
const TOWNSHIPS: [&str; 6] =
    ["630102001000", "630102002000", "630102003000", "630103001000", "630103002000", "630103005000"];

/// The county principal's division and the township principal's (inside it).
const COUNTY: &str = "630102000000";
const TOWNSHIP: &str = "630102002000";

/// One generated row: (id_number, name, sex, division_code).
pub type Row = (String, String, &'static str, &'static str);

/// Rows spread unevenly over [`TOWNSHIPS`], each with a valid, distinct ID
/// from its county.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (t, township) in TOWNSHIPS.iter().enumerate() {
        // 5, 8, 11, … rows: every township a different count, so a wrong scope shows.
        for i in 0..(5 + 3 * t) {
            let n = rows.len();
            let body = format!("{}1980{:02}{:02}{:03}", &township[..6], 1 + n % 12, 1 + n % 28, n);
            let check = civlink_standards::idcard::check_character(&body).expect("check character");
            let sex = if i % 3 == 0 { "2" } else { "1" };
            rows.push((format!("{body}{check}"), format!("居民{n}"), sex, *township));
        }
    }
    rows
}

/// (rows, rows with sex '1') whose division code starts with `code`'s scope prefix.
fn expected(rows: &[Row], code: &str) -> (usize, usize) {
    let prefix = civlink_standards::division::DivisionCode::parse(code).expect("division code");
    let prefix = prefix.scope_prefix();
    let scoped: Vec<&Row> = rows.iter().filter(|r| r.3.starts_with(prefix)).collect();
    (scoped.len(), scoped.iter().filter(|r| r.2 == "1").count())
}

/// `token create` for an analyst of gongan (not the owner: it reads under the
/// sharing rules) at `division`; the printed token.
pub fn token(data: &Path, user: &str, division: &str) -> String {
    let output = civlink(
        data,
        &["token", "create", "--user", user, "--role", "analyst", "--division", division, "--department", "gongan"],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    out.lines().map(str::trim).find(|l| l.starts_with("clk_")).unwrap_or_else(|| panic!("no token in {out}")).to_owned()
}

/// A catalog under `dir/data` holding [`DATASET`], ingested from a GBK
/// export of [`rows`]; with the rows.
pub fn residents_catalog(dir: &Path) -> (std::path::PathBuf, Vec<Row>) {
    let data = dir.join("data");

    // The export and its job: unconditional sharing, so any analyst reads it within its division.
    let rows = rows();
    let mut export = String::from("身份证号,姓名,性别,区划代码\n");
    for (id, name, sex, division) in &rows {
        export.push_str(&format!("{id},{name},{sex},{division}\n"));
    }
    write_gbk(&dir.join("residents.csv"), &export);
    let standard = dir.join("resident_v1.json");
    std::fs::write(&standard, STANDARD).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"
name = "test-residents"
dataset = "{DATASET}"
standard = "{standard}"
mode = "append"

[dataset_info]
title = "测试居民"
owner = "测试处"
sharing = "unconditional"
update_cycle = "daily"

[source]
location = "residents.csv"

[source.csv]
encoding = "gbk"

[mapping]
rename = {{ "身份证号" = "id_number", "姓名" = "name", "性别" = "sex", "区划代码" = "division_code" }}
"#,
            standard = standard.display()
        ),
    )
    .unwrap();
    let ingest = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&ingest);
    assert_eq!(ingest.status.code(), Some(0), "{out}");
    assert!(out.contains(&format!("conservation: {0} = {0} + 0 + 0", rows.len())), "{out}");

    (data, rows)
}

#[test]
fn python_adbc_clients_query_scoped_masked_data_and_the_server_stops_on_sigterm() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let (data, rows) = residents_catalog(dir.path());

    let county_token = token(&data, "county-analyst", COUNTY);
    let township_token = token(&data, "township-analyst", TOWNSHIP);
    let (county_rows, county_sex1) = expected(&rows, COUNTY);
    let (township_rows, township_sex1) = expected(&rows, TOWNSHIP);
    // The scopes really differ from each other and from the whole table.
    assert!(township_rows < county_rows && county_rows < rows.len());

    let mut server = command(&data)
        .args(["serve", "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start civlink serve");
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    let read = stdout.read_line(&mut line).unwrap();
    let Some(addr) = line.trim().strip_prefix("Flight SQL listening on ").map(str::to_owned) else {
        let _ = server.kill();
        let mut stderr = String::new();
        let _ = server.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("no address from civlink serve ({read} bytes): {line}{stderr}");
    };
    // Drain stderr so that logging can never block the server on a full pipe.
    let mut stderr_pipe = server.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });

    let client = Command::new(&python)
        .arg(repo().join("tests/python/test_flight_sql.py"))
        .env("CIVLINK_FLIGHT_URI", format!("grpc://{addr}"))
        .env("CIVLINK_DATASET", DATASET)
        .env("CIVLINK_COUNTY_USER", "county-analyst")
        .env("CIVLINK_COUNTY_TOKEN", &county_token)
        .env("CIVLINK_COUNTY_ROWS", county_rows.to_string())
        .env("CIVLINK_COUNTY_SEX1_ROWS", county_sex1.to_string())
        .env("CIVLINK_TOWNSHIP_USER", "township-analyst")
        .env("CIVLINK_TOWNSHIP_TOKEN", &township_token)
        .env("CIVLINK_TOWNSHIP_ROWS", township_rows.to_string())
        .env("CIVLINK_TOWNSHIP_SEX1_ROWS", township_sex1.to_string())
        .output()
        .expect("run tests/python/test_flight_sql.py");
    let client_out = text(&client);

    // Stop the server with SIGTERM whatever the client said, then judge both.
    let term = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("run kill");
    assert!(term.success(), "kill -TERM failed");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = server.kill();
            panic!("civlink serve did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let server_err = stderr_reader.join().unwrap_or_default();

    assert!(client.status.success(), "the Python client failed:\n{client_out}\nserver log:\n{server_err}");
    // The summary is the last line of stdout (stderr may carry driver warnings).
    let client_stdout = String::from_utf8_lossy(&client.stdout);
    let last = client_stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(last.ends_with("passed, 0 failed"), "{client_out}");
    assert_eq!(status.code(), Some(0), "civlink serve after SIGTERM: {rest}{server_err}");
    assert!(rest.contains("Flight SQL stopped"), "{rest}{server_err}");
}
